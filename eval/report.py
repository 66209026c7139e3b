"""``audiomamba evaluate samples``: metrics of generated clips with train/test reference rows.

Reference statistics come from the SC09 folder: the **train** split is the basis of FID, AM and
NDB (k-means bins fitted on its features); the train and test splits are also scored themselves
as reference rows. The evaluated set is either a folder of audio files or, with ``split``, a
split of the reference folder (to measure real data against itself). ``protocol`` picks the metric
formulas (``ours`` or ``sashimi``, eval.metrics) for every row, reference rows included; the table
title and the JSON name it.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import torch
from audiomamba.eval.classifier import DigitClassifier, load_classifier
from audiomamba.eval.clips import load_split
from audiomamba.eval.metrics import NDB, PROTOCOL_NOTES, PROTOCOLS, sample_metrics
from audiomamba.eval.progress import make_progress
from audiomamba.eval.sample_audio import load_samples
from audiomamba.eval.train_classifier import resolve_device
from rich.console import Console
from rich.table import Table

from audiomamba.errors import ConfigError

SPLITS = ("train", "validation", "test")
NDB_MIN_SAMPLES = 500
COLUMNS = (("count", "clips", "{:d}"), ("FID", "FID ↓", "{:.3f}"), ("IS", "IS ↑", "{:.3f}"),
           ("mIS", "mIS ↑", "{:.2f}"), ("AM", "AM ↓", "{:.3f}"), ("NDB", "NDB ↓", "{:.2f}"))


def embed(model: DigitClassifier, waves: torch.Tensor, desc: str, progress: bool, batch_size: int = 128,
          console: Console | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """waves (N, T) → (features (N, D), probs (N, 10)) on CPU, batched, with a progress bar."""
    feats, probs = [], []
    with make_progress("clips", disable=not progress, console=console) as bar:
        task = bar.add_task(desc, total=waves.shape[0], info="")
        for start in range(0, waves.shape[0], batch_size):
            f, p = model.features_and_probs(waves[start : start + batch_size], batch_size)
            feats.append(f)
            probs.append(p)
            bar.advance(task, f.shape[0])
    return torch.cat(feats), torch.cat(probs)


def _clean(x: object) -> object:
    """NaN → None so the JSON is standard."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def metrics_table(rows: dict[str, dict], title: str) -> Table:
    """Rich table with one line per evaluated set."""
    table = Table(title=title)
    table.add_column("set")
    for _, head, _ in COLUMNS:
        table.add_column(head, justify="right")
    for name, row in rows.items():
        cells = []
        for key, _, fmt in COLUMNS:
            v = row.get(key)
            cells.append("n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v))
        table.add_row(name, *cells)
    return table


def evaluate_samples(
    samples_dir: str | Path | None,
    classifier: str | Path,
    reference: str | Path,
    split: str | None = None,
    json_out: str | Path | None = None,
    device: str = "auto",
    ndb_bins: int = 50,
    seed: int = 0,
    progress: bool = True,
    console: Console | None = None,
    protocol: str = "ours",
) -> dict:
    """Score a samples folder (or a reference ``split``) and the train/test reference rows.

    ``protocol``: ``"ours"`` (default) or ``"sashimi"`` (the SaShiMi / Mamba metrics script's
    FID, IS, mIS and AM), used for all rows. Returns the report dict; writes it as JSON to
    ``json_out`` when given and prints a table.
    """
    console = console or Console()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r} in --protocol: use one of {', '.join(PROTOCOLS)}")
    if (samples_dir is None) == (split is None):
        raise ConfigError("pass either SAMPLES_DIR or --split {train,validation,test}, not both or neither")
    if split is not None and split not in SPLITS:
        raise ConfigError(f"unknown split {split!r} in --split: use one of {', '.join(SPLITS)}")
    dev = resolve_device(device)
    model = load_classifier(classifier, dev)

    sample_set = None
    if samples_dir is not None:
        sample_set = load_samples(samples_dir, progress)

    ref: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name in dict.fromkeys(["train", "test", *([split] if split else [])]):
        waves, _ = load_split(reference, name, progress)
        ref[name] = embed(model, waves, f"classify {name}", progress, console=console)
    train_f, train_p = ref["train"]
    if train_f.shape[0] < ndb_bins:
        raise ConfigError(
            f"only {train_f.shape[0]} train clips in {reference} for {ndb_bins} NDB bins: pass --ndb-bins {max(1, train_f.shape[0] // 4)} or use more data"
        )
    ndb = NDB(train_f, k=ndb_bins, seed=seed)

    rows: dict[str, dict] = {}
    if sample_set is not None:
        feats, probs = embed(model, sample_set.waves, "classify samples", progress, console=console)
        label = "samples"
        rows[label] = sample_metrics(train_f, train_p, feats, probs, ndb, protocol).row()
        rows[label]["predicted_class_counts"] = torch.bincount(probs.argmax(-1), minlength=probs.shape[1]).tolist()
    else:
        label = f"{split} (reference)"
    for name, (f, p) in ref.items():
        key = f"{name} (reference)"
        rows[key] = sample_metrics(train_f, train_p, f, p, ndb, protocol).row()
        rows[key]["predicted_class_counts"] = torch.bincount(p.argmax(-1), minlength=p.shape[1]).tolist()
    if split is not None:  # evaluated split first, then train and test
        rows = {label: rows[label], **{k: v for k, v in rows.items() if k != label}}

    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "evaluated": str(samples_dir) if samples_dir is not None else f"{reference} split {split}",
        "classifier": str(classifier),
        "reference": str(reference),
        "protocol": protocol,
        "protocol_notes": PROTOCOL_NOTES[protocol],
        "basis": "train split: FID/AM/NDB against its features and class marginal; "
                 f"NDB with {ndb_bins} k-means bins (seed {seed}), two-proportion z-test alpha 0.05",
        "device": str(dev),
        "rows": rows,
    }
    if sample_set is not None:
        report["quality"] = sample_set.quality()

    console.print(metrics_table(rows, f"SC09 sample metrics ({protocol} protocol)"))
    if sample_set is not None:
        q = report["quality"]
        console.print(
            f"{q['evaluated']} clips evaluated: {q['nan']} with NaN/inf (set to 0), {q['silent']} silent, "
            f"{q['clipped']} clipped — all kept in the metrics; {q['unreadable']} unreadable file(s) left out"
        )
        if q["evaluated"] < NDB_MIN_SAMPLES:
            console.print(
                f"note: NDB has little power with {q['evaluated']} clips (missing bins are only detected "
                f"reliably with ~{NDB_MIN_SAMPLES}+); evaluate more samples for a meaningful NDB"
            )
    if json_out is not None:
        json_out = Path(json_out)
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(_clean(report), indent=2) + "\n")
        console.print(f"wrote {json_out}")
    return report
