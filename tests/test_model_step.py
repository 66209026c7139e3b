"""Step mode reproduces the parallel forward (docs/ARCHITECTURE.md §5.3), block by block and for whole U-Nets."""

from __future__ import annotations

import pytest
import torch
from step_helpers import pooling_positions, step_as_replayed

from audiomamba.model import BLOCK_NAMES, ModelConfig, build_model, make_block

SMALL = {"d_model": 16, "d_state": 4, "s4_d_state": 8, "attn_head_dim": 8}


def tiny_cfg(pool: list[int], levels: list[str], center: str, n: int = 1, **kw) -> dict:
    return {
        **SMALL,
        "pool": pool,
        "levels": [{"block": b, "n": n, **kw} for b in levels],
        "center": {"block": center, "n": n},
    }


def run_steps(model, tokens: torch.Tensor) -> torch.Tensor:
    state = model.init_state(tokens.shape[0], tokens.device)
    return torch.stack([model.step(tokens[:, t], state)[0] for t in range(tokens.shape[1])], dim=1)


@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_block_step_matches_forward(name: str) -> None:
    torch.manual_seed(0)
    blk = make_block(name, 16, ModelConfig.from_dict(SMALL)).eval()
    x = torch.randn(2, 10, 16)
    with torch.no_grad():
        y = blk(x)
        state = blk.init_state(2, "cpu")
        ys = torch.stack([blk.step(x[:, t], state)[0] for t in range(10)], dim=1)
    assert (y - ys).abs().max().item() <= 1e-4
    assert y.abs().max() > 1e-3  # a dead block would pass trivially


@pytest.mark.parametrize(
    "pool,levels,center,extra",
    [
        ([4], ["mamba-s6"], "mamba-s6", {}),
        ([2, 3], ["mamba-s6", "s4-mlp"], "mha-mlp", {}),
        ([3, 2], ["mamba-s4", "mamba-s4-real"], "mamba-s6", {}),
        ([2, 2], ["s4-mlp", "mha-mlp"], "mamba-s4", {"n_down": 0}),
        ([2, 2, 2], ["mamba-s6", "mamba-s4", "s4-mlp"], "mamba-s4-real", {}),
    ],
)
def test_unet_step_matches_forward(pool, levels, center, extra) -> None:
    torch.manual_seed(1)
    model = build_model(tiny_cfg(pool, levels, center, **extra)).eval()
    period = model.config.pool_product
    L = period * max(3, -(-24 // period))  # at least 3 pooling periods
    tokens = torch.randint(0, 256, (2, L))
    with torch.no_grad():
        par = model(tokens)
        seq = run_steps(model, tokens)
    assert par.shape == seq.shape == (2, L, 256)
    err = (par - seq).abs().max().item()
    assert err <= 1e-4, f"step mode differs from forward by {err}"


def test_unet_step_state_counts_steps() -> None:
    model = build_model(tiny_cfg([2], ["mamba-s6"], "mamba-s6")).eval()
    state = model.init_state(3, "cpu")
    with torch.no_grad():
        for _ in range(5):
            logits, state = model.step(torch.full((3,), 128), state)
    assert logits.shape == (3, 256) and state["t"] == 5


def test_preallocated_kv_cache_matches_forward_and_guards_overflow() -> None:
    """reserve_cache keeps already cached steps, gives fixed shapes, and equals the parallel forward."""
    torch.manual_seed(0)
    model = build_model({"d_model": 16, "pool": [2], "levels": [{"block": "mha-mlp", "n": 1}],
                         "center": {"block": "mha-mlp", "n": 1}}).eval()
    tokens = torch.randint(0, 256, (2, 12))
    with torch.no_grad():
        ref = model(tokens)
        state = model.init_state(2)
        outs = [model.step(tokens[:, t], state)[0] for t in range(3)]  # growing caches first
        model.reserve_cache(state, 9)
        cache = state["body"]["down"][0][0]
        shape = cache["k"].shape
        outs += [model.step(tokens[:, t], state)[0] for t in range(3, 12)]
        assert cache["k"].shape == shape == (2, cache["k"].shape[1], 12, cache["k"].shape[3])
        assert int(cache["n"]) == 12
        assert (torch.stack(outs, 1) - ref).abs().max() < 1e-5
        with pytest.raises((IndexError, RuntimeError)):
            model.step(tokens[:, 0], state)  # past the reserved length


def test_frozen_discretization_follows_the_parameters() -> None:
    """The fused step's inputs come from the layer's one discretization(), cached for generation
    and recomputed as soon as a parameter changes (e.g. a checkpoint is loaded)."""
    from audiomamba.model.ssm import S6, S4Complex

    for layer in (S6(8, 4, 2), S4Complex(8, 4, zoh=True)):
        with torch.no_grad():
            first = layer.frozen_discretization()
            assert layer.frozen_discretization() is first  # cached
            torch.testing.assert_close(first["A"], layer.discretization()["A"])
            param = layer.A_log if isinstance(layer, S6) else layer.A_re_log
            param.add_(0.5)
            again = layer.frozen_discretization()
            assert again is not first
            torch.testing.assert_close(again["A"], layer.discretization()["A"])
        assert layer.frozen_discretization()["A"].requires_grad  # under autograd: never cached


@pytest.mark.parametrize(
    "pool,levels,center",
    [
        ([2, 3], ["mamba-s6", "s4-mlp"], "mha-mlp"),
        ([3, 2], ["mamba-s4", "mamba-s4-real"], "mamba-s6"),
        ([2, 2, 2], ["mamba-s6", "mamba-s4", "s4-mlp"], "mamba-s4-real"),
    ],
)
def test_shifted_pools_replayed_at_a_fixed_phase_give_the_same_logits(pool, levels, center) -> None:
    """The sub-period CUDA graphs (audiomamba.generate.stepper.graph_span) run each sub-period with the ops captured at
    the first sub-period of its depth: with the inner pooling buffers in shift mode that gives bit-identical logits
    to plain stepping (and so to the parallel forward)."""
    torch.manual_seed(2)
    model = build_model(tiny_cfg(pool, levels, center)).eval()
    period = model.config.pool_product
    tokens = torch.randint(0, 256, (2, 2 * period + pool[0]))  # ends mid-period
    with torch.no_grad():
        plain = run_steps(model, tokens)
        state = model.init_state(2, "cpu")
        model.reserve_cache(state, tokens.shape[1])
        replayed = step_as_replayed(model, tokens, state)
        par = model(tokens[:, :2 * period])
    assert torch.equal(plain, replayed)
    assert (par - replayed[:, :2 * period]).abs().max().item() <= 1e-4


def test_set_phase_gives_the_positions_of_plain_stepping() -> None:
    model = build_model(tiny_cfg([2, 3, 2], ["mamba-s6"] * 3, "mamba-s6")).eval()
    state = model.init_state(1, "cpu")
    for t in range(1, 2 * model.config.pool_product + 3):
        with torch.no_grad():
            model.step(torch.full((1,), 128), state)
        fresh = model.init_state(1, "cpu")
        model.set_phase(fresh, t)
        assert pooling_positions(fresh) == pooling_positions(state), t
    assert pooling_positions(state) != [0] * 6  # the check above saw non-zero phases
