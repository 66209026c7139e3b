"""Runs of consecutive Mamba blocks stepped as one launch each, for one stream (``AUDIOMAMBA_STEP_RUNS``).

A run is consecutive blocks of one kind (``mamba-s6``, ``mamba-s4``, ``mamba-s4-real``): a U-Net stage's down
blocks, its up blocks, the center. A :class:`BlockRun` holds their weights stacked along a block axis (copies, made
when the generation state is created) and their conv windows and SSM states as one stacked tensor each; the blocks'
own states become views of it, so the per-block steps and the run read and write the same numbers.
:meth:`BlockRun.step` is :func:`kernels.triton_mamba_run.mamba_s6_run_step_triton` (or its LTI twin): one launch
for the whole run instead of three or four per block. :meth:`audiomamba.model.unet.AudioUNet.attach_runs` builds them.
(A chain of programs, one per block handing x on by flags, was tried and removed: on one H100, 2026-12-05, one
sc09-small stream ran 0.92x / 0.76x / 0.39x the default with it for ``mamba-s6`` / ``mamba-s4-real`` / ``mamba-s4``;
commit fc4f94e has it.)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from audiomamba.kernels.triton_mamba_run import (
    LTIStack,
    S6Stack,
    check_runs_scratch,
    mamba_lti_run_step_triton,
    mamba_s6_run_step_triton,
    run_block_e,
    run_scratch,
)
from audiomamba.model.blocks import MambaS4Block, MambaS4RealBlock, MambaS6Block

#: largest batch a run steps (the kernel's one row tile); larger batches keep the per-block launches
RUN_MAX_ROWS = 15
#: the block kinds a run steps
RUN_BLOCKS = frozenset({MambaS6Block, MambaS4Block, MambaS4RealBlock})


class BlockRun:
    """Consecutive Mamba blocks of one kind (``mamba-s6``, ``mamba-s4`` or ``mamba-s4-real``) and their states
    (lists of the same length), stepped as one launch."""

    def __init__(self, blocks: list[nn.Module], states: list[Any]) -> None:
        layers = [b.layers[0] for b in blocks]
        mixers = [layer.mixer for layer in layers]
        disc = [m.ssm.frozen_discretization() for m in mixers]

        def stack(ts: list[Tensor]) -> Tensor:
            return torch.stack([t.detach() if t.is_complex() else t.detach().float() for t in ts]).contiguous()

        def field(name: str) -> Tensor:
            return stack([d[name] for d in disc])

        E, K = mixers[0].d_inner, mixers[0].d_conv
        with torch.no_grad():
            front = dict(
                norm_weight=stack([la.norm.weight for la in layers]), norm_bias=stack([la.norm.bias for la in layers]),
                in_proj=stack([m.in_proj.weight for m in mixers]),
                conv_weight=stack([m.conv1d.weight.reshape(E, K) for m in mixers]),
                conv_bias=stack([m.conv1d.bias for m in mixers]), out_proj=stack([m.out_proj.weight for m in mixers]),
                D=field("D"), A=field("A"), eps=layers[0].norm.eps,
            )
            if isinstance(blocks[0], MambaS6Block):
                self.weights = S6Stack(**front, x_proj=stack([m.ssm.x_proj.weight for m in mixers]),
                                       dt_proj=stack([m.ssm.dt_proj.weight for m in mixers]),
                                       dt_bias=field("delta_bias"))
                self._step, R = mamba_s6_run_step_triton, self.weights.dt_proj.shape[2]
            else:
                self.weights = LTIStack(**front, delta=field("delta"), B=field("B"), C=field("C"))
                self._step, R = mamba_lti_run_step_triton, 0
            # the states as one tensor each; every block's state dict now holds its view
            cells = [st[0] for st in states]
            self.conv_state = torch.stack([c["conv"] for c in cells]).contiguous()
            self.h = torch.stack([c["ssm"] for c in cells]).contiguous()
            for i, c in enumerate(cells):
                c["conv"], c["ssm"] = self.conv_state[i], self.h[i]
        n, batch = len(blocks), self.h.shape[1]
        H, N = self.weights.norm_weight.shape[1], self.weights.A.shape[2]
        self.block_e = run_block_e(E)
        # the blocks' outputs (activations) in the weights' dtype: the states may be stored narrower (bf16)
        self.outs = torch.empty((n + 1, batch, H), device=self.h.device, dtype=self.weights.norm_weight.dtype)
        self.scratch = run_scratch(batch, H, E, N, R, self.h.device, self.block_e)

    @staticmethod
    def make(blocks: nn.ModuleList, states: list[Any]) -> BlockRun | None:
        """A run of ``blocks`` (their step states ``states``), or None where the kernel does not step them: no
        blocks, blocks of another kind or of different kinds, or more than
        :data:`RUN_MAX_ROWS` rows."""
        kinds = {type(b) for b in blocks}
        if len(kinds) != 1 or not kinds <= RUN_BLOCKS or any(len(b.layers) != 1 for b in blocks):
            return None
        h = states[0][0]["ssm"]
        if h.shape[0] > RUN_MAX_ROWS:
            return None
        return BlockRun(list(blocks), states)

    def check(self) -> None:
        """KernelError if one of this run's launches gave up waiting at a grid barrier (a device read: call it once
        after a generation)."""
        check_runs_scratch(self.scratch)

    def step(self, x: Tensor, res: Tensor | None = None, res_first: int = 0, res_reversed: bool = False,
             x0b: Tensor | None = None, tail: Tensor | None = None, mode: str | None = None,
             profile: Tensor | None = None) -> Tensor:
        """x (B, H) (+ x0b) -> outs (n + 1, B, H): outs[j] the input of block j, outs[n] the run's output (a buffer
        the next step overwrites; also written to ``tail``). ``res``, ``mode`` and ``profile``: as
        :func:`kernels.triton_mamba_run.mamba_s6_run_step_triton`."""
        self._step(x, self.weights, self.conv_state, self.h, self.outs, self.scratch, res, res_first, res_reversed,
                   self.block_e, mode, x0b, tail, profile)
        return self.outs
