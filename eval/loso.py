"""Leave-one-speaker-out (LOSO) evaluation of the digit classifier
(``audiomamba evaluate classifier-loso``).

SC09-layout file names are ``<digit>/<speaker>_nohash_<n>.wav``. For every speaker S, a fresh
classifier is trained (:func:`eval.train_classifier.fit_classifier`) on the clips of all other
speakers from every split except their validation split, selected on those speakers'
validation-split clips (or every 10th of their clips where they have none), and tested on **all**
clips of S, which it never heard. Writes ``OUT/loso.json`` (per-fold accuracy, per-digit accuracy,
confusion, history), ``OUT/loso.md`` (the table), ``OUT/loso.png`` (bar chart per speaker) and
``OUT/probs-<speaker>.pt`` (the held-out clips' class probabilities and labels, and with
test-time augmentation every variant's), which :func:`ensemble_accuracy` averages across runs.
With ``save_weights`` each fold's classifier is kept as ``OUT/classifier-<speaker>.pt``;
:func:`rescore_loso` (``classifier-loso-rescore``) scores those again with other test-time
variants, without training.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import torch
from audiomamba.eval.augment import AugmentConfig
from audiomamba.eval.classifier import ClassifierConfig, DigitClassifier, load_classifier, save_classifier
from audiomamba.eval.clips import speaker_ids, speaker_of
from audiomamba.eval.confusion import confusion_matrix
from audiomamba.eval.progress import make_progress
from audiomamba.eval.train_classifier import (
    TrainConfig,
    device_name,
    evaluate,
    fit_classifier,
    resolve_device,
)
from rich.console import Console

from audiomamba.errors import CheckpointError, ConfigError, DataError

SPLITS = ("train", "validation", "test")


def load_all(root: str | Path, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """Every digit clip of ``root``: (waves (N, 16000), labels (N,), speakers [N], splits [N])."""
    from audiomamba.data.sc09 import CLIP_SAMPLES, SC09Dataset

    datasets = []
    for split in SPLITS:
        try:
            datasets.append((split, SC09Dataset(root, split)))
        except DataError as err:
            if "no .wav clips of split" not in str(err):
                raise
    n = sum(len(ds) for _, ds in datasets)
    waves = torch.empty(n, CLIP_SAMPLES)
    labels: list[int] = []
    speakers: list[str] = []
    splits: list[str] = []
    with make_progress("clips", disable=not progress) as bar:
        task = bar.add_task("load clips", total=n, info="")
        i = 0
        for split, ds in datasets:
            for j in range(len(ds)):
                waves[i] = ds.waveform(j)
                i += 1
                bar.advance(task)
            labels += ds.labels
            speakers += [speaker_of(p) for p in ds.files]
            splits += [split] * len(ds)
    return waves, torch.tensor(labels, dtype=torch.long), speakers, splits


def loso_folds(speakers: list[str], splits: list[str]) -> list[dict]:
    """One fold per speaker (sorted): {"speaker", "train", "val", "test"} index tensors, and "train_spk", the
    training clips' speaker indices (:func:`eval.clips.speaker_ids`, for ``--speaker-adversarial``).

    test = all clips of the speaker; val = the other speakers' validation-split clips (every 10th
    of their clips if they have none); train = the other speakers' remaining clips.
    """
    names = sorted(set(speakers))
    if len(names) < 2:
        raise DataError(
            f"leave-one-speaker-out needs at least 2 speakers, found {len(names)} "
            "(file names must be <digit>/<speaker>_nohash_<n>.wav)"
        )
    folds = []
    for name in names:
        test = [i for i, s in enumerate(speakers) if s == name]
        others = [i for i, s in enumerate(speakers) if s != name]
        val = [i for i in others if splits[i] == "validation"]
        if not val:
            val = others[::10]
        vs = set(val)
        train = [i for i in others if i not in vs]
        folds.append({"speaker": name, "train": torch.tensor(train), "val": torch.tensor(val), "test": torch.tensor(test),
                      "train_spk": speaker_ids([speakers[i] for i in train])})
    return folds


def run_loso(
    root: str | Path,
    out: str | Path,
    cfg: TrainConfig | None = None,
    model_cfg: ClassifierConfig | None = None,
    aug: AugmentConfig | None = None,
    speakers: list[str] | None = None,
    progress: bool = True,
    console: Console | None = None,
    label: str = "",
    tta_speeds: tuple[float, ...] = (),
    tta_warps: tuple[float, ...] = (),
    save_weights: bool = False,
    jobs: int = 1,
    threads: int | None = None,
) -> dict:
    """Train and test one classifier per held-out speaker; write loso.json/.md/.png under ``out``.

    ``tta_speeds`` / ``tta_warps`` (test-time augmentation): also classify each held-out clip played
    at these speeds (:func:`eval.augment.speed_perturb`: pitch, formants and tempo move together, as
    between voices) and with its log-mel warped along the frequency axis by these factors
    (:func:`eval.augment.warp_freq`, VTLN-style: formants move, tempo does not), every combination of
    the two (:func:`tta_grid`), and average the probabilities; each fold then also reports
    ``tta_accuracy``, and its probs file keeps every variant's probabilities (``tta``), so other
    subsets can be scored afterwards. ``save_weights``: keep each fold's best classifier as
    ``OUT/classifier-<speaker>.pt`` (:func:`rescore_loso` scores them again without training).
    ``jobs`` > 1 trains that many folds at once in separate processes of ``threads`` torch threads
    each (default 1); each fold re-seeds, so the results equal a single process's."""
    cfg = cfg or TrainConfig()
    aug = aug or AugmentConfig()
    model_cfg = model_cfg or ClassifierConfig()
    console = console or Console(stderr=True)
    if cfg.epochs < 1:
        raise ConfigError(f"--epochs {cfg.epochs} is not positive: pass --epochs 1 or more")
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs} is not positive: pass --jobs 1 or more (folds trained at once)")
    check_tta(tta_speeds, tta_warps)
    device = resolve_device(cfg.device)
    out = Path(out)
    waves, labels, spk, splits = load_all(root, progress)
    folds = loso_folds(spk, splits)
    if speakers:
        unknown = sorted(set(speakers) - {f["speaker"] for f in folds})
        if unknown:
            raise ConfigError(f"--speakers {','.join(unknown)}: not in {root} (speakers: {', '.join(f['speaker'] for f in folds)})")
        folds = [f for f in folds if f["speaker"] in speakers]
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    opts = {"cfg": cfg, "model_cfg": model_cfg, "aug": aug, "out": out, "speeds": tuple(tta_speeds),
            "warps": tuple(tta_warps), "save_weights": save_weights}
    if jobs > 1 and len(folds) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        del waves  # every process loads the clips itself (no shared memory needed)
        console.print(f"training {len(folds)} folds, {min(jobs, len(folds))} at once "
                      f"({threads or 1} torch thread(s) each)")
        with ProcessPoolExecutor(min(jobs, len(folds)), mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_fold_job, str(root), f["speaker"], k, len(folds), threads or 1, opts)
                       for k, f in enumerate(folds, 1)]
            rows = [fut.result() for fut in futures]
    else:
        rows = [_run_fold(waves, labels, fold, k, len(folds), progress=progress, console=console, **opts)
                for k, fold in enumerate(folds, 1)]
    report = _report(rows, label, root, device, time.perf_counter() - t_all, model_cfg, tta_speeds, tta_warps)
    report.update({"train_config": asdict(cfg), "augment_config": aug.to_dict(), "jobs": jobs,
                   "saved_weights": save_weights})
    _write_report(report, out)
    return report


