"""The batched generation step's launch tiles side by side (issue 18), in one process on a GPU.

    python -m audiomamba.bench.step_tiles [--preset sc09-small] [--block mamba-s6] [--batch 2048]
                                          [--configs "in_warps=8;in_e=64,in_warps=8;..."] [--rounds 2] [--out F]

With ``--var NAME`` the configurations are values of another environment variable that the step reads (e.g.
``--var AUDIOMAMBA_STEP_EVEN --configs 0``: the masked kernels against the default; ``--var AUDIOMAMBA_STEP_RUNS
--configs "1;split" --batch 1``: one launch per run of blocks against the per-block launches), timed and checked the
same way, without the per-kernel combination. Several variables at once: ``--var A,B --configs "1,8;2,16"``.

Each configuration is an ``AUDIOMAMBA_STEP_TILES`` value (``kernels.triton_mamba_step.batched_tiles``: rows per
program, channels and warps per kernel); "default" is the tiles as committed. For each one, the whole model's steady
ms per full-rate step (CUDA-graph replays of one pooling period, as generation runs; ``bench.generate.
steady_step_seconds``), the configurations taking turns ``--rounds`` times (the median is kept), and the largest
difference of its logits from the default's after one period of teacher-forced steps, relative to their scale (the
tiles change only how the sums are blocked: about 1e-6 in float32). Then the best configuration per kernel group
(in_proj + conv, x_proj, state update, out_proj) is combined and timed against the default, side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
from datetime import UTC, datetime

import torch
from audiomamba.bench.device import device_name, emit_report, sync
from audiomamba.bench.generate import add_model_args, cuda_model, groups_note, steady_step_seconds
from audiomamba.bench.step_groups import turns
from audiomamba.kernels.triton_mamba_step import batched_tiles

from audiomamba.generate.stepper import initial_state, step_period

DEFAULT = "default"
TILES_VAR = "AUDIOMAMBA_STEP_TILES"
#: one kernel's tiles at a time (the others as committed): in_proj + conv, x_proj, state update, out_proj, all rows
CONFIGS = (
    "in_warps=8", "in_e=16", "in_e=64", "in_e=64,in_warps=8", "in_h=64", "in_h=64,in_warps=8", "in_rows=32,in_warps=8",
    "in_e=16,in_warps=2",
    "x_rows=32", "x_rows=64,x_warps=8", "x_warps=8", "k=64",
    "ssm_e=8", "ssm_e=32", "ssm_warps=2", "ssm_warps=8",
    "out_h=64", "out_warps=8", "out_h=64,out_warps=8", "out_rows=32,out_warps=8", "out_k=128",
    "rows=32",
)


def group(config: str) -> str:
    """The kernel a configuration tunes, by its keys' prefix: "in", "x", "ssm", "out" or "all"."""
    if config == DEFAULT:
        return DEFAULT
    keys = {part.split("=")[0] for part in config.split(",")}
    for prefix in ("in", "x", "ssm", "out"):
        if all(k.startswith(prefix + "_") for k in keys):
            return prefix
    return {"k": "x"}.get(next(iter(keys)), "all") if len(keys) == 1 else "all"


