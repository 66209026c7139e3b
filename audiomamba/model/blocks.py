"""The U-Net's swappable blocks, their mixers and their registry (docs/ARCHITECTURE.md §5.2).

Each block is a short stack of pre-norm residual sublayers (:class:`PreNormResidual`); forward
and step loop over them, so the sequence logic lives only in the mixers defined here: the MLP,
causal attention, the Mamba mixer around any SSM layer of :mod:`audiomamba.model.ssm`, and
SaShiMi's S4 layer.

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
import torch.nn.functional as F
from torch import Tensor, nn

from audiomamba import kernels
from audiomamba.errors import ConfigError
from audiomamba.kernels.backend import use_triton
from audiomamba.kernels.triton_conv import causal_conv1d_silu, fused_conv_enabled
from audiomamba.model.config import BLOCK_NAMES, ModelConfig
from audiomamba.model.ssm import S6, S4Complex, S4Real, SSMLayer


class PreNormResidual(nn.Module):
    """x -> x + dropout(mixer(norm(x))); ``mixer`` has forward (B, L, H), init_state and step (B, H).
    The step (generation, eval mode) has no dropout."""

    def __init__(self, width: int, mixer: nn.Module, eps: float = 1e-5, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=eps)
        self.mixer = mixer
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, H) -> (B, L, H)."""
        return x + self.drop(self.mixer(self.norm(x)))

    def init_state(self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32) -> Any:
        """The mixer's state."""
        return self.mixer.init_state(batch, device, dtype)

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """x (B, H) -> (B, H)."""
        y, state = self.mixer.step(self.norm(x), state)
        return x + y, state


