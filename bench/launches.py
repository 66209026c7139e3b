"""Kernel launches per generated sample, counted on the CPU (issue 18).

One stream is latency-bound: each launch costs a few µs whatever it computes, so a preset's single-stream speed
follows its launches per sample. This counts them without a GPU::

    TRITON_INTERPRET=1 python -m audiomamba.bench.launches [--presets sc09-small,youtubemix] [--blocks mamba-s6]

Each case steps the model (random weights, batch 1, fused step kernels, Triton in its CPU interpreter) for one
pooling period after a warm-up period, and counts what the same steps issue on a GPU: every Triton kernel launch,
and every PyTorch op that is not a view or an allocation (each about one CUDA kernel). The token draw (one
kernel per sample, outside ``model.step``) is not counted. Columns: the default and ``AUDIOMAMBA_STEP_RUNS=1`` (each
run of Mamba blocks one persistent launch).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import inspect
import sys

import torch
from audiomamba.kernels.backend import interpreting
from torch.utils._python_dispatch import TorchDispatchMode

from audiomamba import kernels

#: PyTorch ops that launch no kernel (views, metadata, allocations)
NO_KERNEL = frozenset({
    "view", "_unsafe_view", "reshape", "select", "slice", "as_strided", "t", "transpose", "expand", "unsqueeze",
    "squeeze", "detach", "alias", "permute", "unbind", "split", "chunk", "view_as_real", "view_as_complex",
    "lift_fresh", "empty", "empty_like", "empty_strided", "new_empty", "_reshape_alias",
})


class _TorchOps(TorchDispatchMode):
    """Counts the PyTorch ops outside Triton launches (the interpreter's own tensor work is not a launch)."""

    def __init__(self, inside: list[int]) -> None:
        super().__init__()
        self.inside = inside
        self.ops: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if not self.inside[0] and name not in NO_KERNEL:
            self.ops[f"torch.{name}"] += 1
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def counting():
    """Yields a Counter that fills with the Triton launches (by kernel name) and PyTorch kernel ops issued
    inside the block. Needs the Triton interpreter (``TRITON_INTERPRET=1`` before triton is imported)."""
    if not interpreting():
        raise RuntimeError("launch counting needs the Triton interpreter: run with TRITON_INTERPRET=1 on the CPU")
    from triton.runtime.interpreter import InterpretedFunction

    counts: collections.Counter[str] = collections.Counter()
    inside = [0]
    real = InterpretedFunction.__getitem__

    def getitem(fn, grid):
        name = fn.fn.__name__
        launcher = real(fn, grid)
        # a run of blocks (AUDIOMAMBA_STEP_RUNS=1) is one persistent launch on a GPU; the interpreter takes it as
        # one launch per phase (its ``phase`` argument), so only phase 0 counts
        phase = list(inspect.signature(fn.fn).parameters).index("phase") if name == "_run_kernel" else None

        def launch(*args, **kwargs):
            if phase is None or args[phase] == 0:
                counts[f"triton.{name}"] += 1
            inside[0] += 1
            try:
                return launcher(*args, **kwargs)
            finally:
                inside[0] -= 1
        return launch

    InterpretedFunction.__getitem__ = getitem
    mode = _TorchOps(inside)
    try:
        with mode:
            yield counts
    finally:
        InterpretedFunction.__getitem__ = real
        counts.update(mode.ops)


@torch.no_grad()
def launches_per_sample(model: torch.nn.Module, runs: bool = False) -> collections.Counter[str]:
    """Launches per full-rate sample of ``model`` at batch 1 (mean over one pooling period, after one warm-up
    period), by kernel or op name; ``runs``: with ``AUDIOMAMBA_STEP_RUNS=1`` (each run of Mamba blocks one launch,
    as on a GPU)."""
    from audiomamba.bench.model import environment

    from audiomamba.generate.stepper import initial_state, step_period

    if not interpreting():
        raise RuntimeError("launch counting needs the Triton interpreter: run with TRITON_INTERPRET=1 on the CPU")
    period = step_period(model)
    token = torch.zeros(1, dtype=torch.long)
    kernels.set_backend("triton")
    kernels.set_fused_step(True)
    try:
        with environment({"AUDIOMAMBA_STEP_RUNS": "1" if runs else "0"}):
            state = initial_state(model, 1, torch.device("cpu"))
            for _ in range(period):
                model.step(token, state)
            with counting() as counts:
                for _ in range(period):
                    model.step(token, state)
    finally:
        kernels.set_backend(None)
        kernels.set_fused_step(None)
    return collections.Counter({name: n / period for name, n in counts.items()})


def table(presets: list[str], blocks: list[str]) -> str:
    """Markdown table: launches per sample by preset and block type, default and with runs."""
    from audiomamba.bench.generate import preset_with_block

    from audiomamba.model import build_model

    lines = ["| preset | block | Triton launches | PyTorch kernels | total | with `AUDIOMAMBA_STEP_RUNS=1` | "
             "Triton launches by kernel (default) |",
             "|---|---|---:|---:|---:|---:|---|"]
    for preset in presets:
        for block in blocks:
            torch.manual_seed(0)
            model = build_model(preset_with_block(preset, block)).eval()
            plain, runs = launches_per_sample(model), launches_per_sample(model, runs=True)
            triton_n = sum(v for k, v in plain.items() if k.startswith("triton."))
            kinds = ", ".join(f"{k.removeprefix('triton.')} {v:g}" for k, v in sorted(plain.items())
                              if k.startswith("triton."))
            lines.append(f"| {preset} | {block} | {triton_n:g} | {sum(plain.values()) - triton_n:g} | "
                         f"{sum(plain.values()):g} | {sum(runs.values()):g} | {kinds} |")
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="sc09-small,sc09-large,youtubemix", help="model presets, comma-separated")
    parser.add_argument("--blocks", default="mamba-s6,mamba-s4,mamba-s4-real", help="block types, comma-separated")
    args = parser.parse_args(argv)
    if not interpreting():
        print("set TRITON_INTERPRET=1 (launches are counted in the Triton interpreter, on the CPU)", file=sys.stderr)
        return 2
    print(table([p for p in args.presets.split(",") if p], [b for b in args.blocks.split(",") if b]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
