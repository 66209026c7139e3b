"""Noise detection for generated samples, judged against the training data.

Two ways a sample can be noise:

- **noise throughout**: most of the sample is loud, broadband noise. Per frame (512 samples, hop
  256, frame mean removed) the spectral flatness (geometric / arithmetic mean of the power
  spectrum, near 0 for tonal audio, about 0.5-0.6 for white noise) is measured over the band
  where the training data has its energy; a frame is *noisy* when it is loud and flat. A sample
  is flagged when its share of noisy frames exceeds what real clips show. Real speech has
  noise-like frames too (fricatives: "six", "seven"), so the threshold comes from a
  :class:`NoiseProfile` of real clips, stored with the run (``noise_profile.json``).
- **late runaway**: the last third of the sample turns flat and much louder than the first third.

Without a profile, defaults for full-band 16 kHz audio are used.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

FRAME, HOP = 512, 256
FLAT_NOISE = 0.3  # flatness above which a frame or part counts as broadband noise
FLAT_RATIO = 2.0  # late flatness must exceed this multiple of the early flatness (plus 0.1)
LEVEL_RATIO = 1.5  # and the late RMS this multiple of the early RMS
PROFILE_FILE = "noise_profile.json"


@dataclass(frozen=True)
class NoiseProfile:
    """What real clips look like: the band that holds 99.5 % of their energy (Hz), the frame RMS
    above which a frame counts as loud, and the largest share of loud, flat frames a sample may
    have before it is called noise (from the real clips' 99.5th percentile plus a margin)."""

    band_hz: float = 8000.0
    loud_rms: float = 0.02
    max_noisy_fraction: float = 0.5
    clips: int = 0

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> NoiseProfile | None:
        """The profile in ``path`` (a file or a run folder holding ``noise_profile.json``), or None."""
        path = Path(path)
        path = path / PROFILE_FILE if path.is_dir() else path
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


@dataclass(frozen=True)
class NoiseReport:
    """Per-sample statistics and the verdicts (``noise`` is true when either applies)."""

    noisy_fraction: float
    flatness_early: float
    flatness_late: float
    rms_early: float
    rms_late: float
    noise_throughout: bool
    runaway_noise: bool

    @property
    def noise(self) -> bool:
        return self.noise_throughout or self.runaway_noise

    def as_dict(self) -> dict[str, float | bool]:
        # the fields read directly (``dataclasses.asdict`` copies recursively: 40 µs a report, most of an index's time)
        return {**{f.name: getattr(self, f.name) for f in _REPORT_FIELDS}, "noise": self.noise}


_REPORT_FIELDS = fields(NoiseReport)


# The statistics are computed with torch in float64 (one implementation for a CPU and a GPU: the samples of a
# generation are judged on the device that made them, :func:`detect_noise`); the functions taking numpy arrays convert.


def _frames(waves: torch.Tensor) -> torch.Tensor:
    """(..., T) -> (..., n_frames, FRAME) with each frame's mean removed (a DC offset is not sound)."""
    if waves.shape[-1] < FRAME:
        waves = torch.nn.functional.pad(waves, (0, FRAME - waves.shape[-1]))
    frames = waves.unfold(-1, FRAME, HOP)
    return frames - frames.mean(dim=-1, keepdim=True)


def _band(power: torch.Tensor, band_hz: float = 8000.0, sample_rate: int = 16000) -> torch.Tensor:
    """The bins of full power spectra (..., FRAME // 2 + 1) from the first above DC up to ``band_hz``."""
    top = max(2, min(power.shape[-1] - 1, int(round(band_hz / sample_rate * FRAME))))
    return power[..., 1 : top + 1] + 1e-12


def _full_power(frames: torch.Tensor) -> torch.Tensor:
    """Power spectra (..., n_frames, FRAME // 2 + 1) of Hann-windowed frames (the symmetric window, numpy's)."""
    window = torch.hann_window(FRAME, periodic=False, dtype=frames.dtype, device=frames.device)
    return torch.fft.rfft(frames * window, dim=-1).abs() ** 2


def _power(frames: torch.Tensor, band_hz: float = 8000.0, sample_rate: int = 16000) -> torch.Tensor:
    """Power spectra (..., n_frames, bins) of the bins from the first above DC up to ``band_hz``."""
    return _band(_full_power(frames), band_hz, sample_rate)


def _flatness(band_power: torch.Tensor) -> torch.Tensor:
    """Spectral flatness (geometric over arithmetic mean) of each spectrum: (..., bins) -> (...)."""
    return torch.exp(torch.log(band_power).mean(dim=-1)) / band_power.mean(dim=-1)


def _rms(frames: torch.Tensor) -> torch.Tensor:
    """RMS of each (mean-removed) frame: (..., FRAME) -> (...)."""
    return torch.sqrt((frames**2).mean(dim=-1))


def _f64(wave) -> torch.Tensor:
    """A numpy array or tensor as a float64 tensor (on the tensor's device)."""
    return wave.double() if isinstance(wave, torch.Tensor) else torch.from_numpy(np.asarray(wave, dtype=np.float64))


def _frame_stats(wave: torch.Tensor, band_hz: float = 8000.0) -> tuple[torch.Tensor, torch.Tensor]:
    frames = _frames(_f64(wave))
    return _flatness(_power(frames, band_hz)), _rms(frames)


def frame_stats(wave: np.ndarray, band_hz: float = 8000.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame spectral flatness within ``band_hz`` and RMS: waves (..., T) -> two (..., n_frames) arrays."""
    flat, rms = _frame_stats(wave, band_hz)
    return flat.numpy(), rms.numpy()


def _loud_flatness(waves, stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Mean per-frame flatness of each of ``waves`` (..., T) over its frames that are not near-silent: (...).
    ``stats``: their per-frame flatness (full band) and RMS when the caller has them already."""
    flat, rms = stats if stats is not None else _frame_stats(waves)
    energy = rms**2
    loud = energy > 1e-6 * energy.amax(dim=-1, keepdim=True).clamp_min(1e-12)
    count = loud.sum(dim=-1)
    return torch.where(count > 0, torch.where(loud, flat, 0.0).sum(dim=-1) / count.clamp_min(1), 0.0)


def spectral_flatness(wave: np.ndarray, n_fft: int = FRAME, hop: int = HOP) -> float:
    """Mean per-frame spectral flatness of ``wave`` ((T,) float), ignoring near-silent frames."""
    return float(_loud_flatness(wave))


def _noisy_share(flat: torch.Tensor, rms: torch.Tensor, profile: NoiseProfile) -> torch.Tensor:
    """Share of frames that are loud and broadband, from their flatness in the profile's band and RMS: (...)."""
    return ((rms >= profile.loud_rms) & (flat >= FLAT_NOISE)).double().mean(dim=-1)


def _noisy_fractions(waves, profile: NoiseProfile) -> torch.Tensor:
    """Share of the frames of each of ``waves`` (..., T) that are loud and broadband: (...)."""
    return _noisy_share(*_frame_stats(waves, profile.band_hz), profile)


def noisy_fraction(wave: np.ndarray, profile: NoiseProfile) -> float:
    """Share of the frames of ``wave`` that are loud and broadband (flatness >= FLAT_NOISE in the band)."""
    return float(_noisy_fractions(wave, profile))


def fit_profile(waves: np.ndarray | list[np.ndarray], margin: float = 0.15) -> NoiseProfile:
    """A :class:`NoiseProfile` from real clips (each (T,), in the samples' domain: decoded tokens)."""
    waves = [_f64(w) for w in waves]
    if not waves:
        return NoiseProfile()
    total = sum(_power(_frames(w)).sum(dim=0) for w in waves).numpy()
    cum = np.cumsum(total) / max(float(total.sum()), 1e-12)
    band_hz = float((int(np.searchsorted(cum, 0.995)) + 2) * 16000 / FRAME)
    rms = torch.cat([_frame_stats(w)[1] for w in waves]).numpy()
    loud_rms = max(0.1 * float(np.quantile(rms, 0.95)), 1e-4)
    partial = NoiseProfile(min(band_hz, 8000.0), loud_rms, 1.0, len(waves))
    fractions = np.array([noisy_fraction(w, partial) for w in waves])
    limit = min(0.95, max(0.3, float(np.quantile(fractions, 0.995)) + margin))
    return NoiseProfile(partial.band_hz, loud_rms, limit, len(waves))


NOISE_CHUNK = 8  # waves judged at once by detect_noise on a CPU (more is slower: the frames and spectra leave the cache)
NOISE_CHUNK_GPU = 256  # and on a GPU (about 0.3 GB of float64 frames and spectra per chunk of one-second clips)


def detect_noise(waves, profile: NoiseProfile | None = None) -> list[NoiseReport]:
    """Judge each of ``waves`` ((n, T) float in [-1, 1], one length; a numpy array, or a tensor judged on its device):
    noise throughout (against ``profile``) or a late runaway, :data:`NOISE_CHUNK` clips at a time on a CPU (about 0.5
    ms per one-second clip on one core), :data:`NOISE_CHUNK_GPU` on a GPU."""
    profile = profile or NoiseProfile()
    waves = _f64(waves)
    chunk = NOISE_CHUNK if waves.device.type == "cpu" else NOISE_CHUNK_GPU
    reports = []
    for lo in range(0, waves.shape[0], chunk):
        part = waves[lo : lo + chunk]
        third = max(part.shape[-1] // 3, 1)
        early, late = part[..., :third], part[..., -third:]
        # one set of spectra for the whole clip: its noisy frames, and the early third's flatness from its first
        # frames (the same samples as the early third's own frames, so the same numbers) instead of a second FFT
        frames = _frames(part)
        power = _full_power(frames)
        rms = _rms(frames)
        flat = _flatness(_band(power, profile.band_hz))
        fraction = _noisy_share(flat, rms, profile)
        if third >= FRAME:
            n_early = (third - FRAME) // HOP + 1
            flat8k = flat if profile.band_hz == 8000.0 else _flatness(_band(power[..., :n_early, :]))
            f_early = _loud_flatness(early, (flat8k[..., :n_early], rms[..., :n_early]))
        else:  # the early third is shorter than a frame: its one frame is zero-padded, unlike the clip's
            f_early = _loud_flatness(early)
        f_late = _loud_flatness(late)
        r_early, r_late = (torch.sqrt(((p - p.mean(dim=-1, keepdim=True)) ** 2).mean(dim=-1)) for p in (early, late))
        stats = torch.stack([fraction, f_early, f_late, r_early, r_late], dim=1).cpu().tolist()
        for fr, fe, fl, re, rl in stats:
            runaway = fl >= FLAT_NOISE and fl >= FLAT_RATIO * fe + 0.1 and rl >= LEVEL_RATIO * re and rl > 0.02
            reports.append(NoiseReport(fr, fe, fl, re, rl, fr > profile.max_noisy_fraction, bool(runaway)))
    return reports


def detect_runaway_noise(wave: np.ndarray, profile: NoiseProfile | None = None) -> NoiseReport:
    """Judge ``wave`` ((T,) float in [-1, 1]): noise throughout (against ``profile``) or a late runaway."""
    return detect_noise(np.asarray(wave)[None], profile)[0]
