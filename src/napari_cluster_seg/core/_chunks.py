"""Chunked work over pixel rows: one thread pool, the chunk drivers, per-label sums and sums of
squares, group sums / means of weighted points, dense ranks and the frames of a time series.

The leaf every other stage builds on: it imports nothing of core but the optional kernels.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import _accel

#: Pixels per chunk in passes over the image.
CHUNK = 2**20


#: Most groups whose sums the compiled kernel adds up (it keeps 16 partial sums per group).
GROUP_SUMS_MAX = 2**16


@dataclass(frozen=True)
class SquareSums:
    """Per-channel sums of squares of pixel values about a reference value per channel.

    With a reference within the values' range (:func:`reference`), a sum of squares about the
    cluster means computed from it keeps its precision where the values sit at a large offset from
    zero against their spread (about zero, ``10**8 + {0, 1, 2}`` leaves no significant digit).
    Chunks' sums about the same ``ref`` add up with ``+``.
    """

    ref: np.ndarray  # (c,) float64
    sq: np.ndarray  # (c,) float64

    def __add__(self, other: SquareSums) -> SquareSums:
        return SquareSums(self.ref, self.sq + other.sq)


def reference(values: np.ndarray) -> np.ndarray:
    """A per-channel reference for :class:`SquareSums` of ``values`` (n, c): its first row."""
    if values.shape[0] == 0:
        return np.zeros(values.shape[1])
    return np.asarray(values[0], np.float64).copy()


def square_sums(values: np.ndarray, ref: np.ndarray, weights: np.ndarray | None = None) -> SquareSums:
    """Sums of squares of the rows of ``values`` (n, c) about ``ref``, weighted by ``weights``; one
    channel at a time (one float64 column of a chunk, not a float64 copy of it)."""
    if weights is not None and _accel.enabled() and values.dtype == np.float64 and values.flags.c_contiguous:
        w = np.asarray(weights, np.float64)
        return SquareSums(np.asarray(ref, np.float64), _accel.weighted_squares(values, ref, w))
    sq = np.empty(values.shape[1])
    for c in range(values.shape[1]):
        d = np.subtract(values[:, c], ref[c], dtype=np.float64)
        sq[c] = d @ d if weights is None else weights @ (d * d)
    return SquareSums(np.asarray(ref, np.float64), sq)


def n_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


_POOL: ThreadPoolExecutor | None = None


def pool() -> ThreadPoolExecutor:
    """One thread pool for the process (numpy releases the GIL in the chunk work)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(n_workers(), thread_name_prefix="napari-cluster-seg")
    return _POOL


def for_chunks(fn, n: int, chunk: int = CHUNK):
    """Call ``fn(start, stop)`` for consecutive chunks of ``range(n)``; results in order."""
    starts = range(0, n, chunk)
    if n_workers() == 1 or n <= chunk:
        return [fn(s, min(s + chunk, n)) for s in starts]
    return list(pool().map(lambda s: fn(s, min(s + chunk, n)), starts))


def accumulate_chunks(fn, n: int, chunk: int = CHUNK):
    """Sum the tuples ``fn(start, stop)`` over chunks, using all cores, holding few partial results."""
    total = None
    workers = n_workers()
    starts = list(range(0, n, chunk))
    for batch in range(0, len(starts), workers):
        parts = pool().map(lambda s: fn(s, min(s + chunk, n)), starts[batch : batch + workers])
        for part in parts:
            total = list(part) if total is None else [t + p for t, p in zip(total, part)]
    return total


def label_sums(labels: np.ndarray, values: np.ndarray, k: int, *, ref: np.ndarray | None = None):
    """Per label 0..k-1 of ``labels``: the number of rows and the per-channel sums of ``values``
    (n, c); with ``ref``, also the :class:`SquareSums` of all rows about ``ref`` (for exact sums of
    squares of any grouping). One chunk's worth: sum the results over chunks."""
    counts = np.bincount(labels, minlength=k)
    channels = range(values.shape[1])
    sums = np.stack([np.bincount(labels, weights=values[:, c], minlength=k) for c in channels], 1)
    if ref is None:
        return counts, sums
    return counts, sums, square_sums(values, ref)


def channel_range(values: np.ndarray):
    """Per-channel min and max of ``values`` (n, c), fast for many rows and few channels (numpy's
    ``values.min(axis=0)`` is ~8x slower for three columns)."""
    n, c = values.shape
    block = 4096
    head = n // block * block
    lo_parts, hi_parts = [], []
    if head:
        wide = values[:head].reshape(-1, block * c)
        lo_parts.append(wide.min(axis=0).reshape(block, c).min(axis=0))
        hi_parts.append(wide.max(axis=0).reshape(block, c).max(axis=0))
    if head < n:
        lo_parts.append(values[head:].min(axis=0))
        hi_parts.append(values[head:].max(axis=0))
    return np.min(lo_parts, axis=0), np.max(hi_parts, axis=0)


def group_sums(points, weights, labels, m):
    """Total weights (m,) and weighted sums (m, c) of points (m', c) grouped by ``labels`` (0..m-1)."""
    if _accel.enabled() and m <= GROUP_SUMS_MAX:
        return _accel.group_sums(labels, np.asarray(weights, np.float64), np.asarray(points, np.float64), m)
    w = np.bincount(labels, weights=weights, minlength=m)
    channels = range(points.shape[1])
    return w, np.stack(
        [np.bincount(labels, weights=weights * points[:, c], minlength=m) for c in channels], 1
    )


def group_means(points, weights, labels, m):
    """Weighted means and total weights of points grouped by ``labels`` (0..m-1)."""
    w, sums = group_sums(points, weights, labels, m)
    return sums / w[:, None], w


def dense_ranks(ids: np.ndarray, size: int):
    """The distinct values of the integers ``ids`` (all in [0, size)), sorted, and each entry's
    rank among them: what ``np.unique(ids, return_inverse=True)`` returns, by a presence table of
    ``size`` entries instead of a sort."""
    present = np.zeros(size, bool)
    present[ids] = True
    return np.flatnonzero(present), (np.cumsum(present) - 1)[ids]


def frame_slices(shape: tuple, time_axis: int | None):
    """Index tuples of the frames along ``time_axis`` of an array of ``shape`` (one, everything,
    without a time axis)."""
    if time_axis is None:
        yield (slice(None),) * len(shape)
        return
    for t in range(shape[time_axis]):
        index = [slice(None)] * len(shape)
        index[time_axis] = t
        yield tuple(index)
