"""Bar plot of mamba_ssm ms ÷ Triton ms per row of two `bench kernel --peer mamba_ssm` reports (> 1: ours is faster).

    python results/scan-vs-peer-plot.py results/bench-kernel-peer-2026-12-04-0015.md \
        results/bench-kernel-peer-2026-12-04-0049.md results/scan-vs-peer-2026-12-04.png
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def ratios(path: str) -> dict[str, float]:
    out = {}
    for line in open(path, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 14 and cells[0].startswith("("):
            shape, kind, dtype, pas = cells[:4]
            # from the two ms columns (the report's ratio cell is rounded to two digits)
            out[f"{shape} {'cplx' if 'complex' in kind else 'sel'} {dtype} {pas}"] = float(cells[11]) / float(cells[4])
    return out


def main(a: str, b: str, png: str) -> None:
    ra, rb = ratios(a), ratios(b)
    keys = list(rb)
    fig, ax = plt.subplots(figsize=(9, 10))
    y = range(len(keys))
    ax.barh([i + 0.2 for i in y], [ra.get(k, 0) for k in keys], height=0.4, label=a.split("/")[-1], color="#bbbbbb")
    ax.barh([i - 0.2 for i in y], [rb[k] for k in keys], height=0.4, label=b.split("/")[-1],
            color=["#2a7" if rb[k] >= 1.0 else "#d55" for k in keys])
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks(list(y), keys, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("mamba_ssm ms ÷ Triton ms (> 1: ours is faster)")
    ax.set_title("Scan against mamba_ssm, one H200, same run per report")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:4])
