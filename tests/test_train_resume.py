"""Training loop: exact resume, NaN stop, no silent overwrite, checkpoint errors, model from checkpoint."""

from __future__ import annotations

import math

import pytest
import torch
from train_helpers import music_folder, tiny_recipe

from audiomamba.errors import AudioMambaError, CheckpointError, ConfigError
from audiomamba.train import RunOptions, TrainingDiverged, load_model_from_checkpoint, train_recipe
from audiomamba.train import nll as nll_mod
from audiomamba.train.checkpoint import load_checkpoint
from audiomamba.train.metrics_log import read_metrics


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return music_folder(tmp_path_factory.mktemp("music") / "data")


def _opts(out, **kw):
    return RunOptions(out=out, device="cpu", progress=False, **kw)


def test_exact_resume_across_an_epoch_boundary(tmp_path, data):
    recipe = tiny_recipe(data, "data.batch_size=4")  # 27 train segments -> 6 batches per epoch
    straight = train_recipe(recipe, _opts(tmp_path / "a"))
    half = train_recipe(recipe, _opts(tmp_path / "b", max_steps=4))
    assert half.step == 4 and half.stop_reason == "max_steps"
    rest = train_recipe(recipe, _opts(tmp_path / "b", resume=True))
    assert straight.step == rest.step == 8
    a, b = load_checkpoint(tmp_path / "a", "last.pt"), load_checkpoint(tmp_path / "b", "last.pt")
    assert a["loader"] == b["loader"] and a["loader"]["epoch"] >= 1  # crossed an epoch
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        assert torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 8
    # same loss curve, without duplicated records after the resume
    curve = lambda p: [(r["step"], r["loss"]) for r in read_metrics(p / "metrics.jsonl") if r["kind"] == "train"]  # noqa: E731
    assert curve(tmp_path / "a") == curve(tmp_path / "b")
    for name in ("recipe.toml", "model_config.json", "curves.png", "best.pt"):
        assert (tmp_path / "b" / name).is_file()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, data, monkeypatch):
    real = nll_mod.sequence_loss
    calls = {"n": 0}

    def flaky(model, x, y):
        calls["n"] += 1
        loss = real(model, x, y)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(nll_mod, "sequence_loss", flaky)
    with pytest.raises(TrainingDiverged) as ei:
        train_recipe(tiny_recipe(data), _opts(tmp_path / "run"))
    msg = str(ei.value)
    assert "non-finite loss" in msg and "step 3" in msg and "last.pt" in msg and "\n" not in msg
    state = load_checkpoint(tmp_path / "run", "last.pt")
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_deferred_checks_catch_a_bad_gradient_before_the_next_checkpoint(tmp_path, data, monkeypatch):
    """Losses and gradient norms are read back in batches (log_every = 8 here), but always before a
    checkpoint: a non-finite gradient at step 3 stops the run at the step-4 checkpoint, names step 3,
    and last.pt keeps step 2's finite weights."""
    real = torch.nn.utils.clip_grad_norm_
    calls = {"n": 0}

    def flaky(params, clip, *a, **kw):
        calls["n"] += 1
        params = list(params)
        if calls["n"] == 3:
            for p in params:
                p.grad.fill_(float("inf"))
        return real(params, clip, *a, **kw)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", flaky)
    with pytest.raises(TrainingDiverged) as ei:
        train_recipe(tiny_recipe(data, "train.log_every=8", "optim.clip=1.0"), _opts(tmp_path / "run"))
    msg = str(ei.value)
    assert "non-finite gradient norm" in msg and "step 3" in msg and "\n" not in msg
    assert calls["n"] == 4  # step 4 ran (no sync per step), then the read-back before its checkpoint stopped it
    state = load_checkpoint(tmp_path / "run", "last.pt")
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    errors = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "error"]
    assert [r["step"] for r in errors] == [3]
    # AUDIOMAMBA_TRAIN_SYNC=1: read back after every step, so step 3 is the last one run
    calls["n"] = 0
    monkeypatch.setenv("AUDIOMAMBA_TRAIN_SYNC", "1")
    with pytest.raises(TrainingDiverged, match="step 3"):
        train_recipe(tiny_recipe(data, "train.log_every=8", "optim.clip=1.0"), _opts(tmp_path / "run2"))
    assert calls["n"] == 3


