"""`audiomamba evaluate ...`: test NLL, the SC09 digit classifier (training, leave-one-speaker-out), sample metrics."""

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
    augment: str = typer.Option("basic", "--augment", help="Augmentation recipe: basic, robust (unseen speakers), "
                                "robust-wide (wider speed and warp ranges, for more epochs), robust-floor (plus a recording "
                                "noise floor under 4 kHz) or robust-pitch (plus a pitch shift that keeps formants and tempo)."),
    model: str = typer.Option("small", "--model", help="Classifier size: small (137 k parameters), wide (353 k), "
                              "xl (982 k) or xxl (2.39 M, for the GPU)."),
    mu_law: bool = typer.Option(True, "--mu-law/--no-mu-law", help="Hear clips as the models' 8-bit mu-law tokens "
                                "(default; generated samples are mu-law) or as 16-bit PCM."),
    band_norm: bool = typer.Option(False, "--band-norm", help="Remove each clip's mean log-mel spectrum over its "
                                   "speech frames (channel / speaker colour) before the network."),
    lifter: int = typer.Option(0, "--lifter", help="Cepstral smoothing: keep this many DCT components of each "
                               "log-mel frame (formants stay, the voice's pitch ripple goes); 0 = off."),
    pcen: bool = typer.Option(False, "--pcen", help="Per-channel energy normalisation (the keyword-spotting front "
                              "end) instead of the dB log-mel: each band divided by its own recent level."),
    consistency: float = typer.Option(0.0, "--consistency", help="Weight of a Jensen-Shannon consistency term "
                                      "between two independent augmentations of each clip (AugMix-style); 0 = off."),
    speaker_adversarial: float = typer.Option(0.0, "--speaker-adversarial", help="Weight of a speaker-adversarial "
                                              "term: a speaker head trained through a gradient reversal, so the "
                                              "features carry the digit but not the voice (DANN); 0 = off."),
) -> None:
    """Train the SC09 digit classifier used by the sample metrics.

    Writes CKPT, CKPT-stem.json (accuracies, training time, confusion) and CKPT-stem.confusion.png.
    """
    import torch

    from audiomamba.eval.train_classifier import TrainConfig, recipe_configs
    from audiomamba.eval.train_classifier import train_classifier as run

    if threads is not None:
        torch.set_num_threads(max(1, threads))
    aug, model_cfg = recipe_configs(augment, model, mu_law, band_norm, lifter, pcen)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
                      consistency=_weight(consistency, "--consistency", 12),
                      speaker_adversarial=_weight(speaker_adversarial, "--speaker-adversarial", 0.3))
    report = run(sc09_dir, out, cfg, model_cfg, aug)
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
    protocol: str = typer.Option(
        "ours", "--protocol",
        help="Metric formulas: ours, or sashimi (FID/IS/mIS/AM as the SaShiMi/Mamba papers' script).",
    ),
) -> None:
    """FID, IS, mIS, AM and NDB of a folder of samples, with train/test reference rows."""
    from audiomamba.eval.report import evaluate_samples

    evaluate_samples(samples_dir, classifier, reference, split=split, json_out=json_out, device=device,
                     ndb_bins=ndb_bins, protocol=protocol)


