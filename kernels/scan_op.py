"""The scan as an opaque op for ``torch.compile`` (docs/ARCHITECTURE.md §6).

Under ``torch.compile`` :func:`kernels.selective_scan` calls :func:`selective_scan_compiled`, which
calls ``torch.ops.audiomamba.selective_scan``: a ``torch.library.custom_op`` that Dynamo and
Inductor do not look into. The graph around it (projections, conv, gates, LayerNorm, loss) is
traced and fused; the op itself runs our kernels unchanged at run time:

* ``config`` non-empty: the Triton forward/backward of :mod:`kernels.triton_scan` with that launch
  configuration (the :class:`kernels.tuning.ScanConfig` fields as integers, from
  :func:`kernels.tuning.pick_config` at trace time, i.e. the same config as eager);
* ``config`` empty: the PyTorch reference (the FFT convolution for LTI arguments, else the
  associative scan); its backward recomputes the reference forward and differentiates it with
  ``torch.func.vjp`` (autograd is off inside a custom op's implementation; CPU use only).

``register_fake`` gives the output shapes and dtypes without running anything (tracing, meta
tensors); ``register_autograd`` connects the op to ``audiomamba::selective_scan_bwd``. Outside
``torch.compile`` the op is not used: eager calls keep the autograd Function of
:mod:`kernels.triton_scan` (no dispatcher overhead, identical numbers).

This file does not use ``from __future__ import annotations``: ``custom_op`` reads the schema
from the real annotations.
"""

import dataclasses
from typing import Optional

import torch
from torch import Tensor

from .tuning import ScanConfig, pick_config

OP = "audiomamba::selective_scan"
OP_BWD = "audiomamba::selective_scan_bwd"


#: the ScanConfig fields in order, and which of them are bools
_FIELDS = tuple(f.name for f in dataclasses.fields(ScanConfig))
_BOOLS = frozenset(f.name for f in dataclasses.fields(ScanConfig) if f.type in (bool, "bool"))


def config_to_list(cfg: ScanConfig) -> list[int]:
    """A :class:`ScanConfig` as the op's ``int[]`` argument (field order; bools as 0/1)."""
    return [int(getattr(cfg, name)) for name in _FIELDS]


def config_from_list(values: list[int]) -> ScanConfig:
    """Inverse of :func:`config_to_list`."""
    return ScanConfig(**{n: bool(v) if n in _BOOLS else int(v) for n, v in zip(_FIELDS, values, strict=True)})


def _n_chunks(L, block_l: int):
    return max(1, -(-L // block_l))


def _hlast_dtype(u: Tensor, reference: bool) -> torch.dtype:
    return torch.float64 if reference and u.dtype == torch.float64 else torch.float32


def _chunked(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, cfg: ScanConfig) -> bool:
    """Whether the chunked LTI kernels (:mod:`kernels.triton_lti_chunk`) take this call under ``cfg``."""
    if not cfg.lti_chunk:
        return False
    from .triton_lti_chunk import applies

    return applies(u, delta, A, B, C, cfg.lti_chunk)


def _reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    from .reference import selective_scan_assoc, selective_scan_fft

    fn = selective_scan_fft if delta.dim() == 1 and B.dim() == 2 and C.dim() == 2 else selective_scan_assoc
    return fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state=True)


@torch.library.custom_op(OP, mutates_args=())
def selective_scan_op(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Optional[Tensor],  # noqa: UP045 - custom_op's schema inference reads these annotations
    z: Optional[Tensor],  # noqa: UP045
    delta_bias: Optional[Tensor],  # noqa: UP045
    delta_softplus: bool,
    config: list[int],
    need_grad: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """(y (batch, d, L) in u's dtype, saved states for the backward, h_last (batch, d, N, R) real,
    R = 2 (re, im) for complex A). States: (batch, d, chunks, N, R) float32 for the Triton path with
    ``need_grad``, (1,) without, (0,) for the reference."""
    if config:
        cfg = config_from_list(config)
        if _chunked(u, delta, A, B, C, cfg):
            from .triton_lti_chunk import chunk_forward

            return chunk_forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, cfg, need_grad)
        from .triton_scan import scan_forward

        y, states, hlast, _ = scan_forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, cfg, need_grad)
        return y, states, hlast
    y, h = _reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    hlast = torch.view_as_real(h) if h.is_complex() else h[..., None]
    states = u.new_empty((0,), dtype=torch.float32)
    return y, states, hlast.to(_hlast_dtype(u, True)).contiguous()


