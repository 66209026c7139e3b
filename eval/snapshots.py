"""Time to digits: score the snapshots of one training run (``train --snapshot-minutes 5,10,20``).

For every ``snap-<m>min.pt`` of a run folder (and ``last.pt``) and every sampling temperature,
generate ``n`` unconditional samples exactly as ``audiomamba generate`` does, then score them with
the digit classifier against the SC09 train split: FID, IS, mIS, AM, the share of samples
recognised with p >= 0.9, and the samples' own BPB under the model. With ``sashimi_filter`` each
sample set is scored twice, from the same samples: all of them, and the ones SaShiMi's likelihood
filter keeps (40th to 95th percentile; the papers' protocol applies it before scoring). Writes ``snapshots.json``,
``snapshots.md`` (the table), ``snapshots.png`` (IS and AM against training minutes) and one
labelled spectrogram grid per snapshot.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch

SNAP = re.compile(r"snap-([0-9.]+)min\.pt$")


def snapshot_files(run: Path) -> list[tuple[float | None, Path]]:
    """(minutes, path) of the run's snapshots in time order, then last.pt (minutes None)."""
    snaps = sorted((float(m.group(1)), p) for p in run.iterdir() if (m := SNAP.search(p.name)))
    last = run / "last.pt"
    return [*snaps, *([(None, last)] if last.is_file() else [])]


def score_snapshots(
    run: Path,
    reference: Path,
    classifier_path: Path,
    out: Path,
    n: int = 256,
    temperatures: tuple[float, ...] = (1.0,),
    device: str | None = None,
    seed: int = 0,
    ema: bool = True,
    progress: bool = True,
    sashimi_filter: bool = False,
    seconds: float = 1.0,
    ndb_bins: int = 50,
    min_p: float = 0.0,
) -> list[dict]:
    """Generate and score ``n`` samples per snapshot and temperature; returns the table rows."""
    from audiomamba.eval.classifier import digit_labeller, load_classifier
    from audiomamba.eval.clips import load_split
    from audiomamba.eval.metrics import NDB, sample_metrics
    from audiomamba.eval.overfit import score_probs

    from audiomamba.errors import CheckpointError
    from audiomamba.generate import NoiseProfile, SamplingConfig, generate_to_folder
    from audiomamba.tokenizer import mu_law_decode
    from audiomamba.train.checkpoint import load_checkpoint, model_from_state

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    files = snapshot_files(run)
    if not files:
        raise CheckpointError(f"no snap-<m>min.pt or last.pt in {run}: train with --snapshot-minutes first")
    classifier = load_classifier(classifier_path, dev)
    labeller = digit_labeller(classifier)
    train_waves, _ = load_split(reference, "train", progress)
    ref_f, ref_p = classifier.features_and_probs(train_waves)
    ndb = NDB(ref_f, k=ndb_bins, seed=0)
    out.mkdir(parents=True, exist_ok=True)
    profile = NoiseProfile.load(run)
    rows = []
    for minutes, path in files:
        state = load_checkpoint(path)
        model = model_from_state(state, dev, ema)
        normalization = state["recipe"].get("data", {}).get("normalization", "minmax")
        elapsed = minutes if minutes is not None else _elapsed_minutes(run, int(state["step"]))
        for temp in temperatures:
            tag = f"{path.stem}-T{temp:g}"
            written, gen = generate_to_folder(
                model, out / tag, n, seconds, min(n, 256), SamplingConfig(temp, min_p=min_p), seed, normalization,
                device=dev, progress=progress, labeller=labeller, noise_profile=profile, sashimi_filter=sashimi_filter,
            )
            waves = mu_law_decode(gen.tokens)
            feats, probs = classifier.features_and_probs(waves)
            bpb, noise = gen.bpb(), torch.tensor([bool(r["noise"]) for r in written])
            subsets = [("none", torch.ones(len(waves), dtype=torch.bool))]
            if sashimi_filter:  # the index already holds the filter's verdict per sample
                subsets.append(("sashimi", torch.tensor([bool(r["kept"]) for r in written])))
            for name, keep in subsets:
                row = {"checkpoint": path.name, "minutes": elapsed, "step": int(state["step"]), "temperature": temp,
                       "min_p": min_p, "ema": bool(ema and state.get("ema")), "filter": name,
                       **sample_metrics(ref_f, ref_p, feats[keep], probs[keep], ndb).row(),
                       "recognised": score_probs(probs[keep])["recognised"],
                       "samples_bpb": float(bpb[keep].mean()),
                       "noise_flagged": float(noise[keep].float().mean()),
                       "val_bpb": (state.get("metrics") or {}).get("val_bpb"),
                       "spectrograms": f"{tag}/spectrograms.png"}
                rows.append(row)
                print(format_row(row), flush=True)
        del model
    (out / "snapshots.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "snapshots.md").write_text(format_table(rows) + "\n")
    plot_snapshots(rows, out / "snapshots.png")
    return rows


def _elapsed_minutes(run: Path, step: int) -> float | None:
    """Training minutes at ``step`` from the run's metrics log (None when unknown)."""
    log = run / "metrics.jsonl"
    if not log.is_file():
        return None
    best = None
    for line in log.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("step", 0) <= step and "elapsed_s" in rec:
            best = rec["elapsed_s"] / 60
    return best


def _fmt(v, spec: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_row(r: dict) -> str:
    sampling = f"{r['temperature']:g}" + (f", min-p {r['min_p']:g}" if r.get("min_p") else "") + (f", SaShiMi filter ({r['count']})" if r.get("filter") == "sashimi" else "")
    return (f"| {_fmt(r['minutes'], '.1f')} | {r['step']} | {sampling} | {_fmt(r['val_bpb'], '.3f')} | "
            f"{r['FID']:.1f} | {r['IS']:.2f} | {r['mIS']:.2f} | {r['AM']:.2f} | {100 * r['recognised']:.1f} % | "
            f"{r['samples_bpb']:.3f} |")


def format_table(rows: list[dict]) -> str:
    head = ("| minutes | step | T | val BPB | FID ↓ | IS ↑ | mIS ↑ | AM ↓ | recognised (p ≥ 0.9) | samples' BPB |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    return "\n".join([head, *(format_row(r) for r in rows)])


def plot_snapshots(rows: list[dict], path: Path, title: str = "") -> Path:
    """IS, AM, recognised and val BPB against training minutes: one line per row ``label`` (e.g. runs
    set side by side), else per temperature."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(r: dict) -> str:
        return r.get("label") or f"T = {r['temperature']:g}" + (", SaShiMi filter" if r.get("filter") == "sashimi" else "")

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), dpi=100)
    for name in dict.fromkeys(series(r) for r in rows):
        by_minute = {round(r["minutes"], 3): r for r in rows if series(r) == name and r["minutes"] is not None}
        sel = [by_minute[m] for m in sorted(by_minute)]  # the final checkpoint may repeat the last snapshot
        x = [r["minutes"] for r in sel]
        for ax, key in zip(axes, ("IS", "AM", "recognised", "val_bpb"), strict=True):
            pts = [(m, r.get(key)) for m, r in zip(x, sel, strict=True) if r.get(key) is not None]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    titles = ("IS ↑", "AM ↓", "recognised (p ≥ 0.9) ↑", "val BPB ↓")
    for ax, key, goal in zip(axes, titles, (4.0, 1.5, None, None), strict=True):
        ax.set_xlabel("training minutes")
        ax.set_title(key)
        if goal is not None:
            ax.axhline(goal, color="grey", ls="--", lw=1, label="goal")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
