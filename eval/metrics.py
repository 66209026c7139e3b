"""SC09 automated sample metrics (docs/ARCHITECTURE.md §9), comparable with SaShiMi / Mamba Table 4.

Inputs are classifier outputs: ``features`` (N, D) from the penultimate layer and ``probs``
(N, C) class probabilities. All computations are in float64.

- FID  = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½   (Fréchet distance of Gaussian fits)
- IS   = exp E_x KL(p(y|x) ‖ p(y)),  p(y) = mean of p(y|x)
- mIS  = exp E_{x≠x'} KL(p(y|x) ‖ p(y|x'))   (all ordered pairs of distinct samples, closed form)
- AM   = KL(p_train(y) ‖ p_gen(y)) + E_x H(p(y|x)),  p_train(y) = mean classifier probs on train
- NDB  = fraction of K k-means bins (fit on reference features) whose proportions of reference
         and sample points differ by a two-sided two-proportion z-test at level α

Two protocols (``sample_metrics(..., protocol=...)``, ``evaluate samples --protocol``):

- ``"ours"`` (default): the formulas above, probabilities clamped at 1e-12, FID clamped at 0.
- ``"sashimi"``: what the SaShiMi / Mamba papers' metrics script computes (state-spaces/s4,
  ``models/sashimi/sc09_classifier/test_speech_commands.py``; re-implemented here, all in float64):

  - FID: the same formula and the same unbiased (N − 1) covariances, but tr √(Σ_ref Σ_gen) is the
    trace of ``scipy.linalg.sqrtm`` of the (non-symmetric) product; when that is not finite, it is
    retried with 1e-4·I added to both covariances (inside the square root only). Not clamped at 0;
    the real part is reported where sqrtm goes complex. In exact arithmetic this equals ours.
  - IS: the clips are shuffled (``numpy.random.seed(0)`` permutation) and halved; h = ⌊N/2⌋.
    Their KL call (``scipy.stats.entropy`` on (h, C) arrays, default axis 0) normalises each
    *class column* over the first-half clips, so what it computes is, per class c,
    KL_c = KL(a_·c ‖ uniform over the h clips) = log h − H(a_·c) with a_ic = p_i(c) / Σ_j p_j(c)
    (sums over the first half), and IS = exp(mean_c KL_c). The second half's class marginal only
    matters where it is zero (then IS is NaN, as is a class with no mass in the first half).
    Rewritten, log IS = (1/C) Σ_c (1/h) Σ_i (p_i(c)/m_c) log(p_i(c)/m_c) with m_c the first-half
    class mean, whereas ours is Σ_c m_c (1/N) Σ_i (p_i(c)/m_c) log(p_i(c)/m_c) over all N clips: on
    the same clips the two agree when the predicted class marginal is uniform, and differ otherwise (one-hot
    predictions: theirs is h / (geometric mean of the first-half class counts) ≥ C).
  - mIS: exp of the mean of KL(p_i ‖ p_j) over 10,000 index pairs drawn with replacement
    (``numpy.random.seed(0)``), so i = j pairs (KL 0) are included: its expectation in log space is
    (N − 1)/N times ours, which averages exactly over all ordered pairs i ≠ j.
  - AM: the same formula as ours; probability vectors are renormalised to sum 1 and nothing is
    clamped (0·log 0 = 0; a class with generated mass 0 but train mass > 0 gives AM = inf).
  - NDB: not computed by their script (its calls are commented out); ours is reported under both.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from audiomamba.eval.kmeans import assign, kmeans

EPS = 1e-12
PROTOCOLS = ("ours", "sashimi")
PROTOCOL_NOTES = {
    "ours": "FID (eigen-decomposition, clamped at 0), IS over all clips, mIS exactly over all pairs i != j, "
            "AM; probabilities clamped at 1e-12",
    "sashimi": "as the SaShiMi/Mamba script state-spaces/s4 models/sashimi/sc09_classifier/test_speech_commands.py: "
               "FID via scipy sqrtm of the covariance product (1e-4 retry, not clamped), IS per-class KL on a "
               "seed-0 half split, mIS over 10000 seed-0 pairs drawn with replacement, AM unclamped; NDB is ours",
}
SASHIMI_MIS_PAIRS = 10000
SASHIMI_FID_OFFSET = 1e-4


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
    stable for rank-deficient covariances (fewer samples than dimensions). The formula is the
    SaShiMi protocol's too (:func:`frechet_distance_sashimi`); only the numerics differ (their
    sqrtm of the product, 1e-4 retry, no clamp at 0).
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
    """IS = exp(E_x KL(p(y|x) ‖ p(y))) for probs (N, C) over all N clips. Range [1, C].

    Differs from :func:`inception_score_sashimi` (per-class KL on half the clips, see module doc).
    """
    p = _check_probs(probs)
    marginal = p.mean(0, keepdim=True)
    kl = (p * (p.log() - marginal.log())).sum(1)
    return math.exp(kl.mean().item())


def modified_inception_score(probs: torch.Tensor) -> float:
    """mIS = exp(mean over ordered pairs i ≠ j of KL(p_i ‖ p_j)) for probs (N, C), N ≥ 2.

    Σ_{i,j} KL(p_i‖p_j) = N Σ_i Σ_y p_i log p_i − Σ_y (Σ_i p_i(y)) (Σ_j log p_j(y)); the diagonal
    terms are zero, so dividing by N(N − 1) gives the mean over distinct pairs, in O(N·C).
    :func:`modified_inception_score_sashimi` instead samples 10,000 pairs with replacement (i = j
    included): in expectation its log is (N − 1)/N times this one's.
    """
    p = _check_probs(probs)
    n = p.shape[0]
    if n < 2:
        raise ValueError("mIS needs at least two samples")
    logp = p.log()
    total = n * (p * logp).sum() - (p.sum(0) * logp.sum(0)).sum()
    return math.exp((total / (n * (n - 1))).item())


def am_score(ref_probs: torch.Tensor, probs: torch.Tensor) -> float:
    """AM = KL(p_ref(y) ‖ p_gen(y)) + E_x H(p(y|x)); ref_probs (N₁, C) e.g. train set, probs (N₂, C).

    The same formula as :func:`am_score_sashimi`; ours clamps probabilities at 1e-12 (finite where
    theirs is inf) and does not renormalise them.
    """
    pr, pg = _check_probs(ref_probs).mean(0), _check_probs(probs)
    mg = pg.mean(0)
    kl = (pr * (pr.log() - mg.log())).sum()
    return float(kl + _entropy(pg).mean())


def check_protocol(protocol: str) -> str:
    """``protocol`` if it is one of :data:`PROTOCOLS`, else a one-line ValueError naming them."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown metrics protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    return protocol


