"""Spatially connected agglomerative clustering (the exact pixel tree; superpixels + constrained
tree)."""

import numpy as np
import pytest
from skimage.measure import label as connected_components

from napari_cluster_seg import cluster_image
from napari_cluster_seg.core import _accel, constrained, regions
from napari_cluster_seg.core._progress import run_with_progress
from napari_cluster_seg.core.constrained import connected_linkage
from napari_cluster_seg.core.hierarchy import weighted_linkage
from napari_cluster_seg.core.regions import adjacency, pixel_edges


@pytest.fixture(params=["numba", "numpy"])
def engine(request, monkeypatch):
    """Both ways of building the exact tree: the compiled kernel and the Python heap."""
    if request.param == "numpy":
        monkeypatch.setattr(_accel, "_module", None)
    elif not _accel.enabled():
        pytest.skip("numba kernels not in use")
    return request.param


def _photo(size, levels=None):
    from skimage import data, transform

    x = transform.resize(data.astronaut(), (size, size), anti_aliasing=True).reshape(-1, 3)
    return x if levels is None else np.round(x * levels) / levels  # few levels: many tied costs


def test_without_constraint_it_is_the_weighted_linkage():
    rng = np.random.default_rng(0)
    pts, w = rng.random((25, 2)), rng.integers(1, 9, 25).astype(float)
    everyone = np.array([(a, b) for a in range(25) for b in range(a + 1, 25)])
    for method in ("ward", "average", "complete", "single"):
        Z = connected_linkage(pts, w, everyone, method)
        np.testing.assert_allclose(Z[:, 2], weighted_linkage(pts, w, method)[:, 2], rtol=1e-9)


@pytest.mark.parametrize("method", ["ward", "average", "complete", "single"])
def test_only_neighbours_merge_on_a_chain(method):
    from napari_cluster_seg.core.hierarchy import LinkageTree

    rng = np.random.default_rng(1)
    values = rng.random((30, 1))
    chain = np.array([(i, i + 1) for i in range(29)])
    tree = LinkageTree(connected_linkage(values, np.ones(30), chain, method), 30)
    for k in range(1, 31):
        cut = tree.cut(k)
        # on a chain, a connected cluster is a run of consecutive units
        assert np.count_nonzero(np.diff(cut)) == k - 1


