"""Generation speed: fused Triton step kernels vs the composed step, CUDA graphs vs a plain Python loop, in one run.

Run on a GPU::

    audiomamba bench generate --out bench-generate.md

Cases (random weights: speed does not depend on training):

* ``sc09-small`` (the sc09-mamba model, ~6.1 M): 2048 one-second samples at batch 2048 with CUDA
  graphs (goal <= 20 s on one H100), with the fused per-step kernels (one kernel chain per
  mamba-s6 block and one sampling kernel, :mod:`kernels.triton_mamba_step`) and with the composed
  step (``kernels.set_fused_step(False)``), side by side with the same model stepped by a plain
  Python loop (composed step); the loop is timed over a whole number of periods and extrapolated
  to 16000 steps (said so in the table);
* one stream (batch 1), one second: goal >= 16 000 samples/s (real time), fused and composed;
* ``youtubemix`` (youtubemix-mamba-s6, ~3.5 M) continuing 1 s prompts for 8 s, batched and single
  stream, fused and composed.

``--quick`` runs tiny presets for a few steps (any device; a smoke test of the driver). ``--cases``
picks a subset (``sc09``, ``stream``, ``youtubemix``; e.g. ``--cases sc09`` for the 2048-sample goal
alone); each row is logged on stderr as soon as it is timed.

Two more drivers (issue 18), each with ``--quick`` for a CPU smoke run:

* ``audiomamba bench generate --matrix``: :func:`run_matrix`, the ``audiomamba generate`` path end
  to end (weights loaded onto the device, sampling, noise flags, SaShiMi filter, WAVs, index,
  spectrograms: :func:`audiomamba.generate.generate_to_folder` into a temporary folder) per preset
  x block type x batch, with the wall time and the sampling time side by side;
* ``audiomamba bench generate --lti-cutoff``: :func:`run_lti_cutoff`, fused vs composed step of
  ``mamba-s4`` models per batch with CUDA graphs, and the batch where the composed step becomes
  faster (:data:`audiomamba.model.ssm.FUSED_COMPLEX_LTI_MAX_BATCH`).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from audiomamba.bench.device import device_name, free, is_oom, sync
from audiomamba.bench.model import environment
from audiomamba.kernels.backend import PDL_AUTO_MAX_ROWS

import audiomamba.generate as _generate_pkg
from audiomamba import kernels
from audiomamba.generate import Generated, SamplingConfig, generate_to_folder, generate_tokens
from audiomamba.generate.output import outside_sampling_line
from audiomamba.generate.stepper import Stepper, step_period
from audiomamba.model import build_model, load_model_preset
from audiomamba.model import ssm as _ssm
from audiomamba.train.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, model_from_state, save_checkpoint


@dataclass
class Row:
    case: str
    mode: str
    batch: int
    seconds_audio: float
    wall_s: float
    note: str = ""

    @property
    def samples_per_s(self) -> float:
        return self.batch * self.seconds_audio * 16000 / self.wall_s


def _model(preset: str, dev: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(load_model_preset(preset)).to(dev).eval()


def _device_line(dev: torch.device, rest: str) -> str:
    """The first line of every report: device, torch version, date, then ``rest``."""
    return f"Device: {device_name(dev)}; torch {torch.__version__}; date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {rest}"


def time_generate(model, n, seconds, batch, dev, graph, bf16, prompt_s=0.0) -> float:
    """Wall seconds to generate ``n`` samples of ``seconds`` (prompt included), synchronised."""
    length = int(seconds * 16000)
    prompts = None
    if prompt_s:
        prompts = torch.randint(0, 256, (n, int(prompt_s * 16000)), generator=torch.Generator().manual_seed(0))
    sync(dev)
    t0 = time.perf_counter()
    generate_tokens(model, n, length, batch, SamplingConfig(), 0, prompts, dev, use_graph=graph, bf16=bf16, progress=False)
    sync(dev)
    return time.perf_counter() - t0


def same_tokens_note(model, batch, dev, graph, bf16, env: dict[str, str], seconds: float = 0.1) -> str:
    """Generate ``seconds`` with the same seed with and without ``env`` (e.g. PDL, which must change no
    sample) and say whether the tokens are identical."""
    length = int(seconds * 16000)

    def tokens() -> torch.Tensor:
        return generate_tokens(model, batch, length, batch, SamplingConfig(), 0, None, dev, use_graph=graph, bf16=bf16,
                               progress=False).tokens.cpu()

    base = tokens()
    with environment(env):
        other = tokens()
    differ = int((base != other).sum())
    return f"tokens of {seconds:g} s identical to the default" if differ == 0 else \
        f"{differ} of {base.numel()} tokens differ from the default (same seed)"


def time_eager_steps(model, batch, steps, dev, bf16) -> float:
    """Wall seconds per full-rate step of the plain Python loop (measured over ``steps`` steps)."""
    stepper = Stepper(model, batch, dev, SamplingConfig(), use_graph=False,
                      autocast_dtype=torch.bfloat16 if bf16 else None)
    stepper.run(None, step_period(model))  # warm-up (kernel compilation)
    sync(dev)
    t0 = time.perf_counter()
    stepper.run(None, steps)
    sync(dev)
    return (time.perf_counter() - t0) / steps


@contextlib.contextmanager
def _fused(on: bool):
    """Fused per-step Triton kernels on or off (kernels.set_fused_step) inside the block, restored after."""
    kernels.set_fused_step(on)
    try:
        yield
    finally:
        kernels.set_fused_step(None)


CASES = ("sc09", "stream", "youtubemix")  # `bench generate --cases`: batched SC09, one SC09 stream, YouTubeMix


def _log(msg: str) -> None:
    print(f"[bench generate] {msg}", file=sys.stderr, flush=True)


def run(quick: bool = False, device: str | None = None, command: str = "audiomamba bench generate",
        bf16: bool = False, cases: tuple[str, ...] = CASES, log: Callable[[str], None] = _log,
        step_precisions: tuple[str, ...] = (), pdl: bool = False) -> str:
    """The default table: ``cases`` of :data:`CASES`, fused vs composed step, each row logged as it is timed.
    ``step_precisions``: for the SC09 cases, also the fused step under each ``AUDIOMAMBA_STEP_PRECISION``
    (e.g. ``bf16``), in the same process, for a same-run ratio; ``pdl``: also with ``AUDIOMAMBA_PDL=1`` and ``=0``
    (programmatic dependent launch of the step kernels always and never; by default one stream has it)."""
    variants = [(f"{p} tl.dot", {"AUDIOMAMBA_STEP_PRECISION": p}) for p in step_precisions]
    # PDL is on by default for one stream (AUDIOMAMBA_PDL unset: fewer than 16 rows), off for batches
    variants += [("PDL", {"AUDIOMAMBA_PDL": "1"}), ("no PDL", {"AUDIOMAMBA_PDL": "0"})] if pdl else []

    def note(name: str, env: dict[str, str], batch: int) -> str:  # launch changes must change no sample: check it
        return same_tokens_note(m, batch, dev, graph, bf16, env) if "AUDIOMAMBA_STEP_PRECISION" not in env else ""

    unknown = [c for c in cases if c not in CASES]
    if unknown or not cases:
        raise ValueError(f"unknown case(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(CASES)}")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    graph = dev.type == "cuda"
    stepping = "CUDA graph" if graph else "eager"
    with _fused(True):
        fusable = kernels.use_fused_step(torch.zeros(1, device=dev))
    fused_label = f"{stepping} + fused kernels" if fusable else f"{stepping} (fused kernels need the Triton backend)"
    plain_label = f"{stepping}, composed step"
    rows: list[Row] = []

    def add(row: Row) -> None:
        rows.append(row)
        log(f"{row.case}, {row.mode}, batch {row.batch}: {row.wall_s:.2f} s ({row.samples_per_s / 16000:,.1f}x real time)")

    sc09, ytm = ("sc09-small-tiny", "youtubemix-tiny") if quick else ("sc09-small", "youtubemix")
    n_sc09, sec, eager_steps = (4, 0.01, 16) if quick else (2048, 1.0, 256)
    steps = int(sec * 16000)
    if "sc09" in cases or "stream" in cases:
        m = _model(sc09, dev)
    if "sc09" in cases:
        for fused, label in ((True, fused_label), (False, plain_label)):
            with _fused(fused):
                # warm-up/compile once at the real batch, then time the whole job
                time_generate(m, n_sc09, step_period(m) / 16000, n_sc09, dev, graph, bf16)
                add(Row(f"{sc09} unconditional", label, n_sc09, sec, time_generate(m, n_sc09, sec, n_sc09, dev,
                                                                                  graph, bf16)))
        for name, env in variants:
            with _fused(True), environment(env):
                time_generate(m, n_sc09, step_period(m) / 16000, n_sc09, dev, graph, bf16)
                wall_s = time_generate(m, n_sc09, sec, n_sc09, dev, graph, bf16)
            with _fused(True):
                add(Row(f"{sc09} unconditional", f"{fused_label}, {name}", n_sc09, sec, wall_s, note(name, env, n_sc09)))
        with _fused(False):
            per_step = time_eager_steps(m, n_sc09, eager_steps, dev, bf16)
        add(Row(f"{sc09} unconditional", "plain Python loop, composed step", n_sc09, sec, per_step * steps,
                f"timed over {eager_steps} steps, extrapolated to {steps}"))
    if "stream" in cases:
        for fused, label in ((True, fused_label), (False, plain_label)):
            with _fused(fused):
                time_generate(m, 1, step_period(m) / 16000, 1, dev, graph, bf16)  # warm-up: the batch-1 kernels
                add(Row(f"{sc09} single stream", label, 1, sec, time_generate(m, 1, sec, 1, dev, graph, bf16)))
        for name, env in variants:
            with _fused(True), environment(env):
                time_generate(m, 1, step_period(m) / 16000, 1, dev, graph, bf16)
                wall_s = time_generate(m, 1, sec, 1, dev, graph, bf16)
            with _fused(True):
                add(Row(f"{sc09} single stream", f"{fused_label}, {name}", 1, sec, wall_s, note(name, env, 1)))
    m = None
    n_y, sec_y, prompt_y = (2, 0.05, 0.02) if quick else (16, 8.0, 1.0)
    if "youtubemix" in cases:
        m = _model(ytm, dev)
        case = f"{ytm} {prompt_y:g} s prompt -> {sec_y:g} s"
        for fused, label in ((True, fused_label), (False, plain_label)):
            with _fused(fused):
                for b in (n_y, 1):  # warm-up: compile the kernels for both batch sizes
                    time_generate(m, b, 2 * step_period(m) / 16000, b, dev, graph, bf16)
                add(Row(case, label, n_y, sec_y, time_generate(m, n_y, sec_y, n_y, dev, graph, bf16, prompt_y)))
                add(Row(case, label, 1, sec_y, time_generate(m, 1, sec_y, 1, dev, graph, bf16, prompt_y)))
    lines = [
        _device_line(dev, f"precision {'bf16 autocast (fused kernels off)' if bf16 else 'fp32'}"
                     + _step_precision_note()),
        f"Command: `{command}`",
        "",
        "| case | stepping | batch | audio per sample (s) | wall (s) | samples/s | × real time | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.case} | {r.mode} | {r.batch} | {r.seconds_audio:g} | {r.wall_s:.2f} | "
                     f"{r.samples_per_s:,.0f} | {r.samples_per_s / 16000:,.1f} | {r.note} |")
    lines.append("")

    def wall(case: str, mode: str, batch: int) -> float:
        return next(r.wall_s for r in rows if r.case.startswith(case) and r.mode == mode and r.batch == batch)

    loop = "plain Python loop, composed step"
    if "sc09" in cases:
        f, c, p = (wall(sc09, mode, n_sc09) for mode in (fused_label, plain_label, loop))
        lines.append(f"Same run, {sc09} batch {n_sc09}: fused kernels vs composed step {c / f:.2f}× faster; "
                     f"vs the plain Python loop {p / f:.1f}× faster (composed step: graph vs loop {p / c:.1f}×).")
    for name, _ in variants:
        for case, batch in (("sc09", n_sc09), ("stream", 1)):
            if case in cases:
                ratio = wall(sc09, fused_label, batch) / wall(sc09, f"{fused_label}, {name}", batch)
                pdl_default = "PDL" if batch < PDL_AUTO_MAX_ROWS else "no PDL"
                lines.append(f"{sc09} batch {batch}: fused step with {name} {ratio:.2f}× the "
                             f"default ({_step_precision_note() or 'tf32 on a GPU'}, {pdl_default}).")
    if "stream" in cases:
        lines.append(f"Single stream: fused vs composed {wall(sc09, plain_label, 1) / wall(sc09, fused_label, 1):.2f}×.")
    if "youtubemix" in cases:
        lines.append(f"{ytm}: fused vs composed, batch {n_y} "
                     f"{wall(ytm, plain_label, n_y) / wall(ytm, fused_label, n_y):.2f}×, one stream "
                     f"{wall(ytm, plain_label, 1) / wall(ytm, fused_label, 1):.2f}×.")
    return "\n".join(lines) + "\n"


def _step_precision_note() -> str:
    """The fused step's matmul operands (``AUDIOMAMBA_STEP_PRECISION``), when set."""
    value = os.environ.get("AUDIOMAMBA_STEP_PRECISION", "")
    return f"; AUDIOMAMBA_STEP_PRECISION={value}" if value else ""


