"""LayerNorm followed by a Linear layer in one Triton launch, for generation steps (the U-Net's
output head: about three kernels in PyTorch for one step).

One program per (tile of rows, block of ``BLOCK_V`` outputs); each program normalises its rows
over all H columns (H <= 1024, held in one tile; the LayerNorm helpers are the fused Mamba step's)
and multiplies by its block of weight rows.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .backend import pdl_enabled
from .launch import cdiv, launch_named, next_pow2
from .triton_helpers import ln_linear, row_tile
from .triton_mamba_step import default_precision

#: outputs (vocabulary entries) per program
BLOCK_V = 64


@triton.jit
def _norm_linear_kernel(
    x_ptr, nw_ptr, nb_ptr, w_ptr, bias_ptr, out_ptr,
    batch, H, V, eps,
    HAS_BIAS: tl.constexpr, USE_DOT: tl.constexpr, PREC: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_V: tl.constexpr, PDL: tl.constexpr = False,
):
    rows, m_b = row_tile(batch, BLOCK_B)
    offs_v = tl.program_id(1) * BLOCK_V + tl.arange(0, BLOCK_V)
    m_v = offs_v < V
    out = ln_linear(x_ptr, nw_ptr, nb_ptr, w_ptr, rows, m_b, offs_v, m_v, H, eps, USE_DOT, PREC, PDL, BLOCK_B, BLOCK_H)
    if HAS_BIAS:
        out += tl.load(bias_ptr + offs_v, mask=m_v, other=0.0).to(tl.float32)[None, :]
    tl.store(out_ptr + rows[:, None] * V + offs_v[None, :], out.to(out_ptr.dtype.element_ty),
             mask=m_b[:, None] & m_v[None, :])


@torch.no_grad()
def norm_linear_triton(
    x: Tensor, norm_weight: Tensor, norm_bias: Tensor, eps: float, weight: Tensor, bias: Tensor | None = None
) -> Tensor:
    """x (B, H) -> Linear(LayerNorm(x)) (B, V); weight (V, H), bias (V,), LayerNorm weight/bias (H,)."""
    batch, H = x.shape
    V = weight.shape[0]
    if H > 1024:
        raise ValueError(f"norm_linear: width {H} > 1024 is not supported by the one-tile LayerNorm")
    x = x.contiguous()
    out = torch.empty((batch, V), device=x.device, dtype=x.dtype)
    bb = 16 if batch >= 16 else next_pow2(batch)
    pdl = pdl_enabled(x)
    launch_named(_norm_linear_kernel, (cdiv(batch, bb), cdiv(V, BLOCK_V)),
        x, norm_weight, norm_bias, weight.contiguous(), bias if bias is not None else x, out,
        batch, H, V, float(eps),
        HAS_BIAS=bias is not None, USE_DOT=bb >= 16, PREC=default_precision(),
        BLOCK_B=bb, BLOCK_H=max(16, next_pow2(H)), BLOCK_V=BLOCK_V, PDL=pdl, launch_pdl=pdl,
    )
    return out
