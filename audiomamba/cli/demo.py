"""`audiomamba demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from audiomamba.cli.common import not_built

def demo(
    data: Path | None = typer.Option(None, "--data", help="Real audio folder instead of the built-in synthetic piano."),
    out: Path = typer.Option(Path("demo-out"), "--out"),
    minutes: float = typer.Option(3.0, "--minutes", help="Training time budget."),
) -> None:
    """End-to-end demo: train a tiny U-Net, show BPB falling, write audio and plots."""
    not_built("demo", "training issue")
