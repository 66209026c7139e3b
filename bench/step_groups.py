"""The generation step's row groups side by side (issue 18), in one process on a GPU.

    python -m audiomamba.bench.step_groups [--preset sc09-small] [--blocks mamba-s6,mamba-s4-real,mamba-s4]
                                           [--batches 2048,1024,256] [--groups 1,2,3,4,8] [--rounds 3] [--out F]

The stepper can split a batch into row groups that step on their own CUDA streams
(``audiomamba.generate.stepper.step_groups``, ``AUDIOMAMBA_STEP_GROUPS``): the kernels of one group fill the GPU's
idle issue slots while the other's wait on memory. For each preset with every block replaced by one block type, each
batch and each group count: the steady ms per full-rate step (CUDA-graph replays of one pooling period, as generation
runs; ``bench.generate.steady_step_seconds``), the group counts taking turns ``--rounds`` times (the median is kept),
and whether 0.1 s of sampled tokens (same seed) are identical to one group's.
"""

from __future__ import annotations

import argparse
import statistics
from datetime import UTC, datetime

import torch
from audiomamba.bench.device import device_name, emit_report, sync
from audiomamba.bench.generate import preset_with_block, steady_step_seconds
from audiomamba.bench.model import environment

from audiomamba.generate import SamplingConfig, generate_tokens
from audiomamba.model import build_model

VAR = "AUDIOMAMBA_STEP_GROUPS"


def sampled_tokens(model: torch.nn.Module, batch: int, dev: torch.device, groups: int, seconds: float) -> torch.Tensor:
    """``seconds`` of tokens sampled with seed 0 as generation runs (CUDA graphs), the batch in ``groups`` groups."""
    with environment({VAR: str(groups)}):
        return generate_tokens(model, batch, int(seconds * 16000), batch, SamplingConfig(), 0, None, dev,
                               use_graph=True, progress=False).tokens.cpu()


def turns(values: list[float]) -> str:
    """Every turn's ms per step, in order (a median hides a slow turn)."""
    return " ".join(f"{v:.3f}" for v in values)


def parse_ints(text: str, what: str) -> list[int]:
    """A comma-separated list of positive integers (``what`` names the option in the error)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise SystemExit(f"{what}={text!r}: give comma-separated positive integers, e.g. 1,2,4")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sc09-small")
    parser.add_argument("--blocks", default="mamba-s6,mamba-s4-real,mamba-s4")
    parser.add_argument("--batches", default="2048,1024,256")
    parser.add_argument("--groups", default="1,2,3,4,8")
    parser.add_argument("--rounds", type=int, default=3, help="turns each group count takes (median kept)")
    parser.add_argument("--steps", type=int, default=512, help="full-rate steps timed per turn")
    parser.add_argument("--check-seconds", type=float, default=0.1, help="seconds of tokens compared (0: none)")
    parser.add_argument("--out", default="", help="also write the report (markdown) here")
    args = parser.parse_args(argv)
    batches, groups = parse_ints(args.batches, "--batches"), parse_ints(args.groups, "--groups")
    if 1 not in groups:
        groups = [1, *groups]
    if not torch.cuda.is_available():
        print("step_groups needs a CUDA device")
        return 2
    dev = torch.device("cuda")
    lines = [
        f"Device: {device_name(dev)}; torch {torch.__version__}; date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"Command: python -m audiomamba.bench.step_groups --preset {args.preset} --blocks {args.blocks} "
        f"--batches {args.batches} --groups {args.groups} --rounds {args.rounds} --steps {args.steps}",
        "",
        f"{args.preset} with every block replaced, random weights, fp32, CUDA graphs; ms per full-rate step (median of "
        f"{args.rounds} turns, group counts interleaved); speed-up against one group; tokens: {args.check_seconds:g} s "
        "sampled with seed 0, compared with one group's.",
        "",
        "| block | batch | groups | ms/step | speed-up | tokens | every turn (ms/step) |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for block in [b.strip() for b in args.blocks.split(",") if b.strip()]:
        torch.manual_seed(0)
        model = build_model(preset_with_block(args.preset, block)).to(dev).eval()
        for batch in batches:
            counts = [g for g in groups if g <= batch]
            runs: dict[int, list[float]] = {g: [] for g in counts}
            for r in range(args.rounds):
                for g in counts:
                    with environment({VAR: str(g)}):
                        runs[g].append(steady_step_seconds(model, batch, dev, args.steps, True) * 1e3)
                    print(f"{block} batch {batch} round {r + 1}: {g} groups: {runs[g][-1]:.3f} ms/step", flush=True)
            ms = {g: statistics.median(v) for g, v in runs.items()}
            base = sampled_tokens(model, batch, dev, 1, args.check_seconds) if args.check_seconds > 0 else None
            for g in counts:
                note = "–"
                if base is not None and g > 1:
                    differ = int((sampled_tokens(model, batch, dev, g, args.check_seconds) != base).sum())
                    note = "identical" if differ == 0 else f"{differ} of {base.numel()} differ"
                lines.append(f"| {block} | {batch} | {g} | {ms[g]:.3f} | {ms[1] / ms[g]:.2f}× | {note} | "
                             f"{turns(runs[g])} |")
        del model
        torch.cuda.empty_cache()
    emit_report(lines, args.out)
    sync(dev)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
