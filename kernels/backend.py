"""Which implementation the public ops use: Triton or the PyTorch reference.

Rule: CUDA tensors use Triton; CPU tensors use the associative PyTorch reference, unless the
Triton path is forced with ``kernels.set_backend("triton")`` or the environment variable
``AUDIOMAMBA_SCAN=triton`` (on CPU that needs ``TRITON_INTERPRET=1``, set before triton is
imported). ``"reference"`` forces the PyTorch reference everywhere.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from .errors import KernelError

BACKENDS = ("auto", "triton", "reference")
_override: str | None = None
_fused_override: bool | None = None


def set_backend(name: str | None) -> None:
    """Force the scan backend: "auto" (by device), "triton" or "reference"; None restores the env default."""
    global _override
    if name is not None and name not in BACKENDS:
        raise KernelError(f"unknown scan backend {name!r} in kernels.set_backend: use one of {', '.join(BACKENDS)}")
    _override = name


def get_backend() -> str:
    """The backend in force: the value given to :func:`set_backend`, else ``$AUDIOMAMBA_SCAN``, else "auto"."""
    if _override is not None:
        return _override
    name = os.environ.get("AUDIOMAMBA_SCAN", "auto").strip().lower() or "auto"
    if name not in BACKENDS:
        raise KernelError(f"unknown scan backend AUDIOMAMBA_SCAN={name!r} in the environment: use one of {', '.join(BACKENDS)}")
    return name


def use_triton(x: Tensor) -> bool:
    """Whether an op on tensor ``x`` runs the Triton kernels."""
    name = get_backend()
    if name == "reference":
        return False
    if name == "triton":
        return True
    return x.is_cuda


def set_fused_step(enabled: bool | None) -> None:
    """Turn the fused per-block step kernels on or off; None restores the env default."""
    global _fused_override
    _fused_override = enabled


def use_fused_step(x: Tensor) -> bool:
    """Whether a block step on ``x`` runs a fused Triton block kernel (see kernels.triton_mamba_step).

    Needs the Triton backend for ``x`` (:func:`use_triton`) and no autocast (the fused kernel computes
    in float32 whatever autocast asks); off with :func:`set_fused_step` (False) or
    ``AUDIOMAMBA_FUSED_STEP=0``.
    """
    if _fused_override is not None:
        enabled = _fused_override
    else:
        enabled = os.environ.get("AUDIOMAMBA_FUSED_STEP", "1").strip() not in ("0", "false", "off")
    return enabled and use_triton(x) and not torch.is_autocast_enabled(x.device.type)


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


#: below this many rows (one stream) the step kernels are launch-bound, and PDL pays (H200, 2026-12-03: 1.26x for one
#: sc09-small stream, tokens identical); at batch 2048 it cost 9 % (0.91x), so batched steps keep plain launches
PDL_AUTO_MAX_ROWS = 16


def pdl_enabled(t: torch.Tensor) -> bool:
    """Launch the generation step kernels with programmatic dependent launch (PDL)? ``AUDIOMAMBA_PDL=1``: always,
    ``0``: never, unset or ``auto``: for fewer than :data:`PDL_AUTO_MAX_ROWS` rows (``t`` is the step's (B, H)
    input). Only for CUDA tensors on sm_90 or newer, outside the interpreter (which has no grid dependency
    control). Each such kernel waits for its predecessor before touching memory
    (:func:`kernels.triton_helpers.pdl_wait`), so PDL hides launch latency and changes no result."""
    flag = os.environ.get("AUDIOMAMBA_PDL", "auto").strip().lower()
    if flag in ("0", "false", "off"):
        return False
    if flag in ("", "auto") and t.shape[0] >= PDL_AUTO_MAX_ROWS:
        return False
    return on_sm90(t)


def on_sm90(t: torch.Tensor) -> bool:
    """Whether ``t`` lives on a sm_90+ GPU and kernels run compiled (not in the interpreter): what PDL and
    thread-block clusters (:func:`kernels.launch.launch_cluster`) need."""
    return t.is_cuda and not interpreting() and torch.cuda.get_device_capability(t.device)[0] >= 9


def cluster_ctas_max(t: torch.Tensor) -> int:
    """The largest thread-block cluster a run launches on ``t``'s GPU (:func:`on_sm90` first): 16, a non-portable
    size, on the data-centre parts that launch it (sm_90 H100 / H200, sm_100 B200: Triton's launcher says so); else
    the portable 8 (:data:`kernels.launch.CLUSTER_MAX_CTAS`, :data:`kernels.launch.CLUSTER_PORTABLE_CTAS`)."""
    from .launch import CLUSTER_MAX_CTAS, CLUSTER_PORTABLE_CTAS

    return CLUSTER_MAX_CTAS if torch.cuda.get_device_capability(t.device)[0] in (9, 10) else CLUSTER_PORTABLE_CTAS
