"""Compiled (numba) kernels of K-means and of the clusters' statistics: nearest centres, Lloyd
passes, per-label sums and sums of squares.

Imported only through :mod:`._accel` (via :mod:`._kernels`), which falls back to numpy when numba
is missing. Every kernel is deterministic: parallel loops run over a fixed number of blocks (not of
threads), each block in order, and partial sums are added block by block.

The row loops have a serial and a parallel build (:func:`._kernels_reduce.compiled_copy`); ``_accel``
picks one by the number of rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._kernels_reduce import cell_code, compiled_copy

#: Blocks of the parallel loops that sum (fixed, so sums do not depend on the thread count).
N_BLOCKS = 16


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
    acc = np.zeros((N_BLOCKS, k, nf + 1))  # per block and centre: weighted sums, then the weight
    cost = np.zeros(N_BLOCKS)
    per = (n + N_BLOCKS - 1) // N_BLOCKS
    for b in prange(N_BLOCKS):
        for i in range(b * per, min(n, (b + 1) * per)):
            arg, best = _nearest(points, i, centers)
            labels[i] = arg
            w = weights[i]
            acc[b, arg, nf] += w
            for f in range(nf):
                acc[b, arg, f] += w * points[i, f]
            cost[b] += w * best
    total_sums, total_w = _add_blocks(acc)
    total_cost = 0.0
    for b in range(N_BLOCKS):
        total_cost += cost[b]
    return total_sums, total_w, total_cost


@njit(inline="always")
def _add_blocks(acc):
    """Sums over the blocks of ``acc`` (blocks, k, f + 1), in block order (the same sums whatever the
    threads did): (k, f) sums and (k,) weights. Plain loops: array expressions in a parallel
    build become parallel loops of their own, which take seconds more to compile."""
    nb, k, nf1 = acc.shape
    sums = np.zeros((k, nf1 - 1))
    w = np.zeros(k)
    for b in range(nb):
        for j in range(k):
            w[j] += acc[b, j, nf1 - 1]
            for f in range(nf1 - 1):
                sums[j, f] += acc[b, j, f]
    return sums, w


@njit(cache=True, nogil=True, error_model="numpy")
def group_sums(labels, weights, points, k):
    """Per label 0..k-1: the total weight and the weighted sums of the rows of ``points``, added in
    :data:`N_BLOCKS` blocks as :func:`lloyd_pass` adds them (the same sums bit for bit). Serial:
    one pass over at most a few million rows, not worth a parallel launch (nor its compile)."""
    n, nf = points.shape
    acc = np.zeros((N_BLOCKS, k, nf + 1))
    per = (n + N_BLOCKS - 1) // N_BLOCKS
    for b in range(N_BLOCKS):
        for i in range(b * per, min(n, (b + 1) * per)):
            g = labels[i]
            w = weights[i]
            acc[b, g, nf] += w
            for f in range(nf):
                acc[b, g, f] += w * points[i, f]
    total_sums, total_w = _add_blocks(acc)
    return total_w, total_sums


@njit(cache=True, nogil=True, error_model="numpy")
def grid_group_sums(points, weights, levels, lo, span, space):
    """The occupied cells (sorted codes) of a ``levels``-per-axis grid (:func:`cell_codes`' cells,
    ``space`` of them) and, per cell, the total weight and the weighted sums of its rows: what
    :func:`cell_codes`, the cells' ranks and :func:`group_sums` give, bit for bit (the same
    :data:`N_BLOCKS` blocks, each block's sums added in block order), in one serial pass with one
    table of ``space`` cells."""
    n, nf = points.shape
    total = np.zeros((space, nf + 1))
    acc = np.zeros((space, nf + 1))  # one block's sums, then the weight
    last = np.full(space, -1, np.int64)  # the last block that had the cell
    touched = np.empty(space, np.int64)
    per = (n + N_BLOCKS - 1) // N_BLOCKS
    for b in range(N_BLOCKS):
        m = 0
        for i in range(b * per, min(n, (b + 1) * per)):
            g = cell_code(points, i, levels, lo, span)
            if last[g] != b:
                last[g] = b
                touched[m] = g
                m += 1
            w = weights[i]
            acc[g, nf] += w
            for f in range(nf):
                acc[g, f] += w * points[i, f]
        for t in range(m):  # a block that misses a cell would add 0.0: nothing
            g = touched[t]
            for f in range(nf + 1):
                total[g, f] += acc[g, f]
                acc[g, f] = 0.0
    cells = np.flatnonzero(last >= 0)
    sums = np.empty((cells.size, nf))
    w = np.empty(cells.size)
    for j in range(cells.size):
        w[j] = total[cells[j], nf]
        for f in range(nf):
            sums[j, f] = total[cells[j], f]
    return cells, w, sums


@njit(cache=True, nogil=True, error_model="numpy")
def deviation_sums(labels, weights, points, ref, k):
    """The two passes of a clustering's sum of squares, about the reference ``ref`` (f,) (no
    cancellation at a large offset): per label 0..k-1 the mean offset ``shift`` (k, f) of the rows
    from ``ref``; per channel the weighted squares of the rows about their label's mean and about
    ``ref``. Serial, one row at a time: no (rows, channels) temporaries."""
    n, nf = points.shape
    w = np.zeros(k)
    shift = np.zeros((k, nf))
    about_ref = np.zeros(nf)
    for i in range(n):
        g = labels[i]
        wi = weights[i]
        w[g] += wi
        for f in range(nf):
            d = points[i, f] - ref[f]
            shift[g, f] += wi * d
            about_ref[f] += wi * d * d
    for g in range(k):
        for f in range(nf):
            shift[g, f] /= w[g]
    about_means = np.zeros(nf)
    for i in range(n):
        g = labels[i]
        for f in range(nf):
            d = points[i, f] - ref[f] - shift[g, f]
            about_means[f] += weights[i] * d * d
    return shift, about_means, about_ref


# Parallel and serial builds of the row loops: for a few thousand rows, waking the thread pool
# costs more than the loop (and far more while other processes keep the cores busy).
nearest = compiled_copy(_nearest_all, "nearest", True)
nearest_serial = compiled_copy(_nearest_all, "nearest_serial", False)
lloyd_pass = compiled_copy(_lloyd_pass, "lloyd_pass", True)
lloyd_pass_serial = compiled_copy(_lloyd_pass, "lloyd_pass_serial", False)


@njit(cache=True, nogil=True, error_model="numpy")
def weighted_squares(values, ref, weights):
    """Per channel, the weighted sum of squares of the rows of ``values`` (n, c) about ``ref``."""
    n, nc = values.shape
    sq = np.zeros(nc)
    for i in range(n):
        for c in range(nc):
            d = values[i, c] - ref[c]
            sq[c] += weights[i] * d * d
    return sq


@njit(parallel=True, cache=True, error_model="numpy")
def int_label_sums(labels, values, k):
    """Per label 0..k-1: the number of rows and the per-channel sums of small-integer ``values``
    (n, c), added in int64 (exact, so in any order: numpy's float sums of the same integers), the
    rows in :data:`N_BLOCKS` blocks in parallel."""
    n, nc = values.shape
    per = (n + N_BLOCKS - 1) // N_BLOCKS
    acc = np.zeros((N_BLOCKS, k, nc + 1), np.int64)  # per block and label: sums, then the count
    for b in prange(N_BLOCKS):
        for i in range(b * per, min(n, (b + 1) * per)):
            g = labels[i]
            acc[b, g, nc] += 1
            for c in range(nc):
                acc[b, g, c] += values[i, c]
    counts = np.zeros(k, np.int64)
    sums = np.zeros((k, nc), np.int64)
    for b in range(N_BLOCKS):
        for g in range(k):
            counts[g] += acc[b, g, nc]
            for c in range(nc):
                sums[g, c] += acc[b, g, c]
    return counts, sums.astype(np.float64)


@njit(cache=True, nogil=True, error_model="numpy")
def kmeans_1d_layer(D, W, S, Q, c, D_new, arg):
    """One layer of ``kmeans.kmeans_1d_optimal``'s dynamic programme: for every ``i >= c``,
    ``D_new[i] = min_j D[j - 1] + cost(j, i)`` over ``c <= j <= i`` and ``arg[i]``, the smallest
    such ``j``, by the same divide and conquer (the optimal ``j`` never decreases with ``i``) and
    the same float operations as its numpy version: the same results bit for bit."""
    m = D.shape[0]
    stack = np.empty((2 * 64 + 2, 4), np.int64)  # depth-first: at most ~2 log2(m) pending ranges
    stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3] = c, m - 1, c, m - 1
    top = 1
    while top > 0:
        top -= 1
        ilo, ihi, jlo, jhi = stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3]
        mid = (ilo + ihi) // 2
        best = np.inf
        best_j = m
        for j in range(jlo, min(mid, jhi) + 1):
            dw = W[mid + 1] - W[j]
            ds = S[mid + 1] - S[j]
            cost = max((Q[mid + 1] - Q[j]) - ds * ds / dw, 0.0)
            total = D[j - 1] + cost
            if total < best:
                best = total
                best_j = j
        D_new[mid] = best
        arg[mid] = best_j
        if mid + 1 <= ihi:
            stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3] = mid + 1, ihi, best_j, jhi
            top += 1
        if ilo <= mid - 1:
            stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3] = ilo, mid - 1, jlo, best_j
            top += 1
