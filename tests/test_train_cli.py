"""`audiomamba train` and `audiomamba evaluate nll` through the CLI entry point."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from train_helpers import TINY, music_folder

from audiomamba.cli import main
from audiomamba.data import build_dataset
from audiomamba.train import load_model_from_checkpoint


def _run(argv, capsys):
    try:
        main(argv)
        code = 0
    except SystemExit as ex:
        code = ex.code
    out = capsys.readouterr()
    return code, out.out, out.err


SETS = ["data.sample_len=512", "data.batch_size=2", "train.steps=3", "train.eval_every=3",
        "train.checkpoint_every=3", "train.val_batches=1"]


def test_train_then_evaluate_nll(tmp_path, capsys):
    data = music_folder(tmp_path / "data")
    argv = ["train", TINY, "--data", str(data), "--out", str(tmp_path / "run"), "--device", "cpu"]
    for s in SETS:
        argv += ["--set", s]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    assert "stopped at step 3" in out
    # running again into the same folder is refused in one line
    code, _, err = _run(argv, capsys)
    assert code == 2 and "already holds a run" in err and err.count("\n") == 1

    code, out, err = _run(["evaluate", "nll", str(tmp_path / "run"), "--split", "test", "--device", "cpu",
                           "--json", str(tmp_path / "nll.json")], capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "nll.json").read_text())
    assert res["split"] == "test" and res["sample_len"] == 512
    assert res["bpb"] == pytest.approx(res["nll"] / math.log(2))
    # independent check: score every test segment one by one
    model, recipe = load_model_from_checkpoint(tmp_path / "run", "cpu")
    ds = build_dataset("youtubemix", data, "test", 512)
    assert res["n_sequences"] == len(ds) and res["n_samples"] == len(ds) * 512
    with torch.no_grad():
        nats = [F.cross_entropy(model(x[None])[0], y, reduction="sum").item() for x, y in (ds[i] for i in range(len(ds)))]
    assert res["nll"] == pytest.approx(sum(nats) / (len(ds) * 512), rel=1e-5)


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    code, _, err = _run(["train", "sc09-mamab", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "did you mean" in err and err.count("\n") == 1
    code, _, err = _run(["train", TINY, "--set", "optim.lr=fast", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "optim.lr" in err
    code, _, err = _run(["evaluate", "nll", str(tmp_path / "nothing")], capsys)
    assert code == 2 and "checkpoint not found" in err


def test_fit_schedule_sizes_steps_to_the_budget(tmp_path, capsys):
    data = music_folder(tmp_path / "data")
    base = ["train", TINY, "--data", str(data), "--device", "cpu", "--set", "data.sample_len=512",
            "--set", "train.val_batches=1"]
    code, _, err = _run([*base, "--out", str(tmp_path / "r0"), "--fit-schedule"], capsys)
    assert code == 2 and "needs --max-minutes" in err
    code, out, err = _run([*base, "--out", str(tmp_path / "r1"), "--fit-schedule", "--max-minutes", "0.05"], capsys)
    assert code == 0, err
    assert "--fit-schedule:" in out and "ms/step" in out
    from audiomamba.recipe import load_recipe

    fitted = load_recipe(tmp_path / "r1" / "recipe.toml")
    assert 10 <= fitted.train.steps < 300  # the tiny recipe's own 300 steps would not fit in 3 s
    assert fitted.train.eval_every == max(1, fitted.train.steps // 10)


def test_fit_schedule_times_compiled_steps_and_takes_the_compile_off_the_budget(tmp_path, monkeypatch):
    """train.compile: the steps are timed through the trainer's compile, and the first step's extra
    time (the compilation) comes off the budget. The compiler is stood in for by a wrapper whose
    first call takes 2 s longer."""
    import time

    from audiomamba.recipe import load_recipe
    from audiomamba.train import calibrate, loop

    calls = []

    class SlowFirst(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            if not calls:
                time.sleep(2.0)
            calls.append(1)
            return self.inner(x)

    monkeypatch.setattr(loop, "compile_for_training", lambda module, device, mode="default": SlowFirst(module))
    data = music_folder(tmp_path / "data")
    sets = ["data.sample_len=512", "train.val_batches=1"]
    plain = calibrate.fit_steps(load_recipe(TINY, sets, data), torch.device("cpu"), 0.1)
    assert not calls and not plain[2].compiled
    steps, fit, timing = calibrate.fit_steps(load_recipe(TINY, [*sets, "train.compile=true"], data), torch.device("cpu"), 0.1)
    assert calls and timing.compiled and timing.first_step >= 2.0
    # 6 s of budget, of which about 2 s went to the stand-in compilation: about 4 s of steps
    expected = int((6.0 - (timing.first_step - timing.per_step)) * calibrate.COMPILED_FRACTION / timing.per_step)
    assert steps == max(10, expected) and f"train.steps={steps}" in fit
    if expected > 10:  # a loaded machine (slow steps) hits the 10-step floor either way
        assert steps < int(6.0 * calibrate.COMPILED_FRACTION / timing.per_step)
