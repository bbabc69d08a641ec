"""Reduce the pixels of an image to a few weighted points, chunk by chunk.

Clustering every pixel separately wastes work: an image holds far fewer
*distinct* values than pixels (a uint8 grey image at most 256, a uint8 RGB
photo typically 10^4-10^6 colours among millions of pixels).
:func:`reduce_pixels` returns those points with their pixel counts as weights
and a :class:`Coder` that maps any pixel to its point, so that a clustering of
the points labels every pixel with one table lookup.

* **Exact** (integer images, unsmoothed): the points are the distinct values.
  K-means on them with the counts as weights *is* K-means on all pixels.
* **Grid** (floats, smoothed images, integer ranges too wide to count): the
  value space is cut into a regular grid (``levels`` cells per channel); each
  occupied cell becomes one point at the exact mean of its pixels. Pixels of
  one cell then share a label. With the per-channel sum of squares of all
  pixels kept, the within-cluster sum of squares of any grouping of cells is
  still exact.

Every pass over the pixels works on chunks of :data:`._chunks.CHUNK` pixels, using all
cores (numpy releases the GIL), so no float copy of the image is made; the
only image-sized arrays are the output labels and, for code spaces larger
than :data:`COUNT_TABLE_MAX` (uint8 RGB), one int32 code per pixel while counting.
With numba installed (:mod:`._accel`), uint8 / uint16 grey and uint8 RGB
pixels are counted and labelled by compiled loops instead (RGB: into one
table of 2**24 32-bit counters, 64 MB, instead of the codes).

:func:`.units.coarsen` merges points on a coarser grid until at most ``max_units``
remain: the units on which the hierarchical methods build their tree.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from . import _accel
from ._chunks import (
    CHUNK,
    SquareSums,
    accumulate_chunks,
    channel_range,
    for_chunks,
    n_workers,
    pool,
    reference,
    square_sums,
)
from .coder import Coder, grid_coder, grid_levels

#: Largest code space counted exactly (uint8 RGB needs 2**24).
EXACT_SPACE = 2**25
#: Largest code space counted with a table of counts; the distinct codes of a larger space (uint8
#: RGB) are found by sorting the codes, one part per core.
COUNT_TABLE_MAX = 2**23
#: Distinct values are found by sorting instead of a table of counts when the code space is this
#: many times larger than the number of pixels (a 128² RGB photo: 3 ms instead of 55 ms).
SORT_RATIO = 64
#: Most channels reduced on a grid (32 levels each at 4); more (feature vectors) are fitted on a
#: sample of pixels (:data:`.coder.SAMPLE_POINTS`) instead, and every pixel is then labelled by its
#: nearest centre or unit.
GRID_MAX_CHANNELS = 4


@dataclass
class Reduction:
    """Weighted points standing for the valid pixels of an image.

    Attributes
    ----------
    raw_points : ndarray, shape (m, c)
        Mean input value of each point's pixels (after smoothing, if any).
    weights : ndarray, shape (m,)
        Number of pixels of each point.
    total_sq : SquareSums
        Per channel, the sum of squares of all pixel values (about a reference
        value): with the points it gives the exact within-cluster sum of
        squares of any grouping.
    coder : Coder
        Maps pixel values to codes; ``codes[i]`` is the code of point ``i``.
    codes : ndarray, shape (m,)
        Sorted codes of the points.
    exact : bool
        True when every pixel equals its point.
    pixel_codes : ndarray, shape (n,), optional
        The code of every pixel of the values reduced (a grid reduction keeps
        them, 4 bytes per pixel): :meth:`map_pixels` of those same values is
        then one table lookup per pixel instead of finding each pixel's cell
        again.
    """

    raw_points: np.ndarray
    weights: np.ndarray
    total_sq: SquareSums
    coder: Coder
    codes: np.ndarray
    exact: bool
    pixel_codes: np.ndarray | None = field(default=None, repr=False)
    _coded: weakref.ref | None = field(default=None, repr=False)

    def keep_pixel_codes(self, values: np.ndarray, codes: np.ndarray) -> None:
        """Keep ``codes``, the code of every row of ``values`` (the array reduced, by identity)."""
        self.pixel_codes, self._coded = codes, weakref.ref(values)

    @property
    def n_points(self) -> int:
        return self.weights.size

    def _lookup_table(self, values_per_point: np.ndarray) -> np.ndarray | None:
        """Dense table code -> value (for fast labelling), or None if the code space is too big."""
        if self.coder.space > EXACT_SPACE:
            return None
        table = np.zeros(self.coder.space, dtype=values_per_point.dtype)
        table[self.codes] = values_per_point
        return table

    def point_index(self, values: np.ndarray) -> np.ndarray:
        """Index of the point of each pixel in ``values`` (n, c)."""
        idx = np.searchsorted(self.codes, self.coder.codes(values).astype(self.codes.dtype))
        return np.minimum(idx, self.n_points - 1)

    def map_pixels(self, values: np.ndarray, per_point: np.ndarray, out: np.ndarray):
        """Write ``per_point[point of pixel]`` for every pixel of ``values`` into ``out``, in chunks.

        Through a dense code -> value table where the code space is small
        enough, by a sorted search of the codes otherwise.
        """
        table = self._lookup_table(per_point)
        if table is not None and self._coded is not None and self._coded() is values:
            return self._map_codes(table, out)
        if table is not None and _accel.rgb8(values, self.coder):
            return _accel.lookup_rgb8(values, table, out)
        if table is not None and _compiled_cells(values, self.coder) and table.dtype in (np.uint8, np.int16):
            return _accel.lookup_grid(values, self.coder, table, out)
        if table is not None and _accel.grey(values, self.coder):
            return _accel.lookup_grey(values, table, out)

        def work(start, stop):
            chunk = values[start:stop]
            if table is not None:
                np.take(table, self.coder.codes(chunk), out=out[start:stop])
            else:
                out[start:stop] = per_point[self.point_index(chunk)]

        for_chunks(work, values.shape[0])
        return out

    def _map_codes(self, table: np.ndarray, out: np.ndarray):
        """``out[i] = table[pixel_codes[i]]``: labelling the values reduced by their kept codes."""
        codes = self.pixel_codes
        if _accel.enabled() and table.dtype in (np.uint8, np.int16):
            return _accel.lookup_codes(codes, table, out)
        for_chunks(lambda a, b: np.take(table, codes[a:b], out=out[a:b]), codes.size, chunk=CHUNK * 2)
        return out


def _count_codes(values: np.ndarray, coder: Coder):
    """Distinct codes (sorted) and their counts, without a table larger than COUNT_TABLE_MAX."""
    space = coder.space
    n = values.shape[0]
    if n * SORT_RATIO <= space:  # few pixels for the code space (a small image): sort them
        occupied, counts = np.unique(coder.codes(values), return_counts=True)
        return occupied.astype(np.intp), counts
    if space <= COUNT_TABLE_MAX:
        (counts,) = accumulate_chunks(
            lambda a, b: (np.bincount(coder.codes(values[a:b]), minlength=space),), n, chunk=CHUNK * 2
        )
        occupied = np.flatnonzero(counts)
        return occupied, counts[occupied]
    if _accel.rgb8(values, coder):  # one compiled pass into a table of 32-bit counters
        return _accel.count_rgb8(values)
    # Large code space (uint8 RGB): no table of the whole space. Keep the codes once (int32 when
    # they fit), sort one part per core in place and count the runs of equal codes, then merge the
    # parts' counts (4096² RGB: 0.19 s instead of 0.26 s for counting in two slices of the space,
    # and no 2**23-entry table).
    dtype = np.int32 if space < 2**31 else np.int64
    codes = np.empty(n, dtype)

    def fill(start, stop):
        codes[start:stop] = coder.codes(values[start:stop])

    for_chunks(fill, n)
    parts = [p for p in np.array_split(codes, n_workers()) if p.size]
    runs = [_sorted_runs(parts[0])] if len(parts) == 1 else list(pool().map(_sorted_runs, parts))
    if len(runs) == 1:
        return runs[0][0].astype(np.intp), runs[0][1]
    found = np.concatenate([r[0] for r in runs])
    order = np.argsort(found, kind="stable")  # sorted runs, one per part: timsort merges them
    found, counted = found[order], np.concatenate([r[1] for r in runs])[order]
    starts = np.flatnonzero(np.concatenate(([True], found[1:] != found[:-1])))
    return found[starts].astype(np.intp), np.add.reduceat(counted, starts)


def _sorted_runs(codes: np.ndarray):
    """Sort ``codes`` in place; return its distinct values and how often each occurs."""
    codes.sort()
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    return codes[starts], np.diff(np.append(starts, codes.size))


def _compiled_cells(values, coder) -> bool:
    """Whether :func:`_accel.cell_sums` counts these rows (and :func:`_accel.lookup_codes` labels them
    by the cells it kept, or :func:`_accel.lookup_grid` rows reduced elsewhere): contiguous float32
    / float64 rows on a grid (the builds :func:`._builds.needs` announces)."""
    return (
        _accel.enabled()
        and coder.step is not None
        and values.dtype in (np.float32, np.float64)
        and values.flags.c_contiguous
        and values.shape[1] <= GRID_MAX_CHANNELS
    )


def _cell_sums(values, coder, codes=None):
    """One chunked pass: occupied cells (sorted codes), their pixel counts and mean values per
    channel, and the per-channel :class:`SquareSums` of all pixels (about a reference value);
    with ``codes`` (n,) int32, the cell of every pixel is written there too."""
    space = coder.space
    c = values.shape[1]
    ref = reference(values)
    if _compiled_cells(values, coder):
        occupied, w, s, sq = _accel.cell_sums(values, coder, ref, CHUNK * 2, n_workers(), codes)
        return occupied, w, s / w[:, None], SquareSums(ref, sq)

    def work(start, stop):
        chunk = values[start:stop]
        chunk_codes = coder.codes(chunk)
        if codes is not None:
            codes[start:stop] = chunk_codes
        w = np.bincount(chunk_codes, minlength=space).astype(np.float64)
        s = np.empty((space, c))
        for i in range(c):
            s[:, i] = np.bincount(chunk_codes, weights=chunk[:, i], minlength=space)
        return w, s, square_sums(chunk, ref)

    w, s, sq = accumulate_chunks(work, values.shape[0], chunk=CHUNK * 2)
    occupied = np.flatnonzero(w)
    w = w[occupied]
    return occupied, w, s[occupied] / w[:, None], sq


def reduce_pixels(values: np.ndarray, *, levels: int | None = None) -> Reduction:
    """Reduce pixel ``values`` (n, c) to weighted points.

    Integer values whose code space (product of the channel ranges) is at
    most :data:`EXACT_SPACE` are reduced exactly; anything else on a grid of
    ``levels`` cells per channel (default :func:`grid_levels`), regular unless
    outliers make it coarse relative to the values (:func:`grid_coder`).

    Examples
    --------
    >>> import numpy as np
    >>> red = reduce_pixels(np.array([[3], [7], [3], [3]], np.uint8))
    >>> red.raw_points[:, 0], red.weights
    (array([3., 7.]), array([3., 1.]))
    """
    n, c = values.shape
    integer = np.issubdtype(values.dtype, np.integer)
    if integer and c == 1 and values.dtype.kind == "u" and values.dtype.itemsize <= 2:
        # unsigned 8/16-bit grey: the values index the counting table directly
        if _accel.grey(values):
            counts = _accel.count_grey(values)
        else:
            parts = for_chunks(lambda a, b: np.bincount(values[a:b, 0]), n, chunk=CHUNK * 2)
            counts = np.zeros(max(p.size for p in parts), np.int64)
            for p in parts:
                counts[: p.size] += p
        occupied = np.flatnonzero(counts)
        raw = occupied.astype(np.float64)[:, None]
        weights = counts[occupied].astype(np.float64)
        return Reduction(
            raw_points=raw,
            weights=weights,
            total_sq=square_sums(raw, reference(raw), weights),
            coder=Coder(lo=np.zeros(1, np.int64), levels=np.array([counts.size], np.int64)),
            codes=occupied,
            exact=True,
        )
    if integer and values.dtype.itemsize == 1 and 256**c <= EXACT_SPACE:
        info = np.iinfo(values.dtype)  # the whole range: no pass over the pixels
        lo, hi = np.full(c, info.min), np.full(c, info.max)
    else:
        lo, hi = channel_range(values)
    if integer:
        red = _reduce_exact(values, lo, hi)
        if red is not None:
            return red
    lo, hi = lo.astype(np.float64), hi.astype(np.float64)
    check_magnitude(lo, hi)
    coder = grid_coder(values, lo, hi, grid_levels(c) if levels is None else levels)
    pixel_codes = np.empty(n, np.int32) if coder.space < 2**31 else None
    occupied, w, raw, total_sq = _cell_sums(values, coder, pixel_codes)
    red = Reduction(raw_points=raw, weights=w, total_sq=total_sq, coder=coder, codes=occupied, exact=False)
    if pixel_codes is not None:
        red.keep_pixel_codes(values, pixel_codes)
    return red


def _reduce_exact(values: np.ndarray, lo, hi) -> Reduction | None:
    """The distinct values of integer ``values`` (n, c) within ``lo..hi`` and their counts, or None
    when the product of the channel ranges exceeds :data:`EXACT_SPACE` (then a grid it is)."""
    coder = exact_coder(values.dtype, lo, hi)
    if coder is None:
        return None
    occupied, counts = _count_codes(values, coder)
    return exact_reduction(coder, occupied, counts)


def exact_coder(dtype, lo, hi) -> Coder | None:
    """The coder of integer pixels of ``dtype`` whose channels lie in ``lo..hi``, cell = value, or
    None when the product of the channel ranges exceeds :data:`EXACT_SPACE`. Ranges are Python
    integers and offsets are taken in the values' dtype, so no 64-bit range overflows."""
    dtype = np.dtype(dtype)
    lo, hi = [int(x) for x in lo], [int(x) for x in hi]
    if dtype.kind == "u" and len(lo) == 1 and hi[0] < COUNT_TABLE_MAX:
        lo = [0]  # values index the table directly
    ranges = [high - low + 1 for low, high in zip(lo, hi)]
    if int(np.prod(np.array(ranges, object))) > EXACT_SPACE:
        return None
    return Coder(lo=np.array(lo, dtype), levels=np.array(ranges, np.int64))


