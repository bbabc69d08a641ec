"""Help choose the number of clusters: scores for k = 2..k_max from one preparation of the image."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from threadpoolctl import threadpool_limits

from ._chunks import SquareSums
from ._fit_kmeans import fit_centers, kmeans_coresets
from ._params import check_int
from ._prepare import Prepared, prepare
from ._progress import Progress, as_progress, rescaled, run_with_progress
from ._segment import build_hierarchy
from ._stats import cluster_stats, too_many_clusters
from .sample import PixelSample

#: Pixels drawn (seeded) for the silhouette score.
SILHOUETTE_SAMPLE = 3000


@dataclass
class KScan:
    """Scores of clusterings with k = 2..k_max clusters.

    Attributes
    ----------
    ks : ndarray of int
        The numbers of clusters tried.
    inertia : ndarray
        Within-cluster sum of squares over all clustered pixels (normalised
        feature space) for each k: look for the elbow. With more than four
        features, K-means scores are estimated from the pixel sample.
    silhouette : ndarray
        Mean silhouette coefficient (-1..1, higher is better) on a seeded
        sample of ``sample_size`` pixels.
    calinski_harabasz : ndarray
        Between- over within-cluster dispersion, each per degree of freedom,
        over all pixels (higher is better).
    suggested : int
        The suggested k: the one with the highest silhouette score (the
        smallest such k on ties). NaN scores (a sample holding one cluster
        only) never win; without any score, the smallest k.
    """

    ks: np.ndarray
    inertia: np.ndarray
    silhouette: np.ndarray
    calinski_harabasz: np.ndarray
    suggested: int

    RULE = "highest silhouette score"


#: Distances per block of rows when scoring silhouettes (2 MB in float64: a block stays in cache).
SILHOUETTE_BLOCK = 2**18


def _silhouettes(features: np.ndarray, labelings: list) -> np.ndarray:
    """Mean silhouette coefficient of every labelling of the rows of ``features``: scikit-learn's
    ``silhouette_score`` (Euclidean) up to float rounding, from one pass over the pairwise
    distances (in blocks of rows) shared by all labellings. NaN for a labelling with fewer than
    two clusters, or with as many clusters as rows."""
    x = np.asarray(features, np.float64)
    n = x.shape[0]
    codes, freqs, columns = [], [], 0
    for labels in labelings:
        _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        codes.append(columns + inverse.ravel())
        freqs.append(counts)
        columns += counts.size
    onehot = np.zeros((n, columns))  # distances @ onehot: every row's summed distance to each cluster
    for code in codes:
        onehot[np.arange(n), code] = 1.0
    sq = np.einsum("ij,ij->i", x, x)
    sums = np.empty((n, columns))
    step = max(1, SILHOUETTE_BLOCK // n)
    # one BLAS thread: dozens of small products, each of which would wake BLAS's thread pool (on
    # a busy 2-core machine 0.9 s in all instead of 0.06 s)
    with threadpool_limits(1, user_api="blas"):
        for start in range(0, n, step):
            stop = min(n, start + step)
            d = x[start:stop] @ (-2 * x.T)  # as scikit-learn's euclidean_distances
            d += sq[start:stop, None]
            d += sq
            np.maximum(d, 0, out=d)
            d[np.arange(stop - start), np.arange(start, stop)] = 0.0
            np.sqrt(d, out=d)
            sums[start:stop] = d @ onehot
    scores = []
    for code, counts in zip(codes, freqs):
        if not 2 <= counts.size <= n - 1:
            scores.append(float("nan"))
            continue
        first = code.min()
        cluster = code - first
        dist = sums[:, first : first + counts.size].copy()
        rows = np.arange(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            intra = dist[rows, cluster] / (counts[cluster] - 1)
            dist[rows, cluster] = np.inf
            inter = (dist / counts).min(axis=1)
            sil = (inter - intra) / np.maximum(intra, inter)
        scores.append(float(np.nan_to_num(sil).mean()))  # NaN: a cluster of one, whose score is 0
    return np.asarray(scores)


def iter_scan_n_clusters(
    image,
    k_max=10,
    method="kmeans",
    *,
    k_min=2,
    sample_size=SILHOUETTE_SAMPLE,
    mask=None,
    max_bytes=None,
    random_state=0,
    **options,
):
    """Generator form of :func:`scan_n_clusters`: yields :class:`Progress`, returns a :class:`KScan`."""
    k_min = check_int("k_min", k_min, 2, message="k_min={value!r} must be an integer >= 2.")
    k_max = check_int(
        "k_max",
        k_max,
        k_min + 1,
        message=f"k_max={{value!r}} must be an integer larger than k_min={k_min}, e.g. 10.",
    )
    sample_size = check_int(
        "sample_size",
        sample_size,
        10,
        message="sample_size={value!r} must be an integer >= 10 (pixels for the silhouette).",
    )
    options.pop("n_clusters", None)
    prep = yield from prepare(
        image,
        mask=mask,
        max_bytes=max_bytes,
        n_clusters=k_max,
        method=method,
        random_state=random_state,
        **options,
    )
    sample = prep.rng.integers(0, prep.pix.n_valid, size=min(sample_size, prep.pix.n_valid))
    if prep.params.method == "kmeans":
        candidates = _kmeans_candidates(prep, sample, sample_size)
    else:
        candidates = yield from _tree_candidates(prep, sample)
    return (yield from _score(np.arange(k_min, k_max + 1), candidates, prep.normalizer))


@dataclass
class _Candidates:
    """What every k is scored on: the weighted groups of pixels (raw means, weights, sums of
    squares), the silhouette sample's features, and ``fit(k)``, a generator returning the groups'
    labels and the sample's rows among the groups."""

    raw: np.ndarray
    weights: np.ndarray
    total_sq: SquareSums
    sample_features: np.ndarray
    fit: Callable


