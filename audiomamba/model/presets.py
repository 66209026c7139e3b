"""Named model presets: ``recipes/models/<name>.toml`` (a ``[model]`` table, ``expected_params``, ``paper``)."""

from __future__ import annotations

import difflib
import tomllib
from typing import Any

from audiomamba.errors import ConfigError
from audiomamba.recipes import folder as recipe_folder

PRESETS_DIR = recipe_folder("models")


def list_model_presets() -> list[str]:
    """Names of the shipped model presets, sorted."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def load_model_preset(name: str) -> dict[str, Any]:
    """The preset file as a dict: ``{"model": {...}, "expected_params": int, "paper": str}``.

    Raises ConfigError (one line, listing the presets) for an unknown name or a broken file.
    """
    path = PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        names = list_model_presets()
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"unknown model preset {name!r} (not in {PRESETS_DIR}): {hint}presets: {', '.join(names)}"
        )
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"invalid TOML in model preset {path}: {err}; fix the syntax") from None
    if not isinstance(raw.get("model"), dict):
        raise ConfigError(f"model preset {path} has no [model] table: add one")
    return raw
