"""SC09: the ten digit words of Speech Commands (docs/ARCHITECTURE.md §4).

Layout: ``<root>/<word>/<file>.wav`` for word in :data:`DIGITS`, with ``validation_list.txt`` and
``testing_list.txt`` (paths relative to ``root``); every other digit clip is train. Other Speech
Commands words in the folder are ignored. Clips are mono 16 kHz (others are resampled / mixed
down), right-padded with silence to 16000 samples; a clip longer than 1 s is cropped to its first
second with a warning (real SC09 has none).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from audiomamba.audio import SAMPLE_RATE, AudioInfo, audio_info, load_audio
from audiomamba.data.augment import WaveAugment
from audiomamba.data.splits import check_split
from audiomamba.errors import DataError
from audiomamba.tokenizer import Normalization, mu_law_encode, shift_right

DIGITS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CLIP_SAMPLES = SAMPLE_RATE
LIST_FILES = {"validation": "validation_list.txt", "test": "testing_list.txt"}


def _read_list(root: Path, split: str) -> set[str]:
    path = root / LIST_FILES[split]
    if not path.is_file():
        raise DataError(
            f"missing {LIST_FILES[split]} in {root}: the SC09 layout needs validation_list.txt and "
            "testing_list.txt (paths relative to the folder); copy them from Speech Commands or run `audiomamba data download sc09`"
        )
    return {line.strip().replace("\\", "/") for line in path.read_text().splitlines() if line.strip()}


def is_sc09_layout(root: Path) -> bool:
    """Whether ``root`` looks like an SC09 / Speech Commands folder."""
    return any((root / w).is_dir() for w in DIGITS) or (root / LIST_FILES["test"]).is_file()


def sc09_split_files(root: str | Path, split: str) -> list[tuple[Path, int]]:
    """(path, label) pairs of the digit clips of ``split``, sorted by relative path."""
    root = Path(root)
    check_split(split)
    if not root.is_dir():
        raise DataError(f"SC09 folder not found: {root}: pass the folder that holds zero/ … nine/")
    val, test = _read_list(root, "validation"), _read_list(root, "test")
    items: list[tuple[Path, int]] = []
    for label, word in enumerate(DIGITS):
        folder = root / word
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.wav")):
            rel = f"{word}/{path.name}"
            which = "validation" if rel in val else "test" if rel in test else "train"
            if which == split:
                items.append((path, label))
    if not any((root / w).is_dir() for w in DIGITS):
        raise DataError(f"no digit folders (zero/ … nine/) in {root}: this is not an SC09 / Speech Commands folder")
    if not items:
        raise DataError(f"no .wav clips of split {split!r} in {root}: check the digit folders and the list files")
    return items


class SC09Dataset(Dataset):
    """SC09 clips as token pairs.

    ``ds[i] -> (input_tokens (16000,), target_tokens (16000,))`` int64, input = target shifted right
    with ``Q_ZERO`` first. ``ds.waveform(i) -> (16000,)`` float32 in [-1, 1]; ``ds.labels[i]`` the digit.
    ``clips_per_class`` keeps the first k clips of each digit (small subsets for overfit checks);
    ``exclude`` leaves out files that a data pre-flight rejected (``--skip-bad``); ``sample_len``
    < 16000 crops every item to the clip's first samples (fast CPU recipes); ``augment`` draws a new
    speed and gain for every item read (training clips; :meth:`target` without it reads them as they are).
    """

    def __init__(
        self, root: str | Path, split: str = "train", normalization: Normalization = "minmax",
        clips_per_class: int | None = None,
        exclude: frozenset[Path] | set[Path] = frozenset(),
        sample_len: int = CLIP_SAMPLES,
        augment: WaveAugment | None = None,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.normalization = normalization
        self.sample_len = sample_len
        self.augment = augment if augment is not None and augment.active else None
        mu_law_encode(torch.zeros(1), normalization)  # validates the name early
        pairs = [(p, lab) for p, lab in sc09_split_files(self.root, split) if p not in exclude]
        if clips_per_class is not None:  # the first k clips of each digit (sorted by path)
            seen: dict[int, int] = {}
            kept = []
            for path, label in pairs:
                seen[label] = seen.get(label, 0) + 1
                if seen[label] <= clips_per_class:
                    kept.append((path, label))
            pairs = kept
        self.files: list[Path] = [p for p, _ in pairs]
        self.labels: list[int] = [lab for _, lab in pairs]
        self._warned_long: set[Path] = set()
        self._infos: dict[int, AudioInfo] = {}  # header facts, read once per clip

    def __len__(self) -> int:
        return len(self.files)

    def waveform(self, index: int) -> torch.Tensor:
        """The clip, mono 16 kHz, cropped/right-padded with zeros to 16000 samples: (16000,) float32."""
        path = self.files[index]
        info = self._infos.get(index)
        if info is None:
            info = self._infos[index] = audio_info(path)
        wave = load_audio(path, SAMPLE_RATE, info=info)
        if wave.shape[0] > CLIP_SAMPLES:
            if path not in self._warned_long:
                self._warned_long.add(path)
                warnings.warn(
                    f"{path} is {wave.shape[0] / SAMPLE_RATE:.2f} s long: SC09 clips are at most 1 s; cropped to the first second",
                    stacklevel=2,
                )
            wave = wave[:CLIP_SAMPLES]
        out = np.zeros(CLIP_SAMPLES, dtype=np.float32)
        out[: wave.shape[0]] = wave
        return torch.from_numpy(out)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) tokens of the clip's first ``sample_len`` samples (the whole clip by default);
        a crop is normalised on its own, as a clip of that length would be."""
        target = self.target(index, augmented=True)
        return shift_right(target), target

    def target(self, index: int, augmented: bool = False) -> torch.Tensor:
        """The clip's tokens (sample_len,), through the augmentation when ``augmented`` and one is set."""
        wave = self.waveform(index)
        if augmented and self.augment is not None:
            wave = self.augment(wave)
        return mu_law_encode(wave[: self.sample_len], self.normalization)