def _run_fold(waves: torch.Tensor, labels: torch.Tensor, fold: dict, k: int, n_folds: int, *, cfg: TrainConfig,
              model_cfg: ClassifierConfig, aug: AugmentConfig, out: Path, speeds: tuple[float, ...],
              warps: tuple[float, ...], save_weights: bool, progress: bool, console: Console) -> dict:
    """Train one fold, score its held-out speaker, write probs-<speaker>.pt (and classifier-<speaker>.pt);
    → the fold's row of loso.json."""
    name = fold["speaker"]
    tr, va, te = fold["train"], fold["val"], fold["test"]
    console.print(f"fold {k}/{n_folds}: held-out speaker {name} ({len(te)} clips); "
                  f"train {len(tr)}, validation {len(va)} clips of the other speakers")
    fit = fit_classifier(waves[tr], labels[tr], waves[va], labels[va], cfg, model_cfg, aug, progress, console,
                         desc=f"fold {k}/{n_folds}", train_spk=fold["train_spk"])
    row = _score_fold(fit.model, name, waves[te], labels[te], out, speeds, warps)
    row.update({"train_clips": len(tr), "val_clips": len(va), "best_epoch": fit.best_epoch,
                "val_accuracy": fit.val_accuracy, "train_seconds": round(fit.train_seconds, 1),
                "history": fit.history})
    if save_weights:
        meta = {key: row[key] for key in ("speaker", "accuracy", "test_clips", "train_clips", "val_clips",
                                          "best_epoch", "val_accuracy", "train_seconds")}
        meta.update({"epochs": cfg.epochs, "seed": cfg.seed, "augment_config": aug.to_dict()})
        save_classifier(fit.model, out / f"classifier-{name}.pt", meta)
    with_tta = f", with {tta_label(speeds, warps)} {100 * row['tta_accuracy']:.2f}%" if "tta_accuracy" in row else ""
    console.print(f"fold {k}/{n_folds}: {name} accuracy {100 * row['accuracy']:.2f}%{with_tta} (validation "
                  f"{100 * fit.val_accuracy:.2f}% at epoch {fit.best_epoch}, {fit.train_seconds:.0f} s)")
    return row


