"""YouTubeMix-style music folders (docs/ARCHITECTURE.md §4): long recordings cut into fixed-length segments.

A folder of audio files (16 kHz mono; other rates are resampled, stereo averaged), sorted by name
and split 88/6/6 by file. Each file of the split is cut into non-overlapping segments of
``sample_len`` samples (remainder dropped); an item reads only its segment from disk.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from audiomamba.audio import SAMPLE_RATE, AudioInfo, audio_info, list_audio_files, load_audio
from audiomamba.data.splits import split_files
from audiomamba.errors import DataError
from audiomamba.tokenizer import Normalization, mu_law_encode, shift_right

# Paper Table 14: sample_len -> batch size, keeping batch x length ~ 1 M samples.
SEQLEN_SCHEDULE: tuple[tuple[int, int], ...] = (
    (958464, 1),
    (479232, 2),
    (239616, 4),
    (120832, 8),
    (61440, 16),
    (30720, 32),
    (16384, 64),
    (8192, 128),
)


def seqlen_schedule(pool_product: int | None = None) -> list[tuple[int, int]]:
    """The (sample_len, batch) pairs of paper Table 14, optionally checked against a pooling product."""
    if pool_product:
        bad = [n for n, _ in SEQLEN_SCHEDULE if n % pool_product]
        if bad:
            raise DataError(f"sample_len {bad} not divisible by the pooling product {pool_product}")
    return list(SEQLEN_SCHEDULE)


def scan_folder(root: str | Path, exclude: frozenset[Path] | set[Path] = frozenset()) -> list[AudioInfo]:
    """Header info of every audio file directly in ``root`` (sorted by name) but ``exclude``. Raises on a bad file."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"music folder not found: {root}: pass a folder of 16 kHz WAV files")
    files = list_audio_files(root)
    if not files:
        raise DataError(f"no audio files (.wav, .flac, …) in {root}: put the recordings directly in this folder")
    return [audio_info(p) for p in files if p not in exclude]


class YouTubeMixDataset(Dataset):
    """Non-overlapping segments of a music folder as token pairs.

    ``ds[i] -> (input_tokens (sample_len,), target_tokens (sample_len,))`` int64;
    ``ds.waveform(i) -> (sample_len,)`` float32. ``ds.segments[i] = (file index, start sample)``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        sample_len: int = 16384,
        normalization: Normalization = "minmax",
        pool_product: int = 1,
        exclude: frozenset[Path] | set[Path] = frozenset(),
    ) -> None:
        if sample_len <= 0:
            raise DataError(f"sample_len must be positive, got {sample_len}")
        if pool_product > 1 and sample_len % pool_product:
            lo = sample_len // pool_product * pool_product
            raise DataError(
                f"sample_len {sample_len} is not divisible by the pooling product {pool_product}: "
                f"use {lo or pool_product} or {lo + pool_product}"
            )
        self.root = Path(root)
        self.split = split
        self.sample_len = sample_len
        self.normalization = normalization
        mu_law_encode(torch.zeros(1), normalization)
        infos = {i.path: i for i in scan_folder(self.root, exclude)}
        self.infos: list[AudioInfo] = [infos[p] for p in split_files(list(infos), split)]
        self.segments: list[tuple[int, int]] = [
            (fi, k * sample_len)
            for fi, info in enumerate(self.infos)
            for k in range(info.frames_at(SAMPLE_RATE) // sample_len)
        ]
        if not self.segments:
            longest = max(i.seconds for i in self.infos)
            raise DataError(
                f"no {split} segment of {sample_len} samples in {self.root}: the longest {split} file is "
                f"{longest:.2f} s; use a shorter sample_len"
            )

    def __len__(self) -> int:
        return len(self.segments)

    def waveform(self, index: int) -> torch.Tensor:
        """The segment's waveform, mono 16 kHz: (sample_len,) float32."""
        fi, start = self.segments[index]
        wave = load_audio(self.infos[fi].path, SAMPLE_RATE, start=start, frames=self.sample_len, info=self.infos[fi])
        if wave.shape[0] < self.sample_len:
            raise DataError(
                f"{self.infos[fi].path} ended early at segment start {start}: the file is truncated; re-encode or remove it"
            )
        return torch.from_numpy(wave)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        target = mu_law_encode(self.waveform(index), self.normalization)
        return shift_right(target), target
