"""Ablation harness: a tiny grid end to end, resume of a deleted cell, grid validation."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from datafixtures import make_music

from audiomamba.ablate import load_grid, run_grid, write_reports
from audiomamba.errors import ConfigError


def test_tiny_grid_end_to_end_and_resume(tmp_path: Path) -> None:
    data = make_music(tmp_path / "music", n_files=4, seconds=1.0)
    grid = load_grid("youtubemix-fig10-tiny")
    out = tmp_path / "ablate"
    logs: list[str] = []
    rows = run_grid(grid, out, data, device="cpu", progress=False, log=logs.append)
    paths = write_reports(grid, rows, out)
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    table = list(csv.DictReader(open(paths["csv"])))
    assert [r["cell"] for r in table] == [c.name for c in grid.cells]
    assert all(0 < float(r["test_bpb"]) < 9 for r in table)
    md = paths["md"].read_text()
    assert "| cell |" in md and all(c.name in md for c in grid.cells)

    # delete one cell's result: only that cell is run again
    (out / "cells" / grid.cells[1].slug / "seed0" / "result.json").unlink()
    logs.clear()
    rows2 = run_grid(grid, out, data, device="cpu", progress=False, log=logs.append)
    skipped = [line for line in logs if "skipped" in line]
    rerun = [line for line in logs if "skipped" not in line]
    assert len(skipped) == 2 and len(rerun) == 1 and grid.cells[1].name in rerun[0]
    assert len(rows2) == 3


def test_grid_validation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown grid 'youtubemix-fig11'.*did you mean"):
        load_grid("youtubemix-fig11")
    bad = tmp_path / "bad.toml"
    bad.write_text('[grid]\nname = "x"\nstep = 3\n[[cell]]\nname = "a"\nrecipe = "sc09-mamba-tiny"\n')
    with pytest.raises(ConfigError, match="unknown key 'step'.*did you mean 'steps'"):
        load_grid(bad)
    bad.write_text('[grid]\nname = "x"\n')
    with pytest.raises(ConfigError, match="no \\[\\[cell\\]\\]"):
        load_grid(bad)


def test_every_shipped_grid_names_existing_recipes() -> None:
    from audiomamba.ablate import list_grids
    from audiomamba.recipe import find_recipe

    for name in list_grids():
        for cell in load_grid(name).cells:
            assert find_recipe(cell.recipe).is_file()


def test_fitted_schedule_sizes_each_cell_and_resume_keeps_it(tmp_path: Path) -> None:
    data = make_music(tmp_path / "music", n_files=4, seconds=1.0)
    grid = load_grid("youtubemix-fig10-tiny")
    grid.cells = grid.cells[:1]
    grid.minutes, grid.fit = 0.5, True
    out = tmp_path / "ablate"
    logs: list[str] = []
    rows = run_grid(grid, out, data, device="cpu", progress=False, log=logs.append)
    fitted = [line for line in logs if "fitted schedule" in line]
    assert len(fitted) == 1
    steps = int(fitted[0].split("-> ")[1].split()[0])
    assert rows[0]["steps"] <= steps and steps >= 10
    run_dir = out / "cells" / grid.cells[0].slug / "seed0"
    from audiomamba.recipe import load_recipe

    assert load_recipe(run_dir / "recipe.toml").train.steps == steps  # the schedule is the fitted one
    md = write_reports(grid, rows, out)["md"].read_text()
    assert "0.5 min per cell" in md and "| steps |" in md

    # an interrupted cell (no result.json) resumes with its own schedule, not a re-timed one
    (run_dir / "result.json").unlink()
    logs.clear()
    run_grid(grid, out, data, device="cpu", progress=False, log=logs.append)
    assert not any("fitted schedule" in line for line in logs) and any("resuming" in line for line in logs)


def test_fitted_schedule_needs_minutes(tmp_path: Path) -> None:
    bad = tmp_path / "fit.toml"
    bad.write_text('[grid]\nname = "x"\nfit = true\n[[cell]]\nname = "a"\nrecipe = "sc09-mamba-tiny"\n')
    with pytest.raises(ConfigError, match="needs a wall-clock budget"):
        load_grid(bad)


def test_select_cells_by_number_or_slug() -> None:
    from audiomamba.ablate.grid import select_cells

    grid = load_grid("youtubemix-fig10")
    sub = select_cells(grid, "3, mamba-s4-complex-everywhere")
    assert [c.recipe for c in sub.cells] == ["youtubemix-mamba-s6", "youtubemix-mamba-s4"]
    assert len(grid.cells) == 3  # the original grid is untouched
    with pytest.raises(ConfigError, match="no cell 'mamba-s5'.*1 = mamba-s4-complex-everywhere"):
        select_cells(grid, "mamba-s5")