# --------------------------------------------------------------------------------------------------
# `bench generate --matrix`: the CLI's path end to end, per preset x block type x batch (issue 18)
# --------------------------------------------------------------------------------------------------

MATRIX_PRESETS = ("sc09-small", "sc09-large", "youtubemix")
MATRIX_BLOCKS = ("mamba-s6", "mamba-s4", "mamba-s4-real")
MATRIX_BATCHES = (1, 16, 256, 2048)
LTI_PRESETS = ("sc09-small", "youtubemix")
LTI_BATCHES = (16, 64, 128, 256, 512, 1024, 2048)
QUICK_BATCHES = (1, 2)
QUICK_SECONDS = 8 / 16000  # 8 steps: two periods of the tiny presets
#: full-rate steps after the first period that the probe times (steady per-step rate, for the cap)
PROBE_STEPS = 256


def quick_preset(name: str) -> str:
    """The ``-tiny`` CPU variant of a preset (``--quick``), or the name itself when there is none."""
    from audiomamba.model.config import list_model_presets

    return name if name.endswith("-tiny") or f"{name}-tiny" not in list_model_presets() else f"{name}-tiny"


def preset_with_block(preset: str, block: str) -> dict:
    """The preset's ``[model]`` table with every level's and the centre's block replaced by ``block``
    (what a recipe's ``level_blocks = [block, ...]`` and ``center_block = block`` do)."""
    from audiomamba.recipe import ModelCfg, resolve_model_config

    levels = len(load_model_preset(preset)["model"]["levels"])
    return resolve_model_config(ModelCfg(preset=preset, level_blocks=[block] * levels, center_block=block))


