"""Ablation harness: which U-Net levels should be selective (Mamba Table 5, Figure 10, Table 14)."""

from audiomamba.ablate.grid import Cell, Grid, list_grids, load_grid
from audiomamba.ablate.report import write_reports
from audiomamba.ablate.runner import run_grid

__all__ = ["Cell", "Grid", "list_grids", "load_grid", "run_grid", "write_reports"]
