"""The fused Triton step of a mamba-s6 block equals the composed step (interpreted on CPU)."""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from kernel_helpers import assert_bf16_close

from audiomamba import kernels
from audiomamba.model import build_model
from audiomamba.model.blocks import MambaS6Block
from audiomamba.model.config import ModelConfig


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _tiny_unet(center: str, seed: int):
    """A two-level U-Net of width 16 (pool 2, one mamba-s6 block per stage, one ``center`` block), seeded, in eval
    mode on the test device."""
    torch.manual_seed(seed)
    cfg = {"d_model": 16, "d_state": 4, "pool": [2], "levels": [{"block": "mamba-s6", "n": 1}],
           "center": {"block": center, "n": 1}}
    return build_model(cfg).to(_device()).eval()


def _run_steps(model, tokens, fused: bool):
    """Step the model over tokens (B, L): logits (B, L, V) and the final state."""
    state = model.init_state(tokens.shape[0], tokens.device)
    kernels.set_backend("triton")
    kernels.set_fused_step(fused)
    try:
        with torch.no_grad():
            out = torch.stack([model.step(tokens[:, t], state)[0] for t in range(tokens.shape[1])], dim=1)
    finally:
        kernels.set_backend(None)
        kernels.set_fused_step(None)
    return out, state


@pytest.mark.parametrize("batch,tiles", [(1, "default"), (3, "small"), (19, "default"), (19, "small"), (19, "per-kernel"),
                                         (19, "by-width")])
@pytest.mark.parametrize("kind", ["mamba-s6", "mamba-s4", "mamba-s4-real", "mamba-s4-zoh", "mamba-s4-real-zoh"])
def test_fused_block_step_matches_composed_step(kind: str, batch: int, tiles: str, monkeypatch) -> None:
    """One block, several steps, odd sizes (H = 24, E = 48, N = 5, R = 2, K = 4), with a skip input:
    one stream, a few rows, and the batched (tl.dot) path, also with tiles smaller than the sizes
    (several chunks per loop and several programs per row tile), and with each batched kernel's own rows and warps
    (``AUDIOMAMBA_STEP_TILES``: 32-row tiles, masked past the 19 rows, beside the state update's 16; the x_proj's three
    outputs in one program, where the default splits them over three), and with the block's width's own tiles
    (``TILES_BY_WIDTH``: out_proj columns in two masked programs, x_proj rows masked past the 19); S6, complex and
    real LTI SSMs with and without zero-order hold."""
    import audiomamba.kernels.triton_mamba_step as tm


    if tiles == "per-kernel":
        monkeypatch.setenv("AUDIOMAMBA_STEP_TILES", "in_rows=32,in_warps=2,in_e=16,x_rows=32,x_warps=2,ssm_warps=2,"
                                                    "out_rows=32,out_warps=2,in_stages=1,x_stages=2,out_stages=1,"
                                                    "x_split=0")
    if tiles == "by-width":
        monkeypatch.setattr(tm, "TILES_BY_WIDTH", {24: {"out_h": 16, "x_rows": 32}})
    if tiles == "small":
        for name in ("TILES_STREAM", "TILES_BATCHED"):
            monkeypatch.setattr(tm, name, dict(getattr(tm, name), in_e=16, in_h=16, ssm_e=16, k=16, out_h=16,
                                               out_k=16))
    _fused_equals_composed(kind, batch)


class _Compiled:
    """A stand-in for a compiled kernel on the CPU: its launcher runs the kernel in Triton's interpreter."""

    def __init__(self, kernel) -> None:
        self.kernel = kernel