class MLP(nn.Module):
    """Linear(H, e·H) -> GELU -> Linear(e·H, H) on the last dim (any leading shape)."""

    def __init__(self, width: int, expand: int = 2) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, expand * width)
        self.fc2 = nn.Linear(expand * width, width)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., H) -> (..., H)."""
        return self.fc2(F.gelu(self.fc1(x)))

    def init_state(self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32) -> None:
        """No state."""
        return None

    def step(self, x: Tensor, state: None) -> tuple[Tensor, None]:
        """x (B, H) -> (B, H)."""
        return self(x), state


class CausalAttention(nn.Module):
    """Multi-head causal self-attention on H channels; heads = max(1, H // head_dim).

    Step mode appends each step's key and value to a cache and attends over all of it, which is
    the same computation as the causal forward at that position. The cache grows by
    concatenation, or, once :meth:`reserve` has preallocated it, is written in place at a
    position counter held on the device (fixed shapes: the steps can be captured in a CUDA graph).
    """

    def __init__(self, width: int, head_dim: int = 32) -> None:
        super().__init__()
        heads = max(1, width // head_dim)
        if width % heads:
            raise ConfigError(
                f"width {width} is not divisible into {heads} attention heads in model.attn_head_dim={head_dim}: "
                "choose attn_head_dim dividing every level width"
            )
        self.heads, self.width = heads, width
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def _attend(self, x: Tensor, cache: dict[str, Tensor] | None) -> Tensor:
        """x (B, L, H) -> (B, L, H); with a cache, x is the newest L steps after the cached ones."""
        Bsz, L, H = x.shape
        q, k, v = (
            self.qkv(x).view(Bsz, L, 3, self.heads, H // self.heads).permute(2, 0, 3, 1, 4)
        )  # (B, h, L, hd)
        mask = None
        if cache is not None and "n" in cache:  # preallocated: write at n, attend over positions <= n
            if L != 1:
                raise ValueError("a preallocated KV cache takes one step at a time")
            cache["k"].index_copy_(2, cache["n"], k.to(cache["k"].dtype))
            cache["v"].index_copy_(2, cache["n"], v.to(cache["v"].dtype))
            mask = (torch.arange(cache["k"].shape[2], device=x.device) <= cache["n"])[None, None, None, :]
            cache["n"].add_(1)
            k, v = cache["k"], cache["v"]
        elif cache is not None:
            k = torch.cat([cache["k"], k.to(cache["k"].dtype)], dim=2)
            v = torch.cat([cache["v"], v.to(cache["v"].dtype)], dim=2)
            cache["k"], cache["v"] = k, v
        # a causal mask aligned to the end: with L == 1 and a cache, the new query sees everything
        o = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=mask,
                                           is_causal=cache is None)
        return self.out(o.transpose(1, 2).reshape(Bsz, L, H))

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, H) -> (B, L, H)."""
        return self._attend(x, None)

    def init_state(
        self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32
    ) -> dict[str, Tensor]:
        """Empty KV cache: k, v (B, heads, 0, head_dim)."""
        empty = torch.zeros(batch, self.heads, 0, self.width // self.heads, device=device, dtype=dtype)
        return {"k": empty, "v": empty.clone()}

    def reserve(self, cache: dict[str, Tensor], steps: int) -> None:
        """Preallocate ``cache`` in place for ``steps`` more steps: k, v (B, heads, cached + steps,
        head_dim) and the position counter n (1,) int64; the cached entries are kept."""
        if "n" in cache:
            raise ValueError("this KV cache is already preallocated")
        k, v = cache["k"], cache["v"]
        n = k.shape[2]
        shape = (k.shape[0], k.shape[1], n + steps, k.shape[3])
        cache["k"] = torch.zeros(shape, device=k.device, dtype=k.dtype)
        cache["v"] = torch.zeros(shape, device=v.device, dtype=v.dtype)
        cache["k"][:, :, :n] = k
        cache["v"][:, :, :n] = v
        cache["n"] = torch.full((1,), n, dtype=torch.long, device=k.device)

    def step(self, x: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """x (B, H) -> (B, H); appends to the KV cache."""
        return self._attend(x[:, None, :], state)[:, 0], state


class MambaMixer(nn.Module):
    """Mamba's sequence mixer around any :class:`SSMLayer` on d_inner = E·H channels.

    in_proj: Linear(H, 2·d_inner) -> (x, z); x -> causal depthwise Conv1d(k) -> SiLU -> SSM,
    whose output is gated by SiLU(z) inside the scan op; out_proj: Linear(d_inner, H).

    Args:
        width: H. ssm: the SSM layer (its ``d`` must be d_inner). d_conv: conv kernel size.
    """

    def __init__(self, width: int, ssm: SSMLayer, d_conv: int = 4) -> None:
        super().__init__()
        d_inner = ssm.d
        self.d_inner, self.d_conv = d_inner, d_conv
        self.in_proj = nn.Linear(width, 2 * d_inner, bias=False)
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1)
        self.ssm = ssm
        self.out_proj = nn.Linear(d_inner, width, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, H) -> (B, L, H)."""
        L = x.shape[1]
        xz = self.in_proj(x)
        if fused_conv_enabled() and use_triton(xz):
            # conv + SiLU in one Triton kernel, straight from the (B, L, 2E) layout (AUDIOMAMBA_FUSED_CONV=0:
            # the PyTorch path). Under torch.compile it is the opaque op audiomamba::causal_conv1d_silu.
            u = causal_conv1d_silu(xz[..., : self.d_inner], self.conv1d.weight[:, 0, :], self.conv1d.bias)
            z = xz[..., self.d_inner :].transpose(1, 2)
        else:
            u, z = xz.transpose(1, 2).chunk(2, dim=1)  # (B, d_inner, L) each
            u = F.silu(self.conv1d(u)[..., :L])
        y = self.ssm(u.contiguous(), z.contiguous())
        return self.out_proj(y.transpose(1, 2))

    def init_state(
        self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32
    ) -> dict[str, Tensor]:
        """Conv window (B, d_inner, k-1) of past inputs and the SSM state h (B, d_inner, N)."""
        return {
            "conv": torch.zeros(batch, self.d_inner, self.d_conv - 1, device=device, dtype=dtype),
            "ssm": self.ssm.init_state(batch, device),
        }

    def step(self, x: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """x (B, H) -> (B, H); updates the conv window and SSM state in place."""
        u, z = self.in_proj(x).chunk(2, dim=-1)  # (B, d_inner)
        # (B, d_inner, k) in the wider of the two dtypes: this step's u enters unrounded, as in the fused kernels, and
        # is rounded only where it is stored (a bf16 window: ``generate --states bf16``)
        wide = torch.promote_types(state["conv"].dtype, u.dtype)
        window = torch.cat([state["conv"].to(wide), u[:, :, None].to(wide)], dim=-1)
        state["conv"].copy_(window[:, :, 1:])
        w = self.conv1d.weight[:, 0, :]  # (d_inner, k)
        u = F.silu((window * w).sum(-1) + self.conv1d.bias)
        y = self.ssm.step(u, state["ssm"], z)
        return self.out_proj(y), state


class SaShiMiS4(nn.Module):
    """The S4 layer of a SaShiMi block on H channels.

    Args:
        width: H. d_state: SaShiMi's state size (real state dim; d_state/2 complex modes, as S4D).
    """

    def __init__(self, width: int, d_state: int = 64, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        self.ssm = S4Complex(width, d_state // 2, zoh=True, dt_min=dt_min, dt_max=dt_max)
        self.out = nn.Linear(width, 2 * width)

    def _post(self, y: Tensor) -> Tensor:
        """GELU -> Linear -> GLU on the last dim: (..., H) -> (..., H)."""
        return F.glu(self.out(F.gelu(y)), dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, H) -> (B, L, H)."""
        return self._post(self.ssm(x.transpose(1, 2).contiguous()).transpose(1, 2))

    def init_state(self, batch: int, device: Any = None, dtype: torch.dtype = torch.float32) -> Tensor:
        """SSM state (B, H, d_state/2) complex64."""
        return self.ssm.init_state(batch, device)

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, H) -> (B, H); the state is updated in place."""
        return self._post(self.ssm.step(x, state)), state


class Block(nn.Module):
    """A stack of :class:`PreNormResidual` sublayers on width H.

    forward: x (B, L, H) -> (B, L, H); step: x_t (B, H) -> (B, H) with per-sublayer state.
    """

    def __init__(self, width: int, mixers: list[nn.Module], eps: float = 1e-5, dropout: float = 0.0) -> None:
        super().__init__()
        self.width = width
        self.layers = nn.ModuleList(PreNormResidual(width, m, eps, dropout) for m in mixers)

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
        super().__init__(width, [MambaMixer(width, ssm, cfg.d_conv)], cfg.norm_eps, cfg.dropout)

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
        super().__init__(width, [s4, MLP(width, cfg.mlp_expand)], cfg.norm_eps, cfg.dropout)


class MHAMLPBlock(Block):
    """``mha-mlp``: residual causal multi-head attention, then residual MLP."""

    def __init__(self, width: int, cfg: ModelConfig) -> None:
        attn = CausalAttention(width, cfg.attn_head_dim)
        super().__init__(width, [attn, MLP(width, cfg.mlp_expand)], cfg.norm_eps, cfg.dropout)


#: block name -> class; every class takes (width, ModelConfig).
BLOCKS: dict[str, type[Block]] = dict(
    zip(BLOCK_NAMES, (MambaS6Block, MambaS4Block, MambaS4RealBlock, S4MLPBlock, MHAMLPBlock), strict=True)
)


def make_block(name: str, width: int, cfg: ModelConfig) -> Block:
    """Build block ``name`` at width H (names are validated by :class:`ModelConfig`)."""
    return BLOCKS[name](width, cfg)
