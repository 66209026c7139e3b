"""Compiled Triton kernels on a real GPU against the float64 reference, at medium shapes.

Skipped without CUDA. Run on a GPU machine with::

    python -m pytest tests/test_kernels_gpu.py -q
"""

from __future__ import annotations

import pytest
import torch
from audiomamba.kernels.reference import selective_scan_assoc

from audiomamba import kernels

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def make(batch, d, N, L, *, cplx, lti, dtype=torch.float32, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, device="cuda")

    u = r(batch, d, L)
    delta = r(d) - 4.0 if lti else r(batch, d, L) * 0.5 - 4.0
    A = -torch.exp(r(d, N) * 0.5)
    if cplx:
        A = torch.complex(-0.5 * torch.ones_like(A), torch.pi * torch.arange(N, device="cuda").float().expand(d, N))
    pdt = torch.complex64 if cplx else torch.float32
    if lti:
        B, C = torch.ones(d, N, device="cuda", dtype=pdt), r(d, N).to(pdt) * 0.5
    else:
        B, C = r(batch, N, L), r(batch, N, L)
    D, z, db = r(d), r(batch, d, L), r(d) * 0.1
    return [u.to(dtype), delta.to(dtype), A, B, C, D, z.to(dtype), db]


def grads(fn, args, gy):
    leaves = [a.detach().clone().requires_grad_() for a in args]
    y, h = fn(*leaves, delta_softplus=True, return_last_state=True)
    g = torch.autograd.grad(y.to(gy.dtype), leaves, gy)
    return y, h, g


def reference64(*args, **kw):
    a64 = [a.double() if not a.is_complex() else a.to(torch.complex128) for a in args]
    return selective_scan_assoc(*a64, **kw)


@pytest.mark.parametrize("cplx,lti", [(False, False), (True, True), (True, False), (False, True)])
@pytest.mark.parametrize("L", [1000, 4099])
def test_gpu_kernel_matches_float64_reference(cplx, lti, L):
    torch.manual_seed(0)
    args = make(2, 64, 16, L, cplx=cplx, lti=lti)
    gy = torch.randn(2, 64, L, device="cuda")
    y, h, g = grads(kernels.selective_scan, args, gy)
    y_r, h_r, g_r = grads(reference64, args, gy.double())
    named = list(zip("u delta A B C D z bias".split(), g, g_r, strict=True))
    for name, a, b in [("y", y, y_r), ("h", h, h_r), *named]:
        b = b.to(a.dtype)
        err = (a - b).abs().max().item()
        scale = b.abs().max().item()
        # grads of (d,) / (d, N) parameters are sums over batch and L: a looser fp32 tolerance
        tol = 5e-3 if name in ("A", "D", "bias") or (name in ("delta", "B", "C") and lti) else 1e-3
        assert err <= tol * scale + 1e-5, f"{name}: error {err:.3g}, scale {scale:.3g}"


@pytest.mark.parametrize("cplx,lti", [(False, False), (True, True)])
def test_gpu_bf16_close_to_fp32(cplx, lti):
    args = make(2, 64, 16, 2048, cplx=cplx, lti=lti)
    gy = torch.randn(2, 64, 2048, device="cuda")
    y32, h32, g32 = grads(kernels.selective_scan, args, gy)
    # bf16 activations (u, z, selective delta); an LTI delta is a float32 parameter in the models
    cast = (0, 6) if lti else (0, 1, 4, 5, 6)
    bf = [a.to(torch.bfloat16) if i in cast and not a.is_complex() else a for i, a in enumerate(args)]
    y16, h16, g16 = grads(kernels.selective_scan, bf, gy)
    assert y16.dtype == torch.bfloat16
    assert (y16.float() - y32).abs().max() <= 3e-2 * y32.abs().max()
    assert (h16 - h32).abs().max() <= 3e-2 * h32.abs().max()
    for a, b in zip(g16, g32, strict=True):
        assert (a.to(b.dtype) - b).abs().max() <= 6e-2 * b.abs().max()


