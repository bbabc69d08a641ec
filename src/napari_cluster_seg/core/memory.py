"""How much memory a run needs: the estimate behind the memory guard of :func:`load_array`.

:func:`estimate_memory` adds up what the path chosen by the options allocates, from the image's
shape and dtype alone (nothing is read), in the order the run allocates it: the loaded image (lazy
inputs only), the pixel rows (a copy when masked, smoothed or turned into features), the
reduction to weighted points and the fit on them, and the labels. Terms that depend on the data,
such as the number of distinct colours, take their largest possible value (a uint8 RGB image has
at most 2**24 colours). The per-pixel and per-point constants were measured per path with
``benchmarks/experiments/memory_per_path.py`` (``tracemalloc`` peak and sampled resident
memory; the numbers are in that script's output and the README), and rounded up.
"""

from __future__ import annotations

import math

import numpy as np

from ._params import validate_params
from .features import BLOCK_PIXELS, _count_filter_features
from .reduce import (
    CHUNK,
    COUNT_TABLE_MAX,
    EXACT_SPACE,
    GRID_MAX_CHANNELS,
    SAMPLE_POINTS,
    SORT_RATIO,
    grid_levels,
    n_workers,
)
from .regions import EXACT_MAX_PIXELS, MAX_SLIC_PIXELS

#: Bytes per distinct point (per channel / per point) while reducing and fitting: raw means,
#: weights, codes and normalised points with their temporaries.
POINT_BYTES = 64
POINT_CHANNEL_BYTES = 32
#: Bytes per point of K-means in one dimension, per cluster (the table of split points) and fixed.
KMEANS_1D_BYTES = 160
#: Bytes per point of multichannel K-means (coreset codes, labels, distances, the refining pass).
KMEANS_ND_BYTES = 96
#: Bytes per point of coarsening points into units (cell codes, counts, sorting).
COARSEN_BYTES = 160
#: Square matrices of units the agglomerative linkage holds at once (distances and temporaries).
LINKAGE_MATRICES = 5
#: Bytes per pixel of a frame for the clean-up (region labels, neighbour pairs).
CLEANUP_BYTES = 120
#: Bytes per SLIC pixel (float64 copies, distances, labels in scikit-image's slic) per channel and
#: fixed.
SLIC_BYTES = 64
SLIC_CHANNEL_BYTES = 24
#: Bytes per pixel of connected Ward on single pixels (edges, heap, node tables).
PIXEL_WARD_BYTES = 400
#: Floats per pixel of a filter block (the block, responses, derivatives).
FILTER_BLOCK_FLOATS = 12
#: Allocations of any run that do not grow with the image (thread-pool chunks, small tables).
FIXED_BYTES = 16 * 2**20


def _n_features(params, c: int, n_spatial: int) -> int:
    spec = params.features
    base = 3 if spec.color_space != "rgb" else c
    return (
        (base if spec.intensity else 0)
        + _count_filter_features(spec, n_spatial) * base
        + (n_spatial if spec.spatial_weight > 0 else 0)
    )


