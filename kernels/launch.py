"""Launch a ``@triton.jit`` kernel without Triton's per-call argument binding where that is safe.

``kernel[grid](*args, **constexprs)`` binds and specialises every argument anew on each call, builds a
cache key from them and looks the compiled kernel up: on the H200 host that took 66 µs per launch of the
sequential forward (41 arguments, 22 constexprs), against 14 µs for the compiled kernel's own launcher
(2026-12-04 00:55 UTC). At short L the scan's kernels run for less time than that: (16, 512, 16, 1000) bf16
fwd+bwd took 1604 µs of CPU to issue for 773 µs of kernels, so the GPU waited on Python.

:func:`launch` keeps the compiled kernel that Triton's own launch returned, under a key of everything Triton
specialises on (each tensor's dtype and 16-byte alignment; each integer's being 1, its divisibility by 16 and
whether it fits 32 bits; the constexprs and launch options), and calls its launcher directly next time. Any
other case (the CPU interpreter, a launch hook set by a profiler, an argument of another kind,
``AUDIOMAMBA_FAST_LAUNCH=0``) takes Triton's path.
"""

from __future__ import annotations

import inspect
import os

import torch

#: (kernel, device, argument keys, constexprs) -> (compiled kernel, the remaining parameters with their defaults)
_CACHE: dict[tuple, tuple] = {}


def _arg_key(v: object) -> object:
    """What Triton's specialisation can see of one runtime argument (never less; sometimes more)."""
    if isinstance(v, torch.Tensor):
        return v.dtype, v.data_ptr() % 16 == 0
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return v == 1, v % 16 == 0, -(2**31) <= v < 2**31
    if isinstance(v, float):
        return float
    raise TypeError(type(v))


def enabled() -> bool:
    """The direct launch is on unless ``AUDIOMAMBA_FAST_LAUNCH=0`` or Triton interprets kernels on the CPU."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return False
    return os.environ.get("AUDIOMAMBA_FAST_LAUNCH", "1").strip() not in ("0", "false", "off")


def _hook_active(hook: object) -> bool:
    """A launch hook that would run: Triton 3.6+ keeps an always-present ``HookChain``, empty unless a profiler
    (e.g. proton) added a call to it; older versions keep None or a callable."""
    if hook is None:
        return False
    calls = getattr(hook, "calls", None)
    return bool(calls) if calls is not None else True


def _hooks_set() -> bool:
    try:
        from triton import knobs
    except ImportError:  # an older Triton: always its own path
        return True
    rt = knobs.runtime
    return _hook_active(rt.launch_enter_hook) or _hook_active(rt.launch_exit_hook)


def launch(kernel, grid: tuple[int, ...], args: list | tuple, **kwargs) -> None:
    """``kernel[grid](*args, **kwargs)``, through the compiled kernel's own launcher once Triton has compiled
    this specialisation (``args``: the runtime arguments in order; ``kwargs``: constexprs and launch options)."""
    if not enabled() or _hooks_set():
        kernel[grid](*args, **kwargs)
        return
    try:
        key = (kernel, torch.cuda.current_device(), tuple(_arg_key(a) for a in args), tuple(kwargs.items()))
    except TypeError:
        kernel[grid](*args, **kwargs)
        return
    hit = _CACHE.get(key)
    if hit is None:
        compiled = kernel[grid](*args, **kwargs)
        if compiled is not None and hasattr(compiled, "run") and hasattr(compiled, "packed_metadata"):
            params = list(inspect.signature(kernel.fn).parameters.values())[len(args):]
            _CACHE[key] = (compiled, [(p.name, p.default) for p in params])
        return
    compiled, tail = hit
    vals = [*args, *(kwargs[name] if name in kwargs else default for name, default in tail)]
    g = (*grid, 1, 1)
    stream = torch.cuda.current_stream().cuda_stream
    compiled.run(g[0], g[1], g[2], stream, compiled.function, compiled.packed_metadata, None, None, None, *vals)
