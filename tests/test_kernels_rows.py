"""A batch's run of Mamba blocks as one row-tile launch (kernels/triton_mamba_rows.py, ``AUDIOMAMBA_STEP_ROWS``): the
kernel against the float64 reference of the runs, the U-Net and generation with it against the per-block steps
(interpreted on CPU)."""

from __future__ import annotations

import pytest
import torch
from audiomamba.kernels.errors import KernelError
from audiomamba.kernels.triton_mamba_rows import (
    mamba_rows_run_step_triton,
    rows_runs,
    rows_scratch,
    rows_tiles,
    rows_width_ok,
)
from audiomamba.kernels.triton_mamba_run import LTIStack, S6Stack, run_step_ref
from kernel_helpers import assert_bf16_close, assert_bf16_rounded, spy_launches

from audiomamba import kernels
from audiomamba.model import build_model


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _stack(kind: str, n: int, H: int, E: int, N: int, R: int, K: int, gen: torch.Generator, dev: str):
    def r(*shape: int, scale: float = 0.2) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale).to(dev).contiguous()

    front = dict(norm_weight=1 + r(n, H), norm_bias=r(n, H), in_proj=r(n, 2 * E, H), conv_weight=r(n, E, K),
                 conv_bias=r(n, E), D=1 + r(n, E), out_proj=r(n, H, E), eps=1e-5)
    if kind == "mamba-s6":
        A = -torch.arange(1, N + 1, dtype=torch.float32).repeat(n, E, 1).to(dev).contiguous()
        return S6Stack(**front, A=A, x_proj=r(n, R + 2 * N, E), dt_proj=r(n, E, R), dt_bias=r(n, E) - 2)
    delta = (torch.rand(n, E, generator=gen) * 0.1 + 0.01).to(dev)
    if kind == "mamba-s4":
        def c(*shape: int) -> torch.Tensor:
            return torch.view_as_complex(torch.randn(*shape, 2, generator=gen) * 0.3).to(dev).contiguous()

        A = (-0.5 - torch.rand(n, E, N, generator=gen) + 1j * torch.randn(n, E, N, generator=gen)).to(dev)
        return LTIStack(**front, A=A.to(torch.complex64).contiguous(), delta=delta, B=c(n, E, N), C=c(n, E, N))
    return LTIStack(**front, A=(-0.5 - torch.rand(n, E, N, generator=gen)).to(dev), delta=delta,
                    B=r(n, E, N, scale=1.0), C=r(n, E, N, scale=1.0))


def _states(kind: str, n: int, batch: int, E: int, N: int, K: int, gen: torch.Generator, dev: str):
    conv = (torch.randn(n, batch, E, K - 1, generator=gen) * 0.3).to(dev)
    if kind == "mamba-s4":
        h = torch.view_as_complex(torch.randn(n, batch, E, N, 2, generator=gen) * 0.3).to(dev).contiguous()
    else:
        h = (torch.randn(n, batch, E, N, generator=gen) * 0.3).to(dev)
    return conv, h


@pytest.mark.parametrize("kind", ["mamba-s6", "mamba-s4-real", "mamba-s4"])
@pytest.mark.parametrize("batch,H,E,N,skips", [(32, 32, 64, 16, "reversed"), (20, 24, 48, 8, "forward"),
                                               (16, 16, 32, 16, "second input")])
def test_rows_run_matches_the_reference(kind: str, batch: int, H: int, E: int, N: int, skips: str) -> None:
    """Three steps of a run of 3 blocks for 16-32 rows: outputs, every block's input, conv windows and states as the
    float64 reference; EVEN sizes (32 rows of H 32, d_inner 64 in chunks of 32 and 16) and masked ones (20 rows of
    H 24, d_inner 48, N 8: a part tile and part chunks); U-Net skips forwards and backwards, a second input and a
    strided tail."""
    gen = torch.Generator().manual_seed(batch + H + len(kind))
    dev = _device()
    n, R, K = 3, 2, 4
    w = _stack(kind, n, H, E, N, R, K, gen, dev)
    conv, h = _states(kind, n, batch, E, N, K, gen, dev)
    conv_ref, h_ref = conv.double().clone(), h.to(torch.complex128 if h.is_complex() else torch.float64).clone()
    res = torch.randn(3, batch, H, generator=gen).to(dev)
    uz, outs = rows_scratch(batch, E, torch.device(dev)), torch.empty(n + 1, batch, H, device=dev)
    tail = torch.zeros(batch, 2 * H, device=dev)
    for _ in range(3):
        x = torch.randn(batch, H, generator=gen).to(dev)
        x0b = torch.randn(batch, H, generator=gen).to(dev) if skips == "second input" else None
        first, rev = (0, False) if skips == "forward" else (1, True)
        y = mamba_rows_run_step_triton(x, w, conv, h, outs, uz, res, first, rev, x0b,
                                       tail[:, :H] if x0b is not None else None, precision="ieee")
        ref = run_step_ref(x.double(), w, conv_ref, h_ref, res, first, rev, None if x0b is None else x0b.double())
        assert (outs.double() - ref).abs().max().item() <= 2e-5
        assert torch.equal(y, outs[n])
        if x0b is not None:
            assert torch.equal(tail[:, :H], outs[n]) and not tail[:, H:].any()
        assert (conv.double() - conv_ref).abs().max().item() <= 2e-6
        assert (h.to(h_ref.dtype) - h_ref).abs().max().item() <= 2e-6


