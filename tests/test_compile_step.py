"""torch.compile around the scan (issue 14): the opaque op `audiomamba::selective_scan` (fake shapes,
torch.library.opcheck), a whole U-Net compiled in one graph that matches eager, and `train.compile`.

CPU runs use the aot_eager backend (Dynamo's graph capture and AOTAutograd, as Inductor gets them,
without Inductor's C++ compile: cold, that takes ~100 s for the tiny U-Net on 2 cores). The Inductor
test runs with AUDIOMAMBA_TEST_INDUCTOR=1 (or on a GPU)."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
import torch.nn.functional as F
from audiomamba.kernels.scan_op import (
    config_from_list,
    config_to_list,
    selective_scan_bwd_op,
    selective_scan_op,
)
from audiomamba.kernels.tuning import pick_config
from torch._subclasses.fake_tensor import FakeTensorMode

from audiomamba import kernels
from audiomamba.errors import ConfigError


def _args(batch=2, d=4, L=16, N=4, complex_lti=False, device="cpu", grad=False):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(batch, d, L, generator=g)
    D, z, bias = torch.randn(d, generator=g), torch.randn(batch, d, L, generator=g), torch.randn(d, generator=g)
    if complex_lti:
        delta = torch.rand(d, generator=g) * 0.1
        A = torch.complex(-torch.rand(d, N, generator=g) - 0.5, torch.randn(d, N, generator=g))
        B = torch.randn(d, N, dtype=torch.complex64, generator=g)
        C = torch.randn(d, N, dtype=torch.complex64, generator=g)
    else:
        delta = torch.randn(batch, d, L, generator=g)
        A = -torch.rand(d, N, generator=g) - 0.5
        B, C = torch.randn(batch, N, L, generator=g), torch.randn(batch, N, L, generator=g)
    out = [x.to(device).requires_grad_(grad) for x in (u, delta, A, B, C, D, z, bias)]
    return out


@pytest.mark.parametrize("complex_lti", [False, True])
@pytest.mark.parametrize("mode", ["reference", "triton", "triton-no-grad"])
def test_fake_implementation_gives_the_shapes(mode: str, complex_lti: bool) -> None:
    batch, d, L, N = 2, 64, 1000, 16
    cfg = [] if mode == "reference" else config_to_list(pick_config(batch, d, N, L, complex_lti))
    need_grad = mode != "triton-no-grad"
    R = 2 if complex_lti else 1
    with FakeTensorMode():
        args = _args(batch, d, L, N, complex_lti)
        y, states, hlast = selective_scan_op(*args, not complex_lti, cfg, need_grad)
        grads = selective_scan_bwd_op(y, *args, states, not complex_lti, cfg)
    assert y.shape == (batch, d, L) and y.dtype == torch.float32
    if mode == "reference":
        assert states.shape == (0,)
    elif need_grad:
        chunks = -(-L // config_from_list(cfg).block_l)
        assert states.shape == (batch, d, chunks, N, R) and states.dtype == torch.float32
    else:
        assert states.shape == (1,)
    assert hlast.shape == (batch, d, N, R) and hlast.dtype == torch.float32
    for g, x in zip(grads, args, strict=True):
        assert g.shape == x.shape and g.dtype == x.dtype
    # meta tensors take the same implementation
    meta = [x.to("meta") for x in _args(batch, d, L, N, complex_lti)]
    assert selective_scan_op(*meta, False, cfg, need_grad)[0].shape == (batch, d, L)


def test_config_round_trips_through_the_op_argument() -> None:
    for cfg in (pick_config(16, 128, 16, 16000, False), pick_config(8, 128, 64, 8192, True)):
        assert config_from_list(config_to_list(cfg)) == cfg


@pytest.mark.parametrize("complex_lti", [False, True])
def test_opcheck_reference(complex_lti: bool) -> None:
    """Schema, fake tensors, autograd registration, AOT dispatch (static and dynamic shapes)."""
    torch.library.opcheck(selective_scan_op, (*_args(complex_lti=complex_lti, grad=True), True, [], True))


def test_opcheck_triton() -> None:
    """The Triton path of the op (on the CPU in Triton's interpreter; a tiny shape)."""
    if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("Triton on the CPU needs TRITON_INTERPRET=1 before triton is imported")
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = config_to_list(pick_config(1, 2, 2, 8, False))
    torch.library.opcheck(selective_scan_op, (*_args(1, 2, 8, 2, device=dev, grad=True), True, cfg, True))


def _loss_and_grads(model, module, tokens):
    model.zero_grad(set_to_none=True)
    logits = module(tokens)
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tokens.reshape(-1))
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def _compare_compiled(backend) -> tuple[torch.Tensor, torch.Tensor, float]:
    from audiomamba.model import build_preset

    torch.manual_seed(0)
    model = build_preset("sc09-small-tiny")
    tokens = torch.randint(0, 256, (2, 64))
    kernels.set_backend("reference")
    try:
        loss_e, grads_e = _loss_and_grads(model, model, tokens)
        compiled = torch.compile(model, backend=backend, dynamic=False, fullgraph=True)  # no graph breaks
        loss_c, grads_c = _loss_and_grads(model, compiled, tokens)
    finally:
        kernels.set_backend(None)
        torch._dynamo.reset()
    worst = max(float((grads_e[n] - grads_c[n]).abs().max()) for n in grads_e)
    return loss_e, loss_c, worst