def logits_after_period(model: torch.nn.Module, batch: int, dev: torch.device, seed: int = 0) -> torch.Tensor:
    """The logits after one pooling period of teacher-forced random tokens from the initial state."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    tokens = torch.randint(0, 256, (step_period(model), batch), generator=g).to(dev)
    state = initial_state(model, batch, dev)
    with torch.no_grad():
        for tok in tokens:
            logits, state = model.step(tok, state)
    return logits.float()


def combine(best: dict[str, str]) -> str:
    """The per-group winners joined into one AUDIOMAMBA_STEP_TILES value (groups left at the default drop out)."""
    return ",".join(c for g, c in sorted(best.items()) if c != DEFAULT and g != "all")


def set_vars(var: str, config: str) -> None:
    """Put one configuration in the environment: ``config`` is ``var``'s value, or with several variables (``var``
    "A,B") their values in the same order ("1,8"); :data:`DEFAULT` unsets them all. (``AUDIOMAMBA_STEP_TILES``
    values hold commas of their own, so that variable is always alone.)"""
    names = [var] if var == TILES_VAR else [v.strip() for v in var.split(",")]
    if config == DEFAULT:
        for name in names:
            os.environ.pop(name, None)
        return
    values = [config] if var == TILES_VAR else [v.strip() for v in config.split(",")]
    if len(values) != len(names):
        raise SystemExit(f"--configs {config!r}: give one value per variable of --var {var} (',' between them)")
    for name, value in zip(names, values, strict=True):
        os.environ[name] = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument("--configs", default="", help="';'-separated AUDIOMAMBA_STEP_TILES values (default: a sweep)")
    parser.add_argument("--rounds", type=int, default=2, help="turns each configuration takes (median kept)")
    parser.add_argument("--steps", type=int, default=512, help="full-rate steps timed per turn")
    parser.add_argument("--out", default="", help="also write the report (markdown) here")
    parser.add_argument("--var", default=TILES_VAR, help="the environment variable whose values --configs lists "
                        "(several, ',' between them: each config then gives their values the same way)")
    args = parser.parse_args(argv)
    var, tiles = args.var, args.var == TILES_VAR
    if not tiles and not args.configs.strip():
        raise SystemExit(f"--var {var}: give its values to time with --configs")
    built = cuda_model(args, "step_tiles")
    if built is None:
        return 2
    dev, model = built
    configs = [DEFAULT, *([c.strip() for c in args.configs.split(";") if c.strip()] or CONFIGS)]

    def setting(config: str) -> None:
        set_vars(var, config)
        if tiles:
            batched_tiles()  # a bad value fails here, before any launch

    def timed(config: str) -> float:
        setting(config)
        return steady_step_seconds(model, args.batch, dev, args.steps, True) * 1e3

    def diff(config: str, ref: torch.Tensor) -> float:
        setting(config)
        out = logits_after_period(model, args.batch, dev)
        return float((out - ref).abs().max() / ref.abs().max().clamp_min(1e-12))

    setting(DEFAULT)
    ref = logits_after_period(model, args.batch, dev)
    runs: dict[str, list[float]] = {c: [] for c in configs}
    diffs = {c: diff(c, ref) for c in configs}
    for r in range(args.rounds):
        for c in configs:
            runs[c].append(timed(c))
            print(f"round {r + 1}: {c}: {runs[c][-1]:.3f} ms/step", flush=True)
    ms = {c: statistics.median(v) for c, v in runs.items()}
    best: dict[str, str] = {}
    for c in configs[1:] if tiles else ():
        g = group(c)
        if diffs[c] < 1e-4 and ms[c] < ms[best.get(g, DEFAULT)]:
            best[g] = c
    combined = combine(best)
    final = {}
    if combined:
        for _ in range(args.rounds + 1):
            for c in (DEFAULT, combined):
                final.setdefault(c, []).append(timed(c))
    setting(DEFAULT)
    lines = [
        f"Device: {device_name(dev)}; torch {torch.__version__}; date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"Command: python -m audiomamba.bench.step_tiles --preset {args.preset} --block {args.block} --batch {args.batch} "
        f"--rounds {args.rounds} --steps {args.steps}" + ("" if tiles else f" --var {var} --configs '{args.configs}'"),
        "",
        f"{args.preset}, every block {args.block}, batch {args.batch}, fp32, CUDA graphs, {groups_note(dev)}; ms per full-rate step "
        f"(median of {args.rounds} turns); logits diff = max |logits − default's| / max |default's| after one period.",
        "",
        f"| {var} | kernel | ms/step | speed-up | logits diff | every turn (ms/step) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for c in configs:
        lines.append(f"| `{c}` | {group(c) if tiles else '–'} | {ms[c]:.3f} | {ms[DEFAULT] / ms[c]:.2f}× | "
                     f"{diffs[c]:.1e} | {turns(runs[c])} |")
    if combined:
        a, b = statistics.median(final[DEFAULT]), statistics.median(final[combined])
        lines += ["", f"Best per kernel, combined: `{combined}`: {b:.3f} ms/step against the default's {a:.3f} "
                      f"(**{a / b:.2f}×**, same process, {args.rounds + 1} turns each, median)."]
    elif tiles:
        lines += ["", "No configuration beat the default."]
    emit_report(lines, args.out)
    sync(dev)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
