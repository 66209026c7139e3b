"""`audiomamba evaluate {nll,train-classifier,samples}`."""

from __future__ import annotations

from pathlib import Path

import typer

from audiomamba.cli.common import not_built

app = typer.Typer(help="Evaluate models and samples: test NLL/BPB, SC09 classifier, sample metrics.", no_args_is_help=True)


@app.command("nll")
def nll(
    run: Path = typer.Argument(..., help="Run folder or checkpoint file."),
    split: str = typer.Option("test", "--split", help="train, validation or test."),
    data: Path | None = typer.Option(None, "--data", help="Dataset folder (default: the run's recipe)."),
) -> None:
    """Test-set NLL and bits per sample over whole clips/segments, written as JSON."""
    not_built("evaluate nll", "training issue")


@app.command("train-classifier")
def train_classifier(
    sc09_dir: Path = typer.Argument(..., help="SC09-layout folder."),
    out: Path = typer.Option(..., "--out", help="Classifier checkpoint to write."),
) -> None:
    """Train the SC09 digit classifier used by the sample metrics."""
    not_built("evaluate train-classifier", "metrics issue")


@app.command("samples")
def samples(
    samples_dir: Path = typer.Argument(..., help="Folder of generated WAV files."),
    classifier: Path = typer.Option(..., "--classifier", help="Classifier checkpoint."),
    reference: Path = typer.Option(..., "--reference", help="SC09-layout folder for the reference rows."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the metrics table as JSON here."),
) -> None:
    """FID, IS, mIS, AM and NDB of a folder of samples, with train/test reference rows."""
    not_built("evaluate samples", "metrics issue")
