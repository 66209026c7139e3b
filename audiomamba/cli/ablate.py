"""`audiomamba ablate`: run a grid of configurations under one budget; table, CSV and plot."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer


def ablate(
    grid: str = typer.Argument(..., help="Grid name (sc09-table5, youtubemix-fig10, youtubemix-fig10-inner, youtubemix-seqlen) or TOML path."),
    data: Path | None = typer.Option(None, "--data", help="Dataset folder for every cell (overrides the recipes)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default runs/ablate-<grid>)."),
    budget_steps: int | None = typer.Option(None, "--budget-steps", help="Steps per cell (schedule length too)."),
    budget_minutes: float | None = typer.Option(None, "--budget-minutes", help="Wall-clock cap per cell."),
    fit_schedule: bool = typer.Option(
        False, "--fit-schedule", help="With --budget-minutes: time each cell's steps and size its schedule to fill "
        "the minutes (an equal wall-clock budget per cell). Each cell is timed alone at its start: cells run "
        "concurrently (--cells in parallel processes) share the GPU, so the cap may cut a schedule short "
        "(reported as 'done of scheduled' steps)."),
    cells: str | None = typer.Option(None, "--cells", help="Run only these cells (1-based numbers or slugs, comma-separated); "
                                     "the reports then cover the finished cells of this subset."),
    seeds: int | None = typer.Option(None, "--seeds", help="Seeds per cell (default: the grid's)."),
    set_: list[str] = typer.Option([], "--set", help="Recipe override applied to every cell (repeatable)."),
    samples: int | None = typer.Option(None, "--samples", help="SC09 grids: samples per cell for FID/IS/mIS/AM/NDB (0 = BPB only)."),
    classifier: Path | None = typer.Option(None, "--classifier", help="SC09 classifier checkpoint for the sample metrics."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
) -> None:
    """Run an ablation grid (which levels are selective); writes results.csv, results.md and results.png."""
    from rich.console import Console

    from audiomamba.ablate import load_grid, run_grid, write_reports
    from audiomamba.ablate.grid import check_budget, select_cells
    from audiomamba.errors import ConfigError

    g = load_grid(grid)
    if budget_steps is not None:
        if budget_steps < 1:
            raise ConfigError(f"--budget-steps must be >= 1, got {budget_steps}")
        g.steps = budget_steps
    if budget_minutes is not None:
        g.minutes = budget_minutes
    if fit_schedule:
        g.fit = True
    check_budget(g, "the command line")
    if cells is not None:
        g = select_cells(g, cells)
    if samples is not None:
        g.samples = samples
    scorer = None
    if g.samples > 0:
        if classifier is None:
            Console().print(f"note: no --classifier given: {g.name} is scored by test BPB only")
            g.samples = 0
        else:
            from audiomamba.ablate.scoring import sample_scorer

            scorer = sample_scorer(classifier, data)
    out = out or Path("runs") / f"ablate-{g.name}"
    out.mkdir(parents=True, exist_ok=True)
    rows = run_grid(g, out, data, seeds, set_, device, scorer)
    paths = write_reports(g, rows, out, command="audiomamba " + shlex.join(sys.argv[1:]))
    console = Console()
    console.print(paths["md"].read_text(), highlight=False)
    console.print(f"wrote {paths['csv']}, {paths['md']} and {paths['png']}")
