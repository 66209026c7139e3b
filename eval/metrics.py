"""SC09 automated sample metrics (docs/ARCHITECTURE.md §9), comparable with SaShiMi / Mamba Table 4.

Inputs are classifier outputs: ``features`` (N, D) from the penultimate layer and ``probs``
(N, C) class probabilities. All computations are in float64.

- FID  = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½   (Fréchet distance of Gaussian fits)
- IS   = exp E_x KL(p(y|x) ‖ p(y)),  p(y) = mean of p(y|x)
- mIS  = exp E_{x≠x'} KL(p(y|x) ‖ p(y|x'))   (all ordered pairs of distinct samples, closed form)
- AM   = KL(p_train(y) ‖ p_gen(y)) + E_x H(p(y|x)),  p_train(y) = mean classifier probs on train
- NDB  = fraction of K k-means bins (fit on reference features) whose proportions of reference
         and sample points differ by a two-sided two-proportion z-test at level α
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from audiomamba.eval.kmeans import assign, kmeans

EPS = 1e-12


def _f64(x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x).detach().to("cpu", torch.float64)


def gaussian_fit(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """features (N, D) → (mean (D,), covariance (D, D)) with the unbiased (N − 1) estimator."""
    x = _f64(features)
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"a Gaussian fit needs (N >= 2, D) features, got shape {tuple(x.shape)}")
    mu = x.mean(0)
    xc = x - mu
    return mu, xc.T @ xc / (x.shape[0] - 1)


def _psd_sqrt(s: torch.Tensor) -> torch.Tensor:
    """Symmetric PSD square root of s (D, D) by eigen-decomposition, negative eigenvalues clamped to 0."""
    s = 0.5 * (s + s.T)
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp_min(0.0).sqrt()) @ v.T


def frechet_distance(mu1: torch.Tensor, s1: torch.Tensor, mu2: torch.Tensor, s2: torch.Tensor) -> float:
    """Fréchet distance between N(mu1, s1) and N(mu2, s2); mu: (D,), s: (D, D).

    tr sqrt(s1 s2) is computed as the sum of square roots of the (clamped) eigenvalues of the
    symmetric PSD matrix sqrt(s1) s2 sqrt(s1), which has the same spectrum as s1 s2 and stays
    stable for rank-deficient covariances (fewer samples than dimensions).
    """
    mu1, s1, mu2, s2 = map(_f64, (mu1, s1, mu2, s2))
    r1 = _psd_sqrt(s1)
    m = r1 @ s2 @ r1
    tr_cross = torch.linalg.eigvalsh(0.5 * (m + m.T)).clamp_min(0.0).sqrt().sum()
    d = ((mu1 - mu2) ** 2).sum() + torch.trace(s1) + torch.trace(s2) - 2.0 * tr_cross
    return max(float(d), 0.0)


def fid(ref_features: torch.Tensor, features: torch.Tensor) -> float:
    """FID between two feature sets (N₁, D) and (N₂, D)."""
    return frechet_distance(*gaussian_fit(ref_features), *gaussian_fit(features))


def _check_probs(probs: torch.Tensor) -> torch.Tensor:
    p = _f64(probs)
    if p.dim() != 2 or p.shape[0] == 0:
        raise ValueError(f"probabilities must be (N >= 1, C), got shape {tuple(p.shape)}")
    return p.clamp_min(EPS)


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """p (..., C) → H(p) (...) in nats."""
    return -(p * p.log()).sum(-1)


def inception_score(probs: torch.Tensor) -> float:
    """IS = exp(E_x KL(p(y|x) ‖ p(y))) for probs (N, C). Range [1, C]."""
    p = _check_probs(probs)
    marginal = p.mean(0, keepdim=True)
    kl = (p * (p.log() - marginal.log())).sum(1)
    return math.exp(kl.mean().item())


def modified_inception_score(probs: torch.Tensor) -> float:
    """mIS = exp(mean over ordered pairs i ≠ j of KL(p_i ‖ p_j)) for probs (N, C), N ≥ 2.

    Σ_{i,j} KL(p_i‖p_j) = N Σ_i Σ_y p_i log p_i − Σ_y (Σ_i p_i(y)) (Σ_j log p_j(y)); the diagonal
    terms are zero, so dividing by N(N − 1) gives the mean over distinct pairs, in O(N·C).
    """
    p = _check_probs(probs)
    n = p.shape[0]
    if n < 2:
        raise ValueError("mIS needs at least two samples")
    logp = p.log()
    total = n * (p * logp).sum() - (p.sum(0) * logp.sum(0)).sum()
    return math.exp((total / (n * (n - 1))).item())


def am_score(ref_probs: torch.Tensor, probs: torch.Tensor) -> float:
    """AM = KL(p_ref(y) ‖ p_gen(y)) + E_x H(p(y|x)); ref_probs (N₁, C) e.g. train set, probs (N₂, C)."""
    pr, pg = _check_probs(ref_probs).mean(0), _check_probs(probs)
    mg = pg.mean(0)
    kl = (pr * (pr.log() - mg.log())).sum()
    return float(kl + _entropy(pg).mean())


@dataclass(frozen=True)
class NDBResult:
    """Number of statistically different bins: ``fraction`` = ``different`` / ``bins``."""

    fraction: float
    different: int
    bins: int
    ref_proportions: list[float]
    proportions: list[float]


class NDB:
    """NDB with K k-means bins fitted once on reference features (N₁, D).

    ``NDB(ref_features, k=50, seed=0)(features)`` → :class:`NDBResult` for sample features (N₂, D).
    """

    def __init__(self, ref_features: torch.Tensor, k: int = 50, alpha: float = 0.05, seed: int = 0) -> None:
        ref = _f64(ref_features)
        self.k, self.alpha = k, alpha
        self.centroids = kmeans(ref, k, seed=seed)
        self.ref_counts = torch.bincount(assign(ref, self.centroids), minlength=k)
        self.n_ref = ref.shape[0]
        # two-sided critical value of the standard normal: Φ⁻¹(1 − α/2)
        self.z_crit = math.sqrt(2.0) * torch.erfinv(torch.tensor(1.0 - alpha, dtype=torch.float64)).item()

    def __call__(self, features: torch.Tensor) -> NDBResult:
        x = _f64(features)
        n = x.shape[0]
        counts = torch.bincount(assign(x, self.centroids), minlength=self.k)
        p1 = self.ref_counts.double() / self.n_ref
        p2 = counts.double() / n
        pooled = (self.ref_counts + counts).double() / (self.n_ref + n)
        se = (pooled * (1 - pooled) * (1.0 / self.n_ref + 1.0 / n)).sqrt()
        z = torch.where(se > 0, (p1 - p2) / se.clamp_min(EPS), torch.zeros_like(se))
        different = int((z.abs() > self.z_crit).sum())
        return NDBResult(different / self.k, different, self.k, p1.tolist(), p2.tolist())


@dataclass(frozen=True)
class SampleMetrics:
    fid: float
    inception_score: float
    modified_inception_score: float
    am_score: float
    ndb: float
    ndb_different: int
    ndb_bins: int
    count: int

    def row(self) -> dict:
        return {
            "count": self.count, "FID": self.fid, "IS": self.inception_score,
            "mIS": self.modified_inception_score, "AM": self.am_score, "NDB": self.ndb,
            "NDB_bins_different": self.ndb_different, "NDB_bins": self.ndb_bins,
        }


def sample_metrics(
    ref_features: torch.Tensor, ref_probs: torch.Tensor, features: torch.Tensor, probs: torch.Tensor,
    ndb: NDB | None = None,
) -> SampleMetrics:
    """All metrics of a sample set (features (N, D), probs (N, C)) against the reference (train) set.

    FID and mIS need two samples or more; with a single sample they are NaN.
    """
    ndb = ndb or NDB(ref_features)
    nd = ndb(features)
    several = features.shape[0] >= 2
    return SampleMetrics(
        fid=fid(ref_features, features) if several else math.nan,
        inception_score=inception_score(probs),
        modified_inception_score=modified_inception_score(probs) if several else math.nan,
        am_score=am_score(ref_probs, probs),
        ndb=nd.fraction, ndb_different=nd.different, ndb_bins=nd.bins,
        count=int(features.shape[0]),
    )
