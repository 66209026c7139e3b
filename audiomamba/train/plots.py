"""Plots of a run: loss/BPB curves from ``metrics.jsonl`` and log-spectrograms of waveforms (Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audiomamba.train.metrics_log import read_metrics


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(metrics_path: str | Path, out_png: str | Path, reference_bpb: dict[str, float] | None = None) -> Path:
    """Train BPB and validation BPB against step; ``reference_bpb`` adds labelled horizontal lines."""
    plt = _pyplot()
    recs = read_metrics(metrics_path)
    tr = [(r["step"], r["bpb"]) for r in recs if r.get("kind") == "train" and r.get("bpb") is not None]
    va = [(r["step"], r["val_bpb"]) for r in recs if r.get("kind") == "val" and r.get("val_bpb") is not None]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if tr:
        ax.plot(*zip(*tr, strict=True), label="train BPB", lw=1, alpha=0.8)
    if va:
        ax.plot(*zip(*va, strict=True), "o-", label="validation BPB", lw=1.5, ms=3)
    for name, value in (reference_bpb or {}).items():
        ax.axhline(value, ls="--", lw=1, color="gray")
        ax.text(ax.get_xlim()[0], value, f" {name} ({value:.2f})", va="bottom", fontsize=8, color="gray")
    ax.set_xlabel("step")
    ax.set_ylabel("bits per sample")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


def plot_spectrograms(waves: dict[str, np.ndarray], out_png: str | Path, sample_rate: int = 16000) -> Path:
    """One log-magnitude STFT panel per labelled waveform ((n,) float arrays)."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(waves), 1, figsize=(8, 2.6 * len(waves)), dpi=110, squeeze=False)
    for ax, (name, wave) in zip(axes[:, 0], waves.items(), strict=True):
        nfft = 512 if len(wave) >= 4096 else 64
        ax.specgram(np.asarray(wave, dtype=np.float64) + 1e-9, NFFT=nfft, Fs=sample_rate, noverlap=nfft * 3 // 4, cmap="magma")
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("Hz")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png