def test_existing_run_is_never_overwritten(tmp_path, data):
    recipe = tiny_recipe(data, "train.steps=1")
    train_recipe(recipe, _opts(tmp_path / "run"))
    before = (tmp_path / "run" / "last.pt").read_bytes()
    with pytest.raises(AudioMambaError, match="already holds a run.*--resume"):
        train_recipe(recipe, _opts(tmp_path / "run"))
    assert (tmp_path / "run" / "last.pt").read_bytes() == before
    # a run that died before its first checkpoint: --resume starts it fresh (issue 16)
    assert train_recipe(recipe, _opts(tmp_path / "empty", resume=True)).step == 1
    with pytest.raises(ConfigError, match="data.sample_len"):
        train_recipe(tiny_recipe(data, "data.sample_len=256"), _opts(tmp_path / "run", resume=True))


def test_checkpoint_errors_are_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt") as ei:
        load_checkpoint(bad)
    assert "\n" not in str(ei.value)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an audiomamba checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path)


def test_model_from_checkpoint_alone(tmp_path, data):
    recipe = tiny_recipe(data, "train.steps=2")
    train_recipe(recipe, _opts(tmp_path / "run"))
    model, rec = load_model_from_checkpoint(tmp_path / "run", "cpu")
    state = load_checkpoint(tmp_path / "run")
    assert rec.name == recipe.name and rec.data.sample_len == 512
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["model"][k])
    x = torch.randint(0, 256, (1, 512))
    assert model(x).shape == (1, 512, 256)


def test_lr_schedule_warmup_then_cosine():
    from audiomamba.train.optim import WarmupCosine

    f = WarmupCosine(total_steps=100, warmup_steps=10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.5) and f(100) == pytest.approx(0.0, abs=1e-12)
    assert all(f(s) >= f(s + 1) for s in range(10, 100))
    assert math.isclose(WarmupCosine(100, 10, "constant")(80), 1.0)


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    from audiomamba.train.checkpoint import capture_rng, restore_rng, save_checkpoint, unpack_tensors

    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    save_checkpoint(tmp_path / "rng.pt", {"rng": capture_rng()})
    first = (random.random(), np.random.rand(), torch.rand(3), random.gauss(0, 1))
    restore_rng(unpack_tensors(torch.load(tmp_path / "rng.pt", weights_only=True), copy=True)["rng"])
    again = (random.random(), np.random.rand(), torch.rand(3), random.gauss(0, 1))
    assert first[0] == again[0] and first[1] == again[1] and torch.equal(first[2], again[2]) and first[3] == again[3]
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temp file behind