@pytest.mark.parametrize("batch", [1, 3, 19])
@pytest.mark.parametrize("kind", ["mamba-s6", "mamba-s4", "mamba-s4-real"])
def test_replayed_block_steps_equal_the_composed_step(kind: str, batch: int, monkeypatch) -> None:
    """A block step's launches recorded on its first step and replayed with later steps' tensors (what a GPU does
    through the compiled kernels' launchers; here the "launcher" runs the kernel in the interpreter): the outputs and
    states of the composed step, every later step replayed (no launch re-derived), and a new plan when a setting in
    the environment changes."""
    import audiomamba.kernels.launch as launch
    import audiomamba.kernels.triton_mamba_step as tm

    def first(kernel, grid, args, kwargs):
        kernel[grid](*args, **kwargs)
        return _Compiled(kernel)

    def signature(kernel):  # the interpreter's kernels have no ``params``: their parameters from the function
        params = list(inspect.signature(kernel.fn).parameters.values())
        names = tuple(p.name for p in params)
        return names, tuple(p.default for p in params), frozenset(names)

    replays = []
    monkeypatch.setattr(tm, "_plans_apply", lambda x: True)
    monkeypatch.setattr(tm, "_PLANS", {})
    monkeypatch.setattr(launch, "_direct", lambda first_arg: isinstance(first_arg, torch.Tensor))
    monkeypatch.setattr(launch, "_first", first)
    monkeypatch.setattr(launch, "_signature", signature)
    monkeypatch.setattr(launch, "_NAMED", {})
    monkeypatch.setattr(launch, "_run", lambda compiled, grid, device, values: compiled.kernel[grid](*values))
    real_replay = tm.replay
    monkeypatch.setattr(tm, "replay", lambda *a: replays.append(1) or real_replay(*a))
    launches = 3 if kind != "mamba-s6" else (4 if batch >= 16 else 3)
    _fused_equals_composed(kind, batch)  # five steps, a skip input on every other one: two plans
    assert len(tm._PLANS) == 2 and all(p is not tm._NO_PLAN for p in tm._PLANS.values())
    assert len(replays) == 3 * launches  # steps 3, 4 and 5 replayed
    monkeypatch.setenv("AUDIOMAMBA_STEP_TILES", "out_h=16")
    _fused_equals_composed(kind, batch)
    assert len(tm._PLANS) == 4 and len(replays) == 6 * launches


def _fused_equals_composed(kind: str, batch: int, width: int = 24, d_state: int = 5,
                           state_dtype: torch.dtype = torch.float32, tol: float = 1e-5) -> None:
    """Five steps of one block of ``kind`` (``width`` = H, E = 2H, ``d_state`` = N) with the fused kernels equal the
    composed step, outputs and states, with a skip input on every other step; the states stored as ``state_dtype``."""
    from audiomamba.generate.stepper import cast_states
    from audiomamba.model.blocks import BLOCKS

    torch.manual_seed(0)
    cfg = ModelConfig.from_dict({"d_model": width, "d_state": d_state, "pool": [], "levels": [],
                                 "center": {"block": "mamba-s6", "n": 1}})
    dev = _device()
    block = BLOCKS[kind.removesuffix("-zoh")](width, cfg).to(dev)
    ssm = block.layers[0].mixer.ssm
    with torch.no_grad():  # non-trivial norm parameters, complex B with an imaginary part
        block.layers[0].norm.weight.uniform_(0.5, 1.5)
        block.layers[0].norm.bias.normal_(0, 0.1)
        if kind != "mamba-s6":
            ssm.B.normal_()
            ssm.zoh = kind.endswith("-zoh")
    s_ref = cast_states(block.init_state(batch, dev), state_dtype)
    s_fus = copy.deepcopy(s_ref)
    kernels.set_backend("triton")
    try:
        for t in range(5):
            x = torch.randn(batch, width, device=dev)
            res = torch.randn(batch, width, device=dev) if t % 2 else None
            with torch.no_grad():
                kernels.set_fused_step(False)
                ref, _ = block.step(x, s_ref, res)
                kernels.set_fused_step(True)
                fus, _ = block.step(x, s_fus, res)
            assert (ref - fus).abs().max().item() <= tol, t
    finally:
        kernels.set_backend(None)
        kernels.set_fused_step(None)
    for key in ("conv", "ssm"):
        ref, fus = s_ref[0][key], s_fus[0][key]
        assert fus.dtype == ref.dtype
        if ref.dtype == torch.bfloat16:
            assert_bf16_close(fus, ref)
        elif ref.dtype == torch.float16:  # one rounding apart at most where the float32 values differed a little
            assert ((ref.float() - fus.float()).abs() <= 2.0 ** -9 * ref.float().abs() + tol).all(), key
        else:
            assert (ref - fus).abs().max().item() <= tol, key


