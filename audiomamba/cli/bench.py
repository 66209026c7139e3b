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
    peer: str | None = typer.Option(None, "--peer", help="Add a peer's columns to every row: mamba_ssm "
                                    "(its CUDA selective_scan, built by `python -m audiomamba.bench.peer build`)."),
    peer_build: Path | None = typer.Option(None, "--peer-build", help="Folder the peer was built into "
                                           "(default .peer/build)."),
    cuda_graph: bool = typer.Option(False, "--cuda-graph", help="Time every call (ours and the peer's) as replays "
                                    "of a CUDA graph captured once: the GPU's time without the host's Python and "
                                    "launch costs, as under torch.compile's CUDA graphs (no reference or FFT columns)."),
) -> None:
    """Scan kernel: Triton vs PyTorch reference vs FFT convolution vs HBM roofline [vs a peer]."""
    import os
    import shlex
    import sys

    from audiomamba.errors import ConfigError

    if device not in ("cuda", "cpu"):
        raise ConfigError(f"unknown device {device!r} in --device: use cuda or cpu")
    bad = [d for d in dtype if d not in ("fp32", "bf16")]
    if bad:
        raise ConfigError(f"unknown dtype {bad[0]!r} in --dtype: use fp32 or bf16")
    if cuda_graph and (device != "cuda" or sweep):
        what = "--sweep" if sweep else "--device cpu"
        raise ConfigError(f"--cuda-graph with {what} in bench kernel: CUDA graphs time the benchmark table on a GPU; "
                          f"drop one of the two")
    if device == "cpu":
        os.environ.setdefault("TRITON_INTERPRET", "1")
        if "triton" in sys.modules and os.environ["TRITON_INTERPRET"] != "1":
            raise ConfigError("triton is loaded without TRITON_INTERPRET=1 in bench kernel: set it for --device cpu")
    else:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("no CUDA device for `audiomamba bench kernel`: run it on a GPU, or pass --device cpu for a smoke run")
    loaded = None
    if peer is not None or peer_build is not None:
        if peer != "mamba_ssm":
            what = "--peer-build without --peer" if peer is None else f"unknown peer {peer!r} in --peer"
            raise ConfigError(f"{what}: use --peer mamba_ssm")
        if sweep:
            raise ConfigError("--peer with --sweep in bench kernel: the peer goes into the benchmark table; drop --sweep")
        from audiomamba.bench.peer import DEFAULT_BUILD, load_peer

        loaded = load_peer(peer_build if peer_build is not None else DEFAULT_BUILD)
    from audiomamba.bench.kernel import run_benchmark, run_sweep

    command = "audiomamba bench kernel " + shlex.join(sys.argv[3:] if sys.argv[1:3] == ["bench", "kernel"] else [])
    if sweep:
        report = run_sweep(device=device, quick=quick, command=command.strip(), dtype=dtype[-1])
    else:
        report = run_benchmark(device=device, quick=quick, command=command.strip(), dtypes=tuple(dtype), peer=loaded,
                               cuda_graph=cuda_graph)
    typer.echo(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)


