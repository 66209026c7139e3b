"""``evaluate nll``: NLL and bits per sample of a checkpoint over every clip/segment of a split."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from audiomamba.errors import DataError
from audiomamba.recipe import pool_product, recipe_from_dict
from audiomamba.tokenizer import bits_per_sample
from audiomamba.train.checkpoint import load_checkpoint, model_from_state
from audiomamba.train.nll import dataset_nll


def evaluate_nll(
    run: str | Path,
    split: str = "test",
    data_root: str | Path | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score the whole ``split`` with the checkpoint in ``run`` (run folder -> best.pt, or a .pt file).

    Returns a JSON-ready dict: nll (nats/sample), bpb, n_sequences, n_samples, split, checkpoint,
    step, data_root, sample_len, seconds.
    """
    from audiomamba.data import build_dataset
    from audiomamba.data.splits import check_split

    check_split(split)
    state = load_checkpoint(run)
    recipe = recipe_from_dict(state["recipe"], source=state["path"], check_model=False)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = model_from_state(state, dev)
    d = recipe.data
    root = str(data_root) if data_root is not None else d.root
    if not Path(root).is_dir():
        how = "check --data" if data_root is not None else "the run's recipe points there; pass --data DIR"
        raise DataError(f"dataset folder {root} not found: {how}")
    from audiomamba.data.inspect import preflight

    preflight(root, where="evaluation")
    ds = build_dataset(d.kind, root, split, d.sample_len, d.normalization, pool_product(state["model_config"]))
    bs = batch_size or max(1, d.batch_size)
    t0 = time.monotonic()
    if progress:
        with Progress(
            TextColumn(f"[bold]nll {split}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
        ) as bar:
            task = bar.add_task("nll", total=len(ds))
            total, count = dataset_nll(
                model, ds, bs, dev, bf16=recipe.train.bf16, progress=lambda n: bar.advance(task, n)
            )
    else:
        total, count = dataset_nll(model, ds, bs, dev, bf16=recipe.train.bf16)
    nll = total / count
    return {
        "checkpoint": state["path"],
        "recipe": recipe.name,
        "step": int(state["step"]),
        "split": split,
        "data_root": root,
        "sample_len": int(ds[0][1].shape[0]) if len(ds) else 0,
        "n_sequences": len(ds),
        "n_samples": int(count),
        "nll": nll,
        "bpb": bits_per_sample(nll),
        "perplexity": math.exp(nll),
        "device": str(dev),
        "seconds": time.monotonic() - t0,
    }
