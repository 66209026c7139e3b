"""Autoregressive stepping of a U-Net in step mode, eagerly or as replayed CUDA graphs.

One "period" is ``prod(pool)`` full-rate steps: after it every level of the U-Net is back in the
same phase, so the work of a period can be captured once as a CUDA graph and replayed. By default
the graphs are shorter (:func:`graph_span`): the outer pooling factor's steps, one graph per depth
the inner levels reach, whose pooling buffers shift instead of being indexed by the phase; the
capture, which is Python-bound, then steps a few sub-periods instead of a whole period. Both paths
run the same :func:`_advance` per step; the graph path only changes who launches it.

Row groups: the batch's rows never interact, so the stepper can split them into groups that step
on their own CUDA streams (:func:`step_groups`). A large batch's step kernels each fill the GPU for
one latency-bound wave at low occupancy (one H200, 2026-12-04: the in_proj + conv kernel of a
batch-2048 step at 12 % occupancy, 12 cycles between one warp's instructions); two groups' kernels
run side by side and hide each other's latency. Each row sees the same step kernels and the same
sampling noise as without groups (the noise is drawn for the whole batch first), so the tokens are the
same; only the pooling layers' cuBLAS products may pick another algorithm for another row count, which
with bf16 step tiles changed 438 of 3.3 M tokens (H200, 2026-12-04; none with tf32x3, the default then).

State precision (``state_dtype``, ``AUDIOMAMBA_STEP_STATES``, ``generate --states``): the Mamba blocks' conv windows
and real SSM states are float32, or bfloat16 or float16. A batch-2048 step of sc09-small reads and writes about 1 GB
of states (0.25 ms at an H200's copy bandwidth, half of the 0.45 ms per step that 2048 SC09 seconds in 10 s allow);
16-bit states halve that. Every update and readout still computes in float32 (the kernels load the state, update it in registers, read
out from the unrounded state and store it rounded); complex states stay complex64. Whether the rounding changes what
the model says is measured, not assumed: :func:`audiomamba.generate.diagnose.step_consistency` teacher-forces clips
through step mode with bf16 and fp16 states beside float32 ones. On an H100 (2026-12-05) bf16 states moved single
tokens of a memorising model by up to 11 nats (outside the 0.05-nat limit); float16 keeps 3 more mantissa bits (an
8x smaller rounding), with a range (65504) far above the states' values: on the same H100 and model (2026-12-05
12:51 UTC) float16 states kept every token within 7.5e-6 nats of the parallel forward and ran 1.12x per step at batch
2048 (0.778 against 0.873 ms, sc09-small ``mamba-s6``; 1.01x for one stream). So by default (``auto``) a GPU batch of
:data:`FP16_STATES_MIN_BATCH` rows or more steps with float16 states, everything else with float32; a state that
overflows float16 anyway is a KernelError at the end of the generation (:func:`check_states_finite`).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._pytree import tree_flatten, tree_unflatten

from audiomamba import kernels
from audiomamba.errors import ConfigError
from audiomamba.generate.sampling import RandFn, sample_tokens
from audiomamba.kernels.errors import KernelError
from audiomamba.kernels.triton_mamba_run import runs_mode
from audiomamba.kernels.triton_sample import sample_step_triton
from audiomamba.tokenizer import Q_ZERO

#: most uniform numbers drawn in one call for the sampling noise (64 MiB of float32)
NOISE_NUMBERS = 1 << 24
#: a batch of at least this many rows is split into groups by :func:`step_groups` on its own
AUTO_GROUPS_MIN_BATCH = 2048
#: rows per group and most groups when :func:`step_groups` splits a batch on its own
AUTO_GROUP_ROWS = 256
AUTO_GROUPS_MAX = 8
#: ``state_dtype`` names: the dtype of the Mamba blocks' conv windows and real SSM states while stepping
STATE_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: ``auto`` states (the default): float16 for a GPU group of at least this many rows (the batched step kernels, where
#: the state traffic is half of a step), float32 below (one stream: 1.01x, nothing to win) and on a CPU
FP16_STATES_MIN_BATCH = 16


def overlap_enabled(device: torch.device | str = "cuda") -> bool:
    """Step the inner levels of the U-Net on side streams, off the outer level's critical path
    (:meth:`audiomamba.model.unet.Level.attach_overlap`)? ``AUDIOMAMBA_STEP_OVERLAP`` unset: on a GPU yes (the default
    since 2026-12-06: 1.08x per step at batch 2048, 1.21-1.25x for one stream, the same tokens, one H100), on a CPU
    no (no streams there: the staging would only add a copy); ``1``: yes on any device (the CPU runs the same staging
    in order, which its tests use); ``outer``: only the outermost level forks (its inner levels step in order on its
    side stream); ``0``: no. Anything else is a one-line ConfigError."""
    text = _overlap_setting()
    return text in ("1", "outer") or (not text and torch.device(device).type == "cuda")


def head_draw_enabled() -> bool:
    """End each step with one launch for the head, the token draw and the next input's embedding
    (:meth:`audiomamba.model.unet.AudioUNet.step_and_draw`) where the model and the sampling allow it?
    ``AUDIOMAMBA_STEP_HEAD`` unset or ``1``: yes; ``0``: the head, the draw and the embedding as three launches
    (:func:`_advance`). Anything else is a one-line ConfigError."""
    text = os.environ.get("AUDIOMAMBA_STEP_HEAD", "").strip().lower()
    if text not in ("", "0", "1"):
        raise ConfigError(f"AUDIOMAMBA_STEP_HEAD={text!r} in the environment: use 1 (the head, the draw and the next "
                          "input's embedding in one launch, the default) or 0 (three launches)")
    return text != "0"


#: most CUDA streams the row groups and their side streams may take together before the overlap forks fewer levels
#: (sc09-small at batch 2048, one H100, 2026-12-06 08:13-08:21 UTC, ms per step: 8 groups x 3 streams 0.682; 12 x 3
#: 0.908; 16 x 3 1.569, but 16 x 2 (only the outermost level forking) 0.673 and 16 without the overlap 0.725)
OVERLAP_MAX_STREAMS = 32


def overlap_levels(groups: int = 1, inner: int = 1) -> int | None:
    """How many levels fork their inner level onto a side stream (:func:`overlap_enabled`), for ``groups`` row groups
    of a model with ``inner`` inner levels: None (all), or 1 with ``AUDIOMAMBA_STEP_OVERLAP=outer``, or when every
    level's side stream would take the groups past :data:`OVERLAP_MAX_STREAMS` streams (beyond that the graphs'
    branches stall each other: 16 groups at three streams each ran 2.3x slower than at two)."""
    if _overlap_setting() == "outer":
        return 1
    if groups * (1 + inner) <= OVERLAP_MAX_STREAMS:
        return None
    return max(1, OVERLAP_MAX_STREAMS // groups - 1)


def _overlap_setting() -> str:
    text = os.environ.get("AUDIOMAMBA_STEP_OVERLAP", "").strip().lower()
    if text not in ("", "0", "1", "outer"):
        raise ConfigError(f"AUDIOMAMBA_STEP_OVERLAP={text!r} in the environment: use 1 (the inner levels of the "
                          "U-Net on side streams while generating; unset: on a GPU), outer (only the outermost "
                          "level's inner level) or 0 (off)")
    return text


def step_state_dtype(name: str | None = None) -> torch.dtype | None:
    """The step states' dtype by name ("fp32", "bf16" or "fp16"), or None for "auto" (:func:`auto_state_dtype`); a
    name of None reads ``AUDIOMAMBA_STEP_STATES`` (unset: auto). A bad name is a one-line ConfigError."""
    source = "--states" if name is not None else "AUDIOMAMBA_STEP_STATES"
    text = (name if name is not None else os.environ.get("AUDIOMAMBA_STEP_STATES", "")).strip().lower() or "auto"
    if text == "auto":
        return None
    if text not in STATE_DTYPES:
        raise ConfigError(f"{source}={text!r}: use auto (the default: fp16 for a GPU batch of {FP16_STATES_MIN_BATCH}+ "
                          "rows, else fp32), fp32, bf16 or fp16 (the Mamba blocks' conv windows and real SSM states in "
                          "bfloat16 or float16: half the state traffic of a large batch)")
    return STATE_DTYPES[text]


def auto_state_dtype(batch: int, device: torch.device | str) -> torch.dtype:
    """The "auto" step-state dtype: float16 for :data:`FP16_STATES_MIN_BATCH` or more rows on a GPU, else float32."""
    return torch.float16 if torch.device(device).type == "cuda" and batch >= FP16_STATES_MIN_BATCH else torch.float32


def check_states_finite(state: object) -> None:
    """KernelError if a 16-bit Mamba step state (conv window or SSM state) holds an infinity or a NaN: a value that
    overflowed float16 (65504) makes every later token of its row wrong. Reads the device once: call it at the end
    of a generation."""
    leaves = [t for t in tree_flatten(state)[0]
              if isinstance(t, torch.Tensor) and t.dtype in (torch.float16, torch.bfloat16)]
    if leaves and not bool(torch.stack([torch.isfinite(t).all() for t in leaves]).all()):
        raise KernelError("a 16-bit Mamba step state became infinite or NaN while generating (float16 overflows "
                          "past 65504), so the samples are wrong: generate again with --states fp32 "
                          "(AUDIOMAMBA_STEP_STATES=fp32)")


def cast_states(state: object, dtype: torch.dtype) -> object:
    """The Mamba mixers' states in a model's step state (dicts with "conv" and "ssm") as ``dtype``: the conv window,
    and the SSM state where it is real (complex states are left complex64). Changed in the nested containers in
    place; returns ``state``."""
    if isinstance(state, dict):
        if isinstance(state.get("conv"), torch.Tensor) and isinstance(state.get("ssm"), torch.Tensor):
            state["conv"] = state["conv"].to(dtype)
            if not state["ssm"].is_complex():
                state["ssm"] = state["ssm"].to(dtype)
            return state
        for value in state.values():
            cast_states(value, dtype)
    elif isinstance(state, (list, tuple)):
        for value in state:
            cast_states(value, dtype)
    return state


def step_groups(batch: int, device: torch.device, state: object = None) -> int:
    """Row groups stepped on their own CUDA streams: ``AUDIOMAMBA_STEP_GROUPS`` (a positive integer, at most the
    batch; ``auto`` or unset: the rule below).

    The rule (``python -m audiomamba.bench.step_groups``, one H200, 2026-12-04 20:06 and 20:22 UTC, sc09-small,
    ms per full-rate step against one group): on a GPU, a batch of :data:`AUTO_GROUPS_MIN_BATCH` rows or more in
    groups of :data:`AUTO_GROUP_ROWS` rows, at most :data:`AUTO_GROUPS_MAX` (``mamba-s6`` at 2048: 16 groups 1.15×,
    8 groups 1.12-1.13×, 4 groups 1.06×; at 4096: 8 or 16 groups 1.19×; ``mamba-s4-real`` at 2048: 4 groups 1.09×;
    at 512 or 1024 rows groups gained nothing; one H100, 2026-12-06 03:52 UTC, against 8 groups: 16 groups 1.02× per
    steady step (0.765 against 0.784 ms), 32 groups 1.00×; not the rule, as the CUDA-graph capture records every
    group's launches, about 0.35 s for 8 groups at 2048 rows, so 16 would cost about as much start-up as they save on
    one second of audio; untimed through the CLI); otherwise one group. A model whose step ``state`` (one row's, if
    given) holds complex tensors keeps one group: its complex LTI states make the step bound by their traffic, where
    groups cost 3-12 % (``mamba-s4`` at 2048).
    """
    text = os.environ.get("AUDIOMAMBA_STEP_GROUPS", "").strip().lower()
    if text in ("", "auto"):
        if device.type != "cuda" or batch < AUTO_GROUPS_MIN_BATCH:
            return 1
        if any(isinstance(leaf, torch.Tensor) and leaf.is_complex() for leaf in tree_flatten(state)[0]):
            return 1
        return max(1, min(AUTO_GROUPS_MAX, batch // AUTO_GROUP_ROWS))
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"AUDIOMAMBA_STEP_GROUPS={text!r} in the environment: give a positive integer or 'auto'")
    return min(int(text), batch)


def group_rows(batch: int, groups: int) -> list[slice]:
    """``groups`` contiguous row ranges covering ``batch`` rows, sizes differing by at most one (the first
    ones larger)."""
    base, extra = divmod(batch, groups)
    bounds = [0]
    for g in range(groups):
        bounds.append(bounds[-1] + base + (g < extra))
    return [slice(bounds[g], bounds[g + 1]) for g in range(groups)]


def warmup_groups(groups: list[slice]) -> list[int]:
    """The row groups that the eager warm-up period before a graph capture steps: ``AUDIOMAMBA_STEP_WARMUP`` "distinct"
    (or unset: the first group of each size, since groups of one size run the same kernels with the same
    specialisations, so the others add only Python launch time) or "all" (every group). A bad value is a one-line
    ConfigError."""
    text = os.environ.get("AUDIOMAMBA_STEP_WARMUP", "").strip().lower() or "distinct"
    if text not in ("distinct", "all"):
        raise ConfigError(f"AUDIOMAMBA_STEP_WARMUP={text!r} in the environment: use distinct (one row group of each "
                          "size, the default) or all (every group)")
    if text == "all":
        return list(range(len(groups)))
    first: dict[int, int] = {}
    for g, rows in enumerate(groups):
        first.setdefault(rows.stop - rows.start, g)
    return sorted(first.values())


def graph_span(model: nn.Module) -> int:
    """Full-rate steps per captured CUDA graph: ``AUDIOMAMBA_STEP_GRAPH`` "sub" (or unset: the outer pooling factor
    p, when the model has two or more pooling levels and can shift its inner pooling buffers,
    :meth:`audiomamba.model.unet.AudioUNet.shift_pools`) or "period" (the whole pooling period, as before). A bad
    value is a one-line ConfigError.

    Why: capturing is Python-bound (every launch of the captured steps goes through the wrappers, ~0.1 ms each), and
    so is the eager warm-up before it; youtubemix (pool 16 x 16) captured 256 steps for one stream, 1.3 s of start-up
    against 0.6 s of sampling for one second (one H100, 2026-12-05 15:23). With sub-period graphs the start-up
    steps p steps to warm up and captures one graph of p steps per depth the inner levels reach
    (:func:`sub_period_depth`): 16 + 2 x 16 steps instead of 2 x 256."""
    text = os.environ.get("AUDIOMAMBA_STEP_GRAPH", "").strip().lower() or "sub"
    if text not in ("sub", "period"):
        raise ConfigError(f"AUDIOMAMBA_STEP_GRAPH={text!r} in the environment: use sub (graphs of the outer pooling "
                          "factor's steps, the default) or period (one graph of the whole pooling period)")
    pool = list(getattr(getattr(model, "config", None), "pool", None) or [])
    if text == "period" or len(pool) < 2 or not hasattr(model, "shift_pools") or not hasattr(model, "set_phase"):
        return step_period(model)
    return pool[0]


def sub_period_depth(pool: list[int], s: int) -> int:
    """How deep the U-Net's inner levels run in sub-period ``s`` (0-based; a sub-period is ``pool[0]`` full-rate
    steps from outer phase 0): 1 if only level 1 runs (at the sub-period's last step), ..., ``len(pool)`` if the
    center runs too. Level l >= 1 runs once in sub-period s when s + 1 is a multiple of pool[1] ... pool[l-1]."""
    depth, every = 1, 1
    for p in pool[1:]:
        every *= p
        if (s + 1) % every:
            break
        depth += 1
    return depth


def sub_period_of_depth(pool: list[int], depth: int) -> int:
    """The first sub-period (0-based) whose inner levels run exactly ``depth`` deep (:func:`sub_period_depth`)."""
    return math.prod(pool[1:depth]) - 1


@dataclass(frozen=True)
class GraphSchedule:
    """How :meth:`Stepper._run_graphed` covers ``total`` steps: ``head`` steps without a graph, then the replays
    ``spans`` ((first step, graph key) each, ``span`` steps long), then the steps from ``tail`` on without a graph;
    ``periods_after[i]``: how many whole pooling periods are done after replay i (the generator yields them)."""

    head: int
    spans: list[tuple[int, int]]
    tail: int
    periods_after: list[int]


def graph_schedule(total: int, period: int, span: int, pool: list[int], offset: bool) -> GraphSchedule:
    """The replays of ``total`` steps (a multiple of ``period``) in graphs of ``span`` steps, keyed by the depth the
    inner levels reach (:func:`sub_period_depth`; one key, 0, without sub-period graphs, ``pool`` empty).

    ``offset`` (sub-period graphs with the inner levels on side streams, :func:`overlap_enabled`): every graph starts
    at the step where the outer level's inner level runs (phase span - 1), so the side stream forked there is joined
    inside the same graph, one step later, and a graph's capture never ends with it pending; the first span - 1
    steps and the last one run without a graph."""
    shift = span - 1 if offset and pool else 0
    n = (total - shift) // span
    spans = [(shift + s * span, sub_period_depth(pool, s) if pool else 0) for s in range(n)]
    after = [(lo + span) // period for lo, _ in spans]
    return GraphSchedule(shift, spans, shift + n * span, after)


@dataclass(frozen=True)
class SamplingConfig:
    """How tokens are drawn. ``temperature <= 0`` is greedy; ``top_p < 1`` is nucleus sampling;
    ``min_p > 0`` drops tokens less likely than ``min_p`` times the most likely one (the far tail)."""

    temperature: float = 1.0
    top_p: float = 1.0
    min_p: float = 0.0


def initial_state(model: nn.Module, batch: int, device: torch.device, dtype: torch.dtype | None = None):
    """``model.init_state(batch, device)``, its Mamba states in ``dtype`` (:func:`cast_states`; None:
    :func:`step_state_dtype`, i.e. ``AUDIOMAMBA_STEP_STATES`` or float32); where the batch is
    small, runs of Mamba blocks then step as one launch each (:meth:`audiomamba.model.unet.AudioUNet.attach_runs`):
    with ``AUDIOMAMBA_STEP_RUNS`` 1 or split every kind, unset ("auto") the LTI blocks' runs on a GPU."""
    state = model.init_state(batch, device)
    dtype = step_state_dtype() if dtype is None else dtype
    dtype = auto_state_dtype(batch, device) if dtype is None else dtype
    if dtype != torch.float32:
        cast_states(state, dtype)
    mode = runs_mode()
    if mode != "0" and hasattr(model, "attach_runs") and (mode != "auto" or torch.device(device).type == "cuda"):
        model.attach_runs(state)
    return state


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
        groups: int | None = None,
        state_dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model
        self.batch = batch
        self.device = device
        self.sampling = sampling
        self.period = step_period(model)
        self.vocab = getattr(getattr(model, "config", None), "vocab", 256)  # logits per step (noise shape)
        self.autocast_dtype = autocast_dtype
        #: the Mamba blocks' conv windows and real SSM states (:data:`STATE_DTYPES`; None: ``AUDIOMAMBA_STEP_STATES``,
        #: None again for "auto": :func:`auto_state_dtype` per row group)
        self.state_dtype = state_dtype if state_dtype is not None else step_state_dtype()
        self.generator = None if use_graph else generator
        self.use_graph = use_graph
        self.seed = seed  # seeds the CUDA generator before the replays (the graph draws from it)
        self._graphs: dict[int, torch.cuda.CUDAGraph] = {}  # the last run's graphs, by sub-period depth
        #: wall seconds of the last :meth:`periods`' start-up: "states" (the initial states and output buffers),
        #: with a graph "warm-up" (one eager period) and "capture" (its capture; the GPU synchronised after each)
        self.startup: dict[str, float] = {}
        #: row groups (each with its own state, and on a GPU its own stream): :func:`step_groups` when None
        if groups is None:
            one_row = model.init_state(1, device) if device.type == "cuda" and hasattr(model, "init_state") else None
            groups = step_groups(batch, device, one_row)
        self.groups = group_rows(batch, groups)
        self._streams = ([torch.cuda.Stream(device=device) for _ in self.groups]
                         if device.type == "cuda" and len(self.groups) > 1 else [])
        #: the inner levels stepped on side streams (:func:`overlap_enabled`; a model without pooling has none)
        self.overlap = overlap_enabled(device) and hasattr(model, "attach_overlap")
        #: how many levels fork (:func:`overlap_levels`; None: all)
        self.overlap_levels = overlap_levels(len(self.groups),
                                             len(getattr(getattr(model, "config", None), "pool", None) or []))

    def _rand(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.rand(shape, device=self.device, generator=self.generator)

    def _autocast(self):
        enabled = self.autocast_dtype is not None
        return torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.bfloat16, enabled=enabled)

    def _noise_steps(self, steps: int) -> int:
        """Steps whose sampling noise is drawn in one call: all ``steps``, capped at 2^24 numbers."""
        return max(1, min(steps, NOISE_NUMBERS // (self.batch * self.vocab)))

    def _period(self, inp, state, forced, force, out_tok, out_logp, only: list[int] | None = None,
                steps: int | None = None):
        """Run one period of steps (or ``steps`` steps); writes tokens/log-probs into rows of ``out_*`` ((steps,
        B)); ``only``: the row groups to step (None: all; the others' rows and states are left as they are).

        The uniform noise of the Gumbel-max draws is drawn for the whole batch, up to
        :meth:`_noise_steps` steps per call (one launch instead of one per step); step j reads its
        own slice. ``state`` holds one state per row group; each group steps its rows through the
        period, on its own stream where there are several (forked from and joined to the current one).
        """
        steps = self.period if steps is None else steps
        chunk = self._noise_steps(steps)
        noise = []
        if self.sampling.temperature > 0:
            for j in range(0, steps, chunk):
                noise.append(self._rand((min(chunk, steps - j), self.batch, self.vocab)))
        main = torch.cuda.current_stream(self.device) if self._streams else None
        # every group forks from the current stream before any group's work is queued: streams come from PyTorch's
        # pool, so a group's stream can be the current one (e.g. the graph's capture stream), and a fork after that
        # group's work would make every later group wait for it (an H200, 2026-12-04: 1 run in 4-10 then took
        # 1.26-1.5 ms per step instead of 0.87)
        for stream in self._streams:
            stream.wait_stream(main)
        with self._autocast():
            in_head = self._draws_in_head(inp)
            temperature, min_p = self.sampling.temperature, self.sampling.min_p
            for g, rows in enumerate(self.groups):
                if only is not None and g not in only:
                    continue
                stream = self._streams[g] if self._streams else None
                with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
                    g_inp = inp[rows]
                    x = self.model.embedding(g_inp) if in_head else None  # the embedded input, step to step
                    for j in range(steps):
                        rand = partial(_drawn, noise[j // chunk][j % chunk][rows]) if noise else self._rand
                        if in_head:
                            u = rand((rows.stop - rows.start, self.vocab)) if temperature > 0 else None
                            x = self.model.step_and_draw(x, state[g], u, temperature, forced[j][rows],
                                                         force[j][rows], out_tok[j][rows], out_logp[j][rows], min_p)
                            continue
                        g_inp, state[g] = _advance(self.model, g_inp, state[g], forced[j][rows], force[j][rows],
                                                   self.sampling, rand, out_tok[j][rows], out_logp[j][rows])
                    if self.overlap:  # a graph's capture must end with every side stream joined
                        self.model.join_overlap(state[g])
            for stream in self._streams:
                main.wait_stream(stream)
        return out_tok[steps - 1], state

    def _draws_in_head(self, probe: torch.Tensor) -> bool:
        """Whether the steps end in :meth:`audiomamba.model.unet.AudioUNet.step_and_draw` (one launch for the head,
        the draw and the next input's embedding): :func:`head_draw_enabled`, no nucleus filtering, the fused step
        kernels for ``probe``'s device (:func:`kernels.use_fused_step`, so not under autocast) and a head for which
        the kernel pays at the row groups' size (:meth:`audiomamba.model.unet.AudioUNet.draws_in_head`)."""
        return (head_draw_enabled() and self.sampling.top_p >= 1.0 and hasattr(self.model, "step_and_draw")
                and kernels.use_fused_step(probe)
                and self.model.draws_in_head(min(rows.stop - rows.start for rows in self.groups)))

    def init_state(self) -> list:
        """The model's initial step state (:func:`initial_state`), one per row group (with side streams for the
        inner levels where :attr:`overlap`)."""
        states = [initial_state(self.model, rows.stop - rows.start, self.device, self.state_dtype)
                  for rows in self.groups]
        if self.overlap:
            for state in states:
                self.model.attach_overlap(state, self.device, self.overlap_levels)
        return states

    def run(self, prompt: torch.Tensor | None, length: int, on_period: Callable[[int], None] | None = None,
            on_tokens: Callable[[int, torch.Tensor], None] | None = None):
        """All ``length`` tokens: (tokens (B, length), logp (B, length)); ``on_period(k)`` after period k;
        ``on_tokens(steps, tokens)`` then too, with the (time, B) token buffer whose first ``steps`` steps are queued
        (on a GPU, on the current stream: record an event before reading them elsewhere)."""
        done = None
        for done in self.periods(prompt, length):
            if on_period:
                on_period(done[0])
            if on_tokens:
                on_tokens(done[0] * self.period, done[1])
        _, tokens, logp = done
        return tokens[:length].T.contiguous(), logp[:length].T.contiguous()

    @torch.no_grad()
    def periods(self, prompt: torch.Tensor | None, length: int):
        """Generate period by period: after period k (1-based) yields ``(k, tokens, logp)``, the
        (periods · period, B) buffers whose first k · period rows are filled (for streaming)."""
        batch, period, dev = self.batch, self.period, self.device
        t0 = time.perf_counter()
        n_periods = -(-length // period)
        total = n_periods * period
        forced = torch.zeros(total, batch, dtype=torch.long, device=dev)
        force = torch.zeros(total, batch, dtype=torch.bool, device=dev)
        p = 0  # steps whose token is forced (the prompt's)
        if prompt is not None and prompt.shape[1] > 0:
            p = min(prompt.shape[1], length)
            forced[:p] = prompt[:, :p].T.to(dev)
            force[:p] = True
        tokens = torch.empty(total, batch, dtype=torch.long, device=dev)
        logp = torch.empty(total, batch, dtype=torch.float32, device=dev)
        state = self.init_state()
        if hasattr(self.model, "reserve_cache"):  # fixed-shape KV caches: graph-capturable steps
            for group_state in state:
                self.model.reserve_cache(group_state, total)
        inp = torch.full((batch,), Q_ZERO, dtype=torch.long, device=dev)
        self.startup = {"states": time.perf_counter() - t0}
        done = self._run_graphed(inp, state, forced, force, tokens, logp, p) if self.use_graph else \
            self._run_eager(inp, state, forced, force, tokens, logp)
        for k, tokens, logp in done:
            if k == n_periods:
                if hasattr(self.model, "check_runs"):  # a run's launch that gave up at a barrier
                    for group_state in state:
                        self.model.check_runs(group_state)
                check_states_finite(state)  # a 16-bit state that overflowed
            yield k, tokens, logp

    def _run_eager(self, inp, state, forced, force, tokens, logp):
        """The periods one by one without a graph (a generator, like :meth:`periods`)."""
        period = self.period
        for k in range(tokens.shape[0] // period):
            rows = slice(k * period, (k + 1) * period)
            inp, state = self._period(inp, state, forced[rows], force[rows], tokens[rows], logp[rows])
            yield k + 1, tokens, logp

    def _run_graphed(self, inp, state, forced, force, tokens, logp, prompt_len: int | None = None):
        """Capture CUDA graphs of :func:`graph_span` steps over static buffers, then replay them (a generator, like
        :meth:`periods`).

        With a span of the whole period there is one graph. With sub-period graphs (the outer pooling factor's steps)
        the inner levels' pooling buffers are put in shift mode, so their views do not depend on the phase, and there
        is one graph per depth that the inner levels reach in a sub-period (:func:`sub_period_depth`), each captured
        with the pooling positions of a sub-period of that depth; a replay runs whatever sub-period comes next at its
        depth (the Python-side positions are not kept up while replaying, and are set to the end at the end). Past
        the first ``prompt_len`` steps (None: unknown) nothing is forced, so the replays stop copying the forced
        tokens in (two launches fewer per replay; one stream's replay of 16 youtubemix steps is ~0.6 ms). With the
        inner levels on side streams (:attr:`overlap`) the sub-period graphs start where the outer level's inner
        level runs (:func:`graph_schedule`), so that its side stream is joined inside the same graph.
        """
        period, batch, dev = self.period, self.batch, self.device
        span = graph_span(self.model)
        pool = list(self.model.config.pool) if span < period else []
        if pool:
            for group_state in state:
                self.model.shift_pools(group_state)
        leaves, spec = tree_flatten(state)
        tensor_idx = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        init = [leaves[i].clone() for i in tensor_idx]
        s_forced = torch.zeros(span, batch, dtype=torch.long, device=dev)
        s_force = torch.zeros(span, batch, dtype=torch.bool, device=dev)
        # zeros: the warm-up steps only some row groups, and its last tokens become every row's input (s_inp)
        s_tok = torch.zeros(span, batch, dtype=torch.long, device=dev)
        s_logp = torch.empty(span, batch, dtype=torch.float32, device=dev)
        s_inp = inp.clone()

        def key(s: int) -> int:  # which graph runs sub-period s
            return sub_period_depth(pool, s) if pool else 0

        def set_phase(step: int) -> None:  # the pooling positions (Python ints among the leaves) after `step` steps
            if pool:
                phased = tree_unflatten(leaves, spec)
                for group_state in phased:
                    self.model.set_phase(group_state, step)
                leaves[:] = tree_flatten(phased)[0]

        def one_span(only: list[int] | None = None, rows: slice | None = None) -> None:
            """``span`` steps over the static buffers (a graph's capture), or the steps ``rows`` of the outputs
            without a graph (a schedule's head and tail), from the state in ``leaves``."""
            bufs = (s_forced, s_force, s_tok, s_logp) if rows is None else (forced[rows], force[rows], tokens[rows],
                                                                            logp[rows])
            steps = span if rows is None else rows.stop - rows.start
            last_inp, new_state = self._period(s_inp, tree_unflatten(leaves, spec), *bufs, only, steps=steps)
            new_leaves, new_spec = tree_flatten(new_state)
            if new_spec != spec:
                raise RuntimeError("the model's step state changes structure over a period; use --no-graph")
            for i in tensor_idx:
                if new_leaves[i] is not leaves[i]:
                    leaves[i].copy_(new_leaves[i])
            s_inp.copy_(last_inp)

        per = period // span
        keys = sorted({key(s) for s in range(per)})
        plan = graph_schedule(forced.shape[0], period, span, pool, self.overlap)
        # each graph is captured at the phase its replays start at (a schedule's offset: the phase span - 1)
        phase_of = {k: (sub_period_of_depth(pool, k) if pool else 0) * span + plan.head for k in keys}
        t0 = time.perf_counter()
        side = torch.cuda.Stream(device=dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        warm = warmup_groups(self.groups)
        set_phase(phase_of[keys[-1]])  # the deepest sub-period runs every kernel that the others run
        with torch.cuda.stream(side):  # warm-up: compiles kernels, initialises libraries
            one_span(warm)
        for g, stream in enumerate(self._streams):  # the other groups' streams: cuBLAS's per-stream workspace
            if g not in warm:
                with torch.cuda.stream(stream):
                    torch.mm(s_logp[:1, :1], s_logp[:1, :1])
                side.wait_stream(stream)
        torch.cuda.current_stream(dev).wait_stream(side)
        torch.cuda.synchronize(dev)
        t1 = time.perf_counter()
        graphs: dict[int, torch.cuda.CUDAGraph] = {}
        for k in keys:
            set_phase(phase_of[k])
            graph = torch.cuda.CUDAGraph()
            shared = next(iter(graphs.values())).pool() if graphs else None  # replayed one at a time: one pool
            # thread_local: the WavSink's thread may still be copying the previous batch's last chunk (an event
            # wait and a copy to the CPU, on its own stream); under the default "global" mode those calls from
            # another thread invalidate this capture (cudaErrorStreamCaptureInvalidated: the second of two batches
            # on an H100, 2026-12-06)
            with torch.cuda.graph(graph, pool=shared, capture_error_mode="thread_local"):
                one_span()
            graphs[k] = graph
        torch.cuda.synchronize(dev)
        self.startup.update({"warm-up": t1 - t0, "capture": time.perf_counter() - t1})
        for i, value in zip(tensor_idx, init, strict=True):  # undo the warm-up
            leaves[i].copy_(value)
        s_inp.copy_(inp)
        self._graphs = graphs
        torch.cuda.manual_seed(self.seed)
        free_from = forced.shape[0] if prompt_len is None else prompt_len  # s_force holds only False from there on
        if plan.head:
            set_phase(0)
            one_span(rows=slice(0, plan.head))
        done = 0
        for (lo, k), periods_done in zip(plan.spans, plan.periods_after, strict=True):
            rows = slice(lo, lo + span)
            if rows.start < free_from + span:  # a replay with forced steps, or the first without
                s_forced.copy_(forced[rows])
                s_force.copy_(force[rows])
            graphs[k].replay()
            tokens[rows].copy_(s_tok)
            logp[rows].copy_(s_logp)
            while done < periods_done:
                done += 1
                yield done, tokens, logp
        if plan.tail < forced.shape[0]:
            set_phase(plan.tail)
            one_span(rows=slice(plan.tail, forced.shape[0]))
        while done < forced.shape[0] // period:
            done += 1
            yield done, tokens, logp
        set_phase(forced.shape[0])
        if pool:
            state[:] = tree_unflatten(leaves, spec)
