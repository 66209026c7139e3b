"""Causal depthwise Conv1d + SiLU for the Mamba block's training forward, in Triton (issue 14).

The block computes ``u = silu(conv1d(x)[..., :L])`` on ``x = in_proj(h)[..., :E]``, which PyTorch does as
a transpose, a padded depthwise convolution of L + k - 1 outputs, a slice, a SiLU and a copy to
contiguous (several launches, and cuDNN's slow depthwise weight gradient in the backward). Here:

- :func:`_conv_fwd_kernel` reads x straight from the in_proj output (B, L, E) (a strided view), sums
  the k taps, adds the bias, applies SiLU and writes u (B, E, L) contiguous, as the scan wants it.
- :func:`_conv_bwd_kernel` recomputes the pre-activations it needs (the k taps again, no saved
  activations), writes dx (B, L, E), and per-program partial sums of dweight and dbias, which
  PyTorch adds.

- ``AUDIOMAMBA_CONV_BWD=split`` runs the backward as two launches instead: :func:`_conv_dpre_kernel`
  computes dpre = du * silu'(pre) once per element (k loads and one sigmoid, where the default pays
  k^2 loads and k sigmoids), writes it to a scratch of x's size and dtype with per-program partial
  sums of dweight and dbias, and :func:`_conv_dx_kernel` reads it k times shifted for dx. Same
  numbers in float32 (tests); not yet timed on a GPU (``python -m audiomamba.bench.conv`` prints both).

Tiles are (BLOCK_L, BLOCK_E); the k shifted loads of a tile hit the cache. :func:`causal_conv1d_silu`
is the entry point; :func:`causal_conv1d_silu_ref` is the PyTorch definition it must match. Eager
calls go through the autograd Function :class:`_ConvSiluFn` (no dispatcher overhead); under
``torch.compile`` they go through ``torch.ops.audiomamba.causal_conv1d_silu``, a
``torch.library.custom_op`` that Dynamo and Inductor do not look into (fullgraph tracing of the
Function failed), with ``register_fake`` shapes and ``register_autograd`` connecting it to
``audiomamba::causal_conv1d_silu_bwd``, as :mod:`kernels.scan_op` does for the scan. Both run the
same launches (:func:`_conv_forward`, :func:`_conv_backward`), so the numbers are the same. This
file does not use ``from __future__ import annotations``: ``custom_op`` reads the real annotations.

On by default in ``MambaMixer`` (``audiomamba/model/blocks.py``) for CUDA tensors, eager and
compiled, and ``AUDIOMAMBA_FUSED_CONV=0`` turns it off. Measured (one H200, 2026-12-02, ``python -m audiomamba.bench.conv``):
fwd+bwd 1.04-2.23x the PyTorch path, and the sc09-small eager training step 289.6 -> 277.0 ms
(BENCHMARKS.md, "Fused causal conv + SiLU").
"""

import os
from typing import Optional

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from torch import Tensor

BLOCK_L = 64
BLOCK_E = 32
#: the backward's tile is shorter: it recomputes k pre-activation tiles (sm_90: 64 x 32 spilled)
BWD_BLOCK_L = 16
#: the split backward (``AUDIOMAMBA_CONV_BWD=split``): rows per tile of its first kernel (16 x 32:
#: 119 registers, no spills on sm_90; 32 x 32 takes 226) and tiles per program (its dweight/dbias
#: partial sums are per program, not per tile), and the tile of its dx kernel (95 registers)
SPLIT_BLOCK_L = 16
SPLIT_TILES = 32
DX_BLOCK_L = 64
DX_BLOCK_E = 32
CONV_BWD_MODES = ("recompute", "split")


def fused_conv_enabled() -> bool:
    """The Mamba block's conv + SiLU through this kernel (CUDA tensors); ``AUDIOMAMBA_FUSED_CONV=0`` turns it off."""
    return os.environ.get("AUDIOMAMBA_FUSED_CONV", "1") not in ("", "0")


def conv_bwd_mode() -> str:
    """Which backward ``AUDIOMAMBA_CONV_BWD`` picks: "recompute" (default; one launch that recomputes
    the k pre-activation tiles each dx tile needs, k^2 loads and k sigmoids per element) or "split"
    (two launches: dpre = du * silu'(pre) once per element, written to a scratch of x's size and
    dtype with the dweight/dbias partial sums, then dx as k shifted reads of it)."""
    mode = os.environ.get("AUDIOMAMBA_CONV_BWD", "").strip() or "recompute"
    if mode not in CONV_BWD_MODES:
        raise ValueError(f"AUDIOMAMBA_CONV_BWD={mode!r} in the environment: use {' or '.join(CONV_BWD_MODES)}")
    return mode


