"""Loading SC09 splits as one waveform tensor (B, 16000) with a progress bar."""

from __future__ import annotations

from pathlib import Path

import torch
from audiomamba.eval.progress import make_progress


def speaker_of(path: str | Path) -> str:
    """``<speaker>_nohash_<n>.wav`` → speaker (the whole stem if there is no ``_nohash_``)."""
    stem = Path(path).stem
    return stem.split("_nohash_")[0]


def speaker_ids(names: list[str]) -> torch.Tensor:
    """Speaker names → indices (N,) into their sorted set: the labels of the speaker-adversarial head."""
    index = {name: i for i, name in enumerate(sorted(set(names)))}
    return torch.tensor([index[n] for n in names], dtype=torch.long)


def split_speakers(root: str | Path, split: str) -> list[str]:
    """The speaker of every clip of an SC09 split, in :func:`load_split`'s order."""
    from audiomamba.data.sc09 import SC09Dataset

    return [speaker_of(p) for p in SC09Dataset(root, split).files]


def load_split(root: str | Path, split: str, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """All clips of an SC09 split: (waves (N, 16000) float32 in [-1, 1], labels (N,) int64).

    Raises DataError (one line) for a missing folder, missing list files or unreadable clips.
    """
    from audiomamba.data.sc09 import CLIP_SAMPLES, SC09Dataset

    ds = SC09Dataset(root, split)
    waves = torch.empty(len(ds), CLIP_SAMPLES)
    with make_progress("clips", disable=not progress) as bar:
        task = bar.add_task(f"load {split}", total=len(ds), info="")
        for i in range(len(ds)):
            waves[i] = ds.waveform(i)
            bar.advance(task)
    return waves, torch.tensor(ds.labels, dtype=torch.long)
