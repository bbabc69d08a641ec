"""Agglomerative trees under a connectivity constraint: only touching clusters merge.

:func:`exact_ward` builds connected Ward on single pixels (the same tree as scikit-learn's
structured Ward with a pixel-grid connectivity); :func:`connected_linkage` builds the tree of
superpixels for every linkage. The units and their adjacency come from :mod:`.regions`.
"""

from __future__ import annotations

import heapq

import numpy as np

from . import _accel
from ._chunks import dense_ranks, group_means
from .hierarchy import roots_after, weighted_linkage


def exact_ward(points, weights, edges):
    """Generator: connectivity-constrained Ward, merging the cheapest touching pair first.

    Yields the fraction done (the Python loop only); returns the scipy-format
    linkage matrix (m - 1, 4). This is the order of scikit-learn's
    ``ward_tree`` with a connectivity (the same arithmetic, ties broken by
    scipy ids the same way), so on single pixels with a grid connectivity it
    gives scikit-learn's tree. Clusters left apart by the constraint
    (separate components) are joined last, by unconstrained Ward.

    With numba the loop is compiled (:func:`._accel.ward_greedy`); without, a
    heap in Python (about scikit-learn's speed) makes the same merges.
    """
    points = np.ascontiguousarray(points, np.float64)
    weights = np.ascontiguousarray(weights, np.float64)
    edges = np.ascontiguousarray(np.asarray(edges, np.int64).reshape(-1, 2))
    if _accel.enabled():
        Z = _accel.ward_greedy(points, weights, edges)
    else:
        Z = yield from _exact_ward_python(points, weights, edges)
    return _join_forest(Z, points, weights)


def _exact_ward_python(points, weights, edges, report_every=4096):
    """Generator: the merges of :func:`._kernels_hierarchy.ward_greedy`, with a heap of all touching pairs
    (as scikit-learn's ``ward_tree``); yields the fraction done every ``report_every`` merges."""
    m, nf = points.shape
    total = 2 * m - 1
    weight = np.empty(total)
    sums = np.empty((total, nf))
    centroid = np.empty((total, nf))
    weight[:m] = weights
    sums[:m] = weights[:, None] * points
    centroid[:m] = sums[:m] / weights[:, None]
    size = np.ones(total, np.int64)
    alive = np.zeros(total, bool)
    alive[:m] = True
    neighbours = [set() for _ in range(m)]
    for a, b in edges.tolist():
        if a != b:
            neighbours[a].add(b)
            neighbours[b].add(a)

    def costs(k, others):
        diff = centroid[others] - centroid[k]
        return (diff * diff).sum(axis=1) * (weight[k] * weight[others] / (weight[k] + weight[others]))

    a, b = _unique_pairs(edges[:, 0], edges[:, 1], max(m, 1))
    heap = list(zip(costs(b, a).tolist(), b.tolist(), a.tolist())) if a.size else []  # (cost, hi, lo)
    heapq.heapify(heap)
    rows = []
    top = 0.0
    while heap:
        cost, hi, lo = heapq.heappop(heap)
        if not (alive[hi] and alive[lo]):
            continue  # a pair of a cluster that has merged since
        k = m + len(rows)
        alive[hi] = alive[lo] = False
        alive[k] = True
        weight[k] = weight[hi] + weight[lo]
        sums[k] = sums[hi] + sums[lo]
        centroid[k] = sums[k] / weight[k]
        size[k] = size[hi] + size[lo]
        top = max(top, float(np.sqrt(2.0 * cost)))
        rows.append((lo, hi, top, size[k]))
        near = (neighbours[hi] | neighbours[lo]) - {hi, lo}
        neighbours[hi] = neighbours[lo] = None
        neighbours.append(near)
        for x in near:
            neighbours[x].discard(hi)
            neighbours[x].discard(lo)
            neighbours[x].add(k)
        if near:
            others = np.fromiter(near, np.int64, len(near))
            for c, x in zip(costs(k, others).tolist(), others.tolist()):
                heapq.heappush(heap, (c, k, x))
        if len(rows) % report_every == 0:
            yield len(rows) / max(m - 1, 1)
    return np.array(rows, np.float64).reshape(-1, 4)


