"""Reduce the pixels of an image to a few weighted points in feature space.

Clustering every pixel of a megapixel image separately wastes work: an image
holds far fewer *distinct* feature vectors than pixels (a uint8 grey image at
most 256, a uint8 RGB photo typically 10^4-10^6). :func:`reduce_pixels`
returns those points with their pixel counts as weights and, for every pixel,
the index of its point, so that a clustering of the points labels every pixel
with one lookup.

* **Exact** (integer images, no smoothing): the points are the distinct
  values. K-means on them with the counts as weights is K-means on all pixels.
* **Grid** (floats, smoothed images, very many distinct values): the feature
  space is cut into a regular grid; each occupied cell becomes one point at the
  mean of its pixels, with the cell's own sum of squares kept in ``sse`` so
  the within-cluster sum of squares of any grouping of cells is exact.

:func:`coarsen` merges points on a coarser grid until at most ``max_units``
remain: the units on which the hierarchical methods build their tree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Largest code space for which counting uses a dense ``bincount``.
_DENSE_CODES = 2**25


@dataclass
class Reduction:
    """Weighted points standing for the valid pixels of an image.

    Attributes
    ----------
    points : ndarray, shape (m, n_features)
        Mean feature vector of the pixels of each point.
    weights : ndarray, shape (m,)
        Number of pixels of each point.
    sse : ndarray, shape (m,)
        Sum of squared distances of each point's pixels to the point (0 when exact).
    inverse : ndarray, shape (n_valid,)
        Index of the point of every valid pixel.
    exact : bool
        True when every pixel equals its point.
    raw_points : ndarray, shape (m, n_channels)
        Mean input value (before smoothing and normalisation) of each point's pixels.
    features : ndarray or None
        The per-pixel features (float32) when the reduction is not exact,
        for refinement passes over all pixels.
    """

    points: np.ndarray
    weights: np.ndarray
    sse: np.ndarray
    inverse: np.ndarray
    exact: bool
    raw_points: np.ndarray | None = None
    features: np.ndarray | None = None

    @property
    def n_points(self) -> int:
        return self.points.shape[0]


def _dense_index(codes: np.ndarray, space: int):
    """Distinct codes, counts and inverse index of ``codes`` in ``[0, space)``.

    Counting into a dense table is fastest, but costs memory in proportion to
    the code space: it is used only when that space is not much larger than
    the number of codes; otherwise the codes are sorted.
    """
    if space <= min(_DENSE_CODES, 8 * codes.size + 2**16):
        counts = np.bincount(codes, minlength=space)
        occupied = np.flatnonzero(counts)
        lut = np.zeros(space, np.int32)
        lut[occupied] = np.arange(occupied.size, dtype=np.int32)
        return occupied, counts[occupied], lut[codes]
    occupied, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    return occupied, counts, inverse.ravel().astype(np.int32)


def _grid_codes(feats: np.ndarray, levels: int, lo: np.ndarray, span: np.ndarray) -> np.ndarray:
    codes = np.zeros(feats.shape[0], np.int64)
    stride = 1
    for c in range(feats.shape[1]):
        q = np.subtract(feats[:, c], lo[c], dtype=np.float64)
        q *= levels / span[c]
        q = q.astype(np.int64)
        np.clip(q, 0, levels - 1, out=q)
        q *= stride
        codes += q
        stride *= levels
    return codes


def _group(feats: np.ndarray, weights: np.ndarray | None, inverse: np.ndarray, m: int, sse=None):
    """Weighted means, total weights and sums of squares of ``feats`` grouped by ``inverse``."""
    w = np.bincount(inverse, weights=weights, minlength=m).astype(np.float64)
    points = np.empty((m, feats.shape[1]))
    sq = np.zeros(m) if sse is None else np.bincount(inverse, weights=sse, minlength=m)
    for c in range(feats.shape[1]):
        col = feats[:, c].astype(np.float64)
        wc = col if weights is None else col * weights
        s = np.bincount(inverse, weights=wc, minlength=m)
        points[:, c] = s / w
        sq += np.bincount(inverse, weights=wc * col, minlength=m) - s * points[:, c]
    np.maximum(sq, 0, out=sq)
    return points, w, sq


def fine_levels(n_features: int) -> int:
    """Grid levels per feature for the fine (K-means) grid: ~2 million cells at most."""
    if n_features == 1:
        return 2**16
    return max(2, int(2 ** (21 / n_features)))


def reduce_pixels(values: np.ndarray, normalizer, *, raw_values=None, max_points: int = 2**21) -> Reduction:
    """Reduce pixel ``values`` (n, c) to weighted points in normalised feature space.

    Integer values with a code space of at most 2**25 and at most
    ``max_points`` distinct vectors are reduced exactly; anything else is
    normalised to float32 features and reduced on the fine grid.
    ``raw_values`` (default ``values``) are the unsmoothed input values whose
    means per point are kept as ``raw_points``.
    """
    raw_values = values if raw_values is None else raw_values
    n, c = values.shape
    if np.issubdtype(values.dtype, np.integer):
        lo = values.min(axis=0).astype(np.int64)
        ranges = values.max(axis=0).astype(np.int64) - lo + 1
        space = int(np.prod(ranges.astype(object)))
        if space <= _DENSE_CODES:
            codes = np.zeros(n, np.int64)
            stride = 1
            for i in range(c):
                col = values[:, i].astype(np.int64)
                col -= lo[i]
                col *= stride
                codes += col
                stride *= int(ranges[i])
            occupied, counts, inverse = _dense_index(codes, space)
            del codes
            if occupied.size <= max_points:
                raw = np.empty((occupied.size, c), np.int64)
                rem = occupied.copy()
                for i in range(c):
                    raw[:, i] = rem % ranges[i] + lo[i]
                    rem //= ranges[i]
                return Reduction(
                    points=normalizer(raw),
                    weights=counts.astype(np.float64),
                    sse=np.zeros(occupied.size),
                    inverse=inverse,
                    exact=True,
                    raw_points=raw.astype(np.float64),
                )
    feats = normalizer(values, dtype=np.float32)
    red = grid_reduce(feats, fine_levels(c))
    red.features = feats
    red.raw_points = _group(raw_values, None, red.inverse, red.n_points)[0]
    return red


def grid_reduce(feats: np.ndarray, levels: int) -> Reduction:
    """Group float features (n, c) into the occupied cells of a ``levels``-per-axis grid."""
    lo = feats.min(axis=0).astype(np.float64)
    span = feats.max(axis=0).astype(np.float64) - lo
    span[span <= 0] = 1.0
    codes = _grid_codes(feats, levels, lo, span)
    space = levels ** feats.shape[1]
    occupied, _, inverse = _dense_index(codes, space)
    del codes
    points, weights, sse = _group(feats, None, inverse, occupied.size)
    exact = bool(np.all(sse == 0))
    return Reduction(points=points, weights=weights, sse=sse, inverse=inverse, exact=exact)


def _count_cells(points: np.ndarray, levels: int, lo, span) -> int:
    codes = _grid_codes(points, levels, lo, span)
    space = levels ** points.shape[1]
    if space <= _DENSE_CODES:
        return int(np.count_nonzero(np.bincount(codes, minlength=space)))
    return int(np.unique(codes).size)


def coarsen(red: Reduction, max_units: int, fit_weights: np.ndarray | None = None):
    """Merge the points of ``red`` on a grid until at most ``max_units`` remain.

    The grid is the finest with the same number of levels on every feature
    axis (each axis spanning its own range) that leaves no more than
    ``max_units`` occupied cells.

    Returns
    -------
    unit_of_point : ndarray, shape (m,)
        The unit of each point of ``red``.
    units : Reduction
        The units, with ``inverse`` left empty (use ``unit_of_point``).
    """
    pts, w = red.points, red.weights
    if red.n_points <= max_units:
        unit_of_point = np.arange(red.n_points)
        return unit_of_point, Reduction(
            pts, w, red.sse, np.empty(0, np.intp), red.exact, raw_points=red.raw_points
        )
    lo = pts.min(axis=0)
    span = pts.max(axis=0) - lo
    span[span <= 0] = 1.0
    # Largest level count with few enough cells: double, then bisect.
    good, bad = 1, 2
    while _count_cells(pts, bad, lo, span) <= max_units:
        good, bad = bad, bad * 2
    while bad - good > 1:
        mid = (good + bad) // 2
        if _count_cells(pts, mid, lo, span) <= max_units:
            good = mid
        else:
            bad = mid
    codes = _grid_codes(pts, good, lo, span)
    _, unit_of_point = np.unique(codes, return_inverse=True)
    unit_of_point = unit_of_point.ravel()
    m = int(unit_of_point.max()) + 1
    points, weights, sse = _group(pts, w, unit_of_point, m, sse=red.sse)
    raw = _group(red.raw_points, w, unit_of_point, m)[0]
    return unit_of_point, Reduction(
        points, weights, sse, np.empty(0, np.intp), exact=False, raw_points=raw
    )
