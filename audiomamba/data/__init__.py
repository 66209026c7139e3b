"""Datasets: YouTubeMix-style music folders and SC09 spoken digits, as (input, target) token pairs."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

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
) -> Dataset:
    """The dataset of ``kind`` ("youtubemix" or "sc09") for ``split``.

    SC09 clips are always 16000 samples (``sample_len`` must be None or 16000); ``clips_per_class``
    keeps only the first k clips of each digit (SC09 only); ``exclude`` leaves those files out.
    """
    if kind == "youtubemix":
        if clips_per_class is not None:
            raise DataError("data.clips_per_class is for sc09 data (digit classes); youtubemix has none")
        return YouTubeMixDataset(root, split, sample_len or 16384, normalization, pool_product, exclude)
    if kind == "sc09":
        if sample_len not in (None, 16000):
            raise DataError(f"SC09 clips are 16000 samples; sample_len {sample_len} is not supported for sc09")
        if pool_product > 1 and 16000 % pool_product:
            raise DataError(f"SC09's 16000 samples are not divisible by the pooling product {pool_product}")
        return SC09Dataset(root, split, normalization, clips_per_class, exclude)  # type: ignore[arg-type]
    raise DataError(f"unknown data kind {kind!r}: use one of {', '.join(KINDS)}")
