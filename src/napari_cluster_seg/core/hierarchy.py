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
    active = np.ones(m, bool)
    merges = []  # (slot a, slot b, height); the merged cluster keeps slot a
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
        m = self.n_units
        parent = np.arange(2 * m - 1)
        for t in range(n_merges):
            parent[int(self.Z[t, 0])] = m + t
            parent[int(self.Z[t, 1])] = m + t
        while True:  # pointer doubling until every node points at its root
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                return parent[:m]
            parent = nxt

    def cut(self, k: int) -> np.ndarray:
        m = self.n_units
        if not 1 <= k <= m:
            raise ValueError(f"cannot cut {m} units into {k} clusters; choose 1 <= k <= {m}.")
        _, labels = np.unique(self._roots(m - k), return_inverse=True)
        return labels.ravel()

    def top(self, n_leaves: int):
        m = self.n_units
        n_leaves = int(np.clip(n_leaves, 1, m))
        first = m - n_leaves
        roots, leaf_of_unit = np.unique(self._roots(first), return_inverse=True)
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

    def grow(self, k: int):
        """Generator: split until there are ``k`` clusters; yields fraction done."""
        if k > self.n_units:
            raise ValueError(f"cannot split {self.n_units} units into {k} clusters.")
        start = len(self.splits) + 1
        while len(self.splits) + 1 < k:
            target = int(np.argmax(self._sse))
            members = np.flatnonzero(self.assignment == target)
            p, w = self.points[members], self.weights[members]
            if np.unique(p, axis=0).shape[0] < 2:
                raise ValueError("no cluster can be split further: all remaining units coincide.")
            gen = weighted_kmeans(p, w, 2, rng=self.rng, n_init=self.n_init)
            try:
                while True:
                    next(gen)
            except StopIteration as stop:
                _, lab, _ = stop.value
            moved = members[lab == 1]
            stay = members[lab == 0]
            if moved.size == 0 or stay.size == 0:  # degenerate split: peel one unit off
                moved = members[-1:]
                stay = members[:-1]
            new_id = len(self.splits) + 1
            self.assignment[moved] = new_id
            self.splits.append(moved)
            self.split_parent.append(target)
            self.split_sse.append(self._sse[target])
            self._sse[target] = self._cluster_sse(stay)
            self._sse.append(self._cluster_sse(moved))
            yield (len(self.splits) + 1 - start) / max(k - start, 1)

    def cut(self, k: int) -> np.ndarray:
        for _ in self.grow(k):
            pass
        labels = np.zeros(self.n_units, np.intp)
        for i, moved in enumerate(self.splits[: k - 1]):
            labels[moved] = i + 1
        return labels

    def top(self, n_leaves: int):
        n_leaves = int(np.clip(n_leaves, 1, self.n_units))
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
