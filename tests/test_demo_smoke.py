"""A short end-to-end demo run on a tiny synthesised dataset, and the synthesiser itself."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
from rich.console import Console

from audiomamba.synth import synthesize_piece, write_dataset
from audiomamba.train.demo import DemoOptions, run_demo


def test_synth_is_deterministic_pitched_and_in_range(tmp_path):
    a, b, c = synthesize_piece(2.0, seed=1), synthesize_piece(2.0, seed=1), synthesize_piece(2.0, seed=2)
    assert a.shape == (32000,) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.abs(a).max() <= 0.9 + 1e-6 and np.abs(a).max() > 0.5
    # piano-like: energy concentrated in a few spectral peaks (not noise)
    spec = np.abs(np.fft.rfft(a))
    top = np.sort(spec)[::-1]
    assert top[:200].sum() / spec.sum() > 0.2
    paths = write_dataset(tmp_path, n_files=2, seconds=0.5, seed=0)
    wave, sr = sf.read(paths[0])
    assert sr == 16000 and wave.shape == (8000,)


def test_demo_smoke(tmp_path):
    opts = DemoOptions(
        out=tmp_path / "demo", minutes=0.25, n_files=5, file_seconds=1.5, sample_len=512, batch_size=4,
        audio_seconds=0.1, prompt_seconds=0.05, max_val_batches=2, device="cpu", progress=False,
    )
    summary = run_demo(opts, Console(quiet=True))
    out = tmp_path / "demo"
    for name in ("curves.png", "spectrogram.png", "real.wav", "model.wav", "summary.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text())["steps"] == summary["steps"] > 0
    wave, sr = sf.read(out / "model.wav")
    assert sr == 16000 and len(wave) == 1600
    assert 0 < summary["unigram_entropy_bits_validation"] <= 8
    # training made progress: best validation BPB below the first evaluation
    assert summary["val_bpb_best"] < summary["val_bpb_first"]
