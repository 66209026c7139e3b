"""The batched generation step's kernels against cuBLAS products of the same shapes, one ``mamba-s6`` block per width.

Run on a GPU::

    python -m audiomamba.bench.step_vs_cublas [--batch 2048] [--out FILE]

Per block width H (d_inner = 2H, N = 16, rank ceil(H / 16), conv of 4) at the given batch, µs per call of a CUDA
graph of 20 calls replayed 10 times (:func:`audiomamba.bench.fused_step.graph_us`): our LayerNorm + in_proj + conv
kernel, x_proj kernel and out_proj kernel (launched as the fused step launches them, :data:`TILES_BATCHED`), the whole
block step, and torch's products of the same shapes (LayerNorm + mm, mm alone in float32, TF32 and bfloat16, the
x_proj's mm, and out_proj as one addmm with the residual). It says where a cuBLAS product would beat a Triton tile.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
import triton
from audiomamba.kernels import triton_mamba_step as S

N, K = 16, 4
COLUMNS = (("in", "in_proj + conv (ours)"), ("lnmm", "LayerNorm + mm"), ("mm", "mm fp32"), ("tf32", "mm tf32"),
           ("bf16", "mm bf16"), ("x", "x_proj (ours)"), ("mmx", "mm x_proj"), ("out", "out_proj + residual (ours)"),
           ("addmm", "addmm out"), ("block", "block step (ours)"))


def width_row(H: int, batch: int, timer) -> dict[str, float]:
    """µs per call of every column of :data:`COLUMNS` at block width H (``timer(fn) -> µs``)."""
    from audiomamba.model.blocks import BLOCKS
    from audiomamba.model.config import ModelConfig

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    E, R = 2 * H, -(-H // 16)
    g = torch.Generator().manual_seed(0)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(dev)

    x, res = r(batch, H), r(batch, H)
    nw, nb = 1 + 0.1 * r(H), 0.1 * r(H)
    win, wx, wo = r(2 * E, H) / H ** 0.5, r(R + 2 * N, E) / E ** 0.5, r(H, E) / E ** 0.5
    win_t, wx_t, wo_t = win.t().contiguous(), wx.t().contiguous(), wo.t().contiguous()
    cw, cb, conv = r(E, K) / 2, 0.1 * r(E), r(batch, E, K - 1)
    u, z, y = torch.empty((3, batch, E), device=dev)
    dbc, out = torch.empty((batch, R + 2 * N), device=dev), torch.empty_like(x)
    t = S.batched_tiles()
    rows, block_h = t["rows"], min(S._pad(H), t["in_h"])
    block_k, out_k = min(S._pad(E), t["k"]), min(S._pad(E), t["out_k"])
    common = dict(USE_DOT=True, PREC=S.default_precision(), BLOCK_B=rows, num_warps=S.NUM_WARPS, PDL=False,
                  launch_pdl=False)
    n_rows = triton.cdiv(batch, rows)
    split = bool(t.get("x_split"))
    cfg = ModelConfig.from_dict({"d_model": H, "pool": [], "levels": [], "center": {"block": "mamba-s6", "n": 1}})
    block = BLOCKS["mamba-s6"](H, cfg).to(dev)
    state = block.init_state(batch, dev)
    x_bf, win_bf = x.bfloat16(), win_t.bfloat16()
    calls = {
        "in": lambda: S._in_conv_kernel[(n_rows, triton.cdiv(E, t["in_e"]))](
            x, nw, nb, win, cw, cb, conv, u, z, batch, H, E, 1e-5, K=K, BLOCK_H=block_h, BLOCK_E=t["in_e"],
            PRELOAD=False, ONE_CHUNK=H <= block_h, EVEN=S._even(rows, batch, (E, t["in_e"]), (H, block_h)), **common),
        "lnmm": lambda: torch.mm(F.layer_norm(x, (H,), nw, nb, 1e-5), win_t),
        "mm": lambda: torch.mm(x, win_t),
        "bf16": lambda: torch.mm(x_bf, win_bf),
        "x": lambda: S._xproj_kernel[(n_rows, 3 if split else 1)](
            u, wx, dbc, batch, E, N, R, BLOCK_K=block_k, BLOCK_N=S._pad(N), BLOCK_R=S._pad(R),
            EVEN=S._even(rows, batch, (E, block_k), (N, S._pad(N))), SPLIT=split,
            **dict(common, num_warps=t.get("x_warps", S.NUM_WARPS))),
        "mmx": lambda: torch.mm(u, wx_t),
        "out": lambda: S._out_proj_kernel[(n_rows, triton.cdiv(H, t["out_h"]))](
            y, wo, x, res, out, batch, H, E, HAS_RES=True, BLOCK_H=t["out_h"], BLOCK_K=out_k, PRELOAD=False,
            EVEN=S._even(rows, batch, (H, t["out_h"]), (E, out_k)), **common),
        "addmm": lambda: torch.addmm(res, y, wo_t),
        "block": lambda: block.step(x, state, res),
    }
    us = {}
    tf32 = torch.backends.cuda.matmul.allow_tf32
    with torch.no_grad():
        try:
            torch.backends.cuda.matmul.allow_tf32 = False
            for name, fn in calls.items():
                us[name] = timer(fn)
            torch.backends.cuda.matmul.allow_tf32 = True
            us["tf32"] = timer(calls["mm"])
        finally:
            torch.backends.cuda.matmul.allow_tf32 = tf32
    return us


def table(batch: int, widths: tuple[int, ...] = (64, 128, 256), timer=None) -> str:
    """The markdown table (µs per call; ``timer`` default: CUDA-graph replays)."""
    if timer is None:
        from audiomamba.bench.fused_step import graph_us as timer
    lines = [f"batch {batch}, µs per call (CUDA graph of 20 calls, 10 replays)", "",
             "| H | d_inner | " + " | ".join(title for _, title in COLUMNS) + " |",
             "|---:|---:|" + "---:|" * len(COLUMNS)]
    for H in widths:
        us = width_row(H, batch, timer)
        lines.append(f"| {H} | {2 * H} | " + " | ".join(f"{us[key]:.1f}" for key, _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("step_vs_cublas needs a CUDA device")
    text = table(args.batch)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
