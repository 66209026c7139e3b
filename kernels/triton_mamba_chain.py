"""One stream's step of a run of Mamba blocks as ONE launch: a chain of programs, one per block.

One stream is latency-bound: a block step is three launches of 2-4 µs (:mod:`kernels.triton_mamba_step`), and a
launch inside a CUDA graph costs about 0.9 µs of synchronisation alone, as much as a grid barrier (0.77-0.91 µs for
8-64 programs; ``python -m audiomamba.bench.sync_cost``, H100, 2026-12-05). Splitting a block over several programs
needs two such synchronisations per block (after the x_proj's and the out_proj's sums over channels), and the runs of
:mod:`kernels.triton_mamba_run` paid them: their persistent grid was slower than split launches, and split launches
of one phase per selective block ran 0.49x the per-block launches (every program repeated the whole x_proj).

Here one program owns a whole block: program j of the launch steps block j of the run, all d_inner channels and all
H columns, so nothing inside a block crosses programs. The n programs start together and each loads its block's
weights while it waits; program j then waits for block j-1's output (a flag that program j-1 raises after writing
x_j), steps its block for every row, writes x_(j+1) and raises the next flag. A run of n blocks is one launch and n-1
hand-offs of one flag each, instead of 3n launches; each block's work is what one SM does for one row (about 35 k
multiply-adds at sc09-small's 16 kHz width) with its weights already in registers.

Per block j and row (every tile (channels, columns) as in :func:`kernels.triton_mamba_run._run_lti_flat_kernel`)::

    x_j = x0 (+ x0b) for j = 0, else outs[j] (program j-1 wrote it)
    xn = LayerNorm(x_j); (u, z) = in_proj(xn); u = SiLU(conv step(u))        (the window shifted in place)
    (Δ_low, B_t, C_t) = x_proj(u); Δ = softplus(dt_proj(Δ_low) + dt_bias)
    h ← exp(Δ A) h + Δ B_t u; y = (C_t · h + D u) SiLU(z)
    outs[j + 1] = x_j + out_proj(y) (+ res)

The flags never reset: each program keeps the count of launches it has finished (``done[j]``, written only by
itself), so in launch e every program waits for ``flag[j] >= e + 1`` and raises ``flag[j + 1]`` to e + 1. All n
programs must be resident at once (n is at most the SMs; a program that polls 2^24 times gives up and flags it, and
the Stepper's end-of-generation :func:`check_chain_sync` turns that into a KernelError). Triton's CPU
interpreter runs the programs in order 0, 1, ..., so every flag is raised before it is awaited there.

LTI blocks (``mamba-s4``, ``mamba-s4-real``) chain the same way without the x_proj (their decay exp(Δ A) computed once
per launch). ``AUDIOMAMBA_STEP_RUNS=chain`` attaches it to one stream's runs of every Mamba kind that fits one program
(:func:`chain_fits`); built 2026-12-05 on the CPU machine (interpreter tests against the float64 reference and the
per-block steps, sm_90 compile checks), not yet timed.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .backend import interpreting, pdl_enabled
from .errors import KernelError
from .triton_helpers import exp_dtA, ln_row, pdl_wait, readout, state_update
from .triton_mamba_run import LTIStack, S6Stack, _as_real, check_run_args, run_warps
from .triton_mamba_step import _conv_step_row, _conv_taps_row, _s6_update_row

#: polls of a flag before a program gives up (about seconds on a GPU); tests set it low
CHAIN_POLLS = 1 << 24


def chain_sync(n: int, device: torch.device) -> Tensor:
    """The flags of a chain of n blocks (int64, zeros): flag[j] for j < n (block j's input is ready), done[j] (launches
    program j has finished), and the give-up flag."""
    return torch.zeros(2 * n + 1, device=device, dtype=torch.int64)


def check_chain_sync(sync: Tensor) -> None:
    """KernelError if a chain's program gave up waiting for its input (its results are then wrong). Reads the flag
    from the device: call it once at the end of a generation, not per step."""
    if int(sync[-1].item()):
        raise KernelError("a one-launch chain of Mamba blocks gave up waiting for a block's input (not all of its "
                          "programs could run at once, e.g. another process holds the GPU's SMs), so its samples are "
                          "wrong: set AUDIOMAMBA_STEP_RUNS=0 and generate again")


@triton.jit
def _chain_kernel(
    x0_ptr, x0_stride, x0b_ptr, x0b_stride, outs_ptr, res_ptr, nw_ptr, nb_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr,
    wxt_ptr, wdt_ptr, dtb_ptr, dt_ptr, a_ptr, b_ptr, c_ptr, D_ptr, h_ptr, woutt_ptr, sync_ptr, tail_ptr,
    batch, H, E, N, R, n_blocks, eps, res_first, n_res, tail_stride,
    K: tl.constexpr, RES_REVERSED: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_E: tl.constexpr,
    BLOCK_N: tl.constexpr, SELECTIVE: tl.constexpr = True, IS_COMPLEX: tl.constexpr = False,
    PDL: tl.constexpr = False, POLLS: tl.constexpr = 1 << 24,
):
    """Program j steps block j of the run for every row (module docstring). Tiles: (channels, H columns) for the
    in_proj and the transposed out_proj ``woutt`` (n, E, H); (channels, BLOCK_N columns) for the transposed x_proj
    ``wxt`` (n, E, R + 2N) in three parts, Δ's weights (R <= BLOCK_N) and the states. LTI blocks (not SELECTIVE)
    read Δ (n, E) and A, B, C (n, E, N) instead ((re, im) pairs with IS_COMPLEX, h too), and their decay exp(Δ A)
    is computed once per launch, before the wait."""
    j = tl.program_id(0)
    offs_e = tl.arange(0, BLOCK_E)
    offs_h = tl.arange(0, BLOCK_H)
    offs_n = tl.arange(0, BLOCK_N)
    m_e = offs_e < E
    m_h = offs_h < H
    m_n = offs_n < N
    m_eh = m_e[:, None] & m_h[None, :]
    m_en = m_e[:, None] & m_n[None, :]
    m_er = m_e[:, None] & (offs_n < R)[None, :]
    # block j's weights, before anything waits (nothing of the step writes them)
    w_u = tl.load(win_ptr + j * 2 * E * H + offs_e[:, None] * H + offs_h[None, :], mask=m_eh, other=0.0)
    w_z = tl.load(win_ptr + j * 2 * E * H + (E + offs_e[:, None]) * H + offs_h[None, :], mask=m_eh, other=0.0)
    w_o = tl.load(woutt_ptr + j * E * H + offs_e[:, None] * H + offs_h[None, :], mask=m_eh, other=0.0)
    en = offs_e[:, None] * N + offs_n[None, :]
    if SELECTIVE:
        xw = R + 2 * N
        wx = wxt_ptr + j * E * xw + offs_e[:, None] * xw + offs_n[None, :]
        w_r = tl.load(wx, mask=m_er, other=0.0)
        w_b = tl.load(wx + R, mask=m_en, other=0.0)
        w_c = tl.load(wx + R + N, mask=m_en, other=0.0)
        w_dt = tl.load(wdt_ptr + j * E * R + offs_e[:, None] * R + offs_n[None, :], mask=m_er, other=0.0)
        A = tl.load(a_ptr + j * E * N + en, mask=m_en, other=0.0)
    else:  # Δ, A, B, C per channel: the decay once per launch
        pairs = 2 if IS_COMPLEX else 1
        dtc = tl.load(dt_ptr + j * E + offs_e, mask=m_e, other=0.0)
        off = j * E * N * pairs + pairs * en
        A_re = tl.load(a_ptr + off, mask=m_en, other=0.0)
        B_re = tl.load(b_ptr + off, mask=m_en, other=0.0)
        C_re = tl.load(c_ptr + off, mask=m_en, other=0.0)
        if IS_COMPLEX:
            A_im = tl.load(a_ptr + off + 1, mask=m_en, other=0.0)
            B_im = tl.load(b_ptr + off + 1, mask=m_en, other=0.0)
            C_im = tl.load(c_ptr + off + 1, mask=m_en, other=0.0)
        else:
            A_im = A_re
            B_im = B_re
            C_im = C_re
        a_re, a_im = exp_dtA(dtc[:, None], A_re, A_im, IS_COMPLEX)
    nw = tl.load(nw_ptr + j * H + offs_h, mask=m_h, other=0.0)
    nb = tl.load(nb_ptr + j * H + offs_h, mask=m_h, other=0.0)
    cw = cw_ptr + j * E * K
    w_last = tl.load(cw + offs_e * K + (K - 1), mask=m_e, other=0.0)
    bias = tl.load(cb_ptr + j * E + offs_e, mask=m_e, other=0.0)
    if SELECTIVE:
        dtb = tl.load(dtb_ptr + j * E + offs_e, mask=m_e, other=0.0)
    D = tl.load(D_ptr + j * E + offs_e, mask=m_e, other=0.0)
    pdl_wait(PDL)
    # this launch's number (every program has finished as many), then block j's input
    e = tl.load(sync_ptr + n_blocks + j, cache_modifier=".cg")
    if j > 0:
        seen = tl.atomic_add(sync_ptr + j, 0, sem="acquire", scope="gpu")
        polls = 0
        while (seen < e + 1) & (polls < POLLS):
            seen = tl.atomic_add(sync_ptr + j, 0, sem="acquire", scope="gpu")
            polls += 1
        if seen < e + 1:
            tl.atomic_xchg(sync_ptr + 2 * n_blocks, 1)
        tl.debug_barrier()
    for row in range(0, batch):
        if j == 0:
            x = tl.load(x0_ptr + row * x0_stride + offs_h, mask=m_h, other=0.0).to(tl.float32)
            if x0b_stride >= 0:
                x += tl.load(x0b_ptr + row * x0b_stride + offs_h, mask=m_h, other=0.0).to(tl.float32)
            tl.store(outs_ptr + row * H + offs_h, x.to(outs_ptr.dtype.element_ty), mask=m_h)
        else:
            x = tl.load(outs_ptr + (j * batch + row) * H + offs_h, mask=m_h, other=0.0, cache_modifier=".cg")
            x = x.to(tl.float32)
        xn = ln_row(x, m_h, nw, nb, H, eps)
        # in_proj, conv step (block j's window: only this program touches it)
        win = conv_ptr + (j * batch + row) * E * (K - 1) + offs_e * (K - 1)
        taps = _conv_taps_row(win, cw, offs_e, m_e, K, BLOCK_E)
        z = tl.sum(w_z * xn[None, :], axis=1)
        u = tl.where(m_e, _conv_step_row(win, taps, tl.sum(w_u * xn[None, :], axis=1), w_last, bias, m_e, conv_ptr, K),
                     0.0)
        if SELECTIVE:  # x_proj, Δ, state update, readout
            hp = h_ptr + (j * batch + row) * E * N + en
            h = tl.load(hp, mask=m_en, other=0.0).to(tl.float32)  # float32 or 16-bit states
            y = _s6_update_row(h, hp, m_en, A, w_dt, dtb, tl.sum(u[:, None] * w_r, axis=0),
                               tl.sum(u[:, None] * w_b, axis=0), tl.sum(u[:, None] * w_c, axis=0), u)
        else:
            hp = h_ptr + (j * batch + row) * E * N * pairs + pairs * en
            h_re = tl.load(hp, mask=m_en, other=0.0).to(tl.float32)  # float32 or bf16 real states
            h_im = h_re
            if IS_COMPLEX:
                h_im = tl.load(hp + 1, mask=m_en, other=0.0)
            h_re, h_im = state_update(h_re, h_im, a_re, a_im, (dtc * u)[:, None], B_re, B_im, IS_COMPLEX)
            tl.store(hp, h_re, mask=m_en)
            if IS_COMPLEX:
                tl.store(hp + 1, h_im, mask=m_en)
            y = readout(h_re, h_im, C_re, C_im, 1, IS_COMPLEX)
        y = (y + D * u) * z * tl.sigmoid(z)
        y = tl.where(m_e, y, 0.0)
        x = x + tl.sum(w_o * y[:, None], axis=0)
        i = j - res_first
        if (i >= 0) & (i < n_res):
            if RES_REVERSED:
                i = n_res - 1 - i
            x += tl.load(res_ptr + (i * batch + row) * H + offs_h, mask=m_h, other=0.0).to(tl.float32)
        tl.store(outs_ptr + ((j + 1) * batch + row) * H + offs_h, x.to(outs_ptr.dtype.element_ty), mask=m_h)
        if (j == n_blocks - 1) & (tail_stride >= 0):
            tl.store(tail_ptr + row * tail_stride + offs_h, x.to(tail_ptr.dtype.element_ty), mask=m_h)
    # every row's x_(j+1) stored (and visible GPU-wide) before the next block's program may read it
    tl.debug_barrier()
    if j + 1 < n_blocks:
        tl.atomic_xchg(sync_ptr + j + 1, e + 1, sem="release", scope="gpu")
    tl.store(sync_ptr + n_blocks + j, e + 1)


def chain_fits(H: int, E: int, N: int, R: int = 0) -> bool:
    """Whether a block of these sizes steps as one program of the chain (R = 0 for LTI blocks): Δ's rank R within the
    state tiles' max(16, next_pow2(N)) columns and the (channels, H) weight tiles at most 128 x 64 (sc09-small's and
    youtubemix's 16 kHz levels; wider blocks would hold their weights in local memory)."""
    return R <= max(16, triton.next_power_of_2(N)) and triton.next_power_of_2(E) * triton.next_power_of_2(H) <= 8192


