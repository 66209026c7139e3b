"""The U-Net runs on the Triton scan kernels (interpreted on CPU) and matches the reference scan."""

from __future__ import annotations

import pytest
import torch

from audiomamba import kernels
from audiomamba.model import build_model


def reference_and_triton(model, tokens):
    """The model's logits and the grads of mean(logits²) for every parameter, with the reference scan, then Triton's."""
    params = list(model.parameters())
    out = []
    try:
        for backend in ("reference", "triton"):
            kernels.set_backend(backend)
            logits = model(tokens)
            out += [logits, torch.autograd.grad(logits.square().mean(), params)]
    finally:
        kernels.set_backend(None)
    return tuple(out)


@pytest.mark.slow
def test_unet_triton_scan_matches_reference_forward_backward_and_step() -> None:
    torch.manual_seed(0)
    cfg = {
        "d_model": 8,
        "d_state": 4,
        "pool": [2],
        "levels": [{"block": "mamba-s6", "n": 1}],
        "center": {"block": "mamba-s4", "n": 1},
    }
    model = build_model(cfg)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device)
    tokens = torch.randint(0, 256, (1, 8), device=device)
    ref, g_ref, tri, g_tri = reference_and_triton(model, tokens)
    try:
        kernels.set_backend("triton")
        with torch.no_grad():
            state = model.init_state(1, device)
            steps = torch.stack([model.step(tokens[:, t], state)[0] for t in range(8)], dim=1)
    finally:
        kernels.set_backend(None)
    assert (ref - tri).abs().max().item() <= 1e-4
    assert (ref - steps).abs().max().item() <= 1e-4
    for (name, _), a, b in zip(model.named_parameters(), g_ref, g_tri, strict=True):
        assert (a - b).abs().max().item() <= 1e-4 * (1 + a.abs().max().item()), name


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_time_major_xproj_layout_gives_the_same_numbers(backend, monkeypatch) -> None:
    """AUDIOMAMBA_XPROJ_LAYOUT=time (Δ, B, C time-contiguous, no copies in the scan's backward) computes the
    same forward and gradients as the default channel-contiguous views; the scan gets unit-stride Δ, B, C."""
    from audiomamba.errors import ConfigError
    from audiomamba.model.ssm import S6

    torch.manual_seed(0)
    layer = S6(d=8, N=4, dt_rank=2)
    u = torch.randn(2, 8, 12, requires_grad=True)
    z = torch.randn(2, 8, 12)
    runs = {}
    try:
        kernels.set_backend(backend)
        for layout in ("channels", "time"):
            monkeypatch.setenv("AUDIOMAMBA_XPROJ_LAYOUT", layout)
            args = layer.scan_args(u, True)
            strides = {k: args[k].stride(-1) for k in ("delta", "B", "C")}
            y = layer(u, z)
            grads = torch.autograd.grad(y.square().sum(), [u, *layer.parameters()])
            runs[layout] = (y.detach(), grads, strides)
    finally:
        kernels.set_backend(None)
    assert runs["time"][2] == {"delta": 1, "B": 1, "C": 1}
    assert runs["channels"][2]["delta"] == 8  # the default: views of (batch, L, ·)
    assert torch.allclose(runs["time"][0], runs["channels"][0], atol=1e-5, rtol=1e-5)
    for a, b in zip(runs["time"][1], runs["channels"][1], strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    monkeypatch.setenv("AUDIOMAMBA_XPROJ_LAYOUT", "rows")
    with pytest.raises(ConfigError, match="AUDIOMAMBA_XPROJ_LAYOUT='rows'.*channels, time"):
        layer.scan_args(u, True)


def test_lti_unet_on_chunked_scan_matches_reference(monkeypatch) -> None:
    """A U-Net of complex- and real-LTI Mamba blocks with the chunked LTI scan (``AUDIOMAMBA_SCAN_LTI_CHUNK``, the
    interpreter on CPU): logits and every parameter's grad as with the reference scan."""
    torch.manual_seed(0)
    cfg = {"d_model": 8, "d_state": 4, "pool": [2], "levels": [{"block": "mamba-s4", "n": 1}],
           "center": {"block": "mamba-s4-real", "n": 1}}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model(cfg).to(device)
    tokens = torch.randint(0, 256, (2, 40), device=device)
    monkeypatch.setenv("AUDIOMAMBA_SCAN_LTI_CHUNK", "16")
    from audiomamba.kernels import triton_lti_chunk

    calls = []
    real_apply = triton_lti_chunk.LtiChunkFn.apply
    monkeypatch.setattr(triton_lti_chunk.LtiChunkFn, "apply", lambda *a: calls.append(1) or real_apply(*a))
    ref, g_ref, tri, g_tri = reference_and_triton(model, tokens)
    assert len(calls) >= 3  # the level's down and up blocks and the centre's
    assert (ref - tri).abs().max().item() <= 1e-4
    for (name, _), a, b in zip(model.named_parameters(), g_ref, g_tri, strict=True):
        assert (a - b).abs().max().item() <= 1e-4 * (1 + a.abs().max().item()), name
