"""A batch's step of a run of consecutive Mamba blocks in ONE launch: one program per row tile, every block in turn.

At a large batch (thousands of streams) a block step is four launches (:mod:`kernels.triton_mamba_step`), each over a
grid of (row tiles, channel blocks), with u, z, (Δ_low, B_t, C_t) and y passing between them through memory; at batch
2048 one sc09-small step took 0.87 ms (H200, 2026-12-04), about four times what its state traffic needs (0.2 ms at
the copy bandwidth), with one x_proj program per SM at 6 % achieved occupancy. Rows of the batch never mix, so a
program that owns a tile of rows and *every* channel needs no other program at all: it steps its rows through all
blocks of a run (a U-Net stage's down or up blocks, the center), x in registers from one block to the next::

    for each block j of the run:
        outs[j] = x                                         (the U-Net's skips)
        xn = LayerNorm(x)
        selective (mamba-s6):
            pass 1, channel chunks of BLOCK_E:  (u, z) = in_proj(xn); u = SiLU(conv step(u)) -> uz (this program's
                                                rows, L1/L2); (Δ_low, B_t, C_t) += x_proj(u chunk)
            pass 2, chunks of BLOCK_S:          Δ = softplus(dt_proj(Δ_low) + dt_bias); h ← exp(Δ A) h + Δ B_t u;
                                                y = (C_t · h + D u) SiLU(z); acc += out_proj(y chunk)
        LTI (mamba-s4, mamba-s4-real), one pass in chunks of BLOCK_S: in_proj, conv, state update, out_proj
        x = x + acc (+ res)
    outs[n] = x (and ``tail``)

One launch per run instead of four per block, no barrier across programs, and the only traffic is the weights (L2)
and each row's conv windows and SSM states (read and written once). The arithmetic is that of the per-block batched
kernels (the same helpers: :func:`kernels.triton_mamba_step._ssm_channels`, :func:`~kernels.triton_mamba_step._lti_channels`,
the conv and LayerNorm helpers; ``tl.dot`` at the step's precision), only the order of the sums over channels
differs. The reference is :func:`kernels.triton_mamba_run.run_step_ref`.

The price is parallelism: batch 2048 in tiles of 16 rows is 128 programs, one per SM, each walking its chunks in
turn, so whether this beats the per-block grids is for a GPU to say: ``AUDIOMAMBA_STEP_ROWS=1`` turns it on
(off by default), the tile keys ``run_rows``, ``run_e``, ``run_s``, ``run_warps``, ``run_stages``, ``run_max_h``,
``run_maxnreg`` of ``AUDIOMAMBA_STEP_TILES`` tune it (:func:`rows_tiles`). Built 2026-12-05 on a CPU machine (interpreter tests,
sm_90 compile checks); not yet timed.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from .backend import interpreting, pdl_enabled
from .errors import KernelError
from .triton_helpers import below, ln_regs, mm, pdl_wait, row_tile
from .triton_mamba_run import LTIStack, S6Stack, _as_real, check_run_args
from .triton_mamba_step import (
    _conv_step,
    _conv_taps,
    _even,
    _in_proj_weights,
    _lti_channels,
    _out_proj_weights,
    _pad,
    _ssm_channels,
    _ssm_params,
    batched_tiles,
    default_precision,
)

#: the row-tile run's launch by default: rows per program (``run_rows``), d_inner channels per chunk of the in_proj
#: pass (``run_e``) and of the state-update pass (``run_s``; the LTI blocks' one pass), warps (``run_warps``),
#: software-pipelining stages of the chunk loops (``run_stages``), and the widest block it steps (``run_max_h``, on
#: next_pow2(H)); ``run_maxnreg`` unset (no register cap). sm_90 (``compile_check``, tf32x3, sc09-small's 16 kHz
#: level, 2026-12-05): chunks of 16 at 8 warps and one stage compile without spills (249 registers, 2528
#: instructions); chunks of 32 spill 504 B, 4 warps 280 B, 2 or 3 stages 68-112 B. At H 128 the spills are 116-144 B,
#: at H 256 1.3-5.8 KB (and ptxas then falls back to 32-64 registers), so wider blocks keep the per-block launches.
ROWS_TILES = {"run_rows": 16, "run_e": 16, "run_s": 16, "run_warps": 8, "run_stages": 1, "run_max_h": 128}


def rows_runs() -> bool:
    """``AUDIOMAMBA_STEP_ROWS``: 1 steps the runs of Mamba blocks of a batch of 16 rows or more as one row-tile launch
    each (:func:`mamba_rows_run_step_triton`); 0 or unset (the default until timed on a GPU), the per-block launches.
    A bad value is a one-line KernelError."""
    flag = os.environ.get("AUDIOMAMBA_STEP_ROWS", "0").strip()
    if flag not in ("0", "1", ""):
        raise KernelError(f"AUDIOMAMBA_STEP_ROWS={flag!r} in the environment: use 1 (a batch's runs of Mamba blocks as "
                          "one row-tile launch each) or 0 (the per-block launches, the default)")
    return flag == "1"


def rows_tiles() -> dict[str, int]:
    """:data:`ROWS_TILES` with the ``run_*`` keys of ``AUDIOMAMBA_STEP_TILES`` (:func:`batched_tiles` checks them), and
    ``run_maxnreg`` where given."""
    t = batched_tiles()
    tiles = {k: t[k] for k in (*ROWS_TILES, "run_maxnreg") if k in t} | {
        k: v for k, v in ROWS_TILES.items() if k not in t}
    # more threads than a (rows, chunk) tile's elements replicate them across threads, and the conv window's in-place
    # shift then races with other threads' reads of it (16 warps on 16 x 16 tiles: logits 4e-2 off on an H100)
    if 32 * tiles["run_warps"] > tiles["run_rows"] * min(tiles["run_e"], tiles["run_s"]):
        raise KernelError(f"AUDIOMAMBA_STEP_TILES: run_warps={tiles['run_warps']} is more threads than a tile of "
                          f"run_rows={tiles['run_rows']} x {min(tiles['run_e'], tiles['run_s'])} channels holds: give "
                          "fewer warps or larger tiles")
    return tiles


def rows_width_ok(H: int) -> bool:
    """Whether a run of blocks of width H steps as row tiles: next_pow2(H) <= ``run_max_h``."""
    return triton.next_power_of_2(H) <= rows_tiles()["run_max_h"]


def rows_scratch(batch: int, E: int, device: torch.device) -> Tensor:
    """u and z of the selective blocks' first pass, (2, B, E) float32 (each program reads back its own rows)."""
    return torch.empty((2, batch, E), device=device, dtype=torch.float32)


