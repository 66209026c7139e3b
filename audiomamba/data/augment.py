"""Waveform augmentation of the generator's training clips (``data.augment_speed``, ``data.augment_gain_db``).

sc09-fsdd has 2000 training clips from 5 speakers, and a 20-minute run sees each of them about 56
times: the train BPB falls below the validation BPB (RESULTS.md, time to digits, run 6). Two cheap
changes give the model new clips of the same words:

* speed perturbation (Ko et al., 2015, for speech recognition): read the clip at a rate
  ``s ~ U(1 - speed, 1 + speed)`` by linear interpolation, which moves pitch, formants and tempo
  together, as a different speaker would. Digital silence stays exactly zero, so with
  ``normalization = "none"`` the padding stays on the silence token;
* gain: scale by ``g`` dB, ``g ~ U(-gain_db, gain_db)``, capped so that the peak stays below 1
  (no clipping).

Only the training split is augmented; validation and test clips are read as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from audiomamba.errors import ConfigError

PEAK = 0.99  # gain never lifts a clip's peak above this
MAX_SPEED = 0.5  # data.augment_speed must be below this (the recipe validates it too)
MAX_GAIN_DB = 24.0  # data.augment_gain_db must be at most this


@dataclass(frozen=True)
class WaveAugment:
    speed: float = 0.0  # maximum relative change of the playback rate (0.1: factors 0.9-1.1)
    gain_db: float = 0.0  # maximum gain change in dB, either way

    def __post_init__(self) -> None:
        if not 0.0 <= self.speed < MAX_SPEED:
            raise ConfigError(f"data.augment_speed = {self.speed}: use a relative rate change in [0, {MAX_SPEED:g}), "
                              "e.g. 0.1")
        if not 0.0 <= self.gain_db <= MAX_GAIN_DB:
            raise ConfigError(f"data.augment_gain_db = {self.gain_db}: use a gain range in dB in [0, {MAX_GAIN_DB:g}], "
                              "e.g. 6")

    @property
    def active(self) -> bool:
        return self.speed > 0 or self.gain_db > 0

    def __call__(self, wave: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One random draw applied to a (T,) float waveform in [-1, 1]; returns a new (T,) tensor."""
        out = wave
        if self.speed > 0:
            rate = 1.0 + (2 * torch.rand((), generator=generator).item() - 1) * self.speed
            out = change_speed(out, rate)
        if self.gain_db > 0:
            db = (2 * torch.rand((), generator=generator).item() - 1) * self.gain_db
            gain = 10.0 ** (db / 20.0)
            peak = out.abs().max().item()
            if peak > 0:
                gain = min(gain, PEAK / peak)
            out = out * gain
        return out


def change_speed(wave: torch.Tensor, rate: float) -> torch.Tensor:
    """Play ``wave`` (T,) at ``rate`` times its speed (> 1: faster and higher), by linear interpolation;
    same length T: the end is cut (rate < 1) or padded with zeros (rate > 1)."""
    T = wave.shape[0]
    pos = torch.arange(T, dtype=torch.float64) * rate
    i0 = pos.floor().long()
    frac = (pos - i0).to(wave.dtype)
    padded = torch.cat([wave, wave.new_zeros(2)])
    i0 = i0.clamp(max=T)  # positions past the end read the zero padding
    return (padded[i0] * (1 - frac) + padded[i0 + 1] * frac) * (pos < T).to(wave.dtype)
