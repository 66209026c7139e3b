"""`audiomamba info`: versions, device, and whether the Triton kernels are usable here."""

from __future__ import annotations

import importlib
import os
import platform


def _version(mod: str) -> str:
    try:
        return getattr(importlib.import_module(mod), "__version__", "installed")
    except Exception as err:  # noqa: BLE001 - report any import failure as text
        return f"not usable ({type(err).__name__}: {err})".splitlines()[0]


def triton_status() -> str:
    """One line saying whether the Triton scan kernels can run here, and how."""
    import torch

    try:
        import triton  # noqa: F401
    except Exception as err:  # noqa: BLE001
        return f"no (triton not importable: {err})"
    if torch.cuda.is_available():
        return f"yes (CUDA: {torch.cuda.get_device_name(0)})"
    if os.environ.get("TRITON_INTERPRET") == "1":
        return "yes, interpreted on the CPU (TRITON_INTERPRET=1; slow, for tests)"
    return "no GPU: the PyTorch reference scan is used (set TRITON_INTERPRET=1 to run the kernels interpreted)"


def info() -> None:
    """Print versions, the compute device and whether the Triton kernels are usable here."""
    import torch
    from rich.console import Console
    from rich.table import Table

    import audiomamba

    table = Table(title="audiomamba info", show_header=False)
    table.add_row("audiomamba", audiomamba.__version__)
    table.add_row("python", platform.python_version())
    for mod in ("torch", "triton", "torchaudio", "soundfile", "librosa", "numpy", "scipy", "typer"):
        table.add_row(mod, _version(mod))
    device = f"cuda ({torch.cuda.get_device_name(0)}) x{torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
    table.add_row("device", device)
    table.add_row("cpu threads", str(torch.get_num_threads()))
    table.add_row("triton kernels", triton_status())
    Console().print(table)
