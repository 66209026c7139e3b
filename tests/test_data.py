"""Datasets on generated fixtures and on the shared stand-in data, and every bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from datafixtures import make_music, make_sc09, tone, write

from audiomamba.audio import load_audio, save_wav
from audiomamba.data import SC09Dataset, YouTubeMixDataset, build_dataset, seqlen_schedule
from audiomamba.data.inspect import inspect_folder
from audiomamba.errors import DataError
from audiomamba.tokenizer import Q_ZERO

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_sc09_splits_labels_and_padding(tmp_path: Path) -> None:
    root = make_sc09(tmp_path / "sc09", per_split=(3, 1, 2), seconds=0.5)
    (root / "bed").mkdir()  # a non-digit Speech Commands word is ignored
    write(root / "bed" / "x.wav", tone(0.5))
    sizes = {s: len(SC09Dataset(root, s)) for s in ("train", "validation", "test")}
    assert sizes == {"train": 30, "validation": 10, "test": 20}
    ds = SC09Dataset(root, "train")
    assert sorted(set(ds.labels)) == list(range(10))
    wave = ds.waveform(0)
    assert wave.shape == (16000,) and torch.all(wave[8000:] == 0) and wave[:8000].abs().max() > 0.4
    inp, tgt = ds[0]
    assert inp.shape == tgt.shape == (16000,) and inp.dtype == torch.int64
    assert inp[0] == Q_ZERO and torch.equal(inp[1:], tgt[:-1])


def test_youtubemix_split_segments_and_random_access(tmp_path: Path) -> None:
    root = make_music(tmp_path / "music", n_files=20, seconds=1.0)
    train = YouTubeMixDataset(root, "train", sample_len=4000)
    val = YouTubeMixDataset(root, "validation", sample_len=4000)
    test = YouTubeMixDataset(root, "test", sample_len=4000)
    assert (len(train.infos), len(val.infos), len(test.infos)) == (18, 1, 1)
    assert len(train) == 18 * 4  # 16000 // 4000 segments per file, remainder dropped
    names = [i.path.name for i in train.infos + val.infos + test.infos]
    assert names == sorted(names)
    # segment 1 of file 0 equals samples 4000..8000 of the whole file
    full = load_audio(train.infos[0].path)
    assert np.allclose(train.waveform(1).numpy(), full[4000:8000])
    inp, tgt = train[1]
    assert inp.shape == (4000,) and inp[0] == Q_ZERO


def test_stereo_and_other_rates_are_mixed_and_resampled(tmp_path: Path) -> None:
    root = tmp_path / "music"
    write(root / "a.wav", tone(1.0, 440, sr=44100, channels=2), sr=44100, subtype="PCM_24")
    write(root / "b.wav", tone(1.0, 440, sr=8000), sr=8000, subtype="FLOAT")
    write(root / "c.wav", tone(1.0, 440), subtype="PCM_16")
    for name in ("a", "b", "c"):
        x = load_audio(root / f"{name}.wav")
        assert x.shape == (16000,) and x.dtype == np.float32
        assert abs(float(np.abs(x).max()) - 0.5) < 0.03  # a 0.5 tone survives resampling and mixing
    report = inspect_folder(root)
    assert len(report.notes) == 3  # 44.1 kHz, stereo, 8 kHz are all reported
    assert report.splits == {"train": 1, "validation": 1, "test": 1}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty file"),
        (b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk", "cannot read"),
        (b"this is a text file, not audio" * 20, "cannot read"),
    ],
)
def test_corrupt_files_are_one_line_errors(tmp_path: Path, content: bytes, match: str) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    with pytest.raises(DataError, match=match) as err:
        load_audio(bad)
    assert "\n" not in str(err.value) and str(bad) in str(err.value)


def test_truncated_wav(tmp_path: Path) -> None:
    good = write(tmp_path / "good.wav", tone(1.0))
    trunc = tmp_path / "trunc.wav"
    trunc.write_bytes(good.read_bytes()[:20000])
    with pytest.raises(DataError, match="truncated WAV"):
        load_audio(trunc)


def test_nan_and_inf_samples(tmp_path: Path) -> None:
    for bad in (np.nan, np.inf):
        x = tone(0.2)
        x[10] = bad
        path = write(tmp_path / f"bad_{bad}.wav", x, subtype="FLOAT")
        with pytest.raises(DataError, match="NaN or inf"):
            load_audio(path)


def test_bad_files_are_listed_by_data_info_not_fatal(tmp_path: Path) -> None:
    root = make_music(tmp_path / "music", n_files=4)
    (root / "zzz_empty.wav").write_bytes(b"")
    report = inspect_folder(root)
    assert len(report.infos) == 4 and len(report.problems) == 1 and "empty file" in report.problems[0]
    with pytest.raises(DataError, match="empty file"):  # the dataset refuses it, naming the file
        YouTubeMixDataset(root, "train", 4000)


def test_sc09_long_clip_is_cropped_with_warning(tmp_path: Path) -> None:
    root = make_sc09(tmp_path / "sc09", per_split=(1, 1, 1))
    write(root / "zero" / "long_nohash_0.wav", tone(1.5))
    ds = SC09Dataset(root, "train")
    idx = [p.name for p in ds.files].index("long_nohash_0.wav")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ds.waveform(idx).shape == (16000,)
    assert any("cropped" in str(w.message) for w in caught)
    assert any("longer than 1 s" in n for n in inspect_folder(root).notes)


def test_sc09_missing_list_files(tmp_path: Path) -> None:
    root = make_sc09(tmp_path / "sc09", per_split=(1, 1, 1))
    (root / "testing_list.txt").unlink()
    with pytest.raises(DataError, match="missing testing_list.txt"):
        SC09Dataset(root, "train")


def test_empty_folder_and_folder_without_audio(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no audio files"):
        YouTubeMixDataset(empty, "train", 1024)
    with pytest.raises(DataError, match="no audio files"):
        inspect_folder(empty)
    text = tmp_path / "text"
    text.mkdir()
    (text / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="no audio files"):
        YouTubeMixDataset(text, "train", 1024)
    with pytest.raises(DataError, match="not found"):
        YouTubeMixDataset(tmp_path / "nope", "train", 1024)


def test_too_few_files_and_too_short(tmp_path: Path) -> None:
    root = make_music(tmp_path / "two", n_files=2)
    with pytest.raises(DataError, match="at least 3"):
        YouTubeMixDataset(root, "train", 1024)
    root = make_music(tmp_path / "short", n_files=3, seconds=0.1)
    with pytest.raises(DataError, match="use a shorter sample_len"):
        YouTubeMixDataset(root, "train", 16384)


def test_sample_len_not_divisible_by_pooling(tmp_path: Path) -> None:
    root = make_music(tmp_path / "music", n_files=3)
    with pytest.raises(DataError, match="not divisible by the pooling product 256: use 3840 or 4096"):
        YouTubeMixDataset(root, "train", 4000, pool_product=256)
    with pytest.raises(DataError, match="not divisible"):
        build_dataset("sc09", root, "train", pool_product=3)
    with pytest.raises(DataError, match="unknown data kind"):
        build_dataset("sc10", root, "train")


def test_seqlen_schedule_is_table14() -> None:
    sched = seqlen_schedule(pool_product=256)
    assert sched[0] == (958464, 1) and sched[-1] == (8192, 128)
    assert all(0.8e6 < n * b < 1.1e6 for n, b in sched)


def test_save_wav_round_trip(tmp_path: Path) -> None:
    x = tone(0.25)
    path = save_wav(tmp_path / "out" / "x.wav", x)
    y = load_audio(path)
    assert np.abs(x - y).max() < 1e-4
    assert not list(path.parent.glob("*.tmp"))  # written atomically


def test_save_wav_writes_what_libsndfile_writes(tmp_path: Path) -> None:
    import soundfile as sf

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-1, 1, 20000), [1.0, -1.0, 1.5, -1.5, np.nan, 0.0, 0.4 / 32768, -0.4 / 32768]])
    ours = save_wav(tmp_path / "ours.wav", x)
    theirs = tmp_path / "theirs.wav"
    sf.write(str(theirs), np.nan_to_num(x.astype(np.float32)).clip(-1, 1), 16000, subtype="PCM_16", format="WAV")
    assert ours.read_bytes() == theirs.read_bytes()
    info = sf.info(str(ours))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, x.shape[0], "PCM_16")


@pytest.mark.skipif(not (SHARED / "sc09-fsdd").is_dir(), reason="shared data not present")
def test_shared_stand_in_data_loads_unchanged() -> None:
    sizes = {s: len(SC09Dataset(SHARED / "sc09-fsdd", s)) for s in ("train", "validation", "test")}
    assert sizes == {"train": 2000, "validation": 250, "test": 250}
    ds = YouTubeMixDataset(SHARED / "pianomix", "test", sample_len=16384)
    inp, tgt = ds[0]
    assert inp.shape == (16384,) and 0 <= int(tgt.min()) and int(tgt.max()) <= 255