def _join_forest(Z, points, weights):
    """Complete a forest of merges (scipy format, ``len(Z) < m - 1`` when the constraint left
    several roots) with unconstrained Ward merges of its roots."""
    m = points.shape[0]
    if Z.shape[0] >= m - 1:
        return Z
    roots, root_of_unit = dense_ranks(roots_after(Z, m, Z.shape[0]), m + Z.shape[0])
    centroid, weight = group_means(points, weights, root_of_unit, roots.size)
    return _join_roots(Z, m, roots, centroid, weight, np.bincount(root_of_unit))


def _join_roots(Z, m, roots, centroid, weight, sizes):
    """Append to the merges ``Z`` of ``m`` units unconstrained Ward merges of the clusters
    ``roots`` (scipy ids) with these centroids, weights and unit counts; heights stay at least
    the last one."""
    n_done = Z.shape[0]
    roots = [int(r) for r in roots]  # ids of the roots, then of their merges
    sizes = [int(x) for x in sizes]
    top = Z[-1, 2] if n_done else 0.0
    tail = []
    for i, j, h, _ in weighted_linkage(centroid, weight, "ward"):
        i, j = int(i), int(j)
        sizes.append(sizes[i] + sizes[j])
        tail.append((min(roots[i], roots[j]), max(roots[i], roots[j]), max(top, h), sizes[-1]))
        roots.append(m + n_done + len(tail) - 1)
    return np.concatenate([Z.reshape(-1, 4), np.array(tail, np.float64).reshape(-1, 4)])


def _pair_distance(method, ca, wa, ma, cb, wb, mb, points, weights):
    """Linkage distance between clusters a and b (centroid c, weight w, member units m)."""
    if method == "ward":
        d2 = float(((ca - cb) ** 2).sum())
        return np.sqrt(2 * wa * wb / (wa + wb) * d2)
    pa, pb = points[ma], points[mb]
    d = np.sqrt(np.maximum(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1), 0))
    if method == "single":
        return float(d.min())
    if method == "complete":
        return float(d.max())
    return float(weights[ma] @ d @ weights[mb] / (wa * wb))  # average


def connected_linkage(points, weights, edges, method="ward", *, random_state=0):
    """Agglomerative clustering of weighted units where only adjacent clusters merge.

    Parameters
    ----------
    points : ndarray, shape (m, n_features)
        Unit means.
    weights : ndarray, shape (m,)
        Unit pixel counts.
    edges : ndarray, shape (e, 2)
        Adjacent unit pairs (indices into ``points``).
    method : {"ward", "complete", "average", "single"}
    random_state : int or None, default 0
        Seed of the order in which Ward's rounds break ties (None: a fresh seed).

    Returns
    -------
    Z : ndarray, shape (m - 1, 4)
        scipy-format linkage matrix, merges in order. Under a connectivity
        constraint no linkage is guaranteed monotone (a merge can make two
        clusters adjacent that are closer than the last merge), so heights
        are made non-decreasing. Units in separate connected components are
        joined last, by the same criterion without the constraint.

    Notes
    -----
    Ward merges all *mutual nearest neighbours* among adjacent clusters at
    once, round after round, in vectorised numpy (:func:`_ward_mutual_nearest`);
    the other linkages merge the closest adjacent pair one at a time from a
    heap (:func:`_greedy_linkage`). Without a constraint both give the exact
    hierarchy (Ward is reducible, so every mutual pair is merged by the greedy
    order too). With one, a merge may expose a closer pair that the greedy order
    would have taken first, so the two orders can differ: on a noisy grid of
    units the sums of squares of the cuts agree within 1 % on average (tested).
    Either order is a valid constrained Ward tree, and neither is better: on
    single pixels of 128² photos the cuts at one k differed from the greedy
    order's (= scikit-learn's) by -13 % to +17 %. The rounds are 5-10x faster.
    """
    if method == "ward":
        return _ward_mutual_nearest(points, weights, edges, random_state)
    return _greedy_linkage(points, weights, edges, method)


