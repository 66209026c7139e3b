"""Cheap batched augmentations for classifier training.

Waveform domain (B, T): random time shift (zero-filled, not circular), random gain, additive
white noise at a random absolute level. Spectrogram domain (B, 1, M, F): SpecAugment-style
frequency and time masks. All draw from an explicit ``torch.Generator`` so runs are repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AugmentConfig:
    max_shift_left: int = 800  # samples (50 ms)
    max_shift_right: int = 3200  # samples (200 ms)
    gain_db: tuple[float, float] = (-12.0, 6.0)
    noise_prob: float = 0.5
    noise_log10_std: tuple[float, float] = (-4.5, -2.5)
    freq_mask: int = 8  # bins
    time_mask: int = 12  # frames
    mask_prob: float = 0.5


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def time_shift(wave: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift each clip by ``shift[b]`` samples (positive = later), filling with zeros. (B, T) → (B, T)."""
    b, t = wave.shape
    src = torch.arange(t).unsqueeze(0) - shift.unsqueeze(1)  # (B, T) source index
    valid = (src >= 0) & (src < t)
    return torch.where(valid, wave.gather(1, src.clamp(0, t - 1)), torch.zeros((), dtype=wave.dtype))


def augment_wave(wave: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """(B, T) CPU waveforms → augmented (B, T): shift, gain, optional noise; clipped to [-1, 1]."""
    b, _ = wave.shape
    shift = torch.randint(-cfg.max_shift_left, cfg.max_shift_right + 1, (b,), generator=gen)
    out = time_shift(wave, shift)
    gain = 10.0 ** (_uniform(b, *cfg.gain_db, gen) / 20.0)
    out = out * gain.unsqueeze(1)
    std = 10.0 ** _uniform(b, *cfg.noise_log10_std, gen)
    std = torch.where(torch.rand(b, generator=gen) < cfg.noise_prob, std, torch.zeros(()))
    out = out + std.unsqueeze(1) * torch.randn(out.shape, generator=gen)
    return out.clamp(-1.0, 1.0)


def mask_spec(spec: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """(B, 1, M, F) log-mel in [-1, 0] → one frequency band and one time span set to the floor (-1)."""
    b, _, m, f = spec.shape
    apply = (torch.rand(b, generator=gen) < cfg.mask_prob).view(b, 1, 1, 1)
    fw = torch.randint(0, cfg.freq_mask + 1, (b,), generator=gen)
    f0 = (torch.rand(b, generator=gen) * (m - fw)).long()
    tw = torch.randint(0, cfg.time_mask + 1, (b,), generator=gen)
    t0 = (torch.rand(b, generator=gen) * (f - tw)).long()
    mi = torch.arange(m).view(1, m)
    ti = torch.arange(f).view(1, f)
    fmask = (mi >= f0[:, None]) & (mi < (f0 + fw)[:, None])  # (B, M)
    tmask = (ti >= t0[:, None]) & (ti < (t0 + tw)[:, None])  # (B, F)
    mask = (fmask[:, :, None] | tmask[:, None, :]).unsqueeze(1) & apply  # (B, 1, M, F), built on CPU
    return torch.where(mask.to(spec.device), torch.full((), -1.0, device=spec.device), spec)
