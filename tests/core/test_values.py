"""Issue 14, the value domain: every success has k non-empty clusters with finite centres and
inertia that match the labels; anything else is a ValueError that names the problem."""

import json
import warnings

import numpy as np
import pytest

from napari_cluster_seg import ClusterModel, cluster_image
from napari_cluster_seg.core import _accel
from napari_cluster_seg.core.kmeans import assign_nearest, weighted_kmeans
from napari_cluster_seg.core.reduce import grid_coder, reduce_pixels

METHODS = ["kmeans", "agglomerative", "divisive"]


def check_result(res, k, invalid=None):
    """The contract of a successful result."""
    labels = res.labels
    if invalid is None:
        invalid = np.zeros(labels.shape, bool)
    assert np.array_equal(labels == 0, invalid)
    counts = np.bincount(labels.ravel(), minlength=k + 1)
    assert counts.size == k + 1 and np.all(counts[1:] > 0)
    assert np.array_equal(res.counts, counts[1:])
    assert np.all(np.isfinite(res.centers)) and np.isfinite(res.inertia) and res.inertia >= 0


def run(gen):
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


# item 5a: percentile clipping leaves fewer distinct values than k
@pytest.mark.parametrize("method", METHODS)
def test_percentile_one_value_with_spots_is_refused(method):
    img = np.full((100, 100), 1000, np.uint16)
    img.flat[np.random.default_rng(0).choice(10000, 50, replace=False)] = 60000
    with pytest.raises(ValueError, match=r"only one distinct value .*normalize='percentile'.*another norm"):
        cluster_image(img, 2, method, normalize="percentile")
    check_result(cluster_image(img, 2, method), 2)  # minmax keeps the spots apart


@pytest.mark.parametrize("method", METHODS)
def test_percentile_clipping_merges_values(method):
    img = np.repeat(np.arange(10, dtype=np.uint8), 100).reshape(20, 50)
    res = cluster_image(img, 8, method, normalize="percentile", percentiles=(15, 85))
    check_result(res, 8)
    assert res.counts[0] == 200 and res.counts[-1] == 200  # 0, 1 clipped to 1; 8, 9 to 8
    with pytest.raises(ValueError, match=r"n_clusters=9 is more than the 8 distinct values"):
        cluster_image(img, 9, method, normalize="percentile", percentiles=(15, 85))


# item 5b: the sampled path (more than 4 channels) counts distinct feature vectors
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("fit_stride", [1, 2])
def test_many_channels_few_distinct_vectors(method, fit_stride):
    img = np.zeros((64, 64, 6), np.uint8)
    img[:32] = 1
    with pytest.raises(ValueError, match=r"the 2 distinct colours / feature vectors"):
        cluster_image(img, 3, method, channel_axis=2, fit_stride=fit_stride)
    img[:16, :, 3] = 7
    check_result(cluster_image(img, 3, method, channel_axis=2, fit_stride=fit_stride), 3)


