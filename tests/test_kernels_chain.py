"""One stream's run of mamba-s6 blocks as one launch of a program per block, handing x on by flags
(kernels/triton_mamba_chain.py, ``AUDIOMAMBA_STEP_RUNS=chain``): the kernel against the float64 reference of the
runs, the U-Net and generation with it against the per-block steps (interpreted on CPU, where the programs run in
order)."""

from __future__ import annotations

import kernel_helpers as kh
import pytest
import torch
from audiomamba.kernels.errors import KernelError
from audiomamba.kernels.triton_mamba_chain import (
    chain_fits,
    chain_sync,
    check_chain_sync,
    mamba_chain_step_triton,
)
from audiomamba.kernels.triton_mamba_run import LTIStack, S6Stack, run_step_ref

from audiomamba import kernels
from audiomamba.model import build_model


def _t(w: S6Stack | LTIStack) -> tuple[torch.Tensor, torch.Tensor | None]:
    x_proj_t = w.x_proj.transpose(1, 2).contiguous() if isinstance(w, S6Stack) else None
    return w.out_proj.transpose(1, 2).contiguous(), x_proj_t


def _lti(w: S6Stack, cplx: bool, gen: torch.Generator, dev: str) -> LTIStack:
    """The front of ``w`` with an LTI SSM: complex (mamba-s4) or real (mamba-s4-real) A, B, C per channel."""
    n, E, N = w.A.shape

    def r(*shape: int) -> torch.Tensor:
        t = torch.randn(*shape, 2 if cplx else 1, generator=gen) * 0.3
        return (torch.view_as_complex(t) if cplx else t[..., 0]).to(dev).contiguous()

    A = (-0.5 - r(n, E, N).real.abs() + (1j * r(n, E, N).imag if cplx else 0)).to(
        torch.complex64 if cplx else torch.float32).contiguous()
    front = {k: getattr(w, k) for k in ("norm_weight", "norm_bias", "in_proj", "conv_weight", "conv_bias", "D",
                                         "out_proj", "eps")}
    return LTIStack(**front, A=A, delta=(torch.rand(n, E, generator=gen) * 0.1 + 0.01).to(dev), B=r(n, E, N),
                    C=r(n, E, N))


@pytest.mark.parametrize("kind", ["mamba-s6", "mamba-s4-real", "mamba-s4"])
@pytest.mark.parametrize("batch,H,E,N,skips", [(1, 32, 64, 16, "reversed"), (3, 24, 48, 8, "forward"),
                                               (2, 32, 64, 16, "second input")])
def test_chain_matches_the_reference(kind: str, batch: int, H: int, E: int, N: int, skips: str) -> None:
    """Three steps of a chain of 3 blocks (selective, real or complex LTI): outputs, every block's input, conv
    windows and states as the float64 reference; padded sizes (H 24, d_inner 48, N 8 in tiles of 32, 64, 16); U-Net
    skips forwards and backwards, a second input and a strided tail; one launch of 3 programs per step."""
    gen = torch.Generator().manual_seed(batch + H)
    dev = kh.kernel_device()
    n, R, K = 3, 2, 4
    w = kh.random_s6_stack(n, H, E, N, R, K, gen, dev)
    if kind != "mamba-s6":
        w = _lti(w, kind == "mamba-s4", gen, dev)
    wt, xt = _t(w)
    conv = (torch.randn(n, batch, E, K - 1, generator=gen) * 0.3).to(dev)
    h = (torch.randn(n, batch, E, N, 2 if kind == "mamba-s4" else 1, generator=gen) * 0.3).to(dev)
    h = torch.view_as_complex(h).contiguous() if kind == "mamba-s4" else h[..., 0].contiguous()
    conv_ref, h_ref = conv.double().clone(), h.to(torch.complex128 if h.is_complex() else torch.float64).clone()
    res = torch.randn(3, batch, H, generator=gen).to(dev)
    sync, outs = chain_sync(n, torch.device(dev)), torch.empty(n + 1, batch, H, device=dev)
    tail = torch.zeros(batch, 2 * H, device=dev)
    for step in range(3):
        x = torch.randn(batch, H, generator=gen).to(dev)
        x0b = torch.randn(batch, H, generator=gen).to(dev) if skips == "second input" else None
        first, rev = (0, False) if skips == "forward" else (1, True)
        y = mamba_chain_step_triton(x, w, conv, h, outs, sync, wt, xt, res, first, rev, x0b,
                                       tail[:, :H] if x0b is not None else None)
        ref = run_step_ref(x.double(), w, conv_ref, h_ref, res, first, rev, None if x0b is None else x0b.double())
        assert (outs.double() - ref).abs().max().item() <= 2e-5
        assert torch.equal(y, outs[n])
        if x0b is not None:
            assert torch.equal(tail[:, :H], outs[n]) and not tail[:, H:].any()
        assert (conv.double() - conv_ref).abs().max().item() <= 2e-6
        assert (h.to(h_ref.dtype) - h_ref).abs().max().item() <= 2e-6
        # each program counted the launch; the flags of blocks 1 and 2 were raised once per launch
        assert sync.tolist() == [0, step + 1, step + 1, step + 1, step + 1, step + 1, 0]
    check_chain_sync(sync)


