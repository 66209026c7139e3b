"""Log-mel front end, augmentations and the ResNeXt classifier's shapes."""

from __future__ import annotations

import math

import pytest
import torch
from audiomamba.eval.augment import AugmentConfig, augment_wave, mask_spec, time_shift
from audiomamba.eval.classifier import ClassifierConfig, DigitClassifier, ResNeXtBlock
from audiomamba.eval.confusion import confusion_matrix
from audiomamba.eval.features import LogMel, LogMelConfig


def test_logmel_shape_range_gain_invariance_and_silence() -> None:
    g = torch.Generator().manual_seed(0)
    x = 0.3 * torch.randn(3, 16000, generator=g)
    fe = LogMel(LogMelConfig(mu_law=False))
    s = fe(x)
    assert s.shape == (3, 1, 64, fe.frames(16000)) == (3, 1, 64, 101)
    assert s.max() <= 0 and s.min() >= -1
    torch.testing.assert_close(fe(0.1 * x), s, atol=1e-4, rtol=0)  # per-clip normalisation
    silent = fe(torch.zeros(2, 16000))
    assert torch.isfinite(silent).all() and (silent == 0).all()
    heard = LogMel()  # mu-law: silence is the constant token 128, a tiny DC level; still finite
    assert torch.isfinite(heard(torch.zeros(2, 16000))).all()
    torch.testing.assert_close(heard(0.1 * x), heard(x), atol=1e-4, rtol=0)
    nan = x.clone()
    nan[0, :50] = float("nan")
    assert torch.isfinite(fe(nan)).all()


def test_time_shift_moves_and_zero_fills() -> None:
    x = torch.arange(1, 11, dtype=torch.float32).repeat(2, 1)
    y = time_shift(x, torch.tensor([3, -2]))
    assert y[0].tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert y[1].tolist() == [3, 4, 5, 6, 7, 8, 9, 10, 0, 0]


