"""The SSM layers (docs/ARCHITECTURE.md §5.2): what they share, and the selective S6, the LTI
S4-complex (S4D-Lin) and S4-real (S4D-Real) layers.

An SSM layer maps u (batch, d, L) to y (batch, d, L) (optionally gated by z) through
:func:`audiomamba.kernels.selective_scan`, and one step u_t (batch, d) -> y_t (batch, d) through
:func:`audiomamba.kernels.selective_state_update`. Each layer owns its parameterisation, written
once in ``discretization()``; ``scan_args()`` (forward and step) and ``fused_block_step()``
(generation) both use it and pass plain tensors to the ops.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from torch import Tensor, nn

from audiomamba import kernels
from audiomamba.errors import ConfigError

XPROJ_LAYOUTS = ("channels", "time")


def xproj_layout() -> str:
    """How a selective layer lays out a sequence's Δ, B, C: ``AUDIOMAMBA_XPROJ_LAYOUT`` = channels (default) or time."""
    name = os.environ.get("AUDIOMAMBA_XPROJ_LAYOUT", "").strip().lower() or "channels"
    if name not in XPROJ_LAYOUTS:
        raise ConfigError(f"AUDIOMAMBA_XPROJ_LAYOUT={name!r} in the environment: use one of {', '.join(XPROJ_LAYOUTS)}")
    return name


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
        """:meth:`discretization` for generation: computed once and reused until one of this layer's own parameters
        (the only ones a discretization reads) changes (so a fused step adds no launches); recomputed every call when
        autograd is on. The stamp reads ``_parameters`` directly: ``parameters()`` walks the submodules too (x_proj,
        dt_proj), and the start-up's capture calls this once per block step (BENCHMARKS.md, "sc09-large's own
        tiles ...": 4.9x less Python per call)."""
        if torch.is_grad_enabled():
            return self.discretization()
        stamp = tuple((p.data_ptr(), p._version) for p in self._parameters.values() if p is not None)
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
        """Project u to (Δ, B, C): (batch, d, L) / (batch, N, L) for a sequence, (batch, d) / (batch, 1, N) per step.

        A sequence's Δ, B, C are channel-contiguous views of the projections (batch, L, ·) by default, which the
        scan's backward copies to time-contiguous. ``AUDIOMAMBA_XPROJ_LAYOUT=time`` computes them time-contiguous
        instead (W @ u on u (batch, d, L)): the same numbers, no copies (issue 14, an experiment until timed)."""
        if seq and xproj_layout() == "time":
            xd = torch.matmul(self.x_proj.weight, u)  # (batch, R + 2N, L), unit stride along L
            dt_low, B, C = torch.split(xd, [self.R, self.N, self.N], dim=1)
            return {"delta": torch.matmul(self.dt_proj.weight, dt_low), "B": B, "C": C, **self.discretization(),
                    "delta_softplus": True}
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


#: largest batch for which a ``mamba-s4`` block step takes the fused kernels (above it: the composed
#: step). Measured by ``audiomamba bench generate --lti-cutoff``, which prints the value to put here
#: (BENCHMARKS.md). The only place the cut-off lives. Measured on an H200 (2026-12-02): fused faster
#: up to batch 512 on sc09-small and youtubemix (1.11x / 1.22x there), composed faster from 1024.
FUSED_COMPLEX_LTI_MAX_BATCH = 512


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


class S4Real(LTILayer):
    """LTI SSM with real A = -exp(A_log) (init S4D-Real: A_n = -(n+1)), real B (init 1), C (init N(0, 1)).

    Δ = exp(log_dt) per channel, log-uniform in [dt_min, dt_max] at init; y = C h + D u.
    With ``zoh`` the layer feeds B' = (exp(ΔA) - 1)/(ΔA) · B.

    Args:
        d: channels. N: states. zoh: zero-order hold (else Mamba's Δ·B).
    """

    no_weight_decay = ("A_log", "log_dt", "B", "D")

    def __init__(self, d: int, N: int, zoh: bool = True, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        self.d, self.N, self.complex, self.zoh = d, N, False, zoh
        self.log_dt = no_decay(nn.Parameter(torch.log(log_uniform(d, dt_min, dt_max))))
        self.A_log = no_decay(
            nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(d, 1))
        )
        self.B = no_decay(nn.Parameter(torch.ones(d, N)))
        self.C = nn.Parameter(torch.randn(d, N))
        self.D = no_decay(nn.Parameter(torch.ones(d)))

    def discretization(self) -> dict[str, Tensor]:
        """delta (d,) = exp(log_dt); A = -exp(A_log); B (zero-order hold when ``zoh``), C (d, N) real; D."""
        delta = torch.exp(self.log_dt.float())
        A = -torch.exp(self.A_log.float())
        B, C = self.B.float(), self.C.float()
        if self.zoh:
            B = B * zoh_factor(delta[:, None] * A)
        return {"delta": delta, "A": A, "B": B, "C": C, "D": self.D.float()}
