"""Hierarchical clustering of weighted units: agglomerative and divisive trees.

A unit is a group of pixels represented by its mean feature vector and its
pixel count (its weight). The agglomerative tree treats unit ``i`` as
``w_i`` coincident pixels at its mean and applies the Lance-Williams
recurrence with those weights, so that Ward's criterion is the exact increase
of the within-cluster sum of squares and average linkage is averaged over
pixels rather than units. With unit weights the merges equal
:func:`scipy.cluster.hierarchy.linkage` (which takes no weights).

The divisive tree is bisecting K-means: starting from one cluster, the
cluster with the largest within-cluster sum of squares is split in two by
weighted 2-means, until the requested number of clusters is reached.

Both trees are cut to ``k`` clusters with :meth:`Tree.cut`; cuts nest.
"""

from __future__ import annotations

import numpy as np

from . import _accel
from ._chunks import dense_ranks
from .kmeans import weighted_kmeans


def _pairwise_sq(points):
    sq = np.einsum("ij,ij->i", points, points)
    d = sq[:, None] + sq[None, :] - 2 * points @ points.T
    np.maximum(d, 0, out=d)
    return d


def weighted_linkage(points, weights, method="ward"):
    """Agglomerative clustering of weighted points (nearest-neighbour chain).

    Parameters
    ----------
    points : ndarray, shape (m, n_features)
    weights : ndarray, shape (m,)
        Positive weights (pixel counts).
    method : {"ward", "complete", "average", "single"}

    Returns
    -------
    Z : ndarray, shape (m - 1, 4)
        Linkage matrix in scipy's format: merged cluster ids, merge height and
        the number of units in the new cluster; sorted by height. Ward heights
        are on scipy's scale, ``sqrt(2 * increase in weighted SSE)``.

    Examples
    --------
    >>> import numpy as np
    >>> pts = np.array([[0.0], [1.0], [5.0]])
    >>> weighted_linkage(pts, np.ones(3), "single")[:, 2]
    array([1., 4.])
    """
    points = np.asarray(points, np.float64)
    w = np.asarray(weights, np.float64).copy()
    m = points.shape[0]
    if m < 2:
        return np.empty((0, 4))
    D = _pairwise_sq(points)
    if method == "ward":
        D *= 2 * np.outer(w, w) / np.add.outer(w, w)
    else:
        np.sqrt(D, out=D)
    np.fill_diagonal(D, np.inf)
    if _accel.enabled():  # the same loop, compiled
        merges = list(zip(*(x.tolist() for x in _accel.nn_chain(D, w, method))))
    else:
        merges = _nn_chain(D, w, method)
    # Sort by height (stable) and give clusters scipy's ids.
    merges.sort(key=lambda t: t[2])
    Z = np.empty((m - 1, 4))
    cluster_of_slot = np.arange(m)
    size = np.ones(2 * m - 1)
    parent = np.arange(m)  # union-find over slots

    def find(s):
        while parent[s] != s:
            parent[s] = parent[parent[s]]
            s = parent[s]
        return s

    for t, (a, b, height) in enumerate(merges):
        ra, rb = find(a), find(b)
        ca, cb = cluster_of_slot[ra], cluster_of_slot[rb]
        lo, hi = min(ca, cb), max(ca, cb)
        size[m + t] = size[ca] + size[cb]
        Z[t] = (lo, hi, np.sqrt(height) if method == "ward" else height, size[m + t])
        parent[rb] = ra
        cluster_of_slot[ra] = m + t
    return Z


