"""SaShiMi's DownPool and causal UpPool, in parallel and step mode (docs/ARCHITECTURE.md §5.1, §5.3).

Step-mode timing (pool p): the DownPool collects p full-rate inputs and emits pooled step k
after input (k+1)·p - 1; the UpPool's output for pooled step k is shifted right by one pooled
step, so it is used at full-rate steps (k+1)·p … (k+1)·p + p - 1. At step (k+1)·p - 1 the
UpPool therefore first emits the last output of the previous pooled step, then takes in the
new pooled output (the first p outputs are the zeros of the shift).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DownPool(nn.Module):
    """(B, L, H) -> (B, L/p, expand·H): p consecutive steps reshaped into channels, then Linear(p·H, expand·H)."""

    def __init__(self, width: int, pool: int, expand: int) -> None:
        super().__init__()
        self.pool, self.width = pool, width
        self.linear = nn.Linear(pool * width, expand * width)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, H) -> (B, L/p, expand·H); L must be a multiple of p."""
        Bsz, L, H = x.shape
        return self.linear(x.reshape(Bsz, L // self.pool, self.pool * H))

    def init_state(
        self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32
    ) -> dict[str, Any]:
        """Buffer (B, p, H) of the inputs of the current pooled step and how many it holds."""
        return {"buf": torch.zeros(batch, self.pool, self.width, device=device, dtype=dtype), "n": 0}

    def step(self, x: Tensor, state: dict[str, Any]) -> tuple[Tensor | None, dict[str, Any]]:
        """x (B, H) -> pooled output (B, expand·H) every p-th call, else None."""
        state["buf"][:, state["n"]] = x
        state["n"] += 1
        if state["n"] < self.pool:
            return None, state
        state["n"] = 0
        return self.linear(state["buf"].reshape(x.shape[0], -1).to(x.dtype)), state


class UpPool(nn.Module):
    """(B, L/p, H_in) -> (B, L, H_in/expand): Linear(H_in, p·H_in/expand), shift right one pooled step, unfold."""

    def __init__(self, width_in: int, pool: int, expand: int) -> None:
        super().__init__()
        self.pool, self.width_out = pool, width_in // expand
        self.linear = nn.Linear(width_in, pool * self.width_out)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L/p, H_in) -> (B, L, H_out); output step t depends on pooled steps < t // p only."""
        Bsz, Lp, _ = x.shape
        y = F.pad(self.linear(x)[:, :-1], (0, 0, 1, 0))  # causal shift by one pooled step
        return y.reshape(Bsz, Lp * self.pool, self.width_out)

    def init_state(
        self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32
    ) -> dict[str, Any]:
        """Buffer (B, p, H_out) of pending full-rate outputs (zeros = the shift) and the read position."""
        return {"buf": torch.zeros(batch, self.pool, self.width_out, device=device, dtype=dtype), "i": 0}

    def step(
        self, x: Tensor | None, state: dict[str, Any], skip: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Any]]:
        """Emit the next full-rate output (B, H_out) (plus ``skip`` (B, H_out) if given, in one op);
        when the inner level produced x (B, H_in), refill after emitting."""
        out = state["buf"][:, state["i"]]
        y = out.clone() if skip is None else out + skip
        state["i"] += 1
        if x is not None:
            if state["i"] != self.pool:
                raise RuntimeError(f"UpPool.step got a pooled input at phase {state['i']} of {self.pool}")
            state["buf"].copy_(self.linear(x).reshape(x.shape[0], self.pool, self.width_out))
            state["i"] = 0
        return y, state
