"""Training: recipes -> run folders with checkpoints, logs and plots (docs/ARCHITECTURE.md §7).

* :mod:`audiomamba.train.optim` — AdamW groups and the warm-up + cosine schedule
* :mod:`audiomamba.train.sampler` — resumable, rank-sharded batch order
* :mod:`audiomamba.train.checkpoint` — atomic checkpoints, RNG state, model from a checkpoint
* :mod:`audiomamba.train.loop` — the training loop (single process or DDP under torchrun)
* :mod:`audiomamba.train.nll` — loss and NLL/BPB evaluation
* :mod:`audiomamba.train.metrics_log`, :mod:`audiomamba.train.plots`, :mod:`audiomamba.train.progress`
"""

from __future__ import annotations

from audiomamba.train.checkpoint import load_model_from_checkpoint
from audiomamba.train.loop import RunOptions, TrainingDiverged, TrainResult, train_recipe

__all__ = ["RunOptions", "TrainResult", "TrainingDiverged", "load_model_from_checkpoint", "train_recipe"]
