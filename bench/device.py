"""Small helpers shared by the benchmark drivers: synchronise, free memory, spot an OOM, name the device, print and
save a report."""

from __future__ import annotations

import gc
import platform

import torch


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so wall clocks measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free(device: torch.device) -> None:
    """Collect garbage and return cached GPU memory between cases."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def is_oom(err: BaseException) -> bool:
    """Whether ``err`` is an out-of-memory error (torch's type, or a RuntimeError that says so)."""
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def device_name(device: torch.device) -> str:
    """Human-readable device description."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def emit_report(lines: list[str], out: str = "") -> str:
    """Join a report's lines, print it, and also write it to ``out`` when given (the drivers' ``--out``)."""
    report = "\n".join(lines) + "\n"
    print(report, flush=True)
    if out:
        with open(out, "w") as f:
            f.write(report)
    return report