@triton.jit
def _rows_front(j, xn, win_ptr, cw_ptr, cb_ptr, conv_ptr, rows, m_b, offs_e, batch, H, E, USE_DOT: tl.constexpr,
                PREC: tl.constexpr, K: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
                BLOCK_E: tl.constexpr, EVEN: tl.constexpr):
    """Block j's in_proj of channels ``offs_e`` for the tile's rows and their conv step (window shifted in place):
    (u, z) (BLOCK_B, BLOCK_E), 0 where padded."""
    m_e = below(offs_e, E, EVEN)
    m_be = m_b[:, None] & m_e[None, :]
    w_u, w_z = _in_proj_weights(win_ptr + j * 2 * E * H, offs_e, m_e, tl.arange(0, BLOCK_H), H, E, EVEN)
    cw = cw_ptr + j * E * K
    w_last = tl.load(cw + offs_e * K + (K - 1), mask=m_e, other=0.0)
    bias = tl.load(cb_ptr + j * E + offs_e, mask=m_e, other=0.0)
    conv = conv_ptr + j * batch * E * (K - 1)
    win, taps = _conv_taps(conv, cw, rows, offs_e, m_e, m_be, E, K, BLOCK_B, BLOCK_E)
    u = _conv_step(win, taps, mm(xn, w_u, USE_DOT, PREC), w_last, bias, m_be, conv, K)
    z = mm(xn, w_z, USE_DOT, PREC)
    return tl.where(m_be, u, 0.0), tl.where(m_be, z, 0.0)


@triton.jit
def _rows_in_u(j, xn, win_ptr, cw_ptr, cb_ptr, conv_ptr, rows, m_b, offs_e, batch, H, E, USE_DOT: tl.constexpr,
               PREC: tl.constexpr, K: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
               BLOCK_E: tl.constexpr, EVEN: tl.constexpr):
    """:func:`_rows_front` without z (the selective blocks' first pass; z waits for the second): u (BLOCK_B,
    BLOCK_E), 0 where padded."""
    m_e = below(offs_e, E, EVEN)
    m_be = m_b[:, None] & m_e[None, :]
    offs_h = tl.arange(0, BLOCK_H)
    w_u = tl.load(win_ptr + j * 2 * E * H + offs_e[None, :] * H + offs_h[:, None],
                  mask=below(offs_h, H, EVEN)[:, None] & m_e[None, :], other=0.0)
    cw = cw_ptr + j * E * K
    w_last = tl.load(cw + offs_e * K + (K - 1), mask=m_e, other=0.0)
    bias = tl.load(cb_ptr + j * E + offs_e, mask=m_e, other=0.0)
    conv = conv_ptr + j * batch * E * (K - 1)
    win, taps = _conv_taps(conv, cw, rows, offs_e, m_e, m_be, E, K, BLOCK_B, BLOCK_E)
    u = _conv_step(win, taps, mm(xn, w_u, USE_DOT, PREC), w_last, bias, m_be, conv, K)
    return tl.where(m_be, u, 0.0)


