"""Where a scan's GPU time goes, kernel by kernel (GPU).

Two uses:

- ``python -m audiomamba.bench.profile_scan --table [--quick] [--peer-build DIR]``: for each benchmark shape
  (``--quick``: (16, 128, 16, 16384), the U-Net level shapes (16, 256, 16, 4000) and (16, 512, 16, 1000), and
  complex LTI at (16, 128, 16, 16384)), fp32 and bf16, one forward + backward under ``torch.profiler``: the
  device time of every kernel per call (ours, and the peer's with ``--peer-build``), the sum, and the wall
  time of the same calls. Says whether a gap is in the forward, the backward or the small kernels around them.
- ``--cpu CASE [--dtype bf16]``: the Python side of a forward + backward at ``FULL_CASES[CASE]`` (cProfile), and
  the time to issue a call against the time to finish it.
- no arguments: one forward + backward at (16, 128, 16, 16384) fp32 inside a profiler range, for Nsight
  Compute (``--ncu CASE --dtype bf16``: another shape and dtype; ``--peer-build DIR``: the peer's after ours)::

    ncu --profile-from-start off -k "regex:_scan_(fwd_seq|bwd)_kernel" -c 4 --section SpeedOfLight \\
        --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis python -m audiomamba.bench.profile_scan
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch
from audiomamba.bench.kernel import DTYPES, FULL_CASES, UNET_CASES, make_inputs, pass_fn
from audiomamba.bench.model import profile_events

#: calls profiled per shape (after one untimed call that compiles)
CALLS = 5


def kernel_times(fn, calls: int = CALLS) -> tuple[dict[str, float], float]:
    """({kernel name: device µs per call}, wall µs per call) of ``calls`` calls of ``fn`` under torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        wall = (time.perf_counter() - t0) / calls * 1e6
    per = defaultdict(float)
    for names, us in profile_events(prof, cuda=True):  # every kernel once: (its name, then the ops that launched it)
        per[names[0]] += us / calls
    return dict(per), wall


def short(name: str, width: int = 48) -> str:
    """A kernel's name without template arguments, cut to ``width``."""
    base = name.split("<")[0].split("(")[0]
    return base if len(base) <= width else base[: width - 1] + "…"


def report(label: str, times: dict[str, float], wall: float) -> list[str]:
    total = sum(times.values())
    lines = [f"  {label}: {total:.0f} µs of kernels, {wall:.0f} µs wall per call"]
    for name, us in sorted(times.items(), key=lambda kv: -kv[1]):
        lines.append(f"    {us:8.1f} µs  {100 * us / max(total, 1e-9):4.0f} %  {short(name)}")
    return lines


def table(quick: bool, peer_build: str | None) -> None:
    from audiomamba.kernels import selective_scan

    peer = None
    if peer_build:
        from audiomamba.bench.peer import load_peer

        peer = load_peer(peer_build)
    lti = [c for c in FULL_CASES if c.lti]
    cases = [FULL_CASES[0], *UNET_CASES, lti[0]] if quick else FULL_CASES
    print(f"{torch.cuda.get_device_name()}; {CALLS} calls per entry, device time per call", flush=True)
    for case in cases:
        for dname, dtype in DTYPES.items():
            inputs = make_inputs(case, dtype, "cuda")
            print(f"{case.kind} {case.label()} {dname} fwd+bwd", flush=True)
            print("\n".join(report("ours", *kernel_times(pass_fn(selective_scan, inputs, True)))), flush=True)
            if peer is not None:
                args = peer.prepare(**inputs)
                print("\n".join(report(peer.name, *kernel_times(pass_fn(peer, args, True)))), flush=True)


def cpu_profile(case_index: int, dname: str, calls: int = 50) -> None:
    """Where the CPU time of a forward + backward goes (cProfile), and the call rate with and without waiting for
    the GPU: at short L the kernels take less time than Python and Triton's launcher take to issue them."""
    import cProfile
    import pstats

    from audiomamba.kernels import selective_scan

    case = FULL_CASES[case_index]
    fn = pass_fn(selective_scan, make_inputs(case, DTYPES[dname], "cuda"), True)
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    issued = (time.perf_counter() - t0) / calls * 1e6
    torch.cuda.synchronize()
    done = (time.perf_counter() - t0) / calls * 1e6
    times, _ = kernel_times(fn)
    print(f"{case.kind} {case.label()} {dname} fwd+bwd: {issued:.0f} µs per call to issue, {done:.0f} µs per call "
          f"to finish, {sum(times.values()):.0f} µs of kernels", flush=True)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    torch.cuda.synchronize()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def ncu_range(case_index: int = 0, dname: str = "fp32", peer_build: str | None = None) -> None:
    """One forward + backward at ``FULL_CASES[case_index]`` inside a profiler range (ours, then the peer's with
    ``peer_build``), each compiled or warmed up outside it, for Nsight Compute's ``--profile-from-start off``."""
    from audiomamba.kernels import selective_scan

    inputs = make_inputs(FULL_CASES[case_index], DTYPES[dname], "cuda")
    fns = [pass_fn(selective_scan, inputs, True)]
    if peer_build:
        from audiomamba.bench.peer import load_peer

        peer = load_peer(peer_build)
        fns.append(pass_fn(peer, peer.prepare(**inputs), True))
    for fn in fns:
        fn()  # compile outside the profiled range
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStart()
    for fn in fns:
        fn()
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m audiomamba.bench.profile_scan", description=__doc__.split("\n")[0])
    parser.add_argument("--table", action="store_true", help="kernel times per shape under torch.profiler")
    parser.add_argument("--quick", action="store_true", help="with --table: four shapes, not every benchmark shape")
    parser.add_argument("--peer-build", default=None,
                        help="with --table or the Nsight range: the peer's build folder (bench.peer)")
    parser.add_argument("--cpu", type=int, default=None, metavar="CASE",
                        help="cProfile of the Python side of fwd+bwd at benchmark shape CASE (index into FULL_CASES)")
    parser.add_argument("--dtype", default=None, choices=sorted(DTYPES),
                        help="with --cpu or --ncu: the input dtype (default bf16 for --cpu, fp32 for --ncu)")
    parser.add_argument("--ncu", type=int, default=0, metavar="CASE",
                        help="without --table or --cpu: the benchmark shape (index into FULL_CASES) of the range")
    args = parser.parse_args(argv)
    if not 0 <= args.ncu < len(FULL_CASES):
        raise SystemExit(f"--ncu {args.ncu}: no such benchmark shape; give 0 to {len(FULL_CASES) - 1}")
    if not torch.cuda.is_available():
        raise SystemExit("profile_scan needs a CUDA GPU (none found): run it on the GPU machine")
    if args.cpu is not None:
        cpu_profile(args.cpu, args.dtype or "bf16")
    elif args.table:
        table(args.quick, args.peer_build)
    else:
        ncu_range(args.ncu, args.dtype or "fp32", args.peer_build)


if __name__ == "__main__":
    main()
