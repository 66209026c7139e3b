"""The U-Net's swappable blocks and their registry (docs/ARCHITECTURE.md §5.2).

Each block is a short stack of pre-norm residual sublayers; forward and step loop over them,
so the sequence logic lives only in the mixers (:mod:`~audiomamba.model.mamba`,
:mod:`~audiomamba.model.sashimi_s4`, :mod:`~audiomamba.model.attention`, :mod:`~audiomamba.model.mlp`).

============== ===============================================================
``mamba-s6``     Mamba block with the selective S6 SSM (N = d_state)
``mamba-s4``     Mamba block with the LTI S4-complex SSM (S4D-Lin)
``mamba-s4-real`` Mamba block with the LTI S4-real SSM (S4D-Real)
``s4-mlp``       SaShiMi block: S4 (N = s4_d_state, ZOH, GELU, GLU) then MLP
``mha-mlp``      causal multi-head attention then MLP
============== ===============================================================
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from audiomamba import kernels
from audiomamba.model.attention import CausalAttention
from audiomamba.model.config import BLOCK_NAMES, ModelConfig
from audiomamba.model.mamba import MambaMixer
from audiomamba.model.mlp import MLP
from audiomamba.model.residual import PreNormResidual
from audiomamba.model.sashimi_s4 import SaShiMiS4
from audiomamba.model.ssm_base import SSMLayer
from audiomamba.model.ssm_s4 import S4Complex
from audiomamba.model.ssm_s4_real import S4Real
from audiomamba.model.ssm_s6 import S6


class Block(nn.Module):
    """A stack of :class:`PreNormResidual` sublayers on width H.

    forward: x (B, L, H) -> (B, L, H); step: x_t (B, H) -> (B, H) with per-sublayer state.
    """

    def __init__(self, width: int, mixers: list[nn.Module], eps: float = 1e-5) -> None:
        super().__init__()
        self.width = width
        self.layers = nn.ModuleList(PreNormResidual(width, m, eps) for m in mixers)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, H) -> (B, L, H)."""
        for layer in self.layers:
            x = layer(x)
        return x

    def init_state(self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32) -> list[Any]:
        """One state per sublayer."""
        return [layer.init_state(batch, device, dtype) for layer in self.layers]

    def reserve_cache(self, state: list[Any], steps: int) -> None:
        """Preallocate the KV caches of the attention sublayers for ``steps`` steps (in place)."""
        for layer, st in zip(self.layers, state, strict=True):
            if isinstance(layer.mixer, CausalAttention):
                layer.mixer.reserve(st, steps)

    def step(self, x: Tensor, state: list[Any], res: Tensor | None = None) -> tuple[Tensor, list[Any]]:
        """x_t (B, H) -> (y_t (B, H), state); ``res`` (B, H), if given, is added to y_t (a U-Net skip)."""
        for i, layer in enumerate(self.layers):
            x, state[i] = layer.step(x, state[i])
        return (x if res is None else x + res), state


class _MambaBlock(Block):
    """Pre-norm residual Mamba mixer; subclasses choose the SSM via :meth:`make_ssm`."""

    def __init__(self, width: int, cfg: ModelConfig) -> None:
        d_inner = cfg.mamba_expand * width
        ssm = self.make_ssm(width, d_inner, cfg)
        super().__init__(width, [MambaMixer(width, ssm, cfg.d_conv)], cfg.norm_eps)

    @staticmethod
    def make_ssm(width: int, d_inner: int, cfg: ModelConfig) -> SSMLayer:
        raise NotImplementedError

    def step(self, x: Tensor, state: list[Any], res: Tensor | None = None) -> tuple[Tensor, list[Any]]:
        """x_t (B, H) -> (y_t (B, H), state); a chain of three or four fused Triton launches where
        :func:`kernels.use_fused_step` allows and the SSM layer has a fused step, else the composed
        step (the reference)."""
        if kernels.use_fused_step(x):
            layer = self.layers[0]
            mixer, st = layer.mixer, state[0]
            head = (x, layer.norm.weight, layer.norm.bias, layer.norm.eps, mixer.in_proj.weight, mixer.conv1d.weight,
                    mixer.conv1d.bias, st["conv"])
            y = mixer.ssm.fused_block_step(head, st["ssm"], mixer.out_proj.weight, res)
            if y is not None:
                return y, state
        return super().step(x, state, res)


class MambaS6Block(_MambaBlock):
    """``mamba-s6``: Mamba block with the selective S6 SSM (Δ rank ceil(H / 16))."""

    @staticmethod
    def make_ssm(width: int, d_inner: int, cfg: ModelConfig) -> SSMLayer:
        return S6(d_inner, cfg.d_state, S6.default_rank(width), cfg.dt_min, cfg.dt_max)


class MambaS4Block(_MambaBlock):
    """``mamba-s4``: Mamba block with the LTI S4-complex SSM (d_state complex modes)."""

    @staticmethod
    def make_ssm(width: int, d_inner: int, cfg: ModelConfig) -> SSMLayer:
        return S4Complex(d_inner, cfg.d_state, cfg.mamba_lti_zoh, cfg.dt_min, cfg.dt_max)


class MambaS4RealBlock(_MambaBlock):
    """``mamba-s4-real``: Mamba block with the LTI S4-real SSM."""

    @staticmethod
    def make_ssm(width: int, d_inner: int, cfg: ModelConfig) -> SSMLayer:
        return S4Real(d_inner, cfg.d_state, cfg.mamba_lti_zoh, cfg.dt_min, cfg.dt_max)


class S4MLPBlock(Block):
    """``s4-mlp``: residual SaShiMi S4 layer, then residual MLP."""

    def __init__(self, width: int, cfg: ModelConfig) -> None:
        s4 = SaShiMiS4(width, cfg.s4_d_state, cfg.dt_min, cfg.dt_max)
        super().__init__(width, [s4, MLP(width, cfg.mlp_expand)], cfg.norm_eps)


class MHAMLPBlock(Block):
    """``mha-mlp``: residual causal multi-head attention, then residual MLP."""

    def __init__(self, width: int, cfg: ModelConfig) -> None:
        attn = CausalAttention(width, cfg.attn_head_dim)
        super().__init__(width, [attn, MLP(width, cfg.mlp_expand)], cfg.norm_eps)


#: block name -> class; every class takes (width, ModelConfig).
BLOCKS: dict[str, type[Block]] = dict(
    zip(BLOCK_NAMES, (MambaS6Block, MambaS4Block, MambaS4RealBlock, S4MLPBlock, MHAMLPBlock), strict=True)
)


def make_block(name: str, width: int, cfg: ModelConfig) -> Block:
    """Build block ``name`` at width H (names are validated by :class:`ModelConfig`)."""
    return BLOCKS[name](width, cfg)
