"""``audiomamba demo``: synthesise piano-like music (or use a real folder), train a tiny U-Net for a
few minutes, show validation BPB falling below the unigram mu-law entropy, write audio and plots.

Output folder::

    data/                 the synthesised WAVs (YouTubeMix layout), unless --data is given
    run-<time>/           the training run (checkpoints, metrics.jsonl, curves.png, recipe.toml)
    curves.png            train/validation BPB with the unigram-entropy line
    spectrogram.png       real validation audio vs the model's audio
    real.wav, model.wav   a few seconds of each
    summary.json          the numbers printed at the end
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from audiomamba.audio import SAMPLE_RATE, list_audio_files, save_wav
from audiomamba.errors import DataError
from audiomamba.recipe import load_recipe, pool_product
from audiomamba.tokenizer import mu_law_decode, unigram_entropy_bits
from audiomamba.train.calibrate import fitted_sets, seconds_per_step

DEMO_RECIPE = "youtubemix-mamba-s6-tiny"


@dataclass
class DemoOptions:
    """Knobs of the demo (the CLI sets data/out/minutes; tests shrink the rest)."""

    out: Path = Path("demo-out")
    data: Path | None = None
    minutes: float = 3.0
    n_files: int = 20
    file_seconds: float = 8.0
    sample_len: int = 256
    batch_size: int = 16
    lr: float = 1e-2
    audio_seconds: float = 3.0
    prompt_seconds: float = 0.5
    max_val_batches: int = 8
    device: str | None = None
    seed: int = 0
    progress: bool = True


def _dataset_folder(opts: DemoOptions, console: Console) -> Path:
    if opts.data is not None:
        if not Path(opts.data).is_dir():
            raise DataError(f"--data folder not found: {opts.data}: pass a folder of 16 kHz WAV files")
        return Path(opts.data)
    from audiomamba.synth import write_dataset

    folder = opts.out / "data"
    existing = list_audio_files(folder) if folder.is_dir() else []
    if len(existing) != opts.n_files:
        t0 = time.monotonic()
        for p in existing:
            p.unlink()
        write_dataset(folder, opts.n_files, opts.file_seconds, opts.seed)
        console.print(
            f"synthesised {opts.n_files} piano-like pieces of {opts.file_seconds:g} s into {folder} "
            f"({time.monotonic() - t0:.1f} s)"
        )
    else:
        console.print(f"reusing the {len(existing)} synthesised pieces in {folder}")
    return folder


def _unigram_bits(dataset, limit: int = 256) -> float:
    """Entropy (bits) of the empirical mu-law token distribution over up to ``limit`` sequences
    spread evenly over the split."""
    idx = np.unique(np.linspace(0, len(dataset) - 1, min(len(dataset), limit)).astype(int))
    toks = [dataset[int(i)][1] for i in idx]
    return unigram_entropy_bits(torch.cat(toks))


def _sampled_audio(
    model, prompt: torch.Tensor, seconds: float, device: torch.device, seed: int, progress: bool
) -> tuple[np.ndarray, str] | None:
    """Sampled continuation of ``prompt`` ((P,) int64) to ``seconds``, or None if generation is unavailable."""
    try:
        from audiomamba.generate import SamplingConfig, generate_tokens
    except ImportError:
        return None
    length = int(seconds * SAMPLE_RATE)
    gen = generate_tokens(
        model, 1, length, 1, sampling=SamplingConfig(), seed=seed, prompts=prompt[None], device=device, progress=progress
    )
    how = f"sampled continuation ({prompt.shape[0] / SAMPLE_RATE:g} s real prompt, then the model's own samples)"
    return mu_law_decode(gen.tokens[0]).numpy(), how


def _teacher_forced(model, inputs: torch.Tensor, device: torch.device, seed: int) -> np.ndarray:
    """Sample each token from p(x_t | true x_<t). inputs: (L,) int64 -> waveform (L,) float32."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        logits = model(inputs[None].to(device))[0].float().cpu()
    toks = torch.multinomial(logits.softmax(-1), 1, generator=gen)[:, 0]
    return mu_law_decode(toks).numpy()


