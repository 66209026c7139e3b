"""Model configuration: a validated dataclass built from a preset's ``[model]`` table (docs/ARCHITECTURE.md §5).

Example (TOML)::

    [model]
    d_model = 64
    pool = [4, 4]                      # one pooling factor per U-Net level, outermost first
    expand = 2                         # width multiplier of each DownPool
    levels = [{ block = "mamba-s6", n = 2 }, { block = "mamba-s6", n = 2 }]
    center = { block = "mamba-s6", n = 2 }

``levels[i]`` gives the block type and count used by BOTH the down and the up stage of level i
(widths d_model * expand**i); ``center`` runs at width d_model * expand**len(pool).
"""

from __future__ import annotations

import difflib
import math
import tomllib
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from torch import nn

from audiomamba.errors import ConfigError
from audiomamba.recipes import folder as recipe_folder
from audiomamba.validate import coerce, suggest

#: valid block names (the registry in :mod:`audiomamba.model.blocks` maps them to classes).
BLOCK_NAMES = ("mamba-s6", "mamba-s4", "mamba-s4-real", "s4-mlp", "mha-mlp")


@dataclass
class StageSpec:
    """Block type and count of one U-Net stage.

    For a level, ``n`` blocks run in the up stage and ``n_down`` (default ``n``) in the down stage;
    ``n_down = 0`` gives SaShiMi's non-U-Net variant (blocks only on the way up). The center uses ``n``.
    """

    block: str = "mamba-s6"
    n: int = 1
    n_down: int | None = None

    @property
    def down(self) -> int:
        """Blocks in the down stage (``n_down`` if given, else ``n``; the up stage has ``n``)."""
        return self.n if self.n_down is None else self.n_down


