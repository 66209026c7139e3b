"""Launch a ``@triton.jit`` kernel without Triton's per-call argument binding where that is safe.

``kernel[grid](*args, **constexprs)`` binds and specialises every argument anew on each call, builds a
cache key from them and looks the compiled kernel up: on the H200 host that took 66 µs per launch of the
sequential forward (41 arguments, 22 constexprs), against 14 µs for the compiled kernel's own launcher
(2026-12-04, about 00:40 UTC). At short L the scan's kernels run for less time than that: (16, 512, 16, 1000) bf16
fwd+bwd took 1604 µs of CPU to issue for 773 µs of kernels, so the GPU waited on Python.

:func:`launch` keeps the compiled kernel that Triton's own launch returned, under a key at least as fine as what
Triton specialises on (each tensor's dtype and 16-byte alignment; the integers' values; the constexprs and launch
options), and calls its launcher directly next time. Any other case (the CPU interpreter, a launch hook set by a
profiler, ``AUDIOMAMBA_FAST_LAUNCH=0``) takes Triton's path.
"""

from __future__ import annotations

import inspect
import os

import torch

from .errors import KernelError

try:  # Triton's runtime settings (launch hooks), looked up on every launch, so imported once
    from triton import knobs as _knobs
except ImportError:
    _knobs = None

#: (kernel, device, tensor keys, integers, constexprs and options) -> (compiled kernel, the constexprs after the integers)
_CACHE: dict[tuple, tuple] = {}


def _tensor_key(t: torch.Tensor) -> tuple:
    """What Triton's specialisation sees of a tensor argument: its dtype and whether its address is 16-byte aligned."""
    return t.dtype, t.data_ptr() % 16 == 0


def _hook_active(hook: object) -> bool:
    """A launch hook that would run: Triton 3.6+ keeps an always-present ``HookChain``, empty unless a profiler
    (e.g. proton) added a call to it; older versions keep None or a callable."""
    if hook is None:
        return False
    calls = getattr(hook, "calls", None)
    return bool(calls) if calls is not None else True


def _hooks_set() -> bool:
    if _knobs is None:  # an older Triton: always its own path
        return True
    rt = _knobs.runtime
    return _hook_active(rt.launch_enter_hook) or _hook_active(rt.launch_exit_hook)


# the current CUDA stream's handle, as Triton's own launch reads it (``torch.cuda.current_stream()`` builds a Stream
# object: 40 µs per launch under cProfile on the H200 host, 2026-12-04 03:04 UTC); looked up once, not per launch
_RAW_STREAM = getattr(torch._C, "_cuda_getCurrentRawStream", None)


def _raw_stream(device: int) -> int:
    return _RAW_STREAM(device) if _RAW_STREAM is not None else torch.cuda.current_stream(device).cuda_stream


def direct_launches() -> bool:
    """Whether launches may take the compiled kernels' own launchers now: no ``AUDIOMAMBA_FAST_LAUNCH=0`` and no
    launch hook (a profiler's); the tensors must be CUDA tensors too (:func:`launch_named`)."""
    return os.environ.get("AUDIOMAMBA_FAST_LAUNCH", "1").strip() not in ("0", "false", "off") and not _hooks_set()


def _direct(first: object) -> bool:
    """Whether a launch whose first argument is ``first`` may take the compiled kernel's own launcher: a CUDA tensor
    (CPU tensors run in Triton's interpreter, whose launch returns no compiled kernel), no
    ``AUDIOMAMBA_FAST_LAUNCH=0`` and no launch hook (a profiler's)."""
    return isinstance(first, torch.Tensor) and first.is_cuda and direct_launches()


def _compiled(launched: object) -> bool:
    """Whether Triton's launch returned a compiled kernel whose launcher can be called directly."""
    return launched is not None and hasattr(launched, "run") and hasattr(launched, "packed_metadata")


