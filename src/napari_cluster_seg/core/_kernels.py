"""Compiled (numba) kernels for the hot loops of K-means and of the colour hierarchy.

Imported only through :mod:`._accel`, which falls back to numpy when numba is
missing. Every kernel is deterministic: parallel loops run over a fixed number
of blocks (not of threads), each block in order, and partial sums are added
block by block.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: Blocks of the parallel loops that sum (fixed, so sums do not depend on the thread count).
N_BLOCKS = 16


@njit(cache=True, nogil=True)
def count_rgb8(values, table):
    """``table[code] += 1`` for every uint8 RGB row (code ``r + 256 g + 65536 b``)."""
    for i in range(values.shape[0]):
        table[np.int64(values[i, 0]) | np.int64(values[i, 1]) << 8 | np.int64(values[i, 2]) << 16] += 1


@njit(parallel=True, cache=True)
def lookup_rgb8(values, lut, out):
    """``out[i] = lut[code of row i]`` for uint8 RGB rows, in parallel."""
    for i in prange(values.shape[0]):
        out[i] = lut[np.int64(values[i, 0]) | np.int64(values[i, 1]) << 8 | np.int64(values[i, 2]) << 16]


@njit(parallel=True, cache=True)
def count_grey(values, tables):
    """Histogram of unsigned integer ``values`` (n,): block ``b`` of the rows counts into
    ``tables[b]``; the caller adds the tables up."""
    n = values.shape[0]
    n_tables = tables.shape[0]
    per = (n + n_tables - 1) // n_tables
    for b in prange(n_tables):
        table = tables[b]
        for i in range(b * per, min(n, (b + 1) * per)):
            table[values[i]] += 1


@njit(parallel=True, cache=True)
def lookup_grey(values, lut, out):
    """``out[i] = lut[values[i]]`` for unsigned integer ``values``, in parallel."""
    for i in prange(values.shape[0]):
        out[i] = lut[values[i]]


@njit(inline="always")
def _nearest(points, i, centers):
    """Index of the centre nearest to row ``i`` (ties: the lower index) and its squared distance."""
    best = np.inf
    arg = 0
    for j in range(centers.shape[0]):
        d = 0.0
        for f in range(points.shape[1]):
            t = points[i, f] - centers[j, f]
            d += t * t
        if d < best:
            best = d
            arg = j
    return arg, best


def _nearest_all(points, centers, labels, d2):
    """Nearest centre of every row into ``labels``; squared distances into ``d2`` unless it is empty."""
    n = points.shape[0]
    keep = d2.shape[0] > 0
    for i in prange(n):
        arg, best = _nearest(points, i, centers)
        labels[i] = arg
        if keep:
            d2[i] = best


def _lloyd_pass(points, weights, centers, labels):
    """One Lloyd assignment: every row's nearest centre into ``labels``; returns the weighted sums
    of the rows per centre (k, f), the weights per centre (k,) and the weighted sum of squared
    distances to the nearest centres."""
    n, nf = points.shape
    k = centers.shape[0]
    sums = np.zeros((N_BLOCKS, k, nf))
    wsum = np.zeros((N_BLOCKS, k))
    cost = np.zeros(N_BLOCKS)
    per = (n + N_BLOCKS - 1) // N_BLOCKS
    for b in prange(N_BLOCKS):
        for i in range(b * per, min(n, (b + 1) * per)):
            arg, best = _nearest(points, i, centers)
            labels[i] = arg
            w = weights[i]
            wsum[b, arg] += w
            for f in range(nf):
                sums[b, arg, f] += w * points[i, f]
            cost[b] += w * best
    total_sums = np.zeros((k, nf))
    total_w = np.zeros(k)
    total_cost = 0.0
    for b in range(N_BLOCKS):  # in block order: the same sums whatever the threads did
        total_sums += sums[b]
        total_w += wsum[b]
        total_cost += cost[b]
    return total_sums, total_w, total_cost


def _group_sums(labels, weights, points, k):
    """Per label 0..k-1: the total weight and the weighted sums of the rows of ``points``."""
    n, nf = points.shape
    sums = np.zeros((N_BLOCKS, k, nf))
    wsum = np.zeros((N_BLOCKS, k))
    per = (n + N_BLOCKS - 1) // N_BLOCKS
    for b in prange(N_BLOCKS):
        for i in range(b * per, min(n, (b + 1) * per)):
            g = labels[i]
            w = weights[i]
            wsum[b, g] += w
            for f in range(nf):
                sums[b, g, f] += w * points[i, f]
    total_sums = np.zeros((k, nf))
    total_w = np.zeros(k)
    for b in range(N_BLOCKS):
        total_sums += sums[b]
        total_w += wsum[b]
    return total_w, total_sums


# Parallel and serial builds of the row loops: for a few thousand rows, waking the thread pool
# costs more than the loop (and far more while other processes keep the cores busy).
nearest = njit(parallel=True, cache=True)(_nearest_all)
nearest_serial = njit(cache=True)(_nearest_all)
lloyd_pass = njit(parallel=True, cache=True)(_lloyd_pass)
lloyd_pass_serial = njit(cache=True)(_lloyd_pass)
group_sums = njit(parallel=True, cache=True)(_group_sums)
group_sums_serial = njit(cache=True)(_group_sums)


def _cell_codes(points, levels, lo, span, out):
    """Code of the grid cell of every row (``levels`` cells per axis over ``lo + [0, span]``),
    with exactly the float operations of ``reduce._cell_codes``."""
    n, nf = points.shape
    top = levels - 1
    for i in prange(n):
        code = 0
        for f in range(nf):
            t = (points[i, f] - lo[f]) / span[f] * levels
            t = min(max(t, 0.0), top)
            code = code * levels + np.int64(t)
        out[i] = code


cell_codes = njit(parallel=True, cache=True)(_cell_codes)
cell_codes_serial = njit(cache=True)(_cell_codes)


#: Linkage codes of :func:`nn_chain`.
LINKAGE_CODES = {"ward": 0, "single": 1, "complete": 2, "average": 3}


@njit(cache=True)
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
        while True:
            a = chain[top - 1]
            b = a
            best = np.inf
            for j in range(m):  # the first smallest, as np.argmin (inactive slots count as inf)
                if active[j] and D[a, j] < best:
                    best = D[a, j]
                    b = j
            if top > 1 and D[a, chain[top - 2]] <= D[a, b]:
                b = chain[top - 2]
            if top > 1 and b == chain[top - 2]:
                break
            chain[top] = b
            top += 1
        b = chain[top - 1]
        a = chain[top - 2]
        top -= 2
        if b < a:
            a, b = b, a
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
        merge_a[t] = a
        merge_b[t] = b
        merge_h[t] = height
    return merge_a, merge_b, merge_h
