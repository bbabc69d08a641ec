"""Compiled (numba) kernels of the pixel reduction: counting values and colours, labelling pixels
through a lookup table, grid-cell codes and sums, decoding cell codes, gathering rows by colour.

Imported only through :mod:`._accel` (via :mod:`._kernels`), which falls back to numpy when numba
is missing.
"""

from __future__ import annotations

import types

import numpy as np
from numba import njit, prange


def compiled_copy(fn, name: str, parallel: bool):
    """``fn`` compiled (lazily, cached on disk) under the name ``name``. numba's disk cache keys an
    entry by the function's name, code and argument types, not by its options: two builds of one
    function would share entries, and the second build would load the first one's code (a
    "parallel" build running the serial loop, or the reverse). A copy of the function under its
    own name gets entries of its own."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = name
    copy.__doc__ = fn.__doc__
    return njit(parallel=parallel, cache=True, nogil=True, error_model="numpy")(copy)


@njit(cache=True, nogil=True, error_model="numpy")
def count_rgb8(values, table):
    """``table[code] += 1`` for every uint8 RGB row (code ``r + 256 g + 65536 b``)."""
    for i in range(values.shape[0]):
        table[np.int64(values[i, 0]) | np.int64(values[i, 1]) << 8 | np.int64(values[i, 2]) << 16] += 1


#: Blocks of :func:`occupied_codes` (each lists its part of the table in order: any thread count).
TABLE_BLOCKS = 64


@njit(parallel=True, cache=True, error_model="numpy")
def occupied_codes(table):
    """The indices of the nonzero entries of ``table`` (sorted) and those entries as int64: what
    ``np.flatnonzero`` and a gather give, with the blocks of the table counted, then listed, in
    parallel."""
    n = table.shape[0]
    per = (n + TABLE_BLOCKS - 1) // TABLE_BLOCKS
    found = np.zeros(TABLE_BLOCKS + 1, np.int64)
    for b in prange(TABLE_BLOCKS):
        m = 0
        for i in range(b * per, min(n, (b + 1) * per)):
            if table[i] != 0:
                m += 1
        found[b + 1] = m
    for b in range(TABLE_BLOCKS):
        found[b + 1] += found[b]
    codes = np.empty(found[TABLE_BLOCKS], np.int64)
    counts = np.empty(found[TABLE_BLOCKS], np.int64)
    for b in prange(TABLE_BLOCKS):
        j = found[b]
        for i in range(b * per, min(n, (b + 1) * per)):
            if table[i] != 0:
                codes[j] = i
                counts[j] = table[i]
                j += 1
    return codes, counts


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


@njit(cache=True, nogil=True, error_model="numpy")
def cell_codes(points, levels, lo, span, out):
    """Code of the grid cell of every row (``levels`` cells per axis over ``lo + [0, span]``),
    with exactly the float operations of ``units._cell_codes``. Serial (one pass, as the sums of
    :mod:`._kernels_kmeans`)."""
    for i in range(points.shape[0]):
        out[i] = cell_code(points, i, levels, lo, span)


@njit(inline="always")
def cell_code(points, i, levels, lo, span):
    """The grid cell of row ``i`` (:func:`cell_codes`)."""
    code = 0
    for f in range(points.shape[1]):
        t = (points[i, f] - lo[f]) / span[f] * levels
        t = min(max(t, 0.0), levels - 1)
        code = code * levels + np.int64(t)
    return code


@njit(inline="always")
def _grid_code(values, i, lo, step, levels, edges, starts, e0, width, tabs):
    """The grid cell of row ``i`` with exactly ``coder.Coder``'s operations: per channel a regular
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


def _cell_sums(values, lo, step, levels, edges, starts, e0, width, tabs, ref, chunk, acc, sq, parts, codes):
    """Add to ``acc`` (cells, c + 1) the per-channel sums and (last column) the pixel counts of the
    rows of ``values`` (n, c) per grid cell (:func:`_grid_code`), and to ``sq`` (c,) their squares
    about ``ref``; write every row's cell into ``codes`` unless it is empty. Chunk by chunk of
    ``chunk`` rows, each chunk's sums started from zero and then added, as numpy's per-chunk
    ``bincount`` (the same sums bit for bit; the squares are added in another order).
    ``parts`` (p, cells, c + 1) of zeros: p chunks are summed at once, each into its own part (in
    parallel in the parallel build), and the parts are added to ``acc`` in chunk order, so the sums
    do not depend on p. One pass instead of a code array and c + 1 bincounts."""
    n, nc = values.shape
    n_parts = parts.shape[0]
    keep = codes.shape[0] > 0
    n_chunks = (n + chunk - 1) // chunk
    touched = np.empty((n_parts, min(chunk, acc.shape[0])), np.int64)
    n_touched = np.zeros(n_parts, np.int64)
    csq = np.zeros((n_parts, nc))
    for first in range(0, n_chunks, n_parts):
        for p in prange(n_parts):
            if first + p < n_chunks:
                start = (first + p) * chunk
                n_touched[p] = _chunk_cells(
                    values, start, min(n, start + chunk), lo, step, levels, edges, starts, e0, width,
                    tabs, ref, parts[p], touched[p], csq[p], codes, keep,
                )  # fmt: skip
        _merge_parts(parts, touched, n_touched, min(n_parts, n_chunks - first), acc, sq, csq)


