"""Spatial clean-up of label images: small islands and small holes.

Clustering labels pixels one by one, so a noisy image gives speckle: tiny
islands of one cluster inside another. :func:`clean_labels` removes them as a
documented post-processing step:

* an **island** is a connected region (faces touching: 4-connectivity in 2D,
  6 in 3D) of one label with fewer than ``min_size`` pixels; it takes the
  label that most of its neighbouring pixels have;
* a **hole** is a connected region of at most ``hole_size`` pixels that one
  label surrounds completely (it does not touch the image border); it takes
  that label.

Label 0 ("not clustered") is never changed and never spreads. Regions that
touch only label 0 stay as they are. A time axis is cleaned frame by frame.
Images of any number of dimensions are cleaned (4D and more too).
Removal is repeated (at most ``max_rounds`` times) until nothing changes, as
merging one island can leave a neighbour island still too small.
"""

from __future__ import annotations

import numpy as np

from ._chunks import frame_slices
from ._params import check_int, normalize_axis


def _neighbour_pairs(regions: np.ndarray):
    """(region, neighbouring region) for each face-adjacent pixel pair in different regions."""
    pairs = []
    for ax in range(regions.ndim):
        a = [slice(None)] * regions.ndim
        b = [slice(None)] * regions.ndim
        a[ax], b[ax] = slice(None, -1), slice(1, None)
        ra, rb = regions[tuple(a)], regions[tuple(b)]
        differ = ra != rb
        pairs.append(np.stack([ra[differ], rb[differ]], 1))
        pairs.append(np.stack([rb[differ], ra[differ]], 1))
    return np.concatenate(pairs).astype(np.int64) if pairs else np.empty((0, 2), np.int64)


def _touches_border(regions: np.ndarray, n: int) -> np.ndarray:
    border = np.zeros(n, bool)
    for ax in range(regions.ndim):
        for end in (0, -1):
            border[np.take(regions, end, axis=ax).ravel()] = True
    return border


def equal_value_regions(labels: np.ndarray) -> np.ndarray:
    """Every face-connected region of one value (0 included), numbered 0..n-1, for any ndim.

    scikit-image labels 1 to 3 dimensions (with -1 as its background value:
    no label is negative); more dimensions, and unsigned labels that hold
    the value -1 wraps to, go through a graph of the touching equal pixels.
    """
    wraps = labels.dtype.kind == "u" and labels.size and labels.max() == np.iinfo(labels.dtype).max
    if labels.ndim <= 3 and not wraps:
        from skimage.measure import label as connected  # heavy: loaded on first use (LAZY_IMPORTS)

        return connected(labels, background=-1, connectivity=1) - 1
    from scipy.sparse import coo_matrix  # heavy: loaded on first use (LAZY_IMPORTS)
    from scipy.sparse.csgraph import connected_components

    n = labels.size
    index = np.arange(n, dtype=np.int64).reshape(labels.shape)
    lo, hi = [], []
    for ax in range(labels.ndim):
        a = [slice(None)] * labels.ndim
        b = [slice(None)] * labels.ndim
        a[ax], b[ax] = slice(None, -1), slice(1, None)
        same = labels[tuple(a)] == labels[tuple(b)]
        lo.append(index[tuple(a)][same])
        hi.append(index[tuple(b)][same])
    lo, hi = np.concatenate(lo), np.concatenate(hi)
    graph = coo_matrix((np.ones(lo.size, np.int8), (lo, hi)), shape=(n, n))
    return connected_components(graph, directed=False)[1].reshape(labels.shape)


def _clean_frame(labels: np.ndarray, min_size: int, hole_size: int, max_rounds: int) -> np.ndarray:
    labels = labels.copy()
    for _ in range(max_rounds):
        # every connected region of one value, 0 included (as a region that never changes)
        regions = equal_value_regions(labels)
        n = int(regions.max()) + 1
        sizes = np.bincount(regions.ravel(), minlength=n)
        region_label = np.zeros(n, labels.dtype)
        region_label[regions.ravel()] = labels.ravel()
        small_island = sizes < min_size
        maybe_hole = sizes <= hole_size
        candidates = (small_island | maybe_hole) & (region_label > 0)
        if not candidates.any():
            break
        # (region, neighbouring region, index of the neighbour's label among the labels)
        values, value_of_region = np.unique(region_label, return_inverse=True)
        pairs = _neighbour_pairs(regions)
        pairs = np.column_stack([pairs, value_of_region.ravel()[pairs[:, 1]]])
        pairs = pairs[candidates[pairs[:, 0]] & (values[pairs[:, 2]] > 0)]
        if pairs.size == 0:
            break
        # Vote with the neighbours that stay (regions that are not candidates themselves) where a
        # region has any: two small regions never swap labels back and forth.
        stable = ~candidates[pairs[:, 1]]
        has_stable = np.zeros(n, bool)
        has_stable[pairs[stable, 0]] = True
        pairs = pairs[stable | ~has_stable[pairs[:, 0]]][:, [0, 2]]
        # count neighbouring pixels per (region, label)
        k = values.size
        keys, counts = np.unique(pairs[:, 0] * k + pairs[:, 1], return_counts=True)
        reg, lab = keys // k, values[keys % k]
        order = np.lexsort((-counts, reg))  # per region, the most frequent neighbour label first
        reg, lab, counts = reg[order], lab[order], counts[order]
        first = np.r_[True, reg[1:] != reg[:-1]]
        n_neighbour_labels = np.bincount(reg, minlength=n)
        new_label = region_label.copy()
        best_reg, best_lab = reg[first], lab[first]
        island = small_island[best_reg]
        hole = (
            maybe_hole[best_reg]
            & (n_neighbour_labels[best_reg] == 1)
            & ~_touches_border(regions, n)[best_reg]
        )
        change = island | hole
        new_label[best_reg[change]] = best_lab[change]
        if np.array_equal(new_label, region_label):
            break
        labels = new_label[regions]
    return labels


def clean_labels(
    labels, *, min_size: int = 0, hole_size: int = 0, time_axis: int | None = None, max_rounds: int = 4
):
    """Remove islands smaller than ``min_size`` and fill holes up to ``hole_size`` pixels.

    Parameters
    ----------
    labels : ndarray of int
        Label image (0 = not clustered).
    min_size : int, default 0
        Connected regions of one label with fewer pixels take the label of
        most of their neighbours (0 keeps every region).
    hole_size : int, default 0
        Regions of at most this many pixels surrounded by one label (not
        touching the border) take that label.
    time_axis : int, optional
        Clean each frame along this axis separately.

    Returns
    -------
    ndarray
        A cleaned copy with the same dtype.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.ones((5, 5), np.uint8)
    >>> img[2, 2] = 2
    >>> clean_labels(img, min_size=2)[2, 2]
    np.uint8(1)
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim == 0:
        raise ValueError(
            f"labels must be an integer array, got dtype {labels.dtype} and shape {labels.shape}."
        )
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0 (0 = not clustered), got {labels.min()}.")
    for name, value in (("min_size", min_size), ("hole_size", hole_size)):
        check_int(
            name, value, 0, message=name + "={value!r} must be an integer >= 0 (pixels; 0 turns it off)."
        )
    time_axis = normalize_axis(time_axis, labels.ndim, "time_axis")
    if (min_size <= 1 and hole_size <= 0) or labels.size == 0:
        return labels.copy()
    out = np.empty_like(labels)
    for index in frame_slices(labels.shape, time_axis):
        out[index] = _clean_frame(labels[index], int(min_size), int(hole_size), max_rounds)
    return out
