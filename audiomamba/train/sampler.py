"""Resumable, rank-sharded batch order: a seeded permutation per epoch, cut into global batches.

Epoch ``e`` uses ``torch.randperm(n, generator=seed + e)``. Global batch ``k`` of the epoch is
``perm[k*G:(k+1)*G]`` with ``G = batch_size * world_size``; rank ``r`` takes its slice
``[r*batch_size:(r+1)*batch_size]``. The last incomplete global batch is dropped. The position
``(epoch, index)`` (global batches already consumed) is all a checkpoint needs to continue with
exactly the same batches, whatever the number of loader workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import Sampler

from audiomamba.errors import DataError


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch: (n,) int64, deterministic in (seed, epoch)."""
    gen = torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch))
    return torch.randperm(n, generator=gen)


@dataclass
class LoaderPosition:
    """Where the training stream stands: ``index`` global batches of epoch ``epoch`` are consumed."""

    epoch: int = 0
    index: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index}


class ShardedBatches(Sampler[list[int]]):
    """Batches of dataset indices for one rank, for one epoch, starting at global batch ``start``.

    Yields lists of ``batch_size`` indices (this rank's share of each global batch).
    """

    def __init__(
        self, n: int, batch_size: int, seed: int, epoch: int, start: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, epoch
        self.start, self.rank, self.world_size = start, rank, world_size
        if batches_per_epoch(n, batch_size, world_size) == 0:
            raise DataError(
                f"the training split has {n} sequences, fewer than one global batch of "
                f"{batch_size * world_size}: lower data.batch_size or use a shorter data.sample_len"
            )

    def __len__(self) -> int:
        return batches_per_epoch(self.n, self.batch_size, self.world_size) - self.start

    def __iter__(self) -> Iterator[list[int]]:
        perm = epoch_permutation(self.n, self.seed, self.epoch)
        g = self.batch_size * self.world_size
        for k in range(self.start, batches_per_epoch(self.n, self.batch_size, self.world_size)):
            lo = k * g + self.rank * self.batch_size
            yield perm[lo : lo + self.batch_size].tolist()


def batches_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """Number of full global batches in an epoch of ``n`` sequences."""
    return n // (batch_size * world_size)
