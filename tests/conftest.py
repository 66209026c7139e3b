"""Shared pytest setup.

Without CUDA, Triton kernels run in Triton's CPU interpreter: ``TRITON_INTERPRET=1`` must be set
before anything imports triton, so it is set here. That does not make CPU code use Triton: the
scan ops still pick the PyTorch reference for CPU tensors unless a test forces the Triton
backend (``kernels.set_backend("triton")``).
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
