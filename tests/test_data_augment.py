"""Waveform augmentation of the generator's SC09 training clips (audiomamba/data/augment.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datafixtures import make_sc09

from audiomamba.data import SC09Dataset, WaveAugment, build_dataset
from audiomamba.data.augment import PEAK, change_speed
from audiomamba.errors import ConfigError, DataError
from audiomamba.recipe import load_recipe
from audiomamba.tokenizer import Q_ZERO


def test_change_speed_reads_the_clip_at_the_rate():
    wave = torch.linspace(-1, 1, 101)
    torch.testing.assert_close(change_speed(wave, 1.0), wave)
    fast = change_speed(wave, 2.0)
    torch.testing.assert_close(fast[:51], wave[::2])  # twice as fast: every other sample, then silence
    assert torch.all(fast[51:] == 0)
    slow = change_speed(wave, 0.5)
    torch.testing.assert_close(slow[::2], wave[:51])  # half as fast: the midpoints in between
    torch.testing.assert_close(slow[1:100:2], (wave[:50] + wave[1:51]) / 2)


def test_change_speed_moves_a_tone_and_keeps_silence_exact():
    t = torch.arange(16000) / 16000
    wave = torch.zeros(16000)
    wave[:8000] = torch.sin(2 * torch.pi * 400 * t[:8000])
    out = change_speed(wave, 1.1)
    spec = torch.fft.rfft(out[:7000]).abs()
    assert abs(spec.argmax().item() * 16000 / 7000 - 440) < 5  # 10 % faster: 400 Hz becomes 440 Hz
    assert torch.all(out[7300:] == 0)  # the speech ends sooner; the padding stays digital silence


def test_wave_augment_draws_within_its_ranges():
    wave = torch.zeros(16000)
    wave[:4000] = 0.5 * torch.sin(torch.arange(4000) * 0.05)
    aug = WaveAugment(speed=0.1, gain_db=12.0)
    g = torch.Generator().manual_seed(0)
    peaks, ends = [], []
    for _ in range(200):
        out = aug(wave, g)
        assert out.shape == wave.shape
        peaks.append(out.abs().max().item())
        ends.append(int(out.nonzero().max()))
    assert max(peaks) <= PEAK + 1e-6  # never clips
    assert min(peaks) < 0.5 * 10 ** (-9 / 20)  # quieter draws happen
    assert max(peaks) > 0.9  # louder draws happen, capped at the peak
    assert 3600 <= min(ends) < 3700 and 4300 < max(ends) <= 4444  # rate within 1 +- 0.1
    assert not WaveAugment().active and WaveAugment(gain_db=1).active


@pytest.mark.parametrize("kwargs", [{"speed": 0.7}, {"speed": -0.1}, {"gain_db": 30}])
def test_wave_augment_bad_range_is_one_line_error(kwargs):
    with pytest.raises(ConfigError, match="data.augment_") as err:
        WaveAugment(**kwargs)
    assert "\n" not in str(err.value)


def test_sc09_training_items_are_augmented_and_target_is_not(tmp_path: Path):
    root = make_sc09(tmp_path / "sc09", per_split=(1, 1, 1), seconds=0.5)
    plain = SC09Dataset(root, "train", "none")
    aug = build_dataset("sc09", root, "train", normalization="none", augment=WaveAugment(speed=0.1, gain_db=6))
    torch.manual_seed(0)
    x1, y1 = aug[0]
    x2, y2 = aug[0]
    assert not torch.equal(y1, y2)  # a new draw every read
    assert torch.equal(x1[1:], y1[:-1])  # still input = target shifted right
    torch.testing.assert_close(aug.target(0), plain[0][1])  # target() reads the clip as it is
    assert torch.all(y1[9000:] == Q_ZERO) and torch.all(plain[0][1][9000:] == Q_ZERO)  # silence on its token
    assert build_dataset("sc09", root, "train", augment=WaveAugment()).augment is None


def test_recipe_augment_keys(tmp_path: Path):
    rec = load_recipe("sc09-mamba-fast-aug", [])
    assert rec.data.augment_speed > 0 and rec.data.augment_gain_db > 0
    with pytest.raises(ConfigError, match="data.augment_speed"):
        load_recipe("sc09-mamba-fast", ["data.augment_speed=0.9"])
    with pytest.raises(ConfigError, match="sc09 data only"):
        load_recipe("youtubemix-mamba-s6", ["data.augment_gain_db=3"])
    with pytest.raises(DataError, match="sc09 data only"):
        build_dataset("youtubemix", tmp_path, "train", augment=WaveAugment(speed=0.1))
