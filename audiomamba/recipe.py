"""Experiment recipes: TOML files in ``recipes/`` loaded into typed, validated dataclasses.

A recipe has six tables::

    [meta]      name, paper (figure/table it reproduces), expected_params, description, extends
    [data]      kind, root, sample_len, normalization, batch_size, num_workers, clips_per_class,
                val_split, augment_speed, augment_gain_db (SC09 training clips)
    [model]     preset = "<recipes/models/NAME.toml>" plus overrides of the preset's keys, and the
                shorthands level_blocks = [outer, ..., inner] / center_block = "..." that change
                only block types (keeping each stage's block count)
    [optim]     lr, betas, weight_decay, clip, eps                       (AdamW)
    [schedule]  warmup (fraction of steps), kind ("cosine" | "constant"), min_lr_ratio
    [train]     steps, eval_every, val_batches, checkpoint_every, log_every, seed, bf16, ema, compile,
                compile_mode

``meta.extends = "<recipe>"`` starts from another recipe and deep-merges this file over it.
``data.batch_size`` is the *global* batch: under DDP each of W processes takes batch_size / W.
Every unknown key or bad value raises a one-line :class:`~audiomamba.errors.ConfigError` naming
the key and the file (or the ``--set`` flag), with a "did you mean" suggestion for typos.
"""

from __future__ import annotations

import copy
import difflib
import tomllib
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from audiomamba.data.augment import MAX_GAIN_DB, MAX_SPEED
from audiomamba.errors import ConfigError
from audiomamba.model.config import BLOCK_NAMES, SIMPLE_MODEL_FIELDS
from audiomamba.recipes import folder as recipe_folder
from audiomamba.validate import coerce, suggest

RECIPES_DIR = recipe_folder()
DATA_KINDS = ("youtubemix", "sc09")
NORMALIZATIONS = ("minmax", "none")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
SCHEDULES = ("cosine", "constant")


@dataclass
class MetaCfg:
    """What the recipe is and which paper result it reproduces."""

    name: str = ""
    paper: str = ""
    expected_params: int | None = None
    description: str = ""
    extends: str | None = None


@dataclass
class DataCfg:
    """Dataset and loader settings. ``batch_size`` is global (split across DDP processes)."""

    kind: str = "youtubemix"
    root: str = ""
    sample_len: int | None = None
    normalization: str = "minmax"
    batch_size: int = 1
    num_workers: int = 0
    clips_per_class: int | None = None  # SC09: train on the first k train clips of each digit (overfit checks)
    val_split: str = "validation"  # split scored as "validation" ("train" scores the training subset itself)
    augment_speed: float = 0.0  # SC09 train clips: random playback rate in 1 +- this (audiomamba/data/augment.py)
    augment_gain_db: float = 0.0  # SC09 train clips: random gain in +- this many dB (peak kept below 1)


@dataclass
class ModelCfg:
    """A model preset plus overrides of its keys (``overrides``) and block-type shorthands."""

    preset: str = ""
    level_blocks: list[str] | None = None
    center_block: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimCfg:
    """AdamW hyper-parameters; weight decay skips SSM parameters, norms and biases."""

    lr: float = 2e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    weight_decay: float = 0.1
    clip: float = 1.0
    eps: float = 1e-8


@dataclass
class ScheduleCfg:
    """Learning-rate schedule: linear warm-up over ``warmup`` x steps, then ``kind`` decay."""

    warmup: float = 0.1
    kind: str = "cosine"
    min_lr_ratio: float = 0.0


@dataclass
class TrainCfg:
    """Loop settings. ``steps`` is the schedule length (paper: 200 000)."""

    steps: int = 200_000
    eval_every: int = 1000
    val_batches: int = 16
    checkpoint_every: int = 1000
    log_every: int = 10
    seed: int = 0
    bf16: bool = True
    ema: float = 0.0  # decay of an exponential moving average of the weights (0 = off); generate uses it
    # torch.compile the training forward (static shapes; the scan stays our kernel, kernels/scan_op.py);
    # checkpoints, EMA, clipping and validation use the plain module. On the CPU it needs a C++ compiler.
    compile: bool = False
    compile_mode: str = "default"  # torch.compile's mode with compile = true (reduce-overhead: CUDA graphs)


