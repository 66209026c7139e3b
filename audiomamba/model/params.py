"""AdamW parameter groups: no weight decay for SSM parameters, norms, biases and embeddings (docs/ARCHITECTURE.md §7)."""

from __future__ import annotations

from torch import nn

_NO_DECAY_MODULES = (nn.LayerNorm, nn.Embedding, nn.GroupNorm, nn.RMSNorm)


def is_no_decay(module: nn.Module, name: str, param: nn.Parameter) -> bool:
    """Whether ``module.<name>`` is excluded from weight decay.

    True for parameters flagged ``_no_weight_decay`` or listed in the module's ``no_weight_decay``
    (SSM A, Δ, D, …), for norm and embedding weights, and for biases and other 1-D tensors.
    """
    return (
        getattr(param, "_no_weight_decay", False)
        or name in getattr(module, "no_weight_decay", ())
        or isinstance(module, _NO_DECAY_MODULES)
        or name.endswith("bias")
        or param.ndim < 2
    )


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: ``{"params": [...], "weight_decay": weight_decay}`` and the no-decay group (0.0).

    Each parameter appears once; empty groups are left out.
    """
    decay: list[nn.Parameter] = []
    no: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen or not p.requires_grad:
                continue
            seen.add(id(p))
            (no if is_no_decay(module, name, p) else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
