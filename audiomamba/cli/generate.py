"""`audiomamba generate`."""

from __future__ import annotations

from pathlib import Path

import typer

from audiomamba.cli.common import not_built

def generate(
    run: Path = typer.Argument(..., help="Run folder or checkpoint file."),
    out: Path = typer.Option(..., "--out", help="Folder for the WAV files and index."),
    n: int = typer.Option(16, "--n", help="Number of samples."),
    seconds: float = typer.Option(1.0, "--seconds", help="Length of each sample in seconds."),
    batch: int = typer.Option(16, "--batch", help="Samples generated at once."),
    temperature: float = typer.Option(1.0, "--temperature"),
    top_p: float = typer.Option(1.0, "--top-p"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Sample audio autoregressively in step mode (unconditional or continuing prompts)."""
    not_built("generate", "generation issue")
