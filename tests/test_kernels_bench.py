"""Kernel benchmark driver: FFT convolution baseline, roofline bytes, a CPU smoke run, CLI errors."""

from __future__ import annotations

import pytest
import torch
from audiomamba.bench.kernel import Case, _leaves, fft_conv, make_inputs, min_bytes, pass_fn, run_benchmark
from audiomamba.kernels.reference import selective_scan_ref


@pytest.mark.parametrize("with_gate", [False, True])
def test_fft_conv_equals_lti_scan(with_gate):
    inputs = make_inputs(Case(2, 3, 4, 50, "lti-complex"), torch.float32, "cpu")
    if not with_gate:
        inputs["z"] = None
    torch.testing.assert_close(fft_conv(**inputs), selective_scan_ref(**inputs), atol=1e-4, rtol=1e-4)


def test_fft_conv_real_lti_with_softplus_and_bias():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(1, 2, 30, generator=g)
    delta, bias = torch.randn(2, generator=g), torch.randn(2, generator=g)
    A = -torch.rand(2, 3, generator=g) - 0.1
    B, C = torch.randn(2, 3, generator=g), torch.randn(2, 3, generator=g)
    y = fft_conv(u, delta, A, B, C, delta_bias=bias, delta_softplus=True)
    torch.testing.assert_close(y, selective_scan_ref(u, delta, A, B, C, None, None, bias, True), atol=1e-4, rtol=1e-4)


def test_min_bytes_counts_every_tensor_once():
    sel, lti = Case(2, 4, 16, 100, "selective-real"), Case(2, 4, 16, 100, "lti-complex")
    assert min_bytes(sel, 4, False) == 4 * (2 * 4 * 100 * 4 + 2 * 2 * 16 * 100)
    assert min_bytes(lti, 2, False) == 2 * (2 * 4 * 100 * 3)
    assert min_bytes(sel, 4, True) > 2 * min_bytes(sel, 4, False)


def test_cpu_smoke_benchmark_report():
    pytest.importorskip("triton")
    report = run_benchmark(device="cpu", quick=True, command="test", dtypes=("fp32",),
                           cases=[Case(1, 4, 4, 16, "selective-real"), Case(1, 4, 4, 16, "lti-complex")])
    lines = [ln for ln in report.splitlines() if ln.startswith("| (")]
    assert len(lines) == 4
    assert all(ln.count("|") == 12 for ln in lines)
    lti_rows = [ln for ln in lines if "lti-complex" in ln]
    assert all("×" in ln.split("|")[-2] for ln in lti_rows)  # FFT speed-up filled for LTI rows
    assert "device:" in report and "command: `test`" in report
    checks = [ln for ln in report.splitlines() if ln.startswith("- check")]
    assert len(checks) == 2
    for ln in checks:  # the timed Triton forward agrees with the reference
        errs = [float(tok.split(",")[0]) for tok in ln.split("= ")[1:]]
        assert all(e < 1e-4 for e in errs), ln


def test_cpu_smoke_report_names_the_tuning_environment(monkeypatch):
    """A tuning variable in the environment (here the chunked LTI path) is named in the report's header, and the
    timed kernels still agree with the reference."""
    pytest.importorskip("triton")
    monkeypatch.setenv("AUDIOMAMBA_SCAN_LTI_CHUNK", "16")
    report = run_benchmark(device="cpu", quick=True, command="test", dtypes=("fp32",),
                           cases=[Case(1, 4, 4, 40, "lti-complex")])
    assert "- tuning environment: `AUDIOMAMBA_SCAN_LTI_CHUNK=16`" in report
    checks = [ln for ln in report.splitlines() if ln.startswith("- check")]
    assert checks and all(float(tok.split(",")[0]) < 1e-4 for ln in checks for tok in ln.split("= ")[1:]), checks


def test_cli_bench_kernel_without_cuda_is_one_line_error(capsys):
    if torch.cuda.is_available():
        pytest.skip("has CUDA")
    from audiomamba.cli import main

    with pytest.raises(SystemExit) as ex:
        main(["bench", "kernel", "--quick"])
    assert ex.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--device cpu" in err
    with pytest.raises(SystemExit) as ex:
        main(["bench", "kernel", "--device", "tpu"])
    assert ex.value.code == 2


