"""Split names and the by-file 88/6/6 split of YouTubeMix-style folders."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from audiomamba.errors import DataError

Split = Literal["train", "validation", "test"]
SPLITS: tuple[str, ...] = ("train", "validation", "test")
FRACTIONS = {"train": 0.88, "validation": 0.06, "test": 0.06}


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")


def split_files(files: list[Path], split: str) -> list[Path]:
    """The files of ``split`` among ``files`` sorted by name: first 88 % train, next 6 % validation,
    last 6 % test (at least one file each, so a folder needs >= 3 files)."""
    check_split(split)
    files = sorted(files, key=lambda p: p.name)
    n = len(files)
    n_val = max(1, round(FRACTIONS["validation"] * n))
    n_test = max(1, round(FRACTIONS["test"] * n))
    n_train = n - n_val - n_test
    if n_train < 1:
        folder = files[0].parent if files else "the folder"
        raise DataError(
            f"only {n} audio file(s) in {folder}: the 88/6/6 split by file needs at least 3; add files or cut long ones"
        )
    bounds = {"train": (0, n_train), "validation": (n_train, n_train + n_val), "test": (n_train + n_val, n)}
    lo, hi = bounds[split]
    return files[lo:hi]
