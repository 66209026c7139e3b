"""The fully-LTI scan by chunks on tensor cores (kernels/triton_lti_chunk.py) against the float64 sequential reference.

On CPU the kernels run in Triton's interpreter (tests/conftest.py). Forward y, last state and every gradient for
complex and real A, with and without D / z / delta_bias / softplus, L a multiple of a block, not a multiple of a
chunk and shorter than one chunk, N padded to 16; bf16 inputs; the dispatch by ``AUDIOMAMBA_SCAN_LTI_CHUNK``; the
opaque op that ``torch.compile`` calls. With CUDA the same tests run the compiled kernels (tolerances for three-TF32
products), and the GPU-only ones add a longer L and every chunk length; without it those skip.
"""

from __future__ import annotations

import math

import pytest
import torch
from audiomamba.kernels.errors import KernelError
from audiomamba.kernels.reference import selective_scan_assoc, selective_scan_ref
from audiomamba.kernels.tuning import ScanConfig, lti_warps, pick_config

from audiomamba import kernels

triton_scan = pytest.importorskip("audiomamba.kernels.triton_scan")
lti = pytest.importorskip("audiomamba.kernels.triton_lti_chunk")

#: where the tests run: the interpreter on CPU, the compiled kernels with CUDA
DEV = "cuda" if torch.cuda.is_available() else "cpu"
#: agreement with float64 and between kernel paths: exact float32 in the interpreter, three-TF32 products compiled
TOL, SAME = (1e-5, 1e-6) if DEV == "cpu" else (1e-4, 1e-5)


def make(batch, d, N, L, *, cplx, device=DEV, seed=0):
    """S4D-like LTI arguments: Δ (d,), A (d, N) with Re A < 0, B and C (d, N); D, z, delta_bias."""
    g = torch.Generator(device=device).manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, device=device)

    delta = torch.rand(d, generator=g, device=device) * 0.2 + 0.02
    if cplx:
        A = torch.complex(-0.2 - torch.rand(d, N, generator=g, device=device),
                          math.pi * torch.arange(N, device=device).float().expand(d, N))
        B, C = torch.complex(r(d, N), r(d, N)), torch.complex(r(d, N), r(d, N)) * 0.5
    else:
        A = -0.2 - torch.rand(d, N, generator=g, device=device)
        B, C = r(d, N), r(d, N) * 0.5
    return dict(u=r(batch, d, L), delta=delta, A=A, B=B, C=C, D=r(d), z=r(batch, d, L), delta_bias=r(d) * 0.1)


def run(fn, args, opts, gy, dtype=torch.float32):
    """y, h_last and the grads of every given input through ``fn`` (the scan's signature)."""
    names = ["u", "delta", "A", "B", "C"] + [k for k in ("D", "z", "delta_bias") if k in opts]
    leaves = {k: args[k].detach().clone().requires_grad_() for k in names}
    cast = {k: v.to(dtype) if k in ("u", "z") else v for k, v in leaves.items()}
    y, h = fn(**cast, delta_softplus="softplus" in opts, return_last_state=True)
    grads = torch.autograd.grad((y.to(gy.dtype) * gy.to(y.device)).sum(), list(leaves.values()))
    return y, h, dict(zip(names, grads, strict=True))


def chunked(T=16, rows=16):
    def fn(**kw):
        return triton_scan.selective_scan_triton(**kw, config=ScanConfig(lti_chunk=T, lti_rows=rows, lti_warps=4))
    return fn


def _f64(kw: dict) -> dict:
    return {k: (v.to(torch.complex128) if v.is_complex() else v.double()) if torch.is_tensor(v) else v
            for k, v in kw.items()}


def reference64(**kw):
    """The float64 sequential reference."""
    return selective_scan_ref(**_f64(kw))


def assoc64(**kw):
    """The float64 associative-scan reference (a log-depth scan: fast enough on a GPU at L in the thousands)."""
    return selective_scan_assoc(**_f64(kw))


def assert_close(got, ref, rtol, what):
    err = (got.to(ref.dtype) - ref).abs().max().item()
    scale = ref.abs().max().item()
    assert err <= rtol * scale + 1e-6, f"{what}: error {err:.3g} against scale {scale:.3g}"


ALL = ("D", "z", "delta_bias", "softplus")


@pytest.mark.parametrize("cplx", [True, False], ids=["complex", "real"])
@pytest.mark.parametrize("L,opts", [(512, ALL), (300, ALL), (37, ALL), (1, ALL), (300, ())],
                         ids=["blocks", "ragged", "short", "one-step", "bare"])
