"""U-Net training-step benchmark: forward+backward throughput and peak memory, Triton vs reference scan.

Run on a GPU::

    audiomamba bench model --out bench-model.md

Measures, in one run and under bf16 autocast:

* sc09-small at batch 16 x 16000 and youtubemix at batch 8 x 131072, once with the Triton scan and
  once with the PyTorch reference scan (forced through :func:`kernels.set_backend`). A case that
  runs out of memory is reported as OOM and retried at half the batch down to 1, then at half the
  length (up to 4 times), so that both scans still get a samples/s figure; the note says where.
* the longest ``sample_len`` of the Table 14 schedule (docs/ARCHITECTURE.md §4) whose training step fits at
  batch 1 with the Triton scan (goal: 958464), trying lengths from the longest down.

``--quick`` runs tiny presets on short sequences (any device; a smoke test of the driver).

``--profile`` and ``--compile`` replace those tables (no reference-scan rows, no sweep) with, per
model (the same cases; the Triton scan on CUDA), one training step as the trainer runs it (forward,
cross-entropy on float logits, backward, clip_grad_norm_, AdamW; :class:`TrainStep`):

* ``--profile``: torch.profiler's device time of a step (CUDA kernel time; on the CPU each op's self
  CPU time) grouped into scan, matmul, conv, norm, elementwise, loss, optimizer and other by the
  name rules of :data:`GROUP_RULES` (a kernel is classified by its own name and the names of the op
  that launched it and that op's parents), plus the largest kernels/ops of each model;
* ``--loss-steps N`` (with ``--baseline``): the first N training losses on the same procedural-piano
  batches, baseline from seeds 0 and 1 (seed noise) against the current eager and compiled step from
  seed 0, as a table and a plot (:func:`run_loss_curves`);
* ``--compile``: the eager step and ``torch.compile(model)`` (Inductor, static shapes; the scan is
  the opaque op of ``kernels/scan_op.py``) timed side by side on the same weights: samples/s of
  each and their ratio, the first compiled step's seconds, and how far the first step's loss and
  gradients differ; with ``--profile`` the compiled step is profiled too.

Both print a progress line per phase on stderr::

    audiomamba bench model --profile --compile --out bench-profile.md
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import torch
import torch.nn.functional as F
from audiomamba.bench.device import device_name, free, is_oom, sync

from audiomamba import kernels
from audiomamba.model import build_model, load_model_preset


@dataclass
class Case:
    """One benchmark shape: a model preset at (batch, length)."""

    preset: str
    batch: int
    length: int
    #: every level's and the centre's block replaced by this block type (``--block``); "" = the preset's own
    block: str = ""

    @property
    def name(self) -> str:
        """The preset, with the block type when one is forced (report rows, progress lines)."""
        return f"{self.preset} ({self.block})" if self.block else self.preset


@dataclass
class Result:
    """Measurement of one (case, scan backend)."""

    case: Case
    backend: str
    batch: int  # the shape actually measured (smaller than the case's after an OOM retry)
    length: int = 0
    params: int = 0
    ms_per_iter: float | None = None
    peak_gib: float | None = None
    note: str = ""

    @property
    def samples_per_s(self) -> float | None:
        if self.ms_per_iter is None:
            return None
        return self.batch * self.length / (self.ms_per_iter / 1000)


FULL_CASES = [Case("sc09-small", 16, 16000), Case("youtubemix", 8, 131072)]
QUICK_CASES = [Case("sc09-small-tiny", 2, 1024), Case("youtubemix-tiny", 2, 2048)]
BACKENDS = ("triton", "reference")


def _describe(err: BaseException) -> str:
    """ "OOM", or a one-line "error: Type: message" for a table note."""
    if is_oom(err):
        return "OOM"
    first = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
    return f"error: {type(err).__name__}: {first}".replace("|", "/")


def train_step_time(
    preset: str,
    batch: int,
    length: int,
    device: torch.device,
    iters: int = 3,
    max_seconds: float = 20.0,
    bf16: bool = True,
) -> tuple[float, float | None, int]:
    """Time forward + cross-entropy + backward of ``preset`` on random tokens (batch, length).

    One warm-up step (compilation), then up to ``iters`` timed steps (fewer once ``max_seconds``
    is spent). Returns (ms per step, peak memory GiB or None on CPU, parameter count).
    Out-of-memory errors propagate.
    """
    torch.manual_seed(0)
    model = build_model(load_model_preset(preset)).to(device)
    tokens = torch.randint(0, 256, (batch, length), device=device)
    use_bf16 = bf16 and device.type == "cuda"

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(tokens)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tokens.reshape(-1))
        loss.backward()

    try:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        step()
        sync(device)
        t0 = time.perf_counter()
        n = 0
        while n < iters:
            step()
            n += 1
            sync(device)
            if time.perf_counter() - t0 > max_seconds:
                break
        ms = (time.perf_counter() - t0) / n * 1000
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        return ms, peak, sum(p.numel() for p in model.parameters())
    finally:
        model = tokens = None  # drop the references before freeing the cache
        free(device)


def fallback_shapes(case: Case, pool_product: int, max_halvings: int = 4) -> list[tuple[int, int]]:
    """Shapes to try in order: the case's batch halved down to 1, then the length halved at batch 1.

    Lengths stay multiples of ``pool_product``; at most ``max_halvings`` length halvings.
    """
    shapes = []
    batch = case.batch
    while batch >= 1:
        shapes.append((batch, case.length))
        batch //= 2
    length = case.length
    for _ in range(max_halvings):
        length = (length // 2) // pool_product * pool_product
        if length < pool_product:
            break
        shapes.append((1, length))
    return shapes


def measure(case: Case, backend: str, device: torch.device, iters: int, max_seconds: float) -> Result:
    """One (case, backend) row; on OOM, retries at half the batch, then (at batch 1) half the length."""
    res = Result(case, backend, case.batch, case.length)
    pool_product = math.prod(load_model_preset(case.preset)["model"].get("pool", []))
    kernels.set_backend(backend)
    try:
        failed: list[str] = []
        for batch, length in fallback_shapes(case, pool_product):
            res.batch, res.length = batch, length
            try:
                res.ms_per_iter, res.peak_gib, res.params = train_step_time(
                    case.preset, batch, length, device, iters, max_seconds
                )
                break
            except Exception as err:  # noqa: BLE001 - every failure becomes a row note
                failure = _describe(err)
            # freed outside the except clause: the traceback holds the failed step's activations
            free(device)
            if failure != "OOM":
                res.note = failure
                return res
            failed.append(f"{batch} × {length}")
        if failed:
            res.note = f"OOM at {', '.join(failed)}" + (
                f"; measured at {res.batch} × {res.length}" if res.ms_per_iter is not None else ""
            )
        return res
    finally:
        kernels.set_backend(None)


def longest_trainable(
    preset: str, lengths: list[int], device: torch.device, max_seconds: float
) -> list[tuple[int, float | None, float | None, str]]:
    """Try ``lengths`` (longest first) at batch 1 with the Triton scan until one trains.

    Returns rows (length, ms per step or None, peak GiB or None, note).
    """
    rows = []
    kernels.set_backend("triton")
    try:
        for length in sorted(lengths, reverse=True):
            try:
                ms, peak, _ = train_step_time(preset, 1, length, device, iters=1, max_seconds=max_seconds)
                rows.append((length, ms, peak, "trains"))
                break
            except Exception as err:  # noqa: BLE001
                failure = _describe(err)
            free(device)
            rows.append((length, None, None, failure))
    finally:
        kernels.set_backend(None)
    return rows


def _fmt(x: float | None, spec: str) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def render(
    results: list[Result],
    sweep: list[tuple[int, float | None, float | None, str]],
    device: torch.device,
    command: str,
    goal: int,
) -> str:
    """The benchmark as a markdown section (device, date, command, tables)."""
    try:
        import triton

        triton_version = triton.__version__
    except Exception:  # noqa: BLE001 - the report still renders without triton
        triton_version = "not importable"
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## U-Net training step: Triton vs reference scan",
        "",
        f"- device: {device_name(device)}",
        f"- date: {now}",
        f"- command: `{command}`",
        f"- torch {torch.__version__}, triton {triton_version}; forward + cross-entropy + backward, "
        f"{'bf16 autocast' if device.type == 'cuda' else 'fp32 (CPU)'}, random tokens",
        "",
        "| model | params | batch × length | scan | samples/s | ms/step | peak memory (GiB) | speed-up vs reference | note |",
        "|---|---:|---|---|---:|---:|---:|---:|---|",
    ]
    by_case: dict[str, dict[str, Result]] = {}
    for r in results:
        by_case.setdefault(r.case.preset, {})[r.backend] = r
    for r in results:
        ref = by_case[r.case.preset].get("reference")
        speed = None
        if r.backend != "reference" and ref is not None and ref.samples_per_s and r.samples_per_s:
            speed = r.samples_per_s / ref.samples_per_s
        lines.append(
            f"| {r.case.preset} | {_fmt(r.params / 1e6 if r.params else None, '.2f')}{' M' if r.params else ''} | {r.batch} × {r.length} | {r.backend} "
            f"| {_fmt(r.samples_per_s, ',.0f')} | {_fmt(r.ms_per_iter, '.1f')} | {_fmt(r.peak_gib, '.2f')} "
            f"| {_fmt(speed, '.1f') + '×' if speed else '–'} | {r.note} |"
        )
    if sweep:
        lines += [
            "",
            "### Longest sequence that trains at batch 1 (Table 14 schedule, youtubemix, Triton scan)",
            "",
            "| sample_len | result | ms/step | samples/s | peak memory (GiB) |",
            "|---:|---|---:|---:|---:|",
        ]
        for length, ms, peak, note in sweep:
            sps = length / (ms / 1000) if ms else None
            lines.append(
                f"| {length} | {note} | {_fmt(ms, '.0f')} | {_fmt(sps, ',.0f')} | {_fmt(peak, '.2f')} |"
            )
        ok = [row[0] for row in sweep if row[3] == "trains"]
        lines += ["", f"Longest trainable sample_len: **{ok[0] if ok else 'none'}** (goal {goal})."]
    return "\n".join(lines) + "\n"


def run(
    quick: bool = False,
    device: str | None = None,
    command: str = "audiomamba bench model",
    backends: tuple[str, ...] = BACKENDS,
) -> str:
    """Run the whole benchmark and return the markdown report."""
    from audiomamba.data.youtubemix import SEQLEN_SCHEDULE

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cases = QUICK_CASES if quick else FULL_CASES
    iters, max_s = (1, 5.0) if quick else (3, 20.0)
    results = [measure(c, b, dev, iters, max_s) for c in cases for b in backends]
    if quick:
        sweep_preset, lengths = "youtubemix-tiny", [4096, 2048]
    else:
        sweep_preset, lengths = "youtubemix", [n for n, _ in SEQLEN_SCHEDULE]
    sweep = longest_trainable(sweep_preset, lengths, dev, max_s) if "triton" in backends else []
    return render(results, sweep, dev, command, max(lengths))


# ----------------------------------------------------------------------------------------------
# --profile: where the time of one training step goes; --compile: eager vs torch.compile

#: the groups of the profile table, in column order
PROFILE_GROUPS = ("scan", "matmul", "conv", "norm", "elementwise", "loss", "optimizer", "other")

#: (group, regular expression), in priority order. An event belongs to the first group whose
#: expression matches (case-insensitively) its own name or the name of an op it runs inside: for a
#: CUDA kernel, the kernel name, the op that launched it and that op's parents; on the CPU, the op
#: and its parents. So the aten::mul inside the reference scan's backward counts as scan, the
#: foreach kernels under ``Optimizer.step`` as optimizer, a GEMM under ``aten::convolution`` as
#: conv. Anything unmatched is "other" (embedding, pads' neighbours, memcpy/memset, views, host
#: overhead on the CPU).
GROUP_RULES: tuple[tuple[str, str], ...] = (
    # the Triton scan kernels by name (the fully-LTI chunked ones too); the autograd Functions, their backward nodes
    # and the opaque torch.compile op (audiomamba::selective_scan[_bwd]); the reference scan's _LinearScan
    ("scan", r"_scan_fwd|_scan_bwd|_seg_carry|selective_scan|SelectiveScanFn|_LinearScan|_lti_chunk|LtiChunkFn"),
    # Optimizer.step#AdamW.step / zero_grad (recorded by torch.optim), our clip_grad_norm_ label,
    # foreach / multi-tensor kernels
    ("optimizer", r"optimizer|adamw|_foreach_|multi_tensor_apply|clip_grad"),
    # F.cross_entropy and its parts, forward and backward; our label around the loss (it holds the
    # logits' float cast)
    ("loss", r"cross_?entropy|log_?softmax|nll_?loss"),
    # LayerNorm forward/backward (aten ops, CUDA kernels, Inductor's fused kernels that contain one)
    ("norm", r"layer_?norm|gammabeta"),
    # the depthwise causal conv1d: aten::convolution and its backward, cuDNN / depthwise kernels
    # and our fused causal conv + SiLU (kernels/triton_conv.py: its Triton kernels, the autograd
    # Function and the torch.library ops)
    ("conv", r"convolution|conv[123]d|conv_depthwise|depthwise|cudnn|_conv_(fwd|bwd)|_ConvSilu|causal_conv"),
    # aten::mm/addmm/bmm/linear/matmul and their backward nodes; cuBLAS/CUTLASS GEMM kernels
    # (gemm, cutlass, cublas, nvjet, xmma, sm90_...), Inductor's matmul templates
    ("matmul", r"aten::(mm|addmm|bmm|baddbmm|addbmm|matmul|linear)\b|(mm|addmm|bmm)backward|gemm|cutlass|cublas"
               r"|nvjet|xmma|sm\d\d_|splitk|triton_tem_"),
    # the token embedding and its backward (a gather / scatter-add, not pointwise)
    ("other", r"embedding"),
    # pointwise ops, casts and copies, reductions, cat/pad: aten names, their backward nodes,
    # PyTorch's CUDA elementwise/reduce kernels, Inductor's pointwise/reduction kernels
    ("elementwise", r"elementwise|reduce_kernel|triton_(poi|red|per)_|catarray|"
                    r"aten::(add|sub|rsub|mul|div|neg|exp|expm1|log|log1p|silu|sigmoid|softplus|gelu|glu|tanh|pow|"
                    r"sqrt|rsqrt|reciprocal|abs|where|clamp|maximum|minimum|lerp|addcmul|addcdiv|copy|_to_copy|"
                    r"to|contiguous|clone|cat|stack|sum|mean|fill|zero|zeros|ones|masked_fill|constant_pad_nd|"
                    r"pad|\w+_backward)_?\b|(add|sub|mul|div|neg|exp|silu|sigmoid|softplus|gelu|glu|tanh|pow|"
                    r"tocopy|cat|clone|sum|mean|where|clamp|constantpadnd)backward"),
)
_RULES = tuple((group, re.compile(expr, re.IGNORECASE)) for group, expr in GROUP_RULES)


def classify(names: str | Sequence[str]) -> str:
    """The profile group of an event: ``names`` is its own name first, then the ops it runs inside
    (innermost first); the first rule of :data:`GROUP_RULES` matching any of them wins."""
    chain = [names] if isinstance(names, str) else list(names)
    for group, rx in _RULES:
        if any(rx.search(n) for n in chain):
            return group
    return "other"


def group_times(events: Iterable[tuple[str | Sequence[str], float]]) -> dict[str, float]:
    """Sum (names, time) events by :func:`classify`; every group of :data:`PROFILE_GROUPS` is a key."""
    out = dict.fromkeys(PROFILE_GROUPS, 0.0)
    for names, t in events:
        out[classify(names)] += t
    return out


def profile_events(prof, cuda: bool) -> list[tuple[list[str], float]]:
    """(names, µs) of a finished ``torch.profiler.profile``: on CUDA every kernel (its name, then
    the op that launched it and that op's parents; kernels linked to no op by their name alone),
    on the CPU every op's self CPU time (its name, then its parents)."""
    from torch.autograd import DeviceType

    def chain(evt) -> list[str]:
        names = []
        while evt is not None:
            names.append(evt.name)
            evt = evt.cpu_parent
        return names

    out: list[tuple[list[str], float]] = []
    events = list(prof.events())
    if not cuda:
        for e in events:
            if e.device_type == DeviceType.CPU and not e.is_async and e.self_cpu_time_total > 0:
                out.append((chain(e), float(e.self_cpu_time_total)))
        return out
    linked: dict[str, float] = {}
    for e in events:
        if e.device_type == DeviceType.CPU and not e.is_async:
            for k in e.kernels:
                out.append(([k.name, *chain(e)], float(k.duration)))
                linked[k.name] = linked.get(k.name, 0.0) + float(k.duration)
    device: dict[str, float] = {}
    for e in events:
        if e.device_type == DeviceType.CUDA:
            device[e.name] = device.get(e.name, 0.0) + float(e.time_range.end - e.time_range.start)
    for name, t in device.items():  # kernels no CPU op claimed
        if t - linked.get(name, 0.0) > 0.5:
            out.append(([name], t - linked.get(name, 0.0)))
    return out


class TrainStep:
    """One training step of ``preset`` on fixed random tokens (batch, length), as the trainer runs it:
    bf16 autocast forward (on CUDA), cross-entropy on float logits, backward, clip_grad_norm_ and
    AdamW (the recipe defaults of :class:`audiomamba.recipe.OptimCfg`). :meth:`compile` swaps the
    forward for ``torch.compile(model)`` (the weights are shared)."""

    def __init__(self, preset: str, batch: int, length: int, device: torch.device, bf16: bool = True,
                 seed: int = 0, schedule_steps: int | None = None, block: str = "") -> None:
        from audiomamba.recipe import OptimCfg, ScheduleCfg
        from audiomamba.train.optim import build_optimizer

        torch.manual_seed(seed)
        self.device = device
        if block:  # every level's and the centre's block replaced (bench model --block)
            from audiomamba.bench.generate import preset_with_block

            config = preset_with_block(preset, block)
        else:
            config = load_model_preset(preset)
        self.model = build_model(config).to(device)
        self.module: torch.nn.Module = self.model
        self.compiled: torch.nn.Module | None = None
        self.tokens = torch.randint(0, 256, (batch, length), device=device)
        self.inputs = self.tokens  # timing: random tokens in and out; :func:`loss_curve` sets real pairs
        self.bf16 = bf16 and device.type == "cuda"
        optim = OptimCfg()
        self.clip = optim.clip
        # timing: the lr does not matter (the warm-up's first value); loss curves: the recipe's warm-up and
        # cosine schedule squeezed into ``schedule_steps`` steps, so that the weights move as in training
        self.opt, sched = build_optimizer(self.model, optim, ScheduleCfg(), schedule_steps or 1000)
        self.sched = sched if schedule_steps else None
        self.params = sum(p.numel() for p in self.model.parameters())

    def compile(self, backend: str = "inductor", mode: str = "default") -> None:
        """Compile the model (static shapes: one graph for the fixed batch) and use it from now on;
        ``mode`` is torch.compile's (``reduce-overhead``: the forward and backward graphs as CUDA graphs)."""
        self.compiled = torch.compile(self.model, backend=backend, dynamic=False,
                                      mode=None if mode == "default" else mode)
        self.module = self.compiled

    def use(self, compiled: bool) -> None:
        """Run the compiled model (after :meth:`compile`) or the eager one."""
        self.module = self.compiled if compiled and self.compiled is not None else self.model

    def loss(self) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.module(self.inputs)
        with torch.profiler.record_function("loss: cross_entropy"):
            return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), self.tokens.reshape(-1))

    def loss_and_grads(self) -> tuple[float, dict[str, torch.Tensor]]:
        """Loss and gradients at the current weights (no optimiser step)."""
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss()
        loss.backward()
        grads = {n: p.grad.detach().float().clone() for n, p in self.model.named_parameters() if p.grad is not None}
        self.opt.zero_grad(set_to_none=True)
        return float(loss.detach()), grads

    def __call__(self) -> torch.Tensor:
        """One step; returns the loss (detached, on the device: no host sync)."""
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss()
        loss.backward()
        if self.clip > 0:
            with torch.profiler.record_function("optimizer: clip_grad_norm_"):
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        return loss.detach()

    def time(self, iters: int, max_seconds: float) -> tuple[float, float | None]:
        """(ms per step, peak GiB or None on CPU) over up to ``iters`` steps after one warm-up step."""
        self()
        sync(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        n = 0
        while n < iters:
            self()
            n += 1
            sync(self.device)
            if time.perf_counter() - t0 > max_seconds:
                break
        ms = (time.perf_counter() - t0) / n * 1000
        peak = torch.cuda.max_memory_allocated(self.device) / 2**30 if self.device.type == "cuda" else None
        return ms, peak


@dataclass
class StepProfile:
    """Grouped device time of one training step (ms per step)."""

    preset: str
    mode: str  # eager | compiled
    batch: int
    length: int
    groups: dict[str, float]
    wall_ms: float
    top: list[tuple[str, str, float]]  # (group, kernel or op name, ms per step), largest first
    unit: str  # what was summed: CUDA kernel time, or CPU self time

    @property
    def total_ms(self) -> float:
        return sum(self.groups.values())


def profile_step(step: TrainStep, preset: str, mode: str, iters: int = 1, top: int = 10) -> StepProfile:
    """Profile ``iters`` training steps (after one warm-up step) with torch.profiler and group them."""
    from torch.profiler import ProfilerActivity, profile

    cuda = step.device.type == "cuda"
    step()
    sync(step.device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        sync(step.device)
        wall = (time.perf_counter() - t0) / iters * 1000
    events = profile_events(prof, cuda)
    groups = {g: t / iters / 1000 for g, t in group_times(events).items()}
    by_name: dict[tuple[str, str], float] = {}
    for names, t in events:
        key = (classify(names), names[0])
        by_name[key] = by_name.get(key, 0.0) + t / iters / 1000
    ranked = sorted(((g, n, t) for (g, n), t in by_name.items()), key=lambda r: -r[2])[:top]
    batch, length = step.tokens.shape
    return StepProfile(preset, mode, batch, length, groups, wall, ranked,
                       "CUDA kernel time" if cuda else "CPU self time of each op")


@dataclass
class CompileResult:
    """Eager vs torch.compile on one case, same weights and batch."""

    preset: str
    batch: int
    length: int
    params: int = 0
    eager_ms: float | None = None
    compiled_ms: float | None = None
    eager_peak: float | None = None
    compiled_peak: float | None = None
    compile_s: float | None = None  # the first compiled step (trace + compile + run)
    loss_diff: float | None = None  # |loss eager - loss compiled| on the same batch and weights
    grad_rel_diff: float | None = None  # max |grad eager - grad compiled| / max |grad eager|
    baseline_ms: float | None = None  # eager, under the --baseline environment (e.g. an older kernel)
    note: str = ""

    def samples_per_s(self, ms: float | None) -> float | None:
        return None if ms is None else self.batch * self.length / (ms / 1000)

    @property
    def ratio(self) -> float | None:
        if self.eager_ms is None or self.compiled_ms is None:
            return None
        return self.eager_ms / self.compiled_ms  # = samples/s compiled ÷ samples/s eager

    def over_baseline(self, ms: float | None) -> float | None:
        """samples/s at ``ms`` ÷ samples/s of the baseline (eager under the --baseline environment)."""
        return None if ms is None or self.baseline_ms is None else self.baseline_ms / ms


@contextmanager
def environment(env: dict[str, str]):
    """Set environment variables for the block (the kernels read their tuning variables per call)."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def parse_baseline(text: str) -> dict[str, str]:
    """``"VAR=VAL[,VAR=VAL]"`` -> {VAR: VAL}; a ValueError names the bad item."""
    env = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        name, eq, value = item.partition("=")
        if not eq or not name.strip().isidentifier():
            raise ValueError(f"bad --baseline item {item!r}: give VAR=VALUE pairs separated by commas, "
                             "e.g. AUDIOMAMBA_SCAN_BWD_LOOP=0")
        env[name.strip()] = value.strip()
    return env


def _progress(text: str) -> None:
    """One progress line on stderr (the report comes at the end; a run cut short still says how far it got)."""
    print(f"[bench model] {text}", file=sys.stderr, flush=True)


def run_case(case: Case, device: torch.device, iters: int, max_seconds: float, profile: bool, compile: bool,
             backend: str = "inductor", profile_iters: int = 1,
             log: Callable[[str], None] = _progress,
             baseline: dict[str, str] | None = None,
             mode: str = "default") -> tuple[list[StepProfile], CompileResult | None, str]:
    """One model: [eager and compiled loss/grads on the same weights and batch (the compiled one
    compiles)], [eager timing under the ``baseline`` environment], [eager timing], [eager profile],
    [compiled timing], [compiled profile], in one process.
    Returns (profiles, compile result or None, note: a failure, else "")."""
    profiles: list[StepProfile] = []
    res = CompileResult(case.name, case.batch, case.length) if compile else None
    step = None

    def profile_mode(mode: str) -> None:
        profiles.append(profile_step(step, case.name, mode, profile_iters))
        log(f"{case.name}: {mode} profile " + _brief(profiles[-1]))
    try:
        step = TrainStep(case.preset, case.batch, case.length, device, block=case.block)
        if res is not None:  # the same weights and batch: eager, then compiled (its first call compiles)
            res.params = step.params
            eager_loss, eager_grads = step.loss_and_grads()
            step.compile(backend, mode)
            t0 = time.perf_counter()
            loss, grads = step.loss_and_grads()
            sync(device)
            res.compile_s = time.perf_counter() - t0
            log(f"{case.name}: first compiled step {res.compile_s:.1f} s")
            res.loss_diff = abs(loss - eager_loss)
            scale = max(float(g.abs().max()) for g in eager_grads.values())
            res.grad_rel_diff = max(float((grads[n] - g).abs().max()) for n, g in eager_grads.items()) / max(scale, 1e-30)
            eager_grads = grads = None
            step.use(compiled=False)
            if baseline:
                with environment(baseline):
                    res.baseline_ms, _ = step.time(iters, max_seconds)
                log(f"{case.name}: baseline ({_env_text(baseline)}) {res.baseline_ms:.1f} ms/step")
            res.eager_ms, res.eager_peak = step.time(iters, max_seconds)
            log(f"{case.name}: eager {res.eager_ms:.1f} ms/step")
        if profile:
            profile_mode("eager")
        if res is not None:
            step.use(compiled=True)
            res.compiled_ms, res.compiled_peak = step.time(iters, max_seconds)
            log(f"{case.name}: compiled {res.compiled_ms:.1f} ms/step ({res.ratio:.2f}x eager's samples/s)")
            if profile:
                profile_mode("compiled")
        return profiles, res, ""
    except Exception as err:  # noqa: BLE001 - a failure becomes a note; the other model still runs
        note = _describe(err)
        log(f"{case.name}: {note}")
        if res is not None:
            res.note = note
        return profiles, res, note
    finally:
        step = None
        if compile:
            torch._dynamo.reset()
        free(device)


def _brief(p: StepProfile) -> str:
    return ", ".join(f"{g} {p.groups[g]:.0f}" for g in PROFILE_GROUPS) + f" ms (total {p.total_ms:.0f})"


def _pct(x: float, total: float) -> str:
    return f"{x:.1f} ({100 * x / total:.0f} %)" if total > 0 else f"{x:.1f}"


def render_profile(profiles: list[StepProfile], notes: dict[str, str]) -> list[str]:
    """The --profile section: grouped ms (and % of the summed time) per model and mode, then the
    largest kernels/ops of each."""
    unit = profiles[0].unit if profiles else "device time"
    lines = [
        "### Where the time of one training step goes (torch.profiler)",
        "",
        f"ms per step of {unit}, grouped by name (`GROUP_RULES` in `bench/model.py`: scan = the Triton scan "
        "kernels / the scan op and its backward; matmul = aten mm/addmm/bmm/linear and cuBLAS/CUTLASS GEMMs; "
        "conv = the depthwise conv1d; norm = LayerNorm; loss = cross-entropy/log-softmax/NLL incl. the logits' "
        "float cast; optimizer = clip_grad_norm_ + AdamW; elementwise = pointwise ops, casts, copies, "
        "reductions, Inductor's fused pointwise kernels; other = the rest). wall = the profiled step's wall "
        "time (profiler overhead included).",
        "",
        "| model | batch × length | mode | " + " | ".join(PROFILE_GROUPS) + " | total (ms) | wall (ms) |",
        "|---|---|---|" + "---:|" * (len(PROFILE_GROUPS) + 2),
    ]
    for p in profiles:
        cells = " | ".join(_pct(p.groups[g], p.total_ms) for g in PROFILE_GROUPS)
        lines.append(f"| {p.preset} | {p.batch} × {p.length} | {p.mode} | {cells} | {p.total_ms:.1f} | {p.wall_ms:.1f} |")
    for preset, note in notes.items():
        lines.append(f"| {preset} | – | – | " + " | ".join("–" for _ in PROFILE_GROUPS) + f" | – | – | {note} |")
    for p in profiles:
        lines += ["", f"Largest of {p.preset} ({p.mode}):", "", "| group | kernel / op | ms per step |", "|---|---|---:|"]
        for group, name, ms in p.top:
            short = (name if len(name) <= 90 else name[:87] + "...").replace("|", "/")
            lines.append(f"| {group} | `{short}` | {ms:.2f} |")
    return lines


def _env_text(env: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in env.items())


def render_baseline(results: list[CompileResult], baseline: dict[str, str]) -> list[str]:
    """The --baseline table: eager under the baseline environment against eager and compiled now."""
    lines = [
        f"### Against the baseline `{_env_text(baseline)}` (eager, same weights and batch, same run)",
        "",
        "| model | batch × length | baseline samples/s | eager samples/s | eager ÷ baseline | compiled samples/s "
        "| compiled ÷ baseline |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        e, c = r.over_baseline(r.eager_ms), r.over_baseline(r.compiled_ms)
        lines.append(
            f"| {r.preset} | {r.batch} × {r.length} | {_fmt(r.samples_per_s(r.baseline_ms), ',.0f')} "
            f"| {_fmt(r.samples_per_s(r.eager_ms), ',.0f')} | {_fmt(e, '.2f')}{'×' if e else ''} "
            f"| {_fmt(r.samples_per_s(r.compiled_ms), ',.0f')} | {_fmt(c, '.2f')}{'×' if c else ''} |"
        )
    return lines


def render_compile(results: list[CompileResult], device: torch.device, backend: str) -> list[str]:
    """The --compile section: eager vs compiled samples/s, their ratio, compile time, loss/grad agreement."""
    lines = [
        f"### torch.compile around the scan (backend {backend}, static shapes; eager and compiled in one run)",
        "",
        "One training step as the trainer runs it (forward, cross-entropy, backward, clip, AdamW); only the model "
        "is compiled, the scan is the opaque op `audiomamba::selective_scan` (kernels/scan_op.py). "
        "Δloss and Δgrad: the first step of each, same weights and batch"
        + (" (bf16 autocast: expect ~1e-3)." if device.type == "cuda" else "."),
        "",
        "| model | params | batch × length | eager samples/s | compiled samples/s | compiled ÷ eager | eager ms/step "
        "| compiled ms/step | first compiled step (s) | max abs Δloss | max abs Δgrad / max abs grad "
        "| peak GiB eager / compiled | note |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        peak = f"{_fmt(r.eager_peak, '.2f')} / {_fmt(r.compiled_peak, '.2f')}"
        ratio = _fmt(r.ratio, ".2f") + ("×" if r.ratio else "")
        lines.append(
            f"| {r.preset} | {_fmt(r.params / 1e6 if r.params else None, '.2f')} M | {r.batch} × {r.length} "
            f"| {_fmt(r.samples_per_s(r.eager_ms), ',.0f')} | {_fmt(r.samples_per_s(r.compiled_ms), ',.0f')} | {ratio} "
            f"| {_fmt(r.eager_ms, '.1f')} | {_fmt(r.compiled_ms, '.1f')} | {_fmt(r.compile_s, '.1f')} "
            f"| {_fmt(r.loss_diff, '.2e')} | {_fmt(r.grad_rel_diff, '.2e')} | {peak} | {r.note} |"
        )
    return lines


def run_profile_compile(
    quick: bool = False,
    device: str | None = None,
    command: str = "audiomamba bench model --profile --compile",
    profile: bool = True,
    compile: bool = True,
    backend: str = "inductor",
    cases: list[Case] | None = None,
    baseline: dict[str, str] | None = None,
    mode: str = "default",
    loss_steps: int = 0,
    loss_plot: str | None = None,
    block: str = "",
) -> str:
    """``bench model --profile`` / ``--compile``: per model of the benchmark's cases (Triton scan on
    CUDA, the reference on the CPU), a grouped profile of one training step and/or eager vs
    torch.compile. The default benchmark's tables (reference-scan rows, longest-sequence sweep) are
    not run. ``block``: every level's and the centre's block of each case replaced by this block type
    (e.g. ``mamba-s4`` for the complex-LTI U-Net). Returns the markdown report."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cases = cases if cases is not None else (QUICK_CASES if quick else FULL_CASES)
    if block:
        cases = [replace(c, block=block) for c in cases]
    iters, max_s = (1, 5.0) if quick else (3, 20.0)
    profiles: list[StepProfile] = []
    results: list[CompileResult] = []
    notes: dict[str, str] = {}
    for case in cases:
        p, r, note = run_case(case, dev, iters, max_s, profile, compile, backend, profile_iters=1 if quick else 2,
                              baseline=baseline, mode=mode)
        profiles += p
        if r is not None:
            results.append(r)
        if note and profile and not p:
            notes[case.name] = note
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    from audiomamba.kernels.backend import use_triton

    scan = "Triton scan" if use_triton(torch.empty(0, device=dev)) else "reference scan"
    lines = [
        "## U-Net training step: profile and torch.compile",
        "",
        f"- device: {device_name(dev)}",
        f"- date: {now}",
        f"- command: `{command}`",
        f"- torch {torch.__version__}; {scan}; "
        f"{'bf16 autocast' if dev.type == 'cuda' else 'fp32 (CPU)'}, random tokens"
        + (f"; torch.compile mode {mode}" if compile else ""),
        "",
    ]
    if profile:
        lines += render_profile(profiles, notes) + [""]
    if compile:
        lines += render_compile(results, dev, backend) + [""]
        if baseline:
            lines += render_baseline(results, baseline) + [""]
    if loss_steps > 0 and baseline:
        curves = run_loss_curves(cases, dev, loss_steps, baseline, compile, mode, backend=backend)
        if loss_plot and any(r.curves for r in curves):
            plot_loss_curves(curves, loss_plot)
        lines += render_loss_curves(curves, baseline, loss_plot) + [""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# `bench model --compile --baseline ... --loss-steps N`: do the first N training steps learn the same?
# --------------------------------------------------------------------------------------------------


@dataclass
class LossCurves:
    """The first steps' training losses of one model: the baseline at two seeds (seed noise), eager and compiled now."""

    preset: str
    batch: int
    length: int
    curves: dict[str, list[float]]  # label -> loss per step (nats)
    note: str = ""

    def gap(self, label: str, against: str = "baseline") -> tuple[float, float] | None:
        """(mean, max) over steps of |loss[label] - loss[against]|, or None when a curve is missing."""
        a, b = self.curves.get(label), self.curves.get(against)
        if not a or not b or len(a) != len(b):
            return None
        d = [abs(x - y) for x, y in zip(a, b, strict=True)]
        return sum(d) / len(d), max(d)


def music_batches(batch: int, length: int, steps: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` (inputs, targets) pairs of μ-law tokens, (batch, length) each: random crops of one
    procedural piano piece (:mod:`audiomamba.synth`), the same for every call with the same arguments.
    Real structure to learn (unlike random tokens), so that a loss curve says something."""
    from audiomamba.synth import synthesize_piece
    from audiomamba.tokenizer import mu_law_encode, shift_right

    seconds = max(60.0, 4 * (length + 1) / 16000)
    tokens = mu_law_encode(torch.from_numpy(synthesize_piece(seconds, seed)))
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        starts = torch.randint(0, tokens.numel() - length, (batch,), generator=gen)
        targets = torch.stack([tokens[s : s + length] for s in starts.tolist()])
        out.append((shift_right(targets), targets))
    return out


def loss_curve(case: Case, device: torch.device, batches: list[tuple[torch.Tensor, torch.Tensor]], seed: int = 0,
               compiled: bool = False, mode: str = "default", env: dict[str, str] | None = None,
               backend: str = "inductor") -> list[float]:
    """Training losses of ``len(batches)`` steps from the seed-``seed`` initialisation (the trainer's
    step: :class:`TrainStep`, with the recipe's lr, warm-up and cosine decay fitted to these steps so that
    the loss moves as far as it can), eager or ``torch.compile``-d, under the environment ``env``."""
    with environment(env or {}):
        step = TrainStep(case.preset, case.batch, case.length, device, seed=seed, schedule_steps=len(batches),
                         block=case.block)
        if compiled:
            step.compile(backend, mode)
        losses = []
        for inputs, targets in batches:
            step.inputs, step.tokens = inputs.to(device), targets.to(device)
            losses.append(step())
        out = [float(v) for v in torch.stack(losses).cpu()]
    if compiled:
        torch._dynamo.reset()
    free(device)
    return out


def run_loss_curves(cases: list[Case], device: torch.device, steps: int, baseline: dict[str, str],
                    compile: bool, mode: str = "default", log: Callable[[str], None] = _progress,
                    backend: str = "inductor") -> list[LossCurves]:
    """Per model, on the same batches: the baseline (``baseline`` environment) from seeds 0 and 1, and the
    current eager [and compiled] step from seed 0. A failure becomes the model's note."""
    out = []
    for case in cases:
        res = LossCurves(case.name, case.batch, case.length, {})
        try:
            batches = music_batches(case.batch, case.length, steps)
            runs = [("baseline", 0, False, baseline), ("baseline, seed 1", 1, False, baseline), ("eager", 0, False, {})]
            runs += [("compiled", 0, True, {})] if compile else []
            for label, seed, compiled, env in runs:
                t0 = time.perf_counter()
                res.curves[label] = loss_curve(case, device, batches, seed, compiled, mode, env, backend)
                log(f"{case.name}: {steps} steps, {label}: loss {res.curves[label][0]:.3f} -> "
                    f"{res.curves[label][-1]:.3f} ({time.perf_counter() - t0:.1f} s)")
        except Exception as err:  # noqa: BLE001 - a failure becomes a note; the other model still runs
            res.note = _describe(err)
            log(f"{case.name}: loss curves: {res.note}")
        out.append(res)
    return out


def render_loss_curves(results: list[LossCurves], baseline: dict[str, str], plot: str | None) -> list[str]:
    """The --loss-steps section: per model the gap of each curve to the baseline's, against seed noise."""
    steps = max((len(c) for r in results for c in r.curves.values()), default=0)
    lines = [
        f"### The first {steps} steps' losses against the baseline `{_env_text(baseline)}` (same batches)",
        "",
        "Procedural piano crops (`bench.model.music_batches`), the trainer's step from the same seed-0 weights, "
        f"with the recipe's lr, warm-up and cosine decay fitted to {steps} steps. "
        "Seed noise: the baseline again from seed-1 weights. A curve is within seed noise when its mean and max "
        "|Δloss| to the baseline are at most the seed-1 curve's."
        + (f" Plot: `{plot}`." if plot else ""),
        "",
        "| model | batch × length | curve | loss at step 1 / last | mean abs Δloss | max abs Δloss | within seed noise |",
        "|---|---|---|---|---:|---:|---|",
    ]
    for r in results:
        noise = r.gap("baseline, seed 1")
        for label, curve in r.curves.items():
            gap = r.gap(label) if label != "baseline" else None
            verdict = ""
            if label not in ("baseline", "baseline, seed 1") and gap and noise:
                verdict = "yes" if gap[0] <= noise[0] and gap[1] <= noise[1] else "**no**"
            lines.append(f"| {r.preset} | {r.batch} × {r.length} | {label} | {curve[0]:.3f} / {curve[-1]:.3f} "
                         f"| {_fmt(gap[0] if gap else None, '.4f')} | {_fmt(gap[1] if gap else None, '.4f')} "
                         f"| {verdict} |")
        if r.note:
            lines.append(f"| {r.preset} | {r.batch} × {r.length} | failed: {r.note} | | | | |")
    return lines


def plot_loss_curves(results: list[LossCurves], path: str) -> str:
    """One panel per model: every curve's loss per step. Returns ``path``."""
    from audiomamba.train.plots import _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(1, max(len(results), 1), figsize=(6 * max(len(results), 1), 4), dpi=110, squeeze=False)
    for ax, r in zip(axes[0], results, strict=False):
        for label, curve in r.curves.items():
            ax.plot(range(1, len(curve) + 1), curve, label=label, lw=1.2,
                    ls="--" if label.startswith("baseline") else "-")
        ax.set(title=f"{r.preset} ({r.batch} × {r.length})", xlabel="step", ylabel="training loss (nats)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