def _nn_chain(D, w, method):
    """The nearest-neighbour chain on the distance matrix ``D`` and weights ``w`` (both modified):
    the merges (slot a < slot b, height) in merge order; the merged cluster keeps slot a."""
    m = D.shape[0]
    active = np.ones(m, bool)
    merges = []
    chain: list[int] = []
    for _ in range(m - 1):
        if not chain:
            chain.append(int(np.flatnonzero(active)[0]))
        while True:
            a = chain[-1]
            row = D[a]
            b = int(np.argmin(row))
            if len(chain) > 1 and row[chain[-2]] <= row[b]:
                b = chain[-2]
            if len(chain) > 1 and b == chain[-2]:
                break
            chain.append(b)
        b = chain.pop()
        a = chain.pop()
        if b < a:
            a, b = b, a
        height = D[a, b]
        wa, wb = w[a], w[b]
        da, db = D[a], D[b]
        if method == "single":
            new = np.minimum(da, db)
        elif method == "complete":
            new = np.maximum(da, db)
        elif method == "average":
            new = (wa * da + wb * db) / (wa + wb)
        else:
            new = ((wa + w) * da + (wb + w) * db - w * height) / (wa + wb + w)
        new[~active] = np.inf
        D[a] = new
        D[:, a] = new
        D[a, a] = np.inf
        D[b] = np.inf
        D[:, b] = np.inf
        active[b] = False
        w[a] = wa + wb
        merges.append((a, b, height))
    return merges


def roots_after(Z: np.ndarray, m: int, n_merges: int) -> np.ndarray:
    """Cluster id (scipy numbering) of each of the ``m`` units after the first ``n_merges``
    merges of the linkage matrix ``Z``."""
    if _accel.enabled():
        return _accel.roots_after(np.ascontiguousarray(Z, np.float64), m, n_merges)
    parent = np.arange(m + n_merges)
    children = Z[:n_merges, :2].astype(np.int64)
    parent[children[:, 0]] = parent[children[:, 1]] = m + np.arange(n_merges)
    while True:  # pointer doubling until every node points at its root
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            return parent[:m]
        parent = nxt


class Tree:
    """A hierarchy over ``m`` units that can be cut into any number of clusters."""

    n_units: int

    def cut(self, k: int) -> np.ndarray:
        """Cluster index (0..k-1) of each unit for ``k`` clusters."""
        raise NotImplementedError

    def top(self, n_leaves: int):
        """The top of the tree, down to ``n_leaves`` clusters, for drawing a dendrogram.

        Returns
        -------
        Z : ndarray, shape (n_leaves - 1, 4)
            scipy-format linkage matrix whose leaves 0..n_leaves-1 are the
            clusters of ``cut(n_leaves)``; heights never decrease.
        leaf_of_unit : ndarray, shape (m,)
            The leaf (cluster of ``cut(n_leaves)``) of each unit.
        """
        raise NotImplementedError


class LinkageTree(Tree):
    """Agglomerative tree from a scipy-format linkage matrix ``Z``."""

    def __init__(self, Z: np.ndarray, n_units: int):
        self.Z = Z
        self.n_units = n_units

    def _roots(self, n_merges: int) -> np.ndarray:
        """Cluster id (scipy numbering) of every unit after the first ``n_merges`` merges."""
        return roots_after(self.Z, self.n_units, n_merges)

    def cut(self, k: int) -> np.ndarray:
        m = self.n_units
        if not 1 <= k <= m:
            raise ValueError(f"cannot cut {m} units into {k} clusters; choose 1 <= k <= {m}.")
        return dense_ranks(self._roots(m - k), 2 * m - k)[1]

    def top(self, n_leaves: int):
        m = self.n_units
        n_leaves = int(np.clip(n_leaves, 1, m))
        first = m - n_leaves
        roots, leaf_of_unit = dense_ranks(self._roots(first), m + first)
        node = {int(r): i for i, r in enumerate(roots)}  # scipy cluster id -> top-tree node
        size = [1] * n_leaves
        Z = np.empty((n_leaves - 1, 4))
        for i, t in enumerate(range(first, m - 1)):
            a, b = node[int(self.Z[t, 0])], node[int(self.Z[t, 1])]
            node[m + t] = n_leaves + i
            size.append(size[a] + size[b])
            Z[i] = (min(a, b), max(a, b), self.Z[t, 2], size[-1])
        return Z, leaf_of_unit.ravel()