@triton.jit
def _rows_s6_xproj(j, xn, win_ptr, cw_ptr, cb_ptr, conv_ptr, wx_ptr, uz_ptr, rows, m_b, batch, H, E, N, R,
                   USE_DOT: tl.constexpr, PREC: tl.constexpr, K: tl.constexpr, BLOCK_B: tl.constexpr,
                   BLOCK_H: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
                   EVEN: tl.constexpr):
    """Pass 1 of selective block j: u and z of every channel to ``uz`` chunk by chunk, and the x_proj of u summed
    over the chunks: (Δ_low (BLOCK_B, BLOCK_R), B_t, C_t (BLOCK_B, BLOCK_N)), 0 where padded."""
    wx = wx_ptr + j * (R + 2 * N) * E
    offs_r = tl.arange(0, BLOCK_R)
    offs_n = tl.arange(0, BLOCK_N)
    m_n = below(offs_n, N, EVEN)
    dt_low = tl.zeros((BLOCK_B, BLOCK_R), tl.float32)
    Bt = tl.zeros((BLOCK_B, BLOCK_N), tl.float32)
    Ct = tl.zeros((BLOCK_B, BLOCK_N), tl.float32)
    for e0 in range(0, E, BLOCK_E):
        offs_e = e0 + tl.arange(0, BLOCK_E)
        m_e = below(offs_e, E, EVEN)
        u = _rows_in_u(j, xn, win_ptr, cw_ptr, cb_ptr, conv_ptr, rows, m_b, offs_e, batch, H, E, USE_DOT, PREC, K,
                       BLOCK_B, BLOCK_H, BLOCK_E, EVEN)
        tl.store(uz_ptr + rows[:, None] * E + offs_e[None, :], u, mask=m_b[:, None] & m_e[None, :])
        w_r = tl.load(wx + offs_r[None, :] * E + offs_e[:, None], mask=m_e[:, None] & (offs_r < R)[None, :], other=0.0)
        w_b = tl.load(wx + (R + offs_n[None, :]) * E + offs_e[:, None], mask=m_e[:, None] & m_n[None, :], other=0.0)
        w_c = tl.load(wx + (R + N + offs_n[None, :]) * E + offs_e[:, None], mask=m_e[:, None] & m_n[None, :],
                      other=0.0)
        dt_low += mm(u, w_r, USE_DOT, PREC)
        Bt += mm(u, w_b, USE_DOT, PREC)
        Ct += mm(u, w_c, USE_DOT, PREC)
    return dt_low, Bt, Ct