def test_chunked_lti_matches_float64_reference(cplx, L, opts):
    """Two blocks of 16 chunks of 16 steps (512), a ragged last chunk and block (300), less than one block (37), one
    step, and no D / z / bias / softplus; N = 4 padded to 16 states."""
    args = make(2, 3, 4, L, cplx=cplx)
    gy = torch.randn(2, 3, L, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y, h, g = run(chunked(), args, opts, gy)
    y_r, h_r, g_r = run(reference64, args, opts, gy)
    assert y.dtype == torch.float32 and h.shape == h_r.shape
    assert_close(y, y_r, TOL, "y")
    assert_close(h, h_r, TOL, "h_last")
    for name in g_r:
        assert_close(g[name], g_r[name], TOL, f"grad {name}")


def test_chunked_lti_rows_and_chunk_agree():
    """Blocks of 32 chunks and chunks of 32 steps give the same numbers as 16 by 16 (over three blocks' worth of L)."""
    args = make(1, 2, 16, 1100, cplx=True)
    gy = torch.randn(1, 2, 1100, generator=torch.Generator().manual_seed(2))
    base = run(chunked(16, 16), args, ALL, gy)
    for T, rows in ((32, 16), (16, 32)):
        other = run(chunked(T, rows), args, ALL, gy)
        for a, b in zip((other[0], other[1], *other[2].values()), (base[0], base[1], *base[2].values()), strict=True):
            assert_close(a, b, TOL, f"T={T} rows={rows}")


def test_chunked_lti_strided_inputs():
    """u a channel slice of a wider tensor and z a transposed view (as the Mamba block hands them over): the same y and
    grads as from contiguous copies."""
    args = make(2, 3, 4, 150, cplx=True)
    gy = torch.randn(2, 3, 150, generator=torch.Generator().manual_seed(4))
    base = run(chunked(), args, ALL, gy)
    wide = torch.cat([args["u"], torch.randn(2, 2, 150, device=DEV)], 1)
    strided = dict(args, u=wide[:, :3], z=args["z"].transpose(1, 2).contiguous().transpose(1, 2))
    assert not strided["u"].is_contiguous() and not strided["z"].is_contiguous()

    def fn(**kw):
        kw = {k: v[:, :3] if k == "u" and v.shape[1] == 5 else v for k, v in kw.items()}
        return chunked()(**kw)

    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]
    leaves = {k: strided[k].detach().requires_grad_() for k in names}
    leaves["u"] = wide.detach().requires_grad_()
    y, h = fn(**leaves, delta_softplus=True, return_last_state=True)
    grads = torch.autograd.grad((y.double() * gy.to(DEV)).sum(), list(leaves.values()))
    got = dict(zip(names, grads, strict=True))
    assert_close(y, base[0], SAME, "y")
    assert_close(got["u"][:, :3], base[2]["u"], SAME, "grad u")
    assert got["u"][:, 3:].abs().max() == 0
    for name in names[1:]:
        assert_close(got[name], base[2][name], SAME, f"grad {name}")


def test_chunked_lti_bf16_inputs():
    """bf16 u and z (the training dtype): y in bf16, close to the float32 result; parameter grads in float32."""
    args = make(2, 2, 8, 200, cplx=True)
    gy = torch.randn(2, 2, 200, generator=torch.Generator().manual_seed(3))
    y32, h32, g32 = run(chunked(), args, ALL, gy)
    y16, h16, g16 = run(chunked(), args, ALL, gy, dtype=torch.bfloat16)
    assert y16.dtype == torch.bfloat16 and g16["u"].dtype == torch.float32 and g16["A"].dtype == torch.complex64
    assert_close(y16.float(), y32, 2e-2, "y")
    assert_close(h16, h32, 2e-2, "h_last")
    for name in g32:
        assert_close(g16[name], g32[name], 3e-2, f"grad {name}")


def test_env_knob_routes_lti_calls_only(monkeypatch):
    """``AUDIOMAMBA_SCAN_LTI_CHUNK`` sends fully-LTI calls to the chunked kernels (their autograd node) and leaves
    selective ones on the scan; a bad value is a one-line KernelError."""
    monkeypatch.setattr(kernels.backend, "_override", "triton")
    monkeypatch.setenv("AUDIOMAMBA_SCAN_LTI_CHUNK", "16")
    args = {k: v.requires_grad_() for k, v in make(1, 2, 4, 40, cplx=True).items()}
    y = kernels.selective_scan(**args, delta_softplus=True)
    assert type(y.grad_fn).__name__ == "LtiChunkFnBackward"
    u, delta = args["u"], args["delta"]
    sel = kernels.selective_scan(u, delta[None, :, None].expand(1, 2, 40).contiguous(), args["A"], args["B"],
                                 args["C"])
    assert type(sel.grad_fn).__name__ == "SelectiveScanFnBackward"
    assert pick_config(1, 2, 4, 40, True).lti_chunk == 16
    monkeypatch.setenv("AUDIOMAMBA_SCAN_LTI_MAXNREG", "168")
    assert pick_config(1, 2, 4, 40, True).lti_maxnreg == 168
    # warps by the inputs' dtype unless set (2 for 16-bit, 4 for float32: measured on an H200)
    cfg = pick_config(1, 2, 4, 40, True)
    assert [lti_warps(cfg, t, bwd) for t in (torch.float32, torch.bfloat16) for bwd in (False, True)] == [4, 4, 2, 2]
    monkeypatch.setenv("AUDIOMAMBA_SCAN_LTI_WARPS_BWD", "8")
    cfg = pick_config(1, 2, 4, 40, True)
    assert (lti_warps(cfg, torch.bfloat16, False), lti_warps(cfg, torch.bfloat16, True)) == (2, 8)
    monkeypatch.delenv("AUDIOMAMBA_SCAN_LTI_WARPS_BWD")
    for name, bad in (("AUDIOMAMBA_SCAN_LTI_CHUNK", "48"), ("AUDIOMAMBA_SCAN_LTI_MAXNREG", "100")):
        monkeypatch.setenv(name, bad)
        with pytest.raises(KernelError, match=name):
            pick_config(1, 2, 4, 40, True)
        monkeypatch.delenv(name)


