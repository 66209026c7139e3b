"""DDP under torchrun: 2 CPU processes (gloo) match one process with the same global batch."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import torch
from train_helpers import TINY, music_folder, tiny_recipe

from audiomamba.train import RunOptions, train_recipe
from audiomamba.train.checkpoint import load_checkpoint
from audiomamba.train.sampler import ShardedBatches, epoch_permutation


def test_rank_shards_partition_the_global_batches():
    n, b, world = 23, 3, 2
    one = list(ShardedBatches(n, b * world, seed=5, epoch=2))
    ranks = [list(ShardedBatches(n, b, seed=5, epoch=2, rank=r, world_size=world)) for r in range(world)]
    assert len(one) == len(ranks[0]) == len(ranks[1]) == n // (b * world)
    for k, batch in enumerate(one):
        assert batch == ranks[0][k] + ranks[1][k]
    assert sorted(sum(one, [])) == sorted(epoch_permutation(n, 5, 2)[: len(one) * b * world].tolist())
    resumed = list(ShardedBatches(n, b, seed=5, epoch=2, start=2, rank=1, world_size=world))
    assert resumed == ranks[1][2:]


def test_two_gloo_processes_match_one_process(tmp_path):
    torchrun = shutil.which("torchrun")
    cli = shutil.which("audiomamba")
    if torchrun is None or cli is None:
        pytest.skip("torchrun or the audiomamba console script is not installed")
    data = music_folder(tmp_path / "data")
    sets = ["data.sample_len=512", "data.batch_size=4", "train.steps=3", "train.eval_every=3",
            "train.checkpoint_every=3", "train.val_batches=1", "train.log_every=1"]
    single = train_recipe(tiny_recipe(data, *sets), RunOptions(out=tmp_path / "one", device="cpu", progress=False))
    cmd = [torchrun, "--standalone", "--nproc_per_node=2", "--no-python", cli, "train", TINY,
           "--data", str(data), "--out", str(tmp_path / "two"), "--device", "cpu"]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    one = load_checkpoint(tmp_path / "one", "last.pt")
    two = load_checkpoint(tmp_path / "two", "last.pt")
    assert two["world_size"] == 2 and one["step"] == two["step"] == single.step == 3
    assert one["loader"] == two["loader"]
    for k, v in one["model"].items():
        torch.testing.assert_close(two["model"][k], v, rtol=1e-4, atol=1e-5, msg=k)
    # the run actually trained: parameters moved away from the initial ones
    changed = sum(int(not torch.equal(v, two["model"][k])) for k, v in _initial(one).items())
    assert changed > 0


def _initial(state: dict) -> dict:
    from audiomamba.model import build_model

    torch.manual_seed(0)
    return build_model(state["model_config"]).state_dict()
