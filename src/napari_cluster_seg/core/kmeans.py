"""K-means on weighted points: the exact 1D optimum and weighted Lloyd iterations.

* :func:`kmeans_1d_optimal` solves one-dimensional K-means *exactly* by
  dynamic programming over the sorted points (the optimum that multi-level
  Otsu thresholding also finds), in ``O(k m log m)`` for ``m`` points, with
  the divide-and-conquer speed-up vectorised one recursion level at a time.
* :func:`weighted_kmeans` runs k-means++ seeding and Lloyd iterations on
  weighted points; its progress is a generator so a caller can stop between
  iterations.
* :func:`assign_nearest` labels many feature rows in bounded-memory chunks.

With numba installed (:mod:`._accel`), nearest centres and each Lloyd
iteration (assignment, new sums and the cost in one pass) run as compiled loops.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _accel
from ._chunks import group_sums

#: Rows per chunk when assigning pixels to centres (bounded memory) ...
CHUNK_ROWS = 2**20
#: ... and at most this many distances per chunk (16 MB in float64, whatever k).
CHUNK_DISTANCES = 2**21


def _prefix_sums(x, w):
    mean = np.average(x, weights=w)
    xc = x - mean
    W = np.concatenate([[0.0], np.cumsum(w)])
    S = np.concatenate([[0.0], np.cumsum(w * xc)])
    Q = np.concatenate([[0.0], np.cumsum(w * xc * xc)])
    return W, S, Q


def _segment_cost(W, S, Q, j, i):
    """Weighted sum of squares of sorted points ``j..i`` (inclusive), vectorised."""
    dw = W[i + 1] - W[j]
    ds = S[i + 1] - S[j]
    cost = (Q[i + 1] - Q[j]) - ds * ds / dw
    return np.maximum(cost, 0.0)


def kmeans_1d_optimal(x, w, k):
    """Globally optimal weighted K-means of 1D points.

    Parameters
    ----------
    x : ndarray, shape (m,)
        Point values, strictly increasing (distinct, sorted).
    w : ndarray, shape (m,)
        Positive weights.
    k : int
        Number of clusters, ``1 <= k <= m``.

    Returns
    -------
    labels : ndarray of intp, shape (m,)
        Cluster of each point, 0..k-1 in increasing order of value.
    wcss : float
        The minimal weighted within-cluster sum of squares.

    Notes
    -----
    ``D[c][i]`` is the least cost of points ``0..i`` in ``c + 1`` clusters,
    ``D[c][i] = min_j D[c-1][j-1] + cost(j, i)``. The smallest optimal ``j``
    never decreases with ``i`` (the 1D cost satisfies the quadrangle
    inequality), so each layer is solved by divide and conquer; every
    recursion level is evaluated as one vectorised numpy pass.
    """
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    m = x.size
    if not 1 <= k <= m:
        raise ValueError(f"k={k} must be between 1 and the number of points ({m}).")
    W, S, Q = _prefix_sums(x, w)
    idx = np.arange(m)
    D = _segment_cost(W, S, Q, np.zeros(m, np.intp), idx)
    back = np.zeros((k, m), np.intp)
    for c in range(1, k):
        if _accel.enabled():  # the same layer, compiled (the same results bit for bit)
            D, back[c] = _accel.kmeans_1d_layer(D, W, S, Q, c)
            continue
        D_new = np.full(m, np.inf)
        arg = np.zeros(m, np.intp)
        # Tasks: solve i in [ilo, ihi] knowing the optimal j lies in [jlo, jhi].
        ilo = np.array([c])
        ihi = np.array([m - 1])
        jlo = np.array([c])
        jhi = np.array([m - 1])
        while ilo.size:
            mid = (ilo + ihi) // 2
            jend = np.minimum(mid, jhi)
            lengths = jend - jlo + 1
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            task = np.repeat(np.arange(mid.size), lengths)
            j = jlo[task] + (np.arange(task.size) - offsets[task])
            i = mid[task]
            cost = D[j - 1] + _segment_cost(W, S, Q, j, i)
            best_cost = np.minimum.reduceat(cost, offsets)
            key = np.where(cost == best_cost[task], j, m)
            best_j = np.minimum.reduceat(key, offsets)
            D_new[mid] = best_cost
            arg[mid] = best_j
            left = ilo <= mid - 1
            right = mid + 1 <= ihi
            ilo, ihi, jlo, jhi = (
                np.concatenate([ilo[left], mid[right] + 1]),
                np.concatenate([mid[left] - 1, ihi[right]]),
                np.concatenate([jlo[left], best_j[right]]),
                np.concatenate([best_j[left], jhi[right]]),
            )
        D = D_new
        back[c] = arg
    labels = np.empty(m, np.intp)
    end = m - 1
    for c in range(k - 1, -1, -1):
        start = back[c][end] if c > 0 else 0
        labels[start : end + 1] = c
        end = start - 1
    return labels, float(D[m - 1])


def _sq_norms(a):
    return np.einsum("ij,ij->i", a, a)


def assign_nearest(features, centers, *, chunk=CHUNK_ROWS, return_distances=False):
    """Index of the nearest centre for every row of ``features``, chunk by chunk.

    Ties go to the lower centre index. Works in the features' float precision (the squares summed
    in float64). Distances are the sums of the squared differences, as in the compiled kernel (the
    same labels), not ``|f|² - 2 f·c + |c|²``: that expansion cancels at an offset and tied two
    values one ulp apart.
    A chunk holds at most ``chunk`` rows and :data:`CHUNK_DISTANCES` distances.
    """
    n = features.shape[0]
    dtype = np.float64 if features.dtype == np.float64 else np.float32
    c = np.asarray(centers, dtype)
    chunk = max(1, min(chunk, CHUNK_DISTANCES // max(1, c.shape[0])))
    labels = np.empty(n, np.intp)
    d2 = np.empty(n, dtype) if return_distances else None
    compiled = _accel.enabled()
    for start in range(0, n, chunk):
        f = np.asarray(features[start : start + chunk], dtype)
        if compiled:
            stop = start + f.shape[0]
            _accel.nearest(f, c, labels[start:stop], None if d2 is None else d2[start:stop])
            continue
        d = np.zeros((f.shape[0], c.shape[0]))
        for j in range(f.shape[1]):  # feature by feature, in the kernel's order of operations
            t = f[:, j, None] - c[:, j]
            t *= t
            d += t
        lab = np.argmin(d, axis=1)
        labels[start : start + chunk] = lab
        if return_distances:
            d2[start : start + chunk] = d[np.arange(lab.size), lab]
    if return_distances:
        return labels, d2
    return labels


def scaled(gen, start: float, stop: float):
    """Generator: pass on ``gen``'s fractions (0..1) mapped to ``[start, stop]``; returns its value."""
    try:
        while True:
            yield start + (stop - start) * min(1.0, float(next(gen)))
    except StopIteration as done:
        return done.value


