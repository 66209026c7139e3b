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
(:func:`lti_operators`, d·T·(T + 4N) numbers) and enter the kernels' autograd Function (and, under ``torch.compile``,
their opaque op in :mod:`kernels.scan_op`) as tensors: the backward kernel returns the operators' grads (per batch
element, summed in PyTorch), and the builder's own autograd takes them back to Δ, A, B, C. The kernels never see them.

Matmuls run in float32 on the inputs: ``tf32x3`` (three TF32 products, about float32's accuracy) for float32 inputs
unless PyTorch's float32 matmuls may use TF32, ``tf32`` for 16-bit ones (a bf16 x is exact in TF32; the operators
round to TF32's 10-bit mantissa, below bf16's 7-bit output). sm_90 (``python -m audiomamba.kernels.compile_check
--only ltifwd``, chunks of 64, complex A): the forward takes 246 registers with tf32x3 and 168 with tf32 at 4 warps,
no spills; the backward 255 at 8 warps, 544 B and 24 B of spills. ``ScanConfig.lti_chunk``
(``AUDIOMAMBA_SCAN_LTI_CHUNK=0|16|32|64``): chunks of that many steps, 32 by default (:func:`kernels.tuning.pick_config`;
H200, 2026-12-05: 1.56-2.76x the scan kernels' complex-LTI fwd+bwd with 4 backward warps; chunks of 128 need more shared
memory than an H200 has for float32 inputs).
The reference is :func:`kernels.reference.selective_scan_fft` (the same convolution by FFT).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .backend import interpreting
from .launch import launch
from .triton_scan import _cdiv, _combine_complex, _combine_real, _strides3
from .tuning import ScanConfig, lti_warps


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


#: per (T, device): the powers k = 0..T, and TOEP's gather index t' - s' (clamped) with its mask t' >= s'
_INDEX: dict[tuple, tuple[Tensor, Tensor, Tensor]] = {}


