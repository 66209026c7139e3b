"""Where the sampling's time goes beyond the steady step (diagnostic, 2026-12-06): the steady step, the start-up and
first period, the body's ms per step, the last period against the first (the eager last step and the end's checks),
each piece of the copies to the CPU timed with a sync (transposes, ``host_copy``, pinned allocations, the widening of
uint8 tokens, a pageable ``.cpu()``), then ``generate_tokens`` with and without the progress bar.

Run on the device machine after the install line: ``cp docs/gpu/sampling_phases.py /tmp &&
cd /tmp && python3 /tmp/sampling_phases.py sc09-small`` (docs/gpu/README.md).
"""
import sys
import time

import torch
from audiomamba.bench.generate import build_model, preset_with_block, steady_step_seconds

from audiomamba.generate.sampler import generate_tokens, host_copy
from audiomamba.generate.stepper import SamplingConfig, Stepper


class Laps:
    """Seconds between syncs, by name."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.last = time.perf_counter()

    def __call__(self, name: str) -> None:
        torch.cuda.synchronize()
        now = time.perf_counter()
        self.marks[name] = now - self.last
        self.last = now


def end_pieces(tokens: torch.Tensor, logp: torch.Tensor, length: int) -> dict[str, float]:
    """The copies at the end of a sampling, piece by piece: (time, B) buffers to (B, length) on the CPU."""
    lap = Laps()
    tok, lp = tokens[:length].T.contiguous(), logp[:length].T.contiguous()
    lap("transpose")
    host_copy(tok, small=True)
    lap("tokens host_copy")
    host_copy(lp)
    lap("logp host_copy")
    pinned = torch.empty(lp.shape, dtype=torch.float32, pin_memory=True)
    lap("pinned float32 alloc")
    pinned.copy_(lp)
    lap("logp into it")
    narrow = torch.empty(tok.shape, dtype=torch.uint8, pin_memory=True)
    lap("pinned uint8 alloc")
    narrow.copy_(tok.to(torch.uint8))
    lap("uint8 copy")
    narrow.long()
    lap("widen")
    tok.cpu()
    lap("pageable tokens .cpu()")
    return lap.marks


preset = sys.argv[1] if len(sys.argv) > 1 else "sc09-small"
dev = torch.device("cuda")
torch.manual_seed(0)
model = build_model(preset_with_block(preset, "mamba-s6")).to(dev).eval()
B, L = 2048, 16000
for steps in (256, 2048):
    print(f"steady over {steps}: {steady_step_seconds(model, B, dev, steps, True) * 1e3:.4f} ms")
for rep in range(2):
    st = Stepper(model, B, dev, SamplingConfig(), use_graph=True, seed=0)
    n = L // st.period
    t0 = time.perf_counter()
    marks = {}
    done = None
    for done in st.periods(None, L):
        k = done[0]
        if k in (1, n - 1):
            torch.cuda.synchronize()
            marks["first period synced" if k == 1 else "period n-1 synced"] = time.perf_counter() - t0
        if k == 100:
            marks["period 100 queued"] = time.perf_counter() - t0
    marks["loop done (queued)"] = time.perf_counter() - t0
    torch.cuda.synchronize()
    marks["gpu done"] = time.perf_counter() - t0
    _, tokens, logp = done
    pieces = end_pieces(tokens, logp, L)
    body = marks["gpu done"] - marks["first period synced"]
    print(f"rep {rep}: startup {st.startup}; " + "; ".join(f"{name} {v:.4f}" for name, v in {**marks, **pieces}.items())
          + f"; body {body / (L - 16) * 1e3:.4f} ms/step", flush=True)
for progress in (False, True):
    t0 = time.perf_counter()
    gen = generate_tokens(model, B, L, B, SamplingConfig(), 0, None, dev, progress=progress)
    print(f"generate_tokens progress={progress}: {time.perf_counter() - t0:.3f} s (reported {gen.seconds:.3f}, "
          f"startup {gen.startup})")
