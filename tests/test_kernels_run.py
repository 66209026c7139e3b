"""A run of Mamba blocks stepped as one launch (kernels/triton_mamba_run.py, audiomamba/model/runs.py): the kernel
against its PyTorch reference, the U-Net with runs against the per-block steps (interpreted on CPU; the cases of
several programs meeting at barriers run on a GPU only)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from audiomamba.kernels.errors import KernelError
from audiomamba.kernels.triton_mamba_run import (
    LTIStack,
    mamba_lti_run_step_triton,
    mamba_s6_run_step_triton,
    run_block_e,
    run_dsmem,
    run_exchange_bytes,
    run_late,
    run_ln,
    run_mbar,
    run_pipe,
    run_profile_buffer,
    run_scratch,
    run_step_ref,
    run_warps,
    runs_mode,
)
from kernel_helpers import (
    assert_bf16_close,
    assert_bf16_rounded,
    generate_with_runs,
    kernel_device,
    random_s6_stack,
)
from step_helpers import step_as_replayed

from audiomamba import kernels
from audiomamba.model import build_model
from audiomamba.model.runs import BlockRun


def _needs_concurrent_programs(mode: str, block_e: int, E: int) -> None:
    """Skip a persistent launch of several programs in the CPU interpreter, which runs them one after another (the
    wrapper would take the one-phase launches there, which another case covers)."""
    from audiomamba.kernels.backend import interpreting

    if mode == "1" and block_e < E and interpreting():
        pytest.skip("several programs meeting at a grid barrier need a GPU (the interpreter runs them in turn)")


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("block_e,mode", [(16, "split"), (64, "1"), (16, "1"), (32, "1"), (16, "cluster"), (64, "cluster")])
@pytest.mark.parametrize("res_kind", ["none", "forward", "reversed"])
def test_run_step_matches_the_reference(batch: int, block_e: int, mode: str, res_kind: str) -> None:
    """Three steps of a run of 3 blocks (H 32, d_inner 64, N 16, rank 2): outputs, every block's input, the conv
    windows and SSM states as the float64 reference. block_e 64 is one program (the persistent launch, barriers
    included, runs in the interpreter); 16 and 32 are 4 and 2 programs (persistent: on a GPU only). "cluster": on a
    sm_90 GPU one thread-block cluster meeting at the hardware barrier; in the interpreter the one-phase launches."""
    _needs_concurrent_programs(mode, block_e, 64)
    _check_s6_run(batch, block_e, mode, res_kind, 64)


@pytest.mark.parametrize("E", [192, 256])
def test_run_step_as_a_non_portable_cluster(E: int) -> None:
    """12 and 16 programs (sc09-large's 16 kHz level, sc09-small's 4 kHz level at 16 channels each) as one cluster,
    past the portable 8 CTAs (sm_90 GPU only): as the float64 reference."""
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 9:
        pytest.skip("thread-block clusters need a sm_90+ GPU")
    _check_s6_run(1, 16, "cluster", "forward", E)


@pytest.mark.parametrize("levers", ["LN=two-pass", "DSMEM LN=two-pass", "LATE LN=two-pass", "DSMEM LATE LN=one-pass",
                                    "DSMEM LN=fold", "LATE LN=fold", "DSMEM LATE PIPE LN=fold",
                                    "LATE PIPE LN=two-pass", "DSMEM LATE MBAR=1 LN=fold",
                                    "DSMEM LATE PIPE MBAR=2 LN=fold", "MBAR=1 LN=two-pass"])
@pytest.mark.parametrize("kind,batch,E", [("mamba-s6", 1, 64), ("mamba-s6", 3, 64), ("mamba-s6", 1, 256),
                                          ("mamba-s4", 3, 64), ("mamba-s4-real", 1, 64), ("mamba-s4-real", 3, 64)])
def test_run_step_through_distributed_shared_memory(kind: str, batch: int, E: int, levers: str, monkeypatch) -> None:
    """A cluster run (4 or 16 programs, sm_90 GPU only) with its partials through L2 or every CTA's shared memory
    (``AUDIOMAMBA_STEP_RUN_DSMEM``), the new states stored before or inside the barrier (``AUDIOMAMBA_STEP_RUN_LATE``)
    and each LayerNorm form, in the combinations the default (all three on, the fold; the other tests) is not: as the
    float64 reference. ``LN=two-pass`` alone is the kernel as it was before 2026-12-07's levers. ``PIPE``
    (``AUDIOMAMBA_STEP_RUN_PIPE=1``: each next phase's own reads issued inside the barrier) and ``MBAR``
    (``AUDIOMAMBA_STEP_RUN_MBAR``: the barriers through mbarriers) run nowhere else: the interpreter has no cluster
    barrier."""
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 9:
        pytest.skip("distributed shared memory needs a sm_90+ GPU")
    for lever in ("DSMEM", "LATE", "PIPE"):
        monkeypatch.setenv(f"AUDIOMAMBA_STEP_RUN_{lever}", "1" if lever in levers.split() else "0")
    ln = [lever.split("=")[1] for lever in levers.split() if lever.startswith("LN=")]
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUN_LN", ln[0] if ln else "two-pass")
    mbar = [lever.split("=")[1] for lever in levers.split() if lever.startswith("MBAR=")]
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUN_MBAR", mbar[0] if mbar else "0")
    if kind == "mamba-s6":
        _check_s6_run(batch, 16, "cluster", "reversed", E)
    else:
        test_lti_run_step_matches_the_reference(kind == "mamba-s4", batch, 16, "cluster")


@pytest.mark.parametrize("form", ["two-pass", "one-pass"])
@pytest.mark.parametrize("kind", ["mamba-s6", "mamba-s4", "mamba-s4-real"])
def test_run_step_with_each_layernorm_form(kind: str, form: str, monkeypatch) -> None:
    """``AUDIOMAMBA_STEP_RUN_LN=two-pass`` (the mean, then the squared deviations) and ``one-pass`` (Σx and Σx² in one
    reduction), the forms besides the default fold (the other tests): as the float64 reference, split launches (the
    CPU interpreter too) and one cluster on a sm_90 GPU."""
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUN_LN", form)
    clusters = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 9
    for mode in ("split", "cluster") if clusters else ("split",):
        if kind == "mamba-s6":
            _check_s6_run(1, 16, mode, "forward", 64)
        else:
            test_lti_run_step_matches_the_reference(kind == "mamba-s4", 3, 16, mode)


def test_exchange_buffer_sizes(monkeypatch) -> None:
    """The exchange through distributed shared memory and the late state stores are on unless turned off, the fold
    the default LayerNorm; the exchange buffer holds two slots of every program's out_proj partial (and a selective
    run's x_proj partials), rounded up to a declared size, or is 0."""
    monkeypatch.delenv("AUDIOMAMBA_STEP_RUN_PIPE", raising=False)
    assert not run_pipe()
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUN_PIPE", "1")
    assert run_pipe()
    monkeypatch.delenv("AUDIOMAMBA_STEP_RUN_MBAR", raising=False)
    assert run_mbar() == 0
    for value in ("0", "1", "2"):
        monkeypatch.setenv("AUDIOMAMBA_STEP_RUN_MBAR", value)
        assert run_mbar() == int(value)
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUN_MBAR", "on")
    with pytest.raises(KernelError, match="AUDIOMAMBA_STEP_RUN_MBAR='on' in the environment: use 1 "):
        run_mbar()
    for name, flag in (("AUDIOMAMBA_STEP_RUN_DSMEM", run_dsmem), ("AUDIOMAMBA_STEP_RUN_LATE", run_late)):
        monkeypatch.delenv(name, raising=False)
        assert flag()
        monkeypatch.setenv(name, "0")
        assert not flag()
        monkeypatch.setenv(name, "1")
        assert flag()
        monkeypatch.setenv(name, "yes")
        with pytest.raises(KernelError, match=f"{name}='yes' in the environment: use 1 "):
            flag()
    monkeypatch.delenv("AUDIOMAMBA_STEP_RUN_LN", raising=False)
    assert run_ln() == 2
    for form, code in (("two-pass", 0), ("one-pass", 1), ("fold", 2)):
        monkeypatch.setenv("AUDIOMAMBA_STEP_RUN_LN", form)
        assert run_ln() == code
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUN_LN", "1")
    with pytest.raises(KernelError, match="AUDIOMAMBA_STEP_RUN_LN='1' in the environment: use one of two-pass, "):
        run_ln()
    # sc09-small's 16 kHz level, one stream: 16 programs, H 64; selective adds (4 + 2 * 16) columns
    assert run_exchange_bytes(False, 1, 64, 16, 2, 16) == 8192  # 4 * 16 * 128 = 8192 exactly
    assert run_exchange_bytes(True, 1, 64, 16, 4, 16) == 16384  # 8192 + 4 * 16 * 36
    assert run_exchange_bytes(False, 1, 32, 4, 2, 16) == 4096
    assert run_exchange_bytes(False, 8, 256, 16, 2, 16) == 0  # 256 KiB: more than the largest, through L2


def _check_s6_run(batch: int, block_e: int, mode: str, res_kind: str, E: int) -> None:
    gen = torch.Generator().manual_seed(batch * 100 + block_e)
    dev = kernel_device()
    n, H, N, R, K = 3, 32, 16, 2, 4
    w = random_s6_stack(n, H, E, N, R, K, gen, dev)
    conv = (torch.randn(n, batch, E, K - 1, generator=gen) * 0.3).to(dev)
    h = (torch.randn(n, batch, E, N, generator=gen) * 0.3).to(dev)
    conv_ref, h_ref = conv.double().clone(), h.double().clone()
    res = None if res_kind == "none" else torch.randn(4, batch, H, generator=gen).to(dev)
    first = 0 if res_kind == "forward" else 1
    scratch = run_scratch(batch, H, E, N, R, torch.device(dev), block_e)
    outs = torch.empty(n + 1, batch, H, device=dev)
    for _ in range(3):
        x = torch.randn(batch, H, generator=gen).to(dev)
        y = mamba_s6_run_step_triton(x, w, conv, h, outs, scratch, res, first, res_kind == "reversed", block_e, mode)
        ref = run_step_ref(x.double(), w, conv_ref, h_ref, res, first, res_kind == "reversed")
        assert (outs.double() - ref).abs().max().item() <= 2e-5
        assert torch.equal(y, outs[n])
        assert (conv.double() - conv_ref).abs().max().item() <= 2e-6
        assert (h.double() - h_ref).abs().max().item() <= 2e-6


@pytest.mark.parametrize("cplx", [True, False])
@pytest.mark.parametrize("batch,block_e,mode", [(1, 16, "split"), (3, 64, "1"), (1, 16, "1"), (3, 16, "cluster")])
def test_lti_run_step_matches_the_reference(cplx: bool, batch: int, block_e: int, mode: str) -> None:
    """A run of 3 mamba-s4 (complex) or mamba-s4-real blocks, U-Net up-path skips: as the float64 reference."""
    _needs_concurrent_programs(mode, block_e, 64)
    gen = torch.Generator().manual_seed(7 + batch)
    dev = kernel_device()
    n, H, E, N, K = 3, 32, 64, 8, 4
    base = random_s6_stack(n, H, E, N, 1, K, gen, dev)
    cdt = torch.complex64 if cplx else torch.float32

    def r(*shape: int) -> torch.Tensor:
        t = torch.randn(*shape, 2 if cplx else 1, generator=gen) * 0.3
        return (torch.view_as_complex(t) if cplx else t[..., 0]).to(dev).contiguous()

    A = (-0.5 + (r(n, E, N).imag * 1j if cplx else 0) - r(n, E, N).real.abs()).to(cdt).contiguous()
    w = LTIStack(norm_weight=base.norm_weight, norm_bias=base.norm_bias, in_proj=base.in_proj,
                 conv_weight=base.conv_weight, conv_bias=base.conv_bias, A=A, D=base.D, out_proj=base.out_proj,
                 eps=1e-5, delta=torch.rand(n, E, generator=gen).to(dev) * 0.1 + 0.01, B=r(n, E, N), C=r(n, E, N))
    conv = (torch.randn(n, batch, E, K - 1, generator=gen) * 0.3).to(dev)
    h = r(n, batch, E, N)
    conv_ref, h_ref = conv.double().clone(), h.to(torch.complex128 if cplx else torch.float64).clone()
    res = torch.randn(3, batch, H, generator=gen).to(dev)
    scratch = run_scratch(batch, H, E, N, 0, torch.device(dev), block_e)
    outs = torch.empty(n + 1, batch, H, device=dev)
    for _ in range(3):
        x = torch.randn(batch, H, generator=gen).to(dev)
        mamba_lti_run_step_triton(x, w, conv, h, outs, scratch, res, 0, True, block_e, mode)
        ref = run_step_ref(x.double(), w, conv_ref, h_ref, res, 0, True)
        assert (outs.double() - ref).abs().max().item() <= 2e-5
        assert (conv.double() - conv_ref).abs().max().item() <= 2e-6
        assert (h.to(h_ref.dtype) - h_ref).abs().max().item() <= 2e-6


@pytest.mark.parametrize("selective", [True, False])
def test_run_step_with_bf16_states(selective: bool) -> None:
    """Conv windows and SSM states stored in bfloat16 (``generate --states bf16``): a run of 3 mamba-s6 or
    mamba-s4-real blocks against the reference with the same bf16 states (float32 arithmetic in both; a stored state
    may round the other way by one ulp, :func:`kernel_helpers.assert_bf16_rounded`, and later steps drift from there).
    The rounding is really there: float32 states give other outputs."""
    gen = torch.Generator().manual_seed(11)
    dev = kernel_device()
    n, batch, H, E, N, R, K = 3, 1, 32, 64, 16, 2, 4
    w = random_s6_stack(n, H, E, N, R, K, gen, dev)
    if not selective:
        w = LTIStack(norm_weight=w.norm_weight, norm_bias=w.norm_bias, in_proj=w.in_proj, conv_weight=w.conv_weight,
                     conv_bias=w.conv_bias, A=w.A * 0.05, D=w.D, out_proj=w.out_proj, eps=1e-5,
                     delta=torch.rand(n, E, generator=gen).to(dev) * 0.1 + 0.01,
                     B=torch.randn(n, E, N, generator=gen).to(dev), C=torch.randn(n, E, N, generator=gen).to(dev))
    step = mamba_s6_run_step_triton if selective else mamba_lti_run_step_triton
    conv = (torch.randn(n, batch, E, K - 1, generator=gen) * 0.3).to(dev).bfloat16()
    h = (torch.randn(n, batch, E, N, generator=gen) * 0.3).to(dev).bfloat16()
    conv_ref, h_ref, h32 = conv.clone(), h.clone(), h.float()
    conv32 = conv.float()
    scratch = run_scratch(batch, H, E, N, R if selective else 0, torch.device(dev), 16)
    outs, outs32 = torch.empty(n + 1, batch, H, device=dev), torch.empty(n + 1, batch, H, device=dev)
    for t in range(3):
        x = torch.randn(batch, H, generator=gen).to(dev)
        step(x, w, conv, h, outs, scratch, None, 0, False, 16, "split")
        ref = run_step_ref(x, w, conv_ref, h_ref)
        step(x, w, conv32, h32, outs32, scratch, None, 0, False, 16, "split")
        assert (outs - ref).abs().max().item() <= 2.0 ** -6 * ref.abs().max().item()
        for got, want in ((conv, conv_ref), (h, h_ref)):
            assert got.dtype == torch.bfloat16
            if t == 0:  # the first block's first update: the same inputs, so at most one rounding apart
                assert_bf16_rounded(got[0], want[0])
            assert_bf16_close(got, want)
    assert (outs32 - outs).abs().max().item() > 1e-5


def test_run_step_adds_a_second_input_and_writes_a_strided_tail() -> None:
    """x0b (the UpPool's skip) is added to the input and the output is also written to ``tail``, both strided
    views of larger buffers, as the U-Net passes its pooling buffers."""
    gen = torch.Generator().manual_seed(11)
    dev = kernel_device()
    n, H, E, N, R, K, batch = 2, 16, 32, 4, 1, 4, 2
    w = random_s6_stack(n, H, E, N, R, K, gen, dev)
    conv, h = torch.zeros(n, batch, E, K - 1, device=dev), torch.zeros(n, batch, E, N, device=dev)
    pool_in = torch.randn(batch, 4, H, generator=gen).to(dev)  # the UpPool's buffer: row stride 4H
    pool_out = torch.zeros(batch, 4, H, device=dev)
    skip = torch.randn(batch, H, generator=gen).to(dev)
    scratch = run_scratch(batch, H, E, N, R, torch.device(dev), 16)
    outs = torch.empty(n + 1, batch, H, device=dev)
    mamba_s6_run_step_triton(pool_in[:, 2], w, conv, h, outs, scratch, block_e=16, mode="split", x0b=skip,
                             tail=pool_out[:, 1])
    ref = run_step_ref(pool_in[:, 2].double(), w, torch.zeros(n, batch, E, K - 1, dtype=torch.float64, device=dev),
                       torch.zeros(n, batch, E, N, dtype=torch.float64, device=dev), x0b=skip)
    assert (outs.double() - ref).abs().max().item() <= 2e-5
    assert torch.equal(pool_out[:, 1], outs[n]) and not pool_out[:, [0, 2, 3]].any()
    with pytest.raises(ValueError, match="tail must be"):
        mamba_s6_run_step_triton(skip, w, conv, h, outs, scratch, tail=pool_out[:, 1, :8])


def test_run_step_rejects_bad_shapes() -> None:
    gen = torch.Generator().manual_seed(0)
    w = random_s6_stack(2, 16, 32, 4, 1, 4, gen, "cpu")
    scratch = run_scratch(1, 16, 32, 4, 1, torch.device("cpu"), 16)
    conv, h, outs = torch.zeros(2, 1, 32, 3), torch.zeros(2, 1, 32, 4), torch.zeros(3, 1, 16)
    with pytest.raises(ValueError, match="x must be"):
        mamba_s6_run_step_triton(torch.zeros(16, 16), w, conv, h, outs, scratch)
    with pytest.raises(ValueError, match="h must be contiguous of shape"):
        mamba_s6_run_step_triton(torch.zeros(1, 16), w, conv, h[:1], outs, scratch)
    with pytest.raises(ValueError, match="scratch is for 2 programs, the launch has 4"):
        mamba_s6_run_step_triton(torch.zeros(1, 16), w, conv, h, outs, scratch, block_e=8)
    with pytest.raises(ValueError, match="h must be torch.float32"):
        mamba_s6_run_step_triton(torch.zeros(1, 16), w, conv, h.double(), outs, scratch)
    bad = dataclasses.replace(w, D=w.D[:, :8].contiguous())
    with pytest.raises(ValueError, match=r"S6Stack.D must be contiguous of shape \(2, 32\)"):
        mamba_s6_run_step_triton(torch.zeros(1, 16), bad, conv, h, outs, scratch)


def test_runs_mode_and_block_e_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("AUDIOMAMBA_STEP_RUNS", raising=False)
    assert runs_mode() == "auto"
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUNS", "split")
    assert runs_mode() == "split"
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUNS", "cluster")
    assert runs_mode() == "cluster"
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUNS", "yes")
    with pytest.raises(KernelError, match="AUDIOMAMBA_STEP_RUNS='yes'"):
        runs_mode()
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUN_E", "32")
    assert run_block_e(128) == 32 and run_block_e(20) == 32
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUN_E", "spread")  # every run one cluster of 16 programs at most
    assert run_block_e(128) == 8 and run_block_e(192) == 16 and run_block_e(512) == 32 and run_block_e(8) == 1
    monkeypatch.delenv("AUDIOMAMBA_STEP_RUN_E")  # the default: 8 where that fits a cluster, else 16
    assert run_block_e(128) == 8 and run_block_e(256) == 16 and run_block_e(768) == 16 and run_block_e(64) == 16
    assert run_block_e(32) == 16 and run_block_e(8) == 8
    monkeypatch.delenv("AUDIOMAMBA_STEP_RUN_WARPS", raising=False)
    assert run_warps(64, True) == 1 and run_warps(96, True) == 4 and run_warps(64) == 4 and run_warps(256) == 8
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUN_E", "24")
    with pytest.raises(KernelError, match="power of two"):
        run_block_e(128)


def _steps(model, tokens: torch.Tensor, runs: bool, replayed: bool = False):
    """Step the model over tokens (B, L) with the fused Triton steps, runs attached or not: logits and state; with
    ``replayed`` as the sub-period CUDA graphs replay it (:func:`step_helpers.step_as_replayed`)."""
    state = model.init_state(tokens.shape[0], tokens.device)
    kernels.set_backend("triton")
    try:
        attached = model.attach_runs(state) if runs else 0
        with torch.no_grad():
            out = step_as_replayed(model, tokens, state) if replayed else \
                torch.stack([model.step(tokens[:, t], state)[0] for t in range(tokens.shape[1])], dim=1)
    finally:
        kernels.set_backend(None)
    return out, state, attached


@pytest.mark.parametrize("batch,kinds", [(1, ("mamba-s6",) * 3), (2, ("mamba-s6",) * 3),
                                         (1, ("mamba-s4", "mamba-s4-real", "mamba-s6"))])
def test_unet_with_runs_matches_the_per_block_steps(batch: int, kinds: tuple[str, ...]) -> None:
    """Two pooling levels of two blocks each and a center of two: five runs (down, up per level; the center), every
    U-Net skip through the runs' stacked outputs. Logits and every state as the per-block steps."""
    torch.manual_seed(3)
    cfg = {"d_model": 16, "d_state": 4, "pool": [2, 2], "levels": [{"block": k, "n": 2} for k in kinds[:2]],
           "center": {"block": kinds[2], "n": 2}}
    dev = kernel_device()
    model = build_model(cfg).to(dev).eval()
    tokens = torch.randint(0, 256, (batch, 8), device=dev)
    with_runs, s_runs, attached = _steps(model, tokens, True)
    per_block, s_blocks, _ = _steps(model, tokens, False)
    assert attached == 5
    assert (with_runs - per_block).abs().max().item() <= 1e-4
    blocks = s_runs["body"]["down"]
    run = s_runs["body"]["runs"]["down"]
    assert blocks[1][0]["ssm"].data_ptr() == run.h[1].data_ptr()  # the blocks' states are views of the run's
    leaves_r = [t for t in torch.utils._pytree.tree_leaves(s_runs) if isinstance(t, torch.Tensor)]
    leaves_b = [t for t in torch.utils._pytree.tree_leaves(s_blocks) if isinstance(t, torch.Tensor)]
    for a, b in zip(leaves_r, leaves_b, strict=True):
        assert (a - b).abs().max().item() <= 1e-4


def test_runs_replayed_at_a_fixed_phase_write_and_read_the_shifted_pools() -> None:
    """The runs write the DownPool's slot and read the UpPool's pending row as views: in shift mode, stepped as the
    sub-period graphs replay it, the logits are those of plain stepping."""
    torch.manual_seed(4)
    cfg = {"d_model": 16, "d_state": 4, "pool": [2, 2], "levels": [{"block": "mamba-s6", "n": 2}] * 2,
           "center": {"block": "mamba-s6", "n": 1}}
    dev = kernel_device()
    model = build_model(cfg).to(dev).eval()
    tokens = torch.randint(0, 256, (1, 10), device=dev)
    replayed, _, attached = _steps(model, tokens, True, replayed=True)
    plain, _, _ = _steps(model, tokens, True)
    assert attached == 5
    assert (replayed - plain).abs().max().item() <= 1e-6


def test_runs_only_for_mamba_blocks_and_small_batches() -> None:
    """A level of S4+MLP blocks keeps its per-block steps (the runs of the other stages still step as one launch,
    same logits); 16 rows and more take none."""
    torch.manual_seed(4)
    cfg = {"d_model": 16, "d_state": 4, "pool": [2], "levels": [{"block": "s4-mlp", "n": 1}],
           "center": {"block": "mamba-s6", "n": 2}}
    dev = kernel_device()
    model = build_model(cfg).to(dev).eval()
    tokens = torch.randint(0, 256, (1, 6), device=dev)
    with_runs, s_runs, attached = _steps(model, tokens, True)
    per_block, _, _ = _steps(model, tokens, False)
    assert attached == 1
    assert s_runs["body"]["runs"]["down"] is None and s_runs["body"]["runs"]["center"] is not None
    assert (with_runs - per_block).abs().max().item() <= 1e-4
    big = model.init_state(16, dev)
    assert model.attach_runs(big) == 0
    assert BlockRun.make(model.body.inner.blocks[:0], []) is None


def test_launch_form_by_mode() -> None:
    """The default runs (mode "auto") go out as one thread-block cluster where their programs fit in one, else one
    launch per phase (grid-barrier runs lost to split ones: 0.94-0.96x for sc09-large, one H100 2026-12-07); an
    explicit "cluster" falls back to the grid's barriers, and those to split launches where they cannot open."""
    from audiomamba.kernels.triton_mamba_run import launch_form

    assert launch_form("auto", True, True) == "cluster"
    assert launch_form("auto", False, True) == "split"
    assert launch_form("cluster", True, False) == "cluster"
    assert launch_form("cluster", False, True) == "1"
    assert launch_form("cluster", False, False) == "split"
    assert launch_form("1", True, True) == "1" and launch_form("1", True, False) == "split"
    assert launch_form("split", True, True) == "split"


def test_cluster_size_by_gpu(monkeypatch) -> None:
    """Runs of 9-16 programs launch as one (non-portable) cluster only on the parts that launch 16 (sm_90, sm_100);
    elsewhere the portable 8."""
    from audiomamba.kernels.backend import cluster_ctas_max

    for cap, most in (((9, 0), 16), ((10, 0), 16), ((12, 0), 8)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, cap=cap: cap)
        assert cluster_ctas_max(torch.zeros(1)) == most


def test_default_runs_are_every_kind_on_a_gpu(monkeypatch) -> None:
    """``AUDIOMAMBA_STEP_RUNS`` unset ("auto"): the Stepper attaches runs of every kind of Mamba block, LTI and
    selective (as clusters where their programs fit in one, else split: :func:`launch_form`), and only on a GPU."""
    from audiomamba.generate.stepper import initial_state

    torch.manual_seed(5)
    cfg = {"d_model": 16, "d_state": 4, "pool": [2], "levels": [{"block": "mamba-s4", "n": 1}],
           "center": {"block": "mamba-s6", "n": 1}}
    model = build_model(cfg).eval()
    monkeypatch.delenv("AUDIOMAMBA_STEP_RUNS", raising=False)
    assert "runs" not in initial_state(model, 1, torch.device("cpu"))["body"]  # CPU: none by default
    state = model.init_state(1, "cpu")
    assert model.attach_runs(state) == 3  # the level's down and up runs and the S6 center
    assert all(state["body"]["runs"][k] is not None for k in ("down", "up", "center"))
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUNS", "split")
    assert initial_state(model, 1, torch.device("cpu"))["body"]["runs"]["center"] is not None


@pytest.mark.parametrize("states", ["fp32", "bf16"])
def test_generation_with_runs_gives_the_same_tokens(states: str, monkeypatch) -> None:
    """``AUDIOMAMBA_STEP_RUNS`` (the Stepper attaches the runs): the same tokens and log-likelihoods as the
    per-block fused steps for the same seed, with float32 states and with bf16 ones (``AUDIOMAMBA_STEP_STATES``: the
    run's stacked states keep the dtype)."""
    monkeypatch.setenv("AUDIOMAMBA_STEP_STATES", states)
    out = generate_with_runs("mamba-s6", 5, monkeypatch, "split")
    assert torch.equal(out["0"].tokens, out["split"].tokens)
    assert (out["0"].logp - out["split"].logp).abs().max().item() <= (1e-4 if states == "fp32" else 1e-2)


def test_runs_with_the_inner_levels_on_side_streams(monkeypatch) -> None:
    """AUDIOMAMBA_STEP_OVERLAP=1 with runs of blocks (the center's run stepped where the inner level forks, the up
    run reading the UpPool before its staged refill lands): the tokens and log-likelihoods of the runs without it."""
    monkeypatch.setenv("AUDIOMAMBA_STEP_OVERLAP", "0")
    inline = generate_with_runs("mamba-s4-real", 5, monkeypatch, "split")
    monkeypatch.setenv("AUDIOMAMBA_STEP_OVERLAP", "1")
    side = generate_with_runs("mamba-s4-real", 5, monkeypatch, "split")
    for mode in ("0", "split"):
        assert torch.equal(inline[mode].tokens, side[mode].tokens)
        assert torch.equal(inline[mode].logp, side[mode].logp)


def test_a_barrier_that_never_opens_ends_with_an_error(monkeypatch) -> None:
    """Two programs on a persistent grid in the interpreter (which runs them one after another): the first gives up
    at its barrier after the allowed polls and flags it, and the run's check turns that into a KernelError."""
    from audiomamba.kernels import triton_mamba_run
    from audiomamba.kernels.backend import interpreting
    from audiomamba.kernels.triton_mamba_run import check_runs_scratch

    if not interpreting():
        pytest.skip("needs the interpreter's programs in turn (on a GPU the two programs meet)")
    monkeypatch.setattr(triton_mamba_run, "_INTERPRETER_BARRIERS", True)
    monkeypatch.setattr(triton_mamba_run, "RUN_POLLS", 4)
    gen = torch.Generator().manual_seed(1)
    n, H, E, N, R, K = 1, 16, 32, 4, 1, 4
    w = random_s6_stack(n, H, E, N, R, K, gen, "cpu")
    scratch = run_scratch(1, H, E, N, R, torch.device("cpu"), 16)
    check_runs_scratch(scratch)  # nothing flagged yet
    mamba_s6_run_step_triton(torch.randn(1, H, generator=gen), w, torch.zeros(n, 1, E, K - 1),
                             torch.zeros(n, 1, E, N), torch.empty(n + 1, 1, H), scratch, block_e=16, mode="1")
    with pytest.raises(KernelError, match="gave up waiting at a grid barrier"):
        check_runs_scratch(scratch)


def test_run_profile_needs_a_persistent_launch() -> None:
    """The in-kernel profile (``profile=``) is refused for one launch per phase and for a buffer of the wrong shape,
    in one line, before anything runs."""
    gen = torch.Generator().manual_seed(0)
    dev = kernel_device()
    n, H, E, N, R, K = 2, 32, 64, 16, 2, 4
    w = random_s6_stack(n, H, E, N, R, K, gen, dev)
    conv, h = torch.zeros(n, 1, E, K - 1, device=dev), torch.zeros(n, 1, E, N, device=dev)
    scratch = run_scratch(1, H, E, N, R, torch.device(dev), 16)
    prof = run_profile_buffer(w, 16, torch.device(dev))
    assert tuple(prof.shape) == (4, 2 * n + 1, 2) and prof.dtype == torch.int64
    x, outs = torch.zeros(1, H, device=dev), torch.empty(n + 1, 1, H, device=dev)
    with pytest.raises(KernelError, match="a profile needs a persistent launch"):
        mamba_s6_run_step_triton(x, w, conv, h, outs, scratch, block_e=16, mode="split", profile=prof)
    with pytest.raises(KernelError, match=r"\(4, 5, 2\)"):
        mamba_s6_run_step_triton(x, w, conv, h, outs, scratch, block_e=16, mode="1", profile=prof[:, :3])
    marked = run_profile_buffer(w, 16, torch.device(dev), marks=True)  # the clocks inside a phase too
    assert tuple(marked.shape) == (4, 2 * n + 1, 4)
    with pytest.raises(KernelError, match=r"or 4 with marks\), got \(4, 5, 3\)"):
        mamba_s6_run_step_triton(x, w, conv, h, outs, scratch, block_e=16, mode="1", profile=marked[..., :3].clone())
