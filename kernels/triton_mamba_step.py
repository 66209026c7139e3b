"""Fused step of a whole pre-norm Mamba block (selective S6, or LTI S4 complex/real), for generation.

:meth:`audiomamba.model.blocks.Block.step` (the composed step, the reference) runs a Mamba block
as about sixteen small kernels; this runs the same computation as three or four Triton launches. For a batch of 16 rows
or more::

    1. _in_conv_kernel     xn = LayerNorm(x); (u, z) = in_proj(xn); u = SiLU(conv step(u))
                           (conv window shifted in place)
    2. _xproj_kernel       (Δ_low, B_t, C_t) = x_proj(u)
    3. _ssm_kernel         Δ = softplus(dt_proj(Δ_low) + dt_bias); h ← exp(Δ A) h + Δ B_t u
                           (in place); y = (C_t · h + D u) · SiLU(z)
    4. _out_proj_kernel    out = x + out_proj(y) (+ res, a U-Net skip)

Kernels 1 and 3 run one program per (tile of rows, block of channels), kernel 4 one per (row
tile, block of output columns) (tile sizes: ``TILES_BATCHED``), so thousands of streams fill the GPU.
The splits sit at the two reductions over all d_inner channels (x_proj and out_proj). Matmul
tiles use ``tl.dot`` with precision :func:`default_precision` ("tf32" on a GPU: one TF32 product
per tile, on tensor cores; "tf32x3", three, is about float32's accuracy).

For fewer than 16 rows (one stream) every launch is latency-bound, so kernel 2 is folded into
kernel 3 (each of its programs repeats the small x_proj) and products are exact float32 broadcast
products. (One program doing kernels 2-4 for a stream was tried: 1.0× at width 64 and 0.3-0.7×
at widths 128-256, because it walks the channels serially.) Both paths share the state-update
helpers :func:`_ssm_loads` and :func:`_ssm_channels`, built on the scan kernels' ``softplus`` and ``exp_dtA`` and the
step kernel's ``state_update`` and ``readout`` (so every SSM update in the package is the same
code). u, z and y pass between launches through (B, d_inner) float32 buffers.

With ``AUDIOMAMBA_PDL=1`` on sm_90+ every launch uses programmatic dependent launch: each kernel
starts launching while its predecessor finishes and waits for it (``pdl_wait``) before touching
memory, which hides the gap between the latency-bound launches of one stream (built 2026-12-03; not
yet timed: ``audiomamba bench generate --cases sc09,stream --pdl``).

Tried for one stream and removed (records in BENCHMARKS.md): the out_proj as the tail of the state-update launch
(two launches per block step; 0.78x, 0.96x with PDL, H200 2026-12-03) and the kernels with every tile in one layout
(fewer CTA barriers; 1.00x / 0.93x / 1.02x for the in_proj + conv / state update / out_proj, H100 2026-12-05).

Every launch is latency-bound at small batches, so each kernel issues the loads that nothing it computes depends on
before it needs the first of them (2026-12-03; about 1.13x for one H200 stream against an earlier run): kernel 1 loads the conv window's taps with x
(and, with H in one chunk, x only once, its LayerNorm and in_proj weights before the wait for the previous kernel);
kernel 3 loads Δ's weights, u, z, A, h and D before its x_proj. The arithmetic is unchanged.

Where the batch is a multiple of a kernel's rows per program and the widths of its tiles (every sc09 and youtubemix
preset: H, E, N powers of two), the kernel is compiled with ``EVEN``: its masks are constants the compiler folds away
(sm_90 SASS, ``kernels.compile_check`` with the sizes marked as multiples of 16, as the launcher marks them at these
widths: in_proj + conv 1664 -> 1408 instructions and 255 -> 235 registers, x_proj 1376 -> 1344, state update 1312 ->
1256, out_proj 672 -> 632; unmarked, on 2026-12-04, 11-31 % fewer; built 2026-12-04, not yet timed on a GPU:
``python -m audiomamba.bench.step_tiles --var AUDIOMAMBA_STEP_EVEN --configs 0`` times it against the masks).
The rank R of Δ stays masked (it is padded to 16 for tl.dot).

LTI blocks (``mamba-s4``, ``mamba-s4-real``) have no x_proj: kernel 3 is :func:`_ssm_lti_kernel`,
so they take three launches at any batch size.

The kernels take the SSM's discretisation inputs (A, and for LTI Δ, B, C) as the layer computes
them for :func:`selective_scan` (its ``discretization()``); the parameterisation (A = -exp(A_log),
Δ = exp(log_dt), zero-order hold) is written once, in the layer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from torch import Tensor

from .backend import interpreting, pdl_enabled
from .checks import REAL_STATE_DTYPES
from .errors import KernelError
from .launch import cdiv, direct_launches, env_key, launch_named, next_pow2, recording, replay
from .triton_helpers import (
    below,
    exp_dtA,
    ln_apply,
    ln_regs,
    ln_stats,
    mm,
    pdl_wait,
    readout,
    row_tile,
    softplus,
    state_update,
)

#: launch tiles: rows of the batch per program (16+ rows: tl.dot tiles), d_inner channels per
#: program of the in_proj/conv and state-update kernels, H columns per LayerNorm/in_proj chunk,
#: channels per reduction step of x_proj/out_proj, out_proj columns per program (and per-kernel rows and warps,
#: :data:`TILE_KERNEL_KEYS`). The batched values: the fastest spill-free ones on sm_90 (H100 sweeps), then, from
#: ``python -m audiomamba.bench.step_tiles`` (one H200, 2026-12-04 18:33 UTC, sc09-small mamba-s6 at batch 2048,
#: whole-model step), in_e 64, k 64 and 2 warps for the state update: 0.975 against 1.049 ms per step (1.08x; 28-704
#: B of spills in the sm_90 SASS, which cost less than the programs they save). Then the x_proj's three outputs in three
#: 2-warp programs per row tile (``x_split=1,x_warps=2``; one H100, 2026-12-05 09:12 UTC, ``step_tiles``, same process:
#: 0.873 against 0.908 ms per step, 1.04x, logits identical; ``x_split=0`` keeps one program per row tile).
TILES_BATCHED = {"rows": 16, "in_e": 64, "in_h": 32, "ssm_e": 16, "k": 64, "out_h": 32, "out_k": 64, "ssm_warps": 2,
                 "x_split": 1, "x_warps": 2}
#: batched tiles by the block's width H where they differ from :data:`TILES_BATCHED`: sc09-large's widths (96, 192,
#: 384) take 64 out_proj columns and 32 x_proj rows per program (one H100, 2026-12-06 17:35-17:39 UTC, ``audiomamba
#: bench generate --matrix --presets sc09-large --blocks mamba-s6 --batches 2048``, three runs each way interleaved:
#: 29.91 s median by the wall against 30.13 s, 1.007x; 1.01x per steady step at 10:53 UTC). Unmeasured widths keep
#: TILES_BATCHED (sc09-small's 64, 128, 256: the same tiles 1.00x there, 0.677 against 0.680 ms per step, 17:44 UTC,
#: ``python -m audiomamba.bench.step_tiles --configs 'out_h=64,x_rows=32' --rounds 3``).
TILES_BY_WIDTH: dict[int, dict[str, int]] = {w: {"out_h": 64, "x_rows": 32} for w in (96, 192, 384)}
TILES_STREAM = {"in_e": 32, "in_h": 128, "ssm_e": 32, "k": 256, "out_h": 32, "out_k": 256}
NUM_WARPS = 4
#: keys that tune one batched kernel's launch apart from the others: rows per program (at least 16, for tl.dot) and
#: warps of the in_proj + conv (``in_``), x_proj (``x_``) and out_proj (``out_``) kernels, warps of the state update
#: (``ssm_warps``; its rows are ``rows``), and software-pipelining stages of each kernel's loops (``*_stages``, 1-4:
#: Triton's ``num_stages``; more stages prefetch a loop's next loads through shared memory). Unset: ``rows``,
#: :data:`NUM_WARPS` and Triton's default stages. ``x_split=1``: the x_proj's three outputs (Δ_low, B_t, C_t) in
#: three programs per row tile (at batch 2048 its 128 programs leave one 4-warp program per SM: 6 % achieved
#: occupancy on an H200, 2026-12-04). ``*_maxnreg`` (64, 128 or 256): a register cap per thread (Triton's
#: ``maxnreg``), for more programs per SM (sm_90: the in_proj + conv in one chunk of 64 columns at 8 warps takes 132
#: registers, one program per SM; capped at 128, two, with 8 B of spills).
TILE_KERNEL_KEYS = ("in_rows", "in_warps", "x_rows", "x_warps", "ssm_warps", "out_rows", "out_warps",
                    "in_stages", "x_stages", "ssm_stages", "out_stages", "x_split",
                    "in_maxnreg", "x_maxnreg", "ssm_maxnreg", "out_maxnreg")

_FLAGS = ("x_split",)  # tile keys that are 0 or 1
_tiles_cache: dict[tuple, dict[str, int]] = {}


def batched_tiles(width: int | None = None) -> dict[str, int]:
    """:data:`TILES_BATCHED`, then a block of ``width`` columns' own (:data:`TILES_BY_WIDTH`), then the overrides in
    ``AUDIOMAMBA_STEP_TILES`` ("KEY=VALUE,...": any key of TILES_BATCHED or :data:`TILE_KERNEL_KEYS`, powers of two;
    for sweeping the tiles on a new GPU: ``python -m audiomamba.bench.step_tiles``). A KernelError names a bad entry."""
    text = os.environ.get("AUDIOMAMBA_STEP_TILES", "").strip()
    own = TILES_BY_WIDTH.get(width, {})  # None (no width given): none
    key = (text, tuple(TILES_BATCHED.items()), tuple(own.items()))
    tiles = _tiles_cache.get(key)
    if tiles is None:
        tiles = dict(TILES_BATCHED, **own)
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, _, value = (x.strip() for x in part.partition("="))
            n = int(value) if value.isdigit() else 0
            rows = name == "rows" or name.endswith("_rows")  # tl.dot's least M
            bad_n = (n > 4 if name.endswith("_stages") else n & (n - 1) or (rows and n < 16)
                     or (name in _FLAGS and n > 1) or (name.endswith("_maxnreg") and not 64 <= n <= 256))
            if ((name not in TILES_BATCHED and name not in TILE_KERNEL_KEYS) or not value.isdigit()
                    or (n < 1 and name not in _FLAGS) or bad_n):
                raise KernelError(
                    f"bad entry {part!r} in AUDIOMAMBA_STEP_TILES={text!r}: give KEY=VALUE with a power of two (rows "
                    f"at least 16; stages 1-4; x_split 0 or 1; maxnreg 64-256), KEY one of "
                    f"{', '.join(dict.fromkeys([*TILES_BATCHED, *TILE_KERNEL_KEYS]))}"
                )
            tiles[name] = n
        _tiles_cache[key] = tiles
    return tiles
#: load the in_proj / out_proj weights before waiting for the previous kernel (when they fit in one
#: chunk): None = only with PDL (where they then load while the previous kernel finishes); True/False force it
PRELOAD_WEIGHTS: bool | None = None
#: tl.dot precisions of the batched step tiles: exact float32 FMA, three or one TF32 products, or
#: bfloat16 operands with float32 accumulation (the models' training precision under autocast)
STEP_PRECISIONS = ("ieee", "tf32x3", "tf32", "bf16")


def default_precision() -> str:
    """tl.dot input precision: "tf32" (one TF32 product per tile, on tensor cores) on a GPU, "ieee" in the CPU
    interpreter; ``AUDIOMAMBA_STEP_PRECISION`` overrides ("tf32x3": three TF32 products, about float32 accuracy).

    tf32 since 2026-12-06: at batch 2048 (sc09-small ``mamba-s6``, fp16 states) 1.06x per step against tf32x3 (0.746
    against 0.787 ms, one H100, 2026-12-06 01:25 UTC, ``bench.step_tiles --var AUDIOMAMBA_STEP_PRECISION``), and
    within the likelihood check of ``evaluate overfit`` (trained weights, teacher-forced through step mode with
    float16 states: 0.025 nats at most per token off the parallel float32 forward, limit 0.05; the same BPB; one
    H100, 2026-12-06 03:59 UTC). Only the batched tiles (16+ rows) use tl.dot; one stream's products are exact."""
    env = os.environ.get("AUDIOMAMBA_STEP_PRECISION", "").strip()
    if env:
        if env not in STEP_PRECISIONS:
            raise KernelError(f"AUDIOMAMBA_STEP_PRECISION={env!r} in the environment: use {', '.join(STEP_PRECISIONS)}")
        # Triton 3.6's interpreter computes bf16 tl.dot wrongly: there, the same bf16-rounded operands in float32
        return "bf16-rounded" if env == "bf16" and interpreting() else env
    return "ieee" if interpreting() else "tf32"


