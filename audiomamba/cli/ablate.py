"""`audiomamba ablate`."""

from __future__ import annotations

from pathlib import Path

import typer

from audiomamba.cli.common import not_built

def ablate(
    grid: str = typer.Argument(..., help="Grid name (e.g. sc09-table5, youtubemix-fig10) or TOML path."),
    data: Path | None = typer.Option(None, "--data"),
    out: Path | None = typer.Option(None, "--out"),
) -> None:
    """Run an ablation grid (which levels are selective) and write a table and a plot."""
    not_built("ablate", "ablation issue")