def add_model_args(parser, batch: int = 2048) -> None:
    """The ``--preset``, ``--block`` and ``--batch`` options of the generation-step tools (``profile_generate``,
    ``step_tiles``): a preset whose every block is replaced by one block type, stepped at one batch size."""
    parser.add_argument("--preset", default="sc09-small")
    parser.add_argument("--block", default="mamba-s6", help="block type replacing every block of the preset")
    parser.add_argument("--batch", type=int, default=batch)


def cuda_model(args, tool: str) -> tuple[torch.device, torch.nn.Module] | None:
    """(device, model) for :func:`add_model_args`' options: the random-weight model on the GPU in eval mode, or None
    after saying that ``tool`` needs a CUDA device."""
    if not torch.cuda.is_available():
        print(f"{tool} needs a CUDA device")
        return None
    dev = torch.device("cuda")
    torch.manual_seed(0)
    return dev, build_model(preset_with_block(args.preset, args.block)).to(dev).eval()


def steady_step_seconds(model, batch: int, dev: torch.device, steps: int, graph: bool) -> float:
    """Seconds per full-rate step at steady state: a :class:`Stepper` runs one period (kernels
    compiled and, with ``graph``, the period captured and replayed once), then whole periods covering
    at least ``steps`` steps are timed (graph replays, or the eager loop). The generation's last period, which
    checks the 16-bit states once (~25 ms at batch 2048 on an H100, 2026-12-05), is not run."""
    period = step_period(model)
    timed = max(1, math.ceil(steps / period))
    stepper = Stepper(model, batch, dev, SamplingConfig(), use_graph=graph, seed=0)
    it = stepper.periods(None, (timed + 2) * period)
    next(it)
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(timed):
        next(it)
    sync(dev)
    seconds = time.perf_counter() - t0
    it.close()
    return seconds / (timed * period)


