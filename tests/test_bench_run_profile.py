"""``python -m audiomamba.bench.run_profile``: the in-kernel profile's arithmetic, the runs it finds, and its GPU
run (skipped without one)."""

from __future__ import annotations

import pytest
import torch
from audiomamba.bench.run_profile import level_runs, main
from audiomamba.kernels.triton_mamba_run import run_profile


def test_run_profile_reads_work_barriers_and_the_kernel_from_the_clocks():
    """Two programs (each on its own SM clock), a selective run of 2 blocks: 4 phases and the output."""
    start = [[0, 100, 160, 300, 340], [1000, 1090, 1160, 1290, 1350]]
    pre = [[80, 150, 290, 330, 400], [1070, 1150, 1280, 1330, 1380]]
    prof = torch.tensor([[[s, p] for s, p in zip(a, b, strict=True)] for a, b in zip(start, pre, strict=True)])
    r = run_profile(prof, selective=True)
    # work per phase: the slower program's (80, 60, 130, 40; output 60); A phases 0 and 2, B phases 1 and 3
    assert r["A work"] == 105 and r["B work"] == 50 and r["output"] == 60
    # barriers: the faster program's wait (20, 10, 10, 10): the median of four
    assert r["barrier"] == 10
    assert r["total"] == 400  # program 0: 0 -> 400; program 1: 1000 -> 1380
    lti = run_profile(prof, selective=False)
    assert lti["block work"] == 70 and "A work" not in lti


def test_run_profile_splits_a_phase_at_its_marks():
    """Clocks inside a phase (``marks``: start, x summed, (u, z) ready, end): the medians of each part over every
    program of the marked phases (LTI: all; selective: the A phases), and the same work and barriers as without."""
    # one LTI run of 2 blocks on two programs: phases 0, 1 and the output (its marks 0: not written)
    p0 = [[0, 30, 50, 80], [100, 140, 160, 190], [200, 0, 0, 260]]
    p1 = [[500, 520, 560, 590], [610, 660, 680, 700], [720, 0, 0, 760]]
    prof = torch.tensor([p0, p1])
    r = run_profile(prof, selective=False)
    assert r["block work"] == 90 and r["output"] == 60 and r["barrier"] == 15  # the median of (20, 10)
    assert r["to x"] == 35 and r["to u, z"] == 20 and r["after u, z"] == 30  # medians of (30, 40, 20, 50), ...
    sel = run_profile(prof, selective=True)  # phase 0 is an A phase, 1 a B phase: each its own marks
    assert sel["to x"] == 25 and sel["to u, z"] == 30 and sel["after u, z"] == 30
    assert sel["B to x_proj"] == 45 and sel["B to y"] == 20 and sel["B after y"] == 25  # (40, 50), (20, 20), (30, 20)
    assert "B to y" not in r
    assert "to x" not in run_profile(prof[..., [0, 3]], selective=False)


def test_level_runs_names_each_level_by_its_rate():
    inner = {"runs": {"down": "d1", "up": None, "center": "c"}, "inner": [object()]}
    body = {"runs": {"down": "d0", "up": "u0"}, "inner": inner}
    assert level_runs(body, [4, 4]) == [("16 kHz down", "d0"), ("16 kHz up", "u0"), ("4 kHz down", "d1"),
                                        ("1 kHz center", "c")]


def test_main_says_it_needs_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("the GPU case runs the profile")
    assert main([]) == 2
    assert "needs a CUDA device" in capsys.readouterr().out


@pytest.mark.parametrize(("block", "marks"), [("mamba-s6", False), ("mamba-s6", True), ("mamba-s4-real", True)])
def test_main_profiles_every_run_on_a_gpu(tmp_path, block: str, marks: bool):
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 9:
        pytest.skip("the in-kernel profile runs on a sm_90+ GPU")
    out = tmp_path / "p.md"
    argv = ["--preset", "sc09-small-tiny", "--block", block, "--steps", "5", "--out", str(out)]
    assert main(argv + (["--marks"] if marks else [])) == 0
    rows = [ln for ln in out.read_text().splitlines() if ln.startswith("| 16 kHz")]
    assert len(rows) == 2 and all(("A " in ln) == (block == "mamba-s6") for ln in rows), rows
    if marks:  # three parts of a phase (and of a selective B phase), each a positive count of cycles
        n = 6 if block == "mamba-s6" else 3
        parts = [[float(c) for c in ln.strip(" |").split(" | ")[-n:]] for ln in rows]
        assert all(len(p) == n and min(p) > 0 for p in parts), rows
