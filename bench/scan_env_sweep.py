"""The scan under each value of one tuning variable, side by side in one run (GPU).

    python -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_UNROLL 1,2,4,8
    python -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_CONFIG "default;32,32,2,1,2,256,seq" --backward
    python -m audiomamba.bench.scan_env_sweep AUDIOMAMBA_SCAN_BWD_CLOSED default,1 --backward --complex
    python -m audiomamba.bench.scan_env_sweep combos \
        "default;AUDIOMAMBA_SCAN_BWD_LOOP=64+AUDIOMAMBA_SCAN_BWD_MAXNREG=96" --backward --selective

A value of the form ``NAME=V+NAME=V...`` sets those variables together (VARIABLE is then only a label); every
variable a value names is unset for the others.

Every benchmark shape of ``audiomamba bench kernel`` (with ``--backward`` also the U-Net level shapes
of sc09-small, (16, 256, 16, 4000) and (16, 512, 16, 1000)), fp32 and bf16: ms, % of the HBM
roofline, speed-up against the first value ("default": the variable unset; every other value is set as written,
"0" included; the values take turns three times and each reports its median), and the largest relative
difference of the outputs (the forward's y, or with ``--backward`` every gradient). ``--quick``: the selective shapes
(16, 128, 16, 16384), (16, 256, 16, 4000) and (16, 512, 16, 1000) only. ``--complex``: the complex-LTI shapes only (with ``--quick``,
(16, 128, 16, 16384)). ``--selective``: every shape but the complex-LTI ones. ``--short``: only the shapes with
L <= 4096 (a config meant for short sequences, whose cost at L = 131072 would only spend device time).
"""

from __future__ import annotations

import os
import statistics
import sys

from audiomamba.bench.kernel import (
    DTYPES,
    FULL_CASES,
    UNET_CASES,
    copy_bandwidth,
    make_inputs,
    make_timer,
    max_rel_diff,
    min_bytes,
    pass_fn,
)

#: turns each value takes (interleaved); the median is reported
ROUNDS = 3
#: the value that leaves the variable unset (before 2026-12-04 evening it was "0", which made a sweep of a 0/1 knob
#: such as AUDIOMAMBA_SCAN_ALIGN "0,1" time the default against itself)
UNSET = "default"
#: ``--short``: the shapes up to this L
SHORT_L = 4096


def _max_rel(outs: list) -> float:
    """Largest :func:`max_rel_diff` of each value's outputs (a tensor or a tuple of grads) from the first's."""
    def flat(o):
        return [o] if hasattr(o, "float") else list(o)
    ref = flat(outs[0])
    return max((max_rel_diff(a, b) for o in outs[1:] for a, b in zip(flat(o), ref, strict=True)), default=0.0)


def _settings(var: str, values: list[str]) -> list[dict[str, str]]:
    """Each value as the environment it sets: {var: value}, {} for "default", or its ``NAME=V+NAME=V`` pairs; every
    variable that any value names is listed in each (unset: "")."""
    sets = []
    for v in values:
        if v == UNSET:
            sets.append({})
        elif "=" in v:
            pairs = [pair.split("=", 1) for pair in v.split("+")]
            if any(len(p) != 2 or not p[0] for p in pairs):
                raise ValueError(f"bad value {v!r}: give NAME=V pairs joined by '+' (e.g. A=1+B=2)")
            sets.append(dict(pairs))
        else:
            sets.append({var: v})
    names = {name for one in sets for name in one}
    return [{name: one.get(name, "") for name in sorted(names)} for one in sets]


def _apply(env: dict[str, str]) -> None:
    for name, value in env.items():
        os.environ[name] = value


def main(var: str, values: list[str], backward: bool = False, quick: bool = False, complex_a: bool = False,
         selective: bool = False, short: bool = False) -> None:
    from audiomamba.kernels import selective_scan

    try:  # before any GPU work: a malformed value is a one-line exit
        envs = _settings(var, values)
    except ValueError as err:
        sys.exit(str(err))
    timer = make_timer("cuda", False)
    bw = copy_bandwidth("cuda", timer)
    cases = FULL_CASES if backward else [c for c in FULL_CASES if c not in UNET_CASES]
    if complex_a:
        cases = [c for c in cases if c.kind == "lti-complex"]
    if selective:
        cases = [c for c in cases if c.kind != "lti-complex"]
    if short:
        cases = [c for c in cases if c.L <= SHORT_L]
    if quick:
        cases = cases[:1] if complex_a else [FULL_CASES[0], *UNET_CASES]
    print(f"copy bandwidth {bw / 1e9:.0f} GB/s; {var} in {values}; {'fwd+bwd' if backward else 'fwd'}")
    for case in cases:
        for dname in ("fp32", "bf16"):
            inputs = make_inputs(case, DTYPES[dname], "cuda")
            fn = pass_fn(selective_scan, inputs, backward)
            outs, runs = [], [[] for _ in values]
            for env in envs:
                _apply(env)
                outs.append(fn())
            # the values take turns, ROUNDS times, and each keeps its median: the machine's speed drifts by up to
            # 1.3x within a minute (2026-12-03), which one timing per value in a row would read as a difference
            for _ in range(ROUNDS):
                for k, env in enumerate(envs):
                    _apply(env)
                    runs[k].append(timer(fn))
            for name in envs[0]:
                os.environ.pop(name, None)
            times = [statistics.median(r) for r in runs]
            roof = min_bytes(case, 2 if dname == "bf16" else 4, backward) / bw * 1e3
            err = _max_rel(outs)
            cells = "  ".join(f"{v}: {t:.3f} ms ({roof / t * 100:.0f}%, {times[0] / t:.2f}x)" for v, t in zip(values, times, strict=True))
            print(f"{case.kind} {case.label()} {dname}: {cells}  maxrel {err:.1e}", flush=True)


if __name__ == "__main__":
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    rest = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(rest) != 2 or flags - {"--backward", "--quick", "--complex", "--selective", "--short"}:
        sys.exit("usage: python -m audiomamba.bench.scan_env_sweep VARIABLE V1,V2,... [--backward] [--quick] "
                 "[--complex | --selective] [--short] (e.g. AUDIOMAMBA_SCAN_UNROLL 1,2,4,8; \"default\" leaves it unset)")
    # values that hold commas themselves (AUDIOMAMBA_SCAN_CONFIG) are separated by ";"
    values = rest[1].split(";") if ";" in rest[1] else rest[1].split(",")
    main(rest[0], values, "--backward" in flags, "--quick" in flags, "--complex" in flags, "--selective" in flags,
         "--short" in flags)
