"""The K-means engine: histogram / grid paths against brute force and scikit-learn; chunking."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_cluster_seg import cluster_image
from napari_cluster_seg.core import _chunks, features, sample
from napari_cluster_seg.core import reduce as reduce_mod
from napari_cluster_seg.core.kmeans import kmeans_1d_optimal

from .test_kmeans import brute_force_1d


def pixel_wcss(values, labels):
    """Within-cluster sum of squares of pixel rows ``values`` (n, c) grouped by ``labels``."""
    total = 0.0
    for lab in np.unique(labels[labels > 0]):
        x = values[labels == lab].astype(np.float64)
        total += ((x - x.mean(axis=0)) ** 2).sum()
    return total


@settings(max_examples=40, deadline=None)
@given(
    image=arrays(np.uint8, st.tuples(st.integers(2, 6), st.integers(2, 6)), elements=st.integers(0, 40)),
    k=st.integers(2, 4),
)
def test_histogram_path_is_the_brute_force_optimum(image, k):
    values, counts = np.unique(image, return_counts=True)
    if values.size < k:
        with pytest.raises(ValueError, match="distinct value"):
            cluster_image(image, k)
        return
    res = cluster_image(image, k, normalize="none")
    best = brute_force_1d(values.astype(float), counts.astype(float), k)
    assert res.inertia == pytest.approx(best, rel=1e-9, abs=1e-9)
    assert pixel_wcss(image.reshape(-1, 1), res.labels.ravel()) == pytest.approx(best, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [3, 5])
def test_one_channel_wcss_never_exceeds_scikit_learn(seed, k):
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    img = np.concatenate([rng.normal(m, s, 3000) for m, s in [(800, 80), (1500, 200), (4000, 600)]])
    img = np.clip(img, 0, 65535).astype(np.uint16).reshape(100, 90)
    ours = pixel_wcss(img.reshape(-1, 1), cluster_image(img, k, normalize="none").labels.ravel())
    km = KMeans(k, n_init=1, random_state=seed).fit(img.reshape(-1, 1).astype(np.float64))
    assert ours <= km.inertia_ * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_float_binning_stays_within_a_thousandth_of_the_exact_optimum(seed):
    rng = np.random.default_rng(seed)
    img = np.concatenate([rng.gamma(2, 1, 20000), rng.normal(12, 1.5, 10000)]).astype(np.float32)
    for k in (2, 4, 7):
        res = cluster_image(img.reshape(150, 200), k, normalize="none")
        values, counts = np.unique(img.astype(np.float64), return_counts=True)
        _, exact = kmeans_1d_optimal(values, counts.astype(float), k)
        ours = pixel_wcss(img.reshape(-1, 1), res.labels.ravel())
        assert ours <= exact * 1.001


@pytest.mark.parametrize("k", [4, 8])
def test_rgb_wcss_matches_scikit_learn(k):
    from skimage import data
    from sklearn.cluster import KMeans

    img = data.astronaut()[::2, ::2]
    x = img.reshape(-1, 3).astype(np.float64)
    ours = pixel_wcss(x, cluster_image(img, k, rgb=True, normalize="none").labels.ravel())
    ref = KMeans(k, n_init=1, random_state=0).fit(x).inertia_
    assert ours <= ref * 1.001


@pytest.mark.parametrize("seed", range(2))
def test_float_multichannel_wcss_matches_scikit_learn(seed):
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    centers = rng.random((5, 3))
    img = (centers[rng.integers(0, 5, 20000)] + rng.normal(0, 0.08, (20000, 3))).astype(np.float32)
    img = img.reshape(100, 200, 3)
    x = img.reshape(-1, 3).astype(np.float64)
    ours = pixel_wcss(x, cluster_image(img, 5, channel_axis=-1, normalize="none").labels.ravel())
    ref = KMeans(5, n_init=1, random_state=seed).fit(x).inertia_
    assert ours <= ref * 1.001


CASES = {
    "rgb-uint8-exact": (lambda rng: rng.integers(0, 256, (60, 70, 3)).astype(np.uint8), {"rgb": True}),
    "float-grid": (lambda rng: rng.random((60, 70, 2)).astype(np.float32), {"channel_axis": -1}),
    "grey-uint16": (lambda rng: rng.integers(0, 5000, (60, 70)).astype(np.uint16), {}),
    "float-1d": (lambda rng: rng.normal(0, 1, (60, 70)).astype(np.float32), {}),
}


@pytest.mark.parametrize("method", ["kmeans", "agglomerative", "divisive"])
@pytest.mark.parametrize("case", list(CASES))
def test_small_chunks_give_the_same_labels_as_one_pass(monkeypatch, numpy_only, case, method):
    make, kwargs = CASES[case]
    img = make(np.random.default_rng(0))
    whole = cluster_image(img, 4, method, **kwargs)
    for module in (reduce_mod, sample, features):  # the modules that chunk by CHUNK when called
        monkeypatch.setattr(module, "CHUNK", 997)  # many chunks, several threads
    monkeypatch.setattr(reduce_mod, "COUNT_TABLE_MAX", 2**12)  # RGB codes sorted in parts, not tabled
    monkeypatch.setattr(reduce_mod, "SORT_RATIO", np.inf)  # not the small-image path (np.unique)
    chunked = cluster_image(img, 4, method, **kwargs)
    np.testing.assert_array_equal(whole.labels, chunked.labels)
    np.testing.assert_allclose(whole.centers, chunked.centers)
    assert whole.inertia == pytest.approx(chunked.inertia, rel=1e-9)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_large_code_spaces_are_counted_exactly_by_sorting_in_parts(monkeypatch, numpy_only, workers):
    """Without numba, uint8 RGB codes are counted by sorting one part per core and merging the
    parts' runs."""
    rng = np.random.default_rng(workers)
    values = rng.integers(0, 24, (5000, 3)).astype(np.uint8)  # many repeats within and across parts
    values[:7] = 255  # and codes at the top of the space
    coder = reduce_mod.Coder(lo=np.zeros(3, np.int64), levels=np.array([256, 256, 256]))
    monkeypatch.setattr(reduce_mod, "n_workers", lambda: workers)
    monkeypatch.setattr(_chunks, "n_workers", lambda: workers)  # for_chunks
    monkeypatch.setattr(reduce_mod, "SORT_RATIO", np.inf)
    occupied, counts = reduce_mod._count_codes(values, coder)
    expected, expected_counts = np.unique(coder.codes(values), return_counts=True)
    np.testing.assert_array_equal(occupied, expected)
    np.testing.assert_array_equal(counts, expected_counts)


