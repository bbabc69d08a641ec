"""Optional compiled kernels: numba when it is installed, numpy otherwise.

napari's recommended install (``pip install "napari[all]"``) already brings
numba, and napari uses it the same way (an accelerator when importable); ``pip
install "napari-cluster-seg[fast]"`` adds it to other installs. With it, the
passes over every pixel or distinct colour (counting, labelling, Lloyd
iterations), the colour hierarchy's nearest-neighbour chain and the pixel-level
connected Ward tree are single compiled loops instead of numpy passes or Python
loops (see ``benchmarks/``). Without it, every caller runs its numpy (or
Python) code; the results agree up to floating-point
rounding (compiled distances are sums of squared differences, numpy's are
expanded dot products), which can move a point that is equally far from two
centres.

Set the environment variable ``NAPARI_CLUSTER_SEG_NUMBA=0`` to use numpy only.
The first use compiles the kernels (about 10 s), which numba caches on disk
for later sessions (then about 1 s to load); :func:`warm_up` does it, and the
widget calls that in the background when it opens.

numba's default thread pool must not be entered from two threads at once, so
every kernel runs under one lock (the parallel ones already use all cores).
"""

from __future__ import annotations

import os
import threading

import numpy as np

_LOCK = threading.RLock()
#: Fewest rows for which the row loops run in parallel.
PARALLEL_ROWS = 2**16
_UNSET = object()
_module = _UNSET


def kernels():
    """The compiled-kernel module, or None (numba missing or disabled)."""
    global _module
    if _module is _UNSET:
        with _LOCK:
            if _module is _UNSET:
                _module = _load()
    return _module


def _load():
    if os.environ.get("NAPARI_CLUSTER_SEG_NUMBA", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        from . import _kernels
    except ImportError:  # numba not installed (or broken): numpy it is
        return None
    return _kernels


def enabled() -> bool:
    """Whether the compiled kernels are in use."""
    return kernels() is not None


def rgb8(values: np.ndarray, coder) -> bool:
    """Whether the compiled colour kernels apply: uint8 RGB rows coded exactly from 0 with 256
    levels per channel (code ``r + 256 g + 65536 b``, as :class:`reduce.Coder` makes it)."""
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
    counters (64 MB) filled in one compiled pass."""
    k = kernels()
    table = np.zeros(2**24, np.uint32 if values.shape[0] < 2**32 else np.uint64)
    with _LOCK:
        k.count_rgb8(values, table)
    occupied = np.flatnonzero(table != 0)
    return occupied, table[occupied].astype(np.int64)


def lookup_rgb8(values: np.ndarray, lut: np.ndarray, out: np.ndarray):
    """``out[i] = lut[code of values[i]]`` for uint8 RGB rows, in parallel."""
    k = kernels()
    with _LOCK:
        k.lookup_rgb8(values, lut, out)
    return out


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
    with _LOCK:
        k.count_grey(values[:, 0], tables)
    counts = tables.sum(axis=0)
    nonzero = np.flatnonzero(counts)
    return counts[: nonzero[-1] + 1] if nonzero.size else counts[:1]


def lookup_grey(values: np.ndarray, lut: np.ndarray, out: np.ndarray):
    """``out[i] = lut[values[i, 0]]``, in parallel."""
    k = kernels()
    with _LOCK:
        k.lookup_grey(values[:, 0], lut, out)
    return out


def nearest(points: np.ndarray, centers: np.ndarray, labels: np.ndarray, d2: np.ndarray | None = None):
    """Nearest centre of every row (ties: the lower index) into ``labels``, squared distances into
    ``d2`` if given; ``points`` and ``centers`` of one float dtype."""
    k = kernels()
    run = k.nearest if points.shape[0] >= PARALLEL_ROWS else k.nearest_serial
    if d2 is None:
        d2 = np.empty(0, points.dtype)
    with _LOCK:
        run(points, centers, labels, d2)


def lloyd_pass(points: np.ndarray, weights: np.ndarray, centers: np.ndarray):
    """One Lloyd assignment of float64 rows: (labels, weighted sums per centre, weight per centre,
    weighted sum of squared distances)."""
    k = kernels()
    run = k.lloyd_pass if points.shape[0] >= PARALLEL_ROWS else k.lloyd_pass_serial
    labels = np.empty(points.shape[0], np.intp)
    with _LOCK:
        sums, wsum, cost = run(points, weights, centers, labels)
    return labels, sums, wsum, float(cost)


def group_sums(labels: np.ndarray, weights: np.ndarray, points: np.ndarray, k: int):
    """Total weight (k,) and weighted sums of ``points`` (k, f) per label 0..k-1."""
    kern = kernels()
    run = kern.group_sums if labels.shape[0] >= PARALLEL_ROWS else kern.group_sums_serial
    with _LOCK:
        return run(labels, weights, points, k)


def cell_codes(points: np.ndarray, levels: int, lo: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Grid-cell codes of float64 rows, as ``reduce._cell_codes`` computes them."""
    k = kernels()
    run = k.cell_codes if points.shape[0] >= PARALLEL_ROWS else k.cell_codes_serial
    out = np.empty(points.shape[0], np.int64)
    with _LOCK:
        run(points, levels, np.asarray(lo, np.float64), np.asarray(span, np.float64), out)
    return out


def nn_chain(D: np.ndarray, w: np.ndarray, method: str):
    """The merges (slots a < b, heights, in merge order) of the nearest-neighbour chain on the
    float64 distance matrix ``D`` and weights ``w`` (both modified)."""
    k = kernels()
    with _LOCK:
        return k.nn_chain(D, w, k.LINKAGE_CODES[method])


def ward_greedy(points: np.ndarray, weights: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The merges of ``regions._exact_ward_python`` (identical ones), compiled."""
    k = kernels()
    with _LOCK:
        return k.ward_greedy(points, weights, edges[:, 0], edges[:, 1])


def roots_after(Z: np.ndarray, m: int, n_merges: int) -> np.ndarray:
    """``hierarchy.roots_after``, in one compiled pass."""
    k = kernels()
    with _LOCK:
        return k.roots_after(Z, m, n_merges)


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels for the common types, on tiny inputs."""
    if kernels() is None:
        return
    rgb = np.zeros((4, 3), np.uint8)
    count_rgb8(rgb)
    lookup_rgb8(rgb, np.zeros(2**24, np.uint8), np.empty(4, np.uint8))
    for dtype in (np.uint8, np.uint16):
        column = np.zeros((4, 1), dtype)
        count_grey(column)
        lookup_grey(column, np.zeros(256, np.uint8), np.empty(4, np.uint8))
    for n in (4, PARALLEL_ROWS):  # the serial and the parallel builds
        for dtype in (np.float64, np.float32):
            pts = np.zeros((n, 3), dtype)
            nearest(pts, pts[:2].copy(), np.empty(n, np.intp), np.empty(n, dtype))
        pts = np.zeros((n, 3))
        lloyd_pass(pts, np.ones(n), pts[:2].copy())
        group_sums(np.zeros(n, np.intp), np.ones(n), pts, 2)
        cell_codes(pts, 4, np.zeros(3), np.ones(3))
    nn_chain(np.ones((3, 3)), np.ones(3), "ward")
    Z = ward_greedy(np.zeros((3, 3)), np.ones(3), np.array([[0, 1], [1, 2]]))
    roots_after(Z, 3, 2)
