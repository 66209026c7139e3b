"""`python -m audiomamba.bench.profile_startup` (issue 18): on a machine without a GPU it says so and stops."""

import pytest
import torch


@pytest.mark.skipif(torch.cuda.is_available(), reason="the GPU path is run by docs/gpu/bench-session.sh")
def test_profile_startup_needs_a_gpu(capsys) -> None:
    from audiomamba.bench import profile_startup

    profile_startup.main(["--compare-launch", "2"])
    assert "profile_startup needs a CUDA device" in capsys.readouterr().out
