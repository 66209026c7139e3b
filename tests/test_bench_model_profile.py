"""`bench model --profile` / `--compile` (issue 14): the grouping rules, the CLI on tiny CPU shapes, and
the eager-vs-compiled driver (the aot_eager backend: no C++ compile, seconds instead of minutes)."""

from __future__ import annotations

import os

import pytest
import torch
from audiomamba.bench import model as bench_model
from audiomamba.bench.model import PROFILE_GROUPS, Case, classify, group_times

# (names: own name first, then the ops it runs inside; time), with the group each must land in
EVENTS = [
    (["_scan_fwd_seq_kernel", "SelectiveScanFn"], 40.0, "scan"),
    (["_scan_bwd_kernel", "autograd::engine::evaluate_function: SelectiveScanFnBackward"], 30.0, "scan"),
    (["aten::mul", "audiomamba::selective_scan (reference)"], 1.0, "scan"),
    (["audiomamba::selective_scan_bwd", "CompiledFunctionBackward"], 2.0, "scan"),
    # the fully-LTI chunked kernels (AUDIOMAMBA_SCAN_LTI_CHUNK) and their autograd node
    (["_lti_chunk_bwd_kernel", "autograd::engine::evaluate_function: LtiChunkFnBackward"], 2.0, "scan"),
    (["nvjet_tst_128x64_64x4_1x2_h_bz_coopA_NNT", "aten::mm", "aten::linear"], 10.0, "matmul"),
    (["sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "aten::addmm"], 5.0, "matmul"),
    (["aten::mm", "autograd::engine::evaluate_function: MmBackward0"], 2.0, "matmul"),
    (["void cutlass::Kernel2<cutlass_80_tensorop_s16816gemm_bf16>(Params)"], 1.0, "matmul"),
    (["void conv_depthwise2d_forward_kernel<float>", "aten::_conv_depthwise2d", "aten::convolution"], 3.0, "conv"),
    (["xmma_fprop_implicit_gemm", "aten::cudnn_convolution", "aten::convolution"], 1.0, "conv"),
    (["aten::convolution_backward", "ConvolutionBackward0"], 1.0, "conv"),
    # our fused conv + SiLU, eager (its autograd Function) and compiled (its torch.library op)
    (["_conv_bwd_kernel", "autograd::engine::evaluate_function: _ConvSiluFnBackward"], 2.0, "conv"),
    (["_conv_fwd_kernel", "_ConvSiluFn"], 1.0, "conv"),
    (["_conv_bwd_kernel", "audiomamba::causal_conv1d_silu_bwd"], 1.0, "conv"),
    (["void at::native::vectorized_layer_norm_kernel<float>", "aten::native_layer_norm", "aten::layer_norm"], 2.0, "norm"),
    (["triton_per_fused_add_native_layer_norm_3", "## Call CompiledFxGraph fxyz ##"], 1.0, "norm"),
    (["void at::native::GammaBetaBackwardCUDAKernel<float>", "aten::native_layer_norm_backward"], 1.0, "norm"),
    (["void at::native::vectorized_elementwise_kernel<4, silu>", "aten::silu"], 2.0, "elementwise"),
    (["triton_poi_fused_mul_silu_sigmoid_7", "## Call CompiledFxGraph fxyz ##"], 1.0, "elementwise"),
    (["aten::_to_copy", "aten::to"], 1.0, "elementwise"),
    (["aten::mul", "autograd::engine::evaluate_function: SoftplusBackward0"], 1.0, "elementwise"),
    (["void at::native::cunn_SoftMaxForward<float>", "aten::_log_softmax", "aten::log_softmax",
      "aten::cross_entropy_loss"], 4.0, "loss"),
    (["aten::_to_copy", "aten::to", "loss: cross_entropy"], 2.0, "loss"),
    (["aten::nll_loss_backward", "NllLossBackward0"], 1.0, "loss"),
    (["void at::native::multi_tensor_apply_kernel<adam>", "aten::_foreach_mul_", "Optimizer.step#AdamW.step"], 3.0,
     "optimizer"),
    (["aten::mul", "optimizer: clip_grad_norm_"], 1.0, "optimizer"),
    (["aten::embedding_dense_backward", "EmbeddingBackward0"], 1.0, "other"),
    (["Memset (Device)"], 0.5, "other"),
    (["aten::view"], 0.5, "other"),
]


def test_grouping_rules_on_synthetic_events() -> None:
    for names, _, want in EVENTS:
        assert classify(names) == want, names
    totals = group_times((names, t) for names, t, _ in EVENTS)
    assert list(totals) == list(PROFILE_GROUPS)
    for group in PROFILE_GROUPS:
        assert totals[group] == pytest.approx(sum(t for _, t, g in EVENTS if g == group)), group
    assert totals["scan"] == pytest.approx(75.0)
    assert classify("aten::mm") == "matmul" and classify("some_new_kernel") == "other"  # a bare name works too


@pytest.fixture
def tiny_cases(monkeypatch):
    """The --quick cases shrunk to one tiny shape (the CPU runs the reference scan)."""
    monkeypatch.setattr(bench_model, "QUICK_CASES", [Case("sc09-small-tiny", 1, 64)])


def test_cli_profile_quick_cpu_prints_every_group(tiny_cases, tmp_path, capsys) -> None:
    from audiomamba.cli import main

    out = tmp_path / "profile.md"
    try:
        main(["bench", "model", "--profile", "--quick", "--device", "cpu", "--out", str(out)])
    except SystemExit as ex:
        assert ex.code in (0, None)
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("| model | batch × length | mode |"))
    assert all(f"| {g} |" in header for g in PROFILE_GROUPS)
    row = next(line for line in printed.splitlines() if line.startswith("| sc09-small-tiny | 1 × 64 | eager |"))
    assert row.count("%") == len(PROFILE_GROUPS)
    assert "Largest of sc09-small-tiny (eager)" in printed and "--profile" in printed
    assert out.read_text().strip() == printed.strip()
    assert "Triton vs reference scan" not in printed  # the default benchmark's table is not run


def test_profile_and_compile_driver_on_cpu() -> None:
    """Eager and compiled side by side (aot_eager: the same graph capture and autograd as Inductor,
    without its C++ compile): same loss and gradients, a ratio, a profile of each."""
    dev = torch.device("cpu")
    profiles, res, note = bench_model.run_case(Case("sc09-small-tiny", 1, 64), dev, iters=1, max_seconds=5.0,
                                               profile=True, compile=True, backend="aot_eager",
                                               baseline={"AUDIOMAMBA_SCAN_BWD_LOOP": "0"})
    assert note == "" and res is not None and res.note == ""
    assert [p.mode for p in profiles] == ["eager", "compiled"]
    assert res.loss_diff is not None and res.loss_diff < 1e-4
    assert res.grad_rel_diff is not None and res.grad_rel_diff < 1e-4
    assert res.ratio is not None and res.ratio > 0 and res.compile_s is not None
    assert profiles[1].groups["scan"] > 0  # the opaque op (and its backward) is found in the compiled step
    text = "\n".join(bench_model.render_compile([res], dev, "aot_eager"))
    assert "| sc09-small-tiny | 0.08 M | 1 × 64 |" in text and "compiled ÷ eager" in text
    assert res.baseline_ms is not None and res.over_baseline(res.compiled_ms) > 0
    assert "AUDIOMAMBA_SCAN_BWD_LOOP" not in os.environ  # the baseline environment was restored
    text = "\n".join(bench_model.render_baseline([res], {"AUDIOMAMBA_SCAN_BWD_LOOP": "0"}))
    assert "`AUDIOMAMBA_SCAN_BWD_LOOP=0`" in text and "| sc09-small-tiny | 1 × 64 |" in text


def test_baseline_option_parsing_and_errors() -> None:
    assert bench_model.parse_baseline("A=0, B_C=x") == {"A": "0", "B_C": "x"}
    assert bench_model.parse_baseline("") == {}
    with pytest.raises(ValueError, match="bad --baseline item 'A'"):
        bench_model.parse_baseline("A")


@pytest.mark.parametrize("args,msg", [(["--baseline", "AUDIOMAMBA_SCAN_BWD_LOOP=0"], "--baseline needs --compile"),
                                      (["--compile", "--baseline", "LOOP"], "bad --baseline item"),
                                      (["--compile", "--compile-mode", "fast"], "unknown --compile-mode"),
                                      (["--compile-mode", "reduce-overhead"], "--compile-mode needs --compile"),
                                      (["--profile", "--block", "mamba-s5"], "unknown block 'mamba-s5' for --block"),
                                      (["--block", "mamba-s4"], "--block needs --profile or --compile")])
def test_cli_baseline_errors_are_one_line(args, msg, capsys) -> None:
    from audiomamba.cli import main

    with pytest.raises(SystemExit) as ex:
        main(["bench", "model", "--quick", "--device", "cpu", *args])
    assert ex.value.code not in (0, None)
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_block_option_replaces_every_block() -> None:
    """``--block mamba-s4``: the training step's U-Net has that block at every level and the centre, and the report
    rows name it."""
    step = bench_model.TrainStep("sc09-small-tiny", 1, 64, torch.device("cpu"), block="mamba-s4")
    kinds = {type(m).__name__ for m in step.model.modules()}
    plain = {type(m).__name__ for m in bench_model.TrainStep("sc09-small-tiny", 1, 64, torch.device("cpu")).model.modules()}
    assert kinds != plain and step.params != bench_model.TrainStep("sc09-small-tiny", 1, 64, torch.device("cpu")).params
    assert Case("sc09-small", 16, 16000, "mamba-s4").name == "sc09-small (mamba-s4)"
    assert Case("sc09-small", 16, 16000).name == "sc09-small"


def test_compile_mode_reaches_torch_compile(monkeypatch) -> None:
    seen = []
    monkeypatch.setattr(torch, "compile", lambda model, **kw: seen.append(kw) or model)
    step = bench_model.TrainStep("sc09-small-tiny", 1, 64, torch.device("cpu"))
    step.compile("inductor", "reduce-overhead")
    step.compile()
    assert [kw["mode"] for kw in seen] == ["reduce-overhead", None] and all(kw["dynamic"] is False for kw in seen)


def test_music_batches_are_repeatable_shifted_pairs() -> None:
    a = bench_model.music_batches(2, 256, 3)
    b = bench_model.music_batches(2, 256, 3)
    assert len(a) == 3 and all(x.shape == (2, 256) and y.shape == (2, 256) for x, y in a)
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=True))
    x, y = a[0]
    assert torch.equal(x[:, 1:], y[:, :-1])  # inputs are the targets shifted right by one
    assert not torch.equal(a[0][1], a[1][1])  # a new crop every step
    assert y.unique().numel() > 20  # music, not one repeated token