def test_compiled_unet_matches_eager_on_cpu() -> None:
    """sc09-small-tiny: one graph (fullgraph), the scan called as the opaque op, same loss and grads."""
    from torch._dynamo.testing import CompileCounterWithBackend

    counter = CompileCounterWithBackend("aot_eager")
    loss_e, loss_c, worst = _compare_compiled(counter)
    assert counter.frame_count == 1
    code = "\n".join(g.code for g in counter.graphs)
    assert code.count("audiomamba.selective_scan") == 5  # one per Mamba block of the tiny U-Net
    assert float((loss_e - loss_c).abs()) < 1e-4 and worst < 1e-4


def test_triton_backend_traces_to_one_graph_with_the_eager_launch_configs() -> None:
    """With the Triton scan (what a GPU runs) the U-Net still traces to one graph, and each scan op
    carries pick_config's launch configuration as its argument (traced only: nothing runs)."""
    from audiomamba.model import build_preset

    class Captured(Exception):
        pass

    graphs = []

    def capture(gm, example_inputs):
        graphs.append(gm)
        raise Captured

    torch.manual_seed(0)
    model = build_preset("sc09-small-tiny")
    kernels.set_backend("triton")
    try:
        with pytest.raises(Exception, match="Captured"):
            torch.compile(model, backend=capture, fullgraph=True, dynamic=False)(torch.randint(0, 256, (2, 64)))
    finally:
        kernels.set_backend(None)
        torch._dynamo.reset()
    (gm,) = graphs
    scans = [n for n in gm.graph.nodes if "selective_scan" in str(n.target)]
    assert len(scans) == 5
    # level 0 runs at L = 64 with d_inner = 32, N = 16: the config eager would pick
    assert scans[0].args[9] == config_to_list(pick_config(2, 32, 16, 64, False)) and scans[0].args[10] is True


@pytest.mark.skipif(not torch.cuda.is_available() and os.environ.get("AUDIOMAMBA_TEST_INDUCTOR") != "1",
                    reason="Inductor's C++ compile of the tiny U-Net takes ~100 s cold on 2 CPU cores: "
                           "set AUDIOMAMBA_TEST_INDUCTOR=1 to run it")
def test_inductor_compiled_unet_matches_eager() -> None:
    if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        pytest.skip("torch.compile's CPU backend (Inductor) needs a C++ compiler; none on PATH")
    loss_e, loss_c, worst = _compare_compiled("inductor")
    assert float((loss_e - loss_c).abs()) < 1e-4 and worst < 1e-4


def test_train_compile_is_a_validated_recipe_field() -> None:
    from audiomamba.recipe import load_recipe

    assert load_recipe("sc09-mamba").train.compile is False
    assert load_recipe("sc09-mamba", ["train.compile=true"]).train.compile is True
    with pytest.raises(ConfigError, match="train.compile"):
        load_recipe("sc09-mamba", ["train.compile=1"])


def test_train_compile_without_a_cpp_compiler_is_a_one_line_error(monkeypatch) -> None:
    from audiomamba.train.loop import compile_for_training

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="C\\+\\+ compiler"):
        compile_for_training(torch.nn.Linear(2, 2), torch.device("cpu"))


def test_trainer_compiles_the_forward_and_saves_the_plain_module(tmp_path, monkeypatch) -> None:
    """train.compile: the training forward goes through torch.compile (aot_eager here), and the
    checkpoint holds the uncompiled module's state_dict (no `_orig_mod.` keys), EMA included."""
    from train_helpers import music_folder, tiny_recipe

    from audiomamba.train.checkpoint import load_checkpoint
    from audiomamba.train.loop import RunOptions, train_recipe

    calls = []
    real_compile = torch.compile

    def compile_aot_eager(module, **kwargs):
        calls.append(kwargs)
        return real_compile(module, **{**kwargs, "backend": "aot_eager"})

    monkeypatch.setattr(torch, "compile", compile_aot_eager)
    data = music_folder(tmp_path / "music")
    recipe = tiny_recipe(data, "train.compile=true", "train.ema=0.9", "train.steps=2", "data.sample_len=256")
    try:
        result = train_recipe(recipe, RunOptions(out=tmp_path / "run", progress=False, device="cpu"))
    finally:
        torch._dynamo.reset()
    assert calls == [{"dynamic": False, "mode": None}]  # train.compile_mode "default"
    assert result.step == 2 and result.last_train_bpb is not None
    state = load_checkpoint(tmp_path / "run")
    from audiomamba.model import build_model

    plain = build_model(state["model_config"]).state_dict()
    assert set(state["model"]) == set(plain) and set(state["ema"]) <= set(plain)
    assert state["recipe"]["train"]["compile"] is True
