"""Compiled (numba) kernels of the hierarchies: the colour hierarchy's nearest-neighbour chain, the
pixel-level connected Ward tree (greedy, with an indexed heap) and the cut of a linkage matrix.

Imported only through :mod:`._accel` (via :mod:`._kernels`), which falls back to numpy when numba
is missing.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Linkage codes of :func:`nn_chain`.
LINKAGE_CODES = {"ward": 0, "single": 1, "complete": 2, "average": 3}


@njit(inline="always")
def _grow_chain(D, active, chain, top):
    """Extend the chain (``top`` slots, at least one) by each last slot's nearest active slot (the
    first smallest, as np.argmin; the previous slot on ties) until its last two slots are each
    other's nearest; returns the chain's new length."""
    while True:
        a = chain[top - 1]
        b = a
        best = np.inf
        for j in range(D.shape[0]):  # the first smallest, as np.argmin (inactive slots count as inf)
            if active[j] and D[a, j] < best:
                best = D[a, j]
                b = j
        if top > 1 and D[a, chain[top - 2]] <= D[a, b]:
            b = chain[top - 2]
        if top > 1 and b == chain[top - 2]:
            return top
        chain[top] = b
        top += 1


@njit(inline="always")
def _merge_slots(D, w, active, new, a, b, method):
    """Merge slot ``b`` into slot ``a``: the merged cluster's distances to every active slot by the
    linkage ``method`` (Lance-Williams) into row and column ``a`` (through ``new``), ``b`` retired,
    the weights added."""
    m = D.shape[0]
    height = D[a, b]
    wa = w[a]
    wb = w[b]
    for j in range(m):
        da = D[a, j]
        db = D[b, j]
        if not active[j]:
            continue  # never read again: rows and columns of merged slots count as inf
        if method == 1:
            new[j] = min(da, db)
        elif method == 2:
            new[j] = max(da, db)
        elif method == 3:
            new[j] = (wa * da + wb * db) / (wa + wb)
        else:
            new[j] = ((wa + w[j]) * da + (wb + w[j]) * db - w[j] * height) / (wa + wb + w[j])
    for j in range(m):  # writing only active slots: the column is the slow, strided part
        if active[j]:
            D[a, j] = new[j]
            D[j, a] = new[j]
    D[a, a] = np.inf
    active[b] = False
    w[a] = wa + wb


@njit(cache=True, error_model="numpy")
def nn_chain(D, w, method):
    """The merges of ``hierarchy.weighted_linkage``'s nearest-neighbour chain, on the distance
    matrix ``D`` (modified) and weights ``w`` (modified), with the same arithmetic in the same
    order; ``method`` is a :data:`LINKAGE_CODES` value. Returns the slots (a < b) and the heights
    of the merges, in merge order. Entries of merged slots are skipped instead of set to inf
    (the numpy loop's way), so only active entries are read or written."""
    m = D.shape[0]
    active = np.ones(m, np.bool_)
    merge_a = np.empty(m - 1, np.int64)
    merge_b = np.empty(m - 1, np.int64)
    merge_h = np.empty(m - 1)
    chain = np.empty(m, np.int64)
    top = 0
    first = 0
    new = np.empty(m)
    for t in range(m - 1):
        if top == 0:
            while not active[first]:
                first += 1
            chain[0] = first
            top = 1
        top = _grow_chain(D, active, chain, top)
        b = chain[top - 1]
        a = chain[top - 2]
        top -= 2
        if b < a:
            a, b = b, a
        merge_a[t] = a
        merge_b[t] = b
        merge_h[t] = D[a, b]
        _merge_slots(D, w, active, new, a, b, method)
    return merge_a, merge_b, merge_h


# Connectivity-constrained Ward, greedy (scikit-learn's order): see ``regions.exact_ward``.
# Clusters live in slots (the merged cluster keeps the slot of the one its heap entry named);
# the integer fields of a slot share one row of ``node``.
_PARENT, _NN, _POS, _IDENT, _START, _LENGTH, _MARK, _SIZE = range(8)
#: Children per node of the heap of clusters.
_ARITY = 4


@njit(inline="always")
def _before(cost1, code1, cost2, code2):
    """Pair 1 merges before pair 2: lower cost, ties by the pair code ``hi * total + lo``."""
    return cost1 < cost2 or (cost1 == cost2 and code1 < code2)


@njit(inline="always")
def _put(heap, node, p, cost, code, slot):
    heap[p, 0] = cost
    heap[p, 1] = code
    heap[p, 2] = slot
    node[np.int64(slot), _POS] = p


@njit(inline="always")
def _sift(heap, node, p, size, up):
    """Move heap entry ``p`` up (if ``up`` and it is smaller than its parent) or down to its place."""
    cost = heap[p, 0]
    code = heap[p, 1]
    slot = heap[p, 2]
    moved = False
    while up and p > 0:
        q = (p - 1) // _ARITY
        if not _before(cost, code, heap[q, 0], heap[q, 1]):
            break
        _put(heap, node, p, heap[q, 0], heap[q, 1], heap[q, 2])
        p = q
        moved = True
    while not moved:
        c0 = _ARITY * p + 1
        if c0 >= size:
            break
        best = c0
        for c in range(c0 + 1, min(c0 + _ARITY, size)):
            if _before(heap[c, 0], heap[c, 1], heap[best, 0], heap[best, 1]):
                best = c
        if not _before(heap[best, 0], heap[best, 1], cost, code):
            break
        _put(heap, node, p, heap[best, 0], heap[best, 1], heap[best, 2])
        p = best
    _put(heap, node, p, cost, code, slot)


@njit(inline="always")
def _remove(heap, node, slot, size):
    """Take ``slot``'s entry out of the heap of ``size`` entries; returns the new size."""
    p = node[slot, _POS]
    node[slot, _POS] = -1
    size -= 1
    if p < size:
        _put(heap, node, p, heap[size, 0], heap[size, 1], heap[size, 2])
        _sift(heap, node, p, size, True)
    return size


@njit(inline="always")
def _repair(heap, node, slot, cost, code, partner, size):
    """Give ``slot`` (in the heap) a new first pair, with ``partner``, and move its entry."""
    p = node[slot, _POS]
    node[slot, _NN] = partner
    heap[p, 0] = cost
    heap[p, 1] = code
    _sift(heap, node, p, size, True)


@njit(inline="always")
def _find(node, x):
    """The live slot that slot ``x`` merged into (path compression)."""
    r = x
    while node[r, _PARENT] != r:
        r = node[r, _PARENT]
    while node[x, _PARENT] != r:
        nxt = node[x, _PARENT]
        node[x, _PARENT] = r
        x = nxt
    return r


@njit(inline="always")
def _ward_cost(val, nf, a, b):
    """Increase of the sum of squares when slots a and b merge; ``val`` rows are (weight, sums,
    centroid). scikit-learn's arithmetic (``_hierarchical.compute_ward_dist``)."""
    s = 0.0
    for f in range(nf):
        t = val[a, 1 + nf + f] - val[b, 1 + nf + f]
        s += t * t
    return s * (val[a, 0] * val[b, 0] / (val[a, 0] + val[b, 0]))


@njit(inline="always")
def _nearest_pair(c, node, arena, val, nf, total):
    """Slot ``c``'s first pair in merge order: (cost, code, neighbour slot); neighbour -1 if none."""
    best = np.inf
    best_code = -1
    arg = -1
    ic = node[c, _IDENT]
    s = node[c, _START]
    for p in range(s, s + node[c, _LENGTH]):
        r = _find(node, arena[p])
        if r == c:
            continue
        cost = _ward_cost(val, nf, c, r)
        ir = node[r, _IDENT]
        code = max(ic, ir) * total + min(ic, ir)
        if arg < 0 or _before(cost, code, best, best_code):
            best = cost
            best_code = code
            arg = r
    return best, best_code, arg


@njit(inline="always")
def _ward_values(points, weights):
    """Per point its row of ``val``: weight, weighted sums, centroid."""
    n, nf = points.shape
    val = np.empty((n, 1 + 2 * nf))
    for i in range(n):
        val[i, 0] = weights[i]
        for f in range(nf):
            val[i, 1 + f] = weights[i] * points[i, f]
            val[i, 1 + nf + f] = val[i, 1 + f] / weights[i]
    return val


@njit(inline="always")
def _ward_nodes(n, edge_a, edge_b):
    """The slots' integer fields (``node``, every point its own cluster) and their neighbour lists
    (``arena``, with room for the merged clusters' lists), and the length of the lists in it."""
    node = np.zeros((n, 8), np.int32)
    for i in range(n):
        node[i, _PARENT] = i
        node[i, _IDENT] = i
        node[i, _NN] = -1
        node[i, _POS] = -1
        node[i, _MARK] = -1
        node[i, _SIZE] = 1
    for t in range(edge_a.shape[0]):
        node[edge_a[t], _LENGTH] += 1
        node[edge_b[t], _LENGTH] += 1
    used = 0
    for i in range(n):
        node[i, _START] = used
        used += node[i, _LENGTH]
        node[i, _LENGTH] = 0
    arena = np.empty(max(3 * used, 16), np.int32)  # neighbour lists; merged clusters' appended
    for t in range(edge_a.shape[0]):
        a = edge_a[t]
        b = edge_b[t]
        arena[node[a, _START] + node[a, _LENGTH]] = b
        node[a, _LENGTH] += 1
        arena[node[b, _START] + node[b, _LENGTH]] = a
        node[b, _LENGTH] += 1
    return node, arena, used


@njit(inline="always")
def _ward_heap(node, arena, val, nf, total):
    """The heap of every cluster's first pair (cost, code, slot), and its size."""
    n = node.shape[0]
    heap = np.empty((n, 3))
    size = 0
    for i in range(n):
        cost, code, arg = _nearest_pair(i, node, arena, val, nf, total)
        if arg >= 0:
            node[i, _NN] = arg
            _put(heap, node, size, cost, code, i)
            size += 1
    for p in range((size - 2) // _ARITY, -1, -1):
        _sift(heap, node, p, size, False)
    return heap, size


@njit(inline="always")
def _join(val, node, i, j, nf):
    """Slot ``j``'s cluster joins slot ``i``'s: parent, weight, sums, centroid and size of ``i``."""
    node[j, _PARENT] = i
    w = val[i, 0] + val[j, 0]
    for f in range(nf):
        val[i, 1 + f] = val[i, 1 + f] + val[j, 1 + f]
        val[i, 1 + nf + f] = val[i, 1 + f] / w
    val[i, 0] = w
    node[i, _SIZE] += node[j, _SIZE]


@njit(inline="always")
def _joined_neighbours(node, arena, near, i, j, k):
    """The live neighbours of the clusters of slots ``i`` and ``j``, each once, into ``near`` (marked
    ``k``); returns their number."""
    count = 0
    for src in (i, j):
        s = node[src, _START]
        for p in range(s, s + node[src, _LENGTH]):
            r = _find(node, arena[p])
            if node[r, _MARK] != k:
                node[r, _MARK] = k
                near[count] = r
                count += 1
    return count


@njit(inline="always")
def _with_room(arena, used, count):
    """``arena``, or a copy twice the needed size if ``count`` more entries do not fit."""
    if used + count <= arena.shape[0]:
        return arena
    grown = np.empty(2 * (used + count), np.int32)
    grown[:used] = arena[:used]
    return grown


@njit(inline="always")
def _renew_pairs(heap, node, arena, val, near, count, used, i, j, k, nf, total, size):
    """After slot ``j`` joined slot ``i`` (now cluster ``k``): ``i``'s neighbour list (the ``count``
    slots of ``near``) appended at ``used``; each neighbour's first pair renewed where the new
    cluster is nearer or its pair was with ``i`` or ``j``; ``i``'s own first pair (or ``i`` out of
    the heap when it has no neighbours left). Returns the heap's new size."""
    node[i, _START] = used
    node[i, _LENGTH] = count
    best = np.inf
    best_code = -1
    arg = -1
    for c in range(count):
        col = near[c]
        arena[used + c] = col
        cost = _ward_cost(val, nf, i, col)
        code = k * total + node[col, _IDENT]
        if arg < 0 or _before(cost, code, best, best_code):
            best = cost
            best_code = code
            arg = col
        p = node[col, _POS]
        if _before(cost, code, heap[p, 0], heap[p, 1]):  # now col's first pair
            _repair(heap, node, col, cost, code, i, size)
        elif node[col, _NN] == i or node[col, _NN] == j:  # its pair is gone: look again
            cost2, code2, arg2 = _nearest_pair(col, node, arena, val, nf, total)
            _repair(heap, node, col, cost2, code2, arg2, size)
    if arg >= 0:
        _repair(heap, node, i, best, best_code, arg, size)
    else:  # no neighbours left
        size = _remove(heap, node, i, size)
    return size


@njit(cache=True, error_model="numpy")
def ward_greedy(points, weights, edge_a, edge_b):
    """Ward merges of weighted points where only touching clusters merge, always the pair of
    lowest cost first (ties: lower ``(max id, min id)``, ids as in scipy), until no touching pairs
    remain. Returns the merges in scipy's format, heights made non-decreasing. Pair codes are
    stored as float64: exact for fewer than 2**26 points.

    Every cluster keeps its first pair (cost, code, neighbour) in an indexed heap, so a merge
    touches only the new cluster's neighbours: those whose first pair was with a merged cluster
    look again through their own neighbours.
    """
    n, nf = points.shape
    total = 2 * n - 1
    val = _ward_values(points, weights)
    node, arena, used = _ward_nodes(n, edge_a, edge_b)
    heap, size = _ward_heap(node, arena, val, nf, total)
    Z = np.empty((max(n - 1, 0), 4))
    near = np.empty(n, np.int32)
    k = n
    top = 0.0
    while size > 0:
        i = np.int64(heap[0, 2])
        j = np.int64(node[i, _NN])
        cost = heap[0, 0]
        size = _remove(heap, node, j, size)  # the merged cluster (slot i) takes i's entry
        _join(val, node, i, j, nf)
        top = max(top, np.sqrt(2.0 * cost))
        Z[k - n, 0] = min(node[i, _IDENT], node[j, _IDENT])
        Z[k - n, 1] = max(node[i, _IDENT], node[j, _IDENT])
        Z[k - n, 2] = top
        Z[k - n, 3] = node[i, _SIZE]
        node[i, _IDENT] = k
        node[i, _MARK] = k
        count = _joined_neighbours(node, arena, near, i, j, k)
        arena = _with_room(arena, used, count)
        size = _renew_pairs(heap, node, arena, val, near, count, used, i, j, k, nf, total, size)
        used += count
        k += 1
    return Z[: k - n]


@njit(cache=True, error_model="numpy")
def roots_after(Z, m, n_merges):
    """Cluster id (scipy numbering) of each of the ``m`` units after the first ``n_merges`` merges
    of the linkage matrix ``Z``: one pass from the top, as a parent's id exceeds its children's."""
    parent = np.arange(m + n_merges)
    for t in range(n_merges):
        parent[np.int64(Z[t, 0])] = m + t
        parent[np.int64(Z[t, 1])] = m + t
    for v in range(m + n_merges - 1, -1, -1):
        parent[v] = parent[parent[v]]
    return parent[:m]
