"""`audiomamba bench {kernel,model,generate}`: benchmark drivers (results go to BENCHMARKS.md)."""

from __future__ import annotations

import typer

from audiomamba.cli.common import not_built

app = typer.Typer(help="Benchmarks (run on a GPU; record results in BENCHMARKS.md).", no_args_is_help=True)


@app.command("kernel")
def kernel() -> None:
    """Scan kernel: Triton vs PyTorch reference vs FFT convolution vs HBM roofline."""
    not_built("bench kernel", "kernel issue")


@app.command("model")
def model() -> None:
    """U-Net forward+backward throughput and peak memory, Triton vs reference scan."""
    not_built("bench model", "model issue")


@app.command("generate")
def generate() -> None:
    """Batched generation speed, CUDA graph vs plain Python stepping."""
    not_built("bench generate", "generation issue")
