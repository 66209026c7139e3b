"""One Triton launch per step for drawing the next tokens (replaces about a dozen small kernels).

Same draw as :func:`audiomamba.generate.sampling.sample_tokens` without nucleus filtering:
token = argmax(logits / T + Gumbel(u)) with Gumbel(u) = -log(-log(u)), u the uniform noise
clamped to [1e-10, 1 - 1e-7] (greedy arg-max for T <= 0), over the tokens that min-p keeps
(logits / T >= max(logits / T) + log(min_p), when min_p > 0); then prompt tokens override it where
``force`` is set, and the token's log-probability under the unscaled logits is returned with it.

:func:`head_sample_step_triton` is the whole end of a generation step in one launch: the U-Net's output head
(LayerNorm and Linear), this draw, and the embedding of the drawn token, written where the next step reads its
input. A step's chain is then the body's launches and this one, instead of the body's, the head's
(:mod:`kernels.triton_norm_linear`), this draw's and the embedding's gather (issue 18: one stream's step is a chain of
latency-bound launches, ~2.5 µs each). :func:`head_sample_step_ref` is its PyTorch reference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from torch import Tensor

from .backend import pdl_enabled
from .launch import cdiv, launch_named, next_pow2
from .triton_helpers import ln_apply, ln_linear, ln_stats, mm, pdl_wait, row_tile
from .triton_mamba_step import default_precision

#: rows per program
BLOCK_B = 4


@triton.jit
def _sample_kernel(
    logits_ptr, noise_ptr, forced_ptr, force_ptr, token_ptr, logp_ptr,
    batch, V, temperature, log_min_p,
    GREEDY: tl.constexpr, MIN_P: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr,
):
    rows, m_b = row_tile(batch, BLOCK_B)
    offs_v = tl.arange(0, BLOCK_V)
    m_v = offs_v < V
    raw = tl.load(logits_ptr + rows[:, None] * V + offs_v[None, :], mask=m_b[:, None] & m_v[None, :],
                  other=0.0).to(tl.float32)
    logits = tl.where(m_v[None, :], raw, -float("inf"))  # padded rows stay finite
    _draw(logits, rows, m_b, offs_v, m_v, noise_ptr, forced_ptr, force_ptr, token_ptr, logp_ptr, V, temperature,
          log_min_p, GREEDY, MIN_P, BLOCK_B, BLOCK_V)


@triton.jit
def _draw(logits, rows, m_b, offs_v, m_v, noise_ptr, forced_ptr, force_ptr, token_ptr, logp_ptr, V, temperature,
          log_min_p, GREEDY: tl.constexpr, MIN_P: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr):
    """The draw from (BLOCK_B, BLOCK_V) float32 logits (-inf past V): stores each row's token and its log-probability
    and returns the tokens (int64)."""
    if GREEDY:
        score = logits
    else:
        m = m_b[:, None] & m_v[None, :]
        u = tl.load(noise_ptr + rows[:, None] * V + offs_v[None, :], mask=m, other=0.5)
        u = tl.minimum(tl.maximum(u, 1e-10), 1.0 - 1e-7)
        scaled = logits / temperature
        keep = tl.broadcast_to(m_v[None, :], (BLOCK_B, BLOCK_V))  # full shape: the min-p branch refines it
        if MIN_P:  # drop the far tail: tokens less likely than min_p times the most likely one
            keep = keep & (scaled >= tl.max(scaled, axis=1)[:, None] + log_min_p)
        score = tl.where(keep, scaled - tl.log(-tl.log(u)), -float("inf"))
    sampled = tl.argmax(score, axis=1, tie_break_left=True).to(tl.int64)
    forced = tl.load(forced_ptr + rows, mask=m_b, other=0)
    force = tl.load(force_ptr + rows, mask=m_b, other=0) != 0
    token = tl.where(force, forced, sampled)
    peak = tl.max(logits, axis=1)
    lse = peak + tl.log(tl.sum(tl.where(m_v[None, :], tl.exp(logits - peak[:, None]), 0.0), axis=1))
    chosen = tl.sum(tl.where(offs_v[None, :] == token[:, None], logits, 0.0), axis=1)
    tl.store(token_ptr + rows, token, mask=m_b)
    tl.store(logp_ptr + rows, chosen - lse, mask=m_b)
    return token


@torch.no_grad()
def sample_step_triton(
    logits: Tensor,
    noise: Tensor | None,
    temperature: float,
    forced: Tensor,
    force: Tensor,
    token_out: Tensor,
    logp_out: Tensor,
    min_p: float = 0.0,
) -> None:
    """Draw one token per row and its log-probability, written into ``token_out``/``logp_out``.

    Args:
        logits: (B, V) float. noise: (B, V) uniform [0, 1) (unused and may be None when
        ``temperature <= 0``). forced: (B,) int64 prompt tokens; force: (B,) bool, where they apply.
        token_out: (B,) int64; logp_out: (B,) float32 (contiguous, e.g. a row of the output buffers).
        min_p: drop tokens less likely than ``min_p`` times the most likely one (0 = off).
    """
    batch, V = logits.shape
    greedy = temperature <= 0
    logits = logits.contiguous()
    launch_named(_sample_kernel, (cdiv(batch, BLOCK_B),),
        logits, logits if greedy else noise.contiguous(), forced, force, token_out, logp_out,
        batch, V, 1.0 if greedy else float(temperature), math.log(min_p) if min_p > 0 else 0.0,
        GREEDY=greedy, MIN_P=min_p > 0, BLOCK_B=BLOCK_B, BLOCK_V=next_pow2(V),
    )


#: the fused head's tiles: H columns per chunk of its LayerNorm and product; widest head (V x H) it takes in one
#: program's tile (wider heads keep the separate launches, :func:`head_sample_fits`); warps per program
HEAD_BLOCK_H = 32
HEAD_MAX_V = 1024
HEAD_MAX_H = 1024
HEAD_WARPS = 8
#: for fewer than 16 rows, heads up to this width take all H columns in one chunk, their weights loaded before the
#: wait for the previous kernel, with :data:`HEAD_ONE_CHUNK_WARPS` warps (sm_90, ``compile_check --only head_sample``,
#: 2026-12-06: a (64, 256) tile at 16 warps 128 registers and no spills, at 8 warps 124 B of spills; a (128, 256) one
#: spilled 592-932 B at 8-32 warps, so sc09-large's 96 columns keep the chunks)
HEAD_ONE_CHUNK_H = 64
HEAD_ONE_CHUNK_WARPS = 16


@triton.jit
def _head_sample_kernel(
    x_ptr, nw_ptr, nb_ptr, w_ptr, bias_ptr, emb_ptr, noise_ptr, forced_ptr, force_ptr, token_ptr, logp_ptr, next_ptr,
    batch, H, V, eps, temperature, log_min_p,
    HAS_BIAS: tl.constexpr, GREEDY: tl.constexpr, MIN_P: tl.constexpr, USE_DOT: tl.constexpr, PREC: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_V: tl.constexpr, PDL: tl.constexpr = False,
    ONE_CHUNK: tl.constexpr = False,
):
    """One program per tile of rows, every vocabulary entry: logits = Linear(LayerNorm(x)) (the product in chunks of
    BLOCK_H columns; ``ONE_CHUNK``: H in one, its weights loaded before the wait for the previous kernel), the draw
    (:func:`_draw`), then next[row] = emb[token]."""
    rows, m_b = row_tile(batch, BLOCK_B)
    offs_v = tl.arange(0, BLOCK_V)
    m_v = offs_v < V
    if ONE_CHUNK:  # the weights load before the wait for the previous kernel
        acc = ln_linear(x_ptr, nw_ptr, nb_ptr, w_ptr, rows, m_b, offs_v, m_v, H, eps, USE_DOT, PREC, PDL, BLOCK_B,
                        BLOCK_H)
    else:
        pdl_wait(PDL)
        mean, rstd = ln_stats(x_ptr, rows, m_b, H, eps, BLOCK_B, BLOCK_H)
        acc = tl.zeros((BLOCK_B, BLOCK_V), dtype=tl.float32)
        for h0 in range(0, H, BLOCK_H):
            offs_h = h0 + tl.arange(0, BLOCK_H)
            m_h = offs_h < H
            xn = ln_apply(x_ptr, nw_ptr, nb_ptr, rows, m_b, offs_h, H, mean, rstd)
            w = tl.load(w_ptr + offs_v[None, :] * H + offs_h[:, None], mask=m_h[:, None] & m_v[None, :], other=0.0)
            acc += mm(xn, w.to(tl.float32), USE_DOT, PREC)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_v, mask=m_v, other=0.0).to(tl.float32)[None, :]
    logits = tl.where(m_v[None, :], acc, -float("inf"))
    token = _draw(logits, rows, m_b, offs_v, m_v, noise_ptr, forced_ptr, force_ptr, token_ptr, logp_ptr, V,
                  temperature, log_min_p, GREEDY, MIN_P, BLOCK_B, BLOCK_V)
    for h0 in range(0, H, BLOCK_H):  # the next step's input: the drawn token's embedding
        offs_h = h0 + tl.arange(0, BLOCK_H)
        m_bh = m_b[:, None] & (offs_h < H)[None, :]
        e = tl.load(emb_ptr + token[:, None] * H + offs_h[None, :], mask=m_bh, other=0.0)
        tl.store(next_ptr + rows[:, None] * H + offs_h[None, :], e.to(next_ptr.dtype.element_ty), mask=m_bh)


def head_sample_fits(H: int, V: int) -> bool:
    """Whether :func:`head_sample_step_triton` takes a head of width ``H`` and ``V`` outputs (one tile of V)."""
    return H <= HEAD_MAX_H and V <= HEAD_MAX_V


def head_sample_pays(H: int, V: int, rows: int) -> bool:
    """Whether a generation step of ``rows`` rows should end in :func:`head_sample_step_triton` rather than three
    launches: where it fits, at 16 rows or more, or below with H in one preloaded chunk (one H100, 2026-12-06 11:16-11:21
    UTC, ``python -m audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_HEAD --configs 0``, steady ms per step: one
    stream 1.01x for sc09-small, 1.03-1.05x for youtubemix (H 64, one chunk), 0.99-1.00x for sc09-large (H 96, in
    chunks); 1.00x at batch 2048)."""
    return head_sample_fits(H, V) and (rows >= 16 or H <= HEAD_ONE_CHUNK_H)


@torch.no_grad()
def head_sample_step_triton(
    x: Tensor, norm_weight: Tensor, norm_bias: Tensor, eps: float, weight: Tensor, bias: Tensor | None,
    embedding: Tensor, noise: Tensor | None, temperature: float, forced: Tensor, force: Tensor, token_out: Tensor,
    logp_out: Tensor, min_p: float = 0.0, precision: str | None = None,
) -> Tensor:
    """The end of a generation step in one launch: logits = Linear(LayerNorm(x)), the draw of
    :func:`sample_step_triton` from them, and the drawn tokens' embeddings (the next step's input).

    Args:
        x: (B, H) the body's output. norm_weight, norm_bias: (H,); weight: (V, H), bias: (V,) or None: the head.
        embedding: (V, H) the input embedding. noise, temperature, forced, force, token_out, logp_out, min_p: as
        :func:`sample_step_triton`. precision: the product's ``tl.dot`` input precision for 16+ rows (default:
        :func:`kernels.triton_mamba_step.default_precision`, as the head's own launch uses).

    Returns:
        (B, H) embedding[token_out], in the embedding's dtype.
    """
    batch, H = x.shape
    V = weight.shape[0]
    if not head_sample_fits(H, V):
        raise ValueError(f"head_sample_step: a head of {V} x {H} is wider than one program's tile "
                         f"({HEAD_MAX_V} x {HEAD_MAX_H}): use norm_linear and sample_step_triton")
    greedy = temperature <= 0
    x = x.contiguous()
    nxt = torch.empty((batch, H), device=x.device, dtype=embedding.dtype)
    bb = 16 if batch >= 16 else next_pow2(batch)
    one = bb < 16 and H <= HEAD_ONE_CHUNK_H
    block_h = max(16, next_pow2(H)) if one else HEAD_BLOCK_H
    pdl = pdl_enabled(x)
    launch_named(_head_sample_kernel, (cdiv(batch, bb),),
        x, norm_weight, norm_bias, weight.contiguous(), bias if bias is not None else x, embedding.contiguous(),
        x if greedy else noise.contiguous(), forced, force, token_out, logp_out, nxt,
        batch, H, V, float(eps), 1.0 if greedy else float(temperature), math.log(min_p) if min_p > 0 else 0.0,
        HAS_BIAS=bias is not None, GREEDY=greedy, MIN_P=min_p > 0, USE_DOT=bb >= 16,
        PREC=precision or default_precision(), BLOCK_B=bb, BLOCK_H=block_h, BLOCK_V=max(16, next_pow2(V)),
        PDL=pdl, launch_pdl=pdl, ONE_CHUNK=one, num_warps=HEAD_ONE_CHUNK_WARPS if one else HEAD_WARPS,
    )
    return nxt


def head_sample_step_ref(
    x: Tensor, norm_weight: Tensor, norm_bias: Tensor, eps: float, weight: Tensor, bias: Tensor | None,
    embedding: Tensor, noise: Tensor | None, temperature: float, forced: Tensor, force: Tensor, token_out: Tensor,
    logp_out: Tensor, min_p: float = 0.0, precision: str | None = None,
) -> Tensor:
    """PyTorch reference of :func:`head_sample_step_triton` (float32; ``precision`` unused)."""
    logits = F.linear(F.layer_norm(x.float(), (x.shape[1],), norm_weight.float(), norm_bias.float(), eps),
                      weight.float(), None if bias is None else bias.float())
    if temperature <= 0:
        sampled = logits.argmax(-1)
    else:
        scaled = logits / temperature
        u = noise.float().clamp(1e-10, 1.0 - 1e-7)
        score = scaled - torch.log(-torch.log(u))
        if min_p > 0:
            score = torch.where(scaled >= scaled.max(-1, keepdim=True).values + math.log(min_p), score, -math.inf)
        sampled = score.argmax(-1)
    token_out.copy_(torch.where(force, forced, sampled))
    logp_out.copy_(torch.log_softmax(logits, -1).gather(-1, token_out[:, None])[:, 0])
    return embedding[token_out]
