"""Spatially connected hierarchical clustering: superpixels, their adjacency, a constrained tree.

For ``connected=True`` two clusters may only merge when they touch, so every
cluster of every cut is a contiguous region. Ward's tree on images of at most
:data:`EXACT_MAX_PIXELS` pixels (in at most :data:`EXACT_MAX_COMPONENTS`
separate pieces) is built on the pixels themselves (:func:`exact_ward`): the
same tree as scikit-learn's structured Ward with a pixel-grid connectivity.
Otherwise (and for the other linkages) the units of the hierarchy are
superpixels (SLIC, 2D or 3D, per frame of a time series) instead of colour
cells, and every cluster is made of adjacent superpixels (a contiguous region,
up to SLIC's own connectivity). Large images are over-segmented on a
downsampled copy (at most :data:`MAX_SLIC_PIXELS` pixels per frame) whose
superpixel map is then enlarged to full resolution, so region borders follow
the image at the coarser resolution.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np

from . import _accel
from ._chunks import dense_ranks, frame_slices, group_means
from .hierarchy import roots_after, weighted_linkage

#: Most pixels (in all) for which connected Ward builds its tree on single pixels. The compiled
#: tree takes ~0.015 s at 128², ~0.09 s at 256² (65,536 pixels) and 0.65-0.7 s at 512², where the
#: superpixel tree takes 0.31-0.42 s (benchmarks/bench_hierarchy.py); without numba, the Python
#: heap takes about 1 s at 128² and 5 s at 256², as scikit-learn does.
EXACT_MAX_PIXELS = 2**16
#: Most separate pieces (frames, or regions of a mask) the exact pixel tree is built for: they are
#: joined at the top by unconstrained Ward on a matrix of their pairwise distances (32 MB here).
EXACT_MAX_COMPONENTS = 2048
#: Largest frame (pixels or voxels) SLIC runs on; larger frames are downsampled first.
MAX_SLIC_PIXELS = 2**20
#: Smallest mean superpixel size (pixels): finer ones did not lower the clusters' sum of squares
#: (astronaut, coffee and chelsea photos at 128², k = 2..20: 1,024 and 2,048 superpixels alike)
#: but doubled the time of the tree.
PIXELS_PER_SUPERPIXEL = 16
#: SLIC iterations (scikit-image's default). Measured against scikit-learn's pixel-level structured
#: Ward on the astronaut, coffee and chelsea photos at 128² and 256² (sums of squares of the cuts at
#: k = 2..20, benchmarks/experiments/connected_ward_order.py): 2.1 % above it with 10 iterations,
#: 5.1 % with 5, which halve SLIC's time.
SLIC_ITERATIONS = 10


def _best_phase(mask, factor: int, ndim: int) -> tuple:
    """The offsets (one per axis, 0..factor-1) at which every ``factor``-th pixel of ``mask`` holds
    the most valid pixels (all zeros without a mask): a mask that keeps, say, only odd pixels
    must not leave the downsampled copy empty."""
    if mask is None:
        return (0,) * ndim
    phases = list(itertools.product(range(factor), repeat=ndim))
    kept = [int(np.count_nonzero(mask[tuple(slice(p, None, factor) for p in phase)])) for phase in phases]
    return phases[int(np.argmax(kept))]


def superpixels(
    features: np.ndarray,
    mask: np.ndarray | None,
    *,
    n_segments: int,
    time_axis=None,
    rgb=False,
    transform=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Superpixels of a channels-last feature image, and the pairs of them that touch.

    Returns the label image (0 outside ``mask``, 1..n inside) and an array
    (e, 2) of touching label pairs (never across frames).

    ``features`` has the label image's shape plus a trailing channel axis.
    Frames of a time series are over-segmented separately (no superpixel
    spans two frames; a frame without valid pixels gets none);
    ``n_segments`` is shared among the frames. A 1D image is over-segmented
    as an image of one row.
    ``transform`` (e.g. the normalisation) is applied to each frame, after any
    downsampling, so no full-resolution transformed copy is made. For RGB
    images (``rgb=True``, features in [0, 1]) SLIC works in CIELAB, whose
    superpixels follow colour edges better (measured: 3-7 % lower sum of
    squares of the final clusters than in RGB).
    """
    from skimage.segmentation import slic

    shape = features.shape[:-1]
    labels = np.zeros(shape, np.int32)
    edges = []
    frames = list(frame_slices(shape, time_axis))
    per_frame = max(2, n_segments // len(frames))
    offset = 0
    for index in frames:
        feat = features[index]
        fmask = None if mask is None else mask[index]
        if fmask is not None and not fmask.any():
            continue  # an empty frame: no superpixel, no edge
        if feat.ndim == 2:  # one spatial axis: SLIC works on it as an image of one row
            feat = feat[np.newaxis]
            fmask = None if fmask is None else fmask[np.newaxis]
        fshape = feat.shape[:-1]
        factor = 1
        while np.prod([max(1, s // factor) for s in fshape]) > MAX_SLIC_PIXELS:
            factor *= 2
        if factor > 1:  # every factor-th pixel, at the phase that keeps most valid pixels
            sample = tuple(slice(p, None, factor) for p in _best_phase(fmask, factor, len(fshape)))
            small = feat[sample]
            smask = None if fmask is None else fmask[sample]
        else:
            small, smask = feat, fmask
        if transform is not None:
            small = transform(small)
        sp = slic(
            small,
            n_segments=per_frame,
            slic_zero=True,
            max_num_iter=SLIC_ITERATIONS,
            convert2lab=rgb,
            channel_axis=-1,
            start_label=1,
            mask=smask,
            enforce_connectivity=True,
        ).astype(np.int32)
        present = np.unique(sp[sp > 0])
        relabel = np.zeros(int(sp.max()) + 1, np.int32)
        relabel[present] = np.arange(offset + 1, offset + 1 + present.size, dtype=np.int32)
        sp = relabel[sp]
        offset += present.size
        # Touching superpixels, found at SLIC's resolution: enlarging by repetition keeps every
        # pair of neighbours, so these pairs all touch at full resolution too.
        edges.append(adjacency(sp))
        if factor > 1:
            for axis in range(len(fshape)):
                sp = np.repeat(sp, factor, axis=axis)
            short = [(0, max(0, s - sp.shape[a])) for a, s in enumerate(fshape)]  # a phase > 0
            if any(after for _, after in short):
                sp = np.pad(sp, short, mode="edge")
            sp = sp[tuple(slice(0, s) for s in fshape)]
            if fmask is not None:
                holes = (sp == 0) & fmask  # valid pixels whose low-resolution pixel was masked
                if holes.any():
                    from scipy import ndimage

                    nearest = ndimage.distance_transform_edt(
                        sp == 0, return_distances=False, return_indices=True
                    )
                    sp = sp[tuple(nearest)]
                sp[~fmask] = 0
        labels[index] = sp.reshape(labels[index].shape)
    return labels, np.concatenate(edges) if edges else np.empty((0, 2), np.int64)


def _touching(a: np.ndarray, time_axis=None):
    """For every axis but ``time_axis``: the entries of ``a`` and their next neighbours along it,
    as two flat arrays."""
    for axis in range(a.ndim):
        if axis != time_axis:
            b = np.moveaxis(a, axis, 0)
            yield b[:-1].ravel(), b[1:].ravel()


def adjacency(labels: np.ndarray, time_axis=None) -> np.ndarray:
    """Pairs (a, b), a < b, of labels > 0 that touch along an axis (not across frames)."""
    pairs = []
    n = int(labels.max()) + 1
    for lo, hi in _touching(labels, time_axis):
        keep = (lo != hi) & (lo > 0) & (hi > 0)
        lo, hi = lo[keep].astype(np.int64), hi[keep].astype(np.int64)
        pairs.append(np.unique(np.minimum(lo, hi) * n + np.maximum(lo, hi)))
    codes = np.unique(np.concatenate(pairs)) if pairs else np.empty(0, np.int64)
    return np.stack([codes // n, codes % n], axis=1)


def pixel_edges(shape, valid=None, time_axis=None) -> np.ndarray:
    """Pairs (a, b), a < b, of valid pixels that touch along an axis (not along ``time_axis``).

    Pixels are numbered in C order among the valid ones (``valid``: a flat
    boolean mask of ``prod(shape)`` entries, None for all).
    """
    n = int(np.prod(shape))
    if valid is None:
        index = np.arange(n, dtype=np.int64).reshape(shape)
    else:
        index = np.full(n, -1, np.int64)
        index[valid] = np.arange(int(np.count_nonzero(valid)))
        index = index.reshape(shape)
    pairs = []
    for lo, hi in _touching(index, time_axis):
        keep = (lo >= 0) & (hi >= 0)
        pairs.append(np.stack([lo[keep], hi[keep]], axis=1))
    return np.concatenate(pairs) if pairs else np.empty((0, 2), np.int64)


def n_components(shape, valid=None, time_axis=None) -> int:
    """Number of separate pieces of the pixel grid: 4- (6-) connected regions of the valid pixels,
    never across frames."""
    if valid is None and time_axis is None:
        return 1
    if valid is None:
        return int(shape[time_axis])
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(len(shape), 1)
    if time_axis is not None:  # no neighbours along time
        structure[tuple(0 if a == time_axis else 1 for a in range(len(shape)))] = False
        structure[tuple(2 if a == time_axis else 1 for a in range(len(shape)))] = False
    return int(ndimage.label(np.asarray(valid).reshape(shape), structure)[1])


def exact_ward(points, weights, edges):
    """Generator: connectivity-constrained Ward, merging the cheapest touching pair first.

    Yields the fraction done (the Python loop only); returns the scipy-format
    linkage matrix (m - 1, 4). This is the order of scikit-learn's
    ``ward_tree`` with a connectivity (the same arithmetic, ties broken by
    scipy ids the same way), so on single pixels with a grid connectivity it
    gives scikit-learn's tree. Clusters left apart by the constraint
    (separate components) are joined last, by unconstrained Ward.

    With numba the loop is compiled (:func:`._accel.ward_greedy`); without, a
    heap in Python (about scikit-learn's speed) makes the same merges.
    """
    points = np.ascontiguousarray(points, np.float64)
    weights = np.ascontiguousarray(weights, np.float64)
    edges = np.ascontiguousarray(np.asarray(edges, np.int64).reshape(-1, 2))
    if _accel.enabled():
        Z = _accel.ward_greedy(points, weights, edges)
    else:
        Z = yield from _exact_ward_python(points, weights, edges)
    return _join_forest(Z, points, weights)


def _exact_ward_python(points, weights, edges, report_every=4096):
    """Generator: the merges of :func:`._kernels.ward_greedy`, with a heap of all touching pairs
    (as scikit-learn's ``ward_tree``); yields the fraction done every ``report_every`` merges."""
    m, nf = points.shape
    total = 2 * m - 1
    weight = np.empty(total)
    sums = np.empty((total, nf))
    centroid = np.empty((total, nf))
    weight[:m] = weights
    sums[:m] = weights[:, None] * points
    centroid[:m] = sums[:m] / weights[:, None]
    size = np.ones(total, np.int64)
    alive = np.zeros(total, bool)
    alive[:m] = True
    neighbours = [set() for _ in range(m)]
    for a, b in edges.tolist():
        if a != b:
            neighbours[a].add(b)
            neighbours[b].add(a)

    def costs(k, others):
        diff = centroid[others] - centroid[k]
        return (diff * diff).sum(axis=1) * (weight[k] * weight[others] / (weight[k] + weight[others]))

    a, b = _unique_pairs(edges[:, 0], edges[:, 1], max(m, 1))
    heap = list(zip(costs(b, a).tolist(), b.tolist(), a.tolist())) if a.size else []  # (cost, hi, lo)
    heapq.heapify(heap)
    rows = []
    top = 0.0
    while heap:
        cost, hi, lo = heapq.heappop(heap)
        if not (alive[hi] and alive[lo]):
            continue  # a pair of a cluster that has merged since
        k = m + len(rows)
        alive[hi] = alive[lo] = False
        alive[k] = True
        weight[k] = weight[hi] + weight[lo]
        sums[k] = sums[hi] + sums[lo]
        centroid[k] = sums[k] / weight[k]
        size[k] = size[hi] + size[lo]
        top = max(top, float(np.sqrt(2.0 * cost)))
        rows.append((lo, hi, top, size[k]))
        near = (neighbours[hi] | neighbours[lo]) - {hi, lo}
        neighbours[hi] = neighbours[lo] = None
        neighbours.append(near)
        for x in near:
            neighbours[x].discard(hi)
            neighbours[x].discard(lo)
            neighbours[x].add(k)
        if near:
            others = np.fromiter(near, np.int64, len(near))
            for c, x in zip(costs(k, others).tolist(), others.tolist()):
                heapq.heappush(heap, (c, k, x))
        if len(rows) % report_every == 0:
            yield len(rows) / max(m - 1, 1)
    return np.array(rows, np.float64).reshape(-1, 4)


def _join_forest(Z, points, weights):
    """Complete a forest of merges (scipy format, ``len(Z) < m - 1`` when the constraint left
    several roots) with unconstrained Ward merges of its roots."""
    m = points.shape[0]
    if Z.shape[0] >= m - 1:
        return Z
    roots, root_of_unit = dense_ranks(roots_after(Z, m, Z.shape[0]), m + Z.shape[0])
    centroid, weight = group_means(points, weights, root_of_unit, roots.size)
    return _join_roots(Z, m, roots, centroid, weight, np.bincount(root_of_unit))


def _join_roots(Z, m, roots, centroid, weight, sizes):
    """Append to the merges ``Z`` of ``m`` units unconstrained Ward merges of the clusters
    ``roots`` (scipy ids) with these centroids, weights and unit counts; heights stay at least
    the last one."""
    n_done = Z.shape[0]
    roots = [int(r) for r in roots]  # ids of the roots, then of their merges
    sizes = [int(x) for x in sizes]
    top = Z[-1, 2] if n_done else 0.0
    tail = []
    for i, j, h, _ in weighted_linkage(centroid, weight, "ward"):
        i, j = int(i), int(j)
        sizes.append(sizes[i] + sizes[j])
        tail.append((min(roots[i], roots[j]), max(roots[i], roots[j]), max(top, h), sizes[-1]))
        roots.append(m + n_done + len(tail) - 1)
    return np.concatenate([Z.reshape(-1, 4), np.array(tail, np.float64).reshape(-1, 4)])


def _pair_distance(method, ca, wa, ma, cb, wb, mb, points, weights):
    """Linkage distance between clusters a and b (centroid c, weight w, member units m)."""
    if method == "ward":
        d2 = float(((ca - cb) ** 2).sum())
        return np.sqrt(2 * wa * wb / (wa + wb) * d2)
    pa, pb = points[ma], points[mb]
    d = np.sqrt(np.maximum(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1), 0))
    if method == "single":
        return float(d.min())
    if method == "complete":
        return float(d.max())
    return float(weights[ma] @ d @ weights[mb] / (wa * wb))  # average


def connected_linkage(points, weights, edges, method="ward", *, random_state=0):
    """Agglomerative clustering of weighted units where only adjacent clusters merge.

    Parameters
    ----------
    points : ndarray, shape (m, n_features)
        Unit means.
    weights : ndarray, shape (m,)
        Unit pixel counts.
    edges : ndarray, shape (e, 2)
        Adjacent unit pairs (indices into ``points``).
    method : {"ward", "complete", "average", "single"}
    random_state : int or None, default 0
        Seed of the order in which Ward's rounds break ties (None: a fresh seed).

    Returns
    -------
    Z : ndarray, shape (m - 1, 4)
        scipy-format linkage matrix, merges in order. Under a connectivity
        constraint no linkage is guaranteed monotone (a merge can make two
        clusters adjacent that are closer than the last merge), so heights
        are made non-decreasing. Units in separate connected components are
        joined last, by the same criterion without the constraint.

    Notes
    -----
    Ward merges all *mutual nearest neighbours* among adjacent clusters at
    once, round after round, in vectorised numpy (:func:`_ward_mutual_nearest`);
    the other linkages merge the closest adjacent pair one at a time from a
    heap (:func:`_greedy_linkage`). Without a constraint both give the exact
    hierarchy (Ward is reducible, so every mutual pair is merged by the greedy
    order too). With one, a merge may expose a closer pair that the greedy order
    would have taken first, so the two orders can differ: on a noisy grid of
    units the sums of squares of the cuts agree within 1 % on average (tested).
    Either order is a valid constrained Ward tree, and neither is better: on
    single pixels of 128² photos the cuts at one k differed from the greedy
    order's (= scikit-learn's) by -13 % to +17 %. The rounds are 5-10x faster.
    """
    if method == "ward":
        return _ward_mutual_nearest(points, weights, edges, random_state)
    return _greedy_linkage(points, weights, edges, method)


def _unique_pairs(a, b, n):
    """Sorted unique pairs (min, max) of the edges (a, b) between n nodes, self-loops dropped."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    codes = (lo * n + hi)[lo != hi]
    codes.sort()
    if codes.size:
        codes = codes[np.concatenate(([True], codes[1:] != codes[:-1]))]
    return codes // n, codes % n


def _ward_mutual_nearest(points, weights, edges, random_state=0):
    """Connectivity-constrained Ward by rounds of mutual-nearest-neighbour merges.

    In every round each active cluster's nearest adjacent cluster is found
    (ties broken in a seeded random order of the edges, so a cluster is in at
    most one pair and runs of equal pixels do not merge one pair per round),
    and all pairs that are each other's nearest are merged at once. The merges are
    then ordered by height, each at least as high as the merges below it.
    """
    points = np.asarray(points, np.float64)
    weights = np.asarray(weights, np.float64)
    m = points.shape[0]
    centroid, weight = points.copy(), weights.copy()
    ident = np.arange(m)  # of each active cluster: units 0..m-1, the t-th merge m + t
    level = np.zeros(max(2 * m - 1, 1))  # height of each merge, at least its parts' heights
    size = np.ones(max(2 * m - 1, 1), np.int64)
    children = np.empty((max(m - 1, 0), 2), np.int64)
    n_done = 0
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    a, b = _unique_pairs(edges[:, 0], edges[:, 1], max(m, 1))
    shuffle = np.random.default_rng(random_state)  # ties broken at random (seeded), not along chains
    while a.size:
        n, n_edges = centroid.shape[0], a.size
        order = shuffle.permutation(n_edges)
        a, b = a[order], b[order]
        wa, wb = weight[a], weight[b]
        diff = centroid[a] - centroid[b]
        cost = np.einsum("ij,ij->i", diff, diff) * (wa * wb / (wa + wb))  # half Ward height squared
        # every cluster's nearest neighbour: its edge of lowest rank by (cost, edge number)
        rank = np.empty(n_edges, np.int64)
        rank[np.argsort(cost, kind="stable")] = np.arange(n_edges)
        nearest = np.full(n, n_edges)
        np.minimum.at(nearest, a, rank)
        np.minimum.at(nearest, b, rank)
        chosen = np.flatnonzero((nearest[a] == rank) & (nearest[b] == rank))
        pa, pb = a[chosen], b[chosen]
        new = m + n_done + np.arange(pa.size)
        children[new - m] = np.stack([ident[pa], ident[pb]], axis=1)
        level[new] = np.maximum(np.sqrt(2 * cost[chosen]), np.maximum(level[ident[pa]], level[ident[pb]]))
        size[new] = size[ident[pa]] + size[ident[pb]]
        n_done += pa.size
        # the merged cluster takes a's slot; b's slot is dropped
        wa, wb = weight[pa], weight[pb]
        centroid[pa] = (wa[:, None] * centroid[pa] + wb[:, None] * centroid[pb]) / (wa + wb)[:, None]
        weight[pa] = wa + wb
        ident[pa] = new
        alive = np.ones(n, bool)
        alive[pb] = False
        slot = np.arange(n)
        slot[pb] = pa
        slot = (np.cumsum(alive) - 1)[slot]
        centroid, weight, ident = centroid[alive], weight[alive], ident[alive]
        a, b = _unique_pairs(slot[a], slot[b], centroid.shape[0])
    # all merges by height; a merge is never lower than its parts, so parts come first
    order = np.argsort(level[m : m + n_done], kind="stable")
    scipy_id = np.arange(m + n_done)
    scipy_id[m + order] = m + np.arange(n_done)
    pairs = np.sort(scipy_id[children[order]], axis=1)
    Z = np.column_stack([pairs, level[m + order], size[m + order]]).astype(np.float64)
    if ident.size > 1:  # join what the constraint left apart (separate components), unconstrained
        Z = _join_roots(Z, m, scipy_id[ident], centroid, weight, size[ident])
    return Z.reshape(-1, 4)


def _greedy_linkage(points, weights, edges, method):
    """Constrained agglomeration that always merges the closest adjacent pair (a heap)."""
    points = np.asarray(points, np.float64)
    weights = np.asarray(weights, np.float64)
    m = points.shape[0]
    centroid = {i: points[i].copy() for i in range(m)}
    weight = {i: float(weights[i]) for i in range(m)}
    members = {i: np.array([i]) for i in range(m)}
    neighbours = {i: set() for i in range(m)}
    for a, b in edges:
        if a != b:
            neighbours[int(a)].add(int(b))
            neighbours[int(b)].add(int(a))

    def dist(a, b):
        return _pair_distance(
            method, centroid[a], weight[a], members[a], centroid[b], weight[b], members[b], points, weights
        )

    pairs = np.array([(a, b) for a in range(m) for b in neighbours[a] if a < b], np.intp).reshape(-1, 2)
    if method == "ward":  # all at once: Ward needs only the unit means and weights
        wa, wb = weights[pairs[:, 0]], weights[pairs[:, 1]]
        d2 = ((points[pairs[:, 0]] - points[pairs[:, 1]]) ** 2).sum(axis=1)
        first = np.sqrt(2 * wa * wb / (wa + wb) * d2).tolist()
    else:
        first = [dist(a, b) for a, b in pairs.tolist()]
    heap = list(zip(first, pairs[:, 0].tolist(), pairs[:, 1].tolist()))
    heapq.heapify(heap)
    Z = []

    def merge(a, b, d):
        """Join clusters a and b at height d (kept non-decreasing); returns the new cluster id."""
        new = m + len(Z)
        height = max(Z[-1][2], d) if Z else d
        wa, wb = weight.pop(a), weight.pop(b)
        ca, cb = centroid.pop(a), centroid.pop(b)
        weight[new] = wa + wb
        centroid[new] = (wa * ca + wb * cb) / (wa + wb)
        members[new] = np.concatenate([members.pop(a), members.pop(b)])
        Z.append((min(a, b), max(a, b), height, members[new].size))
        return new

    while heap:
        d, a, b = heapq.heappop(heap)
        if a not in centroid or b not in centroid:
            continue  # a stale entry: one of the two has merged since
        new = merge(a, b, d)
        near = (neighbours.pop(a) | neighbours.pop(b)) - {a, b}
        neighbours[new] = near
        for n in near:
            neighbours[n].discard(a)
            neighbours[n].discard(b)
            neighbours[n].add(new)
        if near:
            near = list(near)
            if method == "ward":  # all neighbours at once: Ward needs only centroids and weights
                cn = np.array([centroid[n] for n in near])
                wn = np.array([weight[n] for n in near])
                w_new = weight[new]
                dists = np.sqrt(2 * wn * w_new / (wn + w_new) * ((cn - centroid[new]) ** 2).sum(axis=1))
            else:
                dists = [dist(n, new) for n in near]
            for n, d_n in zip(near, dists):
                heapq.heappush(heap, (float(d_n), n, new))
    # join what the constraint left apart (separate components), nearest first
    roots = sorted(centroid)
    while len(roots) > 1:
        d, a, b = min((dist(a, b), a, b) for i, a in enumerate(roots) for b in roots[i + 1 :])
        merge(a, b, d)
        roots = sorted(centroid)
    return np.array(Z, dtype=np.float64).reshape(-1, 4)
