"""The optional numba kernels agree with the numpy code they replace."""

import numpy as np
import pytest

from napari_cluster_seg import cluster_image
from napari_cluster_seg.core import _accel, _builds, units
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


@pytest.mark.parametrize("normalize", ["minmax", "percentile"])
def test_cluster_statistics_equal_numpy_at_a_large_offset(normalize):
    """The compiled two passes of the sum of squares (about the reference) give numpy's wcss and
    feature means, also at an offset that leaves no digit to a sum of squares about zero."""
    from napari_cluster_seg.core._chunks import reference, square_sums
    from napari_cluster_seg.core._stats import cluster_stats
    from napari_cluster_seg.core.normalize import fit_normalizer

    rng = np.random.default_rng(3)
    pixels = 1e8 + np.round(rng.normal(0, 3, (5000, 2)), 1)
    points, inverse = np.unique(pixels, axis=0, return_inverse=True)
    weights = np.bincount(inverse.ravel()).astype(np.float64)
    labels = (points[:, 0] > 1e8).astype(np.intp) + 2 * (points[:, 1] > 1e8 + 2)
    total_sq = square_sums(pixels, reference(pixels))
    norm = fit_normalizer(points, weights, normalize)
    got = cluster_stats(points, weights, labels, 4, total_sq, norm)
    want = numpy_reference(cluster_stats, points, weights, labels, 4, square_sums(pixels, total_sq.ref), norm)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-13)  # group sums: blocks vs bincount
    np.testing.assert_array_equal(got[1], want[1])
    assert got[2] == pytest.approx(want[2], rel=1e-9) and want[2] > 0
    # clipping: the features are the normalised means, which keep ~8 digits at this offset
    np.testing.assert_allclose(got[3], want[3], rtol=1e-12 if normalize == "minmax" else 1e-6)