def test_augmentations_are_seeded_and_bounded() -> None:
    x = 0.5 * torch.sin(torch.arange(16000) / 7.0).repeat(4, 1)
    cfg = AugmentConfig()
    a = augment_wave(x, cfg, torch.Generator().manual_seed(1))
    b = augment_wave(x, cfg, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    assert a.shape == x.shape and a.abs().max() <= 1.0 and not torch.equal(a, x)
    spec = LogMel()(x)
    m = mask_spec(spec, AugmentConfig(mask_prob=1.0, freq_mask=8, time_mask=12), torch.Generator().manual_seed(2))
    assert m.shape == spec.shape and (m <= spec + 1e-6).all() and (m == -1).any()


def test_resnext_block_and_classifier_shapes() -> None:
    blk = ResNeXtBlock(16, 32, stride=2, cardinality=4, bottleneck=0.5)
    assert blk(torch.randn(2, 16, 9, 11)).shape == (2, 32, 5, 6)
    assert blk.conv2.groups == 4
    model = DigitClassifier(ClassifierConfig(stem=8, widths=(16, 32), blocks=(1, 1), cardinality=4))
    logits = model(torch.randn(3, 16000))
    assert logits.shape == (3, 10)
    f, p = model.features_and_probs(torch.randn(5, 8000), batch_size=2)
    assert f.shape == (5, 32) and p.shape == (5, 10) and model.training  # mode restored
    cfg = ClassifierConfig.from_dict(model.config.to_dict())
    assert cfg == model.config


def test_confusion_matrix_counts() -> None:
    cm = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_mu_law_front_end_hears_clips_as_the_models_tokens() -> None:
    """With ``mu_law`` a 16-bit clip and its 8-bit min-max mu-law round trip (what a model trained on
    it can generate) give the same features; without it they differ (quantisation noise)."""
    from audiomamba.tokenizer import mu_law_decode, mu_law_encode

    gen = torch.Generator().manual_seed(0)
    t = torch.arange(16000) / 16000
    clip = 0.2 * torch.sin(2 * torch.pi * 300 * t) * (t < 0.4) + 1e-4 * torch.randn(16000, generator=gen)
    tokens = mu_law_encode(clip[None], "minmax")
    heard = LogMel(LogMelConfig(mu_law=True))
    assert torch.allclose(heard(clip[None]), heard(mu_law_decode(tokens)), atol=1e-5)
    plain = LogMel(LogMelConfig(mu_law=False))
    assert (plain(clip[None]) - plain(mu_law_decode(tokens))).abs().max() > 0.05
    assert LogMelConfig().mu_law  # new classifiers hear mu-law; checkpoints from before the key heard PCM:
    old = ClassifierConfig().to_dict()
    del old["logmel"]["mu_law"]
    assert ClassifierConfig.from_dict(old).logmel.mu_law is False


def test_band_norm_removes_a_fixed_channel_colour() -> None:
    """A fixed filter (pre-emphasis: +6 dB per octave) moves the plain log-mel a lot and the
    band-normalised one little; silence stays at the floor and nothing is NaN."""
    g = torch.Generator().manual_seed(1)
    t = torch.arange(16000) / 16000
    env = ((t > 0.1) & (t < 0.6)).float()  # half a second of "speech", then silence
    x = env * (torch.randn(2, 16000, generator=g) * torch.sin(2 * torch.pi * 3 * t))
    colour = torch.cat([x[:, :1], x[:, 1:] - 0.9 * x[:, :-1]], dim=1)
    plain, norm = LogMel(LogMelConfig(mu_law=False)), LogMel(LogMelConfig(mu_law=False, band_norm=True))
    speech = slice(20, 55)  # frames well inside the active part
    d_plain = (plain(colour) - plain(x))[..., speech].abs().mean()
    d_norm = (norm(colour) - norm(x))[..., speech].abs().mean()
    assert d_norm < 0.25 * d_plain, (float(d_norm), float(d_plain))
    out = norm(x)
    assert out.min() >= -1 and out.max() <= 0 and torch.isfinite(out).all()
    assert (out[..., 70:] == -1).all()  # silent frames at the floor
    assert torch.isfinite(norm(torch.zeros(1, 16000))).all()


def test_pcen_follows_onsets_discounts_a_steady_band_and_ignores_gain() -> None:
    """PCEN: in [-1, 0], gain-invariant, silence at -1; a band that switches on stands out at its onset and
    then fades towards its steady level (the dB image keeps it at full height); --pcen with --band-norm is refused."""
    t = torch.arange(16000) / 16000
    tone = torch.sin(2 * torch.pi * 1000 * t) * ((t > 0.2) & (t < 0.8)).float()
    fe = LogMel(LogMelConfig(mu_law=False, pcen=True))
    out = fe(tone[None])
    assert out.min() >= -1 and out.max() <= 0 and torch.isfinite(out).all()
    assert torch.allclose(fe(0.05 * tone[None]), out, atol=1e-5)  # the clip's gain is taken out
    assert (out[..., :15] == -1).all()  # before the tone: silence
    band = out[0, 0].argmax(dim=0)[25].item()  # the 1 kHz band
    onset, late = out[0, 0, band, 21].item(), out[0, 0, band, 75].item()
    assert onset > late + 0.3, (onset, late)  # the onset stands out, the steady level fades
    plain = LogMel(LogMelConfig(mu_law=False))(tone[None])[0, 0, band]
    assert abs(plain[21].item() - plain[75].item()) < 0.05  # the dB image holds the tone at one height
    assert torch.isfinite(fe(torch.zeros(1, 16000))).all()
    from audiomamba.eval.train_classifier import recipe_configs

    from audiomamba.errors import ConfigError

    assert recipe_configs("robust", "small", pcen=True)[1].logmel.pcen
    with pytest.raises(ConfigError, match="--pcen"):
        recipe_configs("robust", "small", band_norm=True, pcen=True)


def _voiced(f0: float, seconds: float = 0.5) -> torch.Tensor:
    """A steady vowel-like sound: harmonics of ``f0`` under one fixed formant envelope (peaks at 700 and 1200 Hz)."""
    t = torch.arange(int(16000 * seconds)) / 16000
    wave = torch.zeros_like(t)
    for k in range(1, int(3800 // f0) + 1):
        f = k * f0
        amp = math.exp(-((f - 700) / 150) ** 2) + 0.6 * math.exp(-((f - 1200) / 200) ** 2) + 0.01
        wave += amp * torch.sin(2 * torch.pi * f * t)
    return (wave / wave.abs().max())[None]


def test_lifter_keeps_the_envelope_and_drops_the_pitch() -> None:
    """Two voices with one formant envelope and different pitch (110 and 150 Hz) are closer after
    cepstral smoothing than before; keeping every DCT component changes nothing; bad values are refused."""
    plain, smooth = LogMel(LogMelConfig(mu_law=False)), LogMel(LogMelConfig(mu_law=False, lifter=16))
    low, high = _voiced(110.0), _voiced(150.0)
    bands, frames = slice(4, 48), slice(10, 40)  # above both F0s, below the 4 kHz top harmonic; steady frames
    d_plain = (plain(low) - plain(high))[..., bands, frames].abs().mean()
    d_smooth = (smooth(low) - smooth(high))[..., bands, frames].abs().mean()
    assert d_smooth < 0.8 * d_plain, (float(d_smooth), float(d_plain))  # measured 0.68
    out = smooth(low)
    assert out.min() >= -1 and out.max() <= 0 and torch.isfinite(out).all()
    full = LogMel(LogMelConfig(mu_law=False, lifter=64))
    assert torch.allclose(full(low), plain(low), atol=1e-5)
    with pytest.raises(ValueError, match="lifter"):
        LogMel(LogMelConfig(lifter=65))


def test_floor_noise_stays_in_the_band_and_the_clip_extent_at_the_asked_snr() -> None:
    from audiomamba.eval.augment import AUGMENT_PRESETS, add_floor_noise

    g = torch.Generator().manual_seed(0)
    clip = torch.zeros(2, 16000)
    clip[:, 1000:6000] = 0.3 * torch.sin(2 * torch.pi * 300 * torch.arange(5000) / 16000)  # 0.31 s, then padding
    out = add_floor_noise(clip, torch.tensor([10.0, 20.0]), torch.tensor([0.0, 1.0]), 4000.0, g)
    noise = out - clip
    assert (noise[:, :1000] == 0).all() and (noise[:, 6000:] == 0).all()  # only where the clip was recorded
    snr = 10 * torch.log10(clip[:, 1000:6000].pow(2).mean(1) / noise[:, 1000:6000].pow(2).mean(1))
    assert torch.allclose(snr, torch.tensor([10.0, 20.0]), atol=1.0), snr
    spec = torch.fft.rfft(noise[:, 1000:6000], dim=1).abs().pow(2)
    freqs = torch.fft.rfftfreq(5000, 1 / 16000)
    assert (spec[:, freqs > 4500].sum(1) < 0.02 * spec.sum(1)).all()  # band-limited like 8 kHz recordings
    quiet = add_floor_noise(clip, torch.full((2,), float("inf")), torch.zeros(2), 4000.0, g)
    assert torch.equal(quiet, clip)
    assert AUGMENT_PRESETS["robust-floor"].floor_noise_prob > 0 and AUGMENT_PRESETS["robust"].floor_noise_prob == 0


def _vowel(f0: float, sr: int = 16000) -> torch.Tensor:
    """A 0.4 s voiced 'vowel' (harmonics of f0 under formants at 700 and 1800 Hz), silent around it."""
    t = torch.arange(sr) / sr
    sig = torch.zeros(sr)
    for h in range(1, int(3900 // f0) + 1):
        fr = torch.tensor(f0 * h)
        gain = torch.exp(-((fr - 700) / 150) ** 2) + 0.6 * torch.exp(-((fr - 1800) / 200) ** 2) + 0.02
        sig += gain * torch.sin(2 * math.pi * fr * t + h)
    sig = sig * ((t > 0.2) & (t < 0.6)).float()
    return 0.5 * sig / sig.abs().max()


def _f0_and_envelope_peak(seg: torch.Tensor, sr: int = 16000) -> tuple[float, float]:
    spec = torch.fft.rfft(seg * torch.hann_window(seg.numel())).abs()
    hz = torch.fft.rfftfreq(seg.numel(), 1 / sr)
    cands = torch.arange(80.0, 300.0, 0.5)
    bins = torch.round(cands.view(-1, 1) * torch.arange(1, 8).view(1, -1) * seg.numel() / sr).long()
    f0 = cands[spec[bins].sum(1).argmax()].item()  # harmonic sum
    smooth = torch.nn.functional.avg_pool1d(spec.view(1, 1, -1), 81, 1, 40).view(-1)
    return f0, hz[smooth.argmax()].item()


def test_pitch_shift_moves_f0_and_keeps_formants_tempo_and_power() -> None:
    from audiomamba.eval.augment import AUGMENT_PRESETS, pitch_shift

    clip = _vowel(130.0)
    factors = torch.tensor([1.2, 0.85, 1.0])
    out = pitch_shift(clip.expand(3, -1).clone(), factors)
    assert out.shape == (3, 16000)
    for o, r in zip(out, factors.tolist(), strict=True):
        f0, peak = _f0_and_envelope_peak(o[4800:8000])
        assert abs(f0 - 130.0 * r) <= 2.0, (r, f0)  # the pitch moved by the factor
        assert abs(peak - 700.0) <= 130.0, (r, peak)  # the first formant stayed (nearest harmonic to 700 Hz)
        assert o[11200:].pow(2).mean() < 1e-6 * o[4800:8000].pow(2).mean()  # silent after the vowel: tempo kept
        assert torch.allclose(o.pow(2).mean(), clip.pow(2).mean(), rtol=1e-3)  # power kept
    assert torch.allclose(out[2], clip, atol=2e-3)  # factor 1 gives the clip back
    # a 1.2 speed-up would move the formant too; the shift does not
    assert AUGMENT_PRESETS["robust-pitch"].pitch_prob > 0 and AUGMENT_PRESETS["robust"].pitch_prob == 0


def test_pitch_shift_in_augment_wave_is_seeded_and_changes_the_clips() -> None:
    from audiomamba.eval.augment import AUGMENT_PRESETS

    w = 0.3 * torch.randn(6, 16000)
    runs = [augment_wave(w, AUGMENT_PRESETS["robust-pitch"], torch.Generator().manual_seed(4)) for _ in range(2)]
    assert torch.equal(runs[0], runs[1]) and runs[0].abs().max() <= 1.0
    plain = augment_wave(w, AUGMENT_PRESETS["robust"], torch.Generator().manual_seed(4))
    assert not torch.equal(plain, runs[0])
