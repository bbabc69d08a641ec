"""Optional compiled kernels: numba when it is installed, numpy otherwise.

napari's recommended install (``pip install "napari[all]"``) already brings numba, and
``pip install "napari-cluster-seg[fast]"`` adds it to others. With it, the passes over every pixel
or distinct colour (counting, labelling, Lloyd iterations), the colour hierarchy's
nearest-neighbour chain and the pixel-level connected Ward tree are compiled loops (see
``benchmarks/``). Without it, every caller runs its numpy (or Python) code; the results agree up to
floating-point rounding (compiled distances are sums of squared differences, numpy's are expanded
dot products), which can move a point that is equally far from two centres.

Set the environment variable ``NAPARI_CLUSTER_SEG_NUMBA=0`` to use numpy only.

**Compiling.** Each kernel build compiles on its first use (1-6 s each, the
few a run needs: :func:`._builds.needs`), and numba caches it on disk, so later
sessions load it in a fraction of a second. A run compiles what it needs before
it starts and says so in a progress stage ("preparing fast kernels (first run
only, ~N s)"); :func:`._builds.warm_up` loads only builds already in the disk cache and
never compiles, so it cannot hold up a run.

**Threads.** numba's thread pool starts when the kernels load, with threads that sleep between
parallel regions unless the user chose otherwise (:mod:`._numba_threads`). The row loops run
serially below :data:`PARALLEL_ROWS` rows: a parallel launch costs milliseconds when the cores
are busy.

numba's ``workqueue`` pool must not be entered from two threads at once, so
every kernel runs under one lock (the parallel ones already use all cores).
"""

from __future__ import annotations

import os
import threading

import numpy as np

from . import _numba_threads

#: Held while any kernel runs or compiles (numba's workqueue pool must not be entered twice at once).
KERNEL_LOCK = threading.RLock()
#: Fewest rows for which the row loops run in parallel.
PARALLEL_ROWS = 2**16
_UNSET = object()
_module = _UNSET


def kernels():
    """The compiled-kernel module, or None (numba missing or disabled)."""
    global _module
    if _module is _UNSET:
        with KERNEL_LOCK:
            if _module is _UNSET:
                _module = _load()
    return _module


