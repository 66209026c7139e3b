"""Triton causal depthwise Conv1d + SiLU (kernels/triton_conv.py, under TRITON_INTERPRET=1 on CPU)
against the PyTorch definition: output and gradients of x, weight and bias."""

from __future__ import annotations

import os

import pytest
import torch

triton_conv = pytest.importorskip("audiomamba.kernels.triton_conv")


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("L,E,k", [(1, 3, 4), (70, 37, 4), (130, 8, 2)], ids=["L1", "L70-E37", "L130-k2"])
def test_conv_silu_matches_pytorch(bias, L, E, k):
    g = torch.Generator().manual_seed(L + E)
    xz = torch.randn(2, L, 2 * E, generator=g)  # x is the first half of an in_proj output: strided
    w = torch.randn(E, k, generator=g) * 0.5
    b = torch.randn(E, generator=g) if bias else None
    leaves = [t.clone().requires_grad_() for t in (xz, w)] + ([b.clone().requires_grad_()] if bias else [])
    outs = []
    for fn in (triton_conv.causal_conv1d_silu, triton_conv.causal_conv1d_silu_ref):
        xs, ws = leaves[0][..., :E], leaves[1]
        u = fn(xs, ws, leaves[2] if bias else None)
        gu = torch.randn(u.shape, generator=torch.Generator().manual_seed(5))
        outs.append((u, torch.autograd.grad((u * gu).sum(), leaves)))
    (u_t, g_t), (u_r, g_r) = outs
    assert u_t.shape == (2, E, L) and u_t.is_contiguous()
    torch.testing.assert_close(u_t, u_r, rtol=1e-5, atol=1e-5)
    for a, r in zip(g_t, g_r, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("L,E,k", [(1100, 37, 4), (1, 3, 2), (513, 8, 3), (0, 8, 4)],
                         ids=["L1100-3-chunks", "L1-k2", "L513-k3", "L0"])
def test_split_backward_matches_recompute(monkeypatch, bias, L, E, k):
    """AUDIOMAMBA_CONV_BWD=split (two launches, dpre written once) gives the gradients of the default
    one-launch backward, with L across several programs (512 rows each) and a partial last tile."""
    g = torch.Generator().manual_seed(L + E)
    x = torch.randn(2, L, 2 * E, generator=g)[..., :E]
    w, b = torch.randn(E, k, generator=g) * 0.5, torch.randn(E, generator=g) if bias else None
    du = torch.randn(2, E, L, generator=g)
    out = {}
    for mode in ("recompute", "split"):
        monkeypatch.setenv("AUDIOMAMBA_CONV_BWD", mode)
        out[mode] = triton_conv._conv_backward(du, x, w, b)
    for a, r in zip(out["split"], out["recompute"], strict=True):
        if r is None:
            assert a is None
        else:
            assert a.shape == r.shape and a.dtype == r.dtype
            torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-5)


def test_split_backward_bf16_close_to_float32_reference(monkeypatch):
    """In bfloat16 (training under autocast) the split backward's dpre scratch is bfloat16: its
    gradients stay within bf16 rounding of the float32 PyTorch definition on the same inputs."""
    monkeypatch.setenv("AUDIOMAMBA_CONV_BWD", "split")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 600, 16, generator=g).to(torch.bfloat16)
    w, b = torch.randn(16, 4, generator=g) * 0.5, torch.randn(16, generator=g)
    gu = torch.randn(2, 16, 600, generator=g)
    grads = []
    for fn, xx in ((triton_conv.causal_conv1d_silu, x), (triton_conv.causal_conv1d_silu_ref, x.float())):
        leaves = [xx.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()]
        u = fn(*leaves)
        grads.append(torch.autograd.grad((u.float() * gu).sum(), leaves))
    for a, r, name in zip(*grads, ("dx", "dweight", "dbias"), strict=True):
        assert (a.float() - r).abs().max().item() <= 2e-2 * max(r.abs().max().item(), 1.0), name


def test_conv_bwd_mode_bad_value_is_one_line_error(monkeypatch):
    monkeypatch.setenv("AUDIOMAMBA_CONV_BWD", "fast")
    with pytest.raises(ValueError, match="AUDIOMAMBA_CONV_BWD='fast'.*recompute or split"):
        triton_conv.conv_bwd_mode()


def test_conv_silu_bad_layout_is_one_line_error():
    with pytest.raises(ValueError, match="unit stride along E"):
        triton_conv.causal_conv1d_silu(torch.randn(2, 8, 4).transpose(1, 2), torch.randn(8, 4), None)


