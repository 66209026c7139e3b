"""``python -m audiomamba.bench.step_groups``: its options and the CPU refusal (the timing itself runs on a GPU)."""

from __future__ import annotations

import pytest
import torch
from audiomamba.bench.step_groups import main, parse_ints


def test_parse_ints_reads_lists_and_refuses_bad_ones():
    assert parse_ints("2048, 1024,", "--batches") == [2048, 1024]
    for bad in ("", "two", "4,0", "-1"):
        with pytest.raises(SystemExit, match="--groups=") as err:
            parse_ints(bad, "--groups")
        assert "\n" not in str(err.value)


def test_main_says_it_needs_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("has a GPU: the CPU refusal does not apply")
    assert main(["--groups", "8"]) == 2
    assert "needs a CUDA device" in capsys.readouterr().out
