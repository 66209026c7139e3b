"""Generation building blocks that need no model: sampling filters, noise detection, filters."""

from __future__ import annotations

import numpy as np
import torch

from audiomamba.generate import Generated, regenerate_noisy
from audiomamba.generate.noise import detect_runaway_noise, spectral_flatness
from audiomamba.generate.output import sashimi_keep
from audiomamba.generate.sampling import min_p_filter, sample_tokens, top_p_filter


def test_top_p_keeps_smallest_set_reaching_mass() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = torch.isfinite(top_p_filter(probs.log(), 0.75))
    assert kept.tolist() == [[True, True, False, False]]
    kept = torch.isfinite(top_p_filter(probs.log(), 0.1))
    assert kept.tolist() == [[True, False, False, False]]  # the top token is always kept
    assert torch.equal(top_p_filter(probs.log(), 1.0), probs.log())


def test_min_p_cuts_only_the_tail_relative_to_the_top_token() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.04, 0.01], [0.9, 0.05, 0.03, 0.015, 0.005]])
    kept = torch.isfinite(min_p_filter(probs.log(), 0.1))  # keep p >= 0.05 (row 0), p >= 0.09 (row 1)
    assert kept.tolist() == [[True, True, True, False, False], [True, False, False, False, False]]
    assert torch.equal(min_p_filter(probs.log(), 0.0), probs.log())
    # what it keeps keeps its relative odds: the head is not sharpened (unlike a lower temperature)
    gen = torch.Generator().manual_seed(1)
    logits = probs[0].log().expand(40000, 5)
    tok = sample_tokens(logits, 1.0, 1.0, lambda s: torch.rand(s, generator=gen), min_p=0.1)
    freq = torch.bincount(tok, minlength=5).float() / 40000
    assert torch.allclose(freq[:3], probs[0, :3] / probs[0, :3].sum(), atol=0.015)
    assert freq[3:].sum() == 0


def test_sampling_distribution_and_greedy() -> None:
    gen = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.6, 0.3, 0.1])
    logits = probs.log().expand(20000, 3)
    tok = sample_tokens(logits, 1.0, 1.0, lambda s: torch.rand(s, generator=gen))
    freq = torch.bincount(tok, minlength=3).float() / 20000
    assert torch.allclose(freq, probs, atol=0.015)
    tok = sample_tokens(logits, 1.0, 0.7, lambda s: torch.rand(s, generator=gen))
    assert set(tok.tolist()) == {0, 1}
    assert (sample_tokens(logits, 0.0, 1.0, lambda s: torch.rand(s)) == 0).all()
    assert (sample_tokens(logits, 1e-6, 1.0, lambda s: torch.rand(s, generator=gen)) == 0).all()


def _tone(n: int, f: float = 440.0, amp: float = 0.2) -> np.ndarray:
    return amp * np.sin(2 * np.pi * f * np.arange(n) / 16000)


def test_runaway_noise_is_flagged_and_clean_audio_is_not() -> None:
    rng = np.random.default_rng(0)
    clean = _tone(16000)
    runaway = np.concatenate([_tone(8000), rng.uniform(-0.9, 0.9, 8000)])
    assert spectral_flatness(rng.normal(size=4096)) > 0.4 > 0.05 > spectral_flatness(clean)
    assert not detect_runaway_noise(clean).runaway_noise
    assert detect_runaway_noise(runaway).runaway_noise
    quiet_hiss = np.concatenate([_tone(8000), rng.uniform(-0.01, 0.01, 8000)])
    assert not detect_runaway_noise(quiet_hiss).runaway_noise  # flat but not loud


def test_regenerate_noisy_replaces_only_flagged_rows() -> None:
    from audiomamba.tokenizer import mu_law_encode

    rng = np.random.default_rng(1)
    good = mu_law_encode(torch.from_numpy(_tone(6000)), "none")
    bad = mu_law_encode(torch.from_numpy(np.concatenate([_tone(3000), rng.uniform(-0.9, 0.9, 3000)])), "none")
    gen = Generated(torch.stack([good, bad, good]), torch.zeros(3, 6000), 0, 0.0)
    calls = []

    def redo(rows: list[int], attempt: int) -> Generated:
        calls.append((rows, attempt))
        return Generated(torch.stack([good] * len(rows)), torch.ones(len(rows), 6000), 0, 0.0)

    out, still = regenerate_noisy(gen, redo, attempts=3)
    assert calls == [([1], 1)] and still == 0
    assert torch.equal(out.tokens[1], good) and out.logp[1].sum() == 6000 and out.logp[0].sum() == 0


def test_sashimi_filter_keeps_40th_to_95th_percentile() -> None:
    keep = sashimi_keep(torch.arange(100, dtype=torch.float64))
    assert keep.sum() == 55 and not keep[:39].any() and not keep[96:].any()
