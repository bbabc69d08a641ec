import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_cluster_seg.core._progress import run_with_progress
from napari_cluster_seg.core.kmeans import assign_nearest, kmeans_1d_optimal, weighted_kmeans


def brute_force_1d(x, w, k):
    """Least weighted WCSS over all partitions of sorted points into k contiguous runs."""
    best = np.inf
    for cuts in itertools.combinations(range(1, len(x)), k - 1):
        bounds = (0, *cuts, len(x))
        cost = 0.0
        for a, b in zip(bounds[:-1], bounds[1:]):
            xs, ws = x[a:b], w[a:b]
            mean = np.dot(xs, ws) / ws.sum()
            cost += np.dot(ws, (xs - mean) ** 2)
        best = min(best, cost)
    return best


def wcss_of(x, w, labels):
    total = 0.0
    for c in np.unique(labels):
        sel = labels == c
        mean = np.dot(x[sel], w[sel]) / w[sel].sum()
        total += np.dot(w[sel], (x[sel] - mean) ** 2)
    return total


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 1000), min_size=2, max_size=9, unique=True),
    weights=st.lists(st.integers(1, 50), min_size=9, max_size=9),
    k=st.integers(1, 5),
)
def test_1d_optimum_matches_brute_force(values, weights, k):
    x = np.sort(np.array(values, float))
    w = np.array(weights[: len(x)], float)
    k = min(k, len(x))
    labels, wcss = kmeans_1d_optimal(x, w, k)
    expected = brute_force_1d(x, w, k)
    assert wcss == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert wcss_of(x, w, labels) == pytest.approx(expected, rel=1e-9, abs=1e-6)
    # labels are contiguous runs 0..k-1 in increasing order
    assert labels[0] == 0 and labels[-1] == k - 1
    assert np.all(np.diff(labels) >= 0) and len(np.unique(labels)) == k


def test_1d_optimum_on_larger_histogram_beats_lloyd():
    rng = np.random.default_rng(3)
    data = np.concatenate(
        [rng.normal(m, s, n) for m, s, n in [(50, 5, 5000), (90, 15, 3000), (200, 20, 2000)]]
    )
    values, counts = np.unique(np.clip(data, 0, 255).astype(int), return_counts=True)
    x, w = values.astype(float), counts.astype(float)
    for k in (2, 3, 5, 8):
        _, opt = kmeans_1d_optimal(x, w, k)
        fit = weighted_kmeans(x[:, None], w, k, rng=np.random.default_rng(0), n_init=3)
        lloyd = run_with_progress(fit).wcss
        assert opt <= lloyd * (1 + 1e-12)


def test_weighted_kmeans_equals_kmeans_on_repeated_points():
    """Weights act as repeated points: the fitted centres are weighted means."""
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))])
    w = rng.integers(1, 10, 40).astype(float)
    centers, labels, wcss, _ = run_with_progress(weighted_kmeans(pts, w, 2, rng=np.random.default_rng(1)))
    for c in range(2):
        sel = labels == c
        np.testing.assert_allclose(centers[c], np.average(pts[sel], axis=0, weights=w[sel]))
    assert len(set(labels[:20])) == 1 and len(set(labels[20:])) == 1 and labels[0] != labels[-1]
    expanded = np.repeat(pts, w.astype(int), axis=0)
    lab_exp = np.repeat(labels, w.astype(int))
    direct = sum(((expanded[lab_exp == c] - centers[c]) ** 2).sum() for c in range(2))
    assert wcss == pytest.approx(direct)


def test_assign_nearest_chunked_equals_one_pass():
    rng = np.random.default_rng(1)
    feats = rng.random((10_001, 3)).astype(np.float32)
    centers = rng.random((6, 3))
    one = assign_nearest(feats, centers)
    chunked, d2 = assign_nearest(feats, centers, chunk=997, return_distances=True)
    np.testing.assert_array_equal(one, chunked)
    brute = ((feats[:, None, :].astype(float) - centers[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(one, brute.argmin(1))
    np.testing.assert_allclose(d2, brute.min(1), atol=1e-5)
