import numpy as np
import pytest

from genmodels import metrics


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    return rng.normal(size=(200, 8)), rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 6.0


def test_precision_recall(blobs):
    real, same, far = blobs
    p, r = metrics.precision_recall(real, real, k=3)
    assert p == r == 1.0
    p, r = metrics.precision_recall(real, same, k=3)
    assert p > 0.6 and r > 0.6
    p, r = metrics.precision_recall(real, far, k=3)
    assert p == r == 0.0
    # A collapsed generator: precise (its points are real-looking) but with no recall.
    p, r = metrics.precision_recall(real, np.repeat(real[:1], 200, axis=0) + 1e-3, k=3)
    assert p == 1.0 and r < 0.05


def test_kid_separates_distributions(blobs):
    real, same, far = blobs
    near, _ = metrics.kid(real, same, subsets=20, subset_size=100)
    shifted, _ = metrics.kid(real, far, subsets=20, subset_size=100)
    assert abs(near) < 0.05 and shifted > 1.0


def test_near_copy_rate(blobs):
    real, same, _ = blobs
    train, heldout = real[:150], real[150:]
    rate, thr = metrics.near_copy_rate(train, heldout, train[:40])
    assert rate == 1.0 and thr > 0  # copies of training points are all flagged
    rate, _ = metrics.near_copy_rate(train, heldout, same)
    assert rate < 0.2  # fresh draws from the same distribution mostly are not
