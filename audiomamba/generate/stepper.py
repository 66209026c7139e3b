"""Autoregressive stepping of a U-Net in step mode, eagerly or as replayed CUDA graphs.

One "period" is ``prod(pool)`` full-rate steps: after it every level of the U-Net is back in the
same phase, so the work of a whole period is captured once as a CUDA graph and replayed. Both
paths run the same :func:`_advance` per step; the graph path only changes who launches it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._pytree import tree_flatten, tree_unflatten

from audiomamba import kernels
from audiomamba.generate.sampling import RandFn, sample_tokens
from audiomamba.kernels.triton_sample import sample_step_triton
from audiomamba.tokenizer import Q_ZERO

#: most uniform numbers drawn in one call for the sampling noise (64 MiB of float32)
NOISE_NUMBERS = 1 << 24


@dataclass(frozen=True)
class SamplingConfig:
    """How tokens are drawn. ``temperature <= 0`` is greedy; ``top_p < 1`` is nucleus sampling;
    ``min_p > 0`` drops tokens less likely than ``min_p`` times the most likely one (the far tail)."""

    temperature: float = 1.0
    top_p: float = 1.0
    min_p: float = 0.0


def step_period(model: nn.Module) -> int:
    """Number of full-rate steps after which every level is in the same phase again (prod(pool))."""
    config = getattr(model, "config", None)
    pool = getattr(config, "pool", None) or []
    return math.prod(pool) if pool else 1


def _advance(
    model: nn.Module,
    inp: torch.Tensor,
    state: object,
    forced: torch.Tensor,
    force: torch.Tensor,
    sampling: SamplingConfig,
    rand: RandFn,
    token_out: torch.Tensor,
    logp_out: torch.Tensor,
) -> tuple[torch.Tensor, object]:
    """One step for the batch: (B,) input tokens -> (next token (B,), state).

    The next tokens and their log-probabilities are written into ``token_out`` and ``logp_out``
    ((B,) rows of the output buffers; the returned token tensor is ``token_out``). Where ``force``
    is set the next token is ``forced`` (a prompt token) instead of a sample; the log-probability
    is always the model's own (temperature 1, unfiltered). Without nucleus filtering the draw is
    one Triton kernel where :func:`kernels.use_fused_step` allows (the same Gumbel-max draw).
    """
    logits, state = model.step(inp, state)
    if sampling.top_p >= 1.0 and kernels.use_fused_step(logits):
        noise = rand(tuple(logits.shape)) if sampling.temperature > 0 else None
        sample_step_triton(logits, noise, sampling.temperature, forced, force, token_out, logp_out, sampling.min_p)
        return token_out, state
    logp_all = F.log_softmax(logits.float(), dim=-1)
    sampled = sample_tokens(logits, sampling.temperature, sampling.top_p, rand, sampling.min_p)
    token_out.copy_(torch.where(force, forced, sampled))
    logp_out.copy_(logp_all.gather(-1, token_out[:, None])[:, 0])
    return token_out, state


def _drawn(noise: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A :data:`RandFn` that hands out noise drawn beforehand (its shape must be the one asked for)."""
    if tuple(noise.shape) != tuple(shape):
        raise RuntimeError(f"sampling noise of shape {tuple(shape)} asked for, {tuple(noise.shape)} drawn")
    return noise


