"""`python -m audiomamba.bench.files_phase` (issue 18): the WAV writers' table on any machine; the grid A/B needs a GPU."""

import pytest
import torch


def test_wav_writers_side_by_side(capsys) -> None:
    from audiomamba.bench import files_phase

    files_phase.main(["wavs", "--n", "8", "--turns", "1"])
    out = capsys.readouterr().out
    assert "| atomic (temp file, rename) | 16 |" in out and "| straight to the name | 1 |" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="the GPU path is timed on the device machine")
def test_grid_needs_a_gpu(capsys) -> None:
    from audiomamba.bench import files_phase

    files_phase.main(["grid"])
    assert "files_phase grid needs a CUDA device" in capsys.readouterr().out
