"""Shared helpers for the training tests: a tiny synthetic music folder and a tiny fast recipe."""

from __future__ import annotations

from pathlib import Path

from audiomamba.recipe import Recipe, load_recipe
from audiomamba.synth import write_dataset

TINY = "youtubemix-mamba-s6-tiny"


def music_folder(root: Path, n_files: int = 5, seconds: float = 0.3) -> Path:
    """5 short synthetic piano files: 3 train / 1 validation / 1 test."""
    if not root.exists():
        write_dataset(root, n_files=n_files, seconds=seconds, seed=3)
    return root


def tiny_recipe(data: Path, *sets: str, name: str = TINY) -> Recipe:
    """The tiny recipe shrunk further: short sequences, small batches, frequent eval/checkpoints."""
    base = [
        "data.sample_len=512",
        "data.batch_size=2",
        "train.steps=8",
        "train.eval_every=4",
        "train.checkpoint_every=2",
        "train.log_every=1",
        "train.val_batches=1",
    ]
    return load_recipe(name, [*base, *sets], data)
