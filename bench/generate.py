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

``--quick`` runs tiny presets for a few steps (any device; a smoke test of the driver).
"""

from __future__ import annotations

import contextlib
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import torch

from audiomamba import kernels
from audiomamba.generate import SamplingConfig, generate_tokens
from audiomamba.generate.stepper import Stepper, step_period
from audiomamba.model import build_model, load_model_preset


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


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _model(preset: str, dev: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(load_model_preset(preset)).to(dev).eval()


def time_generate(model, n, seconds, batch, dev, graph, bf16, prompt_s=0.0) -> float:
    """Wall seconds to generate ``n`` samples of ``seconds`` (prompt included), synchronised."""
    length = int(seconds * 16000)
    prompts = None
    if prompt_s:
        prompts = torch.randint(0, 256, (n, int(prompt_s * 16000)), generator=torch.Generator().manual_seed(0))
    _sync(dev)
    t0 = time.perf_counter()
    generate_tokens(model, n, length, batch, SamplingConfig(), 0, prompts, dev, use_graph=graph, bf16=bf16, progress=False)
    _sync(dev)
    return time.perf_counter() - t0


def time_eager_steps(model, batch, steps, dev, bf16) -> float:
    """Wall seconds per full-rate step of the plain Python loop (measured over ``steps`` steps)."""
    stepper = Stepper(model, batch, dev, SamplingConfig(), use_graph=False,
                      autocast_dtype=torch.bfloat16 if bf16 else None)
    stepper.run(None, step_period(model))  # warm-up (kernel compilation)
    _sync(dev)
    t0 = time.perf_counter()
    stepper.run(None, steps)
    _sync(dev)
    return (time.perf_counter() - t0) / steps


@contextlib.contextmanager
def _fused(on: bool):
    """Fused per-step Triton kernels on or off (kernels.set_fused_step) inside the block, restored after."""
    kernels.set_fused_step(on)
    try:
        yield
    finally:
        kernels.set_fused_step(None)


def run(quick: bool = False, device: str | None = None, command: str = "audiomamba bench generate",
        bf16: bool = False) -> str:
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    graph = dev.type == "cuda"
    stepping = "CUDA graph" if graph else "eager"
    with _fused(True):
        fusable = kernels.use_fused_step(torch.zeros(1, device=dev))
    fused_label = f"{stepping} + fused kernels" if fusable else f"{stepping} (fused kernels need the Triton backend)"
    plain_label = f"{stepping}, composed step"
    rows: list[Row] = []
    sc09, ytm = ("sc09-small-tiny", "youtubemix-tiny") if quick else ("sc09-small", "youtubemix")
    n_sc09, sec, eager_steps = (4, 0.01, 16) if quick else (2048, 1.0, 256)
    m = _model(sc09, dev)
    steps = int(sec * 16000)
    for fused, label in ((True, fused_label), (False, plain_label)):
        with _fused(fused):
            # warm-up/compile once at the real batch, then time the whole job
            time_generate(m, n_sc09, step_period(m) / 16000, n_sc09, dev, graph, bf16)
            rows.append(Row(f"{sc09} unconditional", label, n_sc09, sec, time_generate(m, n_sc09, sec, n_sc09, dev,
                                                                                       graph, bf16)))
    with _fused(False):
        per_step = time_eager_steps(m, n_sc09, eager_steps, dev, bf16)
    rows.append(Row(f"{sc09} unconditional", "plain Python loop, composed step", n_sc09, sec, per_step * steps,
                    f"timed over {eager_steps} steps, extrapolated to {steps}"))
    for fused, label in ((True, fused_label), (False, plain_label)):
        with _fused(fused):
            time_generate(m, 1, step_period(m) / 16000, 1, dev, graph, bf16)  # warm-up: compile the batch-1 kernels
            rows.append(Row(f"{sc09} single stream", label, 1, sec, time_generate(m, 1, sec, 1, dev, graph, bf16)))
    del m
    m = _model(ytm, dev)
    n_y, sec_y, prompt_y = (2, 0.05, 0.02) if quick else (16, 8.0, 1.0)
    case = f"{ytm} {prompt_y:g} s prompt -> {sec_y:g} s"
    for fused, label in ((True, fused_label), (False, plain_label)):
        with _fused(fused):
            for b in (n_y, 1):  # warm-up: compile the kernels for both batch sizes
                time_generate(m, b, 2 * step_period(m) / 16000, b, dev, graph, bf16)
            rows.append(Row(case, label, n_y, sec_y, time_generate(m, n_y, sec_y, n_y, dev, graph, bf16, prompt_y)))
            rows.append(Row(case, label, 1, sec_y, time_generate(m, 1, sec_y, 1, dev, graph, bf16, prompt_y)))
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    lines = [
        f"Device: {name}; torch {torch.__version__}; date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"precision {'bf16 autocast (fused kernels off)' if bf16 else 'fp32'}",
        f"Command: `{command}`",
        "",
        "| case | stepping | batch | audio per sample (s) | wall (s) | samples/s | × real time | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.case} | {r.mode} | {r.batch} | {r.seconds_audio:g} | {r.wall_s:.2f} | "
                     f"{r.samples_per_s:,.0f} | {r.samples_per_s / 16000:,.1f} | {r.note} |")
    lines.append("")
    ratio = lambda a, b: rows[b].wall_s / rows[a].wall_s  # noqa: E731
    lines.append(f"Same run, {sc09} batch {n_sc09}: fused kernels vs composed step {ratio(0, 1):.2f}× faster; "
                 f"vs the plain Python loop {ratio(0, 2):.1f}× faster (composed step: graph vs loop {ratio(1, 2):.1f}×).")
    lines.append(f"Single stream: fused vs composed {ratio(3, 4):.2f}×; {ytm}: batch {n_y} {ratio(5, 7):.2f}×, "
                 f"one stream {ratio(6, 8):.2f}×.")
    return "\n".join(lines) + "\n"