def _fold_job(root: str, speaker: str, k: int, n_folds: int, threads: int, opts: dict) -> dict:
    """One fold in a worker process of ``run_loso(jobs > 1)``: load the clips, train, score."""
    torch.set_num_threads(max(1, threads))
    waves, labels, spk, splits = load_all(root, progress=False)
    fold = next(f for f in loso_folds(spk, splits) if f["speaker"] == speaker)
    return _run_fold(waves, labels, fold, k, n_folds, progress=False, console=Console(stderr=True), **opts)


def _score_fold(model: DigitClassifier, name: str, waves: torch.Tensor, labels: torch.Tensor, out: Path,
                speeds: tuple[float, ...], warps: tuple[float, ...]) -> dict:
    """Score ``model`` on the held-out speaker's clips (plain and test-time variants), write
    ``out/probs-<name>.pt``; → {"speaker", "accuracy", "loss", "test_clips", "per_digit_accuracy",
    "confusion"[, "tta_accuracy"]}."""
    from audiomamba.data.sc09 import DIGITS

    acc, loss, pred, probs = evaluate(model, waves, labels)
    tta = tta_probs(model, waves, speeds, warps)
    saved = {"probs": probs, "labels": labels.cpu()}
    if tta:
        saved["tta"] = tta
    torch.save(saved, out / f"probs-{name}.pt")
    cm = confusion_matrix(pred, labels, len(DIGITS))
    per_digit = (cm.diag().float() / cm.sum(1).clamp_min(1).float()).tolist()
    row = {"speaker": name, "accuracy": acc, "loss": loss, "test_clips": len(labels), "per_digit_accuracy": per_digit,
           "confusion": cm.tolist()}
    if tta:
        row["tta_accuracy"] = tta_accuracy(tta, labels.cpu())
    return row


def _report(rows: list[dict], label: str, root: str | Path, device: torch.device, seconds: float,
            model_cfg: ClassifierConfig, speeds: tuple[float, ...], warps: tuple[float, ...]) -> dict:
    from audiomamba.data.sc09 import DIGITS

    report = {
        "label": label,
        "data": str(Path(root).resolve()),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device_name(device),
        "wall_seconds": round(seconds, 1),
        "mean_accuracy": sum(r["accuracy"] for r in rows) / len(rows),
        "pooled_accuracy": sum(r["accuracy"] * r["test_clips"] for r in rows) / sum(r["test_clips"] for r in rows),
        "parameters": sum(p.numel() for p in DigitClassifier(model_cfg).parameters()),
        "model_config": model_cfg.to_dict(),
        "classes": list(DIGITS),
        "tta_speeds": list(speeds),
        "tta_warps": list(warps),
        "folds": rows,
    }
    if speeds or warps:
        report["mean_tta_accuracy"] = sum(r["tta_accuracy"] for r in rows) / len(rows)
    return report