@pytest.mark.parametrize("dtype,tol", [(torch.bfloat16, 3e-3), (torch.float16, 1e-3)])
@pytest.mark.parametrize("batch", [1, 19])
@pytest.mark.parametrize("kind", ["mamba-s6", "mamba-s4", "mamba-s4-real"])
def test_fused_block_step_with_16_bit_states(kind: str, batch: int, dtype: torch.dtype, tol: float) -> None:
    """Conv windows and real SSM states stored in bfloat16 or float16 (``generate --states bf16 / fp16``): the fused
    kernels and the composed step read the same rounded states, compute in float32 and round what they store, so
    they agree to about one rounding of a state (CPU interpreter, H 24: outputs at most 5e-4 apart with bf16;
    complex states stay complex64)."""
    from audiomamba.generate.stepper import cast_states

    state = cast_states(MambaS6Block(8, ModelConfig.from_dict({"d_model": 8, "d_state": 4, "pool": [], "levels": [],
                                                               "center": {"block": "mamba-s6", "n": 1}}))
                        .init_state(2), dtype)
    assert state[0]["conv"].dtype == state[0]["ssm"].dtype == dtype
    _fused_equals_composed(kind, batch, state_dtype=dtype, tol=tol)


@pytest.mark.parametrize("batch,in_h", [(1, 32), (4, 32), (32, 32), (32, 16)])
@pytest.mark.parametrize("kind", ["mamba-s6", "mamba-s4", "mamba-s4-real"])
def test_fused_block_step_without_masks(kind: str, batch: int, in_h: int, monkeypatch) -> None:
    """Sizes that are multiples of every tile (H = 32, E = 64, N = 16; one stream of 1 or 4 rows, or two row tiles of
    16): every launch drops its masks (``EVEN``), and the steps still equal the composed step; batched with H in one
    chunk (x loaded once) and in two (``in_h`` 16)."""
    import audiomamba.kernels.triton_mamba_step as tm

    monkeypatch.setattr(tm, "TILES_BATCHED", dict(tm.TILES_BATCHED, in_h=in_h))
    verdicts = []
    real = tm._even

    def spy(*args):
        verdicts.append(real(*args))
        return verdicts[-1]

    monkeypatch.setattr(tm, "_even", spy)
    _fused_equals_composed(kind, batch, width=32, d_state=16)
    assert verdicts and all(verdicts), verdicts
    monkeypatch.setenv("AUDIOMAMBA_STEP_EVEN", "0")  # the switch for timing the masks against their absence
    assert not real(16, 32, (64, 64))
    monkeypatch.setenv("AUDIOMAMBA_STEP_EVEN", "yes")
    from audiomamba.kernels.errors import KernelError

    with pytest.raises(KernelError, match="AUDIOMAMBA_STEP_EVEN='yes'"):
        real(16, 32, (64, 64))


