"""Writing generated samples (WAVs, index, spectrogram grid) with one thread and with a pool,
side by side on the same tokens:

    python -m audiomamba.bench.write_samples [N]

The tokens are digit-like: 0.5 s of mid-range tokens, then the silence token. Each mode writes
into a fresh temporary folder; the table gives seconds and files per second.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

from audiomamba.generate.output import write_samples
from audiomamba.generate.sampler import Generated


def main(n: int = 1024) -> None:
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(100, 156, (n, 16000), generator=gen)
    tokens[:, 8000:] = 128
    samples = Generated(tokens, torch.full((n, 16000), -1.0), 0, 1.0)
    write_samples(samples, Path(tempfile.mkdtemp()), workers=1)  # warm-up: imports, matplotlib
    print("| mode | samples | seconds | files/s |\n|---|---|---|---|")
    for name, workers in (("one thread", 1), ("thread pool (default)", None)):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_samples(samples, Path(tmp), sashimi_filter=True, workers=workers)
            dt = time.perf_counter() - t0
        print(f"| {name} | {n} | {dt:.2f} | {n / dt:.0f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)
