"""Plain-PyTorch reference implementations of the selective scan (docs/ARCHITECTURE.md §6).

Two versions of the same recurrence, per batch element, channel ``d`` and state ``n``::

    h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t u_t
    y_t = C_t · h_t            (2·Re(C_t · h_t) when A is complex)  + D u_t
    out = y · silu(z)          (when z is given)

* :func:`selective_scan_ref` — a sequential loop over L; slow, obviously right, the ground truth.
* :func:`selective_scan_assoc` — a log-depth (Hillis-Steele) associative scan over chunks of L;
  O(log chunk) torch ops per chunk, differentiable through autograd; the CPU fallback.
* :func:`selective_state_update_ref` — one step of the recurrence, updating ``h`` in place.

All accumulate in float32 (float64 when ``u`` is float64, so ``gradcheck`` works) and return
``y`` in ``u``'s dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: number of (batch·d·N·L) elements one chunk of the associative scan may hold.
ASSOC_CHUNK_ELEMENTS = 1 << 22


def _real_dtype(u: Tensor) -> torch.dtype:
    return torch.float64 if u.dtype == torch.float64 else torch.float32


def _complex_of(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _prepare_delta(delta: Tensor, delta_bias: Tensor | None, softplus: bool, rdt: torch.dtype) -> Tensor:
    """Δ after bias and softplus, as (batch, d, L) or (1, d, 1) for LTI (never materialised)."""
    dt = delta.to(rdt)
    if dt.dim() == 1:
        dt = dt[None, :, None]
    if delta_bias is not None:
        dt = dt + delta_bias.to(rdt)[None, :, None]
    if softplus:
        dt = F.softplus(dt)
    return dt


def _as_4d(x: Tensor) -> Tensor:
    """B or C as a (batch|1, d|1, N, L|1) tensor: (batch, N, L) -> (batch, 1, N, L); (d, N) -> (1, d, N, 1)."""
    return x[:, None, :, :] if x.dim() == 3 else x[None, :, :, None]


def _finish(y: Tensor, u: Tensor, D: Tensor | None, z: Tensor | None, rdt: torch.dtype) -> Tensor:
    """Add the D skip and the SiLU gate; y (batch, d, L) in ``rdt``."""
    if D is not None:
        y = y + D.to(rdt)[None, :, None] * u.to(rdt)
    if z is not None:
        y = y * F.silu(z.to(rdt))
    return y


def _cast_params(A: Tensor, B: Tensor, C: Tensor, rdt: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    cdt = _complex_of(rdt)
    if A.is_complex():
        return A.to(cdt), B.to(cdt if B.is_complex() else rdt), C.to(cdt if C.is_complex() else rdt)
    if B.is_complex() or C.is_complex():
        raise ValueError("selective_scan: B and C may be complex only when A is complex")
    return A.to(rdt), B.to(rdt), C.to(rdt)


def selective_scan_ref(
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
) -> Tensor | tuple[Tensor, Tensor]:
    """Sequential selective scan (ground truth); arguments as :func:`kernels.selective_scan`.

    Shapes: u (batch, d, L); delta (batch, d, L) or (d,); A (d, N); B, C (batch, N, L) or (d, N);
    D, delta_bias (d,); z (batch, d, L). Returns y (batch, d, L) in u's dtype and, if asked,
    h_last (batch, d, N) in float32 (complex64 when A is complex; float64/complex128 for float64 u).
    """
    rdt = _real_dtype(u)
    batch, d, L = u.shape
    dt = _prepare_delta(delta, delta_bias, delta_softplus, rdt)
    A_, B_, C_ = _cast_params(A, B, C, rdt)
    B4, C4 = _as_4d(B_), _as_4d(C_)
    uf = u.to(rdt)
    h = torch.zeros(batch, d, A.shape[1], dtype=A_.dtype, device=u.device)
    ys = []
    for t in range(L):
        dt_t = dt[:, :, min(t, dt.shape[2] - 1)]  # (batch|1, d)
        dA = torch.exp(dt_t[:, :, None] * A_)  # (batch|1, d, N)
        B_t = B4[..., min(t, B4.shape[3] - 1)]  # (batch|1, d|1, N)
        C_t = C4[..., min(t, C4.shape[3] - 1)]
        h = dA * h + (dt_t * uf[:, :, t])[:, :, None] * B_t
        y_t = (h * C_t).sum(-1)
        ys.append(2 * y_t.real if y_t.is_complex() else y_t)
    y = torch.stack(ys, dim=-1) if L > 0 else uf.new_zeros(batch, d, 0)
    out = _finish(y, u, D, z, rdt).to(u.dtype)
    return (out, h) if return_last_state else out


def _hillis_steele(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Inclusive scan of h_t = a_t h_{t-1} + b_t along the last dim, in ceil(log2 L) steps.

    a, b (..., L), real or complex (a may broadcast against b). Returns (prod a_1..a_t, h_t with h_0 = 0).
    Out of place, so autograd works through it.
    """
    a = a.expand_as(b) if a.shape != b.shape else a
    L = b.shape[-1]
    k = 1
    while k < L:
        b = torch.cat([b[..., :k], a[..., k:] * b[..., :-k] + b[..., k:]], dim=-1)
        a = torch.cat([a[..., :k], a[..., k:] * a[..., :-k]], dim=-1)
        k *= 2
    return a, b


