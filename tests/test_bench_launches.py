"""`python -m audiomamba.bench.launches`: kernel launches per generated sample, counted in the Triton interpreter."""

from __future__ import annotations

import pytest
import torch
from audiomamba.bench.launches import launches_per_sample, main

from audiomamba.model import build_model


@pytest.mark.parametrize("block", ["mamba-s6", "mamba-s4"])
def test_launches_per_sample_follow_the_u_net(block: str) -> None:
    """pool [2], one block per side at full rate and one in the center at half rate: 2.5 block steps per sample.
    Fused: three launches each plus the head; the PyTorch ops around them (embedding, pooling buffers, skips); with
    runs, one launch per run."""
    torch.manual_seed(0)
    model = build_model({"d_model": 16, "d_state": 4, "pool": [2], "levels": [{"block": block, "n": 1}],
                         "center": {"block": block, "n": 1}}).eval()
    plain = launches_per_sample(model)
    ssm = "triton._ssm_kernel" if block == "mamba-s6" else "triton._ssm_lti_kernel"
    assert {k: v for k, v in plain.items() if k.startswith("triton.")} == {
        "triton._in_conv_kernel": 2.5, ssm: 2.5, "triton._out_proj_kernel": 2.5, "triton._norm_linear_kernel": 1.0}
    assert plain["torch.embedding"] == 1.0
    # each run of blocks one launch (the down and up blocks every sample, the center every second one), whatever
    # the interpreter launches for its phases
    runs = launches_per_sample(model, runs=True)
    assert {k: v for k, v in runs.items() if k.startswith("triton.")} == {
        "triton._run_kernel": 2.5, "triton._norm_linear_kernel": 1.0}


def test_launch_table_needs_the_interpreter(monkeypatch, capsys) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert main(["--presets", "sc09-small-tiny"]) == 2
    assert "TRITON_INTERPRET=1" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        launches_per_sample(torch.nn.Linear(1, 1))