def test_pixel_edges_skip_masked_pixels_and_frames():
    assert sorted(map(tuple, pixel_edges((2, 3)))) == [(0, 1), (0, 3), (1, 2), (1, 4), (2, 5), (3, 4), (4, 5)]
    valid = np.array([True, True, False, True, True, True])  # pixel 2 masked: 0 1 . / 2 3 4
    assert {tuple(e) for e in pixel_edges((2, 3), valid)} == {(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)}
    frames = pixel_edges((2, 2, 2), time_axis=0)
    assert frames.shape == (8, 2) and np.all(frames // 4 == frames[:, :1] // 4)  # none across frames


def test_pieces_of_the_pixel_grid_are_counted_per_frame():
    valid = np.ones((2, 4, 4), bool)
    valid[0, :, 2] = False  # frame 0 cut in two
    assert regions.n_components((2, 4, 4), valid.ravel(), time_axis=0) == 3
    assert regions.n_components((2, 4, 4), valid.ravel()) == 1  # as a 3D stack: one piece
    assert regions.n_components((5, 4, 4), None, time_axis=0) == 5
    assert regions.n_components((4, 4)) == 1


def test_many_separate_pieces_use_superpixels(monkeypatch):
    img = two_blobs()
    mask = np.ones(img.shape, bool)
    mask[:, ::8] = False  # eight vertical strips
    res = cluster_image(img, 3, "agglomerative", connected=True, mask=mask)
    assert res._hierarchy.pixel_units and (res.labels[~mask] == 0).all()
    monkeypatch.setattr(regions, "EXACT_MAX_COMPONENTS", 7)
    res = cluster_image(img, 3, "agglomerative", connected=True, mask=mask, max_units=100)
    assert not res._hierarchy.pixel_units and (res.labels[~mask] == 0).all()
    assert set(np.unique(res.labels[mask])) == {1, 2, 3}


@pytest.mark.parametrize("levels", [None, 4])
def test_exact_ward_is_scikit_learns_structured_ward(engine, levels):
    from sklearn.cluster import ward_tree
    from sklearn.feature_extraction.image import grid_to_graph

    x = _photo(24, levels)
    Z = run_with_progress(constrained.exact_ward(x, np.ones(len(x)), pixel_edges((24, 24))))
    children = ward_tree(x, connectivity=grid_to_graph(24, 24))[0]
    np.testing.assert_array_equal(Z[:, :2].astype(int), np.sort(children, axis=1))  # every merge
    assert np.all(np.diff(Z[:, 2]) >= 0) and Z[-1, 3] == 24 * 24


def test_exact_ward_kernel_and_python_make_the_same_merges():
    if not _accel.enabled():
        pytest.skip("numba kernels not in use")
    rng = np.random.default_rng(4)
    x = _photo(20, 6)[:400].copy()
    weights = rng.integers(1, 5, 400).astype(float)  # weighted units, several components
    valid = rng.random(2 * 200) > 0.2
    edges = pixel_edges((2, 10, 20), valid, time_axis=0)
    x, weights = x[valid], weights[valid]
    compiled = _accel.ward_greedy(x, weights, edges)
    python = run_with_progress(constrained._exact_ward_python(x, weights, edges, report_every=50))
    np.testing.assert_array_equal(compiled, python)
    Z = run_with_progress(constrained.exact_ward(x, weights, edges))  # the forest, joined: a full tree
    assert Z.shape == (len(x) - 1, 4) and Z[-1, 3] == len(x) and np.all(np.diff(Z[:, 2]) >= 0)


def test_connected_ward_on_small_images_is_scikit_learns(engine):
    from skimage import data
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.image import grid_to_graph
    from sklearn.metrics import adjusted_rand_score

    photo = data.astronaut()[::12, ::12]  # 43 x 43
    res = cluster_image(photo, 6, "agglomerative", rgb=True, connected=True, max_units=256)
    x = (photo.reshape(-1, 3) - photo.reshape(-1, 3).min(0)) / np.ptp(photo.reshape(-1, 3), axis=0)
    for k, labels in ((6, res.labels), (11, res.cut(11).labels)):
        ref = AgglomerativeClustering(k, linkage="ward", connectivity=grid_to_graph(43, 43)).fit_predict(x)
        assert adjusted_rand_score(ref, labels.ravel()) == 1.0
    # the model keeps the regions of a finer cut (max_units of them), each inside one cluster
    assert res.model.points.shape[0] == 256 and np.mean(res.model.predict(photo) == res.labels) > 0.7


def test_adjacency_pairs_and_frames():
    lab = np.array([[[1, 1, 2], [3, 3, 2]], [[4, 4, 4], [4, 5, 5]]])
    pairs = {tuple(p) for p in adjacency(lab, time_axis=0)}
    assert pairs == {(1, 2), (1, 3), (2, 3), (4, 5)}  # no pair across the two frames
    assert {tuple(p) for p in adjacency(lab)} >= {(1, 4), (2, 4), (3, 5)}


def two_blobs(shape=(48, 64)):
    img = np.full(shape, 20.0, np.float32)
    yy, xx = np.indices(shape)
    img[(yy - 24) ** 2 + (xx - 14) ** 2 < 100] = 200.0
    img[(yy - 24) ** 2 + (xx - 50) ** 2 < 100] = 200.0
    return img + np.random.default_rng(0).normal(0, 2, shape).astype(np.float32)


@pytest.mark.parametrize(
    ("method", "linkage"),
    [
        ("agglomerative", "ward"),
        ("agglomerative", "average"),
        ("agglomerative", "complete"),
        ("agglomerative", "single"),
        ("divisive", "ward"),
    ],
)
def test_connected_clusters_are_regions(method, linkage):
    img = two_blobs()
    colour = cluster_image(img, 2, method, linkage=linkage)
    assert colour.labels[24, 14] == colour.labels[24, 50]  # same colour, same class
    region = cluster_image(img, 3, method, linkage=linkage, connected=True, max_units=200)
    if linkage != "single":  # single linkage chains through the blobs' mixed border superpixels
        assert region.labels[24, 14] != region.labels[24, 50]  # two separate regions
    for lab in np.unique(region.labels):
        assert connected_components(region.labels == lab, connectivity=1).max() == 1


@pytest.mark.parametrize(
    ("method", "exact_max"),
    [("agglomerative", regions.EXACT_MAX_PIXELS), ("agglomerative", 0), ("divisive", 0)],
    ids=["ward-pixels", "ward-superpixels", "divisive"],
)
def test_connected_3d_rgb_time_series_and_nan(monkeypatch, method, exact_max):
    monkeypatch.setattr(regions, "EXACT_MAX_PIXELS", exact_max)
    stack = np.random.default_rng(0).random((6, 20, 20)).astype(np.float32)
    stack[:, 5:12, 5:12] += 3
    res = cluster_image(stack, 3, method, connected=True, max_units=100)
    assert res.labels.shape == stack.shape and set(np.unique(res.labels)) == {1, 2, 3}
    for lab in (1, 2, 3):
        assert connected_components(res.labels == lab, connectivity=1).max() == 1
    from skimage import data

    rgb = data.astronaut()[::4, ::4]
    res = cluster_image(rgb, 5, method, connected=True, rgb=True, max_units=300)
    assert res.labels.shape == rgb.shape[:2] and res.labels.max() == 5
    movie = np.repeat(two_blobs()[None], 3, axis=0)
    movie[1, 0, 0] = np.nan
    res = cluster_image(movie, 4, method, connected=True, time_axis=0, max_units=300)
    assert res.labels[1, 0, 0] == 0
    for t in range(3):  # regions never span frames
        for lab in np.unique(res.labels[t][res.labels[t] > 0]):
            assert connected_components(res.labels[t] == lab, connectivity=1).max() == 1


def test_spanning_tree_split_removes_the_best_edge():
    from napari_cluster_seg.core.hierarchy import SpanningTreeSplits

    # a chain 0-1-2-3-4-5 with values 0 0 0 9 9 9: the first split cuts between 2 and 3
    values = np.array([[0.0], [0.0], [0.1], [9.0], [9.1], [9.0]])
    chain = np.array([(i, i + 1) for i in range(5)])
    tree = SpanningTreeSplits(values, np.ones(6), chain)
    two = tree.cut(2)
    assert len(set(two[:3])) == 1 and len(set(two[3:])) == 1 and two[0] != two[3]
    for k in range(1, 7):  # every cut of a chain is a set of runs
        assert np.count_nonzero(np.diff(tree.cut(k))) == k - 1


@pytest.mark.parametrize("method", ["agglomerative", "divisive"])
def test_connected_cuts_nest_and_large_images_are_downsampled(monkeypatch, method):
    monkeypatch.setattr(regions, "MAX_SLIC_PIXELS", 500)  # force SLIC on a reduced copy
    monkeypatch.setattr(regions, "EXACT_MAX_PIXELS", 0)  # superpixels even for Ward
    img = two_blobs()
    img[3, 3] = np.nan
    res = cluster_image(img, 2, method, connected=True, max_units=60)
    fine = res.cut(5)
    assert fine.labels[3, 3] == 0 and (fine.labels[img == img] > 0).all()
    for lab in np.unique(fine.labels[fine.labels > 0]):
        assert len(np.unique(res.labels[fine.labels == lab])) == 1


@pytest.mark.parametrize("method", ["agglomerative", "divisive"])
def test_superpixel_models_keep_every_superpixel(monkeypatch, method):
    monkeypatch.setattr(regions, "EXACT_MAX_PIXELS", 0)
    res = cluster_image(two_blobs(), 2, method, connected=True, max_units=60)
    n_superpixels = res._hierarchy.n_fit_units
    assert n_superpixels > 60  # SLIC made a few more than asked for
    assert res.model.points.shape[0] == n_superpixels  # not the regions of a finer cut
    if method == "divisive":
        assert len(res._hierarchy.tree.splits) == 1  # and the tree was not split further


def test_more_clusters_than_pixels_is_a_clear_error():
    with pytest.raises(ValueError, match="n_clusters=3 is more than the 2 pixels to cluster"):
        cluster_image(np.array([[0, 9]], np.uint8), 3, "agglomerative", connected=True)


def test_connected_needs_a_hierarchical_method():
    with pytest.raises(ValueError, match="connected=True needs a hierarchical method"):
        cluster_image(two_blobs(), 2, "kmeans", connected=True)


def _grid_graph(n):
    ids = np.arange(n * n).reshape(n, n)
    across = np.stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()], 1)
    down = np.stack([ids[:-1].ravel(), ids[1:].ravel()], 1)
    return np.concatenate([across, down])