@contextlib.contextmanager
def capped_sampling(steps: int | None):
    """Inside the block, :func:`generate_to_folder` samples only ``steps`` tokens per row and repeats
    them up to the length asked for, so the files are written at full length (``None``: no cap).

    The sampled part's time is what :class:`Generated` ``.seconds`` reports; the caller extrapolates
    it to the full length.
    """
    if steps is None:
        yield
        return
    real = _generate_pkg.generate_tokens

    def capped(model, n, length, batch, *args, **kwargs) -> Generated:
        gen = real(model, n, min(steps, length), batch, *args, **kwargs)
        reps = -(-length // gen.tokens.shape[1])
        return Generated(gen.tokens.repeat(1, reps)[:, :length].contiguous(),
                         gen.logp.repeat(1, reps)[:, :length].contiguous(), gen.prompt_len, gen.seconds,
                         gen.startup)

    _generate_pkg.generate_tokens = capped
    try:
        yield
    finally:
        _generate_pkg.generate_tokens = real


def seconds_cell(seconds: float) -> str:
    """A time for a table cell: milliseconds stay visible (a quick case samples in a few ms), long runs get 2 decimals."""
    return f"{seconds:.4f}" if abs(seconds) < 1 else f"{seconds:.2f}"


def ratio_cell(ratio: float) -> str:
    """A × real time for a table cell: 2 decimals, or 2 significant digits below 0.1 (a tiny model on a busy CPU runs
    at a few thousandths of real time, which 2 decimals would show as 0.00)."""
    return f"{ratio:,.2f}" if abs(ratio) >= 0.1 else f"{ratio:.2g}"


@dataclass
class MatrixRow:
    preset: str
    block: str
    batch: int
    seconds_audio: float
    wall_s: float | None = None  # None: the case did not finish (``failed`` and the note say why)
    sampling_s: float | None = None
    note: str = ""
    failed: str = ""  # "OOM" (out of GPU memory) or "error" (any other exception) when wall_s is None
    parts: str = ""  # where the rest went (``outside_sampling_line``), shown after the note
    step_s: float = 0.0  # the probe's steady seconds per full-rate step (graph replays after the first period)

    @property
    def rest_s(self) -> float | None:
        return None if self.wall_s is None else self.wall_s - self.sampling_s

    def cells(self) -> list[str]:
        audio = self.batch * self.seconds_audio * 16000
        if self.wall_s is None:
            return [self.preset, f"`{self.block}`", str(self.batch), f"{self.seconds_audio:g}",
                    *[self.failed] * 3, "-", "-", "-", "-", self.note]
        return [self.preset, f"`{self.block}`", str(self.batch), f"{self.seconds_audio:g}", seconds_cell(self.wall_s),
                seconds_cell(self.sampling_s), seconds_cell(self.rest_s), f"{audio / self.wall_s:,.0f}",
                ratio_cell(audio / self.wall_s / 16000), ratio_cell(audio / self.sampling_s / 16000),
                ratio_cell(self.batch / (self.step_s * 16000)) if self.step_s > 0 else "-",
                "; ".join(x for x in (self.note, self.parts) if x)]


MATRIX_HEADER = ("| preset | block | batch | audio per sample (s) | wall (s) | sampling (s) | rest (s) | "
                 "samples/s (wall) | × real time (wall) | × real time (sampling) | × real time (steady) | note |")


def checkpoint_like_training(model: torch.nn.Module, config: dict) -> dict:
    """A checkpoint of ``model`` shaped as ``audiomamba train`` writes one (its weights, a float32 EMA of them,
    AdamW's state after one step, the config), so that loading it costs what loading a trained run's does: the
    optimizer's moments are records in the file even when only the weights are read."""
    weights = model.state_dict()
    opt = torch.optim.AdamW(model.parameters(), weight_decay=0.0)  # zero gradients: the weights stay as they are
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    model.zero_grad(set_to_none=True)
    return {"format": CHECKPOINT_FORMAT, "step": 1, "model": weights, "optimizer": opt.state_dict(), "recipe": {},
            "model_config": config, "ema": {k: v.detach().float().clone() for k, v in weights.items()
                                            if v.is_floating_point()}}


def matrix_case(preset: str, block: str, batch: int, seconds: float, max_seconds: float, dev: torch.device,
                weights: Path, probe_model, out: Path, bf16: bool = False) -> MatrixRow:
    """One case of the matrix; ``weights``: the random model's checkpoint (:func:`checkpoint_like_training`).

    Untimed: a probe with ``probe_model`` (already on ``dev``) at this batch compiles the kernels and
    measures the steady per-step time. Timed (the wall): loading ``weights`` onto ``dev`` as
    ``audiomamba generate`` does (:func:`load_checkpoint` mapped, :func:`model_from_state`), then
    :func:`generate_to_folder` with the SaShiMi filter into ``out``. When the probe predicts more than
    ``max_seconds`` of sampling, only whole periods worth about ``max_seconds`` are sampled
    (:func:`capped_sampling`) and the sampling time is extrapolated at the probe's rate (the note says so); the
    files are still written at full length, after sampling (uncapped, while sampling, as ``audiomamba generate``
    writes them).
    """
    graph = dev.type == "cuda"
    full = int(round(seconds * 16000))
    period = step_period(probe_model)
    per_step = steady_step_seconds(probe_model, batch, dev, min(PROBE_STEPS, full), graph) if full else 0.0
    steps = None  # sampled steps when capped: whole periods, fewer than the full length
    if per_step * full > max_seconds:
        steps = max(period, int(max_seconds / per_step) // period * period)
        steps = steps if steps < full else None
    free(dev)
    sync(dev)
    t0 = time.perf_counter()
    model = model_from_state(load_checkpoint(weights, mmap=True), dev)
    loaded = time.perf_counter() - t0
    timings: dict[str, float] = {}
    # capped, the WAVs are written after sampling (the sampled part is repeated to full length afterwards, so the
    # WavSink could not write them while sampling); uncapped as ``audiomamba generate`` writes them
    with capped_sampling(steps):
        _, gen = generate_to_folder(model, out, batch, seconds, batch, SamplingConfig(), 0, "minmax",
                                    sashimi_filter=True, device=dev, bf16=bf16, progress=False, timings=timings,
                                    write_ahead=None if steps is None else False)
    sync(dev)
    wall = time.perf_counter() - t0
    sampling, note = gen.seconds, ""
    if steps is not None:
        # the sampled part's own rate after its start-up (what the rest of the clip would get), else the probe's
        startup = sum(gen.startup.values())
        own = (gen.seconds - startup) / steps if startup > 0 else 0.0
        rate, source = (own, "the sampled part's own rate after its start-up") if own > 0 else (per_step, "the probe's")
        extra = (full - steps) * rate
        sampling, wall = sampling + extra, wall + extra
        note = (f"sampling timed over {steps} of {full} steps, extrapolated at {source}, {rate * 1e3:.3f} ms/step "
                f"(the probe's steady {per_step * 1e3:.3f}); files written at full length, after sampling")
    del model, gen
    shutil.rmtree(out, ignore_errors=True)
    return MatrixRow(preset, block, batch, seconds, wall, sampling, note, parts=outside_sampling_line(loaded, timings),
                     step_s=per_step)


def groups_note(dev: torch.device) -> str:
    """How the stepper splits a batch into row groups on streams here (``stepper.step_groups``), its step states'
    dtype (``AUDIOMAMBA_STEP_STATES``) and whether one stream's runs of blocks take one launch each
    (``AUDIOMAMBA_STEP_RUNS``), for a report header."""
    from audiomamba.kernels.triton_mamba_run import runs_mode
    from audiomamba.kernels.triton_mamba_step import default_precision

    from audiomamba.generate import stepper

    mode = runs_mode()
    chosen = os.environ.get("AUDIOMAMBA_STEP_STATES", "").strip().lower()
    states = (f"; step states: AUDIOMAMBA_STEP_STATES={chosen}" if chosen not in ("", "auto") else
              f"; step states: auto (float16 for a GPU group of {stepper.FP16_STATES_MIN_BATCH}+ rows, else float32)")
    states += _step_precision_note() or (f"; batched step tiles: {default_precision()} (AUDIOMAMBA_STEP_PRECISION "
                                         "unset)" if dev.type == "cuda" else "")
    runs = states + ("; block runs: per-block launches" if mode == "0" else
            ("; block runs: every run of Mamba blocks on a GPU, one cluster each where it fits, else split "
             "(AUDIOMAMBA_STEP_RUNS unset; fewer than 16 rows)")
            if mode == "auto" else
            f"; block runs: AUDIOMAMBA_STEP_RUNS={mode} (fewer than 16 rows)")
    overlap = os.environ.get("AUDIOMAMBA_STEP_OVERLAP", "").strip()
    said = f"AUDIOMAMBA_STEP_OVERLAP={overlap}" if overlap else "AUDIOMAMBA_STEP_OVERLAP unset"
    runs += (f"; inner levels: on side streams ({said})" if stepper.overlap_enabled(dev) else
             f"; inner levels: inline ({said})")
    head = os.environ.get("AUDIOMAMBA_STEP_HEAD", "").strip()
    head_said = f"AUDIOMAMBA_STEP_HEAD={head}" if head else "AUDIOMAMBA_STEP_HEAD unset"
    runs += (f"; step ends: head, draw and next embedding in one launch ({head_said})" if stepper.head_draw_enabled()
             else f"; step ends: head, draw and embedding apart ({head_said})")
    if os.environ.get("AUDIOMAMBA_STEP_GROUPS", "").strip().lower() not in ("", "auto"):
        return f"row groups: AUDIOMAMBA_STEP_GROUPS={os.environ['AUDIOMAMBA_STEP_GROUPS']}" + runs
    if dev.type != "cuda":
        return "row groups: none (CPU)" + runs
    return (f"row groups: {stepper.AUTO_GROUP_ROWS} rows each, at most {stepper.AUTO_GROUPS_MAX}, from "
            f"{stepper.AUTO_GROUPS_MIN_BATCH} rows (one group for complex states)" + runs)


def _failure_note(err: BaseException, batch: int) -> str:
    """One line for a case that failed: out of GPU memory, or the exception (the run goes on)."""
    first = (str(err).strip().splitlines() or [""])[0][:90].rstrip(".").replace("|", "/")
    if is_oom(err):
        return f"out of GPU memory at batch {batch} ({first})"
    return f"{type(err).__name__} at batch {batch}: {first}"


def render_matrix(rows: list[MatrixRow], header: list[str], total: int) -> str:
    lines = [*header, "", MATRIX_HEADER, "|" + "---|" * 12]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    lines.append("")
    done = [r for r in rows if r.wall_s is not None]
    failed = sum(r.failed == "error" for r in rows)
    lines.append(f"{len(rows)} of {total} cases; {sum(r.failed == 'OOM' for r in rows)} out of memory (OOM); "
                 + (f"{failed} failed (error, see the note); " if failed else "")
                 + f"{sum(bool(r.note) for r in done)} extrapolated (note).")
    if done:
        share = [r.rest_s / r.wall_s for r in done]
        worst = max(done, key=lambda r: r.rest_s / r.wall_s)
        lines.append(f"The rest (loading the weights, noise flags, filter, WAVs, index, spectrograms) is "
                     f"{min(share):.0%}-{max(share):.0%} of the wall; most for {worst.preset} `{worst.block}` "
                     f"batch {worst.batch} ({worst.rest_s:.2f} of {worst.wall_s:.2f} s).")
        for preset in dict.fromkeys(r.preset for r in done):
            for block in dict.fromkeys(r.block for r in done if r.preset == preset):
                cells = [f"{r.batch}: {r.batch * r.seconds_audio * 16000 / r.wall_s:,.0f}"
                         for r in done if r.preset == preset and r.block == block]
                lines.append(f"- {preset} `{block}`, samples/s by the wall per batch: {', '.join(cells)}")
    return "\n".join(lines) + "\n"


def run_matrix(presets=MATRIX_PRESETS, blocks=MATRIX_BLOCKS, batches=MATRIX_BATCHES, seconds: float = 1.0,
               max_seconds: float = 5.0, device: str | None = None, command: str = "audiomamba bench generate --matrix",
               bf16: bool = False, log: Callable[[str], None] = print,
               on_update: Callable[[str], None] | None = None) -> str:
    """The CLI's generation path per preset x block x batch (:func:`matrix_case`); a Markdown report.

    A case that runs out of GPU memory gets an OOM row and the run goes on. ``on_update(report)``
    gets the report so far after every case (the CLI rewrites ``--out`` with it).
    """
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    with _fused(True):
        fusable = kernels.use_fused_step(torch.zeros(1, device=dev))
    header = [
        _device_line(dev, f"{'bf16 autocast' if bf16 else 'fp32'}; stepping: {'CUDA graphs' if dev.type == 'cuda' else 'eager'}, "
                     f"{'fused step kernels' if fusable and not bf16 else 'composed step'} "
                     f"(`mamba-s4` fused up to batch {_ssm.FUSED_COMPLEX_LTI_MAX_BATCH}); {groups_note(dev)}"),
        f"Command: `{command}`",
        "",
        "Random weights in a checkpoint shaped as `audiomamba train` writes one (weights, EMA, AdamW state). "
        "wall = loading the weights onto the device + `generate_to_folder` (sampling, noise flags, "
        "SaShiMi filter, WAVs, index.csv/json, spectrograms), the path of `audiomamba generate` without a "
        "classifier; sampling = the time it reports (with the first period's eager warm-up and CUDA-graph capture); "
        "rest = wall - sampling; steady = the untimed probe's rate once the period is captured (graph replays of "
        "whole periods: what a long clip or a live stream gets after its start-up). Kernels are compiled before each "
        f"case is timed; sampling is capped at about {max_seconds:g} s per case (extrapolated rows say so in the note).",
    ]
    import matplotlib.figure  # noqa: F401 - imported before the first case is timed, not inside it

    rows: list[MatrixRow] = []
    total = len(presets) * len(blocks) * len(batches)
    tmp = Path(tempfile.mkdtemp(prefix="bench-generate-matrix-"))
    try:
        for preset in presets:
            for block in blocks:
                torch.manual_seed(0)
                cpu_model = build_model(preset_with_block(preset, block))
                weights = tmp / f"{preset}-{block}.pt"
                save_checkpoint(weights, checkpoint_like_training(cpu_model, preset_with_block(preset, block)))
                probe = None
                for batch in batches:
                    try:
                        if probe is None:
                            probe = cpu_model.to(dev).eval()
                        row = matrix_case(preset, block, batch, seconds, max_seconds, dev, weights, probe,
                                          tmp / f"{preset}-{block}-{batch}", bf16)
                    except Exception as err:  # noqa: BLE001 - one failed case must not end a GPU session's run
                        row = MatrixRow(preset, block, batch, seconds, note=_failure_note(err, batch),
                                        failed="OOM" if is_oom(err) else "error")
                    shutil.rmtree(tmp / f"{preset}-{block}-{batch}", ignore_errors=True)
                    free(dev)
                    rows.append(row)
                    wall = (f"{row.failed}: {row.note}" if row.wall_s is None
                            else f"wall {row.wall_s:.2f} s, sampling {row.sampling_s:.2f} s")
                    log(f"[{len(rows)}/{total}] {preset} {block} batch {batch}: {wall}" + (" (extrapolated)" if row.note and row.wall_s else ""))
                    if on_update is not None:
                        on_update(render_matrix(rows, header, total))
                del probe, cpu_model
                free(dev)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return render_matrix(rows, header, total)


# --------------------------------------------------------------------------------------------------
# `bench generate --lti-cutoff`: where the fused complex-LTI step stops paying (issue 18)
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _no_lti_cutoff():
    """The fused ``mamba-s4`` step at every batch inside the block (the cut-off lifted, restored after)."""
    saved = _ssm.FUSED_COMPLEX_LTI_MAX_BATCH
    _ssm.FUSED_COMPLEX_LTI_MAX_BATCH = 1 << 62
    try:
        yield
    finally:
        _ssm.FUSED_COMPLEX_LTI_MAX_BATCH = saved


def largest_fused_batch(speedups: dict[int, float | None]) -> int | None:
    """Largest batch up to which the fused step was faster at every measured batch (None: not even the smallest)."""
    best = None
    for batch in sorted(speedups):
        if speedups[batch] is None or speedups[batch] < 1.0:
            break
        best = batch
    return best


def run_lti_cutoff(presets=LTI_PRESETS, batches=LTI_BATCHES, steps: int = 1024, device: str | None = None,
                   command: str = "audiomamba bench generate --lti-cutoff", log: Callable[[str], None] = print) -> str:
    """Fused vs composed step of ``mamba-s4`` models (every block replaced) per batch, CUDA graphs.

    Per preset and batch, :func:`steady_step_seconds` over ``steps`` steps (whole periods after one
    untimed period) with the fused kernels (cut-off lifted) and with the composed step; the report
    gives ms/step, the speed-up and the largest batch up to which fused was faster, which is the
    value for :data:`audiomamba.model.ssm.FUSED_COMPLEX_LTI_MAX_BATCH`.
    """
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    graph = dev.type == "cuda"
    with _fused(True):
        fusable = kernels.use_fused_step(torch.zeros(1, device=dev))
    lines = [
        _device_line(dev, f"fp32; {'CUDA graphs' if graph else 'eager'}"),
        f"Command: `{command}`",
        "",
        f"Every block `mamba-s4` (complex LTI), random weights; ms per full-rate step of the whole model over "
        f"about {steps} steps after one untimed period; fused = `kernels.set_fused_step(True)` with the batch "
        f"cut-off lifted, composed = `set_fused_step(False)`; speed-up = composed / fused.",
    ]
    if not fusable:
        lines.append("**The fused kernels need the Triton backend on a GPU: both columns ran the composed step "
                     "(a smoke run; the ratios are noise).**")
    lines += ["", "| preset | batch | fused (ms/step) | composed (ms/step) | speed-up | faster |", "|---|---:|---:|---:|---:|---|"]
    cutoffs: dict[str, int | None] = {}
    summary = []
    for preset in presets:
        torch.manual_seed(0)
        model = build_model(preset_with_block(preset, "mamba-s4")).to(dev).eval()
        speedups: dict[int, float | None] = {}
        for batch in batches:
            ms, failed, note = {}, "", ""
            try:
                for fused in (True, False):
                    with _fused(fused), _no_lti_cutoff():
                        ms[fused] = 1e3 * steady_step_seconds(model, batch, dev, steps, graph)
                    free(dev)
            except Exception as err:  # noqa: BLE001 - one failed case must not end a GPU session's run
                failed, note = ("OOM" if is_oom(err) else "error"), _failure_note(err, batch)
            if failed:
                free(dev)
                speedups[batch] = None
                lines.append(f"| {preset} | {batch} | {failed} | {failed} | - | {note} |")
                log(f"{preset} batch {batch}: {note}")
                continue
            speedups[batch] = ms[False] / ms[True]
            lines.append(f"| {preset} | {batch} | {ms[True]:.3f} | {ms[False]:.3f} | {speedups[batch]:.2f}× | "
                         f"{'fused' if speedups[batch] >= 1 else 'composed'} |")
            log(f"{preset} batch {batch}: fused {ms[True]:.3f} ms/step, composed {ms[False]:.3f}, "
                f"speed-up {speedups[batch]:.2f}×")
        del model
        free(dev)
        cutoffs[preset] = largest_fused_batch(speedups)
        slower = [b for b in sorted(speedups) if speedups[b] is not None and speedups[b] < 1.0]
        cut = cutoffs[preset]
        if cut is None:
            summary.append(f"- {preset}: composed faster already at batch {min(batches)}")
        elif cut == max(batches):
            summary.append(f"- {preset}: fused faster at every measured batch (up to {cut})")
        else:
            first = min(b for b in sorted(speedups) if b > cut)
            summary.append(f"- {preset}: fused faster up to batch {cut}, not at {first} (cross-over between "
                           f"{cut} and {first})" + (f"; composed faster at {', '.join(map(str, slower))}" if slower else ""))
    lines += ["", "Measured cross-over:", *summary]
    current = _ssm.FUSED_COMPLEX_LTI_MAX_BATCH
    if not fusable:
        lines.append(f"No cut-off measured (no fused kernels here); it stays {current}.")
    elif any(c is None for c in cutoffs.values()):
        lines.append(f"**Cut-off: the fused `mamba-s4` step is slower even at batch {min(batches)}**: "
                     f"set `FUSED_COMPLEX_LTI_MAX_BATCH` below it (now {current}, `audiomamba/model/ssm.py`).")
    else:
        value = min(cutoffs.values())
        above = " (fused was never slower: larger batches were not measured)" if value == max(batches) else ""
        lines.append(f"**Measured cut-off: `FUSED_COMPLEX_LTI_MAX_BATCH = {value}`**{above} "
                     f"(now {current}, `audiomamba/model/ssm.py`): the largest batch up to which fused was "
                     f"faster on every preset.")
    return "\n".join(lines) + "\n"
