"""Triton causal depthwise Conv1d + SiLU (kernels/triton_conv.py, under TRITON_INTERPRET=1 on CPU)
against the PyTorch definition: output and gradients of x, weight and bias."""

from __future__ import annotations

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


def test_bench_conv_cpu_smoke(capsys):
    from audiomamba.bench.conv import main

    main("cpu")
    out = capsys.readouterr().out
    assert "float32: fwd" in out and "bfloat16: fwd" in out and "rel " in out