def test_loss_curves_on_cpu_compare_with_seed_noise(tmp_path) -> None:
    """Baseline (seeds 0, 1), eager and compiled (aot_eager) from the same batches: the current step from seed 0
    follows the seed-0 baseline far closer than the seed-1 curve does; the table says so and the plot is written."""
    base = {"AUDIOMAMBA_SCAN_BWD_LOOP": "0"}
    res = bench_model.run_loss_curves([Case("sc09-small-tiny", 2, 256)], torch.device("cpu"), 4, base, compile=True,
                                      backend="aot_eager", log=lambda _: None)
    (r,) = res
    assert r.note == "" and list(r.curves) == ["baseline", "baseline, seed 1", "eager", "compiled"]
    assert all(len(c) == 4 for c in r.curves.values())
    noise, eager, comp = r.gap("baseline, seed 1"), r.gap("eager"), r.gap("compiled")
    assert noise[0] > 1e-3 and eager[1] < 1e-4 and comp[1] < 1e-4
    text = "\n".join(bench_model.render_loss_curves(res, base, str(tmp_path / "l.png")))
    assert text.count("| yes |") == 2 and "**no**" not in text
    assert bench_model.plot_loss_curves(res, str(tmp_path / "l.png")) and (tmp_path / "l.png").stat().st_size > 0
    # a curve that strays further than seed noise is called out
    r.curves["eager"] = [v + 2 * noise[1] for v in r.curves["baseline"]]
    assert "**no**" in "\n".join(bench_model.render_loss_curves(res, base, None))


