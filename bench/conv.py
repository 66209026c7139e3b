"""The Mamba block's causal conv + SiLU: PyTorch (transpose, padded depthwise Conv1d, slice, SiLU,
contiguous copy) against the fused Triton kernel (``kernels/triton_conv.py``), side by side in one run.

    python -m audiomamba.bench.conv            # GPU: ms fwd and fwd+bwd, ratio, max rel. difference,
                                               # and fwd+bwd with the split backward (AUDIOMAMBA_CONV_BWD=split)
    python -m audiomamba.bench.conv --device cpu   # tiny smoke run (interpreter)

Shapes: the sc09-small levels (batch 16; L 16000 / 4000 / 1000 with E = 128 / 256 / 512, k = 4) and
youtubemix's first level (8 × 131072, E = 128); x is the first half of a (B, L, 2E) in_proj output,
as in the block. fp32 and bf16 inputs (the weights stay fp32, as under autocast).
"""

from __future__ import annotations

import sys

import torch
from audiomamba.bench.kernel import make_timer, max_rel_diff
from audiomamba.bench.model import environment

SHAPES = [(16, 16000, 128), (16, 4000, 256), (16, 1000, 512), (8, 131072, 128)]
SMOKE = [(2, 100, 8)]


def pytorch_path(xz, w, b):
    """What MambaMixer does without the kernel (weights cast to the input dtype, as autocast does)."""
    from audiomamba.kernels.triton_conv import causal_conv1d_silu_ref

    return causal_conv1d_silu_ref(xz[..., : w.shape[0]], w.to(xz.dtype), b.to(xz.dtype)).contiguous()


def _case(B: int, L: int, E: int, dtype: torch.dtype, device: str, timer) -> str:
    """One row: both paths' fwd and fwd+bwd ms, the speed-ups and the largest relative difference of u."""
    from audiomamba.kernels.triton_conv import causal_conv1d_silu

    g = torch.Generator(device=device).manual_seed(0)
    xz = torch.randn(B, L, 2 * E, device=device, generator=g).to(dtype).requires_grad_()
    w = (torch.randn(E, 4, device=device, generator=g) * 0.5).requires_grad_()
    b = torch.randn(E, device=device, generator=g).requires_grad_()
    gu = torch.randn(B, E, L, device=device, generator=g).to(dtype)
    paths = {"pytorch": lambda: pytorch_path(xz, w, b), "triton": lambda: causal_conv1d_silu(xz[..., :E], w, b)}
    with torch.no_grad():
        rel = max_rel_diff(paths["triton"](), paths["pytorch"]())
    t = {k: (timer(fn), timer(lambda fn=fn: torch.autograd.grad(fn(), (xz, w, b), gu))) for k, fn in paths.items()}
    (pf, pfb), (tf, tfb) = t["pytorch"], t["triton"]
    # the split backward (AUDIOMAMBA_CONV_BWD=split) in the same run, and its dx against the default's
    grads = {}
    with environment({"AUDIOMAMBA_CONV_BWD": "split"}):
        sfb = timer(lambda: torch.autograd.grad(paths["triton"](), (xz, w, b), gu))
        grads["split"] = torch.autograd.grad(paths["triton"](), (xz, w, b), gu)
    grads["recompute"] = torch.autograd.grad(paths["triton"](), (xz, w, b), gu)
    rel_dx = max_rel_diff(grads["split"][0], grads["recompute"][0])
    return (f"({B}, {L}, E={E}) {str(dtype)[6:]}: fwd {pf:.3f} -> {tf:.3f} ms ({pf / tf:.2f}x)  "
            f"fwd+bwd {pfb:.3f} -> {tfb:.3f} ms ({pfb / tfb:.2f}x)  rel {rel:.1e}  "
            f"split bwd: fwd+bwd {sfb:.3f} ms ({tfb / sfb:.2f}x the default, {pfb / sfb:.2f}x PyTorch), dx rel {rel_dx:.1e}")



def main(device: str = "cuda") -> None:
    timer = make_timer(device, device != "cuda")
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"{name}; ms per call; speed-up = PyTorch ms / Triton ms; rel = max |Triton - PyTorch| / max |PyTorch|")
    for B, L, E in SHAPES if device == "cuda" else SMOKE:
        for dtype in (torch.float32, torch.bfloat16):
            print(_case(B, L, E, dtype, device, timer), flush=True)


if __name__ == "__main__":
    main("cpu" if "--device" in sys.argv and sys.argv[-1] == "cpu" else "cuda")
