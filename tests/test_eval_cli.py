"""End to end: `audiomamba evaluate train-classifier` and `audiomamba evaluate samples` on a tiny
synthetic SC09-layout fixture (ten tones standing in for the ten digits)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from audiomamba.eval.classifier import load_classifier
from audiomamba.eval.synthetic import tone_clip, write_tone_sc09

from audiomamba.cli import main
from audiomamba.errors import CheckpointError


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(SC09-layout fixture root, classifier checkpoint trained on it through the CLI)."""
    base = tmp_path_factory.mktemp("eval_cli")
    root = write_tone_sc09(base / "sc09", train=6, validation=2, test=2, seed=0)
    ckpt = base / "clf" / "classifier.pt"
    torch.set_num_threads(1)
    main(["evaluate", "train-classifier", str(root), "--out", str(ckpt), "--epochs", "12",
          "--batch-size", "16", "--lr", "1e-2", "--device", "cpu"])
    return root, ckpt


def _run_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as ex:
        main(argv)
    assert ex.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_train_classifier_beats_chance_and_writes_report(trained: tuple[Path, Path]) -> None:
    _, ckpt = trained
    report = json.loads(ckpt.with_suffix(".json").read_text())
    assert report["test_accuracy"] >= 0.5  # chance is 0.1
    assert report["clips"] == {"train": 60, "validation": 20, "test": 20}
    assert report["train_seconds"] > 0 and len(report["history"]) == 12
    cm = np.array(report["test_confusion"])
    assert cm.shape == (10, 10) and cm.sum() == 20
    assert np.trace(cm) / cm.sum() == pytest.approx(report["test_accuracy"])
    for name in ("classifier.confusion.png", "classifier.history.png"):
        assert ckpt.with_name(name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    payload = torch.load(ckpt, weights_only=True)
    assert set(payload) == {"format", "config", "state_dict", "meta"}
    # the checkpoint carries its history and training config, so they survive without the JSON beside it
    assert payload["meta"]["history"] == report["history"] and payload["meta"]["train_config"]["epochs"] == 12
    assert payload["meta"]["augment_config"] == report["augment_config"]
    assert not list(ckpt.parent.glob(".*tmp*"))  # atomic write left no temp file


def test_classifier_features_and_probs_are_batched_consistently(trained: tuple[Path, Path]) -> None:
    _, ckpt = trained
    model = load_classifier(ckpt)
    rng = np.random.default_rng(1)
    waves = torch.from_numpy(np.stack([np.pad(c, (0, 16000 - len(c))) for c in (tone_clip(d, rng) for d in range(5))]))
    f_all = model.features(waves)
    p_all = model.probs(waves, batch_size=2)
    assert f_all.shape == (5, model.feature_dim) and p_all.shape == (5, 10)
    torch.testing.assert_close(p_all.sum(1), torch.ones(5))
    torch.testing.assert_close(model.features(waves, batch_size=2), f_all, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(model.features(torch.zeros(2, 16000))).all()  # silence is fine


def test_bad_checkpoints_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_classifier(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_classifier(bad)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="not an SC09 classifier"):
        load_classifier(other)
    samples = tmp_path / "s"
    samples.mkdir()
    sf.write(str(samples / "a.wav"), np.zeros(100, dtype=np.float32), 16000)
    err = _run_error(["evaluate", "samples", str(samples), "--classifier", str(bad), "--reference", str(tmp_path)], capsys)
    assert "bad.pt" in err


def test_samples_reports_nan_silent_clipped_and_unreadable(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, ckpt = trained
    rng = np.random.default_rng(2)
    d = tmp_path / "samples"
    d.mkdir()
    for i in range(6):  # good clips at other rates and lengths: resampled, padded or cropped
        clip = tone_clip(i, rng)
        if i % 2:
            sf.write(str(d / f"s{i}.wav"), clip[::2], 8000)
        else:
            sf.write(str(d / f"s{i}.wav"), np.concatenate([clip, clip, clip]), 16000)
    nan = tone_clip(3, rng)
    nan[100:400] = np.nan
    sf.write(str(d / "nan.wav"), nan, 16000, subtype="FLOAT")
    sf.write(str(d / "silent.wav"), np.zeros(16000, dtype=np.float32), 16000)
    sf.write(str(d / "clipped.wav"), np.sign(np.sin(np.arange(16000) / 5.0)).astype(np.float32), 16000)
    (d / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage")
    out = tmp_path / "metrics.json"
    main(["evaluate", "samples", str(d), "--classifier", str(ckpt), "--reference", str(root),
          "--json", str(out), "--ndb-bins", "10", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert "NaN" in printed and "silent" in printed and "unreadable" in printed
    report = json.loads(out.read_text())
    q = report["quality"]
    assert (q["evaluated"], q["nan"], q["silent"], q["clipped"], q["unreadable"]) == (9, 1, 1, 1, 1)
    assert q["files"]["nan"] == ["nan.wav"] and q["files"]["unreadable"] == ["corrupt.wav"]
    assert q["resampled"] == 3 and q["cropped"] == 3
    rows = report["rows"]
    assert list(rows) == ["samples", "train (reference)", "test (reference)"]
    assert rows["samples"]["count"] == 9 and sum(rows["samples"]["predicted_class_counts"]) == 9
    train = rows["train (reference)"]
    assert train["FID"] == pytest.approx(0.0, abs=1e-6) and train["NDB"] == 0.0
    for row in rows.values():
        assert 1.0 <= row["IS"] <= 10.0 and row["mIS"] >= 1.0 and row["AM"] >= 0.0 and 0 <= row["NDB"] <= 1


def test_samples_split_mode_scores_a_reference_split(trained: tuple[Path, Path], tmp_path: Path) -> None:
    root, ckpt = trained
    out = tmp_path / "split.json"
    main(["evaluate", "samples", "--split", "validation", "--classifier", str(ckpt), "--reference", str(root),
          "--json", str(out), "--ndb-bins", "10", "--device", "cpu"])
    rows = json.loads(out.read_text())["rows"]
    assert list(rows) == ["validation (reference)", "train (reference)", "test (reference)"]
    assert rows["validation (reference)"]["count"] == 20
    assert rows["validation (reference)"]["FID"] > rows["train (reference)"]["FID"]


def test_samples_protocol_is_named_in_table_and_json(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, ckpt = trained
    base = ["evaluate", "samples", "--split", "validation", "--classifier", str(ckpt), "--reference", str(root),
            "--ndb-bins", "10", "--device", "cpu"]
    reports = {}
    for protocol in ("ours", "sashimi"):
        out = tmp_path / f"{protocol}.json"
        main([*base, "--json", str(out), "--protocol", protocol])
        assert f"({protocol} protocol)" in capsys.readouterr().out
        reports[protocol] = json.loads(out.read_text())
        assert reports[protocol]["protocol"] == protocol and reports[protocol]["protocol_notes"]
    ours, sash = reports["ours"]["rows"], reports["sashimi"]["rows"]
    assert list(sash) == list(ours)
    for name in ours:  # same formula for FID and AM; IS differs (per-class KL on a half split)
        assert sash[name]["FID"] == pytest.approx(ours[name]["FID"], rel=1e-5, abs=1e-4)
        assert sash[name]["AM"] == pytest.approx(ours[name]["AM"], rel=1e-5, abs=1e-6)
        assert sash[name]["NDB"] == ours[name]["NDB"]
    default = tmp_path / "default.json"
    main([*base, "--json", str(default)])
    assert json.loads(default.read_text())["protocol"] == "ours"


def test_samples_unknown_protocol_is_a_one_line_error(
    trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, ckpt = trained
    err = _run_error(["evaluate", "samples", "--split", "test", "--classifier", str(ckpt), "--reference", str(root),
                      "--protocol", "bogus"], capsys)
    assert "--protocol" in err and "'bogus'" in err and "ours, sashimi" in err


def test_samples_folder_errors(trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, ckpt = trained
    base = ["--classifier", str(ckpt), "--reference", str(root)]
    assert "not found" in _run_error(["evaluate", "samples", str(tmp_path / "nope"), *base], capsys)
    (tmp_path / "empty").mkdir()
    assert "no audio files" in _run_error(["evaluate", "samples", str(tmp_path / "empty"), *base], capsys)
    assert "either" in _run_error(["evaluate", "samples", *base], capsys)
    assert "--split" in _run_error(["evaluate", "samples", "--split", "dev", *base], capsys)


SC09_FSDD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sc09-fsdd"
SHIPPED = Path(__file__).resolve().parents[1] / "eval" / "weights" / "sc09-fsdd-classifier.pt"


@pytest.mark.skipif(not (SC09_FSDD.is_dir() and SHIPPED.is_file()), reason="needs ../shared/data/sc09-fsdd and the shipped weights")
def test_shipped_classifier_reaches_97_percent_on_sc09_fsdd_test() -> None:
    from audiomamba.eval.clips import load_split

    torch.set_num_threads(1)
    waves, labels = load_split(SC09_FSDD, "test", progress=False)
    model = load_classifier(SHIPPED)
    accuracy = (model.probs(waves).argmax(-1) == labels).float().mean().item()
    assert accuracy >= 0.97


def test_train_classifier_argument_errors(trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = trained
    out = ["--out", str(tmp_path / "c.pt")]
    assert "--epochs" in _run_error(["evaluate", "train-classifier", str(root), *out, "--epochs", "0"], capsys)
    assert "--device" in _run_error(["evaluate", "train-classifier", str(root), *out, "--device", "tpu"], capsys)
    if not torch.cuda.is_available():
        assert "no GPU" in _run_error(["evaluate", "train-classifier", str(root), *out, "--device", "cuda"], capsys)
    assert "not found" in _run_error(["evaluate", "train-classifier", str(tmp_path / "nope"), *out], capsys)
    assert not (tmp_path / "c.pt").exists()
