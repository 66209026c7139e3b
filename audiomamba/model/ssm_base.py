"""What every SSM layer shares: the call into the scan op, step mode, and init helpers (docs/ARCHITECTURE.md §5.2).

An SSM layer maps u (batch, d, L) to y (batch, d, L) (optionally gated by z) through
:func:`kernels.selective_scan`, and one step u_t (batch, d) -> y_t (batch, d) through
:func:`kernels.selective_state_update`. A subclass only says which scan arguments it feeds
(:meth:`SSMLayer.scan_args`); forward and step are written once, here.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from audiomamba import kernels


def no_decay(p: nn.Parameter) -> nn.Parameter:
    """Mark a parameter as excluded from weight decay (read by :func:`audiomamba.model.param_groups`)."""
    p._no_weight_decay = True  # type: ignore[attr-defined]
    return p


def log_uniform(n: int, lo: float, hi: float) -> Tensor:
    """(n,) samples whose log is uniform in [log lo, log hi]."""
    return torch.exp(torch.rand(n) * (math.log(hi) - math.log(lo)) + math.log(lo))


def inverse_softplus(x: Tensor) -> Tensor:
    """y with softplus(y) = x (x > 0)."""
    return x + torch.log(-torch.expm1(-x))


def zoh_factor(dtA: Tensor) -> Tensor:
    """(exp(ΔA) - 1) / (ΔA), the zero-order-hold correction of B (real or complex (d, N))."""
    return torch.expm1(dtA) / dtA if not dtA.is_complex() else (torch.exp(dtA) - 1) / dtA


class SSMLayer(nn.Module):
    """Base class: ``d`` channels, ``N`` states; forward and step through the shared scan op.

    Subclasses set ``self.d``, ``self.N``, ``self.complex`` and implement :meth:`scan_args`.
    ``no_weight_decay`` lists the parameter names excluded from weight decay.
    """

    no_weight_decay: tuple[str, ...] = ()
    d: int
    N: int
    complex: bool

    def scan_args(self, u: Tensor, seq: bool) -> dict[str, Any]:
        """Keyword arguments (delta, A, B, C, D, delta_bias, delta_softplus) of the scan op.

        Args:
            u: (batch, d, L) when ``seq`` else (batch, d) — the input, for selective layers.
            seq: whether the arguments are for the full-sequence scan or one step.
        """
        raise NotImplementedError

    def forward(self, u: Tensor, z: Tensor | None = None) -> Tensor:
        """u (batch, d, L), optional gate z (batch, d, L) -> y (batch, d, L) (y · silu(z) if gated)."""
        return kernels.selective_scan(u, z=z, **self.scan_args(u, True))

    def init_state(self, batch: int, device: torch.device | str | None = None) -> Tensor:
        """Zero state h (batch, d, N): float32, or complex64 for a complex SSM."""
        dtype = torch.complex64 if self.complex else torch.float32
        return torch.zeros(batch, self.d, self.N, dtype=dtype, device=device)

    def step(self, u: Tensor, h: Tensor, z: Tensor | None = None) -> Tensor:
        """One step: u (batch, d), state h (batch, d, N) updated IN PLACE, z (batch, d) -> y (batch, d)."""
        return kernels.selective_state_update(h, u, z=z, **self.scan_args(u, False))

    def discretization(self) -> dict[str, Tensor]:
        """The input-independent scan arguments, computed from the parameters in one place: what
        :meth:`scan_args` (forward and step) and :meth:`fused_block_step` both use."""
        raise NotImplementedError

    def frozen_discretization(self) -> dict[str, Tensor]:
        """:meth:`discretization` for generation: computed once and reused until a parameter changes
        (so a fused step adds no launches); recomputed every call when autograd is on."""
        if torch.is_grad_enabled():
            return self.discretization()
        stamp = tuple((p.data_ptr(), p._version) for p in self.parameters())
        cached = self.__dict__.get("_frozen")
        if cached is None or cached[0] != stamp:
            cached = (stamp, self.discretization())
            self.__dict__["_frozen"] = cached
        return cached[1]

    def fused_block_step(self, head: tuple, h: Tensor, out_proj: Tensor, res: Tensor | None) -> Tensor | None:
        """One fused step of the Mamba block around this SSM, or None where this layer has none (the
        block then runs the composed step). ``head``: (x, norm weight, norm bias, eps, in_proj weight,
        conv weight, conv bias, conv state) of the block; h (batch, d, N) is updated in place."""
        return None


class LTILayer(SSMLayer):
    """An SSM whose Δ, B and C do not depend on the input: :meth:`discretization` gives delta (d,),
    A, B, C (d, N) and D (d,), the same for a sequence and a step."""

    def scan_args(self, u: Tensor, seq: bool) -> dict[str, Any]:
        args = dict(self.discretization())
        if not seq:  # explicit "LTI" shape for the step op
            args["B"], args["C"] = args["B"][None], args["C"][None]
        return args

    def fused_block_step(self, head: tuple, h: Tensor, out_proj: Tensor, res: Tensor | None) -> Tensor | None:
        p = self.frozen_discretization()
        return kernels.mamba_lti_block_step(*head, p["delta"], p["A"], p["B"], p["C"], p["D"], h, out_proj, res)
