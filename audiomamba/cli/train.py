"""`audiomamba train`."""

from __future__ import annotations

from pathlib import Path

import typer

from audiomamba.cli.common import not_built

def train(
    recipe: str = typer.Argument(..., help="Recipe name (see recipes/) or path to a TOML file."),
    data: Path | None = typer.Option(None, "--data", help="Dataset folder (overrides the recipe)."),
    out: Path | None = typer.Option(None, "--out", help="Run folder for checkpoints, logs and plots."),
    set_: list[str] = typer.Option([], "--set", help="Override a recipe value: key.path=value (repeatable)."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after this many steps."),
    resume: bool = typer.Option(False, "--resume", help="Resume the run in --out from its last checkpoint."),
) -> None:
    """Train a model from a recipe (AdamW, warm-up + cosine, checkpoints, JSONL logs)."""
    not_built("train", "training issue")