def test_chain_with_bf16_states() -> None:
    """Conv windows and SSM states in bfloat16: against the reference with the same bf16 states (one rounding apart
    at first, then drifting by ulps)."""
    gen = torch.Generator().manual_seed(31)
    dev = kh.kernel_device()
    n, batch, H, E, N, R, K = 2, 1, 32, 64, 16, 2, 4
    w = kh.random_s6_stack(n, H, E, N, R, K, gen, dev)
    wt, xt = _t(w)
    conv = (torch.randn(n, batch, E, K - 1, generator=gen) * 0.3).to(dev).bfloat16()
    h = (torch.randn(n, batch, E, N, generator=gen) * 0.3).to(dev).bfloat16()
    conv_ref, h_ref = conv.clone(), h.clone()
    sync, outs = chain_sync(n, torch.device(dev)), torch.empty(n + 1, batch, H, device=dev)
    for t in range(3):
        x = torch.randn(batch, H, generator=gen).to(dev)
        mamba_chain_step_triton(x, w, conv, h, outs, sync, wt, xt)
        ref = run_step_ref(x, w, conv_ref, h_ref)
        assert (outs - ref).abs().max().item() <= 2.0 ** -6 * ref.abs().max().item()
        for got, want in ((conv, conv_ref), (h, h_ref)):
            if t == 0:
                kh.assert_bf16_rounded(got[0], want[0])
            kh.assert_bf16_close(got, want)


def test_chain_rejects_bad_arguments_and_a_lost_hand_off(monkeypatch) -> None:
    """Shapes that do not fit, blocks too wide for one program, and a program whose input never comes (its launch
    count out of step with the flags): it gives up after its polls and flags it, and the check raises."""
    gen = torch.Generator().manual_seed(0)
    dev = kh.kernel_device()
    w = kh.random_s6_stack(2, 16, 32, 4, 1, 4, gen, dev)
    wt, xt = _t(w)
    conv, h, outs = (torch.zeros(shape, device=dev) for shape in ((2, 1, 32, 3), (2, 1, 32, 4), (3, 1, 16)))
    x = torch.zeros(1, 16, device=dev)
    sync = chain_sync(2, torch.device(dev))
    with pytest.raises(ValueError, match=r"sync must be contiguous of shape \(5,\)"):
        mamba_chain_step_triton(x, w, conv, h, outs, sync[:4], wt, xt)
    with pytest.raises(ValueError, match="x_proj_t must be contiguous"):
        mamba_chain_step_triton(x, w, conv, h, outs, sync, wt, w.x_proj)
    with pytest.raises(ValueError, match="x must be"):
        mamba_chain_step_triton(torch.zeros(16, 16, device=dev), w, conv, h, outs, sync, wt, xt)
    assert chain_fits(64, 128, 16, 4) and not chain_fits(128, 256, 16, 8) and not chain_fits(64, 128, 16, 32)
    import audiomamba.kernels.triton_mamba_chain as ch

    monkeypatch.setattr(ch, "CHAIN_POLLS", 1000)  # on a GPU: give up after 1000 polls, not 2^24
    sync[2 + 1] = 5  # program 1 believes it has finished 5 launches: it waits for a flag that stays at 1
    mamba_chain_step_triton(x, w, conv, h, outs, sync, wt, xt)
    with pytest.raises(KernelError, match="gave up waiting"):
        check_chain_sync(sync)


def _steps(model, tokens: torch.Tensor, mode: str, monkeypatch):
    from audiomamba.generate.stepper import initial_state

    monkeypatch.setenv("AUDIOMAMBA_STEP_RUNS", mode)
    kernels.set_backend("triton")
    try:
        state = initial_state(model, tokens.shape[0], tokens.device)
        with torch.no_grad():
            out = torch.stack([model.step(tokens[:, t], state)[0] for t in range(tokens.shape[1])], dim=1)
    finally:
        kernels.set_backend(None)
    return out, state


def test_unet_with_chains_matches_the_per_block_steps(monkeypatch) -> None:
    """A level of two mamba-s6 blocks, an inner level of two mamba-s4-real blocks and a center of two mamba-s4: every
    run steps as a chain (one launch each); logits and every state as the per-block fused steps."""
    import audiomamba.kernels.triton_mamba_chain as ch

    torch.manual_seed(3)
    cfg = {"d_model": 16, "d_state": 4, "pool": [2, 2], "levels": [{"block": "mamba-s6", "n": 2},
                                                                  {"block": "mamba-s4-real", "n": 2}],
           "center": {"block": "mamba-s4", "n": 2}}
    dev = kh.kernel_device()
    model = build_model(cfg).to(dev).eval()
    tokens = torch.randint(0, 256, (1, 8), device=dev)
    launched = kh.spy_launches(monkeypatch, ch, "_chain_kernel")
    chained, s_chain = _steps(model, tokens, "chain", monkeypatch)
    # the outer level's two runs every step, the inner level's every 2nd, the center every 4th
    assert len(launched) == 8 * 2 + 4 * 2 + 2 and all(grid == (2,) for grid in launched)
    per_block, s_blocks = _steps(model, tokens, "0", monkeypatch)
    assert s_chain["body"]["runs"]["down"].chain and s_chain["body"]["inner"]["runs"]["center"].chain
    assert (chained - per_block).abs().max().item() <= 1e-4
    leaves_c = [t for t in torch.utils._pytree.tree_leaves(s_chain) if isinstance(t, torch.Tensor)]
    leaves_b = [t for t in torch.utils._pytree.tree_leaves(s_blocks) if isinstance(t, torch.Tensor)]
    for a, b in zip(leaves_c, leaves_b, strict=True):
        assert (a - b).abs().max().item() <= 1e-4


def test_generation_with_chains_gives_the_same_tokens(monkeypatch) -> None:
    """``AUDIOMAMBA_STEP_RUNS=chain``: 2 rows of 12 tokens from a U-Net of mamba-s6 blocks, the tokens and
    log-likelihoods of the per-block fused steps for the same seed; the Stepper's end-of-generation check passes."""
    out = kh.generate_with_runs("mamba-s6", 5, monkeypatch, "chain")
    assert torch.equal(out["0"].tokens, out["chain"].tokens)
    assert (out["0"].logp - out["chain"].logp).abs().max().item() <= 1e-4
