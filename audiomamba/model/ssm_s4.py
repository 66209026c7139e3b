"""S4-complex: a linear time-invariant diagonal SSM with complex S4D-Lin A (docs/ARCHITECTURE.md §5.2)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from audiomamba.model.ssm_base import LTILayer, log_uniform, no_decay, zoh_factor

#: largest batch for which a ``mamba-s4`` block step takes the fused kernels: on an H100 they were
#: 2.8x faster for one stream and 2.4x for a whole batch-16 model, but 0.77x the composed step at
#: batch 2048 (BENCHMARKS.md); the cut-off between is a guess, not a measurement
FUSED_COMPLEX_LTI_MAX_BATCH = 256


class S4Complex(LTILayer):
    """LTI SSM with A_n = -exp(A_re_log) + i·A_im (init S4D-Lin: -1/2 + iπn), y = 2·Re(C h) + D u.

    Δ = exp(log_dt) per channel (log-uniform in [dt_min, dt_max] at init); B init 1, C init complex
    normal with variance 1/2 per part. Complex parameters are stored as real (..., 2) tensors
    (viewed as complex when used), which keeps DDP, ``.to(dtype)`` and optimisers simple.
    With ``zoh`` the layer feeds B' = (exp(ΔA) - 1)/(ΔA) · B, i.e. zero-order-hold discretisation.

    Args:
        d: channels. N: complex modes. zoh: zero-order hold (else Mamba's Δ·B).
    """

    no_weight_decay = ("A_re_log", "A_im", "log_dt", "B", "D")

    def __init__(self, d: int, N: int, zoh: bool = True, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        self.d, self.N, self.complex, self.zoh = d, N, True, zoh
        self.log_dt = no_decay(nn.Parameter(torch.log(log_uniform(d, dt_min, dt_max))))
        self.A_re_log = no_decay(nn.Parameter(torch.full((d, N), math.log(0.5))))
        self.A_im = no_decay(nn.Parameter((math.pi * torch.arange(N, dtype=torch.float32)).repeat(d, 1)))
        self.B = no_decay(nn.Parameter(torch.stack([torch.ones(d, N), torch.zeros(d, N)], dim=-1)))
        self.C = nn.Parameter(torch.randn(d, N, 2) * math.sqrt(0.5))
        self.D = no_decay(nn.Parameter(torch.ones(d)))

    def discretization(self) -> dict[str, Tensor]:
        """delta (d,) = exp(log_dt); A = -exp(A_re_log) + i A_im; B (zero-order hold when ``zoh``), C (d, N) complex; D."""
        delta = torch.exp(self.log_dt.float())
        A = torch.complex(-torch.exp(self.A_re_log.float()), self.A_im.float())
        B = torch.view_as_complex(self.B.float().contiguous())
        C = torch.view_as_complex(self.C.float().contiguous())
        if self.zoh:
            B = B * zoh_factor(delta[:, None] * A)
        return {"delta": delta, "A": A, "B": B, "C": C, "D": self.D.float()}

    def fused_block_step(self, head: tuple, h: Tensor, out_proj: Tensor, res: Tensor | None) -> Tensor | None:
        if h.shape[0] > FUSED_COMPLEX_LTI_MAX_BATCH:
            return None
        return super().fused_block_step(head, h, out_proj, res)
