"""The colour cells of a large uint8 RGB image: the reduction K-means starts from on photos.

A photo with camera noise holds millions of distinct colours (a 4096² one 1.7-3.5 M): counting
them exactly and passing over them in every Lloyd iteration costs more than the pixels' own
passes. K-means on such an image instead starts from its **colour cells**, cubes of 8 x 8 x 8
colours (32768 of them; code ``(r >> 3) + 32 (g >> 3) + 1024 (b >> 3)``): one pass over the
pixels gives each cell's pixel count and exact integer channel sums, and the channel histograms.
The fit converges on the cells' means, then :mod:`._fit_cells` finishes with Lloyd passes over
the pixels themselves, where every pixel of a cell that lies wholly on one side of each boundary
between the centres takes that cell's centre without a distance computed. The clusters'
statistics are exact (integer sums); the labels are every pixel's nearest centre.

Used by K-means (not the hierarchies, the k-scan or a lazy image) on noisy images of at least
:data:`CELL_PIXELS` pixels (:func:`noisy`), without features, strided fit or clipping
normalisation, when at least :data:`MIN_CELLS` cells are occupied. A smooth or upscaled image
(the colours in runs, fewer of them) and one with few colours are counted exactly instead: that
is faster for them, and exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import _accel
from ._chunks import SquareSums, accumulate_chunks, reference
from .coder import Coder
from .normalize import Normalizer, fit_normalizer
from .reduce import Reduction

#: Fewest pixels for which K-means on a uint8 RGB image starts from the colour cells.
CELL_PIXELS = 2**20
#: Fewest occupied colour cells (of 32768) for the cells to be used; fewer, the colours are counted.
MIN_CELLS = 4096
#: Colour cells: 32 per channel, each 8 values wide.
LEVELS = 32
#: Runs of consecutive pixels (:data:`SAMPLE_RUNS` of :data:`RUN_PIXELS`) sampled to tell a noisy
#: image from a smooth one, and the fraction of them that must differ from the pixel before.
SAMPLE_RUNS, RUN_PIXELS, NOISY_FRACTION = 16, 4096, 0.5


@dataclass
class CellReduction(Reduction):
    """A :class:`~.reduce.Reduction` of uint8 RGB pixels to their occupied colour cells (the points
    are the cells' mean colours), with ``table`` (m, 4) int64: every occupied cell's pixel count and
    channel sums, and ``hist`` (3, 256) int64: the channel histograms of all pixels."""

    table: np.ndarray = field(default=None, repr=False)
    hist: np.ndarray = field(default=None, repr=False)
    #: For pixels not in memory (a streamed fit): ``assign(plan, lut, out)``, a generator that runs
    #: a Lloyd assignment of every pixel (``_fit_cells.assign_rows`` block by block) and returns the
    #: summed counts and sums (k, 4); and ``exact(prep)``, a generator returning the fit's
    #: :class:`~._prepare.Prepared` on the exact colours instead. None: the pixels are in memory.
    assign: Callable | None = field(default=None, repr=False)
    exact: Callable | None = field(default=None, repr=False)


def use_cells(values, params, pix) -> bool:
    """Whether K-means on the pixel rows ``values`` starts from the colour cells (3-channel uint8
    rows, at least :data:`CELL_PIXELS`, :func:`noisy`; no features, strided fit or clipping)."""
    return (
        params.method == "kmeans"
        and not params.connected
        and params.fit_stride == 1
        and params.normalize != "percentile"
        and pix.base is None
        and pix.n_coordinates == 0
        and isinstance(values, np.ndarray)
        and values.dtype == np.uint8
        and values.ndim == 2
        and values.shape[1] == 3
        and values.shape[0] >= CELL_PIXELS
        and noisy(values)
    )


def noisy(values: np.ndarray) -> bool:
    """Whether more than :data:`NOISY_FRACTION` of the pixels of a sample of runs differ from the
    pixel before them: camera noise, whose colours are many and scattered (counting them exactly
    misses the caches at every pixel). A smooth or upscaled image has fewer colours, in runs, and
    is counted faster than its cells."""
    return noisy_runs([values[s : s + RUN_PIXELS + 1] for s in run_starts(values.shape[0])])


def run_starts(n: int) -> np.ndarray:
    """Where the runs :func:`noisy` samples start among ``n`` pixel rows (each ``RUN_PIXELS + 1``
    rows long, or to the end)."""
    return np.linspace(0, max(0, n - RUN_PIXELS - 1), SAMPLE_RUNS).astype(np.int64)


def noisy_runs(runs) -> bool:
    """:func:`noisy` of the sampled runs of rows."""
    changed = [np.any(np.diff(run, axis=0) != 0, axis=1).mean() for run in runs if len(run) > 1]
    return bool(changed) and float(np.mean(changed)) > NOISY_FRACTION


def cell_codes(rgb: np.ndarray) -> np.ndarray:
    """The colour cell of every uint8 RGB row (int64)."""
    r, g, b = (rgb[:, c].astype(np.int64) >> 3 for c in range(3))
    return r | (g << 5) | (b << 10)


def reduce_cells(values: np.ndarray) -> CellReduction | None:
    """The colour cells of uint8 RGB rows (n, 3), or None when fewer than :data:`MIN_CELLS` are
    occupied."""
    return cell_reduction(*cell_sums(values), reference(values))


def cell_sums(values: np.ndarray):
    """Per colour cell of uint8 RGB rows (n, 3): the pixel count and channel sums (32768, 4), and
    the channel histograms (3, 256), int64: what the cells of several blocks add up from."""
    if _accel.enabled():
        return _accel.rgb8_cells(np.ascontiguousarray(values))
    return _cells_numpy(values)


def cell_reduction(table: np.ndarray, hist: np.ndarray, ref: np.ndarray) -> CellReduction | None:
    """The :class:`CellReduction` of the cells' counts and sums ``table`` (32768, 4) and the
    histograms ``hist`` (3, 256), with ``ref`` (a pixel) as the squares' reference; None when
    fewer than :data:`MIN_CELLS` cells are occupied."""
    occupied = np.flatnonzero(table[:, 0])
    if occupied.size < MIN_CELLS:
        return None
    table = table[occupied]
    weights = table[:, 0].astype(np.float64)
    means = table[:, 1:] / weights[:, None]
    v = np.arange(256)
    sq = np.array([float(hist[c] @ (v - int(ref[c])) ** 2) for c in range(3)])
    coder = Coder(np.zeros(3), np.full(3, LEVELS, np.int64), np.full(3, 256.0 / LEVELS))
    red = CellReduction(means, weights, SquareSums(ref, sq), coder, occupied, False)
    red.table, red.hist = table, hist
    return red


def _cells_numpy(values: np.ndarray):
    """:func:`reduce_cells`' table (32768, 4) and histograms (3, 256) by numpy, in chunks (float64
    bincounts of integers below 2**53: exact)."""
    space = LEVELS**3

    def chunk(a, b):
        rgb = values[a:b]
        codes = cell_codes(rgb)
        cols = [np.bincount(codes, minlength=space)]
        cols += [np.bincount(codes, weights=rgb[:, c], minlength=space) for c in range(3)]
        hists = [np.bincount(rgb[:, c], minlength=256) for c in range(3)]
        return np.stack(cols, axis=1).astype(np.int64), np.stack(hists).astype(np.int64)

    table, hist = accumulate_chunks(chunk, values.shape[0])
    return table, hist


def histogram_normalizer(hist: np.ndarray, how: str) -> Normalizer:
    """:func:`.normalize.fit_normalizer`'s normalisation (``"none"``, ``"minmax"`` or ``"zscore"``)
    of the pixels whose channel histograms (c, 256) are ``hist``: fitted channel by channel on the
    values present, weighted by their counts."""
    if how not in ("none", "minmax", "zscore"):
        raise ValueError(
            f"normalize={how!r}: the colour cells take 'none', 'minmax' or 'zscore' (percentile "
            "clipping is fitted on the exact colours)."
        )
    parts = []
    for h in hist:
        present = np.flatnonzero(h)
        parts.append(fit_normalizer(present[:, None].astype(np.float64), h[present].astype(np.float64), how))
    return Normalizer(np.concatenate([p.offset for p in parts]), np.concatenate([p.scale for p in parts]))


def value_tables(normalizer: Normalizer) -> np.ndarray:
    """(3, 256) float64: channel ``c``'s value ``v`` normalised, with the normaliser's own
    arithmetic on float64 rows (the values the distinct colours would have as points)."""
    rows = np.repeat(np.arange(256, dtype=np.float64)[:, None], 3, axis=1)
    return np.ascontiguousarray(normalizer(rows).T)
