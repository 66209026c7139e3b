"""Pre-norm residual wrapper: x + mixer(LayerNorm(x)), in parallel and step mode."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class PreNormResidual(nn.Module):
    """x -> x + mixer(norm(x)); ``mixer`` has forward (B, L, H), init_state and step (B, H)."""

    def __init__(self, width: int, mixer: nn.Module, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=eps)
        self.mixer = mixer

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, H) -> (B, L, H)."""
        return x + self.mixer(self.norm(x))

    def init_state(self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32) -> Any:
        """The mixer's state."""
        return self.mixer.init_state(batch, device, dtype)

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """x (B, H) -> (B, H)."""
        y, state = self.mixer.step(self.norm(x), state)
        return x + y, state
