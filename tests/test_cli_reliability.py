"""Issue 16: usage errors are one line (exit 2), bad numbers are refused before any work, every
imported package is declared, run folders are locked, early crashes restart, and a NaN validation
or a corrupt best.pt never wins."""

from __future__ import annotations

import ast
import math
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch
from train_helpers import music_folder, tiny_recipe

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = shutil.which("audiomamba")


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [SCRIPT, *args] if SCRIPT else [sys.executable, "-m", "audiomamba", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)


CASES = [
    (["frobnicate"], "No such command"),
    (["train"], "Missing argument"),
    (["generate", "runs/x", "--out", "x", "--n", "abc"], "Invalid value"),
    (["generate", "runs/x", "--out", "x", "--temperature", "-1"], "--temperature"),
    (["generate", "runs/x", "--out", "x", "--temperature", "nan"], "--temperature"),
    (["generate", "runs/x", "--out", "x", "--regenerate-noisy", "-1"], "--regenerate-noisy"),
    (["generate", "runs/x", "--out", "x", "--top-p", "0"], "--top-p"),
    (["generate", "runs/x", "--out", "x", "--min-p", "1"], "--min-p"),
    (["evaluate", "snapshots", "r", "--reference", "d", "--classifier", "c", "--out", "o", "--min-p", "-0.1"],
     "--min-p"),
    (["train", "sc09-mamba-tiny", "--snapshot-minutes", "5,x"], "--snapshot-minutes"),
    (["evaluate", "snapshots", "r", "--reference", "d", "--classifier", "c", "--out", "o", "--temperature", "-2"],
     "--temperature"),
    (["evaluate", "snapshots", "r", "--reference", "d", "--classifier", "c", "--out", "o", "--filter", "top"],
     "--filter"),
]


@pytest.mark.parametrize(("args", "needle"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_usage_errors_are_short_and_exit_2(args: list[str], needle: str, tmp_path: Path) -> None:
    res = _cli(*args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert needle in res.stderr + res.stdout
    assert not (tmp_path / "x").exists()  # refused before any work


def test_out_that_is_a_file_is_refused_first(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    res = _cli("generate", "no-such-run", "--out", "taken", cwd=tmp_path)
    assert res.returncode == 2 and "existing file" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_a_gpu_is_one_line(tmp_path: Path) -> None:
    res = _cli("train", "sc09-mamba-tiny", "--device", "cuda", "--data", str(tmp_path), "--out", "r", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "no GPU" in res.stderr or "not found" in res.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    res = _cli("--debug", "generate", "runs/x", "--out", "x", "--temperature", "-1", cwd=tmp_path)
    assert res.returncode != 0 and "Traceback" in res.stderr


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_imported_package_is_declared() -> None:
    own = {"audiomamba", "kernels", "eval", "bench", "recipes"}
    requires = metadata.requires("audiomamba") or []
    declared = {re.split(r"[ ;<>=!\[~]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requires}
    providers = metadata.packages_distributions()
    missing = []
    for folder in ("audiomamba", "kernels", "eval", "bench", "recipes"):
        for path in (ROOT / folder).rglob("*.py"):
            for name in _imports(path) - own:
                if name in sys.stdlib_module_names or name == "__future__":
                    continue
                dists = {d.lower().replace("_", "-") for d in providers.get(name, [name])}
                if not dists & declared:
                    missing.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not missing, "undeclared imports: " + "; ".join(sorted(missing))


def test_a_second_training_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    from audiomamba.train.lock import RunLock, RunLockedError

    held = RunLock(tmp_path / "run")
    with pytest.raises(RunLockedError, match="in use by pid"):
        RunLock(tmp_path / "run")
    held.release()
    assert not (tmp_path / "run" / ".lock").exists()
    RunLock(tmp_path / "run").release()


def test_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    import json
    import socket

    from audiomamba.train.lock import RunLock

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    with pytest.warns(UserWarning, match="stale lock"):
        lock = RunLock(tmp_path / "run")
    assert json.loads((tmp_path / "run" / ".lock").read_text())["pid"] == os.getpid()
    lock.release()


def test_resume_before_the_first_checkpoint_starts_fresh_and_the_lock_is_released(tmp_path: Path) -> None:
    from audiomamba.train import RunOptions, train_recipe

    data = music_folder(tmp_path / "music")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "kind": "train", "loss": 5.0}\n')  # died before last.pt
    result = train_recipe(tiny_recipe(data), RunOptions(out=run, resume=True, max_steps=2, device="cpu", progress=False))
    assert result.step == 2 and (run / "last.pt").is_file()
    assert not (run / ".lock").exists()


def test_nan_validation_is_never_best(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from audiomamba.train import RunOptions, train_recipe
    from audiomamba.train.loop import Trainer

    monkeypatch.setattr(Trainer, "validate", lambda self: math.nan)
    data = music_folder(tmp_path / "music")
    result = train_recipe(tiny_recipe(data), RunOptions(out=tmp_path / "run", max_steps=4, device="cpu", progress=False))
    assert result.best_val_bpb is None and not (tmp_path / "run" / "best.pt").exists()


def test_corrupt_best_falls_back_to_last(tmp_path: Path) -> None:
    from audiomamba.train import RunOptions, train_recipe
    from audiomamba.train.checkpoint import load_model_from_checkpoint

    data = music_folder(tmp_path / "music")
    run = tmp_path / "run"
    train_recipe(tiny_recipe(data), RunOptions(out=run, max_steps=4, device="cpu", progress=False))
    (run / "best.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="using last.pt"):
        model, _ = load_model_from_checkpoint(run)
    assert model is not None
