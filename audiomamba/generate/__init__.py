"""Fast batched autoregressive generation in step mode (docs/ARCHITECTURE.md §8).

``generate_tokens`` samples token sequences (eager stepping, or one CUDA graph per period of the
U-Net on GPU); ``generate_to_folder`` adds prompts, runaway-noise regeneration, the SaShiMi filter
and writes WAVs, an index and a spectrogram grid.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn

from audiomamba.errors import ConfigError
from audiomamba.generate.noise import NoiseProfile, detect_noise
from audiomamba.generate.output import SPECTROGRAMS, WavSink, preload_plotting, write_samples
from audiomamba.generate.prompts import load_prompts
from audiomamba.generate.sampler import Generated, generate_tokens
from audiomamba.generate.stepper import SamplingConfig
from audiomamba.generate.stream import stream, stream_model
from audiomamba.tokenizer import mu_law_decode

__all__ = ["Generated", "NoiseProfile", "SamplingConfig", "stream", "stream_model", "generate_to_folder", "generate_tokens", "regenerate_noisy"]


def regenerate_noisy(
    gen: Generated, redo, attempts: int, profile: NoiseProfile | None = None, device: str | torch.device = "cpu"
) -> tuple[Generated, int]:
    """Replace samples flagged as noise (throughout, judged by ``profile``, or a late runaway) by
    fresh ones, up to ``attempts`` rounds.

    ``redo(rows: list[int], attempt: int) -> Generated`` generates replacements for those rows.
    Returns the updated samples and how many are still flagged. The noise is judged on ``device`` (the generation's).
    """

    def flagged(g: Generated) -> list[int]:
        waves = mu_law_decode(g.tokens[:, g.prompt_len :].to(device))
        return [i for i, report in enumerate(detect_noise(waves, profile)) if report.noise]

    bad = flagged(gen)
    for attempt in range(1, attempts + 1):
        if not bad:
            break
        new = redo(bad, attempt)
        still = set(flagged(new))
        for j, row in enumerate(bad):
            if j not in still:
                gen.tokens[row], gen.logp[row] = new.tokens[j], new.logp[j]
        bad = [row for j, row in enumerate(bad) if j in still]
    return gen, len(bad)


def generate_to_folder(
    model: nn.Module,
    out: Path,
    n: int,
    seconds: float,
    batch: int,
    sampling: SamplingConfig,
    seed: int = 0,
    normalization: str = "minmax",
    prompt: Path | None = None,
    prompt_seconds: float = 1.0,
    sashimi_filter: bool = False,
    regenerate: int = 0,
    device: str | torch.device = "cpu",
    use_graph: bool | None = None,
    bf16: bool = False,
    progress: bool = True,
    labeller=None,
    noise_profile: NoiseProfile | None = None,
    timings: dict[str, float] | None = None,
    state_dtype: torch.dtype | None = None,
    write_ahead: bool | None = None,
) -> tuple[list[dict], Generated]:
    """Generate ``n`` samples of ``seconds`` (the prompt included) and write them to ``out``.

    ``labeller`` (see :func:`~audiomamba.generate.output.write_samples`) labels each sample with a digit;
    ``noise_profile`` (the run's ``noise_profile.json``) sets what counts as noise; ``timings``, if given, receives
    the wall seconds of "sampling", its start-up's parts ("startup states", "startup warm-up", "startup capture":
    :attr:`Generated.startup`), "regenerate" (noisy samples made again) and :func:`write_samples`' parts;
    ``state_dtype``: the Mamba blocks' step states (float32, bfloat16 or float16; None: ``AUDIOMAMBA_STEP_STATES``,
    else auto: float16 for a GPU batch of 16+ rows). ``write_ahead``: write the WAVs while sampling
    (:class:`~audiomamba.generate.output.WavSink`), so that at the end they are only moved into place (None:
    ``AUDIOMAMBA_WRITE_AHEAD``, on unless it is 0, for timing the two).
    """
    timings = {} if timings is None else timings
    length = int(round(seconds * 16000))
    prompts, names = (None, None)
    if prompt is not None:
        prompts, names = load_prompts(prompt, prompt_seconds, n, normalization)
        if prompts.shape[1] >= length:
            raise ConfigError(f"--seconds {seconds} must exceed --prompt-seconds {prompt_seconds} to continue a prompt")
    kw = dict(sampling=sampling, device=device, use_graph=use_graph, bf16=bf16, progress=progress,
              state_dtype=state_dtype)
    # the spectrogram grid's figure is built while the GPU samples (it was the last file waited for)
    grid: list = []
    if write_ahead is None:
        flag = os.environ.get("AUDIOMAMBA_WRITE_AHEAD", "").strip()
        if flag not in ("", "0", "1"):
            raise ConfigError(f"AUDIOMAMBA_WRITE_AHEAD={flag!r} in the environment: use 1 (write the WAVs while "
                              "sampling, the default) or 0 (after it)")
        write_ahead = flag != "0"
    sink = WavSink(out, n, length) if write_ahead else None
    try:
        gen = generate_tokens(model, n, length, batch, seed=seed, prompts=prompts,
                              on_started=lambda: grid.append(preload_plotting(min(SPECTROGRAMS, n), length)),
                              on_tokens=None if sink is None else sink.feed, **kw)
        timings["sampling"] = gen.seconds
        timings.update({f"startup {part}": secs for part, secs in gen.startup.items()})
        if regenerate > 0:
            def redo(rows: list[int], attempt: int) -> Generated:
                sub = None if prompts is None else prompts[rows]
                return generate_tokens(model, len(rows), length, batch, seed=seed + 1_000_003 * attempt, prompts=sub,
                                       **kw)

            t0 = time.perf_counter()
            gen, _ = regenerate_noisy(gen, redo, regenerate, noise_profile, device)
            timings["regenerate"] = time.perf_counter() - t0
        rows = write_samples(gen, out, names, sashimi_filter, spectrogram_count=SPECTROGRAMS, labeller=labeller,
                             noise_profile=noise_profile, timings=timings, device=device,
                             grid=grid[0] if grid else None, sink=sink)
    finally:
        if sink is not None:  # what the sink had written is moved into place by now, or not wanted (an error)
            sink.stop()
            sink.close()
    return rows, gen
