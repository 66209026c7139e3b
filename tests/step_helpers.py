"""Stepping a U-Net as the sub-period CUDA graphs replay it, on any device (shared by the model and kernel tests)."""

from __future__ import annotations

import torch

from audiomamba.generate.stepper import sub_period_depth, sub_period_of_depth


def step_as_replayed(model, tokens: torch.Tensor, state: dict) -> torch.Tensor:
    """Logits (B, L, vocab) of stepping ``tokens`` (B, L) from ``state`` (at step 0) the way the sub-period graphs
    replay it: the inner pooling buffers in shift mode, and before each sub-period of ``pool[0]`` steps the pooling
    positions set to those of the FIRST sub-period of the same depth (a graph captured there runs its ops, whose
    views must then not depend on the phase)."""
    pool = list(model.config.pool)
    model.shift_pools(state)
    outs = []
    for t in range(tokens.shape[1]):
        s, j = divmod(t, pool[0])
        if j == 0:
            model.set_phase(state, sub_period_of_depth(pool, sub_period_depth(pool, s)) * pool[0])
        outs.append(model.step(tokens[:, t], state)[0])
    return torch.stack(outs, dim=1)


def pooling_positions(state) -> list[int]:
    """Every pooling position (DownPool "n", UpPool "i") in a U-Net step state, outer level first."""
    found = []
    if isinstance(state, dict):
        for key in ("n", "i"):
            if isinstance(state.get(key), int) and "buf" in state:
                found.append(state[key])
        for key, value in state.items():
            if key not in ("n", "i"):
                found += pooling_positions(value)
    elif isinstance(state, (list, tuple)):
        for value in state:
            found += pooling_positions(value)
    return found
