"""Position-wise MLP (Linear -> GELU -> Linear); stateless, so its step is its forward."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MLP(nn.Module):
    """Linear(H, e·H) -> GELU -> Linear(e·H, H) on the last dim (any leading shape)."""

    def __init__(self, width: int, expand: int = 2) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, expand * width)
        self.fc2 = nn.Linear(expand * width, width)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., H) -> (..., H)."""
        return self.fc2(F.gelu(self.fc1(x)))

    def init_state(self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32) -> None:
        """No state."""
        return None

    def step(self, x: Tensor, state: None) -> tuple[Tensor, None]:
        """x (B, H) -> (B, H)."""
        return self(x), state
