"""The public entry points: :func:`cluster_image` and :func:`iter_cluster_image`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from . import _accel
from ._chunks import (
    SquareSums,
    accumulate_chunks,
    channel_range,
    group_means,
    group_sums,
    label_sums,
    reference,
    square_sums,
)
from ._params import OPTIONS, ClusterParams, validate_params
from ._params import labels_dtype as _labels_dtype
from .cleanup import clean_labels
from .hierarchy import BisectingTree, LinkageTree, SpanningTreeSplits, Tree, weighted_linkage
from .kmeans import assign_nearest, kmeans_1d_optimal, nearest_center, scaled, weighted_kmeans
from .model import ClusterModel
from .preprocess import (
    LUMA_WEIGHTS,
    Normalizer,
    array_like,
    downsample_mask,
    fit_normalizer,
    fix_coordinates,
    load_array,
    pixels_for,
    scatter_valid,
)
from .reduce import GRID_MAX_CHANNELS, Reduction, check_magnitude, n_distinct_rows, reduce_pixels
from .sample import PixelSample, label_pixels, sample_pixels
from .units import UnitGrid, coarsen, grid_group

#: Most Lloyd iterations over all points after converging on the coreset.
REFINE_PASSES = 1
#: Largest point set multichannel K-means runs to convergence on (larger ones are merged on a grid).
FIT_POINTS = 2**16
#: Points of the coreset on which the n_init seedings are tried.
SEED_POINTS = 4096
#: Units of a hierarchy over many features (K-means centres of a pixel sample).
SAMPLED_UNITS = 256
#: Sampled pixels those units are fitted on.
SAMPLED_UNIT_FIT = 2**14


class Progress(NamedTuple):
    """One progress report of :func:`iter_cluster_image`."""

    stage: str
    fraction: float


@dataclass
class Dendrogram:
    """The top of a hierarchical result's tree, ready to draw.

    Attributes
    ----------
    Z : ndarray, shape (n_leaves - 1, 4)
        scipy-format linkage matrix (for :func:`scipy.cluster.hierarchy.dendrogram`)
        over ``n_leaves`` leaves; merge heights never decrease. Agglomerative:
        the linkage distance (Ward: ``sqrt(2 * increase in SSE)``); divisive:
        ``sqrt(2 * SSE)`` of the cluster that was split.
    leaf_labels : ndarray, shape (n_leaves,)
        Label (1..k) that each leaf's pixels have in the result.
    n_clusters : int
        The result's k.
    """

    Z: np.ndarray
    leaf_labels: np.ndarray
    n_clusters: int

    @property
    def n_leaves(self) -> int:
        return self.Z.shape[0] + 1

    def cut_height(self, n_clusters: int | None = None) -> float:
        """A height at which a horizontal cut leaves ``n_clusters`` clusters (default: the result's).

        ``clusters_at(cut_height(k)) == k`` whenever a horizontal cut can
        leave k clusters: halfway between the merge that makes k clusters and
        the next one up (at the lower one when they differ by a rounding
        error only). When merges tie at that height (the merge to k - 1
        clusters and the one to k are equally high, or the lowest merge is at
        height 0 for ``k = n_leaves``), no horizontal cut leaves k clusters:
        the height of the tied merges is returned (the line passes through
        them), where :meth:`clusters_at` counts all of them as merged (fewer
        than k). :meth:`ClusterResult.cut` still gives k clusters, by merge order.
        """
        k = self.n_clusters if n_clusters is None else n_clusters
        integer = isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))
        if not integer or not 1 <= k <= self.n_leaves:
            raise ValueError(
                f"n_clusters={k!r} cannot be cut from a dendrogram of {self.n_leaves} leaves; "
                f"choose an integer between 1 and {self.n_leaves}."
            )
        if self.n_leaves == 1:
            return 0.0
        heights = self.Z[:, 2]
        above = heights[self.n_leaves - k] if k > 1 else heights[-1] * 1.05
        below = heights[self.n_leaves - k - 1] if k < self.n_leaves else 0.0
        middle = (above + below) / 2
        return float(middle if middle < above else below)  # nearly tied: the mean rounds to ``above``

    def clusters_at(self, height: float) -> int:
        """Number of clusters left by cutting the tree at ``height`` (merges at ``height`` are done)."""
        if isinstance(height, (bool, np.bool_)) or not isinstance(height, (int, float, np.number)):
            raise TypeError(f"height must be a number, got {height!r} ({type(height).__name__}).")
        return int(1 + np.count_nonzero(self.Z[:, 2] > height))


@dataclass
class _HierarchyState:
    """What :meth:`ClusterResult.cut` needs to relabel a hierarchical result."""

    tree: Tree
    n_fit_units: int
    unit_to_fit: np.ndarray  # for every unit: index of the fitted unit whose cluster it takes
    units: np.ndarray  # (u, n_features) normalised unit means
    unit_raw: np.ndarray  # (u, n_features) unit means in feature units (input units without features)
    unit_weights: np.ndarray
    total_sq: SquareSums  # per channel: sum of squares of all pixel values (about a reference)
    unit_of_pixel: np.ndarray  # (n_valid,) unit of every valid pixel
    valid: np.ndarray | None
    shape: tuple
    normalizer: Normalizer
    time_axis: int | None = None  # of the label image
    n_channels: int = 1
    ndim: int = 2  # dimensions of the input image (with its channel axis)
    grid: UnitGrid | None = None  # how other pixels find their unit (None: nearest unit mean)
    unit_base: np.ndarray | None = None  # with features: (u, n_channels) unit means of the channels
    base_normalizer: Normalizer | None = None  # orders multichannel clusters by their channel means
    feature_names: tuple | None = None
    pixel_units: bool = False  # the units are the pixels (connected Ward on a small image)


def _hierarchy_state(
    prep,
    tree,
    n_fit_units,
    unit_to_fit,
    units,
    unit_raw,
    unit_weights,
    total_sq,
    unit_of_pixel,
    grid=None,
    pixel_units=False,
) -> _HierarchyState:
    """The hierarchy state of a tree built on the units of a prepared image."""
    pix = prep.pix
    unit_base = None
    if pix.base is not None:  # features: the units' channel means, for centres and label order
        unit_base = _pixel_group_means(pix.base, unit_of_pixel, units.shape[0])
    return _HierarchyState(
        tree=tree,
        n_fit_units=n_fit_units,
        unit_to_fit=unit_to_fit,
        units=units,
        unit_raw=unit_raw,
        unit_weights=unit_weights,
        total_sq=total_sq,
        unit_of_pixel=unit_of_pixel,
        valid=pix.valid,
        shape=pix.shape,
        normalizer=prep.normalizer,
        time_axis=pix.time_axis,
        n_channels=pix.base_values.shape[1],
        ndim=pix.ndim,
        grid=grid,
        unit_base=unit_base,
        base_normalizer=prep.base_normalizer,
        feature_names=pix.names,
        pixel_units=pixel_units,
    )


@dataclass
class ClusterResult:
    """Result of :func:`cluster_image`.

    Attributes
    ----------
    labels : ndarray of uint8 or uint16
        The image's shape without its channel axis. 0 marks pixels that were
        not clustered (NaN, infinite or masked); clusters are 1..k ordered by
        brightness (see :func:`cluster_image`).
    centers : ndarray, shape (k, n_channels)
        Mean value (input units) of each cluster's pixels, row ``i`` for
        label ``i + 1``: of the smoothed values when smoothing without
        features, of the channel values as given when features are used.
    counts : ndarray, shape (k,)
        Number of pixels of each label 1..k.
    inertia : float
        Within-cluster sum of squares over all clustered pixels, in the
        normalised feature space the clustering worked in.
    params : ClusterParams
        The validated options of the run.
    model : ClusterModel
        The fitted model: labels other images (or frames) the same way
        without refitting, and saves to / loads from JSON.
    feature_centers : ndarray, shape (k, n_features)
        Cluster means in the normalised feature space the clustering worked
        in (the channels themselves unless features were chosen).
    feature_names : tuple of str or None
        Names of the features (None: the channels).
    """

    labels: np.ndarray
    centers: np.ndarray
    counts: np.ndarray
    inertia: float
    params: ClusterParams
    model: ClusterModel | None = field(default=None, repr=False)
    feature_centers: np.ndarray | None = field(default=None, repr=False)
    feature_names: tuple | None = field(default=None, repr=False)
    _hierarchy: _HierarchyState | None = field(default=None, repr=False)
    _fit_unit_labels: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_clusters(self) -> int:
        return int(self.centers.shape[0])

    @property
    def is_hierarchical(self) -> bool:
        return self._hierarchy is not None

    def cut(self, n_clusters: int) -> ClusterResult:
        """Labels for another number of clusters from the same hierarchy, without refitting.

        Only for ``method="agglomerative"`` or ``"divisive"``. Cuts nest:
        every cluster of ``cut(k + 1)`` lies inside one cluster of ``cut(k)``.

        Examples
        --------
        >>> import numpy as np
        >>> img = np.repeat(np.arange(4, dtype=np.uint8) * 60, 4).reshape(4, 4)
        >>> res = cluster_image(img, 2, "agglomerative")
        >>> res.cut(4).labels[:, 0]
        array([1, 2, 3, 4], dtype=uint8)
        """
        if self._hierarchy is None:
            raise ValueError(
                f"cut() needs a hierarchical result, but this one came from method="
                f"{self.params.method!r}; run method='agglomerative' or 'divisive'."
            )
        n_fit = self._hierarchy.n_fit_units
        if (
            isinstance(n_clusters, bool)
            or not isinstance(n_clusters, (int, np.integer))
            or not 2 <= n_clusters <= n_fit
        ):
            raise ValueError(
                f"n_clusters={n_clusters!r} cannot be cut from a hierarchy of {n_fit} units; "
                f"choose an integer between 2 and {n_fit}."
            )
        return _label_from_units(self._hierarchy, replace(self.params, n_clusters=int(n_clusters)))

    def dendrogram(self, max_leaves: int = 30) -> Dendrogram:
        """The top of the tree (at least this result's k leaves), with each leaf's label.

        Examples
        --------
        >>> import numpy as np
        >>> img = np.repeat(np.array([0, 10, 100, 110], np.uint8), 4).reshape(4, 4)
        >>> d = cluster_image(img, 2, "agglomerative").dendrogram()
        >>> d.n_leaves, d.leaf_labels.tolist(), d.clusters_at(d.cut_height())
        (4, [1, 1, 2, 2], 2)
        """
        if self._hierarchy is None:
            raise ValueError(
                f"dendrogram() needs a hierarchical result, but this one came from method="
                f"{self.params.method!r}; run method='agglomerative' or 'divisive'."
            )
        if isinstance(max_leaves, (bool, np.bool_)) or not isinstance(max_leaves, (int, np.integer)):
            raise TypeError(f"max_leaves must be an integer, got {max_leaves!r}.")
        n_leaves = max(int(max_leaves), self.n_clusters)
        Z, leaf_of_unit = self._hierarchy.tree.top(n_leaves)
        # heights never decrease up the tree: a divisive tree's sums of squares at rounding level
        # (values one ulp apart) can make a child's split look higher than its parent's
        Z = Z.copy()
        Z[:, 2] = np.maximum.accumulate(Z[:, 2])
        leaf_labels = np.zeros(Z.shape[0] + 1, self._fit_unit_labels.dtype)
        leaf_labels[leaf_of_unit] = self._fit_unit_labels
        return Dendrogram(Z, leaf_labels, self.n_clusters)


def _brightness_order(raw_centers: np.ndarray, params: ClusterParams, normalizer: Normalizer) -> np.ndarray:
    """Permutation of clusters from darkest to brightest (ties: by channel values)."""
    if params.rgb:
        key = raw_centers[:, :3] @ LUMA_WEIGHTS
    elif raw_centers.shape[1] == 1:
        key = raw_centers[:, 0]
    else:
        key = ((raw_centers - normalizer.offset) / normalizer.scale).mean(axis=1)
    return np.lexsort(tuple(raw_centers[:, ::-1].T) + (key,))


def _rank_lut(raw_centers, params, normalizer):
    """Table internal cluster (0..k-1) -> label (1..k, darkest first), and the order."""
    k = raw_centers.shape[0]
    order = _brightness_order(raw_centers, params, normalizer)
    lut = np.empty(k, _labels_dtype(k))
    lut[order] = np.arange(1, k + 1)
    return lut, order


def _clean(labels, counts, params: ClusterParams, time_axis):
    """Optional spatial clean-up of a label image (time axis ``time_axis``); returns (labels, counts)."""
    if params.min_size <= 1 and params.hole_size <= 0:
        return labels, counts
    labels = clean_labels(labels, min_size=params.min_size, hole_size=params.hole_size, time_axis=time_axis)
    counts = np.bincount(labels.ravel(), minlength=counts.size + 1)[1:].astype(np.int64)
    return labels, counts


def _cluster_stats(raw_points, weights, labels, k, total_sq: SquareSums, normalizer):
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


def _spread_within_points(raw_points, weights, total_sq: SquareSums) -> np.ndarray:
    """Per channel, the sum of squares of the pixels about their own point's mean (input units):
    it does not depend on the labels, so it is computed once per set of points (a k-scan or the
    cuts of a tree reuse it)."""
    cached = getattr(total_sq, "_within", None)
    if cached is not None and cached[0] is raw_points and cached[1] is weights:
        return cached[2].copy()
    spread = np.empty(raw_points.shape[1])
    for c in range(raw_points.shape[1]):
        d = raw_points[:, c] - total_sq.ref[c]
        spread[c] = max(total_sq.sq[c] - weights @ (d * d), 0.0)
    object.__setattr__(total_sq, "_within", (raw_points, weights, spread))  # a cache, not state
    return spread.copy()


def _pixel_group_means(values, labels, k):
    """Mean of ``values`` (n, c) per label 0..k-1 of ``labels`` (n,), in chunks."""
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


def _too_many_clusters(k, n_distinct, n_channels, exact, normalize="none"):
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


@dataclass
class _Coresets:
    """What every K-means fit on a set of points starts from, whatever k: the points with positive
    fit weight (rows ``use``), the coreset Lloyd converges on and the smaller one the seedings
    are tried on (None when there are too few points for it). ``max_k``: the largest k the
    coreset serves (a regular grid that outliers crowd into a few cells is replaced by an
    adaptive one when it holds fewer than ``max(4 k, 256)`` points)."""

    use: np.ndarray
    pts: np.ndarray
    w: np.ndarray
    fit: tuple
    seed: tuple | None
    max_k: float = float("inf")


def _kmeans_coresets(points, fit_w, k: int = 2) -> _Coresets:
    # Large point sets: try the n_init seedings on a small coreset (points merged on a coarse
    # grid), run Lloyd to convergence on a larger one, then finish with REFINE_PASSES Lloyd
    # iteration(s) on all points: as good as Lloyd on all points (tested), far cheaper.
    use = np.flatnonzero(fit_w > 0)
    pts, w = points[use], fit_w[use]
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
    return _Coresets(use, pts, w, fit, seed, max_k)


def _check_fit_points(prep) -> None:
    """The one check before any fit: the pixels the fit sees (``fit_w > 0``) must hold at least
    k distinct points *after normalisation* (clipping merges values; a pixel sample repeats
    them), else no clustering has k non-empty clusters."""
    params, k = prep.params, prep.params.n_clusters
    use = np.flatnonzero(prep.fit_w > 0)
    # a strided subset of the fit points first (no copy of all of them); all only when it is short
    step = max(1, use.size // (16 * k))
    n_distinct = n_distinct_rows(prep.points[use[::step]], k)
    if n_distinct < k and step > 1:
        n_distinct = n_distinct_rows(prep.points[use], k)
    if n_distinct < k:
        exact = prep.red.exact and prep.normalizer.clip_low is None
        raise _too_many_clusters(k, n_distinct, prep.pix.n_channels, exact, params.normalize)


def _check_clusters(counts, centers, wcss, n_channels) -> None:
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


def _fit_kmeans(points, fit_w, params: ClusterParams, rng, coresets: _Coresets | None = None):
    """Generator: K-means fitted on the points with positive fit weight; returns the centres
    (sorted) and every point's nearest centre (from the last Lloyd pass when it saw every point).
    ``coresets`` (:func:`_kmeans_coresets` of the same points) saves that work when several k are
    fitted."""
    k = params.n_clusters
    c = coresets
    if c is None or c.max_k < k:
        c = _kmeans_coresets(points, fit_w, k)
    use, pts, w = c.use, c.pts, c.w
    if pts.shape[1] == 1:  # the distinct values (clipping merges some) and their weights
        x, inverse = np.unique(pts[:, 0], return_inverse=True)
        wx = np.bincount(inverse.ravel(), weights=w, minlength=x.size)
        lab, _ = kmeans_1d_optimal(x, wx, k)
        centers = np.bincount(lab, weights=wx * x, minlength=k) / np.bincount(lab, weights=wx, minlength=k)
        yield 1.0
        centers = centers[:, None]
        return centers, nearest_center(points, centers)
    fit_pts, fit_wts = c.fit
    tol = 1e-4 if fit_pts is not pts else 1e-5
    inits = [None]
    if c.seed is not None:
        seed_pts, seed_w = c.seed
        if seed_pts.shape[0] >= k:
            runs = []
            for i in range(params.n_init):
                step = 0.4 / params.n_init
                runs.append(
                    (
                        yield from scaled(
                            weighted_kmeans(seed_pts, seed_w, k, rng=rng), i * step, (i + 1) * step
                        )
                    )
                )
            # the best coreset solution is not always the best on all points: keep two
            inits = [r[0] for r in sorted(runs, key=lambda r: r[2])[:2]]
    best = None
    for j, init in enumerate(inits):
        n_init = params.n_init if init is None else 1
        run = yield from scaled(
            weighted_kmeans(
                fit_pts, fit_wts, k, rng=rng, n_init=n_init, init=init, tol=tol, sort_centers=fit_pts is pts
            ),
            0.4 + 0.5 * j / len(inits),
            0.4 + 0.5 * (j + 1) / len(inits),
        )
        if best is None or run[2] < best[2]:
            best = run
    centers, labels = best[0], best[1]
    if fit_pts is not pts:
        centers, labels, _ = yield from scaled(
            weighted_kmeans(pts, w, k, rng=rng, init=centers, max_iter=REFINE_PASSES, sort_centers=True),
            0.9,
            1.0,
        )
    order = np.lexsort(centers.T[::-1])
    rank = np.empty(k, np.intp)
    rank[order] = np.arange(k)
    centers = centers[order]
    return centers, (rank[labels] if use.size == points.shape[0] else nearest_center(points, centers))


def as_progress(gen, stage: str, start: float, span: float):
    """Generator: run ``gen`` (which yields fractions 0..1) as :class:`Progress` in
    ``[start, start + span]``; returns its value."""
    try:
        while True:
            yield Progress(stage, start + span * min(1.0, float(next(gen))))
    except StopIteration as stop:
        return stop.value


def _transform(normalizer, values):
    """Rows of pixel values -> normalised features (for chunked labelling): float32, or float64
    for 64-bit ``values`` (whose normalised values float32 may not hold)."""
    dtype = np.float64 if values.dtype.itemsize == 8 else np.float32
    return lambda chunk: normalizer(chunk, dtype=dtype)


def _kmeans(prep: _Prepared):
    """Generator: K-means; returns (labels of valid pixels, centres, counts, wcss, model, feature centres)."""
    red, points, fit_w, pix, normalizer, params, rng = prep.fit_parts()
    base_normalizer = prep.base_normalizer
    k = params.n_clusters
    centers, point_labels = yield from as_progress(
        _fit_kmeans(points, fit_w, params, rng), "fitting K-means", 0.3, 0.5
    )
    yield Progress("labelling", 0.85)
    if isinstance(red, PixelSample):  # many features: every pixel to its nearest centre
        clips = normalizer.clip_low is not None
        internal, counts, sums, total_sq, *norm = label_pixels(
            pix.values, _transform(normalizer, pix.values), centers, transformed=clips
        )
        raw = sums / np.maximum(counts, 1)[:, None]
        if clips:  # clipping is not affine: the sums of squares of the normalised pixels
            between = (norm[0] ** 2 / np.maximum(counts, 1)[:, None]).sum(axis=0)
            wcss = float(np.sum(np.maximum(norm[1] - between, 0.0)))
        else:
            weights = counts.astype(np.float64)
            _, _, wcss, _ = _cluster_stats(raw, weights, np.arange(k), k, total_sq, normalizer)
    else:
        raw, counts, wcss, features = _cluster_stats(
            red.raw_points, red.weights, point_labels, k, red.total_sq, normalizer
        )
        internal = None
        if pix.base is not None:  # features: the channel means need one more pass over the pixels
            internal = red.map_pixels(
                pix.values, point_labels.astype(np.int16), np.empty(pix.n_valid, np.int16)
            )
    _check_clusters(counts, raw, wcss, pix.n_channels)
    if internal is None:  # clustered on the channel values: order from the points, label by lookup
        base_means = raw
        lut, order = _rank_lut(base_means, params, base_normalizer)
        out = red.map_pixels(pix.values, lut[point_labels], np.empty(pix.n_valid, _labels_dtype(k)))
    else:
        base_means = _pixel_group_means(pix.base_values, internal, k)
        lut, order = _rank_lut(base_means, params, base_normalizer)
        out = lut[internal]
    n_channels = pix.base_values.shape[1]
    # the model keeps the centres in the order the pixels were assigned in (ties: the first), with
    # each centre's label, so that predict() breaks ties as the fit did
    model = ClusterModel(params, n_channels, pix.ndim, normalizer, "centers", centers, lut)
    if isinstance(red, PixelSample):
        features = normalizer(raw)
    return out, base_means[order], counts[order], wcss, model, features[order]


def _label_from_units(h: _HierarchyState, params: ClusterParams) -> ClusterResult:
    k = params.n_clusters
    fit_labels = h.tree.cut(k)
    unit_labels = fit_labels[h.unit_to_fit]
    raw, counts, wcss, features = _cluster_stats(
        h.unit_raw, h.unit_weights, unit_labels, k, h.total_sq, h.normalizer
    )
    _check_clusters(counts, raw, wcss, h.n_channels)
    if h.unit_base is None:
        base_means = raw
    else:
        base_means, _ = group_means(h.unit_base, h.unit_weights, unit_labels, k)
    lut, order = _rank_lut(base_means, params, h.base_normalizer)
    unit_labels = lut[unit_labels]
    labels = scatter_valid(unit_labels[h.unit_of_pixel], h.shape, h.valid)
    counts = counts[order]
    labels, counts = _clean(labels, counts, params, h.time_axis)
    model_points, model_labels = h.units, unit_labels
    if h.pixel_units and h.units.shape[0] > params.max_units:  # the model keeps finer regions
        g = max(params.max_units, k)
        region = h.tree.cut(g)[h.unit_to_fit]  # nested in the clusters, so one label per region
        model_points, _ = group_means(h.units, h.unit_weights, region, g)
        member = np.empty(g, np.intp)
        member[region] = np.arange(region.size)
        model_labels = unit_labels[member]
    model = ClusterModel(
        params, h.n_channels, h.ndim, h.normalizer, "units", model_points, model_labels, h.grid
    )
    return ClusterResult(
        labels,
        base_means[order],
        counts,
        wcss,
        params,
        model,
        feature_centers=features[order],
        feature_names=h.feature_names,
        _hierarchy=h,
        _fit_unit_labels=lut[fit_labels],
    )


def _hierarchical(prep: _Prepared):
    """Generator: build the tree on units; returns the hierarchy state."""
    red, points, fit_w, pix, normalizer, params, rng = prep.fit_parts()
    k = params.n_clusters
    yield Progress("grouping pixels into units", 0.3)
    sampled = isinstance(red, PixelSample)
    if sampled:  # many features: units are K-means centres of the sample; pixels go to the nearest
        n_units = min(params.max_units, SAMPLED_UNITS, red.n_points)
        pick = rng.choice(red.n_points, min(red.n_points, SAMPLED_UNIT_FIT), replace=False)
        units, _, _ = yield from as_progress(
            weighted_kmeans(points[pick], red.weights[pick], n_units, rng=rng, max_iter=10),
            "grouping pixels into units (K-means)",
            0.3,
            0.1,
        )
        transform = _transform(normalizer, pix.values)
        unit_of_pixel, counts, sums, total_sq = label_pixels(pix.values, transform, units)
        keep = np.flatnonzero(counts > 0)
        units, counts, sums = units[keep], counts[keep], sums[keep]
        relabel = np.full(n_units, -1, np.intp)
        relabel[keep] = np.arange(keep.size)
        unit_of_pixel = relabel[unit_of_pixel].astype(unit_of_pixel.dtype)
        unit_w = counts.astype(np.float64)
        unit_raw = sums / unit_w[:, None]
        unit_fit_w, grid = unit_w, None
    else:
        unit_of_point, units, unit_w, grid = coarsen(points, red.weights, params.max_units)
        unit_raw, _ = group_means(red.raw_points, red.weights, unit_of_point, units.shape[0])
        unit_fit_w = np.bincount(unit_of_point, weights=fit_w, minlength=units.shape[0])
    fit_units = np.flatnonzero(unit_fit_w > 0)
    if fit_units.size < k:
        raise _too_many_clusters(
            k, fit_units.size, pix.n_channels, red.exact and units.shape[0] == red.n_points
        )
    fit_pts, fit_w_units = units[fit_units], unit_fit_w[fit_units]
    if params.method == "agglomerative":
        yield Progress(f"agglomerative clustering of {fit_units.size} units", 0.4)
        tree = LinkageTree(weighted_linkage(fit_pts, fit_w_units, params.linkage), fit_units.size)
    else:
        tree = BisectingTree(fit_pts, fit_w_units, rng=rng, n_init=max(params.n_init, 3))
        for frac in tree.grow(k):
            yield Progress("divisive clustering (bisecting K-means)", 0.4 + 0.4 * frac)
    # Units absent from the fit (fit_stride > 1) follow the nearest fitted unit.
    unit_to_fit = np.empty(units.shape[0], np.intp)
    unit_to_fit[fit_units] = np.arange(fit_units.size)
    missing = np.flatnonzero(unit_fit_w <= 0)
    if missing.size:
        unit_to_fit[missing] = assign_nearest(units[missing], fit_pts)
    yield Progress("labelling", 0.85)
    if not sampled:
        small = np.int16 if units.shape[0] < 2**15 else np.int32
        per_point = unit_of_point.astype(small)
        unit_of_pixel = red.map_pixels(pix.values, per_point, np.empty(pix.n_valid, small))
        total_sq = red.total_sq
    return _hierarchy_state(
        prep, tree, fit_units.size, unit_to_fit, units, unit_raw, unit_w, total_sq, unit_of_pixel, grid
    )


def _connected(prep: _Prepared):
    """Generator: superpixels, their adjacency and the connectivity-constrained tree (Ward on
    small images: the exact tree on single pixels)."""
    from . import regions
    from .regions import PIXELS_PER_SUPERPIXEL, connected_linkage, superpixels

    pix, normalizer, params = prep.pix, prep.normalizer, prep.params
    k = params.n_clusters
    if pix.n_valid < k:
        raise fewer_clusters(k, pix.n_valid, "pixels", " to cluster (valid and in the mask)")
    if (
        params.method == "agglomerative"
        and params.linkage == "ward"
        and pix.n_valid <= regions.EXACT_MAX_PIXELS
        and regions.n_components(pix.shape, pix.valid, pix.time_axis) <= regions.EXACT_MAX_COMPONENTS
    ):
        return (yield from _connected_pixels(prep))
    yield Progress("superpixels (SLIC)", 0.25)
    image = scatter_valid(pix.values, pix.shape, pix.valid)  # a view where possible
    mask = None if pix.valid is None else pix.valid.reshape(pix.shape)

    def normalise(frame):
        dtype = np.float64 if frame.dtype.itemsize == 8 else np.float32  # 1e39 needs float64
        return normalizer(frame.reshape(-1, frame.shape[-1]), dtype=dtype).reshape(frame.shape)

    sp, edges = superpixels(
        image,
        mask,
        n_segments=min(params.max_units, max(4 * k, pix.n_valid // PIXELS_PER_SUPERPIXEL)),
        time_axis=pix.time_axis,
        rgb=params.rgb and params.normalize == "minmax" and pix.base is None,
        transform=normalise,
    )
    del image
    flat = sp.ravel() if pix.valid is None else sp.ravel()[pix.valid]
    unit_of_pixel = (flat - 1).astype(np.int16 if sp.max() < 2**15 else np.int32)
    n_units = int(sp.max())
    if n_units < k:
        raise fewer_clusters(
            k, n_units, "superpixels", " in the image", "a larger max_units" if n_units else ""
        )

    ref = reference(pix.values)
    counts, sums, total_sq = accumulate_chunks(
        lambda a, b: label_sums(unit_of_pixel[a:b], pix.values[a:b], n_units, ref=ref), pix.n_valid
    )
    counts = counts.astype(np.float64)
    unit_raw = sums / counts[:, None]
    units = normalizer(unit_raw)
    edges = edges - 1
    yield Progress(f"connected {params.method} clustering of {n_units} superpixels", 0.5)
    if params.method == "agglomerative":
        tree = LinkageTree(connected_linkage(units, counts, edges, params.linkage), n_units)
    else:
        tree = SpanningTreeSplits(units, counts, edges)
        for frac in tree.grow(k):
            yield Progress("divisive clustering (spanning-tree splits)", 0.5 + 0.3 * frac)
    yield Progress("labelling", 0.85)
    return _hierarchy_state(
        prep, tree, n_units, np.arange(n_units), units, unit_raw, counts, total_sq, unit_of_pixel
    )


def _connected_pixels(prep: _Prepared):
    """Generator: connected Ward on single pixels (scikit-learn's structured Ward tree)."""
    from .regions import exact_ward, pixel_edges

    pix, normalizer = prep.pix, prep.normalizer
    n = pix.n_valid
    yield Progress(f"connected Ward clustering of {n} pixels", 0.25)
    unit_raw = pix.values.astype(np.float64)
    units = normalizer(unit_raw)
    counts = np.ones(n)
    edges = pixel_edges(pix.shape, pix.valid, pix.time_axis)
    gen = exact_ward(units, counts, edges)
    try:
        while True:
            yield Progress(f"connected Ward clustering of {n} pixels", 0.25 + 0.55 * next(gen))
    except StopIteration as stop:
        tree = LinkageTree(stop.value, n)
    yield Progress("labelling", 0.85)
    total_sq = square_sums(unit_raw, reference(unit_raw))
    unit_of_pixel = np.arange(n, dtype=np.int32)
    return _hierarchy_state(
        prep, tree, n, unit_of_pixel, units, unit_raw, counts, total_sq, unit_of_pixel, pixel_units=True
    )


@dataclass
class _Prepared:
    """Validated options and the image's pixels, reduced and normalised (``red`` is None when
    the connected flavour needs no reduction)."""

    params: ClusterParams
    pix: object
    red: Reduction | None
    normalizer: Normalizer
    points: np.ndarray | None
    fit_w: np.ndarray | None
    rng: np.random.Generator
    base_normalizer: Normalizer  # orders multichannel clusters by their channel means

    def fit_parts(self):
        """(red, points, fit_w, pix, normalizer, params, rng): what the model fits take."""
        return self.red, self.points, self.fit_w, self.pix, self.normalizer, self.params, self.rng


def _prepare(image, *, mask, max_bytes, **options):
    """Generator: load, validate, prepare and reduce the pixels; returns a :class:`_Prepared`."""
    yield Progress("loading image", 0.0)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; the options are: {', '.join(OPTIONS)}.")
    image = array_like(image)  # a lazy array stays lazy until its memory is checked
    params = validate_params(len(image.shape), **options)
    image = load_array(image, max_bytes=max_bytes, params=params, mask=mask)
    rng = np.random.default_rng(params.random_state)
    yield Progress("preparing pixels" + (" (smoothing)" if params.smoothing else ""), 0.05)
    pix = pixels_for(
        image,
        channel_axis=params.channel_axis,
        rgb=params.rgb,
        time_axis=params.time_axis,
        smoothing=params.smoothing,
        mask=mask,
        features=params.features,
        spacing=params.spacing,
    )
    yield from _fast_kernels(_accel.needs(pix.values, params.method, params.connected))
    base_normalizer = None
    floats = pix.base is not None and pix.base.dtype.kind == "f"
    multichannel = pix.base is not None and pix.base.shape[1] > 1 and not params.rgb
    if floats or multichannel:  # features: one pass over the channel values for both uses
        base_range = channel_range(pix.base)
        if floats:  # the centres are the means of the channel values, whatever the features
            check_magnitude(*base_range, small=False)
        if multichannel:  # clusters are ordered by their min-max scaled channel means
            base_normalizer = _range_normalizer(*base_range, "minmax", floats=floats)
    if params.connected and params.normalize in ("none", "minmax"):
        # superpixels need no reduction: the channel ranges are all the normalisation needs
        lo, hi = channel_range(pix.values)
        normalizer = _range_normalizer(lo, hi, params.normalize, floats=pix.values.dtype.kind == "f")
        normalizer = fix_coordinates(normalizer, pix.n_coordinates)
        return _Prepared(params, pix, None, normalizer, None, None, rng, base_normalizer or normalizer)
    fit_sel = _fit_selection(pix, params)
    if pix.n_channels > GRID_MAX_CHANNELS:
        yield Progress(f"sampling pixels ({pix.n_channels} features)", 0.15)
        if pix.values.dtype.kind == "f":
            check_magnitude(*channel_range(pix.values))
        red = sample_pixels(pix.values, rng, fit_sel)
    else:
        yield Progress("finding distinct values", 0.15)
        red = reduce_pixels(pix.values)
    normalizer = fit_normalizer(red.raw_points, red.weights, params.normalize, params.percentiles)
    normalizer = fix_coordinates(normalizer, pix.n_coordinates)
    points = normalizer(red.raw_points)
    if params.fit_stride == 1 or isinstance(red, PixelSample):
        fit_w = red.weights
    else:
        fit_idx = red.point_index(pix.values[fit_sel])
        fit_w = np.bincount(fit_idx, minlength=red.n_points).astype(np.float64)
    prep = _Prepared(params, pix, red, normalizer, points, fit_w, rng, base_normalizer or normalizer)
    if not params.connected:
        _check_fit_points(prep)
    return prep


def _fit_selection(pix, params):
    """Flat mask over the valid pixels of those the fit sees (None: all), or a ValueError when
    ``fit_stride`` keeps none of them."""
    if params.fit_stride == 1:
        return None
    fit_sel = downsample_mask(pix.shape, params.fit_stride, pix.time_axis)
    if pix.valid is not None:
        fit_sel = fit_sel[pix.valid]
    if not fit_sel.any():
        raise ValueError(
            f"no valid pixels to fit on: fit_stride={params.fit_stride} keeps only pixels that are "
            "masked out, NaN or infinite; choose a smaller fit_stride (or fit_stride=1)."
        )
    return fit_sel


def _fast_kernels(builds):
    """Generator: load the numba kernel builds a run needs, compiling (once per install, a
    progress stage each) those numba's disk cache does not hold yet."""
    todo = _accel.to_compile(builds)
    for i, build in enumerate(todo):
        left = _accel.compile_seconds(todo[i:])
        yield Progress(f"preparing fast kernels {i + 1}/{len(todo)} (first run only, ~{left:.0f} s)", 0.05)
        _accel.prepare(build)
    for build in _accel.pending(builds):
        _accel.prepare(build)


def _range_normalizer(lo, hi, how, *, floats: bool):
    """Min-max (or no) normalisation from the channel ranges ``lo``, ``hi`` of pixel rows (of float
    values: checked first against what float64's squares hold)."""
    if floats:
        check_magnitude(lo, hi)
    return fit_normalizer(np.stack([lo, hi]).astype(np.float64), np.ones(2), how)


def _build_hierarchy(prep: _Prepared):
    """Generator: the hierarchy state of a prepared image (either flavour)."""
    return (yield from (_connected(prep) if prep.params.connected else _hierarchical(prep)))


def iter_cluster_image(image, n_clusters=3, method="kmeans", *, mask=None, max_bytes=None, **options):
    """Generator form of :func:`cluster_image`: yields :class:`Progress`, returns the result.

    Takes the options of :func:`cluster_image` (all but ``progress``). Stopping
    iteration early (``close()``, or a napari worker's ``quit()``) cancels the
    run between two steps. Use ``result = yield from
    iter_cluster_image(...)`` inside another generator, or
    :func:`cluster_image` with ``progress=`` for a callback.
    """
    prep = yield from _prepare(
        image, mask=mask, max_bytes=max_bytes, n_clusters=n_clusters, method=method, **options
    )
    params, pix = prep.params, prep.pix
    if params.method == "kmeans":
        valid_labels, centers, counts, wcss, model, feature_centers = yield from _kmeans(prep)
        yield Progress("writing labels", 0.97)
        labels = scatter_valid(valid_labels, pix.shape, pix.valid)
        labels, counts = _clean(labels, counts, params, pix.time_axis)
        result = ClusterResult(
            labels,
            centers,
            counts,
            wcss,
            params,
            model,
            feature_centers=feature_centers,
            feature_names=pix.names,
        )
    else:
        state = yield from _build_hierarchy(prep)
        result = _label_from_units(state, params)
    yield Progress("done", 1.0)
    return result


def cluster_image(image, n_clusters=3, method="kmeans", *, progress=None, **options) -> ClusterResult:
    """Segment an image by clustering its pixels.

    Parameters
    ----------
    image : array-like
        2D or nD image: grey, RGB(A) (``rgb=True``), multichannel
        (``channel_axis``), 3D stack or time series, integer or float. Lazy
        arrays (dask, zarr, xarray: any object with ``shape`` and ``dtype``)
        are computed only after the memory check (see ``max_bytes``). NaN /
        infinite pixels are not clustered (label 0).
    n_clusters : int, default 3
        Number of clusters k, at least 2 and at most the number of distinct
        pixel values (colours).
    method : {"kmeans", "agglomerative", "divisive"}, default "kmeans"
        K-means (exact global optimum for single-channel images), bottom-up
        agglomerative clustering (see ``linkage``), or top-down divisive
        clustering (bisecting K-means).
    progress : callable, optional
        Called as ``progress(stage: str, fraction: float)`` between steps.
    linkage : {"ward", "complete", "average", "single"}, default "ward"
        Linkage for ``method="agglomerative"``.
    channel_axis : int, optional
        Axis holding the channels of a multichannel image; pixels are
        clustered on all channels together.
    rgb : bool, default False
        The last axis holds RGB or RGBA channels (alpha is ignored); clusters
        are then ordered by luminance.
    time_axis : int, optional
        Axis holding time points. One model covers all frames (a label means
        the same in every frame); smoothing does not cross frames and
        ``fit_stride`` keeps every frame.
    mask : array of bool, optional
        Pixels to cluster (shape of the image without its channel axis);
        the rest get label 0.
    normalize : {"minmax", "zscore", "percentile", "none"}, default "minmax"
        Per-channel scaling of the features, so that no channel dominates by
        its units: to [0, 1], to zero mean and unit variance, clipped to
        ``percentiles`` then to [0, 1], or left as is.
    percentiles : (float, float), default (1, 99)
        Clip limits for ``normalize="percentile"``.
    smoothing : float, default 0
        Sigma (pixels) of a Gaussian applied to each channel along the
        spatial axes before clustering; 0 turns it off.
    fit_stride : int, default 1
        Fit on every ``fit_stride``-th pixel along each spatial axis (a
        reduced image), then label every pixel at full resolution.
    n_init : int, default 4
        K-means++ seedings tried (the lowest within-cluster sum of squares
        wins). Not used for one-channel K-means, which is solved exactly.
    max_units : int, default 2048
        Largest number of units (groups of similar pixels; superpixels with
        ``connected=True``) the hierarchical methods build their tree on.
        Superpixels have at least 16 pixels on average (small images get
        fewer), but there are always at least ``4 * n_clusters`` of them.
        Connected Ward on images of at most 65,536 pixels builds its tree on
        the pixels themselves; its model keeps the ``max_units`` regions of
        the tree's finer cut.
    connected : bool, default False
        For the hierarchical methods: clusters are spatially connected
        regions instead of classes of similar pixels anywhere in the image.
        Agglomerative merges clusters only with touching ones: single pixels
        for Ward on images of at most 65,536 pixels (exactly scikit-learn's
        structured Ward tree), superpixels otherwise; divisive splits regions
        along edges of a minimum spanning tree of the superpixels (SKATER),
        so both parts stay connected.
    random_state : int or None, default 0
        Seed for K-means++ seeding and bisecting; the same seed gives the same
        labels. None draws a fresh seed.
    color_space : {"rgb", "lab", "hsv"}, default "rgb"
        Colour space of an RGB image's features: as given, CIELAB, or the HSV
        cone ``(S cos H, S sin H, V)`` (hue as an angle).
    filters : sequence of str, default ()
        Filter responses added as features for every channel and scale:
        "gaussian", "gradient" (magnitude), "log" (Laplacian of Gaussian),
        "dog" (difference of Gaussians), "structure" (structure-tensor
        eigenvalues), "hessian" (Hessian eigenvalues); see
        :mod:`napari_cluster_seg.core.features`.
    scales : sequence of float, default (1, 4)
        Sigmas (pixels) of the filters.
    spatial_weight : float, default 0
        Adds the pixel coordinates as features (in physical units from
        ``spacing``), scaled so the image's largest extent spans
        ``spatial_weight``: higher values give more compact clusters.
    intensity : bool, default True
        Use the (colour-converted, smoothed) channel values as features.
    spacing : sequence of float, optional
        Physical pixel size along each spatial axis (a napari layer's scale
        without channel and time axes): for the coordinates, and filters
        are anisotropic accordingly (sigmas are pixels of the finest axis).
    min_size : int, default 0
        Clean-up: connected regions of one label smaller than this many
        pixels take the label of most of their neighbours (see
        :func:`~napari_cluster_seg.core.cleanup.clean_labels`).
    hole_size : int, default 0
        Clean-up: regions of up to this many pixels enclosed by one label take
        that label.
    max_bytes : int, optional
        Most memory the run may add (default: the memory available now,
        ``psutil.virtual_memory().available``). Before anything is loaded or
        computed, :func:`~napari_cluster_seg.core.memory.estimate_memory`
        estimates from the image's shape, dtype and these options what the
        chosen path allocates at its peak (for a lazy image, the loaded
        image too); above the limit the run is a ``ValueError``.

    Returns
    -------
    ClusterResult
        ``labels`` (0 = not clustered, 1..k), ``centers`` (k, n_channels) in
        the input's units, ``counts``, ``inertia``; hierarchical results also
        have ``cut(k)``.

    Raises
    ------
    ValueError
        For an option out of range, an empty or all-NaN image, an unsupported
        dtype, more clusters than distinct values, or an image too large for
        memory. The message names the value and the fix.

    Notes
    -----
    **Features.** By default pixels are clustered on their channel values.
    ``color_space``, ``filters`` and ``spatial_weight`` replace them by
    feature vectors (each normalised by ``normalize``, coordinates jointly);
    ``centers`` and the label order still use the channel values, and
    ``feature_centers`` holds the clusters in feature space.

    **Clean-up.** ``min_size`` and ``hole_size`` change labels after
    clustering; ``counts`` are then those of the cleaned labels, while
    ``centers``, ``feature_centers`` and ``inertia`` describe the clusters
    before clean-up.

    **Label order.** Clusters are numbered from the darkest (label 1) to the
    brightest (label k): by the cluster's mean value for one channel, by
    luminance (Rec. 709 weights) for RGB, and by the mean of the normalised
    channel means otherwise. So the same image gets the same colours on
    every run and for every method.

    **How it scales.** Pixels are first reduced to weighted points: the
    distinct values of integer images (exact), or the cells of a regular grid
    in value space for floats, smoothed and wide-range images (2**16 bins for
    one channel, about 2**20 cells for several; pixels of one cell share a
    label). One-channel K-means is then solved to its global optimum by
    dynamic programming on those points; multichannel K-means tries its
    seedings on a small coreset, converges on a larger one and finishes with
    a Lloyd iteration on all points. Every pixel is then labelled through a
    lookup table. The hierarchical methods merge the points further into at
    most ``max_units`` units on a coarser grid (or into superpixels, with
    ``connected=True``) and build the tree on the units, weighted by pixel
    counts: pixels of one unit always share a cluster. Connected Ward on
    images of at most 65,536 pixels needs no units: its tree is built on the
    pixels, merging the cheapest touching pair first.

    Examples
    --------
    >>> import numpy as np
    >>> from napari_cluster_seg import cluster_image
    >>> img = np.array([[0, 0, 10, 10], [0, 0, 10, 200]], dtype=np.uint8)
    >>> res = cluster_image(img, n_clusters=3)
    >>> res.labels
    array([[1, 1, 2, 2],
           [1, 1, 2, 3]], dtype=uint8)
    >>> res.centers[:, 0]
    array([  0.,  10., 200.])
    """
    return run_with_progress(iter_cluster_image(image, n_clusters, method, **options), progress)


def run_with_progress(gen, progress=None):
    """Run a generator of :class:`Progress` to its end, calling ``progress(stage, fraction)``; its value."""
    try:
        while True:
            step = next(gen)
            if progress is not None:
                progress(step.stage, step.fraction)
    except StopIteration as stop:
        return stop.value


#: Modules the computations import on first use (about 1.5 s together under napari).
LAZY_IMPORTS = (
    "sklearn.cluster",
    "sklearn.metrics",
    "skimage.color",
    "skimage.segmentation",
    "skimage.measure",
    "skimage.feature",
    "scipy.ndimage",
    "scipy.sparse.csgraph",
)


def warm_up(compile: bool = False) -> None:
    """Import the modules the computations load lazily and load the optional numba kernels that
    numba's disk cache holds, so that the first run does not wait. Compiles nothing unless
    ``compile`` (all kernels, about a minute): a run compiles the few it needs and says so in a
    progress stage ("preparing fast kernels (first run only, ~N s)").

    Safe to call from a background thread (the widget does so when it opens):
    a run that starts meanwhile waits only for the imports still under way.
    """
    import importlib

    for name in LAZY_IMPORTS:
        importlib.import_module(name)
    _accel.warm_up(compile)
