"""Statistics of a clustering: cluster means, counts and sums of squares, the label order
(darkest first), and the errors for too few clusters."""

from __future__ import annotations

import numpy as np

from . import _accel
from ._chunks import GROUP_SUMS_MAX, SquareSums, accumulate_chunks, group_sums, label_sums
from ._params import ClusterParams, labels_dtype
from .normalize import Normalizer
from .preprocess import LUMA_WEIGHTS


def brightness_order(raw_centers: np.ndarray, params: ClusterParams, normalizer: Normalizer) -> np.ndarray:
    """Permutation of clusters from darkest to brightest (ties: by channel values)."""
    if params.rgb:
        key = raw_centers[:, :3] @ LUMA_WEIGHTS
    elif raw_centers.shape[1] == 1:
        key = raw_centers[:, 0]
    else:
        key = ((raw_centers - normalizer.offset) / normalizer.scale).mean(axis=1)
    return np.lexsort(tuple(raw_centers[:, ::-1].T) + (key,))


def rank_lut(raw_centers, params, normalizer):
    """Table internal cluster (0..k-1) -> label (1..k, darkest first), and the order."""
    k = raw_centers.shape[0]
    order = brightness_order(raw_centers, params, normalizer)
    lut = np.empty(k, labels_dtype(k))
    lut[order] = np.arange(1, k + 1)
    return lut, order


def cluster_stats(raw_points, weights, labels, k, total_sq: SquareSums, normalizer):
    """Cluster means (input units), pixel counts, within-cluster sum of squares and the means of the
    normalised features (computed about the reference, not by normalising the rounded means).

    The sum of squares is in the normalised space: that of the points about
    their cluster's mean (two passes, about the reference: no cancellation at
    a large offset), plus the spread of the pixels within each point (grid
    cell, unit; 0 for distinct values) from the per-channel sums of squares
    about a reference value. Clipping (percentile) is not affine: the points'
    part is then summed over the normalised points, and only the spread
    within each point is taken unclipped. One channel at a time, so no
    (points, channels) temporaries.
    """
    wsum, sums = group_sums(raw_points, weights, labels, k)
    ref, scale = total_sq.ref, normalizer.scale
    with np.errstate(invalid="ignore", divide="ignore"):  # an empty cluster: the caller refuses it
        means = sums / wsum[:, None]  # exact for int64 extremes
        if _accel.enabled() and k <= GROUP_SUMS_MAX:  # both passes compiled, one row at a time
            return (
                means,
                np.rint(wsum).astype(np.int64),
                *_compiled_stats(raw_points, weights, labels, k, total_sq, normalizer, means),
            )
        within = _spread_within_points(raw_points, weights, total_sq) / scale**2
        if normalizer.clip_low is None:
            shift = np.empty_like(means)  # the means about the reference (keep 1 + 1e-16 apart)
            for c in range(raw_points.shape[1]):
                d = raw_points[:, c] - ref[c]
                shift[:, c] = np.bincount(labels, weights=weights * d, minlength=k) / wsum
                dev = (d - shift[labels, c]) / scale[c]
                within[c] += weights @ (dev * dev)
            features = ((ref - normalizer.offset) + shift) / scale
        else:
            pts = normalizer(raw_points)
            nmeans = group_sums(pts, weights, labels, k)[1] / wsum[:, None]
            for c in range(pts.shape[1]):
                dev = pts[:, c] - nmeans[labels, c]
                within[c] += weights @ (dev * dev)
            features = normalizer(means)
    wcss = float(np.sum(np.maximum(within, 0.0)))
    return means, np.rint(wsum).astype(np.int64), wcss, features


def assigned_stats(fit, red, normalizer):
    """:func:`cluster_stats` of the points of ``red`` (a reduction) from the pass that labelled
    them, with no pass over the points but (for clipping) one: ``fit.sums`` holds the weight (k,)
    and weighted sums (k, f) of every cluster's normalised points, ``fit.cost`` their weighted
    squared distances to ``fit.centers``. The points' sum of squares about their cluster's mean is
    ``cost - sum_j W_j |mean_j - c_j|**2``, well conditioned: the centres sit at (or next to) the
    means. The spread within the points (grid cells) is added as :func:`cluster_stats` adds it."""
    wsum, sums = fit.sums
    scale = normalizer.scale
    with np.errstate(invalid="ignore", divide="ignore"):  # an empty cluster: the caller refuses it
        nmeans = sums / wsum[:, None]
        wcss = max(fit.cost - float(wsum @ ((nmeans - fit.centers) ** 2).sum(axis=1)), 0.0)
        if not red.exact:
            wcss += float(np.sum(_spread_within_points(red.raw_points, red.weights, red.total_sq) / scale**2))
        if normalizer.clip_low is not None:  # clipping is not affine: the means of the values
            k = wsum.size
            means = group_sums(red.raw_points, red.weights, fit.labels, k)[1] / wsum[:, None]
            features = normalizer(means)
        elif normalizer.identity:
            means = features = nmeans
        else:
            means, features = nmeans * scale + normalizer.offset, nmeans
    return means, np.rint(wsum).astype(np.int64), wcss, features