class BisectingTree(Tree):
    """Divisive (top-down) tree: bisecting weighted K-means on the units.

    Splits are computed lazily, so cutting at a larger ``k`` later only
    computes the extra splits.
    """

    def __init__(self, points, weights, *, rng, n_init=3):
        self.points = np.asarray(points, np.float64)
        self.weights = np.asarray(weights, np.float64)
        self.n_units = self.points.shape[0]
        self.rng = rng
        self.n_init = n_init
        self.assignment = np.zeros(self.n_units, np.intp)
        self._sse = [self._cluster_sse(np.arange(self.n_units))]
        self.splits: list[np.ndarray] = []  # units moved to cluster i + 1 by split i
        self.split_parent: list[int] = []  # the cluster split i divided
        self.split_sse: list[float] = []  # its sum of squares (never increases from split to split)

    def _cluster_sse(self, members):
        if members.size < 2:
            return 0.0
        p, w = self.points[members], self.weights[members]
        mean = np.average(p, axis=0, weights=w)
        return float(np.dot(w, ((p - mean) ** 2).sum(axis=1)))

    #: Whether a cluster of identical units can still be split (by space, not by value).
    splits_uniform = False

    def grow(self, k: int):
        """Generator: split until there are ``k`` clusters, or none can be split; yields fraction done."""
        start = len(self.splits) + 1
        while len(self.splits) + 1 < min(k, self.n_units):
            sizes = np.bincount(self.assignment, minlength=len(self._sse))
            sse = np.where(sizes >= 2, np.array(self._sse), -1.0)
            if sse.max() < 0 or (sse.max() <= 0 and not self.splits_uniform):
                return  # nothing left to split
            # largest sum of squares first; among equal ones the largest cluster
            target = int(np.lexsort((sizes, sse))[-1])
            members = np.flatnonzero(self.assignment == target)
            moved, stay = self._split(members)
            new_id = len(self.splits) + 1
            self.assignment[moved] = new_id
            self.splits.append(moved)
            self.split_parent.append(target)
            self.split_sse.append(self._sse[target])
            self._sse[target] = self._cluster_sse(stay)
            self._sse.append(self._cluster_sse(moved))
            yield (len(self.splits) + 1 - start) / max(k - start, 1)

    def _split(self, members):
        """Divide a cluster's units in two by weighted 2-means; returns (moved, stay)."""
        p, w = self.points[members], self.weights[members]
        if np.unique(p, axis=0).shape[0] < 2:
            raise ValueError("no cluster can be split further: all remaining units coincide.")
        gen = weighted_kmeans(p, w, 2, rng=self.rng, n_init=self.n_init)
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            lab = stop.value.labels
        moved, stay = members[lab == 1], members[lab == 0]
        if moved.size == 0 or stay.size == 0:  # degenerate split: peel one unit off
            moved, stay = members[-1:], members[:-1]
        return moved, stay

    def cut(self, k: int) -> np.ndarray:
        for _ in self.grow(k):
            pass
        if len(self.splits) + 1 < k:
            raise ValueError(
                f"only {len(self.splits) + 1} clusters can be told apart in these units, not {k}; "
                f"choose n_clusters <= {len(self.splits) + 1}."
            )
        labels = np.zeros(self.n_units, np.intp)
        for i, moved in enumerate(self.splits[: k - 1]):
            labels[moved] = i + 1
        return labels

    def top(self, n_leaves: int):
        for _ in self.grow(n_leaves):
            pass
        n_leaves = int(np.clip(n_leaves, 1, len(self.splits) + 1))
        leaf_of_unit = self.cut(n_leaves)
        # undo the splits from the last to the first: each undo is a merge, at the split's SSE
        node = list(range(n_leaves))
        Z = np.empty((n_leaves - 1, 4))
        size = [1] * n_leaves
        for i, split in enumerate(range(n_leaves - 2, -1, -1)):
            a, b = node[self.split_parent[split]], node[split + 1]
            new = n_leaves + i
            size.append(size[a] + size[b])
            Z[i] = (min(a, b), max(a, b), np.sqrt(2 * self.split_sse[split]), size[new])
            node[self.split_parent[split]] = new
        return Z, leaf_of_unit


