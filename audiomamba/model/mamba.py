"""The Mamba mixer: in_proj -> causal depthwise conv -> SiLU -> SSM (gated by SiLU(z)) -> out_proj."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiomamba.model.ssm_base import SSMLayer


class MambaMixer(nn.Module):
    """Mamba's sequence mixer around any :class:`SSMLayer` on d_inner = E·H channels.

    in_proj: Linear(H, 2·d_inner) -> (x, z); x -> causal depthwise Conv1d(k) -> SiLU -> SSM,
    whose output is gated by SiLU(z) inside the scan op; out_proj: Linear(d_inner, H).

    Args:
        width: H. ssm: the SSM layer (its ``d`` must be d_inner). d_conv: conv kernel size.
    """

    def __init__(self, width: int, ssm: SSMLayer, d_conv: int = 4) -> None:
        super().__init__()
        d_inner = ssm.d
        self.d_inner, self.d_conv = d_inner, d_conv
        self.in_proj = nn.Linear(width, 2 * d_inner, bias=False)
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1)
        self.ssm = ssm
        self.out_proj = nn.Linear(d_inner, width, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, H) -> (B, L, H)."""
        L = x.shape[1]
        u, z = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)  # (B, d_inner, L) each
        u = F.silu(self.conv1d(u)[..., :L])
        y = self.ssm(u.contiguous(), z.contiguous())
        return self.out_proj(y.transpose(1, 2))

    def init_state(
        self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32
    ) -> dict[str, Tensor]:
        """Conv window (B, d_inner, k-1) of past inputs and the SSM state h (B, d_inner, N)."""
        return {
            "conv": torch.zeros(batch, self.d_inner, self.d_conv - 1, device=device, dtype=dtype),
            "ssm": self.ssm.init_state(batch, device),
        }

    def step(self, x: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """x (B, H) -> (B, H); updates the conv window and SSM state in place."""
        u, z = self.in_proj(x).chunk(2, dim=-1)  # (B, d_inner)
        window = torch.cat([state["conv"], u[:, :, None].to(state["conv"].dtype)], dim=-1)  # (B, d_inner, k)
        state["conv"].copy_(window[:, :, 1:])
        w = self.conv1d.weight[:, 0, :]  # (d_inner, k)
        u = F.silu((window * w).sum(-1) + self.conv1d.bias)
        y = self.ssm.step(u, state["ssm"], z)
        return self.out_proj(y), state
