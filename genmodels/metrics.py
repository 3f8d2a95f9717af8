"""Sample-quality metrics computed in a feature space (our own `FeatureNet`, since no Inception is offline).

- Precision and recall: Kynkäänniemi et al. (2019), "Improved Precision and Recall Metric for Assessing
  Generative Models": each set's manifold is the union of balls reaching each point's k-th neighbour.
- KID: Bińkowski et al. (2018), "Demystifying MMD GANs": unbiased MMD² with the cubic polynomial kernel,
  averaged over random subsets.
- Near-copy rate: the share of samples closer to some training image than 95% of held-out real images are.
  A model that memorises its training set scores high here even when precision looks great.
"""

from __future__ import annotations

import numpy as np
import torch

from .data.emoji import coarse_pixels


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a.double(), b.double())  # (Na, Nb)


def _kth_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    d = _pairwise(x, x)
    return d.kthvalue(k + 1, dim=1).values  # k+1: the point itself is at distance 0


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of ``fake`` against ``real`` features, both (N, D)."""
    r, f = torch.as_tensor(real), torch.as_tensor(fake)
    rr, rf = _kth_radius(r, k), _kth_radius(f, k)
    d = _pairwise(f, r)  # (Nf, Nr)
    precision = (d <= rr[None, :]).any(dim=1).double().mean()
    recall = (d.T <= rf[None, :]).any(dim=1).double().mean()
    return float(precision), float(recall)


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 50, subset_size: int = 100, seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the unbiased KID estimate over random subsets."""
    rng = np.random.default_rng(seed)
    r, f = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m = min(subset_size, len(r), len(f))
    d = r.shape[1]
    vals = []
    for _ in range(subsets):
        x = r[rng.choice(len(r), m, replace=False)]
        y = f[rng.choice(len(f), m, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        mmd = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
        vals.append(mmd)
    return float(np.mean(vals)), float(np.std(vals))


def nearest_distance(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return _pairwise(torch.as_tensor(x), torch.as_tensor(ref)).min(dim=1).values.numpy()


def within_class_percentile(feats: np.ndarray, labels: np.ndarray, q: float) -> float:
    """The q-th percentile of the distances between two different items of one class (all classes pooled)."""
    # torch.pdist: the n(n−1)/2 distances alone, not an (n, n, D) difference array (7 GB for 1,308 × 1024-d)
    dists = [torch.pdist(torch.as_tensor(feats[labels == y], dtype=torch.float32)).numpy() for y in np.unique(labels)]
    return float(np.percentile(np.concatenate(dists), q))


@torch.no_grad()
def in_batches(fn, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """``fn`` (a network) applied to ``x`` a batch at a time, the outputs concatenated."""
    return torch.cat([fn(x[i : i + batch]) for i in range(0, len(x), batch)])


def near_copy_thresholds(features, x: torch.Tensor, labels: np.ndarray, percentile: float = 1.0) -> tuple[float, float]:
    """(feature, pixel): the ``percentile`` of the distances between two different real images of one theme, in
    the space of ``features`` (the feature net's ``features``) and in 16×16 pixels (`coarse_pixels`). Two cells
    closer than either count as near-copies: the rule of the model card's sheet and of the grids of versions that
    keep near-copies out. ``x``: the images in the models' range, (N, 4, 64, 64)."""
    labels = np.asarray(labels)
    return (within_class_percentile(in_batches(features, x).numpy(), labels, percentile),
            within_class_percentile(coarse_pixels(x), labels, percentile))


def near_copy_rate(train: np.ndarray, heldout: np.ndarray, fake: np.ndarray, percentile: float = 5.0) -> tuple[float, float]:
    """(rate, threshold): share of fakes nearer a training image than (100 − percentile)% of held-out images are."""
    threshold = float(np.percentile(nearest_distance(heldout, train), percentile))
    rate = float((nearest_distance(fake, train) < threshold).mean())
    return rate, threshold
