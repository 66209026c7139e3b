"""docs/gpu's job scripts (device sessions) start their LOSO runs through one helper, docs/gpu/loso-start.sh; a dry run
with stand-ins for python3 and taskset checks the core layout and the command lines without a GPU."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_start_loso_pins_five_cores_per_run_and_wraps(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text('#!/bin/bash\necho "python3 $*"\n')
    (bin_dir / "taskset").write_text('#!/bin/bash\necho "cores $2"\nshift 2\nexec "$@"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    cfg = tmp_path / "runs.cfg"
    cfg.write_text("a --epochs 60 --pcen\nb --epochs 100\nc --seed 1\n")
    res, w = tmp_path / "res", tmp_path / "w"
    res.mkdir()
    script = (f'export PATH="{bin_dir}:$PATH" W="{w}" RES="{res}"; . "{ROOT}/docs/gpu/loso-start.sh"; '
              f'start_loso "{cfg}" cuda 0 12 0; wait; echo "next $LOSO_NEXT_CORE"')
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=True).stdout
    ends = sorted(ln.split(" rc=")[0] + " rc=" + ln.split(" rc=")[1].split()[0] for ln in out.splitlines()
                  if ln.startswith("loso "))
    assert ends == ["loso a rc=0", "loso b rc=0", "loso c rc=0"], out
    assert "next 3" in out  # 0, 5, 10, then 15 wraps below 12 to 3
    logs = {name: (res / f"loso-{name}.log").read_text().splitlines() for name in "abc"}
    assert [logs[n][0] for n in "abc"] == ["cores 0-4", "cores 5-9", "cores 10-14"]
    assert logs["a"][1] == (f"python3 -m audiomamba evaluate classifier-loso {w}/sc09-fsdd --out {w}/loso-a --threads 1 "
                            "--jobs 5 --device cuda --label a --epochs 60 --pcen")
    # without a wrap, and on the CPU at nice 19 (time-to-digits-job.sh beside training on cores 0-3)
    script = script.replace("cuda 0 12 0", "cpu 4 0 19")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "next 19" in out and (res / "loso-c.log").read_text().splitlines()[0] == "cores 14-18"
    assert "--device cpu" in (res / "loso-b.log").read_text()