@torch.no_grad()
def mamba_chain_step_triton(x: Tensor, w: S6Stack | LTIStack, conv_state: Tensor, h: Tensor, outs: Tensor,
                            sync: Tensor, out_proj_t: Tensor, x_proj_t: Tensor | None = None, res: Tensor | None = None,
                            res_first: int = 0, res_reversed: bool = False, x0b: Tensor | None = None,
                            tail: Tensor | None = None) -> Tensor:
    """One step of a run of n Mamba blocks (``mamba-s6``, or ``mamba-s4`` / ``mamba-s4-real`` with an
    :class:`LTIStack`) for x (B, H), B < 16, as one launch of n programs (:func:`_chain_kernel`); updates
    ``conv_state`` (n, B, E, K-1) and ``h`` (n, B, E, N) IN PLACE and writes ``outs`` (n + 1, B, H). ``sync``:
    :func:`chain_sync` (n), the same tensor on every step of the run. ``out_proj_t`` (n, E, H), ``x_proj_t``
    (n, E, R + 2N; selective blocks only): out_proj and x_proj transposed, contiguous. ``res``, ``res_first``,
    ``res_reversed``, ``x0b``, ``tail``: as :func:`kernels.triton_mamba_run.mamba_s6_run_step_triton`."""
    op = "mamba_chain_step"
    check_run_args(op, x, w, conv_state, h, outs, res, x0b, tail, 16)
    n, H = w.norm_weight.shape
    E, N = w.A.shape[1:]
    selective = isinstance(w, S6Stack)
    R = w.dt_proj.shape[-1] if selective else 0
    shapes = [("out_proj_t", out_proj_t, (n, E, H)), ("sync", sync, (2 * n + 1,))]
    if selective:
        shapes.append(("x_proj_t", x_proj_t, (n, E, R + 2 * N)))
    for name, t, shape in shapes:
        if t is None or tuple(t.shape) != shape or not t.is_contiguous():
            raise ValueError(f"{op}: {name} must be contiguous of shape {shape}, got "
                             f"{None if t is None else tuple(t.shape)}")
    if not chain_fits(H, E, N, R):
        raise ValueError(f"{op}: a block of width {H}, d_inner {E}, state {N} and rank {R} does not fit one program "
                         "(chain_fits): step it with the per-block launches")
    if x.is_cuda and n > torch.cuda.get_device_properties(x.device).multi_processor_count:
        raise ValueError(f"{op}: {n} blocks need {n} programs resident at once, more than the GPU's SMs")
    pdl = pdl_enabled(x)
    none = sync  # a pointer the other block kind does not read
    if selective:
        ssm = (x_proj_t, w.dt_proj, w.dt_bias, none, w.A, none, none)
    else:
        ssm = (none, none, none, w.delta, _as_real(w.A), _as_real(w.B), _as_real(w.C))
    _chain_kernel[(n,)](
        x, x.stride(0), x if x0b is None else x0b, -1 if x0b is None else x0b.stride(0), outs,
        res if res is not None else x, w.norm_weight, w.norm_bias, w.in_proj, w.conv_weight, w.conv_bias, conv_state,
        *ssm, w.D, _as_real(h), out_proj_t, sync, outs if tail is None else tail,
        x.shape[0], H, E, N, R, n, float(w.eps), res_first, 0 if res is None else res.shape[0],
        -1 if tail is None else tail.stride(0),
        K=w.conv_weight.shape[-1], RES_REVERSED=res_reversed, BLOCK_H=triton.next_power_of_2(H),
        BLOCK_E=triton.next_power_of_2(E), BLOCK_N=max(16, triton.next_power_of_2(N)), SELECTIVE=selective,
        IS_COMPLEX=w.A.is_complex(), PDL=pdl, launch_pdl=pdl, POLLS=CHAIN_POLLS if not interpreting() else 4,
        num_warps=2 * run_warps(H),
    )
    return outs[n]