@selective_scan_op.register_fake
def _(u, delta, A, B, C, D, z, delta_bias, delta_softplus, config, need_grad):
    batch, d, L = u.shape
    N = A.shape[1]
    R = 2 if A.is_complex() else 1
    y = u.new_empty((batch, d, L))
    cfg = config_from_list(config) if config else None
    if not config:
        states = u.new_empty((0,), dtype=torch.float32)
    elif need_grad and _chunked(u, delta, A, B, C, cfg):
        from .triton_lti_chunk import states_shape

        states = u.new_empty(states_shape(batch, d, N, L, A.is_complex(), cfg.lti_chunk, cfg.lti_rows),
                             dtype=torch.float32)
    elif need_grad:
        states = u.new_empty((batch, d, _n_chunks(L, cfg.block_l), N, R), dtype=torch.float32)
    else:
        states = u.new_empty((1,), dtype=torch.float32)
    hlast = u.new_empty((batch, d, N, R), dtype=_hlast_dtype(u, not config))
    return y, states, hlast


def _empty(like: Tensor) -> Tensor:
    return like.new_empty((0,), dtype=torch.float32)


@torch.library.custom_op(OP_BWD, mutates_args=())
def selective_scan_bwd_op(
    dy: Tensor,
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Optional[Tensor],  # noqa: UP045
    z: Optional[Tensor],  # noqa: UP045
    delta_bias: Optional[Tensor],  # noqa: UP045
    states: Tensor,
    delta_softplus: bool,
    config: list[int],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Grads of (u, delta, A, B, C, D, z, delta_bias), each like its input; a (0,) float32 tensor
    stands for an absent input."""
    inputs = (u, delta, A, B, C, D, z, delta_bias)
    if config and _chunked(u, delta, A, B, C, config_from_list(config)):
        from .triton_lti_chunk import chunk_backward

        cfg = config_from_list(config)
        grads = chunk_backward(dy, u, delta, A, B, C, D, z, delta_bias, states, delta_softplus, cfg)
        # the parameters' grads come from one vjp, where Δ's and delta_bias's are the same tensor: no aliases out
        grads = [g if i in (0, 6) or g is None else g.clone() for i, g in enumerate(grads)]
    elif config:
        from .triton_scan import scan_backward

        cfg = config_from_list(config)
        grads = scan_backward(dy, u, delta, A, B, C, D, z, delta_bias, states, delta_softplus, cfg,
                              _n_chunks(u.shape[2], cfg.block_l))
    else:  # the reference: its forward again, differentiated by torch.func (autograd is off in here)
        present = [i for i, x in enumerate(inputs) if x is not None]

        def ref(*xs: Tensor) -> Tensor:
            full = list(inputs)
            for i, x in zip(present, xs, strict=True):
                full[i] = x
            return _reference(*full, delta_softplus)[0]

        _, vjp = torch.func.vjp(ref, *(inputs[i] for i in present))
        found = dict(zip(present, vjp(dy), strict=True))
        grads = [found[i].clone() if i in found else None for i in range(len(inputs))]  # may alias (Δ, bias)
    return tuple(g.contiguous() if g is not None else _empty(u) for g in grads)


@selective_scan_bwd_op.register_fake
def _(dy, u, delta, A, B, C, D, z, delta_bias, states, delta_softplus, config):
    return tuple(torch.empty_like(x, memory_format=torch.contiguous_format) if x is not None else _empty(u)
                 for x in (u, delta, A, B, C, D, z, delta_bias))


def _setup_context(ctx, inputs, output) -> None:
    u, delta, A, B, C, D, z, delta_bias, delta_softplus, config, _need_grad = inputs
    ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, output[1])
    ctx.delta_softplus, ctx.config = delta_softplus, config
    ctx.present = [x is not None for x in (u, delta, A, B, C, D, z, delta_bias)]


def _backward(ctx, dy, _d_states, _d_hlast):
    u, delta, A, B, C, D, z, delta_bias, states = ctx.saved_tensors
    grads = selective_scan_bwd_op(dy, u, delta, A, B, C, D, z, delta_bias, states, ctx.delta_softplus, ctx.config)
    return (*(g if has else None for g, has in zip(grads, ctx.present, strict=True)), None, None, None)


selective_scan_op.register_autograd(_backward, setup_context=_setup_context)


def selective_scan_compiled(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    delta_bias: Tensor | None,
    delta_softplus: bool,
    return_last_state: bool,
    triton: bool,
) -> Tensor | tuple[Tensor, Tensor]:
    """:func:`kernels.selective_scan` through the opaque op (what runs under ``torch.compile``):
    the Triton kernels with the eager launch configuration when ``triton``, else the reference."""
    config = config_to_list(pick_config(u.shape[0], u.shape[1], A.shape[1], u.shape[2], A.is_complex())) if triton else []
    need_grad = torch.is_grad_enabled() and any(
        x is not None and x.requires_grad for x in (u, delta, A, B, C, D, z, delta_bias)
    )
    y, _, hlast = selective_scan_op(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus), config, need_grad)
    if not return_last_state:
        return y
    return y, (torch.view_as_complex(hlast) if A.is_complex() else hlast[..., 0])