# ------------------------------------------------ the SaShiMi / Mamba script's protocol (see module doc)


def _rel_entr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Elementwise x log(x / y) with 0 where x = 0 and inf where x > 0 = y (scipy.special.rel_entr)."""
    return torch.where(x > 0, x * (x.log() - y.log()), torch.zeros_like(x))


def _rows_normalised(p: torch.Tensor) -> torch.Tensor:
    p = _f64(p)
    if p.dim() != 2 or p.shape[0] == 0:
        raise ValueError(f"probabilities must be (N >= 1, C), got shape {tuple(p.shape)}")
    return p / p.sum(1, keepdim=True)


def frechet_distance_sashimi(mu1: torch.Tensor, s1: torch.Tensor, mu2: torch.Tensor, s2: torch.Tensor) -> float:
    """Fréchet distance as the SaShiMi script computes it: tr Σ₁ + tr Σ₂ − 2 tr sqrtm(Σ₁ Σ₂) + ‖μ₁ − μ₂‖².

    Same formula as :func:`frechet_distance`; the square root is ``scipy.linalg.sqrtm`` of the
    non-symmetric product, retried with 1e-4·I on both covariances when it is not finite. The
    result is not clamped at 0; where sqrtm goes complex the real part is returned. inf when the
    inputs are not finite (their script's ValueError path).
    """
    from scipy import linalg

    mu1, s1, mu2, s2 = (_f64(t).numpy() for t in (mu1, s1, mu2, s2))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm(s1 @ s2)
            if not np.isfinite(covmean).all():
                off = SASHIMI_FID_OFFSET * np.eye(s1.shape[0])
                covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    except ValueError:
        return math.inf
    d = np.sum((mu2 - mu1) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)
    return float(np.real(d))


def fid_sashimi(ref_features: torch.Tensor, features: torch.Tensor) -> float:
    """FID of the SaShiMi protocol between (N₁, D) reference (train) and (N₂, D) sample features."""
    return frechet_distance_sashimi(*gaussian_fit(ref_features), *gaussian_fit(features))


def inception_score_sashimi(probs: torch.Tensor, seed: int = 0) -> float:
    """IS as the SaShiMi script computes it (module doc): per-class KL on the first half of a seeded shuffle.

    probs (N, C), N ≥ 2. The clips are permuted with ``numpy.random.RandomState(seed)`` (their
    script: ``np.random.seed(0)``), h = ⌊N/2⌋ first clips kept; a_ic = p_i(c) / Σ_{j<h} p_j(c);
    IS = exp(mean_c (log h − H(a_·c))). NaN when a class has zero mass in either half.
    """
    p = _f64(probs)
    if p.dim() != 2 or p.shape[0] < 2:
        raise ValueError(f"the SaShiMi IS needs (N >= 2, C) probabilities, got shape {tuple(p.shape)}")
    n = p.shape[0]
    p = p[torch.from_numpy(np.random.RandomState(seed).permutation(n))]
    h = n // 2
    first, second = p[:h], p[h:]
    mass = first.sum(0)
    if (mass <= 0).any() or (second.mean(0) <= 0).any():
        return math.nan
    a = first / mass
    kl = math.log(h) + torch.xlogy(a, a).sum(0)  # KL(a_·c ‖ uniform over h clips), per class c
    return math.exp(kl.mean().item())


def modified_inception_score_sashimi(probs: torch.Tensor, pairs: int = SASHIMI_MIS_PAIRS, seed: int = 0) -> float:
    """mIS as the SaShiMi script computes it: exp of the mean KL(p_i ‖ p_j) over ``pairs`` (i, j) drawn
    uniformly *with replacement* (i = j included) by ``numpy.random.RandomState(seed)``.

    The draws are those of their loop of ``np.random.choice(N, 2, replace=True)`` after
    ``np.random.seed(0)``. Vectors are renormalised, nothing is clamped (a zero p_j(y) where
    p_i(y) > 0 gives inf).
    """
    p = _rows_normalised(probs)
    idx = torch.from_numpy(np.random.RandomState(seed).randint(0, p.shape[0], size=(pairs, 2)))
    kl = _rel_entr(p[idx[:, 0]], p[idx[:, 1]]).sum(1)
    return math.exp(kl.mean().item())


def am_score_sashimi(ref_probs: torch.Tensor, probs: torch.Tensor) -> float:
    """AM of the SaShiMi protocol: KL(p_ref(y) ‖ p_gen(y)) + E_x H(p(y|x)), the formula of :func:`am_score`.

    Differences from ours: no 1e-12 clamp (0·log 0 = 0; generated class mass 0 where the
    reference has mass gives inf) and every probability vector is renormalised to sum 1.
    """
    pr_mean = _f64(ref_probs).mean(0)
    pg = _f64(probs)
    pg_mean = pg.mean(0)
    kl = _rel_entr(pr_mean / pr_mean.sum(), pg_mean / pg_mean.sum()).sum()
    pn = _rows_normalised(pg)
    entropy = -torch.xlogy(pn, pn).sum(1).mean()
    return float(kl + entropy)


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
    protocol: str = "ours"

    def row(self) -> dict:
        return {
            "count": self.count, "FID": self.fid, "IS": self.inception_score,
            "mIS": self.modified_inception_score, "AM": self.am_score, "NDB": self.ndb,
            "NDB_bins_different": self.ndb_different, "NDB_bins": self.ndb_bins,
        }


def sample_metrics(
    ref_features: torch.Tensor, ref_probs: torch.Tensor, features: torch.Tensor, probs: torch.Tensor,
    ndb: NDB | None = None, protocol: str = "ours",
) -> SampleMetrics:
    """All metrics of a sample set (features (N, D), probs (N, C)) against the reference (train) set.

    ``protocol`` is ``"ours"`` (default) or ``"sashimi"`` (the SaShiMi / Mamba script's FID, IS, mIS
    and AM; see the module doc for what differs). NDB is ours under both. FID and mIS (and, under
    ``"sashimi"``, IS) need two samples or more; with a single sample they are NaN.
    """
    check_protocol(protocol)
    ndb = ndb or NDB(ref_features)
    nd = ndb(features)
    several = features.shape[0] >= 2
    if protocol == "sashimi":
        fid_v = fid_sashimi(ref_features, features) if several else math.nan
        is_v = inception_score_sashimi(probs) if several else math.nan
        mis_v = modified_inception_score_sashimi(probs) if several else math.nan
        am_v = am_score_sashimi(ref_probs, probs)
    else:
        fid_v = fid(ref_features, features) if several else math.nan
        is_v = inception_score(probs)
        mis_v = modified_inception_score(probs) if several else math.nan
        am_v = am_score(ref_probs, probs)
    return SampleMetrics(
        fid=fid_v, inception_score=is_v, modified_inception_score=mis_v, am_score=am_v,
        ndb=nd.fraction, ndb_different=nd.different, ndb_bins=nd.bins,
        count=int(features.shape[0]), protocol=protocol,
    )