def run_demo(opts: DemoOptions, console: Console | None = None) -> dict[str, Any]:
    """Run the whole demo; returns the summary (also written to ``out/summary.json``)."""
    from audiomamba.data import build_dataset
    from audiomamba.train.checkpoint import load_model_from_checkpoint
    from audiomamba.train.loop import RunOptions, train_recipe
    from audiomamba.train.plots import plot_curves, plot_spectrograms

    console = console or Console()
    t_start = time.monotonic()
    opts.out.mkdir(parents=True, exist_ok=True)
    folder = _dataset_folder(opts, console)
    device = torch.device(opts.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(opts.seed)

    base = load_recipe(
        DEMO_RECIPE,
        [f"data.sample_len={opts.sample_len}", f"data.batch_size={opts.batch_size}", f"train.seed={opts.seed}"],
        folder,
    )
    pp = pool_product(base.model_config())
    train_ds = build_dataset("youtubemix", folder, "train", opts.sample_len, base.data.normalization, pp)
    val_ds = build_dataset("youtubemix", folder, "validation", opts.sample_len, base.data.normalization, pp)
    h_train = _unigram_bits(train_ds)
    h_val = _unigram_bits(val_ds)
    console.print(
        f"data {folder}: {len(train_ds)} train / {len(val_ds)} validation segments of {opts.sample_len} samples; "
        f"unigram mu-law entropy {h_val:.3f} bits (validation), {h_train:.3f} bits (train)"
    )

    # size the LR schedule to the time budget: steps = budget / measured seconds per step
    per_step = seconds_per_step(base, device, train_ds)
    steps, fit = fitted_sets(max(opts.minutes, 0.1), per_step, evals=10, fraction=0.75)
    val_batches = max(1, min(opts.max_val_batches, len(val_ds) // opts.batch_size or 1))
    recipe = load_recipe(
        DEMO_RECIPE,
        [
            f"data.sample_len={opts.sample_len}", f"data.batch_size={opts.batch_size}", f"train.seed={opts.seed}",
            *fit, f"train.val_batches={val_batches}", f"train.log_every={max(1, min(10, steps // 50))}",
            f"optim.lr={opts.lr}",
        ],
        folder,
    )
    run_dir = opts.out / time.strftime("run-%Y%m%d-%H%M%S")
    while run_dir.exists():
        run_dir = run_dir.with_name(run_dir.name + "x")
    console.print(
        f"training {recipe.name} on {device} for ~{opts.minutes:g} min: {steps} steps "
        f"(~{per_step * 1000:.0f} ms/step measured), batch {opts.batch_size} x {opts.sample_len}"
    )
    result = train_recipe(
        recipe, RunOptions(out=run_dir, max_minutes=opts.minutes, device=str(device), progress=opts.progress)
    )
    from audiomamba.train.metrics_log import read_metrics

    vals = [r["val_bpb"] for r in read_metrics(run_dir / "metrics.jsonl") if r.get("kind") == "val"]

    # audio: real validation segment vs the model
    model, _ = load_model_from_checkpoint(run_dir, device)
    n_audio = max(pp, int(opts.audio_seconds * SAMPLE_RATE) // pp * pp)
    try:  # one validation stretch of the requested length (minmax-normalised like training)
        long_ds = build_dataset("youtubemix", folder, "validation", n_audio, base.data.normalization, pp)
    except DataError:
        long_ds = val_ds
    real_tokens = long_ds[0][1]
    n_audio = real_tokens.shape[0]
    real_wave = mu_law_decode(real_tokens).numpy()
    prompt_len = min(n_audio // 2, max(pp, int(opts.prompt_seconds * SAMPLE_RATE) // pp * pp))
    sampled = _sampled_audio(model, real_tokens[:prompt_len], n_audio / SAMPLE_RATE, device, opts.seed, opts.progress)
    if sampled is not None:
        model_wave, how = sampled
    else:
        model_wave = _teacher_forced(model, long_ds[0][0], device, opts.seed)
        how = "teacher-forced reconstruction (each sample drawn given the true past; generation not available)"
    save_wav(opts.out / "real.wav", real_wave)
    save_wav(opts.out / "model.wav", model_wave)
    plot_curves(run_dir / "metrics.jsonl", opts.out / "curves.png", {"unigram entropy": h_val})
    plot_spectrograms(
        {"real (validation)": real_wave, f"model: {how.split(' (')[0]}": model_wave}, opts.out / "spectrogram.png"
    )
    summary = {
        "data": str(folder),
        "synthetic": opts.data is None,
        "device": str(device),
        "run_dir": str(run_dir),
        "n_params": result.n_params,
        "steps": result.step,
        "unigram_entropy_bits_validation": h_val,
        "unigram_entropy_bits_train": h_train,
        "val_bpb_first": vals[0] if vals else None,
        "val_bpb_final": result.last_val_bpb,
        "val_bpb_best": result.best_val_bpb,
        "audio": how,
        "seconds": time.monotonic() - t_start,
    }
    (opts.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(summary, opts.out, console)
    return summary


def _print_summary(s: dict[str, Any], out: Path, console: Console) -> None:
    table = Table(title="audiomamba demo", show_header=False)
    table.add_row("model", f"{DEMO_RECIPE} ({s['n_params']:,} parameters), {s['steps']} steps on {s['device']}")
    table.add_row("unigram mu-law entropy (validation)", f"{s['unigram_entropy_bits_validation']:.3f} bits/sample")
    if s["val_bpb_first"] is not None:
        table.add_row("validation BPB, first evaluation", f"{s['val_bpb_first']:.3f}")
    best = s["val_bpb_best"]
    table.add_row("validation BPB, best", f"{best:.3f}" if best is not None else "-")
    if best is not None and math.isfinite(best):
        gap = s["unigram_entropy_bits_validation"] - best
        table.add_row("below the unigram entropy by", f"{gap:.3f} bits/sample")
    table.add_row("audio (model.wav)", s["audio"])
    table.add_row("files", f"{out}/curves.png, spectrogram.png, real.wav, model.wav, summary.json; run {s['run_dir']}")
    table.add_row("wall time", f"{s['seconds']:.0f} s")
    console.print(table)
