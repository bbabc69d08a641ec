"""Odd but legal-looking input gives a result or a ValueError / TypeError that names the problem,
never an IndexError, MemoryError, NotImplementedError or a numba/numpy internal error (issue 14,
items 9 and 11; issue 18: table rows)."""

import numpy as np
import pytest
from skimage.measure import label as skimage_label

from napari_cluster_seg import cluster_image, cluster_table, compare_labels
from napari_cluster_seg.core import Dendrogram
from napari_cluster_seg.core.cleanup import clean_labels, equal_value_regions


def same_partition(a, b):
    """Whether two region numberings split the pixels the same way."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return pairs.shape[1] == np.unique(a).size == np.unique(b).size


# ------------------------------------------------------------------ clean-up on any ndim
def test_regions_of_4d_images_follow_the_same_rule_as_scikit_image():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (5, 6, 7)).astype(np.uint8)
    expected = skimage_label(labels, background=-1, connectivity=1)
    assert same_partition(equal_value_regions(labels[..., None]).reshape(labels.shape), expected)
    assert same_partition(equal_value_regions(labels[None, :, :, :, None]).reshape(labels.shape), expected)


def test_clean_labels_works_on_4d_images():
    rng = np.random.default_rng(1)
    labels3 = rng.integers(1, 3, (6, 7, 8)).astype(np.uint8)
    np.testing.assert_array_equal(
        clean_labels(labels3[..., None], min_size=3, hole_size=2)[..., 0],
        clean_labels(labels3, min_size=3, hole_size=2),
    )
    block = np.ones((4, 4, 4, 4), np.uint8)
    block[1, 2, 1, 2] = 2  # an island of one voxel in 4D
    block[3, 3, 3, 3] = 0  # label 0 never changes
    out = clean_labels(block, min_size=2)
    assert out[1, 2, 1, 2] == 1 and out[3, 3, 3, 3] == 0 and out.dtype == np.uint8


def test_min_size_on_a_4d_image(accel):
    rng = np.random.default_rng(2)
    img = rng.random((3, 4, 5, 6))
    res = cluster_image(img, 2, min_size=3)
    assert res.labels.shape == img.shape
    assert res.counts.tolist() == [int((res.labels == i).sum()) for i in (1, 2)]
    np.testing.assert_array_equal(res.labels, clean_labels(cluster_image(img, 2).labels, min_size=3))
    np.testing.assert_array_equal(res.model.predict(img), res.labels)


def test_clean_labels_on_large_label_values_and_bad_input():
    big = np.full((5, 5), 2**63 + 7, np.uint64)
    big[2, 2] = 2**64 - 1
    big[0, 0] = 0
    out = clean_labels(big, min_size=2)
    assert out[2, 2] == 2**63 + 7 and out[0, 0] == 0 and out.dtype == np.uint64
    with pytest.raises(ValueError, match=">= 0"):
        clean_labels(np.array([[1, -1], [1, 1]]), min_size=2)
    with pytest.raises(ValueError, match="time_axis=3"):
        clean_labels(np.ones((3, 3), np.uint8), min_size=2, time_axis=3)
    assert clean_labels(np.zeros((0, 4), np.uint8), min_size=2).shape == (0, 4)


# ------------------------------------------------------------------ connected methods
@pytest.mark.parametrize(
    "options",
    [
        {"method": "divisive"},
        {"method": "agglomerative", "linkage": "complete"},
        {"method": "agglomerative", "linkage": "ward"},
    ],
)
def test_connected_on_4d_without_a_time_axis_is_refused_up_front(options):
    img = np.random.default_rng(3).random((3, 4, 5, 6))
    with pytest.raises(ValueError, match="connected=True works on images with 1 to 3 spatial axes"):
        cluster_image(img, 2, connected=True, **options)
    labels = cluster_image(img, 2, connected=True, time_axis=0, **options).labels
    assert labels.shape == img.shape and set(np.unique(labels)) == {1, 2}


def _runs(labels):
    """Number of runs of equal labels along the last axis (connected 1D clusters: one per cluster)."""
    return 1 + np.count_nonzero(np.diff(labels.astype(int), axis=-1), axis=-1)


@pytest.mark.parametrize(
    "options",
    [
        {"method": "divisive"},
        {"method": "agglomerative", "linkage": "complete"},
        {"method": "agglomerative", "linkage": "ward"},
    ],
)
def test_connected_methods_on_1d_images(accel, options):
    rng = np.random.default_rng(4)
    signal = np.repeat([0.0, 1.0, 0.2, 0.9], 40) + rng.normal(0, 0.02, 160)
    labels = cluster_image(signal, 4, connected=True, **options).labels
    assert labels.shape == signal.shape and _runs(labels) == 4  # four contiguous pieces
    series = np.stack([signal, signal[::-1]])  # (t, x): frames of one axis
    out = cluster_image(series, 4, connected=True, time_axis=0, **options).labels
    assert out.shape == series.shape and set(np.unique(out)) == {1, 2, 3, 4}


@pytest.mark.parametrize(
    "options",
    [
        {"method": "divisive"},
        {"method": "agglomerative", "linkage": "average"},
        {"method": "agglomerative", "linkage": "ward"},
    ],
)
def test_an_empty_frame_in_a_time_series_with_connected_methods(accel, options):
    rng = np.random.default_rng(5)
    series = rng.random((3, 20, 20))
    mask = np.ones(series.shape, bool)
    mask[1] = False  # nothing to cluster in the middle frame
    labels = cluster_image(series, 3, connected=True, time_axis=0, mask=mask, max_units=64, **options).labels
    assert (labels[1] == 0).all() and (labels[[0, 2]] > 0).all()


# ------------------------------------------------------------------ compare_labels
def test_compare_labels_with_sparse_large_label_values():
    a = np.array([[1, 1, 10**9, 10**9], [0, 5, 5, 5]], np.int64)
    b = np.array([[2**63, 2**63, 2**64 - 1, 2**64 - 1], [9, 7, 7, 7]], np.uint64)
    comp = compare_labels(a, b)
    assert comp.ari == pytest.approx(1.0) and comp.n_pixels == 7
    assert comp.labels_a.tolist() == [0, 1, 5, 10**9]
    assert comp.labels_b.tolist() == [0, 7, 9, 2**63, 2**64 - 1]
    assert comp.contingency.shape == (4, 5) and comp.contingency.sum() == a.size
    assert comp.contingency[0, 2] == 1  # the pixel labelled 0 in a and 9 in b
    assert comp.contingency[3, 4] == 2  # 10**9 in a, 2**64 - 1 in b


def test_compare_labels_rows_are_the_labels_for_results():
    a = np.array([[1, 1, 2, 2], [3, 3, 0, 1]], np.uint8)
    b = np.array([[1, 2, 2, 2], [3, 3, 3, 0]], np.uint16)
    comp = compare_labels(a, b)
    expected = np.zeros((4, 4), np.int64)
    np.add.at(expected, (a.ravel(), b.ravel()), 1)
    np.testing.assert_array_equal(comp.contingency, expected)
    assert comp.labels_a.tolist() == comp.labels_b.tolist() == [0, 1, 2, 3]


# ------------------------------------------------------------------ dendrogram
def hierarchical_result(linkage="ward"):
    img = np.repeat(np.array([0, 10, 20, 30, 100, 110], np.uint8), 4).reshape(4, 6)
    return cluster_image(img, 3, "agglomerative", linkage=linkage)


@pytest.mark.parametrize("k", [0, -1, 7, 2.5, "3", True])
def test_cut_height_of_an_impossible_k_is_a_value_error(k):
    d = hierarchical_result().dendrogram()
    with pytest.raises(ValueError, match=f"between 1 and {d.n_leaves}"):
        d.cut_height(k)


def test_clusters_at_needs_a_number_and_max_leaves_an_integer():
    res = hierarchical_result()
    with pytest.raises(TypeError, match="height must be a number"):
        res.dendrogram().clusters_at("1.0")
    with pytest.raises(TypeError, match="max_leaves"):
        res.dendrogram("30")


def test_cut_height_with_tied_merges_is_the_tied_height():
    # merges at 1, 2, 2, 3 over 5 leaves: no horizontal cut leaves 3 clusters
    Z = np.array([[0, 1, 1.0, 2], [2, 3, 2.0, 2], [4, 5, 2.0, 3], [6, 7, 3.0, 5]])
    d = Dendrogram(Z, np.arange(1, 6), 3)
    for k in (1, 2, 4, 5):
        assert d.clusters_at(d.cut_height(k)) == k
    assert d.cut_height(3) == 2.0 and d.clusters_at(2.0) == 2  # all merges at 2 are done there
    # merges at height 0 (equal leaves): every leaf apart is not a cut
    d0 = Dendrogram(np.array([[0, 1, 0.0, 2], [2, 3, 1.0, 3]]), np.array([1, 1, 2]), 2)
    assert d0.cut_height(3) == 0.0 and d0.clusters_at(0.0) == 2 and d0.clusters_at(d0.cut_height(2)) == 2


def test_cut_height_of_nearly_tied_merges():
    for low in (0.3, np.nextafter(0.3, 1.0)):  # an even and an odd last bit
        high = np.nextafter(low, 1.0)  # the mean of two neighbouring floats rounds to one of them
        d = Dendrogram(np.array([[0, 1, 0.1, 2], [2, 3, low, 3], [4, 5, high, 4]]), np.arange(1, 5), 2)
        for k in range(1, 5):
            assert d.clusters_at(d.cut_height(k)) == k


@pytest.mark.parametrize("linkage", ["single", "ward"])
def test_cut_height_agrees_with_clusters_at_on_results_with_ties(linkage):
    """Equally spaced levels tie under single linkage: every cuttable k round-trips, every other
    k gives its tied height, where the count is smaller."""
    d = hierarchical_result(linkage).dendrogram()
    heights = d.Z[:, 2]
    levels = np.concatenate([[0.0], heights, [np.inf]])  # the leaves at 0, nothing above the root
    n_ties = 0
    for k in range(1, d.n_leaves + 1):
        h = d.cut_height(k)
        if levels[d.n_leaves - k] < levels[d.n_leaves - k + 1]:  # a horizontal cut leaves k clusters
            assert d.clusters_at(h) == k
        else:
            n_ties += 1
            assert h in heights and d.clusters_at(h) < k
    assert n_ties > 0


# ------------------------------------------------------------------ cluster_table
def test_cluster_table_units_and_scale_of_the_wrong_length():
    res = cluster_image(np.array([[0, 0, 9, 9, 9, 9]], np.uint8), 2)
    with pytest.raises(ValueError, match=r"units=\('um',\) has 1 entries for 2 axes"):
        cluster_table(res, units=("um",))
    assert cluster_table(res, units="um")["size_unit"][0] == "um^2"
    for scale in ((1.0,), (1.0, np.nan), ("a", "b")):
        with pytest.raises(ValueError, match="scale"):
            cluster_table(res, scale=scale)
    with pytest.raises(ValueError, match="channel_names"):
        cluster_table(res, channel_names=("red", "green"))
    assert "mean_red" in cluster_table(res, channel_names=("red",))


def test_cluster_table_has_rows_only_for_labels_with_pixels(accel):
    img = np.zeros((20, 20), np.uint8)
    img[:, 10:] = 128
    img[5, 5] = 255  # its own cluster of one pixel, removed by the clean-up
    res = cluster_image(img, 3, min_size=2)
    assert res.counts.tolist() == [200, 200, 0]
    table = cluster_table(res)
    assert table["index"].tolist() == table["label"].tolist() == [1, 2]
    assert table["pixels"].tolist() == [200, 200]
    assert all(len(column) == 2 for column in table.values())
    applied = cluster_table(cluster_image(img, 3).model.apply(img[:, 10:]))  # only the bright half
    assert applied["label"].tolist() == [2] and applied["fraction"].tolist() == [1.0]


# ------------------------------------------------------------------ options that must be bools
@pytest.mark.parametrize("name", ["rgb", "connected", "intensity"])
@pytest.mark.parametrize("value", ["no", "False", 0, 1, None])
def test_boolean_options_must_be_bools(name, value):
    img = np.random.default_rng(6).random((8, 8, 3))
    options = {"method": "agglomerative"}
    options[name] = value
    with pytest.raises(TypeError, match=f"{name} must be True or False, got {value!r}"):
        cluster_image(img, 2, **options)


@pytest.mark.parametrize(
    "options",
    [
        {"normalize": "percentile", "percentiles": (0, 10**400)},
        {"smoothing": 10**400},
        {"spatial_weight": 10**400},
        {"filters": ("log",), "scales": (10**400,)},
        {"spacing": (10**400, 1)},
    ],
)
def test_integers_beyond_floats_range_are_a_value_error(options):
    with pytest.raises(ValueError, match=list(options)[-1]):  # the option is named
        cluster_image(np.random.default_rng(8).random((6, 6)), 2, **options)


def test_compare_labels_of_empty_images():
    for dtype in (np.uint8, np.int64):
        with pytest.raises(ValueError, match="no clustered pixel"):
            compare_labels(np.zeros((0, 3), dtype), np.zeros((0, 3), dtype))


def test_numpy_bools_and_numbers_where_numbers_are_due():
    img = np.random.default_rng(7).random((8, 8, 3))
    res = cluster_image(img, 2, "agglomerative", rgb=np.True_, connected=np.False_)
    assert res.params.rgb is True and res.params.connected is False
    for name in ("smoothing", "spatial_weight"):
        with pytest.raises(ValueError, match=name):
            cluster_image(img, 2, **{name: True})


@pytest.mark.parametrize(
    "args, options",
    [
        ((np.zeros((4, 4), np.uint8), 2), {}),
        ((np.full((4, 4, 5), 7.0), 3), {"channel_axis": -1}),
        (
            (np.zeros((4, 4)), 2, "agglomerative"),
            {"connected": True, "mask": np.arange(16).reshape(4, 4) == 3},
        ),
        ((np.zeros(2, bool), 2, "divisive"), {"connected": True, "mask": np.array([False, True])}),
    ],
)
def test_refusals_never_advise_an_impossible_k(args, options):
    """One distinct value (or pixel) left: the message says the image cannot be clustered instead
    of advising "n_clusters <= 1" (or "<= 0": a superpixel count of 0 for a single valid pixel)."""
    with pytest.raises(ValueError, match=r"there is only one .*so it cannot be clustered") as info:
        cluster_image(*args, **options)
    assert "n_clusters <=" not in str(info.value)


def test_dendrogram_heights_never_decrease_at_rounding_level():
    """Divisive sums of squares of values one ulp apart are rounding noise; the drawn tree's heights
    still never decrease, so cut_height(k) and clusters_at agree (or the cut passes through a tie)."""
    img = np.full(46, float.fromhex("0x1.3cc4ac6cdaf4cp-6"))  # 0.019334: its squares round
    res = cluster_image(img, 2, "divisive", connected=True, normalize="none")
    d = res.dendrogram()
    heights = d.Z[:, 2]
    assert np.all(np.diff(heights) >= 0)
    n = d.n_leaves
    for k in range(2, n + 1):
        tied = (k < n and heights[n - k] == heights[n - k - 1]) or (k == n and heights[0] == 0)
        left = d.clusters_at(d.cut_height(k))
        assert left < k if tied else left == k


def test_model_predicts_an_array_like_without_ndim():
    """Anything with shape and dtype (and __array__) is an image for the model, as for cluster_image."""

    class Lazy:
        def __init__(self, array):
            self._array, self.shape, self.dtype = array, array.shape, array.dtype

        def __array__(self, dtype=None, copy=None):
            return self._array

    img = np.arange(64, dtype=np.uint8).reshape(8, 8)
    res = cluster_image(img, 3)
    np.testing.assert_array_equal(res.model.predict(Lazy(img)), res.labels)


def test_connected_on_a_large_frame_whose_mask_the_downsampling_would_miss(monkeypatch):
    """SLIC runs on every factor-th pixel of frames over MAX_SLIC_PIXELS (2**20) pixels; a mask of odd
    pixels only must not leave it an empty image (it picks the phase that keeps the valid pixels).
    The limit is lowered to 2**14 here: the same downsampling (factor 2) on a 140x130 frame instead of
    a 1100x1000 one."""
    from napari_cluster_seg.core import regions

    monkeypatch.setattr(regions, "MAX_SLIC_PIXELS", 2**14)
    img = np.random.default_rng(0).random((140, 130)).astype(np.float32)
    mask = np.zeros(img.shape, bool)
    mask[1::2, 1::2] = True
    res = cluster_image(img, 2, "divisive", connected=True, mask=mask)
    assert np.all(res.labels[mask] > 0) and np.all(res.labels[~mask] == 0)
    assert res.counts.sum() == mask.sum()