def _index(T: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    key = (T, str(device))
    hit = _INDEX.get(key)
    if hit is None:
        s = torch.arange(T, device=device)
        lag = s[None, :] - s[:, None]  # [s', t'] = t' - s'
        hit = _INDEX[key] = (torch.arange(T + 1, device=device, dtype=torch.float32), lag.clamp(min=0), lag >= 0)
    return hit


def _real(x: Tensor) -> Tensor:
    """A complex tensor as a contiguous (..., 2) float view (re, im); a real one contiguous."""
    return torch.view_as_real(x.contiguous()) if x.is_complex() else x.contiguous()


def lti_operators(delta: Tensor, A: Tensor, B: Tensor, C: Tensor, delta_bias: Tensor | None, softplus: bool, T: int,
                  L: int = 0) -> tuple[Tensor, ...]:
    """The chunk operators of every channel, float32, differentiable: TOEP (d, T, T); VIN (d, N, T[, 2]) (VIN[s', n]
    of the docstring at [n, s']); VOUT (d, N, T[, 2]); AT (d, N[, 2]) (a trailing (re, im) dim for complex A).
    With ``L`` also the last state's (not differentiated): with clast = (L - 1) // T and r = L - clast·T steps in the
    last chunk, h_L = a^r H_clast + Σ_(s' < r) Δ B a^(r-1-s') x_(clast·T + s'): VLAST (d, N, T[, 2]), ALAST (d, N[, 2])."""
    dt = delta.float()
    if delta_bias is not None:
        dt = dt + delta_bias.float()
    if softplus:
        dt = torch.nn.functional.softplus(dt)
    cplx = A.is_complex()
    cdt = torch.complex64 if cplx else torch.float32
    A_, B_, C_ = A.to(cdt), B.to(cdt if B.is_complex() else torch.float32), C.to(cdt if C.is_complex() else torch.float32)
    k, lag, causal = _index(T, A.device)
    P = torch.exp((dt[:, None] * A_)[:, :, None] * k)  # (d, N, T + 1): a^k
    Bd = dt[:, None] * B_  # (d, N)
    f = 2.0 if cplx else 1.0
    K = ((C_ * Bd)[:, :, None] * P[:, :, :T]).sum(1)  # (d, T)
    K = f * K.real if cplx else K
    toep = K[:, lag] * causal  # (d, T, T)
    vin = Bd[:, :, None] * P[:, :, :T].flip(-1)  # (d, N, T): ΔB a^(T-1-s')
    vout = f * C_[:, :, None] * P[:, :, 1:]  # (d, N, T): f C a^(t'+1)
    ops = (toep, _real(vin), _real(vout), _real(P[:, :, T]))
    if not L:
        return ops
    with torch.no_grad():
        r = L - ((L - 1) // T) * T
        back = r - 1 - torch.arange(T, device=A.device)  # r-1-s'
        vlast = Bd[:, :, None] * P[:, :, back.clamp(min=0)] * (back >= 0)  # (d, N, T)
        return (*ops, _real(vlast), _real(P[:, :, r]))


@triton.jit
def _mat(ptr, R0: tl.constexpr, R1: tl.constexpr, s0, s1, lim0, lim1):
    """An (R0, R1) float32 matrix at ``ptr`` with strides (s0, s1), zero from row ``lim0`` and column ``lim1`` on."""
    i = tl.arange(0, R0)[:, None]
    j = tl.arange(0, R1)[None, :]
    return tl.load(ptr + i * s0 + j * s1, mask=(i < lim0) & (j < lim1), other=0.0)


@triton.jit
def _operators(toep_ptr, vin_ptr, vout_ptr, pid_d, N, T: tl.constexpr, NP: tl.constexpr, R: tl.constexpr,
               IS_COMPLEX: tl.constexpr):
    """Channel ``pid_d``'s TOEP (T, T), VIN (T, NP) re and im, VOUT (NP, T) re and im (im = re when real; states
    from N on are zero)."""
    base = pid_d * N * T * R
    toep = _mat(toep_ptr + pid_d * T * T, T, T, T, 1, T, T)
    vin_r = _mat(vin_ptr + base, T, NP, R, T * R, T, N)
    vout_r = _mat(vout_ptr + base, NP, T, T * R, R, N, T)
    vin_i, vout_i = vin_r, vout_r
    if IS_COMPLEX:
        vin_i = _mat(vin_ptr + base + 1, T, NP, R, T * R, T, N)
        vout_i = _mat(vout_ptr + base + 1, NP, T, T * R, R, N, T)
    return toep, vin_r, vin_i, vout_r, vout_i


@triton.jit
def _vec(ptr, ns, N, R: tl.constexpr):
    """Entries n < N of an (N[, 2]) re part at ``ptr`` (pass ptr + 1 for the im part), zero beyond."""
    return tl.load(ptr + ns * R, mask=ns < N, other=0.0)


@triton.jit
def _channel(at_ptr, toep_ptr, vin_ptr, vout_ptr, D_ptr, pid_d, ns, N, T: tl.constexpr, NP: tl.constexpr,
             R: tl.constexpr, IS_COMPLEX: tl.constexpr, HAS_D: tl.constexpr):
    """What a program keeps of its channel: a^T re and im (NP,), the operators (:func:`_operators`) and D."""
    at = at_ptr + pid_d * N * R
    at_r = _vec(at, ns, N, R)
    at_i = at_r
    if IS_COMPLEX:
        at_i = _vec(at + 1, ns, N, R)
    toep, vin_r, vin_i, vout_r, vout_i = _operators(toep_ptr, vin_ptr, vout_ptr, pid_d, N, T, NP, R, IS_COMPLEX)
    dval = 0.0
    if HAS_D:
        dval = tl.load(D_ptr + pid_d).to(tl.float32)
    return at_r, at_i, toep, vin_r, vin_i, vout_r, vout_i, dval


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
    at_r, at_i, toep, vin_r, vin_i, vout_r, vout_i, dval = _channel(
        at_ptr, toep_ptr, vin_ptr, vout_ptr, D_ptr, pid_d, ns, N, T, NP, R, IS_COMPLEX, HAS_D)
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
        if j == nblk - 1:  # the last chunk (always in the last block): its entering state, for h_L
            at_last = c[:, None] == clast
            hl_r = _row(h_r, at_last)
            if IS_COMPLEX:
                hl_i = _row(h_i, at_last)
        # carried: the last row's entering state (the next block's first row adds a^T times it to its X_prev part)
        last = rows[:, None] == ROWS - 1
        hc_r = _row(h_r, last)
        if IS_COMPLEX:
            hc_i = _row(h_i, last)
    # h_L = a^r H_clast + the last chunk's first r steps through VLAST
    xl = tl.load(u_row + (clast * T + cols) * su_l, mask=clast * T + cols < L, other=0.0).to(tl.float32)
    vl = vlast_ptr + pid_d * N * T * R
    al = alast_ptr + pid_d * N * R
    al_r = _vec(al, ns, N, R)
    out = hlast_ptr + (pid_b * d + pid_d) * N * R
    mn = ns < N
    own_r = tl.sum(xl[:, None] * _mat(vl, T, NP, R, T * R, T, N), 0)
    if IS_COMPLEX:
        al_i = _vec(al + 1, ns, N, R)
        own_i = tl.sum(xl[:, None] * _mat(vl + 1, T, NP, R, T * R, T, N), 0)
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
    d, N, L, nblk,
    su_b, su_d, su_l, sz_b, sz_d, sz_l, sdy_b, sdy_d, sdy_l, sdu_b, sdu_d, sdu_l, sdz_b, sdz_d, sdz_l,
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
    at_r, at_i, toep, vin_r, vin_i, vout_r, vout_i, dval = _channel(
        at_ptr, toep_ptr, vin_ptr, vout_ptr, D_ptr, pid_d, ns, N, T, NP, R, IS_COMPLEX, HAS_D)
    u_row = u_ptr + pid_b * su_b + pid_d * su_d
    z_row = z_ptr + pid_b * sz_b + pid_d * sz_d
    dy_row = dy_ptr + pid_b * sdy_b + pid_d * sdy_d
    du_row = du_ptr + pid_b * sdu_b + pid_d * sdu_d
    dz_row = dz_ptr + pid_b * sdz_b + pid_d * sdz_d
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
            tl.store(dz_row + pos * sdz_l, dz.to(dz_ptr.dtype.element_ty), mask=m)
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
        tl.store(du_row + pos * sdu_l, dx.to(du_ptr.dtype.element_ty), mask=m)
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
    # VIN's and VOUT's grads in their (N, T[, 2]) layout, AT's in (N[, 2])
    base = prog * N * T * R
    n_t = ns[:, None] * (T * R) + cols[None, :] * R
    m_nt = ns[:, None] < N
    tl.store(gvin_ptr + base + n_t, tl.trans(g_vin_r), mask=m_nt)
    tl.store(gvout_ptr + base + n_t, g_vout_r, mask=m_nt)
    ga = gat_ptr + prog * N * R
    tl.store(ga + ns * R, g_at_r, mask=ns < N)
    if IS_COMPLEX:
        tl.store(gvin_ptr + base + n_t + 1, tl.trans(g_vin_i), mask=m_nt)
        tl.store(gvout_ptr + base + n_t + 1, g_vout_i, mask=m_nt)
        tl.store(ga + ns * R + 1, g_at_i, mask=ns < N)
    if HAS_D:
        tl.store(gD_ptr + prog, tl.sum(tl.sum(g_D, 1), 0))


def precision(dtype: torch.dtype) -> str:
    """tl.dot's input precision for inputs of ``dtype``: 16-bit inputs are exact in TF32 and their outputs coarser than
    TF32's rounding of the operators ("tf32"); float32 keeps about its accuracy with three TF32 products ("tf32x3")
    unless PyTorch's float32 matmuls may use TF32 (``torch.backends.cuda.matmul.allow_tf32``), as a user's own would."""
    return "tf32" if dtype != torch.float32 or torch.backends.cuda.matmul.allow_tf32 else "tf32x3"


def _cap(cfg: ScanConfig) -> dict[str, int]:
    """The launches' register cap (``ScanConfig.lti_maxnreg``), where set and compiled (the interpreter has none)."""
    return {"maxnreg": cfg.lti_maxnreg} if cfg.lti_maxnreg and not interpreting() else {}


def chunk_forward(u: Tensor, z: Tensor | None, D: Tensor | None, ops: tuple[Tensor, ...], N: int, cfg: ScanConfig,
                  need_grad: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The forward launch on the operators ``ops`` (:func:`lti_operators` with L): (y, the blocks' entering states
    for the backward ((1,) unless ``need_grad``), h_L as (batch, d, N, R) float32), with ``cfg``'s ``lti_*``
    geometry."""
    batch, d, L = u.shape
    cplx = ops[1].dim() == 4
    R = 2 if cplx else 1
    f32 = torch.float32
    y = torch.empty((batch, d, L), dtype=u.dtype, device=u.device)
    hlast = torch.zeros((batch, d, N, R), dtype=f32, device=u.device)
    shape = states_shape(batch, d, N, L, cplx, cfg.lti_chunk, cfg.lti_rows)
    states = torch.empty(shape if need_grad else (1,), dtype=f32, device=u.device)
    if L > 0:
        launch(
            _lti_chunk_fwd_kernel, (batch, d),
            (u, z if z is not None else u, D if D is not None else u, y, *ops, states, hlast),
            (d, N, L, shape[2], *_strides3(u), *_strides3(z), *_strides3(y)),
            T=cfg.lti_chunk, ROWS=cfg.lti_rows, NP=n_pad(N), R=R, IS_COMPLEX=cplx, HAS_D=D is not None,
            HAS_Z=z is not None, SAVE_STATES=need_grad, PREC=precision(u.dtype), num_warps=lti_warps(cfg, u.dtype, False),
            **_cap(cfg),
        )
    return y, states, hlast


def chunk_backward(dy: Tensor, u: Tensor, z: Tensor | None, D: Tensor | None, ops: tuple[Tensor, ...], N: int,
                   states: Tensor, cfg: ScanConfig) -> tuple[Tensor | None, ...]:
    """The backward launch: grads of (u, z, D, TOEP, VIN, VOUT, AT) (None for an absent z or D); the operators' and
    D's summed over batch here, their way back to Δ, A, B, C is the builder's autograd."""
    batch, d, L = u.shape
    cplx = ops[1].dim() == 4
    dev = u.device
    f32 = torch.float32
    du = torch.empty((batch, d, L), dtype=u.dtype, device=dev)
    dz = torch.empty((batch, d, L), dtype=z.dtype, device=dev) if z is not None else None
    g_toep, g_vin, g_vout, g_at = (torch.empty((batch, *op.shape), dtype=f32, device=dev) for op in ops[:4])
    g_D = torch.empty((batch, d), dtype=f32, device=dev)
    if L == 0:
        for g in (g_toep, g_vin, g_vout, g_at, g_D):
            g.zero_()
    else:
        launch(
            _lti_chunk_bwd_kernel, (batch, d),
            (u, z if z is not None else u, D if D is not None else u, dy, *ops[:4], states,
             du, dz if dz is not None else du, g_toep, g_vin, g_vout, g_at, g_D),
            (d, N, L, states.shape[2], *_strides3(u), *_strides3(z), *_strides3(dy), *_strides3(du), *_strides3(dz)),
            T=cfg.lti_chunk, ROWS=cfg.lti_rows, NP=n_pad(N), R=2 if cplx else 1, IS_COMPLEX=cplx,
            HAS_D=D is not None, HAS_Z=z is not None, PREC=precision(u.dtype), num_warps=lti_warps(cfg, u.dtype, True),
            **_cap(cfg),
        )
    gD = g_D.sum(0).to(D.dtype) if D is not None else None
    return du, dz, gD, g_toep.sum(0), g_vin.sum(0), g_vout.sum(0), g_at.sum(0)


class LtiChunkFn(torch.autograd.Function):
    """The chunked kernels as an autograd Function of (u, z, D) and the operators; Δ, A, B, C reach it only through
    :func:`lti_operators`, whose own autograd takes the operators' grads back to them."""

    @staticmethod
    def forward(ctx, u, z, D, toep, vin, vout, at, vlast, alast, N, cfg, need_grad):
        ops = (toep, vin, vout, at, vlast, alast)
        y, states, hlast = chunk_forward(u, z, D, ops, N, cfg, need_grad)
        ctx.mark_non_differentiable(hlast)
        ctx.set_materialize_grads(False)
        if need_grad:
            ctx.save_for_backward(u, z, D, toep, vin, vout, at, states)
        ctx.args = (N, cfg)
        return y, hlast

    @staticmethod
    def backward(ctx, dy, _dhlast):
        u, z, D, toep, vin, vout, at, states = ctx.saved_tensors
        if dy is None:
            dy = torch.zeros_like(u)
        N, cfg = ctx.args
        grads = chunk_backward(dy, u, z, D, (toep, vin, vout, at), N, states, cfg)
        return (*grads, None, None, None, None, None)


def lti_chunk_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
                   delta_bias: Tensor | None, delta_softplus: bool, cfg: ScanConfig,
                   need_grad: bool) -> tuple[Tensor, Tensor]:
    """The fully-LTI scan by chunks, autograd-aware: (y, h_last) as :func:`kernels.selective_scan` returns them."""
    ops = lti_operators(delta, A, B, C, delta_bias, bool(delta_softplus), cfg.lti_chunk, u.shape[2])
    y, hlast = LtiChunkFn.apply(u, z, D, *ops, A.shape[1], cfg, need_grad)
    return y, (torch.view_as_complex(hlast) if A.is_complex() else hlast[..., 0])
