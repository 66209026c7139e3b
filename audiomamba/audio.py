"""Audio file I/O: inspection, (random-access) loading to mono 16 kHz float32, and WAV writing.

All failures on user files raise :class:`~audiomamba.errors.DataError` with a one-line message
naming the file and the fix.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from audiomamba.errors import DataError

SAMPLE_RATE = 16000
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of one audio file."""

    path: Path
    sample_rate: int
    channels: int
    frames: int
    subtype: str

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def frames_at(self, sample_rate: int = SAMPLE_RATE) -> int:
        """Number of frames after resampling to ``sample_rate``."""
        return math.floor(self.frames * sample_rate / self.sample_rate)


def _wav_declared_frames(path: Path) -> int | None:
    """Frames the RIFF header of a WAV file declares (None if unknown, e.g. streamed or not RIFF)."""
    import struct

    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = None
        while chunk := fh.read(8):
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = fh.read(size + (size & 1))
                block_align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
            elif cid == b"data":
                if not block_align or size in (0, 0xFFFFFFFF):
                    return None
                return size // block_align
            else:
                fh.seek(size + (size & 1), 1)
    return None


def audio_info(path: str | Path) -> AudioInfo:
    """Read the header of an audio file. Raises DataError for empty, truncated or non-audio files."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"audio file not found: {path}: check the path")
    if path.stat().st_size == 0:
        raise DataError(f"empty file {path}: remove it or replace it with a valid WAV")
    try:
        info = sf.info(str(path))
    except Exception as err:  # noqa: BLE001 - libsndfile raises several types
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"cannot read {path} as audio ({reason}): remove or re-encode it as 16 kHz WAV") from None
    if info.frames <= 0:
        raise DataError(f"no audio frames in {path}: remove it or replace it with a valid WAV")
    if path.suffix.lower() == ".wav":
        declared = _wav_declared_frames(path)
        if declared is not None and declared > info.frames:
            raise DataError(
                f"truncated WAV {path}: the header declares {declared} frames but the file holds {info.frames}; "
                "re-copy or re-encode it, or remove it"
            )
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames), str(info.subtype))


def _resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    if orig_sr == target_sr:
        return x
    import librosa

    return librosa.resample(x, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq").astype(np.float32)


def load_audio(
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    start: int = 0,
    frames: int = -1,
    info: AudioInfo | None = None,
) -> np.ndarray:
    """Load (part of) an audio file as mono float32 at ``sample_rate``.

    ``start`` and ``frames`` count samples at the *target* rate; only that part of the file is read
    (random access). Stereo is averaged to mono; other rates are resampled (soxr).
    Returns (n,) float32; n == frames when frames > 0 and the file is long enough.
    Raises DataError for unreadable files and for NaN/inf samples.
    """
    info = info or audio_info(path)
    ratio = info.sample_rate / sample_rate
    native_start = math.floor(start * ratio)
    native_frames = -1 if frames < 0 else math.ceil(frames * ratio) + (16 if ratio != 1 else 0)
    try:
        data, sr = sf.read(
            str(info.path), start=native_start, frames=native_frames, dtype="float32", always_2d=True
        )
    except Exception as err:  # noqa: BLE001
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"cannot decode {info.path} ({reason}): the file is truncated or corrupt; re-encode it") from None
    if data.shape[0] == 0:
        raise DataError(f"no audio frames at offset {start} in {info.path}: the file is shorter than its header says")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise DataError(f"NaN or inf samples in {info.path}: the file is corrupt; re-encode or remove it")
    mono = _resample(np.ascontiguousarray(mono), sr, sample_rate)
    if frames > 0:
        mono = mono[:frames]
    return mono


def pcm16(wave: np.ndarray) -> np.ndarray:
    """Waveform(s) in [-1, 1] (any shape) as 16-bit PCM samples, converted as libsndfile's float-to-PCM_16 write
    converts them on this platform (x · 32768, rounded down, clipped to the int16 range; NaN becomes 0)."""
    x = np.nan_to_num(np.asarray(wave, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(np.floor(x * np.float32(32768.0)), -32768, 32767).astype("<i2")


def wav_header(frames: int, sample_rate: int = SAMPLE_RATE) -> bytes:
    """The 44-byte RIFF header of a mono 16-bit PCM WAV with ``frames`` samples."""
    data = 2 * frames
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, 2 * sample_rate, 2, 16) + b"data" + struct.pack("<I", data))


def save_pcm16(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write mono 16-bit samples ((T,) int16, from :func:`pcm16`) as a WAV, atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.ascontiguousarray(samples, dtype="<i2").reshape(-1)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(wav_header(samples.shape[0], sample_rate))
        fh.write(samples.tobytes())
    os.replace(tmp, path)
    return path


def save_wav(path: str | Path, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write a mono waveform in [-1, 1] as 16-bit PCM WAV (atomically). wave: (T,) -> path.
    The header and samples are written directly (libsndfile took 6x as long per one-second file)."""
    return save_pcm16(path, pcm16(np.asarray(wave).reshape(-1)), sample_rate)


def list_audio_files(directory: Path) -> list[Path]:
    """Audio files directly inside ``directory``, sorted by name."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