@pytest.mark.parametrize("cplx,lti", [(False, False), (True, True)])
def test_gpu_step_matches_scan(cplx, lti):
    L = 64
    u, delta, A, B, C, D, z, db = make(4, 128, 16, L, cplx=cplx, lti=lti)
    y_full, h_full = kernels.selective_scan(u, delta, A, B, C, D, z, db, True, return_last_state=True)
    h = torch.zeros_like(h_full)
    ys = []
    for t in range(L):
        dt = delta if lti else delta[:, :, t]
        Bt, Ct = (B, C) if lti else (B[:, :, t], C[:, :, t])
        ys.append(kernels.selective_state_update(h, u[:, :, t], dt, A, Bt, Ct, D, z[:, :, t], db, True))
    torch.testing.assert_close(torch.stack(ys, -1), y_full, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(h, h_full, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("config", ["32,1,1,4,4", "16,4,2,4,4", "128,1,1,8,16"])
@pytest.mark.parametrize("cplx,lti", [(False, False), (True, True)])
def test_gpu_other_launch_configs_agree(config, cplx, lti):
    """Every launch config the sweep may pick gives the same results as the default one."""
    from dataclasses import replace

    from audiomamba.kernels.triton_scan import selective_scan_triton
    from audiomamba.kernels.tuning import parse_config, pick_config

    args = make(2, 96, 16, 3000, cplx=cplx, lti=lti)
    gy = torch.randn(2, 96, 3000, device="cuda")

    def run(cfg):
        def fn(*a, **kw):
            return selective_scan_triton(*a, **kw, config=cfg)
        return grads(fn, args, gy)

    # the default config with the scan kernels: a fully-LTI call's default is the chunked path on tensor cores
    # (tf32 products, its own tests), which the configs given here (lti_chunk 0) do not take
    base = run(replace(pick_config(2, 96, 16, 3000, cplx), lti_chunk=0))
    other = run(parse_config(config))
    for a, b in zip((other[0], other[1], *other[2]), (base[0], base[1], *base[2]), strict=True):
        assert (a - b).abs().max() <= 1e-4 * b.abs().max() + 1e-6


def assert_grads_match_float64(args, lti):
    """The kernels' grads of ``args`` (from :func:`make`) against the float64 reference's, for a random output gradient:
    1e-3 of each tensor's scale, 5e-3 for the sums over batch and L (A, D, bias; with LTI also Δ, B, C)."""
    u = args[0]
    gy = torch.randn(u.shape, device="cuda")
    _, _, g = grads(kernels.selective_scan, args, gy)
    _, _, g_r = grads(reference64, args, gy.double())
    for name, a, b in zip("u delta A B C D z bias".split(), g, g_r, strict=True):
        b = b.to(a.dtype)
        tol = 5e-3 if name in ("A", "D", "bias") or (name in ("delta", "B", "C") and lti) else 1e-3
        assert (a - b).abs().max().item() <= tol * b.abs().max().item() + 1e-5, name


@pytest.mark.parametrize("warps", [2, 4])
@pytest.mark.parametrize("lti", [False, True], ids=["selective", "lti"])
def test_gpu_backward_pass1_as_a_sum_matches_float64(lti, warps, monkeypatch):
    """Backward pass 1 for real A as one sum per state (``AUDIOMAMBA_SCAN_BWD_LOCAL_SUM=2`` or 4 warps), compiled, over 4
    segments of 2048 steps and a last one cut short (L = 9000), against the float64 reference."""
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_LOCAL_SUM", str(warps))
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_SEG_L", "2048")
    monkeypatch.setenv("AUDIOMAMBA_SCAN_LTI_CHUNK", "0")  # fully LTI: the scan kernels, not the chunked path
    assert_grads_match_float64(make(2, 64, 16, 9000, cplx=False, lti=lti, seed=3), lti)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("L", [1000, 1024, 9000])
def test_gpu_fast_gates_and_unmasked_loads_match_float64(L, dtype, monkeypatch):
    """The sequential forward as compiled by default: the fast softplus and silu gate (``ScanConfig.fast_gates``:
    MUFU log2 with a series for small e^x, approximate division; GPU only) and B/C loads without predicates where
    16 steps divide L (1024; 1000 and 9000 keep the masks), segments of 256, against the float64 reference: y,
    the last state and the grads (from the forward's chunk states); bf16 at bf16's tolerance."""
    monkeypatch.setenv("AUDIOMAMBA_SCAN_SEG_L", "256")
    args = make(2, 64, 16, L, cplx=False, lti=False, dtype=dtype, seed=11)
    args[3], args[4] = args[3].to(dtype), args[4].to(dtype)  # B and C too, as the benchmark's 16-bit rows
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    y, h = kernels.selective_scan(*args, delta_softplus=True, return_last_state=True)
    y_r, h_r = reference64(*args, delta_softplus=True, return_last_state=True)
    assert (y.float() - y_r.float()).abs().max().item() <= tol * y_r.abs().max().item() + 1e-5
    assert (h.float() - h_r.float()).abs().max().item() <= tol * h_r.abs().max().item() + 1e-5
    if dtype == torch.float32:
        assert_grads_match_float64(args, False)


@pytest.mark.parametrize("chunk", [64, 128])
@pytest.mark.parametrize("L", [1000, 4096])
def test_gpu_lane_flip_in_inline_ptx_matches_float64(L, chunk, monkeypatch):
    """The state-loop backward's adjoint flipped by one inline ``shfl.sync.bfly`` per register
    (``AUDIOMAMBA_SCAN_BWD_LANE_ASM=1``), right only while Triton keeps CHUNK / 32 neighbouring steps per lane, which
    the CPU interpreter cannot check: compiled, selective real A, at an L with ALIGN 8 (1000) and 16 (4096)."""
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_LANE_ASM", "1")
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_LOOP", str(chunk))
    assert_grads_match_float64(make(2, 64, 16, L, cplx=False, lti=False, seed=5), lti=False)


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("L", [1000, 4096])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_gpu_closed_form_lti_backward_matches_float64(cplx, L, dtype, monkeypatch):
    """The state-loop backward's closed-form LTI scans, compiled (fast sin/cos, every path in one launch: the
    states' decays -Re(ΔA) with Δ in [1e-3, 0.1] log-uniform and Re A from -1/2 to -400 give adjoints in time
    order, over reversed lanes and by associative scans; ``AUDIOMAMBA_SCAN_BWD_CLOSED=1``), against the float64
    reference and against the associative scans alone (the default)."""
    g = torch.Generator(device="cuda").manual_seed(21)
    d, N = 64, 16
    u = torch.randn(2, d, L, device="cuda", generator=g)
    z = torch.randn(2, d, L, device="cuda", generator=g)
    delta = torch.exp(torch.rand(d, device="cuda", generator=g) * (torch.log(torch.tensor(100.0)))) * 1e-3
    a_re = -0.5 * torch.logspace(0, 2.9, N, device="cuda").expand(d, N)
    if cplx:
        A = torch.complex(a_re, torch.pi * torch.arange(N, device="cuda").float().expand(d, N))
        B = torch.ones(d, N, device="cuda", dtype=torch.complex64)
        C = torch.randn(d, N, device="cuda", dtype=torch.complex64, generator=g) * 0.5
    else:
        A = a_re.contiguous()
        B = torch.ones(d, N, device="cuda")
        C = torch.randn(d, N, device="cuda", generator=g) * 0.5
    D = torch.randn(d, device="cuda", generator=g)
    args = [u.to(dtype), delta, A, B, C, D, z.to(dtype)]
    gy = torch.randn(2, d, L, device="cuda", generator=g)
    q = -delta[:, None] * a_re
    chunk = 256 if cplx else 128
    assert (q * chunk <= 4).any() and ((q * chunk > 4) & (q * chunk / 2 <= 30)).any() and (q * chunk / 2 > 30).any()

    def run(fn):
        leaves = [a.detach().clone().requires_grad_() for a in args]
        y = fn(*leaves)
        return [y.float(), *torch.autograd.grad(y.float(), leaves, gy)]

    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_CLOSED", "1")
    closed = run(kernels.selective_scan)
    monkeypatch.setenv("AUDIOMAMBA_SCAN_BWD_CLOSED", "0")
    pairs = run(kernels.selective_scan)
    ref = run(lambda *a: selective_scan_assoc(*[x.double() if not x.is_complex() else x.to(torch.complex128)
                                                for x in a]))
    for name, a, b, r in zip("y u delta A B C D z".split(), closed, pairs, ref, strict=True):
        r = r.to(a.dtype)
        scale = r.abs().max().item()
        tol = 5e-3 if name in ("delta", "A", "B", "C", "D") else 1e-3
        # bf16 y, u and z grads are rounded to 8 bits (2^-8 relative), both kernels alike
        low = 8e-3 if dtype == torch.bfloat16 and name in ("y", "u", "z") else tol
        assert (a - r).abs().max().item() <= low * scale + 1e-5, f"{name}: closed form vs float64"
        assert (a - b).abs().max().item() <= low * scale + 1e-5, f"{name}: closed form vs associative scans"


def test_gpu_step_in_cuda_graph():
    """The step kernel can be captured in a CUDA graph (generation) and replays like eager calls."""
    u, delta, A, B, C, D, z, db = make(4, 128, 16, 3, cplx=True, lti=True)
    h_eager = torch.zeros(4, 128, 16, dtype=torch.complex64, device="cuda")
    y_eager = [kernels.selective_state_update(h_eager, u[:, :, t], delta, A, B, C, D, z[:, :, t]) for t in range(3)]
    h = torch.zeros_like(h_eager)
    u_in, z_in = u[:, :, 0].clone(), z[:, :, 0].clone()
    kernels.selective_state_update(h.clone(), u_in, delta, A, B, C, D, z_in)  # compile outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y_out = kernels.selective_state_update(h, u_in, delta, A, B, C, D, z_in)
    for t in range(3):
        u_in.copy_(u[:, :, t])
        z_in.copy_(z[:, :, t])
        graph.replay()
        torch.testing.assert_close(y_out, y_eager[t], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, h_eager, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["recompute", "split"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("B,L,E", [(4, 16000, 128), (2, 1000, 512), (1, 131072, 64)], ids=["sc09", "center", "long"])
def test_fused_conv_silu_matches_pytorch_on_gpu(monkeypatch, mode, dtype, B, L, E):
    """kernels/triton_conv.py compiled, both backwards (AUDIOMAMBA_CONV_BWD): output and gradients of
    x, weight and bias against the PyTorch conv run in float32 on the same (rounded) inputs."""
    from audiomamba.kernels.triton_conv import causal_conv1d_silu, causal_conv1d_silu_ref

    monkeypatch.setenv("AUDIOMAMBA_CONV_BWD", mode)

    g = torch.Generator(device="cuda").manual_seed(L)
    xz = torch.randn(B, L, 2 * E, generator=g, device="cuda").to(dtype)
    w = (torch.randn(E, 4, generator=g, device="cuda") * 0.5)
    b = torch.randn(E, generator=g, device="cuda")
    gu = torch.randn(B, E, L, generator=g, device="cuda")
    out = []
    for fn, cast in ((causal_conv1d_silu, dtype), (causal_conv1d_silu_ref, torch.float32)):
        leaves = [xz.to(cast).clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()]
        u = fn(leaves[0][..., :E], leaves[1], leaves[2])
        grads = torch.autograd.grad((u.float() * gu).sum(), leaves)
        out.append((u.float(), [gr.float() for gr in grads]))
    (u_t, g_t), (u_r, g_r) = out
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(u_t, u_r, rtol=tol, atol=tol)
    for a, r, name in zip(g_t, g_r, ("dx", "dweight", "dbias"), strict=True):
        scale = r.abs().max().item()
        assert (a - r).abs().max().item() <= tol * max(scale, 1.0) * (10 if name != "dx" else 1), name


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_direct_launch_matches_tritons_own(cplx, monkeypatch):
    """kernels.launch's direct launch of the compiled kernels (the default) gives the outputs and grads of Triton's
    own launch path (AUDIOMAMBA_FAST_LAUNCH=0) on the second call of a shape, when it runs (selective dB/dC are
    atomics, whose order varies: a float32 tolerance)."""
    args = make(2, 64, 16, 1000, cplx=cplx, lti=cplx, seed=3)
    gy = torch.randn(2, 64, 1000, device="cuda")
    monkeypatch.setenv("AUDIOMAMBA_FAST_LAUNCH", "0")
    y0, h0, g0 = grads(kernels.selective_scan, args, gy)
    monkeypatch.setenv("AUDIOMAMBA_FAST_LAUNCH", "1")
    for _ in range(2):  # the first call compiles or looks up; the second launches directly
        y1, h1, g1 = grads(kernels.selective_scan, args, gy)
    assert torch.equal(y1, y0) and torch.equal(h1, h0)
    for a, b in zip(g1, g0, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
