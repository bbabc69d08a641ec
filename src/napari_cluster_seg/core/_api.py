"""The public entry points: :func:`cluster_image` and :func:`iter_cluster_image`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from ._params import ClusterParams, validate_params
from .hierarchy import BisectingTree, LinkageTree, Tree, weighted_linkage
from .kmeans import assign_nearest, kmeans_1d_optimal, weighted_kmeans
from .preprocess import LUMA_WEIGHTS, Normalizer, downsample_mask, fit_normalizer, load_array, pixel_data
from .reduce import Reduction, coarsen, reduce_pixels

#: Full-data Lloyd passes after fitting on grid cells (floats, smoothed images).
REFINE_PASSES = 2


class Progress(NamedTuple):
    """One progress report of :func:`iter_cluster_image`."""

    stage: str
    fraction: float


@dataclass
class _HierarchyState:
    """What :meth:`ClusterResult.cut` needs to relabel a hierarchical result."""

    tree: Tree
    fit_units: np.ndarray  # indices of units in the tree
    unit_to_fit: np.ndarray  # for every unit: index into fit_units of the unit whose cluster it takes
    units: Reduction
    unit_of_pixel: np.ndarray  # (n_valid,) unit of every valid pixel
    valid: np.ndarray | None
    shape: tuple
    normalizer: Normalizer


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
        Mean input value of each cluster's pixels, row ``i`` for label ``i + 1``.
    counts : ndarray, shape (k,)
        Number of pixels of each label 1..k.
    inertia : float
        Within-cluster sum of squares over all clustered pixels, in the
        normalised feature space the clustering worked in.
    params : ClusterParams
        The validated options of the run.
    """

    labels: np.ndarray
    centers: np.ndarray
    counts: np.ndarray
    inertia: float
    params: ClusterParams
    _hierarchy: _HierarchyState | None = field(default=None, repr=False)

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
        h = self._hierarchy
        n_fit = h.fit_units.size
        if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) or not 2 <= n_clusters <= n_fit:
            raise ValueError(
                f"n_clusters={n_clusters!r} cannot be cut from a hierarchy of {n_fit} units; "
                f"choose an integer between 2 and {n_fit}."
            )
        params = replace(self.params, n_clusters=int(n_clusters))
        return _label_from_units(h, params)


def _brightness_order(raw_centers: np.ndarray, params: ClusterParams, normalizer: Normalizer) -> np.ndarray:
    """Permutation of clusters from darkest to brightest (ties: by channel values)."""
    if params.rgb:
        key = raw_centers[:, :3] @ LUMA_WEIGHTS
    elif raw_centers.shape[1] == 1:
        key = raw_centers[:, 0]
    else:
        key = ((raw_centers - normalizer.offset) / normalizer.scale).mean(axis=1)
    return np.lexsort(tuple(raw_centers[:, ::-1].T) + (key,))


def _labels_dtype(k: int):
    return np.uint8 if k < 256 else np.uint16


def _finish(internal, k, raw_centers, counts, inertia, params, normalizer, shape, valid, *, point_map=None):
    """Order clusters by brightness and write the label image.

    ``internal`` holds 0..k-1 per valid pixel, or per point when ``point_map``
    (the point of every valid pixel) is given.
    """
    order = _brightness_order(raw_centers, params, normalizer)
    rank = np.empty(k, np.intp)
    rank[order] = np.arange(k)
    dtype = _labels_dtype(k)
    lut = (rank + 1).astype(dtype)
    if point_map is not None:
        valid_labels = lut[internal][point_map]
    else:
        valid_labels = lut[internal]
    if valid is None:
        labels = valid_labels.reshape(shape)
    else:
        labels = np.zeros(int(np.prod(shape)), dtype)
        labels[valid] = valid_labels
        labels = labels.reshape(shape)
    return labels, raw_centers[order], counts[order]


def _group_stats(points, weights, sse, raw_points, labels, k):
    """Cluster means (raw units), pixel counts and WCSS of a grouping of weighted points."""
    wsum = np.bincount(labels, weights=weights, minlength=k)
    raw = np.empty((k, raw_points.shape[1]))
    wcss = float(sse.sum())
    for c in range(raw_points.shape[1]):
        raw[:, c] = np.bincount(labels, weights=weights * raw_points[:, c], minlength=k) / wsum
    for c in range(points.shape[1]):
        s = np.bincount(labels, weights=weights * points[:, c], minlength=k)
        wcss += float(np.dot(weights, points[:, c] ** 2) - np.dot(s, s / wsum))
    return raw, np.rint(wsum).astype(np.int64), max(wcss, 0.0)


def _too_many_clusters(k, n_distinct, n_channels, exact):
    what = "distinct values" if n_channels == 1 else "distinct colours / feature vectors"
    where = "" if exact else " at the working resolution"
    return ValueError(
        f"n_clusters={k} is more than the {n_distinct} {what} in the image{where} (after masking "
        f"and any fit_stride downsampling); choose n_clusters <= {n_distinct}."
    )


