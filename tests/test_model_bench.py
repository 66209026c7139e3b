"""The model benchmark driver measures and renders a table (tiny CPU shapes); the CLI refuses without a GPU."""

from __future__ import annotations

import pytest
import torch
from audiomamba.bench.model import Case, measure, render


def test_measure_and_render_on_cpu() -> None:
    dev = torch.device("cpu")
    res = measure(Case("youtubemix-tiny", 2, 64), "reference", dev, iters=1, max_seconds=5.0)
    assert res.ms_per_iter is not None and res.ms_per_iter > 0 and res.note == ""
    assert res.samples_per_s == pytest.approx(2 * 64 / (res.ms_per_iter / 1000))
    bad = measure(Case("youtubemix-tiny", 1, 63), "reference", dev, iters=1, max_seconds=5.0)
    assert bad.ms_per_iter is None and "ConfigError" in bad.note
    assert res.length == 64
    text = render([res, bad], [(64, 10.0, None, "trains")], dev, "audiomamba bench model --quick", 64)
    assert "| youtubemix-tiny |" in text and "audiomamba bench model --quick" in text
    assert "Longest trainable sample_len: **64**" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the command runs the full benchmark")
def test_cli_bench_model_needs_gpu(capsys) -> None:
    from audiomamba.cli import main

    with pytest.raises(SystemExit) as ex:
        main(["bench", "model"])
    assert ex.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--quick" in err and len(err.splitlines()) == 1


def test_fallback_shapes_halve_batch_then_length() -> None:
    from audiomamba.bench.model import fallback_shapes

    shapes = fallback_shapes(Case("x", 4, 16000), 16)
    assert shapes[:3] == [(4, 16000), (2, 16000), (1, 16000)]
    assert shapes[3:] == [(1, 8000), (1, 4000), (1, 2000), (1, 992)]
    assert all(length % 16 == 0 for _, length in shapes)
