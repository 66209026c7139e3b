"""Leave-one-speaker-out (LOSO) evaluation of the digit classifier
(``audiomamba evaluate classifier-loso``).

SC09-layout file names are ``<digit>/<speaker>_nohash_<n>.wav``. For every speaker S, a fresh
classifier is trained (:func:`eval.train_classifier.fit_classifier`) on the clips of all other
speakers from every split except their validation split, selected on those speakers'
validation-split clips (or every 10th of their clips where they have none), and tested on **all**
clips of S, which it never heard. Writes ``OUT/loso.json`` (per-fold accuracy, per-digit accuracy,
confusion, history), ``OUT/loso.md`` (the table), ``OUT/loso.png`` (bar chart per speaker) and
``OUT/probs-<speaker>.pt`` (the held-out clips' class probabilities and labels), which
:func:`ensemble_accuracy` averages across runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import torch
from audiomamba.eval.augment import AugmentConfig
from audiomamba.eval.classifier import ClassifierConfig, DigitClassifier
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

from audiomamba.errors import ConfigError, DataError

SPLITS = ("train", "validation", "test")


def speaker_of(path: str | Path) -> str:
    """``<speaker>_nohash_<n>.wav`` → speaker (the whole stem if there is no ``_nohash_``)."""
    stem = Path(path).stem
    return stem.split("_nohash_")[0]


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
    """One fold per speaker (sorted): {"speaker", "train", "val", "test"} index tensors.

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
        folds.append({"speaker": name, "train": torch.tensor(train), "val": torch.tensor(val), "test": torch.tensor(test)})
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
) -> dict:
    """Train and test one classifier per held-out speaker; write loso.json/.md/.png under ``out``.

    ``tta_speeds`` (test-time augmentation): also classify each held-out clip played at these speeds
    (:func:`eval.augment.speed_perturb`: pitch, formants and tempo move together, as between voices)
    and average the probabilities; each fold then also reports ``tta_accuracy``, and its probs file
    keeps every speed's probabilities (``tta``), so other subsets can be scored afterwards."""
    from audiomamba.data.sc09 import DIGITS

    cfg = cfg or TrainConfig()
    aug = aug or AugmentConfig()
    model_cfg = model_cfg or ClassifierConfig()
    console = console or Console(stderr=True)
    if cfg.epochs < 1:
        raise ConfigError(f"--epochs {cfg.epochs} is not positive: pass --epochs 1 or more")
    bad = [s for s in tta_speeds if not 0.5 <= s <= 2.0]
    if bad:
        raise ConfigError(f"--tta-speeds {bad[0]:g}: use playback rates between 0.5 and 2, e.g. 0.9,1.0,1.1")
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
    rows = []
    t_all = time.perf_counter()
    for k, fold in enumerate(folds, 1):
        name = fold["speaker"]
        tr, va, te = fold["train"], fold["val"], fold["test"]
        console.print(f"fold {k}/{len(folds)}: held-out speaker {name} ({len(te)} clips); "
                      f"train {len(tr)}, validation {len(va)} clips of the other speakers")
        fit = fit_classifier(waves[tr], labels[tr], waves[va], labels[va], cfg, model_cfg, aug, progress, console,
                             desc=f"fold {k}/{len(folds)}")
        acc, loss, pred, probs = evaluate(fit.model, waves[te], labels[te])
        tta = tta_probs(fit.model, waves[te], tta_speeds)
        saved = {"probs": probs, "labels": labels[te].cpu()}
        if tta:
            saved["tta"] = tta
        torch.save(saved, out / f"probs-{name}.pt")
        cm = confusion_matrix(pred, labels[te], len(DIGITS))
        per_digit = (cm.diag().float() / cm.sum(1).clamp_min(1).float()).tolist()
        rows.append({
            "speaker": name, "accuracy": acc, "loss": loss, "test_clips": len(te), "train_clips": len(tr),
            "val_clips": len(va), "best_epoch": fit.best_epoch, "val_accuracy": fit.val_accuracy,
            "train_seconds": round(fit.train_seconds, 1), "per_digit_accuracy": per_digit,
            "confusion": cm.tolist(), "history": fit.history,
        })
        if tta:
            rows[-1]["tta_accuracy"] = tta_accuracy(tta, labels[te].cpu())
        with_tta = f", with test-time speeds {100 * rows[-1]['tta_accuracy']:.2f}%" if tta else ""
        console.print(f"fold {k}/{len(folds)}: {name} accuracy {100 * acc:.2f}%{with_tta} (validation "
                      f"{100 * fit.val_accuracy:.2f}% at epoch {fit.best_epoch}, {fit.train_seconds:.0f} s)")
    mean = sum(r["accuracy"] for r in rows) / len(rows)
    report = {
        "label": label,
        "data": str(Path(root).resolve()),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device_name(device),
        "wall_seconds": round(time.perf_counter() - t_all, 1),
        "mean_accuracy": mean,
        "pooled_accuracy": sum(r["accuracy"] * r["test_clips"] for r in rows) / sum(r["test_clips"] for r in rows),
        "parameters": sum(p.numel() for p in DigitClassifier(model_cfg).parameters()),
        "train_config": asdict(cfg),
        "model_config": model_cfg.to_dict(),
        "augment_config": aug.to_dict(),
        "classes": list(DIGITS),
        "tta_speeds": list(tta_speeds),
        "folds": rows,
    }
    if tta_speeds:
        report["mean_tta_accuracy"] = sum(r["tta_accuracy"] for r in rows) / len(rows)
    (out / "loso.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "loso.md").write_text(format_table(report) + "\n")
    plot_loso(report, out / "loso.png")
    return report


def tta_probs(model: DigitClassifier, waves: torch.Tensor, speeds: tuple[float, ...]) -> dict[str, torch.Tensor]:
    """Class probabilities of ``waves`` (N, T) played at each speed: {"0.9": (N, classes), ...}."""
    from audiomamba.eval.augment import speed_perturb

    out = {}
    for s in speeds:
        played = waves if s == 1.0 else speed_perturb(waves, torch.full((waves.shape[0],), float(s)))
        out[f"{s:g}"] = evaluate(model, played, torch.zeros(len(waves), dtype=torch.long))[3].cpu()
    return out


def tta_accuracy(tta: dict[str, torch.Tensor], labels: torch.Tensor, speeds: list[str] | None = None) -> float:
    """Accuracy of the mean probabilities over ``speeds`` (default: every speed in ``tta``)."""
    keys = speeds or list(tta)
    mean = torch.stack([tta[k] for k in keys]).mean(0)
    return (mean.argmax(-1) == labels).float().mean().item()


def ensemble_accuracy(runs: list[str | Path]) -> dict[str, float]:
    """Per held-out speaker, the accuracy of the mean class probabilities of several LOSO runs
    (their ``probs-<speaker>.pt``; only speakers every run has), plus ``"mean"`` over them."""
    runs = [Path(r) for r in runs]
    names = [{f.stem[len("probs-"):] for f in r.glob("probs-*.pt")} for r in runs]
    common = sorted(set.intersection(*names)) if names else []
    if not common:
        raise DataError(f"no held-out speaker with probs-<speaker>.pt in every one of {', '.join(map(str, runs))}: "
                        "run classifier-loso into each folder first")
    out: dict[str, float] = {}
    for name in common:
        parts = [torch.load(r / f"probs-{name}.pt", weights_only=True) for r in runs]
        labels = parts[0]["labels"]
        if any(not torch.equal(q["labels"], labels) for q in parts):
            raise DataError(f"probs-{name}.pt: the runs tested different clips; use one data folder for all")
        mean = torch.stack([q["probs"] for q in parts]).mean(0)
        out[name] = (mean.argmax(-1) == labels).float().mean().item()
    out["mean"] = sum(out.values()) / len(out)
    return out


def format_table(report: dict) -> str:
    """Markdown table: one row per held-out speaker, then the mean (with a test-time-speeds column
    when the run had ``tta_speeds``)."""
    tta = bool(report.get("tta_speeds"))
    head = "| held-out speaker | test clips | accuracy |" + (" with test-time speeds |" if tta else "")
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
