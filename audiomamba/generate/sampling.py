"""Drawing tokens from logits: temperature, nucleus (top-p) filtering, Gumbel-max sampling.

Gumbel-max (argmax of filtered logits plus Gumbel noise) needs no host synchronisation, so it can
run inside a captured CUDA graph.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

RandFn = Callable[[tuple[int, ...]], torch.Tensor]


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


def sample_tokens(logits: torch.Tensor, temperature: float, top_p: float, rand: RandFn) -> torch.Tensor:
    """Draw one token per row. logits: (B, V) -> (B,) int64.

    ``temperature <= 0`` is the arg-max; ``rand(shape)`` gives uniform [0, 1) noise of that shape.
    """
    logits = logits.float()
    if temperature <= 0:
        return logits.argmax(dim=-1)
    scaled = top_p_filter(logits / temperature, top_p)
    u = rand(tuple(scaled.shape)).clamp_(1e-10, 1.0 - 1e-7)
    gumbel = -torch.log(-torch.log(u))
    return (scaled + gumbel).argmax(dim=-1)