def test_loss_curve_steps_follow_the_recipe_schedule_fitted_to_them() -> None:
    """The loss-curve step trains at the recipe's lr (warm-up, peak, cosine to zero over its N steps), so that
    50 steps move the weights as training does; the timing step keeps a fixed lr."""
    from audiomamba.recipe import OptimCfg

    step = bench_model.TrainStep("sc09-small-tiny", 1, 64, torch.device("cpu"), schedule_steps=20)
    lrs = []
    for _ in range(20):
        lrs.append(step.opt.param_groups[0]["lr"])
        step()
    peak = OptimCfg().lr
    assert lrs[0] == pytest.approx(peak / 2) and lrs[1] == pytest.approx(peak)  # 2 warm-up steps (10 % of 20)
    assert lrs[-1] < 0.05 * peak and all(a >= b for a, b in zip(lrs[1:], lrs[2:], strict=False))
    timing = bench_model.TrainStep("sc09-small-tiny", 1, 64, torch.device("cpu"))
    assert timing.sched is None


def test_cli_loss_steps_needs_baseline(capsys) -> None:
    from audiomamba.cli import main

    with pytest.raises(SystemExit) as ex:
        main(["bench", "model", "--quick", "--device", "cpu", "--compile", "--loss-steps", "5"])
    assert ex.value.code not in (0, None)
    err = capsys.readouterr().err
    assert "--loss-steps 5" in err and "--baseline" in err and "Traceback" not in err
