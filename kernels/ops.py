"""The public scan ops: argument checks, then Triton or the PyTorch reference (see :mod:`kernels.backend`)."""

from __future__ import annotations

import torch
from torch import Tensor

from .backend import use_triton
from .checks import check_scan_args, check_step_args
from .reference import selective_scan_assoc, selective_scan_fft, selective_state_update_ref


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Selective (or LTI) state-space scan, autograd-aware (docs/ARCHITECTURE.md §6).

    h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t u_t;  y_t = C_t·h_t (2·Re(C_t·h_t) for complex A) + D u_t;
    out = y · silu(z). Δ = softplus(delta + delta_bias) when ``delta_softplus`` else delta + delta_bias.

    Args:
        u: (batch, d, L) real input.
        delta: (batch, d, L) selective or (d,) LTI step sizes (broadcast, never materialised).
        A: (d, N) real or complex state matrix (diagonal per channel).
        B, C: (batch, N, L) selective or (d, N) LTI; complex only when A is complex.
        D: (d,) skip. z: (batch, d, L) gate. delta_bias: (d,).
        return_last_state: also return h_L (batch, d, N), float32 (complex64 when A is complex).

    Returns:
        y (batch, d, L) in u's dtype (accumulated in float32), and h_last if asked.
    """
    check_scan_args(u, delta, A, B, C, D, z, delta_bias)
    if torch.compiler.is_compiling():  # an opaque op for torch.compile (kernels/scan_op.py)
        from .scan_op import selective_scan_compiled

        return selective_scan_compiled(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state,
                                       use_triton(u))
    if use_triton(u):
        from .triton_scan import selective_scan_triton

        return selective_scan_triton(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    # named for torch.profiler (bench model --profile); the Triton path is named by its autograd Function
    with torch.profiler.record_function("audiomamba::selective_scan (reference)"):
        if delta.dim() == 1 and B.dim() == 2 and C.dim() == 2:  # LTI: a causal convolution (FFT) on the CPU
            return selective_scan_fft(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
        return selective_scan_assoc(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


def selective_state_update(
    h: Tensor,
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
) -> Tensor:
    """One step of the scan for generation; updates ``h`` IN PLACE and returns y (batch, d).

    h (batch, d, N) float32, or complex64 when A is complex; u (batch, d); delta (batch, d) or
    (d,) LTI; B, C (batch, N) selective or (d, N) LTI (when batch == d a 2-D B/C counts as LTI
    iff delta is (d,); pass (batch, 1, N) or (1, d, N) to say it explicitly); D, delta_bias (d,);
    z (batch, d). Same semantics as one step of :func:`selective_scan`. Not differentiable.
    """
    check_step_args(h, u, delta, A, B, C, D, z, delta_bias)
    if use_triton(u):
        from .triton_step import selective_state_update_triton

        return selective_state_update_triton(h, u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    return selective_state_update_ref(h, u, delta, A, B, C, D, z, delta_bias, delta_softplus)


def mamba_s6_block_step(x: Tensor, *args, **kwargs) -> Tensor:
    """Fused step of a whole pre-norm ``mamba-s6`` block (Triton only; see
    :func:`kernels.triton_mamba_step.mamba_s6_block_step_triton` for the arguments). Callers check
    :func:`kernels.use_fused_step` first; the composed PyTorch step is the reference."""
    from .triton_mamba_step import mamba_s6_block_step_triton

    return mamba_s6_block_step_triton(x, *args, **kwargs)


def mamba_lti_block_step(x: Tensor, *args, **kwargs) -> Tensor:
    """Fused step of a whole pre-norm ``mamba-s4`` / ``mamba-s4-real`` block (Triton only; see
    :func:`kernels.triton_mamba_step.mamba_lti_block_step_triton`). Callers check
    :func:`kernels.use_fused_step` first; the composed PyTorch step is the reference."""
    from .triton_mamba_step import mamba_lti_block_step_triton

    return mamba_lti_block_step_triton(x, *args, **kwargs)


def norm_linear(x: Tensor, norm_weight: Tensor, norm_bias: Tensor, eps: float, weight: Tensor,
                bias: Tensor | None = None) -> Tensor:
    """Linear(LayerNorm(x)) for x (B, H) in one Triton launch (generation steps; Triton only,
    see :func:`kernels.triton_norm_linear.norm_linear_triton`). Callers check
    :func:`kernels.use_fused_step` first; ``F.linear(F.layer_norm(...))`` is the reference."""
    from .triton_norm_linear import norm_linear_triton

    return norm_linear_triton(x, norm_weight, norm_bias, eps, weight, bias)


def head_sample_step(x: Tensor, *args, **kwargs) -> Tensor:
    """The end of a generation step in one launch: the output head (LayerNorm + Linear), the token draw and the
    drawn tokens' embeddings, the next step's input (Triton; see
    :func:`kernels.triton_sample.head_sample_step_triton` for the arguments). Callers check
    :func:`kernels.use_fused_step` and :func:`kernels.triton_sample.head_sample_fits` first;
    :func:`kernels.triton_sample.head_sample_step_ref` is the reference."""
    from .triton_sample import head_sample_step_triton

    return head_sample_step_triton(x, *args, **kwargs)
