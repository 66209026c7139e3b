"""`python -m audiomamba.bench.sync_cost` (issue 18): without a GPU it says so; its kernels compile for sm_90 on any
machine, the cluster row's with hardware cluster barriers and distributed shared memory (what it times)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("triton")


def test_sync_cost_kernels_compile_for_sm90_with_cluster_barriers() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # the interpreter compiles nothing
    res = subprocess.run([sys.executable, "-m", "audiomamba.bench.sync_cost", "--ptx"], env=env, capture_output=True,
                         text=True, timeout=300)
    if "No module named" in res.stderr and "triton.backends" in res.stderr:
        pytest.skip("this triton build has no NVIDIA backend")
    assert res.returncode == 0, res.stderr[-3000:]
    facts = dict(line.split() for line in res.stdout.splitlines())
    assert facts == {"cluster4_barrier": "True", "cluster4_dsmem": "True", "cluster1_barrier": "False",
                     "grid_release_acquire": "True", "launched_barrier": "True"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU message")
def test_sync_cost_without_a_gpu_says_so(capsys) -> None:
    from audiomamba.bench import sync_cost

    assert sync_cost.main(["--rounds", "10"]) == 0
    assert "needs a CUDA device" in capsys.readouterr().out
