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
) -> Dataset:
    """The dataset of ``kind`` ("youtubemix" or "sc09") for ``split``.

    SC09 clips are always 16000 samples (``sample_len`` must be None or 16000).
    """
    if kind == "youtubemix":
        return YouTubeMixDataset(root, split, sample_len or 16384, normalization, pool_product)
    if kind == "sc09":
        if sample_len not in (None, 16000):
            raise DataError(f"SC09 clips are 16000 samples; sample_len {sample_len} is not supported for sc09")
        if pool_product > 1 and 16000 % pool_product:
            raise DataError(f"SC09's 16000 samples are not divisible by the pooling product {pool_product}")
        return SC09Dataset(root, split, normalization)  # type: ignore[arg-type]
    raise DataError(f"unknown data kind {kind!r}: use one of {', '.join(KINDS)}")
