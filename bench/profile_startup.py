"""Where a generation's start-up goes on the host (GPU): the Python of the eager warm-up period and of the CUDA-graph
capture that every ``audiomamba generate`` pays before its first period (issue 18: 1.9-2.4 s of a batch-2048 sc09-small
run on an H100, 2026-12-05), then the first replays against later ones.

``python -m audiomamba.bench.profile_startup [--preset P] [--block B] [--batch N] [--top 30]``: a :class:`Stepper`
runs two periods (compiling the kernels, untimed); a second Stepper then runs its start-up under cProfile, and the
report lists the functions by their own time and by their cumulative time, with the start-up's parts
(:attr:`Stepper.startup`) and the wall time of replays 1, 2 and 3-10. ``--compare-launch ROUNDS``: instead, the
start-up's parts without cProfile under Triton's own launch and the direct one (``kernels.launch.launch_named``),
turns interleaved (cProfile weighs the two unevenly: it charges every Python call); ``--compare-var NAME
--compare-values "A;B"`` compares the values of another environment variable the same way (e.g.
``AUDIOMAMBA_STEP_GRAPH`` ``period;sub``: one graph of the whole pooling period against sub-period graphs).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import torch
from audiomamba.bench.generate import add_model_args, cuda_model

from audiomamba.generate.stepper import SamplingConfig, Stepper, step_period


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_args(parser)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--compare-launch", type=int, default=0, metavar="ROUNDS",
                        help="instead: the start-up without cProfile under AUDIOMAMBA_FAST_LAUNCH=0 and 1, taking "
                             "turns ROUNDS times (median)")
    parser.add_argument("--compare-var", default="AUDIOMAMBA_FAST_LAUNCH", metavar="NAME",
                        help="the environment variable that --compare-launch compares")
    parser.add_argument("--compare-values", default="0;1", metavar="A;B",
                        help="its values, separated by ';'")
    args = parser.parse_args(argv)
    got = cuda_model(args, "profile_startup")
    if got is None:
        return
    dev, model = got
    period = step_period(model)
    for _ in Stepper(model, args.batch, dev, SamplingConfig(), use_graph=True).periods(None, 2 * period):
        pass  # compiles every kernel
    torch.cuda.synchronize(dev)
    if args.compare_launch:
        compare_launch(model, args, dev, period)
        return
    stepper = Stepper(model, args.batch, dev, SamplingConfig(), use_graph=True)
    it = stepper.periods(None, 12 * period)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    next(it)
    prof.disable()
    torch.cuda.synchronize(dev)
    first = time.perf_counter() - t0
    replays = []
    for _ in it:
        torch.cuda.synchronize(dev)
        replays.append(time.perf_counter() - t0 - first - sum(replays))
    parts = ", ".join(f"{k} {v:.3f} s" for k, v in stepper.startup.items())
    print(f"{args.preset} {args.block} batch {args.batch}, {len(stepper.groups)} row groups: start-up and first "
          f"period {first:.3f} s ({parts}); replays 2, 3: {replays[0] * 1e3:.1f}, {replays[1] * 1e3:.1f} ms; "
          f"4-11: {sum(replays[2:]) / len(replays[2:]) * 1e3:.1f} ms each")
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(key).print_stats(args.top)
        print(out.getvalue())


def compare_launch(model, args, dev, period: int) -> None:
    """The start-up's parts (:attr:`Stepper.startup`, seconds by the wall) under each value of ``--compare-var``
    (by default ``AUDIOMAMBA_FAST_LAUNCH``: Triton's own launch ``0`` and the direct one ``1``), turns interleaved,
    median per part."""
    import os
    import statistics

    var = args.compare_var
    seen: dict[str, list[dict[str, float]]] = {v.strip(): [] for v in args.compare_values.split(";") if v.strip()}
    before = os.environ.get(var)
    try:
        for _ in range(args.compare_launch):
            for fast in seen:
                os.environ[var] = fast
                stepper = Stepper(model, args.batch, dev, SamplingConfig(), use_graph=True)
                it = stepper.periods(None, 2 * period)
                next(it)
                torch.cuda.synchronize(dev)
                it.close()
                seen[fast].append(dict(stepper.startup))
                print(f"{var}={fast}: " + ", ".join(f"{k} {v:.3f}" for k, v in stepper.startup.items()))
    finally:
        if before is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = before
    print(f"{args.preset} {args.block} batch {args.batch}: start-up seconds, median of {args.compare_launch} turns")
    first = next(iter(seen.values()))[0]
    print(f"| {var} | " + " | ".join(first) + " | total |")
    print("|---|" + "---:|" * (len(first) + 1))
    for fast, runs in seen.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"| {fast} | " + " | ".join(f"{v:.3f}" for v in med.values())
              + f" | {statistics.median(sum(r.values()) for r in runs):.3f} |")


if __name__ == "__main__":
    main()
