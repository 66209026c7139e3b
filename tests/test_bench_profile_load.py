"""``python -m audiomamba.bench.profile_load`` on the CPU: both checkpoint formats timed part by part."""

from __future__ import annotations

from audiomamba.bench import profile_load


def test_profile_load_times_both_formats_part_by_part(capsys):
    profile_load.main(["--preset", "sc09-small-tiny", "--device", "cpu", "--rounds", "1", "--top", "40"])
    out = capsys.readouterr().out
    assert "340 tensors in the checkpoint" in out  # weights, EMA and AdamW's moments, as training writes them
    rows = [line for line in out.splitlines() if line.startswith("| format")]
    assert [r.split(" | ")[0] for r in rows] == ["| format 1 (a record per tensor)", "| format 2 (packed)"]
    assert all(len(r.split(" | ")) == 6 for r in rows)  # read, build, load_state_dict, to + eval, in all
    assert "cProfile of one model_from_state, by cumulative" in out and "load_checkpoint" in out
