"""Causality: perturbing input t leaves every output before t unchanged (docs/ARCHITECTURE.md §5.1)."""

from __future__ import annotations

import pytest
import torch

from audiomamba.model import BLOCK_NAMES, ModelConfig, build_model, make_block
from audiomamba.model.unet import DownPool, UpPool

SMALL = {"d_model": 16, "d_state": 4, "s4_d_state": 8, "attn_head_dim": 8}


#: blocks whose CPU path is a causal convolution by FFT (LTI scans): causal up to float rounding
#: (~1e-7), far below what a real leak (a wrong shift or padding) changes (~1e-1)
FFT_BLOCKS = ("mamba-s4", "mamba-s4-real", "s4-mlp")


def assert_causal(fn, x: torch.Tensor, x_perturbed: torch.Tensor, t: int, atol: float = 0.0) -> None:
    with torch.no_grad():
        a, b = fn(x), fn(x_perturbed)
    leak = (a[:, :t] - b[:, :t]).abs().max().item() if t else 0.0
    assert leak <= atol, f"output before {t} changed (by {leak:.2e})"
    assert (a[:, t:] - b[:, t:]).abs().max() > 1e-6, f"perturbing {t} changed nothing after it"


@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_block_is_causal(name: str) -> None:
    torch.manual_seed(0)
    blk = make_block(name, 16, ModelConfig.from_dict(SMALL)).eval()
    x = torch.randn(2, 12, 16)
    for t in (0, 5, 11):
        y = x.clone()
        y[:, t] += torch.randn(2, 16)
        assert_causal(blk, x, y, t, 1e-5 if name in FFT_BLOCKS else 0.0)


@pytest.mark.parametrize("pool", [[4], [2, 3]], ids=["1-level", "2-levels"])
@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_unet_is_causal(name: str, pool: list[int]) -> None:
    torch.manual_seed(0)
    cfg = {
        **SMALL,
        "pool": pool,
        "levels": [{"block": name, "n": 1}] * len(pool),
        "center": {"block": name, "n": 1},
    }
    model = build_model(cfg).eval()
    L = 24
    tokens = torch.randint(0, 256, (1, L))
    # the first and last step of a pooling group and of a coarse group, and one in the middle
    for t in (0, 3, 5, 6, 13, 23):
        other = tokens.clone()
        other[:, t] = (other[:, t] + 97) % 256
        assert_causal(model, tokens, other, t, 1e-5 if name in FFT_BLOCKS else 0.0)


def test_uppool_shift_is_one_pooled_step() -> None:
    torch.manual_seed(0)
    down, up = DownPool(8, 4, 2), UpPool(16, 4, 2)
    x = torch.randn(1, 16, 8)
    y = up(down(x))
    assert torch.equal(y[:, :4], torch.zeros_like(y[:, :4]))  # the shifted-in first pooled step
    x2 = x.clone()
    x2[:, 3] += 1.0  # last input of pooled step 0: first visible at full-rate step 4
    y2 = up(down(x2))
    assert torch.equal(y[:, :4], y2[:, :4]) and not torch.equal(y[:, 4:8], y2[:, 4:8])
