"""The public entry points: :func:`cluster_image` and :func:`iter_cluster_image`."""

from __future__ import annotations

import importlib

from . import _builds
from ._fit_connected import build_connected_tree
from ._fit_hierarchy import build_units_tree
from ._fit_kmeans import fit_kmeans
from ._prepare import Prepared, prepare
from ._progress import Progress, run_with_progress
from ._result import ClusterResult, clean_result
from .preprocess import scatter_valid


def build_hierarchy(prep: Prepared):
    """Generator: the hierarchy state of a prepared image (either flavour)."""
    return (yield from (build_connected_tree(prep) if prep.params.connected else build_units_tree(prep)))


def iter_cluster_image(image, n_clusters=3, method="kmeans", *, mask=None, max_bytes=None, **options):
    """Generator form of :func:`cluster_image`: yields :class:`Progress`, returns the result.

    Takes the options of :func:`cluster_image` (all but ``progress``). Stopping
    iteration early (``close()``, or a napari worker's ``quit()``) cancels the
    run between two steps. Use ``result = yield from
    iter_cluster_image(...)`` inside another generator, or
    :func:`cluster_image` with ``progress=`` for a callback.
    """
    prep = yield from prepare(
        image, mask=mask, max_bytes=max_bytes, cells=True, n_clusters=n_clusters, method=method, **options
    )
    result = yield from fit_prepared(prep)
    yield Progress("done", 1.0)
    return result


def fit_prepared(prep: Prepared):
    """Generator: the fit (K-means or a hierarchy) of a prepared image; returns the result."""
    params, pix = prep.params, prep.pix
    if params.method == "kmeans":
        fit = yield from fit_kmeans(prep)
        yield Progress("writing labels", 0.97)
        labels = scatter_valid(fit.labels, pix.shape, pix.valid)
        labels, counts = clean_result(labels, fit.counts, params, pix.time_axis)
        result = ClusterResult(
            labels,
            fit.centers,
            counts,
            fit.inertia,
            params,
            fit.model,
            feature_centers=fit.feature_centers,
            feature_names=pix.names,
        )
    else:
        state = yield from build_hierarchy(prep)
        result = state.relabel(params)
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
        Seed of every randomised step (K-means++ seeding, bisecting, pixel
        samples, the order in which connected Ward breaks ties); the same seed
        gives the same labels. None draws a fresh seed.
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

    for name in LAZY_IMPORTS:
        importlib.import_module(name)
    _builds.warm_up(compile)
