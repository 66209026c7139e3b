"""`audiomamba demo`."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    data: Path | None = typer.Option(None, "--data", help="Real audio folder instead of the built-in synthetic piano."),
    out: Path = typer.Option(Path("demo-out"), "--out"),
    minutes: float | None = typer.Option(
        None, "--minutes", help="Training time budget in minutes (default 3 on CPU, 1 on GPU; the whole demo takes ~1.3x)."
    ),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
) -> None:
    """End-to-end demo: train a tiny U-Net, show BPB falling, write audio and plots."""
    from audiomamba.errors import ConfigError
    from audiomamba.train.demo import DemoOptions, run_demo

    if minutes is not None and minutes <= 0:
        raise ConfigError(f"--minutes must be > 0, got {minutes}")
    if device is not None and device.split(":")[0] not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device!r}: use cpu or cuda")
    if minutes is None:
        import torch

        on_gpu = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
        minutes = 1.0 if on_gpu else 3.0
    run_demo(DemoOptions(out=out, data=data, minutes=minutes, device=device))