def nearest_center(features, centers):
    """Nearest-centre labels; in 1D with centres sorted, by thresholds (ties to the lower centre)."""
    if centers.shape[1] == 1 and np.all(np.diff(centers[:, 0]) > 0):
        mids = (centers[1:, 0] + centers[:-1, 0]) / 2
        return np.searchsorted(mids.astype(features.dtype), features[:, 0], side="left")
    return assign_nearest(features, centers)


def _lloyd_step(points, weights, centers):
    """Assign the points to their nearest centres and move every centre to its points' weighted
    mean: (labels, new centres, which centres kept points; empty ones keep their old place)."""
    if _accel.enabled():
        labels, sums, wsum, _ = _accel.lloyd_pass(points, weights, centers)
        new = centers.copy()
        nonempty = wsum > 0
        new[nonempty] = sums[nonempty] / wsum[nonempty, None]
        return labels, new, nonempty
    labels = assign_nearest(points, centers)
    new, nonempty = _update_centers(points, weights, labels, centers)
    return labels, new, nonempty


class KMeansRun(NamedTuple):
    """What :func:`weighted_kmeans` returns: the centres, every point's nearest centre, the weighted
    sum of squared distances to those centres, and ``sums``: the weight (k,) and weighted sums
    (k, f) of every centre's points, from the same final pass (None without the compiled kernels,
    or when a centre was moved after it): the clusters' statistics need no further pass."""

    centers: np.ndarray
    labels: np.ndarray
    wcss: float
    sums: tuple | None = None