@dataclass
class Recipe:
    """A fully validated recipe. ``source`` is the file it came from (for messages)."""

    meta: MetaCfg
    data: DataCfg
    model: ModelCfg
    optim: OptimCfg
    schedule: ScheduleCfg
    train: TrainCfg
    source: str = "<dict>"

    @property
    def name(self) -> str:
        return self.meta.name

    def model_config(self) -> dict[str, Any]:
        """The resolved model config for :func:`audiomamba.model.build_model` (preset + overrides)."""
        return resolve_model_config(self.model, self.source)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (TOML tables), loadable again by :func:`recipe_from_dict`."""
        out: dict[str, Any] = {}
        for name in SECTIONS:
            sec = asdict(getattr(self, name))
            if name == "model":
                sec = {"preset": sec["preset"], **sec["overrides"]} | {
                    k: sec[k] for k in ("level_blocks", "center_block") if sec[k] is not None
                }
            out[name] = {k: v for k, v in sec.items() if v is not None}
        out["meta"].pop("extends", None)
        return out

    def to_toml(self) -> str:
        """The recipe as TOML text (the resolved recipe saved beside a run's checkpoints)."""
        return dumps_toml(self.to_dict())


SECTIONS: dict[str, type] = {
    "meta": MetaCfg,
    "data": DataCfg,
    "model": ModelCfg,
    "optim": OptimCfg,
    "schedule": ScheduleCfg,
    "train": TrainCfg,
}


# ----------------------------------------------------------------------------------------------
# finding and reading recipe files


def list_recipes() -> list[str]:
    """Names of the shipped recipes (``recipes/*.toml``), sorted."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))


def find_recipe(name_or_path: str | Path) -> Path:
    """Resolve a recipe name (``recipes/<name>.toml``) or a path to a TOML file."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix == ".toml" and "/" not in text and not path.is_file() and (RECIPES_DIR / text).is_file():
        return RECIPES_DIR / text
    if path.suffix == ".toml" or "/" in text or path.is_file():
        if not path.is_file():
            raise ConfigError(f"recipe file not found: {path}: check the path, or give a recipe name")
        return path
    candidate = RECIPES_DIR / f"{text}.toml"
    if candidate.is_file():
        return candidate
    names = list_recipes()
    close = difflib.get_close_matches(text, names, n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"available: {', '.join(names[:12])}, …"
    raise ConfigError(f"unknown recipe {text!r} (not in {RECIPES_DIR}): {hint}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"invalid TOML in {path}: {err}; fix the syntax") from None
    except OSError as err:
        raise ConfigError(f"cannot read recipe {path}: {err.strerror}") from None


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _load_raw(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a recipe file and the chain of recipes it ``extends`` into one raw dict."""
    if path.resolve() in seen:
        raise ConfigError(f"meta.extends forms a cycle in {path}: remove one of the extends links")
    raw = _read_toml(path)
    base_name = raw.get("meta", {}).get("extends")
    if base_name is None:
        return raw
    if not isinstance(base_name, str):
        raise ConfigError(f"meta.extends in {path} must be a recipe name (string), got {base_name!r}")
    base_path = find_recipe(base_name)
    base = _load_raw(base_path, (*seen, path.resolve()))
    base.get("meta", {}).pop("expected_params", None)
    base.get("meta", {}).pop("paper", None)
    return _deep_merge(base, raw)


# ----------------------------------------------------------------------------------------------
# --set overrides


def parse_value(text: str) -> Any:
    """A ``--set`` value as TOML (``1e-3``, ``true``, ``[1, 2]``, ``"x"``); bare words are strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_sets(raw: dict[str, Any], sets: list[str], origins: dict[str, str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides to a raw recipe dict (validated later with the rest)."""
    raw = copy.deepcopy(raw)
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} has no '=': write --set section.key=value, e.g. --set optim.lr=1e-3")
        key, value = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        if len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set {item!r}: the key must be section.key (e.g. train.steps), got {key!r}")
        if parts[0] not in SECTIONS:
            raise ConfigError(f"unknown section {parts[0]!r} in --set {item}: {suggest(parts[0], SECTIONS)}")
        node = raw
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: {p!r} is not a table")
        node[parts[-1]] = parse_value(value.strip())
        origins[key] = f"--set {item}"
    return raw


# ----------------------------------------------------------------------------------------------
# validation


def _where(key: str, origins: dict[str, str], source: str) -> str:
    return origins.get(key, source)


def _build_section(name: str, table: Any, origins: dict[str, str], source: str) -> Any:
    cls = SECTIONS[name]
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table in {_where(name, origins, source)}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls) if f.name != "overrides"]
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in table.items():
        full = f"{name}.{key}"
        if key not in known or key == "overrides":
            if name == "model":
                extra[key] = value
                continue
            raise ConfigError(f"unknown key {full!r} in {_where(full, origins, source)}: {suggest(key, known)}")
        values[key] = coerce(value, hints[key], full, _where(full, origins, source))
    if name == "model":
        values["overrides"] = extra
    return cls(**values)


def _check(cond: bool, key: str, msg: str, origins: dict[str, str], source: str) -> None:
    if not cond:
        raise ConfigError(f"bad value for {key!r} in {_where(key, origins, source)}: {msg}")


def _validate_values(r: Recipe, origins: dict[str, str]) -> None:
    s = r.source

    def chk(cond: bool, key: str, msg: str) -> None:
        _check(cond, key, msg, origins, s)

    chk(r.data.kind in DATA_KINDS, "data.kind", f"use one of {', '.join(DATA_KINDS)}, not {r.data.kind!r}")
    chk(r.data.normalization in NORMALIZATIONS, "data.normalization", f"use one of {', '.join(NORMALIZATIONS)}")
    chk(r.data.sample_len is None or r.data.sample_len > 0, "data.sample_len", "must be a positive number of samples")
    chk(r.data.batch_size >= 1, "data.batch_size", f"must be >= 1, got {r.data.batch_size}")
    chk(r.data.num_workers >= 0, "data.num_workers", "must be >= 0")
    chk(r.data.clips_per_class is None or r.data.clips_per_class >= 1, "data.clips_per_class",
        "must be >= 1 (or left out for every clip)")
    chk(r.data.clips_per_class is None or r.data.kind == "sc09", "data.clips_per_class", "only sc09 data has classes")
    chk(r.data.val_split in ("train", "validation", "test"), "data.val_split", "use train, validation or test")
    chk(0 <= r.data.augment_speed < MAX_SPEED, "data.augment_speed",
        f"is a relative rate change in [0, {MAX_SPEED:g}), got {r.data.augment_speed}")
    chk(0 <= r.data.augment_gain_db <= MAX_GAIN_DB, "data.augment_gain_db",
        f"is a range in dB in [0, {MAX_GAIN_DB:g}], got {r.data.augment_gain_db}")
    chk(r.data.kind == "sc09" or (r.data.augment_speed == 0 and r.data.augment_gain_db == 0), "data.augment_speed",
        "waveform augmentation is implemented for sc09 data only; set it to 0")
    chk(r.train.compile_mode in COMPILE_MODES, "train.compile_mode", f"use one of {', '.join(COMPILE_MODES)}")
    chk(0 <= r.train.ema < 1, "train.ema", f"is a decay in [0, 1) (0 = off), got {r.train.ema}")
    chk(bool(r.model.preset), "model.preset", "every recipe needs model.preset (a name in recipes/models/)")
    chk(r.optim.lr > 0, "optim.lr", f"must be > 0, got {r.optim.lr}")
    chk(len(r.optim.betas) == 2 and all(0 <= b < 1 for b in r.optim.betas), "optim.betas", "must be two numbers in [0, 1)")
    chk(r.optim.weight_decay >= 0, "optim.weight_decay", "must be >= 0")
    chk(r.optim.clip >= 0, "optim.clip", "must be >= 0 (0 disables clipping)")
    chk(r.optim.eps > 0, "optim.eps", "must be > 0")
    chk(0 <= r.schedule.warmup < 1, "schedule.warmup", f"is a fraction of the steps in [0, 1), got {r.schedule.warmup}")
    chk(r.schedule.kind in SCHEDULES, "schedule.kind", f"use one of {', '.join(SCHEDULES)}")
    chk(0 <= r.schedule.min_lr_ratio <= 1, "schedule.min_lr_ratio", "must be in [0, 1]")
    for key in ("steps", "eval_every", "checkpoint_every", "log_every", "val_batches"):
        chk(getattr(r.train, key) >= 1, f"train.{key}", f"must be >= 1, got {getattr(r.train, key)}")
    for i, b in enumerate(r.model.level_blocks or []):
        chk(b in BLOCK_NAMES, "model.level_blocks", f"entry {i} {b!r} is not a block: {suggest(b, BLOCK_NAMES)}")
    if r.model.center_block is not None:
        b = r.model.center_block
        chk(b in BLOCK_NAMES, "model.center_block", f"{b!r} is not a block: {suggest(b, BLOCK_NAMES)}")


def recipe_from_dict(
    raw: dict[str, Any], source: str = "<dict>", origins: dict[str, str] | None = None, check_model: bool = True
) -> Recipe:
    """Validate a raw recipe dict (TOML tables) into a :class:`Recipe`.

    ``check_model=False`` skips checking the model overrides against the preset file (used for
    recipes stored in checkpoints, which carry their resolved model config themselves).
    """
    origins = origins or {}
    for key in raw:
        if key not in SECTIONS:
            raise ConfigError(f"unknown section [{key}] in {_where(key, origins, source)}: {suggest(key, SECTIONS)}")
    built = {name: _build_section(name, raw.get(name, {}), origins, source) for name in SECTIONS}
    recipe = Recipe(**built, source=source)
    if not recipe.meta.name:
        recipe.meta.name = Path(source).stem if source.endswith(".toml") else "recipe"
    _validate_values(recipe, origins)
    if check_model:
        resolve_model_config(recipe.model, source, origins)  # check overrides against the preset now
    return recipe


def load_recipe(name_or_path: str | Path, sets: list[str] | None = None, data_root: str | Path | None = None) -> Recipe:
    """Load a recipe by name or path, apply ``--set`` overrides and an optional ``--data`` folder."""
    path = find_recipe(name_or_path)
    raw = _load_raw(path)
    raw.setdefault("meta", {}).setdefault("name", path.stem)
    origins: dict[str, str] = {}
    raw = apply_sets(raw, list(sets or []), origins)
    if data_root is not None:
        raw.setdefault("data", {})["root"] = str(data_root)
        origins["data.root"] = "--data"
    return recipe_from_dict(raw, str(path), origins)


# ----------------------------------------------------------------------------------------------
# model presets


def _load_preset(name: str, where: str) -> dict[str, Any]:
    from audiomamba.model import load_model_preset

    try:
        preset = load_model_preset(name)
    except ConfigError as err:
        raise ConfigError(f"model.preset {name!r} in {where}: {err}") from None
    if "model" in preset and isinstance(preset["model"], dict):
        preset = preset["model"]
    return copy.deepcopy(dict(preset))


def resolve_model_config(cfg: ModelCfg, source: str = "<recipe>", origins: dict[str, str] | None = None) -> dict[str, Any]:
    """Preset ``[model]`` table with the recipe's overrides and block shorthands applied."""
    origins = origins or {}
    where = _where("model.preset", origins, source)
    model = _load_preset(cfg.preset, where)
    for key, value in cfg.overrides.items():
        full = f"model.{key}"
        if key not in model:
            valid = [*model, "level_blocks", "center_block"]
            raise ConfigError(f"unknown key {full!r} in {_where(full, origins, source)}: {suggest(key, valid)}")
        if key in SIMPLE_MODEL_FIELDS:  # stage tables are checked by ModelConfig when the model is built
            value = coerce(value, SIMPLE_MODEL_FIELDS[key], full, _where(full, origins, source))
        model[key] = value
    if cfg.level_blocks is not None:
        levels = model.get("levels", [])
        if len(cfg.level_blocks) != len(levels):
            raise ConfigError(
                f"bad value for 'model.level_blocks' in {_where('model.level_blocks', origins, source)}: "
                f"preset {cfg.preset!r} has {len(levels)} levels, got {len(cfg.level_blocks)} block names"
            )
        model["levels"] = [{**lvl, "block": b} for lvl, b in zip(levels, cfg.level_blocks, strict=True)]
    if cfg.center_block is not None:
        model["center"] = {**model.get("center", {}), "block": cfg.center_block}
    return model


def pool_product(model_config: dict[str, Any]) -> int:
    """Product of the U-Net pooling factors (every sequence length must be divisible by it)."""
    out = 1
    for p in model_config.get("pool", []):
        out *= int(p)
    return out


# ----------------------------------------------------------------------------------------------
# sequence-length schedule (paper Table 14)


def seqlen_variant(recipe: Recipe, sample_len: int) -> Recipe:
    """A copy of a YouTubeMix recipe at one row of the Table 14 schedule (sample_len, batch)."""
    from audiomamba.data import SEQLEN_SCHEDULE

    table = dict(SEQLEN_SCHEDULE)
    if sample_len not in table:
        raise ConfigError(
            f"sample_len {sample_len} is not in the Table 14 schedule: use one of {', '.join(map(str, table))}"
        )
    out = copy.deepcopy(recipe)
    out.data.sample_len = sample_len
    out.data.batch_size = table[sample_len]
    out.meta.name = f"{recipe.meta.name}-seqlen-{sample_len}"
    return out


# ----------------------------------------------------------------------------------------------
# TOML writing (stdlib has a reader only)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def dumps_toml(tables: dict[str, dict[str, Any]]) -> str:
    """Write a dict of tables (values: scalars, lists, inline tables) as TOML text."""
    lines: list[str] = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None)
        lines.append("")
    return "\n".join(lines)
