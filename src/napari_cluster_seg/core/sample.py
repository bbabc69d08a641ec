"""Many features: a seeded sample of pixels stands for all of them (:func:`sample_pixels`), and
every pixel is then labelled by its nearest centre in chunks (:func:`label_pixels`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._chunks import CHUNK, SquareSums, accumulate_chunks, label_sums, reference, square_sums
from .coder import SAMPLE_POINTS
from .kmeans import assign_nearest


@dataclass
class PixelSample:
    """A seeded random sample of pixels standing for all of them (for many channels / features).

    Attributes
    ----------
    raw_points : ndarray, shape (s, c)
        The sampled pixels' values.
    weights : ndarray, shape (s,)
        Pixels each sampled pixel stands for (n / s).
    total_sq : SquareSums
        ``weights @ (raw_points - ref)**2``: with sums over the sample, sample
        estimates of sums of squares stay consistent.
    index : ndarray, shape (s,)
        Rows of the sampled pixels.
    """

    raw_points: np.ndarray
    weights: np.ndarray
    total_sq: SquareSums
    index: np.ndarray
    exact: bool = False

    @property
    def n_points(self) -> int:
        return self.weights.size


def sample_pixels(
    values: np.ndarray, rng: np.random.Generator, select: np.ndarray | None = None, size: int = SAMPLE_POINTS
) -> PixelSample:
    """Sample up to ``size`` rows of ``values`` (among ``select``, a boolean row mask, if given)."""
    rows = np.arange(values.shape[0]) if select is None else np.flatnonzero(select)
    if rows.size == 0:
        raise ValueError("no pixels to sample: the selection is empty.")
    if rows.size > size:
        rows = np.sort(rng.choice(rows, size, replace=False))
    raw = values[rows].astype(np.float64)
    weights = np.full(rows.size, values.shape[0] / rows.size)
    return PixelSample(raw, weights, square_sums(raw, reference(raw), weights), rows)


def label_pixels(values: np.ndarray, transform, centers: np.ndarray, *, transformed: bool = False):
    """Nearest centre (in the space ``transform`` maps rows to) of every row of ``values``, in chunks.

    Returns ``(labels, counts, sums, total_sq)``: labels (int16/int32),
    pixels per centre, per-centre sums of the untransformed values, and the
    per-channel :class:`SquareSums` of all values (for exact sums of squares). With
    ``transformed``, also the per-centre sums and the per-channel sum of squares
    (about 0: the transformed rows are normalised) of the transformed rows (for
    sums of squares where ``transform`` clips).
    """
    k = centers.shape[0]
    labels = np.empty(values.shape[0], np.int16 if k < 2**15 else np.int32)
    centers32 = np.asarray(centers, np.float32)
    ref = reference(values)

    def work(start, stop):
        chunk = values[start:stop]
        features = transform(chunk)
        lab = assign_nearest(features, centers32)
        labels[start:stop] = lab
        stats = label_sums(lab, chunk, k, ref=ref)
        if not transformed:
            return stats
        _, f_sums = label_sums(lab, features, k)
        return stats + (f_sums, np.einsum("ij,ij->j", features, features, dtype=np.float64))

    return (labels, *accumulate_chunks(work, values.shape[0], chunk=CHUNK // 4))
