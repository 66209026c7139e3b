"""The noise flag judged against the training data: speech then silence is kept; noise throughout,
band-limited or full band, and a late runaway are flagged; real clips are (almost) never flagged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from audiomamba.generate.noise import NoiseProfile, detect_runaway_noise, fit_profile
from audiomamba.tokenizer import mu_law_decode, mu_law_encode

SC09_FSDD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sc09-fsdd"


def _decoded(wave: np.ndarray) -> np.ndarray:
    """A waveform as the model sees and writes it: minmax mu-law tokens, decoded."""
    return mu_law_decode(mu_law_encode(torch.from_numpy(wave), "minmax")).numpy()


def _speechlike(rng: np.random.Generator, seconds_voiced: float = 0.5, band_hz: float = 3800.0) -> np.ndarray:
    """A voiced, formant-shaped sound with a short fricative, then digital silence (padded clip)."""
    n = int(seconds_voiced * 16000)
    t = np.arange(n) / 16000
    f0 = 120 + 20 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voiced = sum(np.sin(k * phase) / k * np.exp(-(((k * 120) - 700) ** 2) / 2e5) for k in range(1, 30))
    voiced = voiced * np.hanning(n) * 0.3
    fric = _lowpass(rng.normal(0, 0.05, 1200), band_hz)
    wave = np.zeros(16000)
    wave[:1200] = fric
    wave[1200 : 1200 + n] += voiced
    return wave


def _lowpass(x: np.ndarray, band_hz: float) -> np.ndarray:
    spec = np.fft.rfft(x)
    spec[int(band_hz / 16000 * x.shape[0]) :] = 0
    return np.fft.irfft(spec, n=x.shape[0])


@pytest.fixture(scope="module")
def profile() -> NoiseProfile:
    rng = np.random.default_rng(0)
    return fit_profile([_decoded(_speechlike(rng, rng.uniform(0.2, 0.8))) for _ in range(64)])


def test_profile_finds_the_band_and_keeps_speech_then_silence(profile: NoiseProfile) -> None:
    assert 3000 <= profile.band_hz <= 4500  # the clips hold nothing above ~3.8 kHz
    assert 0.3 <= profile.max_noisy_fraction < 0.95
    rng = np.random.default_rng(1)
    report = detect_runaway_noise(_decoded(_speechlike(rng)), profile)
    assert not report.noise and not report.noise_throughout and not report.runaway_noise


@pytest.mark.parametrize("band_hz", [8000.0, 3800.0])
def test_loud_noise_throughout_is_flagged(profile: NoiseProfile, band_hz: float) -> None:
    rng = np.random.default_rng(2)
    noise = _lowpass(rng.normal(0, 0.3, 16000), band_hz) + 0.1  # a DC offset, as minmax samples have
    report = detect_runaway_noise(np.clip(noise, -1, 1), profile)
    assert report.noise_throughout and report.noise
    assert report.noisy_fraction > 0.9
    # the old first-third-against-last-third test alone misses it
    assert not report.runaway_noise


def test_late_runaway_is_flagged(profile: NoiseProfile) -> None:
    rng = np.random.default_rng(3)
    wave = _decoded(_speechlike(rng, 0.3))
    wave[11000:] = rng.uniform(-0.9, 0.9, 5000)
    report = detect_runaway_noise(wave, profile)
    assert report.runaway_noise and report.noise


def test_profile_round_trips_through_the_run_folder(tmp_path: Path, profile: NoiseProfile) -> None:
    profile.save(tmp_path / "noise_profile.json")
    assert NoiseProfile.load(tmp_path) == profile
    assert NoiseProfile.load(tmp_path / "missing") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "noise_profile.json").write_text("{not json")
    assert NoiseProfile.load(tmp_path / "bad") is None


@pytest.mark.skipif(not SC09_FSDD.is_dir(), reason="needs ../shared/data/sc09-fsdd")
def test_real_clips_are_rarely_flagged_and_noise_is() -> None:
    from audiomamba.data import build_dataset
    from audiomamba.train.loop import noise_profile_of

    train = build_dataset("sc09", SC09_FSDD, "train")
    profile = noise_profile_of(train)
    test = build_dataset("sc09", SC09_FSDD, "test")
    flagged = sum(detect_runaway_noise(mu_law_decode(test[i][1]).numpy(), profile).noise for i in range(len(test)))
    assert flagged <= 0.02 * len(test), f"{flagged} of {len(test)} real test clips flagged"
    rng = np.random.default_rng(4)
    noise = np.clip(rng.normal(-0.1, 0.3, 16000), -1, 1)  # what the untrained sc09-mamba wrote (issue 13)
    assert detect_runaway_noise(noise, profile).noise_throughout


def test_detect_noise_judges_a_batch_as_one_clip_at_a_time() -> None:
    from audiomamba.generate.noise import NOISE_CHUNK, detect_noise

    rng = np.random.default_rng(3)
    n = 2 * NOISE_CHUNK + 3  # chunks of the batch and a short last one
    waves = np.stack([_decoded(_speechlike(rng)) for _ in range(n)])
    waves[1] = np.clip(rng.normal(0, 0.3, 16000), -1, 1)  # noise throughout
    waves[NOISE_CHUNK] = 0.0  # digital silence
    waves[n - 1, 10000:] = np.clip(rng.normal(0, 0.5, 6000), -1, 1)  # a late runaway
    profile = NoiseProfile(4000.0, 0.02, 0.4, 10)
    batch = detect_noise(waves, profile)
    assert len(batch) == n
    assert [r.as_dict() for r in batch] == [detect_runaway_noise(w, profile).as_dict() for w in waves]
    assert batch[1].noise_throughout and batch[n - 1].runaway_noise and not batch[0].noise and not batch[NOISE_CHUNK].noise


@pytest.mark.parametrize("length", [16000, 1000], ids=["1s", "short-third"])
@pytest.mark.parametrize("band_hz", [4000.0, 8000.0])
def test_detect_noise_reuses_the_clips_spectra_without_changing_a_number(band_hz: float, length: int) -> None:
    """detect_noise takes the early third's flatness from the whole clip's first frames (one FFT fewer): the same
    numbers, bit for bit, as the early third's own frames, the late third's and the clip's noisy frames computed
    apart; a third shorter than a frame (zero-padded there) keeps its own."""
    from audiomamba.generate.noise import _loud_flatness, _noisy_fractions, detect_noise

    rng = np.random.default_rng(5)
    waves = np.stack([_decoded(_speechlike(rng))[:length] for _ in range(5)])
    waves[2] = np.clip(rng.normal(0, 0.3, length), -1, 1)
    profile = NoiseProfile(band_hz, 0.02, 0.4, 10)
    third = length // 3
    early, late = waves[:, :third].astype(np.float64), waves[:, -third:].astype(np.float64)
    expected = zip(_noisy_fractions(waves.astype(np.float64), profile), _loud_flatness(early), _loud_flatness(late),
                   strict=True)
    for report, (fraction, f_early, f_late) in zip(detect_noise(waves, profile), expected, strict=True):
        assert (report.noisy_fraction, report.flatness_early, report.flatness_late) == (fraction, f_early, f_late)


def test_detect_noise_takes_a_tensor_on_its_device() -> None:
    """A tensor is judged where it lies (a generation's samples on its GPU): on a CPU the same reports, bit for bit,
    as its numpy array; on a GPU (where there is one) the same verdicts and statistics within 1e-9."""
    from audiomamba.generate.noise import NOISE_CHUNK, detect_noise

    rng = np.random.default_rng(6)
    waves = np.stack([_decoded(_speechlike(rng)) for _ in range(NOISE_CHUNK + 2)]).astype(np.float32)
    waves[3] = np.clip(rng.normal(0, 0.3, 16000), -1, 1)
    waves[5, 10000:] = np.clip(rng.normal(0, 0.5, 6000), -1, 1)
    profile = NoiseProfile(4000.0, 0.02, 0.4, 10)
    expected = [r.as_dict() for r in detect_noise(waves, profile)]
    assert expected[3]["noise_throughout"] and expected[5]["runaway_noise"]
    assert [r.as_dict() for r in detect_noise(torch.from_numpy(waves), profile)] == expected
    if torch.cuda.is_available():
        got = [r.as_dict() for r in detect_noise(torch.from_numpy(waves).cuda(), profile)]
        for g, e in zip(got, expected, strict=True):
            assert {k: v for k, v in g.items() if isinstance(v, bool)} == {k: v for k, v in e.items() if isinstance(v, bool)}
            assert all(abs(g[k] - e[k]) <= 1e-9 for k in e if not isinstance(e[k], bool))