def _load():
    if os.environ.get("NAPARI_CLUSTER_SEG_NUMBA", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        from . import _kernels  # optional kernels: numba may be missing or off
    except ImportError:  # numba not installed (or broken): numpy it is
        return None
    _numba_threads.start()
    return _kernels


def threading_layer() -> str | None:
    """numba's threading layer in use (``"omp"``, ``"tbb"`` or ``"workqueue"``), or None when the
    kernels are off or no layer could start."""
    return None if kernels() is None else _numba_threads.layer()


def threading_info() -> str:
    """One line for reports: the numba version, threading layer, threads and OpenMP wait policy."""
    if kernels() is None:
        return "numpy only (numba missing, or NAPARI_CLUSTER_SEG_NUMBA=0)"
    return _numba_threads.info()


def enabled() -> bool:
    """Whether the compiled kernels are in use."""
    return kernels() is not None


def rgb8(values: np.ndarray, coder) -> bool:
    """Whether the compiled colour kernels apply: uint8 RGB rows coded exactly from 0 with 256
    levels per channel (code ``r + 256 g + 65536 b``, as :class:`coder.Coder` makes it)."""
    return (
        kernels() is not None
        and isinstance(values, np.ndarray)
        and values.dtype == np.uint8
        and values.ndim == 2
        and values.shape[1] == 3
        and coder.step is None
        and not np.any(coder.lo)
        and bool(np.all(coder.levels == 256))
    )


def count_rgb8(values: np.ndarray):
    """Distinct codes (sorted) of uint8 RGB rows and their counts, with one table of 2**24
    counters (64 MB) filled in one compiled pass and listed in parallel."""
    k = kernels()
    table = np.zeros(2**24, np.uint32 if values.shape[0] < 2**32 else np.uint64)
    with KERNEL_LOCK:
        k.count_rgb8(values, table)
        return k.occupied_codes(table)


def lookup_rgb8(values: np.ndarray, lut: np.ndarray, out: np.ndarray):
    """``out[i] = lut[code of values[i]]`` for uint8 RGB rows, in parallel."""
    k = kernels()
    with KERNEL_LOCK:
        k.lookup_rgb8(values, lut, out)
    return out


def gather_rgb8(values: np.ndarray, occupied: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``rows[j]`` (float32) for every uint8 RGB row whose colour is ``occupied[j]`` (the sorted
    distinct colour codes of ``values``), through a table of 2**24 indices, in parallel."""
    k = kernels()
    index = np.empty(2**24, np.int32)  # only the occupied entries are read
    index[occupied] = np.arange(occupied.size, dtype=np.int32)
    out = np.empty((values.shape[0], rows.shape[1]), np.float32)
    with KERNEL_LOCK:
        k.gather_rgb8(values, index, np.ascontiguousarray(rows, np.float32), out)
    return out


def rgb8_cells(values: np.ndarray):
    """Per colour cell (:mod:`._kernels_cells`) of uint8 RGB rows: the pixel count and channel sums
    (32768, 4), and the channel histograms (3, 256), int64, in one parallel pass."""
    k = kernels()
    parts = k.n_parts()
    table, hist = np.zeros((parts, 2**15, 4), np.int64), np.zeros((parts, 3, 256), np.int64)
    with KERNEL_LOCK:
        k.rgb8_cells(values, table, hist)
    return table.sum(axis=0), hist.sum(axis=0)


def rgb8_candidates(cells: np.ndarray, tabs: np.ndarray, centers: np.ndarray, margin: float, space: int):
    """For every colour cell (32768 of them, ``space``), the centres that may be nearest to one of
    its colours (k columns, int16; in index order) and their number (one: every colour of the cell
    is nearest to that centre by more than ``margin``); only ``cells`` are filled in."""
    k = kernels()
    cand = np.zeros((space, centers.shape[0]), np.int16)
    n_cand = np.zeros(space, np.int16)
    with KERNEL_LOCK:
        k.rgb8_candidates(np.asarray(cells, np.int64), tabs, centers, float(margin), cand, n_cand)
    return cand, n_cand


def rgb8_assign(values: np.ndarray, tabs, centers, cand, n_cand, lut: np.ndarray, out: np.ndarray):
    """A Lloyd assignment of uint8 RGB rows among their cells' candidate centres
    (:func:`rgb8_candidates`): the count and raw channel sums (k, 4) int64 of the rows whose cell
    has several; ``out[i] = lut[nearest centre of row i]`` unless ``out`` is empty."""
    k = kernels()
    acc = np.zeros((k.n_parts(), centers.shape[0], 4), np.int64)
    with KERNEL_LOCK:
        k.rgb8_assign(values, tabs, centers, cand, n_cand, acc, lut, out)
    return acc.sum(axis=0)


def int_label_sums(labels: np.ndarray, values: np.ndarray, k: int):
    """Counts (k,) and exact per-channel sums (k, c) of uint8 / uint16 rows per int16 label."""
    kern = kernels()
    with KERNEL_LOCK:
        return kern.int_label_sums(labels, values, k)


def grey(values: np.ndarray, coder=None) -> bool:
    """Whether the compiled histogram / lookup apply: one column of uint8 or uint16 values (with
    ``coder``: coded as themselves)."""
    return (
        kernels() is not None
        and isinstance(values, np.ndarray)
        and values.ndim == 2
        and values.shape[1] == 1
        and values.dtype in (np.uint8, np.uint16)
        and (coder is None or (coder.step is None and not np.any(coder.lo)))
    )


def count_grey(values: np.ndarray) -> np.ndarray:
    """Counts of every value 0..max of one column of uint8 / uint16 ``values`` (n, 1)."""
    k = kernels()
    tables = np.zeros((4, 1 << (8 * values.dtype.itemsize)), np.int64)
    with KERNEL_LOCK:
        k.count_grey(values[:, 0], tables)
    counts = tables.sum(axis=0)
    nonzero = np.flatnonzero(counts)
    return counts[: nonzero[-1] + 1] if nonzero.size else counts[:1]


def lookup_grey(values: np.ndarray, lut: np.ndarray, out: np.ndarray):
    """``out[i] = lut[values[i, 0]]``, in parallel."""
    k = kernels()
    with KERNEL_LOCK:
        k.lookup_grey(values[:, 0], lut, out)
    return out


def nearest(points: np.ndarray, centers: np.ndarray, labels: np.ndarray, d2: np.ndarray | None = None):
    """Nearest centre of every row (ties: the lower index) into ``labels``, squared distances into
    ``d2`` if given; ``points`` and ``centers`` of one float dtype."""
    k = kernels()
    run = k.nearest if points.shape[0] >= PARALLEL_ROWS else k.nearest_serial
    if d2 is None:
        d2 = np.empty(0, points.dtype)
    with KERNEL_LOCK:
        run(points, centers, labels, d2)


def lloyd_pass(points: np.ndarray, weights: np.ndarray, centers: np.ndarray):
    """One Lloyd assignment of float64 rows: (labels, weighted sums per centre, weight per centre,
    weighted sum of squared distances)."""
    k = kernels()
    run = k.lloyd_pass if points.shape[0] >= PARALLEL_ROWS else k.lloyd_pass_serial
    labels = np.empty(points.shape[0], np.intp)
    with KERNEL_LOCK:
        sums, wsum, cost = run(points, weights, centers, labels)
    return labels, sums, wsum, float(cost)


def kmeans_1d_layer(D: np.ndarray, W, S, Q, c: int):
    """One layer ``c`` of the 1D K-means dynamic programme (``kmeans.kmeans_1d_optimal``): the
    least costs (m,) and the smallest optimal starts (m,) of the last cluster, compiled."""
    k = kernels()
    D_new, arg = np.full(D.shape[0], np.inf), np.zeros(D.shape[0], np.intp)
    with KERNEL_LOCK:
        k.kmeans_1d_layer(D, W, S, Q, c, D_new, arg)
    return D_new, arg


def group_sums(labels: np.ndarray, weights: np.ndarray, points: np.ndarray, k: int):
    """Total weight (k,) and weighted sums of ``points`` (k, f) per label 0..k-1."""
    kern = kernels()
    with KERNEL_LOCK:
        return kern.group_sums(labels, weights, points, k)


def deviation_sums(labels: np.ndarray, weights: np.ndarray, points: np.ndarray, ref: np.ndarray, k: int):
    """Per label 0..k-1 the mean offset (k, f) of float64 ``points`` from ``ref``; per channel the
    weighted squares about the labels' means and about ``ref`` (``_stats.cluster_stats``' passes)."""
    kern = kernels()
    with KERNEL_LOCK:
        labels = np.asarray(labels, np.intp)
        return kern.deviation_sums(labels, weights, points, np.asarray(ref, np.float64), k)


def grid_group_sums(points: np.ndarray, weights: np.ndarray, levels: int, lo, span):
    """Total weight (m,) and weighted sums (m, c) of float64 rows per occupied cell of a
    ``levels``-per-axis grid (``units._cell_codes``' cells, in code order), in one pass: the sums
    :func:`cell_codes`, the cells' ranks and :func:`group_sums` give."""
    k = kernels()
    space = levels ** points.shape[1]
    with KERNEL_LOCK:
        _, w, sums = k.grid_group_sums(
            points, weights, levels, np.asarray(lo, np.float64), np.asarray(span, np.float64), space
        )
    return w, sums


def cell_codes(points: np.ndarray, levels: int, lo: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Grid-cell codes of float64 rows, as ``units._cell_codes`` computes them."""
    k = kernels()
    out = np.empty(points.shape[0], np.int64)
    with KERNEL_LOCK:
        k.cell_codes(points, levels, np.asarray(lo, np.float64), np.asarray(span, np.float64), out)
    return out


#: Bins per channel of the table that narrows the search among a channel's grid boundaries.
SEARCH_BINS = 4096


def _grid_args(coder):
    """``coder``'s grid as the compiled kernels take it: lo, step, levels, the boundaries of the
    channels that have them (concatenated), each channel's start in them, and per channel the
    bins (first boundary, width, boundaries <= each bin's start) that narrow the search."""
    c = coder.levels.size
    given = coder.edges if coder.edges is not None else (None,) * c
    edges = [np.zeros(0) if e is None else np.asarray(e, np.float64) for e in given]
    starts = np.concatenate([[0], np.cumsum([e.size for e in edges])]).astype(np.int64)
    e0, width = np.zeros(c), np.ones(c)
    tabs = np.zeros((c, SEARCH_BINS + 2), np.int64)
    for i, e in enumerate(edges):
        if e.size:
            e0[i] = e[0]
            span = e[-1] - e[0]
            width[i] = span / SEARCH_BINS if span > 0 and np.isfinite(span) else 1.0
            tabs[i] = np.searchsorted(e, e0[i] + np.arange(SEARCH_BINS + 2) * width[i], side="right")
    lo, step = np.asarray(coder.lo, np.float64), np.asarray(coder.step, np.float64)
    flat = np.concatenate(edges)
    return lo, step, np.asarray(coder.levels, np.int64), flat, starts, e0, width, tabs


def cell_sums(values: np.ndarray, coder, ref: np.ndarray, chunk: int, n_parts: int = 1, codes=None):
    """The occupied cells (sorted), their pixel counts, per-channel sums (cells, c) and the squares
    about ``ref`` (c,) of float32 / float64 rows over the grid of ``coder``, in one compiled pass
    (``reduce._cell_sums``): up to ``n_parts`` chunks at once in parallel, each into a table of its
    own (the same sums whatever ``n_parts``). With ``codes`` (n,) int32, every row's cell is written
    there too; for many rows the cells are then found first, in parallel, and the sums go into
    tables of the occupied cells only (the same sums)."""
    k = kernels()
    space, c = coder.space, values.shape[1]
    n_parts = max(1, min(n_parts, -(-values.shape[0] // chunk)))
    grid = _grid_args(coder)
    if codes is not None and values.shape[0] >= PARALLEL_ROWS:
        present = np.zeros(space, np.uint8)
        with KERNEL_LOCK:
            k.grid_cells(values, *grid, codes, present)
        occupied = np.flatnonzero(present)
        rank = np.empty(space, np.int32)  # only the occupied entries are read
        rank[occupied] = np.arange(occupied.size, dtype=np.int32)
        m = occupied.size
        acc, sq, parts = np.zeros((m, c + 1)), np.zeros(c), np.zeros((n_parts, m, c + 1))
        with KERNEL_LOCK:
            k.coded_sums(values, codes, rank, ref, chunk, acc, sq, parts)
        return occupied, acc[:, c], acc[:, :c], sq
    run = k.cell_sums if values.shape[0] >= PARALLEL_ROWS else k.cell_sums_serial
    acc, sq, parts = np.zeros((space, c + 1)), np.zeros(c), np.zeros((n_parts, space, c + 1))
    codes = np.empty(0, np.int32) if codes is None else codes
    with KERNEL_LOCK:
        run(values, *grid, ref, chunk, acc, sq, parts, codes)
    occupied = np.flatnonzero(acc[:, c])
    return occupied, acc[occupied, c], acc[occupied, :c], sq


def lookup_codes(codes: np.ndarray, table: np.ndarray, out: np.ndarray):
    """``out[i] = table[codes[i]]`` for int32 cell codes (``cell_sums``'), in parallel."""
    k = kernels()
    with KERNEL_LOCK:
        k.lookup_grey(codes, table, out)
    return out


def lookup_grid(values: np.ndarray, coder, table: np.ndarray, out: np.ndarray):
    """``out[i] = table[grid cell of row i]`` for float32 / float64 rows, in parallel."""
    k = kernels()
    with KERNEL_LOCK:
        k.lookup_grid(values, *_grid_args(coder), table, out)
    return out


def weighted_squares(values: np.ndarray, ref: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per channel, the weighted sum of squares of float64 rows about ``ref``, in one pass."""
    k = kernels()
    with KERNEL_LOCK:
        return k.weighted_squares(values, np.asarray(ref, np.float64), weights)


def decode_codes(codes: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The cell coordinates (m, c) of ``codes`` in the radix ``levels``, as float64, in one pass."""
    k = kernels()
    out = np.empty((codes.shape[0], levels.shape[0]))
    with KERNEL_LOCK:
        k.decode_codes(np.asarray(codes, np.int64), np.asarray(levels, np.int64), out)
    return out


def nn_chain(D: np.ndarray, w: np.ndarray, method: str):
    """The merges (slots a < b, heights, in merge order) of the nearest-neighbour chain on the
    float64 distance matrix ``D`` and weights ``w`` (both modified)."""
    k = kernels()
    with KERNEL_LOCK:
        return k.nn_chain(D, w, k.LINKAGE_CODES[method])


def ward_greedy(points: np.ndarray, weights: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The merges of ``regions._exact_ward_python`` (identical ones), compiled."""
    k = kernels()
    with KERNEL_LOCK:
        return k.ward_greedy(points, weights, edges[:, 0], edges[:, 1])


def roots_after(Z: np.ndarray, m: int, n_merges: int) -> np.ndarray:
    """``hierarchy.roots_after``, in one compiled pass."""
    k = kernels()
    with KERNEL_LOCK:
        return k.roots_after(Z, m, n_merges)
