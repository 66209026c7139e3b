"""The shared scan kernel: Triton forward/backward/step, PyTorch reference, dispatch (docs/ARCHITECTURE.md §6).

Public API::

    selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                   delta_softplus=False, return_last_state=False) -> y [, h_last]
    selective_state_update(h, u, delta, A, B, C, D=None, z=None, delta_bias=None,
                           delta_softplus=False) -> y      # updates h in place
    set_backend("auto" | "triton" | "reference")
    mamba_s6_block_step(x, ...) -> x + block(x)     # fused step of a whole mamba-s6 block (Triton)
    mamba_lti_block_step(x, ...) -> x + block(x)    # the same for mamba-s4 / mamba-s4-real blocks
    norm_linear(x, ...) -> Linear(LayerNorm(x))      # one launch, for the output head's step
    head_sample_step(x, ...) -> next input           # the head, the token draw and its embedding in one launch
    set_fused_step(True | False | None); use_fused_step(x)

CUDA tensors run the Triton kernels; CPU tensors the PyTorch reference unless forced
(``set_backend("triton")`` or ``AUDIOMAMBA_SCAN=triton``; on CPU with ``TRITON_INTERPRET=1``).

Files: ``reference.py`` (sequential + associative PyTorch scans, step), ``triton_scan.py``
(forward/backward kernels + autograd Function), ``triton_step.py`` (step kernel),
``triton_mamba_step.py`` (fused step of a whole pre-norm Mamba block, S6 or LTI, for generation),
``triton_norm_linear.py`` (LayerNorm + Linear in one launch, the head's step), ``triton_sample.py`` (the token
draw; with the head and the next input's embedding in one launch),
``triton_conv.py`` (the Mamba block's causal conv + SiLU for training; ``AUDIOMAMBA_FUSED_CONV=0`` turns it off),
``scan_op.py`` (the scan as an opaque ``torch.library`` custom op, what ``torch.compile`` sees),
``backend.py`` (dispatch), ``checks.py`` (argument checks), ``tuning.py`` (launch configs,
``AUDIOMAMBA_SCAN_CONFIG``), ``compile_check.py`` (compile for sm_90 without a GPU).
"""

from .backend import get_backend, set_backend, set_fused_step, use_fused_step
from .ops import (
    head_sample_step,
    mamba_lti_block_step,
    mamba_s6_block_step,
    norm_linear,
    selective_scan,
    selective_state_update,
)
from .reference import selective_scan_assoc, selective_scan_ref, selective_state_update_ref
from .scan_op import selective_scan_op  # registers torch.ops.audiomamba.selective_scan (torch.compile)

__all__ = [
    "get_backend",
    "head_sample_step",
    "mamba_lti_block_step",
    "mamba_s6_block_step",
    "norm_linear",
    "selective_scan",
    "selective_scan_assoc",
    "selective_scan_op",
    "selective_scan_ref",
    "selective_state_update",
    "selective_state_update_ref",
    "set_backend",
    "set_fused_step",
    "use_fused_step",
]
