"""Per-channel normalisation of pixel values (:class:`Normalizer`), fitted on weighted points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._chunks import channel_range

#: Largest |offset|, scale or clip bound for which a float32 normalisation of float32 values cannot
#: overflow: float32 values (at most 3.4e38, whose spacing is 2**104) minus such an offset round to
#: at most float32's largest value. Its inverse is the smallest nonzero one (float32's normal range
#: ends at 2**-126).
FLOAT32_SAFE = 2.0**100


@dataclass
class Normalizer:
    """Per-channel affine map ``(clip(v, clip_low, clip_high) - offset) / scale``."""

    offset: np.ndarray
    scale: np.ndarray
    clip_low: np.ndarray | None = None
    clip_high: np.ndarray | None = None

    def __call__(self, values: np.ndarray, dtype=np.float64) -> np.ndarray:
        """The normalised ``values`` as ``dtype``; 64-bit input is normalised in float64 first
        (float32 holds neither 1e39 nor every int64, but holds their normalised values)."""
        values = np.asarray(values)
        work = np.float64 if values.dtype.itemsize == 8 or self._beyond_float32() else dtype
        # always a new array: asarray may return a *view* (an equal but not identical dtype, as
        # numba's arrays have), and the steps below work in place
        out = np.array(values, dtype=work, copy=True)
        if self.clip_low is not None:
            np.clip(out, self.clip_low.astype(work), self.clip_high.astype(work), out=out)
        if np.any(self.offset):  # (skipped for normalize="none": a million points cost 10 ms)
            out -= self.offset.astype(work)
        if np.any(self.scale != 1):
            out /= self.scale.astype(work)
        return out.astype(dtype, copy=False)

    @property
    def identity(self) -> bool:
        """Whether it leaves every value as it is (``normalize="none"``, no coordinates scaled)."""
        return self.clip_low is None and not np.any(self.offset) and bool(np.all(self.scale == 1))

    def _beyond_float32(self) -> bool:
        """Whether float32 arithmetic could overflow or underflow with these parameters: an offset,
        scale or clip bound beyond :data:`FLOAT32_SAFE` (values of +-3.4e38 about an offset of -+1e38
        leave float32's range before the division brings them back), or nonzero below its inverse
        (a scale of 7e-46, from values 1.4e-45 apart, is 0 in float32)."""
        params = [self.offset, self.scale] + [c for c in (self.clip_low, self.clip_high) if c is not None]
        for p in params:
            mag = np.abs(np.asarray(p, np.float64))
            mag = mag[np.isfinite(mag) & (mag > 0)]
            if np.any(mag > FLOAT32_SAFE) or np.any(mag < 1 / FLOAT32_SAFE):
                return True
        return False


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative weight reaches fraction ``q`` (inverted CDF)."""
    return weighted_quantiles(values, weights, [q])[0]


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs) -> list[float]:
    """:func:`weighted_quantile` for each fraction of ``qs``, with one sort of ``values``."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    sorted_values = values[order]
    out = []
    for q in qs:
        i = int(np.searchsorted(cum, q * cum[-1], side="left"))
        out.append(float(sorted_values[min(i, values.size - 1)]))
    return out


def fit_normalizer(points: np.ndarray, weights: np.ndarray, how: str, percentiles=(1.0, 99.0)) -> Normalizer:
    """Per-channel normalisation from weighted points (m, c): the pixels' values and counts.

    ``how`` is ``"none"``, ``"minmax"`` (to [0, 1]), ``"zscore"`` (zero mean,
    unit variance) or ``"percentile"`` (clip to the given percentiles, then
    to [0, 1]; percentiles by the inverted CDF of the pixel values). Constant
    channels get a scale of 1.
    """
    c = points.shape[1]
    if how == "none":
        return Normalizer(np.zeros(c), np.ones(c))
    clip_low = clip_high = None
    if how == "minmax":
        offset, high = channel_range(points)
        scale = high - offset
    elif how == "zscore":
        total = weights.sum()  # weights @ points, not np.average(axis=0): slow for few columns
        offset = weights @ points / total
        scale = np.sqrt(weights @ (points - offset) ** 2 / total)
    else:  # percentile
        bounds = [weighted_quantiles(points[:, i], weights, np.asarray(percentiles) / 100) for i in range(c)]
        lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
        clip_low, clip_high = lo, hi
        offset, scale = lo, hi - lo
    scale = np.where(scale > 0, scale, 1.0)
    return Normalizer(np.asarray(offset, np.float64), np.asarray(scale, np.float64), clip_low, clip_high)


def fix_coordinates(normalizer: Normalizer, n_coordinates: int) -> Normalizer:
    """Leave the last ``n_coordinates`` features as they are (already scaled jointly)."""
    if n_coordinates == 0:
        return normalizer
    offset, scale = normalizer.offset.copy(), normalizer.scale.copy()
    offset[-n_coordinates:] = 0.0
    scale[-n_coordinates:] = 1.0
    clip_low, clip_high = normalizer.clip_low, normalizer.clip_high
    if clip_low is not None:
        clip_low, clip_high = clip_low.copy(), clip_high.copy()
        clip_low[-n_coordinates:] = -np.inf
        clip_high[-n_coordinates:] = np.inf
    return Normalizer(offset, scale, clip_low, clip_high)
