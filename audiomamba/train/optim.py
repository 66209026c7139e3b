"""AdamW with decay/no-decay parameter groups and the warm-up + cosine learning-rate schedule (docs/ARCHITECTURE.md §7)."""

from __future__ import annotations

import math

import torch
from torch import nn

from audiomamba.recipe import OptimCfg, ScheduleCfg


class WarmupCosine:
    """LR multiplier: linear warm-up from 0 over ``warmup_steps``, then cosine decay to ``min_ratio``.

    A callable object (not a lambda) so that ``LambdaLR.state_dict()`` stores its plain fields.
    ``kind="constant"`` keeps the multiplier at 1 after warm-up.
    """

    def __init__(self, total_steps: int, warmup_steps: int, kind: str = "cosine", min_ratio: float = 0.0) -> None:
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.kind = kind
        self.min_ratio = float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.kind == "constant":
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(
    model: nn.Module, optim: OptimCfg, schedule: ScheduleCfg, total_steps: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the model's parameter groups (:func:`audiomamba.model.param_groups`: no decay for SSM
    parameters, norms, biases) and a per-step :class:`WarmupCosine` LambdaLR."""
    from audiomamba.model import param_groups

    groups = param_groups(model, optim.weight_decay)
    opt = torch.optim.AdamW(groups, lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps, weight_decay=optim.weight_decay)
    warmup = int(round(schedule.warmup * total_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, WarmupCosine(total_steps, warmup, schedule.kind, schedule.min_lr_ratio))
    return opt, sched
