"""CPU scan paths side by side (fwd + bwd), for the -tiny recipes and CI:

    python -m audiomamba.bench.cpu_scan

- ``autograd``: the chunked associative scan with autograd through every Hillis-Steele round
  (how the CPU path worked before 2026-12-01);
- ``assoc``: the same scan with its hand-written backward (:func:`audiomamba.kernels.reference.linear_scan`);
- ``fft``: LTI arguments as a causal FFT convolution (:func:`selective_scan_fft`).

Shapes are those of the -tiny presets' outer level at the recipes' lengths.
"""

from __future__ import annotations

import time

import torch
from audiomamba.kernels.reference import (
    _as_4d,
    _cast_params,
    _finish,
    _hillis_steele,
    _prepare_delta,
    _real_dtype,
    selective_scan_assoc,
    selective_scan_fft,
)


def _assoc_autograd(u, delta, A, B, C, chunk: int = 1024):
    """The associative scan with autograd through the scan rounds (the former CPU path)."""
    rdt = _real_dtype(u)
    batch, d, L = u.shape
    N = A.shape[1]
    dt = _prepare_delta(delta, None, False, rdt)
    A_, B_, C_ = _cast_params(A, B, C, rdt)
    B4, C4 = _as_4d(B_), _as_4d(C_)
    h = torch.zeros(batch, d, N, dtype=A_.dtype)
    ys = []
    for s in range(0, L, chunk):
        e = min(s + chunk, L)
        dt_c = dt[:, :, s:e] if dt.shape[2] > 1 else dt
        a = torch.exp(dt_c[:, :, None, :] * A_[None, :, :, None]).expand(batch, d, N, e - s)
        bu = (dt_c * u[:, :, s:e])[:, :, None, :] * (B4[..., s:e] if B4.shape[3] > 1 else B4)
        pa, pb = _hillis_steele(a, bu.to(a.dtype))
        hs = pb + pa * h[..., None]
        y = (hs * (C4[..., s:e] if C4.shape[3] > 1 else C4)).sum(2)
        ys.append(2 * y.real if y.is_complex() else y)
        h = hs[..., -1]
    return _finish(torch.cat(ys, -1), u, None, None, rdt)


def _time(fn, *args, reps: int = 3) -> float:
    best = float("inf")
    for _ in range(reps):
        leaves = [a.detach().requires_grad_() if a.is_floating_point() or a.is_complex() else a for a in args]
        t0 = time.perf_counter()
        fn(*leaves).sum().backward()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    rows = []
    for name, (b, d, n, length) in {"sc09-tiny outer (4, 32, 16, 2000)": (4, 32, 16, 2000),
                                    "youtubemix-tiny outer (4, 32, 16, 4096)": (4, 32, 16, 4096)}.items():
        u = torch.randn(b, d, length)
        sel = (torch.rand(b, d, length) * 0.1, -torch.rand(d, n) * 4, torch.randn(b, n, length), torch.randn(b, n, length))
        rows.append((name, "selective real", _time(_assoc_autograd, u, *sel),
                     _time(lambda *a: selective_scan_assoc(*a), u, *sel), None))
        a = torch.complex(-torch.rand(d, n) - 0.1, torch.randn(d, n))
        lti = (torch.rand(d) * 0.1, a, torch.randn(d, n, dtype=torch.cfloat), torch.randn(d, n, dtype=torch.cfloat))
        rows.append((name, "LTI complex", _time(_assoc_autograd, u, *lti),
                     _time(lambda *a: selective_scan_assoc(*a), u, *lti),
                     _time(lambda *a: selective_scan_fft(*a), u, *lti)))
    print("| shape (b, d, N, L) | scan | autograd (before) ms | assoc, hand-written bwd ms | fft ms | speed-up |")
    print("|---|---|---|---|---|---|")
    for name, kind, before, assoc, fft in rows:
        best = min(x for x in (assoc, fft) if x is not None)
        print(f"| {name} | {kind} | {before * 1e3:.0f} | {assoc * 1e3:.0f} | "
              f"{'-' if fft is None else f'{fft * 1e3:.0f}'} | {before / best:.1f}x |")


if __name__ == "__main__":
    main()