def test_mamba_mixer_with_fused_conv_matches_pytorch_conv(monkeypatch):
    """AUDIOMAMBA_FUSED_CONV=1 routes MambaMixer's conv + SiLU through the kernel (forced here on the
    CPU, the scan stays on the reference): same output and parameter gradients as nn.Conv1d."""
    from audiomamba import kernels
    from audiomamba.model import blocks
    from audiomamba.model.ssm import S6

    torch.manual_seed(0)
    mixer = blocks.MambaMixer(8, S6(16, 4, 2), d_conv=4)
    x = torch.randn(2, 37, 8)
    monkeypatch.setattr(blocks, "use_triton", lambda t: True)
    calls = []
    monkeypatch.setattr(blocks, "causal_conv1d_silu", lambda *a: calls.append(1) or triton_conv.causal_conv1d_silu(*a))
    kernels.set_backend("reference")
    try:
        runs = []
        for flag in ("0", "1"):
            monkeypatch.setenv("AUDIOMAMBA_FUSED_CONV", flag)
            mixer.zero_grad()
            y = mixer(x)
            (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
            runs.append((y.detach(), {n: p.grad.clone() for n, p in mixer.named_parameters()}))
    finally:
        kernels.set_backend("auto")
    (y0, g0), (y1, g1) = runs
    assert len(calls) == 1  # the kernel ran with the flag on, and only then
    torch.testing.assert_close(y1, y0, rtol=1e-5, atol=1e-5)
    for n in g0:
        torch.testing.assert_close(g1[n], g0[n], rtol=1e-4, atol=1e-5, msg=n)


def test_bench_conv_cpu_smoke(capsys, monkeypatch):
    from audiomamba.bench.conv import main

    monkeypatch.delenv("AUDIOMAMBA_CONV_BWD", raising=False)
    main("cpu")
    assert "AUDIOMAMBA_CONV_BWD" not in os.environ  # the split row's setting is undone
    out = capsys.readouterr().out
    assert "float32: fwd" in out and "bfloat16: fwd" in out and "rel " in out and "split bwd" in out


# --- the opaque op for torch.compile: audiomamba::causal_conv1d_silu (+ _bwd) --------------------


def _op_args(B=2, L=9, E=5, k=4, bias=True, grad=True, dtype=torch.float32):
    """x a strided (B, L, E) view of a (B, L, 2E) tensor, as MambaMixer hands it over."""
    g = torch.Generator().manual_seed(L + E + k)
    x = torch.randn(B, L, 2 * E, generator=g).to(dtype)[..., :E]
    w, b = torch.randn(E, k, generator=g) * 0.5, torch.randn(E, generator=g) if bias else None
    return [t.requires_grad_(grad) if t is not None else None for t in (x, w, b)]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("L", [0, 9])
def test_opcheck_conv_ops(bias, L):
    """Schema, fake tensors, autograd registration, AOT dispatch (static and dynamic shapes) of the
    forward op and of the backward op, on the CPU in Triton's interpreter (a tiny shape, ~1 s)."""
    x, w, b = _op_args(L=L, bias=bias)
    assert x.stride(1) == 2 * x.shape[2]
    torch.library.opcheck(triton_conv.causal_conv1d_silu_op, (x, w, b))
    du = torch.randn(x.shape[0], x.shape[2], L)
    torch.library.opcheck(triton_conv.causal_conv1d_silu_bwd_op, (du, *_op_args(L=L, bias=bias, grad=False)))


def test_conv_op_fake_shapes_and_dtypes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    for mode in (FakeTensorMode(), None):
        with mode or torch.device("meta"):
            x = torch.empty(2, 7, 10, dtype=torch.bfloat16)[..., :5]
            w, b = torch.empty(5, 4), torch.empty(5, dtype=torch.float64)
            u = triton_conv.causal_conv1d_silu_op(x, w, b)
            dx, dw, db = triton_conv.causal_conv1d_silu_bwd_op(u, x, w, b)
            db_none = triton_conv.causal_conv1d_silu_bwd_op(u, x, w, None)[2]
        assert u.shape == (2, 5, 7) and u.is_contiguous() and u.dtype == torch.bfloat16
        assert dx.shape == (2, 7, 5) and dx.is_contiguous() and dx.dtype == torch.bfloat16
        assert dw.shape == (5, 4) and dw.dtype == torch.float32 and db.shape == (5,) and db.dtype == torch.float64
        assert db_none.shape == (0,)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("L,E,k", [(70, 37, 4), (1, 3, 2), (0, 8, 4)], ids=["L70-E37", "L1-k2", "L0"])
def test_conv_op_grads_match_reference_and_eager(bias, L, E, k):
    """The op's output and gradients (through register_autograd and the backward op) match the
    PyTorch definition, and are bit-identical to the eager autograd Function (the same launches).
    L = 0 (which F.conv1d refuses): an empty output and zero weight and bias gradients."""
    leaves = _op_args(L=L, E=E, k=k, bias=bias)
    leaves = [t for t in leaves if t is not None]
    gu = torch.randn(2, E, L, generator=torch.Generator().manual_seed(1))
    runs = []
    fns = [triton_conv.causal_conv1d_silu_op, triton_conv._ConvSiluFn.apply]
    if L > 0:
        fns.append(triton_conv.causal_conv1d_silu_ref)
    for fn in fns:
        u = fn(leaves[0], leaves[1], leaves[2] if bias else None)
        runs.append((u, torch.autograd.grad((u * gu).sum(), leaves)))
    (u_op, g_op), (u_fn, g_fn) = runs[:2]
    assert u_op.shape == (2, E, L) and u_op.is_contiguous()
    assert g_op[0].shape == (2, L, E) and [g.dtype for g in g_op] == [t.dtype for t in leaves]
    assert torch.equal(u_op, u_fn) and all(torch.equal(a, b) for a, b in zip(g_op, g_fn, strict=True))
    if L == 0:
        assert all(not g.any() for g in g_op[1:])
        return
    u_ref, g_ref = runs[2]
    torch.testing.assert_close(u_op, u_ref, rtol=1e-5, atol=1e-5)
    for a, r in zip(g_op, g_ref, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-4)


def _capturing_aot_eager(graphs):
    """aot_eager that also keeps the forward and backward graphs' code."""
    from torch._dynamo.backends.common import aot_autograd
    from torch._functorch.aot_autograd import make_boxed_func

    def keep(name):
        def compiler(gm, example_inputs):
            graphs.append((name, gm.code))
            return make_boxed_func(gm.forward)

        return compiler

    return aot_autograd(fw_compiler=keep("fw"), bw_compiler=keep("bw"))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_compiled_conv_is_one_graph_with_the_ops_and_matches_eager(bias):
    """torch.compile(fullgraph=True) of a function calling causal_conv1d_silu: no graph breaks, the
    forward op in the forward graph and the backward op in the backward graph, same output and grads."""
    from torch._dynamo.testing import CompileCounterWithBackend

    E = 6
    xz, w = torch.randn(2, 21, 2 * E).requires_grad_(), torch.randn(E, 4).requires_grad_()
    b = torch.randn(E).requires_grad_() if bias else None
    leaves = [t for t in (xz, w, b) if t is not None]

    def f(xz, w, b):
        return triton_conv.causal_conv1d_silu(xz[..., :E], w, b).sin() * xz[..., E:].transpose(1, 2)

    graphs = []
    counter = CompileCounterWithBackend(_capturing_aot_eager(graphs))
    try:
        runs = []
        for fn in (f, torch.compile(f, backend=counter, fullgraph=True, dynamic=False)):
            y = fn(xz, w, b)
            runs.append((y, torch.autograd.grad(y.square().sum(), leaves)))
    finally:
        torch._dynamo.reset()
    assert counter.frame_count == 1
    code = dict(graphs)
    assert "audiomamba.causal_conv1d_silu.default" in code["fw"]
    assert "audiomamba.causal_conv1d_silu_bwd.default" in code["bw"]
    (y_e, g_e), (y_c, g_c) = runs
    torch.testing.assert_close(y_c, y_e, rtol=1e-6, atol=1e-6)
    for a, r in zip(g_c, g_e, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-6)


def test_compiled_mamba_mixer_uses_the_fused_conv(monkeypatch):
    """MambaMixer under torch.compile(fullgraph=True) takes the fused conv (the opaque op) when it is
    on, and matches the eager mixer (forced onto the kernel on the CPU; the scan is the reference)."""
    from torch._dynamo.testing import CompileCounterWithBackend

    from audiomamba import kernels
    from audiomamba.model import blocks
    from audiomamba.model.ssm import S6

    torch.manual_seed(0)
    mixer = blocks.MambaMixer(8, S6(16, 4, 2), d_conv=4)
    x = torch.randn(2, 37, 8)
    monkeypatch.setattr(blocks, "use_triton", lambda t: True)
    monkeypatch.setenv("AUDIOMAMBA_FUSED_CONV", "1")
    counter = CompileCounterWithBackend("aot_eager")
    kernels.set_backend("reference")
    try:
        runs = []
        for module in (mixer, torch.compile(mixer, backend=counter, fullgraph=True, dynamic=False)):
            mixer.zero_grad()
            y = module(x)
            (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
            runs.append((y.detach(), {n: p.grad.clone() for n, p in mixer.named_parameters()}))
    finally:
        kernels.set_backend("auto")
        torch._dynamo.reset()
    assert counter.frame_count == 1
    assert "\n".join(g.code for g in counter.graphs).count("audiomamba.causal_conv1d_silu") == 1
    (y_e, g_e), (y_c, g_c) = runs
    torch.testing.assert_close(y_c, y_e, rtol=1e-5, atol=1e-5)
    for n in g_e:
        torch.testing.assert_close(g_c[n], g_e[n], rtol=1e-4, atol=1e-5, msg=n)
