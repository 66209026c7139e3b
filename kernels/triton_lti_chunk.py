"""Fully-LTI scan by chunks, on tensor cores: forward and backward kernels and their autograd Function (issue 14).

Where Δ, A, B and C are all per channel (``mamba-s4`` / ``mamba-s4-real`` blocks: delta (d,), B and C (d, N)), the
scan is a causal convolution, and cut into chunks of T steps it is three small matrix products per chunk (the
state-space-duality form). With a = exp(ΔA) (d, N), chunk c = steps cT .. cT+T-1, t' = t - cT and H_c = h_(cT-1)
the state entering chunk c:

    y_t   = Σ_(s' <= t') K_(t'-s') x_(cT+s')  +  f Re(Σ_n C_n a_n^(t'+1) H_c,n)       K_k = f Re(Σ_n C_n a_n^k Δ B_n)
    U_c   = Σ_s' Δ B_n a_n^(T-1-s') x_(cT+s')                                           (chunk c's own end state)
    H_c+1 = a^T H_c + U_c                                                               (f = 2 for complex A, else 1)

so with the per-channel operators TOEP (T, T) (TOEP[s', t'] = K_(t'-s'), zero above), VIN (T, N) and VOUT (N, T),
a block of ROWS chunks is X (ROWS, T) @ TOEP + H (ROWS, N) @ VOUT, and its chunk states come from X_prev @ VIN (the
rows' previous chunks) and a scan over the ROWS rows of pairs (a^T, U): no scan over time steps at all. The
backward is the transpose: dX = dY @ TOEPᵀ + dU @ VINᵀ with dU_c = Σ_(j > c) conj(a^T)^(j-c-1) G_j,
G_j = dY_j @ conj(VOUT)ᵀ, and the operators' grads are products summed over rows (Xᵀ dY, Xᵀ dU, Hᵀ dY, Σ conj(H) dU).

A program owns one (batch element, channel) and walks L in blocks of ROWS chunks, carrying the state between blocks
(backward: the adjoint, blocks in reverse order). The forward saves only each block's entering state; the backward
recomputes a block's chunk states from it. The operators are built in PyTorch from (delta, A, B, C, delta_bias)
(:func:`lti_operators`, d·T·(T + 4N) numbers), and the backward takes the kernel's grads of the operators back to
the parameters with ``torch.func.vjp`` of that builder: the kernels never see A, B, C or Δ.

Matmuls run in float32 on the inputs: ``tf32x3`` (three TF32 products, about float32's accuracy) for float32 inputs,
``tf32`` for 16-bit ones (a bf16 x is exact in TF32; the operators round to TF32's 10-bit mantissa, below bf16's
7-bit output). Opt-in: ``ScanConfig.lti_chunk`` (``AUDIOMAMBA_SCAN_LTI_CHUNK=32|64|128``), chunks of that many steps.
The reference is :func:`kernels.reference.selective_scan_fft` (the same convolution by FFT).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .launch import launch
from .triton_scan import _combine_complex, _combine_real


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def n_pad(N: int) -> int:
    """States per program, padded to a power of two of at least 16 (tl.dot's smallest inner dimension)."""
    return max(16, 1 << (N - 1).bit_length())


def applies(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk: int) -> bool:
    """Whether the chunked LTI path takes this call: ``chunk`` set, Δ, B and C per channel, 16- or 32-bit u, N <= 64."""
    return (chunk > 0 and delta.dim() == 1 and B.dim() == 2 and C.dim() == 2 and A.shape[1] <= 64
            and u.dtype in (torch.float32, torch.bfloat16, torch.float16))


def n_blocks(L: int, chunk: int, rows: int) -> int:
    """Blocks of ``rows`` chunks a program walks (at least 1)."""
    return max(1, _cdiv(_cdiv(L, chunk), rows))


def states_shape(batch: int, d: int, N: int, L: int, is_complex: bool, chunk: int, rows: int) -> tuple[int, ...]:
    """Shape of the states the forward saves for the backward: each block's entering state, (batch, d, blocks, R, NP)."""
    return (batch, d, n_blocks(L, chunk, rows), 2 if is_complex else 1, n_pad(N))


def lti_operators(delta: Tensor, A: Tensor, B: Tensor, C: Tensor, delta_bias: Tensor | None, softplus: bool, T: int,
                  L: int = 0) -> tuple[Tensor, ...]:
    """The chunk operators of every channel, float32, differentiable: TOEP (d, T, T); VIN (d, R, T, NP);
    VOUT (d, R, NP, T); AT (d, R, NP) (R = 2 planes re, im for complex A, else 1; states padded to NP with zeros).
    With ``L`` also the last state's (not differentiated): with clast = (L - 1) // T and r = L - clast·T steps in the
    last chunk, h_L = a^r H_clast + Σ_(s' < r) Δ B a^(r-1-s') x_(clast·T + s'): VLAST (d, R, T, NP), ALAST (d, R, NP)."""
    dt = delta.float()
    if delta_bias is not None:
        dt = dt + delta_bias.float()
    if softplus:
        dt = torch.nn.functional.softplus(dt)
    cplx = A.is_complex()
    cdt = torch.complex64 if cplx else torch.float32
    A_, B_, C_ = A.to(cdt), B.to(cdt if B.is_complex() else torch.float32), C.to(cdt if C.is_complex() else torch.float32)
    k = torch.arange(T + 1, device=A.device, dtype=torch.float32)
    P = torch.exp((dt[:, None] * A_)[:, :, None] * k)  # (d, N, T + 1): a^k
    Bd = dt[:, None] * B_  # (d, N)
    f = 2.0 if cplx else 1.0
    K = ((C_ * Bd)[:, :, None] * P[:, :, :T]).sum(1)  # (d, T)
    K = f * (K.real if cplx else K)
    s = torch.arange(T, device=A.device)
    lag = s[None, :] - s[:, None]  # [s', t'] = t' - s'
    toep = torch.where(lag >= 0, K[:, lag.clamp(min=0)], K.new_zeros(()))  # (d, T, T)
    vin = (Bd[:, :, None] * P[:, :, :T].flip(-1)).transpose(1, 2)  # (d, T, N): ΔB a^(T-1-s')
    vout = f * C_[:, :, None] * P[:, :, 1:]  # (d, N, T): f C a^(t'+1)
    ops = (toep.contiguous(), _planes(vin, -1), _planes(vout, -2), _planes(P[:, :, T], -1))
    if not L:
        return ops
    with torch.no_grad():
        r = L - ((L - 1) // T) * T
        back = r - 1 - s  # r-1-s'
        vlast = Bd[:, :, None] * P[:, :, back.clamp(min=0)] * (back >= 0)  # (d, N, T)
        return (*ops, _planes(vlast.transpose(1, 2), -1), _planes(P[:, :, r], -1))


def _planes(x: Tensor, n_dim: int) -> Tensor:
    """x as real planes (re, im) in a new dim 1 (one plane when real), its N dim ``n_dim`` zero-padded to NP."""
    x = torch.stack([x.real, x.imag], 1) if x.is_complex() else x[:, None]
    nd = n_dim % x.dim()
    pad = n_pad(x.shape[nd]) - x.shape[nd]
    if pad:
        shape = list(x.shape)
        shape[nd] = pad
        x = torch.cat([x, x.new_zeros(shape)], nd)
    return x.contiguous()


@triton.jit
def _mat(ptr, R0: tl.constexpr, R1: tl.constexpr, s0):
    """A row-major (R0, R1) float32 matrix at ``ptr`` with row stride ``s0``."""
    return tl.load(ptr + tl.arange(0, R0)[:, None] * s0 + tl.arange(0, R1)[None, :])


@triton.jit
def _block_states(xp, vin_r, vin_i, at_r, at_i, hc_r, hc_i, rows, IS_COMPLEX: tl.constexpr, PREC: tl.constexpr):
    """The states entering each chunk of a block, (ROWS, NP) re and im: the rows' previous chunks X_prev through
    VIN, plus a^T times ``hc`` (the state entering the previous block's last chunk) on the first row, then scanned
    over rows with a^T."""
    first = rows[:, None] == 0
    up_r = tl.dot(xp, vin_r, input_precision=PREC)
    a_r = tl.zeros_like(up_r) + at_r[None, :]
    if IS_COMPLEX:
        up_i = tl.dot(xp, vin_i, input_precision=PREC)
        up_r += tl.where(first, (at_r * hc_r - at_i * hc_i)[None, :], 0.0)
        up_i += tl.where(first, (at_r * hc_i + at_i * hc_r)[None, :], 0.0)
        a_i = tl.zeros_like(up_r) + at_i[None, :]
        _, _, h_r, h_i = tl.associative_scan((a_r, a_i, up_r, up_i), 0, _combine_complex)
    else:
        up_r += tl.where(first, (at_r * hc_r)[None, :], 0.0)
        _, h_r = tl.associative_scan((a_r, up_r), 0, _combine_real)
        h_i = h_r
    return h_r, h_i


@triton.jit
def _row(x, sel):
    """The row of a (ROWS, NP) tile where ``sel`` (ROWS, 1) holds, as (NP,)."""
    return tl.sum(tl.where(sel, x, 0.0), 0)


@triton.jit
def _lti_chunk_fwd_kernel(
    u_ptr, z_ptr, D_ptr, y_ptr, toep_ptr, vin_ptr, vout_ptr, at_ptr, vlast_ptr, alast_ptr, states_ptr, hlast_ptr,
    d, N, L, nblk,
    su_b, su_d, su_l, sz_b, sz_d, sz_l, sy_b, sy_d, sy_l,
    T: tl.constexpr, ROWS: tl.constexpr, NP: tl.constexpr, R: tl.constexpr, IS_COMPLEX: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, SAVE_STATES: tl.constexpr, PREC: tl.constexpr,
):
    """One (batch element, channel) per program: y, each block's entering state (``SAVE_STATES``) and h_L."""
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1).to(tl.int64)
    rows = tl.arange(0, ROWS)
    cols = tl.arange(0, T)
    ns = tl.arange(0, NP)
    toep = _mat(toep_ptr + pid_d * T * T, T, T, T)
    vin = vin_ptr + pid_d * R * T * NP
    vout = vout_ptr + pid_d * R * NP * T
    at = at_ptr + pid_d * R * NP
    vin_r = _mat(vin, T, NP, NP)
    vout_r = _mat(vout, NP, T, T)
    at_r = tl.load(at + ns)
    vin_i, vout_i, at_i = vin_r, vout_r, at_r
    if IS_COMPLEX:
        vin_i = _mat(vin + T * NP, T, NP, NP)
        vout_i = _mat(vout + NP * T, NP, T, T)
        at_i = tl.load(at + NP + ns)
    dval = 0.0
    if HAS_D:
        dval = tl.load(D_ptr + pid_d).to(tl.float32)
    u_row = u_ptr + pid_b * su_b + pid_d * su_d
    z_row = z_ptr + pid_b * sz_b + pid_d * sz_d
    y_row = y_ptr + pid_b * sy_b + pid_d * sy_d
    st_row = states_ptr + (pid_b * d + pid_d) * nblk * R * NP
    clast = (L - 1) // T
    hc_r = tl.zeros((NP,), dtype=tl.float32)
    hc_i = tl.zeros((NP,), dtype=tl.float32)
    hl_r = tl.zeros((NP,), dtype=tl.float32)
    hl_i = tl.zeros((NP,), dtype=tl.float32)
    for j in range(nblk):
        c = j * ROWS + rows
        pos = c[:, None] * T + cols[None, :]
        m = pos < L
        x = tl.load(u_row + pos * su_l, mask=m, other=0.0).to(tl.float32)
        xp = tl.load(u_row + (pos - T) * su_l, mask=(pos >= T) & (pos - T < L), other=0.0).to(tl.float32)
        if SAVE_STATES:
            tl.store(st_row + j * R * NP + ns, hc_r)
            if IS_COMPLEX:
                tl.store(st_row + j * R * NP + NP + ns, hc_i)
        h_r, h_i = _block_states(xp, vin_r, vin_i, at_r, at_i, hc_r, hc_i, rows, IS_COMPLEX, PREC)
        y = tl.dot(x, toep, input_precision=PREC) + tl.dot(h_r, vout_r, input_precision=PREC)
        if IS_COMPLEX:
            y -= tl.dot(h_i, vout_i, input_precision=PREC)
        if HAS_D:
            y += dval * x
        if HAS_Z:
            zz = tl.load(z_row + pos * sz_l, mask=m, other=0.0).to(tl.float32)
            y = y * zz * tl.sigmoid(zz)
        tl.store(y_row + pos * sy_l, y.to(y_ptr.dtype.element_ty), mask=m)
        at_last = c[:, None] == clast
        hl_r += _row(h_r, at_last)
        # carried: the last row's entering state (the next block's first row adds a^T times it to its X_prev part)
        last = rows[:, None] == ROWS - 1
        hc_r = _row(h_r, last)
        if IS_COMPLEX:
            hl_i += _row(h_i, at_last)
            hc_i = _row(h_i, last)
    # h_L = a^r H_clast + the last chunk's first r steps through VLAST
    xl = tl.load(u_row + (clast * T + cols) * su_l, mask=clast * T + cols < L, other=0.0).to(tl.float32)
    vl = vlast_ptr + pid_d * R * T * NP
    al = alast_ptr + pid_d * R * NP
    al_r = tl.load(al + ns)
    out = hlast_ptr + (pid_b * d + pid_d) * N * R
    mn = ns < N
    own_r = tl.sum(xl[:, None] * _mat(vl, T, NP, NP), 0)
    if IS_COMPLEX:
        al_i = tl.load(al + NP + ns)
        own_i = tl.sum(xl[:, None] * _mat(vl + T * NP, T, NP, NP), 0)
        tl.store(out + ns * R, al_r * hl_r - al_i * hl_i + own_r, mask=mn)
        tl.store(out + ns * R + 1, al_r * hl_i + al_i * hl_r + own_i, mask=mn)
    else:
        tl.store(out + ns, al_r * hl_r + own_r, mask=mn)


@triton.jit
def _gated_grad(dy_row, z_row, pos, m, sdy_l, sz_l, HAS_Z: tl.constexpr):
    """(the output grad at ``pos`` times the gate silu(z): the grad reaching the SSM's y + D x, the output grad, z)."""
    gout = tl.load(dy_row + pos * sdy_l, mask=m, other=0.0).to(tl.float32)
    g, zz = gout, gout
    if HAS_Z:
        zz = tl.load(z_row + pos * sz_l, mask=m, other=0.0).to(tl.float32)
        g = gout * zz * tl.sigmoid(zz)
    return g, gout, zz


@triton.jit
def _lti_chunk_bwd_kernel(
    u_ptr, z_ptr, D_ptr, dy_ptr, toep_ptr, vin_ptr, vout_ptr, at_ptr, states_ptr,
    du_ptr, dz_ptr, gtoep_ptr, gvin_ptr, gvout_ptr, gat_ptr, gD_ptr,
    d, L, nblk,
    su_b, su_d, su_l, sz_b, sz_d, sz_l, sdy_b, sdy_d, sdy_l,
    T: tl.constexpr, ROWS: tl.constexpr, NP: tl.constexpr, R: tl.constexpr, IS_COMPLEX: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, PREC: tl.constexpr,
):
    """One (batch element, channel) per program, blocks in reverse order: du, dz, and this program's share of the
    operators' grads (TOEP, VIN, VOUT, AT) and of D's, summed over batch by the wrapper."""
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1).to(tl.int64)
    rows = tl.arange(0, ROWS)
    cols = tl.arange(0, T)
    ns = tl.arange(0, NP)
    toep = _mat(toep_ptr + pid_d * T * T, T, T, T)
    vin = vin_ptr + pid_d * R * T * NP
    vout = vout_ptr + pid_d * R * NP * T
    at = at_ptr + pid_d * R * NP
    vin_r = _mat(vin, T, NP, NP)
    vout_r = _mat(vout, NP, T, T)
    at_r = tl.load(at + ns)
    vin_i, vout_i, at_i = vin_r, vout_r, at_r
    if IS_COMPLEX:
        vin_i = _mat(vin + T * NP, T, NP, NP)
        vout_i = _mat(vout + NP * T, NP, T, T)
        at_i = tl.load(at + NP + ns)
    dval = 0.0
    if HAS_D:
        dval = tl.load(D_ptr + pid_d).to(tl.float32)
    u_row = u_ptr + pid_b * su_b + pid_d * su_d
    z_row = z_ptr + pid_b * sz_b + pid_d * sz_d
    dy_row = dy_ptr + pid_b * sdy_b + pid_d * sdy_d
    du_row = du_ptr + pid_b * su_b + pid_d * su_d
    dz_row = dz_ptr + pid_b * sz_b + pid_d * sz_d
    st_row = states_ptr + (pid_b * d + pid_d) * nblk * R * NP
    g_toep = tl.zeros((T, T), dtype=tl.float32)
    g_vin_r = tl.zeros((T, NP), dtype=tl.float32)
    g_vin_i = tl.zeros((T, NP), dtype=tl.float32)
    g_vout_r = tl.zeros((NP, T), dtype=tl.float32)
    g_vout_i = tl.zeros((NP, T), dtype=tl.float32)
    g_at_r = tl.zeros((NP,), dtype=tl.float32)
    g_at_i = tl.zeros((NP,), dtype=tl.float32)
    g_D = tl.zeros((ROWS, T), dtype=tl.float32)
    # the adjoint of the first row's chunk state U of the block after this one (zero after the last)
    gc_r = tl.zeros((NP,), dtype=tl.float32)
    gc_i = tl.zeros((NP,), dtype=tl.float32)
    first = rows[:, None] == 0
    last = rows[:, None] == ROWS - 1
    for jj in range(nblk):
        j = nblk - 1 - jj
        c = j * ROWS + rows
        pos = c[:, None] * T + cols[None, :]
        m = pos < L
        x = tl.load(u_row + pos * su_l, mask=m, other=0.0).to(tl.float32)
        xp = tl.load(u_row + (pos - T) * su_l, mask=(pos >= T) & (pos - T < L), other=0.0).to(tl.float32)
        hc_r = tl.load(st_row + j * R * NP + ns)
        hc_i = hc_r
        if IS_COMPLEX:
            hc_i = tl.load(st_row + j * R * NP + NP + ns)
        h_r, h_i = _block_states(xp, vin_r, vin_i, at_r, at_i, hc_r, hc_i, rows, IS_COMPLEX, PREC)
        g, gout, zz = _gated_grad(dy_row, z_row, pos, m, sdy_l, sz_l, HAS_Z)
        if HAS_Z:  # dz needs the output before the gate: recomputed
            y = tl.dot(x, toep, input_precision=PREC) + tl.dot(h_r, vout_r, input_precision=PREC)
            if IS_COMPLEX:
                y -= tl.dot(h_i, vout_i, input_precision=PREC)
            if HAS_D:
                y += dval * x
            sig = tl.sigmoid(zz)
            dz = gout * y * sig * (1.0 + zz * (1.0 - sig))
            tl.store(dz_row + pos * sz_l, dz.to(dz_ptr.dtype.element_ty), mask=m)
        # the next chunks' output grads through conj(VOUT): the adjoint each row's own chunk state U gets from the
        # chunk after it, then the reverse scan over rows with conj(a^T), seeded with the next block's
        pn = pos + T
        gn, _, _ = _gated_grad(dy_row, z_row, pn, pn < L, sdy_l, sz_l, HAS_Z)
        w_r = tl.dot(gn, tl.trans(vout_r), input_precision=PREC)
        a_r = tl.zeros_like(w_r) + at_r[None, :]
        if IS_COMPLEX:
            w_i = -tl.dot(gn, tl.trans(vout_i), input_precision=PREC)
            w_r += tl.where(last, (at_r * gc_r + at_i * gc_i)[None, :], 0.0)
            w_i += tl.where(last, (at_r * gc_i - at_i * gc_r)[None, :], 0.0)
            a_i = tl.zeros_like(w_r) - at_i[None, :]
            _, _, gu_r, gu_i = tl.associative_scan((a_r, a_i, w_r, w_i), 0, _combine_complex, reverse=True)
        else:
            w_r += tl.where(last, (at_r * gc_r)[None, :], 0.0)
            _, gu_r = tl.associative_scan((a_r, w_r), 0, _combine_real, reverse=True)
            gu_i = gu_r
        dx = tl.dot(g, tl.trans(toep), input_precision=PREC) + tl.dot(gu_r, tl.trans(vin_r), input_precision=PREC)
        if IS_COMPLEX:
            dx += tl.dot(gu_i, tl.trans(vin_i), input_precision=PREC)
        if HAS_D:
            dx += dval * g
            g_D += g * x
        tl.store(du_row + pos * su_l, dx.to(du_ptr.dtype.element_ty), mask=m)
        xt = tl.trans(x)
        g_toep += tl.dot(xt, g, input_precision=PREC)
        g_vin_r += tl.dot(xt, gu_r, input_precision=PREC)
        g_vout_r += tl.dot(tl.trans(h_r), g, input_precision=PREC)
        if IS_COMPLEX:
            g_vin_i += tl.dot(xt, gu_i, input_precision=PREC)
            g_vout_i -= tl.dot(tl.trans(h_i), g, input_precision=PREC)
            # H_(c+1) = a^T H_c + U_c: d a^T = Σ_c conj(H_c) dU_c
            g_at_r += tl.sum(h_r * gu_r + h_i * gu_i, 0)
            g_at_i += tl.sum(h_r * gu_i - h_i * gu_r, 0)
            gc_i = _row(gu_i, first)
        else:
            g_at_r += tl.sum(h_r * gu_r, 0)
        gc_r = _row(gu_r, first)
    prog = pid_b * d + pid_d
    gt = gtoep_ptr + prog * T * T
    tl.store(gt + cols[:, None] * T + cols[None, :], g_toep)
    gv = gvin_ptr + prog * R * T * NP
    tl.store(gv + cols[:, None] * NP + ns[None, :], g_vin_r)
    go = gvout_ptr + prog * R * NP * T
    tl.store(go + ns[:, None] * T + cols[None, :], g_vout_r)
    ga = gat_ptr + prog * R * NP
    tl.store(ga + ns, g_at_r)
    if IS_COMPLEX:
        tl.store(gv + T * NP + cols[:, None] * NP + ns[None, :], g_vin_i)
        tl.store(go + NP * T + ns[:, None] * T + cols[None, :], g_vout_i)
        tl.store(ga + NP + ns, g_at_i)
    if HAS_D:
        tl.store(gD_ptr + prog, tl.sum(tl.sum(g_D, 1), 0))


