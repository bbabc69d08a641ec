"""Compiled (numba) kernels for the hot loops of K-means and of the colour hierarchy.

Imported only through :mod:`._accel`, which falls back to numpy when numba is
missing. Every kernel is deterministic: parallel loops run over a fixed number
of blocks (not of threads), each block in order, and partial sums are added
block by block.

The row loops have a serial and a parallel build (:func:`_build`); ``_accel``
picks one by the number of rows.
"""

from __future__ import annotations

import types

import numpy as np
from numba import njit, prange

#: Blocks of the parallel loops that sum (fixed, so sums do not depend on the thread count).
N_BLOCKS = 16


@njit(cache=True, nogil=True, error_model="numpy")
def count_rgb8(values, table):
    """``table[code] += 1`` for every uint8 RGB row (code ``r + 256 g + 65536 b``)."""
    for i in range(values.shape[0]):
        table[np.int64(values[i, 0]) | np.int64(values[i, 1]) << 8 | np.int64(values[i, 2]) << 16] += 1


@njit(parallel=True, cache=True, error_model="numpy")
def lookup_rgb8(values, lut, out):
    """``out[i] = lut[code of row i]`` for uint8 RGB rows, in parallel."""
    for i in prange(values.shape[0]):
        out[i] = lut[np.int64(values[i, 0]) | np.int64(values[i, 1]) << 8 | np.int64(values[i, 2]) << 16]


@njit(parallel=True, cache=True, error_model="numpy")
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


@njit(parallel=True, cache=True, error_model="numpy")
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


def _build(fn, name: str, parallel: bool):
    """``fn`` compiled (lazily, cached on disk) under the name ``name``. numba's disk cache keys an
    entry by the function's name, code and argument types, not by its options: two builds of one
    function would share entries, and the second build would load the first one's code (a
    "parallel" build running the serial loop, or the reverse). A copy of the function under its
    own name gets entries of its own."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = name
    copy.__doc__ = fn.__doc__
    return njit(parallel=parallel, cache=True, error_model="numpy")(copy)


# Parallel and serial builds of the row loops: for a few thousand rows, waking the thread pool
# costs more than the loop (and far more while other processes keep the cores busy).
nearest = _build(_nearest_all, "nearest", True)
nearest_serial = _build(_nearest_all, "nearest_serial", False)
lloyd_pass = _build(_lloyd_pass, "lloyd_pass", True)
lloyd_pass_serial = _build(_lloyd_pass, "lloyd_pass_serial", False)


@njit(cache=True, nogil=True, error_model="numpy")
def cell_codes(points, levels, lo, span, out):
    """Code of the grid cell of every row (``levels`` cells per axis over ``lo + [0, span]``),
    with exactly the float operations of ``units._cell_codes``. Serial, as :func:`group_sums`."""
    n, nf = points.shape
    top = levels - 1
    for i in range(n):
        code = 0
        for f in range(nf):
            t = (points[i, f] - lo[f]) / span[f] * levels
            t = min(max(t, 0.0), top)
            code = code * levels + np.int64(t)
        out[i] = code


@njit(inline="always")
def _grid_code(values, i, lo, step, levels, edges, starts, e0, width, tabs):
    """The grid cell of row ``i`` with exactly ``reduce.Coder``'s operations: per channel a regular
    cell (``(v - lo) / step``, truncated, clipped) or, where the channel has boundaries
    (``edges[starts[c]:starts[c + 1]]``, sorted), the number of boundaries <= v (numpy's
    ``searchsorted(side="right")``; NaN sorts last). ``tabs[c, j]`` counts the boundaries <= ``e0[c]
    + j * width[c]``: the bins next to v's bound the search to a few boundaries."""
    code = 0
    stride = 1
    nb = tabs.shape[1] - 2
    for c in range(values.shape[1]):
        x = np.float64(values[i, c])
        a = starts[c]
        m = starts[c + 1] - a
        if m > 0:
            if x != x:
                q = m
            else:
                t = (x - e0[c]) / width[c]
                t = min(max(t, -1.0), nb + 3.0)
                bin_ = np.int64(t) if t >= 0 else np.int64(-1)
                left = tabs[c, bin_ - 1] if bin_ >= 1 else 0
                if bin_ - 1 > nb + 1:
                    left = tabs[c, nb + 1]
                right = tabs[c, max(bin_, 0) + 2] if max(bin_, 0) + 2 <= nb + 1 else m
                while left < right:
                    mid = (left + right) >> 1
                    if edges[a + mid] <= x:
                        left = mid + 1
                    else:
                        right = mid
                q = left
        else:
            f = (x - lo[c]) / step[c]
            top = levels[c] - 1
            q = 0 if f <= 0.0 else (top if f >= top else np.int64(f))
        code += q * stride
        stride *= levels[c]
    return code


@njit(cache=True, nogil=True, error_model="numpy")
def cell_sums(values, lo, step, levels, edges, starts, e0, width, tabs, ref, chunk, acc, sq):
    """Add to ``acc`` (cells, c + 1) the per-channel sums and (last column) the pixel counts of the
    rows of ``values`` (n, c) per grid cell (:func:`_grid_code`), and to ``sq`` (c,) their squares
    about ``ref``. Chunk by chunk of ``chunk`` rows, each chunk's sums started from zero and then
    added, as numpy's per-chunk ``bincount`` (the same sums bit for bit; the squares are added in
    another order). Serial: one pass instead of a code array and c + 1 bincounts."""
    n, nc = values.shape
    part = np.zeros_like(acc)
    csq = np.zeros(nc)
    touched = np.empty(min(chunk, acc.shape[0]), np.int64)
    for start in range(0, n, chunk):
        m = 0
        for i in range(start, min(n, start + chunk)):
            code = _grid_code(values, i, lo, step, levels, edges, starts, e0, width, tabs)
            if part[code, nc] == 0.0:
                touched[m] = code
                m += 1
            part[code, nc] += 1.0
            for c in range(nc):
                x = np.float64(values[i, c])
                part[code, c] += x
                d = x - ref[c]
                csq[c] += d * d
        for j in range(m):
            code = touched[j]
            for c in range(nc + 1):
                acc[code, c] += part[code, c]
                part[code, c] = 0.0
        for c in range(nc):
            sq[c] += csq[c]
            csq[c] = 0.0