def _fit_kmeans(red: Reduction, fit_w, params: ClusterParams, rng):
    """Generator: fit centres on the points with positive fit weight; returns (centers, sorted?)."""
    k = params.n_clusters
    use = np.flatnonzero(fit_w > 0)
    pts, w = red.points[use], fit_w[use]
    if pts.shape[1] == 1:
        order = np.argsort(pts[:, 0], kind="stable")
        lab, _ = kmeans_1d_optimal(pts[order, 0], w[order], k)
        centers = np.bincount(lab, weights=w[order] * pts[order, 0], minlength=k) / np.bincount(
            lab, weights=w[order], minlength=k
        )
        yield 1.0
        return centers[:, None]
    centers, _, _ = yield from weighted_kmeans(pts, w, k, rng=rng, n_init=params.n_init)
    return centers


def _nearest(features, centers):
    """Nearest-centre labels; in 1D with centres sorted, by thresholds (ties to the lower)."""
    if centers.shape[1] == 1 and np.all(np.diff(centers[:, 0]) > 0):
        mids = (centers[1:, 0] + centers[:-1, 0]) / 2
        return np.searchsorted(mids.astype(features.dtype), features[:, 0], side="left")
    return assign_nearest(features, centers)


def _kmeans(red, fit_w, pix, normalizer, params, rng):
    """Generator: K-means labels; returns the arguments of :func:`_finish`."""
    k = params.n_clusters
    centers = None
    gen = _fit_kmeans(red, fit_w, params, rng)
    try:
        while True:
            yield Progress("fitting K-means", 0.3 + 0.4 * next(gen))
    except StopIteration as stop:
        centers = stop.value
    if centers.shape[1] > 1:  # keep 1D centres sorted for threshold labelling
        centers = centers[np.lexsort(centers.T[::-1])]
    if red.exact:
        yield Progress("labelling", 0.75)
        lab = _nearest(red.points, centers)
        raw, counts, wcss = _group_stats(red.points, red.weights, red.sse, red.raw_points, lab, k)
        return lab, raw, counts, wcss, red.inverse
    feats = red.features
    passes = REFINE_PASSES if params.fit_stride == 1 else 0
    for p in range(passes + 1):
        yield Progress("labelling all pixels", 0.7 + 0.25 * p / (passes + 1))
        lab = _nearest(feats, centers)
        if p < passes:
            counts = np.bincount(lab, minlength=k)
            new = np.stack(
                [np.bincount(lab, weights=feats[:, c], minlength=k) for c in range(feats.shape[1])], axis=1
            )
            nonempty = counts > 0
            new[nonempty] /= counts[nonempty, None]
            new[~nonempty] = centers[~nonempty]
            if np.allclose(new, centers, rtol=0, atol=1e-9):
                break
            centers = new if new.shape[1] > 1 else np.sort(new, axis=0)
    counts = np.bincount(lab, minlength=k)
    raw = np.stack(
        [np.bincount(lab, weights=pix.raw_values[:, c], minlength=k) for c in range(pix.n_channels)], axis=1
    ) / np.maximum(counts, 1)[:, None]
    d2 = 0.0
    for c in range(feats.shape[1]):
        diff = feats[:, c] - centers[lab, c].astype(np.float32)
        d2 += float(np.dot(diff, diff))
    return lab, raw, counts.astype(np.int64), d2, None


def _label_from_units(h: _HierarchyState, params: ClusterParams) -> ClusterResult:
    k = params.n_clusters
    fit_labels = h.tree.cut(k)
    unit_labels = fit_labels[h.unit_to_fit]
    u = h.units
    raw, counts, wcss = _group_stats(u.points, u.weights, u.sse, u.raw_points, unit_labels, k)
    labels, centers, counts = _finish(
        unit_labels, k, raw, counts, wcss, params, h.normalizer, h.shape, h.valid, point_map=h.unit_of_pixel
    )
    return ClusterResult(labels, centers, counts, wcss, params, _hierarchy=h)


def _hierarchical(red, fit_w, pix, normalizer, params, rng):
    """Generator: build the tree on units; returns the hierarchy state."""
    k = params.n_clusters
    yield Progress("grouping pixels into units", 0.3)
    unit_of_point, units = coarsen(red, params.max_units)
    unit_fit_w = np.bincount(unit_of_point, weights=fit_w, minlength=units.n_points)
    fit_units = np.flatnonzero(unit_fit_w > 0)
    if fit_units.size < k:
        raise _too_many_clusters(k, fit_units.size, pix.n_channels, units.exact)
    fit_pts, fit_w_units = units.points[fit_units], unit_fit_w[fit_units]
    if params.method == "agglomerative":
        yield Progress(f"agglomerative clustering of {fit_units.size} units", 0.4)
        tree = LinkageTree(weighted_linkage(fit_pts, fit_w_units, params.linkage), fit_units.size)
    else:
        tree = BisectingTree(fit_pts, fit_w_units, rng=rng, n_init=max(params.n_init, 3))
        for frac in tree.grow(k):
            yield Progress("divisive clustering (bisecting K-means)", 0.4 + 0.4 * frac)
    # Units absent from the fit (fit_stride > 1) follow the nearest fitted unit.
    unit_to_fit = np.empty(units.n_points, np.intp)
    unit_to_fit[fit_units] = np.arange(fit_units.size)
    missing = np.flatnonzero(unit_fit_w <= 0)
    if missing.size:
        unit_to_fit[missing] = assign_nearest(units.points[missing], fit_pts)
    yield Progress("labelling", 0.85)
    small = np.int16 if units.n_points < 2**15 else np.int32
    unit_of_pixel = unit_of_point.astype(small)[red.inverse]
    return _HierarchyState(tree, fit_units, unit_to_fit, units, unit_of_pixel, pix.valid, pix.shape, normalizer)


