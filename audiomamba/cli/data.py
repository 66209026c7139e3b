"""`audiomamba data {info,download}`."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Inspect and download datasets (YouTubeMix, SC09).", no_args_is_help=True)


@app.command("info")
def info(
    directory: Path = typer.Argument(..., help="Dataset folder (YouTubeMix or SC09 layout)."),
    quick: bool = typer.Option(False, "--quick", help="Read headers only (skip the NaN/range check of the samples)."),
) -> None:
    """Detect the layout and report files, hours, rates, channels, splits and problems."""
    from audiomamba.data.inspect import inspect_folder, render_report

    report = inspect_folder(directory, deep=not quick, progress=True)
    render_report(report)
    if report.problems:  # a script can tell a clean folder from one that training would reject
        raise typer.Exit(1)


@app.command("download")
def download(
    name: str = typer.Argument(..., help="youtubemix or sc09"),
    out: Path = typer.Option(..., "--out", help="Destination folder."),
) -> None:
    """Download a dataset (needs internet; resumable): youtubemix from the hub, sc09 from the hub or Speech Commands."""
    from audiomamba.data.download import download as fetch

    path = fetch(name, out)
    typer.echo(f"{name} is in {path}; check it with: audiomamba data info {path}")
