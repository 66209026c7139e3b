"""Reading a folder of generated clips for evaluation, with quality flags.

Every audio file directly inside the folder is read (any sample rate: resampled to 16 kHz; stereo
averaged), then right-padded with zeros or cropped to exactly 1 s. Problem clips are flagged
and **kept** in the metrics, because dropping them would flatter the model:

- ``nan``: the file holds NaN/inf samples; those samples are replaced by 0 (all-NaN → silence);
- ``silent``: peak below ``SILENT_PEAK`` (−80 dBFS);
- ``clipped``: at least ``CLIP_FRACTION`` of the samples at |x| ≥ ``CLIP_LEVEL``.

Files that cannot be decoded at all are listed as ``unreadable`` and are the only ones left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from audiomamba.eval.progress import make_progress

from audiomamba.audio import AUDIO_SUFFIXES, SAMPLE_RATE
from audiomamba.errors import DataError

CLIP_SAMPLES = SAMPLE_RATE
SILENT_PEAK = 1e-4
CLIP_LEVEL = 0.999
CLIP_FRACTION = 0.01


@dataclass
class SampleSet:
    """Clips of a folder: ``waves`` (N, 16000) float32 and the quality report."""

    waves: torch.Tensor
    names: list[str]
    nan: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    clipped: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    resampled: int = 0
    cropped: int = 0
    padded: int = 0

    def quality(self) -> dict:
        return {
            "evaluated": len(self.names),
            "nan": len(self.nan), "silent": len(self.silent), "clipped": len(self.clipped),
            "unreadable": len(self.unreadable),
            "resampled": self.resampled, "cropped": self.cropped, "padded": self.padded,
            "files": {"nan": self.nan, "silent": self.silent, "clipped": self.clipped, "unreadable": self.unreadable},
            "policy": "nan/silent/clipped clips are kept in every metric (NaN samples set to 0); "
            "unreadable files are left out",
        }


def fit_clip(wave: np.ndarray, length: int = CLIP_SAMPLES) -> np.ndarray:
    """(n,) → (length,): crop to the first ``length`` samples or right-pad with zeros."""
    out = np.zeros(length, dtype=np.float32)
    n = min(length, wave.shape[0])
    out[:n] = wave[:n]
    return out


def _read(path: Path) -> tuple[np.ndarray, int]:
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if data.shape[0] == 0:
        raise ValueError("no frames")
    return (data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]), int(sr)


def list_sample_files(folder: str | Path) -> list[Path]:
    """Audio files directly inside ``folder``, sorted; one-line DataError if missing or empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"samples folder not found: {folder}: pass the folder that holds the generated WAV files")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise DataError(f"no audio files in {folder}: generate samples first (`audiomamba generate ...`) or check the path")
    return files


def load_samples(folder: str | Path, progress: bool = True) -> SampleSet:
    """Read every clip of ``folder`` → :class:`SampleSet` (waves (N, 16000), flags)."""
    files = list_sample_files(folder)
    waves: list[np.ndarray] = []
    s = SampleSet(torch.empty(0), [])
    with make_progress("files", disable=not progress) as bar:
        task = bar.add_task("read samples", total=len(files), info="")
        for path in files:
            bar.advance(task)
            try:
                wave, sr = _read(path)
            except Exception:  # noqa: BLE001 - any decoding failure means unreadable
                s.unreadable.append(path.name)
                continue
            if not np.isfinite(wave).all():
                s.nan.append(path.name)
                wave = np.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)
            if sr != SAMPLE_RATE:
                import librosa

                wave = librosa.resample(wave, orig_sr=sr, target_sr=SAMPLE_RATE, res_type="soxr_hq").astype(np.float32)
                s.resampled += 1
            s.cropped += wave.shape[0] > CLIP_SAMPLES
            s.padded += wave.shape[0] < CLIP_SAMPLES
            wave = fit_clip(wave)
            peak = float(np.abs(wave).max())
            if peak < SILENT_PEAK:
                s.silent.append(path.name)
            elif float((np.abs(wave) >= CLIP_LEVEL).mean()) >= CLIP_FRACTION:
                s.clipped.append(path.name)
            waves.append(wave)
            s.names.append(path.name)
    if not waves:
        raise DataError(f"none of the {len(files)} audio files in {folder} could be decoded: re-encode them as 16-bit WAV")
    s.waves = torch.from_numpy(np.stack(waves))
    return s
