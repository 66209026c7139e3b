"""Triton selective scan: forward and backward kernels and their autograd Function (docs/ARCHITECTURE.md §6).

Layout of the work: a program owns (batch element, block of ``BLOCK_D`` channels, segment of L);
the N states of those channels live in registers; the program walks its segment in chunks of
``BLOCK_L`` steps, scans each chunk with ``tl.associative_scan`` over the pairs
(a_t, b_t) = (exp(Δ_t A), Δ_t B_t u_t) with the combine (a1, b1), (a2, b2) -> (a1 a2, a2 b1 + b2)
(complex products for complex A, held as (re, im) pairs), and carries the state from chunk to
chunk inside the kernel. Tiles are (BLOCK_D, BLOCK_L, BLOCK_N) with N fastest: Triton's default
layout then puts the N states across the lanes of a warp and runs each lane's share of the chunk
sequentially in registers, so the scan needs few shuffles (with L fastest, the scan and the
reductions crossed lanes and warps at every level).

Chunk-parallel scan along L (``ScanConfig.seg_l``): with S > 1 segments the forward runs
  1. a local pass over segments 0..S-2 from a zero state: each segment's end state and Σ Δ, walked (as one sum per
     state, the backward's form, it lost: 0.79-0.88x on one H100, 2026-12-07, and was removed);
  2. :func:`_seg_carry_kernel`, serial over segments but tiny (batch·d·N·S): the true start state
     of every segment, H_s = exp(A Σ_s Δ) H_{s-1} + local_s;
  3. the full pass over all segments in parallel from their start states: y, the chunk-start
     states for the backward, and h_last.
The backward mirrors it from the right: a local pass (adjoint at each segment's start from a zero
adjoint at its end, and the segment's Σ of next-step Δ; for real A with N <= 16 one sum per state,
:func:`_scan_bwd_local_sum_kernel`, else a reverse scan), the reverse carry (conjugate decays),
then the full pass per segment from its incoming adjoint. Per-(batch, segment) partial sums of the
parameter grads are added by one finishing launch (:func:`_bwd_finish_kernel`), which writes them in the
parameters' dtypes. With one segment passes 1 and 2 are skipped.

Sequential forward (``ScanConfig.seq_fwd``, the default for N <= 16): :func:`_scan_fwd_seq_kernel`
gives each lane one channel with its N states in registers and steps through time one step at a
time (y_t = Σ_n C_t h_t stays in the lane; no scan, no shuffles); u/Δ/z/y move as (8, lanes)
tiles and B_t/C_t are broadcast loads; the step loop is unrolled ``UNROLL`` steps at a time so the
loads of later steps are issued before the current state update. It has the same arguments and
outputs as the chunk-scan forward (segments, saved chunk-start states), so the backward is shared.
Its instructions per step decide its time at short L (one H100, 2026-12-07): on a GPU softplus and the silu gate
use the MUFU log2 and the approximate division (``ScanConfig.fast_gates``), and B/C load without predicates where
the tile divides L (``EVEN``).

LTI parameters are never materialised along batch or L: a (d, N) B or C is loaded once per
program, and a (d,) delta gives one decay exp(ΔA) per program, computed once (no exp per step).
Selective B/C chunks (BLOCK_L, N) are loaded once per program and shared by its channels. The
forward issues the loads of chunk c + 1 before computing chunk c (software pipelining by hand).

The forward saves only the state at the start of every chunk, (batch, d, L/BLOCK_L, N); the
backward walks the chunks of its segment in reverse order, recomputes the states of a chunk from
its start state, and runs the adjoint recurrence G_t = conj(a_{t+1}) G_{t+1} + ∂y_t/∂h_t as a
reverse scan. With w_t = G_t · conj(h_t − b_t) (= G_t · conj(a_t h_{t−1})) the gradients are

    dB_t = G_t Δ_t u_t,  dC_t = f dy_t conj(h_t),  dA = Σ_t Δ_t w_t,
    dΔ_t = u_t Re(Σ_n G conj(B)) + Re(Σ_n conj(A) w_t),  du_t = Δ_t Re(Σ_n G conj(B)) + D dy_t,

where dy_t is the grad reaching the SSM output (after the SiLU gate), f = 2 for complex A and 1
for real A (grads of complex tensors use PyTorch's convention ∂L/∂Re + i ∂L/∂Im). Selective
dB/dC are summed over channels with atomics; LTI ones, dA, dD and the (d,) delta/bias grads are
written per (batch element, segment) and summed in PyTorch.

Two backward kernels compute this. The tile backward (:func:`_scan_bwd_kernel`) scans
(BLOCK_D, BLOCK_L, N) tiles, and its sums over N cross lanes at every step. The state-loop backward
(:func:`_scan_bwd_loop_kernel`, ``ScanConfig.bwd_loop``, the default) gives each program
one channel and 1-D tiles along L, and loops over the N states. The sums over N then add up in
registers; the loads of u/Δ/B/C and the dB/dC atomics run along t and are coalesced. On an H200 it
was 1.15-1.82x the tile backward's fwd+bwd on every selective shape (chunks of 128 steps), and with
chunks of 256 steps 1.28-1.47x on complex LTI (BENCHMARKS.md, "State-loop backward").

With LTI Δ and A the decay is one constant a, and the state loop can run its two scans per state in closed form
(``ScanConfig.bwd_closed``, :func:`_closed_scans`): h_t = a^(t-M) (a^(M+1) h0 + Σ_(s<=t) a^(M-s) b_s) is one
cumulative sum, and so is the adjoint (over reversed lanes, or in time order as a total minus a cumulative sum where
the decay is slow enough that the subtraction loses at most CLOSED_TIME_LIM in the exponent). It is exact up to
rounding and takes a quarter fewer instructions, but was no faster on an H200 (the loop is latency-bound), so it is off.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from triton.language.extra.cuda import libdevice

from .backend import interpreting
from .launch import cdiv as _cdiv
from .launch import launch
from .triton_helpers import LOG2E, exp_dtA, silu_gate, softplus, softplus_fast
from .tuning import (
    SEQ_TILE_AUTO,
    SEQ_TILE_COMPLEX,
    ScanConfig,
    bwd_maxnreg,
    local_sum_warps,
    pick_config,
    pick_seg_l_bwd,
)


@triton.jit
def _combine_real(a1, b1, a2, b2):
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _combine_complex(ar1, ai1, br1, bi1, ar2, ai2, br2, bi2):
    ar = ar1 * ar2 - ai1 * ai2
    ai = ar1 * ai2 + ai1 * ar2
    br = ar2 * br1 - ai2 * bi1 + br2
    bi = ar2 * bi1 + ai2 * br1 + bi2
    return ar, ai, br, bi


@triton.jit
def _promise(s_b, s_d, ALIGN: tl.constexpr):
    """A row's (batch, channel) strides under the wrapper's promise that ALIGN divides them (``_row_align``):
    x // ALIGN * ALIGN is x then, and Triton's divisibility analysis sees it (its launcher marks only integers
    that are multiples of 16)."""
    return s_b // ALIGN * ALIGN, s_d // ALIGN * ALIGN


@triton.jit
def _flip_chunk(x, CHUNK: tl.constexpr, LANE_ASM: tl.constexpr):
    """``x`` (CHUNK,) in reversed order. ``LANE_ASM`` (one warp of 32 lanes, CHUNK // 32 contiguous
    elements per lane): the elements are flipped within each lane, then across lanes by one
    ``shfl.sync.bfly`` with lane mask 31 per register, where ``tl.flip`` takes five (one per bit of the lane)."""
    if LANE_ASM:
        PER: tl.constexpr = CHUNK // 32
        y = tl.flip(tl.reshape(x, (32, PER)), 1)
        y = tl.inline_asm_elementwise("shfl.sync.bfly.b32 $0, $1, 31, 31, -1;", "=r,r", [y],
                                      dtype=tl.float32, is_pure=True, pack=1)
        return tl.reshape(y, (CHUNK,))
    else:
        return tl.flip(x, 0)


@triton.jit
def _delta_from_raw(raw, mask2, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """Selective Δ (BLOCK_D, BLOCK_L) from loaded delta values; 0 where masked.

    Also returns the pre-softplus value (for the softplus derivative)."""
    raw = raw.to(tl.float32)
    if HAS_BIAS:
        raw = raw + bias[:, None]
    dt = raw
    if SOFTPLUS:
        dt = softplus(raw)
    dt = tl.where(mask2, dt, 0.0)
    return dt, raw


@triton.jit
def _delta_rows(dt_ptr, t, mask2, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """Selective Δ (BLOCK_D, BLOCK_L) at times t from row pointers dt_ptr (BLOCK_D, 1); see _delta_from_raw."""
    return _delta_from_raw(tl.load(dt_ptr + t, mask=mask2, other=0.0), mask2, bias, HAS_BIAS, SOFTPLUS)


@triton.jit
def _setup(A_ptr, D_ptr, bias_ptr, dt_ptr, pid_b, offs_d, offs_n, mask_d, mask_dn, sA_d, sA_n, sdt_b, sdt_d,
           IS_COMPLEX: tl.constexpr, HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
           DT_LTI: tl.constexpr):
    """Per-program constants: A (BLOCK_D, BLOCK_N, 1) re/im, D and bias (BLOCK_D,), and for LTI Δ
    the step Δ and its pre-softplus value (BLOCK_D,) and the decay exp(ΔA) (BLOCK_D, BLOCK_N) re/im."""
    a_off = offs_d[:, None] * sA_d + offs_n[None, :] * sA_n
    A_re = tl.load(A_ptr + a_off, mask=mask_dn, other=0.0).to(tl.float32)
    A_im = tl.zeros_like(A_re)
    if IS_COMPLEX:
        A_im = tl.load(A_ptr + a_off + 1, mask=mask_dn, other=0.0).to(tl.float32)
    Dv = tl.zeros((offs_d.shape[0],), tl.float32)
    if HAS_D:
        Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    bias = tl.zeros((offs_d.shape[0],), tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    dtc_raw = bias
    dtc = bias
    if DT_LTI:
        dtc_raw = tl.load(dt_ptr + pid_b * sdt_b + offs_d * sdt_d, mask=mask_d, other=0.0).to(tl.float32) + bias
        dtc = dtc_raw
        if SOFTPLUS:
            dtc = softplus(dtc_raw)
        dtc = tl.where(mask_d, dtc, 0.0)
    ac_re, ac_im = exp_dtA(dtc[:, None], A_re, A_im, IS_COMPLEX)
    return A_re[:, None, :], A_im[:, None, :], Dv, bias, dtc, dtc_raw, ac_re[:, None, :], ac_im[:, None, :]


@triton.jit
def _bc_const(ptr, offs_d, offs_n, mask_dn, s_d, s_n, IS_CPLX: tl.constexpr):
    """LTI B or C, loaded once per program: (BLOCK_D, BLOCK_N, 1) re and im (0 when real)."""
    off = offs_d[:, None] * s_d + offs_n[None, :] * s_n
    re = tl.load(ptr + off, mask=mask_dn, other=0.0).to(tl.float32)
    im = tl.zeros_like(re)
    if IS_CPLX:
        im = tl.load(ptr + off + 1, mask=mask_dn, other=0.0).to(tl.float32)
    return re[:, None, :], im[:, None, :]


@triton.jit
def _bc_chunk(ptr, pid_b, offs_n, t, mask_n, mask_t, s_b, s_n, s_l, IS_CPLX: tl.constexpr):
    """Selective B or C of one chunk, shared by the program's channels: (1, BLOCK_L, BLOCK_N) re, im."""
    p = ptr + pid_b * s_b + t[:, None] * s_l + offs_n[None, :] * s_n
    m = mask_t[:, None] & mask_n[None, :]
    re = tl.load(p, mask=m, other=0.0).to(tl.float32)
    im = tl.zeros_like(re)
    if IS_CPLX:
        im = tl.load(p + 1, mask=m, other=0.0).to(tl.float32)
    return re[None, :, :], im[None, :, :]


@triton.jit
def _bc_step(rows, t, s_l, mask, IS_CPLX: tl.constexpr, MASKED: tl.constexpr = True):
    """Selective B or C at one time step t from row pointers (BLOCK_N,): (BLOCK_N, 1) re, im (0 when real).
    ``MASKED`` False: the caller's promise that every state and step is in range (no predicates, no zero fill)."""
    if MASKED:
        re = tl.load(rows + t * s_l, mask=mask, other=0.0).to(tl.float32)[:, None]
    else:
        re = tl.load(rows + t * s_l).to(tl.float32)[:, None]
    im = tl.zeros_like(re)
    if IS_CPLX:
        if MASKED:
            im = tl.load(rows + t * s_l + 1, mask=mask, other=0.0).to(tl.float32)[:, None]
        else:
            im = tl.load(rows + t * s_l + 1).to(tl.float32)[:, None]
    return re, im


