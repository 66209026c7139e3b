"""Where one stream's step of a run of Mamba blocks spends its time, from inside the kernel (issue 18), on a GPU.

    python -m audiomamba.bench.run_profile [--preset sc09-small] [--block mamba-s4-real] [--mode cluster]
                                           [--steps 200] [--marks] [--out F]

One stream (batch 1) of the preset with every block replaced by ``--block``: every run of blocks of the U-Net (each
level's down and up blocks, the center) is launched on its own, as the generation launches it
(:func:`kernels.triton_mamba_run.mamba_s6_run_step_triton` and its LTI twin, persistent: ``--mode cluster`` or
``1``, the grid's barriers), with the kernel's in-kernel profile on (``PROFILE``: each program reads its SM's clock at
the start of every phase and before every barrier; :func:`kernels.triton_mamba_run.run_profile`). Per run: its
programs, the GPU time of one launch (CUDA-graph replays of the launch without the profile, so the gap between
launches counts), and its cycles: the slowest program's work per phase (a selective block's two phases A and B, an
LTI block's one), the barrier (the fastest program's wait: the hardware's cost when every program arrives at once)
and the whole kernel. A phase's work that is much more than its loads' latency is the compute chain of one program
(layout changes through shared memory, reductions across warps); the barriers times their count is what the
synchronisation costs; the rest of a launch's time is launch overhead. ``--marks``: clocks inside a phase too
(``PROFILE=2``: when x's partials are loaded and summed, when u and z are ready; in a selective block's phase B, when
x_proj's partials are summed and when y is ready), read after a sum of that tile, so
the marks add a little work of their own: compare the phase's work with a run without them.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
from datetime import UTC, datetime

import torch
from audiomamba.bench.device import device_name, emit_report
from audiomamba.bench.fused_step import graph_us
from audiomamba.bench.generate import cuda_model
from audiomamba.kernels.triton_mamba_run import (
    PROFILE_MARKS,
    PROFILE_MARKS_B,
    S6Stack,
    run_profile,
    run_profile_buffer,
)


def sm_clock_mhz() -> float | None:
    """The GPU's SM clock now (MHz, ``nvidia-smi``), or None where it cannot say."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
        return float(out.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def level_runs(state: dict, pools: list[int], rate: float = 16000.0) -> list[tuple[str, object]]:
    """(where, BlockRun) of every run attached in a U-Net level's step state (``pools``: its pooling factor and its
    inner levels') and its inner levels'."""
    out = [(f"{(rate / pools[0] if part == 'center' else rate) / 1000:g} kHz {part}", run)  # the center: pooled
           for part, run in state.get("runs", {}).items() if run is not None]
    inner = state.get("inner")
    if isinstance(inner, dict) and "runs" in inner:
        out += level_runs(inner, pools[1:], rate / pools[0])
    return out


def profile_run(run, mode: str, steps: int, marks: bool = False) -> dict[str, float]:
    """Median in-kernel cycles of ``steps`` profiled launches of one run (``marks``: the parts of a phase too), and
    the µs of one launch (graph replays)."""
    w = run.weights
    x = torch.randn(run.outs.shape[1], run.outs.shape[2], device=run.h.device)
    prof = run_profile_buffer(w, run.block_e, x.device, marks)

    def launch(profile=None) -> None:
        run.step(x, mode=mode, profile=profile)

    for _ in range(3):
        launch(prof)
    parts: dict[str, list[float]] = {}
    for _ in range(steps):
        launch(prof)
        for k, v in run_profile(prof, isinstance(w, S6Stack)).items():
            parts.setdefault(k, []).append(v)
    out = {k: statistics.median(v) for k, v in parts.items()}
    out["launch us"] = graph_us(launch, calls=50, replays=5)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="sc09-small")
    parser.add_argument("--block", default="mamba-s4-real", help="block type replacing every block of the preset")
    parser.add_argument("--mode", default="cluster", choices=("cluster", "1"),
                        help="cluster: one thread-block cluster where the programs fit in one; 1: grid barriers")
    parser.add_argument("--steps", type=int, default=200, help="profiled launches per run (the median is kept)")
    parser.add_argument("--marks", action="store_true",
                        help="also the clocks inside a phase: x summed, u and z ready (columns 'to x', 'to u, z', "
                             "'after u, z'; mamba-s6 also phase B's 'B to x_proj', 'B to y', 'B after y')")
    parser.add_argument("--out", default="", help="also write the report (markdown) here")
    args = parser.parse_args(argv)
    args.batch = 1
    built = cuda_model(args, "run_profile")
    if built is None:
        return 2
    dev, model = built
    state = model.init_state(1, dev)
    if not model.attach_runs(state):
        raise SystemExit(f"run_profile: {args.preset} with {args.block} has no runs of Mamba blocks to profile")
    mhz = sm_clock_mhz()
    marks = (PROFILE_MARKS + (PROFILE_MARKS_B if args.block == "mamba-s6" else ())) if args.marks else ()
    lines = [f"# In-kernel profile of one stream's runs of blocks: {args.preset}, `{args.block}`", "",
             f"Device: {device_name(dev)}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; SM clock "
             f"{f'{mhz:.0f} MHz (nvidia-smi, before the runs)' if mhz else 'unknown (cycles only)'}.",
             f"Command: `python -m audiomamba.bench.run_profile --preset {args.preset} --block {args.block} --mode "
             f"{args.mode} --steps {args.steps}{' --marks' if args.marks else ''}`", "",
             "Cycles (medians over launches; per phase: over the run's blocks): work = the slowest program's cycles "
             "from a phase's start to its barrier; barrier = the fastest program's wait (every program arriving at "
             "once); kernel = the longest program's start to end. µs per launch: CUDA-graph replays without the "
             "profile, gaps included."
             + (" Marks (medians over every program of the phases that have them: LTI blocks, selective phases A): "
                "to x = a phase's start to x's partials loaded and summed; to u, z = LayerNorm, in_proj and conv; "
                "after u, z = the rest of the phase (state update and out_proj; or the x_proj partial). Selective "
                "phases B: B to x_proj = the phase's start to x_proj's partials loaded and summed; B to y = Δ, the "
                "state update and the gate; B after y = out_proj and its partial's store."
                if args.marks else ""), "",
             "| run | blocks | programs | µs per launch | kernel (cycles) | work per phase (cycles) | barrier (cycles) "
             "| output phase | barriers' share of the kernel | kernel ÷ launch |"
             + "".join(f" {k} |" for k in marks),
             "|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(marks)]
    for where, run in level_runs(state["body"], list(model.config.pool)):
        r = profile_run(run, args.mode, args.steps, args.marks)
        n, selective = run.weights.A.shape[0], isinstance(run.weights, S6Stack)
        phases = (2 if selective else 1) * n
        work = (f"A {r['A work']:.0f}, B {r['B work']:.0f}" if selective else f"{r['block work']:.0f}")
        share = f"{r['total'] / mhz / r['launch us']:.0%}" if mhz else "-"
        lines.append(f"| {where} | {n} | {run.scratch['xp'].shape[0]} | {r['launch us']:.2f} | {r['total']:.0f} | "
                     f"{work} | {r['barrier']:.0f} | {r['output']:.0f} | {phases * r['barrier'] / r['total']:.0%} | "
                     f"{share} |" + "".join(f" {r[k]:.0f} |" if k in r else " - |" for k in marks))
        print(lines[-1], flush=True)
    emit_report(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