def _cut_sse(Z, points, weights, k):
    from napari_cluster_seg.core.hierarchy import LinkageTree

    cut = LinkageTree(Z, len(points)).cut(k)
    sse = 0.0
    for c in np.unique(cut):
        p, w = points[cut == c], weights[cut == c]
        sse += float((w[:, None] * (p - np.average(p, axis=0, weights=w)) ** 2).sum())
    return sse


def test_ward_rounds_match_the_greedy_order_on_a_grid():
    from napari_cluster_seg.core.constrained import _greedy_linkage, _ward_mutual_nearest

    rng = np.random.default_rng(3)
    n = 24
    yy, xx = np.indices((n, n))
    points = np.stack([(yy > 10) * 1.0 + (xx > 15) * 2.0, xx / n], -1).reshape(-1, 2)
    points += rng.normal(0, 0.2, points.shape)
    weights = rng.integers(1, 30, n * n).astype(float)
    edges = _grid_graph(n)
    rounds = _ward_mutual_nearest(points, weights, edges)
    greedy = _greedy_linkage(points, weights, edges, "ward")

    def sse(Z, k):
        return _cut_sse(Z, points, weights, k)

    assert np.all(np.diff(rounds[:, 2]) >= 0) and rounds[-1, 3] == n * n
    ratios = [sse(rounds, k) / sse(greedy, k) for k in range(2, 30)]
    assert 0.95 < np.mean(ratios) < 1.05 and max(ratios) < 1.15


