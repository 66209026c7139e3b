"""The SaShiMi-style U-Net with swappable Mamba / S4 / attention blocks (docs/ARCHITECTURE.md §5).

Public API::

    cfg = ModelConfig.from_dict(load_model_preset("sc09-small")["model"])
    model = build_model(cfg)                          # or build_model(dict)
    logits = model(tokens)                            # (B, L) -> (B, L, 256)
    state = model.init_state(batch, device)
    logits_t, state = model.step(tokens_t, state)     # (B,) -> (B, 256), exact step mode
    groups = param_groups(model, weight_decay)        # AdamW groups
"""

from __future__ import annotations

from typing import Any

from audiomamba.model.blocks import BLOCKS, Block, make_block
from audiomamba.model.config import (
    BLOCK_NAMES,
    ModelConfig,
    StageSpec,
    list_model_presets,
    load_model_preset,
    param_groups,
)
from audiomamba.model.unet import AudioUNet


def build_model(config: dict[str, Any] | ModelConfig) -> AudioUNet:
    """Build the U-Net from a :class:`ModelConfig`, a ``[model]`` table, or a whole preset dict."""
    if isinstance(config, dict) and isinstance(config.get("model"), dict):
        config = config["model"]
    return AudioUNet(ModelConfig.from_dict(config))


def build_preset(name: str) -> AudioUNet:
    """Build the model of preset ``name`` (``recipes/models/<name>.toml``)."""
    return build_model(load_model_preset(name))


__all__ = [
    "BLOCKS",
    "BLOCK_NAMES",
    "AudioUNet",
    "Block",
    "ModelConfig",
    "StageSpec",
    "build_model",
    "build_preset",
    "list_model_presets",
    "load_model_preset",
    "make_block",
    "param_groups",
]
