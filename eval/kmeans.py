"""Small deterministic k-means (k-means++ seeding, Lloyd iterations) in torch, float64."""

from __future__ import annotations

import torch


def _sq_dist(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """x (N, D), c (K, D) → squared Euclidean distances (N, K), clamped at 0."""
    return ((x * x).sum(1, keepdim=True) - 2.0 * x @ c.T + (c * c).sum(1)).clamp_min(0.0)


def assign(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """x (N, D), centroids (K, D) → index of the nearest centroid (N,) int64."""
    return _sq_dist(x.double(), centroids.double()).argmin(1)


def kmeans(x: torch.Tensor, k: int, iters: int = 100, seed: int = 0, tol: float = 1e-8) -> torch.Tensor:
    """Cluster x (N, D) into k groups; returns centroids (k, D) float64. Same seed → same result.

    Seeding is k-means++ (each next centre drawn ∝ squared distance to the nearest chosen one);
    a cluster that empties during Lloyd iterations is re-seeded at the point farthest from its centre.
    """
    x = x.double()
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= number of points, got k={k}, n={n}")
    gen = torch.Generator().manual_seed(seed)
    centres = torch.empty(k, x.shape[1], dtype=torch.float64)
    centres[0] = x[torch.randint(n, (1,), generator=gen)]
    d2 = _sq_dist(x, centres[:1]).squeeze(1)
    for j in range(1, k):
        total = d2.sum()
        if total <= 0:  # fewer distinct points than k: repeat points
            i = torch.randint(n, (1,), generator=gen)
        else:
            i = torch.multinomial(d2 / total, 1, generator=gen)
        centres[j] = x[i]
        d2 = torch.minimum(d2, _sq_dist(x, centres[j : j + 1]).squeeze(1))
    prev = torch.inf
    for _ in range(iters):
        dist = _sq_dist(x, centres)
        labels = dist.argmin(1)
        inertia = dist.gather(1, labels[:, None]).sum().item()
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros_like(centres).index_add_(0, labels, x)
        new = sums / counts.clamp_min(1).unsqueeze(1).double()
        empty = (counts == 0).nonzero().flatten()
        if len(empty):
            far = dist.gather(1, labels[:, None]).squeeze(1).argsort(descending=True)
            new[empty] = x[far[: len(empty)]]
        centres = new
        if prev - inertia <= tol * max(abs(prev), 1.0) and not len(empty):
            break
        prev = inertia
    return centres
