"""Where a generation step's GPU time goes, kernel by kernel (issue 18: 2048 SC09 seconds in 10 s needs 0.5 ms
per full-rate step at batch 2048; the H200 gave 1.057 ms on 2026-12-04).

    python -m audiomamba.bench.profile_generate [--preset sc09-small] [--block mamba-s6] [--batch 2048]
                                                [--periods 8] [--out profile.md]

Random weights (speed does not depend on training), the fused step kernels and the CUDA graph of one pooling
period that generation replays. After the capture and one untimed replay, ``--periods`` replays run under
torch.profiler (kernels inside graph replays are traced one by one by CUPTI; where a driver does not, the eager
steps are profiled instead and the report says so). Per kernel name: launches and GPU µs per full-rate step and
the share of the step. The header also gives the wall ms per step of the same replays without the profiler, the
GPU time summed over kernels (their gaps are the difference), and the bytes of the SSM states that every step
reads and writes (batch · channels · states per layer, weighted by the layer's rate), against the device's copy
bandwidth: the floor of a step that must stream its states through HBM.

With ``--ncu`` it only replays one period inside a profiler range, for Nsight Compute (``docs/gpu/bench-session.sh``
phase ``ncu-gen``: the fused kernels' speed of light, occupancy and warp stalls).
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import time
from datetime import UTC, datetime

import torch
from audiomamba.bench.device import device_name, emit_report, sync
from audiomamba.bench.generate import add_model_args, cuda_model
from audiomamba.bench.kernel import copy_bandwidth, make_timer
from audiomamba.kernels.triton_mamba_step import default_precision

from audiomamba.generate import SamplingConfig
from audiomamba.generate.stepper import (
    Stepper,
    auto_state_dtype,
    cast_states,
    step_groups,
    step_period,
    step_state_dtype,
)


def state_bytes_per_step(model: torch.nn.Module, batch: int, dtype: torch.dtype = torch.float32) -> float:
    """Bytes of the step states (SSM, conv, pooling buffers) read plus written per full-rate step: every state
    tensor of :meth:`init_state` at its level's rate (the U-Net's ``inner`` nesting: depth k steps once every
    pool[0] · ... · pool[k-1] full-rate steps), the Mamba blocks' conv windows and real SSM states in ``dtype``
    (as :func:`audiomamba.generate.stepper.initial_state` casts them)."""
    pools = list(model.config.pool)
    total = 0.0

    def walk(x, depth: int) -> None:
        nonlocal total
        if isinstance(x, torch.Tensor):
            total += 2 * x.numel() * x.element_size() / math.prod(pools[:depth])
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, depth + (k == "inner"))
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v, depth)

    state = model.init_state(batch, "meta")
    walk(cast_states(state, dtype) if dtype != torch.float32 else state, 0)
    return total


def kernel_table(prof, steps: int) -> list[tuple[str, float, float]]:
    """(kernel name, launches per step, GPU µs per step) from a profiler's device events, largest first."""
    time_us: dict[str, float] = collections.defaultdict(float)
    count: dict[str, int] = collections.defaultdict(int)
    for ev in prof.events():
        if ev.device_type == torch.autograd.DeviceType.CUDA:
            time_us[ev.name] += ev.device_time
            count[ev.name] += 1
    rows = [(name, count[name] / steps, us / steps) for name, us in time_us.items()]
    return sorted(rows, key=lambda r: -r[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument("--periods", type=int, default=8, help="pooling periods profiled")
    parser.add_argument("--out", default="", help="also write the report (markdown) here")
    parser.add_argument("--ncu", action="store_true",
                        help="instead: one period's graph replay between cudaProfilerStart/Stop, for "
                             "`ncu --profile-from-start off` (the kernels' hardware counters)")
    args = parser.parse_args(argv)
    built = cuda_model(args, "profile_generate")
    if built is None:
        return 2
    dev, model = built
    period = step_period(model)
    steps = args.periods * period

    def replays(graph: bool):
        stepper = Stepper(model, args.batch, dev, SamplingConfig(), use_graph=graph, seed=0)
        it = stepper.periods(None, (2 * args.periods + 2) * period)
        next(it)  # compile, capture (graph) and one period
        next(it)  # one untimed replay
        return it

    it = replays(True)
    if args.ncu:
        sync(dev)
        torch.cuda.cudart().cudaProfilerStart()
        next(it)
        sync(dev)
        torch.cuda.cudart().cudaProfilerStop()
        return 0
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(args.periods):
        next(it)
    sync(dev)
    wall_ms = (time.perf_counter() - t0) / steps * 1e3
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(args.periods):
            next(it)
        sync(dev)
    rows, how = kernel_table(prof, steps), "CUDA-graph replays"
    if not rows:  # no kernel events from inside the graph: profile the same steps eagerly
        it = replays(False)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(args.periods):
                next(it)
            sync(dev)
        rows, how = kernel_table(prof, steps), "eager steps (this driver traced no kernels inside graph replays)"
    gpu_ms = sum(r[2] for r in rows) / 1e3
    groups = step_groups(args.batch, dev, model.init_state(1, dev))
    overlap = ("the rest is gaps between kernels" if groups == 1 else
               f"the batch steps as {groups} row groups on their own streams, whose kernels overlap")
    dtype = step_state_dtype() or auto_state_dtype(args.batch // groups, dev)  # as each row group's Stepper state
    state = state_bytes_per_step(model, args.batch, dtype)
    bw = copy_bandwidth("cuda", make_timer("cuda", False))
    env = "".join(f"{k}={os.environ[k]} " for k in sorted(os.environ) if k.startswith("AUDIOMAMBA_"))
    lines = [
        f"Device: {device_name(dev)}; torch {torch.__version__}; date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"Command: {env}python -m audiomamba.bench.profile_generate --preset {args.preset} --block {args.block} "
        f"--batch {args.batch} --periods {args.periods}",
        "",
        f"{args.preset} with every block {args.block}, batch {args.batch}, fp32 weights, "
        f"{str(dtype).removeprefix('torch.')} step states (conv windows and real SSM states), fused step "
        f"kernels (batched tiles' tl.dot precision: {default_precision()}); profiled: {steps} full-rate steps as {how}.",
        f"- wall per full-rate step (graph replays, no profiler): **{wall_ms:.3f} ms**; GPU time summed over "
        f"kernels: {gpu_ms:.3f} ms ({gpu_ms / wall_ms * 100:.0f} % of the wall; {overlap})",
        f"- SSM and conv states read + written per step: {state / 1e6:.1f} MB; at the measured copy bandwidth "
        f"({bw / 1e9:.0f} GB/s) that alone takes {state / bw * 1e3:.3f} ms",
        "",
        "| kernel | launches per step | GPU µs per step | share |",
        "|---|---:|---:|---:|",
    ]
    total_us = gpu_ms * 1e3
    for name, calls, us in rows[:25]:
        short = name if len(name) <= 90 else name[:87] + "..."
        lines.append(f"| `{short}` | {calls:.2f} | {us:.1f} | {us / total_us * 100:.1f} % |")
    if len(rows) > 25:
        rest = sum(r[2] for r in rows[25:])
        lines.append(f"| {len(rows) - 25} others | | {rest:.1f} | {rest / total_us * 100:.1f} % |")
    emit_report(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
