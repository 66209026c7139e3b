"""The U-Net runs on the Triton scan kernels (interpreted on CPU) and matches the reference scan."""

from __future__ import annotations

import pytest
import torch

from audiomamba import kernels
from audiomamba.model import build_model


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
    params = list(model.parameters())
    try:
        kernels.set_backend("reference")
        ref = model(tokens)
        g_ref = torch.autograd.grad(ref.square().mean(), params)
        kernels.set_backend("triton")
        tri = model(tokens)
        g_tri = torch.autograd.grad(tri.square().mean(), params)
        with torch.no_grad():
            state = model.init_state(1, device)
            steps = torch.stack([model.step(tokens[:, t], state)[0] for t in range(8)], dim=1)
    finally:
        kernels.set_backend(None)
    assert (ref - tri).abs().max().item() <= 1e-4
    assert (ref - steps).abs().max().item() <= 1e-4
    for (name, _), a, b in zip(model.named_parameters(), g_ref, g_tri, strict=True):
        assert (a - b).abs().max().item() <= 1e-4 * (1 + a.abs().max().item()), name
