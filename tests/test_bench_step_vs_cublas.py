"""`python -m audiomamba.bench.step_vs_cublas` (issue 18): every kernel and product it times runs with the arguments it
gives them (the CPU interpreter, one call each, a small batch), and the table names every column per width."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")


def test_every_timed_call_runs_and_the_table_has_its_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from audiomamba.bench import step_vs_cublas

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    called = []
    tf32 = torch.backends.cuda.matmul.allow_tf32

    def once(fn) -> float:
        fn()
        called.append(fn)
        return float(len(called))

    text = step_vs_cublas.table(16, widths=(16,), timer=once)
    rows = [line for line in text.splitlines() if line.startswith("| 16 |")]
    assert len(rows) == 1 and len(called) == len(step_vs_cublas.COLUMNS)
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[:2] == ["16", "32"] and len(cells) == 2 + len(step_vs_cublas.COLUMNS)
    assert sorted(float(c) for c in cells[2:]) == [float(i) for i in range(1, len(called) + 1)]
    assert torch.backends.cuda.matmul.allow_tf32 == tf32  # the TF32 column's switch is put back
