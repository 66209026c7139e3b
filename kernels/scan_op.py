"""The scan as an opaque op for ``torch.compile`` (docs/ARCHITECTURE.md §6).

Under ``torch.compile`` :func:`kernels.selective_scan` calls :func:`selective_scan_compiled`, which
calls ``torch.ops.audiomamba.selective_scan``: a ``torch.library.custom_op`` that Dynamo and
Inductor do not look into. The graph around it (projections, conv, gates, LayerNorm, loss) is
traced and fused; the op itself runs our kernels unchanged at run time:

* ``config`` non-empty: the Triton forward/backward of :mod:`kernels.triton_scan` with that launch
  configuration (the :class:`kernels.tuning.ScanConfig` fields as integers, from
  :func:`kernels.tuning.pick_config` at trace time, i.e. the same config as eager);
* fully-LTI arguments under a config with ``lti_chunk``: ``torch.ops.audiomamba.lti_chunk_scan`` on the chunk
  operators, which :func:`kernels.triton_lti_chunk.lti_operators` builds in the traced graph (so Inductor fuses the
  builder and AOTAutograd differentiates it; the op's backward returns the operators' grads);
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
OP_LTI = "audiomamba::lti_chunk_scan"
OP_LTI_BWD = "audiomamba::lti_chunk_scan_bwd"


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
        from .triton_scan import scan_forward

        y, states, hlast, _ = scan_forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                           config_from_list(config), need_grad)
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
    if not config:
        states = u.new_empty((0,), dtype=torch.float32)
    elif need_grad:
        states = u.new_empty((batch, d, _n_chunks(L, config_from_list(config).block_l), N, R), dtype=torch.float32)
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
    if config:
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


@torch.library.custom_op(OP_LTI, mutates_args=())
def lti_chunk_op(
    u: Tensor,
    z: Optional[Tensor],  # noqa: UP045
    D: Optional[Tensor],  # noqa: UP045
    ops: list[Tensor],
    N: int,
    config: list[int],
    need_grad: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """The chunked LTI kernels (:mod:`kernels.triton_lti_chunk`) on the operators ``ops`` (TOEP, VIN, VOUT, AT,
    VLAST, ALAST): (y, the blocks' entering states, h_last (batch, d, N, R) float32)."""
    from .triton_lti_chunk import chunk_forward

    return chunk_forward(u, z, D, tuple(ops), N, config_from_list(config), need_grad)


@lti_chunk_op.register_fake
def _(u, z, D, ops, N, config, need_grad):
    from .triton_lti_chunk import states_shape

    batch, d, L = u.shape
    cfg = config_from_list(config)
    cplx = ops[1].dim() == 4
    shape = states_shape(batch, d, N, L, cplx, cfg.lti_chunk, cfg.lti_rows) if need_grad else (1,)
    return (u.new_empty((batch, d, L)), u.new_empty(shape, dtype=torch.float32),
            u.new_empty((batch, d, N, 2 if cplx else 1), dtype=torch.float32))


@torch.library.custom_op(OP_LTI_BWD, mutates_args=())
def lti_chunk_bwd_op(
    dy: Tensor,
    u: Tensor,
    z: Optional[Tensor],  # noqa: UP045
    D: Optional[Tensor],  # noqa: UP045
    ops: list[Tensor],
    N: int,
    states: Tensor,
    config: list[int],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Grads of (u, z, D, TOEP, VIN, VOUT, AT); a (0,) float32 tensor stands for an absent z or D."""
    from .triton_lti_chunk import chunk_backward

    grads = chunk_backward(dy, u, z, D, tuple(ops), N, states, config_from_list(config))
    return tuple(g if g is not None else _empty(u) for g in grads)


@lti_chunk_bwd_op.register_fake
def _(dy, u, z, D, ops, N, states, config):
    return tuple(torch.empty_like(x, memory_format=torch.contiguous_format) if x is not None else _empty(u)
                 for x in (u, z, D, *ops[:4]))


def _lti_setup_context(ctx, inputs, output) -> None:
    u, z, D, ops, N, config, _need_grad = inputs
    ctx.save_for_backward(u, z, D, *ops[:4], output[1])
    ctx.N, ctx.config = N, config
    ctx.present = (z is not None, D is not None)


def _lti_backward(ctx, dy, _d_states, _d_hlast):
    u, z, D, toep, vin, vout, at, states = ctx.saved_tensors
    du, dz, dD, *g_ops = lti_chunk_bwd_op(dy, u, z, D, [toep, vin, vout, at], ctx.N, states, ctx.config)
    has_z, has_D = ctx.present
    return du, dz if has_z else None, dD if has_D else None, [*g_ops, None, None], None, None, None


lti_chunk_op.register_autograd(_lti_backward, setup_context=_lti_setup_context)


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
    cfg = pick_config(u.shape[0], u.shape[1], A.shape[1], u.shape[2], A.is_complex()) if triton else None
    config = config_to_list(cfg) if triton else []
    need_grad = torch.is_grad_enabled() and any(
        x is not None and x.requires_grad for x in (u, delta, A, B, C, D, z, delta_bias)
    )
    if triton and cfg.lti_chunk:
        from .triton_lti_chunk import applies, lti_operators

        if applies(u, delta, A, B, C, cfg.lti_chunk):
            # the operators' builder is traced with the graph around the op (fused, differentiated by AOTAutograd)
            ops = lti_operators(delta, A, B, C, delta_bias, bool(delta_softplus), cfg.lti_chunk, u.shape[2])
            y, _, hlast = lti_chunk_op(u, z, D, list(ops), A.shape[1], config, need_grad)
            if not return_last_state:
                return y
            return y, (torch.view_as_complex(hlast) if A.is_complex() else hlast[..., 0])
    y, _, hlast = selective_scan_op(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus), config, need_grad)
    if not return_last_state:
        return y
    return y, (torch.view_as_complex(hlast) if A.is_complex() else hlast[..., 0])