@app.command("model")
def model(
    out: Path | None = typer.Option(None, "--out", help="Also write the markdown report to this file."),
    quick: bool = typer.Option(False, "--quick", help="Tiny presets on short sequences (smoke test; any device)."),
    device: str | None = typer.Option(None, "--device", help="cuda or cpu (default: cuda when available)."),
    profile: bool = typer.Option(False, "--profile", help="Instead: a torch.profiler table of one training step's "
                                 "device time per model, grouped (scan, matmul, conv, norm, elementwise, loss, "
                                 "optimizer, other)."),
    compile_: bool = typer.Option(False, "--compile", help="Instead: eager vs torch.compile(model) training steps "
                                  "side by side (samples/s ratio, compile time, loss/grad agreement); with "
                                  "--profile also the compiled step's profile. On the CPU Inductor needs a C++ "
                                  "compiler and takes minutes."),
    compile_mode: str = typer.Option("default", "--compile-mode", help="With --compile: torch.compile's mode "
                                     "(default, reduce-overhead = CUDA graphs of the forward and backward, "
                                     "max-autotune, max-autotune-no-cudagraphs)."),
    baseline: str = typer.Option("", "--baseline", help="With --compile: also time the eager step under these "
                                 "environment variables (VAR=VALUE,...; e.g. AUDIOMAMBA_SCAN_BWD_LOOP=0 for the "
                                 "tile backward), same weights and batch, and report samples/s against it."),
    loss_steps: int = typer.Option(0, "--loss-steps", help="With --baseline: also the first N training losses on "
                                   "the same procedural-piano batches, baseline (seeds 0 and 1: seed noise) vs the "
                                   "eager and compiled step now; a table and a plot (next to --out, else "
                                   "bench-model-losses.png)."),
    block: str = typer.Option("", "--block", help="With --profile or --compile: every level's and the centre's "
                              "block replaced by this block type (e.g. mamba-s4: the complex-LTI U-Net)."),
) -> None:
    """U-Net forward+backward throughput and peak memory, Triton vs reference scan [--profile, --compile]."""
    import shutil

    import torch

    from audiomamba.bench.model import run, run_profile_compile

    if device is not None and device != "cpu" and not device.startswith("cuda"):
        raise AudioMambaError(f"unknown device {device!r} for --device: use cuda, cuda:N or cpu")
    if not quick and (device == "cpu" or not torch.cuda.is_available()):
        raise AudioMambaError(
            "`audiomamba bench model` needs a CUDA GPU for the paper shapes: run it on a GPU machine, or add --quick"
        )
    if out is not None and not out.parent.is_dir():
        raise AudioMambaError(f"folder {out.parent} for --out {out} does not exist: create it or choose another path")
    on_cpu = device == "cpu" or (device is None and not torch.cuda.is_available())
    if compile_ and on_cpu and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        raise AudioMambaError("--compile on the CPU needs a C++ compiler (Inductor's CPU backend): install g++, "
                              "or run it on a GPU")
    command = "audiomamba bench model" + (" --quick" if quick else "") + (f" --device {device}" if device else "")
    command += (" --profile" if profile else "") + (" --compile" if compile_ else "")
    from audiomamba.recipe import COMPILE_MODES

    if compile_mode not in COMPILE_MODES:
        raise AudioMambaError(f"unknown --compile-mode {compile_mode!r}: use one of {', '.join(COMPILE_MODES)}")
    if compile_mode != "default" and not compile_:
        raise AudioMambaError("--compile-mode needs --compile")
    command += f" --compile-mode {compile_mode}" if compile_mode != "default" else ""
    from audiomamba.bench.model import parse_baseline

    try:
        base_env = parse_baseline(baseline)
    except ValueError as err:
        raise AudioMambaError(str(err)) from None
    if base_env and not compile_:
        raise AudioMambaError("--baseline needs --compile (it adds a column to the eager/compiled comparison)")
    command += f" --baseline {baseline}" if base_env else ""
    if loss_steps < 0 or (loss_steps and not base_env):
        raise AudioMambaError(f"--loss-steps {loss_steps}: give a positive number of steps together with --baseline "
                              "(the curves are compared with the baseline's)")
    command += f" --loss-steps {loss_steps}" if loss_steps else ""
    command += f" --out {out}" if out is not None else ""
    loss_plot = None
    if loss_steps:
        loss_plot = str(out.with_name(out.stem + "-losses.png") if out is not None else Path("bench-model-losses.png"))
    if block:
        from audiomamba.model.config import BLOCK_NAMES

        if block not in BLOCK_NAMES:
            raise AudioMambaError(f"unknown block {block!r} for --block: valid blocks: {', '.join(BLOCK_NAMES)}")
        if not (profile or compile_):
            raise AudioMambaError("--block needs --profile or --compile (the default tables run the presets as they are)")
        command += f" --block {block}"
    if profile or compile_:
        report = run_profile_compile(quick=quick, device=device, command=command, profile=profile, compile=compile_,
                                     baseline=base_env or None, mode=compile_mode, loss_steps=loss_steps,
                                     loss_plot=loss_plot, block=block)
    else:
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
    matrix: bool = typer.Option(False, "--matrix", help="Instead: `audiomamba generate`'s path end to end (WAVs, "
                                "index, SaShiMi filter) per preset x block type x batch: wall and sampling time."),
    lti_cutoff: bool = typer.Option(False, "--lti-cutoff", help="Instead: fused vs composed `mamba-s4` step per "
                                    "batch, and the measured FUSED_COMPLEX_LTI_MAX_BATCH."),
    presets: str | None = typer.Option(None, "--presets", help="Comma-separated model presets (--matrix default "
                                       "sc09-small,sc09-large,youtubemix; --lti-cutoff sc09-small,youtubemix)."),
    blocks: str | None = typer.Option(None, "--blocks", help="--matrix: comma-separated block types replacing every "
                                      "block (default mamba-s6,mamba-s4,mamba-s4-real)."),
    batches: str | None = typer.Option(None, "--batches", help="Comma-separated batch sizes (--matrix default "
                                       "1,16,256,2048; --lti-cutoff 16,64,128,256,512,1024,2048; --quick 1,2)."),
    seconds: float | None = typer.Option(None, "--seconds", help="--matrix: audio per sample (default 1)."),
    max_seconds_per_case: float = typer.Option(5.0, "--max-seconds-per-case", help="--matrix: sample at most about "
                                               "this long per case, extrapolate the rest (said in the note)."),
    lti_steps: int | None = typer.Option(None, "--lti-steps", help="--lti-cutoff: steps timed per case (default 1024)."),
    cases: str = typer.Option("sc09,stream,youtubemix", "--cases", help="The default table's cases, comma-separated: "
                              "sc09 (2048 samples at batch 2048), stream (one SC09 stream), youtubemix (8 s "
                              "continuations)."),
    step_precisions: str = typer.Option("", "--step-precisions", help="Also time the SC09 cases' fused step with "
                                        "these tl.dot precisions (comma-separated, e.g. bf16; the values of "
                                        "AUDIOMAMBA_STEP_PRECISION), same run."),
    pdl: bool = typer.Option(False, "--pdl", help="Also time the SC09 cases' fused step with programmatic dependent "
                             "launch (AUDIOMAMBA_PDL=1; sm_90+), same run."),
) -> None:
    """Batched generation speed, CUDA graph vs plain Python stepping (SC09 and YouTubeMix models);
    --matrix: the CLI's wall vs sampling time per preset x block x batch; --lti-cutoff: the fused mamba-s4 cut-off."""
    import shlex
    import sys

    import torch

    from audiomamba.bench.generate import run

    if not quick and (device == "cpu" or not torch.cuda.is_available()):
        raise AudioMambaError("`audiomamba bench generate` needs a CUDA GPU: run it on a GPU machine, or add --quick")
    command = "audiomamba bench generate " + shlex.join(sys.argv[3:] if sys.argv[1:3] == ["bench", "generate"] else [])
    if matrix or lti_cutoff or any(v is not None for v in (presets, blocks, batches, seconds, lti_steps)):
        report = _generate_matrix_or_cutoff(matrix, lti_cutoff, quick, device, bf16, presets, blocks, batches,
                                            seconds, max_seconds_per_case, lti_steps, command.strip(), out)
    else:
        from audiomamba.bench.generate import CASES

        chosen = tuple(c.strip() for c in cases.split(",") if c.strip())
        if not chosen or any(c not in CASES for c in chosen):
            raise AudioMambaError(f"--cases {cases!r}: give a comma-separated subset of {','.join(CASES)}")
        from audiomamba.kernels.triton_mamba_step import STEP_PRECISIONS

        precs = tuple(p.strip() for p in step_precisions.split(",") if p.strip())
        if any(p not in STEP_PRECISIONS for p in precs):
            raise AudioMambaError(f"--step-precisions {step_precisions!r}: use values of {','.join(STEP_PRECISIONS)}")
        report = run(quick=quick, device=device, command=command.strip(), bf16=bf16, cases=chosen,
                     step_precisions=precs, pdl=pdl)
    print(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)