@njit(parallel=True, cache=True, error_model="numpy")
def lookup_grid(values, lo, step, levels, edges, starts, e0, width, tabs, table, out):
    """``out[i] = table[grid cell of row i]`` (:func:`_grid_code`), in parallel."""
    for i in prange(values.shape[0]):
        out[i] = table[_grid_code(values, i, lo, step, levels, edges, starts, e0, width, tabs)]


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


@njit(cache=True, nogil=True, error_model="numpy")
def decode_codes(codes, levels, out):
    """``out[i, c]``: the digit of channel ``c`` of ``codes[i]`` in the mixed radix ``levels``
    (channel 0 least significant), as a float."""
    nc = levels.shape[0]
    shifts = np.full(nc, -1, np.int64)  # powers of two (uint8 RGB): a mask and a shift
    for c in range(nc):
        if levels[c] & (levels[c] - 1) == 0:
            shifts[c] = 0
            while (1 << shifts[c]) < levels[c]:
                shifts[c] += 1
    for i in range(codes.shape[0]):
        rem = codes[i]
        for c in range(nc):
            if shifts[c] >= 0:
                out[i, c] = rem & (levels[c] - 1)
                rem >>= shifts[c]
            else:
                out[i, c] = rem % levels[c]
                rem //= levels[c]


@njit(parallel=True, cache=True, error_model="numpy")
def gather_rgb8(values, index, rows, out):
    """``out[i] = rows[index[code of row i]]`` for uint8 RGB rows, in parallel."""
    for i in prange(values.shape[0]):
        j = index[np.int64(values[i, 0]) | np.int64(values[i, 1]) << 8 | np.int64(values[i, 2]) << 16]
        for c in range(rows.shape[1]):
            out[i, c] = rows[j, c]


@njit(cache=True, nogil=True, error_model="numpy")
def int_label_sums(labels, values, k):
    """Per label 0..k-1: the number of rows and the per-channel sums of small-integer ``values``
    (n, c), added in int64 (exact, so in any order: numpy's float sums of the same integers)."""
    n, nc = values.shape
    counts = np.zeros(k, np.int64)
    sums = np.zeros((k, nc), np.int64)
    for i in range(n):
        g = labels[i]
        counts[g] += 1
        for c in range(nc):
            sums[g, c] += values[i, c]
    return counts, sums.astype(np.float64)


#: Linkage codes of :func:`nn_chain`.
LINKAGE_CODES = {"ward": 0, "single": 1, "complete": 2, "average": 3}


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
    val = np.empty((n, 1 + 2 * nf))
    for i in range(n):
        val[i, 0] = weights[i]
        for f in range(nf):
            val[i, 1 + f] = weights[i] * points[i, f]
            val[i, 1 + nf + f] = val[i, 1 + f] / weights[i]
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
    heap = np.empty((n, 3))  # (cost, code, slot) of every cluster's first pair
    size = 0
    for i in range(n):
        cost, code, arg = _nearest_pair(i, node, arena, val, nf, total)
        if arg >= 0:
            node[i, _NN] = arg
            _put(heap, node, size, cost, code, i)
            size += 1
    for p in range((size - 2) // _ARITY, -1, -1):
        _sift(heap, node, p, size, False)
    Z = np.empty((max(n - 1, 0), 4))
    near = np.empty(n, np.int32)
    k = n
    top = 0.0
    while size > 0:
        i = np.int64(heap[0, 2])
        j = np.int64(node[i, _NN])
        cost = heap[0, 0]
        size = _remove(heap, node, j, size)  # the merged cluster (slot i) takes i's entry
        node[j, _PARENT] = i
        w = val[i, 0] + val[j, 0]
        for f in range(nf):
            val[i, 1 + f] = val[i, 1 + f] + val[j, 1 + f]
            val[i, 1 + nf + f] = val[i, 1 + f] / w
        val[i, 0] = w
        node[i, _SIZE] += node[j, _SIZE]
        top = max(top, np.sqrt(2.0 * cost))
        Z[k - n, 0] = min(node[i, _IDENT], node[j, _IDENT])
        Z[k - n, 1] = max(node[i, _IDENT], node[j, _IDENT])
        Z[k - n, 2] = top
        Z[k - n, 3] = node[i, _SIZE]
        node[i, _IDENT] = k
        node[i, _MARK] = k
        count = 0  # the merged cluster's neighbours, each once
        for src in (i, j):
            s = node[src, _START]
            for p in range(s, s + node[src, _LENGTH]):
                r = _find(node, arena[p])
                if node[r, _MARK] != k:
                    node[r, _MARK] = k
                    near[count] = r
                    count += 1
        if used + count > arena.shape[0]:
            grown = np.empty(2 * (used + count), np.int32)
            grown[:used] = arena[:used]
            arena = grown
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
        used += count
        if arg >= 0:
            _repair(heap, node, i, best, best_code, arg, size)
        else:  # no neighbours left
            size = _remove(heap, node, i, size)
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
