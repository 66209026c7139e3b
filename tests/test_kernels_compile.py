"""The Triton kernels go through Triton's real compiler for an H100 target (no GPU needed).

The interpreter used by the other kernel tests does not run Triton's compiler, so this catches
compiled-path errors (types of loop-carried values, unsupported ops) before a GPU run.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")


def test_kernels_compile_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["OMP_NUM_THREADS"] = "1"
    res = subprocess.run([sys.executable, "-m", "audiomamba.kernels.compile_check", "--quick"], env=env,
                         capture_output=True, text=True, timeout=600)
    if "No module named" in res.stderr and "triton.backends" in res.stderr:
        pytest.skip("this triton build has no NVIDIA backend")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("ok")]
    assert len(lines) >= 6 and {"fwd", "bwd", "step", "seq", "seqlanes", "finish", "ltifwd", "ltibwd"} <= {
        ln.split()[1] for ln in lines}
    # the sequential forward without unit-L-stride specialisation keeps one channel per lane: no shuffles
    def shfl(line: str) -> int:
        return int(line.rsplit("shfl.sync ", 1)[1].split(",")[0])

    lanes = [ln for ln in lines if ln.split()[1] == "seqlanes"]
    assert lanes and all(shfl(ln) == 0 for ln in lanes), lanes
    # the state-loop backward: the reverse scan over reversed loads takes fewer shuffles than Triton's flipped one, and
    # the ALIGN promise (an L that is no multiple of 16) fewer again; the same promise for the sequential forward

    loops = [ln for ln in lines if ln.split()[1] == "bwdloop"]
    rev = [shfl(ln) for ln in loops if "REV_LOADS=False" not in ln and "ALIGN=" not in ln and "STAGES=" not in ln
           and "UNROLL_N=" not in ln and "CLOSED" not in ln]
    flip = [shfl(ln) for ln in loops if "REV_LOADS=False" in ln]
    aligned = [shfl(ln) for ln in loops if "ALIGN=4" in ln]
    assert rev and len(rev) == len(flip) == len(aligned), loops
    assert all(a < r < f for a, r, f in zip(aligned, rev, flip, strict=True)), loops
    # the software-pipelined state loop (AUDIOMAMBA_SCAN_BWD_STAGES=2) prefetches by cp.async; the default does not
    staged = [ln for ln in loops if "STAGES=2" in ln]
    assert staged and all(int(ln.split("cp.async ")[1].split(",")[0]) > 0 for ln in staged), staged
    assert all(" cp.async 0," in ln for ln in loops if "STAGES=" not in ln), loops
    assert [ln for ln in loops if "UNROLL_N=2" in ln], loops  # two states per iteration compiles
    assert [ln for ln in loops if "CLOSED FAST_TRIG" in ln], loops  # the closed-form LTI scans (LTI Δ) compile
    # backward pass 1 as one sum per state (real A) compiles at 2 and 4 warps without spills
    sums = [ln for ln in lines if ln.split()[1] == "bwdlocsum"]
    assert {ln.split()[2] for ln in sums} == {"warps=2", "warps=4"} and all(" spill stores 0 B," in ln for ln in sums), sums
    seq = [ln for ln in lines if ln.split()[1] == "seq" and "SAVE_STATES" in ln]
    for with_align in (ln for ln in seq if "ALIGN=8" in ln):
        label = with_align.split(":")[0].replace(" ALIGN=8", "")
        plain = [ln for ln in seq if ln.split(":")[0] == label]
        assert len(plain) == 1 and shfl(with_align) < shfl(plain[0]), seq
    # a run of blocks as one thread-block cluster meets at the hardware cluster barrier, the grid's runs never
    runs = [ln for ln in lines if ln.split()[1] == "run"]
    clustered = ["CLUSTER" in ln.split(":")[0].split() for ln in runs]  # a label names a true flag bare
    assert runs and all((", barrier.cluster " in ln) == c for ln, c in zip(runs, clustered, strict=True)), runs
    assert any(clustered), runs
    # the in-kernel profile's variant (its clock reads) compiles beside the plain one
    profiled = [ln for ln in runs if "PROFILE" in ln.split(":")[0].split()]
    assert len(profiled) == 1 and profiled[0].split(":")[0].replace(" PROFILE", "") in [ln.split(":")[0] for ln in runs], runs
    # with its marks inside a phase (PROFILE=2): a clock read after a sum of x and of (u, z), so more shuffles
    marked = [ln for ln in runs if "PROFILE=2" in ln.split(":")[0].split()]
    assert len(marked) == 2, runs
    for ln in marked:
        plain = [p for p in runs if p.split(":")[0] == ln.split(":")[0].replace(" PROFILE=2", "")]
        assert len(plain) == 1 and shfl(ln) > shfl(plain[0]), (ln, plain)
    # the LayerNorm (default: folded into in_proj) in two passes (LN=0) and with its two sums in one reduction
    # (LN=1): one reduction has no more shuffles than two in a row
    forms = {form: [ln for ln in runs if form in ln.split(":")[0].split()] for form in ("LN=0", "LN=1")}
    assert len(forms["LN=0"]) == len(forms["LN=1"]) == 2, runs
    for one in forms["LN=1"]:
        two = [p for p in forms["LN=0"] if p.split(":")[0] == one.split(":")[0].replace("LN=1", "LN=0")]
        assert len(two) == 1 and shfl(one) <= shfl(two[0]), (one, two)
    # the partials through distributed shared memory (XCHG): stores to the other CTAs' shared memory, only there,
    # for every kind of block
    dsmem = [ln for ln in runs if any(f.startswith("XCHG=") for f in ln.split(":")[0].split())]
    assert len(dsmem) == 16 and all(", dsmem stores " in ln for ln in dsmem), runs
    # MBAR (the barriers through mbarriers): one hardware cluster barrier left (the mbarriers' start), one arrive
    # and one wait in the code per kind of phase (a selective block's two), fences only with MBAR=2, no spills
    mbar = [ln for ln in dsmem if any(f.startswith("MBAR=") for f in ln.split(":")[0].split())]
    assert len(mbar) == 6 and all(", spill stores 0 B," in ln and ", barrier.cluster 1," in ln for ln in mbar), mbar
    for ln in mbar:
        phases = 2 if "SELECTIVE" in ln.split(":")[0].split() else 1
        assert f", mbarrier arrives {phases}, waits {phases}, " in ln, ln
        assert (", fences 0," in ln) == ("MBAR=1" in ln.split(":")[0].split()), ln
    assert not any("mbarrier" in ln for ln in runs if ln not in mbar), runs
    # with LATE, the barrier's arrive and wait apart around the state's store: an LTI block's phases all meet there
    # (one arrive in the code), a selective block's two (phase A at the plain barrier, or with PIPE split as well)
    late = [ln for ln in dsmem if "LATE" in ln.split(":")[0].split() and ln not in mbar]
    assert sorted(int(ln.split(", barrier.cluster ")[1].split(",")[0]) for ln in late) == [1, 1, 1, 1, 2, 2, 2], late
    # PIPE (the next phase's own reads inside the barrier, so a selective block's phase A also meets there): with
    # LATE only, every kind of block (selective at 1 and 4 warps), no spills
    piped = [ln for ln in runs if "PIPE" in ln.split(":")[0].split()]
    assert len(piped) == 4 and all("LATE" in ln.split(":")[0].split() for ln in piped), runs
    assert all(", spill stores 0 B," in ln for ln in piped), piped
    assert not any(", dsmem stores " in ln for ln in runs if ln not in dsmem), runs
    # the generation step kernels without masks (sizes that are multiples of the tiles: ``EVEN``) compile to fewer
    # instructions than with them (sm_90, 2026-12-04: in_proj + conv 2200 -> 1632, state update 3272 -> 2432)
    def sass(line: str) -> int:
        return int(line.rsplit("sass ", 1)[1])

    step = [ln for ln in lines if ln.split()[1] in ("in_conv", "ssm", "xproj", "out_proj") and ", sass " in ln]
    even = [ln for ln in step if " EVEN:" in ln]
    assert len(even) >= 6 or not step, step
    for with_even in even:
        label = with_even.split(":")[0].replace(" EVEN", "")
        masked = [ln for ln in step if ln.split(":")[0] == label]
        assert len(masked) == 1 and sass(with_even) < sass(masked[0]), (with_even, masked)
