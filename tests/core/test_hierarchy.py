import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage

from napari_cluster_seg.core.hierarchy import BisectingTree, LinkageTree, weighted_linkage


def same_partition(a, b):
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("method", ["ward", "complete", "average", "single"])
def test_unit_weights_match_scipy(method):
    rng = np.random.default_rng(42)
    pts = rng.random((60, 3))
    Z = weighted_linkage(pts, np.ones(60), method)
    Zs = linkage(pts, method)
    np.testing.assert_allclose(Z[:, 2], Zs[:, 2], rtol=1e-9)
    np.testing.assert_array_equal(Z[:, 3], Zs[:, 3])
    tree = LinkageTree(Z, 60)
    for k in (2, 3, 7, 20):
        assert same_partition(tree.cut(k), fcluster(Zs, k, "maxclust"))


@pytest.mark.parametrize("method", ["ward", "average"])
def test_weights_equal_repeated_points(method):
    """A unit of weight w behaves as w coincident points (scipy on the expanded points)."""
    rng = np.random.default_rng(7)
    pts = rng.random((15, 2))
    w = rng.integers(1, 5, 15)
    expanded = np.repeat(pts, w, axis=0)
    Zs = linkage(expanded, method)
    heights = Zs[:, 2][Zs[:, 2] > 1e-12]  # drop the merges of coincident copies
    Z = weighted_linkage(pts, w.astype(float), method)
    np.testing.assert_allclose(Z[:, 2], heights, rtol=1e-9)


def test_ward_height_is_increase_of_sse():
    pts = np.array([[0.0], [2.0]])
    w = np.array([3.0, 1.0])
    Z = weighted_linkage(pts, w, "ward")
    mean = (0 * 3 + 2 * 1) / 4
    sse = 3 * mean**2 + (2 - mean) ** 2
    assert Z[0, 2] ** 2 / 2 == pytest.approx(sse)


def nests(fine, coarse):
    """Every cluster of ``fine`` lies inside one cluster of ``coarse``."""
    return all(len(set(coarse[fine == c])) == 1 for c in np.unique(fine))


@pytest.mark.parametrize("method", ["ward", "single"])
def test_linkage_cuts_nest(method):
    pts = np.random.default_rng(0).random((40, 2))
    tree = LinkageTree(weighted_linkage(pts, np.ones(40), method), 40)
    cuts = [tree.cut(k) for k in range(1, 41)]
    for k, cut in enumerate(cuts, start=1):
        assert len(np.unique(cut)) == k
    assert all(nests(cuts[i + 1], cuts[i]) for i in range(39))


def test_bisecting_cuts_nest_and_are_deterministic():
    pts = np.random.default_rng(0).random((50, 3))
    w = np.ones(50)
    tree = BisectingTree(pts, w, rng=np.random.default_rng(5))
    cuts = [tree.cut(k) for k in (8, 2, 5, 3)]  # out of order: lazily grown
    by_k = dict(zip((8, 2, 5, 3), cuts))
    for k, cut in by_k.items():
        assert len(np.unique(cut)) == k
    assert nests(by_k[3], by_k[2]) and nests(by_k[5], by_k[3]) and nests(by_k[8], by_k[5])
    again = BisectingTree(pts, w, rng=np.random.default_rng(5)).cut(5)
    np.testing.assert_array_equal(again, by_k[5])


def test_bisecting_splits_the_largest_sse_first():
    # two tight groups far apart plus one loose group: first split separates far groups
    pts = np.array([[0.0], [0.1], [10.0], [10.1], [20.0], [25.0]])
    tree = BisectingTree(pts, np.ones(6), rng=np.random.default_rng(0))
    two = tree.cut(2)
    assert two[0] == two[1] and two[4] == two[5] and two[0] != two[5]


@pytest.mark.parametrize("kind", ["ward", "average", "divisive"])
def test_top_of_tree_cuts_like_the_tree(kind):
    pts = np.random.default_rng(3).random((80, 2))
    if kind == "divisive":
        tree = BisectingTree(pts, np.ones(80), rng=np.random.default_rng(0))
    else:
        tree = LinkageTree(weighted_linkage(pts, np.ones(80), kind), 80)
    Z, leaf_of_unit = tree.top(12)
    assert Z.shape == (11, 4) and np.all(np.diff(Z[:, 2]) >= 0)
    assert Z[-1, 3] == 12
    assert same_partition(leaf_of_unit, tree.cut(12))
    for k in (2, 3, 5, 12):
        top_cut = fcluster(Z, k, "maxclust") if k < 12 else np.arange(12)
        assert same_partition(top_cut[leaf_of_unit], tree.cut(k))
