"""Experiment recipes (TOML files in this folder), reachable by name.

Installed as ``audiomamba.recipes``; its folders are found through :mod:`importlib.resources`:
the recipes here, model presets in ``models/``, ablation grids in ``grids/``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def folder(sub: str = "") -> Path:
    """The recipes folder (or its ``models`` / ``grids`` subfolder) on disk."""
    root = Path(str(resources.files(__name__)))
    return root / sub if sub else root