def _remember(cache: dict, key: tuple, value: object) -> None:
    if len(cache) > 4096:
        cache.clear()
    cache[key] = value


def _run(compiled, grid: tuple[int, ...], device: int, values) -> None:
    """The compiled kernel's launcher on the current stream; ``values``: every parameter in the kernel's order (the
    launcher skips the constexprs' values)."""
    g = (*grid, 1, 1)
    compiled.run(g[0], g[1], g[2], _raw_stream(device), compiled.function, compiled.packed_metadata, None, None, None,
                 *values)


def launch(kernel, grid: tuple[int, ...], tensors: list | tuple, ints: tuple[int, ...], **kwargs) -> None:
    """``kernel[grid](*tensors, *ints, **kwargs)``, through the compiled kernel's own launcher once Triton has
    compiled this specialisation. ``tensors``: the leading pointer arguments; ``ints``: the integer arguments after
    them, in order (keyed by value: a key at least as fine as Triton's being 1, divisible by 16 or 64-bit);
    ``kwargs``: constexprs and launch options."""
    if not _direct(tensors[0]):
        kernel[grid](*tensors, *ints, **kwargs)
        return
    device = tensors[0].get_device()
    key = (kernel, device, tuple(map(_tensor_key, tensors)), ints, tuple(kwargs.items()))
    hit = _CACHE.get(key)
    if hit is None:
        compiled = kernel[grid](*tensors, *ints, **kwargs)
        if _compiled(compiled):
            params = list(inspect.signature(kernel.fn).parameters.values())[len(tensors) + len(ints):]
            # the constexprs after the integers, as the launcher takes them (it skips their values)
            _remember(_CACHE, key, (compiled, tuple(kwargs.get(p.name, p.default) for p in params)))
        return
    compiled, tail = hit
    _run(compiled, grid, device, (*tensors, *ints, *tail))


