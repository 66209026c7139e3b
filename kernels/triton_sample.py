"""One Triton launch per step for drawing the next tokens (replaces about a dozen small kernels).

Same draw as :func:`audiomamba.generate.sampling.sample_tokens` without nucleus filtering:
token = argmax(logits / T + Gumbel(u)) with Gumbel(u) = -log(-log(u)), u the uniform noise
clamped to [1e-10, 1 - 1e-7] (greedy arg-max for T <= 0), over the tokens that min-p keeps
(logits / T >= max(logits / T) + log(min_p), when min_p > 0); then prompt tokens override it where
``force`` is set, and the token's log-probability under the unscaled logits is returned with it.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl
from torch import Tensor

from .launch import cdiv, launch_named, next_pow2
from .triton_helpers import row_tile

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
    m = m_b[:, None] & m_v[None, :]
    raw = tl.load(logits_ptr + rows[:, None] * V + offs_v[None, :], mask=m, other=0.0).to(tl.float32)
    logits = tl.where(m_v[None, :], raw, -float("inf"))  # padded rows stay finite
    if GREEDY:
        score = logits
    else:
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
