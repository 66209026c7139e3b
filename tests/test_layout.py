"""Issue 15: one installed namespace, and the op layer (audiomamba.kernels) as a leaf."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_distribution_adds_only_audiomamba_at_top_level(tmp_path: Path) -> None:
    dist = metadata.distribution("audiomamba")
    top = (dist.read_text("top_level.txt") or "").split()
    assert top == ["audiomamba"], top
    for name in ("kernels", "eval", "bench", "recipes"):  # outside the checkout, only the namespace exists
        code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({name!r}) is not None)"
        assert subprocess.run([sys.executable, "-c", code], cwd=tmp_path).returncode == 0, f"{name} is importable"
        code = f"import audiomamba.{name}"
        assert subprocess.run([sys.executable, "-c", code], cwd=tmp_path).returncode == 0, f"audiomamba.{name} is not"


def test_recipes_are_package_resources() -> None:
    from audiomamba.recipe import RECIPES_DIR, find_recipe

    assert (RECIPES_DIR / "models").is_dir() and (RECIPES_DIR / "grids").is_dir()
    assert find_recipe("sc09-mamba").parent == RECIPES_DIR


def test_the_op_layer_imports_nothing_from_the_rest() -> None:
    offenders = []
    for path in (ROOT / "kernels").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("audiomamba", "eval", "bench")]
    assert not offenders, offenders


def test_every_triton_kernel_lives_in_the_op_layer() -> None:
    outside = [str(p.relative_to(ROOT)) for folder in ("audiomamba", "eval", "bench")
               for p in (ROOT / folder).rglob("*.py") if "@triton.jit" in p.read_text()]
    assert not outside, outside
