"""Fit a recipe's step count to a wall-clock budget by timing a few optimiser steps first."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from audiomamba.recipe import Recipe
from audiomamba.train.nll import autocast_for, sequence_loss


@dataclass(frozen=True)
class StepTiming:
    per_step: float  # median seconds of the steps after the first
    first_step: float  # seconds of the first step (kernel compilation; with train.compile, torch.compile)
    compiled: bool


def time_steps(recipe: Recipe, device: torch.device, train_ds: Dataset, batch_size: int | None = None,
               repeats: int = 3) -> StepTiming:
    """Time forward/backward/AdamW steps of the recipe's model on ``device``, compiled as the trainer
    compiles it when ``train.compile`` is on.

    Uses a throwaway model and a fixed batch of ``batch_size`` (default: the recipe's) training
    sequences; the first step (kernel compilation, allocator warm-up, torch.compile) is timed apart.
    """
    from audiomamba.model import build_model
    from audiomamba.train.loop import compile_for_training

    bs = batch_size or recipe.data.batch_size
    model = build_model(recipe.model_config()).to(device)
    module = compile_for_training(model, device, recipe.train.compile_mode) if recipe.train.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    pairs = [train_ds[i % len(train_ds)] for i in range(bs)]
    xb = torch.stack([p[0] for p in pairs]).to(device)
    yb = torch.stack([p[1] for p in pairs]).to(device)
    times = []
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.monotonic()
        with autocast_for(device, recipe.train.bf16):
            loss = sequence_loss(module, xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.monotonic() - t0)
    del model, module, opt, loss
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return StepTiming(float(np.median(times[1:])), times[0], bool(recipe.train.compile))


def seconds_per_step(recipe: Recipe, device: torch.device, train_ds: Dataset, batch_size: int | None = None,
                     repeats: int = 3) -> float:
    """Median seconds of one training step after the first (:func:`time_steps`)."""
    return time_steps(recipe, device, train_ds, batch_size, repeats).per_step


def fitted_sets(minutes: float, per_step: float, evals: int = 10, fraction: float = 0.9) -> tuple[int, list[str]]:
    """``--set`` overrides sizing train.steps (and eval/checkpoint intervals) to ``fraction`` of the budget.

    The rest of the budget covers validation, checkpoints and data loading. Measured (H200,
    2026-12-02, sc09-mamba-fast, 10 evals and 4 snapshots): 228 ms per step in the run against the
    212 timed here, 7.5 % overhead; with the earlier fraction 0.8 a 20-minute run trained 17.2.
    """
    steps = max(10, int(minutes * 60 * fraction / max(per_step, 1e-6)))
    every = max(1, steps // evals)
    return steps, [f"train.steps={steps}", f"train.eval_every={every}", f"train.checkpoint_every={every}"]


def fit_steps(recipe: Recipe, device: torch.device, minutes: float) -> tuple[int, list[str], StepTiming]:
    """Time the recipe's steps on its training split and size ``train.steps`` to ``minutes``.

    With ``train.compile`` the steps are timed compiled, and the budget loses the time of one
    compilation (the run compiles again at its first step; Inductor's cache makes that one no longer).
    Returns (steps, the ``--set`` overrides of :func:`fitted_sets`, the timing)."""
    from audiomamba.data import build_dataset
    from audiomamba.recipe import pool_product

    d = recipe.data
    train_ds = build_dataset(d.kind, d.root, "train", d.sample_len, d.normalization, pool_product(recipe.model_config()))
    timing = time_steps(recipe, device, train_ds)
    compile_s = max(0.0, timing.first_step - timing.per_step) if timing.compiled else 0.0
    steps, sets = fitted_sets(max(minutes - compile_s / 60, minutes * 0.1), timing.per_step,
                              fraction=COMPILED_FRACTION if timing.compiled else 0.9)
    return steps, sets, timing


#: share of a compiled run's budget (after the compile) that --fit-schedule gives to steps. Measured (H200,
#: 2026-12-03, run 9 of RESULTS.md, sc09-mamba-fast-aug, 10 evals, 3 snapshots): 95.7 ms per step in the
#: run, validation and snapshots included, against the 98 ms timed here, so 0.9 ended a 20-minute run
#: after 17.7 minutes. The compiled validation is cheap; 0.97 still leaves about 5 % spare.
COMPILED_FRACTION = 0.97