def count_codes(values: np.ndarray, coder: Coder):
    """The distinct codes (sorted) of the rows of ``values`` (n, c) under ``coder``, and how many
    rows have each: one block's share of an exact reduction (:func:`exact_reduction`)."""
    return _count_codes(values, coder)


def exact_reduction(coder: Coder, occupied: np.ndarray, counts: np.ndarray) -> Reduction:
    """The exact :class:`Reduction` of integer pixels from their distinct codes ``occupied``
    (sorted, of an :func:`exact_coder`) and pixel ``counts``: what :func:`reduce_pixels` returns,
    whether the codes were counted on the whole image or merged from its blocks."""
    if not np.any(coder.lo) and _accel.enabled():  # the values are the codes' digits
        raw = _accel.decode_codes(occupied, coder.levels)
        return _exact(raw, counts, coder, occupied)
    raw = coder.decode(occupied)  # int64 offsets from lo
    if np.any(coder.lo):  # added to lo in a type that holds both exactly, then rounded once to float64
        if coder.lo.dtype.itemsize < 8:
            raw += coder.lo.astype(np.int64)
        else:
            raw = raw.astype(coder.lo.dtype) + coder.lo
    return _exact(raw.astype(np.float64), counts, coder, occupied)


def _exact(raw, counts, coder, occupied) -> Reduction:
    weights = np.asarray(counts).astype(np.float64)
    return Reduction(
        raw_points=raw,
        weights=weights,
        total_sq=square_sums(raw, reference(raw), weights),
        coder=coder,
        codes=np.asarray(occupied),
        exact=True,
    )