# item 6: the full range of every integer dtype
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"])
@pytest.mark.parametrize("method", METHODS)
def test_integer_extremes(dtype, method):
    info = np.iinfo(dtype)
    values = [int(info.min), int(info.min) + (int(info.max) - int(info.min)) // 2, int(info.max)]
    img = np.repeat(np.array(values, dtype), 8).reshape(4, 6)
    res = cluster_image(img, 3, method)
    check_result(res, 3)
    np.testing.assert_array_equal(res.centers[:, 0], np.array(values, np.float64))
    assert res.inertia == 0


def test_uint64_above_2_63_and_int64_full_span():
    u = np.array([[0, 2**63, 2**64 - 1, 5]], np.uint64)
    res = cluster_image(u, 2)
    check_result(res, 2)
    np.testing.assert_allclose(res.centers[:, 0], [2.5, (2**63 + 2**64 - 1) / 2], rtol=1e-15)
    i = np.array([[-(2**63), 2**63 - 1, 0, 1]], np.int64)
    res = cluster_image(i, 3)
    check_result(res, 3)
    np.testing.assert_allclose(res.centers[:, 0], [-(2.0**63), 0.5, 2.0**63], rtol=1e-15)


@pytest.mark.parametrize("dtype,base", [("uint64", 2**64 - 40), ("int64", -(2**63)), ("int64", 2**63 - 40)])
def test_exact_path_far_from_zero(dtype, base):
    values = np.array([base, base + 3, base + 3, base + 30], dtype)[:, None]
    red = reduce_pixels(values)
    assert red.exact
    np.testing.assert_array_equal(red.raw_points[:, 0], [float(base), float(base + 3), float(base + 30)])
    np.testing.assert_array_equal(red.weights, [1, 2, 1])


# item 7: one outlier must not collapse a float image onto a few grid cells
@pytest.mark.parametrize("method", METHODS)
def test_float_outlier_keeps_levels_apart(method):
    img = np.repeat(np.arange(4, dtype=np.float32), 64 * 256).reshape(256, 256)
    img[0, 0] = 1e6
    res = cluster_image(img, 5, method)
    check_result(res, 5)
    np.testing.assert_array_equal(res.centers[:, 0], [0, 1, 2, 3, 1e6])
    check_result(cluster_image(img, 3, method), 3)
    res = cluster_image(img, 2, method, normalize="percentile")
    check_result(res, 2)
    clipped = np.clip(img, 0, 3) / 3  # the percentiles are 0 and 3: the outlier is clipped to 1
    expected = sum(((c - c.mean()) ** 2).sum() for c in (clipped[res.labels == j] for j in (1, 2)))
    assert res.inertia == pytest.approx(expected, rel=1e-6)
    if method == "kmeans":
        assert sorted(res.counts.tolist()) == [32767, 32769] and expected == pytest.approx(65536 / 36)


def test_continuous_values_with_outlier():
    img = np.random.default_rng(1).random((256, 256))
    img[0, 0] = 1e6
    res = cluster_image(img, 3)
    check_result(res, 3)
    assert res.counts[-1] == 1 and min(res.counts[:2]) > 20000  # the bulk is split, not lumped
    rgb = np.random.default_rng(2).random((256, 256, 3)).astype(np.float32)
    rgb[:128] += 1
    rgb[0, 0] = 1e6
    res = cluster_image(rgb, 3, rgb=True)
    check_result(res, 3)
    assert sorted(res.counts.tolist()) == [1, 32767, 32768]


def test_regular_grid_for_ordinary_floats():
    values = np.random.default_rng(3).standard_normal((100_000, 3)).astype(np.float32)
    lo, hi = values.min(0).astype(float), values.max(0).astype(float)
    assert grid_coder(values, lo, hi, 101).edges is None
    values[0] = 1e6
    coder = grid_coder(values, values.min(0).astype(float), values.max(0).astype(float), 101)
    assert coder.edges is not None and all(e is not None for e in coder.edges)


# item 9: the sampled path with a fit selection; values beyond float32
def test_fit_stride_keeping_only_masked_pixels():
    img = np.random.default_rng(4).random((64, 64, 6)).astype(np.float32)
    mask = np.ones((64, 64), bool)
    mask[::2] = False
    for channels in (slice(None), slice(0, 1)):
        with pytest.raises(ValueError, match=r"no valid pixels to fit on: fit_stride=2"):
            cluster_image(img[..., channels], 3, channel_axis=2, mask=mask, fit_stride=2)
    mask[:] = True
    mask[:10] = False
    check_result(cluster_image(img, 3, channel_axis=2, mask=mask, fit_stride=2), 3, ~mask)


@pytest.mark.parametrize("channels", [1, 3, 6])
def test_values_beyond_float32(channels):
    img = np.random.default_rng(5).random((32, 32, channels))
    img[:16] += 2
    img[0, 0, 0] = 1e39
    res = cluster_image(img, 3, channel_axis=2)
    check_result(res, 3)
    if channels == 1:  # minmax: the outlier is far from all, the rest near 0
        assert res.labels[0, 0] == 3 and res.counts[-1] == 1
    assert res.centers[res.labels[0, 0] - 1, 0] > 1e35
    img[0, 0, 0] = -1e200
    with pytest.raises(ValueError, match=r"magnitude up to 1e\+200 are too large"):
        cluster_image(img, 3, channel_axis=2)


# item 11: nothing left to cluster
@pytest.mark.parametrize("method", METHODS)
def test_no_valid_pixels(method):
    with pytest.raises(ValueError, match=r"no valid pixels"):
        cluster_image(np.zeros((8, 8)), 2, method, mask=np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match=r"no valid pixels"):
        cluster_image(np.full((8, 8, 6), np.nan), 2, method, channel_axis=2)


# K-means never returns an empty cluster when the points allow k
def test_weighted_kmeans_fills_a_cluster_emptied_by_the_last_update():
    points = np.array([[0.0], [1.0], [10.0], [11.0]])
    centers, labels, *_ = run(
        weighted_kmeans(
            points, np.ones(4), 3, rng=np.random.default_rng(0), init=[[0.0], [0.5], [100.0]], max_iter=1
        )
    )
    assert np.unique(labels).size == 3
    assert np.all(np.isfinite(centers))


def test_normalizer_never_writes_into_its_input():
    from napari_cluster_seg.core.normalize import Normalizer

    norm = Normalizer(np.array([1.0]), np.array([2.0]), np.array([1.0]), np.array([3.0]))
    values = np.array([[0.0], [2.0], [9.0]])
    view = values.view(np.dtype("float64", metadata={"equal": "but not identical"}))
    for v in (values, view):
        np.testing.assert_array_equal(norm(v)[:, 0], [0.0, 0.5, 1.0])
        np.testing.assert_array_equal(values[:, 0], [0.0, 2.0, 9.0])


@pytest.mark.parametrize("channels", [1, 3, 6])
@pytest.mark.parametrize("method", METHODS)
def test_values_too_small_for_squares(channels, method):
    img = np.repeat(np.arange(4.0), 16).reshape(8, 8, 1).repeat(channels, axis=2) * 1e-300
    with pytest.raises(ValueError, match=r"magnitude at most 3e-300 are too small"):
        cluster_image(img, 2, method, channel_axis=2, normalize="percentile")
    check_result(cluster_image(img * 1e300, 2, method, channel_axis=2, normalize="percentile"), 2)


def test_multichannel_coreset_with_outlier():
    """More than FIT_POINTS points whose regular coreset grid collapses onto 2 cells (was
    scikit-learn's "n_samples=2 should be >= n_clusters=3")."""
    rgb = np.random.default_rng(2).random((512, 512, 3)).astype(np.float32)
    rgb[:256, :, 0] += 0.5
    rgb[0, 0] = 1e6
    assert reduce_pixels(rgb.reshape(-1, 3)).n_points > 2**16
    res = cluster_image(rgb, 3, rgb=True)
    check_result(res, 3)
    assert res.counts[-1] == 1 and res.labels[0, 0] == 3


def test_sampled_percentile_inertia_in_the_clipped_space():
    img = np.random.default_rng(6).random((64, 64, 6))
    img[:32] += 1
    img[0, 0, :] = 1e6
    res = cluster_image(img, 2, channel_axis=2, normalize="percentile")
    check_result(res, 2)
    flat = img.reshape(-1, 6)
    lo, hi = (np.percentile(flat, q, axis=0, method="inverted_cdf") for q in (1, 99))
    norm = (np.clip(flat, lo, hi) - lo) / (hi - lo)
    lab = res.labels.ravel()
    expected = sum(((norm[lab == j] - norm[lab == j].mean(0)) ** 2).sum() for j in (1, 2))
    assert res.inertia == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("method", ["agglomerative", "divisive"])
def test_connected_beyond_float32(method):
    img = np.random.default_rng(7).random((40, 40))
    img[:20] += 2
    img[0, 0] = 1e39
    for normalize in ("none", "minmax"):
        res = cluster_image(img, 3, method, connected=True, normalize=normalize)
        check_result(res, 3)


def _labels_sum_of_squares(res, image):
    """The exact within-cluster sum of squares of the labels, in the normalised space (longdouble)."""
    norm = res.model.normalizer
    feats = (image.reshape(-1, 1).astype(np.longdouble) - norm.offset) / norm.scale
    flat = res.labels.ravel()
    return float(
        sum(((feats[flat == i] - feats[flat == i].mean(axis=0)) ** 2).sum() for i in np.unique(flat))
    )


@pytest.mark.parametrize(
    "image",
    [
        np.array([[58618, 58618, 58618, 58617, 58617, 58617, 58617, 58617, 58617, 58618]], np.uint16),
        np.array([[0, 1, 2, 2] * 4], np.uint32) + np.uint32(10**8),
        (402512695 + np.random.default_rng(0).integers(0, 3, (16, 16))).astype(np.uint64),
        np.random.default_rng(0).random((16, 16)) * 1e-3 + 1e3,
        np.random.default_rng(1).random((16, 16)).astype(np.float32) + np.float32(3e4),
    ],
)
@pytest.mark.parametrize(
    "options",
    [
        {"method": "kmeans"},
        {"method": "agglomerative"},
        {"method": "agglomerative", "connected": True},
        {"method": "divisive", "connected": True},
    ],
)
def test_inertia_keeps_its_precision_at_a_large_offset(image, options):
    """Values at a large offset from zero against their spread: the inertia is computed about a
    reference value within the values' range, not as ``sum(x**2) - sum(sums * means)`` (which left
    0 instead of 0.125 at 10**8 + {0, 1, 2})."""
    res = cluster_image(image, 2, normalize="minmax", **options)
    # superpixel means are float64 sums of values at the offset (relative error ~1e-8 here)
    rel = 1e-7 if options.get("connected") else 1e-9
    assert res.inertia == pytest.approx(_labels_sum_of_squares(res, image), rel=rel, abs=1e-12)


@pytest.mark.parametrize("offset", [np.float64(58617), np.float64(3e4)])
def test_inertia_at_an_offset_with_many_features(offset):
    """The sampled path (5 features: every pixel to its nearest centre) sums squares about a
    reference value too."""
    image = np.random.default_rng(0).random((16, 16)) + offset
    res = cluster_image(image, 2, filters=("gaussian", "log"), scales=(1.0, 2.0))
    feats = res.model.transform(image).reshape(-1, res.model.points.shape[1]).astype(np.float64)
    flat = res.labels.ravel()
    expected = sum(((feats[flat == i] - feats[flat == i].mean(axis=0)) ** 2).sum() for i in (1, 2))
    assert res.inertia == pytest.approx(expected, rel=1e-4)


def test_scan_inertia_at_a_large_offset():
    """The elbow curve of scan_n_clusters uses the same sums: exact at a large offset too."""
    from napari_cluster_seg import scan_n_clusters

    image = np.array([[0, 1, 2, 2] * 4], np.uint32) + np.uint32(10**8)
    scan = scan_n_clusters(image, 3)
    assert scan.inertia[0] == pytest.approx(cluster_image(image, 2).inertia, rel=1e-9)
    assert scan.inertia[0] == pytest.approx(0.125 * 4, rel=1e-9)


@pytest.mark.parametrize(
    "dtype, value, filters",
    [("uint64", np.iinfo(np.uint64).max, ("structure",)), ("float32", 3e38, ("gradient",))],
)
def test_filter_features_that_overflow_float32_are_refused_by_name(dtype, value, filters):
    """N1: finite values whose filter responses overflow float32 (the structure tensor squares
    them) gave NaN features and scikit-learn's "Input contains NaN"; now a ValueError naming the
    feature. The same image without that filter clusters."""
    img = np.zeros((8, 8), dtype)
    img[:, 4:] = value
    with pytest.raises(ValueError, match=rf"the feature '{filters[0]}.*' overflows float32"):
        cluster_image(img, 2, filters=filters, scales=(1.0,))
    check_result(cluster_image(img, 2), 2)


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_smoothing_float64_values_beyond_float32(method):
    """Smoothing float64 values beyond float32's range works in float64 (it cast them to inf)."""
    img = np.zeros((8, 8))
    img[:, 4:] = 1e39
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = cluster_image(img, 2, method, connected=method != "kmeans", smoothing=1.0)
    check_result(res, 2)
    assert np.array_equal(res.labels[:, 4:] == 2, np.ones((8, 4), bool))
    assert 1e38 < res.centers[1, 0] <= 1e39


@pytest.mark.parametrize("numba", [True, False])
def test_predict_breaks_exact_ties_as_the_fit_did(numba, monkeypatch):
    """A point exactly halfway between two centres (pixel 6: 0.375, between 0.3125 and 0.4375) gets
    the same label from the model as in the result: the model keeps the centres in the order the
    fit assigned the points in."""
    if not numba:
        monkeypatch.setattr(_accel, "_module", None)
    img = np.zeros((1, 9), bool)
    res = cluster_image(img, 4, random_state=1, n_init=1, spatial_weight=0.5, intensity=False)
    np.testing.assert_array_equal(res.model.predict(img), res.labels)
    again = ClusterModel.from_dict(json.loads(json.dumps(res.model.to_dict())))
    np.testing.assert_array_equal(again.predict(img), res.labels)


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("normalize", ["zscore", "minmax"])
@pytest.mark.parametrize("method", ["agglomerative", "divisive"])
def test_float32_extremes_normalised_without_overflow(numba, normalize, method, monkeypatch):
    """float32 values of +-3.4e38 normalised in float32 overflowed (6.8e38 from the offset): SLIC got
    inf / NaN and scikit-image refused them. Such parameters normalise in float64."""
    if not numba:
        monkeypatch.setattr(_accel, "_module", None)
    f32 = np.finfo(np.float32).max
    img = np.array([[f32, f32, -f32, -f32, -f32]], np.float32)
    res = cluster_image(img, 2, method, connected=True, normalize=normalize, random_state=0)
    check_result(res, 2)
    np.testing.assert_array_equal(res.labels, [[2, 2, 1, 1, 1]])


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("method", METHODS)
def test_huge_channel_values_behind_coordinate_features_are_refused(numba, method, monkeypatch):
    """Clustered on coordinates only (intensity=False), the centres are still the channel values'
    means: values of 1.8e308 summed to inf. They are refused by name, as without features."""
    if not numba:
        monkeypatch.setattr(_accel, "_module", None)
    img = np.full(6, np.finfo(np.float64).max)
    with pytest.raises(ValueError, match=r"magnitude up to 1.8e\+308 are too large to cluster"):
        cluster_image(img, 2, method, spatial_weight=0.5, intensity=False)
    check_result(cluster_image(img / 1e200, 2, method, spatial_weight=0.5, intensity=False), 2)


@pytest.mark.parametrize("normalize", ["zscore", "minmax"])
def test_transform_of_subnormal_float32_values(normalize):
    """float32 values 1.4e-45 apart have a scale (and zscore offset) of ~7e-46, 0 in float32: the
    model's float32 transform divided by zero (NaN, inf) while the fit, in float64, gave -1 and 1."""
    img = np.array([[0.0, 1e-45, 1e-45, 0.0]], np.float32)
    res = cluster_image(img, 2, normalize=normalize, smoothing=0.5)
    check_result(res, 2)
    feats = res.model.transform(img)[0, :, 0]
    assert np.all(np.isfinite(feats))
    np.testing.assert_allclose(feats, res.feature_centers[res.labels[0] - 1, 0], rtol=1e-6)


@pytest.mark.parametrize("numba", [True, False])
def test_nearest_unit_of_values_one_ulp_apart(numba, monkeypatch):
    """Two values one ulp apart: numpy's nearest-point search expanded |f - c|² and tied them, so
    predict() labelled every pixel 1 where the fit (and the compiled kernel) gave 1, 2, 2, 2."""
    if not numba:
        monkeypatch.setattr(_accel, "_module", None)
    img = np.array([1.0, np.nextafter(1.0, 2.0), np.nextafter(1.0, 2.0), np.nextafter(1.0, 2.0)])
    res = cluster_image(img, 2, "divisive", normalize="none")
    np.testing.assert_array_equal(res.labels, [1, 2, 2, 2])
    np.testing.assert_array_equal(res.model.predict(img), res.labels)
    np.testing.assert_array_equal(assign_nearest(img[:, None], img[:2, None]), [0, 1, 1, 1])


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("connected", [False, True])
def test_feature_centres_and_inertia_at_an_offset_of_one_ulp(numba, connected, monkeypatch):
    """Values 1 and 1 + 1 ulp, min-max normalised to 0 and 1: a cluster's mean in input units
    (1 + ulp/7) rounds to 1, so its feature centre was 0 (not 1/7) and the inertia 1.0 (not 6/7).
    Means are taken about a reference value."""
    if not numba:
        monkeypatch.setattr(_accel, "_module", None)
    one, up = 1.0, np.nextafter(1.0, 2.0)
    img = np.array([up, up, up, one, one, one, one, one, one, up])
    res = cluster_image(img, 2, "divisive", connected=connected, normalize="minmax")
    check_result(res, 2)
    feats = (img - one) / (up - one)
    means = np.array([feats[res.labels == i].mean() for i in (1, 2)])
    np.testing.assert_allclose(res.feature_centers[:, 0], means, atol=1e-12)
    expected = sum(((feats[res.labels == i] - means[i - 1]) ** 2).sum() for i in (1, 2))
    assert res.inertia == pytest.approx(expected, rel=1e-9, abs=1e-12)
    applied = res.model.apply(img)
    means = np.array([feats[applied.labels == i].mean() for i in (1, 2)])
    np.testing.assert_allclose(applied.feature_centers[:, 0], means, atol=1e-12)


def test_weighted_quantiles_are_the_inverted_cdf_with_one_sort():
    """Both percentile bounds come from one sort of each channel: the smallest value whose
    cumulative weight reaches each fraction, ties and zero weights included."""
    from napari_cluster_seg.core.normalize import weighted_quantile, weighted_quantiles

    rng = np.random.default_rng(3)
    values = rng.integers(0, 20, 500).astype(np.float64)
    weights = rng.integers(0, 4, 500).astype(np.float64)
    qs = [0.0, 0.01, 0.37, 0.5, 0.99, 1.0]
    got = weighted_quantiles(values, weights, qs)
    for q, value in zip(qs, got):
        distinct = np.unique(values)
        cum = np.array([weights[values <= v].sum() for v in distinct])
        assert value == distinct[np.argmax(cum >= q * weights.sum())]
        assert weighted_quantile(values, weights, q) == value