def iter_cluster_image(
    image,
    n_clusters=3,
    method="kmeans",
    *,
    linkage="ward",
    channel_axis=None,
    rgb=False,
    time_axis=None,
    mask=None,
    normalize="minmax",
    percentiles=(1.0, 99.0),
    smoothing=0.0,
    fit_stride=1,
    n_init=4,
    max_units=2048,
    random_state=0,
    max_bytes=None,
):
    """Generator form of :func:`cluster_image`: yields :class:`Progress`, returns the result.

    Stopping iteration early (``close()``, or a napari worker's ``quit()``)
    cancels the run between two steps. Use ``result = yield from
    iter_cluster_image(...)`` inside another generator, or
    :func:`cluster_image` with ``progress=`` for a callback.
    """
    yield Progress("loading image", 0.0)
    image = load_array(image, max_bytes=max_bytes)
    params = validate_params(
        image.ndim,
        n_clusters=n_clusters,
        method=method,
        linkage=linkage,
        channel_axis=channel_axis,
        rgb=rgb,
        time_axis=time_axis,
        normalize=normalize,
        percentiles=percentiles,
        smoothing=smoothing,
        fit_stride=fit_stride,
        n_init=n_init,
        max_units=max_units,
        random_state=random_state,
    )
    rng = np.random.default_rng(params.random_state)
    yield Progress("preparing pixels" + (" (smoothing)" if params.smoothing else ""), 0.05)
    pix = pixel_data(
        image,
        channel_axis=params.channel_axis,
        rgb=params.rgb,
        time_axis=params.time_axis,
        smoothing=params.smoothing,
        mask=mask,
    )
    normalizer = fit_normalizer(pix.values, params.normalize, params.percentiles)
    yield Progress("finding distinct values", 0.15)
    red = reduce_pixels(pix.values, normalizer, raw_values=pix.raw_values)
    if params.fit_stride == 1:
        fit_w = red.weights
    else:
        fit_sel = downsample_mask(pix.shape, params.fit_stride, pix.time_axis)
        if pix.valid is not None:
            fit_sel = fit_sel[pix.valid]
        fit_w = np.bincount(red.inverse[fit_sel], minlength=red.n_points).astype(np.float64)
    k = params.n_clusters
    if params.method == "kmeans":
        n_fit = int(np.count_nonzero(fit_w))
        if n_fit < k:
            raise _too_many_clusters(k, n_fit, pix.n_channels, red.exact)
        lab, raw, counts, wcss, point_map = yield from _kmeans(red, fit_w, pix, normalizer, params, rng)
        yield Progress("ordering clusters", 0.95)
        labels, centers, counts = _finish(
            lab, k, raw, counts, wcss, params, normalizer, pix.shape, pix.valid, point_map=point_map
        )
        result = ClusterResult(labels, centers, counts, wcss, params)
    else:
        state = yield from _hierarchical(red, fit_w, pix, normalizer, params, rng)
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
        arrays (dask) are loaded after a memory check. NaN / infinite pixels
        are not clustered (label 0).
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
        Largest number of units (groups of similar pixels) the hierarchical
        methods build their tree on.
    random_state : int or None, default 0
        Seed for K-means++ seeding and bisecting; the same seed gives the same
        labels. None draws a fresh seed.
    max_bytes : int, optional
        Memory limit for loading a lazy image (default: available memory).

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
    **Label order.** Clusters are numbered from the darkest (label 1) to the
    brightest (label k): by the cluster's mean value for one channel, by
    luminance (Rec. 709 weights) for RGB, and by the mean of the normalised
    channel means otherwise. So the same image gets the same colours on
    every run and for every method.

    **How it scales.** Pixels are first reduced to weighted points: the
    distinct values of integer images (exact), or the cells of a fine grid in
    feature space for floats and smoothed images. One-channel K-means is then
    solved to its global optimum by dynamic programming on those points;
    multichannel K-means runs weighted Lloyd iterations on them, followed (on
    the grid) by full-resolution refinement passes. The hierarchical methods
    merge the points further into at most ``max_units`` units on a coarser
    grid and build the tree on the units, weighted by pixel counts: pixels
    with nearly equal features (same unit) always share a cluster.

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
    gen = iter_cluster_image(image, n_clusters, method, **options)
    try:
        while True:
            step = next(gen)
            if progress is not None:
                progress(step.stage, step.fraction)
    except StopIteration as stop:
        return stop.value