def _write_report(report: dict, out: Path) -> None:
    (out / "loso.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "loso.md").write_text(format_table(report) + "\n")
    plot_loso(report, out / "loso.png")


def rescore_loso(
    run: str | Path,
    out: str | Path,
    root: str | Path | None = None,
    tta_speeds: tuple[float, ...] = (),
    tta_warps: tuple[float, ...] = (),
    device: str = "auto",
    progress: bool = True,
    console: Console | None = None,
    label: str = "",
) -> dict:
    """Score the fold classifiers a ``classifier-loso --save-weights`` run kept
    (``run/classifier-<speaker>.pt``) again, with other test-time variants, without training.

    ``root``: the SC09-layout folder (default: the one named in ``run/loso.json``). Writes
    ``out/probs-<speaker>.pt``, ``out/loso.json``, ``.md`` and ``.png`` as :func:`run_loso` does
    (best epoch, validation accuracy and training time from each checkpoint's meta)."""
    run, out = Path(run), Path(out)
    console = console or Console(stderr=True)
    check_tta(tta_speeds, tta_warps)
    if not run.is_dir():
        raise DataError(f"classifier-loso folder not found: {run}: pass the --out folder of a classifier-loso run")
    ckpts = sorted(run.glob("classifier-*.pt"))
    if not ckpts:
        raise DataError(f"no fold classifiers (classifier-<speaker>.pt) in {run}: "
                        "run classifier-loso with --save-weights into it first")
    if out.resolve() == run.resolve():
        raise ConfigError(f"--out {out} is the run folder itself: pass another folder, so the run's own "
                          "probs-<speaker>.pt and loso.json stay as trained")
    prior = json.loads((run / "loso.json").read_text()) if (run / "loso.json").is_file() else {}
    if root is None:
        if "data" not in prior:
            raise ConfigError(f"{run / 'loso.json'} is missing or names no data folder: pass --data SC09_DIR")
        root = prior["data"]
        if not Path(root).is_dir():
            raise DataError(f"data folder {root} (named in {run / 'loso.json'}) not found: pass --data SC09_DIR")
    dev = resolve_device(device)
    t0 = time.perf_counter()
    waves, labels, spk, splits = load_all(root, progress)
    folds = {f["speaker"]: f for f in loso_folds(spk, splits)}
    out.mkdir(parents=True, exist_ok=True)
    rows, model_cfg = [], None
    for k, ckpt in enumerate(ckpts, 1):
        name = ckpt.stem[len("classifier-"):]
        if name not in folds:
            raise DataError(f"{ckpt}: speaker {name} has no clips in {root}: pass the data folder the run "
                            "was trained on (--data SC09_DIR)")
        model = load_classifier(ckpt, dev)
        if not isinstance(model, DigitClassifier):
            raise CheckpointError(f"{ckpt} is not one of our digit classifiers: classifier-loso --save-weights "
                                  "writes those; remove the file from the run folder")
        te = folds[name]["test"]
        meta = model.meta  # type: ignore[attr-defined]
        if meta.get("test_clips", len(te)) != len(te):
            raise DataError(f"{ckpt} was tested on {meta['test_clips']} clips of {name}, {root} has {len(te)}: "
                            "pass the data folder the run was trained on (--data SC09_DIR)")
        model_cfg = model_cfg or model.config
        row = _score_fold(model, name, waves[te], labels[te], out, tuple(tta_speeds), tuple(tta_warps))
        row.update({key: meta[key] for key in ("train_clips", "val_clips", "best_epoch", "val_accuracy",
                                               "train_seconds") if key in meta})
        row.setdefault("best_epoch", 0)
        row.setdefault("val_accuracy", float("nan"))
        row.setdefault("train_seconds", 0.0)
        if "accuracy" in meta:
            row["trained_accuracy"] = meta["accuracy"]
        rows.append(row)
        with_tta = (f", with {tta_label(tta_speeds, tta_warps)} {100 * row['tta_accuracy']:.2f}%"
                    if "tta_accuracy" in row else "")
        console.print(f"fold {k}/{len(ckpts)}: {name} accuracy {100 * row['accuracy']:.2f}%{with_tta}")
    report = _report(rows, label or prior.get("label", ""), root, dev, time.perf_counter() - t0, model_cfg,
                     tta_speeds, tta_warps)
    report["rescored_from"] = str(run.resolve())
    for key in ("train_config", "augment_config"):
        if key in prior:
            report[key] = prior[key]
    _write_report(report, out)
    return report


def check_tta(speeds: tuple[float, ...] | list[float], warps: tuple[float, ...] | list[float]) -> None:
    """One-line ConfigError for test-time speeds / warps outside 0.5-2 or given twice."""
    for option, values, what in (("--tta-speeds", speeds, "playback rates"),
                                 ("--tta-warps", warps, "frequency-warp factors")):
        bad = [v for v in values if not 0.5 <= v <= 2.0]
        if bad:
            raise ConfigError(f"{option} {bad[0]:g}: use {what} between 0.5 and 2, e.g. 0.9,1.0,1.1")
        twice = [v for i, v in enumerate(values) if v in values[:i]]
        if twice:
            raise ConfigError(f"{option} {twice[0]:g} is given twice: list each value once, e.g. 0.9,1.0,1.1")


def tta_grid(speeds: tuple[float, ...] | list[float], warps: tuple[float, ...] | list[float]) -> list[tuple[float, float]]:
    """Every (speed, warp) combination of the test-time variants; a missing list counts as (1.0,);
    nothing when both are empty."""
    if not speeds and not warps:
        return []
    return [(s, w) for s in (speeds or (1.0,)) for w in (warps or (1.0,))]


def tta_key(speed: float, warp: float = 1.0) -> str:
    """Name of a test-time variant in the probs files: ``"0.9"`` (speed 0.9, no warp; the names
    of the speed-only runs) or ``"0.9w1.1"`` (speed 0.9, frequency warp 1.1)."""
    return f"{speed:g}" if warp == 1.0 else f"{speed:g}w{warp:g}"


def tta_keys(speeds: tuple[float, ...] | list[float], warps: tuple[float, ...] | list[float]) -> list[str]:
    """Names of the variants of :func:`tta_grid`."""
    return [tta_key(s, w) for s, w in tta_grid(speeds, warps)]


def tta_label(speeds: tuple[float, ...] | list[float], warps: tuple[float, ...] | list[float]) -> str:
    if speeds and warps:
        return "test-time speeds x warps"
    return "test-time speeds" if speeds else "test-time warps"


@torch.no_grad()
def _warped_probs(model: DigitClassifier, waves: torch.Tensor, warp: float, batch_size: int = 256) -> torch.Tensor:
    """Class probabilities (N, classes) on the CPU of ``waves`` (N, T) with their log-mel warped by ``warp``."""
    from audiomamba.eval.augment import warp_freq

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    mel = model.config.logmel
    probs = []
    try:
        for start in range(0, waves.shape[0], batch_size):
            spec = model.frontend(waves[start : start + batch_size].to(device, torch.float32))
            spec = warp_freq(spec, torch.full((spec.shape[0],), float(warp)), mel.f_min, mel.f_max)
            probs.append(torch.softmax(model.forward_spec(spec).float(), dim=-1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(probs) if probs else torch.zeros(0, model.config.num_classes)


def tta_probs(model: DigitClassifier, waves: torch.Tensor, speeds: tuple[float, ...] = (),
              warps: tuple[float, ...] = ()) -> dict[str, torch.Tensor]:
    """Class probabilities of ``waves`` (N, T) for every (speed, warp) of :func:`tta_grid`:
    {"0.9": (N, classes), "0.9w1.1": ..., ...} (names from :func:`tta_key`). Speed 1 and warp 1 are
    the plain pass, exactly."""
    from audiomamba.eval.augment import speed_perturb

    out: dict[str, torch.Tensor] = {}
    if not speeds and not warps:
        return out
    for s in speeds or (1.0,):
        played = waves if s == 1.0 else speed_perturb(waves, torch.full((waves.shape[0],), float(s)))
        for w in warps or (1.0,):
            if w == 1.0:
                out[tta_key(s)] = evaluate(model, played, torch.zeros(len(waves), dtype=torch.long))[3].cpu()
            else:
                out[tta_key(s, w)] = _warped_probs(model, played, w)
    return out


def tta_accuracy(tta: dict[str, torch.Tensor], labels: torch.Tensor, speeds: list[str] | None = None) -> float:
    """Accuracy of the mean probabilities over the variants named ``speeds`` (keys of ``tta``, e.g.
    ``["0.9", "1", "1.1"]`` or :func:`tta_keys`; default: every variant in ``tta``)."""
    keys = speeds or list(tta)
    mean = torch.stack([tta[k] for k in keys]).mean(0)
    return (mean.argmax(-1) == labels).float().mean().item()


def member_probs(saved: dict, where: str | Path, tta: bool = False, keys: list[str] | None = None) -> torch.Tensor:
    """One run's probabilities for the ensemble: the plain pass, or with ``tta`` the mean over its
    test-time variants (``keys``, default all; ``"1"`` is the plain pass where it was not stored).
    A run without test-time variants gives its plain probabilities."""
    variants = dict(saved.get("tta") or {}) if tta else {}
    if not variants:
        return saved["probs"]
    variants.setdefault("1", saved["probs"])
    keys = keys or list(saved["tta"])
    missing = [k for k in keys if k not in variants]
    if missing:
        raise DataError(f"{where} has no test-time variant {missing[0]} (it has {', '.join(variants)}): pick "
                        "those, or score the run's saved classifiers with classifier-loso-rescore")
    return torch.stack([variants[k] for k in keys]).mean(0)


def ensemble_speakers(runs: list[Path]) -> list[str]:
    """The held-out speakers that every run has a ``probs-<speaker>.pt`` for, sorted; a one-line
    DataError when there is none."""
    names = [{f.stem[len("probs-"):] for f in r.glob("probs-*.pt")} for r in runs]
    common = sorted(set.intersection(*names)) if names else []
    if not common:
        raise DataError(f"no held-out speaker with probs-<speaker>.pt in every one of {', '.join(map(str, runs))}: "
                        "run classifier-loso into each folder first")
    return common


def _held_out_probs(runs: list[Path], tta: bool, keys: list[str] | None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per held-out speaker every run has: (each run's probabilities stacked (runs, N, classes), labels (N,))."""
    out = {}
    for name in ensemble_speakers(runs):
        parts = [torch.load(r / f"probs-{name}.pt", weights_only=True) for r in runs]
        labels = parts[0]["labels"]
        if any(not torch.equal(q["labels"], labels) for q in parts):
            raise DataError(f"probs-{name}.pt: the runs tested different clips; use one data folder for all")
        out[name] = (torch.stack([member_probs(q, r / f"probs-{name}.pt", tta, keys) for q, r in zip(parts, runs, strict=True)]),
                     labels)
    return out


def _mean_accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy of the mean of stacked class probabilities (members, N, classes) against ``labels`` (N,)."""
    return (probs.mean(0).argmax(-1) == labels).float().mean().item()


def ensemble_accuracy(runs: list[str | Path], tta: bool = False, keys: list[str] | None = None) -> dict[str, float]:
    """Per held-out speaker, the accuracy of the mean class probabilities of several LOSO runs
    (their ``probs-<speaker>.pt``; only speakers every run has), plus ``"mean"`` over them.
    ``tta``: each run contributes the mean over its test-time variants (``keys``, default all; see
    :func:`member_probs`) instead of its plain probabilities."""
    out = {name: _mean_accuracy(probs, labels)
           for name, (probs, labels) in _held_out_probs([Path(r) for r in runs], tta, keys).items()}
    out["mean"] = sum(out.values()) / len(out)
    return out


MAX_SELECT_RUNS = 12  # 4095 sets


def nested_selection(runs: list[str | Path], tta: bool = False, keys: list[str] | None = None,
                     max_members: int | None = None) -> dict:
    """How well "ship the set of runs with the best leave-one-speaker-out mean" does on a voice that the
    choice never saw: for each held-out speaker, the set (of at most ``max_members`` of ``runs``) with the
    best mean accuracy over the *other* speakers is picked, then scored on the held-out one. The mean of
    those scores is a fair estimate of the procedure (nested leave-one-speaker-out); the set picked on
    every speaker, and its mean there, are what would ship (that mean is optimistic: it chose the set).
    Ties go to fewer members, then to the earlier runs in ``runs`` order."""
    from itertools import combinations

    runs = [Path(r) for r in runs]
    if not 1 <= len(runs) <= MAX_SELECT_RUNS:
        raise ConfigError(f"loso-select got {len(runs)} runs: pass 1 to {MAX_SELECT_RUNS} classifier-loso folders")
    held = _held_out_probs(runs, tta, keys)
    speakers = list(held)
    if len(speakers) < 2:
        raise DataError(f"only {len(speakers)} held-out speaker in every run: nested selection needs at least 2")
    top = min(max_members or len(runs), len(runs))
    sets = [c for k in range(1, top + 1) for c in combinations(range(len(runs)), k)]
    acc = {c: {name: _mean_accuracy(p[list(c)], y) for name, (p, y) in held.items()} for c in sets}

    def pick(names: list[str]) -> tuple[tuple[int, ...], float]:
        best = max(sets, key=lambda c: (round(sum(acc[c][n] for n in names) / len(names), 9), -len(c),
                                        [-i for i in c]))
        return best, sum(acc[best][n] for n in names) / len(names)

    def label(c: tuple[int, ...]) -> list[str]:
        return [runs[i].name for i in c]

    folds = []
    for name in speakers:
        chosen, on_others = pick([n for n in speakers if n != name])
        folds.append({"speaker": name, "chosen": label(chosen), "others_accuracy": on_others,
                      "held_out_accuracy": acc[chosen][name]})
    final, final_acc = pick(speakers)
    return {"runs": [str(r) for r in runs], "sets_compared": len(sets), "folds": folds,
            "nested_mean": sum(f["held_out_accuracy"] for f in folds) / len(folds),
            "chosen": label(final), "chosen_runs": [str(runs[i]) for i in final], "chosen_mean": final_acc,
            "chosen_per_speaker": {n: acc[final][n] for n in speakers}}


def plot_selection(selection: dict, path: str | Path) -> Path:
    """Bars per held-out speaker of a :func:`nested_selection` report: each voice scored by the set picked without it
    (the fair figure), beside the set picked on every voice (what ships)."""
    def as_run(label: str, acc: dict[str, float], mean: float) -> dict:
        return {"label": label, "folds": [{"speaker": k, "accuracy": v} for k, v in acc.items()], "mean_accuracy": mean}

    nested = as_run("nested: the set picked without that voice",
                    {f["speaker"]: f["held_out_accuracy"] for f in selection["folds"]}, selection["nested_mean"])
    chosen = as_run(f"picked on every voice: {' + '.join(selection['chosen'])}", selection["chosen_per_speaker"],
                    selection["chosen_mean"])
    return plot_loso(nested, path, [chosen])


def format_table(report: dict) -> str:
    """Markdown table: one row per held-out speaker, then the mean (with a test-time column when the
    run had ``tta_speeds`` or ``tta_warps``)."""
    speeds, warps = report.get("tta_speeds") or [], report.get("tta_warps") or []
    tta = bool(speeds or warps)
    head = "| held-out speaker | test clips | accuracy |" + (f" with {tta_label(speeds, warps)} |" if tta else "")
    lines = [head + " best epoch | validation (seen speakers) | train s |",
             "| --- | ---: | ---: |" + (" ---: |" if tta else "") + " ---: | ---: | ---: |"]
    for r in report["folds"]:
        extra = f" {100 * r['tta_accuracy']:.2f} % |" if tta else ""
        lines.append(f"| {r['speaker']} | {r['test_clips']} | {100 * r['accuracy']:.2f} % |{extra} {r['best_epoch']} | "
                     f"{100 * r['val_accuracy']:.2f} % | {r['train_seconds']:.0f} |")
    extra = f" **{100 * report['mean_tta_accuracy']:.2f} %** |" if tta else ""
    lines.append(f"| **mean** | {sum(r['test_clips'] for r in report['folds'])} | **{100 * report['mean_accuracy']:.2f} %** |"
                 f"{extra} | | {sum(r['train_seconds'] for r in report['folds']):.0f} |")
    return "\n".join(lines)


def plot_loso(report: dict, path: str | Path, others: list[dict] | None = None) -> Path:
    """Bar chart of accuracy per held-out speaker (and the mean); ``others`` adds side-by-side runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    runs = [report, *(others or [])]
    names = [r["speaker"] for r in report["folds"]] + ["mean"]
    x = np.arange(len(names))
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 4.2), dpi=120)
    for j, run in enumerate(runs):
        acc = {r["speaker"]: 100 * r["accuracy"] for r in run["folds"]}
        vals = [acc.get(n, np.nan) for n in names[:-1]] + [100 * run["mean_accuracy"]]
        bars = ax.bar(x + (j - (len(runs) - 1) / 2) * width, vals, width, label=run.get("label") or f"run {j + 1}")
        for b, v in zip(bars, vals, strict=True):
            if np.isfinite(v):
                ax.text(b.get_x() + b.get_width() / 2, v + 0.3, f"{v:.1f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, names)
    ax.set_ylabel("accuracy on the held-out speaker (%)")
    lo = min(100 * r["accuracy"] for run in runs for r in run["folds"])
    ax.set_ylim(max(0.0, min(lo, 100 * min(run["mean_accuracy"] for run in runs)) - 8), 101)
    ax.axhline(95, color="grey", lw=0.8, ls="--")
    ax.set_title("SC09 digit classifier, leave-one-speaker-out")
    if len(runs) > 1 or report.get("label"):
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(runs), fontsize=8, frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
