"""Ablation grids: named cells (a recipe plus overrides) run under one shared budget.

A grid is a TOML file in ``recipes/grids/``::

    [grid]
    name = "youtubemix-fig10"
    paper = "Mamba paper Figure 10 (left)"
    layout = "bars"            # bars | outer-center | seqlen
    steps = 2000               # schedule length and step budget of every cell
    minutes = 0                # optional wall-clock cap per cell (0 = none)
    fit = false                # with minutes: time each cell's steps first and size its schedule
                               # (warm-up + cosine) to fill the minutes: an equal wall-clock budget
    seeds = 1
    eval_segments = 64         # test segments/clips scored for BPB (0 = all)

    [[cell]]
    name = "S6"
    recipe = "youtubemix-mamba-s6"
    set = ["data.batch_size=8"]   # optional recipe overrides
    row = "all levels"            # optional table coordinates
    col = "S6"
    paper = "…"                   # optional published figure for the side column
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from audiomamba.errors import ConfigError
from audiomamba.recipes import folder as recipe_folder

GRIDS_DIR = recipe_folder("grids")
LAYOUTS = ("bars", "outer-center", "seqlen")
GRID_KEYS = {"name", "paper", "layout", "steps", "minutes", "fit", "seeds", "eval_segments", "description", "samples"}
CELL_KEYS = {"name", "recipe", "set", "row", "col", "paper", "x"}


@dataclass
class Cell:
    """One configuration of the grid."""

    name: str
    recipe: str
    set: list[str] = field(default_factory=list)
    row: str = ""
    col: str = ""
    paper: str = ""
    x: float | None = None  # numeric position (sequence length) for the seqlen layout

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", self.name).strip("-").lower()


@dataclass
class Grid:
    """A validated grid."""

    name: str
    cells: list[Cell]
    layout: str = "bars"
    paper: str = ""
    steps: int = 1000
    minutes: float = 0.0
    fit: bool = False
    seeds: int = 1
    eval_segments: int = 64
    samples: int = 0
    description: str = ""
    source: str = ""


def list_grids() -> list[str]:
    return sorted(p.stem for p in GRIDS_DIR.glob("*.toml"))


def _unknown(keys: set[str], allowed: set[str], where: str) -> None:
    extra = sorted(keys - allowed)
    if extra:
        import difflib

        hint = difflib.get_close_matches(extra[0], allowed, n=1)
        more = f" (did you mean {hint[0]!r}?)" if hint else f"; allowed: {', '.join(sorted(allowed))}"
        raise ConfigError(f"unknown key {extra[0]!r} in {where}{more}")


def load_grid(name_or_path: str | Path) -> Grid:
    """Load a grid by name (``recipes/grids/<name>.toml``) or path; errors are one line."""
    path = Path(name_or_path)
    if not path.is_file():
        path = GRIDS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        import difflib

        close = difflib.get_close_matches(str(name_or_path), list_grids(), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"available: {', '.join(list_grids())}"
        raise ConfigError(f"unknown grid {name_or_path!r}: {hint}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML ({err}): fix the syntax") from None
    _unknown(set(raw), {"grid", "cell"}, str(path))
    head = raw.get("grid", {})
    _unknown(set(head), GRID_KEYS, f"[grid] of {path}")
    cells_raw = raw.get("cell", [])
    if not cells_raw:
        raise ConfigError(f"{path} has no [[cell]] tables: a grid needs at least one cell")
    cells = []
    for i, c in enumerate(cells_raw):
        _unknown(set(c), CELL_KEYS, f"[[cell]] #{i + 1} of {path}")
        if "name" not in c or "recipe" not in c:
            raise ConfigError(f"[[cell]] #{i + 1} of {path} needs 'name' and 'recipe'")
        cells.append(Cell(**c))
    slugs = [c.slug for c in cells]
    if len(set(slugs)) != len(slugs):
        raise ConfigError(f"cell names in {path} must be unique")
    grid = Grid(name=head.get("name", path.stem), cells=cells, source=str(path),
                **{k: v for k, v in head.items() if k != "name"})
    if grid.layout not in LAYOUTS:
        raise ConfigError(f"layout {grid.layout!r} in {path}: use one of {', '.join(LAYOUTS)}")
    if grid.steps <= 0 or grid.seeds <= 0:
        raise ConfigError(f"steps and seeds in {path} must be positive")
    check_budget(grid, str(path))
    return grid


def check_budget(grid: Grid, where: str) -> None:
    """A fitted schedule needs a wall-clock budget to fit into."""
    if grid.minutes < 0:
        raise ConfigError(f"minutes in {where} must be >= 0, got {grid.minutes}")
    if grid.fit and not grid.minutes:
        raise ConfigError(f"{where}: a fitted schedule (fit / --fit-schedule) needs a wall-clock budget "
                          "(minutes / --budget-minutes)")


def budget_text(grid: Grid) -> str:
    """The budget per cell in words, for reports."""
    if grid.fit:
        return f"{grid.minutes:g} min per cell (each cell's warm-up + cosine schedule sized to it by timing its steps)"
    return f"{grid.steps} steps per cell" + (f", at most {grid.minutes:g} min" if grid.minutes else "")


def select_cells(grid: Grid, spec: str) -> Grid:
    """The grid restricted to ``spec``: comma-separated 1-based cell numbers or cell slugs.

    Lets one grid's cells run in separate processes or on separate machines into one --out
    folder; a later run of the whole grid skips the finished cells and writes the reports."""
    chosen: list[Cell] = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        if item.isdigit() and 1 <= int(item) <= len(grid.cells):
            cell = grid.cells[int(item) - 1]
        else:
            match = [c for c in grid.cells if c.slug == item.lower()]
            if not match:
                names = ", ".join(f"{i} = {c.slug}" for i, c in enumerate(grid.cells, 1))
                raise ConfigError(f"--cells: no cell {item!r} in grid {grid.name}; cells are {names}")
            cell = match[0]
        if cell not in chosen:
            chosen.append(cell)
    if not chosen:
        raise ConfigError("--cells is empty: name cells by number or slug, e.g. --cells 1,3")
    return replace(grid, cells=chosen)
