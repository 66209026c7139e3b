"""Argument checks for the public scan ops: one-line :class:`KernelError` on a bad shape or dtype."""

from __future__ import annotations

import torch
from torch import Tensor

from .errors import KernelError

#: dtypes a real SSM state h may have in the step ops: float32, or bfloat16 or float16 (half the bytes of the state
#: traffic that bounds a large batch's generation step; float16 keeps 3 more mantissa bits, bfloat16 more range). The
#: update and readout compute in float32 either way; only the stored state is rounded. Complex states are complex64.
REAL_STATE_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _fail(op: str, what: str, fix: str) -> None:
    raise KernelError(f"{what} in kernels.{op}: {fix}")


def _shape(x: Tensor) -> str:
    return "(" + ", ".join(str(s) for s in x.shape) + ")"


def check_scan_args(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    delta_bias: Tensor | None,
) -> None:
    """Validate the shapes of a :func:`kernels.selective_scan` call (see docs/ARCHITECTURE.md §6)."""
    op = "selective_scan"
    if u.dim() != 3 or u.is_complex():
        _fail(op, f"u has shape {_shape(u)} dtype {u.dtype}", "pass a real tensor of shape (batch, d, L)")
    batch, d, L = u.shape
    if A.dim() != 2 or A.shape[0] != d:
        _fail(op, f"A has shape {_shape(A)}", f"pass A of shape (d, N) with d = {d}")
    N = A.shape[1]
    if delta.is_complex() or delta.shape not in ((batch, d, L), (d,)):
        _fail(op, f"delta has shape {_shape(delta)}", f"pass a real delta of shape ({batch}, {d}, {L}) or ({d},)")
    for name, x in (("B", B), ("C", C)):
        if x.shape not in ((batch, N, L), (d, N)):
            _fail(op, f"{name} has shape {_shape(x)}", f"pass {name} of shape ({batch}, {N}, {L}) or ({d}, {N})")
        if x.is_complex() and not A.is_complex():
            _fail(op, f"{name} is complex but A is real", f"make A complex or pass a real {name}")
    for name, x in (("D", D), ("delta_bias", delta_bias)):
        if x is not None and (x.shape != (d,) or x.is_complex()):
            _fail(op, f"{name} has shape {_shape(x)}", f"pass a real {name} of shape ({d},)")
    if z is not None and (z.shape != (batch, d, L) or z.is_complex()):
        _fail(op, f"z has shape {_shape(z)}", f"pass a real z of shape ({batch}, {d}, {L})")
    devices = {t.device for t in (u, delta, A, B, C, D, z, delta_bias) if t is not None}
    if len(devices) > 1:
        _fail(op, f"inputs are on several devices {sorted(str(x) for x in devices)}", "move them to one device")


def check_step_args(
    h: Tensor,
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    delta_bias: Tensor | None,
) -> None:
    """Validate the shapes of a :func:`kernels.selective_state_update` call."""
    op = "selective_state_update"
    if u.dim() != 2 or u.is_complex():
        _fail(op, f"u has shape {_shape(u)}", "pass a real tensor of shape (batch, d)")
    batch, d = u.shape
    if A.dim() != 2 or A.shape[0] != d:
        _fail(op, f"A has shape {_shape(A)}", f"pass A of shape (d, N) with d = {d}")
    N = A.shape[1]
    want = "complex64" if A.is_complex() else "float32, bfloat16 or float16"
    if (h.shape != (batch, d, N) or h.is_complex() != A.is_complex()
            or not A.is_complex() and h.dtype not in REAL_STATE_DTYPES):
        _fail(op, f"state h has shape {_shape(h)} dtype {h.dtype}", f"pass h of shape ({batch}, {d}, {N}) and dtype {want}")
    if delta.is_complex() or delta.shape not in ((batch, d), (d,)):
        _fail(op, f"delta has shape {_shape(delta)}", f"pass delta of shape ({batch}, {d}) or ({d},)")
    for name, x in (("B", B), ("C", C)):
        if x.shape not in ((batch, N), (d, N), (batch, 1, N), (1, d, N)):
            _fail(op, f"{name} has shape {_shape(x)}", f"pass {name} of shape ({batch}, {N}) or ({d}, {N})")
        if x.is_complex() and not A.is_complex():
            _fail(op, f"{name} is complex but A is real", f"make A complex or pass a real {name}")
    for name, x in (("D", D), ("delta_bias", delta_bias)):
        if x is not None and x.shape != (d,):
            _fail(op, f"{name} has shape {_shape(x)}", f"pass {name} of shape ({d},)")
    if z is not None and z.shape != (batch, d):
        _fail(op, f"z has shape {_shape(z)}", f"pass z of shape ({batch}, {d})")
