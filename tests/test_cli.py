"""The command line: help, info, data info, and one-line errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from datafixtures import make_music, make_sc09

from audiomamba.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from audiomamba.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_every_command() -> None:
    out = run_cli("--help").stdout
    for cmd in ("data", "train", "generate", "evaluate", "ablate", "bench", "demo", "info"):
        assert cmd in out


def test_info_reports_versions_and_kernels(capsys: pytest.CaptureFixture[str]) -> None:
    main(["info"])
    out = capsys.readouterr().out
    assert "torch" in out and "triton kernels" in out


def test_data_info_sc09(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_sc09(tmp_path / "sc09", per_split=(2, 1, 1))
    main(["data", "info", str(root)])
    out = capsys.readouterr().out
    assert "sc09 layout" in out and "train 20 / validation 10 / test 10" in out and "10:" in out


def test_data_info_music(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_music(tmp_path / "m", n_files=4)
    main(["data", "info", str(root)])
    out = capsys.readouterr().out
    assert "youtubemix layout" in out and "train 2 / validation 1 / test 1" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["data", "info", "/nonexistent/folder"], "folder not found"),
        (["data", "download", "sc10", "--out", "/tmp/x"], "unknown dataset"),
    ],
)
def test_user_errors_are_one_line_without_traceback(args: list[str], needle: str) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_bad_files_in_data_info_are_reported_not_raised(tmp_path: Path) -> None:
    root = make_music(tmp_path / "m", n_files=3)
    (root / "broken.wav").write_bytes(b"not audio at all" * 10)
    proc = run_cli("data", "info", str(root))
    assert proc.returncode == 1 and "rejected" in proc.stdout and "broken.wav" in proc.stdout  # all listed, then exit 1
    assert "Traceback" not in proc.stderr