def estimate_memory(
    shape, dtype, params=None, *, masked: bool = False, in_memory: bool = False, contiguous: bool = True
) -> int:
    """Peak bytes a run of :func:`cluster_image` with ``params`` allocates for an image of
    ``shape`` and ``dtype`` (also an upper bound for ``ClusterModel.predict`` and
    :func:`scan_n_clusters` with the same options).

    Parameters
    ----------
    shape : tuple of int
        The image's shape (with its channel axis).
    dtype : numpy dtype
    params : ClusterParams, optional
        Validated options (:func:`validate_params` for ``len(shape)``
        dimensions); default: K-means with default options.
    masked : bool
        A mask is given (the valid pixels are copied). Float images count as
        possibly masked (NaN pixels).
    in_memory : bool
        The image is already in memory (its own bytes are not counted); a
        lazy image counts once loaded, and twice while loading.
    contiguous : bool
        The image is C-contiguous (else its pixel rows are copied).
    """
    if params is None:
        params = validate_params(len(shape), n_clusters=3)
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    ndim = len(shape)
    ca, ta = params.channel_axis, params.time_axis
    c_in = shape[ca] if ca is not None and ca < ndim else 1
    total = math.prod(shape)
    if total == 0:
        return 0
    c = min(c_in, 3) if params.rgb else c_in
    n = total // c_in
    frames = shape[ta] if ta is not None and ta < ndim else 1
    n_frame = n // max(frames, 1)
    n_spatial = ndim - (ca is not None) - (ta is not None)
    b = dtype.itemsize
    k = params.n_clusters
    lab_b = 1 if k < 256 else 2
    workers = n_workers()
    is_float = dtype.kind in "fc"
    invalid = masked or is_float
    features = params.features.active
    hierarchical = params.method != "kmeans"

    # -- pixel rows: what stays (values, valid mask) and the peak while making them
    copy_layout = not contiguous or (ca is not None and ca != ndim - 1)
    layout = n * c * b if copy_layout else 0
    if features:
        vc, vb = _n_features(params, c, n_spatial), 4
        channels = n * max(c, 3 if params.features.color_space != "rgb" else c) * 4
        block = min(n_frame, int(BLOCK_PIXELS * 1.5)) * FILTER_BLOCK_FLOATS * 4 if params.features.filters else 0
        values = n * vc * 4
        keep = values + (n * c * b if invalid else 0)  # features, and the channel values (copied if masked)
        prep = channels * (2 if invalid else 1) + 2 * values + max(block, values if invalid else 0)
    elif params.smoothing > 0:
        vc, vb = c, 4
        values = n * c * 4
        smooth = 5 * n * 4 + n if invalid else min(c, workers) * 2 * n * 4
        keep = values
        prep = values + smooth + (values if invalid else 0)
    else:
        vc, vb = c, b
        keep = n * c * b if invalid else layout
        prep = layout + (n * c * b if invalid else 0)
    if invalid:
        keep += n
        prep += n + n * c  # finite / mask, isfinite's temporary
    prep += keep if features or params.smoothing > 0 else 0

    # -- reduction to weighted points (largest number of points the dtype allows)
    sampled = vc > GRID_MAX_CHANNELS
    values_integer = not (features or params.smoothing > 0) and dtype.kind in "uib"
    table_space = 0  # the code space of the labelling table
    reduce_tmp = 0
    if sampled:
        d = min(n, SAMPLE_POINTS)
        reduce_tmp = 2 * n * 8  # row numbers of the sample's population
    elif values_integer and c == 1 and dtype.kind in "ub" and b <= 2:
        space = 2 ** (8 * b)
        d = min(n, space)
        table_space = space
        reduce_tmp = 4 * space * 8
    else:
        grid_space = grid_levels(vc) ** vc
        grid_tmp = (workers + 2) * grid_space * 8 * (vc + 3) + workers * 2 * CHUNK * 24
        if values_integer:
            space = 256**c if b == 1 and 256**c <= EXACT_SPACE else EXACT_SPACE
            if n * SORT_RATIO <= space:
                exact_tmp = n * 40
            elif space <= COUNT_TABLE_MAX:
                exact_tmp = (workers + 2) * space * 8 + workers * 2 * CHUNK * 16
            else:
                exact_tmp = max(n * 4 + 2 * n, 2**24 * 4) + min(n, space) * 40
            d = min(n, space)
            table_space = space
            reduce_tmp = max(exact_tmp, grid_tmp if b > 1 else 0)
        else:
            d = min(n, grid_space)
            table_space = grid_space
            reduce_tmp = grid_tmp
    points = d * (POINT_BYTES + POINT_CHANNEL_BYTES * vc)
    if params.fit_stride > 1:
        m = -(-n // params.fit_stride ** max(n_spatial, 1))
        points += 2 * n + m * vc * vb + m * 24

    # -- fit on the points
    if params.connected and params.normalize in ("none", "minmax"):
        points = reduce_tmp = table_space = 0  # superpixels need no reduction
    if hierarchical and params.connected:
        fit = _connected(params, n, n_frame, vc, vb, invalid, lab_b)
    elif hierarchical:
        u = min(params.max_units, d)
        fit = d * COARSEN_BYTES
        if params.method == "agglomerative":
            fit = max(fit, LINKAGE_MATRICES * u * u * 8)
        if sampled:
            fit = max(fit, workers * (CHUNK // 4) * (vc * 8 + 64)) + n * 2
    elif vc == 1:
        fit = d * (KMEANS_1D_BYTES + 8 * k)
    else:
        fit = d * KMEANS_ND_BYTES
        if sampled:
            fit = max(fit, workers * (CHUNK // 4) * (vc * 8 + 8 * k)) + n * 2

    # -- labels: the lookup table, the labels of the valid pixels and of the image, clean-up
    unit_b = 2 if hierarchical else lab_b
    table = table_space * unit_b if 0 < table_space <= EXACT_SPACE else 0
    labelling = 0 if table else workers * CHUNK * 24
    out = n * unit_b + (n * 2 if features and not sampled else 0)
    result = n * lab_b * (2 if invalid or hierarchical else 1)
    clean = 0
    if params.min_size > 1 or params.hole_size > 0:
        clean = n_frame * CLEANUP_BYTES + n * lab_b
    label_peak = max(table + labelling + out, out + result + clean)

    run = keep + max(prep - keep, points + max(reduce_tmp, fit, label_peak))
    run += FIXED_BYTES
    if not in_memory:
        loaded = total * b
        run = max(run + loaded, 2 * loaded + FIXED_BYTES)
    return int(run)


def _connected(params, n, n_frame, vc, vb, invalid, lab_b) -> int:
    """Peak bytes of the connected flavour after the pixel rows: superpixels (SLIC) and their tree,
    or connected Ward on single pixels."""
    if params.method == "agglomerative" and params.linkage == "ward" and n <= EXACT_MAX_PIXELS:
        return n * (PIXEL_WARD_BYTES + vc * 24)
    slic_pixels = min(n_frame, MAX_SLIC_PIXELS)
    slic = slic_pixels * (SLIC_BYTES + SLIC_CHANNEL_BYTES * vc)
    image = n * vc * vb if invalid else 0
    upscale = 2 * n_frame * 4 + (n_frame * 13 if invalid else 0)  # np.repeat, nearest-pixel fill
    units = n * 4 + n * 6  # superpixel labels, unit of every pixel
    return image + units + max(slic, upscale) + n * lab_b * 2
