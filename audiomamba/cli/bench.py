"""`audiomamba bench {kernel,model,generate}`: benchmark drivers (results go to BENCHMARKS.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from audiomamba.errors import AudioMambaError

app = typer.Typer(help="Benchmarks (run on a GPU; record results in BENCHMARKS.md).", no_args_is_help=True)


@app.command("kernel")
def kernel(
    out: Path | None = typer.Option(None, "--out", help="Also write the Markdown report to this file."),
    quick: bool = typer.Option(False, "--quick", help="Only the two L=16384 shapes, shorter timing."),
    device: str = typer.Option("cuda", "--device", help="cuda (real numbers) or cpu (tiny smoke run)."),
    dtype: list[str] = typer.Option(["fp32", "bf16"], "--dtype", help="Input dtypes to time: fp32, bf16."),
    sweep: bool = typer.Option(False, "--sweep", help="Instead: time Triton under several launch configs."),
) -> None:
    """Scan kernel: Triton vs PyTorch reference vs FFT convolution vs HBM roofline."""
    import os
    import shlex
    import sys

    from audiomamba.errors import ConfigError

    if device not in ("cuda", "cpu"):
        raise ConfigError(f"unknown device {device!r} in --device: use cuda or cpu")
    bad = [d for d in dtype if d not in ("fp32", "bf16")]
    if bad:
        raise ConfigError(f"unknown dtype {bad[0]!r} in --dtype: use fp32 or bf16")
    if device == "cpu":
        os.environ.setdefault("TRITON_INTERPRET", "1")
        if "triton" in sys.modules and os.environ["TRITON_INTERPRET"] != "1":
            raise ConfigError("triton is loaded without TRITON_INTERPRET=1 in bench kernel: set it for --device cpu")
    else:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("no CUDA device for `audiomamba bench kernel`: run it on a GPU, or pass --device cpu for a smoke run")
    from audiomamba.bench.kernel import run_benchmark, run_sweep

    command = "audiomamba bench kernel " + shlex.join(sys.argv[3:] if sys.argv[1:3] == ["bench", "kernel"] else [])
    if sweep:
        report = run_sweep(device=device, quick=quick, command=command.strip(), dtype=dtype[-1])
    else:
        report = run_benchmark(device=device, quick=quick, command=command.strip(), dtypes=tuple(dtype))
    typer.echo(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)


@app.command("model")
def model(
    out: Path | None = typer.Option(None, "--out", help="Also write the markdown report to this file."),
    quick: bool = typer.Option(False, "--quick", help="Tiny presets on short sequences (smoke test; any device)."),
    device: str | None = typer.Option(None, "--device", help="cuda or cpu (default: cuda when available)."),
) -> None:
    """U-Net forward+backward throughput and peak memory, Triton vs reference scan."""
    import torch

    from audiomamba.bench.model import run

    if device is not None and device != "cpu" and not device.startswith("cuda"):
        raise AudioMambaError(f"unknown device {device!r} for --device: use cuda, cuda:N or cpu")
    if not quick and (device == "cpu" or not torch.cuda.is_available()):
        raise AudioMambaError(
            "`audiomamba bench model` needs a CUDA GPU for the paper shapes: run it on a GPU machine, or add --quick"
        )
    if out is not None and not out.parent.is_dir():
        raise AudioMambaError(f"folder {out.parent} for --out {out} does not exist: create it or choose another path")
    command = "audiomamba bench model" + (" --quick" if quick else "") + (f" --device {device}" if device else "")
    command += f" --out {out}" if out is not None else ""
    report = run(quick=quick, device=device, command=command)
    print(report)
    if out is not None:
        out.write_text(report)


@app.command("generate")
def generate(
    out: Path | None = typer.Option(None, "--out", help="Also write the markdown report to this file."),
    quick: bool = typer.Option(False, "--quick", help="Tiny presets, a few steps (smoke test; any device)."),
    device: str | None = typer.Option(None, "--device", help="cuda or cpu (default: cuda when available)."),
    bf16: bool = typer.Option(False, "--bf16", help="bf16 autocast for the per-step matmuls."),
) -> None:
    """Batched generation speed, CUDA graph vs plain Python stepping (SC09 and YouTubeMix models)."""
    import shlex
    import sys

    import torch

    from audiomamba.bench.generate import run

    if not quick and (device == "cpu" or not torch.cuda.is_available()):
        raise AudioMambaError("`audiomamba bench generate` needs a CUDA GPU: run it on a GPU machine, or add --quick")
    command = "audiomamba bench generate " + shlex.join(sys.argv[3:] if sys.argv[1:3] == ["bench", "generate"] else [])
    report = run(quick=quick, device=device, command=command.strip(), bf16=bf16)
    print(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
