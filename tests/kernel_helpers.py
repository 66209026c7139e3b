"""Shared checks for the kernel tests."""

from __future__ import annotations

import torch


def assert_bf16_rounded(got: torch.Tensor, want: torch.Tensor, tol: float = 1e-6) -> None:
    """``got``, a bf16 state a kernel stored after ONE update from the same inputs, against ``want``, the same state
    as PyTorch rounds it (to nearest even). On a GPU Triton rounds to nearest too: where the float32 values differed
    in their last bits the two may round apart, by one ulp (2^-7 of the value) and in at most a few percent of the
    entries. The CPU interpreter truncates instead, so there about every other entry is one ulp off."""
    diff = (got.float() - want.float()).abs()
    bad = diff > tol + 2.0 ** -7 * want.float().abs()
    assert not bad.any(), (got[bad][:5].tolist(), want[bad][:5].tolist())
    if got.is_cuda:
        share = (diff > 0).float().mean().item()
        assert share <= 0.05, f"{share:.1%} of the bf16 entries differ from round-to-nearest"


def assert_bf16_close(got: torch.Tensor, want: torch.Tensor, rel: float = 2.0 ** -5) -> None:
    """bf16 states after several updates: a state rounded apart (:func:`assert_bf16_rounded`) changes what the next
    steps compute, so the two drift apart by more than an ulp; within ``rel`` of the states' scale."""
    diff = (got.float() - want.float()).abs().max().item()
    assert diff <= rel * want.float().abs().max().item(), diff


def spy_launches(monkeypatch, module, name: str) -> list:
    """Replace the Triton kernel ``module.name`` by a spy that records each launch's grid (and then launches the
    kernel); returns the list of grids."""
    grids: list = []
    real = getattr(module, name)

    class Spy:
        def __getitem__(self, grid):
            grids.append(grid)
            return real[grid]

    monkeypatch.setattr(module, name, Spy())
    return grids


def kernel_device() -> str:
    """Where the kernel tests run: the GPU when there is one, else the CPU (Triton's interpreter)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def random_s6_stack(n: int, H: int, E: int, N: int, R: int, K: int, gen: torch.Generator, dev: str):
    """A run of n ``mamba-s6`` blocks with random weights (width H, d_inner E, state N, rank R, conv K) as the runs'
    kernels take them (:class:`kernels.triton_mamba_run.S6Stack`); A = -(1 ... N) per channel."""
    from audiomamba.kernels.triton_mamba_run import S6Stack

    def r(*shape: int, scale: float = 0.2) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale).to(dev).contiguous()

    A = -torch.arange(1, N + 1, dtype=torch.float32).repeat(n, E, 1).to(dev).contiguous()
    return S6Stack(norm_weight=1 + r(n, H), norm_bias=r(n, H), in_proj=r(n, 2 * E, H), conv_weight=r(n, E, K),
                   conv_bias=r(n, E), A=A, D=1 + r(n, E), out_proj=r(n, H, E), eps=1e-5, x_proj=r(n, R + 2 * N, E),
                   dt_proj=r(n, E, R), dt_bias=r(n, E) - 2)


def generate_with_runs(block: str, seed: int, monkeypatch, mode: str) -> dict:
    """12 tokens of 2 rows from a two-level U-Net of ``block`` (random weights, seed ``seed``), generated with the
    per-block fused steps (``AUDIOMAMBA_STEP_RUNS=0``) and with runs of blocks (``mode``: 1, split), the same
    sampling seed: {"0": ..., mode: ...}."""
    from audiomamba import kernels
    from audiomamba.generate import SamplingConfig, generate_tokens
    from audiomamba.model import build_model

    torch.manual_seed(seed)
    cfg = {"d_model": 16, "d_state": 4, "pool": [2], "levels": [{"block": block, "n": 2}],
           "center": {"block": block, "n": 1}}
    dev = kernel_device()
    model = build_model(cfg).to(dev).eval()
    out = {}
    for m in ("0", mode):
        monkeypatch.setenv("AUDIOMAMBA_STEP_RUNS", m)
        kernels.set_backend("triton")
        try:
            out[m] = generate_tokens(model, 2, 12, 2, SamplingConfig(), seed=7, device=dev, use_graph=False,
                                     progress=False)
        finally:
            kernels.set_backend(None)
    return out
