"""The shared scan kernel: Triton forward/backward/step, PyTorch reference, dispatch (DESIGN §6).

Public API::

    selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                   delta_softplus=False, return_last_state=False) -> y [, h_last]
    selective_state_update(h, u, delta, A, B, C, D=None, z=None, delta_bias=None,
                           delta_softplus=False) -> y      # updates h in place
    set_backend("auto" | "triton" | "reference")

CUDA tensors run the Triton kernels; CPU tensors the PyTorch reference unless forced
(``set_backend("triton")`` or ``AUDIOMAMBA_SCAN=triton``; on CPU with ``TRITON_INTERPRET=1``).

Files: ``reference.py`` (sequential + associative PyTorch scans, step), ``triton_scan.py``
(forward/backward kernels + autograd Function), ``triton_step.py`` (step kernel),
``backend.py`` (dispatch), ``checks.py`` (argument checks), ``tuning.py`` (launch configs,
``AUDIOMAMBA_SCAN_CONFIG``), ``compile_check.py`` (compile for sm_90 without a GPU).
"""

from kernels.backend import get_backend, set_backend
from kernels.ops import selective_scan, selective_state_update
from kernels.reference import selective_scan_assoc, selective_scan_ref, selective_state_update_ref

__all__ = [
    "get_backend",
    "selective_scan",
    "selective_scan_assoc",
    "selective_scan_ref",
    "selective_state_update",
    "selective_state_update_ref",
    "set_backend",
]
