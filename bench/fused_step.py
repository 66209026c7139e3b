"""Fused generation-step kernels vs the composed step, per block and per model, in one process.

Run on a GPU::

    python -m audiomamba.bench.fused_step

1. One block step (``mamba-s6`` at widths 64/128/256, ``mamba-s4`` and ``mamba-s4-real`` at 64)
   with a skip input, at batch 1 and 2048: a CUDA graph of 20 calls replayed 10 times, fused
   (``kernels.set_fused_step(True)``) and composed, µs per call.
2. The youtubemix model with every block ``mamba-s4`` or ``mamba-s4-real`` (random weights, CUDA
   graphs, 0.5 s prompts): 16 × 2 s and one 1 s stream, fused and composed.
"""

from __future__ import annotations

import torch
from audiomamba.bench.generate import _fused, time_generate

from audiomamba.generate.stepper import step_period
from audiomamba.model import build_model, load_model_preset
from audiomamba.model.blocks import BLOCKS
from audiomamba.model.config import ModelConfig


def graph_us(fn, calls: int = 20, replays: int = 10) -> float:
    """µs per call of ``fn`` captured ``calls`` times in a CUDA graph (after 3 eager warm-up calls)."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(replays):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1000 / (calls * replays)


def block_row(kind: str, width: int, batch: int) -> str:
    cfg = ModelConfig.from_dict({"d_model": width, "pool": [], "levels": [], "center": {"block": kind, "n": 1}})
    block = BLOCKS[kind](width, cfg).cuda()
    state = block.init_state(batch, "cuda")
    x, skip = torch.randn(batch, width, device="cuda"), torch.randn(batch, width, device="cuda")
    us = {}
    with torch.no_grad():
        for fused in (False, True):
            with _fused(fused):
                us[fused] = graph_us(lambda: block.step(x, state, skip))
    return f"| `{kind}` block step, H = {width}, batch {batch} | {us[True]:.1f} µs | {us[False]:.1f} µs | " \
           f"{us[False] / us[True]:.2f}× |"


def model_rows(kind: str) -> list[str]:
    preset = load_model_preset("youtubemix")
    preset["model"]["levels"] = [{"block": kind, "n": 3}, {"block": kind, "n": 3}]
    preset["model"]["center"] = {"block": kind, "n": 3}
    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = build_model(preset).to(dev).eval()
    rows = []
    for batch, seconds in ((16, 2.0), (1, 1.0)):
        wall = {}
        for fused in (True, False):
            with _fused(fused):
                time_generate(model, batch, 2 * step_period(model) / 16000, batch, dev, True, False)  # compile
                wall[fused] = time_generate(model, batch, seconds, batch, dev, True, False, prompt_s=0.5)
        rate = batch * seconds * 16000 / wall[True]
        rows.append(f"| youtubemix with `{kind}`, {batch} × {seconds:g} s | {wall[True]:.2f} s ({rate:,.0f} samples/s) | "
                    f"{wall[False]:.2f} s | {wall[False] / wall[True]:.2f}× |")
    return rows


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("audiomamba.bench.fused_step needs a CUDA device (the fused kernels and CUDA graphs)")
    print(f"Device: {torch.cuda.get_device_name()}; torch {torch.__version__}")
    print("| case | fused | composed | speed-up |\n|---|---:|---:|---:|")
    for kind, width in (("mamba-s6", 64), ("mamba-s6", 128), ("mamba-s6", 256), ("mamba-s4", 64),
                        ("mamba-s4-real", 64)):
        for batch in (1, 2048):
            print(block_row(kind, width, batch), flush=True)
    for kind in ("mamba-s4", "mamba-s4-real"):
        for row in model_rows(kind):
            print(row, flush=True)


if __name__ == "__main__":
    main()
