"""Codes of pixel values: the cells of an exact coding (integer pixels, cell = value) or of a grid
(floats, smoothed or wide-ranged pixels), for the reduction of :mod:`.reduce`.

A :class:`Coder` maps pixel rows (n, c) to integer cell codes and back. ``reduce.exact_coder``
makes the exact ones; :func:`grid_coder` cuts each channel into :func:`grid_levels` cells, regular
unless outliers would crowd the values into a few cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Grid cells for one-channel floats: the bin width is range / 2**16.
LEVELS_1D = 2**16
#: Total cells of the grid for several channels (about 101 per channel for three channels).
LEVELS_ND_TOTAL = 2**20
#: Pixels of the strided sample a grid's crowded cells are found in (:func:`grid_coder`), and of the
#: sample images with more than ``reduce.GRID_MAX_CHANNELS`` channels are fitted on (:mod:`.sample`).
SAMPLE_POINTS = 2**16


@dataclass
class Coder:
    """Maps pixel values (n, c) to integer codes of the cells of a grid.

    Channel ``i`` is cut into ``levels[i]`` cells of width ``step[i]`` from
    ``lo[i]``; for exact integer coding ``step`` is None (cell = value, ``lo``
    in the values' dtype so that no offset overflows). ``edges[i]``, where
    given, replaces the regular cells of channel ``i`` by the cells between
    sorted boundaries (``levels[i] - 1`` of them; see :func:`grid_coder`).
    """

    lo: np.ndarray
    levels: np.ndarray
    step: np.ndarray | None = None
    edges: tuple | None = None

    @property
    def space(self) -> int:
        return int(np.prod(self.levels.astype(object)))

    def _channel_codes(self, v: np.ndarray, c: int, dtype) -> np.ndarray:
        """Cell index of every value of channel ``c`` (a new array of ``dtype``)."""
        if self.step is None:  # exact: the offset from lo, computed where it cannot overflow
            if v.dtype.kind == "i" and v.dtype.itemsize < 4:
                v = v.astype(np.int32)
            if self.lo[c] != 0:
                v = v - v.dtype.type(self.lo[c])  # v >= lo and v - lo <= reduce.EXACT_SPACE: exact
            return v.astype(dtype)
        if self.edges is not None and self.edges[c] is not None:
            return np.searchsorted(self.edges[c], v, side="right").astype(dtype, copy=False)
        f = np.subtract(v, self.lo[c], dtype=np.float64)
        f /= self.step[c]
        q = f.astype(dtype)
        np.clip(q, 0, int(self.levels[c]) - 1, out=q)
        return q

    def codes(self, values: np.ndarray) -> np.ndarray:
        """Codes of the rows of ``values`` (int32 when the code space allows)."""
        if (
            self.step is None
            and values.shape[1] == 1
            and self.lo[0] == 0
            and values.dtype.kind == "u"
            and values.dtype.itemsize <= 4
        ):
            return values[:, 0]  # unsigned grey values are their own codes
        dtype = np.int32 if self.space < 2**31 else np.int64
        codes = None
        stride = 1
        for c in range(values.shape[1]):
            q = self._channel_codes(values[:, c], c, dtype)
            if stride != 1:
                if stride & (stride - 1) == 0:
                    q <<= stride.bit_length() - 1
                else:
                    q *= stride
            if codes is None:
                codes = q
            else:
                codes += q
            stride *= int(self.levels[c])
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Integer cell coordinates (m, c) of ``codes``."""
        out = np.empty((codes.size, self.levels.size), np.int64)
        rem = codes.astype(np.int64)  # a copy
        for c in range(self.levels.size):
            level = int(self.levels[c])
            if level & (level - 1) == 0:  # a power of two (uint8 RGB): mask and shift, 3x faster
                np.bitwise_and(rem, level - 1, out=out[:, c])
                rem >>= level.bit_length() - 1
            else:
                out[:, c] = rem % level
                rem //= level
        return out


def grid_levels(n_channels: int) -> int:
    """Cells per channel of the grid for floats: 2**16 in 1D, about 2**20 cells in all otherwise."""
    if n_channels == 1:
        return LEVELS_1D
    return max(2, int(LEVELS_ND_TOTAL ** (1 / n_channels)))


#: A cell of the regular grid is crowded when it holds at least this fraction of the pixels (of a
#: sample) and distinct values among them: the grid is then coarse relative to the values (an
#: outlier stretched the range), and that channel gets cells fitted to the values instead.
CROWDED_FRACTION = 1 / 8


def grid_coder(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, levels: int) -> Coder:
    """A grid of ``levels`` cells per channel over ``lo..hi`` for ``values`` (n, c).

    Regular cells (one subtraction and division per value) unless a channel's
    regular cells would be crowded (:data:`CROWDED_FRACTION`) in a strided
    sample of the pixels: that channel is cut at half of the regular
    boundaries plus as many quantiles of the sample (located by a binary
    search, about 20x slower per value), so that one outlier cannot merge the
    values the clustering should separate, while the range is still covered.
    """
    c = values.shape[1]
    span = hi - lo
    span[span <= 0] = 1.0
    # Cells of width span / (levels - 1), so the maximum falls inside the last cell.
    step = span / max(levels - 1, 1)
    sample = values[:: max(1, values.shape[0] // SAMPLE_POINTS)]
    edges, n_levels = [None] * c, np.full(c, levels, np.int64)
    for i in range(c):
        s = np.sort(sample[:, i].astype(np.float64))
        if _crowded(s, np.clip((s - lo[i]) / step[i], 0, levels - 1).astype(np.int64)):
            half = max(1, levels // 2)
            regular = lo[i] + span[i] * np.arange(1, half) / half
            quantiles = s[np.linspace(0, s.size - 1, half + 1).astype(np.intp)]
            edges[i] = np.unique(np.concatenate([regular, quantiles]))
            n_levels[i] = edges[i].size + 1
    if all(e is None for e in edges):
        return Coder(lo=lo, levels=n_levels, step=step)
    return Coder(lo=lo, levels=n_levels, step=step, edges=tuple(edges))


def _crowded(sorted_values: np.ndarray, cells: np.ndarray) -> bool:
    """Whether a cell (``cells``: of each of the sorted values) holds distinct values and at least
    :data:`CROWDED_FRACTION` of them."""
    starts = np.flatnonzero(np.concatenate(([True], cells[1:] != cells[:-1])))
    ends = np.append(starts[1:], cells.size) - 1
    big = (ends - starts + 1) >= CROWDED_FRACTION * cells.size
    return bool(np.any(sorted_values[ends[big]] > sorted_values[starts[big]]))
