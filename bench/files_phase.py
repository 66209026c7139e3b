"""The files phase at the end of a generation (issue 18: 2048 x 1 s written after sampling), two questions side by side
in one process, turns interleaved (median of the turns after the first):

    python -m audiomamba.bench.files_phase grid [--turns 4]        # needs a GPU
    python -m audiomamba.bench.files_phase wavs [--n 2048] [--turns 3]

``grid``: ``generate_to_folder`` for 2048 one-second sc09-small ``mamba-s6`` samples (random weights, sampling capped at
512 steps, files at full length) with the spectrogram grid's figure built ahead while sampling (``preload_plotting``,
the default) and built at the end; the files phase (``timings["files"]``) and the thread-seconds of its parts.
``wavs``: ``n`` one-second WAVs written by pools of 1, 4, 8 and 16 threads, atomically (``save_pcm16``: a temp file,
then a rename) and straight to their names; seconds by the wall.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from audiomamba.bench.generate import capped_sampling, cuda_model

from audiomamba.audio import save_pcm16, wav_header


def _direct(path: Path, pcm: np.ndarray) -> None:
    with open(path, "wb") as fh:
        fh.write(wav_header(pcm.shape[0], 16000))
        fh.write(pcm.tobytes())


def wavs(n: int, turns: int) -> None:
    pcm = np.random.default_rng(0).integers(-3000, 3000, (n, 16000)).astype("<i2")
    seen: dict[tuple[str, int], list[float]] = {}
    root = Path(tempfile.mkdtemp())
    for _ in range(turns):
        for name, fn in (("atomic (temp file, rename)", save_pcm16), ("straight to the name", _direct)):
            for workers in (1, 4, 8, 16):
                out = root / "out"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                t0 = time.perf_counter()
                with ThreadPoolExecutor(workers) as pool:
                    for job in [pool.submit(fn, out / f"sample_{i:05d}.wav", pcm[i]) for i in range(n)]:
                        job.result()
                seen.setdefault((name, workers), []).append(time.perf_counter() - t0)
    shutil.rmtree(root, ignore_errors=True)
    print(f"{n} one-second WAVs, seconds by the wall (median of {turns}; every turn)")
    print("| writer | threads | seconds | every turn |\n|---|---:|---:|---|")
    for (name, workers), times in seen.items():
        print(f"| {name} | {workers} | {statistics.median(times):.3f} | {' '.join(f'{t:.3f}' for t in times)} |")


def grid(turns: int) -> None:
    import audiomamba.generate as gen_pkg
    from audiomamba.generate import SamplingConfig

    got = cuda_model(types.SimpleNamespace(preset="sc09-small", block="mamba-s6", batch=2048), "files_phase grid")
    if got is None:
        return
    dev, model = got
    real = gen_pkg.preload_plotting
    seen: dict[str, list[dict[str, float]]] = {"ahead": [], "at the end": []}
    out = Path(tempfile.mkdtemp())
    try:
        for turn in range(turns):
            for mode in seen:
                gen_pkg.preload_plotting = real if mode == "ahead" else (lambda *a, **k: None)
                shutil.rmtree(out, ignore_errors=True)
                timings: dict[str, float] = {}
                with capped_sampling(512):
                    gen_pkg.generate_to_folder(model, out, 2048, 1.0, 2048, SamplingConfig(), device=dev,
                                               progress=False, timings=timings)
                if turn:  # the first turn compiles and warms up
                    seen[mode].append(timings)
    finally:
        gen_pkg.preload_plotting = real
        shutil.rmtree(out, ignore_errors=True)
    parts = ("files", "grid", "wavs", "noise", "index")
    print(f"2048 x 1 s of sc09-small: the files phase (s by the wall) and its parts (thread-s), median of {turns - 1}")
    print("| grid figure | " + " | ".join(parts) + " |\n|---|" + "---:|" * len(parts))
    for mode, runs in seen.items():
        print(f"| {mode} | " + " | ".join(f"{statistics.median(r.get(p, 0.0) for r in runs):.2f}" for p in parts) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("grid", "wavs"))
    parser.add_argument("--n", type=int, default=2048, help="WAVs per turn (wavs)")
    parser.add_argument("--turns", type=int, default=0, help="turns (default: 4 for grid, 3 for wavs)")
    args = parser.parse_args(argv)
    if args.what == "wavs":
        wavs(args.n, args.turns or 3)
    else:
        grid(max(2, args.turns or 4))


if __name__ == "__main__":
    main()