@app.command("run")
def run_(
    run: Path = typer.Argument(..., help="Trained SC09 run folder or checkpoint file."),
    classifier: Path = typer.Option(..., "--classifier", help="Digit classifier checkpoint."),
    reference: Path = typer.Option(..., "--reference", help="SC09-layout folder (train and test reference rows)."),
    out: Path = typer.Option(..., "--out", help="Folder for the samples and report.json."),
    samples: int = typer.Option(10240, "--samples", help="Samples to generate (the papers score 10,240)."),
    batch: int = typer.Option(2048, "--batch", help="Samples generated at once."),
    temperature: float = typer.Option(1.0, "--temperature", help="Softmax temperature; 0 = arg-max."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling mass (1 = off)."),
    min_p: float = typer.Option(0.0, "--min-p", help="Drop tokens less likely than this times the most likely one "
                                "(the far tail; 0 = off)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Sample from the trained weights, not their EMA."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
    ndb_bins: int = typer.Option(50, "--ndb-bins", help="k-means bins for NDB."),
    protocol: str = typer.Option("ours", "--protocol", help="Metric formulas: ours or sashimi (the papers' script)."),
) -> None:
    """Generate, filter (SaShiMi's likelihood filter) and score a run's samples: one table with the
    whole set, the filtered set and the train/test reference rows."""
    from audiomamba.errors import ConfigError
    from audiomamba.eval.run import evaluate_run
    from audiomamba.generate.sampling import check_sampling_options

    check_sampling_options(temperature, top_p, min_p)
    if ndb_bins < 1:
        raise ConfigError(f"--ndb-bins must be positive, got {ndb_bins}")
    evaluate_run(run, out, classifier, reference, samples, batch, temperature, top_p, seed, not no_ema, device, ndb_bins,
                 protocol=protocol, min_p=min_p)


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
    min_p: float = typer.Option(0.0, "--min-p", help="Drop tokens less likely than this times the most likely one "
                                "(the far tail; 0 = off)."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Sample from the trained weights, not their EMA."),
    filter_: str | None = typer.Option(None, "--filter", help="'sashimi': also score the samples that SaShiMi's "
                                       "likelihood filter keeps (40th-95th percentile), as the papers do."),
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
    from audiomamba.generate.output import sashimi_filter_option
    from audiomamba.generate.sampling import check_sampling_options

    check_sampling_options(1.0, 1.0, min_p)
    rows = score_snapshots(run, reference, classifier, out, n, temps, device, ema=not no_ema,
                           sashimi_filter=sashimi_filter_option(filter_), min_p=min_p)
    typer.echo(format_table(rows))


def _weight(weight: float, option: str, example: float) -> float:
    from audiomamba.errors import ConfigError

    if not weight >= 0:
        raise ConfigError(f"{option} {weight} is not a weight >= 0: pass 0 (off) or a positive weight, e.g. {example:g}")
    return weight


@app.command("classifier-loso")
def classifier_loso(
    sc09_dir: Path = typer.Argument(..., help="SC09-layout folder (<digit>/<speaker>_nohash_<n>.wav)."),
    out: Path = typer.Option(..., "--out", help="Folder for loso.json, loso.md and loso.png."),
    epochs: int = typer.Option(30, "--epochs", help="Training epochs per fold (best validation epoch is kept)."),
    augment: str = typer.Option("basic", "--augment", help="Augmentation recipe: basic, robust, "
                                "robust-wide, robust-floor or robust-pitch."),
    model: str = typer.Option("small", "--model", help="Classifier size: small (137 k parameters), wide (353 k), "
                              "xl (982 k) or xxl (2.39 M, for the GPU)."),
    mu_law: bool = typer.Option(True, "--mu-law/--no-mu-law", help="Hear clips as the models' 8-bit mu-law tokens "
                                "(default; generated samples are mu-law) or as 16-bit PCM."),
    band_norm: bool = typer.Option(False, "--band-norm", help="Remove each clip's mean log-mel spectrum over its "
                                   "speech frames (channel / speaker colour) before the network."),
    lifter: int = typer.Option(0, "--lifter", help="Cepstral smoothing: keep this many DCT components of each "
                               "log-mel frame (formants stay, the voice's pitch ripple goes); 0 = off."),
    pcen: bool = typer.Option(False, "--pcen", help="Per-channel energy normalisation (the keyword-spotting front "
                              "end) instead of the dB log-mel: each band divided by its own recent level."),
    speakers: str | None = typer.Option(None, "--speakers", help="Comma-separated held-out speakers (default: all)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    batch_size: int = typer.Option(64, "--batch-size", help="Clips per step."),
    lr: float = typer.Option(3e-3, "--lr", help="Peak learning rate of the one-cycle schedule."),
    seed: int = typer.Option(0, "--seed", help="Random seed (init, shuffling, augmentation)."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's choice)."),
    label: str = typer.Option("", "--label", help="Name of this run in the JSON and the plot."),
    tta_speeds: str = typer.Option("", "--tta-speeds", help="Also classify each held-out clip at these playback "
                                   "rates (e.g. 0.9,1.0,1.1) and average the probabilities (test-time augmentation)."),
    tta_warps: str = typer.Option("", "--tta-warps", help="Also classify each held-out clip with its log-mel warped "
                                  "along the frequency axis by these factors (e.g. 0.9,1.0,1.1; VTLN-style); with "
                                  "--tta-speeds, every speed x warp combination is averaged."),
    save_weights: bool = typer.Option(False, "--save-weights", help="Keep each fold's best classifier as "
                                      "OUT/classifier-<speaker>.pt (for classifier-loso-rescore)."),
    jobs: int = typer.Option(1, "--jobs", help="Folds trained at once, each in its own process with --threads "
                             "torch threads (default 1 there); the results equal one process's."),
    consistency: float = typer.Option(0.0, "--consistency", help="Weight of a Jensen-Shannon consistency term "
                                      "between two independent augmentations of each clip (AugMix-style); 0 = off."),
    speaker_adversarial: float = typer.Option(0.0, "--speaker-adversarial", help="Weight of a speaker-adversarial "
                                              "term: a speaker head trained through a gradient reversal, so the "
                                              "features carry the digit but not the voice (DANN); 0 = off."),
) -> None:
    """Leave-one-speaker-out accuracy of the digit classifier: per speaker, train on the others and
    test on all of that speaker's clips. Writes OUT/loso.json, OUT/loso.md, OUT/loso.png and the
    held-out clips' probabilities OUT/probs-<speaker>.pt (for loso-ensemble)."""
    import torch

    from audiomamba.eval.loso import format_table, run_loso
    from audiomamba.eval.train_classifier import TrainConfig, recipe_configs

    if threads is not None:
        torch.set_num_threads(max(1, threads))
    aug, model_cfg = recipe_configs(augment, model, mu_law, band_norm, lifter, pcen)
    names = [s.strip() for s in speakers.split(",") if s.strip()] if speakers else None
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
                      consistency=_weight(consistency, "--consistency", 12),
                      speaker_adversarial=_weight(speaker_adversarial, "--speaker-adversarial", 0.3))
    speeds, warps = _rates(tta_speeds, "--tta-speeds", "playback rates"), _rates(tta_warps, "--tta-warps", "warp factors")
    report = run_loso(sc09_dir, out, cfg, model_cfg, aug, names, label=label or f"{augment}/{model}, {epochs} epochs",
                      tta_speeds=speeds, tta_warps=warps, save_weights=save_weights, jobs=jobs, threads=threads)
    typer.echo(format_table(report))
    with_tta = f"; with {_tta_text(speeds, warps)}: {100 * report['mean_tta_accuracy']:.2f}%" if speeds or warps else ""
    typer.echo(f"mean leave-one-speaker-out accuracy {100 * report['mean_accuracy']:.2f}%{with_tta} "
               f"({report['wall_seconds']:.0f} s on {report['device']}); wrote {out}")


def _rates(text: str, option: str, what: str) -> tuple[float, ...]:
    """'0.9,1.0,1.1' → (0.9, 1.0, 1.1); a one-line ConfigError for anything else."""
    from audiomamba.errors import ConfigError

    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r}: pass {what} separated by commas, e.g. 0.9,1.0,1.1") from None


def _tta_text(speeds: tuple[float, ...], warps: tuple[float, ...]) -> str:
    """(0.9, 1.0), (1.1,) → 'test-time speeds 0.9,1 x warps 1.1'."""
    parts = [f"{what} {','.join(f'{v:g}' for v in values)}" for what, values in (("speeds", speeds), ("warps", warps))
             if values]
    return "test-time " + " x ".join(parts)


@app.command("classifier-loso-rescore")
def classifier_loso_rescore(
    run: Path = typer.Argument(..., help="classifier-loso folder trained with --save-weights (classifier-<speaker>.pt)."),
    out: Path = typer.Option(..., "--out", help="Folder for the new probs-<speaker>.pt, loso.json, loso.md and loso.png."),
    data: Path | None = typer.Option(None, "--data", help="SC09-layout folder (default: the one in RUN/loso.json)."),
    tta_speeds: str = typer.Option("", "--tta-speeds", help="Playback rates to average over, e.g. 0.9,1.0,1.1."),
    tta_warps: str = typer.Option("", "--tta-warps", help="Frequency-warp factors of the log-mel to average over "
                                  "(every speed x warp combination), e.g. 0.9,1.0,1.1."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's choice)."),
    label: str = typer.Option("", "--label", help="Name of this scoring in the JSON and the plot (default: the run's)."),
) -> None:
    """Score the fold classifiers of a classifier-loso --save-weights run again with other test-time
    variants, without training. OUT gets probs-<speaker>.pt (for loso-ensemble) and the table."""
    import torch

    from audiomamba.eval.loso import format_table, rescore_loso

    if threads is not None:
        torch.set_num_threads(max(1, threads))
    speeds, warps = _rates(tta_speeds, "--tta-speeds", "playback rates"), _rates(tta_warps, "--tta-warps", "warp factors")
    report = rescore_loso(run, out, data, speeds, warps, device, label=label)
    typer.echo(format_table(report))
    with_tta = f"; with {_tta_text(speeds, warps)}: {100 * report['mean_tta_accuracy']:.2f}%" if speeds or warps else ""
    typer.echo(f"mean leave-one-speaker-out accuracy {100 * report['mean_accuracy']:.2f}%{with_tta} "
               f"({len(report['folds'])} saved folds of {run}); wrote {out}")


# the stored-probabilities options of loso-ensemble and loso-select
_LOSO_RUNS = typer.Argument(..., help="classifier-loso output folders (each with probs-<speaker>.pt).")
_TTA = typer.Option(False, "--tta", help="Each run contributes the mean over all its stored test-time variants (runs "
                    "without any: their plain probabilities).")
_TTA_SPEEDS = typer.Option("", "--tta-speeds", help="Like --tta, but only these stored playback rates (e.g. 0.9,1.0,1.1), "
                           "combined with --tta-warps.")
_TTA_WARPS = typer.Option("", "--tta-warps", help="Like --tta, but only these stored warp factors, combined with "
                          "--tta-speeds.")


def _stored_variants(tta: bool, tta_speeds: str, tta_warps: str) -> tuple[bool, list[str] | None]:
    """(use test-time variants, their keys) from the --tta / --tta-speeds / --tta-warps options."""
    from audiomamba.eval.loso import check_tta, tta_keys

    speeds, warps = _rates(tta_speeds, "--tta-speeds", "playback rates"), _rates(tta_warps, "--tta-warps", "warp factors")
    check_tta(speeds, warps)
    return tta or bool(speeds or warps), tta_keys(speeds, warps) or None


@app.command("loso-ensemble")
def loso_ensemble(runs: list[Path] = _LOSO_RUNS, tta: bool = _TTA, tta_speeds: str = _TTA_SPEEDS,
                  tta_warps: str = _TTA_WARPS) -> None:
    """Leave-one-speaker-out accuracy of the mean class probabilities of several classifier-loso runs
    (seeds, front ends, augmentations), per held-out speaker that every run has."""
    from audiomamba.eval.loso import ensemble_accuracy

    use_tta, keys = _stored_variants(tta, tta_speeds, tta_warps)
    acc = ensemble_accuracy(runs, tta=use_tta, keys=keys)
    typer.echo("| held-out speaker | ensemble accuracy |\n| --- | ---: |")
    for name, value in acc.items():
        typer.echo(f"| {'**mean**' if name == 'mean' else name} | {100 * value:.2f} % |")


@app.command("loso-select")
def loso_select(
    runs: list[Path] = _LOSO_RUNS, tta: bool = _TTA, tta_speeds: str = _TTA_SPEEDS, tta_warps: str = _TTA_WARPS,
    max_members: int = typer.Option(0, "--max-members", min=0, help="Largest set compared (0: up to all runs)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report here as JSON."),
    plot: Path | None = typer.Option(None, "--plot", help="Also draw the per-speaker bars here (PNG)."),
) -> None:
    """Pick the set of classifier-loso runs to ensemble, and say fairly how well picking does: for each
    held-out speaker the set with the best mean over the other speakers is chosen and scored on the
    held-out one (nested leave-one-speaker-out). Then the set chosen on every speaker (what to ship)."""
    import json

    from audiomamba.eval.loso import nested_selection, plot_selection

    use_tta, keys = _stored_variants(tta, tta_speeds, tta_warps)
    r = nested_selection(runs, tta=use_tta, keys=keys, max_members=max_members or None)
    typer.echo("| held-out speaker | set chosen on the other speakers | its mean there | held-out accuracy |\n"
               "| --- | --- | ---: | ---: |")
    for f in r["folds"]:
        typer.echo(f"| {f['speaker']} | {' + '.join(f['chosen'])} | {100 * f['others_accuracy']:.2f} % | "
                   f"{100 * f['held_out_accuracy']:.2f} % |")
    typer.echo(f"| **nested mean** | | | **{100 * r['nested_mean']:.2f} %** |")
    typer.echo(f"{r['sets_compared']} sets compared. Chosen on all {len(r['folds'])} speakers: {' + '.join(r['chosen'])}, "
               f"mean {100 * r['chosen_mean']:.2f} % there (optimistic: that mean chose it; the nested mean is the fair "
               "estimate of picking this way)")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(r, indent=2) + "\n")
        typer.echo(f"wrote {json_out}")
    if plot is not None:
        typer.echo(f"wrote {plot_selection(r, plot)}")


@app.command("ensemble-classifier")
def ensemble_classifier(
    checkpoints: list[Path] = typer.Argument(..., help="Classifier checkpoints from train-classifier (e.g. front ends "
                                             "that err on different voices)."),
    data: Path = typer.Option(..., "--data", help="SC09-layout folder: the ensemble is scored on its test split, "
                              "and without --calibrate-on the temperature is fitted on its validation split."),
    out: Path = typer.Option(..., "--out", help="Ensemble checkpoint to write (works wherever --classifier CKPT is taken)."),
    tta_speeds: str = typer.Option("0.9,1.0,1.1", "--tta-speeds", help="Playback rates each member hears every clip "
                                   "at, probabilities averaged; '' for the plain clip only."),
    calibrate_on: list[Path] | None = typer.Option(None, "--calibrate-on", help="A classifier-loso folder of each "
                                                   "classifier's recipe (repeat, same order): fit the temperature on "
                                                   "voices the members did not hear, not on the validation split."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's choice)."),
) -> None:
    """Combine trained digit classifiers into one: mean probabilities over members and playback rates,
    sharpened by a temperature fitted on the validation split or, with --calibrate-on, on
    leave-one-speaker-out probabilities. Writes OUT, OUT-stem.json and OUT-stem.confusion.png."""
    import torch

    from audiomamba.eval.ensemble import build_ensemble
    from audiomamba.eval.loso import check_tta

    if threads is not None:
        torch.set_num_threads(max(1, threads))
    speeds = _rates(tta_speeds, "--tta-speeds", "playback rates")
    check_tta(speeds, ())
    r = build_ensemble(checkpoints, data, out, speeds, device, calibrate_on=calibrate_on or None)
    members = ", ".join(f"{100 * a:.2f}%" for a in r["member_test_accuracy"])
    typer.echo(f"test accuracy {100 * r['test_accuracy']:.2f}% (members {members}); temperature {r['temperature']:g} "
               f"fitted on the {r['temperature_fitted_on']}: there {100 * r['calibration_confident']:.1f}% reach "
               f"p >= 0.9, {100 * r['calibration_right_when_confident']:.1f}% of them right; test clips with "
               f"p >= 0.9: {100 * r['test_confident']:.1f}% ({100 * r['test_confident_before_temperature']:.1f}% "
               f"before); wrote {out}")


@app.command("import-classifier")
def import_classifier(
    file: Path = typer.Argument(..., help="SaShiMi's released SC09 classifier (sc09_classifier/resnext.pth)."),
    out: Path = typer.Option(..., "--out", help="Classifier checkpoint to write (loads with weights_only)."),
) -> None:
    """Convert SaShiMi's SC09 ResNeXt classifier (a pickled DataParallel) into our checkpoint.

    The pickle is read by a restricted unpickler: only its model classes, torch.nn layers and
    tensors are admitted (as inert stand-ins) and none of the file's code runs; anything else is
    refused. The result works wherever --classifier CKPT is taken and computes SaShiMi's own
    features (32 mel bands x 32 frames of 1 s at 16 kHz, dB re each clip's maximum).
    """
    from audiomamba.eval.sashimi_classifier import import_sashimi_classifier

    s = import_sashimi_classifier(file, out)
    fe = s["config"]["frontend"]
    typer.echo(
        f"imported {s['layout']} (ResNeXt-{s['depth']}, cardinality {s['cardinality']}, {s['params'] / 1e6:.2f} M "
        f"parameters, {s['feature_dim']}-d features, {s['num_classes']} classes; input {fe['n_mels']} mel x "
        f"{s['input_size'][1]} frames, n_fft {fe['n_fft']}, hop {fe['hop_length']}, {fe['sample_rate']} Hz); "
        f"wrote {out}"
    )
