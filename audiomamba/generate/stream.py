"""Streaming generation: audio chunks as they are made, for live playback (``generate --stream``).

``stream(run, seconds=8, prompt=...)`` loads a trained run and yields float32 chunks of the
generated audio (the prompt, if any, is not repeated). A stream draws exactly the tokens that
``generate`` draws for one sample with the same seed: it runs the same :class:`Stepper`, only
reading its buffers after every few periods.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from audiomamba.generate.stepper import SamplingConfig, Stepper, step_period
from audiomamba.tokenizer import mu_law_decode


def stream_model(
    model: nn.Module,
    seconds: float,
    prompt: torch.Tensor | None = None,
    chunk_seconds: float = 0.25,
    sampling: SamplingConfig | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    use_graph: bool | None = None,
    state_dtype: torch.dtype | None = None,
) -> Iterator[np.ndarray]:
    """Yield the generated audio of one sample in chunks of about ``chunk_seconds`` (float32 (n,),
    decoded mu-law in [-1, 1]). ``seconds`` counts the prompt ((1, P) tokens) too. ``state_dtype``: the Mamba blocks'
    step states (:class:`~audiomamba.generate.stepper.Stepper`)."""
    device = torch.device(device)
    use_graph = device.type == "cuda" if use_graph is None else use_graph
    length = int(round(seconds * 16000))
    model = model.to(device).eval()
    period = step_period(model)
    every = max(1, int(round(chunk_seconds * 16000 / period)))  # periods per chunk
    generator = None if use_graph else torch.Generator(device=device).manual_seed(seed)
    stepper = Stepper(model, 1, device, sampling or SamplingConfig(), use_graph, generator, seed,
                      state_dtype=state_dtype)
    done = 0 if prompt is None else min(int(prompt.shape[1]), length)
    for k, tokens, _ in stepper.periods(prompt, length):
        end = min(k * period, length)
        if end > done and (k % every == 0 or end == length):
            yield mu_law_decode(tokens[done:end, 0].cpu()).numpy()
            done = end


def stream(
    run: str | Path,
    seconds: float = 1.0,
    prompt: str | Path | None = None,
    prompt_seconds: float = 1.0,
    chunk_seconds: float = 0.25,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    device: str | None = None,
    ema: bool = True,
    min_p: float = 0.0,
) -> Iterator[np.ndarray]:
    """Stream one sample from a trained run (folder or checkpoint), continuing ``prompt`` (a WAV)
    if given; see :func:`stream_model`."""
    from audiomamba.generate.prompts import load_prompts
    from audiomamba.train.checkpoint import load_model_from_checkpoint

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, recipe = load_model_from_checkpoint(run, dev, ema)
    tokens = None
    if prompt is not None:
        tokens, _ = load_prompts(Path(prompt), prompt_seconds, 1, recipe.data.normalization)
    yield from stream_model(model, seconds, tokens, chunk_seconds, SamplingConfig(temperature, top_p, min_p), seed, dev)
