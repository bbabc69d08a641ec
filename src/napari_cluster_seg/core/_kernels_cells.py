"""Compiled (numba) kernels of K-means on uint8 colour pixels by colour cells (:mod:`.cells`,
:mod:`._fit_cells`): the cells' counts and sums, which cells lie wholly on one side of every
boundary between the centres, and a Lloyd assignment of every pixel.

A *cell* is a cube of 8 x 8 x 8 colours: code ``(r >> 3) + 32 (g >> 3) + 1024 (b >> 3)``, 32768
cells. Every sum is of integers, so no result depends on how the rows are split among threads.

Imported only through :mod:`._accel` (via :mod:`._kernels`); :mod:`.cells` and :mod:`._fit_cells`
hold the numpy code that runs without numba, with the same results.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

#: Most parts the rows of :func:`rgb8_cells` and :func:`rgb8_assign` are split into (a table each).
MAX_PARTS = 8


def n_parts() -> int:
    """Parts to split the rows into: one per thread of numba's pool, at most :data:`MAX_PARTS`."""
    return max(1, min(MAX_PARTS, get_num_threads()))


@njit(inline="always")
def _cell(r, g, b):
    """The cell of the colour (r, g, b) (int64 channel values 0..255)."""
    return (r >> 3) | ((g >> 3) << 5) | ((b >> 3) << 10)


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def rgb8_cells(values, table, hist):
    """Part ``p`` of the uint8 RGB rows (n, 3) adds, per cell, its pixels' count and channel sums
    to ``table[p]`` (32768, 4) and its values to the channel histograms ``hist[p]`` (3, 256); the
    caller adds the parts up (int64: exact)."""
    n = values.shape[0]
    n_parts = table.shape[0]
    per = (n + n_parts - 1) // n_parts
    for p in prange(n_parts):
        t = table[p]
        h = hist[p]
        for i in range(p * per, min(n, (p + 1) * per)):
            r, g, b = np.int64(values[i, 0]), np.int64(values[i, 1]), np.int64(values[i, 2])
            c = _cell(r, g, b)
            t[c, 0] += 1
            t[c, 1] += r
            t[c, 2] += g
            t[c, 3] += b
            h[0, r] += 1
            h[1, g] += 1
            h[2, b] += 1


@njit(cache=True, nogil=True, error_model="numpy")
def rgb8_candidates(cells, tabs, centers, margin, cand, n_cand):
    """For every cell ``cells[i]``, the centres that may be nearest to one of its colours, in index
    order, into ``cand[cells[i]]`` and their number into ``n_cand[cells[i]]`` (``tabs[c, v]``:
    channel ``c``'s value ``v`` normalised). One candidate: the cell is *pure*, every colour of it
    is nearest to that centre by more than ``margin`` (the difference of two squared distances is
    linear in the colour: the cell's 8 corners decide). Otherwise the candidates are the centres
    whose nearest point of the cell is no farther (by more than ``margin``) than the smallest, over
    the centres, of the distance to the cell's farthest point: a colour's nearest centre is
    always among them, and a centre left out is farther from every colour of the cell."""
    k = centers.shape[0]
    lo = np.empty(3)
    hi = np.empty(3)
    for i in range(cells.shape[0]):
        code = cells[i]
        for c in range(3):
            v = ((code >> (5 * c)) & 31) * 8
            lo[c] = tabs[c, v]
            hi[c] = tabs[c, v + 7]
        label = _corner_label(lo, hi, centers, margin)
        if label >= 0:
            cand[code, 0] = label
            n_cand[code] = 1
            continue
        bound = np.inf
        for j in range(k):
            far = 0.0
            for c in range(3):
                far += max((centers[j, c] - lo[c]) ** 2, (centers[j, c] - hi[c]) ** 2)
            bound = min(bound, far)
        m = 0
        for j in range(k):
            near = 0.0
            for c in range(3):
                near += max(lo[c] - centers[j, c], 0.0, centers[j, c] - hi[c]) ** 2
            if near <= bound + margin:
                cand[code, m] = j
                m += 1
        n_cand[code] = m


@njit(inline="always")
def _corner_label(lo, hi, centers, margin):
    """The centre nearest to each of the 8 corners of the box ``lo``..``hi`` by more than
    ``margin`` when it is the same one, else -1."""
    k = centers.shape[0]
    label = -1
    for corner in range(8):
        best = np.inf
        second = np.inf
        arg = 0
        for j in range(k):
            d = 0.0
            for c in range(3):
                t = (hi[c] if (corner >> c) & 1 else lo[c]) - centers[j, c]
                d += t * t
            if d < best:
                second = best
                best = d
                arg = j
            elif d < second:
                second = d
        if second - best <= margin or (corner > 0 and arg != label):
            return -1
        label = arg
    return label


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def rgb8_assign(values, tabs, centers, cand, n_cand, acc, lut, out):
    """A Lloyd assignment of uint8 RGB rows: the nearest centre of each row is its cell's one
    candidate (:func:`rgb8_candidates`) where there is one, else the nearest of the candidates by
    the normalised values ``tabs[c, v]`` (ties: the lower index; the arithmetic of
    ``_kernels_kmeans._nearest``); the rows found so are counted and summed (raw values) into
    ``acc[p]`` (k, 4) of their part ``p``. With ``out`` non-empty, ``out[i] = lut[nearest centre of
    row i]``."""
    n = values.shape[0]
    n_parts = acc.shape[0]
    per = (n + n_parts - 1) // n_parts
    write = out.shape[0] > 0
    for p in prange(n_parts):
        a = acc[p]
        for i in range(p * per, min(n, (p + 1) * per)):
            r, g, b = np.int64(values[i, 0]), np.int64(values[i, 1]), np.int64(values[i, 2])
            cell = _cell(r, g, b)
            j = np.int64(cand[cell, 0])
            m = n_cand[cell]
            if m != 1:
                best = np.inf
                for s in range(m):
                    q = cand[cell, s]
                    t = tabs[0, r] - centers[q, 0]
                    d = t * t
                    t = tabs[1, g] - centers[q, 1]
                    d += t * t
                    t = tabs[2, b] - centers[q, 2]
                    d += t * t
                    if d < best:
                        best = d
                        j = q
                a[j, 0] += 1
                a[j, 1] += r
                a[j, 2] += g
                a[j, 3] += b
            if write:
                out[i] = lut[j]