@triton.jit
def _rows_run_kernel(
    x0_ptr, x0_stride, x0b_ptr, x0b_stride, outs_ptr, res_ptr, nw_ptr, nb_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr,
    wx_ptr, wdt_ptr, dtb_ptr, dt_ptr, a_ptr, b_ptr, c_ptr, D_ptr, h_ptr, wout_ptr, uz_ptr, tail_ptr,
    batch, H, E, N, R, n_blocks, eps, res_first, n_res, tail_stride,
    K: tl.constexpr, SELECTIVE: tl.constexpr, IS_COMPLEX: tl.constexpr, RES_REVERSED: tl.constexpr,
    USE_DOT: tl.constexpr, PREC: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_E: tl.constexpr,
    BLOCK_S: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr, EVEN: tl.constexpr = False,
    PDL: tl.constexpr = False,
):
    """A run of ``n_blocks`` block steps for one tile of BLOCK_B rows (module docstring). Selective blocks read
    ``wx`` (n, R + 2N, E), ``wdt`` (n, E, R), ``dtb`` (n, E) and A (n, E, N); LTI blocks Δ (n, E), A, B, C (n, E, N)
    ((re, im) pairs with IS_COMPLEX). ``EVEN``: the batch a multiple of BLOCK_B, E of BLOCK_E and BLOCK_S, H and N
    powers of two (no masks but Δ's rank)."""
    rows, m_b = row_tile(batch, BLOCK_B, EVEN)
    offs_h = tl.arange(0, BLOCK_H)
    m_h = below(offs_h, H, EVEN)
    m_bh = m_b[:, None] & m_h[None, :]
    bh = rows[:, None] * H + offs_h[None, :]
    pdl_wait(PDL)
    x = tl.load(x0_ptr + rows[:, None] * x0_stride + offs_h[None, :], mask=m_bh, other=0.0).to(tl.float32)
    if x0b_stride >= 0:
        x += tl.load(x0b_ptr + rows[:, None] * x0b_stride + offs_h[None, :], mask=m_bh, other=0.0).to(tl.float32)
    pairs = 2 if IS_COMPLEX else 1
    for j in range(0, n_blocks):
        tl.store(outs_ptr + j * batch * H + bh, x.to(outs_ptr.dtype.element_ty), mask=m_bh)
        nw = tl.load(nw_ptr + j * H + offs_h, mask=m_h, other=0.0)
        nb = tl.load(nb_ptr + j * H + offs_h, mask=m_h, other=0.0)
        xn = ln_regs(x, m_bh, nw, nb, H, eps)
        wout = wout_ptr + j * H * E
        acc = tl.zeros((BLOCK_B, BLOCK_H), tl.float32)
        if SELECTIVE:
            dt_low, Bt, Ct = _rows_s6_xproj(j, xn, win_ptr, cw_ptr, cb_ptr, conv_ptr, wx_ptr, uz_ptr, rows, m_b,
                                            batch, H, E, N, R, USE_DOT, PREC, K, BLOCK_B, BLOCK_H, BLOCK_E,
                                            BLOCK_N, BLOCK_R, EVEN)
            tl.debug_barrier()  # every thread's u and z stored before any thread reads another's back
            for e0 in range(0, E, BLOCK_S):
                offs_e = e0 + tl.arange(0, BLOCK_S)
                m_be = m_b[:, None] & below(offs_e, E, EVEN)[None, :]
                w_dt, dtb, A, h, hp, D = _ssm_params(wdt_ptr + j * E * R, dtb_ptr + j * E, a_ptr + j * E * N,
                                                     D_ptr + j * E, h_ptr + j * batch * E * N, rows, m_b, offs_e, E,
                                                     N, R, BLOCK_N, BLOCK_R, EVEN)
                u = tl.load(uz_ptr + rows[:, None] * E + offs_e[None, :], mask=m_be, other=0.0)
                w_z = tl.load(win_ptr + j * 2 * E * H + (E + offs_e[None, :]) * H + offs_h[:, None],
                              mask=m_h[:, None] & below(offs_e, E, EVEN)[None, :], other=0.0)
                z = tl.where(m_be, mm(xn, w_z, USE_DOT, PREC), 0.0)
                y = _ssm_channels(m_b, offs_e, E, N, dt_low, Bt, Ct, w_dt, dtb, u, z, A, h, hp, D, USE_DOT, PREC,
                                  BLOCK_N, EVEN)
                acc += mm(y, _out_proj_weights(wout, offs_h, m_h, offs_e, E, EVEN), USE_DOT, PREC)
            tl.debug_barrier()  # every read of u and z done before the next block's pass 1 overwrites them
        else:  # LTI: the state update needs only the chunk's own channels, so in_proj to out_proj is one pass
            for e0 in range(0, E, BLOCK_S):
                offs_e = e0 + tl.arange(0, BLOCK_S)
                u, z = _rows_front(j, xn, win_ptr, cw_ptr, cb_ptr, conv_ptr, rows, m_b, offs_e, batch, H, E, USE_DOT,
                                   PREC, K, BLOCK_B, BLOCK_H, BLOCK_S, EVEN)
                y = _lti_channels(dt_ptr + j * E, a_ptr + j * E * N * pairs, b_ptr + j * E * N * pairs,
                                  c_ptr + j * E * N * pairs, D_ptr + j * E, h_ptr + j * batch * E * N * pairs, rows,
                                  m_b, offs_e, E, N, u, z, IS_COMPLEX, BLOCK_N, EVEN)
                acc += mm(y, _out_proj_weights(wout, offs_h, m_h, offs_e, E, EVEN), USE_DOT, PREC)
        x += acc
        i = j - res_first
        if (i >= 0) & (i < n_res):
            if RES_REVERSED:
                i = n_res - 1 - i
            x += tl.load(res_ptr + i * batch * H + bh, mask=m_bh, other=0.0).to(tl.float32)
        x = tl.where(m_bh, x, 0.0)
    tl.store(outs_ptr + n_blocks * batch * H + bh, x.to(outs_ptr.dtype.element_ty), mask=m_bh)
    if tail_stride >= 0:
        tl.store(tail_ptr + rows[:, None] * tail_stride + offs_h[None, :], x.to(tail_ptr.dtype.element_ty), mask=m_bh)