@njit(inline="always")
def _merge_parts(parts, touched, n_touched, count, acc, sq, csq):
    """Add the first ``count`` parts (chunks in order) to ``acc`` at the cells each touched, and
    their squares to ``sq``, zeroing them for the next chunks."""
    for p in range(count):
        part = parts[p]
        for j in range(n_touched[p]):
            g = touched[p, j]
            for c in range(part.shape[1]):
                acc[g, c] += part[g, c]
                part[g, c] = 0.0
        for c in range(sq.shape[0]):
            sq[c] += csq[p, c]
            csq[p, c] = 0.0


@njit(inline="always")
def _add_row(values, i, g, ref, part, touched, m, csq):
    """Row ``i`` into row ``g`` of ``part`` (its count last), listed in ``touched`` (``m`` so far)
    when it is the first of its cell; its squares about ``ref`` into ``csq``. Returns the new m."""
    nc = values.shape[1]
    if part[g, nc] == 0.0:
        touched[m] = g
        m += 1
    part[g, nc] += 1.0
    for c in range(nc):
        x = np.float64(values[i, c])
        part[g, c] += x
        d = x - ref[c]
        csq[c] += d * d
    return m


@njit(inline="always")
def _chunk_cells(values, start, stop, lo, step, levels, edges, starts, e0, width, tabs, ref, part, touched,
                 csq, codes, keep):  # fmt: skip
    """Rows ``start:stop`` into ``part`` (:func:`_cell_sums`): returns how many cells they touched
    (listed in ``touched``); their squares about ``ref`` into ``csq``."""
    m = 0
    for i in range(start, stop):
        code = _grid_code(values, i, lo, step, levels, edges, starts, e0, width, tabs)
        if keep:
            codes[i] = code
        m = _add_row(values, i, code, ref, part, touched, m, csq)
    return m


@njit(parallel=True, cache=True, error_model="numpy")
def grid_cells(values, lo, step, levels, edges, starts, e0, width, tabs, codes, present):
    """Every row's grid cell (:func:`_grid_code`) into ``codes``, and 1 into ``present`` at every
    cell that has a row, in parallel: the first pass of :func:`coded_sums`."""
    for i in prange(values.shape[0]):
        code = _grid_code(values, i, lo, step, levels, edges, starts, e0, width, tabs)
        codes[i] = code
        present[code] = 1


@njit(parallel=True, cache=True, error_model="numpy")
def coded_sums(values, codes, rank, ref, chunk, acc, sq, parts):
    """:func:`_cell_sums` with every row's cell read from ``codes`` (:func:`grid_cells`) and summed
    into row ``rank[cell]`` of tables of the occupied cells only (``acc`` (m, c + 1), ``parts``
    (p, m, c + 1)): the same chunks, parts and order of additions, so the same sums bit for bit,
    with tables a few times smaller than the grid (fewer cache misses)."""
    n, nc = values.shape
    n_parts = parts.shape[0]
    n_chunks = (n + chunk - 1) // chunk
    touched = np.empty((n_parts, min(chunk, acc.shape[0])), np.int64)
    n_touched = np.zeros(n_parts, np.int64)
    csq = np.zeros((n_parts, nc))
    for first in range(0, n_chunks, n_parts):
        for p in prange(n_parts):
            if first + p < n_chunks:
                part, listed, squares, m = parts[p], touched[p], csq[p], 0
                for i in range((first + p) * chunk, min(n, (first + p + 1) * chunk)):
                    m = _add_row(values, i, rank[codes[i]], ref, part, listed, m, squares)
                n_touched[p] = m
        _merge_parts(parts, touched, n_touched, min(n_parts, n_chunks - first), acc, sq, csq)


# The grid reduction: parallel over chunks for many rows, serial for a block or a small image.
cell_sums = compiled_copy(_cell_sums, "cell_sums", True)
cell_sums_serial = compiled_copy(_cell_sums, "cell_sums_serial", False)


@njit(parallel=True, cache=True, error_model="numpy")
def lookup_grid(values, lo, step, levels, edges, starts, e0, width, tabs, table, out):
    """``out[i] = table[grid cell of row i]`` (:func:`_grid_code`), in parallel."""
    for i in prange(values.shape[0]):
        out[i] = table[_grid_code(values, i, lo, step, levels, edges, starts, e0, width, tabs)]


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
