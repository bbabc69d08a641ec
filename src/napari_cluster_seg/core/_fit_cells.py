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
from .cells import CellReduction, cell_codes, value_tables

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


def fit_pixels(values: np.ndarray, red: CellReduction, normalizer, centers: np.ndarray):
    """Generator: from ``centers`` (normalised, fitted on the cells of ``red``), :data:`PIXEL_PASSES`
    Lloyd iterations over the uint8 RGB rows ``values`` and the final assignment with the centres
    sorted; returns a :class:`PixelFit`, or None when a cluster ends up without pixels."""
    tabs = value_tables(normalizer)
    k = centers.shape[0]
    for i in range(PIXEL_PASSES):
        yield Progress("refining on every pixel", 0.6 + 0.2 * i / PIXEL_PASSES)
        counts, sums = pixel_pass(values, red, tabs, centers)
        moved = centers.copy()
        kept = counts > 0  # a centre without pixels stays where it is
        moved[kept] = normalizer(sums[kept] / counts[kept, None])
        centers = moved[np.lexsort(moved.T[::-1])]
    yield Progress("labelling", 0.85)
    labels = np.empty(values.shape[0], labels_dtype(k))
    counts, sums = pixel_pass(values, red, tabs, centers, np.arange(k).astype(labels.dtype), labels)
    if np.any(counts == 0):
        return None
    wcss = exact_wcss(red.hist, counts, sums, normalizer.scale)
    return PixelFit(labels, centers, counts, sums / counts[:, None], wcss)


def pixel_pass(values, red: CellReduction, tabs, centers, lut=None, out=None):
    """One Lloyd assignment of every row: the pixel count (k,) and raw channel sums (k, 3), int64,
    of every centre's rows; with ``out``, ``out[i] = lut[nearest centre of row i]``."""
    k = centers.shape[0]
    margin = _margin(tabs, centers)
    if lut is None:
        lut, out = np.zeros(k, np.uint8), np.empty(0, np.uint8)
    if _accel.enabled():
        cand, n_cand = _accel.rgb8_candidates(red.codes, tabs, centers, margin, red.coder.space)
        acc = _accel.rgb8_assign(values, tabs, centers, cand, n_cand, lut, out)
        of_cell = np.where(n_cand[red.codes] == 1, cand[red.codes, 0], -1)
    else:
        pure = np.full(red.coder.space, -1, np.int16)
        pure[red.codes] = pure_cells(red.codes, tabs, centers, margin)
        acc = _assign_numpy(values, tabs, centers, pure, lut, out)
        of_cell = pure[red.codes]
    sel = of_cell >= 0
    for i in range(4):  # the pure cells' pixels, from the table (float64 sums of integers < 2**53)
        part = np.bincount(of_cell[sel], weights=red.table[sel, i], minlength=k)
        acc[:, i] += np.rint(part).astype(np.int64)
    return acc[:, 0], acc[:, 1:]


def _margin(tabs: np.ndarray, centers: np.ndarray) -> float:
    """:data:`PURE_MARGIN` of the largest squared distance of any colour to any centre (a bound)."""
    bound = sum((np.abs(tabs[c]).max() + np.abs(centers[:, c]).max()) ** 2 for c in range(3))
    return PURE_MARGIN * float(bound)


def pure_cells(cells: np.ndarray, tabs: np.ndarray, centers: np.ndarray, margin: float) -> np.ndarray:
    """For every cell of ``cells``, the centre all its colours are nearest to by more than
    ``margin`` (the 8 corners of the cell decide), or -1; int16. (numpy; the compiled
    ``rgb8_candidates`` finds the same cells pure up to rounding, which changes no label.)"""
    corner_lo = np.stack([((cells >> (5 * c)) & 31) * 8 for c in range(3)], axis=1)
    label = None
    pure = np.ones(cells.size, bool)
    for corner in range(8):
        v = corner_lo + 7 * ((corner >> np.arange(3)) & 1)
        x = np.stack([tabs[c][v[:, c]] for c in range(3)], axis=1)
        d = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
        order = np.argsort(d, axis=1, kind="stable")[:, :2]
        best, second = np.take_along_axis(d, order, axis=1).T
        pure &= second - best > margin
        if label is not None:
            pure &= order[:, 0] == label
        label = order[:, 0]
    return np.where(pure, label, -1).astype(np.int16)


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
