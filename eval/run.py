"""``audiomamba evaluate run``: generate, filter and score a trained SC09 run in one command.

1. generate ``n`` unconditional 1 s samples exactly as ``audiomamba generate`` does (the EMA
   weights where the run kept them) and write them with their likelihood index;
2. apply SaShiMi's likelihood filter (keep the 40th to 95th percentile; the dropped samples are
   written to ``samples/dropped/``, nothing is lost);
3. classify every sample once and score the whole set and the filtered set, beside the train and
   test reference rows, in one table (FID, IS, mIS, AM, NDB), plus the samples' own BPB.

Writes ``OUT/samples/`` (WAVs, ``index.csv``/``index.json`` with the predicted digits,
``spectrograms.png``) and ``OUT/report.json`` (rows, timings, settings). The papers score 10,240
samples per model; that is the default of ``--samples``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from rich.console import Console

PAPER_SAMPLES = 10_240


def evaluate_run(
    run: Path,
    out: Path,
    classifier_path: Path,
    reference: Path,
    n: int = PAPER_SAMPLES,
    batch: int = 2048,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    ema: bool = True,
    device: str | None = None,
    ndb_bins: int = 50,
    progress: bool = True,
    console: Console | None = None,
    seconds: float = 1.0,
    protocol: str = "ours",
    min_p: float = 0.0,
) -> dict:
    """Generate ``n`` samples from ``run``, filter and score them; returns the report (also
    written to ``out/report.json``) and prints the table. ``seconds`` (1 for SC09) exists for
    quick tests; the classifier pads or crops every clip to 1 s. ``protocol``: the metric formulas,
    ``"ours"`` or ``"sashimi"`` (:mod:`audiomamba.eval.metrics`), for every row."""
    from audiomamba.eval.classifier import load_classifier, one_second
    from audiomamba.eval.clips import load_split
    from audiomamba.eval.metrics import NDB, PROTOCOLS, sample_metrics
    from audiomamba.eval.report import _clean, embed, metrics_table

    from audiomamba.errors import ConfigError
    from audiomamba.generate import NoiseProfile, SamplingConfig, generate_to_folder
    from audiomamba.train.checkpoint import load_model_from_checkpoint

    console = console or Console()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r} in --protocol: use one of {', '.join(PROTOCOLS)}")
    if n < 1 or batch < 1:
        raise ConfigError(f"--samples and --batch must be positive, got {n} and {batch}")
    if n < 2 * ndb_bins:
        raise ConfigError(f"--samples {n} is too few to score against {ndb_bins} NDB bins: pass --samples {2 * ndb_bins} or more")
    t_start = time.perf_counter()
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    classifier = load_classifier(classifier_path, dev)
    train_waves, _ = load_split(reference, "train", progress)
    test_waves, _ = load_split(reference, "test", progress)
    model, recipe = load_model_from_checkpoint(run, dev, ema=ema)
    run_dir = run if run.is_dir() else run.parent

    scored: dict[str, torch.Tensor] = {}

    def labeller(waves):
        """Classifies every sample once, for the index and the metrics."""
        x = one_second(waves)
        scored["features"], scored["probs"] = embed(classifier, x, "classify samples", progress, 512, console)
        p, d = scored["probs"].max(dim=-1)
        return d.numpy(), p.numpy()

    t0 = time.perf_counter()
    rows, gen = generate_to_folder(
        model, out / "samples", n, seconds, min(batch, n), SamplingConfig(temperature, top_p, min_p), seed,
        recipe.data.normalization, sashimi_filter=True, device=dev, progress=progress, labeller=labeller,
        noise_profile=NoiseProfile.load(run_dir),
    )
    write_seconds = time.perf_counter() - t0 - gen.seconds

    t0 = time.perf_counter()
    train_f, train_p = embed(classifier, train_waves, "classify train", progress, 512, console)
    test_f, test_p = embed(classifier, test_waves, "classify test", progress, 512, console)
    ndb = NDB(train_f, k=ndb_bins, seed=seed)
    keep = torch.tensor([r["kept"] for r in rows])  # the filter write_samples applied
    bpb = gen.bpb()
    f, p = scored["features"], scored["probs"]
    sets = {
        f"samples, all {n}": (f, p, bpb),
        f"samples, SaShiMi filter ({int(keep.sum())} kept)": (f[keep], p[keep], bpb[keep]),
        "train (reference)": (train_f, train_p, None),
        "test (reference)": (test_f, test_p, None),
    }
    table: dict[str, dict] = {}
    for name, (feats, probs, own_bpb) in sets.items():
        row = sample_metrics(train_f, train_p, feats, probs, ndb, protocol).row()
        row["recognised"] = float((probs.max(dim=-1).values >= 0.9).float().mean())
        row["predicted_class_counts"] = torch.bincount(probs.argmax(-1), minlength=probs.shape[1]).tolist()
        if own_bpb is not None:
            row["samples_bpb"] = float(own_bpb.mean())
        table[name] = row
    score_seconds = time.perf_counter() - t0

    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run": str(run),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "samples": n,
        "batch": min(batch, n),
        "temperature": temperature,
        "top_p": top_p,
        "min_p": min_p,
        "seed": seed,
        "ema": ema,
        "classifier": str(classifier_path),
        "reference": str(reference),
        "protocol": protocol,
        "filter": "SaShiMi: keep the samples between the 40th and 95th likelihood percentile",
        "basis": f"train split: FID/AM/NDB against its features and class marginal; NDB with {ndb_bins} k-means bins",
        "seconds": {
            "sampling": round(gen.seconds, 2),
            "writing": round(write_seconds, 2),
            "scoring": round(score_seconds, 2),
            "wall": round(time.perf_counter() - t_start, 2),
        },
        "noise_flagged": sum(r["noise"] for r in rows),
        "rows": table,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(_clean(report), indent=2) + "\n")
    console.print(metrics_table(table, f"SC09 sample metrics ({protocol} protocol): {run} ({n} samples, T = {temperature:g}, top-p {top_p:g}, min-p {min_p:g})"))
    s = report["seconds"]
    console.print(
        f"samples' own BPB {table[f'samples, all {n}']['samples_bpb']:.3f}; recognised (p >= 0.9) "
        f"{100 * table[f'samples, all {n}']['recognised']:.1f} %; noise flagged in {report['noise_flagged']}\n"
        f"wall {s['wall']:.1f} s: sampling {s['sampling']:.1f} s ({n * seconds / max(s['sampling'], 1e-9):.0f}× real time), "
        f"writing {s['writing']:.1f} s, scoring {s['scoring']:.1f} s; wrote {out / 'report.json'}"
    )
    return report
