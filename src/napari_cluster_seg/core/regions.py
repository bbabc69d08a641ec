"""Spatially connected hierarchical clustering: superpixels and their adjacency (the constrained
trees are in :mod:`.constrained`).

For ``connected=True`` two clusters may only merge when they touch, so every
cluster of every cut is a contiguous region. Ward's tree on images of at most
:data:`EXACT_MAX_PIXELS` pixels (in at most :data:`EXACT_MAX_COMPONENTS`
separate pieces) is built on the pixels themselves (:func:`.constrained.exact_ward`): the
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

import itertools

import numpy as np

from ._chunks import frame_slices

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
        sp, factor = _slic_frame(feat, fmask, per_frame, rgb, transform)
        present = np.unique(sp[sp > 0])
        relabel = np.zeros(int(sp.max()) + 1, np.int32)
        relabel[present] = np.arange(offset + 1, offset + 1 + present.size, dtype=np.int32)
        sp = relabel[sp]
        offset += present.size
        # Touching superpixels, found at SLIC's resolution: enlarging by repetition keeps every
        # pair of neighbours, so these pairs all touch at full resolution too.
        edges.append(adjacency(sp))
        if factor > 1:
            sp = _enlarge(sp, factor, feat.shape[:-1], fmask)
        labels[index] = sp.reshape(labels[index].shape)
    return labels, np.concatenate(edges) if edges else np.empty((0, 2), np.int64)


def _slic_frame(feat, fmask, n_segments, rgb, transform):
    """SLIC superpixels of one frame (channels last), on every factor-th pixel when the frame has
    more than :data:`MAX_SLIC_PIXELS`; returns them (at SLIC's resolution) and the factor."""
    from skimage.segmentation import slic  # heavy: loaded on first use (LAZY_IMPORTS)

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
        n_segments=n_segments,
        slic_zero=True,
        max_num_iter=SLIC_ITERATIONS,
        convert2lab=rgb,
        channel_axis=-1,
        start_label=1,
        mask=smask,
        enforce_connectivity=True,
    ).astype(np.int32)
    return sp, factor


def _enlarge(sp, factor, fshape, fmask):
    """Superpixels found on every factor-th pixel, enlarged to the frame's shape ``fshape``; valid
    pixels whose low-resolution pixel was masked take the nearest superpixel."""
    for axis in range(len(fshape)):
        sp = np.repeat(sp, factor, axis=axis)
    short = [(0, max(0, s - sp.shape[a])) for a, s in enumerate(fshape)]  # a phase > 0
    if any(after for _, after in short):
        sp = np.pad(sp, short, mode="edge")
    sp = sp[tuple(slice(0, s) for s in fshape)]
    if fmask is not None:
        holes = (sp == 0) & fmask  # valid pixels whose low-resolution pixel was masked
        if holes.any():
            from scipy import ndimage  # heavy: loaded on first use (LAZY_IMPORTS)

            nearest = ndimage.distance_transform_edt(sp == 0, return_distances=False, return_indices=True)
            sp = sp[tuple(nearest)]
        sp[~fmask] = 0
    return sp


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
    from scipy import ndimage  # heavy: loaded on first use (LAZY_IMPORTS)

    structure = ndimage.generate_binary_structure(len(shape), 1)
    if time_axis is not None:  # no neighbours along time
        structure[tuple(0 if a == time_axis else 1 for a in range(len(shape)))] = False
        structure[tuple(2 if a == time_axis else 1 for a in range(len(shape)))] = False
    return int(ndimage.label(np.asarray(valid).reshape(shape), structure)[1])