def cdiv(a: int, b: int) -> int:
    """⌈a / b⌉ in plain Python for the launch wrappers: ``triton.cdiv`` (and ``triton.next_power_of_2``) are Triton
    functions whose call from Python costs ~4 µs each (2-core CPU machine, 2026-12-05), about 11 of them per fused
    Mamba block step."""
    return -(-a // b)


def next_pow2(n: int) -> int:
    """The smallest power of two ≥ n (0 for 0, as ``triton.next_power_of_2``), in plain Python (see :func:`cdiv`)."""
    return 1 << (n - 1).bit_length() if n > 0 else 0


#: per kernel: its parameters' names and defaults in order, and the names as a set (``launch_named``)
_PARAMS: dict[object, tuple[tuple[str, ...], tuple[object, ...], frozenset[str]]] = {}
#: (kernel, device, the launch options, then every argument's key in the kernel's order) -> compiled kernel
_NAMED: dict[tuple, object] = {}


def _signature(kernel) -> tuple[tuple[str, ...], tuple[object, ...], frozenset[str]] | None:
    """A ``@triton.jit`` kernel's parameter names and defaults in order, and the names as a set; None for anything
    else (a test's spy in its place)."""
    hit = _PARAMS.get(kernel)
    if hit is None:
        if not hasattr(kernel, "fn") or not hasattr(kernel, "params"):
            return None
        params = list(inspect.signature(kernel.fn).parameters.values())
        names = tuple(p.name for p in params)
        hit = _PARAMS[kernel] = (names, tuple(p.default for p in params), frozenset(names))
    return hit


def _bind(sig: tuple, args: tuple, kwargs: dict) -> tuple[list, tuple]:
    """(every parameter's value in the kernel's order, defaults filled in; the launch options as (name, value)
    pairs) of a call ``kernel[grid](*args, **kwargs)``. (Comprehensions, no generators: this runs per launch.)"""
    names, defaults, known = sig
    n = len(args)
    get = kwargs.get
    values = [*args, *[get(name, default) for name, default in zip(names[n:], defaults[n:], strict=True)]]
    return values, tuple([(k, v) for k, v in kwargs.items() if k not in known])


#: while :func:`recording` is on: (grid, every parameter's value in the kernel's order, the compiled kernel or None
#: where the launch did not go through the compiled launcher) of each :func:`launch_named` call
_RECORD: list | None = None


class recording:
    """``with recording() as launches:`` collects each :func:`launch_named` call inside it as (grid, values, compiled
    kernel or None) so that a caller can replay the same launches with other tensors (:func:`replay`)."""

    def __enter__(self) -> list:
        global _RECORD
        self._outer, _RECORD = _RECORD, []
        return _RECORD

    def __exit__(self, *exc: object) -> None:
        global _RECORD
        _RECORD = self._outer


def replay(compiled, grid: tuple[int, ...], device: int, values) -> None:
    """One recorded launch again through the compiled kernel's launcher (``values``: every parameter in the kernel's
    order, the tensors of this call in place of the recorded ones; the caller keeps every key of the specialisation
    the same: dtypes, 16-byte alignment, integers, constexprs)."""
    _run(compiled, grid, device, values)


def env_key() -> tuple:
    """The environment as a hashable key: a cached launch plan is valid only under the settings it was recorded with,
    and a launch wrapper may read any ``AUDIOMAMBA_*`` or ``TRITON_*`` variable. The whole environment's raw items
    (1.9 µs for 38 variables on a 2-core CPU, 2026-12-06, against 7 µs for filtering them by prefix and ~2 µs per
    ``os.environ.get``); another variable changing only costs a new plan."""
    data = getattr(os.environ, "_data", None)
    return tuple(data.items()) if data is not None else tuple(sorted(os.environ.items()))


def _first(kernel, grid: tuple[int, ...], args: tuple, kwargs: dict):
    """Triton's own launch (it compiles this specialisation); the compiled kernel it returns, or None."""
    compiled = kernel[grid](*args, **kwargs)
    return compiled if _compiled(compiled) else None


def launch_named(kernel, grid: tuple[int, ...], *args, **kwargs) -> None:
    """``kernel[grid](*args, **kwargs)`` with any mix of positional and keyword arguments (runtime arguments,
    constexprs and launch options such as ``num_warps`` or ``launch_pdl``), through the compiled kernel's own launcher
    once Triton has compiled this specialisation, as :func:`launch` does: the key holds each tensor's dtype and
    16-byte alignment, every other argument (integers, floats, constexprs) by value, and the options. The generation
    step's kernels take this path: a batch-2048 start-up (its warm-up period and graph capture) issues ~12 000
    launches, and Triton's binding took ~60 µs of each under cProfile on an H100 host (2026-12-05)."""
    sig = _signature(kernel)
    if sig is None or not args or not _direct(args[0]):
        kernel[grid](*args, **kwargs)
        if _RECORD is not None:
            _RECORD.append((grid, None, None))
        return
    values, options = _bind(sig, args, kwargs)
    device = args[0].get_device()
    tensor = torch.Tensor
    key = (kernel, device, options, *[_tensor_key(v) if isinstance(v, tensor) else v for v in values])
    compiled = _NAMED.get(key)
    if compiled is None:
        compiled = _first(kernel, grid, args, kwargs)
        if compiled is not None:
            _remember(_NAMED, key, compiled)
    else:
        _run(compiled, grid, device, values)
    if _RECORD is not None:
        _RECORD.append((grid, values, compiled))


def cluster_packed_metadata(packed: tuple, ctas: int) -> tuple:
    """A compiled kernel's ``packed_metadata`` for a launch as clusters of ``ctas`` CTAs: grid (g, 1, 1) then runs g
    clusters, g * ctas programs. Triton 3.4+ packs (num_warps, num_ctas, shared) and launches num_ctas > 1 as clusters
    of that size with gridX * num_ctas CTAs; earlier versions pack the cluster's dimensions after them."""
    if len(packed) == 3:
        return (packed[0], ctas, packed[2])
    if len(packed) >= 6:
        return (packed[0], 1, packed[2], ctas, 1, 1, *packed[6:])
    raise RuntimeError(f"this Triton's packed launch metadata {packed!r} has no known cluster fields")


class _ClusterLaunch:
    """A compiled kernel (compiled for one CTA per program) whose launcher runs it as one thread-block cluster of
    ``ctas`` CTAs: what :func:`_run` and :func:`replay` call (``run``, ``function``, ``packed_metadata``)."""

    def __init__(self, compiled, ctas: int) -> None:
        self.compiled = compiled
        self.run = compiled.run
        self.function = compiled.function
        self.packed_metadata = cluster_packed_metadata(compiled.packed_metadata, ctas)


_CLUSTERS: dict[tuple, _ClusterLaunch] = {}

#: the portable cluster size (every sm_90 GPU launches it); up to :data:`CLUSTER_MAX_CTAS` is non-portable
CLUSTER_PORTABLE_CTAS = 8
#: the largest cluster an H100 or H200 launches (non-portable; :func:`allow_cluster`)
CLUSTER_MAX_CTAS = 16


def allow_cluster(compiled, ctas: int) -> None:
    """Let a compiled kernel launch as clusters of ``ctas`` CTAs: past the portable 8 it needs the CUDA function's
    non-portable attribute (Triton's launcher sets it only for exactly 16). Triton's driver query
    ``cuOccupancyMaxActiveClusters`` sets that attribute and answers how many such clusters fit at once; none (or no
    such query) is a one-line error."""
    if ctas <= CLUSTER_PORTABLE_CTAS:
        return
    import triton

    query = getattr(triton.runtime.driver.active.utils, "cuOccupancyMaxActiveClusters", None)
    compiled.run  # noqa: B018  (loads the module: the CUDA function handle is set then)
    fits = query(compiled.function, compiled.metadata.shared, ctas) if query is not None else 0
    if fits < 1:
        raise KernelError(f"launch_cluster: this GPU (or Triton) cannot launch a cluster of {ctas} CTAs of this "
                           "kernel: set AUDIOMAMBA_STEP_RUNS=split")


def launch_cluster(kernel, ctas: int, *args, **kwargs) -> None:
    """``kernel`` as ONE thread-block cluster of ``ctas`` programs (program ids 0..ctas-1, all resident at once, on
    sm_90+), so that they can meet at :func:`kernels.triton_helpers.cluster_barrier`; arguments as
    :func:`launch_named` takes them, CUDA tensors only. Compiled by ``kernel.warmup`` (Triton's own launch would run
    the programs without a cluster, where the barrier holds one CTA), keyed as :func:`launch_named` keys, and recorded
    for :func:`replay` like its launches. At most :data:`CLUSTER_MAX_CTAS` CTAs; past the portable 8 through
    :func:`allow_cluster`."""
    if not 1 <= ctas <= CLUSTER_MAX_CTAS:
        raise ValueError(f"launch_cluster: {ctas} CTAs; a cluster has 1 to {CLUSTER_MAX_CTAS}")
    sig = _signature(kernel)
    values, options = _bind(sig, args, kwargs)
    device = args[0].get_device()
    tensor = torch.Tensor
    key = (kernel, device, ctas, options, *[_tensor_key(v) if isinstance(v, tensor) else v for v in values])
    hit = _CLUSTERS.get(key)
    if hit is None:
        compiled = kernel.warmup(*args, grid=(ctas,), **kwargs)
        allow_cluster(compiled, ctas)
        hit = _ClusterLaunch(compiled, ctas)
        _remember(_CLUSTERS, key, hit)
    _run(hit, (1,), device, values)
    if _RECORD is not None:
        _RECORD.append(((1,), values, hit))