@triton.jit
def _scan_fwd_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, y_ptr, states_ptr, hlast_ptr,
    seg_ptr, dsum_ptr,
    dim, dstate, seqlen, nchunks, seg_chunks, nseg,
    su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sA_d, sA_n,
    sB_b, sB_d, sB_n, sB_l, sC_b, sC_d, sC_n, sC_l,
    sz_b, sz_d, sz_l, sy_b, sy_d, sy_l,
    IS_COMPLEX: tl.constexpr, B_COMPLEX: tl.constexpr, C_COMPLEX: tl.constexpr,
    B_LTI: tl.constexpr, C_LTI: tl.constexpr, DT_LTI: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    SAVE_STATES: tl.constexpr, R: tl.constexpr, LOCAL: tl.constexpr, HAS_INIT: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    pid_s = tl.program_id(2)
    c0 = pid_s * seg_chunks
    c1 = tl.minimum(c0 + seg_chunks, nchunks)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    offs_l = tl.arange(0, BLOCK_L)
    mask_d = offs_d < dim
    mask_dn = mask_d[:, None] & (offs_n < dstate)[None, :]
    A_re, A_im, Dv, bias, dtc, dtc_raw, ac_re, ac_im = _setup(
        A_ptr, D_ptr, bias_ptr, dt_ptr, pid_b, offs_d, offs_n, mask_d, mask_dn, sA_d, sA_n, sdt_b, sdt_d,
        IS_COMPLEX, HAS_D, HAS_BIAS, SOFTPLUS, DT_LTI,
    )

    u_rows = u_ptr + pid_b * su_b + offs_d[:, None] * su_d
    dt_rows = dt_ptr + pid_b * sdt_b + offs_d[:, None] * sdt_d
    z_rows = z_ptr + pid_b * sz_b + offs_d[:, None] * sz_d
    y_rows = y_ptr + pid_b * sy_b + offs_d[:, None] * sy_d
    mask_n = offs_n < dstate
    if B_LTI:
        Bc_re, Bc_im = _bc_const(B_ptr, offs_d, offs_n, mask_dn, sB_d, sB_n, B_COMPLEX)
    if C_LTI:
        Cc_re, Cc_im = _bc_const(C_ptr, offs_d, offs_n, mask_dn, sC_d, sC_n, C_COMPLEX)
    st_off = ((pid_b * dim + offs_d[:, None]) * nchunks * dstate + offs_n[None, :]) * R
    last = (offs_l == BLOCK_L - 1)[None, :, None]

    # software pipelining by hand: the loads of chunk c + 1 are issued before chunk c is computed
    t0 = c0 * BLOCK_L + offs_l
    m2 = mask_d[:, None] & (t0 < seqlen)[None, :]
    nu = tl.load(u_rows + t0[None, :] * su_l, mask=m2, other=0.0)
    ndt = nu
    if not DT_LTI:
        ndt = tl.load(dt_rows + t0[None, :] * sdt_l, mask=m2, other=0.0)
    nz = nu
    if HAS_Z and not LOCAL:
        nz = tl.load(z_rows + t0[None, :] * sz_l, mask=m2, other=0.0)
    nB_re = tl.zeros((1, BLOCK_L, BLOCK_N), tl.float32)
    nB_im = nB_re
    if not B_LTI:
        nB_re, nB_im = _bc_chunk(B_ptr, pid_b, offs_n, t0, mask_n, t0 < seqlen, sB_b, sB_n, sB_l, B_COMPLEX)
    nC_re = nB_re
    nC_im = nB_re
    if not C_LTI and not LOCAL:
        nC_re, nC_im = _bc_chunk(C_ptr, pid_b, offs_n, t0, mask_n, t0 < seqlen, sC_b, sC_n, sC_l, C_COMPLEX)

    # segment state: (batch, nseg, d, N, R) start states (HAS_INIT) or local end states (LOCAL)
    seg_off = (((pid_b * nseg + pid_s) * dim + offs_d[:, None]) * dstate + offs_n[None, :]) * R
    h_re = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    h_im = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    if HAS_INIT:
        h_re = tl.load(seg_ptr + seg_off, mask=mask_dn, other=0.0)
        if IS_COMPLEX:
            h_im = tl.load(seg_ptr + seg_off + 1, mask=mask_dn, other=0.0)
    dsum = tl.zeros((BLOCK_D,), tl.float32)
    for c in range(c0, c1):
        if SAVE_STATES:
            tl.store(states_ptr + st_off + c * dstate * R, h_re, mask=mask_dn)
            if IS_COMPLEX:
                tl.store(states_ptr + st_off + c * dstate * R + 1, h_im, mask=mask_dn)
        t = c * BLOCK_L + offs_l
        mask_t = t < seqlen
        m2 = mask_d[:, None] & mask_t[None, :]
        m3 = mask_t[None, :, None]
        u = nu.to(tl.float32)
        dt_in = ndt
        zz = nz.to(tl.float32)
        if B_LTI:
            B_re, B_im = Bc_re, Bc_im
        else:
            B_re, B_im = nB_re, nB_im
        if C_LTI:
            C_re, C_im = Cc_re, Cc_im
        else:
            C_re, C_im = nC_re, nC_im
        # prefetch chunk c + 1 (all masked off after the segment's last chunk)
        tn = t + BLOCK_L
        nval = (tn < seqlen) & (c + 1 < c1)
        m2n = mask_d[:, None] & nval[None, :]
        nu = tl.load(u_rows + tn[None, :] * su_l, mask=m2n, other=0.0)
        if not DT_LTI:
            ndt = tl.load(dt_rows + tn[None, :] * sdt_l, mask=m2n, other=0.0)
        if HAS_Z and not LOCAL:
            nz = tl.load(z_rows + tn[None, :] * sz_l, mask=m2n, other=0.0)
        if not B_LTI:
            nB_re, nB_im = _bc_chunk(B_ptr, pid_b, offs_n, tn, mask_n, nval, sB_b, sB_n, sB_l, B_COMPLEX)
        if not C_LTI and not LOCAL:
            nC_re, nC_im = _bc_chunk(C_ptr, pid_b, offs_n, tn, mask_n, nval, sC_b, sC_n, sC_l, C_COMPLEX)

        if DT_LTI:
            # constant decay; identity (a = 1) past the end so the state carries to the last slot
            dt = tl.where(m2, dtc[:, None], 0.0)
            a_re = tl.where(m3, ac_re, 1.0)
            a_im = tl.where(m3, ac_im, 0.0)
        else:
            dt, dt_raw = _delta_from_raw(dt_in, m2, bias, HAS_BIAS, SOFTPLUS)
            a_re, a_im = exp_dtA(dt[:, :, None], A_re, A_im, IS_COMPLEX)
        if LOCAL:
            dsum += tl.sum(dt, axis=1)
        du3 = (dt * u)[:, :, None]
        b_re = du3 * B_re
        if IS_COMPLEX:
            b_im = tl.zeros_like(b_re)
            if B_COMPLEX:
                b_im = du3 * B_im
            pa_re, pa_im, pb_re, pb_im = tl.associative_scan((a_re, a_im, b_re, b_im), 1, _combine_complex)
            hs_re = pb_re + pa_re * h_re[:, None, :] - pa_im * h_im[:, None, :]
            hs_im = pb_im + pa_re * h_im[:, None, :] + pa_im * h_re[:, None, :]
            if not LOCAL:
                prod = C_re * hs_re
                if C_COMPLEX:
                    prod -= C_im * hs_im
                y = 2.0 * tl.sum(prod, axis=2)
            h_im = tl.sum(tl.where(last, hs_im, 0.0), axis=1)
        else:
            pa, pb = tl.associative_scan((a_re, b_re), 1, _combine_real)
            hs_re = pb + pa * h_re[:, None, :]
            if not LOCAL:
                y = tl.sum(C_re * hs_re, axis=2)
        h_re = tl.sum(tl.where(last, hs_re, 0.0), axis=1)
        if not LOCAL:
            y += Dv[:, None] * u
            if HAS_Z:
                y = y * zz * tl.sigmoid(zz)
            tl.store(y_rows + t[None, :] * sy_l, y.to(y_ptr.dtype.element_ty), mask=m2)

    if LOCAL:
        tl.store(seg_ptr + seg_off, h_re, mask=mask_dn)
        if IS_COMPLEX:
            tl.store(seg_ptr + seg_off + 1, h_im, mask=mask_dn)
        tl.store(dsum_ptr + (pid_b * nseg + pid_s) * dim + offs_d, dsum, mask=mask_d)
    else:
        hl_off = ((pid_b * dim + offs_d[:, None]) * dstate + offs_n[None, :]) * R
        m_last = mask_dn & (pid_s == nseg - 1)
        tl.store(hlast_ptr + hl_off, h_re, mask=m_last)
        if IS_COMPLEX:
            tl.store(hlast_ptr + hl_off + 1, h_im, mask=m_last)


def _scan_fwd_seq(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, y_ptr, states_ptr, hlast_ptr,
    seg_ptr, dsum_ptr,
    dim, dstate, seqlen, nchunks, seg_chunks, nseg,
    su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sA_d, sA_n,
    sB_b, sB_d, sB_n, sB_l, sC_b, sC_d, sC_n, sC_l,
    sz_b, sz_d, sz_l, sy_b, sy_d, sy_l,
    IS_COMPLEX: tl.constexpr, B_COMPLEX: tl.constexpr, C_COMPLEX: tl.constexpr,
    B_LTI: tl.constexpr, C_LTI: tl.constexpr, DT_LTI: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    SAVE_STATES: tl.constexpr, R: tl.constexpr, LOCAL: tl.constexpr, HAS_INIT: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, SUB_L: tl.constexpr,
    UNROLL: tl.constexpr, ALIGN: tl.constexpr = 1, STAGES: tl.constexpr = 1, EVEN: tl.constexpr = False,
    FAST: tl.constexpr = False,
):
    """Forward, one lane per channel: the (N, BLOCK_D) state has the channels across the lanes and
    the N states in each lane's registers; the lane steps through time sequentially (no scan, no
    cross-lane reduction: y_t = Σ_n C h is in-lane). Same arguments and outputs as
    :func:`_scan_fwd_kernel` (states saved every BLOCK_L steps); u/Δ/z/y move as (SUB_L, BLOCK_D)
    tiles. ``ALIGN``: as in :func:`_scan_bwd_loop_kernel`, the wrapper's promise that L and the rows'
    strides are multiples of it (sm_90 PTX at an L that is no multiple of 16, bf16, 16 steps per tile: 1536
    shuffles and 508 B of spills without it). ``STAGES``: software-pipelining stages of the tile loop
    (``ScanConfig.fwd_stages``). ``EVEN``: the wrapper's promise that N = BLOCK_N and SUB_L divides L, so
    that B and C load without predicates or zero fill. ``FAST`` (a GPU only, ``ScanConfig.fast_gates``): softplus
    and the silu gate with the MUFU log2 and the approximate division (:func:`softplus_fast`, :func:`silu_gate`)."""
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    pid_s = tl.program_id(2)
    if ALIGN > 1:  # see _promise
        seqlen, _ = _promise(seqlen, seqlen, ALIGN)
        if not DT_LTI:
            sdt_b, sdt_d = _promise(sdt_b, sdt_d, ALIGN)
        su_b, su_d = _promise(su_b, su_d, ALIGN)
        sz_b, sz_d = _promise(sz_b, sz_d, ALIGN)
        sy_b, sy_d = _promise(sy_b, sy_d, ALIGN)
    c0 = pid_s * seg_chunks
    c1 = tl.minimum(c0 + seg_chunks, nchunks)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    offs_l = tl.arange(0, SUB_L)
    mask_d = offs_d < dim
    mask_n = offs_n < dstate
    mask_nd = mask_n[:, None] & mask_d[None, :]
    a_off = offs_n[:, None] * sA_n + offs_d[None, :] * sA_d
    A_re = tl.load(A_ptr + a_off, mask=mask_nd, other=0.0).to(tl.float32)
    A_im = tl.zeros_like(A_re)
    if IS_COMPLEX:
        A_im = tl.load(A_ptr + a_off + 1, mask=mask_nd, other=0.0).to(tl.float32)
    Dv = tl.zeros((BLOCK_D,), tl.float32)
    if HAS_D:
        Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    bias = tl.zeros((BLOCK_D,), tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    dtc = bias
    if DT_LTI:
        dtc = tl.load(dt_ptr + pid_b * sdt_b + offs_d * sdt_d, mask=mask_d, other=0.0).to(tl.float32) + bias
        if SOFTPLUS:
            dtc = softplus(dtc)
        dtc = tl.where(mask_d, dtc, 0.0)
    ac_re, ac_im = exp_dtA(dtc[None, :], A_re, A_im, IS_COMPLEX)
    if B_LTI:
        b_off = offs_n[:, None] * sB_n + offs_d[None, :] * sB_d
        Bc_re = tl.load(B_ptr + b_off, mask=mask_nd, other=0.0).to(tl.float32)
        Bc_im = tl.zeros_like(Bc_re)
        if B_COMPLEX:
            Bc_im = tl.load(B_ptr + b_off + 1, mask=mask_nd, other=0.0).to(tl.float32)
    if C_LTI:
        c_off = offs_n[:, None] * sC_n + offs_d[None, :] * sC_d
        Cc_re = tl.load(C_ptr + c_off, mask=mask_nd, other=0.0).to(tl.float32)
        Cc_im = tl.zeros_like(Cc_re)
        if C_COMPLEX:
            Cc_im = tl.load(C_ptr + c_off + 1, mask=mask_nd, other=0.0).to(tl.float32)

    u_cols = u_ptr + pid_b * su_b + offs_d[None, :] * su_d
    dt_cols = dt_ptr + pid_b * sdt_b + offs_d[None, :] * sdt_d
    z_cols = z_ptr + pid_b * sz_b + offs_d[None, :] * sz_d
    y_cols = y_ptr + pid_b * sy_b + offs_d[None, :] * sy_d
    B_rows = B_ptr + pid_b * sB_b + offs_n * sB_n
    C_rows = C_ptr + pid_b * sC_b + offs_n * sC_n
    st_off = ((pid_b * dim + offs_d[None, :]) * nchunks * dstate + offs_n[:, None]) * R
    seg_off = (((pid_b * nseg + pid_s) * dim + offs_d[None, :]) * dstate + offs_n[:, None]) * R
    h_re = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)
    h_im = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)
    if HAS_INIT:
        h_re = tl.load(seg_ptr + seg_off, mask=mask_nd, other=0.0)
        if IS_COMPLEX:
            h_im = tl.load(seg_ptr + seg_off + 1, mask=mask_nd, other=0.0)
    dsum = tl.zeros((BLOCK_D,), tl.float32)
    KS: tl.constexpr = BLOCK_L // SUB_L
    for cs in tl.range(c0 * KS, tl.minimum(c1 * KS, tl.cdiv(seqlen, SUB_L)), num_stages=STAGES):
        if SAVE_STATES:
            if cs % KS == 0:
                c = cs // KS
                tl.store(states_ptr + st_off + c * dstate * R, h_re, mask=mask_nd)
                if IS_COMPLEX:
                    tl.store(states_ptr + st_off + c * dstate * R + 1, h_im, mask=mask_nd)
        t = cs * SUB_L + offs_l
        m2 = (t < seqlen)[:, None] & mask_d[None, :]
        U = tl.load(u_cols + t[:, None] * su_l, mask=m2, other=0.0).to(tl.float32)
        if DT_LTI:
            DT = tl.where(m2, dtc[None, :], 0.0)
        else:
            raw = tl.load(dt_cols + t[:, None] * sdt_l, mask=m2, other=0.0).to(tl.float32) + bias[None, :]
            DT = raw
            if SOFTPLUS:
                DT = softplus_fast(raw, FAST)
            DT = tl.where(m2, DT, 0.0)
        if LOCAL:
            dsum += tl.sum(DT, axis=0)
        DU = DT * U
        Y = tl.zeros((SUB_L, BLOCK_D), tl.float32)
        for i0 in range(0, SUB_L, UNROLL):  # UNROLL steps unrolled per iteration (loads can be issued early)
            for i1 in tl.static_range(UNROLL):
                i = i0 + i1
                sel = (offs_l == i)[:, None]
                ti = cs * SUB_L + i
                valid = ti < seqlen
                du_i = tl.sum(tl.where(sel, DU, 0.0), axis=0)[None, :]
                if DT_LTI:
                    a_re = tl.where(valid, ac_re, 1.0)
                    a_im = tl.where(valid, ac_im, 0.0)
                else:
                    dt_i = tl.sum(tl.where(sel, DT, 0.0), axis=0)[None, :]
                    a_re, a_im = exp_dtA(dt_i, A_re, A_im, IS_COMPLEX)
                if B_LTI:
                    B_re, B_im = Bc_re, Bc_im
                else:
                    B_re, B_im = _bc_step(B_rows, ti, sB_l, mask_n & valid, B_COMPLEX, not EVEN)
                if IS_COMPLEX:
                    b_re = du_i * B_re
                    b_im = du_i * B_im
                    h_re, h_im = a_re * h_re - a_im * h_im + b_re, a_re * h_im + a_im * h_re + b_im
                else:
                    h_re = a_re * h_re + du_i * B_re
                if not LOCAL:
                    if C_LTI:
                        C_re, C_im = Cc_re, Cc_im
                    else:
                        C_re, C_im = _bc_step(C_rows, ti, sC_l, mask_n & valid, C_COMPLEX, not EVEN)
                    prod = C_re * h_re
                    if IS_COMPLEX:
                        if C_COMPLEX:
                            prod -= C_im * h_im
                        prod = 2.0 * prod
                    Y = tl.where(sel, tl.sum(prod, axis=0)[None, :], Y)
        if not LOCAL:
            Y += Dv[None, :] * U
            if HAS_Z:
                Z = tl.load(z_cols + t[:, None] * sz_l, mask=m2, other=0.0).to(tl.float32)
                Y = silu_gate(Y, Z, FAST)
            tl.store(y_cols + t[:, None] * sy_l, Y.to(y_ptr.dtype.element_ty), mask=m2)

    if LOCAL:
        tl.store(seg_ptr + seg_off, h_re, mask=mask_nd)
        if IS_COMPLEX:
            tl.store(seg_ptr + seg_off + 1, h_im, mask=mask_nd)
        tl.store(dsum_ptr + (pid_b * nseg + pid_s) * dim + offs_d, dsum, mask=mask_d)
    else:
        hl_off = ((pid_b * dim + offs_d[None, :]) * dstate + offs_n[:, None]) * R
        m_last = mask_nd & (pid_s == nseg - 1)
        tl.store(hlast_ptr + hl_off, h_re, mask=m_last)
        if IS_COMPLEX:
            tl.store(hlast_ptr + hl_off + 1, h_im, mask=m_last)