def _kmeans_candidates(prep: Prepared, sample: np.ndarray, sample_size: int) -> _Candidates:
    """K-means of every k on the reduced points, from one set of coresets."""
    red, pix, params = prep.red, prep.pix, prep.params
    k_max = params.n_clusters
    sample_features = prep.normalizer(pix.values[sample])
    n_fit = int(np.count_nonzero(prep.fit_w))
    if n_fit < k_max:
        raise too_many_clusters(k_max, n_fit, pix.n_channels, red.exact)
    if isinstance(red, PixelSample):  # many features: the silhouette sample is part of the pixel sample
        sample_points = prep.rng.choice(red.n_points, min(sample_size, red.n_points), replace=False)
        sample_features = prep.points[sample_points]
    else:
        sample_points = red.point_index(pix.values[sample])
    coresets = kmeans_coresets(prep.points, prep.fit_w)  # the same for every k

    def fit(k):
        # a fresh generator per k: each fit is the one cluster_image makes with this random_state
        # on the exact colours (a noisy photo's cluster_image starts from its colour cells instead)
        rng = np.random.default_rng(params.random_state)
        fit_params = replace(params, n_clusters=int(k))
        fit = yield from fit_centers(prep.points, prep.fit_w, fit_params, rng, coresets)
        return fit.labels, sample_points

    return _Candidates(red.raw_points, red.weights, red.total_sq, sample_features, fit)


def _tree_candidates(prep: Prepared, sample: np.ndarray):
    """Generator: one tree, cut at every k; returns :class:`_Candidates`."""
    sample_features = prep.normalizer(prep.pix.values[sample])
    state = yield from rescaled(build_hierarchy(prep), 0.2, 0.3)
    sample_units = state.unit_of_pixel[sample]

    def fit(k):
        yield 0.0
        return state.tree.cut(int(k))[state.unit_to_fit], sample_units

    return _Candidates(state.unit_raw, state.unit_weights, state.total_sq, sample_features, fit)


def _score(ks: np.ndarray, c: _Candidates, normalizer):
    """Generator: inertia, Calinski-Harabasz and silhouette scores of every k; returns the KScan."""
    n = float(c.weights.sum())
    _, _, total, _ = cluster_stats(
        c.raw, c.weights, np.zeros(c.raw.shape[0], np.intp), 1, c.total_sq, normalizer
    )
    inertia, sample_labels, ch = [], [], []
    for i, k in enumerate(ks):
        labels, sample_index = yield from as_progress(
            c.fit(k), f"scoring k = {k}", 0.5 + 0.45 * i / ks.size, 0.45 / ks.size
        )
        _, _, wcss, _ = cluster_stats(c.raw, c.weights, labels, int(k), c.total_sq, normalizer)
        inertia.append(wcss)
        ch.append((total - wcss) / (k - 1) / (wcss / (n - k)) if wcss > 0 and n > k else float("inf"))
        sample_labels.append(labels[sample_index])
    yield Progress("silhouette scores", 0.96)
    silhouette = _silhouettes(c.sample_features, sample_labels)
    suggested = int(ks[np.nanargmax(silhouette)]) if np.isfinite(silhouette).any() else int(ks[0])
    yield Progress("done", 1.0)
    return KScan(ks, np.asarray(inertia), silhouette, np.asarray(ch), suggested)


def scan_n_clusters(image, k_max=10, method="kmeans", *, progress=None, **options) -> KScan:
    """Score clusterings of ``image`` with k = 2..k_max clusters, to help choose k.

    The image is loaded, preprocessed and reduced once (the same options as
    :func:`cluster_image`); then, for K-means, each k is fitted on the
    reduced points (no pass over the pixels), and for the hierarchical
    methods one tree is built and cut at every k.

    Parameters
    ----------
    image : array-like
    k_max : int, default 10
        Largest number of clusters tried.
    method : {"kmeans", "agglomerative", "divisive"}
    progress : callable, optional
        Called as ``progress(stage, fraction)``.
    **options
        ``k_min`` (default 2), ``sample_size`` (pixels for the silhouette,
        default 3000) and the options of :func:`cluster_image` (``mask``,
        ``rgb``, ``channel_axis``, ``normalize``, features, ...; the clean-up
        options are accepted but do not change the scores).

    Returns
    -------
    KScan
        Within-cluster sum of squares, silhouette and Calinski-Harabasz
        scores per k, and the suggested k (highest silhouette).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.repeat(np.array([10, 80, 160, 240], np.uint8), 25).reshape(10, 10)
    >>> scan_n_clusters(img, k_max=3).ks.tolist()
    [2, 3]
    """
    return run_with_progress(iter_scan_n_clusters(image, k_max, method, **options), progress)
