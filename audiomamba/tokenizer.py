"""8-bit mu-law tokenisation of waveforms (docs/ARCHITECTURE.md §3), a linear quantiser, and token helpers.

Two normalisations:

* ``"minmax"`` (SaShiMi-compatible, default of the paper recipes): each clip is min-max scaled to
  [-1, 1], mu-law companded to e in [-1, 1], then mapped to ``floor(((e + 1) / 2) * (256 - 0.01) + 0.005)``.
* ``"none"``: the standard mu-law of :func:`torchaudio.functional.mu_law_encoding` on the raw
  waveform (values outside [-1, 1] are clipped first).

Both decode with ``e = 2 t / 255 - 1`` followed by the inverse companding, giving values in [-1, 1].
Token :data:`Q_ZERO` (128) is the zero level of both.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from audiomamba.errors import ConfigError

N_CLASSES = 256
MU = N_CLASSES - 1
Q_ZERO = 128
Normalization = Literal["minmax", "none"]
NORMALIZATIONS = ("minmax", "none")
_LOG1P_MU = math.log1p(MU)


def _check_norm(normalization: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise ConfigError(
            f"unknown normalization {normalization!r}: use one of {', '.join(NORMALIZATIONS)}"
        )


def minmax_scale(wave: torch.Tensor) -> torch.Tensor:
    """Scale each clip (last axis) linearly to [-1, 1]; a constant clip maps to 0.

    wave: (..., T) float -> (..., T) float.
    """
    lo = wave.amin(dim=-1, keepdim=True)
    hi = wave.amax(dim=-1, keepdim=True)
    span = hi - lo
    scaled = (wave - lo) / torch.where(span > 0, span, torch.ones_like(span)) * 2 - 1
    return torch.where(span > 0, scaled, torch.zeros_like(wave))


def mu_law_compand(x: torch.Tensor) -> torch.Tensor:
    """mu-law companding of x in [-1, 1] to e in [-1, 1] (mu = 255). Shape preserved."""
    return torch.sign(x) * torch.log1p(MU * x.abs()) / _LOG1P_MU


def mu_law_expand(e: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`mu_law_compand`. Shape preserved."""
    return torch.sign(e) * torch.expm1(e.abs() * _LOG1P_MU) / MU


def mu_law_encode(wave: torch.Tensor, normalization: Normalization = "minmax") -> torch.Tensor:
    """Waveform to 8-bit mu-law tokens.

    wave: (..., T) float (any range for ``minmax``; [-1, 1] for ``none``) -> (..., T) int64 in [0, 255].
    """
    _check_norm(normalization)
    wave = torch.as_tensor(wave)
    if not wave.is_floating_point():
        wave = wave.to(torch.float32)  # computed in the input's precision, as torchaudio does
    if normalization == "minmax":
        e = mu_law_compand(minmax_scale(wave))
        tokens = torch.floor((e + 1) / 2 * (N_CLASSES - 0.01) + 0.005)
    else:
        e = mu_law_compand(wave.clamp(-1.0, 1.0))
        tokens = (e + 1) / 2 * MU + 0.5
    return tokens.clamp(0, MU).to(torch.int64)  # truncation == floor for the non-negative values


def _decode_table() -> torch.Tensor:
    """The 256 decoded levels (float32, computed in float64)."""
    return mu_law_expand(torch.arange(N_CLASSES, dtype=torch.float64) / MU * 2 - 1).to(torch.float32)


_DECODE = _decode_table()


def mu_law_decode(tokens: torch.Tensor) -> torch.Tensor:
    """8-bit mu-law tokens to a waveform in [-1, 1]. tokens: (..., T) int -> (..., T) float32.

    A lookup in the 256 decoded levels (the same values as expanding each token in float64)."""
    tokens = torch.as_tensor(tokens)
    return _DECODE.to(tokens.device)[tokens.long()]


def linear_encode(wave: torch.Tensor) -> torch.Tensor:
    """Linear 8-bit quantiser (for comparison with mu-law). wave in [-1, 1]: (..., T) -> int64 (..., T)."""
    x = torch.as_tensor(wave).to(torch.float64).clamp(-1.0, 1.0)
    return torch.floor((x + 1) / 2 * MU + 0.5).clamp(0, MU).to(torch.int64)


def linear_decode(tokens: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`linear_encode`: (..., T) int -> (..., T) float32 in [-1, 1]."""
    return (tokens.to(torch.float64) / MU * 2 - 1).to(torch.float32)


def shift_right(tokens: torch.Tensor) -> torch.Tensor:
    """Autoregressive input: targets shifted right by one with :data:`Q_ZERO` first. (..., L) -> (..., L)."""
    first = torch.full_like(tokens[..., :1], Q_ZERO)
    return torch.cat([first, tokens[..., :-1]], dim=-1)


def bits_per_sample(nats: float | torch.Tensor) -> float | torch.Tensor:
    """Mean cross-entropy in nats per sample -> bits per sample (BPB)."""
    return nats / math.log(2)


def unigram_entropy_bits(tokens: torch.Tensor) -> float:
    """Entropy in bits of the empirical token distribution (the BPB of a context-free model)."""
    counts = torch.bincount(tokens.reshape(-1), minlength=N_CLASSES).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log2()).sum())
