"""A training dataset that survives a clip going unreadable mid-run (network storage, a re-synced
folder): the read is retried, then the item is replaced by the next readable one, with a warning."""

from __future__ import annotations

import time
import warnings

import torch
from torch.utils.data import Dataset

from audiomamba.errors import DataError

READ_ERRORS = (OSError, DataError, RuntimeError, ValueError)


class Resilient(Dataset):
    """``ds[i] -> (input, target, skipped)``: the wrapped item, or the next readable one after
    ``retries`` failed retries; ``skipped`` (a 0-d int64 tensor) counts the items given up on."""

    def __init__(self, dataset: Dataset, retries: int = 2, delay: float = 0.05) -> None:
        self.dataset, self.retries, self.delay = dataset, retries, delay

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def _read(self, index: int):
        for attempt in range(self.retries + 1):
            try:
                return self.dataset[index]
            except READ_ERRORS as err:
                if attempt == self.retries:
                    raise
                warnings.warn(f"read of item {index} failed ({str(err).splitlines()[0][:120]}); retrying", stacklevel=3)
                time.sleep(self.delay * 2**attempt)
        raise AssertionError("unreachable")

    def __getitem__(self, index: int):
        n = len(self)
        for skipped in range(n):
            j = (index + skipped) % n
            try:
                inputs, targets = self._read(j)
            except READ_ERRORS as err:
                warnings.warn(f"skipping item {j} after {self.retries + 1} failed reads: "
                              f"{str(err).splitlines()[0][:160]}", stacklevel=2)
                continue
            return inputs, targets, torch.tensor(skipped)
        raise DataError(f"none of the {n} items can be read any more: check the data folder")
