"""SaShiMi's S4 mixer: S4-complex (ZOH, D skip) -> GELU -> Linear(H, 2H) -> GLU."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiomamba.model.ssm_s4 import S4Complex


class SaShiMiS4(nn.Module):
    """The S4 layer of a SaShiMi block on H channels.

    Args:
        width: H. d_state: SaShiMi's state size (real state dim; d_state/2 complex modes, as S4D).
    """

    def __init__(self, width: int, d_state: int = 64, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        self.ssm = S4Complex(width, d_state // 2, zoh=True, dt_min=dt_min, dt_max=dt_max)
        self.out = nn.Linear(width, 2 * width)

    def _post(self, y: Tensor) -> Tensor:
        """GELU -> Linear -> GLU on the last dim: (..., H) -> (..., H)."""
        return F.glu(self.out(F.gelu(y)), dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, H) -> (B, L, H)."""
        return self._post(self.ssm(x.transpose(1, 2).contiguous()).transpose(1, 2))

    def init_state(self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32) -> Tensor:
        """SSM state (B, H, d_state/2) complex64."""
        return self.ssm.init_state(batch, device)

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, H) -> (B, H); the state is updated in place."""
        return self._post(self.ssm.step(x, state)), state
