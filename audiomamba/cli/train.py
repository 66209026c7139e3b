"""`audiomamba train`."""

from __future__ import annotations

from pathlib import Path

import typer


def train(
    recipe: str = typer.Argument(..., help="Recipe name (see recipes/) or path to a TOML file."),
    data: Path | None = typer.Option(None, "--data", help="Dataset folder (overrides the recipe)."),
    out: Path | None = typer.Option(None, "--out", help="Run folder for checkpoints, logs and plots (default runs/<recipe>)."),
    set_: list[str] = typer.Option([], "--set", help="Override a recipe value: key.path=value (repeatable)."),
    max_steps: int | None = typer.Option(
        None, "--max-steps", help="Stop at this step; the LR schedule still follows train.steps (use --set train.steps=N to shorten it)."
    ),
    max_minutes: float | None = typer.Option(
        None, "--max-minutes", help="Stop (with a checkpoint) after this many minutes of this process (a resumed run "
        "gets them anew; --snapshot-minutes count the run's whole training clock)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Resume the run in --out from its last checkpoint."),
    fit_schedule: bool = typer.Option(
        False, "--fit-schedule", help="With --max-minutes: time a few steps first and size train.steps (and the "
        "eval/checkpoint intervals) so the warm-up + cosine schedule ends within the budget."
    ),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="Leave out the files the data pre-flight rejects (listed in the run's "
        "rejected_files.txt) instead of stopping before step 1."
    ),
    check_samples: bool = typer.Option(
        False, "--check-samples", help="The data pre-flight also reads every file's samples (NaN/inf), "
        "not only the headers; cached per file, so a second run reads nothing."
    ),
    snapshot_minutes: str = typer.Option(
        "", "--snapshot-minutes", help="Comma-separated minutes (e.g. 5,10,20) at which to also keep snap-<m>min.pt "
        "(time-to-quality curves from one run; minutes of the run's training clock, which a --resume continues)."
    ),
) -> None:
    """Train a model from a recipe (AdamW, warm-up + cosine, checkpoints, JSONL logs). Works under torchrun."""
    from rich.console import Console

    from audiomamba.errors import ConfigError
    from audiomamba.recipe import load_recipe
    from audiomamba.train import RunOptions, train_recipe

    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"--max-steps must be >= 1, got {max_steps}")
    if max_minutes is not None and max_minutes <= 0:
        raise ConfigError(f"--max-minutes must be > 0, got {max_minutes}")
    if device is not None and device.split(":")[0] not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device!r}: use cpu or cuda")
    try:
        snaps = tuple(float(m) for m in snapshot_minutes.split(",") if m.strip())
    except ValueError:
        raise ConfigError(f"--snapshot-minutes {snapshot_minutes!r}: pass minutes separated by commas, e.g. 5,10,20") from None
    if any(not m > 0 for m in snaps):
        raise ConfigError(f"--snapshot-minutes {snapshot_minutes!r}: every entry must be > 0")
    rec = load_recipe(recipe, set_, data)
    if fit_schedule:
        rec = _fit_schedule(recipe, rec, set_, data, max_minutes, resume, device)
    run_dir = out if out is not None else Path("runs") / rec.name
    opts = RunOptions(out=run_dir, resume=resume, max_steps=max_steps, max_minutes=max_minutes, device=device,
                      snapshot_minutes=snaps, skip_bad=skip_bad, check_samples=check_samples)
    result = train_recipe(rec, opts)
    import os

    if os.environ.get("RANK", "0") == "0":
        best = f"{result.best_val_bpb:.4f}" if result.best_val_bpb is not None else "-"
        last = f"{result.last_val_bpb:.4f}" if result.last_val_bpb is not None else "-"
        Console().print(
            f"[bold]{rec.name}[/]: stopped at step {result.step} ({result.stop_reason}); "
            f"{result.n_params:,} parameters; validation BPB last {last}, best {best}; run folder {result.run_dir}"
        )


def _fit_schedule(name: str, rec, sets: list[str], data: Path | None, minutes: float | None, resume: bool, device: str | None):
    """Re-load the recipe with train.steps sized to the time budget (single process only)."""
    import os

    import torch
    from rich.console import Console

    from audiomamba.errors import ConfigError
    from audiomamba.recipe import load_recipe
    from audiomamba.train.calibrate import fit_steps

    if minutes is None:
        raise ConfigError("--fit-schedule needs --max-minutes (the budget to fit the schedule into)")
    if resume:
        raise ConfigError("--fit-schedule cannot be combined with --resume: a resumed run keeps its schedule")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("--fit-schedule runs in a single process: under torchrun pass --set train.steps=N instead")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    steps, fit, timing = fit_steps(rec, dev, minutes)
    how = f" compiled (first step {timing.first_step:.0f} s, taken off the budget)" if timing.compiled else ""
    Console().print(f"--fit-schedule: {timing.per_step * 1000:.0f} ms/step{how} on {dev} -> train.steps={steps} "
                    f"for {minutes:g} min")
    return load_recipe(name, [*sets, *fit], data)
