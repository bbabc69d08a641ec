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
from dataclasses import dataclass

import numpy as np

from . import _accel
from ._chunks import CHUNK, n_workers
from ._params import validate_params
from .coder import SAMPLE_POINTS, grid_levels
from .features import BLOCK_PIXELS, n_features
from .reduce import COUNT_TABLE_MAX, EXACT_SPACE, GRID_MAX_CHANNELS, SORT_RATIO
from .regions import EXACT_MAX_PIXELS, MAX_SLIC_PIXELS

#: Bytes per distinct point kept from the reduction to the end (raw means, weights, codes,
#: normalised points), per channel and fixed.
POINT_BYTES = 24
POINT_CHANNEL_BYTES = 16
#: Bytes per point of the exact one-dimensional K-means (prefix sums, the vectorised recursion's
#: tasks) and per point and cluster (its table of split points).
KMEANS_1D_BYTES = 360
#: Bytes per point (fixed and per channel) of multichannel K-means (coreset codes, labels and
#: distances of the refining pass) and of coarsening points into units (cell codes, sorting).
FIT_BYTES = 20
FIT_CHANNEL_BYTES = 16
#: ... and more without the compiled kernels (numpy's nearest centres: labels, distances).
NUMPY_FIT_BYTES = 32
#: Square matrices of units the agglomerative linkage holds at once (distances, temporaries).
LINKAGE_MATRICES = 3.3
#: Bytes per pixel of a frame for the clean-up (region labels, neighbour pairs; measured on random
#: labels, the worst case).
CLEANUP_BYTES = 150
#: Bytes per pixel of the cells a grid reduction keeps (for labelling the pixels by lookup).
PIXEL_CODE_BYTES = 4
#: Bytes per pixel of the chunks in flight in a pass over the pixels (codes, float64 values).
CHUNK_PIXEL_BYTES = 16
#: Bytes per cell of a grid's per-chunk tables (counts, float counts, sums) and per channel.
CELL_BYTES = 16
CELL_CHANNEL_BYTES = 8
#: Floats per pixel of a filter block (the block, a response, the kept part).
FILTER_BLOCK_FLOATS = 3
#: Bytes per SLIC pixel (scikit-image's float64 copies, distances, labels) per channel and fixed.
SLIC_BYTES = 56
SLIC_CHANNEL_BYTES = 12
#: ... and more with a mask (measured: about 64 MB more from 512² on).
SLIC_MASK_BYTES = 64 * 2**20
#: Bytes per pixel of connected Ward on single pixels (edges, heap, node tables), per channel.
PIXEL_WARD_BYTES = 400
PIXEL_WARD_CHANNEL_BYTES = 24
#: Allocations of any run that do not grow with the image (small tables, thread arenas).
FIXED_BYTES = 16 * 2**20
#: Margin over the sum, for memory the allocator keeps after freeing it (resident memory
#: exceeded the traced peak by up to this much).
MARGIN = 1.1