#: the sequential forward as Triton compiles it by default: unit strides specialised (with L-contiguous u/Δ/z/y
#: the tiles put L across lanes, coalesced, and each step shuffles across lanes)
_scan_fwd_seq_kernel = triton.jit(_scan_fwd_seq)
#: the same kernel without the unit-L-stride specialisation (``ScanConfig.seq_lanes``): one channel per lane,
#: its steps in registers, no shuffles in the time loop; loads of a tile are 32 channels' rows, one step apart
_SEQ_L_STRIDES = ["su_l", "sdt_l", "sz_l", "sy_l"]
_scan_fwd_seq_lanes_kernel = triton.jit(do_not_specialize=_SEQ_L_STRIDES)(_scan_fwd_seq)
#: steps per tile of :func:`_scan_bwd_local_sum_kernel` ((BLOCK_N, 128) tiles; its warps: ``ScanConfig.bwd_local_sum``)
LOCAL_SUM_TILE = 128


@triton.jit
def _sum_pass_setup(A_ptr, bias_ptr, dt_ptr, pid_b, pid_d, pid_s, seg_chunks, nchunks, dstate, sA_d, sA_n, sdt_b, sdt_d,
                    DT_LTI: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, BLOCK_N: tl.constexpr,
                    BLOCK_L: tl.constexpr):
    """What the pass-1 sum kernel (:func:`_scan_bwd_local_sum_kernel`) sets up for its channel and segment: its steps
    [t_lo, t_hi), the states and their mask, A · log2 e, Δ's bias, the constant Δ (DT_LTI; else 0) and Δ's row."""
    t_lo = pid_s * seg_chunks * BLOCK_L
    t_hi = tl.minimum((pid_s + 1) * seg_chunks, nchunks) * BLOCK_L
    offs_n = tl.arange(0, BLOCK_N)
    mask_n = offs_n < dstate
    A2 = tl.load(A_ptr + pid_d * sA_d + offs_n * sA_n, mask=mask_n, other=0.0).to(tl.float32) * LOG2E
    bias = 0.0
    if HAS_BIAS:
        bias = tl.load(bias_ptr + pid_d).to(tl.float32)
    dtc = 0.0
    if DT_LTI:
        dtc = tl.load(dt_ptr + pid_b * sdt_b + pid_d * sdt_d).to(tl.float32) + bias
        if SOFTPLUS:
            dtc = softplus(dtc)
    return t_lo, t_hi, offs_n, mask_n, A2, bias, dtc, dt_ptr + pid_b * sdt_b + pid_d * sdt_d


@triton.jit
def _bc_of_channel(ptr, pid_b, pid_d, offs_n, mask_n, s_b, s_d, s_n, LTI: tl.constexpr):
    """Real B or C for one channel in the pass-1 sum kernel: (the (BLOCK_N,) constant where LTI, else 0; the
    (BLOCK_N, 1) row pointers of the batch element, used where selective)."""
    const = tl.zeros_like(offs_n).to(tl.float32)
    if LTI:
        const = tl.load(ptr + pid_d * s_d + offs_n * s_n, mask=mask_n, other=0.0).to(tl.float32)
    return const, ptr + pid_b * s_b + offs_n[:, None] * s_n


