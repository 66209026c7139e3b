"""``python -m audiomamba.bench.step_tiles``: how it groups configurations by kernel and combines the winners."""

from __future__ import annotations

import os

import torch
from audiomamba.bench.step_tiles import CONFIGS, DEFAULT, combine, group, main
from audiomamba.kernels.triton_mamba_step import TILE_KERNEL_KEYS, TILES_BATCHED


def test_every_sweep_config_names_known_keys_and_one_kernel():
    keys = set(TILES_BATCHED) | set(TILE_KERNEL_KEYS)
    for config in CONFIGS:
        assert {part.split("=")[0] for part in config.split(",")} <= keys, config
    assert group("in_e=64,in_warps=8") == "in" and group("k=64") == "x" and group("ssm_warps=2") == "ssm"
    assert group("out_h=64,out_warps=8") == "out" and group("rows=32") == "all" and group("in_e=64,out_h=64") == "all"
    assert group(DEFAULT) == DEFAULT


def test_combine_joins_the_winners_of_each_kernel():
    best = {"in": "in_e=64", "x": "k=64", "ssm": "ssm_warps=2", "all": "rows=32", "out": DEFAULT}
    assert combine(best) == "in_e=64,ssm_warps=2,k=64"
    assert combine({}) == ""


def test_main_says_it_needs_a_gpu(capsys):
    if torch.cuda.is_available():
        return
    assert main([]) == 2
    assert "needs a CUDA device" in capsys.readouterr().out


def test_another_variable_needs_its_values():
    import pytest

    with pytest.raises(SystemExit, match="--var AUDIOMAMBA_STEP_EVEN: give its values"):
        main(["--var", "AUDIOMAMBA_STEP_EVEN"])


def test_several_variables_take_their_values_in_order(monkeypatch):
    import pytest
    from audiomamba.bench.step_tiles import set_vars

    monkeypatch.delenv("AUDIOMAMBA_STEP_RUN_E", raising=False)
    monkeypatch.delenv("AUDIOMAMBA_STEP_RUN_WARPS", raising=False)
    set_vars("AUDIOMAMBA_STEP_RUN_E,AUDIOMAMBA_STEP_RUN_WARPS", "spread, 2")
    assert os.environ["AUDIOMAMBA_STEP_RUN_E"] == "spread" and os.environ["AUDIOMAMBA_STEP_RUN_WARPS"] == "2"
    set_vars("AUDIOMAMBA_STEP_RUN_E,AUDIOMAMBA_STEP_RUN_WARPS", DEFAULT)
    assert "AUDIOMAMBA_STEP_RUN_E" not in os.environ and "AUDIOMAMBA_STEP_RUN_WARPS" not in os.environ
    with pytest.raises(SystemExit, match="one value per variable"):
        set_vars("AUDIOMAMBA_STEP_RUN_E,AUDIOMAMBA_STEP_RUN_WARPS", "8")
