"""Connected hierarchical methods: superpixels (or single pixels for small Ward images) and their tree."""

from __future__ import annotations

import numpy as np

from . import regions
from ._chunks import accumulate_chunks, label_sums, reference, square_sums
from ._fit_hierarchy import HierarchyState, UnitTree
from ._prepare import Prepared
from ._progress import Progress, as_progress
from ._stats import fewer_clusters
from .constrained import connected_linkage, exact_ward
from .hierarchy import LinkageTree, SpanningTreeSplits
from .preprocess import scatter_valid
from .regions import PIXELS_PER_SUPERPIXEL, pixel_edges, superpixels


def build_connected_tree(prep: Prepared):
    """Generator: superpixels, their adjacency and the connectivity-constrained tree (Ward on
    small images: the exact tree on single pixels); returns the :class:`HierarchyState`."""
    pix, params = prep.pix, prep.params
    k = params.n_clusters
    if pix.n_valid < k:
        raise fewer_clusters(k, pix.n_valid, "pixels", " to cluster (valid and in the mask)")
    if (
        params.method == "agglomerative"
        and params.linkage == "ward"
        and pix.n_valid <= regions.EXACT_MAX_PIXELS
        and regions.n_components(pix.shape, pix.valid, pix.time_axis) <= regions.EXACT_MAX_COMPONENTS
    ):
        return (yield from build_pixel_tree(prep))
    yield Progress("superpixels (SLIC)", 0.25)
    unit_of_pixel, edges, n_units = _superpixels(prep)
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
    units = prep.normalizer(unit_raw)
    yield Progress(f"connected {params.method} clustering of {n_units} superpixels", 0.5)
    if params.method == "agglomerative":
        Z = connected_linkage(units, counts, edges, params.linkage, random_state=params.random_state)
        tree = LinkageTree(Z, n_units)
    else:
        tree = SpanningTreeSplits(units, counts, edges)
        for frac in tree.grow(k):
            yield Progress("divisive clustering (spanning-tree splits)", 0.5 + 0.3 * frac)
    yield Progress("labelling", 0.85)
    built = UnitTree(tree, n_units, np.arange(n_units), units, unit_raw, counts, total_sq, unit_of_pixel)
    return HierarchyState.of(prep, built)


def _superpixels(prep: Prepared):
    """SLIC superpixels of the prepared image: the superpixel (0..) of every valid pixel, the pairs
    of adjacent superpixels and their number."""
    pix, normalizer, params = prep.pix, prep.normalizer, prep.params
    image = scatter_valid(pix.values, pix.shape, pix.valid)  # a view where possible
    mask = None if pix.valid is None else pix.valid.reshape(pix.shape)

    def normalise(frame):
        dtype = np.float64 if frame.dtype.itemsize == 8 else np.float32  # 1e39 needs float64
        return normalizer(frame.reshape(-1, frame.shape[-1]), dtype=dtype).reshape(frame.shape)

    sp, edges = superpixels(
        image,
        mask,
        n_segments=min(params.max_units, max(4 * params.n_clusters, pix.n_valid // PIXELS_PER_SUPERPIXEL)),
        time_axis=pix.time_axis,
        rgb=params.rgb and params.normalize == "minmax" and pix.base is None,
        transform=normalise,
    )
    flat = sp.ravel() if pix.valid is None else sp.ravel()[pix.valid]
    n_units = int(sp.max())
    return (flat - 1).astype(np.int16 if n_units < 2**15 else np.int32), edges - 1, n_units


def build_pixel_tree(prep: Prepared):
    """Generator: connected Ward on single pixels (scikit-learn's structured Ward tree)."""
    pix = prep.pix
    n = pix.n_valid
    stage = f"connected Ward clustering of {n} pixels"
    yield Progress(stage, 0.25)
    unit_raw = pix.values.astype(np.float64)
    units = prep.normalizer(unit_raw)
    counts = np.ones(n)
    edges = pixel_edges(pix.shape, pix.valid, pix.time_axis)
    tree = LinkageTree((yield from as_progress(exact_ward(units, counts, edges), stage, 0.25, 0.55)), n)
    yield Progress("labelling", 0.85)
    total_sq = square_sums(unit_raw, reference(unit_raw))
    unit_of_pixel = np.arange(n, dtype=np.int32)
    built = UnitTree(
        tree, n, unit_of_pixel, units, unit_raw, counts, total_sq, unit_of_pixel, pixel_units=True
    )
    return HierarchyState.of(prep, built)