@triton.jit
def _in_proj_weights(win_ptr, offs_e, m_e, offs_h, H, E, EVEN: tl.constexpr):
    """The in_proj rows of u and z for channels offs_e over columns offs_h: two (BLOCK_H, BLOCK_E) float32 tiles."""
    m_he = below(offs_h, H, EVEN)[:, None] & m_e[None, :]
    w_u = tl.load(win_ptr + offs_e[None, :] * H + offs_h[:, None], mask=m_he, other=0.0).to(tl.float32)
    w_z = tl.load(win_ptr + (E + offs_e[None, :]) * H + offs_h[:, None], mask=m_he, other=0.0).to(tl.float32)
    return w_u, w_z


@triton.jit
def conv_window(conv_ptr, rows, offs_e, E, K: tl.constexpr):
    """Pointers to the first of the K-1 past inputs of the conv window (batch, E, K-1) at ``rows`` x ``offs_e``."""
    return conv_ptr + rows[:, None] * (E * (K - 1)) + offs_e[None, :] * (K - 1)


@triton.jit
def lti_state_offsets(rows, offs_e, E, N, BLOCK_N: tl.constexpr):
    """Offsets of an LTI state (batch, E, N) at ``rows`` x ``offs_e`` x every state index: (BLOCK_B, BLOCK_E,
    BLOCK_N) (in (re, im) pairs: twice these)."""
    return (rows[:, None, None] * E + offs_e[None, :, None]) * N + tl.arange(0, BLOCK_N)[None, None, :]


@triton.jit
def _conv_taps(conv_ptr, cw_ptr, rows, offs_e, m_e, m_be, E, K: tl.constexpr, BLOCK_B: tl.constexpr,
               BLOCK_E: tl.constexpr):
    """The causal conv's window (batch, E, K-1) of past inputs at ``rows`` x ``offs_e``: its pointers and the sum of
    its K-1 taps times their weights (every tap loaded before anything is stored)."""
    win = conv_window(conv_ptr, rows, offs_e, E, K)
    taps = tl.zeros((BLOCK_B, BLOCK_E), dtype=tl.float32)
    for k in tl.static_range(K - 1):
        w_k = tl.load(cw_ptr + offs_e * K + k, mask=m_e, other=0.0).to(tl.float32)
        taps += tl.load(win + k, mask=m_be, other=0.0).to(tl.float32) * w_k[None, :]
    return win, taps


@triton.jit
def _conv_step(win, taps, u, w_last, bias, m_be, conv_ptr, K: tl.constexpr):
    """SiLU(causal depthwise conv step) of the new input u, from :func:`_conv_taps`; the window is shifted in place
    (the taps reload from L1) and u becomes its newest entry."""
    acc = u * w_last[None, :] + bias[None, :] + taps
    _conv_shift(win, u, m_be, conv_ptr, K)
    return acc * tl.sigmoid(acc)


