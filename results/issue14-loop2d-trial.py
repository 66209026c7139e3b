"""Trial (issue 14, not part of the package): the state-loop backward with BLOCK_D channels per program.

``kernels/triton_scan.py::_scan_bwd_loop_kernel`` gives each program one channel (1-D tiles along L).
This variant takes a (BLOCK_D, CHUNK) tile: the block's channels share the loads of selective B/C and
sum their dB/dC in registers before one atomic (BLOCK_D times fewer atomics). Compiled for sm_90 on the
CPU (ptxas -v, 2026-12-02), selective fp32 with D/z/bias/softplus: BLOCK_D 1 / CHUNK 128 uses 144
registers (the tree's 1-D kernel 128), BLOCK_D 2 / CHUNK 64 128 registers and half the atomics.

Next GPU session, alone on the GPU (side by side in one run, against the tree's 1-D kernel):

    python results/issue14-loop2d-trial.py            # GPU: fwd+bwd ms per (BLOCK_D, CHUNK), maxrel vs the tree's
    TRITON_INTERPRET=1 python results/issue14-loop2d-trial.py --cpu-check   # grads vs the reference

If a setting wins at every selective shape, it replaces the 1-D kernel in the tree (with BLOCK_D from
``ScanConfig.block_d_bwd``).
"""

from __future__ import annotations

import os
import sys

import torch
import triton
import triton.language as tl
from audiomamba.kernels import triton_scan as ts
from audiomamba.kernels.triton_helpers import exp_dtA, softplus

_combine_real, _combine_complex = ts._combine_real, ts._combine_complex