def causal_conv1d_silu_ref(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """x (B, L, E), weight (E, k), bias (E,) -> silu(causal depthwise conv of x over L), (B, E, L)."""
    E, k = weight.shape
    L = x.shape[1]
    y = F.conv1d(x.transpose(1, 2), weight[:, None, :], bias, padding=k - 1, groups=E)[..., :L]
    return F.silu(y)


@triton.jit
def _pre(x_row, w_ptr, b_ptr, offs_e, mask_e, t, seqlen, sx_l, K: tl.constexpr, HAS_BIAS: tl.constexpr):
    """Pre-activation conv(x)[t] + bias for a (BLOCK_L, BLOCK_E) tile of times t (0 where t >= L)."""
    acc = tl.zeros((t.shape[0], offs_e.shape[0]), tl.float32)
    for k in tl.static_range(K):
        ts = t - (K - 1) + k
        m = ((ts >= 0) & (ts < seqlen))[:, None] & mask_e[None, :]
        xk = tl.load(x_row + ts[:, None] * sx_l + offs_e[None, :], mask=m, other=0.0).to(tl.float32)
        wk = tl.load(w_ptr + offs_e * K + k, mask=mask_e, other=0.0).to(tl.float32)
        acc += xk * wk[None, :]
    if HAS_BIAS:
        acc += tl.load(b_ptr + offs_e, mask=mask_e, other=0.0).to(tl.float32)[None, :]
    return acc


@triton.jit
def _conv_fwd_kernel(x_ptr, w_ptr, b_ptr, u_ptr, seqlen, E, sx_b, sx_l,
                     K: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_E: tl.constexpr):
    pid_b = tl.program_id(0).to(tl.int64)
    offs_e = tl.program_id(1) * BLOCK_E + tl.arange(0, BLOCK_E)
    t = tl.program_id(2) * BLOCK_L + tl.arange(0, BLOCK_L)
    mask_e = offs_e < E
    pre = _pre(x_ptr + pid_b * sx_b, w_ptr, b_ptr, offs_e, mask_e, t, seqlen, sx_l, K, HAS_BIAS)
    u = pre * tl.sigmoid(pre)
    m = (t < seqlen)[:, None] & mask_e[None, :]
    tl.store(u_ptr + (pid_b * E + offs_e[None, :]) * seqlen + t[:, None], u.to(u_ptr.dtype.element_ty), mask=m)


@triton.jit
def _conv_bwd_kernel(x_ptr, w_ptr, b_ptr, du_ptr, dx_ptr, dw_ptr, db_ptr, seqlen, E, sx_b, sx_l,
                     K: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_E: tl.constexpr):
    pid_b = tl.program_id(0).to(tl.int64)
    pid_l = tl.program_id(2)
    offs_e = tl.program_id(1) * BLOCK_E + tl.arange(0, BLOCK_E)
    t = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    mask_e = offs_e < E
    x_row = x_ptr + pid_b * sx_b
    du_rows = du_ptr + (pid_b * E + offs_e[None, :]) * seqlen
    dx = tl.zeros((BLOCK_L, BLOCK_E), tl.float32)
    for j in tl.static_range(K):
        # dx[t] = sum_j w[K-1-j] dpre[t + j], with dpre = du * silu'(pre) recomputed at t + j
        tj = t + j
        mj = (tj < seqlen)[:, None] & mask_e[None, :]
        pre = _pre(x_row, w_ptr, b_ptr, offs_e, mask_e, tj, seqlen, sx_l, K, HAS_BIAS)
        sg = tl.sigmoid(pre)
        du = tl.load(du_rows + tj[:, None], mask=mj, other=0.0).to(tl.float32)
        dpre = tl.where(mj, du * sg * (1.0 + pre * (1.0 - sg)), 0.0)
        wj = tl.load(w_ptr + offs_e * K + (K - 1 - j), mask=mask_e, other=0.0).to(tl.float32)
        dx += dpre * wj[None, :]
        if j == 0:
            # this tile's partial sums of dbias and dweight[k] = sum_t dpre[t] x[t - (K-1) + k]
            part = (pid_b * tl.num_programs(2) + pid_l) * E + offs_e
            if HAS_BIAS:
                tl.store(db_ptr + part, tl.sum(dpre, axis=0), mask=mask_e)
            for k in tl.static_range(K):
                ts = t - (K - 1) + k
                m = ((ts >= 0) & (ts < seqlen))[:, None] & mask_e[None, :]
                xk = tl.load(x_row + ts[:, None] * sx_l + offs_e[None, :], mask=m, other=0.0).to(tl.float32)
                tl.store(dw_ptr + part * K + k, tl.sum(dpre * xk, axis=0), mask=mask_e)
    m = (t < seqlen)[:, None] & mask_e[None, :]
    tl.store(dx_ptr + (pid_b * seqlen + t[:, None]) * E + offs_e[None, :], dx.to(dx_ptr.dtype.element_ty), mask=m)


@triton.jit
def _conv_dpre_kernel(x_ptr, w_ptr, b_ptr, du_ptr, dpre_ptr, dw_ptr, db_ptr, seqlen, E, sx_b, sx_l, tiles,
                      K: tl.constexpr, KP: tl.constexpr, HAS_BIAS: tl.constexpr,
                      BLOCK_L: tl.constexpr, BLOCK_E: tl.constexpr):
    """Split backward, part 1: for ``tiles`` consecutive (BLOCK_L, BLOCK_E) tiles, dpre = du * silu'(pre)
    (pre recomputed once: k loads, one sigmoid), stored (B, L, E) in dpre's dtype; this program's
    partial sums of dbias and dweight[k] = sum_t dpre[t] x[t - (K-1) + k] (from the float32 dpre)."""
    pid_b = tl.program_id(0).to(tl.int64)
    pid_c = tl.program_id(2)
    offs_e = tl.program_id(1) * BLOCK_E + tl.arange(0, BLOCK_E)
    mask_e = offs_e < E
    x_row = x_ptr + pid_b * sx_b
    du_rows = du_ptr + (pid_b * E + offs_e[None, :]) * seqlen
    dp_row = dpre_ptr + pid_b * seqlen * E
    kk = tl.arange(0, KP)
    dw_acc = tl.zeros((BLOCK_E, KP), tl.float32)
    db_acc = tl.zeros((BLOCK_E,), tl.float32)
    for i in range(tiles):
        t = (pid_c * tiles + i) * BLOCK_L + tl.arange(0, BLOCK_L)
        mt = (t < seqlen)[:, None] & mask_e[None, :]
        pre = _pre(x_row, w_ptr, b_ptr, offs_e, mask_e, t, seqlen, sx_l, K, HAS_BIAS)
        sg = tl.sigmoid(pre)
        du = tl.load(du_rows + t[:, None], mask=mt, other=0.0).to(tl.float32)
        dpre = tl.where(mt, du * sg * (1.0 + pre * (1.0 - sg)), 0.0)
        tl.store(dp_row + t[:, None] * E + offs_e[None, :], dpre.to(dpre_ptr.dtype.element_ty), mask=mt)
        db_acc += tl.sum(dpre, axis=0)
        for k in tl.static_range(K):
            ts = t - (K - 1) + k
            m = ((ts >= 0) & (ts < seqlen))[:, None] & mask_e[None, :]
            xk = tl.load(x_row + ts[:, None] * sx_l + offs_e[None, :], mask=m, other=0.0).to(tl.float32)
            dw_acc += tl.where(kk[None, :] == k, tl.sum(dpre * xk, axis=0)[:, None], 0.0)
    part = (pid_b * tl.num_programs(2) + pid_c) * E + offs_e
    if HAS_BIAS:
        tl.store(db_ptr + part, db_acc, mask=mask_e)
    tl.store(dw_ptr + part[:, None] * K + kk[None, :], dw_acc, mask=mask_e[:, None] & (kk[None, :] < K))


@triton.jit
def _conv_dx_kernel(dpre_ptr, w_ptr, dx_ptr, seqlen, E, K: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_E: tl.constexpr):
    """Split backward, part 2: dx[t] = sum_j w[K-1-j] dpre[t + j], both (B, L, E)."""
    pid_b = tl.program_id(0).to(tl.int64)
    offs_e = tl.program_id(1) * BLOCK_E + tl.arange(0, BLOCK_E)
    t = tl.program_id(2) * BLOCK_L + tl.arange(0, BLOCK_L)
    mask_e = offs_e < E
    row = pid_b * seqlen * E
    dx = tl.zeros((BLOCK_L, BLOCK_E), tl.float32)
    for j in tl.static_range(K):
        tj = t + j
        m = (tj < seqlen)[:, None] & mask_e[None, :]
        d = tl.load(dpre_ptr + row + tj[:, None] * E + offs_e[None, :], mask=m, other=0.0).to(tl.float32)
        wj = tl.load(w_ptr + offs_e * K + (K - 1 - j), mask=mask_e, other=0.0).to(tl.float32)
        dx += d * wj[None, :]
    m = (t < seqlen)[:, None] & mask_e[None, :]
    tl.store(dx_ptr + row + t[:, None] * E + offs_e[None, :], dx.to(dx_ptr.dtype.element_ty), mask=m)


def _grid(x: Tensor, E: int, block_l: int) -> tuple[int, int, int]:
    return x.shape[0], triton.cdiv(E, BLOCK_E), triton.cdiv(x.shape[1], block_l)


def _conv_forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """Launch the forward kernel: x (B, L, E) with unit stride along E -> u (B, E, L) contiguous."""
    B, L, E = x.shape
    w = weight.contiguous()
    b = bias.contiguous() if bias is not None else None
    u = torch.empty((B, E, L), dtype=x.dtype, device=x.device)
    if L > 0:
        _conv_fwd_kernel[_grid(x, E, BLOCK_L)](x, w, b if b is not None else w, u, L, E, x.stride(0), x.stride(1),
                                              K=w.shape[1], HAS_BIAS=b is not None, BLOCK_L=BLOCK_L, BLOCK_E=BLOCK_E)
    return u


def _conv_backward(du: Tensor, x: Tensor, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Launch the backward kernel: dx (B, L, E) contiguous in x's dtype, dweight in weight's dtype,
    dbias in bias's dtype (None without a bias)."""
    B, L, E = x.shape
    w = weight.contiguous()
    b = bias.contiguous() if bias is not None else None
    K = w.shape[1]
    if conv_bwd_mode() == "split":
        return _conv_backward_split(du, x, w, b, bias)
    grid = _grid(x, E, BWD_BLOCK_L)
    dx = torch.empty((B, L, E), dtype=x.dtype, device=x.device)
    # every entry is written by the kernel (no tiles at all when L = 0: the sums are then zero)
    dw = torch.empty((B, grid[2], E, K), dtype=torch.float32, device=x.device)
    db = torch.empty((B, grid[2], E) if b is not None else (1,), dtype=torch.float32, device=x.device)
    if L > 0:
        _conv_bwd_kernel[grid](x, w, b if b is not None else w, du.contiguous(), dx, dw, db, L, E,
                               x.stride(0), x.stride(1), K=K, HAS_BIAS=b is not None,
                               BLOCK_L=BWD_BLOCK_L, BLOCK_E=BLOCK_E)
    g_b = db.sum((0, 1)).to(bias.dtype) if bias is not None else None
    return dx, dw.sum((0, 1)).to(w.dtype), g_b


def _conv_backward_split(du: Tensor, x: Tensor, w: Tensor, b: Tensor | None,
                         bias: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """``AUDIOMAMBA_CONV_BWD=split``: the two launches of :func:`_conv_dpre_kernel` and :func:`_conv_dx_kernel`."""
    B, L, E = x.shape
    K = w.shape[1]
    chunks = triton.cdiv(max(L, 1), SPLIT_BLOCK_L * SPLIT_TILES)
    dpre = torch.empty((B, L, E), dtype=x.dtype, device=x.device)
    dx = torch.empty((B, L, E), dtype=x.dtype, device=x.device)
    # every entry is written by the first kernel; with L = 0 there is none, and the sums are zero
    new = torch.empty if L > 0 else torch.zeros
    dw = new((B, chunks, E, K), dtype=torch.float32, device=x.device)
    db = new((B, chunks, E) if b is not None else (1,), dtype=torch.float32, device=x.device)
    if L > 0:
        _conv_dpre_kernel[(B, triton.cdiv(E, BLOCK_E), chunks)](
            x, w, b if b is not None else w, du.contiguous(), dpre, dw, db, L, E, x.stride(0), x.stride(1), SPLIT_TILES,
            K=K, KP=triton.next_power_of_2(K), HAS_BIAS=b is not None, BLOCK_L=SPLIT_BLOCK_L, BLOCK_E=BLOCK_E)
        _conv_dx_kernel[(B, triton.cdiv(E, DX_BLOCK_E), triton.cdiv(L, DX_BLOCK_L))](
            dpre, w, dx, L, E, K=K, BLOCK_L=DX_BLOCK_L, BLOCK_E=DX_BLOCK_E)
    g_b = db.sum((0, 1)).to(bias.dtype) if bias is not None else None
    return dx, dw.sum((0, 1)).to(w.dtype), g_b


class _ConvSiluFn(torch.autograd.Function):
    """The eager path (no dispatcher overhead); the same launches as the custom op below."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight, bias)
        return _conv_forward(x, weight, bias)

    @staticmethod
    def backward(ctx, du):
        x, weight, bias = ctx.saved_tensors
        return _conv_backward(du, x, weight, bias)


# --- the same kernels as an opaque op for torch.compile (the style of kernels/scan_op.py) ---------

OP = "audiomamba::causal_conv1d_silu"
OP_BWD = "audiomamba::causal_conv1d_silu_bwd"


def _unit_e(x: Tensor) -> Tensor:
    """x as the kernels read it (unit stride along E); a copy only if a caller passed another layout."""
    return x if x.stride(2) == 1 or x.shape[2] <= 1 else x.contiguous()


def _empty(like: Tensor) -> Tensor:
    return like.new_empty((0,), dtype=torch.float32)


@torch.library.custom_op(OP, mutates_args=())
def causal_conv1d_silu_op(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],  # noqa: UP045 - custom_op's schema inference reads these annotations
) -> Tensor:
    """u (B, E, L) contiguous in x's dtype, from x (B, L, E) (any strides), weight (E, k), bias (E,) or None."""
    return _conv_forward(_unit_e(x), weight, bias)


@causal_conv1d_silu_op.register_fake
def _(x, weight, bias):
    B, L, E = x.shape
    return x.new_empty((B, E, L))


@torch.library.custom_op(OP_BWD, mutates_args=())
def causal_conv1d_silu_bwd_op(
    du: Tensor,
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],  # noqa: UP045
) -> tuple[Tensor, Tensor, Tensor]:
    """(dx (B, L, E) contiguous in x's dtype, dweight like weight, dbias like bias); without a bias,
    dbias is a (0,) float32 tensor (a custom op cannot return None)."""
    dx, dw, db = _conv_backward(du, _unit_e(x), weight, bias)
    return dx, dw, db if db is not None else _empty(x)


@causal_conv1d_silu_bwd_op.register_fake
def _(du, x, weight, bias):
    B, L, E = x.shape
    db = bias.new_empty(bias.shape) if bias is not None else _empty(x)
    return x.new_empty((B, L, E)), weight.new_empty(weight.shape), db


def _setup_context(ctx, inputs, output) -> None:
    x, weight, bias = inputs
    ctx.save_for_backward(x, weight, bias)
    ctx.has_bias = bias is not None


def _backward(ctx, du):
    x, weight, bias = ctx.saved_tensors
    dx, dw, db = causal_conv1d_silu_bwd_op(du, x, weight, bias)
    return dx, dw, db if ctx.has_bias else None


causal_conv1d_silu_op.register_autograd(_backward, setup_context=_setup_context)


def causal_conv1d_silu(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """silu(causal depthwise conv1d) in Triton: x (B, L, E) with unit stride along E (e.g. a slice of
    the in_proj output), weight (E, k), bias (E,) or None -> u (B, E, L) contiguous, in x's dtype.
    Eager: the autograd Function; under ``torch.compile``: the opaque op ``audiomamba::causal_conv1d_silu``."""
    if x.dim() != 3 or x.stride(2) != 1 or weight.dim() != 2 or weight.shape[0] != x.shape[2]:
        raise ValueError(f"causal_conv1d_silu: x (B, L, E) with unit stride along E and weight (E, k), got "
                         f"x {tuple(x.shape)} strides {x.stride()}, weight {tuple(weight.shape)}")
    if torch.compiler.is_compiling():
        return causal_conv1d_silu_op(x, weight, bias)
    return _ConvSiluFn.apply(x, weight, bias)