#: Largest magnitude of a float pixel value: the sums of squares of 2**40 such values still fit
#: in float64 (10**150 squared is 10**300).
MAX_MAGNITUDE = 1e150
#: Smallest largest magnitude of a float image that is not all zeros: smaller values have squares
#: below float64's normal range, so no sum of squares (inertia, Ward) can be computed.
MIN_MAGNITUDE = 1e-150


def check_magnitude(lo: np.ndarray, hi: np.ndarray, small: bool = True) -> None:
    """Raise a ValueError naming the value when the per-channel range ``lo..hi`` holds values too
    large or (all of them, unless ``small=False``) too small for float64 sums of squares."""
    largest = float(np.max(np.maximum(np.abs(lo), np.abs(hi)))) if np.size(lo) else 0.0
    if not largest <= MAX_MAGNITUDE:
        raise ValueError(
            f"pixel values of magnitude up to {largest:.3g} are too large to cluster (their squares "
            f"overflow float64; the limit is {MAX_MAGNITUDE:.0e}); divide the image by a constant "
            "first (the clustering does not depend on the scale)."
        )
    if small and 0 < largest < MIN_MAGNITUDE:
        raise ValueError(
            f"pixel values of magnitude at most {largest:.3g} are too small to cluster (their squares "
            f"underflow float64; the limit is {MIN_MAGNITUDE:.0e}); multiply the image by a constant "
            "first (the clustering does not depend on the scale)."
        )


def n_distinct_rows(points: np.ndarray, enough: int | None = None) -> int:
    """Number of distinct rows of ``points`` (m, c); with ``enough``, counting may stop at any
    number >= ``enough`` (a strided subset is tried first). -0.0 and 0.0 count as one."""
    m = points.shape[0]
    step = 1 if enough is None else max(1, m // (16 * max(enough, 1)))
    while True:
        rows = np.ascontiguousarray(points[::step], dtype=np.float64) + 0.0  # -0.0 -> 0.0
        if rows.shape[1] == 1:
            n = np.unique(rows[:, 0]).size
        else:
            n = np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))).size
        if step == 1 or n >= enough:
            return n
        step = 1