def _compiled_stats(raw_points, weights, labels, k, total_sq: SquareSums, normalizer, means):
    """(wcss, feature means) of :func:`cluster_stats` by the compiled kernel: the same two passes
    about the reference, fused over the channels (the points' squares about the reference give the
    spread within the points in the same pass)."""
    w = np.asarray(weights, np.float64)
    ref, scale = total_sq.ref, normalizer.scale
    points = np.asarray(raw_points, np.float64)
    shift, about_means, about_ref = _accel.deviation_sums(labels, w, points, ref, k)
    spread = _cached_spread(raw_points, weights, total_sq)
    if spread is None:
        spread = np.maximum(total_sq.sq - about_ref, 0.0)
        object.__setattr__(total_sq, "_within", (raw_points, weights, spread))  # a cache, not state
    within = spread / scale**2
    if normalizer.clip_low is None:
        within = within + about_means / scale**2
        features = ((ref - normalizer.offset) + shift) / scale
    else:  # clipping is not affine: the points' part over the normalised points
        pts = normalizer(raw_points).astype(np.float64, copy=False)
        within = within + _accel.deviation_sums(labels, w, pts, np.zeros(pts.shape[1]), k)[1]
        features = normalizer(means)
    return float(np.sum(np.maximum(within, 0.0))), features


def _cached_spread(raw_points, weights, total_sq: SquareSums):
    """The spread within the points that :func:`_spread_within_points` keeps for these points."""
    cached = getattr(total_sq, "_within", None)
    if cached is not None and cached[0] is raw_points and cached[1] is weights:
        return cached[2].copy()
    return None


def _spread_within_points(raw_points, weights, total_sq: SquareSums) -> np.ndarray:
    """Per channel, the sum of squares of the pixels about their own point's mean (input units):
    it does not depend on the labels, so it is computed once per set of points (a k-scan or the
    cuts of a tree reuse it)."""
    cached = _cached_spread(raw_points, weights, total_sq)
    if cached is not None:
        return cached
    spread = np.empty(raw_points.shape[1])
    for c in range(raw_points.shape[1]):
        d = raw_points[:, c] - total_sq.ref[c]
        spread[c] = max(total_sq.sq[c] - weights @ (d * d), 0.0)
    object.__setattr__(total_sq, "_within", (raw_points, weights, spread))  # a cache, not state
    return spread.copy()


def pixel_group_means(values, labels, k):
    """Mean of ``values`` (n, c) per label 0..k-1 of ``labels`` (n,), in chunks (small integers
    with int16 labels: one compiled pass, the same exact sums)."""
    if (
        _accel.enabled()
        and labels.dtype == np.int16
        and values.dtype in (np.uint8, np.uint16)
        and values.ndim == 2
        and values.flags.c_contiguous
    ):
        counts, sums = _accel.int_label_sums(labels, values, k)
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums / counts[:, None]
    counts, sums = accumulate_chunks(lambda a, b: label_sums(labels[a:b], values[a:b], k), labels.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def fewer_clusters(k, n, things, where="", other="", one=None):
    """The ValueError refusing ``k`` clusters where only ``n`` ``things`` (plural; ``one``: the
    singular, default ``things`` without its last letter) can be told apart: it advises a smaller k
    where one (at least 2) exists, and otherwise says that the image cannot be clustered (rather
    than "choose n_clusters <= 1"); ``other`` is another remedy, if any."""
    if n >= 2:
        fix = f"choose n_clusters <= {n}" + (f" or {other}" if other else "")
        return ValueError(f"n_clusters={k} is more than the {n} {things}{where}; {fix}.")
    there = f"there is only one {one or things[:-1]}" if n == 1 else f"there are no {things}"
    fix = f"; use {other}" if other else ""
    return ValueError(f"{there}{where}, so it cannot be clustered (n_clusters must be at least 2){fix}.")


def too_many_clusters(k, n_distinct, n_channels, exact, normalize="none"):
    what = "distinct values" if n_channels == 1 else "distinct colours / feature vectors"
    one = "distinct value" if n_channels == 1 else "distinct colour / feature vector"
    where = "" if exact else " at the working resolution"
    after = f" after normalize={normalize!r}" if normalize != "none" else ""
    fix = ""
    if normalize == "percentile":
        fix = "another normalize (percentile clipping merges the values beyond the percentiles)"
    return fewer_clusters(
        k,
        n_distinct,
        what,
        f" in the image{where}{after} (after masking and any fit_stride downsampling)",
        fix,
        one,
    )


def check_clusters(counts, centers, wcss, n_channels) -> None:
    """A result has k non-empty clusters with finite centres and inertia; this is the last guard
    for what the checks before the fit cannot foresee (features equal in float32 but not in
    float64, the clean-up aside)."""
    empty = int(np.count_nonzero(counts <= 0))
    if empty or not np.all(np.isfinite(centers)) or not np.isfinite(wcss):
        what = "distinct values" if n_channels == 1 else "distinct colours / feature vectors"
        raise ValueError(
            f"only {counts.size - empty} of the n_clusters={counts.size} clusters could be told apart "
            f"(the image has too few {what} at the working precision); choose fewer clusters."
        )
