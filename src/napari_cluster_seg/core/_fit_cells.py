"""K-means on uint8 colour pixels after the fit on their colour cells (:mod:`.cells`): Lloyd passes
over the pixels themselves, with exact statistics.

Every pass first finds the cells that lie wholly on one side of each boundary between the centres
(by a margin far above float64's rounding of a squared distance): their pixels take the cell's
centre, and their counts and sums come from the cell's table. Every other pixel gets its nearest
centre from its own normalised values, with the arithmetic of the compiled Lloyd pass. So the
labels are every pixel's nearest centre whichever cells are found pure, and every sum is an exact
integer: the same results with or without numba and for any thread count.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import _accel
from ._chunks import accumulate_chunks
from ._params import labels_dtype
from ._progress import Progress
from .cells import LEVELS, CellReduction, cell_codes, value_tables
from .kmeans import CHUNK_DISTANCES

#: Lloyd iterations over the pixels after converging on the cells (then the final assignment).
PIXEL_PASSES = 1
#: A cell is pure when its corners' nearest centre wins by more than this fraction of the largest
#: squared distance any colour can have to any centre (float64 rounds such a distance by ~1e-15 of it).
PURE_MARGIN = 1e-9


@dataclass
class PixelFit:
    """The end of a K-means fit on every pixel: its nearest centre (``labels``, 0..k-1, in the order
    of ``centers``), the centres (normalised, sorted), every cluster's pixel count (k,) and raw
    channel means (k, 3), and the within-cluster sum of squares (normalised), all exact."""

    labels: np.ndarray
    centers: np.ndarray
    counts: np.ndarray
    means: np.ndarray
    wcss: float


def fit_pixels(red: CellReduction, normalizer, centers: np.ndarray, assign, n_rows: int | None):
    """Generator: from ``centers`` (normalised, fitted on the cells of ``red``), :data:`PIXEL_PASSES`
    Lloyd iterations over the pixels and the final assignment with the centres sorted, each pass
    ``assign(plan, lut, out)`` (:func:`memory_assign`, or block by block); returns a
    :class:`PixelFit` (with the labels of the ``n_rows`` pixels; None: not in memory, no labels),
    or None when a cluster ends up without pixels."""
    tabs = value_tables(normalizer)
    k = centers.shape[0]
    for i in range(PIXEL_PASSES):
        yield Progress("refining on every pixel", 0.6 + 0.2 * i / PIXEL_PASSES)
        counts, sums = yield from pixel_pass(red, assign, tabs, centers)
        moved = centers.copy()
        kept = counts > 0  # a centre without pixels stays where it is
        moved[kept] = normalizer(sums[kept] / counts[kept, None])
        centers = moved[np.lexsort(moved.T[::-1])]
    yield Progress("labelling", 0.8)
    labels = None if n_rows is None else np.empty(n_rows, labels_dtype(k))
    lut = np.arange(k).astype(labels_dtype(k))
    counts, sums = yield from pixel_pass(red, assign, tabs, centers, lut, labels)
    if np.any(counts == 0):
        return None
    wcss = exact_wcss(red.hist, counts, sums, normalizer.scale)
    return PixelFit(labels, centers, counts, sums / counts[:, None], wcss)


@dataclass
class PassPlan:
    """What a Lloyd assignment of the pixels needs besides them: the normalised values ``tabs``
    (3, 256), the centres (k, 3), and per cell (32768) the centre its colours all take (``pure``,
    -1: none) or, compiled, its candidate centres (``cand``, ``n_cand``; see
    ``_kernels_cells.rgb8_candidates``). Each part is made where it is first needed (a dask worker
    may run with or without numba)."""

    tabs: np.ndarray
    centers: np.ndarray
    codes: np.ndarray  # the occupied cells
    margin: float
    pure: np.ndarray | None = None
    cand: tuple | None = None

    def candidates(self):
        if self.cand is None:
            space = LEVELS**3
            self.cand = _accel.rgb8_candidates(self.codes, self.tabs, self.centers, self.margin, space)
        return self.cand

    def pure_cells(self) -> np.ndarray:
        """The centre every colour of a cell takes, or -1, for every cell (int16)."""
        if self.pure is None:
            pure = np.full(LEVELS**3, -1, np.int16)
            if self.cand is not None:
                cand, n_cand = self.cand
                pure[self.codes] = np.where(n_cand[self.codes] == 1, cand[self.codes, 0], -1)
            else:
                pure[self.codes] = pure_cells(self.codes, self.tabs, self.centers, self.margin)
            self.pure = pure
        return self.pure


def pixel_pass(red: CellReduction, assign, tabs, centers, lut=None, out=None):
    """Generator: one Lloyd assignment of every pixel (``assign(plan, lut, out)``); returns the
    pixel count (k,) and raw channel sums (k, 3), int64, of every centre's pixels; with ``out``,
    ``out[i] = lut[nearest centre of row i]``."""
    k = centers.shape[0]
    plan = PassPlan(tabs, centers, red.codes, _margin(tabs, centers))
    if _accel.enabled():
        plan.candidates()
    acc = yield from assign(plan, np.zeros(k, labels_dtype(k)) if lut is None else lut, out)
    of_cell = plan.pure_cells()[red.codes]
    sel = of_cell >= 0
    for i in range(4):  # the pure cells' pixels, from the table (float64 sums of integers < 2**53)
        part = np.bincount(of_cell[sel], weights=red.table[sel, i], minlength=k)
        acc[:, i] += np.rint(part).astype(np.int64)
    return acc[:, 0], acc[:, 1:]


def memory_assign(values: np.ndarray):
    """The ``assign`` of :func:`fit_pixels` for pixels in memory: one pass over ``values``."""

    def assign(plan, lut, out):
        return assign_rows(values, plan, lut, out)
        yield  # (a generator, as a pass block by block is: this one has nothing to report)

    return assign


def assign_rows(rows: np.ndarray, plan: PassPlan, lut: np.ndarray, out) -> np.ndarray:
    """A Lloyd assignment of uint8 RGB rows (C-contiguous) by ``plan``: the count and raw channel
    sums (k, 4) int64 of the rows not in a pure cell; ``out[i] = lut[nearest centre of row i]``
    unless ``out`` is None."""
    out = np.empty(0, lut.dtype) if out is None else out
    if _accel.enabled():
        rows = np.ascontiguousarray(rows)  # (an RGBA image's RGB view: copied once per pass)
        cand, n_cand = plan.candidates()
        return _accel.rgb8_assign(rows, plan.tabs, plan.centers, cand, n_cand, lut, out)
    return _assign_numpy(rows, plan.tabs, plan.centers, plan.pure_cells(), lut, out)


def _margin(tabs: np.ndarray, centers: np.ndarray) -> float:
    """:data:`PURE_MARGIN` of a bound on the squared distance of any colour to any centre."""
    bound = sum((np.abs(tabs[c]).max() + np.abs(centers[:, c]).max()) ** 2 for c in range(3))
    return PURE_MARGIN * float(bound)


def pure_cells(cells: np.ndarray, tabs: np.ndarray, centers: np.ndarray, margin: float) -> np.ndarray:
    """For every cell of ``cells``, the centre all its colours are nearest to by more than
    ``margin`` (the 8 corners of the cell decide), or -1; int16. (numpy, a block of cells at a
    time; the compiled ``rgb8_candidates`` finds the same cells pure up to rounding, which changes
    no label.)"""
    k = centers.shape[0]
    out = np.empty(cells.size, np.int16)
    step = max(1, CHUNK_DISTANCES // (3 * k))
    for start in range(0, cells.size, step):
        block = cells[start : start + step]
        corner_lo = np.stack([((block >> (5 * c)) & 31) * 8 for c in range(3)], axis=1)
        label, pure = None, np.ones(block.size, bool)
        for corner in range(8):
            v = corner_lo + 7 * ((corner >> np.arange(3)) & 1)
            d = sum((tabs[c][v[:, c], None] - centers[None, :, c]) ** 2 for c in range(3))
            best = np.argmin(d, axis=1)
            nearest = d[np.arange(block.size), best]
            d[np.arange(block.size), best] = np.inf
            pure &= d.min(axis=1) - nearest > margin
            if label is not None:
                pure &= best == label
            label = best
        out[start : start + step] = np.where(pure, label, -1)
    return out


def _assign_numpy(values, tabs, centers, pure, lut, out):
    """:func:`._accel.rgb8_assign` by numpy, in chunks, with the same distances (the same float
    operations in the same order) and ties (the lower index)."""
    k = centers.shape[0]

    def work(a, b):
        rgb = values[a:b]
        j = pure[cell_codes(rgb)].astype(np.intp)
        mixed = np.flatnonzero(j < 0)
        sub = rgb[mixed]
        x = [tabs[c][sub[:, c]] for c in range(3)]
        best, arg = None, np.zeros(mixed.size, np.intp)
        for q in range(k):
            t = x[0] - centers[q, 0]
            d = t * t
            for c in (1, 2):
                t = x[c] - centers[q, c]
                d += t * t
            if best is None:
                best = d
            else:
                closer = d < best
                best = np.where(closer, d, best)
                arg[closer] = q
        j[mixed] = arg
        if out.size:
            out[a:b] = lut[j]
        cols = [np.bincount(arg, minlength=k)]
        cols += [np.bincount(arg, weights=sub[:, c], minlength=k) for c in range(3)]
        return (np.rint(np.stack(cols, axis=1)).astype(np.int64),)

    (acc,) = accumulate_chunks(work, values.shape[0])
    return acc


def exact_wcss(hist: np.ndarray, counts: np.ndarray, sums: np.ndarray, scale: np.ndarray) -> float:
    """The within-cluster sum of squares, normalised (affine: the raw one per channel over
    ``scale**2``), from the channel histograms (3, 256) and every cluster's count and raw sums,
    in exact rational arithmetic: sum_c (sum v**2 - sum_j S_jc**2 / N_j) / scale_c**2."""
    v2 = [v * v for v in range(hist.shape[1])]
    total = 0.0
    for c in range(hist.shape[0]):
        squares = sum(int(h) * q for h, q in zip(hist[c], v2))
        between = sum((Fraction(int(s) ** 2, int(n)) for s, n in zip(sums[:, c], counts)), Fraction(0))
        total += float(squares - between) / float(scale[c]) ** 2
    return total
