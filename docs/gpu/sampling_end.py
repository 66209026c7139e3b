"""Where the end of a 2048 x 1 s sampling goes (diagnostic, 2026-12-06 14:24): the last period against the first, and
the tokens' and log-probabilities' copies to the CPU piece by piece, each timed with a sync.

Run on the device machine after the install line: ``cp docs/gpu/sampling_end.py /tmp && cd /tmp &&
python3 /tmp/sampling_end.py sc09-small`` (docs/gpu/README.md).
"""

import sys
import time

import torch
from audiomamba.bench.generate import build_model, preset_with_block

from audiomamba.generate.sampler import host_copy
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


preset = sys.argv[1] if len(sys.argv) > 1 else "sc09-small"
dev = torch.device("cuda")
torch.manual_seed(0)
model = build_model(preset_with_block(preset, "mamba-s6")).to(dev).eval()
B, L = 2048, 16000
for rep in range(2):
    st = Stepper(model, B, dev, SamplingConfig(), use_graph=True, seed=0)
    n = L // st.period
    t0 = time.perf_counter()
    marks: dict[str, float] = {}
    done = None
    for done in st.periods(None, L):
        if done[0] in (1, n - 1):
            torch.cuda.synchronize()
            marks["first period synced" if done[0] == 1 else "period n-1 synced"] = time.perf_counter() - t0
    marks["last yield"] = time.perf_counter() - t0
    _, tokens, logp = done
    lap = Laps()
    tk, lk = tokens[:L].T.contiguous(), logp[:L].T.contiguous()
    lap("transpose")
    host_copy(tk, small=True)
    lap("tokens host_copy")
    host_copy(lk)
    lap("logp host_copy")
    pinned = torch.empty(B, L, dtype=torch.float32, pin_memory=True)
    lap("pinned float32 alloc")
    pinned.copy_(lk)
    lap("logp into it")
    narrow = torch.empty(B, L, dtype=torch.uint8, pin_memory=True)
    lap("pinned uint8 alloc")
    narrow.copy_(tk.to(torch.uint8))
    lap("uint8 copy")
    narrow.long()
    lap("widen")
    tk.cpu()
    lap("pageable tokens .cpu()")
    print(f"rep {rep}: startup {st.startup}; " + "; ".join(f"{k} {v:.4f}" for k, v in {**marks, **lap.marks}.items()),
          flush=True)
