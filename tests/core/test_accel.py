"""The optional numba kernels agree with the numpy code they replace."""

import numpy as np
import pytest

from napari_cluster_seg import cluster_image
from napari_cluster_seg.core import _accel
from napari_cluster_seg.core import reduce as reduce_mod
from napari_cluster_seg.core.kmeans import assign_nearest, weighted_kmeans

pytest.importorskip("numba")


@pytest.fixture(autouse=True)
def compiled():
    if not _accel.enabled():
        pytest.skip("numba kernels disabled (NAPARI_CLUSTER_SEG_NUMBA=0)")


def numpy_reference(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with the kernels switched off."""
    saved = _accel._module
    _accel._module = None
    try:
        return fn(*args, **kwargs)
    finally:
        _accel._module = saved


def test_rgb_counting_and_lookup_equal_numpy():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 40, (20000, 3)).astype(np.uint8)
    values[:5] = 255  # the top of the code space
    coder = reduce_mod.Coder(lo=np.zeros(3, np.int64), levels=np.full(3, 256, np.int64))
    assert _accel.rgb8(values, coder)
    occupied, counts = _accel.count_rgb8(values)
    expected, expected_counts = np.unique(coder.codes(values), return_counts=True)
    np.testing.assert_array_equal(occupied, expected)
    np.testing.assert_array_equal(counts, expected_counts)

    lut = rng.integers(0, 200, 2**24).astype(np.uint8)
    out = _accel.lookup_rgb8(values, lut, np.empty(values.shape[0], np.uint8))
    np.testing.assert_array_equal(out, lut[coder.codes(values)])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grey_histogram_and_lookup_equal_numpy(dtype):
    rng = np.random.default_rng(1)
    top = int(np.iinfo(dtype).max)
    values = rng.integers(0, min(top, 3000), (50001, 1)).astype(dtype)
    values[7] = top  # the last bin
    np.testing.assert_array_equal(_accel.count_grey(values), np.bincount(values[:, 0]))
    np.testing.assert_array_equal(_accel.count_grey(np.zeros((3, 1), dtype)), [3])
    lut = rng.integers(0, 9, top + 1).astype(np.uint8)
    out = _accel.lookup_grey(values, lut, np.empty(values.shape[0], np.uint8))
    np.testing.assert_array_equal(out, lut[values[:, 0]])


def test_colour_kernels_only_take_uint8_rgb_coded_from_zero():
    coder = reduce_mod.Coder(lo=np.zeros(3, np.int64), levels=np.full(3, 256, np.int64))
    assert not _accel.rgb8(np.zeros((4, 3), np.uint16), coder)
    assert not _accel.rgb8(
        np.zeros((4, 2), np.uint8), reduce_mod.Coder(lo=np.zeros(2), levels=np.full(2, 256))
    )
    assert not _accel.rgb8(
        np.zeros((4, 3), np.uint8), reduce_mod.Coder(lo=np.ones(3), levels=np.full(3, 255))
    )
    assert not _accel.grey(np.zeros((4, 1), np.int16))
    assert not _accel.grey(np.zeros((4, 2), np.uint16))


def test_rgb_reduction_and_labelling_equal_numpy():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 256, (30000, 3)).astype(np.uint8)
    values[::7] = values[0]  # repeated colours
    red = reduce_mod.reduce_pixels(values)
    ref = numpy_reference(reduce_mod.reduce_pixels, values)
    np.testing.assert_array_equal(red.codes, ref.codes)
    np.testing.assert_array_equal(red.weights, ref.weights)
    np.testing.assert_array_equal(red.raw_points, ref.raw_points)
    per_point = (np.arange(red.n_points) % 7).astype(np.uint8)
    out = red.map_pixels(values, per_point, np.empty(values.shape[0], np.uint8))
    ref_out = numpy_reference(red.map_pixels, values, per_point, np.empty(values.shape[0], np.uint8))
    np.testing.assert_array_equal(out, ref_out)


@pytest.mark.parametrize("n", [5000, _accel.PARALLEL_ROWS + 5])  # serial and parallel builds
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nearest_centre_equals_numpy(dtype, n):
    rng = np.random.default_rng(2)
    points = rng.normal(size=(n, 4)).astype(dtype)
    centers = rng.normal(size=(6, 4))
    labels, d2 = assign_nearest(points, centers, return_distances=True)
    d = ((points[:, None, :].astype(np.float64) - centers[None].astype(dtype)) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, np.argmin(d, axis=1))
    np.testing.assert_allclose(d2, d.min(axis=1), rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_ties_go_to_the_lower_centre():
    points = np.array([[0.0], [1.0], [2.0]])
    centers = np.array([[0.5], [1.5], [0.5]])  # point 1 is as far from all three
    np.testing.assert_array_equal(assign_nearest(points, centers), [0, 0, 1])


@pytest.mark.parametrize("n", [100, _accel.PARALLEL_ROWS + 3])  # serial and parallel builds
def test_lloyd_pass_and_group_sums_equal_numpy_and_repeat_exactly(n):
    rng = np.random.default_rng(3)
    points = rng.normal(size=(n, 3))
    weights = rng.integers(1, 9, n).astype(np.float64)
    centers = points[:5].copy()
    labels, sums, wsum, cost = _accel.lloyd_pass(points, weights, centers)
    d = ((points[:, None, :] - centers[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, d.argmin(axis=1))
    np.testing.assert_allclose(wsum, np.bincount(labels, weights, minlength=5), rtol=1e-12)
    for c in range(3):
        np.testing.assert_allclose(sums[:, c], np.bincount(labels, weights * points[:, c], 5), rtol=1e-10)
    assert cost == pytest.approx(float(weights @ d.min(axis=1)), rel=1e-12)
    again = _accel.lloyd_pass(points, weights, centers)
    assert again[3] == cost and np.array_equal(again[1], sums)  # the same sums bit for bit

    w2, s2 = _accel.group_sums(labels, weights, points, 5)
    np.testing.assert_array_equal(w2, wsum)
    np.testing.assert_array_equal(s2, sums)


def test_tree_cuts_equal_numpy_s():
    from scipy.cluster.hierarchy import linkage

    from napari_cluster_seg.core.hierarchy import LinkageTree, roots_after

    Z = linkage(np.random.default_rng(6).random((300, 2)), "ward")
    for n_merges in (0, 1, 150, 299):
        np.testing.assert_array_equal(
            roots_after(Z, 300, n_merges), numpy_reference(roots_after, Z, 300, n_merges)
        )
    tree = LinkageTree(Z, 300)
    for k in (1, 7, 300):
        np.testing.assert_array_equal(tree.cut(k), numpy_reference(tree.cut, k))


def test_cell_codes_are_exactly_numpy_s():
    rng = np.random.default_rng(4)
    points = rng.random((_accel.PARALLEL_ROWS + 10000, 3)) * [10, 1, 1000]
    points[0] = points.min(axis=0)
    points[1] = points.max(axis=0)  # the last cell, not one past it
    lo, hi = points.min(axis=0), points.max(axis=0)
    for levels in (2, 17, 101):
        codes = reduce_mod._cell_codes(points, levels, lo, hi - lo)
        ref = numpy_reference(reduce_mod._cell_codes, points, levels, lo, hi - lo)
        np.testing.assert_array_equal(codes, ref)
        assert codes.max() < levels**3
        small = reduce_mod._cell_codes(points[:1000], levels, lo, hi - lo)  # the serial build
        np.testing.assert_array_equal(small, ref[:1000])


def test_weighted_kmeans_matches_numpy():
    rng = np.random.default_rng(5)
    points = np.concatenate([rng.normal(c, 0.3, (500, 2)) for c in ((0, 0), (3, 0), (0, 3))])
    weights = rng.integers(1, 5, points.shape[0]).astype(np.float64)

    def run():
        gen = weighted_kmeans(points, weights, 3, rng=np.random.default_rng(0), n_init=2)
        try:
            while True:
                next(gen)
        except StopIteration as done:
            return done.value

    centers, labels, wcss = run()
    ref_centers, ref_labels, ref_wcss = numpy_reference(run)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(centers, ref_centers, rtol=1e-12)
    assert wcss == pytest.approx(ref_wcss, rel=1e-12)


@pytest.mark.parametrize(
    "method, kwargs",
    [
        ("kmeans", {}),
        ("kmeans", {"color_space": "lab"}),
        ("agglomerative", {}),
        ("divisive", {}),
        ("agglomerative", {"connected": True}),
    ],
)
def test_cluster_image_gives_numpy_s_result(method, kwargs):
    from skimage import data, transform

    photo = (transform.resize(data.astronaut(), (192, 192), preserve_range=True) + 0.5).astype(np.uint8)
    res = cluster_image(photo, 5, method, rgb=True, random_state=0, **kwargs)
    ref = numpy_reference(cluster_image, photo, 5, method, rgb=True, random_state=0, **kwargs)
    assert np.mean(res.labels == ref.labels) > 0.9999
    assert res.inertia == pytest.approx(ref.inertia, rel=1e-9)
    np.testing.assert_allclose(res.centers, ref.centers, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_grey_cluster_image_gives_numpy_s_result(dtype, method):
    from skimage import data

    image = data.camera().astype(dtype) * (1 if dtype == np.uint8 else 200)
    res = cluster_image(image, 4, method)
    ref = numpy_reference(cluster_image, image, 4, method)
    np.testing.assert_array_equal(res.labels, ref.labels)
    assert res.inertia == pytest.approx(ref.inertia, rel=1e-12)
    np.testing.assert_allclose(res.centers, ref.centers, rtol=1e-12)


def test_the_environment_variable_switches_the_kernels_off(monkeypatch):
    monkeypatch.setattr(_accel, "_module", _accel._UNSET)
    monkeypatch.setenv("NAPARI_CLUSTER_SEG_NUMBA", "0")
    assert not _accel.enabled()
    monkeypatch.setattr(_accel, "_module", _accel._UNSET)
    monkeypatch.setenv("NAPARI_CLUSTER_SEG_NUMBA", "1")
    assert _accel.enabled()


@pytest.mark.parametrize("method", ["ward", "single", "complete", "average"])
def test_nearest_neighbour_chain_equals_numpy(method):
    from napari_cluster_seg.core.hierarchy import weighted_linkage

    rng = np.random.default_rng(6)
    points = rng.normal(size=(300, 3))
    points[50:60] = points[0]  # ties
    weights = rng.integers(1, 20, 300).astype(np.float64)
    Z = weighted_linkage(points, weights, method)
    ref = numpy_reference(weighted_linkage, points, weights, method)
    np.testing.assert_array_equal(Z[:, [0, 1, 3]], ref[:, [0, 1, 3]])
    np.testing.assert_allclose(Z[:, 2], ref[:, 2], rtol=1e-12)