@triton.jit
def _conv_shift(win, u, m_be, conv_ptr, K: tl.constexpr):
    """The conv window at ``win`` (:func:`_conv_taps`) shifted by one step in place, u its newest entry."""
    for k in tl.static_range(1, K - 1):
        tl.store(win + (k - 1), tl.load(win + k, mask=m_be, other=0.0), mask=m_be)
    tl.store(win + (K - 2), u.to(conv_ptr.dtype.element_ty), mask=m_be)


@triton.jit
def _in_conv_kernel(
    x_ptr, nw_ptr, nb_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr, u_ptr, z_ptr,
    batch, H, E, eps,
    K: tl.constexpr, USE_DOT: tl.constexpr, PREC: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_E: tl.constexpr, PDL: tl.constexpr = False,
    PRELOAD: tl.constexpr = False, ONE_CHUNK: tl.constexpr = False, EVEN: tl.constexpr = False,
):
    """LayerNorm, in_proj (u, z) and the causal conv step of one (row tile, channel block). ``EVEN``: batch, E and H
    are multiples of their tiles (no masks).

    The kernel is latency-bound at small batches, so every load that nothing computed here depends on is issued
    before the first result is needed: the conv window's taps right after the wait for the previous kernel (they
    overlap the LayerNorm's loads), and with ``ONE_CHUNK`` (H <= BLOCK_H: one stream, or batched tiles with ``in_h`` >= H)
    x once, with the LayerNorm and in_proj weights loaded before the wait (one round trip to memory instead of one per
    pass: the chunked path reads x three times, in dependent loops). Batched at sc09's 16 kHz widths (H 64, 64
    channels, 16 rows; sm_90 ``compile_check``, 2026-12-05): 4 warps 255 registers and 1328 instructions, 8 warps 132
    and 784, against the default chunks of 32 columns' 235 and 1408 (and at 64 columns, chunked: 100 B of spills)."""
    rows, m_b = row_tile(batch, BLOCK_B, EVEN)
    offs_e = tl.program_id(1) * BLOCK_E + tl.arange(0, BLOCK_E)
    m_e = below(offs_e, E, EVEN)
    m_be = m_b[:, None] & m_e[None, :]
    if PRELOAD or ONE_CHUNK:  # H in one chunk: the weights do not depend on the previous kernel, so load them first
        w_u1, w_z1 = _in_proj_weights(win_ptr, offs_e, m_e, tl.arange(0, BLOCK_H), H, E, EVEN)
    w_last = tl.load(cw_ptr + offs_e * K + (K - 1), mask=m_e, other=0.0).to(tl.float32)
    bias = tl.load(cb_ptr + offs_e, mask=m_e, other=0.0).to(tl.float32)
    if ONE_CHUNK:
        offs_h1 = tl.arange(0, BLOCK_H)
        m_h1 = below(offs_h1, H, EVEN)
        nw = tl.load(nw_ptr + offs_h1, mask=m_h1, other=0.0).to(tl.float32)
        nb = tl.load(nb_ptr + offs_h1, mask=m_h1, other=0.0).to(tl.float32)
    pdl_wait(PDL)

    if ONE_CHUNK:
        m_bh = m_b[:, None] & m_h1[None, :]
        x = tl.load(x_ptr + rows[:, None] * H + offs_h1[None, :], mask=m_bh, other=0.0).to(tl.float32)
    win, taps = _conv_taps(conv_ptr, cw_ptr, rows, offs_e, m_e, m_be, E, K, BLOCK_B, BLOCK_E)

    # in_proj of this block of channels: u and z (BLOCK_B, BLOCK_E)
    if ONE_CHUNK:  # the LayerNorm of ln_stats + ln_apply, from the x already loaded
        xn = ln_regs(x, m_bh, nw, nb, H, eps)
        u = mm(xn, w_u1, USE_DOT, PREC)
        z = mm(xn, w_z1, USE_DOT, PREC)
    else:
        mean, rstd = ln_stats(x_ptr, rows, m_b, H, eps, BLOCK_B, BLOCK_H, EVEN)
        u = tl.zeros((BLOCK_B, BLOCK_E), dtype=tl.float32)
        z = tl.zeros((BLOCK_B, BLOCK_E), dtype=tl.float32)
        for h0 in range(0, H, BLOCK_H):
            offs_h = h0 + tl.arange(0, BLOCK_H)
            xn = ln_apply(x_ptr, nw_ptr, nb_ptr, rows, m_b, offs_h, H, mean, rstd, EVEN)
            if PRELOAD:
                w_u = w_u1
                w_z = w_z1
            else:
                w_u, w_z = _in_proj_weights(win_ptr, offs_e, m_e, offs_h, H, E, EVEN)
            u += mm(xn, w_u, USE_DOT, PREC)
            z += mm(xn, w_z, USE_DOT, PREC)

    u = _conv_step(win, taps, u, w_last, bias, m_be, conv_ptr, K)
    tl.store(u_ptr + rows[:, None] * E + offs_e[None, :], u, mask=m_be)
    tl.store(z_ptr + rows[:, None] * E + offs_e[None, :], z, mask=m_be)