def test_compiled_graph_runs_the_chunked_op(monkeypatch):
    """Under ``torch.compile`` (the aot_eager backend: Dynamo and AOTAutograd, no C++ compile) a fully-LTI scan traces
    the operators' builder and calls the opaque chunked op (kernels/scan_op.py), whose fake shapes, autograd and
    backward op give the same y, last state and grads as the eager Function."""
    from audiomamba.kernels import scan_op

    monkeypatch.setattr(kernels.backend, "_override", "triton")
    monkeypatch.setenv("AUDIOMAMBA_SCAN_LTI_CHUNK", "16")
    args = make(1, 2, 4, 70, cplx=True)
    order = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
    calls = []
    real_op = scan_op.lti_chunk_op
    monkeypatch.setattr(scan_op, "lti_chunk_op", lambda *a: calls.append(1) or real_op(*a))

    def scan(*xs):
        return kernels.selective_scan(*xs, delta_softplus=True, return_last_state=True)

    results = []
    for fn in (scan, torch.compile(scan, backend="aot_eager", fullgraph=True)):
        leaves = [args[k].clone().requires_grad_() for k in order]
        y, h = fn(*leaves)
        gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(5)).to(y.device)
        results.append((y, h, torch.autograd.grad((y * gy).sum(), leaves)))
    assert calls, "the compiled graph did not call the chunked op"
    (y_e, h_e, g_e), (y_c, h_c, g_c) = results
    assert_close(y_c, y_e, SAME, "y")
    assert_close(h_c, h_e, SAME, "h_last")
    for name, a, b in zip(order, g_c, g_e, strict=True):
        assert_close(a, b, SAME, f"grad {name}")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cplx,dtype,T", [
    (True, torch.float32, 64), (True, torch.bfloat16, 64), (False, torch.float32, 64), (False, torch.bfloat16, 64),
    (True, torch.float32, 32), (True, torch.float32, 16),
], ids=["complex-fp32", "complex-bf16", "real-fp32", "real-bf16", "complex-fp32-T32", "complex-fp32-T16"])
def test_gpu_chunked_lti_matches_float64(cplx, dtype, T):
    """Compiled kernels (tf32x3 products for float32, tf32 for bf16) at a U-Net-like shape and a ragged L, against the
    float64 associative reference (each case compiles its own forward and backward)."""
    L = 4099
    args = make(2, 64, 16, L, cplx=cplx, device="cuda")
    gy = torch.randn(2, 64, L, device="cuda", dtype=torch.float64)
    cfg = ScanConfig(lti_chunk=T)

    def fn(**kw):
        return triton_scan.selective_scan_triton(**kw, config=cfg)

    y, h, g = run(fn, args, ALL, gy, dtype=dtype)
    y_r, h_r, g_r = run(assoc64, {k: v.to(dtype) if k in ("u", "z") else v for k, v in args.items()}, ALL, gy)
    low = dtype == torch.bfloat16
    assert_close(y, y_r, 8e-3 if low else 1e-4, "y")
    assert_close(h, h_r, 1e-3 if low else 1e-4, "h_last")
    for name in g_r:
        assert_close(g[name], g_r[name], 8e-3 if low else 2e-4, f"grad {name}")


def test_matmul_precision_follows_input_dtype_and_torch_tf32():
    """float32 inputs get three-TF32 products unless PyTorch's float32 matmuls may use TF32; 16-bit inputs get TF32."""
    matmul = torch.backends.cuda.matmul
    before = matmul.allow_tf32
    try:
        matmul.allow_tf32 = False
        assert lti.precision(torch.float32) == "tf32x3"
        assert lti.precision(torch.bfloat16) == lti.precision(torch.float16) == "tf32"
        matmul.allow_tf32 = True  # (pytest's monkeypatch cannot undo this attribute: it is computed, not stored)
        assert lti.precision(torch.float32) == "tf32"
    finally:
        matmul.allow_tf32 = before
