"""Loading SC09 splits as one waveform tensor (B, 16000) with a progress bar."""

from __future__ import annotations

from pathlib import Path

import torch
from audiomamba.eval.progress import make_progress


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
