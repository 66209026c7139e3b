"""Shared pytest setup.

Without CUDA, Triton kernels run in Triton's CPU interpreter: ``TRITON_INTERPRET=1`` must be set
before anything imports triton, so it is set here. That does not make CPU code use Triton: the
scan ops still pick the PyTorch reference for CPU tensors unless a test forces the Triton
backend (``kernels.set_backend("triton")``).
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _exact_step_products(monkeypatch):
    """On a GPU, the batched step kernels' tl.dot products are three TF32 products each (``tf32x3``, about float32's
    accuracy) unless a test sets ``AUDIOMAMBA_STEP_PRECISION`` itself: the fused-step tests compare against the
    composed step at float32 tolerances, while generation's default (one TF32 product, ``tf32``) is judged by the
    likelihood check (``evaluate overfit``) and by ``test_fused_block_step_lower_precisions``. The CPU interpreter's
    products are exact either way."""
    if torch.cuda.is_available() and not os.environ.get("AUDIOMAMBA_STEP_PRECISION"):
        monkeypatch.setenv("AUDIOMAMBA_STEP_PRECISION", "tf32x3")
