"""Running a grid: every cell x seed trained under the same budget, then scored; resumable.

Each run lives in ``<out>/cells/<cell>/seed<k>/``; its scores in ``result.json`` there. A cell
with a ``result.json`` is skipped; a run folder without one resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from audiomamba.ablate.grid import Cell, Grid
from audiomamba.errors import ConfigError
from audiomamba.tokenizer import bits_per_sample

RESULT = "result.json"
SampleScorer = Callable[[torch.nn.Module, object, Path, int, int], dict[str, float]]


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def cell_recipe(grid: Grid, cell: Cell, seed: int, data: Path | None, extra_sets: list[str], steps: int | None = None):
    """The recipe of one run: the cell's recipe, its overrides, the budget (``steps``, default the
    grid's) and the seed."""
    from audiomamba.recipe import load_recipe

    steps = steps or grid.steps
    sets = [
        *cell.set,
        f"train.steps={steps}",
        f"train.seed={seed}",
        f"train.eval_every={max(steps // 5, 1)}",
        f"train.checkpoint_every={max(steps // 5, 1)}",
        *extra_sets,
    ]
    return load_recipe(cell.recipe, sets, data)


def fitted_steps(grid: Grid, cell: Cell, seed: int, data: Path | None, extra_sets: list[str],
                 device: torch.device, run_dir: Path, log: Callable[[str], None]) -> int:
    """Steps of a cell under a fitted schedule: a resumed run keeps the steps in its recipe.toml;
    a new one times a few optimiser steps and fills ``fraction`` of the grid's minutes."""
    from audiomamba.recipe import load_recipe
    from audiomamba.train.calibrate import fit_steps

    saved = run_dir / "recipe.toml"
    if saved.is_file():
        return load_recipe(saved).train.steps
    steps, _, timing = fit_steps(cell_recipe(grid, cell, seed, data, extra_sets), device, grid.minutes)
    log(f"    fitted schedule: {timing.per_step * 1000:.0f} ms/step on {device} -> {steps} steps for {grid.minutes:g} min")
    return steps


def test_bpb(run_dir: Path, recipe, device: torch.device, segments: int) -> tuple[float, object]:
    """Test-split BPB of the run's best checkpoint over ``segments`` evenly spaced items (0 = all)."""
    from audiomamba.data import build_dataset
    from audiomamba.recipe import pool_product, resolve_model_config
    from audiomamba.train.checkpoint import load_model_from_checkpoint
    from audiomamba.train.nll import dataset_nll

    model, _ = load_model_from_checkpoint(run_dir, device)
    d = recipe.data
    ds = build_dataset(d.kind, d.root, "test", d.sample_len, d.normalization,
                       pool_product(resolve_model_config(recipe.model)))
    n = len(ds)
    idx = list(range(n)) if segments <= 0 or segments >= n else [round(i * (n - 1) / (segments - 1 or 1)) for i in range(segments)]
    nats, count = dataset_nll(model, ds, max(1, min(d.batch_size, 16)), device, indices=idx,
                              bf16=recipe.train.bf16 and device.type == "cuda")
    return bits_per_sample(nats / count), model


def run_grid(
    grid: Grid,
    out: Path,
    data: Path | None = None,
    seeds: int | None = None,
    extra_sets: list[str] | None = None,
    device: str | None = None,
    score_samples: SampleScorer | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Run (or resume) every cell x seed of ``grid``; returns one result row per run."""
    from audiomamba.train import RunOptions, train_recipe
    from audiomamba.train.loop import holds_run

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    rows = []
    n_seeds = seeds or grid.seeds
    runs = [(cell, seed) for cell in grid.cells for seed in range(n_seeds)]
    for i, (cell, seed) in enumerate(runs, 1):
        run_dir = out / "cells" / cell.slug / f"seed{seed}"
        result_path = run_dir / RESULT
        if result_path.is_file():
            log(f"[{i}/{len(runs)}] {cell.name} seed {seed}: done before, skipped")
            rows.append(json.loads(result_path.read_text()))
            continue
        resume = holds_run(run_dir)
        log(f"[{i}/{len(runs)}] {cell.name} seed {seed}: {'resuming' if resume else 'training'} {cell.recipe} in {run_dir}")
        try:
            steps = (fitted_steps(grid, cell, seed, data, list(extra_sets or []), dev, run_dir, log)
                     if grid.fit else grid.steps)
            recipe = cell_recipe(grid, cell, seed, data, list(extra_sets or []), steps)
        except ConfigError as err:
            raise ConfigError(f"grid {grid.name}, cell {cell.name!r}: {err}") from None
        start = time.perf_counter()
        result = train_recipe(recipe, RunOptions(
            out=run_dir, resume=resume, max_steps=steps, max_minutes=grid.minutes or None,
            device=str(dev), progress=progress,
        ))
        minutes = (time.perf_counter() - start) / 60
        bpb, model = test_bpb(run_dir, recipe, dev, grid.eval_segments)
        row = {
            "grid": grid.name, "cell": cell.name, "row": cell.row, "col": cell.col, "x": cell.x,
            "recipe": cell.recipe, "seed": seed, "steps": result.step, "scheduled_steps": steps, "stop_reason": result.stop_reason,
            "params": result.n_params, "minutes": round(minutes, 2), "test_bpb": round(bpb, 5),
            "best_val_bpb": result.best_val_bpb, "paper": cell.paper,
        }
        if score_samples is not None and grid.samples > 0:
            row.update(score_samples(model, recipe, run_dir, grid.samples, seed))
        _write_json(result_path, row)
        rows.append(row)
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return rows
