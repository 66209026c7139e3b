"""Closed-form checks of the SC09 sample metrics (eval.metrics) and the k-means used by NDB."""

from __future__ import annotations

import math

import pytest
import torch
from audiomamba.eval.kmeans import assign, kmeans
from audiomamba.eval.metrics import (
    NDB,
    am_score,
    fid,
    frechet_distance,
    gaussian_fit,
    inception_score,
    modified_inception_score,
    sample_metrics,
)


def _gauss(n: int, mean: torch.Tensor, std: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return mean + std * torch.randn(n, mean.numel(), generator=g, dtype=torch.float64)


def _soft_onehot(labels: torch.Tensor, a: float, c: int = 10) -> torch.Tensor:
    """Probability a on the label, (1 - a)/(c - 1) elsewhere: (N, c)."""
    b = (1.0 - a) / (c - 1)
    p = torch.full((len(labels), c), b, dtype=torch.float64)
    p[torch.arange(len(labels)), labels] = a
    return p


# ---------------------------------------------------------------- FID


def test_fid_of_a_set_with_itself_is_zero() -> None:
    x = _gauss(400, torch.zeros(16), torch.ones(16), 0)
    assert fid(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_with_fewer_samples_than_dimensions_is_finite_and_zero_on_itself() -> None:
    x = _gauss(20, torch.zeros(64), torch.ones(64), 1)  # rank-deficient covariance
    assert fid(x, x) == pytest.approx(0.0, abs=1e-6)
    y = _gauss(20, torch.ones(64), torch.ones(64), 2)
    d = fid(x, y)
    assert math.isfinite(d) and d > 32.0  # mean shift alone contributes 64


def test_frechet_equal_covariance_is_squared_mean_distance() -> None:
    g = torch.Generator().manual_seed(3)
    a = torch.randn(8, 8, generator=g, dtype=torch.float64)
    s = a @ a.T + 0.1 * torch.eye(8, dtype=torch.float64)
    mu1 = torch.randn(8, generator=g, dtype=torch.float64)
    mu2 = torch.randn(8, generator=g, dtype=torch.float64)
    expected = float(((mu1 - mu2) ** 2).sum())
    assert frechet_distance(mu1, s, mu2, s) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_frechet_diagonal_covariances_closed_form() -> None:
    # for diagonal covariances, FID = |mu1 - mu2|^2 + sum (sigma1 - sigma2)^2
    sd1 = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    sd2 = torch.tensor([1.5, 1.0, 0.1, 4.0], dtype=torch.float64)
    mu1 = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    mu2 = torch.tensor([1.0, 1.0, 0.0, 3.0], dtype=torch.float64)
    expected = float(((mu1 - mu2) ** 2).sum() + ((sd1 - sd2) ** 2).sum())
    got = frechet_distance(mu1, torch.diag(sd1**2), mu2, torch.diag(sd2**2))
    assert got == pytest.approx(expected, rel=1e-9)
    # the same from samples: close to the closed form for large N
    x, y = _gauss(40000, mu1, sd1, 4), _gauss(40000, mu2, sd2, 5)
    assert fid(x, y) == pytest.approx(expected, rel=0.03)


def test_frechet_is_symmetric_and_handles_singular_covariances() -> None:
    s1 = torch.diag(torch.tensor([1.0, 0.0, 4.0], dtype=torch.float64))  # singular
    s2 = torch.diag(torch.tensor([0.0, 9.0, 1.0], dtype=torch.float64))
    mu = torch.zeros(3, dtype=torch.float64)
    expected = (1 - 0) ** 2 + (0 - 3) ** 2 + (2 - 1) ** 2
    assert frechet_distance(mu, s1, mu, s2) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu, s2, mu, s1) == pytest.approx(expected, rel=1e-9)


def test_gaussian_fit_matches_torch_cov() -> None:
    x = _gauss(50, torch.zeros(5), torch.ones(5), 6)
    mu, s = gaussian_fit(x)
    torch.testing.assert_close(mu, x.mean(0))
    torch.testing.assert_close(s, torch.cov(x.T))


# ---------------------------------------------------------------- IS / mIS


def test_inception_score_confident_uniform_is_num_classes() -> None:
    p = torch.eye(10, dtype=torch.float64).repeat(7, 1)
    assert inception_score(p) == pytest.approx(10.0, rel=1e-6)


def test_inception_score_identical_predictions_is_one() -> None:
    p = torch.softmax(torch.randn(10), 0).repeat(30, 1)
    assert inception_score(p) == pytest.approx(1.0, abs=1e-9)
    assert modified_inception_score(p) == pytest.approx(1.0, abs=1e-9)


def test_inception_score_soft_closed_form() -> None:
    a, n_per = 0.9, 5
    p = _soft_onehot(torch.arange(10).repeat(n_per), a)
    b = (1 - a) / 9
    # marginal is uniform, so IS = exp(log 10 - H(p)) = 10 * exp(-H)
    h = -(a * math.log(a) + 9 * b * math.log(b))
    assert inception_score(p) == pytest.approx(10 * math.exp(-h), rel=1e-9)


def test_modified_inception_score_closed_form_and_brute_force() -> None:
    a, n_per = 0.9, 4
    labels = torch.arange(10).repeat(n_per)
    p = _soft_onehot(labels, a)
    n, b = len(labels), (1 - a) / 9
    kl_diff = (a - b) * math.log(a / b)  # KL between two different soft one-hots
    frac_diff = (n - n_per) / (n - 1)  # of the pairs j != i, the share with another class
    assert modified_inception_score(p) == pytest.approx(math.exp(frac_diff * kl_diff), rel=1e-9)
    # brute force over all ordered distinct pairs on random probabilities
    q = torch.softmax(torch.randn(13, 10, generator=torch.Generator().manual_seed(7), dtype=torch.float64), 1)
    kl = (q[:, None, :] * (q[:, None, :].log() - q[None, :, :].log())).sum(-1)
    mean_off = kl.sum() / (13 * 12)
    assert modified_inception_score(q) == pytest.approx(math.exp(mean_off.item()), rel=1e-9)


# ---------------------------------------------------------------- AM


def test_am_score_closed_forms() -> None:
    onehot = torch.eye(10, dtype=torch.float64).repeat(3, 1)
    assert am_score(onehot, onehot) == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((20, 10), 0.1, dtype=torch.float64)
    assert am_score(onehot, uniform) == pytest.approx(math.log(10), rel=1e-9)  # KL 0 + H = log 10
    # all samples confidently one class: KL(uniform || onehot-ish marginal) dominates
    a = 0.99
    one_class = _soft_onehot(torch.zeros(20, dtype=torch.long), a)
    b = (1 - a) / 9
    expected_kl = 0.1 * math.log(0.1 / a) + 0.9 * math.log(0.1 / b)
    expected_h = -(a * math.log(a) + 9 * b * math.log(b))
    assert am_score(onehot, one_class) == pytest.approx(expected_kl + expected_h, rel=1e-6)


# ---------------------------------------------------------------- NDB and k-means


def _clusters(n_per: int, centres: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pts = centres.repeat_interleave(n_per, 0)
    return pts + 0.05 * torch.randn(pts.shape, generator=g, dtype=torch.float64)


def test_kmeans_is_deterministic_and_finds_separated_clusters() -> None:
    centres = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]], dtype=torch.float64)
    x = _clusters(30, centres, 8)
    c1, c2 = kmeans(x, 4, seed=1), kmeans(x, 4, seed=1)
    torch.testing.assert_close(c1, c2)
    found = sorted(map(tuple, c1.round().tolist()))
    assert found == sorted(map(tuple, centres.tolist()))
    labels = assign(x, c1)
    assert torch.bincount(labels, minlength=4).tolist() == [30, 30, 30, 30]