def _assign_with_cost(points, weights, centers):
    """Nearest-centre labels, the weighted sum of squared distances to those centres and (compiled
    only, else None) the weight and weighted sums of every centre's points."""
    if _accel.enabled():
        labels, sums, wsum, cost = _accel.lloyd_pass(points, weights, centers)
        return labels, cost, (wsum, sums)
    labels, d2 = assign_nearest(points, centers, return_distances=True)
    return labels, float(np.dot(weights, d2)), None


def _update_centers(points, weights, labels, centers):
    wsum, new = group_sums(points, weights, labels, centers.shape[0])
    nonempty = wsum > 0
    new[nonempty] /= wsum[nonempty, None]
    return new, nonempty


def fill_empty_clusters(points, weights, centers, labels, wcss):
    """Move the centres that no point is nearest to onto the points worst served, until every
    centre has points (each moved centre sits on a point no other centre does, so at most k
    rounds) or no point lies off the centres (fewer distinct points than centres: left to the
    caller). Returns (centers, labels, wcss)."""
    k = centers.shape[0]
    for _ in range(k):
        empty = np.flatnonzero(np.bincount(labels, minlength=k) == 0)
        if empty.size == 0:
            break
        _, d2 = assign_nearest(points, centers, return_distances=True)
        far = np.argsort(-(weights * d2), kind="stable")[: empty.size]
        far = far[d2[far] > 0]
        if far.size == 0:
            break
        centers = centers.copy()
        centers[empty[: far.size]] = points[far]
        labels, wcss, _ = _assign_with_cost(points, weights, centers)
    return centers, labels, wcss


def weighted_kmeans(
    points, weights, k, *, rng, n_init=1, max_iter=300, tol=1e-5, init=None, sort_centers=False
):
    """Weighted K-means (k-means++ seeding, Lloyd iterations); a generator.

    Yields the fraction done (0..1) after every iteration, so a caller can
    stop early, and returns a :class:`KMeansRun` ``(centers, labels, wcss, sums)`` through
    ``StopIteration.value`` (use ``yield from``). Of ``n_init`` seedings the
    one with the lowest weighted within-cluster sum of squares wins; ``init``
    (k, n_features) replaces the seeding with given centres.
    ``tol`` is relative to the points' total variance. With ``sort_centers``
    the centres are sorted (lexicographically) before the final assignment,
    so a point exactly halfway between two centres goes to the first in
    that order, as :func:`nearest_center` on the returned centres puts it.
    """
    from sklearn.cluster import kmeans_plusplus  # heavy: loaded on first use (LAZY_IMPORTS)

    points = np.asarray(points, np.float64)
    weights = np.asarray(weights, np.float64)
    threshold = 0.0  # one iteration (a refinement pass) never tests convergence: no variance needed
    if max_iter > 1:
        total = weights.sum()
        mean = weights @ points / total  # not np.average(axis=0): slow for few columns
        variance = float(weights @ _sq_norms(points - mean)) / total
        threshold = tol * max(variance, np.finfo(float).tiny)
    best = None
    runs = 1 if init is not None else n_init
    for run in range(runs):
        if init is not None:
            centers = np.array(init, np.float64)
        else:
            seed = int(rng.integers(2**31 - 1))
            centers, _ = kmeans_plusplus(points, k, sample_weight=weights, random_state=seed)
        for it in range(max_iter):
            labels, new, nonempty = _lloyd_step(points, weights, centers)
            if not nonempty.all():
                # Re-seed empty clusters on the points that are worst served.
                _, d2 = assign_nearest(points, centers, return_distances=True)
                far = np.argsort(-(weights * d2), kind="stable")[: int((~nonempty).sum())]
                new[~nonempty] = points[far]
            shift = float(((new - centers) ** 2).sum())
            centers = new
            yield (run + min(1.0, (it + 1) / min(max_iter, 30))) / runs
            if shift <= threshold:
                break
        if sort_centers:
            centers = centers[np.lexsort(centers.T[::-1])]
        labels, wcss, sums = _assign_with_cost(points, weights, centers)
        if sums is None or not np.all(sums[0] > 0):  # (every centre with weight has points)
            centers, labels, wcss = fill_empty_clusters(points, weights, centers, labels, wcss)
            sums = None  # a centre may have moved after the pass
        if best is None or wcss < best.wcss:
            best = KMeansRun(centers, labels, wcss, sums)
        yield (run + 1) / runs
    return best