#: tl.dot's input precision by input dtype: float32 keeps about its accuracy with three TF32 products, 16-bit inputs are
#: exact in TF32 and their outputs coarser than TF32's rounding of the operators
PRECISION = {torch.float32: "tf32x3", torch.bfloat16: "tf32", torch.float16: "tf32"}


def _strides(x: Tensor | None) -> tuple[int, int, int]:
    return (0, 0, 0) if x is None else x.stride()


def chunk_forward(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
                  delta_bias: Tensor | None, softplus: bool, chunk: int, rows: int, warps: int,
                  need_grad: bool, ops: tuple[Tensor, ...] | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(y, the blocks' entering states for the backward ((1,) unless ``need_grad``), h_L as (batch, d, N, R) float32).
    ``ops``: :func:`lti_operators` with ``L`` (built here when None)."""
    batch, d, L = u.shape
    N = A.shape[1]
    cplx = A.is_complex()
    R = 2 if cplx else 1
    f32 = torch.float32
    y = torch.empty((batch, d, L), dtype=u.dtype, device=u.device)
    hlast = torch.zeros((batch, d, N, R), dtype=f32, device=u.device)
    shape = states_shape(batch, d, N, L, cplx, chunk, rows)
    states = torch.empty(shape if need_grad else (1,), dtype=f32, device=u.device)
    if L == 0:
        return y, states, hlast
    if ops is None:
        with torch.no_grad():
            ops = lti_operators(delta, A, B, C, delta_bias, softplus, chunk, L)
    launch(
        _lti_chunk_fwd_kernel, (batch, d),
        (u, z if z is not None else u, D if D is not None else u, y, *ops, states, hlast),
        (d, N, L, shape[2], *_strides(u), *_strides(z), *_strides(y)),
        T=chunk, ROWS=rows, NP=n_pad(N), R=R, IS_COMPLEX=cplx, HAS_D=D is not None, HAS_Z=z is not None,
        SAVE_STATES=need_grad, PREC=PRECISION[u.dtype], num_warps=warps,
    )
    return y, states, hlast


def chunk_backward(dy: Tensor, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                   z: Tensor | None, delta_bias: Tensor | None, states: Tensor, softplus: bool, chunk: int, rows: int,
                   warps: int, built: tuple | None = None) -> tuple[Tensor | None, ...]:
    """Grads of (u, delta, A, B, C, D, z, delta_bias), None for an absent input: du and dz from the kernel, the
    parameters' from the kernel's grads of the operators through their builder's vjp. ``built``: (operators, vjp)
    from the forward (else ``torch.func.vjp`` of :func:`lti_operators` here)."""
    batch, d, L = u.shape
    N = A.shape[1]
    cplx = A.is_complex()
    R = 2 if cplx else 1
    NP = n_pad(N)
    dev = u.device
    f32 = torch.float32

    def build(dl: Tensor, a: Tensor, b: Tensor, c: Tensor, *bias: Tensor) -> tuple[Tensor, ...]:
        return lti_operators(dl, a, b, c, bias[0] if bias else None, softplus, chunk)

    if built is None:
        params = (delta, A, B, C) + ((delta_bias,) if delta_bias is not None else ())
        built = torch.func.vjp(build, *params)
    ops, vjp = built
    du = torch.empty((batch, d, L), dtype=u.dtype, device=dev)
    dz = torch.empty((batch, d, L), dtype=z.dtype, device=dev) if z is not None else None
    g_toep = torch.empty((batch, d, chunk, chunk), dtype=f32, device=dev)
    g_vin = torch.empty((batch, d, R, chunk, NP), dtype=f32, device=dev)
    g_vout = torch.empty((batch, d, R, NP, chunk), dtype=f32, device=dev)
    g_at = torch.empty((batch, d, R, NP), dtype=f32, device=dev)
    g_D = torch.empty((batch, d), dtype=f32, device=dev)
    if L == 0:
        for g in (g_toep, g_vin, g_vout, g_at, g_D):
            g.zero_()
    else:
        launch(
            _lti_chunk_bwd_kernel, (batch, d),
            (u, z if z is not None else u, D if D is not None else u, dy, *ops[:4], states,
             du, dz if dz is not None else du, g_toep, g_vin, g_vout, g_at, g_D),
            (d, L, states.shape[2], *_strides(u), *_strides(z), *_strides(dy)),
            T=chunk, ROWS=rows, NP=NP, R=R, IS_COMPLEX=cplx, HAS_D=D is not None, HAS_Z=z is not None,
            PREC=PRECISION[u.dtype], num_warps=warps,
        )
    grads = vjp((g_toep.sum(0), g_vin.sum(0), g_vout.sum(0), g_at.sum(0)))
    g_delta, g_A, g_B, g_C = (g if g is None or g.dtype == p.dtype else g.to(p.dtype)
                              for g, p in zip(grads[:4], (delta, A, B, C), strict=True))
    g_bias = grads[4] if delta_bias is not None else None
    gD = g_D.sum(0).to(D.dtype) if D is not None else None
    return du, g_delta, g_A, g_B, g_C, gD, dz, g_bias


class LtiChunkFn(torch.autograd.Function):
    """Autograd wrapper of the chunked LTI scan: Triton forward (saves the blocks' entering states) and backward."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, cfg, need_grad):
        softplus = bool(delta_softplus)
        geometry = (cfg.lti_chunk, cfg.lti_rows)
        L = u.shape[2]
        built = None
        if need_grad:  # the operators' graph, kept for the backward's vjp (their builder runs once per fwd+bwd)
            leaves = [x.detach().requires_grad_() for x in (delta, A, B, C, delta_bias) if x is not None]
            with torch.enable_grad():
                ops = lti_operators(*leaves[:4], leaves[4] if len(leaves) > 4 else None, softplus, cfg.lti_chunk, L)

            def vjp(grads: tuple[Tensor, ...]) -> tuple[Tensor | None, ...]:
                return torch.autograd.grad(ops[:4], leaves, grads, allow_unused=True)

            built = (ops, vjp)
        else:
            with torch.no_grad():
                ops = lti_operators(delta, A, B, C, delta_bias, softplus, cfg.lti_chunk, L)
        y, states, hlast = chunk_forward(u, delta, A, B, C, D, z, delta_bias, softplus, *geometry, cfg.lti_warps,
                                         need_grad, tuple(o.detach() for o in ops))
        h_last = torch.view_as_complex(hlast) if A.is_complex() else hlast[..., 0]
        ctx.mark_non_differentiable(h_last)
        ctx.set_materialize_grads(False)
        if need_grad:
            ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, states)
        ctx.args = (softplus, *geometry, cfg.lti_warps_bwd)
        ctx.built = built
        return y, h_last

    @staticmethod
    def backward(ctx, dy, _dh_last):
        u, delta, A, B, C, D, z, delta_bias, states = ctx.saved_tensors
        if dy is None:
            dy = torch.zeros_like(u)
        built, ctx.built = ctx.built, None
        grads = chunk_backward(dy, u, delta, A, B, C, D, z, delta_bias, states, *ctx.args, built=built)
        return (*grads, None, None, None)
