"""Model config validation, presets, parameter counts and the indivisible-length error."""

from __future__ import annotations

import pytest
import torch

from audiomamba.errors import ConfigError
from audiomamba.model import BLOCK_NAMES, ModelConfig, build_model, list_model_presets, load_model_preset

PAPER = ["youtubemix", "sc09-small", "sc09-large", "sashimi-sc09"]


def meta_count(name: str) -> tuple[int, int]:
    preset = load_model_preset(name)
    with torch.device("meta"):
        model = build_model(preset)
    return model.num_params(), preset["expected_params"]


@pytest.mark.parametrize("name", PAPER)
def test_paper_parameter_counts_within_10_percent(name: str) -> None:
    got, expected = meta_count(name)
    assert abs(got - expected) <= 0.10 * expected, f"{name}: {got} parameters vs paper {expected}"


def test_every_preset_builds_and_has_a_tiny_variant() -> None:
    names = list_model_presets()
    for name in PAPER:
        assert name in names and f"{name}-tiny" in names
    for name in names:
        preset = load_model_preset(name)
        assert isinstance(preset["paper"], str) and preset["paper"]
        got, expected = meta_count(name)
        assert abs(got - expected) <= 0.10 * expected, name
        assert ModelConfig.from_dict(preset["model"]).to_dict()["d_model"] == preset["model"]["d_model"]


def test_tiny_preset_trains_a_step_on_cpu() -> None:
    torch.manual_seed(0)
    model = build_model(load_model_preset("sc09-small-tiny"))
    tokens = torch.randint(0, 256, (2, 64))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        logits = model(tokens)
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 256), tokens[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_unknown_preset_lists_presets() -> None:
    with pytest.raises(ConfigError, match="sc09-small") as err:
        load_model_preset("sc09-smal")
    assert "\n" not in str(err.value)


def test_unknown_key_names_key_and_choices() -> None:
    with pytest.raises(ConfigError, match="d_modle.*d_model") as err:
        ModelConfig.from_dict({"d_modle": 64})
    assert "\n" not in str(err.value)


def test_bad_block_name_lists_blocks() -> None:
    cfg = {"pool": [2], "levels": [{"block": "mamba", "n": 1}]}
    with pytest.raises(ConfigError, match="levels\\[0\\]") as err:
        ModelConfig.from_dict(cfg)
    assert all(b in str(err.value) for b in BLOCK_NAMES)
    with pytest.raises(ConfigError, match="center"):
        ModelConfig.from_dict({"center": {"block": "s5", "n": 1}})


@pytest.mark.parametrize(
    "raw,match",
    [
        ({"pool": [2, 2], "levels": [{"block": "mamba-s6", "n": 1}]}, "levels"),
        ({"d_model": "64"}, "d_model"),
        ({"d_model": 0}, "d_model"),
        ({"center": {"block": "mamba-s6", "n": -1}}, "center.n"),
        ({"center": {"block": "mamba-s6", "m": 1}}, "center.m"),
        ({"s4_d_state": 7}, "s4_d_state"),
        ({"mamba_lti_zoh": 1}, "mamba_lti_zoh"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_values_are_one_line_config_errors(raw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        ModelConfig.from_dict(raw)
    assert "\n" not in str(err.value)


def test_indivisible_length_is_a_clear_error() -> None:
    model = build_model({"d_model": 8, "pool": [4, 4], "levels": [{"n": 0}, {"n": 0}], "center": {"n": 0}})
    with pytest.raises(ConfigError) as err:
        model(torch.zeros(1, 100, dtype=torch.long))
    msg = str(err.value)
    assert "100" in msg and "16" in msg and "96" in msg and "112" in msg and "\n" not in msg
    assert model(torch.zeros(1, 96, dtype=torch.long)).shape == (1, 96, 256)


def test_attention_heads_must_divide_width() -> None:
    cfg = {
        "d_model": 20,
        "pool": [],
        "levels": [],
        "center": {"block": "mha-mlp", "n": 1},
        "attn_head_dim": 6,
    }
    with pytest.raises(ConfigError, match="attn_head_dim"):
        build_model(cfg)


def test_to_dict_round_trips_through_from_dict() -> None:
    for name in PAPER:
        table = load_model_preset(name)["model"]
        cfg = ModelConfig.from_dict(table)
        assert cfg.to_dict() == table
        assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    variant = ModelConfig.from_dict({"pool": [2], "levels": [{"block": "s4-mlp", "n": 2, "n_down": 0}]})
    assert ModelConfig.from_dict(variant.to_dict()) == variant


def test_dropout_acts_in_training_only_and_adds_no_weights() -> None:
    """``dropout`` > 0: two training forwards differ, eval forwards agree and match the model without
    dropout on the same weights (the checkpoint layout is unchanged)."""
    table = {"d_model": 8, "pool": [2], "levels": [{"block": "mamba-s6", "n": 1}],
             "center": {"block": "mha-mlp", "n": 1}}
    torch.manual_seed(0)
    drop = build_model(ModelConfig.from_dict({**table, "dropout": 0.3}))
    plain = build_model(ModelConfig.from_dict(table))
    plain.load_state_dict(drop.state_dict())  # same keys: dropout holds no weights
    x = torch.randint(0, 256, (2, 16))
    drop.train()
    with torch.no_grad():
        assert not torch.equal(drop(x), drop(x))
        drop.eval()
        plain.eval()
        torch.testing.assert_close(drop(x), plain(x))