def test_resume_with_a_longer_schedule_and_new_lr_takes_effect(tmp_path, data):
    train_recipe(tiny_recipe(data, "train.steps=4"), _opts(tmp_path / "run"))
    longer = tiny_recipe(data, "train.steps=6", "optim.lr=1e-3")
    res = train_recipe(longer, _opts(tmp_path / "run", resume=True))
    assert res.step == 6
    state = load_checkpoint(tmp_path / "run", "last.pt")
    assert state["scheduler"]["lr_lambdas"][0]["total_steps"] == 6
    lrs = [r["lr"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "train"]
    assert lrs[3] == pytest.approx(0.0, abs=1e-12)  # the 4-step cosine ended at 0
    assert lrs[4] > 0 and lrs[4] <= 1e-3  # resumed on the new 6-step schedule with the new peak lr


def test_divergence_before_the_first_checkpoint_says_how_to_restart(tmp_path, data, monkeypatch):
    real = nll_mod.sequence_loss
    monkeypatch.setattr(nll_mod, "sequence_loss", lambda m, x, y: real(m, x, y) * float("nan"))
    with pytest.raises(TrainingDiverged, match="no checkpoint was written yet; start again") as ei:
        train_recipe(tiny_recipe(data), _opts(tmp_path / "run"))
    assert "continue with --resume" not in str(ei.value)
    monkeypatch.undo()
    # and the advice holds: the same command with --resume starts the run fresh
    assert train_recipe(tiny_recipe(data, "train.steps=2"), _opts(tmp_path / "run", resume=True)).step == 2


def test_resume_from_a_slim_checkpoint_follows_the_schedule_with_fresh_moments(tmp_path, data, capsys):
    """A slim (no optimizer state) last.pt resumes: same steps, loader position and lr schedule as an unbroken
    run, the EMA carried over (in bfloat16), AdamW's moments started again, and a note that says so."""
    from audiomamba.train.checkpoint import save_checkpoint, slim_checkpoint

    recipe = tiny_recipe(data, "train.ema=0.9")
    straight = train_recipe(recipe, _opts(tmp_path / "a"))
    train_recipe(recipe, _opts(tmp_path / "b", max_steps=4))
    full = load_checkpoint(tmp_path / "b", "last.pt")
    slim = slim_checkpoint(full)
    assert "optimizer" not in slim and slim["slim"] == "training"
    assert all(v.dtype == torch.bfloat16 for v in slim["ema"].values())
    assert all(v.dtype == full["model"][k].dtype for k, v in slim["model"].items())
    save_checkpoint(tmp_path / "b" / "last.pt", slim)
    capsys.readouterr()
    rest = train_recipe(recipe, _opts(tmp_path / "b", resume=True))
    assert "slim checkpoint without optimizer state" in capsys.readouterr().out
    assert rest.step == straight.step == 8
    lr = lambda p: [(r["step"], r["lr"]) for r in read_metrics(p / "metrics.jsonl") if r["kind"] == "train"]  # noqa: E731
    (sa, la), (sb, lb) = zip(*lr(tmp_path / "a"), strict=True), zip(*lr(tmp_path / "b"), strict=True)
    assert sa == sb and list(la) == pytest.approx(list(lb))
    a, b = load_checkpoint(tmp_path / "a", "last.pt"), load_checkpoint(tmp_path / "b", "last.pt")
    assert a["loader"] == b["loader"] and "optimizer" in b  # the resumed run writes full checkpoints again
    # the weights after step 4 differ from the unbroken run's (fresh moments), but not the steps taken before
    assert any(not torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.isfinite(v).all() for v in b["ema"].values())


def test_the_training_clock_and_snapshot_times_go_on_across_a_resume(tmp_path, data):
    """Snapshot minutes count the run's training clock (checkpoint elapsed_s), not the resumed process's: a
    time the checkpoint had passed is not taken again, and the next one comes at its place on the clock."""
    from audiomamba.train.checkpoint import save_checkpoint

    train_recipe(tiny_recipe(data), _opts(tmp_path / "run", max_steps=2))
    state = load_checkpoint(tmp_path / "run", "last.pt")
    assert 0 < state["elapsed_s"] < 600
    state["elapsed_s"] = 600.0  # as if 10 minutes of training had gone before
    save_checkpoint(tmp_path / "run" / "last.pt", {k: v for k, v in state.items() if k != "path"})
    res = train_recipe(tiny_recipe(data), _opts(tmp_path / "run", resume=True, max_steps=4,
                                                snapshot_minutes=(5.0, 10.0001, 60.0)))
    assert res.step == 4
    snaps = sorted(p.name for p in (tmp_path / "run").glob("snap-*.pt"))
    assert snaps == ["snap-10.0001min.pt"]  # 5 had passed, 60 is far off; 10.0001 came at once
    assert load_checkpoint(tmp_path / "run", "last.pt")["elapsed_s"] > 600.0
    elapsed = [r["elapsed_s"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "train"]
    assert elapsed[-1] > 600.0 > elapsed[0]


def test_slim_sampling_checkpoint_gives_the_ema_model(tmp_path, data, capsys):
    from audiomamba.train.checkpoint import model_from_state
    from audiomamba.train.slim import main

    train_recipe(tiny_recipe(data, "train.ema=0.9", "train.steps=4"), _opts(tmp_path / "run"))
    assert main([str(tmp_path / "run" / "last.pt"), str(tmp_path / "s.pt"), "--sampling"]) == 0
    assert "slim sampling, step 4" in capsys.readouterr().out
    full, slim = load_checkpoint(tmp_path / "run", "last.pt"), load_checkpoint(tmp_path / "s.pt")
    assert slim["slim"] == "sampling" and "ema" not in slim and "optimizer" not in slim
    assert (tmp_path / "s.pt").stat().st_size < 0.25 * (tmp_path / "run" / "last.pt").stat().st_size
    want, got = model_from_state(full, ema=True), model_from_state(slim)
    x = torch.randint(0, 256, (1, 64))
    with torch.no_grad():
        assert torch.allclose(want(x), got(x), atol=0.05, rtol=0.05)  # bfloat16 weights
        assert not torch.allclose(model_from_state(full, ema=False)(x), got(x), atol=1e-4)  # the EMA, not the weights
    assert main([str(tmp_path / "missing.pt"), str(tmp_path / "t.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: checkpoint not found") and err.count("\n") == 1


def test_resume_from_a_slim_copy_without_the_ema_restarts_the_ema_from_the_weights(tmp_path, data, capsys):
    """``slim --no-ema`` (the rescue copy of a model too large for the device's 64 MiB): the resumed run's EMA
    starts from the loaded weights, not from the fresh model's initial ones, and a note says so."""
    from audiomamba.train.checkpoint import save_checkpoint, slim_checkpoint
    from audiomamba.train.slim import main as slim_main

    recipe = tiny_recipe(data, "train.ema=0.999")
    train_recipe(recipe, _opts(tmp_path / "b", max_steps=4))
    full = load_checkpoint(tmp_path / "b", "last.pt")
    slim = slim_checkpoint(full, keep_ema=False)
    assert "ema" not in slim and "optimizer" not in slim and slim["slim"] == "training"
    assert slim_checkpoint(full, sampling=True, keep_ema=False)["model"].keys() == full["model"].keys()
    assert slim_main([str(tmp_path / "b" / "last.pt"), str(tmp_path / "s.pt"), "--no-ema"]) == 0
    assert "no EMA" in capsys.readouterr().out
    save_checkpoint(tmp_path / "b" / "last.pt", slim)
    rest = train_recipe(recipe, _opts(tmp_path / "b", resume=True, max_steps=5))
    assert "has no EMA: the EMA starts again from its weights" in capsys.readouterr().out
    assert rest.step == 5
    after = load_checkpoint(tmp_path / "b", "last.pt")
    # one step of EMA 0.999 from the step-4 weights stays next to them, far from the fresh model's init
    for k, v in after["ema"].items():
        if v.is_floating_point() and v.numel() > 16:
            assert (v - full["model"][k].float()).abs().max() <= (after["model"][k].float() - full["model"][k].float()).abs().max() + 1e-6


def test_slim_max_mib_drops_the_ema_only_past_the_cap(tmp_path, data, capsys):
    """``slim --max-mib M`` (poll.sh's rescue copy): one pass that keeps the EMA while the copy's tensors fit in M
    MiB and drops it past them."""
    from audiomamba.train.slim import main as slim_main

    train_recipe(tiny_recipe(data, "train.ema=0.999"), _opts(tmp_path / "b", max_steps=2))
    src, dst = str(tmp_path / "b" / "last.pt"), tmp_path / "s.pt"
    assert slim_main([src, str(dst), "--max-mib", "1000"]) == 0
    assert "ema" in load_checkpoint(dst) and "no EMA" not in capsys.readouterr().out
    assert slim_main([src, str(dst), "--max-mib", "0.000001"]) == 0
    assert "ema" not in load_checkpoint(dst) and "no EMA" in capsys.readouterr().out
