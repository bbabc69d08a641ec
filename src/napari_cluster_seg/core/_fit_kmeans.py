"""K-means on the prepared points: exact for one channel, coresets for many; the labelled result."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._chunks import for_chunks
from ._fit_cells import PixelFit, fit_pixels, memory_assign
from ._params import ClusterParams, labels_dtype
from ._prepare import Prepared, exact_prepared, pixel_transform, positive_rows
from ._progress import Progress, as_progress
from ._stats import assigned_stats, check_clusters, cluster_stats, pixel_group_means, rank_lut
from .cells import CellReduction
from .kmeans import kmeans_1d_optimal, nearest_center, scaled, weighted_kmeans
from .model import ClusterModel
from .sample import PixelSample, label_pixels
from .units import coarsen, grid_group

#: Most Lloyd iterations over all points after converging on the coreset.
REFINE_PASSES = 1
#: Largest point set multichannel K-means runs to convergence on (larger ones are merged on a grid).
FIT_POINTS = 2**16
#: Points of the coreset on which the n_init seedings are tried.
SEED_POINTS = 4096


@dataclass
class Coresets:
    """What every K-means fit on a set of points starts from, whatever k: the points with positive
    fit weight (``n_used`` of them), the coreset Lloyd converges on and the smaller one the seedings
    are tried on (None when there are too few points for it). ``max_k``: the largest k the
    coreset serves (a regular grid that outliers crowd into a few cells is replaced by an
    adaptive one when it holds fewer than ``max(4 k, 256)`` points)."""

    n_used: int
    pts: np.ndarray
    w: np.ndarray
    fit: tuple
    seed: tuple | None
    max_k: float = float("inf")


def kmeans_coresets(points, fit_w, k: int = 2) -> Coresets:
    # Large point sets: try the n_init seedings on a small coreset (points merged on a coarse
    # grid), run Lloyd to convergence on a larger one, then finish with REFINE_PASSES Lloyd
    # iteration(s) on all points: as good as Lloyd on all points (tested), far cheaper.
    use = positive_rows(fit_w)
    pts, w = _contiguous(points, fit_w) if use is None else (points[use], fit_w[use])
    n_feat = pts.shape[1]
    fit, seed, max_k = (pts, w), None, float("inf")
    if n_feat > 1 and pts.shape[0] > FIT_POINTS:
        fit = grid_group(pts, w, max(2, int(FIT_POINTS ** (1 / n_feat))))
        if fit[0].shape[0] < max(4 * k, 256):  # outliers crowd the regular grid: an adaptive one
            _, fit_pts, fit_wts, _ = coarsen(pts, w, FIT_POINTS)
            fit = (fit_pts, fit_wts)
        else:
            max_k = fit[0].shape[0] // 4
    if n_feat > 1 and fit[0].shape[0] > 4 * SEED_POINTS:
        seed = grid_group(fit[0], fit[1], max(2, int(SEED_POINTS ** (1 / n_feat))))
    return Coresets(pts.shape[0], pts, w, fit, seed, max_k)


def _contiguous(points, weights):
    """``points`` and ``weights`` themselves when C-contiguous (no copy of every point), else copies."""
    return np.ascontiguousarray(points), np.ascontiguousarray(weights)


@dataclass
class CenterFit:
    """K-means centres (sorted by their coordinates) and the nearest centre of every point; with
    ``sums``, the weight (k,) and weighted sums (k, f) of every centre's points and ``cost``, their
    weighted squared distances to the centres, from the pass that labelled them (all points, their
    fit weights: :func:`assigned_stats` needs no further pass)."""

    centers: np.ndarray
    labels: np.ndarray
    sums: tuple | None = None
    cost: float = float("nan")


@dataclass
class KMeansFit:
    """A K-means run on a prepared image: labels of the valid pixels (1..k, darkest first) and the
    clusters in label order (before any clean-up)."""

    labels: np.ndarray
    centers: np.ndarray
    counts: np.ndarray
    inertia: float
    model: ClusterModel
    feature_centers: np.ndarray


def fit_centers(points, fit_w, params: ClusterParams, rng, coresets: Coresets | None = None):
    """Generator: K-means fitted on the points with positive fit weight; returns a
    :class:`CenterFit` (every point's nearest centre from the last Lloyd pass when it saw every
    point). ``coresets`` (:func:`kmeans_coresets` of the same points) saves that work when
    several k are fitted."""
    k = params.n_clusters
    c = coresets
    if c is None or c.max_k < k:
        c = kmeans_coresets(points, fit_w, k)
    if c.pts.shape[1] == 1:
        centers = _optimal_1d(c.pts, c.w, k)
        yield 1.0
        return CenterFit(centers, nearest_center(points, centers))
    fit_pts, fit_wts = c.fit
    inits = yield from _seedings(c, params, rng)
    best = None
    for j, init in enumerate(inits):
        n_init = params.n_init if init is None else 1
        run = yield from scaled(
            weighted_kmeans(
                fit_pts,
                fit_wts,
                k,
                rng=rng,
                n_init=n_init,
                init=init,
                tol=1e-4 if fit_pts is not c.pts else 1e-5,
                sort_centers=fit_pts is c.pts,
            ),
            0.4 + 0.5 * j / len(inits),
            0.4 + 0.5 * (j + 1) / len(inits),
        )
        if best is None or run.wcss < best.wcss:
            best = run
    if fit_pts is not c.pts:
        best = yield from scaled(
            weighted_kmeans(
                c.pts, c.w, k, rng=rng, init=best.centers, max_iter=REFINE_PASSES, sort_centers=True
            ),
            0.9,
            1.0,
        )
    order = np.lexsort(best.centers.T[::-1])
    rank = np.empty(k, np.intp)
    rank[order] = np.arange(k)
    centers = best.centers[order]
    if c.n_used < points.shape[0]:  # some points had no fit weight: label them all
        return CenterFit(centers, nearest_center(points, centers))
    sums = None if best.sums is None else (best.sums[0][order], best.sums[1][order])
    return CenterFit(centers, rank[best.labels], sums, best.wcss)


def _optimal_1d(pts, w, k):
    """The globally optimal centres (k, 1) of one-channel points: the distinct values (clipping
    merges some) and their weights, by dynamic programming."""
    x, inverse = np.unique(pts[:, 0], return_inverse=True)
    wx = np.bincount(inverse.ravel(), weights=w, minlength=x.size)
    lab, _ = kmeans_1d_optimal(x, wx, k)
    centers = np.bincount(lab, weights=wx * x, minlength=k) / np.bincount(lab, weights=wx, minlength=k)
    return centers[:, None]


def _seedings(c: Coresets, params: ClusterParams, rng):
    """Generator: the initial centres to converge from: the two best of ``n_init`` runs on the
    seed coreset, or [None] (k-means++ seedings on the fit coreset itself)."""
    k = params.n_clusters
    if c.seed is None or c.seed[0].shape[0] < k:
        return [None]
    seed_pts, seed_w = c.seed
    runs = []
    step = 0.4 / params.n_init
    for i in range(params.n_init):
        runs.append(
            (yield from scaled(weighted_kmeans(seed_pts, seed_w, k, rng=rng), i * step, (i + 1) * step))
        )
    # the best coreset solution is not always the best on all points: keep two
    return [r.centers for r in sorted(runs, key=lambda r: r.wcss)[:2]]


def fit_kmeans(prep: Prepared):
    """Generator: K-means on a prepared image; returns a :class:`KMeansFit`."""
    pix, params, k = prep.pix, prep.params, prep.params.n_clusters
    cells = isinstance(prep.red, CellReduction)  # fitted on the colour cells: finish on the pixels
    fitting = fit_centers(prep.points, prep.fit_w, params, prep.rng)
    fit = yield from as_progress(fitting, "fitting K-means", 0.3, 0.3 if cells else 0.5)
    label_at = 0.85
    if cells:
        red = prep.red  # pixels in memory, or (red.assign) passed block by block
        assign, n_rows = (red.assign, None) if red.assign else (memory_assign(pix.values), pix.n_valid)
        done = yield from fit_pixels(red, prep.normalizer, fit.centers, assign, n_rows)
        if done is not None:
            return _pixel_result(prep, done)
        # a cluster lost its pixels (rare): the distinct colours, counted exactly, fitted afresh
        prep = yield from (red.exact or exact_prepared)(prep)
        pix = prep.pix
        fitting = fit_centers(prep.points, prep.fit_w, params, prep.rng)
        fit = yield from as_progress(fitting, "fitting K-means (the exact colours)", 0.86, 0.06)
        label_at = 0.93
    yield Progress("labelling", label_at)
    if isinstance(prep.red, PixelSample):  # many features: every pixel to its nearest centre
        internal, raw, counts, wcss = _label_sampled(prep, fit.centers)
    else:
        internal, raw, counts, wcss, features = _label_points(prep, fit)
    check_clusters(counts, raw, wcss, pix.n_channels)
    if internal is None:  # clustered on the channel values: order from the points, label by lookup
        base_means = raw
        lut, order = rank_lut(base_means, params, prep.base_normalizer)
        out = prep.red.map_pixels(pix.values, lut[fit.labels], np.empty(pix.n_valid, labels_dtype(k)))
    else:
        base_means = pixel_group_means(pix.base_values, internal, k)
        lut, order = rank_lut(base_means, params, prep.base_normalizer)
        out = lut[internal]
    n_channels = pix.base_values.shape[1]
    # the model keeps the centres in the order the pixels were assigned in (ties: the first), with
    # each centre's label, so that predict() breaks ties as the fit did
    model = ClusterModel(params, n_channels, pix.ndim, prep.normalizer, "centers", fit.centers, lut)
    if isinstance(prep.red, PixelSample):
        features = prep.normalizer(raw)
    return KMeansFit(out, base_means[order], counts[order], wcss, model, features[order])


def _pixel_result(prep: Prepared, done: PixelFit) -> KMeansFit:
    """The :class:`KMeansFit` of a fit finished on every pixel (:func:`._fit_cells.fit_pixels`)."""
    params = prep.params
    check_clusters(done.counts, done.means, done.wcss, prep.pix.n_channels)
    lut, order = rank_lut(done.means, params, prep.base_normalizer)
    out = done.labels
    if out is not None:  # (None: the pixels are not in memory; a streamed fit labels them lazily)
        for_chunks(lambda a, b: np.take(lut, out[a:b], out=out[a:b]), out.size)
    n_channels = prep.pix.base_values.shape[1]
    model = ClusterModel(params, n_channels, prep.pix.ndim, prep.normalizer, "centers", done.centers, lut)
    features = prep.normalizer(done.means)
    return KMeansFit(out, done.means[order], done.counts[order], done.wcss, model, features[order])


def _label_sampled(prep: Prepared, centers):
    """Every pixel to its nearest centre: (internal labels, cluster means, counts, wcss)."""
    pix, normalizer, k = prep.pix, prep.normalizer, prep.params.n_clusters
    clips = normalizer.clip_low is not None
    internal, counts, sums, total_sq, *norm = label_pixels(
        pix.values, pixel_transform(normalizer, pix.values), centers, transformed=clips
    )
    raw = sums / np.maximum(counts, 1)[:, None]
    if clips:  # clipping is not affine: the sums of squares of the normalised pixels
        between = (norm[0] ** 2 / np.maximum(counts, 1)[:, None]).sum(axis=0)
        wcss = float(np.sum(np.maximum(norm[1] - between, 0.0)))
    else:
        weights = counts.astype(np.float64)
        _, _, wcss, _ = cluster_stats(raw, weights, np.arange(k), k, total_sq, normalizer)
    return internal, raw, counts, wcss


def _label_points(prep: Prepared, fit: CenterFit):
    """Statistics from the labelled points: (internal pixel labels (None: not needed), cluster
    means, counts, wcss, feature means)."""
    red, pix, k, point_labels = prep.red, prep.pix, prep.params.n_clusters, fit.labels
    if fit.sums is not None and prep.fit_w is red.weights:  # the labelling pass summed them
        raw, counts, wcss, features = assigned_stats(fit, red, prep.normalizer)
    else:
        raw, counts, wcss, features = cluster_stats(
            red.raw_points, red.weights, point_labels, k, red.total_sq, prep.normalizer
        )
    internal = None
    if pix.base is not None:  # features: the channel means need one more pass over the pixels
        internal = red.map_pixels(pix.values, point_labels.astype(np.int16), np.empty(pix.n_valid, np.int16))
    return internal, raw, counts, wcss, features
