"""Classifier ensembles (eval/ensemble.py, issue 17): the temperature, the mean over members and
playback rates, the checkpoint round trip through load_classifier, and the CLI on a tiny fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from audiomamba.eval.augment import speed_perturb
from audiomamba.eval.classifier import ClassifierConfig, DigitClassifier, load_classifier, save_classifier
from audiomamba.eval.ensemble import ClassifierEnsemble, fit_temperature, save_ensemble, sharpen
from audiomamba.eval.features import LogMelConfig
from audiomamba.eval.synthetic import write_tone_sc09

from audiomamba.cli import main
from audiomamba.errors import CheckpointError

TINY = ClassifierConfig(stem=8, widths=(8, 16), blocks=(1, 1), cardinality=4)


def _member(seed: int, **logmel) -> DigitClassifier:
    torch.manual_seed(seed)
    model = DigitClassifier(ClassifierConfig(**{**TINY.__dict__, "logmel": LogMelConfig(**logmel)})).eval()
    for p in model.parameters():  # random heads give near-uniform outputs; spread them so the mean is testable
        p.data.mul_(3.0)
    return model


def _waves(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 16000, generator=torch.Generator().manual_seed(seed)) * 0.3


def test_sharpen_keeps_the_ranking_and_fit_temperature_undoes_under_confidence() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (400,), generator=g)
    # under-confident but right: 0.4 on the true class, the rest spread evenly
    probs = torch.full((400, 10), 0.6 / 9).scatter(1, labels[:, None], 0.4)
    assert torch.equal(sharpen(probs, 1.0), probs)
    sharp = sharpen(probs, 0.5)
    assert torch.allclose(sharp.sum(-1), torch.ones(400)) and torch.equal(sharp.argmax(-1), probs.argmax(-1))
    assert (sharp.max(-1).values > probs.max(-1).values).all()
    t, nll = fit_temperature(probs, labels)
    nll_1 = torch.nn.functional.nll_loss(probs.log(), labels).item()
    assert t < 1.0 and nll < nll_1
    # over-confident and half wrong: the fit softens instead
    wrong = torch.where(torch.arange(400) % 2 == 0, labels, (labels + 1) % 10)
    hard = torch.full((400, 10), 0.01 / 9).scatter(1, wrong[:, None], 0.99)
    assert fit_temperature(hard, labels)[0] > 1.0


def test_ensemble_probs_are_the_mean_over_members_and_rates_and_survive_the_checkpoint(tmp_path: Path) -> None:
    a, b = _member(0), _member(1, band_norm=True)
    x = _waves()
    ens = ClassifierEnsemble([a, b], speeds=(0.9, 1.0), temperature=0.7).eval()
    feats, probs = ens.features_and_probs(x)
    assert feats.shape == (6, a.feature_dim + b.feature_dim) and ens.feature_dim == feats.shape[1]
    slow = speed_perturb(x, torch.full((6,), 0.9))
    expect = torch.stack([(m.probs(slow) + m.probs(x)) / 2 for m in (a, b)]).mean(0)
    assert torch.allclose(probs, sharpen(expect, 0.7), atol=1e-6)
    assert torch.allclose(feats, torch.cat([a.features(x), b.features(x)], -1))
    assert not torch.allclose(probs, sharpen(a.probs(x), 0.7), atol=1e-3)  # both members count
    path = save_ensemble(ens, tmp_path / "ens.pt", {"note": "test"})
    back = load_classifier(path)
    assert isinstance(back, ClassifierEnsemble) and back.speeds == (0.9, 1.0) and back.temperature == 0.7
    assert back.meta == {"note": "test"}
    f2, p2 = back.features_and_probs(x)
    assert torch.allclose(p2, probs, atol=1e-6) and torch.allclose(f2, feats, atol=1e-5)
    payload = torch.load(path, weights_only=True)
    payload["members"][1]["state_dict"].pop("head.weight")
    torch.save(payload, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match="does not match the model.*member 1"):
        load_classifier(tmp_path / "broken.pt")


def test_ensemble_classifier_cli_fits_scores_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_tone_sc09(tmp_path / "sc09", train=1, validation=2, test=2, seed=0)
    ckpts = [save_classifier(_member(s), tmp_path / f"m{s}.pt") for s in (0, 1)]
    out = tmp_path / "ens" / "ensemble.pt"
    main(["evaluate", "ensemble-classifier", *map(str, ckpts), "--data", str(root), "--out", str(out),
          "--tta-speeds", "0.95,1.0", "--device", "cpu"])
    line = capsys.readouterr().out
    assert "test accuracy" in line and "temperature" in line and str(out) in line
    report = json.loads(out.with_suffix(".json").read_text())
    assert len(report["member_test_accuracy"]) == 2 and report["speeds"] == [0.95, 1.0]
    assert sum(map(sum, report["test_confusion"])) == 20
    assert out.with_name("ensemble.confusion.png").read_bytes()[:4] == b"\x89PNG"
    model = load_classifier(out)
    assert isinstance(model, ClassifierEnsemble) and model.temperature == report["temperature"]
    with pytest.raises(SystemExit):
        main(["evaluate", "ensemble-classifier", str(out), "--data", str(root), "--out", str(tmp_path / "x.pt")])
    assert "not one of our digit classifiers" in capsys.readouterr().err


def _fake_loso(folder: Path, confidence: float, seed: int) -> Path:
    """A classifier-loso folder: two speakers, right but under-confident probabilities, with test-time variants."""
    g = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True)
    for name in ("ann", "bob"):
        labels = torch.randint(0, 10, (50,), generator=g)
        probs = torch.full((50, 10), (1 - confidence) / 9).scatter(1, labels[:, None], confidence)
        tta = {k: probs for k in ("0.95", "1")}
        torch.save({"probs": probs, "labels": labels, "tta": tta}, folder / f"probs-{name}.pt")
    return folder


def test_calibrate_on_fits_the_temperature_on_held_out_speakers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from audiomamba.eval.ensemble import loso_probs

    root = write_tone_sc09(tmp_path / "sc09", train=1, validation=1, test=1, seed=0)
    ckpts = [save_classifier(_member(s), tmp_path / f"m{s}.pt") for s in (0, 1)]
    # the labels must agree across members: same seed for the clips, other confidence
    runs = [_fake_loso(tmp_path / "loso-a", 0.5, 0), _fake_loso(tmp_path / "loso-b", 0.3, 0)]
    probs, labels = loso_probs(runs, (0.95, 1.0))
    assert probs.shape == (100, 10) and torch.allclose(probs.max(-1).values, torch.full((100,), 0.4))
    out = tmp_path / "ens.pt"
    main(["evaluate", "ensemble-classifier", *map(str, ckpts), "--data", str(root), "--out", str(out),
          "--tta-speeds", "0.95,1.0", "--device", "cpu", "--calibrate-on", str(runs[0]), "--calibrate-on", str(runs[1])])
    assert "leave-one-speaker-out probabilities of 100 clips" in capsys.readouterr().out
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["temperature"] < 0.5 and report["calibration_accuracy"] == 1.0  # right but shy: sharpen a lot
    assert report["calibration_confident"] == 1.0
    with pytest.raises(SystemExit):
        main(["evaluate", "ensemble-classifier", *map(str, ckpts), "--data", str(root), "--out", str(out),
              "--calibrate-on", str(runs[0])])
    assert "one classifier-loso folder per classifier" in capsys.readouterr().err