@pytest.mark.parametrize("kind", ["mamba-s6", "mamba-s4-real"])
def test_rows_run_with_bf16_states(kind: str) -> None:
    """Conv windows and SSM states stored in bfloat16 (``generate --states bf16``): against the reference with the
    same bf16 states (a stored value may round the other way by one ulp; later steps drift from there), and the
    rounding is really there (float32 states give other outputs)."""
    gen = torch.Generator().manual_seed(21)
    dev = _device()
    n, batch, H, E, N, R, K = 2, 16, 16, 32, 16, 2, 4
    w = _stack(kind, n, H, E, N, R, K, gen, dev)
    conv32, h32 = _states(kind, n, batch, E, N, K, gen, dev)
    conv, h = conv32.bfloat16(), h32.bfloat16()
    conv_ref, h_ref = conv.clone(), h.clone()
    uz = rows_scratch(batch, E, torch.device(dev))
    outs, outs32 = torch.empty(n + 1, batch, H, device=dev), torch.empty(n + 1, batch, H, device=dev)
    for t in range(3):
        x = torch.randn(batch, H, generator=gen).to(dev)
        mamba_rows_run_step_triton(x, w, conv, h, outs, uz, precision="ieee")
        ref = run_step_ref(x, w, conv_ref, h_ref)
        mamba_rows_run_step_triton(x, w, conv32, h32, outs32, uz, precision="ieee")
        assert (outs - ref).abs().max().item() <= 2.0 ** -6 * ref.abs().max().item()
        for got, want in ((conv, conv_ref), (h, h_ref)):
            assert got.dtype == torch.bfloat16
            if t == 0:
                assert_bf16_rounded(got[0], want[0])
            assert_bf16_close(got, want)
    assert (outs32 - outs).abs().max().item() > 1e-5


def test_rows_run_rejects_bad_arguments_and_settings(monkeypatch) -> None:
    gen = torch.Generator().manual_seed(0)
    w = _stack("mamba-s6", 2, 16, 32, 4, 1, 4, gen, "cpu")
    conv, h, outs = torch.zeros(2, 16, 32, 3), torch.zeros(2, 16, 32, 4), torch.zeros(3, 16, 16)
    uz = rows_scratch(16, 32, torch.device("cpu"))
    with pytest.raises(ValueError, match="h must be contiguous of shape"):
        mamba_rows_run_step_triton(torch.zeros(16, 16), w, conv, h[:, :8], outs, uz)
    with pytest.raises(ValueError, match=r"uz must be contiguous float32 of shape \(2, 16, 32\)"):
        mamba_rows_run_step_triton(torch.zeros(16, 16), w, conv, h, outs, uz[:, :8])
    with pytest.raises(ValueError, match="tail must be"):
        mamba_rows_run_step_triton(torch.zeros(16, 16), w, conv, h, outs, uz, tail=torch.zeros(16, 8))
    monkeypatch.setenv("AUDIOMAMBA_STEP_ROWS", "yes")
    with pytest.raises(KernelError, match="AUDIOMAMBA_STEP_ROWS='yes'"):
        rows_runs()
    monkeypatch.setenv("AUDIOMAMBA_STEP_ROWS", "1")
    assert rows_runs()
    monkeypatch.setenv("AUDIOMAMBA_STEP_TILES", "run_rows=32,run_s=32,run_maxnreg=128,run_max_h=256")
    assert rows_tiles() == {"run_rows": 32, "run_e": 16, "run_s": 32, "run_warps": 8, "run_stages": 1,
                            "run_max_h": 256, "run_maxnreg": 128}
    assert rows_width_ok(256) and not rows_width_ok(257)
    monkeypatch.setenv("AUDIOMAMBA_STEP_TILES", "run_rows=8")
    with pytest.raises(KernelError, match="rows at least 16"):
        rows_tiles()
    monkeypatch.setenv("AUDIOMAMBA_STEP_TILES", "run_warps=16")
    with pytest.raises(KernelError, match="run_warps=16 is more threads than a tile"):
        rows_tiles()


def _steps(model, tokens: torch.Tensor, rows: bool, monkeypatch):
    """Step the model over tokens (B, L) with the fused Triton steps, row-tile runs attached (through the Stepper's
    ``initial_state``) or not: logits and state."""
    from audiomamba.generate.stepper import initial_state

    monkeypatch.setenv("AUDIOMAMBA_STEP_ROWS", "1" if rows else "0")
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUNS", "0")
    kernels.set_backend("triton")
    try:
        state = initial_state(model, tokens.shape[0], tokens.device)
        with torch.no_grad():
            out = torch.stack([model.step(tokens[:, t], state)[0] for t in range(tokens.shape[1])], dim=1)
    finally:
        kernels.set_backend(None)
    return out, state