@triton.jit
def _bc_of_state(ptr, d_off, t_off, mask_d, mask_t, LTI: tl.constexpr, CPLX: tl.constexpr):
    """B or C of one state from a pointer to its entry: LTI -> (BLOCK_D, 1) at channel offsets
    ``d_off``, selective -> (1, CHUNK) at time offsets ``t_off``; (re, im), im = 0 when real."""
    if LTI:
        p = ptr + d_off
        m = mask_d
    else:
        p = ptr + t_off
        m = mask_t
    re = tl.load(p, mask=m, other=0.0).to(tl.float32)
    im = tl.zeros_like(re)
    if CPLX:
        im = tl.load(p + 1, mask=m, other=0.0).to(tl.float32)
    if LTI:
        return re[:, None], im[:, None]
    return re[None, :], im[None, :]


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
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, CHUNK: tl.constexpr,
):
    """The state-loop backward (``ScanConfig.bwd_loop``): one program per (batch element, block of
    ``BLOCK_D`` channels, segment). It walks the segment's chunks of ``CHUNK`` steps from the right;
    within a chunk its tiles are (BLOCK_D, CHUNK) with the lanes along time (coalesced loads and
    dB/dC atomics), and it loops over the N states: per state, a forward scan recomputes h_t from
    the saved chunk-start state and a reverse scan gives the adjoint G_t. The sums over N (du, dΔ,
    y for the gate) accumulate in registers across the loop, so no reduction crosses lanes per step;
    only the per-chunk carries and dA (and LTI dB/dC) are reduced over the chunk. Selective dB/dC are
    summed over the block's channels (in each lane's registers) before the atomic. Same outputs as
    :func:`_scan_bwd_kernel`."""
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    pid_s = tl.program_id(2)
    c0 = pid_s * seg_chunks
    c1 = tl.minimum(c0 + seg_chunks, nchunks)
    t_end = tl.minimum(c1 * BLOCK_L, seqlen)
    offs = tl.arange(0, CHUNK)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < dim
    mask_n = offs_n < dstate
    mask_dn = mask_d[:, None] & mask_n[None, :]
    first = (offs == 0)[None, :]
    # per-channel constants (BLOCK_D, 1)
    Dv = tl.zeros((BLOCK_D,), tl.float32)
    if HAS_D:
        Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    bias = tl.zeros((BLOCK_D,), tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    Dv = Dv[:, None]
    bias = bias[:, None]
    if DT_LTI:
        dtc_raw = tl.load(dt_ptr + pid_b * sdt_b + offs_d[:, None] * sdt_d, mask=mask_d[:, None],
                          other=0.0).to(tl.float32) + bias
        dtc = dtc_raw
        if SOFTPLUS:
            dtc = softplus(dtc_raw)
        dtc = tl.where(mask_d[:, None], dtc, 0.0)
    u_rows = u_ptr + pid_b * su_b + offs_d[:, None] * su_d
    dt_rows = dt_ptr + pid_b * sdt_b + offs_d[:, None] * sdt_d
    z_rows = z_ptr + pid_b * sz_b + offs_d[:, None] * sz_d
    dy_rows = dy_ptr + pid_b * sdy_b + offs_d[:, None] * sdy_d
    g_rows = (pid_b * dim + offs_d[:, None]) * seqlen
    st_rows = (pid_b * dim + offs_d) * nchunks
    a_rows = A_ptr + offs_d * sA_d
    pdn = ((pid_b * nseg + pid_s) * dim + offs_d[:, None]) * dstate + offs_n[None, :]

    # per-state carries and sums, (BLOCK_D, BLOCK_N): the adjoint after the current chunk, dA, LTI dB/dC
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
    SUB: tl.constexpr = CHUNK // BLOCK_L
    nsub = tl.cdiv(c1 - c0, SUB)
    for j in range(0, nsub):
        cb = c0 + (nsub - 1 - j) * SUB          # saved-state index at this chunk's start
        t = cb * BLOCK_L + offs
        mask_t = t < t_end
        m2 = mask_d[:, None] & mask_t[None, :]
        u = tl.load(u_rows + t[None, :] * su_l, mask=m2, other=0.0).to(tl.float32)
        dy = tl.load(dy_rows + t[None, :] * sdy_l, mask=m2, other=0.0).to(tl.float32)
        dout = dy
        if HAS_Z:
            zz = tl.load(z_rows + t[None, :] * sz_l, mask=m2, other=0.0).to(tl.float32)
            sg = tl.sigmoid(zz)
            dout = dy * zz * sg
        if DT_LTI:
            dt = tl.where(m2, dtc, 0.0)
            dt_raw = dtc_raw
        else:
            dt_raw = tl.load(dt_rows + t[None, :] * sdt_l, mask=m2, other=0.0).to(tl.float32) + bias
            dt = dt_raw
            if SOFTPLUS:
                dt = softplus(dt_raw)
            dt = tl.where(m2, dt, 0.0)
            # Δ one step ahead (the decay a_{t+1} of the adjoint; past L it multiplies a zero adjoint)
            t1 = t + 1
            m1 = mask_d[:, None] & (t1 < seqlen)[None, :]
            dtn = tl.load(dt_rows + t1[None, :] * sdt_l, mask=m1, other=0.0).to(tl.float32) + bias
            if SOFTPLUS:
                dtn = softplus(dtn)
            dtn = tl.where(m1, dtn, 0.0)
        du3 = dt * u
        y = tl.zeros((BLOCK_D, CHUNK), tl.float32)
        s = tl.zeros((BLOCK_D, CHUNK), tl.float32)
        gA = tl.zeros((BLOCK_D, CHUNK), tl.float32)
        for n in range(0, dstate):
            sel = (offs_n == n)[None, :]
            A_re = tl.load(a_rows + n * sA_n, mask=mask_d, other=0.0).to(tl.float32)[:, None]
            A_im = tl.zeros_like(A_re)
            if IS_COMPLEX:
                A_im = tl.load(a_rows + n * sA_n + 1, mask=mask_d, other=0.0).to(tl.float32)[:, None]
            B_re, B_im = _bc_of_state(B_ptr + pid_b * sB_b + n * sB_n, offs_d * sB_d, t * sB_l, mask_d, mask_t,
                                      B_LTI, B_COMPLEX)
            C_re, C_im = _bc_of_state(C_ptr + pid_b * sC_b + n * sC_n, offs_d * sC_d, t * sC_l, mask_d, mask_t,
                                      C_LTI, C_COMPLEX)
            st = (st_rows + cb) * dstate + n
            h0_re = tl.load(states_ptr + st * R, mask=mask_d, other=0.0)[:, None]
            if IS_COMPLEX:
                h0_im = tl.load(states_ptr + st * R + 1, mask=mask_d, other=0.0)[:, None]
            a_re, a_im = exp_dtA(dt, A_re, A_im, IS_COMPLEX)
            if DT_LTI:
                al_re, al_im = exp_dtA(dtc, A_re, A_im, IS_COMPLEX)
                al_re = tl.zeros_like(dt) + al_re
                al_im = tl.zeros_like(dt) - al_im
            else:
                al_re, al_im = exp_dtA(dtn, A_re, A_im, IS_COMPLEX)
                al_im = -al_im
            b_re = du3 * B_re
            cc_re = FAC * dout * C_re
            # states of the chunk from its start state; adjoint from the carry after the chunk
            Gn_re = tl.sum(tl.where(sel, G_re, 0.0), axis=1)[:, None]
            if IS_COMPLEX:
                b_im = du3 * B_im
                pa_re, pa_im, pb_re, pb_im = tl.associative_scan((a_re, a_im, b_re, b_im), 1, _combine_complex)
                h_re = pb_re + pa_re * h0_re - pa_im * h0_im
                h_im = pb_im + pa_re * h0_im + pa_im * h0_re
                cc_im = -FAC * dout * C_im
                ra_re, ra_im, rb_re, rb_im = tl.associative_scan(
                    (al_re, al_im, cc_re, cc_im), 1, _combine_complex, reverse=True
                )
                Gn_im = tl.sum(tl.where(sel, G_im, 0.0), axis=1)[:, None]
                g_re = rb_re + ra_re * Gn_re - ra_im * Gn_im
                g_im = rb_im + ra_re * Gn_im + ra_im * Gn_re
                if HAS_Z:
                    y += 2.0 * (C_re * h_re - C_im * h_im)
                s += g_re * B_re + g_im * B_im
                hm_re = h_re - b_re
                hm_im = h_im - b_im
                w_re = g_re * hm_re + g_im * hm_im
                w_im = g_im * hm_re - g_re * hm_im
                gA += A_re * w_re + A_im * w_im
                dA_im += tl.where(sel, tl.sum(dt * w_im, axis=1)[:, None], 0.0)
                G_im = tl.where(sel, tl.sum(tl.where(first, g_im, 0.0), axis=1)[:, None], G_im)
                gB_im = g_im * du3
                gC_im = -FAC * dout * h_im
            else:
                pa, pb = tl.associative_scan((a_re, b_re), 1, _combine_real)
                h_re = pb + pa * h0_re
                ra, rb = tl.associative_scan((al_re, cc_re), 1, _combine_real, reverse=True)
                g_re = rb + ra * Gn_re
                if HAS_Z:
                    y += C_re * h_re
                s += g_re * B_re
                w_re = g_re * (h_re - b_re)
                gA += A_re * w_re
            dA_re += tl.where(sel, tl.sum(dt * w_re, axis=1)[:, None], 0.0)
            G_re = tl.where(sel, tl.sum(tl.where(first, g_re, 0.0), axis=1)[:, None], G_re)
            gB_re = g_re * du3
            gC_re = FAC * dout * h_re
            # B, C: LTI -> sums over L per state; selective -> summed over the block's channels,
            # then atomics over the channel blocks, along t
            if B_LTI:
                dB_re += tl.where(sel, tl.sum(gB_re, axis=1)[:, None], 0.0)
                if B_COMPLEX:
                    dB_im += tl.where(sel, tl.sum(gB_im, axis=1)[:, None], 0.0)
            else:
                off = ((pid_b * dstate + n) * seqlen + t) * RB
                tl.atomic_add(dB_ptr + off, tl.sum(gB_re, axis=0), mask=mask_t, sem="relaxed")
                if B_COMPLEX:
                    tl.atomic_add(dB_ptr + off + 1, tl.sum(gB_im, axis=0), mask=mask_t, sem="relaxed")
            if C_LTI:
                dC_re += tl.where(sel, tl.sum(gC_re, axis=1)[:, None], 0.0)
                if C_COMPLEX:
                    dC_im += tl.where(sel, tl.sum(gC_im, axis=1)[:, None], 0.0)
            else:
                off = ((pid_b * dstate + n) * seqlen + t) * RC
                tl.atomic_add(dC_ptr + off, tl.sum(gC_re, axis=0), mask=mask_t, sem="relaxed")
                if C_COMPLEX:
                    tl.atomic_add(dC_ptr + off + 1, tl.sum(gC_im, axis=0), mask=mask_t, sem="relaxed")
        if HAS_Z:
            out = y + Dv * u
            dz = dy * out * sg * (1.0 + zz * (1.0 - sg))
            tl.store(dz_ptr + g_rows + t[None, :], dz.to(dz_ptr.dtype.element_ty), mask=m2)
        dD_acc += tl.sum(dout * u, axis=1)
        du = dt * s + dout * Dv
        tl.store(du_ptr + g_rows + t[None, :], du.to(du_ptr.dtype.element_ty), mask=m2)
        gdt = u * s + gA
        if SOFTPLUS:
            gdt = gdt * tl.sigmoid(dt_raw)
        gdt = tl.where(m2, gdt, 0.0)
        ddt_acc += tl.sum(gdt, axis=1)
        if not DT_LTI:
            tl.store(ddt_ptr + g_rows + t[None, :], gdt.to(ddt_ptr.dtype.element_ty), mask=m2)

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


class _Patched:
    """Stands in for ts._scan_bwd_loop_kernel: launches the 2-D kernel over channel blocks."""

    def __init__(self, block_d: int) -> None:
        self.block_d = block_d

    def __getitem__(self, grid):
        b, d, s = grid

        def launch(*args, **kw):
            return _scan_bwd_loop_kernel[(b, triton.cdiv(d, self.block_d), s)](*args, BLOCK_D=self.block_d, **kw)
        return launch


SETTINGS = [(1, 128), (2, 64), (2, 128), (4, 32), (4, 64)]


def _run(fn, block_d: int | None, chunk: int | None):
    orig = ts._scan_bwd_loop_kernel
    os.environ["AUDIOMAMBA_SCAN_BWD_LOOP"] = str(chunk or 128)
    if block_d:
        ts._scan_bwd_loop_kernel = _Patched(block_d)
    try:
        return fn()
    finally:
        ts._scan_bwd_loop_kernel = orig
        os.environ.pop("AUDIOMAMBA_SCAN_BWD_LOOP", None)


def gpu() -> None:
    from audiomamba.bench.kernel import DTYPES, FULL_CASES, make_inputs, make_timer, max_rel_diff, pass_fn
    from audiomamba.bench.scan_env_sweep import UNET_CASES
    from audiomamba.kernels import selective_scan

    timer = make_timer("cuda", False)
    print(f"{torch.cuda.get_device_name()}; fwd+bwd ms; tree = the 1-D state-loop kernel (chunk 128)")
    for case in [c for c in FULL_CASES + UNET_CASES if not c.lti]:
        for dname in ("fp32", "bf16"):
            inputs = make_inputs(case, DTYPES[dname], "cuda")
            fn = pass_fn(selective_scan, inputs, True)
            ref = _run(fn, None, None)
            t0 = _run(lambda fn=fn: timer(fn), None, None)
            cells = [f"tree {t0:.3f}"]
            for bd, ch in SETTINGS:
                g = _run(fn, bd, ch)
                t = _run(lambda fn=fn: timer(fn), bd, ch)
                err = max(max_rel_diff(a, b) for a, b in zip(g, ref, strict=True))
                cells.append(f"d{bd}/c{ch} {t:.3f} ({t0 / t:.2f}x, {err:.0e})")
            print(f"{case.kind} {case.label()} {dname}: " + "  ".join(cells), flush=True)


def cpu_check() -> None:
    from audiomamba.bench.kernel import Case, make_inputs
    from audiomamba.kernels.reference import selective_scan_ref
    from audiomamba.kernels.tuning import ScanConfig

    for kind in ("selective-real", "lti-complex"):
        inputs = make_inputs(Case(2, 5, 3, 50, kind), torch.float32, "cpu", seed=11)
        kw = {k: v.detach().clone().requires_grad_() if torch.is_tensor(v) else v for k, v in inputs.items()}
        leaves = [v for v in kw.values() if torch.is_tensor(v)]
        gy = torch.randn(kw["u"].shape, generator=torch.Generator().manual_seed(1))
        ref = torch.autograd.grad((selective_scan_ref(**kw) * gy).sum(), leaves)
        for bd, ch, seg in ((2, 32, 0), (4, 16, 32), (4, 32, 64)):
            cfg = ScanConfig(16, 4, 2, 4, 4, seg, True, seg if seg else -1, bwd_loop=ch)
            ts._scan_bwd_loop_kernel, orig = _Patched(bd), ts._scan_bwd_loop_kernel
            try:
                y = ts.selective_scan_triton(**kw, config=cfg)
                got = torch.autograd.grad((y * gy).sum(), leaves)
            finally:
                ts._scan_bwd_loop_kernel = orig
            err = max(((a - b).abs().max() / (b.abs().max() + 1e-6)).item() for a, b in zip(got, ref, strict=True))
            print(f"{kind} BLOCK_D={bd} CHUNK={ch} seg={seg}: max rel err {err:.1e}")
            assert err < 2e-4

if __name__ == "__main__":
    cpu_check() if "--cpu-check" in sys.argv else gpu()
