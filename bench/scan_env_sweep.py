"""Forward of the scan under each value of one tuning variable, side by side in one run (GPU).

    python -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_UNROLL 1,2,4,8

Every benchmark shape of ``audiomamba bench kernel``, fp32 and bf16: ms, % of the HBM roofline,
speed-up against the first value, and the largest relative difference of the outputs.
"""

from __future__ import annotations

import os
import sys

from audiomamba.bench.kernel import (
    DTYPES,
    FULL_CASES,
    copy_bandwidth,
    make_inputs,
    make_timer,
    min_bytes,
    pass_fn,
)


def main(var: str, values: list[str]) -> None:
    from audiomamba.kernels import selective_scan

    timer = make_timer("cuda", False)
    bw = copy_bandwidth("cuda", timer)
    print(f"copy bandwidth {bw / 1e9:.0f} GB/s; {var} in {values}")
    for case in FULL_CASES:
        for dname in ("fp32", "bf16"):
            inputs = make_inputs(case, DTYPES[dname], "cuda")
            times, outs = [], []
            for v in values:
                os.environ[var] = "" if v == "0" else v
                fn = pass_fn(selective_scan, inputs, False)
                outs.append(fn().float())
                times.append(timer(fn))
            os.environ.pop(var, None)
            roof = min_bytes(case, 2 if dname == "bf16" else 4, False) / bw * 1e3
            err = max(float((o - outs[0]).abs().max() / outs[0].abs().max()) for o in outs)
            cells = "  ".join(f"{v}: {t:.3f} ms ({roof / t * 100:.0f}%, {times[0] / t:.2f}x)" for v, t in zip(values, times, strict=True))
            print(f"{case.kind} {case.label()} {dname}: {cells}  maxrel {err:.1e}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m audiomamba.bench.scan_env_sweep VARIABLE V1,V2,... (e.g. AUDIOMAMBA_SCAN_UNROLL 1,2,4,8)")
    main(sys.argv[1], sys.argv[2].split(","))
