"""SC09 grid cells' sample metrics: generate samples, score them with a classifier (tiny fixtures)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from audiomamba.eval.synthetic import write_tone_sc09

from audiomamba.ablate.scoring import sample_scorer
from audiomamba.cli import main
from audiomamba.errors import CheckpointError
from audiomamba.model import build_model, load_model_preset


def test_scorer_generates_and_scores(tmp_path: Path) -> None:
    root = write_tone_sc09(tmp_path / "sc09", train=6, validation=2, test=2, seed=0)
    ckpt = tmp_path / "clf.pt"
    main(["evaluate", "train-classifier", str(root), "--out", str(ckpt), "--epochs", "2",
          "--batch-size", "16", "--device", "cpu"])
    torch.manual_seed(0)
    model = build_model(load_model_preset("sc09-small-tiny")).eval()
    recipe = SimpleNamespace(data=SimpleNamespace(normalization="minmax", root=str(root)))
    scores = sample_scorer(ckpt, None, seconds=0.01)(model, recipe, tmp_path / "run", 6, 0)
    assert set(scores) == {"fid", "is", "mis", "am", "ndb"}
    assert 1.0 <= scores["is"] <= 10.0 and scores["fid"] >= 0 and 0 <= scores["ndb"] <= 1
    assert all(math.isfinite(v) for v in scores.values())
    assert len(list((tmp_path / "run" / "samples").glob("*.wav"))) == 6
    saved = json.loads((tmp_path / "run" / "sample_metrics.json").read_text())
    assert saved["rows"]["samples"]["count"] == 6


def test_scorer_needs_an_existing_classifier(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="classifier checkpoint not found"):
        sample_scorer(tmp_path / "missing.pt", None)