def _in_flight(n: int, chunk: int) -> int:
    """Pixels in the chunks that are processed at once in a pass over ``n`` pixels."""
    return min(n_workers(), -(-n // chunk)) * min(n, chunk)


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

    Examples
    --------
    >>> from napari_cluster_seg.core._params import validate_params
    >>> grey = validate_params(2, n_clusters=3)
    >>> round(estimate_memory((10000, 10000), "uint8", grey, in_memory=True) / 1e6)  # MB: the labels
    127
    """
    if params is None:
        params = validate_params(len(shape), n_clusters=3)
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    total = math.prod(shape)
    if total == 0:
        return 0
    img = _image(shape, dtype, params, masked)
    keep, prep, vc, vb = _pixel_rows(img, params, contiguous)
    d, points, reduce, table_space, chunks = _reduction(img, params, vc, vb)
    fit = _fit(img, params, d, vc, vb)
    table, labels, clean = _labels(img, params, vc, table_space)
    # chunk temporaries count in every phase: worker threads' allocators keep them resident
    run = max(prep, keep + points + chunks + max(reduce, fit, table + labels, labels + clean))
    run = int(MARGIN * run) + FIXED_BYTES
    if not in_memory:
        loaded = total * dtype.itemsize
        run = max(run + loaded, 2 * loaded + FIXED_BYTES)
    return run


@dataclass(frozen=True)
class _Image:
    """What the estimate needs of an image: pixels ``n`` (``n_frame`` per frame), channels ``c``
    (``c_in`` as given), spatial axes, bytes per value ``b``, bytes per label ``lab_b``, whether
    pixels may be invalid (masked / NaN), and the dtype's kind."""

    n: int
    n_frame: int
    c: int
    c_in: int
    n_spatial: int
    b: int
    lab_b: int
    invalid: bool
    kind: str
    channels_last: bool


def _image(shape, dtype, params, masked) -> _Image:
    ndim = len(shape)
    ca, ta = params.channel_axis, params.time_axis
    c_in = shape[ca] if ca is not None and ca < ndim else 1
    n = math.prod(shape) // c_in
    return _Image(
        n=n,
        n_frame=n // (shape[ta] if ta is not None and ta < ndim else 1),
        c=min(c_in, 3) if params.rgb else c_in,
        c_in=c_in,
        n_spatial=ndim - (ca is not None) - (ta is not None),
        b=dtype.itemsize,
        lab_b=1 if params.n_clusters < 256 else 2,
        invalid=masked or dtype.kind in "fc",
        kind=dtype.kind,
        channels_last=ca is None or ca == ndim - 1,
    )


def _pixel_rows(img: _Image, params, contiguous):
    """The pixel rows: bytes that stay until the end (keep), the peak while making them (prep),
    and the rows' width and bytes per value."""
    n, c, b, invalid = img.n, img.c, img.b, img.invalid
    layout = n * c * b if not contiguous or not img.channels_last else 0
    if params.features.active:
        vc, vb = n_features(params.features, c, img.n_spatial), 4
        values = n * vc * 4
        channels = n * (3 if params.features.color_space != "rgb" else c) * 4 * (2 if invalid else 1)
        block = min(img.n_frame, 2 * BLOCK_PIXELS) * FILTER_BLOCK_FLOATS * 4 if params.features.filters else 0
        keep = values + (n * c * b if invalid else 0)  # features, and the channel values (copied if masked)
        prep = layout + max(channels + values + block, 2 * values + (values if invalid else 0))
    elif params.smoothing > 0:
        vc, vb = c, 4
        values = n * c * 4
        keep = values
        prep = layout + values + (5 * n * 4 + n if invalid else min(c, n_workers()) * 2 * n * 4)
    else:
        vc, vb = c, b
        keep = n * c * b if invalid else layout
        prep = layout + (n * c * b if invalid else 0)
    if invalid:
        keep += n
        prep += n + n * c  # the valid mask, isfinite's temporary
    return keep, prep, vc, vb


def _reduction(img: _Image, params, vc, vb):
    """Reduction to weighted points, at most as many as the dtype and grid allow: (points d,
    their bytes, the reduction's peak, the labelling table's code space, chunk temporaries)."""
    n, c, b = img.n, img.c, img.b
    integer = not (params.features.active or params.smoothing > 0) and img.kind in "uib"
    chunks = _in_flight(n, 2 * CHUNK) * CHUNK_PIXEL_BYTES  # chunk temporaries of a pass
    table_space = codes = 0  # the code space of the labelling table, the pixels' cells
    if vc > GRID_MAX_CHANNELS:  # sampled
        d = min(n, SAMPLE_POINTS)
        reduce = 2 * n * 8  # the sample's population
    elif integer and c == 1 and img.kind in "ub" and b <= 2:
        d = table_space = 2 ** (8 * b)
        reduce = 5 * d * 8  # per-core histograms
        chunks = 0
    else:
        grid_space = grid_levels(vc) ** vc
        # the tables: one per chunk in flight and the sum, over the whole grid, or (compiled, float
        # rows, the cells kept) over the occupied cells only, with a presence and a rank per cell
        compact = _accel.enabled() and not integer and n >= _accel.PARALLEL_ROWS
        cells = min(n, grid_space) if compact else grid_space
        tables = (min(n_workers(), -(-n // (2 * CHUNK))) + 1) * cells
        grid = tables * (CELL_BYTES + CELL_CHANNEL_BYTES * vc) + (5 * grid_space if compact else 0)
        d, table_space, reduce = min(n, grid_space), grid_space, grid
        codes = n * PIXEL_CODE_BYTES  # every pixel's cell, kept with the reduction for the run
        if integer:
            space = 256**c if b == 1 and 256**c <= EXACT_SPACE else EXACT_SPACE
            if n * SORT_RATIO <= space:
                exact = n * 96  # sorting the codes
            elif space <= COUNT_TABLE_MAX:
                exact = (n_workers() + 2) * space * 8
            else:
                exact = max(n * 6, 2**24 * 4)  # the codes (or numba's table of 2**24 counters)
            d, table_space = min(n, space), space
            gridded = b > 1 or 256**c > EXACT_SPACE  # integers of a wider range (or 4+ channels) are gridded
            codes = codes if gridded else 0
            reduce = max(exact, grid if gridded else 0)
        d = min(n, d)
    points = d * (POINT_BYTES + POINT_CHANNEL_BYTES * vc) + codes
    if params.fit_stride > 1:
        m = -(-n // params.fit_stride ** max(img.n_spatial, 1))
        points += 2 * n + m * (vc * vb + 24)
    if params.connected and params.normalize in ("none", "minmax"):
        d = points = reduce = table_space = 0  # superpixels need no reduction
    if params.connected:
        chunks = max(chunks, _in_flight(n, CHUNK) * CHUNK_PIXEL_BYTES)  # the superpixels' sums
    return d, points, reduce, table_space, chunks


def _fit(img: _Image, params, d, vc, vb) -> int:
    """The fit on the points (or on superpixels, or pixels)."""
    n, k = img.n, params.n_clusters
    hierarchical = params.method != "kmeans"
    if hierarchical and params.connected:
        fit = _connected(params, n, img.n_frame, vc, vb, img.invalid)
    elif vc == 1 and not hierarchical:
        fit = d * (KMEANS_1D_BYTES + 8 * k)
    else:
        fit = d * (FIT_BYTES + FIT_CHANNEL_BYTES * vc + (0 if _accel.enabled() else NUMPY_FIT_BYTES))
    if hierarchical and params.method == "agglomerative" and not params.connected:
        u = min(params.max_units, d)
        fit = max(fit, int(LINKAGE_MATRICES * u * u * 8))
    if (
        vc > GRID_MAX_CHANNELS
    ):  # every pixel to its nearest centre or unit, in chunks of at most 2**21 distances
        fit = max(fit, _in_flight(n, CHUNK // 4) * vc * 8 + n_workers() * 2**21 * 8) + n * 2
    return fit


def _labels(img: _Image, params, vc, table_space):
    """Labels: the lookup table, labels of the valid pixels and of the image; and the clean-up."""
    n, lab_b, invalid = img.n, img.lab_b, img.invalid
    hierarchical = params.method != "kmeans"
    sampled = vc > GRID_MAX_CHANNELS
    unit_b = 2 if hierarchical else lab_b
    table = table_space * unit_b if table_space <= EXACT_SPACE else 0
    labels = n * unit_b + (n * 2 if params.features.active and not sampled else 0)
    labels += n * lab_b * ((invalid or hierarchical) + (hierarchical and invalid))
    clean = 0
    if params.min_size > 1 or params.hole_size > 0:
        clean = img.n_frame * CLEANUP_BYTES + n * lab_b
    return table, labels, clean


def _connected(params, n, n_frame, vc, vb, invalid) -> int:
    """Peak bytes of the connected flavour after the pixel rows: superpixels (SLIC) and their tree,
    or connected Ward on single pixels."""
    if params.method == "agglomerative" and params.linkage == "ward" and n <= EXACT_MAX_PIXELS:
        return n * (PIXEL_WARD_BYTES + PIXEL_WARD_CHANNEL_BYTES * vc)
    slic = min(n_frame, MAX_SLIC_PIXELS) * (SLIC_BYTES + SLIC_CHANNEL_BYTES * vc)
    if invalid:  # slic seeds a masked frame by K-means on the mask's coordinates
        slic += SLIC_MASK_BYTES + min(n_frame, MAX_SLIC_PIXELS) * SLIC_BYTES
    image = n * vc * vb if invalid else 0  # the valid pixels scattered back into an image
    upscale = n * 4 + 2 * n_frame * 4 + (n_frame * 13 if invalid else 0)  # np.repeat, nearest fill
    units = n * 10  # superpixel labels, the unit of every pixel
    return image + max(slic, upscale, units)
