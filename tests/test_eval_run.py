"""``audiomamba evaluate run``: generate, filter and score a run in one command (CPU, tiny run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datafixtures import make_sc09
from train_helpers import tiny_recipe

# the small single classifier: this test is about the pipeline, and the shipped ensemble is 12x the work
WEIGHTS = Path(__file__).resolve().parents[1] / "eval" / "weights" / "sc09-fsdd-classifier-small.pt"


@pytest.fixture(scope="module")
def sc09_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from audiomamba.train import RunOptions, train_recipe

    root = tmp_path_factory.mktemp("evalrun")
    data = make_sc09(root / "sc09", per_split=(2, 1, 1))
    recipe = tiny_recipe(data, "train.steps=2", name="sc09-mamba-tiny")
    train_recipe(recipe, RunOptions(out=root / "run", max_steps=2, device="cpu", progress=False))
    return data, root / "run"


def test_evaluate_run_generates_filters_and_scores(sc09_run: tuple[Path, Path], tmp_path: Path) -> None:
    from audiomamba.eval.run import evaluate_run

    data, run = sc09_run
    report = evaluate_run(run, tmp_path / "ev", WEIGHTS, data, n=10, batch=4, ndb_bins=2, progress=False,
                          seconds=0.02, device="cpu")
    rows = report["rows"]
    names = list(rows)
    assert names[0] == "samples, all 10" and names[1].startswith("samples, SaShiMi filter (")
    assert names[2:] == ["train (reference)", "test (reference)"]
    kept = rows[names[1]]["count"]
    assert rows[names[0]]["count"] == 10 and 3 <= kept < 10  # 40th..95th percentile of 10
    assert rows["train (reference)"]["count"] == 20 and rows["test (reference)"]["count"] == 10
    for row in rows.values():
        assert row["IS"] >= 1.0 and sum(row["predicted_class_counts"]) == row["count"]
    assert rows[names[0]]["samples_bpb"] > 0
    saved = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert saved["samples"] == 10 and saved["protocol"] == "ours" and set(saved["seconds"]) == {"sampling", "writing", "scoring", "wall"}
    index = json.loads((tmp_path / "ev" / "samples" / "index.json").read_text())
    assert len(index) == 10 and sum(r["kept"] for r in index) == kept and "digit" in index[0]
    assert len(list((tmp_path / "ev" / "samples" / "dropped").glob("*.wav"))) == 10 - kept
    papers = evaluate_run(run, tmp_path / "ev2", WEIGHTS, data, n=10, batch=10, ndb_bins=2, progress=False,
                          seconds=0.02, device="cpu", protocol="sashimi")
    assert papers["protocol"] == "sashimi" and papers["rows"]["samples, all 10"]["count"] == 10


def test_evaluate_run_cli_rejects_bad_options(sc09_run: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from audiomamba.cli import main

    data, run = sc09_run
    base = ["evaluate", "run", str(run), "--classifier", str(WEIGHTS), "--reference", str(data),
            "--out", str(tmp_path / "ev"), "--device", "cpu"]
    for extra, message in ((["--samples", "20"], "--samples 20 is too few"), (["--top-p", "0"], "--top-p"),
                           (["--temperature", "-1"], "--temperature"), (["--protocol", "papers"], "unknown protocol")):
        with pytest.raises(SystemExit) as ex:
            main([*base, *extra])
        err = capsys.readouterr().err
        assert ex.value.code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "ev").exists()


def test_snapshots_score_all_samples_and_the_sashimi_filtered_ones(sc09_run: tuple[Path, Path], tmp_path: Path) -> None:
    from audiomamba.eval.snapshots import score_snapshots

    data, run = sc09_run
    rows = score_snapshots(run, data, WEIGHTS, tmp_path / "snap", n=10, device="cpu", progress=False,
                           sashimi_filter=True, seconds=0.02, ndb_bins=2)
    assert [(r["checkpoint"], r["filter"]) for r in rows] == [("last.pt", "none"), ("last.pt", "sashimi")]
    everything, kept = rows
    assert everything["count"] == 10 and 3 <= kept["count"] < 10
    index = json.loads((tmp_path / "snap" / "last-T1" / "index.json").read_text())
    assert sum(r["kept"] for r in index) == kept["count"]
    # the filtered row is scored on the kept samples alone: its BPB is their mean
    assert kept["samples_bpb"] == pytest.approx(sum(r["bpb"] for r in index if r["kept"]) / kept["count"], rel=1e-3)
    table = (tmp_path / "snap" / "snapshots.md").read_text()
    assert f"| 1, SaShiMi filter ({kept['count']}) |" in table
