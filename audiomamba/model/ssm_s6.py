"""S6: the selective SSM of Mamba (input-dependent Δ, B, C; real diagonal A) (docs/ARCHITECTURE.md §5.2)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from audiomamba import kernels
from audiomamba.model.ssm_base import SSMLayer, inverse_softplus, log_uniform, no_decay


class S6(SSMLayer):
    """Selective SSM on ``d`` channels with ``N`` real states.

    x_proj: Linear(d, R + 2N) -> (Δ_low, B_t, C_t); Δ_t = softplus(dt_proj(Δ_low) + dt_bias)
    (the bias and softplus are applied inside the scan op); A = -exp(A_log), A_log = log(n + 1)
    (S4D-Real); D = 1. ``dt_bias`` is initialised so that softplus(dt_bias) is log-uniform in
    [dt_min, dt_max].

    Args:
        d: channels (Mamba's d_inner).
        N: state size.
        dt_rank: R, the rank of the Δ projection (Mamba: ceil(block width / 16)).
    """

    no_weight_decay = ("A_log", "dt_bias", "D")

    def __init__(self, d: int, N: int, dt_rank: int, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        self.d, self.N, self.R, self.complex = d, N, dt_rank, False
        self.x_proj = nn.Linear(d, dt_rank + 2 * N, bias=False)
        self.dt_proj = nn.Linear(dt_rank, d, bias=False)
        nn.init.uniform_(self.dt_proj.weight, -(dt_rank**-0.5), dt_rank**-0.5)
        dt = log_uniform(d, dt_min, dt_max).clamp(min=1e-4)
        self.dt_bias = no_decay(nn.Parameter(inverse_softplus(dt)))
        self.A_log = no_decay(
            nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(d, 1))
        )
        self.D = no_decay(nn.Parameter(torch.ones(d)))

    def scan_args(self, u: Tensor, seq: bool) -> dict[str, Any]:
        """Project u to (Δ, B, C): (batch, d, L) / (batch, N, L) for a sequence, (batch, d) / (batch, 1, N) per step."""
        x = u.transpose(1, 2) if seq else u  # (batch, L, d) or (batch, d)
        dt_low, B, C = torch.split(self.x_proj(x), [self.R, self.N, self.N], dim=-1)
        delta = self.dt_proj(dt_low)
        if seq:
            delta, B, C = delta.transpose(1, 2), B.transpose(1, 2), C.transpose(1, 2)
        else:
            B, C = B[:, None, :], C[:, None, :]  # explicit "selective" shape for the step op
        return {"delta": delta, "B": B, "C": C, **self.discretization(), "delta_softplus": True}

    def discretization(self) -> dict[str, Tensor]:
        """The input-independent arguments: A = -exp(A_log) (d, N), D (d,), delta_bias (d,)."""
        return {"A": -torch.exp(self.A_log.float()), "D": self.D.float(), "delta_bias": self.dt_bias.float()}

    def fused_block_step(self, head: tuple, h: Tensor, out_proj: Tensor, res: Tensor | None) -> Tensor | None:
        p = self.frozen_discretization()
        return kernels.mamba_s6_block_step(*head, self.x_proj.weight, self.dt_proj.weight, p["delta_bias"], p["A"],
                                           p["D"], h, out_proj, res)

    @staticmethod
    def default_rank(width: int) -> int:
        """Mamba's Δ rank for a block of width ``width``: ceil(width / 16)."""
        return math.ceil(width / 16)