@triton.jit
def _xproj(u_ptr, wx_ptr, rows, m_b, E, N, R, USE_DOT: tl.constexpr, PREC: tl.constexpr, BLOCK_B: tl.constexpr,
           BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr, EVEN: tl.constexpr):
    """x_proj of u (rows, E) -> Δ_low (BLOCK_B, BLOCK_R), B_t and C_t (BLOCK_B, BLOCK_N); 0 where padded."""
    dt_low, Bt, Ct = _xproj_zeros(BLOCK_B, BLOCK_N, BLOCK_R)
    for k0 in range(0, E, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        m_k = below(offs_k, E, EVEN)
        uk = tl.load(u_ptr + rows[:, None] * E + offs_k[None, :], mask=m_b[:, None] & m_k[None, :], other=0.0)
        d, b, c = _xproj_chunk(uk, wx_ptr, offs_k, m_k, E, N, R, USE_DOT, PREC, BLOCK_N, BLOCK_R, EVEN)
        dt_low += d
        Bt += b
        Ct += c
    return dt_low, Bt, Ct


@triton.jit
def _xproj_zeros(BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr):
    """The x_proj's three accumulators: Δ_low (BLOCK_B, BLOCK_R), B_t and C_t (BLOCK_B, BLOCK_N), float32 zeros."""
    return (tl.zeros((BLOCK_B, BLOCK_R), dtype=tl.float32), tl.zeros((BLOCK_B, BLOCK_N), dtype=tl.float32),
            tl.zeros((BLOCK_B, BLOCK_N), dtype=tl.float32))


@triton.jit
def _xproj_chunk(uk, wx_ptr, offs_k, m_k, E, N, R, USE_DOT: tl.constexpr, PREC: tl.constexpr, BLOCK_N: tl.constexpr,
                 BLOCK_R: tl.constexpr, EVEN: tl.constexpr):
    """The x_proj's sums over channels ``offs_k`` of ``uk`` (rows, BLOCK_K): (Δ_low (rows, BLOCK_R), B_t and C_t
    (rows, BLOCK_N)); 0 where padded."""
    offs_n = tl.arange(0, BLOCK_N)
    offs_r = tl.arange(0, BLOCK_R)
    m_kr = m_k[:, None] & (offs_r < R)[None, :]
    m_kn = m_k[:, None] & below(offs_n, N, EVEN)[None, :]
    w_r = tl.load(wx_ptr + offs_r[None, :] * E + offs_k[:, None], mask=m_kr, other=0.0).to(tl.float32)
    w_b = tl.load(wx_ptr + (R + offs_n[None, :]) * E + offs_k[:, None], mask=m_kn, other=0.0).to(tl.float32)
    w_c = tl.load(wx_ptr + (R + N + offs_n[None, :]) * E + offs_k[:, None], mask=m_kn, other=0.0).to(tl.float32)
    return mm(uk, w_r, USE_DOT, PREC), mm(uk, w_b, USE_DOT, PREC), mm(uk, w_c, USE_DOT, PREC)


@triton.jit
def _xproj_part(u_ptr, wx_ptr, dbc_ptr, rows, m_b, E, N, R, USE_DOT: tl.constexpr, PREC: tl.constexpr,
                BLOCK_B: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_W: tl.constexpr, EVEN: tl.constexpr):
    """One of the x_proj's three outputs for ``rows``: Δ_low, B_t or C_t by ``tl.program_id(1)`` (0, 1, 2), whose
    weight rows start at 0, R and R + N (one accumulator and one weight tile per program, ``x_split``)."""
    part = tl.program_id(1)
    row0 = tl.where(part == 0, 0, R + (part - 1) * N)
    width = tl.where(part == 0, R, N)
    offs_w = tl.arange(0, BLOCK_W)
    m_w = offs_w < width
    acc = tl.zeros((BLOCK_B, BLOCK_W), dtype=tl.float32)
    for k0 in range(0, E, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        m_k = below(offs_k, E, EVEN)
        uk = tl.load(u_ptr + rows[:, None] * E + offs_k[None, :], mask=m_b[:, None] & m_k[None, :], other=0.0)
        w = tl.load(wx_ptr + (row0 + offs_w[None, :]) * E + offs_k[:, None], mask=m_k[:, None] & m_w[None, :],
                    other=0.0).to(tl.float32)
        acc += mm(uk, w, USE_DOT, PREC)
    tl.store(dbc_ptr + rows[:, None] * (R + 2 * N) + row0 + offs_w[None, :], acc, mask=m_b[:, None] & m_w[None, :])


@triton.jit
def _xproj_kernel(
    u_ptr, wx_ptr, dbc_ptr, batch, E, N, R,
    USE_DOT: tl.constexpr, PREC: tl.constexpr, BLOCK_B: tl.constexpr,
    BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr, PDL: tl.constexpr = False,
    EVEN: tl.constexpr = False, SPLIT: tl.constexpr = False,
):
    """x_proj of a row tile: (Δ_low, B_t, C_t) rows of ``dbc``; with ``SPLIT`` one of the three per program (grid
    axis 1 of size 3: three times the programs, each with a third of the work and registers)."""
    pdl_wait(PDL)
    rows, m_b = row_tile(batch, BLOCK_B, EVEN)
    if SPLIT:
        BLOCK_W: tl.constexpr = BLOCK_N if BLOCK_N > BLOCK_R else BLOCK_R
        _xproj_part(u_ptr, wx_ptr, dbc_ptr, rows, m_b, E, N, R, USE_DOT, PREC, BLOCK_B, BLOCK_K, BLOCK_W, EVEN)
        return
    dt_low, Bt, Ct = _xproj(u_ptr, wx_ptr, rows, m_b, E, N, R, USE_DOT, PREC, BLOCK_B, BLOCK_K, BLOCK_N, BLOCK_R,
                            EVEN)
    offs_n = tl.arange(0, BLOCK_N)
    m_n = below(offs_n, N, EVEN)
    offs_r = tl.arange(0, BLOCK_R)
    dbc = dbc_ptr + rows[:, None] * (R + 2 * N)
    tl.store(dbc + offs_r[None, :], dt_low, mask=m_b[:, None] & (offs_r < R)[None, :])
    tl.store(dbc + R + offs_n[None, :], Bt, mask=m_b[:, None] & m_n[None, :])
    tl.store(dbc + R + N + offs_n[None, :], Ct, mask=m_b[:, None] & m_n[None, :])


@triton.jit
def _ssm_loads(u_ptr, z_ptr, wdt_ptr, dtb_ptr, a_ptr, D_ptr, h_ptr, rows, m_b, offs_e, E, N, R,
               BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr, EVEN: tl.constexpr):
    """Everything the state update of channels ``offs_e`` reads: issued together, before the x_proj (one round
    trip to memory, not one after it). Returns (w_dt, Δ bias, u, z, A, h and its pointers, D)."""
    m_be = m_b[:, None] & below(offs_e, E, EVEN)[None, :]
    w_dt, dtb, A, h, hp, D = _ssm_params(wdt_ptr, dtb_ptr, a_ptr, D_ptr, h_ptr, rows, m_b, offs_e, E, N, R, BLOCK_N,
                                         BLOCK_R, EVEN)
    u = tl.load(u_ptr + rows[:, None] * E + offs_e[None, :], mask=m_be, other=0.0)
    z = tl.load(z_ptr + rows[:, None] * E + offs_e[None, :], mask=m_be, other=0.0)
    return w_dt, dtb, u, z, A, h, hp, D


@triton.jit
def _ssm_params(wdt_ptr, dtb_ptr, a_ptr, D_ptr, h_ptr, rows, m_b, offs_e, E, N, R, BLOCK_N: tl.constexpr,
                BLOCK_R: tl.constexpr, EVEN: tl.constexpr):
    """The selective state update's weights and state for channels ``offs_e``: (w_dt, Δ bias, A, h and its
    pointers, D)."""
    m_e = below(offs_e, E, EVEN)
    m_be = m_b[:, None] & m_e[None, :]
    offs_n = tl.arange(0, BLOCK_N)
    m_n = below(offs_n, N, EVEN)
    offs_r = tl.arange(0, BLOCK_R)
    w_dt = tl.load(wdt_ptr + offs_e[None, :] * R + offs_r[:, None], mask=(offs_r < R)[:, None] & m_e[None, :],
                   other=0.0)
    dtb = tl.load(dtb_ptr + offs_e, mask=m_e, other=0.0).to(tl.float32)
    A = tl.load(a_ptr + offs_e[:, None] * N + offs_n[None, :], mask=m_e[:, None] & m_n[None, :], other=0.0)
    hp = h_ptr + rows[:, None, None] * (E * N) + offs_e[None, :, None] * N + offs_n[None, None, :]
    h = tl.load(hp, mask=m_be[:, :, None] & m_n[None, None, :], other=0.0).to(tl.float32)  # float32 or bf16 states
    D = tl.load(D_ptr + offs_e, mask=m_e, other=0.0).to(tl.float32)
    return w_dt, dtb, A.to(tl.float32), h, hp, D


@triton.jit
def _ssm_math(m_b, offs_e, E, dt_low, Bt, Ct, w_dt, dtb, u, z, A, h, D, USE_DOT: tl.constexpr,
              PREC: tl.constexpr, EVEN: tl.constexpr):
    """Δ, the new state h (BLOCK_B, BLOCK_E, BLOCK_N) and the gated output y (BLOCK_B, BLOCK_E) of channels
    ``offs_e``, from :func:`_ssm_loads`: (y, h), nothing stored."""
    m_be = m_b[:, None] & below(offs_e, E, EVEN)[None, :]
    dt = mm(dt_low, w_dt.to(tl.float32), USE_DOT, PREC)
    dt = softplus(dt + dtb[None, :])
    a, _ = exp_dtA(dt[:, :, None], A[None, :, :], A, False)
    h, _ = state_update(h, h, a, a, (dt * u)[:, :, None], Bt[:, None, :], Bt[:, None, :], False)
    y = readout(h, h, Ct[:, None, :], Ct[:, None, :], 2, False)
    return _skip_gate(y, u, z, D, m_be), h


@triton.jit
def _ssm_store(hp, h, m_b, offs_e, E, N, BLOCK_N: tl.constexpr, EVEN: tl.constexpr):
    """The new state h (:func:`_ssm_math`) to ``hp`` (:func:`_ssm_loads`' pointers)."""
    m_be = m_b[:, None] & below(offs_e, E, EVEN)[None, :]
    tl.store(hp, h, mask=m_be[:, :, None] & below(tl.arange(0, BLOCK_N), N, EVEN)[None, None, :])


@triton.jit
def _ssm_channels(m_b, offs_e, E, N, dt_low, Bt, Ct, w_dt, dtb, u, z, A, h, hp, D,
                  USE_DOT: tl.constexpr, PREC: tl.constexpr, BLOCK_N: tl.constexpr, EVEN: tl.constexpr):
    """Δ, state update (h in place at ``hp``) and gated output y (BLOCK_B, BLOCK_E) of channels ``offs_e``,
    from :func:`_ssm_loads`."""
    y, h = _ssm_math(m_b, offs_e, E, dt_low, Bt, Ct, w_dt, dtb, u, z, A, h, D, USE_DOT, PREC, EVEN)
    _ssm_store(hp, h, m_b, offs_e, E, N, BLOCK_N, EVEN)
    return y


@triton.jit
def _skip_gate(y, u, z, D, m_be):
    """(y + D u) · SiLU(z), D the channels' (BLOCK_E,) float32 skip weights; 0 where m_be masks rows or channels."""
    y += D[None, :] * u
    return tl.where(m_be, y * z * tl.sigmoid(z), 0.0)


@triton.jit
def _residual_store(acc, x_ptr, res_ptr, out_ptr, rows, m_b, offs_h, H, HAS_RES: tl.constexpr,
                    EVEN: tl.constexpr = False):
    """out = acc + x (+ res) for rows x columns ``offs_h`` of (B, H) tensors."""
    m_bh = m_b[:, None] & below(offs_h, H, EVEN)[None, :]
    acc += tl.load(x_ptr + rows[:, None] * H + offs_h[None, :], mask=m_bh, other=0.0).to(tl.float32)
    if HAS_RES:
        acc += tl.load(res_ptr + rows[:, None] * H + offs_h[None, :], mask=m_bh, other=0.0).to(tl.float32)
    tl.store(out_ptr + rows[:, None] * H + offs_h[None, :], acc.to(out_ptr.dtype.element_ty), mask=m_bh)


@triton.jit
def _out_proj_acc(y_ptr, wout_ptr, rows, m_b, offs_h, m_h, E, w1, PRELOAD: tl.constexpr, USE_DOT: tl.constexpr,
                  PREC: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
                  EVEN: tl.constexpr = False):
    """out_proj(y) of rows x output columns ``offs_h``: (BLOCK_B, BLOCK_H) float32, summed over E in BLOCK_K
    chunks (``w1``: the weights, loaded already, when PRELOAD and E is one chunk). y is read from L2 (``.cg``): the
    state-update launch before wrote it."""
    acc = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)
    for k0 in range(0, E, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        m_by = m_b[:, None] & below(offs_k, E, EVEN)[None, :]
        y = tl.load(y_ptr + rows[:, None] * E + offs_k[None, :], mask=m_by, other=0.0, cache_modifier=".cg")
        if PRELOAD:
            w = w1
        else:
            w = _out_proj_weights(wout_ptr, offs_h, m_h, offs_k, E, EVEN)
        acc += mm(y, w, USE_DOT, PREC)
    return acc


@triton.jit
def _ssm_kernel(
    u_ptr, z_ptr, wx_ptr, dbc_ptr, wdt_ptr, dtb_ptr, a_ptr, D_ptr, h_ptr, y_ptr,
    batch, E, N, R,
    XPROJ_INLINE: tl.constexpr, USE_DOT: tl.constexpr, PREC: tl.constexpr, BLOCK_B: tl.constexpr,
    BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
    PDL: tl.constexpr = False, EVEN: tl.constexpr = False,
):
    pdl_wait(PDL)
    rows, m_b = row_tile(batch, BLOCK_B, EVEN)
    offs_e = tl.program_id(1) * BLOCK_E + tl.arange(0, BLOCK_E)
    w_dt, dtb, u, z, A, h, hp, D = _ssm_loads(u_ptr, z_ptr, wdt_ptr, dtb_ptr, a_ptr, D_ptr, h_ptr, rows, m_b, offs_e,
                                          E, N, R, BLOCK_N, BLOCK_R, EVEN)
    if XPROJ_INLINE:  # few rows: every program of a row tile repeats the small x_proj (saves a launch)
        dt_low, Bt, Ct = _xproj(u_ptr, wx_ptr, rows, m_b, E, N, R, USE_DOT, PREC, BLOCK_B, BLOCK_K, BLOCK_N, BLOCK_R,
                                EVEN)
    else:  # rows of (Δ_low (R), B_t (N), C_t (N)) from _xproj_kernel
        offs_n = tl.arange(0, BLOCK_N)
        m_n = below(offs_n, N, EVEN)
        offs_r = tl.arange(0, BLOCK_R)
        dbc = dbc_ptr + rows[:, None] * (R + 2 * N)
        dt_low = tl.load(dbc + offs_r[None, :], mask=m_b[:, None] & (offs_r < R)[None, :], other=0.0)
        Bt = tl.load(dbc + R + offs_n[None, :], mask=m_b[:, None] & m_n[None, :], other=0.0)
        Ct = tl.load(dbc + R + N + offs_n[None, :], mask=m_b[:, None] & m_n[None, :], other=0.0)
    y = _ssm_channels(m_b, offs_e, E, N, dt_low, Bt, Ct, w_dt, dtb, u, z, A, h, hp, D, USE_DOT, PREC, BLOCK_N, EVEN)
    tl.store(y_ptr + rows[:, None] * E + offs_e[None, :], y, mask=m_b[:, None] & below(offs_e, E, EVEN)[None, :])


@triton.jit
def _out_proj_weights(wout_ptr, offs_h, m_h, offs_k, E, EVEN: tl.constexpr = False):
    """out_proj columns offs_k of output rows offs_h: a (BLOCK_K, BLOCK_H) float32 tile."""
    m = below(offs_k, E, EVEN)[:, None] & m_h[None, :]
    return tl.load(wout_ptr + offs_h[None, :] * E + offs_k[:, None], mask=m, other=0.0).to(tl.float32)


@triton.jit
def _out_proj_kernel(
    y_ptr, wout_ptr, x_ptr, res_ptr, out_ptr,
    batch, H, E,
    HAS_RES: tl.constexpr, USE_DOT: tl.constexpr, PREC: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, PDL: tl.constexpr = False,
    PRELOAD: tl.constexpr = False, EVEN: tl.constexpr = False,
):
    rows, m_b = row_tile(batch, BLOCK_B, EVEN)
    offs_h = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    m_h = below(offs_h, H, EVEN)
    if PRELOAD:  # PDL and E in one chunk: load the weights before waiting for the previous kernel
        w1 = _out_proj_weights(wout_ptr, offs_h, m_h, tl.arange(0, BLOCK_K), E, EVEN)
    else:
        w1 = 0.0
    pdl_wait(PDL)
    acc = _out_proj_acc(y_ptr, wout_ptr, rows, m_b, offs_h, m_h, E, w1, PRELOAD, USE_DOT, PREC, BLOCK_B, BLOCK_H,
                        BLOCK_K, EVEN)
    _residual_store(acc, x_ptr, res_ptr, out_ptr, rows, m_b, offs_h, H, HAS_RES, EVEN)


@triton.jit
def _lti_channels(dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, h_ptr, rows, m_b, offs_e, E, N, u, z,
                  IS_COMPLEX: tl.constexpr, BLOCK_N: tl.constexpr, EVEN: tl.constexpr):
    """LTI state update (h in place) and gated output y (BLOCK_B, BLOCK_E) of channels ``offs_e`` from the layer's
    discretisation inputs (Δ (E,), A, B, C (E, N); the layer has applied any zero-order hold to B):
    h ← exp(ΔA) h + Δ B u; y = (C h + D u) SiLU(z). Complex A, B, C and h are (re, im) pairs in memory."""
    dt, a_re, a_im, B_re, B_im, C_re, C_im, h_re, h_im, h_off, D = _lti_params(
        dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, h_ptr, rows, m_b, offs_e, E, N, IS_COMPLEX, BLOCK_N, EVEN)
    return _lti_update(dt, a_re, a_im, B_re, B_im, C_re, C_im, h_re, h_im, h_off, D, u, z, h_ptr, m_b, offs_e, E, N,
                       IS_COMPLEX, BLOCK_N, EVEN)


@triton.jit
def _lti_params(dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, h_ptr, rows, m_b, offs_e, E, N, IS_COMPLEX: tl.constexpr,
                BLOCK_N: tl.constexpr, EVEN: tl.constexpr):
    """What :func:`_lti_channels` reads, loaded (and exp(ΔA) computed) before u is known: (Δ, exp(ΔA) re and im,
    B re and im, C re and im, h re and im, h's offsets, D)."""
    m_e = below(offs_e, E, EVEN)
    m_be = m_b[:, None] & m_e[None, :]
    offs_n = tl.arange(0, BLOCK_N)
    m_n = below(offs_n, N, EVEN)
    m_en = m_e[:, None] & m_n[None, :]
    en = offs_e[:, None] * N + offs_n[None, :]
    dt_e = tl.load(dt_ptr + offs_e, mask=m_e, other=0.0).to(tl.float32)  # (BLOCK_E,)
    if IS_COMPLEX:
        A_re = tl.load(A_ptr + 2 * en, mask=m_en, other=0.0).to(tl.float32)
        A_im = tl.load(A_ptr + 2 * en + 1, mask=m_en, other=0.0).to(tl.float32)
        B_re = tl.load(B_ptr + 2 * en, mask=m_en, other=0.0).to(tl.float32)
        B_im = tl.load(B_ptr + 2 * en + 1, mask=m_en, other=0.0).to(tl.float32)
        C_re = tl.load(C_ptr + 2 * en, mask=m_en, other=0.0).to(tl.float32)
        C_im = tl.load(C_ptr + 2 * en + 1, mask=m_en, other=0.0).to(tl.float32)
    else:
        A_re = tl.load(A_ptr + en, mask=m_en, other=0.0).to(tl.float32)
        B_re = tl.load(B_ptr + en, mask=m_en, other=0.0).to(tl.float32)
        C_re = tl.load(C_ptr + en, mask=m_en, other=0.0).to(tl.float32)
        A_im = tl.zeros_like(A_re)
        B_im = tl.zeros_like(A_re)
        C_im = tl.zeros_like(A_re)
    m_ben = m_be[:, :, None] & m_n[None, None, :]
    h_off = lti_state_offsets(rows, offs_e, E, N, BLOCK_N)
    if IS_COMPLEX:
        h_re = tl.load(h_ptr + 2 * h_off, mask=m_ben, other=0.0)
        h_im = tl.load(h_ptr + 2 * h_off + 1, mask=m_ben, other=0.0)
    else:
        h_re = tl.load(h_ptr + h_off, mask=m_ben, other=0.0).to(tl.float32)  # float32 or bf16 states
        h_im = h_re
    D = tl.load(D_ptr + offs_e, mask=m_e, other=0.0).to(tl.float32)
    a_re, a_im = exp_dtA(dt_e[:, None], A_re, A_im, IS_COMPLEX)  # (BLOCK_E, BLOCK_N)
    return dt_e, a_re, a_im, B_re, B_im, C_re, C_im, h_re, h_im, h_off, D


@triton.jit
def _lti_update(dt_e, a_re, a_im, B_re, B_im, C_re, C_im, h_re, h_im, h_off, D, u, z, h_ptr, m_b, offs_e, E, N,
                IS_COMPLEX: tl.constexpr, BLOCK_N: tl.constexpr, EVEN: tl.constexpr):
    """The state update (h in place) and gated output of :func:`_lti_channels` from what :func:`_lti_params`
    loaded."""
    y, h_re, h_im = _lti_math(dt_e, a_re, a_im, B_re, B_im, C_re, C_im, h_re, h_im, D, u, z, m_b, offs_e, E,
                              IS_COMPLEX, EVEN)
    _lti_store(h_ptr, h_off, h_re, h_im, m_b, offs_e, E, N, IS_COMPLEX, BLOCK_N, EVEN)
    return y


@triton.jit
def _lti_math(dt_e, a_re, a_im, B_re, B_im, C_re, C_im, h_re, h_im, D, u, z, m_b, offs_e, E,
              IS_COMPLEX: tl.constexpr, EVEN: tl.constexpr):
    """:func:`_lti_update` without the store: (y, h_re, h_im) (h_im: h_re where real)."""
    m_be = m_b[:, None] & below(offs_e, E, EVEN)[None, :]
    du = (dt_e[None, :] * u)[:, :, None]
    h_re, h_im = state_update(h_re, h_im, a_re[None], a_im[None], du, B_re[None], B_im[None], IS_COMPLEX)
    y = readout(h_re, h_im, C_re[None], C_im[None], 2, IS_COMPLEX)
    return _skip_gate(y, u, z, D, m_be), h_re, h_im


@triton.jit
def _lti_store(h_ptr, h_off, h_re, h_im, m_b, offs_e, E, N, IS_COMPLEX: tl.constexpr, BLOCK_N: tl.constexpr,
               EVEN: tl.constexpr):
    """The new state of :func:`_lti_math` to ``h_ptr`` at ``h_off`` (:func:`_lti_params`)."""
    m_be = m_b[:, None] & below(offs_e, E, EVEN)[None, :]
    m_ben = m_be[:, :, None] & below(tl.arange(0, BLOCK_N), N, EVEN)[None, None, :]
    if IS_COMPLEX:
        tl.store(h_ptr + 2 * h_off, h_re, mask=m_ben)
        tl.store(h_ptr + 2 * h_off + 1, h_im, mask=m_ben)
    else:
        tl.store(h_ptr + h_off, h_re, mask=m_ben)


@triton.jit
def _ssm_lti_kernel(
    u_ptr, z_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, h_ptr, y_ptr,
    batch, E, N,
    IS_COMPLEX: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_N: tl.constexpr,
    PDL: tl.constexpr = False, EVEN: tl.constexpr = False,
):
    """LTI state update of one (row tile, channel block): :func:`_lti_channels` on u and z from memory."""
    pdl_wait(PDL)
    rows, m_b = row_tile(batch, BLOCK_B, EVEN)
    offs_e = tl.program_id(1) * BLOCK_E + tl.arange(0, BLOCK_E)
    m_be = m_b[:, None] & below(offs_e, E, EVEN)[None, :]
    u = tl.load(u_ptr + rows[:, None] * E + offs_e[None, :], mask=m_be, other=0.0)
    z = tl.load(z_ptr + rows[:, None] * E + offs_e[None, :], mask=m_be, other=0.0)
    y = _lti_channels(dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, h_ptr, rows, m_b, offs_e, E, N, u, z, IS_COMPLEX, BLOCK_N,
                      EVEN)
    tl.store(y_ptr + rows[:, None] * E + offs_e[None, :], y, mask=m_be)


def _pad(n: int, least: int = 16) -> int:
    return max(least, next_pow2(n))


def _even(rows: int, batch: int, *sizes: tuple[int, int]) -> bool:
    """A launch's ``EVEN``: the batch is a multiple of ``rows`` per program and every (size, tile) of ``sizes`` a
    multiple of the tile, so the kernel needs no masks (sm_90: 2-17 % fewer instructions per kernel, from
    ``kernels.compile_check`` SASS counts). ``AUDIOMAMBA_STEP_EVEN=0`` keeps the masks (for timing the two)."""
    flag = os.environ.get("AUDIOMAMBA_STEP_EVEN", "1").strip()
    if flag not in ("0", "1", ""):
        raise KernelError(f"AUDIOMAMBA_STEP_EVEN={flag!r} in the environment: use 1 (no masks where the sizes allow, "
                          "the default) or 0 (always masks)")
    if flag == "0":
        return False
    return batch % rows == 0 and all(size % tile == 0 for size, tile in sizes)


def _check_state(op: str, name: str, t: Tensor, shape: tuple[int, ...], *dtypes: torch.dtype) -> None:
    if tuple(t.shape) != shape or t.dtype not in dtypes:
        want = " or ".join(str(d) for d in dtypes)
        raise ValueError(f"{op}: {name} must be {want} of shape {shape}, got {t.dtype} {tuple(t.shape)}")
    if not t.is_contiguous():
        raise ValueError(f"{op}: {name} must be contiguous (it is updated in place)")


@dataclass(frozen=True)
class _Launch:
    """Launch geometry shared by the kernels of one block step."""

    small: bool  # fewer than 16 rows: one row tile of next_pow2(batch) rows, broadcast products
    tiles: dict[str, int]
    rows: int  # rows per program
    n_rows: int  # row tiles
    common: dict[str, object]  # USE_DOT, PREC, BLOCK_B, num_warps, PDL and launch_pdl (AUDIOMAMBA_PDL=1)


def _kernel_launch(launch: _Launch, batch: int, kernel: str) -> tuple[int, dict[str, object]]:
    """(row tiles, launch keywords) of one batched kernel: ``launch.common`` with its own rows per program, warps
    and pipelining stages where the tiles name them (``{kernel}_rows``, ``{kernel}_warps``, ``{kernel}_stages``,
    ``{kernel}_maxnreg``; :func:`batched_tiles`); one stream: unchanged."""
    t = launch.tiles
    rows, warps = t.get(f"{kernel}_rows", launch.rows), t.get(f"{kernel}_warps", NUM_WARPS)
    stages = t.get(f"{kernel}_stages")
    cap = None if interpreting() else t.get(f"{kernel}_maxnreg")  # the interpreter has no register cap
    if launch.small or (rows == launch.rows and warps == launch.common["num_warps"] and stages is None and cap is None):
        return launch.n_rows, launch.common
    extra = ({} if stages is None else {"num_stages": stages}) | ({} if cap is None else {"maxnreg": cap})
    return cdiv(batch, rows), dict(launch.common, BLOCK_B=rows, num_warps=warps, **extra)


#: recorded launches of a block step, by everything its launches depend on (:func:`_plan_key`): a list of (compiled
#: kernel, grid, values with None where a tensor goes, (value index, slot index) of each tensor), or
#: :data:`_NO_PLAN` where the step cannot be replayed (a launch through Triton's own path, or a tensor that is
#: neither an argument nor scratch, e.g. a copy made by ``.contiguous()``)
_PLANS: dict[tuple, list | object] = {}
_NO_PLAN = object()


def _plan_key(op: str, precision: str | None, eps: float, inputs: tuple) -> tuple:
    """What a block step's launches depend on besides its tensors' addresses: the op, the precision and eps, the
    module's settings (PRELOAD_WEIGHTS, the tile tables' contents, and the helpers tests replace, held by the key so
    that no other object takes their identity), the settings in the environment (:func:`kernels.launch.env_key`), and
    each input's shape, dtype, contiguity and 16-byte alignment (None for an absent skip)."""
    return (op, precision, float(eps), PRELOAD_WEIGHTS, tuple(TILES_STREAM.items()), tuple(TILES_BATCHED.items()),
            tuple(TILES_BY_WIDTH.get(inputs[0].shape[1], {}).items()),
            _even, interpreting, env_key(),
            *[None if t is None else (t.shape, t.dtype, t.is_contiguous(), t.data_ptr() % 16 == 0) for t in inputs])


def _plans_apply(x: Tensor) -> bool:
    """Whether a block step on ``x`` records and replays its launches: a CUDA tensor, the compiled kernels'
    launchers allowed (:func:`kernels.launch.direct_launches`) and ``AUDIOMAMBA_STEP_REPLAY`` not ``0`` (on by
    default: the start-up at 2048 rows 0.597 -> 0.388 s for sc09-large, one H100 2026-12-06 13:52 UTC; ``0`` takes
    every launch through :func:`launch_named`)."""
    return x.is_cuda and os.environ.get("AUDIOMAMBA_STEP_REPLAY", "1").strip() != "0" and direct_launches()


def _scratch(x: Tensor, E: int, dbc: int) -> tuple:
    """A block step's scratch: u, z, y (B, E) float32 (one allocation), the output like x, and the x_proj's (B, dbc)
    outputs where ``dbc`` (else None)."""
    batch = x.shape[0]
    u, z, y = torch.empty((3, batch, E), device=x.device, dtype=torch.float32)
    out = torch.empty_like(x)
    return u, z, y, out, (torch.empty((batch, dbc), device=x.device, dtype=torch.float32) if dbc else None)


def _make_plan(launches: list, slots: tuple) -> list | object:
    """The replayable form of a block step's recorded launches (:data:`_PLANS`), each tensor found among ``slots``
    (the step's inputs, then its scratch) by identity."""
    plan = []
    for grid, values, compiled in launches:
        if values is None or compiled is None:
            return _NO_PLAN
        template, positions = list(values), []
        for i, v in enumerate(values):
            if isinstance(v, Tensor):
                j = next((k for k, t in enumerate(slots) if t is v), None)
                if j is None:
                    return _NO_PLAN
                template[i] = None
                positions.append((i, j))
        plan.append((compiled, grid, template, tuple(positions)))
    return plan


def _block_step(op: str, x: Tensor, res: Tensor | None, norm_weight: Tensor, norm_bias: Tensor, eps: float,
                in_proj: Tensor, conv_weight: Tensor, conv_bias: Tensor, conv_state: Tensor, out_proj: Tensor,
                precision: str | None, ssm: Callable[[Tensor, Tensor, Tensor, Tensor | None, _Launch], None],
                ssm_inputs: tuple, dbc: int = 0) -> Tensor:
    """in_proj + conv launch, ``ssm(u, z, y, dbc, launch)`` (the SSM launches: y from u, z; ``ssm_inputs``: every
    tensor they take besides the scratch), then the out_proj launch.

    On a GPU the launches of the first step with given shapes, dtypes and settings are recorded
    (:class:`kernels.launch.recording`), and later steps replay them with their own tensors through the compiled
    kernels' launchers (:func:`_plan_key`): the same launches without re-deriving tiles, flags and arguments, which
    made a block step's Python (the CUDA-graph capture and the steps outside the graphs are Python-bound) cost
    ~57 µs before its four launches on a 2-core CPU (launches stubbed, 2026-12-06)."""
    batch, H = x.shape
    E = in_proj.shape[0] // 2
    K = conv_weight.shape[-1]
    _check_state(op, "conv_state", conv_state, (batch, E, K - 1), conv_state.dtype)
    x = x.contiguous()
    inputs = (x, norm_weight, norm_bias, in_proj, conv_weight, conv_bias, conv_state, out_proj, res, *ssm_inputs)
    scratch = _scratch(x, E, dbc)
    key = None
    if _plans_apply(x):
        key = _plan_key(op, precision, eps, inputs)
        plan = _PLANS.get(key)
        if plan is not None and plan is not _NO_PLAN:
            slots = (*inputs, *scratch)
            device = x.get_device()
            for compiled, grid, template, positions in plan:
                values = template.copy()
                for i, j in positions:
                    values[i] = slots[j]
                replay(compiled, grid, device, values)
            return scratch[3]
    with recording() as launches:
        _block_launches(x, res, norm_weight, norm_bias, eps, in_proj, conv_weight, conv_bias, conv_state, out_proj,
                        precision, ssm, scratch)
    if key is not None:
        if len(_PLANS) > 4096:
            _PLANS.clear()
        _PLANS[key] = _make_plan(launches, (*inputs, *scratch))
    return scratch[3]


def _block_launches(x: Tensor, res: Tensor | None, norm_weight: Tensor, norm_bias: Tensor, eps: float,
                    in_proj: Tensor, conv_weight: Tensor, conv_bias: Tensor, conv_state: Tensor, out_proj: Tensor,
                    precision: str | None, ssm: Callable, scratch: tuple) -> None:
    """The launches of :func:`_block_step`, deriving every tile, flag and argument."""
    batch, H = x.shape
    E = in_proj.shape[0] // 2
    K = conv_weight.shape[-1]
    u, z, y, out, dbc = scratch
    small = batch < 16
    t = TILES_STREAM if small else batched_tiles(H)
    bb = next_pow2(batch) if small else t["rows"]
    pdl = pdl_enabled(x)
    launch = _Launch(small, t, bb, cdiv(batch, bb),
                     dict(USE_DOT=not small, PREC=precision or default_precision(), BLOCK_B=bb, num_warps=NUM_WARPS,
                          PDL=pdl, launch_pdl=pdl))
    block_h, block_k = min(_pad(H), t["in_h"]), min(_pad(E), t["out_k"])
    preload = pdl if PRELOAD_WEIGHTS is None else PRELOAD_WEIGHTS
    n_rows, common = _kernel_launch(launch, batch, "in")
    launch_named(_in_conv_kernel, (n_rows, cdiv(E, t["in_e"])),
        x, norm_weight, norm_bias, in_proj.contiguous(), conv_weight.contiguous(), conv_bias, conv_state, u, z,
        batch, H, E, float(eps),
        K=K, BLOCK_H=block_h, BLOCK_E=t["in_e"], PRELOAD=preload and H <= block_h, ONE_CHUNK=H <= block_h,
        EVEN=_even(common["BLOCK_B"], batch, (E, t["in_e"]), (H, block_h)), **common,
    )
    ssm(u, z, y, dbc, launch)
    n_rows, common = _kernel_launch(launch, batch, "out")
    launch_named(_out_proj_kernel, (n_rows, cdiv(H, t["out_h"])),
        y, out_proj.contiguous(), x, res.contiguous() if res is not None else x, out,
        batch, H, E,
        HAS_RES=res is not None, BLOCK_H=t["out_h"], BLOCK_K=block_k, PRELOAD=preload and E <= block_k,
        EVEN=_even(common["BLOCK_B"], batch, (H, t["out_h"]), (E, block_k)), **common,
    )


@torch.no_grad()
def mamba_s6_block_step_triton(
    x: Tensor,
    norm_weight: Tensor,
    norm_bias: Tensor,
    eps: float,
    in_proj: Tensor,
    conv_weight: Tensor,
    conv_bias: Tensor,
    conv_state: Tensor,
    x_proj: Tensor,
    dt_proj: Tensor,
    dt_bias: Tensor,
    A: Tensor,
    D: Tensor,
    h: Tensor,
    out_proj: Tensor,
    res: Tensor | None = None,
    precision: str | None = None,
) -> Tensor:
    """One step of a pre-norm ``mamba-s6`` block; updates ``conv_state`` and ``h`` IN PLACE.

    Args:
        x: (B, H) block input. res: optional (B, H) added to the output (a U-Net skip).
        norm_weight, norm_bias: (H,) LayerNorm. in_proj: (2E, H). conv_weight: (E, 1, K) or (E, K);
        conv_bias: (E,); conv_state: (B, E, K-1) past conv inputs. x_proj: (R + 2N, E).
        dt_proj: (E, R); dt_bias: (E,). A: (E, N) real (the layer's A). D: (E,).
        h: (B, E, N) float32 SSM state. out_proj: (H, E).
        precision: ``tl.dot`` input precision ("ieee", "tf32x3", "tf32", "bf16"); default
            :func:`default_precision`. Tiles of fewer than 16 rows use exact float32 products.

    Returns:
        (B, H) = x + out_proj(y) (+ res), in x's dtype.
    """
    batch = x.shape[0]
    E, N = A.shape
    R = dt_proj.shape[1]
    _check_state("mamba_s6_block_step", "h", h, (batch, E, N), *REAL_STATE_DTYPES)
    x_proj = x_proj.contiguous()

    def ssm(u: Tensor, z: Tensor, y: Tensor, dbc: Tensor | None, launch: _Launch) -> None:
        t = launch.tiles
        block_n, block_r = _pad(N, 2 if launch.small else 16), _pad(R, 2 if launch.small else 16)
        block_k = min(_pad(E), t["k"])
        if launch.small:
            dbc = u  # not read when x_proj runs inside _ssm_kernel (one stream: saves a launch)
        else:
            n_rows, common = _kernel_launch(launch, batch, "x")
            split = bool(t.get("x_split"))  # one of (Δ_low, B_t, C_t) per program
            launch_named(_xproj_kernel, (n_rows, 3 if split else 1),
                u, x_proj, dbc, batch, E, N, R, BLOCK_K=block_k, BLOCK_N=block_n, BLOCK_R=block_r,
                EVEN=_even(common["BLOCK_B"], batch, (E, block_k), (N, block_n)), SPLIT=split, **common,
            )
        common = _kernel_launch(launch, batch, "ssm")[1]
        inline_k = (E, block_k) if launch.small else (1, 1)  # the x_proj's chunks, where it runs inside
        launch_named(_ssm_kernel, (launch.n_rows, cdiv(E, t["ssm_e"])),
            u, z, x_proj, dbc, dt_proj.contiguous(), dt_bias, A_, D, h, y,
            batch=batch, E=E, N=N, R=R,
            XPROJ_INLINE=launch.small, BLOCK_E=t["ssm_e"], BLOCK_K=block_k, BLOCK_N=block_n, BLOCK_R=block_r,
            EVEN=_even(common["BLOCK_B"], batch, (E, t["ssm_e"]), (N, block_n), inline_k), **common,
        )

    A_ = A.float().contiguous()
    return _block_step("mamba_s6_block_step", x, res, norm_weight, norm_bias, eps, in_proj, conv_weight, conv_bias,
                       conv_state, out_proj, precision, ssm, (x_proj, dt_proj, dt_bias, A_, D, h),
                       dbc=R + 2 * N if batch >= 16 else 0)


@torch.no_grad()
def mamba_lti_block_step_triton(
    x: Tensor,
    norm_weight: Tensor,
    norm_bias: Tensor,
    eps: float,
    in_proj: Tensor,
    conv_weight: Tensor,
    conv_bias: Tensor,
    conv_state: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor,
    h: Tensor,
    out_proj: Tensor,
    res: Tensor | None = None,
    precision: str | None = None,
) -> Tensor:
    """One step of a pre-norm ``mamba-s4`` (complex) or ``mamba-s4-real`` block; updates
    ``conv_state`` and ``h`` IN PLACE.

    Args:
        x, res, norm_weight, norm_bias, in_proj, conv_*, out_proj, precision: as
            :func:`mamba_s6_block_step_triton`.
        delta, A, B, C, D: the SSM layer's discretisation inputs, as it passes them to
            :func:`selective_scan`: delta (E,); A, B, C (E, N), complex (complex64) or real
            (B with any zero-order hold applied); D (E,).
        h: (B, E, N) complex64 (complex) or float32 state.

    Returns:
        (B, H) = x + out_proj(y) (+ res), in x's dtype.
    """
    batch = x.shape[0]
    E, N = A.shape
    cplx = A.is_complex()
    op = "mamba_lti_block_step"
    _check_state(op, "h", h, (batch, E, N), *((torch.complex64,) if cplx else REAL_STATE_DTYPES))
    hv = torch.view_as_real(h) if cplx else h

    def pairs(t: Tensor) -> Tensor:
        return torch.view_as_real(t.to(torch.complex64)).contiguous() if cplx else t.float().contiguous()

    A_, B_, C_ = pairs(A), pairs(B), pairs(C)

    delta_ = delta.float().contiguous()

    def ssm(u: Tensor, z: Tensor, y: Tensor, dbc: Tensor | None, launch: _Launch) -> None:
        # complex (re, im) tiles hold twice the registers: half the channels per program when batched
        block_e = launch.tiles["ssm_e"] // (2 if cplx and not launch.small else 1)
        launch_named(_ssm_lti_kernel, (launch.n_rows, cdiv(E, block_e)),
            u, z, delta_, A_, B_, C_, D, hv, y,
            batch=batch, E=E, N=N,
            IS_COMPLEX=cplx, BLOCK_B=launch.rows, BLOCK_E=block_e, BLOCK_N=_pad(N, 2),
            EVEN=_even(launch.rows, batch, (E, block_e), (N, _pad(N, 2))),
            num_warps=_kernel_launch(launch, batch, "ssm")[1]["num_warps"], PDL=launch.common["PDL"],
            launch_pdl=launch.common["launch_pdl"],
        )

    return _block_step(op, x, res, norm_weight, norm_bias, eps, in_proj, conv_weight, conv_bias, conv_state,
                       out_proj, precision, ssm, (delta_, A_, B_, C_, D, hv))