@pytest.mark.parametrize("normalize", ["none", "minmax", "zscore", "percentile"])
@pytest.mark.parametrize("kind", ["rgb8", "float"])
@pytest.mark.parametrize("n", [300_000, 20_000])  # the coreset path; Lloyd on every point
def test_statistics_from_the_labelling_pass_equal_the_two_pass_statistics(normalize, kind, n):
    """With the kernels, the last Lloyd pass's sums give the clusters' means, counts and WCSS
    (``assigned_stats``); they agree with ``cluster_stats``' passes over the points to rounding, for
    exact reductions and grid cells (whose spread within is added), affine or clipping normalisers."""
    pytest.importorskip("numba")
    from napari_cluster_seg.core import _accel
    from napari_cluster_seg.core._fit_kmeans import fit_centers
    from napari_cluster_seg.core._params import validate_params
    from napari_cluster_seg.core._progress import run_with_progress
    from napari_cluster_seg.core._stats import assigned_stats, cluster_stats
    from napari_cluster_seg.core.normalize import fit_normalizer

    if not _accel.enabled():
        pytest.skip("the compiled kernels are off")
    rng = np.random.default_rng(3)
    values = rng.normal(120, 40, (n, 3)).clip(0, 255)
    values[:1000] = [250, 10, 10]  # beyond the percentiles: clipped
    values = values.astype(np.uint8) if kind == "rgb8" else values * 1e3 + 5e6  # a large offset
    red = reduce_mod.reduce_pixels(values)
    assert red.exact == (kind == "rgb8") and (red.n_points > 2**16) == (n > 2**16)
    normalizer = fit_normalizer(red.raw_points, red.weights, normalize, (1.0, 99.0))
    points = normalizer(red.raw_points)
    params = validate_params(2, n_clusters=4)
    fit = run_with_progress(fit_centers(points, red.weights, params, np.random.default_rng(0)))
    assert fit.sums is not None
    got = assigned_stats(fit, red, normalizer)
    want = cluster_stats(red.raw_points, red.weights, fit.labels, 4, red.total_sq, normalizer)
    np.testing.assert_array_equal(got[1], want[1])  # counts
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)  # means, input units
    np.testing.assert_allclose(got[3], want[3], rtol=1e-9, atol=1e-12)  # feature means
    assert got[2] == pytest.approx(want[2], rel=1e-9)
