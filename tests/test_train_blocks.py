"""Every tiny recipe (together they cover all five block types) trains two steps and checkpoints.

SC09 clips are 16000 samples, too long for a quick CPU test, so the SC09 tiny recipes are run on the
short synthetic music folder (``data.kind=youtubemix``, 512-sample segments): what is tested is
each block type inside the training loop, not the data.
"""

from __future__ import annotations

import pytest
import torch
from train_helpers import music_folder, tiny_recipe

from audiomamba.recipe import list_recipes
from audiomamba.train import RunOptions, train_recipe
from audiomamba.train.checkpoint import load_checkpoint

TINY_RECIPES = [n for n in list_recipes() if n.endswith("-tiny")]


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    return music_folder(tmp_path_factory.mktemp("blocks") / "music")


@pytest.mark.parametrize("name", TINY_RECIPES)
def test_tiny_recipe_trains_two_steps(tmp_path, music, name):
    recipe = tiny_recipe(music, "data.kind=youtubemix", "train.steps=2", "train.val_batches=1", name=name)
    res = train_recipe(recipe, RunOptions(out=tmp_path / "run", device="cpu", progress=False))
    assert res.step == 2 and res.best_val_bpb is not None and 0 < res.best_val_bpb < 9
    state = load_checkpoint(tmp_path / "run")
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert state["step"] == 2 and state["recipe"]["meta"]["name"] == name