def _unique_pairs(a, b, n):
    """Sorted unique pairs (min, max) of the edges (a, b) between n nodes, self-loops dropped."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    codes = (lo * n + hi)[lo != hi]
    codes.sort()
    if codes.size:
        codes = codes[np.concatenate(([True], codes[1:] != codes[:-1]))]
    return codes // n, codes % n


def _ward_mutual_nearest(points, weights, edges, random_state=0):
    """Connectivity-constrained Ward by rounds of mutual-nearest-neighbour merges.

    In every round each active cluster's nearest adjacent cluster is found
    (ties broken in a seeded random order of the edges, so a cluster is in at
    most one pair and runs of equal pixels do not merge one pair per round),
    and all pairs that are each other's nearest are merged at once. The merges are
    then ordered by height, each at least as high as the merges below it.
    """
    points = np.asarray(points, np.float64)
    weights = np.asarray(weights, np.float64)
    m = points.shape[0]
    centroid, weight = points.copy(), weights.copy()
    ident = np.arange(m)  # of each active cluster: units 0..m-1, the t-th merge m + t
    level = np.zeros(max(2 * m - 1, 1))  # height of each merge, at least its parts' heights
    size = np.ones(max(2 * m - 1, 1), np.int64)
    children = np.empty((max(m - 1, 0), 2), np.int64)
    n_done = 0
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    a, b = _unique_pairs(edges[:, 0], edges[:, 1], max(m, 1))
    shuffle = np.random.default_rng(random_state)  # ties broken at random (seeded), not along chains
    while a.size:
        n, n_edges = centroid.shape[0], a.size
        order = shuffle.permutation(n_edges)
        a, b = a[order], b[order]
        wa, wb = weight[a], weight[b]
        diff = centroid[a] - centroid[b]
        cost = np.einsum("ij,ij->i", diff, diff) * (wa * wb / (wa + wb))  # half Ward height squared
        # every cluster's nearest neighbour: its edge of lowest rank by (cost, edge number)
        rank = np.empty(n_edges, np.int64)
        rank[np.argsort(cost, kind="stable")] = np.arange(n_edges)
        nearest = np.full(n, n_edges)
        np.minimum.at(nearest, a, rank)
        np.minimum.at(nearest, b, rank)
        chosen = np.flatnonzero((nearest[a] == rank) & (nearest[b] == rank))
        pa, pb = a[chosen], b[chosen]
        new = m + n_done + np.arange(pa.size)
        children[new - m] = np.stack([ident[pa], ident[pb]], axis=1)
        level[new] = np.maximum(np.sqrt(2 * cost[chosen]), np.maximum(level[ident[pa]], level[ident[pb]]))
        size[new] = size[ident[pa]] + size[ident[pb]]
        n_done += pa.size
        # the merged cluster takes a's slot; b's slot is dropped
        wa, wb = weight[pa], weight[pb]
        centroid[pa] = (wa[:, None] * centroid[pa] + wb[:, None] * centroid[pb]) / (wa + wb)[:, None]
        weight[pa] = wa + wb
        ident[pa] = new
        alive = np.ones(n, bool)
        alive[pb] = False
        slot = np.arange(n)
        slot[pb] = pa
        slot = (np.cumsum(alive) - 1)[slot]
        centroid, weight, ident = centroid[alive], weight[alive], ident[alive]
        a, b = _unique_pairs(slot[a], slot[b], centroid.shape[0])
    # all merges by height; a merge is never lower than its parts, so parts come first
    order = np.argsort(level[m : m + n_done], kind="stable")
    scipy_id = np.arange(m + n_done)
    scipy_id[m + order] = m + np.arange(n_done)
    pairs = np.sort(scipy_id[children[order]], axis=1)
    Z = np.column_stack([pairs, level[m + order], size[m + order]]).astype(np.float64)
    if ident.size > 1:  # join what the constraint left apart (separate components), unconstrained
        Z = _join_roots(Z, m, scipy_id[ident], centroid, weight, size[ident])
    return Z.reshape(-1, 4)


def _ward_height(wa, wb, d2):
    """Ward's merge height of clusters of weights ``wa``, ``wb`` whose centroids are ``d2`` apart
    (squared)."""
    return np.sqrt(2 * wa * wb / (wa + wb) * d2)


def _neighbour_sets(m, edges):
    """Each of the ``m`` units' set of touching units (an edge of a unit to itself is dropped)."""
    neighbours = {i: set() for i in range(m)}
    for a, b in edges:
        if a != b:
            neighbours[int(a)].add(int(b))
            neighbours[int(b)].add(int(a))
    return neighbours


