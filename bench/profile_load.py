"""Where loading a run's weights onto the device goes (issue 18: at one stream, sc09-small's one-second
clip spent 0.15-0.29 s loading against youtubemix's 0.04 s, H100 2026-12-07): reading the checkpoint, the
model's construction on the device, ``load_state_dict`` and the move, each timed apart, for the checkpoint
written one record per tensor (format 1) and packed (format 2,
:func:`audiomamba.train.checkpoint.pack_tensors`); then the whole load of the packed one under cProfile.

``python -m audiomamba.bench.profile_load [--preset P] [--block B] [--rounds 5] [--top 25] [--device D]``:
a random model's checkpoint, shaped as ``audiomamba train`` writes one (weights, EMA, AdamW state:
:func:`audiomamba.bench.generate.checkpoint_like_training`), is loaded the way ``audiomamba generate`` loads
a run, the two formats taking turns. Runs on the CPU too (``--device cpu``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import tempfile
import time
from pathlib import Path

import torch
from audiomamba.bench.device import sync
from audiomamba.bench.generate import add_model_args, checkpoint_like_training, preset_with_block

from audiomamba.model import build_model
from audiomamba.train.checkpoint import load_checkpoint, model_from_state, save_checkpoint


def _parts(weights: Path, dev: torch.device) -> dict[str, float]:
    """Seconds of each part of one load as :func:`model_from_state` does it: the checkpoint read (mapped), the
    build on the device, load_state_dict of the EMA weights, the move and eval."""
    t = [time.perf_counter()]
    state = load_checkpoint(weights, mmap=True)
    t.append(time.perf_counter())
    with torch.device(dev):
        model = build_model(state["model_config"])
    sync(dev)
    t.append(time.perf_counter())
    model.load_state_dict({**state["model"], **state["ema"]})
    sync(dev)
    t.append(time.perf_counter())
    model.to(dev).eval()
    sync(dev)
    t.append(time.perf_counter())
    names = ("read the checkpoint", "build on device", "load_state_dict", "to + eval")
    return {n: b - a for n, a, b in zip(names, t[:-1], t[1:], strict=True)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_args(parser, batch=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    dev = torch.device(args.device)
    config = preset_with_block(args.preset, args.block)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        state = checkpoint_like_training(build_model(config), config)
        plain, packed = "format 1 (a record per tensor)", "format 2 (packed)"
        files = {plain: Path(tmp) / "plain.pt", packed: Path(tmp) / "packed.pt"}
        torch.save({**state, "format": 1}, files[plain])
        save_checkpoint(files[packed], state)
        moments = sum(len(v) for v in state["optimizer"]["state"].values())
        n_tensors = len(state["model"]) + len(state["ema"]) + moments
        for f in files.values():  # warm-up
            model_from_state(load_checkpoint(f, mmap=True), dev)
        sync(dev)
        rounds: dict[str, list[dict[str, float]]] = {k: [] for k in files}
        for _ in range(args.rounds):
            for name, f in files.items():
                rounds[name].append(_parts(f, dev))
        prof = cProfile.Profile()
        prof.enable()
        model_from_state(load_checkpoint(files[packed], mmap=True), dev)
        sync(dev)
        prof.disable()
    n_params = sum(v.numel() for v in state["model"].values())
    print(f"{args.preset} `{args.block}` on {dev}: {n_params / 1e6:.2f} M parameters, {n_tensors} tensors in "
          f"the checkpoint; ms, median of {args.rounds} rounds, the formats taking turns\n")
    parts = list(next(iter(rounds.values()))[0])
    print("| checkpoint | " + " | ".join(parts) + " | in all |")
    print("|---|" + "---:|" * (len(parts) + 1))
    for name, rs in rounds.items():
        cells = [f"{statistics.median(r[p] for r in rs) * 1e3:.1f}" for p in parts]
        in_all = statistics.median(sum(r.values()) for r in rs) * 1e3
        print(f"| {name} | " + " | ".join(cells) + f" | {in_all:.1f} |")
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(key).print_stats(args.top)
        print(f"\ncProfile of one model_from_state, by {key}:\n{out.getvalue()}")


if __name__ == "__main__":
    main()