def test_cuda_graph_option_errors(capsys):
    """--cuda-graph times the table on a GPU: with --device cpu or --sweep it is a one-line error, and the timer
    refuses it off CUDA."""
    from audiomamba.bench.kernel import make_timer

    from audiomamba.cli import main

    for extra in (["--device", "cpu"], ["--sweep", "--device", "cpu"]):
        with pytest.raises(SystemExit) as ex:
            main(["bench", "kernel", "--cuda-graph", *extra])
        assert ex.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "--cuda-graph" in err
    with pytest.raises(ValueError, match="cuda"):
        make_timer("cpu", quick=True, graph=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graphed_fwd_bwd_replays_the_scan():
    """A captured fwd+bwd of our scan replays on the same buffers: after the inputs change in place, a replay gives
    the new grads (the same as an eager call), and the graph timer returns a positive time."""
    from audiomamba.bench.kernel import cuda_graphed, make_timer
    from audiomamba.kernels.triton_scan import selective_scan_triton

    case = Case(2, 64, 16, 1000, "selective-real")
    inputs = make_inputs(case, torch.float32, "cuda")
    kw, leaves = _leaves(inputs)
    gy = torch.randn_like(kw["u"])
    out: list = []

    def fwd_bwd():
        out[:] = torch.autograd.grad(selective_scan_triton(**kw), leaves, gy)

    replay = cuda_graphed(fwd_bwd)
    with torch.no_grad():
        kw["u"].mul_(2.0)
    replay()
    torch.cuda.synchronize()
    graphed = [g.clone() for g in out]
    eager = torch.autograd.grad(selective_scan_triton(**kw), leaves, gy)
    for a, b in zip(graphed, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert make_timer("cuda", quick=True, graph=True)(pass_fn(selective_scan_triton, inputs, True)) > 0


def test_cpu_smoke_config_sweep():
    pytest.importorskip("triton")
    from audiomamba.bench.kernel import run_sweep

    report = run_sweep(device="cpu", quick=True, command="t", dtype="fp32",
                       cases=[Case(1, 4, 4, 16, "selective-real")], configs=["16,2,1,4,4", "16,4,4,4,4"])
    rows = [ln for ln in report.splitlines() if ln.startswith("| (")]
    assert len(rows) == 2 and not any("failed" in r for r in rows)


def test_fwd_bwd_closures_of_the_same_inputs_give_the_same_grads():
    """scan_env_sweep compares the grads of one closure per setting: they must share the output grad
    (a fresh random one per closure made identical kernels differ by O(1), 2026-12-02)."""
    inputs = make_inputs(Case(1, 4, 2, 16, "selective-real"), torch.float32, "cpu")
    g1 = pass_fn(selective_scan_ref, inputs, True)()
    g2 = pass_fn(selective_scan_ref, inputs, True)()
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b)


def test_env_sweep_settings_one_variable_and_combinations():
    """scan_env_sweep's values: one variable's values ("default" unsets it), or ``NAME=V+NAME=V`` combinations;
    every variable that any value sets is unset ("") where another value leaves it out."""
    from audiomamba.bench.scan_env_sweep import _settings

    assert _settings("X", ["default", "1"]) == [{"X": ""}, {"X": "1"}]
    assert _settings("combos", ["default", "A=2+B=3", "A=4"]) == [
        {"A": "", "B": ""}, {"A": "2", "B": "3"}, {"A": "4", "B": ""}]
    for bad in ("A=2+B", "=2"):
        with pytest.raises(ValueError, match="NAME=V pairs"):
            _settings("combos", ["default", bad])


def test_profile_scan_names_a_shape_that_is_not_there_before_any_gpu_work(capsys):
    """``profile_scan --ncu CASE``: an index outside the benchmark shapes is a one-line exit naming the range,
    checked before the GPU is looked for (so on the CPU too)."""
    from audiomamba.bench.kernel import FULL_CASES
    from audiomamba.bench.profile_scan import main

    with pytest.raises(SystemExit, match=rf"--ncu {len(FULL_CASES)}: no such benchmark shape; give 0 to "
                                         rf"{len(FULL_CASES) - 1}"):
        main(["--ncu", str(len(FULL_CASES))])
