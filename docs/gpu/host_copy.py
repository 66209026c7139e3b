"""The end of sampling at 2048 x 1 s: plain .cpu() copies against host_copy (diagnostic, 2026-12-06).

Run on the device machine after the install line: ``cp docs/gpu/host_copy.py /tmp &&
cd /tmp && python3 /tmp/host_copy.py`` (docs/gpu/README.md).
"""
import time

import torch

from audiomamba.generate.sampler import host_copy

L, B = 16000, 2048
tok = torch.randint(0, 256, (L, B), device="cuda").T.contiguous()
lp = torch.rand(L, B, device="cuda").T.contiguous()
torch.cuda.synchronize()
for rep in range(3):
    t0 = time.perf_counter()
    a, b = tok.cpu(), lp.cpu()
    t1 = time.perf_counter()
    c, d = host_copy(tok, small=True), host_copy(lp)
    t2 = time.perf_counter()
    assert torch.equal(a, c) and torch.equal(b, d)
    print(f"rep {rep}: .cpu() {t1 - t0:.3f} s, host_copy {t2 - t1:.3f} s ({(t1 - t0) / (t2 - t1):.2f}x)")
