"""Drawing tokens from logits: temperature, nucleus (top-p) and min-p filtering, Gumbel-max sampling.

Gumbel-max (argmax of filtered logits plus Gumbel noise) needs no host synchronisation, so it can
run inside a captured CUDA graph.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from audiomamba.errors import ConfigError

RandFn = Callable[[tuple[int, ...]], torch.Tensor]


def check_sampling_options(temperature: float, top_p: float, min_p: float) -> None:
    """One-line ConfigError for a CLI's --temperature, --top-p or --min-p out of range."""
    if not (0 <= temperature < float("inf")):
        raise ConfigError(f"--temperature must be a finite number >= 0 (0 = arg-max), got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"--top-p must be in (0, 1] (1 = off), got {top_p}")
    if not 0 <= min_p < 1:
        raise ConfigError(f"--min-p must be in [0, 1) (0 = off), got {min_p}")


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Set to -inf every logit outside the smallest set of tokens whose probability reaches ``top_p``.

    logits: (B, V) float -> (B, V). The most likely token is always kept.
    """
    if top_p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above each one
    drop_sorted = mass_before >= top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Set to -inf every logit whose probability is below ``min_p`` times the most likely token's.

    logits: (B, V) float -> (B, V). Unlike top-p it keeps the head of the distribution as it is and
    cuts only its far tail: log p_i < log p_max + log(min_p), i.e. logit_i < max logit + log(min_p).
    ``min_p <= 0`` is off.
    """
    if min_p <= 0:
        return logits
    cut = logits.amax(dim=-1, keepdim=True) + math.log(min_p)
    return logits.masked_fill(logits < cut, float("-inf"))


def sample_tokens(logits: torch.Tensor, temperature: float, top_p: float, rand: RandFn,
                  min_p: float = 0.0) -> torch.Tensor:
    """Draw one token per row. logits: (B, V) -> (B,) int64.

    ``temperature <= 0`` is the arg-max; ``rand(shape)`` gives uniform [0, 1) noise of that shape.
    The filters apply to the tempered logits: min-p first, then top-p.
    """
    logits = logits.float()
    if temperature <= 0:
        return logits.argmax(dim=-1)
    scaled = top_p_filter(min_p_filter(logits / temperature, min_p), top_p)
    u = rand(tuple(scaled.shape)).clamp_(1e-10, 1.0 - 1e-7)
    gumbel = -torch.log(-torch.log(u))
    return (scaled + gumbel).argmax(dim=-1)
