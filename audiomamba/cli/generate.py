"""`audiomamba generate`: batched sampling from a trained run."""

from __future__ import annotations

from pathlib import Path

import typer

from audiomamba.errors import ConfigError


def generate(
    run: Path = typer.Argument(..., help="Run folder (uses best.pt, else last.pt) or checkpoint file."),
    out: Path = typer.Option(..., "--out", help="Folder for the WAV files, index.csv/json and spectrograms.png."),
    n: int = typer.Option(16, "--n", help="Number of samples."),
    seconds: float = typer.Option(1.0, "--seconds", help="Length of each sample in seconds (prompt included)."),
    batch: int = typer.Option(16, "--batch", help="Samples generated at once (the last batch may be smaller)."),
    temperature: float = typer.Option(1.0, "--temperature", help="Softmax temperature; 0 = arg-max."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling mass (1 = off)."),
    min_p: float = typer.Option(0.0, "--min-p", help="Drop tokens less likely than this times the most likely one "
                                "(the far tail; 0 = off)."),
    prompt: Path | None = typer.Option(None, "--prompt", help="WAV file or folder of WAVs to continue (music)."),
    prompt_seconds: float = typer.Option(1.0, "--prompt-seconds", help="Seconds of each prompt to condition on."),
    filter_: str | None = typer.Option(None, "--filter", help="'sashimi': keep samples between the 40th and 95th likelihood percentile."),
    regenerate_noisy: int = typer.Option(0, "--regenerate-noisy", help="Rounds of regenerating samples flagged as runaway noise."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same audio)."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda if available)."),
    no_graph: bool = typer.Option(False, "--no-graph", help="Step with a plain Python loop instead of CUDA graphs."),
    bf16: bool = typer.Option(False, "--bf16", help="bf16 autocast for the per-step matmuls on GPU (SSM state stays fp32)."),
    states: str = typer.Option("", "--states", help="auto, fp32, bf16 or fp16: the Mamba blocks' conv windows and real "
                               "SSM states while stepping (16 bits halve a large batch's state traffic: 1.12x per step "
                               "at batch 2048; fp16 kept a trained model's tokens within 1e-5 nats, bf16 moved them by "
                               "up to 11 nats). Default: AUDIOMAMBA_STEP_STATES, else auto (fp16 for a GPU batch of 16+ "
                               "rows, else fp32)."),
    classifier: Path | None = typer.Option(
        None, "--classifier", help="SC09 digit classifier: write each sample's predicted digit and probability "
        "to the index and the spectrogram titles."
    ),
    stream_: bool = typer.Option(
        False, "--stream", help="Stream one sample to OUT/stream.wav as it is made (the WAV grows while it plays; "
        "a prompt is continued, not repeated); --n and --batch are ignored."
    ),
    no_ema: bool = typer.Option(False, "--no-ema", help="Sample from the trained weights, not their EMA (when the run kept one)."),
) -> None:
    """Sample audio autoregressively in step mode: unconditional (SC09) or continuing prompts (music)."""
    import torch
    from rich.console import Console

    from audiomamba.generate import SamplingConfig, generate_to_folder
    from audiomamba.generate.output import sashimi_filter_option
    from audiomamba.generate.sampling import check_sampling_options
    from audiomamba.generate.stepper import step_state_dtype
    from audiomamba.train.checkpoint import load_model_from_checkpoint

    sashimi_filter = sashimi_filter_option(filter_)
    state_dtype = step_state_dtype(states) if states.strip() else None
    for name, value in (("--n", n), ("--batch", batch)):
        if value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}")
    if not (0 < seconds < float("inf")):
        raise ConfigError(f"--seconds must be a positive number, got {seconds}")
    check_sampling_options(temperature, top_p, min_p)
    if regenerate_noisy < 0:
        raise ConfigError(f"--regenerate-noisy must be >= 0, got {regenerate_noisy}")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is an existing file: pass a folder (it is created if missing)")
    if device is not None and device.split(":")[0] == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device} asked for CUDA but no GPU is visible here: use --device cpu")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if stream_:
        _stream_to_wav(run, out, seconds, prompt, prompt_seconds, SamplingConfig(temperature, top_p, min_p), seed, dev,
                       not no_ema, state_dtype)
        return
    import time

    t_start = time.perf_counter()
    labeller = None
    if classifier is not None:
        from audiomamba.eval.classifier import digit_labeller

        labeller = digit_labeller(classifier, dev)
    model, recipe = load_model_from_checkpoint(run, dev, ema=not no_ema)
    from audiomamba.generate.noise import NoiseProfile
    from audiomamba.generate.output import outside_sampling_line

    profile = NoiseProfile.load(run if run.is_dir() else run.parent)
    loaded = time.perf_counter() - t_start
    timings: dict[str, float] = {}
    rows, gen = generate_to_folder(
        model, out, n, seconds, batch, SamplingConfig(temperature, top_p, min_p), seed, recipe.data.normalization,
        prompt, prompt_seconds, sashimi_filter, regenerate_noisy, dev,
        use_graph=False if no_graph else None, bf16=bf16, labeller=labeller, noise_profile=profile, timings=timings,
        state_dtype=state_dtype,
    )
    audio = n * seconds
    noisy = sum(r["noise"] for r in rows)
    wall = time.perf_counter() - t_start
    # the mean BPB from the index's rows (scoring every sample again took 0.08 s at 2048 x 1 s on a 2-core CPU)
    Console().print(
        f"wrote {len(rows)} samples to {out}: sampling {gen.seconds:.1f} s ({audio / gen.seconds:.1f}× real time), "
        f"{wall:.1f} s from loading the model to the index (loading, writing and labelling {wall - gen.seconds:.1f} s); "
        f"mean BPB {sum(r['bpb'] for r in rows) / len(rows):.3f}; noise flagged in {noisy}{'' if profile else ' (no noise_profile.json in the run: default thresholds)'}; index: {out / 'index.csv'}"
    )
    Console().print(outside_sampling_line(loaded, timings))
    if labeller is not None:
        confident = sum(r["digit_prob"] >= 0.9 for r in rows)
        counts = [sum(r["digit"] == d for r in rows) for d in range(10)]
        Console().print(f"classifier: {confident}/{len(rows)} samples recognised with p >= 0.9; digits 0-9: {counts}")


def _stream_to_wav(run: Path, out: Path, seconds: float, prompt: Path | None, prompt_seconds: float,
                   sampling, seed: int, dev, ema: bool, state_dtype=None) -> None:
    """``generate --stream``: write chunks to OUT/stream.wav as they come (flushed, so it can be played)."""
    import time

    import soundfile as sf

    from audiomamba.generate.prompts import load_prompts
    from audiomamba.generate.stream import stream_model
    from audiomamba.train.checkpoint import load_model_from_checkpoint

    model, recipe = load_model_from_checkpoint(run, dev, ema)
    tokens = load_prompts(prompt, prompt_seconds, 1, recipe.data.normalization)[0] if prompt is not None else None
    out.mkdir(parents=True, exist_ok=True)
    path, start, written = out / "stream.wav", time.perf_counter(), 0
    with sf.SoundFile(str(path), "w", 16000, 1, "PCM_16") as wav:
        for chunk in stream_model(model, seconds, tokens, sampling=sampling, seed=seed, device=dev,
                                  use_graph=dev.type == "cuda", state_dtype=state_dtype):
            wav.write(chunk)
            wav.flush()
            written += chunk.shape[0]
            rate = written / 16000 / max(time.perf_counter() - start, 1e-9)
            print(f"\r{path}: {written / 16000:.2f} s written ({rate:.2f}× real time)", end="", flush=True)
    print()

