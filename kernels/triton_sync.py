"""Kernels that only synchronise, for ``bench/sync_cost.py`` (issue 18: what a one-stream step can afford per block).

A tiny kernel to chain launches with; P programs meeting again and again at the runs' grid barrier
(:func:`kernels.triton_mamba_run._grid_barrier`); one program spread over the CTAs of a thread-block cluster
(``num_ctas``) summing a vector across them again and again, which Triton compiles to exchanges through distributed
shared memory and hardware cluster barriers on sm_90 (Triton 3.6 fails to compile it for 2 or more CTAs); and
programs compiled as one CTA each but launched as clusters of C CTAs (:func:`kernels.launch.cluster_packed_metadata`),
exchanging a value per CTA through global memory (L2) at the hardware cluster barrier written in PTX
(:func:`kernels.triton_helpers.cluster_barrier`).
"""

from __future__ import annotations

import triton
import triton.language as tl

from .triton_helpers import cluster_barrier
from .triton_mamba_run import _grid_barrier

#: the vector summed across the cluster's CTAs per round (fp32, 4 warps per CTA)
CLUSTER_BLOCK = 1024


@triton.jit
def _tick_kernel(x_ptr):
    tl.store(x_ptr, tl.load(x_ptr) + 1.0)


@triton.jit
def _barrier_rounds_kernel(x_ptr, ticket_ptr, rounds, POLLS: tl.constexpr):
    P = tl.num_programs(0)
    # the counter before this launch is a multiple of P (each launch adds P per round), and at most P - 1 programs
    # can have arrived at the first barrier before this one reads it
    start = tl.atomic_add(ticket_ptr, 0, sem="relaxed", scope="gpu")
    base = start - start % P
    pid = tl.program_id(0)
    v = tl.load(x_ptr + pid)
    for i in range(rounds):
        v = v + 1.0
        _grid_barrier(ticket_ptr, base + P * (i + 1), POLLS)
    tl.store(x_ptr + pid, v)


@triton.jit
def _cluster_exchange_rounds_kernel(x_ptr, buf_ptr, rounds, C: tl.constexpr, EXCHANGE: tl.constexpr):
    """Per round, each CTA stores its value, meets the others of its cluster (C consecutive programs) at the hardware
    barrier and, with ``EXCHANGE``, takes the mean of their C values past L1 plus 1 (after r rounds: the cluster's
    mean of x plus r, which a missed barrier or a stale read gets wrong). Slots alternate by round, so a round's
    stores never overwrite what a slower CTA is still reading from the round before."""
    pid = tl.program_id(0)
    n = tl.num_programs(0)
    offs = pid - pid % C + tl.arange(0, C)
    v = tl.load(x_ptr + pid)
    for i in range(rounds):
        slot = buf_ptr + (i % 2) * n
        tl.store(slot + pid, v)
        token = cluster_barrier(i)
        if EXCHANGE:
            v = tl.sum(tl.load(slot + offs + token * 0, cache_modifier=".cg"), axis=0) / C + 1.0
        else:
            v = v + 1.0 + token.to(tl.float32) * 0.0
    tl.store(x_ptr + pid, v)


@triton.jit
def _cluster_rounds_kernel(x_ptr, y_ptr, rounds, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs)
    acc = tl.zeros([BLOCK], tl.float32)
    for _ in range(rounds):
        acc = acc + tl.sum(x * (acc + 1.0), axis=0) * 1e-9  # each round needs the whole previous sum
    tl.store(y_ptr + offs, acc)