def _generate_matrix_or_cutoff(matrix, lti_cutoff, quick, device, bf16, presets, blocks, batches, seconds,
                               max_seconds_per_case, lti_steps, command, out) -> str:
    """`bench generate --matrix` / `--lti-cutoff`: check the options, run the driver (audiomamba.bench.generate)."""
    import sys

    from audiomamba.bench import generate as bg
    from audiomamba.model.config import BLOCK_NAMES, load_model_preset

    if matrix == lti_cutoff:
        raise AudioMambaError("--presets/--blocks/--batches/--seconds/--lti-steps need --matrix or --lti-cutoff"
                              if not matrix else "--matrix and --lti-cutoff are two runs: pass one of them")
    if lti_cutoff and (blocks is not None or seconds is not None or bf16):
        raise AudioMambaError("--lti-cutoff times `mamba-s4` in fp32 for --lti-steps steps: drop --blocks, --seconds and --bf16")
    if matrix and lti_steps is not None:
        raise AudioMambaError("--lti-steps belongs to --lti-cutoff: use --seconds and --max-seconds-per-case with --matrix")

    def names(value, default, what):
        out_ = [v.strip() for v in value.split(",") if v.strip()] if value is not None else list(default)
        if not out_:
            raise AudioMambaError(f"--{what} is empty: give a comma-separated list")
        return out_

    preset_list = names(presets, bg.MATRIX_PRESETS if matrix else bg.LTI_PRESETS, "presets")
    if quick:
        preset_list = [bg.quick_preset(p) for p in preset_list]
    for p in preset_list:
        load_model_preset(p)  # ConfigError with the list of presets
    try:
        default = bg.QUICK_BATCHES if quick else (bg.MATRIX_BATCHES if matrix else bg.LTI_BATCHES)
        batch_list = [int(b) for b in names(batches, [str(b) for b in default], "batches")]
    except ValueError:
        raise AudioMambaError(f"--batches {batches!r} is not a comma-separated list of integers, e.g. 1,16,256") from None
    if any(b <= 0 for b in batch_list):
        raise AudioMambaError(f"--batches must be positive, got {batches}")
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if lti_cutoff:
        steps = lti_steps if lti_steps is not None else (8 if quick else 1024)
        if steps <= 0:
            raise AudioMambaError(f"--lti-steps must be positive, got {steps}")
        return bg.run_lti_cutoff(preset_list, batch_list, steps, device, command, log)
    block_list = names(blocks, bg.MATRIX_BLOCKS, "blocks")
    for b in block_list:
        if b not in BLOCK_NAMES:
            raise AudioMambaError(f"unknown block {b!r} in --blocks: valid blocks: {', '.join(BLOCK_NAMES)}")
    secs = seconds if seconds is not None else (bg.QUICK_SECONDS if quick else 1.0)
    if not 0 < secs < float("inf"):
        raise AudioMambaError(f"--seconds must be a positive number, got {secs}")
    if not max_seconds_per_case > 0:
        raise AudioMambaError(f"--max-seconds-per-case must be positive, got {max_seconds_per_case}")

    def update(report: str) -> None:  # --out holds the rows so far, should the run be cut short
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(report)

    return bg.run_matrix(preset_list, block_list, batch_list, secs, max_seconds_per_case, device, command, bf16,
                         log, update)
