"""Grid results as results.csv (one row per run), results.md (the paper's layout) and a plot."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

from audiomamba.ablate.grid import Grid, budget_text

METRICS = ("test_bpb", "fid", "is", "mis", "am", "ndb")


def _agg(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate(grid: Grid, rows: list[dict]) -> list[dict]:
    """Mean and spread over seeds per cell, in the grid's cell order."""
    out = []
    for cell in grid.cells:
        mine = [r for r in rows if r["cell"] == cell.name]
        if not mine:
            continue
        agg = {"cell": cell.name, "row": cell.row, "col": cell.col, "x": cell.x, "paper": cell.paper,
               "seeds": len(mine), "steps": mine[0]["steps"], "params": mine[0]["params"],
               "scheduled_steps": mine[0].get("scheduled_steps")}
        for m in METRICS:
            vals = [float(r[m]) for r in mine if r.get(m) is not None]
            if vals:
                agg[m], agg[m + "_std"] = _agg(vals)
        out.append(agg)
    return out


def _fmt(a: dict, m: str) -> str:
    if m not in a:
        return "–"
    return f"{a[m]:.4f} ± {a[m + '_std']:.4f}" if a["seeds"] > 1 else f"{a[m]:.4f}"


def _steps(a: dict, steps: list[str]) -> list[str]:
    """Steps run; "done of scheduled" when the wall-clock cap cut the schedule short."""
    if not steps:
        return []
    sched = a.get("scheduled_steps")
    return [f"{a['steps']} of {sched}" if sched and int(sched) > int(a["steps"]) else str(a["steps"])]


def write_csv(rows: list[dict], path: Path) -> Path:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    return path


def write_markdown(grid: Grid, agg: list[dict], path: Path, command: str = "") -> Path:
    metrics = [m for m in METRICS if any(m in a for a in agg)]
    lines = [f"# {grid.name}", "", f"Reproduces: {grid.paper}" if grid.paper else "", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [f"Budget: {budget_text(grid)}; seeds: {max((a['seeds'] for a in agg), default=0)}.", ""]
    steps = ["steps"] if grid.fit else []  # fitted schedules differ per cell: show each one's
    if grid.layout == "outer-center":
        head = ["outer", "center", *metrics, *steps, "params", "paper"]
        body = [[a["row"], a["col"], *[_fmt(a, m) for m in metrics], *_steps(a, steps), f"{a['params'] / 1e6:.2f} M", a["paper"]]
                for a in agg]
    elif grid.layout == "seqlen":
        head = ["sample_len", *metrics, *steps, "paper"]
        body = [[str(int(a["x"] or 0)), *[_fmt(a, m) for m in metrics], *_steps(a, steps), a["paper"]] for a in agg]
    else:
        head = ["cell", "levels", *metrics, *steps, "params", "paper"]
        body = [[a["cell"], a["row"] or a["col"], *[_fmt(a, m) for m in metrics], *_steps(a, steps), f"{a['params'] / 1e6:.2f} M",
                 a["paper"]] for a in agg]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in body]
    if "test_bpb" in metrics and agg:
        best = min(agg, key=lambda a: a.get("test_bpb", float("inf")))
        lines += ["", f"Lowest test BPB: **{best['cell']}** ({best['test_bpb']:.4f})."]
    path.write_text("\n".join(lines) + "\n")
    return path


def plot(grid: Grid, agg: list[dict], path: Path) -> Path:
    """Bars of test BPB with seed spread (or BPB against sequence length for the seqlen layout)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(agg) + 2), 3.8), dpi=110)
    vals = [a.get("test_bpb", float("nan")) for a in agg]
    errs = [a.get("test_bpb_std", 0.0) for a in agg]
    if grid.layout == "seqlen":
        xs = [a["x"] for a in agg]
        ax.errorbar(xs, vals, yerr=errs, marker="o", capsize=3)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("training sample_len")
    else:
        labels = [a["cell"] for a in agg]
        ax.bar(range(len(agg)), vals, yerr=errs, capsize=4, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(agg)), labels, rotation=20, ha="right", fontsize=8)
        lo = min(v for v in vals if v == v) if any(v == v for v in vals) else 0
        ax.set_ylim(bottom=max(0.0, lo - 0.3))
    ax.set_ylabel("test bits per sample")
    budget = f"{grid.minutes:g} min per cell" if grid.fit else f"{grid.steps} steps per cell"
    ax.set_title(f"{grid.name} ({budget})", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_reports(grid: Grid, rows: list[dict], out: Path, command: str = "") -> dict[str, Path]:
    agg = aggregate(grid, rows)
    return {
        "csv": write_csv(rows, out / "results.csv"),
        "md": write_markdown(grid, agg, out / "results.md", command),
        "png": plot(grid, agg, out / "results.png"),
    }
