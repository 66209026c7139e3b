"""`audiomamba evaluate {nll,train-classifier,samples}`."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Evaluate models and samples: test NLL/BPB, SC09 classifier, sample metrics.", no_args_is_help=True)


@app.command("nll")
def nll(
    run: Path = typer.Argument(..., help="Run folder or checkpoint file."),
    split: str = typer.Option("test", "--split", help="train, validation or test."),
    data: Path | None = typer.Option(None, "--data", help="Dataset folder (default: the run's recipe)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the result as JSON here."),
    batch: int | None = typer.Option(None, "--batch", help="Sequences per forward pass (default: the recipe's batch)."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
) -> None:
    """Test-set NLL and bits per sample over whole clips/segments, written as JSON."""
    import json

    from audiomamba.train.evaluate import evaluate_nll

    result = evaluate_nll(run, split, data, device, batch)
    text = json.dumps(result, indent=2)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(text + "\n")
    typer.echo(text)


@app.command("train-classifier")
def train_classifier(
    sc09_dir: Path = typer.Argument(..., help="SC09-layout folder."),
    out: Path = typer.Option(..., "--out", help="Classifier checkpoint to write."),
    epochs: int = typer.Option(30, "--epochs", help="Training epochs (best validation epoch is kept)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    batch_size: int = typer.Option(64, "--batch-size", help="Clips per step."),
    lr: float = typer.Option(3e-3, "--lr", help="Peak learning rate of the one-cycle schedule."),
    seed: int = typer.Option(0, "--seed", help="Random seed (init, shuffling, augmentation)."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's choice)."),
) -> None:
    """Train the SC09 digit classifier used by the sample metrics.

    Writes CKPT, CKPT-stem.json (accuracies, training time, confusion) and CKPT-stem.confusion.png.
    """
    import torch

    from audiomamba.eval.train_classifier import TrainConfig
    from audiomamba.eval.train_classifier import train_classifier as run

    if threads is not None:
        torch.set_num_threads(max(1, threads))
    report = run(sc09_dir, out, TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device))
    typer.echo(
        f"test accuracy {100 * report['test_accuracy']:.2f}% (validation {100 * report['val_accuracy']:.2f}%, "
        f"epoch {report['best_epoch']}), trained in {report['train_seconds']:.0f} s on {report['device']}; wrote {out}"
    )


@app.command("samples")
def samples(
    samples_dir: Path | None = typer.Argument(None, help="Folder of generated audio files (omit with --split)."),
    classifier: Path = typer.Option(..., "--classifier", help="Classifier checkpoint."),
    reference: Path = typer.Option(..., "--reference", help="SC09-layout folder for the reference rows."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the metrics table as JSON here."),
    split: str | None = typer.Option(None, "--split", help="Evaluate this split of --reference instead of a folder."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    ndb_bins: int = typer.Option(50, "--ndb-bins", help="k-means bins for NDB."),
) -> None:
    """FID, IS, mIS, AM and NDB of a folder of samples, with train/test reference rows."""
    from audiomamba.eval.report import evaluate_samples

    evaluate_samples(samples_dir, classifier, reference, split=split, json_out=json_out, device=device, ndb_bins=ndb_bins)


@app.command("overfit")
def overfit(
    data: Path = typer.Option(..., "--data", help="SC09-layout folder (the recipe trains on a few clips of it)."),
    out: Path = typer.Option(..., "--out", help="Folder for the run, the samples and overfit.json."),
    classifier: Path = typer.Option(..., "--classifier", help="Digit classifier checkpoint."),
    recipe: str = typer.Option("sc09-overfit", "--recipe", help="Recipe to overfit (a few clips per digit)."),
    n: int = typer.Option(256, "--n", help="Samples to generate and score."),
    max_minutes: float | None = typer.Option(None, "--max-minutes", help="Stop training after this many minutes."),
    set_: list[str] = typer.Option([], "--set", help="Override a recipe value: key.path=value (repeatable)."),
    temperature: float = typer.Option(1.0, "--temperature", help="Sampling temperature."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
) -> None:
    """Overfit proof: train on a few clips, check step mode against the parallel forward, generate,
    and require the classifier to recognise the samples (>= 80 % at p >= 0.9, IS >= 5)."""
    from audiomamba.errors import ConfigError
    from audiomamba.eval.overfit import format_overfit, run_overfit

    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    if not (temperature >= 0 and temperature < float("inf")):
        raise ConfigError(f"--temperature must be a finite number >= 0, got {temperature}")
    report = run_overfit(recipe, data, out, classifier, n, max_minutes, set_, device, temperature)
    typer.echo(format_overfit(report))
    if not report["passed"]:
        raise typer.Exit(1)


@app.command("snapshots")
def snapshots(
    run: Path = typer.Argument(..., help="Run folder trained with --snapshot-minutes."),
    reference: Path = typer.Option(..., "--reference", help="SC09-layout folder (its train split is the basis)."),
    classifier: Path = typer.Option(..., "--classifier", help="Digit classifier checkpoint."),
    out: Path = typer.Option(..., "--out", help="Folder for the samples, the table and the plot."),
    n: int = typer.Option(256, "--n", help="Samples per snapshot and temperature."),
    temperature: str = typer.Option("1.0", "--temperature", help="Comma-separated sampling temperatures."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Sample from the trained weights, not their EMA."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
) -> None:
    """Time to digits: generate and score samples from every snapshot of a run."""
    from audiomamba.errors import ConfigError
    from audiomamba.eval.snapshots import format_table, score_snapshots

    try:
        temps = tuple(float(t) for t in temperature.split(",") if t.strip())
    except ValueError:
        raise ConfigError(f"--temperature {temperature!r}: pass numbers separated by commas, e.g. 1.0,0.9") from None
    if not temps or any(not (0 <= t < float("inf")) for t in temps):
        raise ConfigError(f"--temperature {temperature!r}: every temperature must be a finite number >= 0")
    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    rows = score_snapshots(run, reference, classifier, out, n, temps, device, ema=not no_ema)
    typer.echo(format_table(rows))
