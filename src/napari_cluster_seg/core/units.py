"""Units: weighted points merged on a regular grid (:func:`coarsen`), the groups the hierarchical
methods build their tree on, and the grid that assigns other points to them (:class:`UnitGrid`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _accel
from ._chunks import GROUP_SUMS_MAX, channel_range, dense_ranks, group_means


def _cell_codes(points: np.ndarray, levels: int, lo, span) -> np.ndarray:
    """Code of the grid cell of every point: column by column, in place (half the time of whole
    (n, c) temporaries for a million points)."""
    if _accel.enabled() and points.dtype == np.float64:
        return _accel.cell_codes(points, levels, lo, span)
    codes = None
    for c in range(points.shape[1]):
        t = points[:, c] - lo[c]
        t /= span[c]
        t *= levels
        np.clip(t, 0, levels - 1, out=t)  # before truncating: the same cell as truncating first
        q = t.astype(np.int64)
        if codes is None:
            codes = q
        else:
            codes *= levels
            codes += q
    return codes


def _count_cells(points: np.ndarray, levels: int, lo, span) -> int:
    codes = _cell_codes(points, levels, lo, span)
    if levels ** points.shape[1] <= 8 * codes.size:
        return int(np.count_nonzero(np.bincount(codes, minlength=levels ** points.shape[1])))
    return int(np.unique(codes).size)


def grid_group(points: np.ndarray, weights: np.ndarray, levels: int):
    """Merge weighted points that share a cell of a ``levels``-per-axis grid; returns (means, weights)."""
    lo, hi = channel_range(points)
    span = hi - lo
    span[span <= 0] = 1.0
    space, weights = levels ** points.shape[1], np.asarray(weights)
    if _compiled_grid(points, weights, space):  # the same sums, in one pass
        w, sums = _accel.grid_group_sums(points, weights, levels, lo, span)
        return sums / w[:, None], w
    codes = _cell_codes(points, levels, lo, span)
    if space <= max(2**16, 4 * codes.size):  # a dense cell -> point table (not a sorted search)
        inverse = dense_ranks(codes, space)[1]
    else:
        _, inverse = np.unique(codes, return_inverse=True)
        inverse = inverse.ravel()
    m = int(inverse.max()) + 1
    return group_means(points, weights, inverse, m)


def _compiled_grid(points, weights, space) -> bool:
    """Whether :func:`_accel.grid_group_sums` groups these points (contiguous float64 rows and
    weights, the types of its announced build; a grid of at most
    :data:`GROUP_SUMS_MAX` cells: the cells :func:`group_sums` would add up compiled too)."""
    return (
        _accel.enabled()
        and space <= GROUP_SUMS_MAX
        and points.dtype == np.float64
        and points.flags.c_contiguous
        and weights.dtype == np.float64
        and weights.flags.c_contiguous
    )


def coarsen(points: np.ndarray, weights: np.ndarray, max_units: int):
    """Merge weighted points on a grid into at most ``max_units`` units.

    The grid is the finest with the same number of cells on every axis
    (each axis spanning its own range) that leaves at most ``max_units``
    occupied cells.

    Returns
    -------
    unit_of_point : ndarray, shape (m,)
    units, unit_weights : the units' mean points and weights
    grid : UnitGrid or None
        The grid (None when every point is its own unit), so that other
        points can be assigned to the same units later.
    """
    m = points.shape[0]
    if m <= max_units:
        return np.arange(m), points, weights, None
    lo, hi = channel_range(points)
    span = hi - lo
    span[span <= 0] = 1.0
    good, bad = 1, 2
    max_levels = int(2 ** (62 / points.shape[1]))  # codes must fit in int64
    while bad <= max_levels and _count_cells(points, bad, lo, span) <= max_units:
        good, bad = bad, bad * 2
    while bad - good > 1:
        mid = (good + bad) // 2
        if _count_cells(points, mid, lo, span) <= max_units:
            good = mid
        else:
            bad = mid
    unit_codes, unit_of_point = np.unique(_cell_codes(points, good, lo, span), return_inverse=True)
    unit_of_point = unit_of_point.ravel()
    k = int(unit_of_point.max()) + 1
    units, unit_w = group_means(points, weights, unit_of_point, k)
    return unit_of_point, units, unit_w, UnitGrid(good, lo, span, unit_codes)


@dataclass
class UnitGrid:
    """The grid :func:`coarsen` grouped points on: ``levels`` cells per axis from ``lo`` over ``span``."""

    levels: int
    lo: np.ndarray
    span: np.ndarray
    unit_codes: np.ndarray  # sorted cell code of every unit

    def unit_of(self, points: np.ndarray) -> np.ndarray:
        """Unit of each point, or -1 where its cell holds no unit."""
        codes = _cell_codes(points, self.levels, self.lo, self.span)
        idx = np.minimum(np.searchsorted(self.unit_codes, codes), self.unit_codes.size - 1)
        return np.where(self.unit_codes[idx] == codes, idx, -1)