class Stepper:
    """Generates ``length`` tokens for a batch, period by period.

    ``run(prompt, length) -> (tokens (B, length), logp (B, length))``: tokens[:, :P] equal the prompt
    ``(B, P)``; every later token is sampled; logp[:, t] is log p(token_t | tokens_<t).
    """

    def __init__(
        self,
        model: nn.Module,
        batch: int,
        device: torch.device,
        sampling: SamplingConfig,
        use_graph: bool = False,
        generator: torch.Generator | None = None,
        seed: int = 0,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model
        self.batch = batch
        self.device = device
        self.sampling = sampling
        self.period = step_period(model)
        self.vocab = getattr(getattr(model, "config", None), "vocab", 256)  # logits per step (noise shape)
        self.autocast_dtype = autocast_dtype
        self.generator = None if use_graph else generator
        self.use_graph = use_graph
        self.seed = seed  # seeds the CUDA generator before the replays (the graph draws from it)
        self._graph: torch.cuda.CUDAGraph | None = None

    def _rand(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.rand(shape, device=self.device, generator=self.generator)

    def _autocast(self):
        enabled = self.autocast_dtype is not None
        return torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.bfloat16, enabled=enabled)

    def _noise_steps(self) -> int:
        """Steps whose sampling noise is drawn in one call: the whole period, capped at 2^24 numbers."""
        return max(1, min(self.period, NOISE_NUMBERS // (self.batch * self.vocab)))

    def _period(self, inp, state, forced, force, out_tok, out_logp):
        """Run one period of steps; writes tokens/log-probs into rows of ``out_*`` ((period, B)).

        The uniform noise of the Gumbel-max draws is drawn for up to :meth:`_noise_steps` steps
        at once (one launch instead of one per step); step j reads its own slice.
        """
        chunk = self._noise_steps()
        noise = None
        with self._autocast():
            for j in range(self.period):
                if j % chunk == 0 and self.sampling.temperature > 0:
                    noise = self._rand((min(chunk, self.period - j), self.batch, self.vocab))
                rand = partial(_drawn, noise[j % chunk]) if noise is not None else self._rand
                inp, state = _advance(self.model, inp, state, forced[j], force[j], self.sampling, rand,
                                      out_tok[j], out_logp[j])
        return inp, state

    def run(self, prompt: torch.Tensor | None, length: int, on_period: Callable[[int], None] | None = None):
        """All ``length`` tokens: (tokens (B, length), logp (B, length)); ``on_period(k)`` after period k."""
        done = None
        for done in self.periods(prompt, length):
            if on_period:
                on_period(done[0])
        _, tokens, logp = done
        return tokens[:length].T.contiguous(), logp[:length].T.contiguous()

    @torch.no_grad()
    def periods(self, prompt: torch.Tensor | None, length: int):
        """Generate period by period: after period k (1-based) yields ``(k, tokens, logp)``, the
        (periods · period, B) buffers whose first k · period rows are filled (for streaming)."""
        batch, period, dev = self.batch, self.period, self.device
        n_periods = -(-length // period)
        total = n_periods * period
        forced = torch.zeros(total, batch, dtype=torch.long, device=dev)
        force = torch.zeros(total, batch, dtype=torch.bool, device=dev)
        if prompt is not None and prompt.shape[1] > 0:
            p = min(prompt.shape[1], length)
            forced[:p] = prompt[:, :p].T.to(dev)
            force[:p] = True
        tokens = torch.empty(total, batch, dtype=torch.long, device=dev)
        logp = torch.empty(total, batch, dtype=torch.float32, device=dev)
        state = self.model.init_state(batch, dev)
        if hasattr(self.model, "reserve_cache"):  # fixed-shape KV caches: graph-capturable steps
            self.model.reserve_cache(state, total)
        inp = torch.full((batch,), Q_ZERO, dtype=torch.long, device=dev)
        if self.use_graph:
            yield from self._run_graphed(inp, state, forced, force, tokens, logp)
        else:
            for k in range(n_periods):
                rows = slice(k * period, (k + 1) * period)
                inp, state = self._period(inp, state, forced[rows], force[rows], tokens[rows], logp[rows])
                yield k + 1, tokens, logp

    def _run_graphed(self, inp, state, forced, force, tokens, logp):
        """Capture one period as a CUDA graph over static buffers, then replay it per period
        (a generator, like :meth:`periods`)."""
        period, batch, dev = self.period, self.batch, self.device
        leaves, spec = tree_flatten(state)
        tensor_idx = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        init = [leaves[i].clone() for i in tensor_idx]
        s_forced = torch.zeros(period, batch, dtype=torch.long, device=dev)
        s_force = torch.zeros(period, batch, dtype=torch.bool, device=dev)
        s_tok = torch.empty(period, batch, dtype=torch.long, device=dev)
        s_logp = torch.empty(period, batch, dtype=torch.float32, device=dev)
        s_inp = inp.clone()

        def one_period() -> None:
            last_inp, new_state = self._period(s_inp, tree_unflatten(leaves, spec), s_forced, s_force, s_tok, s_logp)
            new_leaves, new_spec = tree_flatten(new_state)
            if new_spec != spec:
                raise RuntimeError("the model's step state changes structure over a period; use --no-graph")
            for i in tensor_idx:
                if new_leaves[i] is not leaves[i]:
                    leaves[i].copy_(new_leaves[i])
            s_inp.copy_(last_inp)

        side = torch.cuda.Stream(device=dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):  # warm-up: compiles kernels, initialises libraries
            one_period()
        torch.cuda.current_stream(dev).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            one_period()
        for i, value in zip(tensor_idx, init, strict=True):  # undo the warm-up
            leaves[i].copy_(value)
        s_inp.copy_(inp)
        self._graph = graph
        torch.cuda.manual_seed(self.seed)
        for k in range(forced.shape[0] // period):
            rows = slice(k * period, (k + 1) * period)
            s_forced.copy_(forced[rows])
            s_force.copy_(force[rows])
            graph.replay()
            tokens[rows].copy_(s_tok)
            logp[rows].copy_(s_logp)
            yield k + 1, tokens, logp
