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


def test_main_profiles_every_run_on_a_gpu(tmp_path):
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 9:
        pytest.skip("the in-kernel profile runs on a sm_90+ GPU")
    out = tmp_path / "p.md"
    assert main(["--preset", "sc09-small-tiny", "--block", "mamba-s6", "--steps", "5", "--out", str(out)]) == 0
    rows = [ln for ln in out.read_text().splitlines() if ln.startswith("| 16 kHz")]
    assert len(rows) == 2 and all("A " in ln for ln in rows), rows