@triton.jit
def _seg_carry_kernel(
    loc_ptr, dsum_ptr, A_ptr, init_ptr, dim, dstate, nseg, sA_d, sA_n,
    IS_COMPLEX: tl.constexpr, REVERSE: tl.constexpr, R: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """Pass 2: carry the state across segments, serially (tiny: batch·d·N·nseg elements).

    Forward: H_s = exp(A S_s) H_{s-1} + loc_s, init_s = H_{s-1}. Backward (REVERSE): the adjoint
    runs from the last segment down with the conjugate decay. S_s = the segment's sum of Δ."""
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < dim
    mask_dn = mask_d[:, None] & (offs_n < dstate)[None, :]
    a_off = offs_d[:, None] * sA_d + offs_n[None, :] * sA_n
    A_re = tl.load(A_ptr + a_off, mask=mask_dn, other=0.0).to(tl.float32)
    A_im = tl.zeros_like(A_re)
    if IS_COMPLEX:
        A_im = tl.load(A_ptr + a_off + 1, mask=mask_dn, other=0.0).to(tl.float32)
    h_re = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    h_im = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    for i in range(nseg):
        s = i
        if REVERSE:
            s = nseg - 1 - i
        row = (pid_b * nseg + s) * dim + offs_d
        off = (row[:, None] * dstate + offs_n[None, :]) * R
        tl.store(init_ptr + off, h_re, mask=mask_dn)
        if IS_COMPLEX:
            tl.store(init_ptr + off + 1, h_im, mask=mask_dn)
        S = tl.load(dsum_ptr + row, mask=mask_d, other=0.0)[:, None]
        d_re, d_im = exp_dtA(S, A_re, A_im, IS_COMPLEX)
        l_re = tl.load(loc_ptr + off, mask=mask_dn, other=0.0)
        if IS_COMPLEX:
            if REVERSE:
                d_im = -d_im
            l_im = tl.load(loc_ptr + off + 1, mask=mask_dn, other=0.0)
            h_re, h_im = d_re * h_re - d_im * h_im + l_re, d_re * h_im + d_im * h_re + l_im
        else:
            h_re = d_re * h_re + l_re


@triton.jit
def _rows_sum(src_ptr, nrows, width, offs, mask, BLOCK: tl.constexpr):
    """Σ over ``nrows`` rows of a (nrows, width) float32 matrix, at columns ``offs``."""
    acc = tl.zeros((BLOCK,), tl.float32)
    for r in range(nrows):
        acc += tl.load(src_ptr + r * width + offs, mask=mask, other=0.0)
    return acc


@triton.jit
def _bwd_finish_kernel(
    dA_ptr, dD_ptr, dts_ptr, dB_ptr, dC_ptr, oA_ptr, oD_ptr, odt_ptr, obias_ptr, oB_ptr, oC_ptr,
    nrows, dim, wA, wB, wC,
    HAS_D: tl.constexpr, DT_LTI: tl.constexpr, HAS_BIAS: tl.constexpr, B_LTI: tl.constexpr, C_LTI: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """The backward's last step in one launch: the per-(batch, segment) partial grads summed over their ``nrows`` rows
    and written in the parameters' dtypes: dA (width wA = d·N·R), dD and the Δ sum (width d; the LTI Δ's grad and
    delta_bias's are that same sum, written to two tensors), and the LTI dB / dC (widths wB, wC). Before, three to five
    PyTorch reductions and casts, each a launch and some µs of host Python at short L (kernels/launch.py)."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < wA
    tl.store(oA_ptr + offs, _rows_sum(dA_ptr, nrows, wA, offs, m, BLOCK), mask=m)
    md = offs < dim
    if HAS_D:
        tl.store(oD_ptr + offs, _rows_sum(dD_ptr, nrows, dim, offs, md, BLOCK).to(oD_ptr.dtype.element_ty), mask=md)
    if DT_LTI or HAS_BIAS:
        g = _rows_sum(dts_ptr, nrows, dim, offs, md, BLOCK)
        if DT_LTI:
            tl.store(odt_ptr + offs, g.to(odt_ptr.dtype.element_ty), mask=md)
        if HAS_BIAS:
            tl.store(obias_ptr + offs, g.to(obias_ptr.dtype.element_ty), mask=md)
    if B_LTI:
        mb = offs < wB
        tl.store(oB_ptr + offs, _rows_sum(dB_ptr, nrows, wB, offs, mb, BLOCK), mask=mb)
    if C_LTI:
        mc = offs < wC
        tl.store(oC_ptr + offs, _rows_sum(dC_ptr, nrows, wC, offs, mc, BLOCK), mask=mc)


@triton.jit
def _sel_grad_out(ptr, vals, pid_b, pid_d, offs_n, t, mtn, dstate, seqlen, R: tl.constexpr, part: tl.constexpr,
                  PARTIAL: tl.constexpr):
    """One chunk's selective dB or dC, (BLOCK_L, BLOCK_N) summed over the program's channels: added
    atomically into (batch, N, L, R), or with ``PARTIAL`` stored into this channel block's own slice
    of (batch, channel blocks, L, N, R) (N fastest), summed over the blocks in PyTorch."""
    if PARTIAL:
        off = (((pid_b * tl.num_programs(1) + pid_d) * seqlen + t[:, None]) * dstate + offs_n[None, :]) * R + part
        tl.store(ptr + off, vals, mask=mtn)
    else:
        off = ((pid_b * dstate + offs_n[None, :]) * seqlen + t[:, None]) * R + part
        tl.atomic_add(ptr + off, vals, mask=mtn, sem="relaxed")


@triton.jit
def _scan_bwd_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, dy_ptr, states_ptr,
    du_ptr, ddt_ptr, dz_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, ddt_sum_ptr, ginit_ptr,
    dim, dstate, seqlen, nchunks, seg_chunks, nseg,
    su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sA_d, sA_n,
    sB_b, sB_d, sB_n, sB_l, sC_b, sC_d, sC_n, sC_l,
    sz_b, sz_d, sz_l, sdy_b, sdy_d, sdy_l,
    IS_COMPLEX: tl.constexpr, B_COMPLEX: tl.constexpr, C_COMPLEX: tl.constexpr,
    B_LTI: tl.constexpr, C_LTI: tl.constexpr, DT_LTI: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    R: tl.constexpr, RB: tl.constexpr, RC: tl.constexpr, FAC: tl.constexpr, HAS_INIT: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, PARTIAL: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    pid_s = tl.program_id(2)
    c0 = pid_s * seg_chunks
    c1 = tl.minimum(c0 + seg_chunks, nchunks)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    offs_l = tl.arange(0, BLOCK_L)
    mask_d = offs_d < dim
    mask_dn = mask_d[:, None] & (offs_n < dstate)[None, :]
    A_re, A_im, Dv, bias, dtc, dtc_raw, ac_re, ac_im = _setup(
        A_ptr, D_ptr, bias_ptr, dt_ptr, pid_b, offs_d, offs_n, mask_d, mask_dn, sA_d, sA_n, sdt_b, sdt_d,
        IS_COMPLEX, HAS_D, HAS_BIAS, SOFTPLUS, DT_LTI,
    )

    # contiguous (batch, d, L) outputs du, ddelta, dz, in the dtypes of u, delta, z
    g_rows = (pid_b * dim + offs_d[:, None]) * seqlen
    u_rows = u_ptr + pid_b * su_b + offs_d[:, None] * su_d
    dt_rows = dt_ptr + pid_b * sdt_b + offs_d[:, None] * sdt_d
    z_rows = z_ptr + pid_b * sz_b + offs_d[:, None] * sz_d
    dy_rows = dy_ptr + pid_b * sdy_b + offs_d[:, None] * sdy_d
    mask_n = offs_n < dstate
    if B_LTI:
        Bc_re, Bc_im = _bc_const(B_ptr, offs_d, offs_n, mask_dn, sB_d, sB_n, B_COMPLEX)
    if C_LTI:
        Cc_re, Cc_im = _bc_const(C_ptr, offs_d, offs_n, mask_dn, sC_d, sC_n, C_COMPLEX)
    st_off = ((pid_b * dim + offs_d[:, None]) * nchunks * dstate + offs_n[None, :]) * R
    first = (offs_l == 0)[None, :, None]

    # (batch, nseg, d, N, R) adjoint entering the segment from the right (HAS_INIT)
    pdn = (((pid_b * nseg + pid_s) * dim + offs_d[:, None]) * dstate + offs_n[None, :])
    G_re = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    G_im = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    if HAS_INIT:
        G_re = tl.load(ginit_ptr + pdn * R, mask=mask_dn, other=0.0)
        if IS_COMPLEX:
            G_im = tl.load(ginit_ptr + pdn * R + 1, mask=mask_dn, other=0.0)
    dA_re = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    dA_im = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    dB_re = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    dB_im = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    dC_re = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    dC_im = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    dD_acc = tl.zeros((BLOCK_D,), tl.float32)
    ddt_acc = tl.zeros((BLOCK_D,), tl.float32)
    # (no hand pipelining here: it costs ~50 registers per thread, halving the programs per SM)
    for ci in range(c0, c1):
        c = c1 - 1 - (ci - c0)
        t = c * BLOCK_L + offs_l
        mask_t = t < seqlen
        m2 = mask_d[:, None] & mask_t[None, :]
        m3 = mask_t[None, :, None]
        mtn = mask_t[:, None] & mask_n[None, :]
        u = tl.load(u_rows + t[None, :] * su_l, mask=m2, other=0.0).to(tl.float32)
        dy = tl.load(dy_rows + t[None, :] * sdy_l, mask=m2, other=0.0).to(tl.float32)
        if not DT_LTI:
            dt_in = tl.load(dt_rows + t[None, :] * sdt_l, mask=m2, other=0.0)
        if HAS_Z:
            zz = tl.load(z_rows + t[None, :] * sz_l, mask=m2, other=0.0).to(tl.float32)
        h0_re = tl.load(states_ptr + st_off + c * dstate * R, mask=mask_dn, other=0.0)[:, None, :]
        if IS_COMPLEX:
            h0_im = tl.load(states_ptr + st_off + c * dstate * R + 1, mask=mask_dn, other=0.0)[:, None, :]
        if B_LTI:
            B_re, B_im = Bc_re, Bc_im
        else:
            B_re, B_im = _bc_chunk(B_ptr, pid_b, offs_n, t, mask_n, mask_t, sB_b, sB_n, sB_l, B_COMPLEX)
        if C_LTI:
            C_re, C_im = Cc_re, Cc_im
        else:
            C_re, C_im = _bc_chunk(C_ptr, pid_b, offs_n, t, mask_n, mask_t, sC_b, sC_n, sC_l, C_COMPLEX)

        if DT_LTI:
            dt = tl.where(m2, dtc[:, None], 0.0)
            dt_raw = dtc_raw[:, None]
            a_re = tl.where(m3, ac_re, 1.0)
            a_im = tl.where(m3, ac_im, 0.0)
            # decay of the next step: constant (its value past the end multiplies a zero adjoint)
            al_re = tl.broadcast_to(ac_re, (BLOCK_D, BLOCK_L, BLOCK_N))
            al_im = -tl.broadcast_to(ac_im, (BLOCK_D, BLOCK_L, BLOCK_N))
        else:
            dt, dt_raw = _delta_from_raw(dt_in, m2, bias, HAS_BIAS, SOFTPLUS)
            a_re, a_im = exp_dtA(dt[:, :, None], A_re, A_im, IS_COMPLEX)
            # Δ one step ahead (mostly cache hits: the same rows were just loaded)
            t1 = t + 1
            m2n = mask_d[:, None] & (t1 < seqlen)[None, :]
            dt_next, dt_next_raw = _delta_rows(dt_rows, t1[None, :] * sdt_l, m2n, bias, HAS_BIAS, SOFTPLUS)
            al_re, al_im = exp_dtA(dt_next[:, :, None], A_re, A_im, IS_COMPLEX)
            al_im = -al_im
        dt3 = dt[:, :, None]
        du3 = (dt * u)[:, :, None]
        b_re = du3 * B_re

        # recompute the states h_t of this chunk from its start state, and y_ssm
        if IS_COMPLEX:
            b_im = du3 * B_im
            pa_re, pa_im, pb_re, pb_im = tl.associative_scan((a_re, a_im, b_re, b_im), 1, _combine_complex)
            hs_re = pb_re + pa_re * h0_re - pa_im * h0_im
            hs_im = pb_im + pa_re * h0_im + pa_im * h0_re
            y = 2.0 * tl.sum(C_re * hs_re - C_im * hs_im, axis=2)
        else:
            pa, pb = tl.associative_scan((a_re, b_re), 1, _combine_real)
            hs_re = pb + pa * h0_re
            y = tl.sum(C_re * hs_re, axis=2)
        out = y + Dv[:, None] * u
        dout = dy
        if HAS_Z:
            sg = tl.sigmoid(zz)
            dz = dy * out * sg * (1.0 + zz * (1.0 - sg))
            tl.store(dz_ptr + g_rows + t[None, :], dz.to(dz_ptr.dtype.element_ty), mask=m2)
            dout = dy * zz * sg
        dD_acc += tl.sum(dout * u, axis=1)

        # adjoint: G_t = conj(a_{t+1}) G_{t+1} + FAC dout_t conj(C_t), reverse scan within the chunk
        c_re = FAC * dout[:, :, None] * C_re
        if IS_COMPLEX:
            c_im = -FAC * dout[:, :, None] * C_im
            ra_re, ra_im, rb_re, rb_im = tl.associative_scan(
                (al_re, al_im, c_re, c_im), 1, _combine_complex, reverse=True
            )
            g_re = rb_re + ra_re * G_re[:, None, :] - ra_im * G_im[:, None, :]
            g_im = rb_im + ra_re * G_im[:, None, :] + ra_im * G_re[:, None, :]
            G_im = tl.sum(tl.where(first, g_im, 0.0), axis=1)
        else:
            ra, rb = tl.associative_scan((al_re, c_re), 1, _combine_real, reverse=True)
            g_re = rb + ra * G_re[:, None, :]
        G_re = tl.sum(tl.where(first, g_re, 0.0), axis=1)

        # gradients of this chunk; w = G conj(h_t - b_t) = G conj(a_t h_{t-1})
        if IS_COMPLEX:
            s = tl.sum(g_re * B_re + g_im * B_im, axis=2)
            hm_re = hs_re - b_re
            hm_im = hs_im - b_im
            w_re = g_re * hm_re + g_im * hm_im
            w_im = g_im * hm_re - g_re * hm_im
            gdt = u * s + tl.sum(A_re * w_re + A_im * w_im, axis=2)
            dA_im += tl.sum(dt3 * w_im, axis=1)
            gB_im = g_im * du3
            gC_im = -FAC * dout[:, :, None] * hs_im
        else:
            s = tl.sum(g_re * B_re, axis=2)
            w_re = g_re * (hs_re - b_re)
            gdt = u * s + tl.sum(A_re * w_re, axis=2)
        dA_re += tl.sum(dt3 * w_re, axis=1)
        gB_re = g_re * du3
        gC_re = FAC * dout[:, :, None] * hs_re
        du = dt * s + dout * Dv[:, None]
        tl.store(du_ptr + g_rows + t[None, :], du.to(du_ptr.dtype.element_ty), mask=m2)
        if SOFTPLUS:
            gdt = gdt * tl.sigmoid(dt_raw)
        gdt = tl.where(m2, gdt, 0.0)
        ddt_acc += tl.sum(gdt, axis=1)
        if not DT_LTI:
            tl.store(ddt_ptr + g_rows + t[None, :], gdt.to(ddt_ptr.dtype.element_ty), mask=m2)

        # B, C: LTI -> accumulate over L; selective -> sum over the channels of the block, atomics
        if B_LTI:
            dB_re += tl.sum(gB_re, axis=1)
            if B_COMPLEX:
                dB_im += tl.sum(gB_im, axis=1)
        else:
            _sel_grad_out(dB_ptr, tl.sum(gB_re, axis=0), pid_b, pid_d, offs_n, t, mtn, dstate, seqlen, RB, 0, PARTIAL)
            if B_COMPLEX:
                _sel_grad_out(dB_ptr, tl.sum(gB_im, axis=0), pid_b, pid_d, offs_n, t, mtn, dstate, seqlen, RB, 1, PARTIAL)
        if C_LTI:
            dC_re += tl.sum(gC_re, axis=1)
            if C_COMPLEX:
                dC_im += tl.sum(gC_im, axis=1)
        else:
            _sel_grad_out(dC_ptr, tl.sum(gC_re, axis=0), pid_b, pid_d, offs_n, t, mtn, dstate, seqlen, RC, 0, PARTIAL)
            if C_COMPLEX:
                _sel_grad_out(dC_ptr, tl.sum(gC_im, axis=0), pid_b, pid_d, offs_n, t, mtn, dstate, seqlen, RC, 1, PARTIAL)

    # per-(batch, segment) partial sums: dA, LTI dB/dC (batch, nseg, d, N[, 2]); dD, ddelta-sum (batch, nseg, d)
    tl.store(dA_ptr + pdn * R, dA_re, mask=mask_dn)
    if IS_COMPLEX:
        tl.store(dA_ptr + pdn * R + 1, dA_im, mask=mask_dn)
    if B_LTI:
        tl.store(dB_ptr + pdn * RB, dB_re, mask=mask_dn)
        if B_COMPLEX:
            tl.store(dB_ptr + pdn * RB + 1, dB_im, mask=mask_dn)
    if C_LTI:
        tl.store(dC_ptr + pdn * RC, dC_re, mask=mask_dn)
        if C_COMPLEX:
            tl.store(dC_ptr + pdn * RC + 1, dC_im, mask=mask_dn)
    row = (pid_b * nseg + pid_s) * dim + offs_d
    tl.store(dD_ptr + row, dD_acc, mask=mask_d)
    tl.store(ddt_sum_ptr + row, ddt_acc, mask=mask_d)


#: the closed-form scans of :func:`_const_decay_scan` run while 0 <= -Re(Δ A) · CHUNK / 2 <= this (a decay): their
#: factors a^(±k) then stay within e^±30 of 1 in float32 (at the S4D-Lin start, Re A = -1/2 and Δ <= 0.1, the
#: exponent is at most 6.4 for chunks of 256 steps); above it the state falls back to the associative scans
CLOSED_LIM = tl.constexpr(30.0)
TWO_PI_HI = tl.constexpr(6.28125)  # 2π in two parts (Cody-Waite): turns · 6.28125 is exact for |turns| < 2^15
TWO_PI_LO = tl.constexpr(0.0019353071795864769)
INV_TWO_PI = tl.constexpr(0.15915494309189535)
#: ... and without flipping the adjoint across lanes (:func:`_closed_scans_time`) while -Re(Δ A) · CHUNK <= this
CLOSED_TIME_LIM = tl.constexpr(4.0)


@triton.jit
def _turn(ang):
    """``ang`` brought into [-π, π] (the range where the fast sin and cos are accurate)."""
    turns = tl.floor(ang * INV_TWO_PI + 0.5)
    return ang - turns * TWO_PI_HI - turns * TWO_PI_LO


@triton.jit
def _cos_sin(ang, FAST: tl.constexpr):
    """cos and sin of an angle in [-π, π]: with ``FAST`` (compiled for a GPU) the MUFU approximations, one
    instruction each (absolute error about 5e-7 there), where tl.cos / tl.sin compile to libdevice's full range
    reduction with its branches (1215 PTX lines for one tile against 225); the CPU interpreter has no fast ones."""
    if FAST:
        return libdevice.fast_cosf(ang), libdevice.fast_sinf(ang)
    return tl.cos(ang), tl.sin(ang)


@triton.jit
def _const_decay_pow(p_re, p_im, k, IS_COMPLEX: tl.constexpr, FAST: tl.constexpr):
    """exp(p · k) as (re, im) for the exponent p = Δ A (complex: p_re + i p_im) and a real k (scalar or tile)."""
    mag = tl.exp2(p_re * LOG2E * k)
    if IS_COMPLEX:
        c, s = _cos_sin(_turn(p_im * k), FAST)
        return mag * c, mag * s
    return mag, 0.0 * mag


@triton.jit
def _const_decay_scan(m, fm, c, s, x_re, x_im, i_re, i_im, init_re, init_im, IS_COMPLEX: tl.constexpr):
    """v_t = a v_(t-1) + x_t along the tile from v_(-1) = init, for a decay a that is the same at every step, in
    closed form with one cumulative sum per component (the associative scan of (a, x) pairs also carries the
    products of the decays, in complex multiplies, and moves twice the values across lanes).

    With E_t = a^(t-M) = m (c + i s), F_t = 1/E_t = fm (c - i s) and i = a^(M+1) (from the caller, which also
    passes the conjugates for the adjoint's decay conj(a)):

        v_t = a^(t+1) init + Σ_(s<=t) a^(t-s) x_s = E_t (i · init + Σ_(s<=t) F_s x_s).

    |F_s| grows along the tile (|a| <= 1), so every partial sum's largest term is its last: nothing cancels, and
    the rounding is that of the recurrence. The caller keeps |E|, |F| <= e^CLOSED_LIM."""
    if IS_COMPLEX:
        S_re = tl.cumsum(fm * (c * x_re + s * x_im), 0) + (i_re * init_re - i_im * init_im)
        S_im = tl.cumsum(fm * (c * x_im - s * x_re), 0) + (i_re * init_im + i_im * init_re)
        return m * (c * S_re - s * S_im), m * (c * S_im + s * S_re)
    return m * (tl.cumsum(fm * x_re, 0) + i_re * init_re), x_im


@triton.jit
def _pair_scans(a_re, a_im, b_re, b_im, h0_re, h0_im, al_re, al_im, cc_re, cc_im, G_re, G_im, edge,
                REVERSED: tl.constexpr, CHUNK: tl.constexpr, LANE_ASM: tl.constexpr, IS_COMPLEX: tl.constexpr):
    """The state-loop backward's two scans of one state over a chunk, as associative scans of (decay, input)
    pairs: the states h_t from the chunk's start state h0, and the adjoint from the carry G after the chunk
    (decays ``al`` and inputs ``cc`` in reversed lane order with ``REVERSED``, else in time order, scanned in
    reverse), brought to time order by :func:`_adjoint_in_time_order`. Returns (h_re, h_im, g_re, g_im, g0_re,
    g0_im), g0 the adjoint at the chunk's first step; for real A the im parts repeat the re parts (unused)."""
    if IS_COMPLEX:
        pa_re, pa_im, pb_re, pb_im = tl.associative_scan((a_re, a_im, b_re, b_im), 0, _combine_complex)
        ra_re, ra_im, rb_re, rb_im = tl.associative_scan((al_re, al_im, cc_re, cc_im), 0, _combine_complex,
                                                         reverse=not REVERSED)
        h_re = pb_re + pa_re * h0_re - pa_im * h0_im
        h_im = pb_im + pa_re * h0_im + pa_im * h0_re
        g_re = rb_re + ra_re * G_re - ra_im * G_im
        g_im = rb_im + ra_re * G_im + ra_im * G_re
    else:
        pa, pb = tl.associative_scan((a_re, b_re), 0, _combine_real)
        ra, rb = tl.associative_scan((al_re, cc_re), 0, _combine_real, reverse=not REVERSED)
        h_re = pb + pa * h0_re
        h_im = h_re
        g_re = rb + ra * G_re
        g_im = g_re
    g_re, g_im, g0_re, g0_im = _adjoint_in_time_order(g_re, g_im, edge, REVERSED, CHUNK, LANE_ASM, IS_COMPLEX)
    return h_re, h_im, g_re, g_im, g0_re, g0_im


@triton.jit
def _closed_factors(p_re, p_im, tm, M: tl.constexpr, IS_COMPLEX: tl.constexpr, FAST: tl.constexpr):
    """The closed-form scans' factors for exponent p = Δ A and steps ``tm`` = t - M from the chunk's middle:
    |E_t| = m, |F_t| = fm, the phase (c, s) of E_t (1, 0 for real A) and a^(M+1) = (i_re, i_im)."""
    lm = p_re * LOG2E * tm
    i_re, i_im = _const_decay_pow(p_re, p_im, M + 1.0, IS_COMPLEX, FAST)
    c, s = 1.0, 0.0
    if IS_COMPLEX:
        c, s = _cos_sin(_turn(p_im * tm), FAST)
    return tl.exp2(lm), tl.exp2(-lm), c, s, i_re, i_im


@triton.jit
def _closed_scans(p_re, p_im, tm, b_re, b_im, h0_re, h0_im, cc_re, cc_im, G_re, G_im,
                  CHUNK: tl.constexpr, IS_COMPLEX: tl.constexpr, FAST: tl.constexpr):
    """:func:`_pair_scans`' two scans (the adjoint over reversed lanes, not yet flipped) when the decay a = exp(p) is the same at every
    step (Δ and A LTI), by :func:`_const_decay_scan`. In reversed lanes t' = CHUNK-1-t the adjoint
    g_t = conj(a) g_(t+1) + cc_t is the forward recurrence g'_t' = conj(a) g'_(t'-1) + cc'_t' from G, so both
    scans share E_t, F_t (one exp2 each, one cos and sin): the adjoint's are their conjugates."""
    m, fm, c, s, i_re, i_im = _closed_factors(p_re, p_im, tm, CHUNK // 2, IS_COMPLEX, FAST)
    if IS_COMPLEX:
        h_re, h_im = _const_decay_scan(m, fm, c, s, b_re, b_im, i_re, i_im, h0_re, h0_im, True)
        g_re, g_im = _const_decay_scan(m, fm, c, -s, cc_re, cc_im, i_re, -i_im, G_re, G_im, True)
        return h_re, h_im, g_re, g_im
    h, _ = _const_decay_scan(m, fm, c, s, b_re, b_re, i_re, 0.0, h0_re, 0.0, False)
    g, _ = _const_decay_scan(m, fm, c, s, cc_re, cc_re, i_re, 0.0, G_re, 0.0, False)
    return h, h, g, g


@triton.jit
def _closed_scans_time(p_re, p_im, tm, b_re, b_im, h0_re, h0_im, cc_re, cc_im, G_re, G_im,
                       CHUNK: tl.constexpr, IS_COMPLEX: tl.constexpr, FAST: tl.constexpr):
    """:func:`_closed_scans` with the adjoint's input ``cc`` and the adjoint in time order, so that nothing is
    flipped across lanes (a flip is 5 shuffles per register: 80 of the state loop's 180 for complex A, CHUNK 256).
    The adjoint's suffix sums R_t = Σ_(s>=t) Ē_s cc_s come from one cumulative sum P and the total T as
    T - P_t + x_t, which cancels: its rounding grows by up to e^(-Re(ΔA) · CHUNK), so the caller takes this
    path only while that exponent is at most CLOSED_TIME_LIM (55 ulp; the associative scans' rounding is a few ulp).

        g_t = conj(a)^(CHUNK-t) G + Σ_(s>=t) conj(a)^(s-t) cc_s = conj(F_t) (conj(a^M) G + R_t),  M = CHUNK / 2,

    and the carry to the chunk on the left is g_0 = conj(a^M) (T + conj(a^M) G). Returns (h_re, h_im, g_re, g_im,
    g0_re, g0_im)."""
    M: tl.constexpr = CHUNK // 2
    m, fm, c, s, i_re, i_im = _closed_factors(p_re, p_im, tm, M, IS_COMPLEX, FAST)
    k_re, k_im = _const_decay_pow(p_re, p_im, M * 1.0, IS_COMPLEX, FAST)  # a^M
    if IS_COMPLEX:
        h_re, h_im = _const_decay_scan(m, fm, c, s, b_re, b_im, i_re, i_im, h0_re, h0_im, True)
        x_re = m * (c * cc_re + s * cc_im)  # conj(E_t) cc_t
        x_im = m * (c * cc_im - s * cc_re)
        T_re = tl.sum(x_re, 0)
        T_im = tl.sum(x_im, 0)
        G1_re = k_re * G_re + k_im * G_im  # conj(a^M) G
        G1_im = k_re * G_im - k_im * G_re
        R_re = T_re - tl.cumsum(x_re, 0) + x_re + G1_re
        R_im = T_im - tl.cumsum(x_im, 0) + x_im + G1_im
        g_re = fm * (c * R_re - s * R_im)  # conj(F_t) R_t
        g_im = fm * (c * R_im + s * R_re)
        g0_re = k_re * (T_re + G1_re) + k_im * (T_im + G1_im)
        g0_im = k_re * (T_im + G1_im) - k_im * (T_re + G1_re)
        return h_re, h_im, g_re, g_im, g0_re, g0_im
    h, _ = _const_decay_scan(m, fm, c, s, b_re, b_re, i_re, 0.0, h0_re, 0.0, False)
    x = m * cc_re
    T = tl.sum(x, 0)
    G1 = k_re * G_re
    g = fm * (T - tl.cumsum(x, 0) + x + G1)
    g0 = k_re * (T + G1)
    return h, h, g, g, g0, g0


@triton.jit
def _adjoint_in_time_order(g_re, g_im, edge, REVERSED: tl.constexpr, CHUNK: tl.constexpr, LANE_ASM: tl.constexpr,
                           IS_COMPLEX: tl.constexpr):
    """The adjoint of a chunk from its scan's lane order (reversed with ``REVERSED``) to time order, and its value
    at the chunk's first step (lane ``edge``), the carry for the chunk on the left: (g_re, g_im, g0_re, g0_im)."""
    g0_re = tl.sum(tl.where(edge, g_re, 0.0), axis=0)
    g0_im = g0_re
    if IS_COMPLEX:
        g0_im = tl.sum(tl.where(edge, g_im, 0.0), axis=0)
    if REVERSED:
        g_re = _flip_chunk(g_re, CHUNK, LANE_ASM)
        if IS_COMPLEX:
            g_im = _flip_chunk(g_im, CHUNK, LANE_ASM)
    return g_re, g_im, g0_re, g0_im


@triton.jit
def _bc_of_state(ptr, t_off, mask_t, LTI: tl.constexpr, CPLX: tl.constexpr):
    """B or C of one state for the state-loop backward, from a pointer to its (d, N) entry (LTI: a
    scalar) or to its (batch, N, L) row (selective: a (CHUNK,) vector at offsets ``t_off``); (re, im),
    im = 0 when real."""
    if LTI:
        re = tl.load(ptr).to(tl.float32)
        im = 0.0
        if CPLX:
            im = tl.load(ptr + 1).to(tl.float32)
    else:
        re = tl.load(ptr + t_off, mask=mask_t, other=0.0).to(tl.float32)
        im = tl.zeros_like(re)
        if CPLX:
            im = tl.load(ptr + t_off + 1, mask=mask_t, other=0.0).to(tl.float32)
    return re, im


@triton.jit
def _scan_bwd_loop_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, dy_ptr, states_ptr,
    du_ptr, ddt_ptr, dz_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, ddt_sum_ptr, ginit_ptr,
    dim, dstate, seqlen, nchunks, seg_chunks, nseg,
    su_b, su_d, su_l, sdt_b, sdt_d, sdt_l, sA_d, sA_n,
    sB_b, sB_d, sB_n, sB_l, sC_b, sC_d, sC_n, sC_l,
    sz_b, sz_d, sz_l, sdy_b, sdy_d, sdy_l,
    IS_COMPLEX: tl.constexpr, B_COMPLEX: tl.constexpr, C_COMPLEX: tl.constexpr,
    B_LTI: tl.constexpr, C_LTI: tl.constexpr, DT_LTI: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    R: tl.constexpr, RB: tl.constexpr, RC: tl.constexpr, FAC: tl.constexpr, HAS_INIT: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, CHUNK: tl.constexpr, REV_LOADS: tl.constexpr = True,
    LANE_ASM: tl.constexpr = False, ALIGN: tl.constexpr = 1, STAGES: tl.constexpr = 1, UNROLL_N: tl.constexpr = 1,
    CLOSED: tl.constexpr = False, FAST_TRIG: tl.constexpr = False,
):
    """The state-loop backward (``ScanConfig.bwd_loop``): one program per (batch element, channel,
    segment). It walks the segment's chunks of ``CHUNK`` steps from the right; within a chunk, its
    tiles are 1-D along L (lanes along time, coalesced loads and dB/dC atomics), and it loops over
    the N states: per state, a forward scan recomputes h_t from the saved chunk-start state and a
    reverse scan gives the adjoint G_t. The sums over N (du, dΔ, y for the gate) accumulate in
    registers across the loop, so no reduction crosses lanes per step; only the per-chunk carries and
    dA (and LTI dB/dC) are reduced over the chunk. Same outputs as :func:`_scan_bwd_kernel`.

    ``REV_LOADS`` (``ScanConfig.bwd_flip`` off): the adjoint's reverse scan runs as a forward scan over
    tiles loaded in reversed time order (Δ of the next step, the output gradient, the gate and C), and only
    its result is flipped back to time order. Triton lowers ``associative_scan(reverse=True)`` to a flip of
    every input and output (a lane reversal: five butterfly shuffles per register), which made 80 of the
    128 shuffles per state and chunk in the sm_90 PTX (fp32, CHUNK 128, one warp); reversed loads leave
    the flip of g alone (20 for real A).

    ``STAGES``: software-pipelining stages of the loop over the states (``ScanConfig.bwd_stages``); ``UNROLL_N``: states
    per iteration of that loop (``ScanConfig.bwd_unroll_n``: two independent scan chains for the scheduler to interleave).

    ``ALIGN`` (1, 2, 4 or 8): the wrapper's promise that L and the rows' strides are multiples of it. Triton's
    launcher marks an integer only when it is a multiple of 16, and without that its loads and masks are
    one element wide, so its 1-D tiles hold one element per lane in CHUNK / 32 strided repeats and every
    scan runs once per repeat (L = 1000, sc09's 1 kHz level: 156 shuffles per state and chunk in the
    PTX against 68 at L = 1024). With the hint the tiles keep ALIGN neighbouring steps per lane."""
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    pid_s = tl.program_id(2)
    if ALIGN > 1:  # see _promise
        seqlen = seqlen // ALIGN * ALIGN
        su_b, su_d = _promise(su_b, su_d, ALIGN)
        sdy_b, sdy_d = _promise(sdy_b, sdy_d, ALIGN)
        sz_b, sz_d = _promise(sz_b, sz_d, ALIGN)
        if not DT_LTI:
            sdt_b, sdt_d = _promise(sdt_b, sdt_d, ALIGN)
        if not B_LTI:
            sB_b, sB_n = _promise(sB_b, sB_n, ALIGN)
        if not C_LTI:
            sC_b, sC_n = _promise(sC_b, sC_n, ALIGN)
    c0 = pid_s * seg_chunks
    c1 = tl.minimum(c0 + seg_chunks, nchunks)
    t_end = tl.minimum(c1 * BLOCK_L, seqlen)
    offs = tl.arange(0, CHUNK)
    offs_n = tl.arange(0, BLOCK_N)
    mask_n = offs_n < dstate
    first = offs == 0
    last = offs == CHUNK - 1
    tm = (offs - CHUNK // 2).to(tl.float32)  # steps from the chunk's middle, for the closed-form scans (CLOSED)
    # per-channel constants
    Dv = 0.0
    if HAS_D:
        Dv = tl.load(D_ptr + pid_d).to(tl.float32)
    bias = 0.0
    if HAS_BIAS:
        bias = tl.load(bias_ptr + pid_d).to(tl.float32)
    dtc = 0.0
    dtc_raw = 0.0
    if DT_LTI:
        dtc_raw = tl.load(dt_ptr + pid_b * sdt_b + pid_d * sdt_d).to(tl.float32) + bias
        dtc = dtc_raw
        if SOFTPLUS:
            dtc = softplus(dtc_raw)
    u_row = u_ptr + pid_b * su_b + pid_d * su_d
    dt_row = dt_ptr + pid_b * sdt_b + pid_d * sdt_d
    z_row = z_ptr + pid_b * sz_b + pid_d * sz_d
    dy_row = dy_ptr + pid_b * sdy_b + pid_d * sdy_d
    g_row = (pid_b * dim + pid_d) * seqlen
    st_base = (pid_b * dim + pid_d) * nchunks * dstate * R
    a_base = A_ptr + pid_d * sA_d
    B_base = B_ptr + pid_b * sB_b + pid_d * sB_d
    C_base = C_ptr + pid_b * sC_b + pid_d * sC_d
    pdn = ((pid_b * nseg + pid_s) * dim + pid_d) * dstate + offs_n

    # per-state carries and sums, (BLOCK_N,) vectors: the adjoint after the current chunk, dA, LTI dB/dC
    G_re = tl.zeros((BLOCK_N,), tl.float32)
    G_im = tl.zeros((BLOCK_N,), tl.float32)
    if HAS_INIT:
        G_re = tl.load(ginit_ptr + pdn * R, mask=mask_n, other=0.0)
        if IS_COMPLEX:
            G_im = tl.load(ginit_ptr + pdn * R + 1, mask=mask_n, other=0.0)
    dA_re = tl.zeros((BLOCK_N,), tl.float32)
    dA_im = tl.zeros((BLOCK_N,), tl.float32)
    dB_re = tl.zeros((BLOCK_N,), tl.float32)
    dB_im = tl.zeros((BLOCK_N,), tl.float32)
    dC_re = tl.zeros((BLOCK_N,), tl.float32)
    dC_im = tl.zeros((BLOCK_N,), tl.float32)
    dD_acc = 0.0
    ddt_acc = 0.0
    SUB: tl.constexpr = CHUNK // BLOCK_L
    nsub = tl.cdiv(c1 - c0, SUB)
    for j in range(0, nsub):
        cb = c0 + (nsub - 1 - j) * SUB          # saved-state index at this chunk's start
        t = cb * BLOCK_L + offs
        mask_t = t < t_end
        u = tl.load(u_row + t * su_l, mask=mask_t, other=0.0).to(tl.float32)
        dy = tl.load(dy_row + t * sdy_l, mask=mask_t, other=0.0).to(tl.float32)
        dout = dy
        if HAS_Z:
            zz = tl.load(z_row + t * sz_l, mask=mask_t, other=0.0).to(tl.float32)
            sg = tl.sigmoid(zz)
            dout = dy * zz * sg
        if DT_LTI:
            dt = tl.where(mask_t, dtc, 0.0)
            dt_raw = dtc_raw
        else:
            dt_raw = tl.load(dt_row + t * sdt_l, mask=mask_t, other=0.0).to(tl.float32) + bias
            dt = dt_raw
            if SOFTPLUS:
                dt = softplus(dt_raw)
            dt = tl.where(mask_t, dt, 0.0)
            # Δ one step ahead (the decay a_{t+1} of the adjoint; past L it multiplies a zero adjoint)
            t1 = t + 1
            m1 = t1 < seqlen
            dtn = tl.load(dt_row + t1 * sdt_l, mask=m1, other=0.0).to(tl.float32) + bias
            if SOFTPLUS:
                dtn = softplus(dtn)
            dtn = tl.where(m1, dtn, 0.0)
        du3 = dt * u
        if REV_LOADS:
            # the same quantities for the adjoint's scan, in reversed time order (lane order = t descending)
            tr = cb * BLOCK_L + (CHUNK - 1) - offs
            mask_r = tr < t_end
            dout_r = tl.load(dy_row + tr * sdy_l, mask=mask_r, other=0.0).to(tl.float32)
            if HAS_Z:
                zr = tl.load(z_row + tr * sz_l, mask=mask_r, other=0.0).to(tl.float32)
                dout_r = dout_r * zr * tl.sigmoid(zr)
            if not DT_LTI:
                m1r = tr + 1 < seqlen
                dtn_r = tl.load(dt_row + (tr + 1) * sdt_l, mask=m1r, other=0.0).to(tl.float32) + bias
                if SOFTPLUS:
                    dtn_r = softplus(dtn_r)
                dtn_r = tl.where(m1r, dtn_r, 0.0)
        y = tl.zeros((CHUNK,), tl.float32)
        s = tl.zeros((CHUNK,), tl.float32)
        gA = tl.zeros((CHUNK,), tl.float32)
        for n in tl.range(0, dstate, num_stages=STAGES, loop_unroll_factor=UNROLL_N):
            sel = offs_n == n
            A_re = tl.load(a_base + n * sA_n).to(tl.float32)
            A_im = 0.0
            if IS_COMPLEX:
                A_im = tl.load(a_base + n * sA_n + 1).to(tl.float32)
            B_re, B_im = _bc_of_state(B_base + n * sB_n, t * sB_l, mask_t, B_LTI, B_COMPLEX)
            C_re, C_im = _bc_of_state(C_base + n * sC_n, t * sC_l, mask_t, C_LTI, C_COMPLEX)
            h0_re = tl.load(states_ptr + st_base + (cb * dstate + n) * R)
            h0_im = 0.0
            if IS_COMPLEX:
                h0_im = tl.load(states_ptr + st_base + (cb * dstate + n) * R + 1)
            if DT_LTI:  # one exp (and cos, sin for complex A) per state, not per step
                ac_re, ac_im = exp_dtA(dtc, A_re, A_im, IS_COMPLEX)
                a_re = tl.where(mask_t, ac_re, 1.0)
                a_im = tl.where(mask_t, ac_im, 0.0)
            else:
                a_re, a_im = exp_dtA(dt, A_re, A_im, IS_COMPLEX)
            # the adjoint's decay a_{t+1} and input FAC·dout_t·conj(C_t): in time order, or (REV_LOADS) reversed
            if REV_LOADS:
                Cr_re, Cr_im = _bc_of_state(C_base + n * sC_n, tr * sC_l, mask_r, C_LTI, C_COMPLEX)
                cc_re = FAC * dout_r * Cr_re
                cc_im = -FAC * dout_r * Cr_im
            else:
                cc_re = FAC * dout * C_re
                cc_im = -FAC * dout * C_im
            if DT_LTI:
                al_re = tl.zeros_like(dt) + ac_re
                al_im = tl.zeros_like(dt) - ac_im
            else:
                if REV_LOADS:
                    al_re, al_im = exp_dtA(dtn_r, A_re, A_im, IS_COMPLEX)
                else:
                    al_re, al_im = exp_dtA(dtn, A_re, A_im, IS_COMPLEX)
                al_im = -al_im
            b_re = du3 * B_re
            b_im = du3 * B_im
            # states of the chunk from its start state; adjoint from the carry after the chunk
            Gn_re = tl.sum(tl.where(sel, G_re, 0.0), axis=0)
            Gn_im = tl.sum(tl.where(sel, G_im, 0.0), axis=0)
            edge = last if REV_LOADS else first  # the adjoint's lane of the chunk's first step
            if CLOSED:  # Δ and A LTI: one decay for the whole chunk, closed form while its powers stay in range
                p_re = dtc * A_re
                if (p_re <= 0.0) & (p_re * CHUNK >= -CLOSED_TIME_LIM):  # a slow decay: nothing flipped
                    h_re, h_im, g_re, g_im, Gc_re, Gc_im = _closed_scans_time(
                        p_re, dtc * A_im, tm, b_re, b_im, h0_re, h0_im, FAC * dout * C_re, -FAC * dout * C_im,
                        Gn_re, Gn_im, CHUNK, IS_COMPLEX, FAST_TRIG)
                elif (p_re <= 0.0) & (p_re * (CHUNK // 2) >= -CLOSED_LIM):  # a decay (|a| <= 1), not too fast
                    h_re, h_im, g_re, g_im = _closed_scans(
                        p_re, dtc * A_im, tm, b_re, b_im, h0_re, h0_im, cc_re, cc_im, Gn_re, Gn_im, CHUNK, IS_COMPLEX,
                        FAST_TRIG)
                    g_re, g_im, Gc_re, Gc_im = _adjoint_in_time_order(g_re, g_im, edge, REV_LOADS, CHUNK, LANE_ASM,
                                                                      IS_COMPLEX)
                else:
                    h_re, h_im, g_re, g_im, Gc_re, Gc_im = _pair_scans(
                        a_re, a_im, b_re, b_im, h0_re, h0_im, al_re, al_im, cc_re, cc_im, Gn_re, Gn_im, edge,
                        REV_LOADS, CHUNK, LANE_ASM, IS_COMPLEX)
            else:
                h_re, h_im, g_re, g_im, Gc_re, Gc_im = _pair_scans(
                    a_re, a_im, b_re, b_im, h0_re, h0_im, al_re, al_im, cc_re, cc_im, Gn_re, Gn_im, edge,
                    REV_LOADS, CHUNK, LANE_ASM, IS_COMPLEX)
            if IS_COMPLEX:
                if HAS_Z:
                    y += 2.0 * (C_re * h_re - C_im * h_im)
                s += g_re * B_re + g_im * B_im
                hm_re = h_re - b_re
                hm_im = h_im - b_im
                w_re = g_re * hm_re + g_im * hm_im
                w_im = g_im * hm_re - g_re * hm_im
                gA += A_re * w_re + A_im * w_im
                dA_im += tl.where(sel, tl.sum(dt * w_im, axis=0), 0.0)
                G_im = tl.where(sel, Gc_im, G_im)
                gB_im = g_im * du3
                gC_im = -FAC * dout * h_im
            else:
                if HAS_Z:
                    y += C_re * h_re
                s += g_re * B_re
                w_re = g_re * (h_re - b_re)
                gA += A_re * w_re
            dA_re += tl.where(sel, tl.sum(dt * w_re, axis=0), 0.0)
            G_re = tl.where(sel, Gc_re, G_re)
            gB_re = g_re * du3
            gC_re = FAC * dout * h_re
            # B, C: LTI -> sums over L per state; selective -> atomics over channels, along t
            if B_LTI:
                dB_re += tl.where(sel, tl.sum(gB_re, axis=0), 0.0)
                if B_COMPLEX:
                    dB_im += tl.where(sel, tl.sum(gB_im, axis=0), 0.0)
            else:
                off = ((pid_b * dstate + n) * seqlen + t) * RB
                tl.atomic_add(dB_ptr + off, gB_re, mask=mask_t, sem="relaxed")
                if B_COMPLEX:
                    tl.atomic_add(dB_ptr + off + 1, gB_im, mask=mask_t, sem="relaxed")
            if C_LTI:
                dC_re += tl.where(sel, tl.sum(gC_re, axis=0), 0.0)
                if C_COMPLEX:
                    dC_im += tl.where(sel, tl.sum(gC_im, axis=0), 0.0)
            else:
                off = ((pid_b * dstate + n) * seqlen + t) * RC
                tl.atomic_add(dC_ptr + off, gC_re, mask=mask_t, sem="relaxed")
                if C_COMPLEX:
                    tl.atomic_add(dC_ptr + off + 1, gC_im, mask=mask_t, sem="relaxed")
        if HAS_Z:
            out = y + Dv * u
            dz = dy * out * sg * (1.0 + zz * (1.0 - sg))
            tl.store(dz_ptr + g_row + t, dz.to(dz_ptr.dtype.element_ty), mask=mask_t)
        dD_acc += tl.sum(dout * u, axis=0)
        du = dt * s + dout * Dv
        tl.store(du_ptr + g_row + t, du.to(du_ptr.dtype.element_ty), mask=mask_t)
        gdt = u * s + gA
        if SOFTPLUS:
            gdt = gdt * tl.sigmoid(dt_raw)
        gdt = tl.where(mask_t, gdt, 0.0)
        ddt_acc += tl.sum(gdt, axis=0)
        if not DT_LTI:
            tl.store(ddt_ptr + g_row + t, gdt.to(ddt_ptr.dtype.element_ty), mask=mask_t)

    tl.store(dA_ptr + pdn * R, dA_re, mask=mask_n)
    if IS_COMPLEX:
        tl.store(dA_ptr + pdn * R + 1, dA_im, mask=mask_n)
    if B_LTI:
        tl.store(dB_ptr + pdn * RB, dB_re, mask=mask_n)
        if B_COMPLEX:
            tl.store(dB_ptr + pdn * RB + 1, dB_im, mask=mask_n)
    if C_LTI:
        tl.store(dC_ptr + pdn * RC, dC_re, mask=mask_n)
        if C_COMPLEX:
            tl.store(dC_ptr + pdn * RC + 1, dC_im, mask=mask_n)
    row = (pid_b * nseg + pid_s) * dim + pid_d
    tl.store(dD_ptr + row, dD_acc)
    tl.store(ddt_sum_ptr + row, ddt_acc)


@triton.jit
def _scan_bwd_local_sum_kernel(
    dt_ptr, A_ptr, C_ptr, z_ptr, bias_ptr, dy_ptr, gloc_ptr, dsum_ptr,
    dim, dstate, seqlen, nchunks, seg_chunks, nseg, s_base,
    sdt_b, sdt_d, sdt_l, sA_d, sA_n, sC_b, sC_d, sC_n, sC_l, sz_b, sz_d, sz_l, sdy_b, sdy_d, sdy_l,
    C_LTI: tl.constexpr, DT_LTI: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, CL: tl.constexpr,
):
    """Backward pass 1 for real A as a sum, not a scan (``ScanConfig.bwd_local_sum``): the same outputs as
    :func:`_scan_bwd_local_kernel`, one program per (batch element, channel, segment).

    From a zero adjoint at the segment's end T1, the adjoint at its start T0 is

        g_T0 = sum_(T0 <= t < T1) exp(A Q_t) dout_t C_t,   Q_t = sum_(T0 < k <= t) Δ_k,

    (the decays of the steps between T0 and t multiply to exp(A Q_t) when A is real), so one cumulative sum of Δ per
    tile of ``CL`` steps serves all N states, and each state's work per step is an exp2 and two multiply-adds into
    a (BLOCK_N, CL) accumulator summed once at the end: no scan per state, no reduction per tile."""
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    pid_s = tl.program_id(2) + s_base
    t_lo, t_hi, offs_n, mask_n, A2, bias, dtc, dt_row = _sum_pass_setup(
        A_ptr, bias_ptr, dt_ptr, pid_b, pid_d, pid_s, seg_chunks, nchunks, dstate, sA_d, sA_n, sdt_b, sdt_d,
        DT_LTI, HAS_BIAS, SOFTPLUS, BLOCK_N, BLOCK_L)
    offs = tl.arange(0, CL)
    dy_row = dy_ptr + pid_b * sdy_b + pid_d * sdy_d
    z_row = z_ptr + pid_b * sz_b + pid_d * sz_d
    Cc, C_rows = _bc_of_channel(C_ptr, pid_b, pid_d, offs_n, mask_n, sC_b, sC_d, sC_n, C_LTI)
    acc = tl.zeros((BLOCK_N, CL), tl.float32)
    q0 = 0.0  # sum of the next-step Δ over the tiles so far
    for t0 in range(t_lo, t_hi, CL):
        t = t0 + offs
        mask_t = (t < seqlen) & (t < t_hi)  # (a tile may reach past the segment's end)
        dout = tl.load(dy_row + t * sdy_l, mask=mask_t, other=0.0).to(tl.float32)
        if HAS_Z:
            zz = tl.load(z_row + t * sz_l, mask=mask_t, other=0.0).to(tl.float32)
            dout = dout * zz * tl.sigmoid(zz)
        m1 = (t + 1 < seqlen) & (t < t_hi)
        if DT_LTI:
            dn = tl.where(m1, dtc, 0.0)
        else:
            dn = tl.load(dt_row + (t + 1) * sdt_l, mask=m1, other=0.0).to(tl.float32) + bias
            if SOFTPLUS:
                dn = softplus(dn)
            dn = tl.where(m1, dn, 0.0)
        cum = tl.cumsum(dn, 0)
        q = q0 + (cum - dn)  # Q_t: the next-step Δ of the steps before t in the segment
        q0 += tl.sum(dn, 0)
        if C_LTI:
            x = Cc[:, None] * dout[None, :]
        else:
            x = tl.load(C_rows + t[None, :] * sC_l, mask=mask_n[:, None] & mask_t[None, :], other=0.0).to(tl.float32)
            x = x * dout[None, :]
        acc += tl.exp2(A2[:, None] * q[None, :]) * x
    row = (pid_b * nseg + pid_s) * dim + pid_d
    tl.store(gloc_ptr + row * dstate + offs_n, tl.sum(acc, axis=1), mask=mask_n)
    tl.store(dsum_ptr + row, q0)


@triton.jit
def _scan_bwd_local_kernel(
    dt_ptr, A_ptr, C_ptr, z_ptr, bias_ptr, dy_ptr, gloc_ptr, dsum_ptr,
    dim, dstate, seqlen, nchunks, seg_chunks, nseg, s_base,
    sdt_b, sdt_d, sdt_l, sA_d, sA_n, sC_b, sC_d, sC_n, sC_l, sz_b, sz_d, sz_l, sdy_b, sdy_d, sdy_l,
    IS_COMPLEX: tl.constexpr, C_COMPLEX: tl.constexpr, C_LTI: tl.constexpr, DT_LTI: tl.constexpr,
    HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, R: tl.constexpr, FAC: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
):
    """Backward pass 1: the adjoint at the start of each segment from a zero adjoint at its end,
    and the segment's sum of next-step Δ (its total decay), for :func:`_seg_carry_kernel`."""
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    pid_s = tl.program_id(2) + s_base
    c0 = pid_s * seg_chunks
    c1 = tl.minimum(c0 + seg_chunks, nchunks)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    offs_l = tl.arange(0, BLOCK_L)
    mask_d = offs_d < dim
    mask_n = offs_n < dstate
    mask_dn = mask_d[:, None] & mask_n[None, :]
    A_re, A_im, Dv, bias, dtc, dtc_raw, ac_re, ac_im = _setup(
        A_ptr, A_ptr, bias_ptr, dt_ptr, pid_b, offs_d, offs_n, mask_d, mask_dn, sA_d, sA_n, sdt_b, sdt_d,
        IS_COMPLEX, False, HAS_BIAS, SOFTPLUS, DT_LTI,
    )
    dt_rows = dt_ptr + pid_b * sdt_b + offs_d[:, None] * sdt_d
    z_rows = z_ptr + pid_b * sz_b + offs_d[:, None] * sz_d
    dy_rows = dy_ptr + pid_b * sdy_b + offs_d[:, None] * sdy_d
    if C_LTI:
        Cc_re, Cc_im = _bc_const(C_ptr, offs_d, offs_n, mask_dn, sC_d, sC_n, C_COMPLEX)
    first = (offs_l == 0)[None, :, None]
    G_re = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    G_im = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    dsum = tl.zeros((BLOCK_D,), tl.float32)
    for ci in range(c0, c1):
        c = c1 - 1 - (ci - c0)
        t = c * BLOCK_L + offs_l
        mask_t = t < seqlen
        m2 = mask_d[:, None] & mask_t[None, :]
        dout = tl.load(dy_rows + t[None, :] * sdy_l, mask=m2, other=0.0).to(tl.float32)
        if HAS_Z:
            zz = tl.load(z_rows + t[None, :] * sz_l, mask=m2, other=0.0).to(tl.float32)
            dout = dout * zz * tl.sigmoid(zz)
        if C_LTI:
            C_re, C_im = Cc_re, Cc_im
        else:
            C_re, C_im = _bc_chunk(C_ptr, pid_b, offs_n, t, mask_n, mask_t, sC_b, sC_n, sC_l, C_COMPLEX)
        if DT_LTI:
            dsum += tl.sum(tl.where(m2, dtc[:, None], 0.0), axis=1)
            al_re = tl.broadcast_to(ac_re, (BLOCK_D, BLOCK_L, BLOCK_N))
            al_im = -tl.broadcast_to(ac_im, (BLOCK_D, BLOCK_L, BLOCK_N))
        else:
            t1 = t + 1
            m2n = mask_d[:, None] & (t1 < seqlen)[None, :]
            dt_next, dt_next_raw = _delta_rows(dt_rows, t1[None, :] * sdt_l, m2n, bias, HAS_BIAS, SOFTPLUS)
            dsum += tl.sum(dt_next, axis=1)
            al_re, al_im = exp_dtA(dt_next[:, :, None], A_re, A_im, IS_COMPLEX)
            al_im = -al_im
        c_re = FAC * dout[:, :, None] * C_re
        if IS_COMPLEX:
            c_im = -FAC * dout[:, :, None] * C_im
            ra_re, ra_im, rb_re, rb_im = tl.associative_scan(
                (al_re, al_im, c_re, c_im), 1, _combine_complex, reverse=True
            )
            g_im = rb_im + ra_re * G_im[:, None, :] + ra_im * G_re[:, None, :]
            g_re = rb_re + ra_re * G_re[:, None, :] - ra_im * G_im[:, None, :]
            G_im = tl.sum(tl.where(first, g_im, 0.0), axis=1)
        else:
            ra, rb = tl.associative_scan((al_re, c_re), 1, _combine_real, reverse=True)
            g_re = rb + ra * G_re[:, None, :]
        G_re = tl.sum(tl.where(first, g_re, 0.0), axis=1)
    row = (pid_b * nseg + pid_s) * dim + offs_d
    off = (row[:, None] * dstate + offs_n[None, :]) * R
    tl.store(gloc_ptr + off, G_re, mask=mask_dn)
    if IS_COMPLEX:
        tl.store(gloc_ptr + off + 1, G_im, mask=mask_dn)
    tl.store(dsum_ptr + row, dsum, mask=mask_d)


def _real_view(x: Tensor) -> Tensor:
    """Complex tensors as their (..., 2) float32 view (re, im); real tensors unchanged."""
    return torch.view_as_real(x.to(torch.complex64).contiguous()) if x.is_complex() else x


def _bc_strides(x: Tensor, lti: bool) -> tuple[int, int, int, int]:
    """(batch, d, n, l) element strides of B/C: LTI (d, N) or selective (batch, N, L), zero where broadcast."""
    if lti:
        s = x.stride()
        return 0, s[0], s[1], 0
    s = x.stride()
    return s[0], 0, s[1], s[2]


def _strides3(x: Tensor | None) -> tuple[int, int, int]:
    return (0, 0, 0) if x is None else x.stride()


def _row_align(L: int, strides: list[int]) -> int:
    """The largest of 8, 4, 2, 1 that divides L and every given row stride: the kernels' ``ALIGN``
    promise, which lets Triton keep neighbouring steps in one lane when L is no multiple of 16. 1 when 16
    divides them all: Triton's launcher marks such integers itself, and the promise would only add integer
    ops (sm_90 PTX: the same shuffles and vector loads, 33 more lines)."""
    if all(x % 16 == 0 for x in (L, *strides)):
        return 1
    return next(a for a in (8, 4, 2, 1) if L % a == 0 and all(x % a == 0 for x in strides))


def _cast(x: Tensor, dtype: torch.dtype) -> Tensor:
    """``x.to(dtype)`` without a call when it is already that dtype (each call costs µs of Python)."""
    return x if x.dtype == dtype else x.to(dtype)


def _block_n(N: int) -> int:
    return max(2, 1 << (N - 1).bit_length())


def _segments(seg_l: int, block_l: int, nchunks: int) -> tuple[int, int]:
    """(chunks per segment, number of segments) for the chunk-parallel passes; one segment when
    ``seg_l`` is 0 or covers L."""
    seg_chunks = max(1, seg_l // block_l) if seg_l > 0 else nchunks
    seg_chunks = min(seg_chunks, nchunks)
    return seg_chunks, _cdiv(nchunks, seg_chunks)


def _carry(loc: Tensor, dsum: Tensor, A_v: Tensor, init: Tensor, batch: int, d: int, N: int, nseg: int,
           is_complex: bool, reverse: bool) -> None:
    """Pass 2 of the chunk-parallel scan: segment start states (or incoming adjoints) into ``init``."""
    block_d = 16
    launch(
        _seg_carry_kernel, (batch, _cdiv(d, block_d)),
        (loc, dsum, A_v, init), (d, N, nseg, *A_v.stride()[:2]),
        IS_COMPLEX=is_complex, REVERSE=reverse, R=2 if is_complex else 1,
        BLOCK_D=block_d, BLOCK_N=_block_n(N), num_warps=4,
    )


class SelectiveScanFn(torch.autograd.Function):
    """Autograd wrapper: Triton forward (saves chunk-start states) and Triton backward."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, cfg, need_grad):
        y, states, hlast, nchunks = scan_forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, cfg, need_grad)
        h_last = torch.view_as_complex(hlast) if A.is_complex() else hlast[..., 0]
        ctx.mark_non_differentiable(h_last)
        # h_last's grad is never used: without this autograd would fill a (batch, d, N) zero tensor for it on every
        # backward (on a 2-core CPU a trivial Function's fwd+bwd took 287 µs with it, 95 µs without)
        ctx.set_materialize_grads(False)
        if need_grad:
            ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, states)
        ctx.cfg = (bool(delta_softplus), cfg, nchunks)
        return y, h_last

    @staticmethod
    def backward(ctx, dy, _dh_last):
        u, delta, A, B, C, D, z, delta_bias, states = ctx.saved_tensors
        softplus, cfg, nchunks = ctx.cfg
        if dy is None:  # y unused downstream (grads are not materialised)
            dy = torch.zeros_like(u)
        return (*scan_backward(dy, u, delta, A, B, C, D, z, delta_bias, states, softplus, cfg, nchunks), None, None, None)


def scan_forward(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
                 delta_bias: Tensor | None, delta_softplus: bool, cfg: ScanConfig,
                 need_grad: bool) -> tuple[Tensor, Tensor, Tensor, int]:
    """The forward launches: (y, chunk-start states for the backward ((1,) unless ``need_grad``),
    h_last as a (batch, d, N, R) float32 tensor (R = 2: re, im for complex A), number of chunks)."""
    batch, d, L = u.shape
    N = A.shape[1]
    is_complex = A.is_complex()
    A_v = _real_view(A) if is_complex else A.float().contiguous()
    B_v, C_v = _real_view(B), _real_view(C)
    dt_lti = delta.dim() == 1
    B_lti, C_lti = B.dim() == 2, C.dim() == 2
    block_l, block_d = cfg.block_l, cfg.block_d_fwd
    nchunks = max(1, _cdiv(L, block_l))
    seg_chunks, nseg = _segments(cfg.seg_l, block_l, nchunks)
    R = 2 if is_complex else 1
    f32 = torch.float32
    y = torch.empty((batch, d, L), dtype=u.dtype, device=u.device)
    states = torch.empty((batch, d, nchunks, N, R) if need_grad else (1,), dtype=f32, device=u.device)
    hlast = torch.empty((batch, d, N, R), dtype=f32, device=u.device)
    dt_str = (0, delta.stride(0), 0) if dt_lti else _strides3(delta)
    if L > 0:
        # the segments' local states, start states and Δ sums (unused with one segment: hlast stands in)
        seg, init, dsum = hlast, hlast, hlast
        if nseg > 1:
            seg = torch.empty((batch, nseg, d, N, R), dtype=f32, device=u.device)
            init = torch.empty_like(seg)
            dsum = torch.empty((batch, nseg, d), dtype=f32, device=u.device)
        ptrs = [
            u, delta, A_v, B_v, C_v,
            D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u, y, states, hlast, seg, dsum,
        ]
        ints = (
            d, N, L, nchunks, seg_chunks, nseg,
            *_strides3(u), *dt_str, *A_v.stride()[:2],
            *_bc_strides(B_v, B_lti), *_bc_strides(C_v, C_lti),
            *_strides3(z), *_strides3(y),
        )
        flags = dict(
            IS_COMPLEX=is_complex, B_COMPLEX=B.is_complex(), C_COMPLEX=C.is_complex(),
            B_LTI=B_lti, C_LTI=C_lti, DT_LTI=dt_lti,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=bool(delta_softplus), R=R,
            BLOCK_D=block_d, BLOCK_N=_block_n(N), BLOCK_L=block_l, num_warps=cfg.warps_fwd,
        )
        nd = _cdiv(d, block_d)
        fwd_kernel = _scan_fwd_kernel
        if cfg.seq_fwd:
            fwd_kernel = _scan_fwd_seq_lanes_kernel if cfg.seq_lanes else _scan_fwd_seq_kernel
            sub_l, unroll = SEQ_TILE_COMPLEX if is_complex else SEQ_TILE_AUTO.get(u.element_size(), (8, 4))
            flags["SUB_L"] = min(cfg.seq_sub_l or sub_l, block_l)
            flags["UNROLL"] = min(cfg.unroll or unroll, flags["SUB_L"])
            rows = [*_strides3(u)[:2], *_strides3(z)[:2], *_strides3(y)[:2], *([] if dt_lti else dt_str[:2])]
            flags["ALIGN"] = _row_align(L, rows) if cfg.align else 1
            flags["STAGES"] = cfg.fwd_stages
            flags["EVEN"] = cfg.seq_even and N == flags["BLOCK_N"] and L % flags["SUB_L"] == 0
            flags["FAST"] = cfg.fast_gates and not interpreting()
        if nseg > 1:
            # pass 1: local end state and Δ sum of every segment but the last, from a zero state
            launch(fwd_kernel, (batch, nd, nseg - 1), ptrs, ints, SAVE_STATES=False, LOCAL=True, HAS_INIT=False,
                   **flags)
            # pass 2: true start state of every segment (seg is overwritten with the start states)
            _carry(seg, dsum, A_v, init, batch, d, N, nseg, is_complex, reverse=False)
            ptrs[11] = init
        # pass 3: every segment from its start state: y, chunk-start states, h_last
        launch(fwd_kernel, (batch, nd, nseg), ptrs, ints, SAVE_STATES=need_grad, LOCAL=False, HAS_INIT=nseg > 1, **flags)
    else:
        hlast.zero_()
    return y, states, hlast, nchunks


def scan_backward(dy: Tensor, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                  z: Tensor | None, delta_bias: Tensor | None, states: Tensor, softplus: bool, cfg: ScanConfig,
                  nchunks: int) -> tuple[Tensor | None, ...]:
    """The backward launches: grads of (u, delta, A, B, C, D, z, delta_bias), None for an absent input."""
    block_l, block_d = cfg.block_l, cfg.block_d_bwd
    batch, d, L = u.shape
    # the state-loop backward: one channel per program, chunks of `chunk` steps (a multiple of block_l)
    chunk = max(cfg.bwd_loop, block_l) if cfg.bwd_loop else 0
    if chunk:
        block_d = 1
        # Its lanes run along L, so it wants unit stride along L (as mamba_ssm's wrapper makes Δ, B and C
        # contiguous): the model passes Δ, B, C as transposed views of the x_proj output, and autograd hands
        # dy over as a transposed gradient, where every lane would read its own 32-byte sector.
        dy, delta, B, C = (x if x.dim() < 3 or x.stride(-1) == 1 else x.contiguous() for x in (dy, delta, B, C))
    seg_l = cfg.seg_l_bwd
    if seg_l < 0:
        seg_l = pick_seg_l_bwd(batch, d, L, block_l, block_d, A.is_complex())
    if chunk and seg_l:
        seg_l = max(seg_l, chunk)
    seg_chunks, nseg = _segments(seg_l, block_l, nchunks)
    N = A.shape[1]
    dev = u.device
    is_complex = A.is_complex()
    A_v = _real_view(A) if is_complex else A.float().contiguous()
    B_v, C_v = _real_view(B), _real_view(C)
    dt_lti = delta.dim() == 1
    B_lti, C_lti = B.dim() == 2, C.dim() == 2
    R = 2 if is_complex else 1
    RB, RC = (2 if B.is_complex() else 1), (2 if C.is_complex() else 1)
    f32 = torch.float32
    du = torch.empty((batch, d, L), dtype=u.dtype, device=dev)
    ddt = torch.empty((batch, d, L) if not dt_lti else (1,), dtype=delta.dtype, device=dev)
    dz = torch.empty((batch, d, L), dtype=z.dtype, device=dev) if z is not None else du
    # partial sums per (batch, segment), summed below
    dA = torch.empty((batch, nseg, d, N, R), dtype=f32, device=dev)
    dD = torch.empty((batch, nseg, d), dtype=f32, device=dev)
    ddt_sum = torch.empty((batch, nseg, d), dtype=f32, device=dev)
    nd = _cdiv(d, block_d)
    # selective dB/dC: atomics into (batch, N, L), or per channel block (batch, nd, L, N) summed below
    partial = cfg.bwd_partials and not chunk

    def sel_grad(r: int) -> Tensor:
        if partial:
            return torch.empty((batch, nd, L, N, r), dtype=f32, device=dev)
        return torch.zeros((batch, N, L, r), dtype=f32, device=dev)

    dB = torch.zeros((batch, nseg, d, N, RB), dtype=f32, device=dev) if B_lti else sel_grad(RB)
    dC = torch.zeros((batch, nseg, d, N, RC), dtype=f32, device=dev) if C_lti else sel_grad(RC)
    dt_str = (0, delta.stride(0), 0) if dt_lti else _strides3(delta)
    ginit = dA
    if L > 0 and nseg > 1:
        # pass 1: adjoint at the start of every segment but the first, from zero at its end
        gloc = torch.empty((batch, nseg, d, N, R), dtype=f32, device=dev)
        ginit = torch.empty_like(gloc)
        dsum = torch.empty((batch, nseg, d), dtype=f32, device=dev)
        sum_warps = local_sum_warps(cfg, u.dtype, N)
        if sum_warps and not is_complex and not C.is_complex():
            launch(
                _scan_bwd_local_sum_kernel, (batch, d, nseg - 1),
                (delta, A_v, C_v, z if z is not None else u, delta_bias if delta_bias is not None else u, dy, gloc, dsum),
                (d, N, L, nchunks, seg_chunks, nseg, 1,
                 *dt_str, *A_v.stride()[:2], *_bc_strides(C_v, C_lti), *_strides3(z), *_strides3(dy)),
                C_LTI=C_lti, DT_LTI=dt_lti, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=softplus,
                BLOCK_N=_block_n(N), BLOCK_L=block_l, CL=LOCAL_SUM_TILE, num_warps=sum_warps,
            )
        else:
            launch(
                _scan_bwd_local_kernel, (batch, nd, nseg - 1),
                (delta, A_v, C_v, z if z is not None else u, delta_bias if delta_bias is not None else u, dy, gloc, dsum),
                (d, N, L, nchunks, seg_chunks, nseg, 1,
                 *dt_str, *A_v.stride()[:2], *_bc_strides(C_v, C_lti), *_strides3(z), *_strides3(dy)),
                IS_COMPLEX=is_complex, C_COMPLEX=C.is_complex(), C_LTI=C_lti, DT_LTI=dt_lti,
                HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=softplus, R=R,
                FAC=2.0 if is_complex else 1.0, BLOCK_D=block_d, BLOCK_N=_block_n(N), BLOCK_L=block_l,
                num_warps=cfg.warps_bwd,
            )
        # pass 2: the adjoint entering every segment from the right
        _carry(gloc, dsum, A_v, ginit, batch, d, N, nseg, is_complex, reverse=True)
    if L > 0:
        # pass 3: every segment, in parallel, from its incoming adjoint
        ptrs = (
            u, delta, A_v, B_v, C_v,
            D if D is not None else u, z if z is not None else u,
            delta_bias if delta_bias is not None else u, dy, states,
            du, ddt, dz, dA, dB, dC, dD, ddt_sum, ginit,
        )
        ints = (
            d, N, L, nchunks, seg_chunks, nseg,
            *_strides3(u), *dt_str, *A_v.stride()[:2],
            *_bc_strides(B_v, B_lti), *_bc_strides(C_v, C_lti),
            *_strides3(z), *_strides3(dy),
        )
        flags = dict(
            IS_COMPLEX=is_complex, B_COMPLEX=B.is_complex(), C_COMPLEX=C.is_complex(),
            B_LTI=B_lti, C_LTI=C_lti, DT_LTI=dt_lti,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=softplus, R=R, RB=RB, RC=RC, FAC=2.0 if is_complex else 1.0, HAS_INIT=nseg > 1,
            BLOCK_N=_block_n(N), BLOCK_L=block_l, num_warps=cfg.warps_bwd,
        )
        if chunk:
            # the rows' strides that the kernel's ALIGN hint covers (B, C, Δ only where they vary along L)
            rows = [*_strides3(u)[:2], *_strides3(z)[:2], *_strides3(dy)[:2]]
            rows += [] if dt_lti else list(dt_str[:2])
            rows += [] if B_lti else [_bc_strides(B_v, False)[i] for i in (0, 2)]
            rows += [] if C_lti else [_bc_strides(C_v, False)[i] for i in (0, 2)]
            align = _row_align(L, rows) if cfg.align else 1
            lane_asm = cfg.bwd_lane_asm and not cfg.bwd_flip and align >= 4 and cfg.warps_bwd == 1 and chunk in (64, 128)
            closed = cfg.bwd_closed and dt_lti and not cfg.bwd_flip
            maxnreg = bwd_maxnreg(cfg, u.dtype, is_complex)
            launch(_scan_bwd_loop_kernel, (batch, d, nseg), ptrs, ints, CHUNK=chunk, REV_LOADS=not cfg.bwd_flip, ALIGN=align,
                   LANE_ASM=lane_asm, STAGES=cfg.bwd_stages, UNROLL_N=cfg.bwd_unroll_n, CLOSED=closed,
                   FAST_TRIG=closed and not interpreting(),
                   **({"maxnreg": maxnreg} if maxnreg and not interpreting() else {}), **flags)
        else:
            launch(_scan_bwd_kernel, (batch, nd, nseg), ptrs, ints, BLOCK_D=block_d, PARTIAL=partial, **flags)
    else:
        for g in (dA, dB, dC, dD, ddt_sum):
            g.zero_()
    if partial:  # (batch, nd, L, N, R) -> (batch, N, L, R)
        dB = dB if B_lti else dB.sum(1).transpose(1, 2)
        dC = dC if C_lti else dC.sum(1).transpose(1, 2)

    # the partial grads summed over (batch, segment) in one launch, in the parameters' dtypes; every grad its own
    # tensor: the compiled op (kernels/scan_op.py) may not return outputs that alias each other, so the LTI Δ's grad
    # and delta_bias's, the same sum, are written twice
    oA = torch.empty((d, N, R), dtype=f32, device=dev)
    oD = torch.empty((d,), dtype=D.dtype, device=dev) if D is not None else None
    odt = torch.empty((d,), dtype=delta.dtype, device=dev) if dt_lti else None
    obias = torch.empty((d,), dtype=delta_bias.dtype, device=dev) if delta_bias is not None else None
    oB = torch.empty((d, N, RB), dtype=f32, device=dev) if B_lti else None
    oC = torch.empty((d, N, RC), dtype=f32, device=dev) if C_lti else None
    widths = (d * N * R, d * N * RB if B_lti else 0, d * N * RC if C_lti else 0)
    block = 1024
    launch(
        _bwd_finish_kernel, (_cdiv(max(*widths, d), block),),
        (dA, dD, ddt_sum, dB, dC, oA, *(x if x is not None else oA for x in (oD, odt, obias, oB, oC))),
        (batch * nseg, d, *widths),
        HAS_D=D is not None, DT_LTI=dt_lti, HAS_BIAS=delta_bias is not None, B_LTI=B_lti, C_LTI=C_lti,
        BLOCK=block, num_warps=4,
    )

    def as_param(g: Tensor, like: Tensor) -> Tensor:
        """fp32 (..., R) grad -> grad in like's dtype (complex when like is complex)."""
        g = torch.view_as_complex(g) if like.is_complex() else g[..., 0]
        return _cast(g, like.dtype)

    return (
        du,
        odt if dt_lti else ddt,
        as_param(oA, A),
        as_param(oB if B_lti else dB, B),
        as_param(oC if C_lti else dC, C),
        oD,
        dz if z is not None else None,
        obias,
    )


def selective_scan_triton(
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
    config: ScanConfig | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Triton selective scan; contract of :func:`kernels.selective_scan` (shapes checked there).

    ``config`` sets the chunk length, channels per program and warps (default:
    :func:`kernels.tuning.pick_config`). h_last is not differentiable.
    """
    if config is None:
        config = pick_config(u.shape[0], u.shape[1], A.shape[1], u.shape[2], A.is_complex())
    need_grad = torch.is_grad_enabled() and any(
        x is not None and x.requires_grad for x in (u, delta, A, B, C, D, z, delta_bias)
    )
    if config.lti_chunk and delta.dim() == 1 and B.dim() == 2 and C.dim() == 2:
        from . import triton_lti_chunk as lti

        if lti.applies(u, delta, A, B, C, config.lti_chunk):
            y, h_last = lti.lti_chunk_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, config, need_grad)
            return (y, h_last) if return_last_state else y
    y, h_last = SelectiveScanFn.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus, config, need_grad)
    return (y, h_last) if return_last_state else y