def _pair_heap(method, neighbours, points, weights, dist):
    """The heap (distance, a, b) of every touching pair of units a < b."""
    m = points.shape[0]
    pairs = np.array([(a, b) for a in range(m) for b in neighbours[a] if a < b], np.intp).reshape(-1, 2)
    if method == "ward":  # all at once: Ward needs only the unit means and weights
        d2 = ((points[pairs[:, 0]] - points[pairs[:, 1]]) ** 2).sum(axis=1)
        first = _ward_height(weights[pairs[:, 0]], weights[pairs[:, 1]], d2).tolist()
    else:
        first = [dist(a, b) for a, b in pairs.tolist()]
    heap = list(zip(first, pairs[:, 0].tolist(), pairs[:, 1].tolist()))
    heapq.heapify(heap)
    return heap


def _rewire(neighbours, a, b, new):
    """Clusters a and b merged into ``new``: their neighbours become ``new``'s (returned)."""
    near = (neighbours.pop(a) | neighbours.pop(b)) - {a, b}
    neighbours[new] = near
    for n in near:
        neighbours[n].discard(a)
        neighbours[n].discard(b)
        neighbours[n].add(new)
    return near


def _distances_to(method, new, near, centroid, weight, dist):
    """Linkage distances of the clusters ``near`` (a list) to the cluster ``new``."""
    if method == "ward":  # all neighbours at once: Ward needs only centroids and weights
        cn = np.array([centroid[n] for n in near])
        wn = np.array([weight[n] for n in near])
        return _ward_height(wn, weight[new], ((cn - centroid[new]) ** 2).sum(axis=1))
    return [dist(n, new) for n in near]


def _greedy_linkage(points, weights, edges, method):
    """Constrained agglomeration that always merges the closest adjacent pair (a heap)."""
    points = np.asarray(points, np.float64)
    weights = np.asarray(weights, np.float64)
    m = points.shape[0]
    centroid = {i: points[i].copy() for i in range(m)}
    weight = {i: float(weights[i]) for i in range(m)}
    members = {i: np.array([i]) for i in range(m)}
    neighbours = _neighbour_sets(m, edges)

    def dist(a, b):
        return _pair_distance(
            method, centroid[a], weight[a], members[a], centroid[b], weight[b], members[b], points, weights
        )

    heap = _pair_heap(method, neighbours, points, weights, dist)
    Z = []

    def merge(a, b, d):
        """Join clusters a and b at height d (kept non-decreasing); returns the new cluster id."""
        new = m + len(Z)
        height = max(Z[-1][2], d) if Z else d
        wa, wb = weight.pop(a), weight.pop(b)
        ca, cb = centroid.pop(a), centroid.pop(b)
        weight[new] = wa + wb
        centroid[new] = (wa * ca + wb * cb) / (wa + wb)
        members[new] = np.concatenate([members.pop(a), members.pop(b)])
        Z.append((min(a, b), max(a, b), height, members[new].size))
        return new

    while heap:
        d, a, b = heapq.heappop(heap)
        if a not in centroid or b not in centroid:
            continue  # a stale entry: one of the two has merged since
        new = merge(a, b, d)
        near = list(_rewire(neighbours, a, b, new))
        for n, d_n in zip(near, _distances_to(method, new, near, centroid, weight, dist) if near else []):
            heapq.heappush(heap, (float(d_n), n, new))
    # join what the constraint left apart (separate components), nearest first
    roots = sorted(centroid)
    while len(roots) > 1:
        d, a, b = min((dist(a, b), a, b) for i, a in enumerate(roots) for b in roots[i + 1 :])
        merge(a, b, d)
        roots = sorted(centroid)
    return np.array(Z, dtype=np.float64).reshape(-1, 4)