@torch.no_grad()
def mamba_rows_run_step_triton(x: Tensor, w: S6Stack | LTIStack, conv_state: Tensor, h: Tensor, outs: Tensor,
                               uz: Tensor, res: Tensor | None = None, res_first: int = 0, res_reversed: bool = False,
                               x0b: Tensor | None = None, tail: Tensor | None = None,
                               precision: str | None = None) -> Tensor:
    """One step of a run of n Mamba blocks (``mamba-s6``, ``mamba-s4`` or ``mamba-s4-real``: the stack's kind) for a
    batch x (B, H) of any size, as one launch of row tiles (:func:`_rows_run_kernel`); updates ``conv_state``
    (n, B, E, K-1) and ``h`` (n, B, E, N) IN PLACE and writes ``outs`` (n + 1, B, H): outs[j] the input of block j,
    outs[n] the run's output (returned). ``uz``: :func:`rows_scratch` (B, E). ``res``, ``res_first``,
    ``res_reversed``, ``x0b``, ``tail``: as :func:`kernels.triton_mamba_run.mamba_s6_run_step_triton`. ``precision``:
    the ``tl.dot`` input precision (:func:`kernels.triton_mamba_step.default_precision`)."""
    op = "mamba_rows_run_step"
    check_run_args(op, x, w, conv_state, h, outs, res, x0b, tail, None)
    n, H = w.norm_weight.shape
    E, N = w.A.shape[1:]
    batch = x.shape[0]
    if tuple(uz.shape) != (2, batch, E) or uz.dtype != torch.float32 or not uz.is_contiguous():
        raise ValueError(f"{op}: uz must be contiguous float32 of shape {(2, batch, E)} (rows_scratch), got "
                         f"{uz.dtype} {tuple(uz.shape)}")
    selective = isinstance(w, S6Stack)
    R = w.dt_proj.shape[-1] if selective else 0
    cplx = w.A.is_complex()
    t = rows_tiles()
    # N and Δ's rank R padded to 16 for the selective x_proj's tl.dot; an LTI state tile needs no more than N
    bb, block_h, block_n, block_r = t["run_rows"], triton.next_power_of_2(H), _pad(N, 16 if selective else 2), _pad(R)
    # chunks of at least 16 channels (tl.dot's K and N), at most next_pow2(E)
    block_e, block_s = (max(16, min(t[k], triton.next_power_of_2(E))) for k in ("run_e", "run_s"))
    if cplx:  # (re, im) state tiles hold twice the registers
        block_s = max(16, block_s // 2)
    none = uz  # any float32 tensor: a pointer the other block kind does not read
    if selective:
        ssm = (w.x_proj, w.dt_proj, w.dt_bias, none, w.A, none, none)
    else:
        ssm = (none, none, none, w.delta, _as_real(w.A), _as_real(w.B), _as_real(w.C))
    pdl = pdl_enabled(x)
    extra = {"maxnreg": t["run_maxnreg"]} if "run_maxnreg" in t and not interpreting() else {}
    _rows_run_kernel[(triton.cdiv(batch, bb),)](
        x, x.stride(0), x if x0b is None else x0b, -1 if x0b is None else x0b.stride(0), outs,
        res if res is not None else x, w.norm_weight, w.norm_bias, w.in_proj, w.conv_weight, w.conv_bias, conv_state,
        *ssm, w.D, _as_real(h), w.out_proj, uz, outs if tail is None else tail,
        batch, H, E, N, R, n, float(w.eps), res_first, 0 if res is None else res.shape[0],
        -1 if tail is None else tail.stride(0),
        K=w.conv_weight.shape[-1], SELECTIVE=selective, IS_COMPLEX=cplx, RES_REVERSED=res_reversed,
        USE_DOT=True, PREC=precision or default_precision(), BLOCK_B=bb, BLOCK_H=block_h, BLOCK_E=block_e,
        BLOCK_S=block_s, BLOCK_N=block_n, BLOCK_R=block_r,
        EVEN=_even(bb, batch, (E, block_e), (E, block_s), (H, block_h), (N, block_n)),
        PDL=pdl, launch_pdl=pdl, num_warps=t["run_warps"], num_stages=t["run_stages"], **extra,
    )
    return outs[n]
