"""Where the sampling's time goes beyond the steady step (diagnostic, 2026-12-06).

Run on the device machine after the install line: ``cp docs/gpu/sampling_phases.py /tmp &&
cd /tmp && python3 /tmp/sampling_phases.py sc09-small`` (docs/gpu/README.md).
"""
import sys
import time

import torch
from audiomamba.bench.generate import build_model, preset_with_block, steady_step_seconds

from audiomamba.generate.sampler import generate_tokens
from audiomamba.generate.stepper import SamplingConfig, Stepper

preset = sys.argv[1] if len(sys.argv) > 1 else "sc09-small"
dev = torch.device("cuda")
torch.manual_seed(0)
model = build_model(preset_with_block(preset, "mamba-s6")).to(dev).eval()
B, L = 2048, 16000
for steps in (256, 2048):
    print(f"steady over {steps}: {steady_step_seconds(model, B, dev, steps, True) * 1e3:.4f} ms")
for rep in range(2):
    st = Stepper(model, B, dev, SamplingConfig(), use_graph=True, seed=0)
    t0 = time.perf_counter()
    marks = {}
    done = None
    for done in st.periods(None, L):
        k = done[0]
        if k == 1:
            torch.cuda.synchronize()
            marks["first period synced"] = time.perf_counter() - t0
        if k == 100:
            marks["period 100 queued"] = time.perf_counter() - t0
    marks["loop done (queued)"] = time.perf_counter() - t0
    torch.cuda.synchronize()
    marks["gpu done"] = time.perf_counter() - t0
    _, tokens, logp = done
    tok = tokens[:L].T.contiguous()
    lp = logp[:L].T.contiguous()
    torch.cuda.synchronize()
    marks["transposed"] = time.perf_counter() - t0
    a, b = tok.cpu(), lp.cpu()
    marks["to cpu"] = time.perf_counter() - t0
    torch.cat([a]), torch.cat([b])
    marks["cat"] = time.perf_counter() - t0
    body = marks["gpu done"] - marks["first period synced"]
    print(f"rep {rep}: startup {st.startup}; " + "; ".join(f"{n} {v:.3f}" for n, v in marks.items())
          + f"; body {body / (L - 16) * 1e3:.4f} ms/step")
for progress in (False, True):
    t0 = time.perf_counter()
    gen = generate_tokens(model, B, L, B, SamplingConfig(), 0, None, dev, progress=progress)
    print(f"generate_tokens progress={progress}: {time.perf_counter() - t0:.3f} s (reported {gen.seconds:.3f}, "
          f"startup {gen.startup})")