@pytest.mark.parametrize("batch", [1, 19])
@pytest.mark.parametrize("kind", ["mamba-s6", "mamba-s4-real"])
def test_fused_block_step_with_weights_loaded_first(kind: str, batch: int, monkeypatch) -> None:
    """PRELOAD_WEIGHTS (what AUDIOMAMBA_PDL=1 does on a GPU: in_proj and out_proj weights loaded before
    the wait for the previous kernel, when they fit in one chunk, as here) gives the same steps."""
    import audiomamba.kernels.triton_mamba_step as tm

    monkeypatch.setattr(tm, "PRELOAD_WEIGHTS", True)
    test_fused_block_step_matches_composed_step(kind, batch, False, monkeypatch)


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_fused_block_step_lower_precisions(precision: str, monkeypatch) -> None:
    """AUDIOMAMBA_STEP_PRECISION=tf32 / bf16 on the batched (tl.dot) path: close to the exact step
    (bf16 operands: to bf16 rounding), and bf16 is not silently the exact product; an unknown
    precision is a one-line error."""
    from audiomamba.kernels.backend import interpreting
    from audiomamba.kernels.errors import KernelError
    from audiomamba.kernels.triton_mamba_step import default_precision

    torch.manual_seed(0)
    cfg = ModelConfig.from_dict({"d_model": 24, "d_state": 5, "pool": [], "levels": [],
                                 "center": {"block": "mamba-s6", "n": 1}})
    dev = _device()
    block = MambaS6Block(24, cfg).to(dev)
    x = torch.randn(19, 24, device=dev)
    outs = {}
    kernels.set_backend("triton")
    kernels.set_fused_step(True)
    try:
        for prec in ("ieee", precision):
            monkeypatch.setenv("AUDIOMAMBA_STEP_PRECISION", prec)
            assert default_precision() == ("bf16-rounded" if prec == "bf16" and interpreting() else prec)
            with torch.no_grad():
                outs[prec] = block.step(x, block.init_state(19, dev))[0]
    finally:
        kernels.set_backend(None)
        kernels.set_fused_step(None)
    err = (outs[precision] - outs["ieee"]).abs().max().item()
    assert err <= 3e-2 * outs["ieee"].abs().max().item()
    if precision == "bf16":
        assert err > 1e-6
    monkeypatch.setenv("AUDIOMAMBA_STEP_PRECISION", "fp8")
    with pytest.raises(KernelError, match="use ieee, tf32x3, tf32, bf16"):
        default_precision()


def test_default_step_precision_is_one_tf32_product_on_a_gpu(monkeypatch) -> None:
    """Unset, AUDIOMAMBA_STEP_PRECISION is "tf32" on a GPU (1.06x per batch-2048 step, within the likelihood check;
    H100 2026-12-06) and exact float32 ("ieee") in the CPU interpreter; a set value wins."""
    import audiomamba.kernels.triton_mamba_step as tm

    monkeypatch.delenv("AUDIOMAMBA_STEP_PRECISION", raising=False)
    monkeypatch.setattr(tm, "interpreting", lambda: False)
    assert tm.default_precision() == "tf32"
    monkeypatch.setattr(tm, "interpreting", lambda: True)
    assert tm.default_precision() == "ieee"
    monkeypatch.setenv("AUDIOMAMBA_STEP_PRECISION", "tf32x3")
    assert tm.default_precision() == "tf32x3"


def test_fused_unet_step_matches_composed_step_and_forward() -> None:
    """A U-Net with S6, complex-LTI and real-LTI Mamba blocks at its levels."""
    torch.manual_seed(1)
    cfg = {"d_model": 16, "d_state": 4, "pool": [2, 2],
           "levels": [{"block": "mamba-s6", "n": 2}, {"block": "mamba-s4", "n": 1}],
           "center": {"block": "mamba-s4-real", "n": 1}}
    dev = _device()
    model = build_model(cfg).to(dev).eval()
    tokens = torch.randint(0, 256, (3, 12), device=dev)
    fused, s_fused = _run_steps(model, tokens, True)
    composed, s_comp = _run_steps(model, tokens, False)
    with torch.no_grad():
        parallel = model(tokens)
    assert (fused - composed).abs().max().item() <= 1e-4
    assert (fused - parallel).abs().max().item() <= 1e-4
    leaves_f = torch.utils._pytree.tree_leaves(s_fused)
    leaves_c = torch.utils._pytree.tree_leaves(s_comp)
    for a, b in zip(leaves_f, leaves_c, strict=True):
        if isinstance(a, torch.Tensor):
            assert (a - b).abs().max().item() <= 1e-4


