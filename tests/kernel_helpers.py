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
