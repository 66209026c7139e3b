"""Where loading a run's weights onto the device goes (issue 18: at one stream, sc09-small's one-second clip spends
0.15-0.29 s loading against youtubemix's 0.04 s, H100 2026-12-07): ``torch.load`` of the checkpoint, the model's
construction on the device, ``load_state_dict`` and the move, each timed apart, then the whole
:func:`model_from_state` under cProfile.

``python -m audiomamba.bench.profile_load [--preset P] [--block B] [--rounds 5] [--top 25] [--device cuda]``: a
random model's weights are saved as ``bench generate --matrix`` saves them; each round loads them the way
``audiomamba generate`` does. Runs on the CPU too (``--device cpu``).
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
from audiomamba.bench.generate import add_model_args, preset_with_block

from audiomamba.model import build_model
from audiomamba.train.checkpoint import model_from_state


def _parts(weights: Path, dev: torch.device) -> dict[str, float]:
    """Seconds of each part of one load: torch.load (mmap), build on the device, load_state_dict, eval."""
    t = [time.perf_counter()]
    state = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
    t.append(time.perf_counter())
    with torch.device(dev):
        model = build_model(state["model_config"])
    sync(dev)
    t.append(time.perf_counter())
    model.load_state_dict(state["model"])
    sync(dev)
    t.append(time.perf_counter())
    model.to(dev).eval()
    sync(dev)
    t.append(time.perf_counter())
    names = ("torch.load", "build on device", "load_state_dict", "to + eval")
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
        weights = Path(tmp) / "weights.pt"
        torch.save({"model_config": config, "model": build_model(config).state_dict()}, weights)
        model_from_state(torch.load(weights, map_location="cpu", weights_only=True, mmap=True), dev)  # warm-up
        sync(dev)
        rounds = [_parts(weights, dev) for _ in range(args.rounds)]
        prof = cProfile.Profile()
        prof.enable()
        model_from_state(torch.load(weights, map_location="cpu", weights_only=True, mmap=True), dev)
        sync(dev)
        prof.disable()
    n_params = sum(v.numel() for v in build_model(config).state_dict().values())
    print(f"{args.preset} `{args.block}` on {dev}: {n_params / 1e6:.2f} M parameters, median of {args.rounds} rounds")
    for name in rounds[0]:
        print(f"- {name}: {statistics.median(r[name] for r in rounds) * 1e3:.1f} ms")
    print(f"- in all: {statistics.median(sum(r.values()) for r in rounds) * 1e3:.1f} ms")
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(key).print_stats(args.top)
        print(f"\ncProfile of one model_from_state, by {key}:\n{out.getvalue()}")


if __name__ == "__main__":
    main()
