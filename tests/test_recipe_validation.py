"""Recipe files: validation messages, --set overrides, name lookup, the Table 14 schedule."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from audiomamba.errors import ConfigError
from audiomamba.recipe import (
    find_recipe,
    list_recipes,
    load_recipe,
    parse_value,
    recipe_from_dict,
)


def _write(tmp_path: Path, text: str, name: str = "r.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


BASE = """
[data]
kind = "sc09"
root = "x"
[model]
preset = "sc09-small-tiny"
"""


def test_unknown_key_names_key_file_and_suggests(tmp_path):
    p = _write(tmp_path, BASE + "[optim]\nlrr = 0.1\n")
    with pytest.raises(ConfigError) as ei:
        load_recipe(p)
    msg = str(ei.value)
    assert "'optim.lrr'" in msg and str(p) in msg and "did you mean 'lr'" in msg
    assert "\n" not in msg


def test_unknown_section_suggests(tmp_path):
    p = _write(tmp_path, BASE + "[trian]\nsteps = 3\n")
    with pytest.raises(ConfigError, match=r"\[trian\].*did you mean 'train'"):
        load_recipe(p)


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ('[data]\nbatch_size = "big"\n', "data.batch_size"),
        ("[data]\nbatch_size = 0\n", "data.batch_size"),
        ('[data]\nkind = "librispeech"\n', "data.kind"),
        ("[schedule]\nwarmup = 1.5\n", "schedule.warmup"),
        ('[train]\ncompile_mode = "turbo"\n', "train.compile_mode"),
        ("[data]\naugment_gain_db = -1\n", "data.augment_gain_db"),
        ("[optim]\nbetas = [0.9]\n", "optim.betas"),
        ("[optim]\nlr = true\n", "optim.lr"),
        ("[train]\nsteps = 2.5\n", "train.steps"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(tmp_path, table, needle):
    raw = tomllib.loads(BASE)
    for sec, vals in tomllib.loads(table).items():
        raw.setdefault(sec, {}).update(vals)
    with pytest.raises(ConfigError) as ei:
        recipe_from_dict(raw, source="mine.toml", check_model=False)
    assert needle in str(ei.value) and "mine.toml" in str(ei.value)
    assert "\n" not in str(ei.value)


def test_set_overrides_are_typed_and_located(tmp_path):
    p = _write(tmp_path, BASE)
    r = load_recipe(p, ["optim.lr=1e-3", "train.steps=7", "train.bf16=false", "data.root=/some/where"])
    assert r.optim.lr == 1e-3 and isinstance(r.optim.lr, float)
    assert r.train.steps == 7 and r.train.bf16 is False and r.data.root == "/some/where"
    with pytest.raises(ConfigError, match=r"'train.steps' in --set train.steps=abc"):
        load_recipe(p, ["train.steps=abc"])
    with pytest.raises(ConfigError, match="did you mean 'eval_every'"):
        load_recipe(p, ["train.eval_evry=3"])
    with pytest.raises(ConfigError, match="no '='"):
        load_recipe(p, ["train.steps"])


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("2e-3") == 2e-3 and parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2] and parse_value("mamba-s6") == "mamba-s6"


def test_unknown_recipe_lists_close_names():
    with pytest.raises(ConfigError, match="did you mean .*sc09-mamba"):
        find_recipe("sc09-mamb")
    with pytest.raises(ConfigError, match="not found"):
        find_recipe("nowhere/x.toml")


def test_extends_merges_and_detects_cycles(tmp_path):
    _write(tmp_path, BASE + "[train]\nsteps = 11\nseed = 4\n", "base.toml")
    child = _write(tmp_path, '[meta]\nextends = "' + str(tmp_path / "base.toml") + '"\n[train]\nsteps = 5\n', "child.toml")
    r = load_recipe(child)
    assert (r.train.steps, r.train.seed, r.data.kind) == (5, 4, "sc09")
    _write(tmp_path, '[meta]\nextends = "' + str(tmp_path / "b.toml") + '"\n', "a.toml")
    _write(tmp_path, '[meta]\nextends = "' + str(tmp_path / "a.toml") + '"\n', "b.toml")
    with pytest.raises(ConfigError, match="cycle"):
        load_recipe(tmp_path / "a.toml")


def test_seqlen_recipes_follow_table14():
    from audiomamba.data import SEQLEN_SCHEDULE

    names = [n for n in list_recipes() if n.startswith("youtubemix-seqlen-")]
    got = sorted((load_recipe(n).data.sample_len, load_recipe(n).data.batch_size) for n in names)
    assert got == sorted(SEQLEN_SCHEDULE)


def _count_params(recipe) -> int:
    import torch

    from audiomamba.model import build_model

    with torch.device("meta"):  # count without allocating or initialising weights
        model = build_model(recipe.model_config())
    return sum(p.numel() for p in model.parameters())


def test_every_shipped_recipe_loads_and_paper_sizes_match():
    names = list_recipes()
    assert {"youtubemix-mamba-s6", "sc09-mamba", "sc09-mamba-large", "sc09-sashimi", "sc09-mamba-tiny",
            "youtubemix-mamba-s6-tiny"} <= set(names)
    assert sum(n.startswith("sc09-outer-") and not n.endswith("-tiny") for n in names) == 6
    blocks_seen = set()
    for name in names:
        r = load_recipe(name)
        cfg = r.model_config()
        blocks_seen |= {lvl["block"] for lvl in cfg["levels"]} | {cfg["center"]["block"]}
        if r.meta.expected_params:
            n = _count_params(r)
            assert abs(n - r.meta.expected_params) <= 0.1 * r.meta.expected_params, (name, n)
        if name.endswith("-tiny"):
            assert _count_params(r) < 200_000, name
    assert blocks_seen == {"mamba-s6", "mamba-s4", "mamba-s4-real", "s4-mlp", "mha-mlp"}
    tiny_blocks = set()
    for name in names:
        if name.endswith("-tiny"):
            cfg = load_recipe(name).model_config()
            tiny_blocks |= {lvl["block"] for lvl in cfg["levels"]} | {cfg["center"]["block"]}
    assert tiny_blocks == blocks_seen


def test_block_shorthands_and_model_overrides(tmp_path):
    r = load_recipe("youtubemix-outer-s4-inner-s6")
    cfg = r.model_config()
    assert [lvl["block"] for lvl in cfg["levels"]] == ["mamba-s4", "mamba-s6"]
    assert cfg["center"]["block"] == "mamba-s6" and [lvl["n"] for lvl in cfg["levels"]] == [3, 3]
    r = load_recipe("sc09-mamba-tiny", ["model.d_model=24", "model.center_block=mha-mlp"])
    assert r.model_config()["d_model"] == 24 and r.model_config()["center"]["block"] == "mha-mlp"
    with pytest.raises(ConfigError, match="did you mean 'd_model'"):
        load_recipe("sc09-mamba-tiny", ["model.d_modle=24"])
    with pytest.raises(ConfigError, match="'model.d_model'.*expected int"):
        load_recipe("sc09-mamba-tiny", ["model.d_model=wide"])
    with pytest.raises(ConfigError, match="did you mean 'mamba-s6'"):
        load_recipe("sc09-mamba-tiny", ["model.center_block=mamba-s7"])
    with pytest.raises(ConfigError, match="has 2 levels"):
        load_recipe("sc09-mamba-tiny", ['model.level_blocks=["mamba-s6"]'])


def test_resolved_recipe_round_trips_through_toml(tmp_path):
    r = load_recipe("youtubemix-outer-s4-inner-s6-tiny", ["optim.lr=1e-3"])
    p = tmp_path / "resolved.toml"
    p.write_text(r.to_toml())
    again = load_recipe(p)
    assert again.to_dict() == r.to_dict() and again.model_config() == r.model_config()


def test_seqlen_variant_helper():
    from audiomamba.recipe import seqlen_variant

    v = seqlen_variant(load_recipe("youtubemix-mamba-s4"), 61440)
    assert (v.data.sample_len, v.data.batch_size) == (61440, 16) and v.name == "youtubemix-mamba-s4-seqlen-61440"
    with pytest.raises(ConfigError, match="Table 14"):
        seqlen_variant(load_recipe("youtubemix-mamba-s4"), 1000)


def test_one_checker_for_every_config_value() -> None:
    """Recipe sections, model overrides and ModelConfig share one value checker and one message."""
    from audiomamba.model import ModelConfig

    messages = []
    for make in (lambda: load_recipe("sc09-mamba", ["train.steps='x'"]),
                 lambda: load_recipe("sc09-mamba", ["model.d_model='x'"]),
                 lambda: ModelConfig.from_dict({"d_model": "x"})):
        with pytest.raises(ConfigError) as err:
            make()
        messages.append(str(err.value))
    assert all(re.search(r"bad value for '[\w.]+' in .*: expected int, got 'x'", m) for m in messages), messages
    assert load_recipe("sc09-mamba", ["model.dt_min=1"]).model_config()["dt_min"] == 1.0  # int -> float
