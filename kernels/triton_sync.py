"""Kernels that only synchronise, for ``bench/sync_cost.py`` (issue 18: what a one-stream step can afford per block).

A tiny kernel to chain launches with; P programs meeting again and again at the runs' grid barrier
(:func:`kernels.triton_mamba_run._grid_barrier`); one program spread over the CTAs of a thread-block cluster
(``num_ctas``) summing a vector across them again and again, which Triton compiles to exchanges through distributed
shared memory and hardware cluster barriers on sm_90.
"""

from __future__ import annotations

import triton
import triton.language as tl

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
def _cluster_rounds_kernel(x_ptr, y_ptr, rounds, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs)
    acc = tl.zeros([BLOCK], tl.float32)
    for _ in range(rounds):
        acc = acc + tl.sum(x * (acc + 1.0), axis=0) * 1e-9  # each round needs the whole previous sum
    tl.store(y_ptr + offs, acc)
