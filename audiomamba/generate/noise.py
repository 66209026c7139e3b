"""Runaway-noise detection: a sample whose later part turns into loud broadband noise.

Spectral flatness (geometric / arithmetic mean of the power spectrum, per frame, then averaged) is
near 0 for tonal audio and about 0.5 for white noise. A sample is flagged when its last part is
flat (noise-like), much flatter than its first part, and much louder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

FLAT_NOISE = 0.3  # flatness above which a part counts as broadband noise
FLAT_RATIO = 2.0  # late flatness must exceed this multiple of the early flatness (plus 0.1)
LEVEL_RATIO = 1.5  # and the late RMS this multiple of the early RMS


@dataclass(frozen=True)
class NoiseReport:
    """Per-sample statistics of the first and last third and the verdict."""

    flatness_early: float
    flatness_late: float
    rms_early: float
    rms_late: float
    runaway_noise: bool

    def as_dict(self) -> dict[str, float | bool]:
        return asdict(self)


def spectral_flatness(wave: np.ndarray, n_fft: int = 512, hop: int = 256) -> float:
    """Mean per-frame spectral flatness of ``wave`` ((T,) float), ignoring near-silent frames."""
    if wave.shape[0] < n_fft:
        wave = np.pad(wave, (0, n_fft - wave.shape[0]))
    frames = np.lib.stride_tricks.sliding_window_view(wave, n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2 + 1e-12
    energy = power.mean(axis=-1)
    loud = energy > 1e-6 * max(float(energy.max()), 1e-12)
    if not loud.any():
        return 0.0
    flat = np.exp(np.log(power[loud]).mean(axis=-1)) / power[loud].mean(axis=-1)
    return float(flat.mean())


def detect_runaway_noise(wave: np.ndarray) -> NoiseReport:
    """Compare the first and last third of ``wave`` ((T,) float in [-1, 1])."""
    wave = np.asarray(wave, dtype=np.float64)
    third = max(wave.shape[0] // 3, 1)
    early, late = wave[:third], wave[-third:]
    f_early, f_late = spectral_flatness(early), spectral_flatness(late)
    r_early, r_late = float(np.sqrt(np.mean(early**2))), float(np.sqrt(np.mean(late**2)))
    runaway = (
        f_late >= FLAT_NOISE
        and f_late >= FLAT_RATIO * f_early + 0.1
        and r_late >= LEVEL_RATIO * r_early
        and r_late > 0.02
    )
    return NoiseReport(f_early, f_late, r_early, r_late, bool(runaway))