class _LinearScan(torch.autograd.Function):
    """h_t = a_t h_{t-1} + b_t along the last dim (h_0 = 0) with a hand-written backward.

    The forward runs :func:`_hillis_steele` without autograd; the backward is the same scan run
    in reverse (gh_t = g_t + conj(a_{t+1}) gh_{t+1}; grad b_t = gh_t, grad a_t = gh_t conj(h_{t-1})),
    so no per-round slices are kept for autograd (3-4x faster on the CPU). The forward and
    ``setup_context`` are separate so that ``torch.func.vjp`` can differentiate it (the reference
    backward of the compiled scan op, kernels/scan_op.py).
    """

    @staticmethod
    def forward(a: Tensor, b: Tensor) -> Tensor:  # type: ignore[override]
        with torch.no_grad():
            _, h = _hillis_steele(a, b)
        return b.view_as(b) if h is b else h  # L = 1: b itself, returned as a view (autograd's rule)

    @staticmethod
    def setup_context(ctx, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
        a, b = inputs
        ctx.save_for_backward(a, output)
        ctx.real = (not a.is_complex(), not b.is_complex())

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        a, h = ctx.saved_tensors
        with torch.no_grad():
            a_next = torch.cat([a[..., 1:], torch.zeros_like(a[..., :1])], dim=-1)
            _, gh = _hillis_steele(a_next.conj().flip(-1), g.flip(-1))
            gh = gh.flip(-1)
            h_prev = torch.cat([torch.zeros_like(h[..., :1]), h[..., :-1]], dim=-1)
            grad_a, grad_b = gh * h_prev.conj(), gh
        return (grad_a.real if ctx.real[0] and grad_a.is_complex() else grad_a,
                grad_b.real if ctx.real[1] and grad_b.is_complex() else grad_b)


def linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """All states of h_t = a_t h_{t-1} + b_t (a, b (..., L), a broadcastable to b; h0 (...) or None)."""
    a = a.expand(b.shape) if a.shape != b.shape else a
    if h0 is not None:
        b = torch.cat([b[..., :1] + a[..., :1] * h0[..., None], b[..., 1:]], dim=-1)
    if a.is_complex() and not b.is_complex():
        b = b.to(a.dtype)
    return _LinearScan.apply(a, b)


def selective_scan_assoc(
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
    chunk: int | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Log-depth associative selective scan, chunked along L; same contract as :func:`selective_scan_ref`.

    Each chunk of ``chunk`` steps materialises (batch, d, N, chunk) and is scanned in
    ceil(log2 chunk) torch ops; the state is carried across chunks. ``chunk`` defaults to the
    largest power of two keeping a chunk under :data:`ASSOC_CHUNK_ELEMENTS` elements.
    """
    rdt = _real_dtype(u)
    batch, d, L = u.shape
    N = A.shape[1]
    dt = _prepare_delta(delta, delta_bias, delta_softplus, rdt)
    A_, B_, C_ = _cast_params(A, B, C, rdt)
    B4, C4 = _as_4d(B_), _as_4d(C_)
    uf = u.to(rdt)
    if chunk is None:
        chunk = 1
        while chunk * 2 <= max(L, 1) and batch * d * N * chunk * 2 <= ASSOC_CHUNK_ELEMENTS:
            chunk *= 2
    h = torch.zeros(batch, d, N, dtype=A_.dtype, device=u.device)
    ys = []
    for s in range(0, L, chunk):
        e = min(s + chunk, L)
        dt_c = dt[:, :, s:e] if dt.shape[2] > 1 else dt  # (batch|1, d, Lc|1)
        a = torch.exp(dt_c[:, :, None, :] * A_[None, :, :, None])  # (batch|1, d, N, Lc|1)
        B_c = B4[..., s:e] if B4.shape[3] > 1 else B4
        C_c = C4[..., s:e] if C4.shape[3] > 1 else C4
        bu = (dt_c * uf[:, :, s:e])[:, :, None, :] * B_c  # (batch, d, N, Lc)
        hs = linear_scan(a.expand(batch, d, N, e - s), bu, h)  # (batch, d, N, Lc)
        y_c = (hs * C_c).sum(2)
        ys.append(2 * y_c.real if y_c.is_complex() else y_c)
        h = hs[..., -1]
    y = torch.cat(ys, dim=-1) if ys else uf.new_zeros(batch, d, 0)
    out = _finish(y, u, D, z, rdt).to(u.dtype)
    return (out, h) if return_last_state else out


def selective_scan_fft(
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
) -> Tensor | tuple[Tensor, Tensor]:
    """The LTI scan (delta (d,), B and C (d, N)) as a causal convolution by FFT; same contract as
    :func:`selective_scan_ref`. With a time-invariant Δ, B and C the scan's output is the input
    convolved with K_l = sum_n C_n exp(Δ A_n)^l Δ B_n (2·Re of it for complex A), so the CPU path
    needs O(L log L) work instead of a scan. The last state is h_L = sum_s exp(Δ A)^(L-1-s) Δ B u_s.
    """
    if delta.dim() != 1 or B.dim() != 2 or C.dim() != 2:
        raise ValueError("selective_scan_fft is for LTI scans: delta (d,), B and C (d, N)")
    rdt = _real_dtype(u)
    batch, d, L = u.shape
    dt = _prepare_delta(delta, delta_bias, delta_softplus, rdt)[0, :, 0]  # (d,)
    A_, B_, C_ = _cast_params(A, B, C, rdt)
    dA = dt[:, None] * A_  # (d, N)
    powers = torch.exp(dA[..., None] * torch.arange(L, device=u.device, dtype=rdt))  # (d, N, L)
    kernel = ((C_ * B_ * dt[:, None])[..., None] * powers).sum(1)  # (d, L)
    kernel = 2 * kernel.real if kernel.is_complex() else kernel
    uf = u.to(rdt)
    n = 1 << max(1, (2 * L - 1).bit_length())
    y = torch.fft.irfft(torch.fft.rfft(uf, n=n) * torch.fft.rfft(kernel, n=n), n=n)[..., :L]
    out = _finish(y, u, D, z, rdt).to(u.dtype)
    if not return_last_state:
        return out
    weights = (powers.flip(-1) * (dt[:, None] * B_)[..., None])  # (d, N, L): exp(ΔA)^(L-1-s) Δ B
    h = torch.einsum("bds,dns->bdn", uf.to(weights.dtype), weights)
    return out, h


@torch.no_grad()
def selective_state_update_ref(
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
) -> Tensor:
    """One recurrent step; updates ``h`` in place and returns y (batch, d) in u's dtype.

    h (batch, d, N) float32 (complex64 when A is complex); u (batch, d); delta (batch, d) or (d,);
    B, C (batch, N) selective or (d, N) LTI; D, delta_bias (d,); z (batch, d).
    """
    rdt = torch.float64 if h.dtype in (torch.float64, torch.complex128) else torch.float32
    dt = delta.to(rdt)
    if delta_bias is not None:
        dt = dt + delta_bias.to(rdt)
    if delta_softplus:
        dt = F.softplus(dt)
    if dt.dim() == 1:
        dt = dt[None, :]
    A_, B_, C_ = _cast_params(A, B, C, rdt)
    B3 = _step_bc(B_, u.shape[0], A.shape[0], delta.dim() == 1)
    C3 = _step_bc(C_, u.shape[0], A.shape[0], delta.dim() == 1)
    uf = u.to(rdt)
    dA = torch.exp(dt[:, :, None] * A_)
    h_new = dA * h.to(A_.dtype) + (dt * uf)[:, :, None] * B3
    h.copy_(h_new.to(h.dtype))
    y = (h_new * C3).sum(-1)
    y = 2 * y.real if y.is_complex() else y
    if D is not None:
        y = y + D.to(rdt) * uf
    if z is not None:
        y = y * F.silu(z.to(rdt))
    return y.to(u.dtype)


def step_bc_is_lti(x: Tensor, batch: int, d: int, delta_lti: bool) -> bool:
    """Whether a step-mode B or C is LTI (d, N) rather than selective (batch, N).

    A 2-D (rows, N) tensor is LTI when rows == d != batch, selective when rows == batch != d, and
    when batch == d it follows delta (LTI iff delta is (d,)). A 3-D (batch, 1, N) or (1, d, N)
    tensor says explicitly which one it is.
    """
    if x.dim() == 3:
        return x.shape[1] != 1 or (x.shape[0] == 1 and batch != 1)
    return x.shape[0] == d if batch != d else delta_lti


def _step_bc(x: Tensor, batch: int, d: int, delta_lti: bool) -> Tensor:
    """Step-mode B or C as (batch, 1, N) when selective or (1, d, N) when LTI."""
    if x.dim() == 2:
        x = x[None, :, :] if step_bc_is_lti(x, batch, d, delta_lti) else x[:, None, :]
    return x