def test_ndb_of_reference_against_itself_is_zero_and_of_shifted_set_large() -> None:
    g = torch.Generator().manual_seed(9)
    ref = torch.randn(1000, 8, generator=g, dtype=torch.float64)
    ndb = NDB(ref, k=50, seed=0)
    assert ndb(ref).fraction == 0.0
    same_dist = torch.randn(1000, 8, generator=g, dtype=torch.float64)
    assert ndb(same_dist).fraction <= 0.2  # ~alpha of the bins by chance
    shifted = same_dist + 1.5
    res = ndb(shifted)
    assert res.fraction >= 0.5 and res.bins == 50
    assert sum(res.proportions) == pytest.approx(1.0)


def test_ndb_detects_a_missing_mode() -> None:
    centres = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]], dtype=torch.float64)
    ref = _clusters(100, centres, 10)
    ndb = NDB(ref, k=4, seed=0)
    assert ndb(_clusters(100, centres, 11)).different == 0
    assert ndb(_clusters(133, centres[:3], 12)).different >= 1  # one mode dropped


def test_sample_metrics_bundle_and_single_sample() -> None:
    g = torch.Generator().manual_seed(13)
    f = torch.randn(200, 6, generator=g, dtype=torch.float64)
    p = torch.softmax(3 * torch.randn(200, 10, generator=g, dtype=torch.float64), 1)
    m = sample_metrics(f, p, f, p, NDB(f, k=10))
    assert m.fid == pytest.approx(0.0, abs=1e-6) and m.ndb == 0.0 and m.count == 200
    assert m.am_score == pytest.approx(float((-(p * p.log()).sum(1)).mean()), rel=1e-9)
    one = sample_metrics(f, p, f[:1], p[:1], NDB(f, k=10))
    assert math.isnan(one.fid) and math.isnan(one.modified_inception_score)
    assert one.inception_score == pytest.approx(1.0)
