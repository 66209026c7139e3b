"""What one synchronisation costs on this GPU, side by side (issue 18: one stream in real time).

    python -m audiomamba.bench.sync_cost [--rounds 20000] [--programs 8,16,32,64] [--ctas 1,2,4,8] [--out F]

A stream's step is a chain of small dependent pieces of work (a block's channels mix in x_proj and out_proj, and the
next block needs the result), so what bounds it is how the pieces wait for each other. Three ways, each timed as µs
per synchronisation, from the difference of two lengths (so a launch's fixed cost cancels):

- **launch**: one tiny kernel after another inside a CUDA graph (the per-block launches of the step kernels);
- **grid barrier**: P programs of one launch meeting at a barrier in global memory, again and again (the runs of
  blocks, ``kernels/triton_mamba_run.py``, whose barrier this uses);
- **cluster**: one Triton program spread over C CTAs of a thread-block cluster (``num_ctas``, sm_90+), summing a
  vector across them again and again: Triton exchanges the partial sums through distributed shared memory and waits
  at hardware cluster barriers. C = 1 is the same sum inside one CTA, the baseline. (Triton 3.6 does not compile it
  for C >= 2: "PassManager::run failed", one H100, 2026-12-05.)
- **cluster barrier (launched)**: programs compiled as one CTA each, launched as one cluster of C CTAs through the
  compiled kernel's launcher (:class:`kernels.launch._ClusterLaunch`), meeting at the hardware cluster
  barrier written in PTX; "+ exchange": each CTA also stores a value before the barrier and reads all C of them from
  global memory (past L1) after it, as a block split over a cluster would exchange its partial sums. Checked before
  it is timed: after r rounds every CTA holds its cluster's mean plus r.

The 2026-12-05 runs measured the first two only through whole steps (split launches beat the persistent grid's
barriers on every block type); the third is what a persistent kernel spread over one cluster would pay per block.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import torch
import triton
from audiomamba.bench.device import device_name, emit_report
from audiomamba.bench.fused_step import graph_us
from audiomamba.bench.kernel import make_timer
from audiomamba.kernels.triton_mamba_run import RUN_POLLS
from audiomamba.kernels.triton_sync import (
    CLUSTER_BLOCK,
    _barrier_rounds_kernel,
    _cluster_exchange_rounds_kernel,
    _cluster_rounds_kernel,
    _tick_kernel,
)


def per_round_us(run, rounds: int) -> float:
    """µs per round of ``run(n)`` (n rounds in one go), from ``rounds`` and ``2 * rounds``: fixed costs cancel.
    Timed as ``bench kernel`` times (:func:`audiomamba.bench.kernel.make_timer`)."""
    timer = make_timer("cuda", quick=True)
    return max(0.0, (timer(lambda: run(2 * rounds)) - timer(lambda: run(rounds))) * 1e3 / rounds)


def launch_us(launches: int) -> float:
    """µs per launch of a tiny kernel chained ``launches`` times inside a CUDA graph."""
    x = torch.zeros(1, device="cuda")
    return graph_us(lambda: _tick_kernel[(1,)](x), calls=launches)


def barrier_us(programs: int, rounds: int) -> float:
    """µs per grid barrier of ``programs`` programs (one launch, ``rounds`` barriers)."""
    x = torch.zeros(programs, device="cuda")
    ticket = torch.zeros(2, dtype=torch.int64, device="cuda")
    us = per_round_us(lambda n: _barrier_rounds_kernel[(programs,)](x, ticket, n, POLLS=RUN_POLLS), rounds)
    if int(ticket[1]):
        raise RuntimeError(f"a barrier of {programs} programs gave up after {RUN_POLLS} polls")
    return us


def cluster_us(ctas: int, rounds: int) -> float:
    """µs per round of a sum over one program spread across ``ctas`` CTAs of a cluster."""
    x = torch.rand(CLUSTER_BLOCK, device="cuda")
    y = torch.empty_like(x)
    return per_round_us(lambda n: _cluster_rounds_kernel[(1,)](x, y, n, BLOCK=CLUSTER_BLOCK, num_warps=4,
                                                               num_ctas=ctas), rounds)


def cluster_launch_us(ctas: int, rounds: int, exchange: bool) -> float:
    """µs per round of one cluster of ``ctas`` CTAs meeting at the hardware barrier (:mod:`kernels.triton_sync`),
    with or without the exchange through global memory; checked first (RuntimeError when a CTA ends wrong)."""
    from audiomamba.kernels.launch import _ClusterLaunch, _run

    x = torch.arange(ctas, device="cuda", dtype=torch.float32)
    buf = torch.zeros(2 * ctas, device="cuda")
    # compiled (and run once as separate CTAs) by Triton's own launch; then its launcher as one cluster, as
    # launch_cluster runs it (past 8 CTAs Triton's launcher allows exactly 16 itself). Not with rounds = 1: Triton
    # would compile that value in (an H100 run of 2026-12-07 11:22 then did 1 round whatever the count, and the check
    # caught it)
    cluster = _ClusterLaunch(_cluster_exchange_rounds_kernel[(ctas,)](x, buf, 3, C=ctas, EXCHANGE=exchange,
                                                                       num_warps=4), ctas)

    def run(n: int) -> None:
        _run(cluster, (1,), x.get_device(), (x, buf, n, ctas, exchange))

    x.copy_(torch.arange(ctas, dtype=torch.float32))
    run(3)
    want = torch.full((ctas,), (ctas - 1) / 2 + 3.0) if exchange else torch.arange(ctas) + 3.0
    if not torch.allclose(x.cpu(), want):
        raise RuntimeError(f"after 3 rounds the CTAs hold {x.tolist()}, not {want.tolist()}")
    return per_round_us(run, rounds)


def ptx_facts(arch: int = 90) -> dict[str, bool]:
    """Compile the kernels for ``arch`` without a GPU (``--ptx``) and say what their PTX holds: the cluster sum over 4
    CTAs with hardware cluster barriers and distributed shared memory (``mapa``), over 1 CTA with neither; the grid
    barrier with release and acquire atomics. (Not under ``TRITON_INTERPRET``: the interpreter compiles nothing.)"""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    def ptx(fn, sig: dict[str, str], consts: dict, **options) -> str:
        src = ASTSource(fn, {**sig, **{k: "constexpr" for k in consts}}, constexprs=consts)
        return triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": 4, **options}).asm["ptx"]

    cluster = {"x_ptr": "*fp32", "y_ptr": "*fp32", "rounds": "i32"}
    one = ptx(_cluster_rounds_kernel, cluster, {"BLOCK": CLUSTER_BLOCK}, num_ctas=1)
    four = ptx(_cluster_rounds_kernel, cluster, {"BLOCK": CLUSTER_BLOCK}, num_ctas=4)
    grid = ptx(_barrier_rounds_kernel, {"x_ptr": "*fp32", "ticket_ptr": "*i64", "rounds": "i32"}, {"POLLS": 16})
    launched = ptx(_cluster_exchange_rounds_kernel, {"x_ptr": "*fp32", "buf_ptr": "*fp32", "rounds": "i32"},
                   {"C": 4, "EXCHANGE": True})
    return {"cluster4_barrier": "barrier.cluster" in four, "cluster4_dsmem": "mapa" in four,
            "cluster1_barrier": "barrier.cluster" in one or "shared::cluster" in one,
            "grid_release_acquire": "atom" in grid and "release" in grid and "acquire" in grid,
            "launched_barrier": "barrier.cluster.arrive.release" in launched
            and "barrier.cluster.wait.acquire" in launched and "ld.global.cg" in launched}


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiomamba.bench.sync_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20000, help="synchronisations per timed launch (and twice as many)")
    parser.add_argument("--programs", default="8,16,32,64", help="grid sizes of the barrier rows")
    parser.add_argument("--ctas", default="1,2,4,8", help="CTAs per cluster of the cluster rows (1: one CTA)")
    parser.add_argument("--launched", default="1,2,4,8,16",
                        help="CTAs per cluster of the launched-cluster rows (16: a non-portable cluster size)")
    parser.add_argument("--out", default="")
    parser.add_argument("--ptx", action="store_true", help="compile for sm_90 (no GPU needed) and say what the PTX holds")
    args = parser.parse_args(argv)
    if args.ptx:
        for name, value in ptx_facts().items():
            print(f"{name} {value}")
        return 0
    if not torch.cuda.is_available():
        print("sync_cost needs a CUDA device")
        return 0
    dev = torch.device("cuda")
    cases = [("launch (CUDA graph)", "1 program", lambda: launch_us(min(args.rounds, 2000)))]
    cases += [("grid barrier", f"{p} programs", lambda p=p: barrier_us(p, args.rounds)) for p in _ints(args.programs)]
    cases += [("cluster sum", f"{c} CTA" + "s" * (c > 1), lambda c=c: cluster_us(c, args.rounds))
              for c in _ints(args.ctas)]
    cases += [(f"cluster barrier (launched){' + exchange' * e}", f"{c} CTA" + "s" * (c > 1),
               lambda c=c, e=e: cluster_launch_us(c, args.rounds, e)) for e in (False, True) for c in _ints(args.launched)]
    rows = []
    for kind, size, fn in cases:
        try:
            rows.append(f"| {kind} | {size} | {fn():.3f} |  |")
        except Exception as err:  # noqa: BLE001 - a way this GPU or Triton cannot run is a row, not the end
            first = (str(err).strip().splitlines() or [""])[0][:100].replace("|", "/")
            rows.append(f"| {kind} | {size} | – | {type(err).__name__}: {first} |")
        print(rows[-1], flush=True)
    lines = [f"Device: {device_name(dev)}; torch {torch.__version__}, triton {triton.__version__}; date "
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
             f"Command: python -m audiomamba.bench.sync_cost --rounds {args.rounds} --programs {args.programs} "
             f"--ctas {args.ctas} --launched {args.launched}", "",
             "µs per synchronisation: (time of 2n rounds - time of n rounds) / n, each by `bench kernel`'s timer "
             "(launch row: at most 2000 launches in one graph, replayed 10 times).", "",
             "| way | size | µs per synchronisation | note |", "|---|---|---:|---|", *rows]
    emit_report(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