def test_ward_rounds_join_separate_components_last():
    from napari_cluster_seg.core.hierarchy import LinkageTree

    # two chains 0-1-2 and 3-4-5, far apart in value only between the chains' ends
    points = np.array([[0.0], [0.1], [5.0], [5.1], [0.2], [0.3]])
    edges = np.array([(0, 1), (1, 2), (3, 4), (4, 5)])
    Z = connected_linkage(points, np.ones(6), edges, "ward")
    assert Z.shape == (5, 4) and Z[-1, 3] == 6 and np.all(np.diff(Z[:, 2]) >= 0)
    two = LinkageTree(Z, 6).cut(2)
    # the last merge joins the two components, whatever their values
    assert len(set(two[:3])) == 1 and len(set(two[3:])) == 1 and two[0] != two[3]


def test_ward_rounds_on_ties_take_few_rounds(monkeypatch):
    from napari_cluster_seg.core import constrained

    # a chain of 4,000 identical units: every edge ties; broken along the chain, a round would
    # merge one pair only (4,000 rounds); broken at random, a constant share of the chain
    calls = []
    unique_pairs = constrained._unique_pairs
    monkeypatch.setattr(constrained, "_unique_pairs", lambda *a: calls.append(1) or unique_pairs(*a))
    n = 4000
    Z = constrained._ward_mutual_nearest(
        np.zeros((n, 1)), np.ones(n), np.array([(i, i + 1) for i in range(n - 1)])
    )
    assert Z.shape == (n - 1, 4) and Z[-1, 3] == n and np.all(Z[:, 2] == 0)
    assert len(calls) < 60
