"""Causal multi-head self-attention (PyTorch SDPA) with a KV cache for step mode."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiomamba.errors import ConfigError


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
