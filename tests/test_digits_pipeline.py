"""Issue 13's tooling on the CPU: SC09 subsets, the EMA of the weights, training snapshots, the
step-consistency diagnostic, digit labels in the generation index, and the recipes' new keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from datafixtures import make_sc09
from train_helpers import music_folder, tiny_recipe

from audiomamba.errors import ConfigError
from audiomamba.recipe import load_recipe


def test_clips_per_class_keeps_the_first_clips_of_each_digit(tmp_path: Path) -> None:
    from audiomamba.data import build_dataset

    root = make_sc09(tmp_path / "sc09", per_split=(3, 1, 1))
    full = build_dataset("sc09", root, "train")
    two = build_dataset("sc09", root, "train", clips_per_class=2)
    assert len(two) == 2 * len(set(full.labels)) < len(full)
    for label in set(full.labels):
        firsts = [p for p, lab in zip(full.files, full.labels, strict=True) if lab == label][:2]
        assert [p for p, lab in zip(two.files, two.labels, strict=True) if lab == label] == firsts
    with pytest.raises(Exception, match="sc09"):
        build_dataset("youtubemix", root, "train", clips_per_class=2)


def test_recipe_checks_the_new_keys() -> None:
    r = load_recipe("sc09-overfit")
    assert r.data.clips_per_class == 1 and r.data.val_split == "train"
    with pytest.raises(ConfigError, match="clips_per_class"):
        load_recipe("sc09-mamba", ["data.clips_per_class=0"])
    with pytest.raises(ConfigError, match="val_split"):
        load_recipe("sc09-mamba", ["data.val_split=dev"])
    with pytest.raises(ConfigError, match="train.ema"):
        load_recipe("sc09-mamba", ["train.ema=1.0"])
    with pytest.raises(ConfigError, match="only sc09"):
        load_recipe("youtubemix-mamba-s6", ["data.clips_per_class=2"])


def test_ema_is_kept_resumed_and_used_for_sampling(tmp_path: Path) -> None:
    from audiomamba.train import RunOptions, train_recipe
    from audiomamba.train.checkpoint import load_checkpoint, load_model_from_checkpoint

    data = music_folder(tmp_path / "music")
    recipe = tiny_recipe(data, "train.ema=0.9", "train.steps=6")
    run = tmp_path / "run"
    train_recipe(recipe, RunOptions(out=run, max_steps=4, device="cpu", progress=False, snapshot_minutes=(1e-6,)))
    state = load_checkpoint(run / "last.pt")
    assert state["ema_decay"] == 0.9 and set(state["ema"]) <= set(state["model"])
    key = next(k for k in state["ema"] if k.endswith("in_proj.weight"))
    assert not torch.equal(state["ema"][key], state["model"][key])  # an average, not a copy
    assert (run / "snap-1e-06min.pt").is_file()  # the time-to-quality snapshot
    assert (run / "noise_profile.json").is_file()
    ema_model, _ = load_model_from_checkpoint(run / "last.pt")
    raw_model, _ = load_model_from_checkpoint(run / "last.pt", ema=False)
    assert torch.equal(dict(ema_model.named_parameters())[key], state["ema"][key])
    assert torch.equal(dict(raw_model.named_parameters())[key], state["model"][key])
    train_recipe(recipe, RunOptions(out=run, resume=True, device="cpu", progress=False))
    resumed = load_checkpoint(run / "last.pt")
    assert resumed["step"] == 6 and not torch.equal(resumed["ema"][key], state["ema"][key])


def test_step_consistency_agrees_on_a_tiny_unet() -> None:
    from audiomamba.generate.diagnose import format_consistency, step_consistency
    from audiomamba.model import build_model

    torch.manual_seed(0)
    model = build_model(load_recipe("sc09-mamba-tiny").model_config())
    targets = torch.randint(0, 256, (2, 32))
    result = step_consistency(model, targets)
    assert set(result["paths"]) == {"parallel_fp32", "parallel_reference_scan", "step_composed"}
    assert result["agree"], format_consistency(result)
    assert result["paths"]["step_composed"]["max_abs_logp_diff"] < 1e-3
    # a model whose step disagrees with its forward is caught
    block = model.blocks[0]
    original = block.step

    def broken(x, state, res=None):
        y, state = original(x, state, res)
        return y + 0.5, state

    block.step = broken
    assert not step_consistency(model, targets, reference_scan=False)["agree"]


def test_step_consistency_judges_the_faster_settings_apart() -> None:
    """With ``fast`` the step path with bf16 states (on a CPU the only one: bf16 tiles are the fused kernels') joins
    the table and gets its own verdict (within the same limits on a tiny U-Net), which does not decide ``agree``."""
    from audiomamba.generate.diagnose import format_consistency, step_consistency
    from audiomamba.model import build_model

    torch.manual_seed(0)
    model = build_model(load_recipe("sc09-mamba-tiny").model_config())
    targets = torch.randint(0, 256, (2, 32))
    result = step_consistency(model, targets, reference_scan=False, fast=True)
    paths = result["paths"]
    assert set(paths) == {"parallel_fp32", "step_composed", "step_composed_bf16_states", "step_composed_fp16_states"}
    assert result["agree"] and result["fast_agree"], format_consistency(result)
    diff = {name: p["max_abs_logp_diff"] for name, p in paths.items()}
    # fp16 rounds 8x finer than bf16: both move the log-probabilities, fp16 less
    assert diff["step_composed"] < diff["step_composed_fp16_states"] < diff["step_composed_bf16_states"], diff
    assert "faster settings (bf16 and fp16 states, bf16 tiles): within the same limits" in format_consistency(result)


def test_generate_labels_samples_with_digits(tmp_path: Path) -> None:
    from audiomamba.generate import Generated
    from audiomamba.generate.output import write_samples

    tokens = torch.randint(0, 256, (3, 1600))
    gen = Generated(tokens, torch.full((3, 1600), -1.0), 0, 0.1)

    def labeller(waves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert waves.shape == (3, 1600)
        return np.array([7, 3, 0]), np.array([0.95, 0.5, 0.99])

    rows = write_samples(gen, tmp_path / "s", labeller=labeller, spectrogram_count=2)
    assert [(r["digit"], r["digit_prob"]) for r in rows] == [(7, 0.95), (3, 0.5), (0, 0.99)]
    index = json.loads((tmp_path / "s" / "index.json").read_text())
    assert index[0]["digit"] == 7 and "noise" in index[0] and "noise_throughout" in index[0]
    assert (tmp_path / "s" / "spectrograms.png").is_file()


def test_digit_labeller_reads_the_shipped_classifier() -> None:
    from audiomamba.eval.classifier import digit_labeller

    weights = Path(__file__).resolve().parents[1] / "eval" / "weights" / "sc09-fsdd-classifier.pt"
    label = digit_labeller(weights)
    digits, probs = label(np.zeros((2, 12000), dtype=np.float32))
    assert digits.shape == (2,) and ((probs > 0) & (probs <= 1)).all()


def test_snapshot_table_and_plot(tmp_path: Path) -> None:
    from audiomamba.eval.snapshots import format_table, plot_snapshots, snapshot_files

    for name in ("snap-10min.pt", "snap-5min.pt", "last.pt", "best.pt"):
        (tmp_path / name).write_bytes(b"")
    assert [(m, p.name) for m, p in snapshot_files(tmp_path)] == [(5.0, "snap-5min.pt"), (10.0, "snap-10min.pt"),
                                                                   (None, "last.pt")]
    row = {"minutes": 5.0, "step": 10, "temperature": 1.0, "val_bpb": 1.2, "FID": 3.0, "IS": 2.0, "mIS": 4.0,
           "AM": 1.0, "recognised": 0.5, "samples_bpb": 2.0}
    table = format_table([row, {**row, "minutes": 10.0, "IS": 3.0}])
    assert table.count("\n") == 3 and "| 5.0 | 10 | 1 | 1.200 |" in table
    assert plot_snapshots([row, {**row, "minutes": 10.0}], tmp_path / "p.png").is_file()
    # runs side by side: one line per label; a repeated final point and a missing val BPB are fine
    runs = [{**row, "label": "a"}, {**row, "label": "a"}, {**row, "minutes": 7.0, "label": "b", "val_bpb": None}]
    assert plot_snapshots(runs, tmp_path / "runs.png", title="t").is_file()
