"""Issue 16: the data pre-flight before step 1 (stop, or --skip-bad), its cache, missing list
entries, `data info`'s exit code, and a clip that goes unreadable in the middle of a run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datafixtures import make_music, make_sc09
from train_helpers import tiny_recipe

from audiomamba.errors import DataError


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _music_with_empty_file(root: Path) -> Path:
    make_music(root, n_files=5, seconds=0.3)
    (root / "zz_empty.wav").write_bytes(b"")
    return root


def test_training_stops_before_step_1_on_a_bad_file(tmp_path: Path) -> None:
    from audiomamba.train import RunOptions, train_recipe

    data = _music_with_empty_file(tmp_path / "music")
    with pytest.raises(DataError, match="--skip-bad"):
        train_recipe(tiny_recipe(data), RunOptions(out=tmp_path / "run", max_steps=2, device="cpu", progress=False))
    assert not (tmp_path / "run").exists()  # nothing written


def test_skip_bad_leaves_the_file_out_and_records_it(tmp_path: Path) -> None:
    from audiomamba.train import RunOptions, train_recipe

    data = _music_with_empty_file(tmp_path / "music")
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="skip-bad"):
        result = train_recipe(tiny_recipe(data), RunOptions(out=run, max_steps=2, device="cpu", progress=False,
                                                             skip_bad=True))
    assert result.step == 2
    assert (run / "rejected_files.txt").read_text().strip().endswith("zz_empty.wav")


def test_checks_are_cached_by_size_and_mtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from audiomamba.data import inspect as insp

    data = _music_with_empty_file(tmp_path / "music")
    first = insp.inspect_folder(data, deep=False)
    calls = []
    monkeypatch.setattr(insp, "audio_info", lambda p: calls.append(p))
    second = insp.inspect_folder(data, deep=False)
    assert calls == [] and second.problems == first.problems and len(second.infos) == len(first.infos)
    (data / "zz_empty.wav").write_bytes(b"RIFF")  # changed: read again
    monkeypatch.undo()
    assert len(insp.inspect_folder(data, deep=False).rejected) == 1


def test_list_entries_without_a_file_are_reported(tmp_path: Path) -> None:
    from audiomamba.data.inspect import inspect_folder

    root = make_sc09(tmp_path / "sc09", per_split=(2, 1, 1), seconds=0.2)
    with open(root / "testing_list.txt", "a") as fh:
        fh.write("three/gone_nohash_9.wav\n")
    report = inspect_folder(root, deep=False)
    assert any("gone_nohash_9.wav" in p and "testing_list.txt" in p for p in report.problems)


def test_data_info_exits_non_zero_on_rejects(tmp_path: Path) -> None:
    good = make_music(tmp_path / "good", n_files=4, seconds=0.2)
    bad = _music_with_empty_file(tmp_path / "bad")
    run = [sys.executable, "-m", "audiomamba", "data", "info", "--quick"]
    assert subprocess.run([*run, str(good)], capture_output=True).returncode == 0
    res = subprocess.run([*run, str(bad)], capture_output=True, text=True)
    assert res.returncode == 1 and "rejected" in res.stdout


def test_a_clip_that_goes_unreadable_mid_run_is_skipped_and_counted(tmp_path: Path) -> None:
    from audiomamba.data.resilient import Resilient

    class Flaky(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int):
            if i == 1:
                raise OSError("Input/output error")
            t = torch.full((8,), i)
            return t, t

    ds = Resilient(Flaky(), retries=1, delay=0.0)
    with pytest.warns(UserWarning, match="skipping item 1"):
        inputs, _, skipped = ds[1]
    assert int(inputs[0]) == 2 and int(skipped) == 1
    assert int(ds[0][2]) == 0


def test_training_goes_on_when_a_file_vanishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from audiomamba.data.youtubemix import YouTubeMixDataset
    from audiomamba.train import RunOptions, train_recipe

    data = make_music(tmp_path / "music", n_files=5, seconds=0.3)
    original = YouTubeMixDataset.waveform

    def flaky(self, index: int) -> torch.Tensor:
        if self.split == "train" and self.segments[index][0] == 0:  # every segment of the first training file
            raise DataError("cannot read music/00.wav (vanished)")
        return original(self, index)

    monkeypatch.setattr(YouTubeMixDataset, "waveform", flaky)
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="skipping item"):
        result = train_recipe(tiny_recipe(data, "train.steps=6"), RunOptions(out=run, device="cpu", progress=False))
    assert result.step == 6
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(r.get("skipped_items", 0) for r in records) >= 1
    assert np.isfinite([r["loss"] for r in records if r["kind"] == "train"]).all()


def test_check_samples_finds_a_nan_file_before_step_1(tmp_path: Path) -> None:
    from datafixtures import write

    from audiomamba.train import RunOptions, train_recipe

    data = make_music(tmp_path / "music", n_files=5, seconds=0.3)
    bad = np.zeros(4800, dtype=np.float32)
    bad[100] = np.nan
    write(data / "zz_nan.wav", bad, subtype="FLOAT")
    opts = dict(max_steps=2, device="cpu", progress=False, check_samples=True)
    with pytest.raises(DataError, match="--skip-bad"):
        train_recipe(tiny_recipe(data), RunOptions(out=tmp_path / "run", **opts))
    with pytest.warns(UserWarning, match="skip-bad"):
        assert train_recipe(tiny_recipe(data), RunOptions(out=tmp_path / "run", skip_bad=True, **opts)).step == 2


def test_fewer_items_than_one_batch_is_a_clear_error(tmp_path: Path) -> None:
    from audiomamba.train import RunOptions, train_recipe

    data = make_music(tmp_path / "music", n_files=5, seconds=0.3)
    with pytest.raises(DataError, match="fewer than one batch"):
        train_recipe(tiny_recipe(data, "data.batch_size=512"), RunOptions(out=tmp_path / "run", device="cpu",
                                                                          progress=False))
    assert not (tmp_path / "run").exists()