@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("crowded", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grid_cell_sums_equal_numpy_chunk_by_chunk(monkeypatch, dtype, crowded, parts):
    """The compiled one-pass grid reduction of float rows gives numpy's cells, counts and means bit
    for bit (chunk sums started from zero, as numpy's per-chunk bincounts), over several chunks,
    summed one at a time or several at once in parallel (``parts``: the sums do not depend on it);
    also with boundaries (an outlier crowds the regular cells: quantile cuts). The labelling of
    the reduced pixels by their kept cells, the compiled labelling of other pixels by finding
    their cells, and numpy's agree."""
    from napari_cluster_seg.core._chunks import channel_range

    monkeypatch.setattr(reduce_mod, "CHUNK", 700)  # 3 chunks of 2 * 700 rows and a rest
    monkeypatch.setattr(reduce_mod, "n_workers", lambda: parts)
    monkeypatch.setattr(_accel, "PARALLEL_ROWS", 1000)  # the parallel build from 1000 rows
    rng = np.random.default_rng(5)
    values = (rng.random((4500, 3)) * [1, 50, 1e4] - [0, 25, 3]).astype(dtype)
    if crowded:
        values[:, 1] = np.round(rng.normal(0, 1, 4500), 2)
        values[7, 1], values[8, 2] = 1e6, -1e7
    lo, hi = channel_range(values)
    coder = reduce_mod.grid_coder(values, lo, hi, 13)
    assert (coder.edges is not None) == crowded
    assert reduce_mod._compiled_cells(values, coder)
    red = reduce_mod.reduce_pixels(values, levels=13)
    assert red.pixel_codes is not None
    table = rng.integers(0, 100, red.coder.space).astype(np.int16)[red.codes]
    by_codes = red.map_pixels(values, table, np.empty(4500, np.int16))
    by_cells = red.map_pixels(values.copy(), table, np.empty(4500, np.int16))  # not the rows reduced
    want_labels = numpy_reference(red.map_pixels, values.copy(), table, np.empty(4500, np.int16))
    np.testing.assert_array_equal(by_codes, want_labels)
    np.testing.assert_array_equal(by_cells, want_labels)
    other = values[::-1].copy()  # other rows: their own cells, not the kept ones
    want_other = numpy_reference(red.map_pixels, other, table, np.empty(4500, np.int16))
    np.testing.assert_array_equal(red.map_pixels(other, table, np.empty(4500, np.int16)), want_other)
    np.testing.assert_array_equal(want_other, want_labels[::-1])
    np.testing.assert_array_equal(red.pixel_codes, numpy_reference(red.coder.codes, values))
    want = numpy_reference(reduce_mod._cell_sums, values, coder)
    codes = np.empty(4500, np.int32)  # kept codes: cells found first, sums into occupied cells only
    for got in (reduce_mod._cell_sums(values, coder), reduce_mod._cell_sums(values, coder, codes)):
        for a, b in zip(got[:3], want[:3]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(got[3].ref, want[3].ref)
        np.testing.assert_allclose(got[3].sq, want[3].sq, rtol=1e-12)
    np.testing.assert_array_equal(codes, numpy_reference(coder.codes, values))


@pytest.mark.parametrize("levels", [(256, 256, 256), (255, 256, 300)])
def test_exact_reduction_of_colours_equals_numpy(levels):
    """Decoding the distinct codes (a mask and shift for powers of two, a division otherwise) and
    the weighted squares about the reference give numpy's reduction."""
    rng = np.random.default_rng(6)
    coder = reduce_mod.Coder(lo=np.zeros(3, np.int64), levels=np.array(levels, np.int64))
    occupied = np.unique(rng.integers(0, coder.space, 30000))
    counts = rng.integers(1, 1000, occupied.size)
    got = reduce_mod.exact_reduction(coder, occupied, counts)
    want = numpy_reference(reduce_mod.exact_reduction, coder, occupied, counts)
    np.testing.assert_array_equal(got.raw_points, want.raw_points)
    np.testing.assert_array_equal(got.weights, want.weights)
    np.testing.assert_allclose(got.total_sq.sq, want.total_sq.sq, rtol=1e-12)


@pytest.mark.parametrize("color_space", ["lab", "hsv"])
def test_colour_conversion_by_distinct_colours_equals_numpy_per_pixel(color_space):
    """A million pixels or more are converted colour by colour and looked up: the same float32
    numbers as numpy's conversion of every pixel."""
    from napari_cluster_seg.core import features

    rng = np.random.default_rng(9)
    image = (rng.integers(0, 40, (1024, 1025, 3)) * [6, 5, 3] + [0, 20, 100]).astype(np.uint8)
    assert features._distinct_colours_first(image.reshape(-1, 3))
    got = features.convert_color(image, color_space)
    np.testing.assert_array_equal(got, numpy_reference(features.convert_color, image, color_space))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_channel_means_per_label_equal_numpy(dtype):
    """The compiled per-label sums of small-integer channel values (exact in int64) give numpy's
    means bit for bit, empty labels NaN."""
    from napari_cluster_seg.core._stats import pixel_group_means

    rng = np.random.default_rng(10)
    values = rng.integers(0, np.iinfo(dtype).max, (30001, 3)).astype(dtype)
    labels = rng.integers(0, 5, 30001).astype(np.int16)  # label 5 of 6 is empty
    got = pixel_group_means(values, labels, 6)
    np.testing.assert_array_equal(got, numpy_reference(pixel_group_means, values, labels, 6))
    assert np.isnan(got[5]).all()


def test_a_million_distinct_colours_are_converted_once(monkeypatch):
    """The distinct colours themselves (here over 2**20 of them) are converted row by row, not
    counted again (which recursed without end and took all memory on a noisy photo)."""
    from napari_cluster_seg.core import features

    calls = []
    count = _accel.count_rgb8

    def counting(values):
        calls.append(values.shape[0])
        assert len(calls) == 1, "the distinct colours were counted again"
        return count(values)

    monkeypatch.setattr(_accel, "count_rgb8", counting)
    image = np.random.default_rng(11).integers(0, 256, (1100, 1000, 3)).astype(np.uint8)
    got = features.convert_color(image, "lab")
    assert calls == [1100 * 1000]
    np.testing.assert_array_equal(got, numpy_reference(features.convert_color, image, "lab"))


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


def test_occupied_codes_list_a_table_as_flatnonzero_does():
    kern = _accel.kernels()
    rng = np.random.default_rng(9)
    for n, density in ((2**24, 0.2), (1000, 0.5), (63, 1.0), (5, 0.0)):  # fewer entries than blocks
        table = (rng.random(n) < density).astype(np.uint32) * rng.integers(1, 2**32 - 1, n, dtype=np.uint32)
        codes, counts = kern.occupied_codes(table)
        want = np.flatnonzero(table)
        np.testing.assert_array_equal(codes, want)
        np.testing.assert_array_equal(counts, table[want].astype(np.int64))
        assert codes.dtype == counts.dtype == np.int64


def test_cell_codes_are_exactly_numpy_s():
    rng = np.random.default_rng(4)
    points = rng.random((_accel.PARALLEL_ROWS + 10000, 3)) * [10, 1, 1000]
    points[0] = points.min(axis=0)
    points[1] = points.max(axis=0)  # the last cell, not one past it
    lo, hi = points.min(axis=0), points.max(axis=0)
    for levels in (2, 17, 101):
        codes = units._cell_codes(points, levels, lo, hi - lo)
        ref = numpy_reference(units._cell_codes, points, levels, lo, hi - lo)
        np.testing.assert_array_equal(codes, ref)
        assert codes.max() < levels**3
        small = units._cell_codes(points[:1000], levels, lo, hi - lo)  # the serial build
        np.testing.assert_array_equal(small, ref[:1000])


def test_grid_group_in_one_pass_equals_codes_ranks_and_group_sums_bit_for_bit():
    """The coresets' grid: the fused kernel gives the sums of the three steps it replaces (the same
    blocks, added in the same order), whatever the weights, cells left empty or points on edges."""
    from napari_cluster_seg.core._chunks import dense_ranks, group_means

    rng = np.random.default_rng(8)
    points = rng.normal(0, 1, (50_000, 3)) * [10, 1, 1e-3] + [0, 100, -5]
    points[:7] = points[0]  # a crowded cell
    weights = rng.integers(1, 9, points.shape[0]).astype(np.float64) * 0.37
    for levels in (2, 16, 40):
        for rows in (points, points[:999]):  # blocks of 3125 and of 63 rows
            means, w = units.grid_group(rows, weights[: rows.shape[0]], levels)
            lo_r, hi_r = rows.min(axis=0), rows.max(axis=0)
            codes = units._cell_codes(rows, levels, lo_r, hi_r - lo_r)
            inverse = dense_ranks(codes, levels**3)[1]
            ref_means, ref_w = group_means(rows, weights[: rows.shape[0]], inverse, int(inverse.max()) + 1)
            np.testing.assert_array_equal(w, ref_w)
            np.testing.assert_array_equal(means, ref_means)
            assert w.size < levels**3 or levels == 2


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

    centers, labels, wcss, sums = run()
    ref_centers, ref_labels, ref_wcss, ref_sums = numpy_reference(run)
    assert ref_sums is None  # numpy: the statistics take their own passes
    np.testing.assert_array_equal(sums[0], np.bincount(labels, weights=weights, minlength=3))
    for f in range(2):
        np.testing.assert_allclose(
            sums[1][:, f], np.bincount(labels, weights=weights * points[:, f]), rtol=1e-12
        )
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

    # connected: the exact pixel tree (any size up to EXACT_MAX_PIXELS); its numpy reference is a Python heap
    size = 96 if kwargs.get("connected") else 192
    photo = (transform.resize(data.astronaut(), (size, size), preserve_range=True) + 0.5).astype(np.uint8)
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


# ------------------------------------------------------------- threading layers and compiling
def _subprocess(code: str, env: dict | None = None, timeout=600) -> str:
    """Run ``code`` in a fresh Python (this package on its path); its stdout."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import napari_cluster_seg

    full = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_THREADING", "OMP_", "GOMP_"))}
    full["PYTHONPATH"] = str(Path(napari_cluster_seg.__file__).parents[1])
    full.update(env or {})
    done = subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


_LAYER_RUNS = """
import numpy as np
from skimage import data, transform
from napari_cluster_seg import cluster_image
from napari_cluster_seg.core import _accel

rng = np.random.default_rng(0)
photo = transform.resize(data.astronaut(), (400, 400), preserve_range=True)
photo = np.clip(photo + rng.normal(0, 6, photo.shape) + 0.5, 0, 255).astype(np.uint8)  # > 65,536 colours
grey = (rng.poisson(data.camera().astype(float) * 8) + 100).astype(np.uint16)
big = np.repeat(np.repeat(photo, 3, axis=0), 3, axis=1)[:1024, :1024]  # 2**20 pixels: the colour cells
big = np.clip(big + rng.normal(0, 6, big.shape) + 0.5, 0, 255).astype(np.uint8)
out = {}
for name, image, k, kw in [
    ("kmeans3", photo, 3, dict(rgb=True)),
    ("cells5", big, 5, dict(rgb=True)),
    ("kmeans8", photo, 8, dict(rgb=True, normalize="none")),
    ("grey", grey, 4, {}),
    ("agglomerative", photo, 5, dict(method="agglomerative", rgb=True)),
    ("divisive", photo, 5, dict(method="divisive", rgb=True)),
]:
    res = cluster_image(image, k, random_state=0, **kw)
    out[name + "_labels"], out[name + "_centers"] = res.labels, res.centers
    out[name + "_inertia"] = np.array(res.inertia)
np.savez(OUT, **out)
print(_accel.threading_layer())
"""


def _layers():
    """The threading layers that start here (tbb needs Intel's TBB library), tried in fresh processes."""
    probe = "import numpy as np, numba\n@numba.njit(parallel=True)\ndef f(a):\n    s = 0.0\n"
    probe += "    for i in numba.prange(a.size):\n        s += a[i]\n    return s\n"
    probe += "f(np.ones(64))\nprint(numba.threading_layer())\n"
    layers = ["omp", "workqueue"]
    try:
        if _subprocess(probe, {"NUMBA_THREADING_LAYER": "tbb"}).strip() == "tbb":
            layers.append("tbb")
    except AssertionError:  # tbb's library is not installed: its layer cannot start
        pass
    return layers


def test_results_are_identical_under_every_threading_layer_and_close_without_numba(tmp_path):
    """The parallel kernels add in fixed blocks, so the layer (and its thread timing) cannot change a
    result; the numpy path agrees up to rounding. Each layer is forced in a fresh process."""
    results = {}
    for layer in [*_layers(), "numpy"]:
        path = tmp_path / f"{layer}.npz"
        env = {"NAPARI_CLUSTER_SEG_NUMBA": "0"} if layer == "numpy" else {"NUMBA_THREADING_LAYER": layer}
        used = _subprocess(f"OUT = {str(path)!r}\n" + _LAYER_RUNS, env).strip()
        assert used == ("None" if layer == "numpy" else layer)
        results[layer] = dict(np.load(path))
    reference = results["omp"]
    for layer, res in results.items():
        for key, value in res.items():
            if layer != "numpy":
                np.testing.assert_array_equal(value, reference[key], err_msg=f"{layer}: {key}")
            elif key.endswith("_labels"):
                assert np.mean(value == reference[key]) > 0.9999, key
            else:
                np.testing.assert_allclose(value, reference[key], rtol=1e-6, err_msg=key)


def test_the_pool_waits_passively_unless_the_user_chose_and_user_settings_stay():
    code = """
import ctypes, os, numba
from numba.core import config
{before}
from napari_cluster_seg.core import _accel
_accel.kernels()
print(_accel.threading_layer(), os.environ.get("OMP_WAIT_POLICY"), config.THREADING_LAYER)
if _accel.threading_layer() == "omp":
    ctypes.CDLL("libgomp.so.1").omp_display_env(1)  # libgomp's own settings, on stderr
"""

    def run(env=None, before=""):
        import os
        import subprocess
        import sys
        from pathlib import Path

        import napari_cluster_seg

        full = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_THREADING", "OMP_", "GOMP_"))}
        full["PYTHONPATH"] = str(Path(napari_cluster_seg.__file__).parents[1])
        full.update(env or {})
        done = subprocess.run(
            [sys.executable, "-c", code.format(before=before)], env=full, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.split(), done.stderr

    out, err = run()
    assert out == ["omp", "None", "default"]  # numba's own pick; the variable does not leak
    assert "GOMP_SPINCOUNT = '0'" in err  # passive: no spinning (libgomp's default is 300000)
    out, err = run({"OMP_WAIT_POLICY": "active"})
    assert out[:2] == ["omp", "active"] and "OMP_WAIT_POLICY = 'ACTIVE'" in err
    out, err = run({"GOMP_SPINCOUNT": "1000"})
    assert "GOMP_SPINCOUNT = '1000'" in err
    assert run({"NUMBA_THREADING_LAYER": "workqueue"})[0][0] == "workqueue"
    assert run({"NUMBA_THREADING_LAYER_PRIORITY": "workqueue omp tbb"})[0][0] == "workqueue"
    assert run(before="config.THREADING_LAYER = 'workqueue'")[0][0] == "workqueue"
    # a pool that other code started first is left as it is
    out, err = run(before="numba.njit(parallel=True)(lambda a: a.sum())(__import__('numpy').ones(9))")
    assert out[0] == "omp" and "GOMP_SPINCOUNT = '300000'" in err


def test_serial_and_parallel_builds_do_not_share_disk_cache_entries(tmp_path):
    """numba keys its disk cache by function and argument types, not by options: without names of
    their own, the parallel build of a loop loaded the serial build's code from the cache."""
    code = """
from napari_cluster_seg.core import _accel, _builds
_builds.prepare("nearest_serial_f64")
_builds.prepare("nearest_f64")
d = _accel.kernels().nearest
print(sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values()))
"""
    hits, misses = _subprocess(code, {"NUMBA_CACHE_DIR": str(tmp_path)}).split()
    assert (hits, misses) == ("0", "1")


_NEEDS_CASES = {
    "rgb kmeans": "cluster_image(photo, 3, rgb=True)",
    "noisy rgb kmeans (colour cells)": "big = np.repeat(np.repeat(photo, 4, 0), 4, 1)[:1024, :1024]; "
    "big = np.clip(big + np.random.default_rng(0).normal(0, 8, big.shape), 0, 255).astype(np.uint8); "
    "cluster_image(big, 3, rgb=True)",
    "noisy rgb kmeans, few colours": "pal = np.random.default_rng(0).integers(0, 256, (12, 3)); "
    "pick = np.random.default_rng(1).integers(0, 12, (1024, 1024)); "
    "cluster_image(pal.astype(np.uint8)[pick], 3, rgb=True)",
    "grey uint16 kmeans": "cluster_image(data.camera().astype(np.uint16) * 200, 3)",
    "rgb agglomerative": "cluster_image(photo, 3, 'agglomerative', rgb=True).cut(5)",
    "rgb divisive": "cluster_image(photo, 3, 'divisive', rgb=True)",
    "connected pixels": "cluster_image(photo[::4, ::4], 3, 'agglomerative', rgb=True, connected=True)",
    "smoothed": "cluster_image(photo, 3, rgb=True, smoothing=1.0)",
    "lab features, smoothed": "cluster_image(photo, 3, rgb=True, color_space='lab', smoothing=1.0)",
    "streamed noisy rgb (colour cells)": "from napari_cluster_seg.core.stream import fit_stream; "
    "import dask.array as da; big = np.repeat(np.repeat(photo, 4, 0), 4, 1)[:1024, :1024]; "
    "big = np.clip(big + np.random.default_rng(0).normal(0, 8, big.shape), 0, 255).astype(np.uint8); "
    "fit_stream(da.from_array(big, chunks=(256, 256, 3)), 3, rgb=True)",
    "streamed float fit": "from napari_cluster_seg.core.stream import fit_stream; import dask.array as da; "
    "fit_stream(da.from_array(photo.astype(np.float32), chunks=(100, 100, 3)), 3, channel_axis=2)",
}


@pytest.mark.parametrize("case", list(_NEEDS_CASES))
def test_a_run_announces_every_kernel_build_it_loads(case):
    """In a fresh process a run loads (or compiles) exactly the builds ``needs`` named before it
    started, so a compile is always announced by its progress stage, never silent."""
    code = f"""
import numpy as np, numba
from skimage import data, transform
from napari_cluster_seg import cluster_image
from napari_cluster_seg.core import _accel, _builds

photo = (transform.resize(data.astronaut(), (300, 300), preserve_range=True) + 0.5).astype(np.uint8)
needs, announced = _builds.needs, []
_builds.needs = lambda *a, **k: announced.extend(needs(*a, **k)) or needs(*a, **k)
smoothing_needs = _builds.smoothing_needs
_builds.smoothing_needs = lambda *a: announced.extend(smoothing_needs(*a)) or smoothing_needs(*a)
cell_fit_needs = _builds.cell_fit_needs  # (the colour cells' fit: announced once they are counted)
_builds.cell_fit_needs = lambda *a: announced.extend(cell_fit_needs(*a)) or cell_fit_needs(*a)
{_NEEDS_CASES[case]}
expected = {{(id(_builds._build(n)[0]), _builds._build(n)[1]) for n in announced}}
from napari_cluster_seg.core import _feature_kernels
for k in (_accel.kernels(), _feature_kernels):
    for name in dir(k):
        d = getattr(k, name)
        if isinstance(d, numba.core.registry.CPUDispatcher):
            for sig in d.signatures:
                if (id(d), tuple(sig)) not in expected:
                    print("unannounced", name, sig)
print("announced", len(announced))
"""
    out = _subprocess(code)
    assert "unannounced" not in out, out
    assert "announced 0" not in out


def test_the_first_run_says_it_compiles_and_later_sessions_do_not(tmp_path):
    code = """
import numpy as np
from skimage import data
from napari_cluster_seg import cluster_image

stages = []
cluster_image(data.camera(), 3, progress=lambda stage, f: stages.append(stage))
print(sum("preparing fast kernels" in s for s in stages), stages[1:3])
"""
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    first = _subprocess(code, env)
    # count, lookup, sums, deviations, squares, the 1D dynamic programme's layer
    assert first.startswith("6 ") and "first run only" in first
    assert _subprocess(code, env).startswith("0 ")


def test_every_kernel_of_every_kernel_module_has_a_build_that_warm_up_loads():
    """The kernels live in one module per stage (``_kernels.MODULES``) and the feature path's module;
    each compiled kernel (not the inlined helpers) is in the namespace ``_accel.kernels()`` and has a
    build, so ``needs`` can announce it and ``warm_up(compile=True)`` compiles it."""
    import numba

    from napari_cluster_seg.core import _feature_kernels

    kernels = _accel.kernels()
    modules = [*kernels.MODULES, _feature_kernels]
    assert len(kernels.MODULES) == 4
    built = {id(_builds._build(name)[0]) for name in _builds._build_args()}
    found, missing = 0, []
    for module in modules:
        for name, value in vars(module).items():
            inlined = getattr(value, "targetoptions", {}).get("inline") == "always"  # a helper
            if isinstance(value, numba.core.registry.CPUDispatcher) and not (name.startswith("_") or inlined):
                found += 1
                if id(value) not in built:
                    missing.append(f"{module.__name__}.{name}")
                if module is not _feature_kernels and getattr(kernels, name, None) is not value:
                    missing.append(f"_kernels.{name}")
    assert found >= 20 and missing == []


def test_warm_up_compiles_nothing_but_loads_what_the_disk_cache_holds(tmp_path):
    code = """
import time
from napari_cluster_seg.core import _builds, warm_up
warm_up()
print(len(_builds.pending(list(_builds._BUILDS))), len(_builds._BUILDS))
"""
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    pending, total = map(int, _subprocess(code, env).split())
    assert pending == total  # an empty cache: nothing loaded, nothing compiled
    _subprocess('from napari_cluster_seg.core import _builds\n_builds.prepare("roots_after")', env)
    pending, total = map(int, _subprocess(code, env).split())
    assert pending == total - 1


@pytest.mark.parametrize("seed", range(6))
def test_optimal_1d_kmeans_layer_equals_numpy_bit_for_bit(seed):
    """The compiled layer of the 1D dynamic programme takes the numpy layer's steps: the same labels
    and cost bit for bit, ties (evenly spaced, equal weights: many equal costs) included."""
    from napari_cluster_seg.core.kmeans import kmeans_1d_optimal

    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 3000))
    if seed % 2:
        x, w = np.arange(m, dtype=np.float64), np.ones(m)
    else:
        x, w = np.unique(rng.normal(0, 1e3, m)), rng.integers(1, 1000, m).astype(np.float64)
        w = w[: x.size]
    for k in (1, 2, 3, min(7, x.size), x.size):
        labels, cost = kmeans_1d_optimal(x, w, k)
        ref_labels, ref_cost = numpy_reference(kmeans_1d_optimal, x, w, k)
        np.testing.assert_array_equal(labels, ref_labels)
        assert cost == ref_cost
