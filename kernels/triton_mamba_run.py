"""One stream's step of a run of consecutive ``mamba-s6`` blocks in ONE launch: a persistent grid with barriers.

A one-stream step of a Mamba block is three latency-bound launches (:mod:`kernels.triton_mamba_step`), and an
sc09-small sample takes about 67 launches (62 of them block kernels: H200, 2026-12-04, 0.104 ms per sample, 0.60x
real time). This kernel steps a whole run of blocks (a U-Net stage's 8 down or up blocks, or its center) for a few rows
(fewer than 16) as one launch of P programs, each owning ``BLOCK_E`` of the d_inner channels. The two reductions over
all channels become grid barriers instead of launch boundaries; per block j::

    A(j)  x_j = x_(j-1) + Σ_p out-partials_p (+ res)      every program, the same sum in the same order
          xn = LayerNorm(x_j); (u, z) = in_proj(xn) for its channels; u = SiLU(conv step(u));
          its x_proj partial (Δ_low, B_t, C_t) from its channels of u                  -> barrier
    B(j)  (Δ_low, B_t, C_t) = Σ_p x_proj partials_p; Δ = softplus(dt_proj(Δ_low) + dt_bias);
          h ← exp(Δ A) h + Δ B_t u (its channels, in place); y = (C_t · h + D u) · SiLU(z);
          its out_proj partial W_out[:, channels] y                                   -> barrier

and after the last block, x_out = x + Σ partials (+ res). So a run of n blocks is one launch with 2n barriers
instead of 3n launches. Program 0 writes every block's input and the run's output to ``outs`` (n + 1, B, H): the
U-Net's skips. Partials, u and z pass through small float32 buffers (read from L2, ``.cg``).

The barrier (:func:`_grid_barrier`) is a ticket counter (int64, never reset): each program adds 1 (release) and
waits (acquire) until the count reaches the next multiple of P, so every launch of a run uses the same counter
safely (launches on one stream are ordered; with PDL the wait for the previous kernel comes first). All P programs
must be resident at once: P is at most ``E / BLOCK_E`` (8-32 for the sc09 and youtubemix presets), far below the
number of SMs.

Triton's CPU interpreter runs a grid's programs one after another, so a barrier there would wait forever: under the
interpreter (and with ``AUDIOMAMBA_STEP_RUNS=split`` on a GPU, to time the barriers against launches) the same
phases run as 2n + 1 launches of one phase each, with the same code and buffers. The math is that of
:func:`kernels.triton_mamba_step.mamba_s6_block_step_triton` for one stream (exact float32 broadcast products; the
same state-update helpers); only the order of the sums over channels differs. :func:`mamba_s6_run_step_ref` is the
PyTorch reference.

Built 2026-12-04 on a CPU machine (interpreter tests); not yet timed on a GPU: opt-in with ``AUDIOMAMBA_STEP_RUNS=1``
(:func:`runs_mode`), ``python -m audiomamba.bench.profile_generate --batch 1`` and the ``bench generate`` stream cases
time it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from torch import Tensor

from .backend import interpreting, pdl_enabled
from .errors import KernelError
from .triton_helpers import ln_regs, mm, pdl_wait
from .triton_mamba_step import _conv_step, _conv_taps, _in_proj_weights, _ssm_channels, _ssm_params

#: ``AUDIOMAMBA_STEP_RUNS``: 0 (off, the default until timed), 1 (one persistent launch per run), split (one launch
#: per phase: the same kernel without barriers)
RUNS_MODES = ("0", "1", "split")
#: d_inner channels per program (``AUDIOMAMBA_STEP_RUN_E`` overrides; a power of two)
RUN_BLOCK_E = 16
RUN_WARPS = 4


def runs_mode() -> str:
    """``AUDIOMAMBA_STEP_RUNS``: "0" (off), "1" (persistent) or "split"; a bad value is a one-line KernelError."""
    flag = os.environ.get("AUDIOMAMBA_STEP_RUNS", "0").strip().lower() or "0"
    if flag not in RUNS_MODES:
        raise KernelError(f"AUDIOMAMBA_STEP_RUNS={flag!r} in the environment: use 0 (one launch chain per block, the "
                          "default), 1 (one launch per run of blocks) or split (one launch per phase)")
    return flag


def run_block_e(E: int) -> int:
    """Channels per program: ``AUDIOMAMBA_STEP_RUN_E`` or :data:`RUN_BLOCK_E`, at most next_pow2(E)."""
    text = os.environ.get("AUDIOMAMBA_STEP_RUN_E", "").strip()
    n = int(text) if text.isdigit() else RUN_BLOCK_E
    if text and (not text.isdigit() or n < 1 or n & (n - 1)):
        raise KernelError(f"AUDIOMAMBA_STEP_RUN_E={text!r} in the environment: give a power of two (channels per "
                          "program of a run's launch)")
    return min(n, triton.next_power_of_2(E))


@triton.jit
def _grid_barrier(ticket_ptr, n_programs):
    """Every program of the grid waits here until all have arrived: a ticket counter that is never reset (ticket t
    belongs to the barrier that ends at the next multiple of ``n_programs``). Release on arrival, acquire on leaving,
    and a CTA barrier on both sides, so the stores of every program before it are visible to the loads of every
    program after it (those loads also read L2, ``.cg``)."""
    tl.debug_barrier()
    ticket = tl.atomic_add(ticket_ptr, 1, sem="release", scope="gpu")
    target = (ticket // n_programs + 1) * n_programs
    seen = tl.atomic_add(ticket_ptr, 0, sem="acquire", scope="gpu")
    while seen < target:
        seen = tl.atomic_add(ticket_ptr, 0, sem="acquire", scope="gpu")
    tl.debug_barrier()


@triton.jit
def _run_x(j, x0_ptr, outs_ptr, res_ptr, op_ptr, rows, m_b, offs_h, m_h, offs_p, m_p, batch, H, res_first, n_res,
           RES_REVERSED: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    """Block j's input x_j (BLOCK_B, BLOCK_H): x0 for j = 0, else x_(j-1) + Σ_p out_proj partials (+ block j-1's
    res); program 0 stores it to outs[j]."""
    m_bh = m_b[:, None] & m_h[None, :]
    bh = rows[:, None] * H + offs_h[None, :]
    if j == 0:
        x = tl.load(x0_ptr + bh, mask=m_bh, other=0.0).to(tl.float32)
    else:
        x = tl.load(outs_ptr + (j - 1) * batch * H + bh, mask=m_bh, other=0.0, cache_modifier=".cg").to(tl.float32)
        tile = offs_p[:, None, None] * (BLOCK_B * BLOCK_H) + (tl.arange(0, BLOCK_B)[:, None] * BLOCK_H
                                                              + tl.arange(0, BLOCK_H)[None, :])[None, :, :]
        part = tl.load(op_ptr + tile, mask=m_p[:, None, None], other=0.0, cache_modifier=".cg")
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
def _run_phase_a(j, x0_ptr, outs_ptr, res_ptr, op_ptr, xp_ptr, uz_ptr, nw_ptr, nb_ptr, win_ptr, cw_ptr, cb_ptr,
                 conv_ptr, wx_ptr, batch, H, E, N, R, eps, res_first, n_res,
                 K: tl.constexpr, RES_REVERSED: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
                 BLOCK_E: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_P: tl.constexpr):
    """Phase A of block j (module docstring): x_j, LayerNorm, in_proj + conv of this program's channels (u and z
    kept in ``uz``), and its x_proj partial to ``xp[program]``."""
    pid = tl.program_id(0)
    rows = tl.arange(0, BLOCK_B).to(tl.int64)
    m_b = rows < batch
    offs_h = tl.arange(0, BLOCK_H)
    m_h = offs_h < H
    offs_e = pid * BLOCK_E + tl.arange(0, BLOCK_E)
    m_e = offs_e < E
    m_be = m_b[:, None] & m_e[None, :]
    offs_p = tl.arange(0, BLOCK_P)
    # this block's weights and conv window: none depends on the other programs, so all load with x's partials
    w_u, w_z = _in_proj_weights(win_ptr + j * 2 * E * H, offs_e, m_e, offs_h, H, E, False)
    nw = tl.load(nw_ptr + j * H + offs_h, mask=m_h, other=0.0).to(tl.float32)
    nb = tl.load(nb_ptr + j * H + offs_h, mask=m_h, other=0.0).to(tl.float32)
    cw = cw_ptr + j * E * K
    w_last = tl.load(cw + offs_e * K + (K - 1), mask=m_e, other=0.0).to(tl.float32)
    bias = tl.load(cb_ptr + j * E + offs_e, mask=m_e, other=0.0).to(tl.float32)
    conv = conv_ptr + j * batch * E * (K - 1)
    win, taps = _conv_taps(conv, cw, rows, offs_e, m_e, m_be, E, K, BLOCK_B, BLOCK_E)
    wx = wx_ptr + j * (R + 2 * N) * E
    offs_r = tl.arange(0, BLOCK_R)
    offs_n = tl.arange(0, BLOCK_N)
    m_er = m_e[:, None] & (offs_r < R)[None, :]
    m_en = m_e[:, None] & (offs_n < N)[None, :]
    w_r = tl.load(wx + offs_r[None, :] * E + offs_e[:, None], mask=m_er, other=0.0).to(tl.float32)
    w_b = tl.load(wx + (R + offs_n[None, :]) * E + offs_e[:, None], mask=m_en, other=0.0).to(tl.float32)
    w_c = tl.load(wx + (R + N + offs_n[None, :]) * E + offs_e[:, None], mask=m_en, other=0.0).to(tl.float32)

    x = _run_x(j, x0_ptr, outs_ptr, res_ptr, op_ptr, rows, m_b, offs_h, m_h, offs_p, offs_p < tl.num_programs(0),
               batch, H, res_first, n_res, RES_REVERSED, BLOCK_B, BLOCK_H)
    xn = ln_regs(x, m_b[:, None] & m_h[None, :], nw, nb, H, eps)
    u = mm(xn, w_u, False, "ieee")
    z = tl.where(m_be, mm(xn, w_z, False, "ieee"), 0.0)
    u = tl.where(m_be, _conv_step(win, taps, u, w_last, bias, m_be, conv, K), 0.0)
    be = rows[:, None] * E + offs_e[None, :]
    tl.store(uz_ptr + be, u, mask=m_be)
    tl.store(uz_ptr + batch * E + be, z, mask=m_be)
    # this program's x_proj partial: (Δ_low | B_t | C_t) padded to (BLOCK_R | BLOCK_N | BLOCK_N) columns
    xw: tl.constexpr = BLOCK_R + 2 * BLOCK_N
    part = xp_ptr + pid * (BLOCK_B * xw) + tl.arange(0, BLOCK_B)[:, None] * xw
    tl.store(part + offs_r[None, :], mm(u, w_r, False, "ieee"))
    tl.store(part + BLOCK_R + offs_n[None, :], mm(u, w_b, False, "ieee"))
    tl.store(part + BLOCK_R + BLOCK_N + offs_n[None, :], mm(u, w_c, False, "ieee"))


@triton.jit
def _run_phase_b(j, xp_ptr, uz_ptr, op_ptr, wdt_ptr, dtb_ptr, a_ptr, D_ptr, h_ptr, wout_ptr, batch, H, E, N, R,
                 BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_N: tl.constexpr,
                 BLOCK_R: tl.constexpr, BLOCK_P: tl.constexpr):
    """Phase B of block j (module docstring): the summed x_proj, the state update of this program's channels and its
    out_proj partial to ``op[program]``."""
    pid = tl.program_id(0)
    rows = tl.arange(0, BLOCK_B).to(tl.int64)
    m_b = rows < batch
    offs_e = pid * BLOCK_E + tl.arange(0, BLOCK_E)
    m_e = offs_e < E
    m_be = m_b[:, None] & m_e[None, :]
    offs_h = tl.arange(0, BLOCK_H)
    w_dt, dtb, A, h, hp, D = _ssm_params(wdt_ptr + j * E * R, dtb_ptr + j * E, a_ptr + j * E * N, D_ptr + j * E,
                                         h_ptr + j * batch * E * N, rows, m_b, offs_e, E, N, R, BLOCK_N, BLOCK_R,
                                         False)
    w_out = tl.load(wout_ptr + j * H * E + offs_h[None, :] * E + offs_e[:, None],
                    mask=m_e[:, None] & (offs_h < H)[None, :], other=0.0).to(tl.float32)
    be = rows[:, None] * E + offs_e[None, :]
    u = tl.load(uz_ptr + be, mask=m_be, other=0.0, cache_modifier=".cg")
    z = tl.load(uz_ptr + batch * E + be, mask=m_be, other=0.0, cache_modifier=".cg")
    xw: tl.constexpr = BLOCK_R + 2 * BLOCK_N
    offs_p = tl.arange(0, BLOCK_P)
    m_p = (offs_p < tl.num_programs(0))[:, None, None]
    part = xp_ptr + offs_p[:, None, None] * (BLOCK_B * xw) + tl.arange(0, BLOCK_B)[None, :, None] * xw
    dt_low = tl.sum(tl.load(part + tl.arange(0, BLOCK_R)[None, None, :], mask=m_p, other=0.0, cache_modifier=".cg"), 0)
    Bt = tl.sum(tl.load(part + BLOCK_R + tl.arange(0, BLOCK_N)[None, None, :], mask=m_p, other=0.0,
                        cache_modifier=".cg"), 0)
    Ct = tl.sum(tl.load(part + BLOCK_R + BLOCK_N + tl.arange(0, BLOCK_N)[None, None, :], mask=m_p, other=0.0,
                        cache_modifier=".cg"), 0)
    y = _ssm_channels(m_b, offs_e, E, N, dt_low, Bt, Ct, w_dt, dtb, u, z, A, h, hp, D, False, "ieee", BLOCK_N, False)
    tl.store(op_ptr + pid * (BLOCK_B * BLOCK_H) + tl.arange(0, BLOCK_B)[:, None] * BLOCK_H + offs_h[None, :],
             mm(y, w_out, False, "ieee"))


@triton.jit
def _s6_run_kernel(
    x0_ptr, outs_ptr, res_ptr, nw_ptr, nb_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr, wx_ptr, wdt_ptr, dtb_ptr, a_ptr,
    D_ptr, h_ptr, wout_ptr, uz_ptr, xp_ptr, op_ptr, ticket_ptr,
    batch, H, E, N, R, n_blocks, eps, res_first, n_res, phase,
    K: tl.constexpr, RES_REVERSED: tl.constexpr, PERSISTENT: tl.constexpr, BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
    BLOCK_P: tl.constexpr, PDL: tl.constexpr = False,
):
    """A run of ``n_blocks`` block steps: all phases with barriers (PERSISTENT), or only ``phase`` (2j: A of block
    j, 2j + 1: B of block j, 2·n_blocks: the run's output)."""
    pdl_wait(PDL)
    P = tl.num_programs(0)
    if PERSISTENT:
        first = 0
        last = 2 * n_blocks + 1
    else:
        first = phase
        last = phase + 1
    for s in range(first, last):
        j = s // 2
        if s == 2 * n_blocks:  # the run's output (only program 0's store lands)
            rows = tl.arange(0, BLOCK_B).to(tl.int64)
            offs_h = tl.arange(0, BLOCK_H)
            offs_p = tl.arange(0, BLOCK_P)
            _run_x(j, x0_ptr, outs_ptr, res_ptr, op_ptr, rows, rows < batch, offs_h, offs_h < H, offs_p, offs_p < P,
                   batch, H, res_first, n_res, RES_REVERSED, BLOCK_B, BLOCK_H)
        elif s % 2 == 0:
            _run_phase_a(j, x0_ptr, outs_ptr, res_ptr, op_ptr, xp_ptr, uz_ptr, nw_ptr, nb_ptr, win_ptr, cw_ptr,
                         cb_ptr, conv_ptr, wx_ptr, batch, H, E, N, R, eps, res_first, n_res, K, RES_REVERSED,
                         BLOCK_B, BLOCK_H, BLOCK_E, BLOCK_N, BLOCK_R, BLOCK_P)
        else:
            _run_phase_b(j, xp_ptr, uz_ptr, op_ptr, wdt_ptr, dtb_ptr, a_ptr, D_ptr, h_ptr, wout_ptr, batch, H, E, N,
                         R, BLOCK_B, BLOCK_H, BLOCK_E, BLOCK_N, BLOCK_R, BLOCK_P)
        if PERSISTENT:
            if s < 2 * n_blocks:
                _grid_barrier(ticket_ptr, P)


@dataclass
class S6Stack:
    """The weights of a run of ``mamba-s6`` blocks, stacked along a leading block axis (contiguous float32 copies,
    as the layers pass them to the fused step): norm (n, H) x2; in_proj (n, 2E, H); conv weight (n, E, K) and bias
    (n, E); x_proj (n, R + 2N, E); dt_proj (n, E, R); dt_bias (n, E); A (n, E, N) (the layer's A); D (n, E);
    out_proj (n, H, E); eps the LayerNorms' epsilon (one for the run)."""

    norm_weight: Tensor
    norm_bias: Tensor
    in_proj: Tensor
    conv_weight: Tensor
    conv_bias: Tensor
    x_proj: Tensor
    dt_proj: Tensor
    dt_bias: Tensor
    A: Tensor
    D: Tensor
    out_proj: Tensor
    eps: float

    def check(self) -> None:
        """ValueError naming the field whose shape does not fit the others."""
        n, H = self.norm_weight.shape
        E, N = self.A.shape[1:]
        R = self.dt_proj.shape[-1]
        K = self.conv_weight.shape[-1]
        want = dict(norm_weight=(n, H), norm_bias=(n, H), in_proj=(n, 2 * E, H), conv_weight=(n, E, K),
                    conv_bias=(n, E), x_proj=(n, R + 2 * N, E), dt_proj=(n, E, R), dt_bias=(n, E), A=(n, E, N),
                    D=(n, E), out_proj=(n, H, E))
        for name, shape in want.items():
            t = getattr(self, name)
            if tuple(t.shape) != shape or not t.is_contiguous():
                raise ValueError(f"S6Stack.{name} must be contiguous of shape {shape} (run of {n} blocks, width {H}, "
                                 f"d_inner {E}, state {N}, rank {R}), got {tuple(t.shape)}")


_counters: dict[torch.device, Tensor] = {}


def run_scratch(batch: int, H: int, E: int, N: int, R: int, device: torch.device, block_e: int) -> dict[str, Tensor]:
    """The buffers a run's launch passes partials through (allocate once per run, outside a CUDA graph capture): u
    and z (2, B, E); x_proj and out_proj partials per program; the barrier's counter (int64, starts at 0)."""
    bb, bh = triton.next_power_of_2(batch), triton.next_power_of_2(H)
    P = triton.cdiv(E, block_e)
    xw = max(2, triton.next_power_of_2(R)) + 2 * max(2, triton.next_power_of_2(N))
    f32 = dict(device=device, dtype=torch.float32)
    return dict(uz=torch.empty((2, batch, E), **f32), xp=torch.zeros((P, bb, xw), **f32),
                op=torch.zeros((P, bb, bh), **f32), counter=torch.zeros(1, device=device, dtype=torch.int64))


@torch.no_grad()
def mamba_s6_run_step_triton(x: Tensor, w: S6Stack, conv_state: Tensor, h: Tensor, outs: Tensor,
                             scratch: dict[str, Tensor], res: Tensor | None = None, res_first: int = 0,
                             res_reversed: bool = False, block_e: int | None = None, mode: str | None = None) -> Tensor:
    """One step of a run of n ``mamba-s6`` blocks for x (B, H), B < 16; updates ``conv_state`` (n, B, E, K-1) and
    ``h`` (n, B, E, N) IN PLACE and writes ``outs`` (n + 1, B, H): outs[j] the input of block j, outs[n] the run's
    output (returned).

    ``res`` (m, B, H): block res_first + i adds res[i] to its output (res[m - 1 - i] with ``res_reversed``: the
    U-Net's up path pops its skips). ``scratch``: :func:`run_scratch` for the same sizes and ``block_e``.
    ``mode``: "1" (one persistent launch) or "split" (one launch per phase); default :func:`runs_mode`, and always
    "split" in the CPU interpreter where more than one program would need a barrier."""
    w.check()
    n, H = w.norm_weight.shape
    E, N = w.A.shape[1:]
    R, K = w.dt_proj.shape[-1], w.conv_weight.shape[-1]
    batch = x.shape[0]
    if batch >= 16 or tuple(x.shape) != (batch, H):
        raise ValueError(f"mamba_s6_run_step: x must be (B, {H}) with B < 16 (one stream), got {tuple(x.shape)}")
    for name, t, shape in (("conv_state", conv_state, (n, batch, E, K - 1)), ("h", h, (n, batch, E, N)),
                           ("outs", outs, (n + 1, batch, H))):
        if tuple(t.shape) != shape or not t.is_contiguous():
            raise ValueError(f"mamba_s6_run_step: {name} must be contiguous of shape {shape}, got {tuple(t.shape)}")
    if h.dtype != torch.float32:
        raise ValueError(f"mamba_s6_run_step: h must be float32, got {h.dtype}")
    block_e = block_e or run_block_e(E)
    P = triton.cdiv(E, block_e)
    mode = mode or runs_mode()
    persistent = mode == "1" and not (interpreting() and P > 1)
    n_res = 0 if res is None else res.shape[0]
    if res is not None and (tuple(res.shape[1:]) != (batch, H) or not res.is_contiguous()):
        raise ValueError(f"mamba_s6_run_step: res must be contiguous (m, {batch}, {H}), got {tuple(res.shape)}")
    pdl = pdl_enabled(x)
    args = (x.contiguous(), outs, res if res is not None else x, w.norm_weight, w.norm_bias, w.in_proj,
            w.conv_weight, w.conv_bias, conv_state, w.x_proj, w.dt_proj, w.dt_bias, w.A, w.D, h, w.out_proj,
            scratch["uz"], scratch["xp"], scratch["op"], scratch["counter"], batch, H, E, N, R, n, float(w.eps),
            res_first, n_res)
    consts = dict(K=K, RES_REVERSED=res_reversed, PERSISTENT=persistent, BLOCK_B=triton.next_power_of_2(batch),
                  BLOCK_H=triton.next_power_of_2(H), BLOCK_E=block_e, BLOCK_N=max(2, triton.next_power_of_2(N)),
                  BLOCK_R=max(2, triton.next_power_of_2(R)), BLOCK_P=triton.next_power_of_2(P), num_warps=RUN_WARPS,
                  PDL=pdl, launch_pdl=pdl)
    for phase in [0] if persistent else range(2 * n + 1):
        _s6_run_kernel[(P,)](*args, phase, **consts)
    return outs[n]


def mamba_s6_run_step_ref(x: Tensor, w: S6Stack, conv_state: Tensor, h: Tensor, res: Tensor | None = None,
                          res_first: int = 0, res_reversed: bool = False) -> Tensor:
    """PyTorch reference of :func:`mamba_s6_run_step_triton` (float64-capable): returns outs (n + 1, B, H) and
    updates ``conv_state`` and ``h`` in place."""
    n = w.norm_weight.shape[0]
    N = w.A.shape[-1]
    R = w.dt_proj.shape[-1]
    outs = [x]
    for j in range(n):
        xn = F.layer_norm(x, x.shape[-1:], w.norm_weight[j].to(x.dtype), w.norm_bias[j].to(x.dtype), w.eps)
        u, z = (xn @ w.in_proj[j].to(x.dtype).T).chunk(2, dim=-1)
        window = torch.cat([conv_state[j].to(x.dtype), u[..., None]], dim=-1)  # (B, E, K)
        conv_state[j].copy_(window[..., 1:])
        u = F.silu((window * w.conv_weight[j].to(x.dtype)).sum(-1) + w.conv_bias[j].to(x.dtype))
        dbc = u @ w.x_proj[j].to(x.dtype).T
        dt_low, Bt, Ct = dbc[:, :R], dbc[:, R:R + N], dbc[:, R + N:]
        dt = F.softplus(dt_low @ w.dt_proj[j].to(x.dtype).T + w.dt_bias[j].to(x.dtype))
        hj = torch.exp(dt[..., None] * w.A[j].to(x.dtype)) * h[j].to(x.dtype) + (dt * u)[..., None] * Bt[:, None, :]
        h[j].copy_(hj)
        y = ((hj * Ct[:, None, :]).sum(-1) + w.D[j].to(x.dtype) * u) * F.silu(z)
        x = x + y @ w.out_proj[j].to(x.dtype).T
        i = j - res_first
        if res is not None and 0 <= i < res.shape[0]:
            x = x + res[res.shape[0] - 1 - i if res_reversed else i].to(x.dtype)
        outs.append(x)
    return torch.stack(outs)
