"""Triton single-step state update for generation: h ← exp(ΔA) h + Δ B u in place, y = C·h (+Du, gate).

One program per (batch element, block of ``BLOCK_D`` channels), all N states in registers.
Complex A / B / C / h are read and written as (re, im) pairs through ``torch.view_as_real``
views, so ``h`` is updated in place whatever its dtype. LTI delta (d,) and B/C (d, N) are read
through zero strides along batch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .checks import REAL_STATE_DTYPES
from .reference import step_bc_is_lti
from .triton_helpers import exp_dtA, readout, softplus, state_update

BLOCK_D = 16


@triton.jit
def _step_kernel(
    h_ptr, u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, y_ptr,
    dim, dstate,
    sh_b, sh_d, sh_n, su_b, su_d, sdt_b, sdt_d, sA_d, sA_n,
    sB_b, sB_d, sB_n, sC_b, sC_d, sC_n, sz_b, sz_d, sy_b, sy_d,
    IS_COMPLEX: tl.constexpr, B_COMPLEX: tl.constexpr, C_COMPLEX: tl.constexpr,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d = offs_d < dim
    mask = mask_d[:, None] & (offs_n < dstate)[None, :]

    u = tl.load(u_ptr + pid_b * su_b + offs_d * su_d, mask=mask_d, other=0.0).to(tl.float32)
    dt = tl.load(dt_ptr + pid_b * sdt_b + offs_d * sdt_d, mask=mask_d, other=0.0).to(tl.float32)
    if HAS_BIAS:
        dt += tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    if SOFTPLUS:
        dt = softplus(dt)
    a_off = offs_d[:, None] * sA_d + offs_n[None, :] * sA_n
    b_off = pid_b * sB_b + offs_d[:, None] * sB_d + offs_n[None, :] * sB_n
    c_off = pid_b * sC_b + offs_d[:, None] * sC_d + offs_n[None, :] * sC_n
    h_off = pid_b * sh_b + offs_d[:, None] * sh_d + offs_n[None, :] * sh_n
    A_re = tl.load(A_ptr + a_off, mask=mask, other=0.0).to(tl.float32)
    B_re = tl.load(B_ptr + b_off, mask=mask, other=0.0).to(tl.float32)
    C_re = tl.load(C_ptr + c_off, mask=mask, other=0.0).to(tl.float32)
    h_re = tl.load(h_ptr + h_off, mask=mask, other=0.0).to(tl.float32)  # float32 or bf16 states
    dt2 = dt[:, None]
    du = (dt * u)[:, None]
    A_im = tl.zeros_like(A_re)
    h_im = tl.zeros_like(h_re)
    B_im = tl.zeros_like(B_re)
    C_im = tl.zeros_like(C_re)
    if IS_COMPLEX:
        A_im = tl.load(A_ptr + a_off + 1, mask=mask, other=0.0).to(tl.float32)
        h_im = tl.load(h_ptr + h_off + 1, mask=mask, other=0.0)
        if B_COMPLEX:
            B_im = tl.load(B_ptr + b_off + 1, mask=mask, other=0.0).to(tl.float32)
        if C_COMPLEX:
            C_im = tl.load(C_ptr + c_off + 1, mask=mask, other=0.0).to(tl.float32)
    a_re, a_im = exp_dtA(dt2, A_re, A_im, IS_COMPLEX)
    h_re, h_im = state_update(h_re, h_im, a_re, a_im, du, B_re, B_im, IS_COMPLEX)
    y = readout(h_re, h_im, C_re, C_im, 1, IS_COMPLEX)
    tl.store(h_ptr + h_off, h_re, mask=mask)
    if IS_COMPLEX:
        tl.store(h_ptr + h_off + 1, h_im, mask=mask)
    if HAS_D:
        y += tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32) * u
    if HAS_Z:
        zz = tl.load(z_ptr + pid_b * sz_b + offs_d * sz_d, mask=mask_d, other=0.0).to(tl.float32)
        y = y * zz * tl.sigmoid(zz)
    tl.store(y_ptr + pid_b * sy_b + offs_d * sy_d, y.to(y_ptr.dtype.element_ty), mask=mask_d)


def _view(x: Tensor) -> Tensor:
    return torch.view_as_real(x) if x.is_complex() else x


def _bc(x: Tensor, batch: int, d: int, delta_lti: bool) -> tuple[Tensor, tuple[int, int, int]]:
    """B or C as a real view plus its (batch, d, n) element strides (zero where broadcast)."""
    v = _view(x.to(torch.complex64) if x.is_complex() else x)
    n_stride = v.stride(-2) if x.is_complex() else v.stride(-1)
    lti = step_bc_is_lti(x, batch, d, delta_lti)
    if x.dim() == 3:
        return v, ((0, v.stride(1), n_stride) if lti else (v.stride(0), 0, n_stride))
    return v, ((0, v.stride(0), n_stride) if lti else (v.stride(0), 0, n_stride))


@torch.no_grad()
def selective_state_update_triton(
    h: Tensor,
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    block_d: int = BLOCK_D,
) -> Tensor:
    """One recurrent step with Triton; contract of :func:`kernels.selective_state_update`."""
    batch, d = u.shape
    N = A.shape[1]
    is_complex = A.is_complex()
    if h.dtype not in ((torch.complex64,) if is_complex else REAL_STATE_DTYPES):
        raise TypeError(f"selective_state_update: h must be {'complex64' if is_complex else 'float32, bfloat16 or float16'}, "
                        f"got {h.dtype}")
    hv = _view(h)
    Av = _view(A.to(torch.complex64)) if is_complex else A.float()
    a_n = Av.stride(-2) if is_complex else Av.stride(-1)
    h_n = hv.stride(-2) if is_complex else hv.stride(-1)
    dt_lti = delta.dim() == 1
    Bv, sB = _bc(B, batch, d, dt_lti)
    Cv, sC = _bc(C, batch, d, dt_lti)
    y = torch.empty((batch, d), dtype=u.dtype, device=u.device)
    grid = (batch, triton.cdiv(d, block_d))
    _step_kernel[grid](
        hv, u, delta, Av, Bv, Cv,
        D if D is not None else u, z if z is not None else u,
        delta_bias if delta_bias is not None else u, y,
        d, N,
        hv.stride(0), hv.stride(1), h_n, u.stride(0), u.stride(1),
        *((0, delta.stride(0)) if dt_lti else (delta.stride(0), delta.stride(1))),
        Av.stride(0), a_n, *sB, *sC,
        *((z.stride(0), z.stride(1)) if z is not None else (0, 0)), y.stride(0), y.stride(1),
        IS_COMPLEX=is_complex, B_COMPLEX=B.is_complex(), C_COMPLEX=C.is_complex(),
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
        SOFTPLUS=bool(delta_softplus), BLOCK_D=block_d, BLOCK_N=max(2, triton.next_power_of_2(N)),
    )
    return y
