"""One stream's step of a run of consecutive Mamba blocks in ONE launch: a persistent grid with barriers.

A one-stream step of a Mamba block is three latency-bound launches (:mod:`kernels.triton_mamba_step`), and an
sc09-small sample takes about 67 launches (62 of them block kernels: H200, 2026-12-04, 0.104 ms per sample, 0.60x
real time). This kernel steps a whole run of blocks of one kind (a U-Net stage's 8 down or up blocks, or its center;
``mamba-s6``, ``mamba-s4`` or ``mamba-s4-real``) for a few rows (fewer than 16) as one launch of P programs, each
owning ``BLOCK_E`` of the d_inner channels. The reductions over all channels become grid barriers instead of launch
boundaries. Per selective block j::

    A(j)  x_j = x_(j-1) + Σ_p out-partials_p (+ res)      every program, the same sum in the same order
          xn = LayerNorm(x_j); (u, z) = in_proj(xn) for its channels; u = SiLU(conv step(u));
          its x_proj partial (Δ_low, B_t, C_t) from its channels of u                  -> barrier
    B(j)  (Δ_low, B_t, C_t) = Σ_p x_proj partials_p; Δ = softplus(dt_proj(Δ_low) + dt_bias);
          h ← exp(Δ A) h + Δ B_t u (its channels, in place); y = (C_t · h + D u) · SiLU(z);
          its out_proj partial W_out[:, channels] y                                   -> barrier

An LTI block needs no x_proj, so it is one phase (A without the x_proj, then B's state update on its own channels and
the out_proj partial) and one barrier. After the last block, x_out = x + Σ partials (+ res). So a run of n blocks is
one launch with 2n (LTI: n) barriers instead of 3n launches (4n batched). Program 0 writes every block's input and
the run's output to ``outs`` (n + 1, B, H): the U-Net's skips. Partials, u and z pass through small float32 buffers
(read from L2, ``.cg``), or in one cluster (the default on sm_90) the partials through every CTA's shared memory
(``XCHG``, :func:`run_exchange_bytes`) with u, z and x_j kept in registers; the out_proj partials alternate between
two slots (even and odd blocks), because an LTI block's programs write theirs while a slower program may still be
reading the previous block's.

The barrier (:func:`_grid_barrier`) is a counter that is never reset (int64): each program adds 1 (release) and
waits (acquire) until the count reaches the barrier's target, base + (k + 1) P for the launch's k-th barrier, where
base is the count at the launch's start rounded down to a multiple of P (no program waits for its own add to come
back). Launches on one stream are ordered (with PDL the wait for the previous kernel comes first), so
every launch of a run uses the same counter safely. All P programs must be resident at once: P is ``E / BLOCK_E``
(8-32 for the sc09 and youtubemix presets), far below the number of SMs; the wrapper takes one launch per phase when
P exceeds them, and a program that polls 2^24 times gives up and flags it (:func:`check_runs_scratch`: the Stepper
raises a KernelError at the end of the generation instead of hanging).

The U-Net's pooling buffers are read and written in place: the up run adds the UpPool's pending output and its skip
as its input (``x0b``), the down run also writes its output to the DownPool's slot (``tail``), one PyTorch launch
fewer each per sample. A selective block as one phase (every program computing the whole x_proj, one barrier
instead of two; ``AUDIOMAMBA_STEP_RUN_PHASES=1``) ran 0.56x (H200, 2026-12-05) and was removed; so were split runs of
``mamba-s4-real`` blocks with every tile in one layout (``AUDIOMAMBA_STEP_FLAT=run``; with the one-stream kernels in
one layout, 0.93-1.02x, H100 2026-12-05). A one-launch-per-block
version for ``mamba-s6`` blocks (every program repeating the whole x_proj) ran 0.49x the per-block launches on an H100
(2026-12-05) and was removed; so was a chain of programs, one per block handing x on by flags (0.92x / 0.76x /
0.39x for ``mamba-s6`` / ``mamba-s4-real`` / ``mamba-s4``, H100, 2026-12-05; commit fc4f94e has it).

Triton's CPU interpreter runs a grid's programs one after another, so a barrier there would wait forever: under the
interpreter (and with ``AUDIOMAMBA_STEP_RUNS=split`` on a GPU, to time the barriers against launches) the same
phases run as one launch each, with the same code and buffers. Running a phase's programs in order is also what
exposes a missing barrier in the tests: a program that overwrites what a later one still reads fails them (that is
how the second out_proj slot was found). The math is that of :mod:`kernels.triton_mamba_step` for one stream (exact
float32 broadcast products; the same conv, state-update and readout helpers); only the order of the sums over
channels differs. :func:`run_step_ref` is the PyTorch reference.

Built 2026-12-04 on a CPU machine (interpreter tests; sm_90 compile checks, ``compile_check --only run``: 209-255
registers, spills of 0-256 B); timed on an H200 on 2026-12-05 (``python -m audiomamba.bench.step_tiles --var
AUDIOMAMBA_STEP_RUNS --configs "0;1;split" --batch 1``): one launch per phase ("split") beat the persistent grid for
every block kind, and the per-block launches for LTI blocks only, so the Stepper attached runs of LTI blocks on a GPU
by default (:meth:`audiomamba.model.unet.AudioUNet.attach_runs`); since 2026-12-07, as clusters, runs of every
kind (:func:`runs_mode`).

A grid barrier costs about what a launch does (0.76 µs at 8 programs against 0.93 µs per launch in a CUDA graph, one
H100, 2026-12-07 11:56, ``python -m audiomamba.bench.sync_cost``); the hardware barrier of a thread-block cluster
(sm_90) 0.40-0.43 µs at 2-8 CTAs (0.56-0.62 µs with an exchange of values through L2). So where a run's programs
fit in one cluster (at most :func:`kernels.backend.cluster_ctas_max`: 16 on H100 and H200, a non-portable size), the
persistent launch goes out as ONE cluster (:func:`kernels.launch.launch_cluster`; ``CLUSTER``) and its programs meet
at the hardware barrier: the default for every run since 2026-12-07 (:func:`runs_mode`); elsewhere the runs stay
split.

Where the time goes (``python -m audiomamba.bench.run_profile``: ``PROFILE`` reads each program's SM clock at every
phase's start and barrier; one H100, 2026-12-07 14:47, 1980 MHz): in sc09-small's 16 kHz ``mamba-s4-real`` run (8
blocks, 8 programs, 19.0 µs per launch) a block's phase is 3586 cycles of one program's work (1.8 µs: loads from L2
and a chain of reductions and layout changes, 43 CTA barriers in the loop's body at sm_90) and 887 cycles at the
cluster barrier (19 % of the kernel); ``mamba-s6`` 3537 + 2387 cycles of work per block (phases A and B) and two
barriers of ~955. The launches themselves are 2-4 % of a run's time. So one stream is bound by each phase's
dependent work, not by the synchronisation. ``--marks`` (``PROFILE=2``) splits a phase at two more clocks: x's
partials loaded and summed, then (u, z) ready. With the exchange in shared memory, the states stored inside the
barrier and the LayerNorm folded into in_proj (the defaults since 2026-12-07 22:50; 1.03-1.19x per one-stream step),
the 16 kHz ``mamba-s4-real`` phase is 3275 cycles (1350 to x summed, 1153 to (u, z), 722 after) and 1072 at the
barrier.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from torch import Tensor

from .backend import cluster_ctas_max, interpreting, on_sm90, pdl_enabled
from .checks import REAL_STATE_DTYPES
from .errors import KernelError
from .launch import CLUSTER_MAX_CTAS, cdiv, launch_cluster, launch_named, next_pow2
from .triton_helpers import (
    CLUSTER_SMEM_SIZES,
    cluster_arrive,
    cluster_barrier,
    cluster_smem,
    cluster_wait,
    dsmem_store,
    ln_regs,
    mbar_pair,
    mbar_signal,
    mbar_wait,
    mm,
    pdl_wait,
    sm_clock,
    smem_load,
)
from .triton_mamba_step import (
    _conv_step,
    _conv_taps,
    _in_proj_weights,
    _lti_math,
    _lti_params,
    _lti_store,
    _ssm_math,
    _ssm_params,
    _ssm_store,
    conv_window,
    lti_state_offsets,
)

#: ``AUDIOMAMBA_STEP_RUNS``: 0 (off), 1 (one persistent launch per run), split (one launch per phase: the same kernel
#: without barriers)
RUNS_MODES = ("0", "1", "split", "cluster")
#: d_inner channels per program (``AUDIOMAMBA_STEP_RUN_E`` overrides; a power of two)
RUN_BLOCK_E = 16
#: the fewest d_inner channels per program that :func:`run_block_e` narrows a run to by default
RUN_MIN_E = 8
#: warps per program: 4, or 8 from this block width up (the one-stream tiles span all H columns; sm_90 compile checks:
#: 4 warps spill at H = 256)
RUN_WARPS = 4
RUN_WIDE_H = 256
#: selective runs this wide or narrower take one warp per program (no reduction or layout change crosses warps)
RUN_ONE_WARP_H = 64


def runs_mode() -> str:
    """``AUDIOMAMBA_STEP_RUNS``: "0" (off), "1" (persistent), "split" or "cluster" (persistent, its programs one
    thread-block cluster meeting at the hardware cluster barrier where they are at most
    :func:`kernels.backend.cluster_ctas_max`, on a
    sm_90+ GPU; else as "1"); unset: "auto": on a GPU, runs of every kind of Mamba block, each launched as one
    cluster where its programs fit in one, else split (:func:`launch_form`). One H100, 2026-12-07, one stream
    against split runs: sc09-small ``mamba-s4-real`` / ``mamba-s4`` 1.13x / 1.09x, sc09-large 1.08x / 1.04x (its
    16 kHz runs of 12 programs, a non-portable cluster), youtubemix 1.13x / 1.07x; ``mamba-s6`` runs (off by default
    until then: as clusters of 4 warps per program 1.01x the per-block launches at sc09-small) with one warp per
    program where the run is at most :data:`RUN_ONE_WARP_H` wide: 1.09x / 1.06x / 1.09x the per-block launches at
    sc09-small / sc09-large / youtubemix. A bad value is a one-line KernelError."""
    flag = os.environ.get("AUDIOMAMBA_STEP_RUNS", "").strip().lower()
    if not flag:
        return "auto"
    if flag not in RUNS_MODES:
        raise KernelError(f"AUDIOMAMBA_STEP_RUNS={flag!r} in the environment: use 0 (one launch chain per block), 1 "
                          "(one launch per run of blocks), split (one launch per phase), cluster (one launch per run "
                          "as a thread-block cluster), or leave it unset (every run on a GPU, as clusters where they fit)")
    return flag


def run_warps(H: int, selective: bool = False) -> int:
    """Warps per program of a run's launch: ``AUDIOMAMBA_STEP_RUN_WARPS``, else one for a ``selective`` run at most
    :data:`RUN_ONE_WARP_H` wide, else :data:`RUN_WARPS` (twice that from :data:`RUN_WIDE_H` columns). One H100,
    2026-12-07 14:50-14:52, one stream, runs as clusters: one warp ran sc09-small's and youtubemix's ``mamba-s6`` runs
    1.08-1.10x (every level at one warp), sc09-large's 0.80x (96+ columns; 4 warps: 1.09x); ``mamba-s4-real`` at
    1 / 2 / 8 warps 0.79x / 0.86x / 0.88x of 4 (in-kernel, 2 warps made its phase's work 4512 cycles against 3586)."""
    text = os.environ.get("AUDIOMAMBA_STEP_RUN_WARPS", "").strip()
    if text:
        if text not in ("1", "2", "4", "8", "16"):
            raise KernelError(f"AUDIOMAMBA_STEP_RUN_WARPS={text!r} in the environment: use 1, 2, 4, 8 or 16")
        return int(text)
    if selective and H <= RUN_ONE_WARP_H:
        return 1
    return RUN_WARPS * (2 if H >= RUN_WIDE_H else 1)


def run_block_e(E: int) -> int:
    """Channels per program: ``AUDIOMAMBA_STEP_RUN_E`` (a power of two), else :data:`RUN_BLOCK_E`, or fewer where as
    few as still fit one cluster of :data:`kernels.launch.CLUSTER_MAX_CTAS` programs are :data:`RUN_MIN_E` or more
    (128-255 channels: sc09-small's and youtubemix's 16 kHz levels take 8), at most next_pow2(E); ``spread``: as
    few as fit one cluster, however wide (8 / 16 / 32 at sc09-small's levels). One H100, 2026-12-07 17:30, one
    stream against 16 channels everywhere: the default 1.14x / 1.05x / 1.00x for sc09-small's ``mamba-s4`` /
    ``mamba-s6`` / ``mamba-s4-real``, 1.15x / 1.06x / 1.00x for youtubemix's (``spread`` the same there, 0.99-1.00x
    of it; at sc09-large, 32 and 64 channels at its inner levels, 0.51-0.71x; 32 channels everywhere 0.73x, 14:50).
    Outside sm_90 (no clusters) the narrow runs are split launches of twice the programs, not timed there."""
    text = os.environ.get("AUDIOMAMBA_STEP_RUN_E", "").strip().lower()
    fit = max(1, next_pow2(E) // CLUSTER_MAX_CTAS)
    if text == "spread":
        return fit
    if text and (not text.isdigit() or int(text) < 1 or int(text) & (int(text) - 1)):
        raise KernelError(f"AUDIOMAMBA_STEP_RUN_E={text!r} in the environment: give a power of two (channels per "
                          "program of a run's launch) or 'spread'")
    narrow = fit if RUN_MIN_E <= fit < RUN_BLOCK_E else RUN_BLOCK_E
    return min(int(text) if text else narrow, next_pow2(E))


def _env_flag(name: str, on: str, default: bool = False) -> bool:
    """An on/off variable of the environment: "1" True, "0" False, unset ``default``, else a one-line KernelError that
    says what 1 does (``on``)."""
    text = os.environ.get(name, "").strip() or ("1" if default else "0")
    if text not in ("0", "1"):
        raise KernelError(f"{name}={text!r} in the environment: use 1 ({on}) or 0")
    return text == "1"


def run_late() -> bool:
    """``AUDIOMAMBA_STEP_RUN_LATE``: 1 or unset (the default since 2026-12-07, BENCHMARKS.md), a cluster run stores
    each block's new SSM state between the cluster barrier's arrive and wait (``LATE`` of :func:`_run_kernel`); 0,
    before the barrier."""
    return _env_flag("AUDIOMAMBA_STEP_RUN_LATE", "the states stored inside the cluster barrier", True)


RUN_LN_FORMS = {"two-pass": 0, "one-pass": 1, "fold": 2}


def run_ln() -> int:
    """``AUDIOMAMBA_STEP_RUN_LN``: how a run's LayerNorms go (``LN`` of :func:`_run_kernel`): ``fold`` (or unset,
    the default since 2026-12-07, BENCHMARKS.md) Σx and Σx² in one reduction beside in_proj's product with the
    LayerNorm folded into the weights (:func:`_ln_folded`); ``one-pass`` that reduction, then the LayerNorm, then the
    product (:func:`_ln_one_pass`); ``two-pass`` the mean, then the squared deviations (the layers' LayerNorm)."""
    text = os.environ.get("AUDIOMAMBA_STEP_RUN_LN", "").strip() or "fold"
    if text not in RUN_LN_FORMS:
        raise KernelError(f"AUDIOMAMBA_STEP_RUN_LN={text!r} in the environment: use one of "
                          f"{', '.join(RUN_LN_FORMS)}")
    return RUN_LN_FORMS[text]


def run_pipe() -> bool:
    """``AUDIOMAMBA_STEP_RUN_PIPE``: 1, a cluster run with late state stores (:func:`run_late`) issues each next
    phase's own reads inside the barrier (``PIPE`` of :func:`_run_kernel`); 0 or unset (until timed), after it."""
    return _env_flag("AUDIOMAMBA_STEP_RUN_PIPE", "the next phase's reads issued inside the cluster barrier")


def run_mbar() -> int:
    """``AUDIOMAMBA_STEP_RUN_MBAR``: 1 or 2, a cluster run's barriers go through mbarriers (``MBAR`` of
    :func:`_run_kernel`; 2: each thread fences its stores at cluster scope first); 0 or unset (until timed), the
    hardware cluster barrier."""
    text = os.environ.get("AUDIOMAMBA_STEP_RUN_MBAR", "").strip() or "0"
    if text not in ("0", "1", "2"):
        raise KernelError(f"AUDIOMAMBA_STEP_RUN_MBAR={text!r} in the environment: use 1 (a cluster run's barriers "
                          "through mbarriers), 2 (the same, each thread fencing its stores first) or 0")
    return int(text)


def run_dsmem() -> bool:
    """``AUDIOMAMBA_STEP_RUN_DSMEM``: 1 or unset (the default since 2026-12-07, BENCHMARKS.md), a cluster run's
    partials go through distributed shared memory where its exchange buffer fits (:func:`run_exchange_bytes`); 0,
    through L2."""
    return _env_flag("AUDIOMAMBA_STEP_RUN_DSMEM", "a cluster run's partials through distributed shared memory", True)


def run_exchange_bytes(selective: bool, block_b: int, block_h: int, block_p: int, block_r: int, block_n: int) -> int:
    """Bytes of a cluster run's exchange buffer in shared memory (``XCHG`` of :func:`_run_kernel`): two slots of
    every program's out_proj partial (BLOCK_B, BLOCK_H) and, selective, one of its x_proj partial (BLOCK_B,
    BLOCK_R + 2 BLOCK_N), float32, rounded up to one of :data:`kernels.triton_helpers.CLUSTER_SMEM_SIZES`; 0 where
    it needs more than the largest (the partials then go through L2)."""
    need = 4 * block_b * block_p * (2 * block_h + ((block_r + 2 * block_n) if selective else 0))
    return next((size for size in CLUSTER_SMEM_SIZES if size >= need), 0)


@triton.jit
def _grid_barrier(ticket_ptr, target, POLLS: tl.constexpr):
    """Every program of the grid waits here until all have arrived: each adds 1 to a counter that is never reset
    (release) and waits until it reaches ``target`` (acquire; :func:`_run_kernel` computes the targets from the
    count at its start, so no program waits for its own add to come back). A CTA barrier on both sides, so the
    stores of every program before it are visible to the loads of every program after it (which read L2, ``.cg``).
    After ``POLLS`` polls a program gives up and sets the flag next to the counter (``ticket_ptr + 1``), so a grid
    whose programs cannot all run at once ends with an error (:func:`check_runs_scratch`) instead of hanging."""
    tl.debug_barrier()
    tl.atomic_add(ticket_ptr, 1, sem="release", scope="gpu")
    seen = tl.atomic_add(ticket_ptr, 0, sem="acquire", scope="gpu")
    polls = 0
    while (seen < target) & (polls < POLLS):
        seen = tl.atomic_add(ticket_ptr, 0, sem="acquire", scope="gpu")
        polls += 1
    if seen < target:
        tl.atomic_xchg(ticket_ptr + 1, 1)
    tl.debug_barrier()


@triton.jit
def _run_x(j, x0_ptr, x0_stride, x0b_ptr, x0b_stride, outs_ptr, res_ptr, op_ptr, rows, m_b, offs_h, m_h, batch, H,
           res_first, n_res, RES_REVERSED: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
           BLOCK_PC: tl.constexpr, xs=0, XCHG: tl.constexpr = 0, BLOCK_P: tl.constexpr = 1, x_prev=None):
    """Block j's input x_j (BLOCK_B, BLOCK_H): x0 (+ x0b where ``x0b_stride`` >= 0; rows x0_stride and x0b_stride
    apart: the UpPool's pending output and its skip) for j = 0, else x_(j-1) + Σ_p out_proj partials (+ block
    j-1's res), the partials summed BLOCK_PC programs at a time (``XCHG``: from this CTA's shared memory at ``xs``,
    where every program pushed its own, :func:`_store_out_partial`, and x_(j-1) is ``x_prev``, the x this program
    summed itself in the phase before, not reloaded from outs); program 0 stores it to outs[j]."""
    m_bh = m_b[:, None] & m_h[None, :]
    bh = rows[:, None] * H + offs_h[None, :]
    if j == 0:
        x = tl.load(x0_ptr + rows[:, None] * x0_stride + offs_h[None, :], mask=m_bh, other=0.0).to(tl.float32)
        if x0b_stride >= 0:
            x += tl.load(x0b_ptr + rows[:, None] * x0b_stride + offs_h[None, :], mask=m_bh, other=0.0).to(tl.float32)
    else:
        if XCHG:  # every program sums the same partials in the same order: its own x_(j-1) is program 0's
            x = x_prev
        else:
            x = tl.load(outs_ptr + (j - 1) * batch * H + bh, mask=m_bh, other=0.0, cache_modifier=".cg").to(
                tl.float32)
        tile = (tl.arange(0, BLOCK_B)[:, None] * BLOCK_H + tl.arange(0, BLOCK_H)[None, :])[None, :, :]
        slot = op_ptr + ((j - 1) % 2) * tl.num_programs(0) * (BLOCK_B * BLOCK_H)
        for p0 in range(0, tl.num_programs(0), BLOCK_PC):  # BLOCK_PC programs' partials per load: one load at sc09's
            offs_p = p0 + tl.arange(0, BLOCK_PC)          # 16 kHz widths, a few for wide centers (registers)
            m_p = (offs_p < tl.num_programs(0))[:, None, None]
            if XCHG:  # the slot's addresses of programs past the grid are clamped to the last (in the buffer)
                offs_q = tl.minimum(offs_p, tl.num_programs(0) - 1)
                at = ((j - 1) % 2 * BLOCK_P + offs_q[:, None, None]) * (BLOCK_B * BLOCK_H) + tile
                part = tl.where(m_p, smem_load(xs + at * 4), 0.0)
            else:
                part = tl.load(slot + offs_p[:, None, None] * (BLOCK_B * BLOCK_H) + tile, mask=m_p, other=0.0,
                               cache_modifier=".cg")
            x += tl.sum(part, axis=0)
        i = j - 1 - res_first
        if (i >= 0) & (i < n_res):
            if RES_REVERSED:
                i = n_res - 1 - i
            x += tl.load(res_ptr + i * batch * H + bh, mask=m_bh, other=0.0).to(tl.float32)
        x = tl.where(m_bh, x, 0.0)
    if tl.program_id(0) == 0:
        tl.store(outs_ptr + j * batch * H + bh, x.to(outs_ptr.dtype.element_ty), mask=m_bh)
    return x


@triton.jit
def _add2(a, b, c, d):
    return a + c, b + d


@triton.jit
def _ln_sums(x, H, eps):
    """A LayerNorm's mean and 1/std (BLOCK_B,) of rows of x with Σx and Σx² in ONE reduction (var = E[x²] - mean²,
    at least 0): one chain of shuffles instead of two in a row (the second waited for the mean). Padded entries of
    x are 0."""
    s1, s2 = tl.reduce((x, x * x), 1, _add2)
    mean = s1 / H
    return mean, 1.0 / tl.sqrt(tl.maximum(s2 / H - mean * mean, 0.0) + eps)


@triton.jit
def _ln_one_pass(x, m_bh, nw, nb, H, eps):
    """:func:`kernels.triton_helpers.ln_regs` through :func:`_ln_sums`."""
    mean, rstd = _ln_sums(x, H, eps)
    return tl.where(m_bh, (x - mean[:, None]) * rstd[:, None] * nw[None, :] + nb[None, :], 0.0)


@triton.jit
def _ln_folded(x, mean, rstd, gw, cw, bw):
    """LN(x) @ w = rstd (x @ diag(γ) w - mean Σ_h γ_h w_h) + β w from the folded rows gw = diag(γ) w (BLOCK_H,
    BLOCK_E), their column sums cw and β w (BLOCK_E,) (:meth:`_Stack.ln_folded`): the product needs no LayerNorm
    statistic, so it runs beside their reduction. (BLOCK_B, BLOCK_E)."""
    return rstd[:, None] * (mm(x, gw, False, "ieee") - mean[:, None] * cw[None, :]) + bw[None, :]


@triton.jit
def _front_loads(j, nw_ptr, nb_ptr, lnf_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr, rows, m_b, offs_e, m_e, batch, H, E,
                 K: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_E: tl.constexpr,
                 LN: tl.constexpr = 0):
    """What the start of block j's step (:func:`_front_math`) reads that depends on no other program, issued before
    x's partials are read so that they are in flight together: in_proj's rows of this program's channels
    (w_u, w_z), the LayerNorm's weights (nw, nb; 0 with the fold) or the fold's terms (c_u, c_z, b_u, b_z; 0
    without), the conv's newest-tap weight and bias and the sum of its older taps over the window (``taps``)."""
    offs_h = tl.arange(0, BLOCK_H)
    m_h = offs_h < H
    m_be = m_b[:, None] & m_e[None, :]
    w_u, w_z = _in_proj_weights(win_ptr + j * 2 * E * H, offs_e, m_e, offs_h, H, E, False)
    if LN == 2:  # win is the folded in_proj; lnf (n, 2, 2E): its column sums, then β w
        nw = tl.zeros((BLOCK_H,), dtype=tl.float32)
        nb = nw
        lnf = lnf_ptr + j * 4 * E
        c_u = tl.load(lnf + offs_e, mask=m_e, other=0.0)
        c_z = tl.load(lnf + E + offs_e, mask=m_e, other=0.0)
        b_u = tl.load(lnf + 2 * E + offs_e, mask=m_e, other=0.0)
        b_z = tl.load(lnf + 3 * E + offs_e, mask=m_e, other=0.0)
    else:
        nw = tl.load(nw_ptr + j * H + offs_h, mask=m_h, other=0.0).to(tl.float32)
        nb = tl.load(nb_ptr + j * H + offs_h, mask=m_h, other=0.0).to(tl.float32)
        c_u = tl.zeros((BLOCK_E,), dtype=tl.float32)
        c_z = c_u
        b_u = c_u
        b_z = c_u
    cw = cw_ptr + j * E * K
    w_last = tl.load(cw + offs_e * K + (K - 1), mask=m_e, other=0.0).to(tl.float32)
    bias = tl.load(cb_ptr + j * E + offs_e, mask=m_e, other=0.0).to(tl.float32)
    _, taps = _conv_taps(conv_ptr + j * batch * E * (K - 1), cw, rows, offs_e, m_e, m_be, E, K, BLOCK_B, BLOCK_E)
    return w_u, w_z, nw, nb, c_u, c_z, b_u, b_z, w_last, bias, taps


@triton.jit
def _front_math(j, w_u, w_z, nw, nb, c_u, c_z, b_u, b_z, w_last, bias, taps, x0_ptr, x0_stride, x0b_ptr, x0b_stride,
                outs_ptr, res_ptr, op_ptr, conv_ptr, rows, m_b, offs_e, m_e, batch, H, E, eps, res_first, n_res,
                K: tl.constexpr, RES_REVERSED: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
                BLOCK_E: tl.constexpr, BLOCK_PC: tl.constexpr, prof_s=None, MARKS: tl.constexpr = False, xs=0,
                XCHG: tl.constexpr = 0, BLOCK_P: tl.constexpr = 1, x_prev=None, LN: tl.constexpr = 0):
    """The start of block j's step from what :func:`_front_loads` read: x_j (:func:`_run_x`), its LayerNorm, in_proj
    and the conv step of this program's channels: (u, z) (BLOCK_B, BLOCK_E), 0 where padded, and x_j. ``MARKS``: the
    SM's clock when x is summed (``prof_s[1]``) and when (u, z) are ready (``prof_s[2]``), each read after a sum of
    that tile. ``LN``: the LayerNorm in two passes (0), in one (1, :func:`_ln_one_pass`), or folded into in_proj (2,
    :func:`_ln_folded`)."""
    offs_h = tl.arange(0, BLOCK_H)
    m_h = offs_h < H
    m_be = m_b[:, None] & m_e[None, :]
    conv = conv_ptr + j * batch * E * (K - 1)
    win = conv_window(conv, rows, offs_e, E, K)
    x = _run_x(j, x0_ptr, x0_stride, x0b_ptr, x0b_stride, outs_ptr, res_ptr, op_ptr, rows, m_b, offs_h, m_h, batch,
               H, res_first, n_res, RES_REVERSED, BLOCK_B, BLOCK_H, BLOCK_PC, xs, XCHG, BLOCK_P, x_prev)
    if MARKS:
        tl.store(prof_s + 1, sm_clock((tl.sum(x) != 0.5).to(tl.int32)))
    if LN == 2:
        mean, rstd = _ln_sums(x, H, eps)
        u = _ln_folded(x, mean, rstd, w_u, c_u, b_u)
        z = tl.where(m_be, _ln_folded(x, mean, rstd, w_z, c_z, b_z), 0.0)
    else:
        if LN == 1:
            xn = _ln_one_pass(x, m_b[:, None] & m_h[None, :], nw, nb, H, eps)
        else:
            xn = ln_regs(x, m_b[:, None] & m_h[None, :], nw, nb, H, eps)
        u = mm(xn, w_u, False, "ieee")
        z = tl.where(m_be, mm(xn, w_z, False, "ieee"), 0.0)
    u = tl.where(m_be, _conv_step(win, taps, u, w_last, bias, m_be, conv, K), 0.0)
    if MARKS:
        tl.store(prof_s + 2, sm_clock((tl.sum(u + z) != 0.5).to(tl.int32)))
    return u, z, x


@triton.jit
def _lti_loads(j, nw_ptr, nb_ptr, lnf_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr, dt_ptr, a_ptr, b_ptr, c_ptr, D_ptr, h_ptr,
               wout_ptr, rows, m_b, offs_e, m_e, batch, H, E, N, K: tl.constexpr, IS_COMPLEX: tl.constexpr,
               BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_N: tl.constexpr,
               LN: tl.constexpr):
    """LTI block j's own reads, in this order: out_proj's columns (:func:`_out_weights`), the SSM's parameters and
    state (:func:`_lti_params`, without the state's offsets) and :func:`_front_loads`' eleven."""
    pairs = 2 if IS_COMPLEX else 1
    w_out = _out_weights(wout_ptr, j, offs_e, m_e, H, E, BLOCK_H)
    dt, a_re, a_im, B_re, B_im, C_re, C_im, h_re, h_im, _, D = _lti_params(
        dt_ptr + j * E, a_ptr + j * E * N * pairs, b_ptr + j * E * N * pairs, c_ptr + j * E * N * pairs, D_ptr + j * E,
        h_ptr + j * batch * E * N * pairs, rows, m_b, offs_e, E, N, IS_COMPLEX, BLOCK_N, False)
    w_u, w_z, nw, nb, c_u, c_z, b_u, b_z, w_last, bias, taps = _front_loads(
        j, nw_ptr, nb_ptr, lnf_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr, rows, m_b, offs_e, m_e, batch, H, E, K, BLOCK_B,
        BLOCK_H, BLOCK_E, LN)
    return (w_out, dt, a_re, a_im, B_re, B_im, C_re, C_im, h_re, h_im, D, w_u, w_z, nw, nb, c_u, c_z, b_u, b_z, w_last,
            bias, taps)


@triton.jit
def _out_weights(wout_ptr, j, offs_e, m_e, H, E, BLOCK_H: tl.constexpr):
    """Block j's out_proj columns of this program's channels: (BLOCK_E, BLOCK_H) float32."""
    offs_h = tl.arange(0, BLOCK_H)
    return tl.load(wout_ptr + j * H * E + offs_h[None, :] * E + offs_e[:, None],
                   mask=m_e[:, None] & (offs_h < H)[None, :], other=0.0).to(tl.float32)


@triton.jit
def _push(part, at, BLOCK_P: tl.constexpr):
    """``part`` (a 2-D tile) to the shared addresses ``at`` of every CTA of the cluster: one (BLOCK_P, ...) tile of
    stores, so each thread stores its share once (a loop over the CTAs would store every copy that a replicated
    layout of ``part`` holds); ranks past the grid store to the last CTA again (the same value, the same place)."""
    rank = tl.minimum(tl.arange(0, BLOCK_P), tl.num_programs(0) - 1)[:, None, None]
    shape: tl.constexpr = (BLOCK_P, part.shape[0], part.shape[1])
    dsmem_store(tl.broadcast_to(part[None, :, :], shape), tl.broadcast_to(at[None, :, :], shape),
                tl.broadcast_to(rank, shape))


@triton.jit
def _store_out_partial(op_ptr, j, y, w_out, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, xs=0,
                       XCHG: tl.constexpr = 0, BLOCK_P: tl.constexpr = 1):
    """This program's out_proj partial W_out[:, channels] y of block j to ``op[j % 2, program]`` (padded rows and
    columns are 0). Two slots: an LTI block's programs write theirs while slower ones may still read block j-1's.
    ``XCHG``: pushed instead to slot (j % 2, program) of every CTA's exchange buffer at ``xs`` (distributed shared
    memory: after the cluster barrier each program sums them from its own shared memory, not from L2)."""
    tile = tl.arange(0, BLOCK_B)[:, None] * BLOCK_H + tl.arange(0, BLOCK_H)[None, :]
    part = mm(y, w_out, False, "ieee")
    if XCHG:
        at = xs + (((j % 2) * BLOCK_P + tl.program_id(0)) * (BLOCK_B * BLOCK_H) + tile) * 4
        _push(part, at, BLOCK_P)
    else:
        slot = (j % 2) * tl.num_programs(0) + tl.program_id(0)
        tl.store(op_ptr + slot * (BLOCK_B * BLOCK_H) + tile, part)


@triton.jit
def _xproj_weights(wx_ptr, j, offs_e, m_e, E, N, R, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr):
    """Block j's x_proj columns of this program's channels: (BLOCK_E, BLOCK_R) for Δ_low, (BLOCK_E, BLOCK_N) for
    B_t and C_t, float32."""
    wx = wx_ptr + j * (R + 2 * N) * E
    offs_r = tl.arange(0, BLOCK_R)
    offs_n = tl.arange(0, BLOCK_N)
    m_er = m_e[:, None] & (offs_r < R)[None, :]
    m_en = m_e[:, None] & (offs_n < N)[None, :]
    w_r = tl.load(wx + offs_r[None, :] * E + offs_e[:, None], mask=m_er, other=0.0).to(tl.float32)
    w_b = tl.load(wx + (R + offs_n[None, :]) * E + offs_e[:, None], mask=m_en, other=0.0).to(tl.float32)
    w_c = tl.load(wx + (R + N + offs_n[None, :]) * E + offs_e[:, None], mask=m_en, other=0.0).to(tl.float32)
    return w_r, w_b, w_c


@triton.jit
def _phase_a_loads(j, nw_ptr, nb_ptr, lnf_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr, wx_ptr, rows, m_b, offs_e, m_e, batch,
                   H, E, N, R, K: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_E: tl.constexpr,
                   BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr, LN: tl.constexpr):
    """Phase A's own reads of selective block j, in this order: :func:`_xproj_weights`' three, then
    :func:`_front_loads`' eleven."""
    w_r, w_b, w_c = _xproj_weights(wx_ptr, j, offs_e, m_e, E, N, R, BLOCK_N, BLOCK_R)
    w_u, w_z, nw, nb, c_u, c_z, b_u, b_z, w_last, bias, taps = _front_loads(
        j, nw_ptr, nb_ptr, lnf_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr, rows, m_b, offs_e, m_e, batch, H, E, K, BLOCK_B,
        BLOCK_H, BLOCK_E, LN)
    return w_r, w_b, w_c, w_u, w_z, nw, nb, c_u, c_z, b_u, b_z, w_last, bias, taps


@triton.jit
def _phase_a_math(j, w_u, w_z, nw, nb, c_u, c_z, b_u, b_z, w_last, bias, taps, w_r, w_b, w_c, x0_ptr, x0_stride,
                  x0b_ptr, x0b_stride, outs_ptr, res_ptr, op_ptr, xp_ptr, uz_ptr, conv_ptr, rows, m_b, offs_e, m_e,
                  batch, H, E, N, eps, res_first, n_res, K: tl.constexpr, RES_REVERSED: tl.constexpr,
                  BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_N: tl.constexpr,
                  BLOCK_R: tl.constexpr, BLOCK_PC: tl.constexpr, prof_s=None, MARKS: tl.constexpr = False, xs=0,
                  XCHG: tl.constexpr = 0, BLOCK_P: tl.constexpr = 1, x_prev=None, LN: tl.constexpr = 0):
    """Phase A from its own reads: :func:`_front_math` (``MARKS``: its clocks), u and z kept in ``uz``, and this
    program's x_proj partial to ``xp[program]`` (``XCHG``: to its slot in every CTA's exchange buffer, after the
    out_proj partials' two slots). Returns x_j, u and z."""
    offs_r = tl.arange(0, BLOCK_R)
    offs_n = tl.arange(0, BLOCK_N)
    u, z, x = _front_math(j, w_u, w_z, nw, nb, c_u, c_z, b_u, b_z, w_last, bias, taps, x0_ptr, x0_stride, x0b_ptr,
                          x0b_stride, outs_ptr, res_ptr, op_ptr, conv_ptr, rows, m_b, offs_e, m_e, batch, H, E, eps,
                          res_first, n_res, K, RES_REVERSED, BLOCK_B, BLOCK_H, BLOCK_E, BLOCK_PC, prof_s, MARKS, xs,
                          XCHG, BLOCK_P, x_prev, LN)
    m_be = m_b[:, None] & m_e[None, :]
    be = rows[:, None] * E + offs_e[None, :]
    if not XCHG:  # (XCHG: the kernel keeps u and z in registers for phase B)
        tl.store(uz_ptr + be, u, mask=m_be)
        tl.store(uz_ptr + batch * E + be, z, mask=m_be)
    # (Δ_low | B_t | C_t) padded to (BLOCK_R | BLOCK_N | BLOCK_N) columns
    xw: tl.constexpr = BLOCK_R + 2 * BLOCK_N
    p_r, p_b, p_c = mm(u, w_r, False, "ieee"), mm(u, w_b, False, "ieee"), mm(u, w_c, False, "ieee")
    if XCHG:
        at = (2 * BLOCK_P * BLOCK_B * BLOCK_H + tl.program_id(0) * (BLOCK_B * xw)
              + tl.arange(0, BLOCK_B)[:, None] * xw)
        a_r, a_b = xs + (at + offs_r[None, :]) * 4, xs + (at + BLOCK_R + offs_n[None, :]) * 4
        a_c = xs + (at + BLOCK_R + BLOCK_N + offs_n[None, :]) * 4
        _push(p_r, a_r, BLOCK_P)
        _push(p_b, a_b, BLOCK_P)
        _push(p_c, a_c, BLOCK_P)
    else:
        part = xp_ptr + tl.program_id(0) * (BLOCK_B * xw) + tl.arange(0, BLOCK_B)[:, None] * xw
        tl.store(part + offs_r[None, :], p_r)
        tl.store(part + BLOCK_R + offs_n[None, :], p_b)
        tl.store(part + BLOCK_R + BLOCK_N + offs_n[None, :], p_c)
    return x, u, z


@triton.jit
def _xp_sum(xp_ptr, xs, col0, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_R: tl.constexpr,
            BLOCK_N: tl.constexpr, BLOCK_P: tl.constexpr, WIDTH: tl.constexpr, XCHG: tl.constexpr):
    """Σ over the programs of their x_proj partials' columns col0 .. col0 + WIDTH (of BLOCK_R + 2 BLOCK_N):
    (BLOCK_B, WIDTH), from ``xp`` (past L1), or with ``XCHG`` from this CTA's exchange buffer at ``xs`` (after the
    out_proj partials' two slots; programs past the grid read the last one's slot, masked)."""
    xw: tl.constexpr = BLOCK_R + 2 * BLOCK_N
    offs_p = tl.arange(0, BLOCK_P)
    m_p = (offs_p < tl.num_programs(0))[:, None, None]
    at = tl.arange(0, BLOCK_B)[None, :, None] * xw + col0 + tl.arange(0, WIDTH)[None, None, :]
    if XCHG:
        offs_q = tl.minimum(offs_p, tl.num_programs(0) - 1)
        at += 2 * BLOCK_P * BLOCK_B * BLOCK_H + offs_q[:, None, None] * (BLOCK_B * xw)
        part = tl.where(m_p, smem_load(xs + at * 4), 0.0)
    else:
        part = tl.load(xp_ptr + offs_p[:, None, None] * (BLOCK_B * xw) + at, mask=m_p, other=0.0,
                       cache_modifier=".cg")
    return tl.sum(part, 0)


@triton.jit
def _late_barrier(prof_s, s, PROFILE: tl.constexpr, MBAR: tl.constexpr = 0, mb=0):
    """The end of a ``LATE`` phase up to the cluster barrier's arrive: the profile's end clock (before it), then
    the arrive (:func:`kernels.triton_helpers.cluster_arrive`; ``MBAR``: :func:`_phase_signal`); the caller stores
    its state, then waits (:func:`_phase_wait`)."""
    if PROFILE:
        tl.store(prof_s + 1 + 2 * (PROFILE == 2), sm_clock(s))
    if MBAR:
        _phase_signal(s, mb, MBAR)
    else:
        cluster_arrive(s)


@triton.jit
def _phase_signal(s, mb, MBAR: tl.constexpr):
    """``MBAR``: the arrive of phase s's barrier on every CTA's mbarrier s % 2 (:func:`mbar_signal`; 2: each thread
    fences first)."""
    mbar_signal(mb + (s % 2) * 8, tl.num_programs(0), MBAR == 2)


@triton.jit
def _phase_wait(s, MBAR: tl.constexpr = 0, mb=0):
    """The wait of phase s's barrier: :func:`kernels.triton_helpers.cluster_wait`, or with ``MBAR`` this CTA's
    mbarrier s % 2 at its (s // 2)-th phase (:func:`mbar_wait`)."""
    if MBAR:
        mbar_wait(mb + (s % 2) * 8, (s // 2) % 2)
    else:
        cluster_wait(s)


@triton.jit
def _phase_b_loads(j, wdt_ptr, dtb_ptr, a_ptr, D_ptr, h_ptr, wout_ptr, rows, m_b, offs_e, m_e, batch, H, E, N, R,
                   BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr):
    """Phase B's own reads of selective block j (:func:`_ssm_params`, :func:`_out_weights`): (w_dt, Δ bias, A, h,
    h's pointers, D, out_proj's columns)."""
    w_dt, dtb, A, h, hp, D = _ssm_params(wdt_ptr + j * E * R, dtb_ptr + j * E, a_ptr + j * E * N, D_ptr + j * E,
                                         h_ptr + j * batch * E * N, rows, m_b, offs_e, E, N, R, BLOCK_N, BLOCK_R,
                                         False)
    return w_dt, dtb, A, h, hp, D, _out_weights(wout_ptr, j, offs_e, m_e, H, E, BLOCK_H)


@triton.jit
def _phase_b_math(j, w_dt, dtb, A, h, hp, D, w_out, xp_ptr, uz_ptr, op_ptr, rows, m_b, offs_e, m_e, batch, E, N,
                  BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
                  BLOCK_P: tl.constexpr, prof_s=None, PROFILE: tl.constexpr = 0, xs=0, XCHG: tl.constexpr = 0,
                  LATE: tl.constexpr = False, s=0, u_prev=None, z_prev=None, MBAR: tl.constexpr = 0, mb=0):
    """Phase B from its own reads: the summed x_proj (:func:`_xp_sum`), the state update of this program's channels
    and its out_proj partial. ``PROFILE=2``: the SM's clock when x_proj is summed (``prof_s[1]``) and when y is ready
    (``prof_s[2]``), each read after a sum of that tile. ``LATE`` (a cluster run): ends with the cluster barrier's
    arrive and the new state's store (the caller waits, :func:`_run_kernel`); ``PROFILE``: its end clock before the
    arrive."""
    m_be = m_b[:, None] & m_e[None, :]
    be = rows[:, None] * E + offs_e[None, :]
    if XCHG:  # phase A's u and z, kept in registers
        u = u_prev
        z = z_prev
    else:
        u = tl.load(uz_ptr + be, mask=m_be, other=0.0, cache_modifier=".cg")
        z = tl.load(uz_ptr + batch * E + be, mask=m_be, other=0.0, cache_modifier=".cg")
    dt_low = _xp_sum(xp_ptr, xs, 0, BLOCK_B, BLOCK_H, BLOCK_R, BLOCK_N, BLOCK_P, BLOCK_R, XCHG)
    Bt = _xp_sum(xp_ptr, xs, BLOCK_R, BLOCK_B, BLOCK_H, BLOCK_R, BLOCK_N, BLOCK_P, BLOCK_N, XCHG)
    Ct = _xp_sum(xp_ptr, xs, BLOCK_R + BLOCK_N, BLOCK_B, BLOCK_H, BLOCK_R, BLOCK_N, BLOCK_P, BLOCK_N, XCHG)
    if PROFILE == 2:
        tl.store(prof_s + 1, sm_clock((tl.sum(dt_low) + tl.sum(Bt) + tl.sum(Ct) != 0.5).to(tl.int32)))
    y, h = _ssm_math(m_b, offs_e, E, dt_low, Bt, Ct, w_dt, dtb, u, z, A, h, D, False, "ieee", False)
    if not LATE:
        _ssm_store(hp, h, m_b, offs_e, E, N, BLOCK_N, False)
    if PROFILE == 2:
        tl.store(prof_s + 2, sm_clock((tl.sum(y) != 0.5).to(tl.int32)))
    _store_out_partial(op_ptr, j, y, w_out, BLOCK_B, BLOCK_H, xs, XCHG, BLOCK_P)
    if LATE:
        _late_barrier(prof_s, s, PROFILE, MBAR, mb)
        _ssm_store(hp, h, m_b, offs_e, E, N, BLOCK_N, False)


@triton.jit
def _run_kernel(
    x0_ptr, x0_stride, x0b_ptr, x0b_stride, outs_ptr, res_ptr, nw_ptr, nb_ptr, lnf_ptr, win_ptr, cw_ptr, cb_ptr,
    conv_ptr, wx_ptr, wdt_ptr, dtb_ptr, dt_ptr, a_ptr, b_ptr, c_ptr, D_ptr, h_ptr, wout_ptr, uz_ptr, xp_ptr, op_ptr,
    ticket_ptr, tail_ptr,
    batch, H, E, N, R, n_blocks, eps, res_first, n_res, tail_stride, phase, prof_ptr,
    K: tl.constexpr, SELECTIVE: tl.constexpr, IS_COMPLEX: tl.constexpr, RES_REVERSED: tl.constexpr,
    PERSISTENT: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_E: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_P: tl.constexpr, PDL: tl.constexpr = False,
    BLOCK_PC: tl.constexpr = 16, POLLS: tl.constexpr = 1 << 24, CLUSTER: tl.constexpr = False,
    PROFILE: tl.constexpr = 0, XCHG: tl.constexpr = 0, LATE: tl.constexpr = False, LN: tl.constexpr = 2,
    PIPE: tl.constexpr = False, MBAR: tl.constexpr = 0,
):
    """A run of ``n_blocks`` block steps: every phase with a barrier after each (PERSISTENT), or only ``phase``.
    ``CLUSTER`` (with PERSISTENT): the grid is one thread-block cluster (:func:`kernels.launch.launch_cluster`) and
    the programs meet at the hardware cluster barrier instead of the counter in global memory.
    Selective blocks take two phases each (2j: A, 2j + 1: B of block j; the x_proj and Δ weights ``wx``, ``wdt``,
    ``dtb``), LTI blocks one (j: the whole block up to its out_proj partial; ``dt``, ``b``, ``c``: Δ (E,), B and C
    (E, N), as (re, im) pairs with IS_COMPLEX); the last
    phase (2 or 1 times n_blocks) is the run's output. ``PROFILE`` (with PERSISTENT): each program writes its SM's
    clock (:func:`sm_clock`) at the start of every phase s and before the barrier after it to ``prof[program, s]``
    ((P, phases + 1, 2) int64; the output phase's second entry is the program's end); ``PROFILE=2``: (P, phases + 1,
    4), the start, two marks inside the phase (LTI blocks and selective phases A: x summed and (u, z) ready,
    :func:`_front_math`; selective phases B: x_proj summed and y ready; the output phase: 0), the end. ``XCHG`` (with
    CLUSTER): the partials go through distributed shared memory, an exchange buffer of that many bytes in every CTA
    (:func:`run_exchange_bytes`), instead of ``op`` and ``xp`` in global memory. ``LATE`` (with CLUSTER): an LTI
    block's and a selective phase B's new SSM state is stored between the cluster barrier's arrive and its wait
    (:func:`kernels.triton_helpers.cluster_arrive`), so the arrive's release does not wait for those stores (no
    other CTA reads them). ``LN``: each block's LayerNorm in two passes (0), one (1) or folded into in_proj (2, the
    default; :func:`_front_math`; ``lnf`` and ``win`` from :meth:`_Stack.ln_folded`). The host turns XCHG, LATE and
    the fold on by default (:func:`run_dsmem`, :func:`run_late`, :func:`run_ln`). ``PIPE`` (with LATE): the next
    phase's own reads (weights, conv window, SSM state; LTI: block j+1's :func:`_out_weights`, :func:`_lti_params`,
    :func:`_front_loads`; selective: B(j)'s :func:`_phase_b_loads` in A(j)'s barrier, A(j+1)'s
    :func:`_xproj_weights` and :func:`_front_loads` in B(j)'s) are issued between the barrier's arrive and wait
    (not before the arrive: its release would wait for them), so they are in flight during the barrier, not after
    it, and carried into the phase in registers; the first phase's before the loop. ``MBAR`` (with CLUSTER): every
    barrier through a pair of mbarriers in each CTA's shared memory instead of the hardware cluster barrier: a
    phase's arrive is, after a CTA barrier, one ``mbarrier.arrive.release.cluster`` on each CTA's mbarrier s % 2 (by
    threads 0 .. P-1, one CTA each; 2: each thread fences its stores first), its wait a poll of its own mbarrier's
    phase (:func:`_phase_signal`, :func:`_phase_wait`); the same meeting (each CTA goes on once all P have
    arrived), without the cluster-wide hardware barrier's round trip. Two mbarriers suffice: a CTA arrives for
    phase s + 2 only after the wait of phase s + 1, which needs every CTA past its wait of phase s."""
    pdl_wait(PDL)
    P = tl.num_programs(0)
    if SELECTIVE:
        per_block = 2
    else:
        per_block = 1
    n_phases = per_block * n_blocks
    if PERSISTENT:
        first = 0
        last = n_phases + 1
        if CLUSTER:
            base = 0
        else:
            # every launch of this grid size adds P per barrier, so the count before this launch is a multiple of P,
            # and at most P - 1 programs can have arrived at the first barrier before this one reads it
            start = tl.atomic_add(ticket_ptr, 0, sem="relaxed", scope="gpu")
            base = start - start % P
    else:
        first = phase
        last = phase + 1
        base = 0
    rows = tl.arange(0, BLOCK_B).to(tl.int64)
    m_b = rows < batch
    offs_e = tl.program_id(0) * BLOCK_E + tl.arange(0, BLOCK_E)
    m_e = offs_e < E
    xs = 0
    if XCHG:
        xs = cluster_smem(tl.program_id(0), XCHG)
    mb = 0
    if MBAR:  # the barriers' two mbarriers, ready in every CTA before any signals another
        mb = mbar_pair(tl.program_id(0), P)
        cluster_barrier(mb)
    xc = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)  # x_j as this program summed it (XCHG: not reloaded)
    uc = tl.zeros((BLOCK_B, BLOCK_E), dtype=tl.float32)  # a selective block's u and z from phase A (XCHG)
    zc = tl.zeros((BLOCK_B, BLOCK_E), dtype=tl.float32)
    PW: tl.constexpr = 2 + 2 * (PROFILE == 2)  # clocks per phase
    prof = prof_ptr + tl.program_id(0) * (n_phases + 1) * PW
    pairs = 2 if IS_COMPLEX else 1
    if PIPE:  # the first phase's own reads (PIPE: the next phase's are issued inside each phase's barrier)
        if SELECTIVE:
            p_wr, p_wb, p_wc, p_wu, p_wz, p_nw, p_nb, p_cu, p_cz, p_bu, p_bz, p_wl, p_bias, p_taps = _phase_a_loads(
                0, nw_ptr, nb_ptr, lnf_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr, wx_ptr, rows, m_b, offs_e, m_e, batch,
                H, E, N, R, K, BLOCK_B, BLOCK_H, BLOCK_E, BLOCK_N, BLOCK_R, LN)
            q_wdt, q_dtb, q_A, q_h, q_hp, q_D, q_wout = _phase_b_loads(
                0, wdt_ptr, dtb_ptr, a_ptr, D_ptr, h_ptr, wout_ptr, rows, m_b, offs_e, m_e, batch, H, E, N, R, BLOCK_H,
                BLOCK_N, BLOCK_R)
        else:
            (p_wout, p_dt, p_are, p_aim, p_Bre, p_Bim, p_Cre, p_Cim, p_hre, p_him, p_D, p_wu, p_wz, p_nw, p_nb, p_cu,
             p_cz, p_bu, p_bz, p_wl, p_bias, p_taps) = _lti_loads(
                0, nw_ptr, nb_ptr, lnf_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr, dt_ptr, a_ptr, b_ptr, c_ptr, D_ptr,
                h_ptr, wout_ptr, rows, m_b, offs_e, m_e, batch, H, E, N, K, IS_COMPLEX, BLOCK_B, BLOCK_H, BLOCK_E,
                BLOCK_N, LN)
    for s in range(first, last):
        j = s // per_block
        if PROFILE:
            tl.store(prof + PW * s, sm_clock(s))
        if s == n_phases:  # the run's output (only program 0's stores land), also to ``tail`` where given
            offs_h = tl.arange(0, BLOCK_H)
            x = _run_x(j, x0_ptr, x0_stride, x0b_ptr, x0b_stride, outs_ptr, res_ptr, op_ptr, rows, m_b, offs_h,
                       offs_h < H, batch, H, res_first, n_res, RES_REVERSED, BLOCK_B, BLOCK_H, BLOCK_PC, xs, XCHG,
                       BLOCK_P, xc)
            if (tail_stride >= 0) & (tl.program_id(0) == 0):
                tl.store(tail_ptr + rows[:, None] * tail_stride + offs_h[None, :], x.to(tail_ptr.dtype.element_ty),
                         mask=m_b[:, None] & (offs_h < H)[None, :])
        elif SELECTIVE:  # phase A(j), then B(j); PIPE: each phase's own reads were issued in the barrier before
            if s % 2 == 0:
                if not PIPE:
                    p_wr, p_wb, p_wc, p_wu, p_wz, p_nw, p_nb, p_cu, p_cz, p_bu, p_bz, p_wl, p_bias, p_taps = (
                        _phase_a_loads(j, nw_ptr, nb_ptr, lnf_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr, wx_ptr, rows,
                                       m_b, offs_e, m_e, batch, H, E, N, R, K, BLOCK_B, BLOCK_H, BLOCK_E, BLOCK_N,
                                       BLOCK_R, LN))
                xc, uc, zc = _phase_a_math(
                    j, p_wu, p_wz, p_nw, p_nb, p_cu, p_cz, p_bu, p_bz, p_wl, p_bias, p_taps, p_wr, p_wb, p_wc, x0_ptr,
                    x0_stride, x0b_ptr, x0b_stride, outs_ptr, res_ptr, op_ptr, xp_ptr, uz_ptr, conv_ptr, rows, m_b,
                    offs_e, m_e, batch, H, E, N, eps, res_first, n_res, K, RES_REVERSED, BLOCK_B, BLOCK_H, BLOCK_E,
                    BLOCK_N, BLOCK_R, BLOCK_PC, prof + PW * s, PROFILE == 2, xs, XCHG, BLOCK_P, xc, LN)
                if PIPE:  # B(j)'s reads inside A(j)'s barrier
                    _late_barrier(prof + PW * s, s, PROFILE, MBAR, mb)
                    q_wdt, q_dtb, q_A, q_h, q_hp, q_D, q_wout = _phase_b_loads(
                        j, wdt_ptr, dtb_ptr, a_ptr, D_ptr, h_ptr, wout_ptr, rows, m_b, offs_e, m_e, batch, H, E, N, R,
                        BLOCK_H, BLOCK_N, BLOCK_R)
                    _phase_wait(s, MBAR, mb)
            else:
                if not PIPE:
                    q_wdt, q_dtb, q_A, q_h, q_hp, q_D, q_wout = _phase_b_loads(
                        j, wdt_ptr, dtb_ptr, a_ptr, D_ptr, h_ptr, wout_ptr, rows, m_b, offs_e, m_e, batch, H, E, N, R,
                        BLOCK_H, BLOCK_N, BLOCK_R)
                _phase_b_math(j, q_wdt, q_dtb, q_A, q_h, q_hp, q_D, q_wout, xp_ptr, uz_ptr, op_ptr, rows, m_b, offs_e,
                              m_e, batch, E, N, BLOCK_B, BLOCK_H, BLOCK_N, BLOCK_R, BLOCK_P, prof + PW * s, PROFILE,
                              xs, XCHG, LATE, s, uc, zc, MBAR, mb)
                if PIPE:  # A(j + 1)'s reads inside B(j)'s barrier (the last phase reloads its own block's: unused)
                    p_wr, p_wb, p_wc, p_wu, p_wz, p_nw, p_nb, p_cu, p_cz, p_bu, p_bz, p_wl, p_bias, p_taps = (
                        _phase_a_loads(tl.minimum(j + 1, n_blocks - 1), nw_ptr, nb_ptr, lnf_ptr, win_ptr, cw_ptr,
                                       cb_ptr, conv_ptr, wx_ptr, rows, m_b, offs_e, m_e, batch, H, E, N, R, K, BLOCK_B,
                                       BLOCK_H, BLOCK_E, BLOCK_N, BLOCK_R, LN))
                if LATE:
                    _phase_wait(s, MBAR, mb)
        else:  # LTI: the state update needs only this program's channels, so the block is one phase
            if not PIPE:  # the block's own reads first: they load with x's partials, not after them (PIPE: issued
                # in the barrier before)
                (p_wout, p_dt, p_are, p_aim, p_Bre, p_Bim, p_Cre, p_Cim, p_hre, p_him, p_D, p_wu, p_wz, p_nw, p_nb,
                 p_cu, p_cz, p_bu, p_bz, p_wl, p_bias, p_taps) = _lti_loads(
                    j, nw_ptr, nb_ptr, lnf_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr, dt_ptr, a_ptr, b_ptr, c_ptr, D_ptr,
                    h_ptr, wout_ptr, rows, m_b, offs_e, m_e, batch, H, E, N, K, IS_COMPLEX, BLOCK_B, BLOCK_H, BLOCK_E,
                    BLOCK_N, LN)
            hj = h_ptr + j * batch * E * N * pairs
            h_off = lti_state_offsets(rows, offs_e, E, N, BLOCK_N)
            u, z, xc = _front_math(j, p_wu, p_wz, p_nw, p_nb, p_cu, p_cz, p_bu, p_bz, p_wl, p_bias, p_taps, x0_ptr,
                                   x0_stride, x0b_ptr, x0b_stride, outs_ptr, res_ptr, op_ptr, conv_ptr, rows, m_b,
                                   offs_e, m_e, batch, H, E, eps, res_first, n_res, K, RES_REVERSED, BLOCK_B,
                                   BLOCK_H, BLOCK_E, BLOCK_PC, prof + PW * s, PROFILE == 2, xs, XCHG, BLOCK_P, xc, LN)
            y, h_re, h_im = _lti_math(p_dt, p_are, p_aim, p_Bre, p_Bim, p_Cre, p_Cim, p_hre, p_him, p_D, u, z, m_b,
                                      offs_e, E, IS_COMPLEX, False)
            if not LATE:
                _lti_store(hj, h_off, h_re, h_im, m_b, offs_e, E, N, IS_COMPLEX, BLOCK_N, False)
            _store_out_partial(op_ptr, j, y, p_wout, BLOCK_B, BLOCK_H, xs, XCHG, BLOCK_P)
            if LATE:  # the new state stored between the barrier's arrive and its wait
                _late_barrier(prof + PW * s, s, PROFILE, MBAR, mb)
                _lti_store(hj, h_off, h_re, h_im, m_b, offs_e, E, N, IS_COMPLEX, BLOCK_N, False)
                if PIPE:  # block j + 1's reads (the last phase reloads its own block's: unused)
                    (p_wout, p_dt, p_are, p_aim, p_Bre, p_Bim, p_Cre, p_Cim, p_hre, p_him, p_D, p_wu, p_wz, p_nw, p_nb,
                     p_cu, p_cz, p_bu, p_bz, p_wl, p_bias, p_taps) = _lti_loads(
                        tl.minimum(j + 1, n_blocks - 1), nw_ptr, nb_ptr, lnf_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr,
                        dt_ptr, a_ptr, b_ptr, c_ptr, D_ptr, h_ptr, wout_ptr, rows, m_b, offs_e, m_e, batch, H, E, N, K,
                        IS_COMPLEX, BLOCK_B, BLOCK_H, BLOCK_E, BLOCK_N, LN)
                _phase_wait(s, MBAR, mb)
        # LATE: an LTI phase and a selective phase B (PIPE: A too) met at the barrier above (end clock read before it)
        met = LATE & (s < n_phases) & ((not SELECTIVE) | (s % 2 == 1) | PIPE)
        if PROFILE:
            if met == 0:
                tl.store(prof + PW * s + PW - 1, sm_clock(s))
        if PERSISTENT:
            if s < n_phases:
                if CLUSTER:  # the phase's stores (release) seen by every CTA's loads after it (acquire; .cg loads)
                    if met == 0:
                        if MBAR:
                            _phase_signal(s, mb, MBAR)
                            _phase_wait(s, MBAR, mb)
                        else:
                            cluster_barrier(s)
                    tl.debug_barrier()
                elif P > 1:
                    _grid_barrier(ticket_ptr, base + (s + 1) * P, POLLS)
                else:  # one program (AUDIOMAMBA_STEP_RUN_E >= the channels): its own stores are seen after a CTA barrier
                    tl.debug_barrier()


@dataclass
class _Stack:
    """What every Mamba block of a run has, stacked along a leading block axis (contiguous float32 copies, as the
    layers pass them to the fused step): norm (n, H) x2; in_proj (n, 2E, H); conv weight (n, E, K) and bias (n, E);
    A (n, E, N) (the layer's A); D (n, E); out_proj (n, H, E); eps the LayerNorms' epsilon (one for the run)."""

    norm_weight: Tensor
    norm_bias: Tensor
    in_proj: Tensor
    conv_weight: Tensor
    conv_bias: Tensor
    A: Tensor
    D: Tensor
    out_proj: Tensor
    eps: float

    def __post_init__(self) -> None:
        # made here, not at the first step: that may be inside a CUDA graph's capture, where nothing runs
        w = self.in_proj.double()
        gw = w * self.norm_weight.double()[:, None, :]
        terms = torch.stack([gw.sum(-1), (w * self.norm_bias.double()[:, None, :]).sum(-1)], 1)
        self._ln_folded = (gw.to(self.in_proj.dtype).contiguous(), terms.float().contiguous())

    def ln_folded(self) -> tuple[Tensor, Tensor]:
        """in_proj with each block's LayerNorm folded in (``AUDIOMAMBA_STEP_RUN_LN=fold``): diag(γ) W as rows (n, 2E,
        H), and (n, 2, 2E): their sums over H, then β W; LN(x) W = rstd (x diag(γ) W - mean Σ_h γ_h W_h) + β W.
        Made in float64 when the stack is (its weights are copies, fixed while it lives), float32 like the rest."""
        return self._ln_folded

    def shapes(self) -> dict[str, tuple[int, ...]]:
        n, H = self.norm_weight.shape
        E, N = self.A.shape[1:]
        K = self.conv_weight.shape[-1]
        return dict(norm_weight=(n, H), norm_bias=(n, H), in_proj=(n, 2 * E, H), conv_weight=(n, E, K),
                    conv_bias=(n, E), A=(n, E, N), D=(n, E), out_proj=(n, H, E))


@dataclass
class S6Stack(_Stack):
    """A run of ``mamba-s6`` blocks: :class:`_Stack` and x_proj (n, R + 2N, E), dt_proj (n, E, R), dt_bias (n, E)."""

    x_proj: Tensor
    dt_proj: Tensor
    dt_bias: Tensor

    def shapes(self) -> dict[str, tuple[int, ...]]:
        n, E, N = self.A.shape
        R = self.dt_proj.shape[-1]
        return dict(super().shapes(), x_proj=(n, R + 2 * N, E), dt_proj=(n, E, R), dt_bias=(n, E))


@dataclass
class LTIStack(_Stack):
    """A run of ``mamba-s4`` (complex) or ``mamba-s4-real`` blocks: :class:`_Stack` (A complex64 or float32) and the
    SSM's other discretisation inputs as the layer passes them to the fused step: delta (n, E); B, C (n, E, N) (B
    with any zero-order hold)."""

    delta: Tensor
    B: Tensor
    C: Tensor

    def shapes(self) -> dict[str, tuple[int, ...]]:
        n, E, N = self.A.shape
        return dict(super().shapes(), delta=(n, E), B=(n, E, N), C=(n, E, N))


def _check_stack(w: S6Stack | LTIStack) -> None:
    """ValueError naming the field whose shape does not fit the others."""
    for name, shape in w.shapes().items():
        t = getattr(w, name)
        if tuple(t.shape) != shape or not t.is_contiguous():
            raise ValueError(f"{type(w).__name__}.{name} must be contiguous of shape {shape} (run of {shape[0]} "
                             f"blocks; width, d_inner and state from norm_weight and A), got {tuple(t.shape)}")


def check_run_args(op: str, x: Tensor, w: S6Stack | LTIStack, conv_state: Tensor, h: Tensor, outs: Tensor,
                   res: Tensor | None, x0b: Tensor | None, tail: Tensor | None, rows_below: int | None) -> None:
    """ValueError naming the argument of a run's step whose shape, layout or dtype does not fit the stack ``w``
    (and, with ``rows_below``, a batch of that many rows or more)."""
    _check_stack(w)
    n, H = w.norm_weight.shape
    E, N = w.A.shape[1:]
    K = w.conv_weight.shape[-1]
    batch = x.shape[0]
    few = "" if rows_below is None else f" with B < {rows_below} (one stream)"
    for name, t in (("x", x), ("x0b", x0b), ("tail", tail)):
        if t is not None and ((rows_below is not None and batch >= rows_below) or tuple(t.shape) != (batch, H)
                              or t.stride(1) != 1):
            raise ValueError(f"{op}: {name} must be (B, {H}){few} and unit column stride, got {tuple(t.shape)} "
                             f"strides {t.stride()}")
    for name, t, shape in (("conv_state", conv_state, (n, batch, E, K - 1)), ("h", h, (n, batch, E, N)),
                           ("outs", outs, (n + 1, batch, H))):
        if tuple(t.shape) != shape or not t.is_contiguous():
            raise ValueError(f"{op}: {name} must be contiguous of shape {shape}, got {tuple(t.shape)}")
    h_dtypes = (torch.complex64,) if w.A.is_complex() else REAL_STATE_DTYPES
    if h.dtype not in h_dtypes:
        raise ValueError(f"{op}: h must be {' or '.join(map(str, h_dtypes))} (the SSM's state), got {h.dtype}")
    if res is not None and (tuple(res.shape[1:]) != (batch, H) or not res.is_contiguous()):
        raise ValueError(f"{op}: res must be contiguous (m, {batch}, {H}), got {tuple(res.shape)}")


def run_scratch(batch: int, H: int, E: int, N: int, R: int, device: torch.device, block_e: int) -> dict[str, Tensor]:
    """The buffers a run's launch passes partials through (allocate once per run, outside a CUDA graph capture): u
    and z (2, B, E); x_proj partials per program; out_proj partials per program in two slots (even and odd blocks);
    the barrier's counter and its give-up flag (int64, start at 0). R = 0 for LTI blocks."""
    bb, bh = next_pow2(batch), next_pow2(H)
    P = cdiv(E, block_e)
    xw = max(2, next_pow2(R)) + 2 * max(2, next_pow2(N))
    f32 = dict(device=device, dtype=torch.float32)
    return dict(uz=torch.empty((2, batch, E), **f32), xp=torch.zeros((P, bb, xw), **f32),
                op=torch.zeros((2, P, bb, bh), **f32), counter=torch.zeros(2, device=device, dtype=torch.int64))


def check_runs_scratch(scratch: dict[str, Tensor]) -> None:
    """KernelError if a launch with these buffers gave up waiting at a barrier (its results are then wrong). Reads
    the flag from the device: call it once at the end of a generation, not per step."""
    if int(scratch["counter"][1].item()):
        raise KernelError("a one-launch run of Mamba blocks gave up waiting at a grid barrier (not all of its programs "
                          "could run at once, e.g. another process holds the GPU's SMs), so its samples are wrong: "
                          "set AUDIOMAMBA_STEP_RUNS=split or 0 and generate again")


def run_profile_buffer(w: S6Stack | LTIStack, block_e: int, device: torch.device, marks: bool = False) -> Tensor:
    """The buffer of a run step's in-kernel profile (``profile=`` of the run steps): (P, phases + 1, 2) int64, or
    (P, phases + 1, 4) with ``marks`` (the clocks inside a phase too: ``PROFILE=2`` of the run kernel)."""
    n, E = w.A.shape[:2]
    return torch.zeros((cdiv(E, block_e), (2 if isinstance(w, S6Stack) else 1) * n + 1, 4 if marks else 2),
                       dtype=torch.int64, device=device)


#: the parts of a phase that a profile with marks reports (:func:`run_profile`): start to x summed, x to (u, z)
#: ready, (u, z) to the phase's end (LTI blocks, selective phases A); selective phases B: start to x_proj summed,
#: x_proj to y ready, y to the phase's end
PROFILE_MARKS = ("to x", "to u, z", "after u, z")
PROFILE_MARKS_B = ("B to x_proj", "B to y", "B after y")


def run_profile(prof: Tensor, selective: bool) -> dict[str, float]:
    """Cycles of one profiled run step (``prof``: :func:`run_profile_buffer` after the launch), by part: "A work" /
    "B work" (a selective block's two phases; LTI: "block work"), the slowest program's cycles from a phase's start
    to its barrier; "barrier", the fastest program's wait from its arrival to the next phase's start (the
    hardware's wait when every program came at once; each program waits longer for a slower one); "output" (the
    last phase); "total", the longest program's cycles from its start to its end (each SM has its own clock). Medians
    over the run's blocks. With marks (4 clocks per phase), medians over every program of the phases that have them:
    LTI blocks and selective phases A, :data:`PROFILE_MARKS`: "to x" (x's partials loaded and summed), "to u, z"
    (LayerNorm, in_proj, conv) and "after u, z" (the rest of the phase: the state update and out_proj, or the x_proj
    partial); selective phases B, :data:`PROFILE_MARKS_B`: x_proj's partials summed, the state update, out_proj."""
    t = prof.double().cpu()
    start, pre = t[:, :, 0], t[:, :, -1]
    work = (pre - start).amax(0)  # (phases + 1,)
    barrier = (start[:, 1:] - pre[:, :-1]).amin(0)  # (phases,)
    phases = work.shape[0] - 1
    out = {"output": float(work[-1]), "barrier": float(barrier.quantile(0.5)),
           "total": float((pre[:, -1] - start[:, 0]).max())}
    if selective:
        out["A work"], out["B work"] = float(work[0:phases:2].quantile(0.5)), float(work[1:phases:2].quantile(0.5))
    else:
        out["block work"] = float(work[:phases].quantile(0.5))
    if t.shape[-1] == 4:
        groups = [(PROFILE_MARKS, t[:, :phases:2] if selective else t[:, :phases])]  # (P, marked phases, 4)
        if selective:
            groups.append((PROFILE_MARKS_B, t[:, 1:phases:2]))
        for names, marked in groups:
            if marked.shape[1]:
                for a, name in enumerate(names):
                    out[name] = float((marked[..., a + 1] - marked[..., a]).flatten().quantile(0.5))
    return out


#: polls of a barrier before a program gives up (about seconds on a GPU); tests set it low
RUN_POLLS = 1 << 24
#: tests only: let the interpreter run a persistent grid of several programs (whose barriers then give up)
_INTERPRETER_BARRIERS = False


def _as_real(t: Tensor) -> Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


def launch_form(mode: str, fits_cluster: bool, resident: bool) -> str:
    """How a run's step launches for ``mode`` (:func:`runs_mode`): "cluster" (one persistent launch as one
    thread-block cluster, hardware barriers), "1" (one persistent launch, grid barriers) or "split" (one launch per
    phase). ``fits_cluster``: the programs fit in one cluster on a sm_90+ GPU (outside the interpreter);
    ``resident``: they can all be resident at once (grid barriers can open). "auto" is "cluster" where the programs
    fit in one, else "split"; "cluster" falls back to "1", and both persistent forms to "split"."""
    if mode == "auto":
        mode = "cluster" if fits_cluster else "split"
    if mode == "cluster" and fits_cluster:
        return "cluster"
    return "1" if mode in ("1", "cluster") and resident else "split"


@torch.no_grad()
def _run_step(x: Tensor, w: S6Stack | LTIStack, conv_state: Tensor, h: Tensor, outs: Tensor,
              scratch: dict[str, Tensor], res: Tensor | None, res_first: int, res_reversed: bool,
              block_e: int | None, mode: str | None, x0b: Tensor | None, tail: Tensor | None,
              profile: Tensor | None = None) -> Tensor:
    op = "mamba_s6_run_step" if isinstance(w, S6Stack) else "mamba_lti_run_step"
    check_run_args(op, x, w, conv_state, h, outs, res, x0b, tail, 16)
    n, H = w.norm_weight.shape
    E, N = w.A.shape[1:]
    K = w.conv_weight.shape[-1]
    selective = isinstance(w, S6Stack)
    R = w.dt_proj.shape[-1] if selective else 0
    cplx = w.A.is_complex()
    batch = x.shape[0]
    n_res = 0 if res is None else res.shape[0]
    block_e = block_e or run_block_e(E)
    P = cdiv(E, block_e)
    if scratch["xp"].shape[0] != P:  # the barrier's counter assumes one grid size per scratch
        raise ValueError(f"{op}: scratch is for {scratch['xp'].shape[0]} programs, the launch has {P} ({block_e} "
                         "channels each): pass the block_e given to run_scratch")
    fits_cluster = on_sm90(x) and P <= cluster_ctas_max(x)
    # a grid barrier needs every program resident at once (one SM each at most); the interpreter runs them in turn
    resident = (not (interpreting() and P > 1 and not _INTERPRETER_BARRIERS)
                and not (x.is_cuda and P > torch.cuda.get_device_properties(x.device).multi_processor_count))
    form = launch_form(mode or runs_mode(), fits_cluster, resident)
    persistent = form != "split"
    cluster = form == "cluster"
    pdl = pdl_enabled(x)
    none = scratch["op"]  # any float32 buffer: a pointer the other block kind does not read
    if selective:
        ssm = (w.x_proj, w.dt_proj, w.dt_bias, none, w.A, none, none)
    else:
        ssm = (none, none, none, w.delta, _as_real(w.A), _as_real(w.B), _as_real(w.C))
    ln = run_ln()
    win, lnf = w.ln_folded() if ln == 2 else (w.in_proj, none)
    args = (x, x.stride(0), x if x0b is None else x0b, -1 if x0b is None else x0b.stride(0), outs,
            res if res is not None else x, w.norm_weight, w.norm_bias, lnf, win, w.conv_weight, w.conv_bias,
            conv_state, *ssm, w.D, _as_real(h), w.out_proj, scratch["uz"], scratch["xp"], scratch["op"],
            scratch["counter"], outs if tail is None else tail, batch, H, E, N, R, n, float(w.eps), res_first, n_res,
            -1 if tail is None else tail.stride(0))
    consts = dict(K=K, SELECTIVE=selective, IS_COMPLEX=cplx, RES_REVERSED=res_reversed, PERSISTENT=persistent,
                  BLOCK_B=next_pow2(batch), BLOCK_H=next_pow2(H), BLOCK_E=block_e,
                  BLOCK_N=max(2, next_pow2(N)), BLOCK_R=max(2, next_pow2(R)),
                  BLOCK_P=next_pow2(P), num_warps=run_warps(H, selective), PDL=pdl, launch_pdl=pdl)
    n_phases = (2 if selective else 1) * n
    if profile is not None and (not persistent or profile.dtype != torch.int64 or not profile.is_contiguous()
                                or tuple(profile.shape) not in ((P, n_phases + 1, 2), (P, n_phases + 1, 4))):
        raise KernelError(f"{op}: a profile needs a persistent launch (mode 'cluster' or '1', here {form!r}) and a "
                          f"contiguous int64 buffer ({P}, {n_phases + 1}, 2) (or 4 with marks), got "
                          f"{tuple(profile.shape)}")
    consts.update(PROFILE=0 if profile is None else 1 if profile.shape[-1] == 2 else 2)
    prof = profile if profile is not None else scratch["counter"]
    # out_proj partials summed BLOCK_PC programs at a time: at most 8192 values per load (registers)
    block_pc = min(consts["BLOCK_P"], max(1, 8192 // (consts["BLOCK_B"] * consts["BLOCK_H"])))
    consts.update(POLLS=RUN_POLLS, BLOCK_PC=block_pc, LN=ln)
    if cluster:
        xchg = run_exchange_bytes(selective, consts["BLOCK_B"], consts["BLOCK_H"], consts["BLOCK_P"],
                                  consts["BLOCK_R"], consts["BLOCK_N"]) if run_dsmem() else 0
        late = run_late()
        launch_cluster(_run_kernel, P, *args, 0, prof, CLUSTER=True, XCHG=xchg, LATE=late,
                       PIPE=late and run_pipe(), MBAR=run_mbar(), **consts)
        return outs[n]
    for phase in [0] if persistent else range(n_phases + 1):
        launch_named(_run_kernel, (P,), *args, phase, prof, **consts)
    return outs[n]


def mamba_s6_run_step_triton(x: Tensor, w: S6Stack, conv_state: Tensor, h: Tensor, outs: Tensor,
                             scratch: dict[str, Tensor], res: Tensor | None = None, res_first: int = 0,
                             res_reversed: bool = False, block_e: int | None = None, mode: str | None = None,
                             x0b: Tensor | None = None, tail: Tensor | None = None,
                             profile: Tensor | None = None) -> Tensor:
    """One step of a run of n ``mamba-s6`` blocks for x (B, H), B < 16; updates ``conv_state`` (n, B, E, K-1) and
    ``h`` (n, B, E, N) IN PLACE and writes ``outs`` (n + 1, B, H): outs[j] the input of block j, outs[n] the run's
    output (returned).

    ``res`` (m, B, H): block res_first + i adds res[i] to its output (res[m - 1 - i] with ``res_reversed``: the
    U-Net's up path pops its skips). ``scratch``: :func:`run_scratch` for the same sizes and ``block_e``.
    ``mode``: "1" (one persistent launch), "cluster" (the same as one thread-block cluster, :func:`runs_mode`) or
    "split" (one launch per phase); default :func:`runs_mode`, and always "split" in the CPU interpreter where more
    than one program would need a barrier. ``x0b`` (B, H): added to x (the
    UpPool's output and its skip, one launch fewer); ``tail`` (B, H): the output is also written there (the
    DownPool's buffer slot). x, x0b and tail may have any row stride. ``profile``: an in-kernel profile's buffer
    (:func:`run_profile_buffer`; persistent modes only)."""
    return _run_step(x, w, conv_state, h, outs, scratch, res, res_first, res_reversed, block_e, mode, x0b, tail,
                     profile)


def mamba_lti_run_step_triton(x: Tensor, w: LTIStack, conv_state: Tensor, h: Tensor, outs: Tensor,
                              scratch: dict[str, Tensor], res: Tensor | None = None, res_first: int = 0,
                              res_reversed: bool = False, block_e: int | None = None, mode: str | None = None,
                              x0b: Tensor | None = None, tail: Tensor | None = None,
                              profile: Tensor | None = None) -> Tensor:
    """:func:`mamba_s6_run_step_triton` for a run of ``mamba-s4`` (complex; h (n, B, E, N) complex64) or
    ``mamba-s4-real`` blocks (h float32 or bf16): one phase and one barrier per block (the state update needs no sum
    over channels)."""
    return _run_step(x, w, conv_state, h, outs, scratch, res, res_first, res_reversed, block_e, mode, x0b, tail,
                     profile)


def _ref_front(x: Tensor, w: S6Stack | LTIStack, j: int, conv_state: Tensor) -> tuple[Tensor, Tensor]:
    """Block j's LayerNorm, in_proj and conv step (conv_state[j] shifted in place): (u, z)."""
    xn = F.layer_norm(x, x.shape[-1:], w.norm_weight[j].to(x.dtype), w.norm_bias[j].to(x.dtype), w.eps)
    u, z = (xn @ w.in_proj[j].to(x.dtype).T).chunk(2, dim=-1)
    window = torch.cat([conv_state[j].to(x.dtype), u[..., None]], dim=-1)  # (B, E, K)
    conv_state[j].copy_(window[..., 1:])
    return F.silu((window * w.conv_weight[j].to(x.dtype)).sum(-1) + w.conv_bias[j].to(x.dtype)), z


def run_step_ref(x: Tensor, w: S6Stack | LTIStack, conv_state: Tensor, h: Tensor, res: Tensor | None = None,
                 res_first: int = 0, res_reversed: bool = False, x0b: Tensor | None = None) -> Tensor:
    """PyTorch reference of :func:`mamba_s6_run_step_triton` and :func:`mamba_lti_run_step_triton` (float64
    x computes in float64; h complex128 for complex LTI): returns outs (n + 1, B, H) and updates ``conv_state`` and
    ``h`` in place."""
    x = x if x0b is None else x + x0b.to(x.dtype)
    outs = [x]
    for j in range(w.norm_weight.shape[0]):
        u, z = _ref_front(x, w, j, conv_state)
        D = w.D[j].to(x.dtype)
        if isinstance(w, S6Stack):
            N, R = w.A.shape[-1], w.dt_proj.shape[-1]
            dbc = u @ w.x_proj[j].to(x.dtype).T
            dt_low, Bt, Ct = dbc[:, :R], dbc[:, R:R + N], dbc[:, R + N:]
            dt = F.softplus(dt_low @ w.dt_proj[j].to(x.dtype).T + w.dt_bias[j].to(x.dtype))
            hj = torch.exp(dt[..., None] * w.A[j].to(x.dtype)) * h[j].to(x.dtype) + (dt * u)[..., None] * Bt[:, None, :]
            y = (hj * Ct[:, None, :]).sum(-1)
        else:
            dt = w.delta[j].to(x.dtype)[:, None]
            sd = h.dtype if h.is_complex() else x.dtype  # a bf16 state computes in x's precision
            hj = torch.exp(dt * w.A[j].to(sd)) * h[j].to(sd) + (dt * w.B[j].to(sd)) * u[..., None]
            y = (hj * w.C[j].to(sd)).sum(-1)
            y = 2 * y.real if y.is_complex() else y
        h[j].copy_(hj)
        y = (y + D * u) * F.silu(z)
        x = x + y @ w.out_proj[j].to(x.dtype).T
        i = j - res_first
        if res is not None and 0 <= i < res.shape[0]:
            x = x + res[res.shape[0] - 1 - i if res_reversed else i].to(x.dtype)
        outs.append(x)
    return torch.stack(outs)
