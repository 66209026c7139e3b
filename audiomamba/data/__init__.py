"""Datasets: YouTubeMix-style music folders and SC09 spoken digits, as (input, target) token pairs."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from audiomamba.data.augment import WaveAugment
from audiomamba.data.sc09 import DIGITS, SC09Dataset
from audiomamba.data.splits import SPLITS
from audiomamba.data.youtubemix import SEQLEN_SCHEDULE, YouTubeMixDataset, seqlen_schedule
from audiomamba.errors import DataError

KINDS = ("youtubemix", "sc09")

__all__ = [
    "DIGITS",
    "KINDS",
    "SEQLEN_SCHEDULE",
    "SPLITS",
    "WaveAugment",
    "SC09Dataset",
    "YouTubeMixDataset",
    "build_dataset",
    "seqlen_schedule",
]


def build_dataset(
    kind: str,
    root: str | Path,
    split: str,
    sample_len: int | None = None,
    normalization: str = "minmax",
    pool_product: int = 1,
    clips_per_class: int | None = None,
    exclude: frozenset[Path] | set[Path] = frozenset(),
    augment: WaveAugment | None = None,
) -> Dataset:
    """The dataset of ``kind`` ("youtubemix" or "sc09") for ``split``.

    SC09 clips are 16000 samples (``sample_len`` < 16000 crops each to its first samples, for fast
    CPU recipes); ``clips_per_class``
    keeps only the first k clips of each digit (SC09 only); ``exclude`` leaves those files out;
    ``augment`` (SC09 only) draws a new speed and gain for every item it reads.
    """
    if augment is not None and augment.active and kind != "sc09":
        raise DataError(f"waveform augmentation is implemented for sc09 data only, not {kind!r}: set data.augment_* to 0")
    if kind == "youtubemix":
        if clips_per_class is not None:
            raise DataError("data.clips_per_class is for sc09 data (digit classes); youtubemix has none")
        return YouTubeMixDataset(root, split, sample_len or 16384, normalization, pool_product, exclude)
    if kind == "sc09":
        n = 16000 if sample_len is None else sample_len
        if not 0 < n <= 16000:
            raise DataError(f"SC09 clips are 16000 samples; sample_len {sample_len} must be in 1..16000 (a crop from the start)")
        if pool_product > 1 and n % pool_product:
            raise DataError(f"SC09 sample_len {n} is not divisible by the pooling product {pool_product}")
        return SC09Dataset(root, split, normalization, clips_per_class, exclude, n, augment)  # type: ignore[arg-type]
    raise DataError(f"unknown data kind {kind!r}: use one of {', '.join(KINDS)}")
