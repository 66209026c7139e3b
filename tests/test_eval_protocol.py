"""Closed-form checks of the two sample-metric protocols (eval.metrics): ``ours`` and ``sashimi``
(the SaShiMi / Mamba papers' script, state-spaces/s4 models/sashimi/sc09_classifier/test_speech_commands.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from audiomamba.eval.metrics import (
    NDB,
    PROTOCOLS,
    am_score,
    am_score_sashimi,
    check_protocol,
    fid,
    fid_sashimi,
    frechet_distance,
    frechet_distance_sashimi,
    inception_score,
    inception_score_sashimi,
    modified_inception_score,
    modified_inception_score_sashimi,
    sample_metrics,
)

FRECHET = {"ours": frechet_distance, "sashimi": frechet_distance_sashimi}
FID = {"ours": fid, "sashimi": fid_sashimi}
IS = {"ours": inception_score, "sashimi": inception_score_sashimi}
MIS = {"ours": modified_inception_score, "sashimi": modified_inception_score_sashimi}
AM = {"ours": am_score, "sashimi": am_score_sashimi}


def _soft_onehot(labels: torch.Tensor, a: float, c: int = 10) -> torch.Tensor:
    """Probability a on the label, (1 - a)/(c - 1) elsewhere: (N, c)."""
    b = (1.0 - a) / (c - 1)
    p = torch.full((len(labels), c), b, dtype=torch.float64)
    p[torch.arange(len(labels)), labels] = a
    return p


def _spd(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T + 0.1 * torch.eye(d, dtype=torch.float64)


def test_protocol_names_are_checked() -> None:
    assert PROTOCOLS == ("ours", "sashimi")
    assert check_protocol("sashimi") == "sashimi"
    with pytest.raises(ValueError, match="ours, sashimi"):
        check_protocol("bogus")
    f = torch.randn(30, 3, dtype=torch.float64)
    p = torch.softmax(torch.randn(30, 10, dtype=torch.float64), 1)
    with pytest.raises(ValueError, match="unknown metrics protocol 'bogus'"):
        sample_metrics(f, p, f, p, NDB(f, k=3), protocol="bogus")


# ---------------------------------------------------------------- FID: same formula, other numerics


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_fid_of_a_set_with_itself_is_zero(protocol: str) -> None:
    x = torch.randn(400, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert FID[protocol](x, x) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_frechet_scaled_covariance_closed_form(protocol: str) -> None:
    # Σ₂ = k² Σ₁ (full, non-diagonal): tr √(Σ₁Σ₂) = k tr Σ₁, so FID = |μ₁ − μ₂|² + (1 − k)² tr Σ₁
    s, k = _spd(6, 1), 1.7
    mu1 = torch.arange(6, dtype=torch.float64)
    mu2 = mu1.flip(0)
    expected = float(((mu1 - mu2) ** 2).sum() + (1 - k) ** 2 * torch.trace(s))
    assert FRECHET[protocol](mu1, s, mu2, k * k * s) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_frechet_two_diagonal_gaussians(protocol: str) -> None:
    sd1 = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    sd2 = torch.tensor([1.5, 1.0, 0.1, 4.0], dtype=torch.float64)
    mu1 = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    mu2 = torch.tensor([1.0, 1.0, 0.0, 3.0], dtype=torch.float64)
    expected = float(((mu1 - mu2) ** 2).sum() + ((sd1 - sd2) ** 2).sum())  # = 5 + 1 + 3.61 + 1
    assert FRECHET[protocol](mu1, torch.diag(sd1**2), mu2, torch.diag(sd2**2)) == pytest.approx(expected, rel=1e-9)


def test_frechet_protocols_agree_on_general_covariances() -> None:
    mu1, mu2 = torch.zeros(8, dtype=torch.float64), torch.full((8,), 0.3, dtype=torch.float64)
    s1, s2 = _spd(8, 2), _spd(8, 3)
    assert frechet_distance_sashimi(mu1, s1, mu2, s2) == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=1e-9)


def test_sashimi_fid_retries_with_offset_and_is_not_clamped(monkeypatch: pytest.MonkeyPatch) -> None:
    # when sqrtm of the product is not finite, the script retries with 1e-4·I on both covariances
    # (inside the root only): for Σ₁ = Σ₂ = I₃ that gives 3 + 3 − 2·3·(1 + 1e-4) = −6e-4, kept negative
    real_sqrtm, calls = scipy.linalg.sqrtm, []

    def failing_once(m: np.ndarray) -> np.ndarray:
        calls.append(m.copy())
        return np.full_like(m, np.nan) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(scipy.linalg, "sqrtm", failing_once)
    eye, mu = torch.eye(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    assert frechet_distance_sashimi(mu, eye, mu, eye) == pytest.approx(-6e-4, rel=1e-6)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], (1 + 1e-4) ** 2 * np.eye(3))
    monkeypatch.setattr(scipy.linalg, "sqrtm", real_sqrtm)
    assert frechet_distance(mu, eye, mu, eye) == 0.0  # ours: no offset, clamped at 0


# ---------------------------------------------------------------- IS: differs


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_inception_score_of_identical_predictions_is_one(protocol: str) -> None:
    p = torch.softmax(torch.randn(30, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)[0], 0)
    assert IS[protocol](p.repeat(30, 1)) == pytest.approx(1.0, abs=1e-9)


def test_inception_score_one_hot_balanced_ours_is_c_sashimi_is_h_over_geometric_mean_count() -> None:
    c, per = 10, 10
    n = c * per
    p = torch.eye(c, dtype=torch.float64).repeat(per, 1)  # one-hot, 10 clips of each class
    assert inception_score(p) == pytest.approx(c, rel=1e-9)
    # sashimi: per class, KL(a_·c ‖ uniform over h) = log h − log k_c (k_c first-half clips of class c),
    # so IS = h / geometric mean of k_c ≥ C, equality only for an exactly balanced first half
    h = n // 2
    first = np.random.RandomState(0).permutation(n)[:h]
    counts = np.bincount(np.arange(n)[first] % c, minlength=c)
    expected = h / math.exp(np.log(counts).mean())
    assert inception_score_sashimi(p) == pytest.approx(expected, rel=1e-12)
    assert inception_score_sashimi(p) == pytest.approx(11.212136594394382, rel=1e-9)  # their script's value
    assert inception_score_sashimi(p) > c


def test_inception_score_two_clips_differs_between_protocols() -> None:
    # with N = 2 (or 3) the sashimi first half holds one clip: every class KL is log 1 − 0, IS = 1
    a, b = 0.9, 0.1 / 9
    p = _soft_onehot(torch.tensor([0, 1]), a)
    # ours: marginal (a + b)/2 on classes 0 and 1, b elsewhere; both clips have the same KL to it
    kl = a * math.log(2 * a / (a + b)) + b * math.log(2 * b / (a + b))
    assert inception_score(p) == pytest.approx(math.exp(kl), rel=1e-9)
    assert inception_score(p) > 1.7
    assert inception_score_sashimi(p) == pytest.approx(1.0, abs=1e-12)
    assert inception_score_sashimi(_soft_onehot(torch.tensor([3, 7, 1]), 0.8)) == pytest.approx(1.0, abs=1e-12)


def test_sashimi_inception_score_is_nan_when_a_class_is_missing_from_a_half() -> None:
    labels = torch.arange(10).repeat(5)
    labels[labels == 5] = 6
    labels[0] = 5  # class 5 has a single clip: whichever half it lands in, the other has no mass there
    p = torch.eye(10, dtype=torch.float64)[labels]
    assert math.isnan(inception_score_sashimi(p))
    assert 1.0 <= inception_score(p) <= 10.0


# ---------------------------------------------------------------- mIS: differs (pairs with replacement)


def test_modified_inception_score_two_soft_clips() -> None:
    a, b = 0.9, 0.1 / 9
    p = _soft_onehot(torch.tensor([0, 1]), a)
    kl = (a - b) * math.log(a / b)  # KL between the two clips, either way round
    assert modified_inception_score(p) == pytest.approx(math.exp(kl), rel=1e-9)  # all pairs i != j
    # sashimi: 10000 pairs (i, j) drawn with replacement by np.random.seed(0) np.random.choice; i = j gives KL 0
    rs = np.random.RandomState(0)
    draws = np.array([rs.choice(np.arange(2), size=2, replace=True) for _ in range(10000)])
    distinct = float((draws[:, 0] != draws[:, 1]).mean())
    assert distinct == pytest.approx(0.5, abs=0.02)  # expectation (N − 1)/N
    assert modified_inception_score_sashimi(p) == pytest.approx(math.exp(distinct * kl), rel=1e-9)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_modified_inception_score_of_identical_predictions_is_one(protocol: str) -> None:
    p = torch.softmax(torch.linspace(-1, 1, 10, dtype=torch.float64), 0).repeat(25, 1)
    assert MIS[protocol](p) == pytest.approx(1.0, abs=1e-9)


def test_modified_inception_score_zero_probabilities() -> None:
    p = torch.eye(10, dtype=torch.float64)[:4]  # one-hot: KL between different clips is infinite
    assert modified_inception_score_sashimi(p) == math.inf  # not clamped
    assert math.isfinite(modified_inception_score(p))  # ours clamps at 1e-12


# ---------------------------------------------------------------- AM: same formula


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_am_score_closed_forms(protocol: str) -> None:
    onehot = torch.eye(10, dtype=torch.float64).repeat(3, 1)
    assert AM[protocol](onehot, onehot) == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((20, 10), 0.1, dtype=torch.float64)
    assert AM[protocol](onehot, uniform) == pytest.approx(math.log(10), rel=1e-9)  # KL 0 + H = log 10
    a, b = 0.99, 0.01 / 9
    one_class = _soft_onehot(torch.zeros(20, dtype=torch.long), a)
    expected = 0.1 * math.log(0.1 / a) + 0.9 * math.log(0.1 / b) - (a * math.log(a) + 9 * b * math.log(b))
    assert AM[protocol](onehot, one_class) == pytest.approx(expected, rel=1e-9)


def test_am_score_protocols_agree_except_at_zero_mass() -> None:
    g = torch.Generator().manual_seed(5)
    ref = torch.softmax(2 * torch.randn(300, 10, generator=g, dtype=torch.float64), 1)
    gen = torch.softmax(4 * torch.randn(80, 10, generator=g, dtype=torch.float64), 1)
    assert am_score_sashimi(ref, gen) == pytest.approx(am_score(ref, gen), rel=1e-9)
    only_zero = torch.eye(10, dtype=torch.float64)[torch.zeros(20, dtype=torch.long)]  # all clips class 0
    assert am_score_sashimi(ref, only_zero) == math.inf
    assert math.isfinite(am_score(ref, only_zero))


# ---------------------------------------------------------------- bundle


def test_sample_metrics_protocols() -> None:
    g = torch.Generator().manual_seed(6)
    f = torch.randn(200, 6, generator=g, dtype=torch.float64)
    p = torch.softmax(3 * torch.randn(200, 10, generator=g, dtype=torch.float64), 1)
    ours = sample_metrics(f, p, f[:120], p[:120], NDB(f, k=10))
    sash = sample_metrics(f, p, f[:120], p[:120], NDB(f, k=10), protocol="sashimi")
    assert (ours.protocol, sash.protocol) == ("ours", "sashimi")
    assert sash.fid == pytest.approx(ours.fid, rel=1e-8)
    assert sash.am_score == pytest.approx(ours.am_score, rel=1e-9)
    assert sash.inception_score == pytest.approx(inception_score_sashimi(p[:120]), rel=1e-12)
    assert sash.inception_score != pytest.approx(ours.inception_score, rel=1e-6)
    assert sash.modified_inception_score == pytest.approx(modified_inception_score_sashimi(p[:120]), rel=1e-12)
    assert (sash.ndb, sash.ndb_bins) == (ours.ndb, ours.ndb_bins)
    assert set(sash.row()) == set(ours.row())
    one = sample_metrics(f, p, f[:1], p[:1], NDB(f, k=10), protocol="sashimi")
    assert math.isnan(one.fid) and math.isnan(one.inception_score) and math.isnan(one.modified_inception_score)