@dataclass
class ModelConfig:
    """Hyper-parameters of the U-Net and its blocks.

    Attributes:
        d_model: width D of level 0 (embedding width).
        pool: pooling factor per level, outermost first (product divides every sequence length).
        expand: DownPool width multiplier (level i has width D * expand**i).
        levels: one :class:`StageSpec` per pooling level (down and up stage share it).
        center: the innermost stage.
        d_state: SSM state size N of the Mamba blocks (complex modes for ``mamba-s4``).
        mamba_expand: Mamba inner expansion E (d_inner = E * H).
        d_conv: Mamba causal depthwise conv kernel size.
        dt_min, dt_max: range of the log-uniform initial step size Δ.
        mamba_lti_zoh: use zero-order-hold B for the LTI SSMs inside Mamba blocks (else Δ·B as Mamba).
        s4_d_state: SaShiMi's S4 state size for ``s4-mlp`` (real state dim: d_state/2 complex
            conjugate-pair modes, as in S4D).
        mlp_expand: hidden-width multiplier of the MLP in ``s4-mlp`` / ``mha-mlp``.
        attn_head_dim: head width of ``mha-mlp`` attention (heads = max(1, H // attn_head_dim)).
        norm_eps: LayerNorm epsilon.
        vocab: number of token classes (256 for 8-bit μ-law).
        dropout: dropout on every residual branch's output in training (0 = none, the papers' setting);
            a regulariser for small datasets. Generation runs in eval mode, where it is the identity.
    """

    d_model: int = 64
    pool: list[int] = field(default_factory=lambda: [4, 4])
    expand: int = 2
    levels: list[StageSpec] = field(default_factory=lambda: [StageSpec(), StageSpec()])
    center: StageSpec = field(default_factory=StageSpec)
    d_state: int = 16
    mamba_expand: int = 2
    d_conv: int = 4
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    mamba_lti_zoh: bool = False
    s4_d_state: int = 64
    mlp_expand: int = 2
    attn_head_dim: int = 32
    norm_eps: float = 1e-5
    vocab: int = 256
    dropout: float = 0.0

    # ------------------------------------------------------------------------------------------

    @property
    def pool_product(self) -> int:
        """Product of the pooling factors: every sequence length must be a multiple of it."""
        return math.prod(self.pool)

    def width(self, depth: int) -> int:
        """Channel width at U-Net depth ``depth`` (0 = full rate; len(pool) = center)."""
        return self.d_model * self.expand**depth

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (TOML ``[model]`` table, no None values) that :meth:`from_dict` reads back."""
        out = asdict(self)
        for stage in out["levels"]:
            if stage["n_down"] is None:
                del stage["n_down"]
        del out["center"]["n_down"]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | ModelConfig, where: str = "model config") -> ModelConfig:
        """Validate a ``[model]`` table; a one-line :class:`ConfigError` names any bad key."""
        if isinstance(raw, ModelConfig):
            return raw
        if not isinstance(raw, dict):
            raise ConfigError(f"{where} must be a table (dict), got {type(raw).__name__}")
        known = [f.name for f in fields(cls)]
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                raise ConfigError(f"unknown key {key!r} in {where}: {suggest(key, known)}")
            values[key] = value
        out = cls()
        for key, value in values.items():
            setattr(out, key, _coerce(key, value, where))
        out._validate(where)
        return out

    def _validate(self, where: str) -> None:
        def need(cond: bool, key: str, msg: str) -> None:
            if not cond:
                raise ConfigError(f"bad value for {key!r} in {where}: {msg}")

        for key in (
            "d_model",
            "expand",
            "d_state",
            "mamba_expand",
            "d_conv",
            "s4_d_state",
            "mlp_expand",
            "attn_head_dim",
        ):
            need(getattr(self, key) >= 1, key, f"must be >= 1, got {getattr(self, key)}")
        need(self.s4_d_state % 2 == 0, "s4_d_state", f"must be even (conjugate pairs), got {self.s4_d_state}")
        need(all(p >= 1 for p in self.pool), "pool", f"pooling factors must be >= 1, got {self.pool}")
        need(
            len(self.levels) == len(self.pool),
            "levels",
            f"needs one {{block, n}} entry per pooling factor: pool {self.pool} has {len(self.pool)}, levels has {len(self.levels)}",
        )
        need(
            0 < self.dt_min <= self.dt_max,
            "dt_min",
            f"need 0 < dt_min <= dt_max, got {self.dt_min}, {self.dt_max}",
        )
        need(self.vocab >= 2, "vocab", f"must be >= 2, got {self.vocab}")
        need(0.0 <= self.dropout < 1.0, "dropout", f"must be in [0, 1), got {self.dropout}")


def _stage(value: Any, key: str, where: str) -> StageSpec:
    if isinstance(value, StageSpec):
        value = asdict(value)
    if not isinstance(value, dict):
        raise ConfigError(
            f'bad value for {key!r} in {where}: expected a table {{block = "...", n = 1}}, got {value!r}'
        )
    valid = ("block", "n") if key == "center" else ("block", "n", "n_down")
    for k in value:
        if k not in valid:
            raise ConfigError(f"unknown key '{key}.{k}' in {where}: valid: {', '.join(valid)}")
    block = value.get("block", "mamba-s6")
    if block not in BLOCK_NAMES:
        raise ConfigError(
            f"unknown block {block!r} for {key!r} in {where}: valid blocks: {', '.join(BLOCK_NAMES)}"
        )
    counts = {k: value.get(k) for k in ("n", "n_down")}
    counts["n"] = 1 if counts["n"] is None else counts["n"]
    for k, n in counts.items():
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise ConfigError(f"bad value for '{key}.{k}' in {where}: must be an integer >= 0, got {n!r}")
    return StageSpec(block=block, n=counts["n"], n_down=counts["n_down"])


#: the ModelConfig fields with plain (non-stage) values, and their annotations
SIMPLE_MODEL_FIELDS: dict[str, Any] = {
    k: v for k, v in typing.get_type_hints(ModelConfig).items() if k not in ("levels", "center")
}


def _coerce(key: str, value: Any, where: str) -> Any:
    """Type-check one value against its field's annotation; stages become :class:`StageSpec`."""
    if key == "center":
        return _stage(value, key, where)
    if key == "levels":
        if not isinstance(value, list):
            raise ConfigError(
                f"bad value for 'levels' in {where}: expected a list of {{block, n}} tables, got {value!r}"
            )
        return [_stage(v, f"levels[{i}]", where) for i, v in enumerate(value)]
    return coerce(value, SIMPLE_MODEL_FIELDS[key], key, where)


_NO_DECAY_MODULES = (nn.LayerNorm, nn.Embedding, nn.GroupNorm, nn.RMSNorm)


def is_no_decay(module: nn.Module, name: str, param: nn.Parameter) -> bool:
    """Whether ``module.<name>`` is excluded from weight decay.

    True for parameters flagged ``_no_weight_decay`` or listed in the module's ``no_weight_decay``
    (SSM A, Δ, D, …), for norm and embedding weights, and for biases and other 1-D tensors.
    """
    return (
        getattr(param, "_no_weight_decay", False)
        or name in getattr(module, "no_weight_decay", ())
        or isinstance(module, _NO_DECAY_MODULES)
        or name.endswith("bias")
        or param.ndim < 2
    )


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: ``{"params": [...], "weight_decay": weight_decay}`` and the no-decay group (0.0).

    Each parameter appears once; empty groups are left out.
    """
    decay: list[nn.Parameter] = []
    no: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen or not p.requires_grad:
                continue
            seen.add(id(p))
            (no if is_no_decay(module, name, p) else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


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