def test_fused_step_off_without_triton_or_under_autocast() -> None:
    x = torch.zeros(2, 4)
    assert not kernels.use_fused_step(x)  # CPU tensors use the reference backend by default
    kernels.set_backend("triton")
    try:
        assert kernels.use_fused_step(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not kernels.use_fused_step(x)
        kernels.set_fused_step(False)
        assert not kernels.use_fused_step(x)
    finally:
        kernels.set_backend(None)
        kernels.set_fused_step(None)


def test_fused_step_rejects_a_non_contiguous_state() -> None:
    cfg = ModelConfig.from_dict({"d_model": 16, "d_state": 4, "pool": [], "levels": [], "center": {"block": "mamba-s6", "n": 1}})
    block = MambaS6Block(16, cfg)
    state = block.init_state(2)
    state[0]["ssm"] = state[0]["ssm"].transpose(0, 1).contiguous().transpose(0, 1)
    kernels.set_backend("triton")
    try:
        with pytest.raises(ValueError, match="h must be contiguous"), torch.no_grad():
            block.step(torch.zeros(2, 16), state)
    finally:
        kernels.set_backend(None)


@pytest.mark.parametrize("temperature, min_p", [(1.0, 0.0), (0.7, 0.0), (0.0, 0.0), (1.0, 0.05), (0.7, 0.2)])
def test_fused_sampling_kernel_matches_torch_sampling(temperature: float, min_p: float) -> None:
    from audiomamba.kernels.triton_sample import sample_step_triton

    from audiomamba.generate.sampling import sample_tokens

    gen = torch.Generator().manual_seed(0)
    dev = _device()
    logits = (torch.randn(37, 256, generator=gen) * 3).to(dev)
    noise = torch.rand(37, 256, generator=gen).to(dev)
    forced = torch.randint(0, 256, (37,), generator=gen).to(dev)
    force = (torch.arange(37) % 5 == 0).to(dev)
    token, logp = torch.empty(37, dtype=torch.long, device=dev), torch.empty(37, device=dev)
    sample_step_triton(logits, noise, temperature, forced, force, token, logp, min_p)
    want = torch.where(force, forced, sample_tokens(logits, temperature, 1.0, lambda s: noise.clone(), min_p))
    assert torch.equal(token, want)
    ref = torch.log_softmax(logits.double(), -1).gather(-1, want[:, None])[:, 0]
    assert (logp.double() - ref).abs().max().item() <= 1e-5


def test_generation_with_fused_kernels_is_exact_and_matches_the_composed_path() -> None:
    """Triton blocks + Triton sampling (interpreted on CPU): same tokens as the composed path for the
    same seed, log-likelihoods equal to the parallel forward, prompt tokens kept."""
    import torch.nn.functional as F

    from audiomamba.generate import SamplingConfig, generate_tokens
    from audiomamba.tokenizer import shift_right

    dev = _device()
    model = _tiny_unet("mamba-s6", 2)
    prompt = torch.randint(0, 256, (3, 5), generator=torch.Generator().manual_seed(1))
    runs = {}
    for fused in (True, False):
        kernels.set_backend("triton")
        kernels.set_fused_step(fused)
        try:
            runs[fused] = generate_tokens(model, 3, 16, 2, SamplingConfig(), seed=4, prompts=prompt, device=dev,
                                          use_graph=False, progress=False)
        finally:
            kernels.set_backend(None)
            kernels.set_fused_step(None)
    gen = runs[True]
    assert torch.equal(gen.tokens, runs[False].tokens)
    assert torch.equal(gen.tokens[:, :5], prompt)
    with torch.no_grad():
        tokens = gen.tokens.to(dev)
        ref = F.log_softmax(model(shift_right(tokens)).double(), -1).gather(-1, tokens[..., None])[..., 0]
    assert (gen.logp.double() - ref.cpu()).abs().max().item() <= 1e-4


@pytest.mark.parametrize("sampling", [{}, {"temperature": 0.0}, {"min_p": 0.1}])
def test_steps_that_draw_in_the_head_give_the_tokens_of_three_launches(monkeypatch: pytest.MonkeyPatch,
                                                                       sampling: dict) -> None:
    """AUDIOMAMBA_STEP_HEAD (unset: the head, the draw and the next input's embedding in one launch per step; 0: the
    head, the draw and the embedding apart): the same tokens and log-probabilities (1e-5) from a prompt, with row
    groups; the one launch is taken on every step (and never with nucleus filtering); a bad value is a one-line
    ConfigError."""
    from audiomamba.errors import ConfigError
    from audiomamba.generate import SamplingConfig, generate_tokens
    from audiomamba.generate.stepper import head_draw_enabled
    from audiomamba.model.unet import AudioUNet

    dev = _device()
    model = _tiny_unet("mamba-s4-real", 3)
    prompt = torch.randint(0, 256, (4, 3), generator=torch.Generator().manual_seed(1))
    calls = []
    real = AudioUNet.step_and_draw
    monkeypatch.setattr(AudioUNet, "step_and_draw", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    runs = {}
    monkeypatch.setenv("AUDIOMAMBA_STEP_GROUPS", "2")
    for flag in ("", "0"):
        monkeypatch.setenv("AUDIOMAMBA_STEP_HEAD", flag)
        kernels.set_backend("triton")
        try:
            runs[flag] = generate_tokens(model, 4, 12, 4, SamplingConfig(**sampling), seed=5, prompts=prompt,
                                         device=dev, use_graph=False, progress=False)
        finally:
            kernels.set_backend(None)
        if flag == "":
            assert len(calls) == 12 * 2  # every step of both row groups
    assert len(calls) == 24  # none with the flag at 0
    assert torch.equal(runs[""].tokens, runs["0"].tokens) and torch.equal(runs[""].tokens[:, :3], prompt)
    assert (runs[""].logp - runs["0"].logp).abs().max().item() <= 1e-5
    kernels.set_backend("triton")
    try:
        generate_tokens(model, 2, 4, 2, SamplingConfig(top_p=0.9), seed=5, device=dev, use_graph=False,
                        progress=False)
    finally:
        kernels.set_backend(None)
    assert len(calls) == 24  # nucleus filtering draws apart
    monkeypatch.setenv("AUDIOMAMBA_STEP_HEAD", "fused")
    with pytest.raises(ConfigError, match="AUDIOMAMBA_STEP_HEAD='fused'"):
        head_draw_enabled()


@pytest.mark.parametrize("batch, H, V, temperature, min_p, bias", [
    (1, 64, 256, 1.0, 0.0, True), (3, 96, 256, 0.7, 0.05, True), (19, 40, 100, 1.0, 0.0, False),
    (16, 64, 256, 0.0, 0.0, True), (2, 24, 256, 0.9, 0.2, False)])
def test_head_sample_step_matches_its_reference(batch: int, H: int, V: int, temperature: float, min_p: float,
                                                bias: bool) -> None:
    """One launch for the head, the draw and the next input's embedding: the reference's tokens (prompt tokens where
    forced), log-probabilities to 1e-5 and the drawn tokens' embeddings exactly, for one stream and row tiles, widths
    off the 32-column chunks, greedy, min-p and no bias."""
    from audiomamba.kernels.triton_sample import head_sample_step_ref

    gen = torch.Generator().manual_seed(batch * 7 + H)
    dev = _device()

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(dev)

    x, nw, nb = rnd(batch, H) * 2 + 1, torch.rand(H, generator=gen).to(dev) + 0.5, rnd(H) * 0.1
    w, b, emb = rnd(V, H) * 3 / H**0.5, rnd(V) if bias else None, rnd(V, H)
    noise = torch.rand(batch, V, generator=gen).to(dev)
    forced = torch.randint(0, V, (batch,), generator=gen).to(dev)
    force = (torch.arange(batch) % 3 == 1).to(dev)
    got, want = [], []
    for out, fn in ((got, kernels.head_sample_step), (want, head_sample_step_ref)):
        token, logp = torch.full((batch,), -1, dtype=torch.long, device=dev), torch.empty(batch, device=dev)
        kernels.set_backend("triton")
        try:
            nxt = fn(x, nw, nb, 1e-5, w, b, emb, noise, temperature, forced, force, token, logp, min_p, "ieee")
        finally:
            kernels.set_backend(None)
        out += [token, logp, nxt]
    assert torch.equal(got[0], want[0]) and torch.equal(got[0][force], forced[force])
    assert (got[1] - want[1]).abs().max().item() <= 1e-5
    assert torch.equal(got[2], emb[got[0]]) and got[2].shape == (batch, H)


def test_head_sample_step_refuses_a_head_wider_than_its_tile() -> None:
    from audiomamba.kernels.triton_sample import HEAD_MAX_V, head_sample_fits, head_sample_pays

    assert head_sample_fits(64, 256) and not head_sample_fits(64, HEAD_MAX_V + 1)
    # where it pays: 16+ rows, or one stream with H in one preloaded chunk (sc09-large's 96 columns keep 3 launches)
    assert head_sample_pays(64, 256, 1) and head_sample_pays(96, 256, 16) and not head_sample_pays(96, 256, 1)
    z = torch.zeros(1, 8)
    with pytest.raises(ValueError, match="wider than one program's tile"):
        kernels.head_sample_step(z, z[0], z[0], 1e-5, torch.zeros(HEAD_MAX_V + 1, 8), None,
                                 torch.zeros(HEAD_MAX_V + 1, 8), None, 0.0, torch.zeros(1, dtype=torch.long),
                                 torch.zeros(1, dtype=torch.bool), torch.zeros(1, dtype=torch.long), torch.zeros(1))


@pytest.mark.parametrize("batch", [1, 19])
def test_norm_linear_matches_layernorm_then_linear(batch: int) -> None:
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(3)
    dev = _device()
    x, w, b = (torch.randn(batch, 24, generator=gen) * 2 + 1).to(dev), torch.randn(100, 24, generator=gen).to(dev), \
        torch.randn(100, generator=gen).to(dev)
    nw, nb = torch.rand(24, generator=gen).to(dev) + 0.5, torch.randn(24, generator=gen).to(dev)
    kernels.set_backend("triton")
    try:
        out = kernels.norm_linear(x, nw, nb, 1e-5, w, b)
    finally:
        kernels.set_backend(None)
    ref = F.linear(F.layer_norm(x, (24,), nw, nb, 1e-5), w, b)
    assert out.shape == (batch, 100)
    assert (out - ref).abs().max().item() <= 1e-4


def test_pdl_is_off_on_the_cpu_and_in_the_interpreter(monkeypatch) -> None:
    """AUDIOMAMBA_PDL=1 asks for programmatic dependent launch; CPU tensors (and the interpreter, which
    has no grid dependency control) never get it, so the same kernels run as without the flag."""
    from audiomamba.kernels.backend import pdl_enabled

    for flag in ("1", "0", "auto"):
        monkeypatch.setenv("AUDIOMAMBA_PDL", flag)
        assert not pdl_enabled(torch.zeros(1, 8))
    monkeypatch.delenv("AUDIOMAMBA_PDL")
    assert not pdl_enabled(torch.zeros(1, 8))


def test_pdl_by_default_only_for_one_stream(monkeypatch) -> None:
    """Unset (or ``auto``), PDL is for steps of fewer than PDL_AUTO_MAX_ROWS rows (one stream: 1.26x on an H200,
    batch 2048: 0.91x); ``1`` forces it on, ``0`` off. The device check is stubbed: the rule is what is tested."""
    from audiomamba.kernels import backend

    class Cuda:  # a stand-in with the attributes pdl_enabled reads
        def __init__(self, rows: int) -> None:
            self.is_cuda, self.shape, self.device = True, (rows, 8), None

    monkeypatch.setattr(backend.torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(backend, "interpreting", lambda: False)
    monkeypatch.delenv("AUDIOMAMBA_PDL", raising=False)
    small, big = Cuda(1), Cuda(backend.PDL_AUTO_MAX_ROWS)
    assert backend.pdl_enabled(small) and not backend.pdl_enabled(big)
    monkeypatch.setenv("AUDIOMAMBA_PDL", "auto")
    assert backend.pdl_enabled(Cuda(backend.PDL_AUTO_MAX_ROWS - 1)) and not backend.pdl_enabled(big)
    monkeypatch.setenv("AUDIOMAMBA_PDL", "1")
    assert backend.pdl_enabled(small) and backend.pdl_enabled(big)
    monkeypatch.setenv("AUDIOMAMBA_PDL", "0")
    assert not backend.pdl_enabled(small) and not backend.pdl_enabled(big)
    monkeypatch.setattr(backend.torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    monkeypatch.delenv("AUDIOMAMBA_PDL")
    assert not backend.pdl_enabled(small)  # sm_80 has no programmatic dependent launch




def test_step_tiles_from_the_environment(monkeypatch) -> None:
    """``AUDIOMAMBA_STEP_TILES`` overrides the batched tiles per kernel; a bad entry is a one-line KernelError that
    names it; one stream keeps its own tiles."""
    import audiomamba.kernels.triton_mamba_step as tm
    from audiomamba.kernels.errors import KernelError

    monkeypatch.setenv("AUDIOMAMBA_STEP_TILES", "in_e=64, in_warps=8,out_rows=32,x_stages=3")
    t = tm.batched_tiles()
    assert t == dict(tm.TILES_BATCHED, in_e=64, in_warps=8, out_rows=32, x_stages=3)
    launch = tm._Launch(False, t, 16, 128, dict(USE_DOT=True, PREC="ieee", BLOCK_B=16, num_warps=tm.NUM_WARPS,
                                                PDL=False, launch_pdl=False))
    assert tm._kernel_launch(launch, 2048, "in") == (128, dict(launch.common, num_warps=8))
    assert tm._kernel_launch(launch, 2048, "out") == (64, dict(launch.common, BLOCK_B=32))
    assert tm._kernel_launch(launch, 2048, "ssm") == (128, dict(launch.common, num_warps=t["ssm_warps"]))
    assert tm._kernel_launch(launch, 2048, "x") == (128, dict(launch.common, num_stages=3, num_warps=t["x_warps"]))
    stream = tm._Launch(True, tm.TILES_STREAM, 1, 1, launch.common)
    assert tm._kernel_launch(stream, 1, "in") == (1, launch.common)
    # a register cap: passed to the compiler on a GPU, dropped by the interpreter (which has none)
    capped = tm._Launch(False, dict(t, in_maxnreg=128), 16, 128, launch.common)
    monkeypatch.setattr(tm, "interpreting", lambda: False)
    assert tm._kernel_launch(capped, 2048, "in") == (128, dict(launch.common, num_warps=8, maxnreg=128))
    monkeypatch.setattr(tm, "interpreting", lambda: True)
    assert tm._kernel_launch(capped, 2048, "in") == (128, dict(launch.common, num_warps=8))
    # a width with its own tiles (sc09-large's): those over TILES_BATCHED, the environment's over both
    wide = next(iter(tm.TILES_BY_WIDTH))
    monkeypatch.delenv("AUDIOMAMBA_STEP_TILES")
    assert tm.batched_tiles(wide) == dict(tm.TILES_BATCHED, **tm.TILES_BY_WIDTH[wide]) != tm.batched_tiles()
    assert tm.batched_tiles(64) == tm.batched_tiles() == tm.TILES_BATCHED
    monkeypatch.setenv("AUDIOMAMBA_STEP_TILES", "out_h=16")
    assert tm.batched_tiles(wide)["out_h"] == 16
    for bad in ("in_e=48", "rows=8", "in_warp=8", "in_e", "in_stages=5", "x_stages=0", "x_split=2", "x_split",
                "in_maxnreg=32",
                "ssm_maxnreg=512"):
        monkeypatch.setenv("AUDIOMAMBA_STEP_TILES", bad)
        with pytest.raises(KernelError, match="AUDIOMAMBA_STEP_TILES") as err:
            tm.batched_tiles()
        assert "\n" not in str(err.value) and repr(bad) in str(err.value)