@pytest.mark.parametrize("kinds", [("mamba-s6",) * 3, ("mamba-s4", "mamba-s4-real", "mamba-s6")])
def test_unet_with_row_tile_runs_matches_the_per_block_steps(kinds: tuple[str, ...], monkeypatch) -> None:
    """18 rows (a full tile and a part one) through two pooling levels of two blocks each and a center of two: five
    row-tile runs, one launch each per step, every U-Net skip through their stacked outputs. Logits and every state
    as the per-block fused steps."""
    import audiomamba.kernels.triton_mamba_rows as rr

    torch.manual_seed(3)
    cfg = {"d_model": 16, "d_state": 4, "pool": [2, 2], "levels": [{"block": k, "n": 2} for k in kinds[:2]],
           "center": {"block": kinds[2], "n": 2}}
    dev = _device()
    model = build_model(cfg).to(dev).eval()
    tokens = torch.randint(0, 256, (18, 8), device=dev)
    launched = spy_launches(monkeypatch, rr, "_rows_run_kernel")
    with_rows, s_rows = _steps(model, tokens, True, monkeypatch)
    n_launched = len(launched)
    per_block, s_blocks = _steps(model, tokens, False, monkeypatch)
    assert n_launched == 8 * 2 + 4 * 2 + 2 * 1 and len(launched) == n_launched  # outer level every step, ...
    assert all(grid == (2,) for grid in launched)
    assert (with_rows - per_block).abs().max().item() <= 1e-4
    blocks = s_rows["body"]["down"]
    run = s_rows["body"]["runs"]["down"]
    assert run.rows and blocks[1][0]["ssm"].data_ptr() == run.h[1].data_ptr()  # the blocks' states: views of the run's
    leaves_r = [t for t in torch.utils._pytree.tree_leaves(s_rows) if isinstance(t, torch.Tensor)]
    leaves_b = [t for t in torch.utils._pytree.tree_leaves(s_blocks) if isinstance(t, torch.Tensor)]
    for a, b in zip(leaves_r, leaves_b, strict=True):
        assert (a - b).abs().max().item() <= 1e-4


def test_generation_with_row_tile_runs_gives_the_same_tokens(monkeypatch) -> None:
    """``AUDIOMAMBA_STEP_ROWS=1``: 16 rows of 8 tokens from a U-Net of mamba-s6 blocks, the tokens and
    log-likelihoods of the per-block fused steps for the same seed."""
    from audiomamba.generate import SamplingConfig, generate_tokens

    torch.manual_seed(5)
    cfg = {"d_model": 16, "d_state": 4, "pool": [2], "levels": [{"block": "mamba-s6", "n": 2}],
           "center": {"block": "mamba-s6", "n": 1}}
    dev = _device()
    model = build_model(cfg).to(dev).eval()
    out = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("AUDIOMAMBA_STEP_ROWS", flag)
        kernels.set_backend("triton")
        try:
            out[flag] = generate_tokens(model, 16, 8, 2, SamplingConfig(), seed=7, device=dev, use_graph=False,
                                        progress=False)
        finally:
            kernels.set_backend(None)
    assert torch.equal(out["0"].tokens, out["1"].tokens)
    assert (out["0"].logp - out["1"].logp).abs().max().item() <= 1e-4


def test_row_tile_runs_only_when_asked_and_not_too_wide(monkeypatch) -> None:
    """A batch takes row-tile runs only with ``AUDIOMAMBA_STEP_ROWS=1``, and only for blocks no wider than
    ``run_max_h`` (the U-Net's 16-wide outer level, not its 32-wide inner one or 64-wide center at 16); one stream
    keeps the one-stream runs."""
    from audiomamba.generate.stepper import initial_state

    cfg = {"d_model": 16, "d_state": 4, "pool": [2, 2], "levels": [{"block": "mamba-s6", "n": 1}] * 2,
           "center": {"block": "mamba-s4-real", "n": 1}}
    model = build_model(cfg).eval()
    monkeypatch.setenv("AUDIOMAMBA_STEP_RUNS", "split")
    monkeypatch.delenv("AUDIOMAMBA_STEP_ROWS", raising=False)
    assert "runs" not in initial_state(model, 16, torch.device("cpu"))["body"]
    monkeypatch.setenv("AUDIOMAMBA_STEP_ROWS", "1")
    body = initial_state(model, 16, torch.device("cpu"))["body"]
    assert body["runs"]["down"].rows and body["inner"]["runs"]["center"].rows
    monkeypatch.setenv("AUDIOMAMBA_STEP_TILES", "run_max_h=16")
    body = initial_state(model, 16, torch.device("cpu"))["body"]
    assert body["runs"]["up"].rows and body["inner"]["runs"] == {"down": None, "up": None, "center": None}
    one = initial_state(model, 1, torch.device("cpu"))["body"]["inner"]["runs"]["center"]
    assert one is not None and not one.rows