class SpanningTreeSplits(BisectingTree):
    """Divisive tree of connected regions: splits cut edges of a minimum spanning tree (SKATER).

    The units' adjacency graph, weighted by the distance between unit means,
    is reduced to its minimum spanning tree. Every cluster is a subtree; the
    cluster with the largest sum of squares is split by removing the one
    tree edge that lowers the total sum of squares most, so both parts stay
    connected. (Units in separate components, e.g. separate time frames, are
    separated first.)
    """

    splits_uniform = True

    def __init__(self, points, weights, edges):
        from scipy.sparse import coo_matrix  # heavy: loaded on first use (LAZY_IMPORTS)
        from scipy.sparse.csgraph import minimum_spanning_tree

        super().__init__(points, weights, rng=None)
        m = self.n_units
        a, b = np.asarray(edges, np.intp).T if len(edges) else (np.empty(0, np.intp),) * 2
        dist = np.sqrt(((self.points[a] - self.points[b]) ** 2).sum(axis=1)) + 1e-12
        mst = minimum_spanning_tree(coo_matrix((dist, (a, b)), shape=(m, m))).tocoo()
        self.neighbours = [[] for _ in range(m)]
        for u, v in zip(mst.row.tolist(), mst.col.tolist()):
            self.neighbours[u].append(v)
            self.neighbours[v].append(u)

    def _components(self, members):
        """Connected pieces of the spanning forest restricted to ``members``, each in BFS order,
        with the BFS parent of every unit."""
        inside = np.zeros(self.n_units, bool)
        inside[members] = True
        seen = np.zeros(self.n_units, bool)
        parent = np.full(self.n_units, -1, np.intp)
        pieces = []
        for root in members.tolist():
            if seen[root]:
                continue
            order = [root]
            seen[root] = True
            for u in order:  # grows while iterating: breadth-first
                for v in self.neighbours[u]:
                    if inside[v] and not seen[v]:
                        seen[v] = True
                        parent[v] = u
                        order.append(v)
            pieces.append(np.array(order))
        return pieces, parent

    def _split(self, members):
        pieces, parent = self._components(members)
        if len(pieces) > 1:  # not connected (separate frames): split off the heaviest other piece
            rest = max(pieces[1:], key=lambda piece: self.weights[piece].sum())
            return rest, np.setdiff1d(members, rest)
        order = pieces[0]
        w = self.weights[order]
        p = self.points[order]
        sw = w.copy()
        s = p * w[:, None]
        q = w * (p**2).sum(axis=1)
        index = {u: i for i, u in enumerate(order.tolist())}
        par = np.array([index.get(int(parent[u]), -1) for u in order])
        for i in range(order.size - 1, 0, -1):  # subtree sums, leaves first
            j = par[i]
            sw[j] += sw[i]
            s[j] += s[i]
            q[j] += q[i]
        total_w, total_s, total_q = sw[0], s[0], q[0]
        sub = np.arange(1, order.size)  # cutting the edge above unit i splits off its subtree
        sse_in = q[sub] - (s[sub] ** 2).sum(axis=1) / sw[sub]
        rest_w = total_w - sw[sub]
        rest_s = total_s - s[sub]
        sse_out = (total_q - q[sub]) - (rest_s**2).sum(axis=1) / rest_w
        best = int(sub[np.argmin(sse_in + sse_out)])
        # the subtree below the best edge
        moved_mask = np.zeros(order.size, bool)
        moved_mask[best] = True
        for i in range(best + 1, order.size):  # BFS order: parents come before children
            moved_mask[i] = moved_mask[par[i]]
        return order[moved_mask], order[~moved_mask]
