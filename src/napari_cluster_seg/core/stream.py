"""The exact fit on an image larger than memory: a mergeable reduction of its blocks.

:func:`iter_fit_stream` reduces a lazy (dask) image to weighted points without loading it: every
block is reduced on its own and the blocks' reductions are merged (sums of counts, per-cell sums
and sums of squares), a few blocks at a time, so memory holds the distinct values (or occupied
grid cells) and a batch of blocks, never the image. The merged :class:`~.reduce.Reduction` is the
one :func:`~.reduce.reduce_pixels` gives on the loaded image, and it enters the in-memory fit at
the same seam (:func:`~._prepare.reduced_prepared`, :func:`~._segment.fit_prepared`):

* integer images whose channel ranges multiply to at most :data:`~.reduce.EXACT_SPACE` (grey,
  RGB uint8, most multichannel): the distinct values and their counts, exact. The model, its
  centres and the within-cluster sum of squares are those of :func:`cluster_image` on the loaded
  array, and :func:`~.lazy.label_lazy` gives identical labels;
* floats and wider integer ranges: the same grid of cells (the same channel ranges, and the same
  strided sample for its quantile cells when no pixel is NaN), each cell at the mean of its
  pixels. Integer cell sums are exact; float sums are added in another order (block by block),
  so cell means may differ in their last bits, and lazy labels (nearest centre per pixel) differ
  from the loaded image's (one label per cell) only on decision boundaries.

Options whose pixels depend on their neighbours or on the whole image (smoothing, filter or
coordinate features, ``connected``, clean-up, ``fit_stride``, a mask, more than
:data:`~.reduce.GRID_MAX_CHANNELS` channels) are not streamed: :func:`stream_refusal` names them.

K-means on a noisy 3-channel uint8 image of at least :data:`~.cells.CELL_PIXELS` pixels starts, as
:func:`cluster_image` does, from its colour cells (:mod:`.cells`): the runs of pixels that decide
it are read from their blocks, the cells' tables and histograms are added up, and each Lloyd pass
over the pixels is a pass over the blocks (:func:`assign_block`): the same model, centres and
inertia as on the loaded image.

Passes: one over the blocks for integer dtypes whose whole range is exact (uint8, uint16, int16
grey, uint8 RGB); otherwise a first pass for the channel ranges (and, for the grid, its sample)
and a second for the counts or cell sums. Each pass yields :class:`Progress` per batch of blocks
and stops between batches when the generator is closed. The block tasks are module-level
functions of picklable arguments: they run on dask's default scheduler or on a
``dask.distributed`` client passed as ``scheduler``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import _builds
from ._chunks import SquareSums, n_workers, square_sums
from ._fit_cells import assign_rows
from ._fit_kmeans import fit_kmeans
from ._params import OPTIONS, validate_params
from ._prepare import check_fit_points, fast_kernels, reduced_prepared
from ._progress import Progress, rescaled, run_with_progress
from ._segment import fit_prepared
from .cells import CELL_PIXELS, RUN_PIXELS, cell_reduction, cell_sums, noisy_runs, run_starts
from .coder import SAMPLE_POINTS, grid_coder, grid_levels
from .preprocess import PixelData, channels_last, check_dtype
from .reduce import GRID_MAX_CHANNELS, Reduction, check_magnitude, count_codes, exact_coder, exact_reduction

#: Blocks merged per task of the tree that merges a batch.
MERGE_FAN_IN = 8
#: Blocks smaller than this (bytes) are read several at a time (:func:`_coalesced`) ...
SMALL_BLOCK_BYTES = 2**20
#: ... into blocks of up to this many times that size, when there are more blocks than
COALESCE = 4
MANY_BLOCKS = 256
#: Fewest progress reports per pass (a batch is at least 4 blocks per worker).
REPORTS = 50


def stream_refusal(params, n_channels: int, masked: bool = False) -> str | None:
    """The option that keeps a fit from streaming (it needs the whole image), or None."""
    spec = params.features
    checks = [
        (params.connected, "connected=True"),
        (params.smoothing > 0, f"smoothing={params.smoothing}"),
        (spec.active, "features (filters, spatial_weight, color_space or intensity=False)"),
        (params.min_size > 1 or params.hole_size > 0, "min_size / hole_size (clean-up)"),
        (params.fit_stride > 1, f"fit_stride={params.fit_stride}"),
        (masked, "mask"),
        (n_channels > GRID_MAX_CHANNELS, f"{n_channels} channels (more than {GRID_MAX_CHANNELS})"),
    ]
    return next((name for bad, name in checks if bad), None)


# ---------------------------------------------------------------- per block (picklable tasks)
def _rows(block, channel_axis, rgb):
    """The pixel rows (n, c) of a block, and its finite rows (None: all are)."""
    image_cl = channels_last(check_dtype(np.asarray(block)), channel_axis, rgb)
    rows = image_cl.reshape(-1, image_cl.shape[-1])
    if rows.dtype.kind == "f":
        finite = np.isfinite(rows).all(axis=1)
        if not finite.all():
            return rows[finite], finite
    return rows, None


def _flat_index(shape, offset, global_shape):
    """The global C-order flat index of every pixel of a block at ``offset`` (label axes)."""
    strides = np.cumprod((1,) + tuple(global_shape[::-1]))[-2::-1]
    index = np.zeros(shape, np.int64)
    for ax, (n, off, st) in enumerate(zip(shape, offset, strides)):
        view = [1] * len(shape)
        view[ax] = n
        index += (np.arange(off, off + n, dtype=np.int64) * st).reshape(view)
    return index.ravel()


def scan_block(block, *, channel_axis, rgb, offset, global_shape, step):
    """A block's valid pixel count, channel min and max, first valid pixel (global flat index and
    value) and the valid pixels whose global flat index is a multiple of ``step`` (the sample)."""
    rows, finite = _rows(block, channel_axis, rgb)
    c = rows.shape[1]
    if rows.shape[0] == 0:
        return 0, None, None, None, None, np.empty((0, c), rows.dtype)
    label_shape = tuple(s for ax, s in enumerate(np.shape(block)) if ax != channel_axis)
    index = _flat_index(label_shape, offset, global_shape)
    if finite is not None:
        index = index[finite]
    lo, hi = rows.min(axis=0), rows.max(axis=0)
    return rows.shape[0], lo, hi, int(index[0]), rows[0].copy(), rows[index % step == 0].copy()


def count_block(block, *, channel_axis, rgb, coder):
    """A block's distinct codes (sorted) and their pixel counts."""
    rows, _ = _rows(block, channel_axis, rgb)
    codes, counts = count_codes(rows, coder)
    return np.asarray(codes, np.int64), np.asarray(counts, np.int64)


def cell_block(block, *, channel_axis, rgb, coder, ref):
    """A block's occupied grid cells (sorted codes), their pixel counts and per-channel sums, and
    the per-channel sum of squares of its pixels about ``ref``."""
    rows, _ = _rows(block, channel_axis, rgb)
    c = rows.shape[1]
    if rows.shape[0] == 0:
        return np.empty(0, np.int64), np.empty(0), np.empty((0, c)), np.zeros(c)
    codes = np.asarray(coder.codes(rows), np.int64)
    if coder.space <= 4 * codes.size:
        w = np.bincount(codes, minlength=coder.space)
        occupied = np.flatnonzero(w)
        idx, m = codes, coder.space
    else:
        occupied, idx = np.unique(codes, return_inverse=True)
        m = occupied.size
    w = np.bincount(idx, minlength=m).astype(np.float64)
    sums = np.stack([np.bincount(idx, weights=rows[:, i], minlength=m) for i in range(c)], 1)
    if m != occupied.size:
        w, sums = w[occupied], sums[occupied]
    return occupied, w, sums, square_sums(rows, ref).sq


def cells_block(block, *, channel_axis, rgb):
    """A block's colour cells (pixel counts and channel sums) and channel histograms."""
    rows, _ = _rows(block, channel_axis, rgb)
    return cell_sums(rows)


def assign_block(block, *, channel_axis, rgb, plan, lut):
    """A Lloyd assignment of a block's pixels by ``plan`` (:func:`._fit_cells.assign_rows`): the
    pixel count and raw channel sums (k, 4) of those outside the pure cells."""
    rows, _ = _rows(block, channel_axis, rgb)
    return assign_rows(rows, plan, lut, None)


# ---------------------------------------------------------------- merges (associative)
def merge_added(parts):
    """The sum of arrays, or of tuples of arrays item by item (integers: exact in any order)."""
    if isinstance(parts[0], tuple):
        return tuple(sum(items[1:], items[0].copy()) for items in zip(*parts))
    return sum(parts[1:], parts[0].copy())


def merge_scans(parts):
    parts = [p for p in parts if p[0]]
    if not parts:
        return 0, None, None, None, None, None
    n = sum(p[0] for p in parts)
    lo = np.min([p[1] for p in parts], axis=0)
    hi = np.max([p[2] for p in parts], axis=0)
    first = min(parts, key=lambda p: p[3])
    sample = np.concatenate([p[5] for p in parts])
    return n, lo, hi, first[3], first[4], sample


def merge_counts(parts):
    codes = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    occupied, idx = np.unique(codes, return_inverse=True)
    merged = np.bincount(idx, weights=counts, minlength=occupied.size)  # exact below 2**53
    return occupied, merged.astype(np.int64)


def merge_cells(parts):
    codes = np.concatenate([p[0] for p in parts])
    occupied, idx = np.unique(codes, return_inverse=True)
    m = occupied.size
    w = np.bincount(idx, weights=np.concatenate([p[1] for p in parts]), minlength=m)
    s = np.concatenate([p[2] for p in parts])
    sums = np.stack([np.bincount(idx, weights=s[:, i], minlength=m) for i in range(s.shape[1])], 1)
    return occupied, w, sums.reshape(m, s.shape[1]), np.sum([p[3] for p in parts], axis=0)


# ---------------------------------------------------------------- driver
@dataclass
class StreamFit:
    """A streamed fit: the model, and the clusters in label order as :func:`cluster_image` reports
    them (``centers`` (k, n_channels), pixel ``counts``, ``inertia``: the within-cluster sum of
    squares in normalised units)."""

    model: object
    centers: np.ndarray
    counts: np.ndarray
    inertia: float


def _coalesced(arr):
    """``arr`` in blocks of whole numbers of its chunks, about :data:`SMALL_BLOCK_BYTES` *
    :data:`COALESCE` each, when it has more than :data:`MANY_BLOCKS` blocks smaller than
    :data:`SMALL_BLOCK_BYTES`: a task per tiny block costs more than reducing it (4096 blocks of
    64 x 64 took 9x longer than 4 blocks). The reduction does not depend on the blocks (the
    sample is chosen by global pixel index)."""
    from dask.array.core import normalize_chunks

    if arr.npartitions <= MANY_BLOCKS or arr.nbytes / arr.npartitions >= SMALL_BLOCK_BYTES:
        return arr
    chunks = normalize_chunks(
        "auto", arr.shape, limit=SMALL_BLOCK_BYTES * COALESCE, dtype=arr.dtype, previous_chunks=arr.chunksize
    )
    return arr.rechunk(chunks)


class Blocks:
    """The blocks of a lazy image, with the channel axis in one chunk, and their offsets in the
    labels' axes."""

    def __init__(self, arr, channel_axis, rgb):
        if channel_axis is not None and len(arr.chunks[channel_axis]) > 1:
            arr = arr.rechunk({channel_axis: -1})
        arr = _coalesced(arr)
        self.arr, self.channel_axis, self.rgb = arr, channel_axis, rgb
        self.delayed = arr.to_delayed().ravel()
        starts = [np.concatenate(([0], np.cumsum(c)[:-1])).astype(int) for c in arr.chunks]
        keep = [ax for ax in range(arr.ndim) if ax != channel_axis]
        self.offsets = [tuple(int(starts[ax][i[ax]]) for ax in keep) for i in np.ndindex(*arr.numblocks)]
        self.global_shape = tuple(arr.shape[ax] for ax in keep)

    def __len__(self):
        return len(self.delayed)


def run_blocks(blocks: Blocks, task, merge, *, stage, start, span, scheduler=None, per_block=None):
    """Generator: ``merge`` of ``task(block, **kwargs)`` over all blocks, a batch at a time (each
    batch merged by a tree of tasks), yielding :class:`Progress` after every batch; returns the
    merged result. ``per_block(i)`` gives block ``i``'s own keyword arguments."""
    import dask

    n = len(blocks)
    batch = max(4 * n_workers(), -(-n // REPORTS))
    total = None
    for begin in range(0, n, batch):
        parts = []
        for i in range(begin, min(n, begin + batch)):
            kwargs = per_block(i) if per_block is not None else {}
            parts.append(dask.delayed(functools.partial(task, **kwargs), pure=True)(blocks.delayed[i]))
        while len(parts) > 1:
            parts = [
                dask.delayed(merge, pure=True)(parts[j : j + MERGE_FAN_IN])
                for j in range(0, len(parts), MERGE_FAN_IN)
            ]
        (part,) = dask.compute(parts[0], scheduler=scheduler)
        total = part if total is None else merge([total, part])
        done = min(n, begin + batch)
        yield Progress(f"{stage}: block {done}/{n}", start + span * done / n)
    return total


def iter_fit_stream(image, n_clusters=3, method="kmeans", *, scheduler=None, **options):
    """Generator: the exact fit of a lazy image, block by block; yields :class:`Progress` and returns
    a :class:`StreamFit`: the model, centres, counts and inertia of :func:`cluster_image` on the
    loaded image (see the module's notes). Closing the generator stops it between two batches of
    blocks.

    Parameters
    ----------
    image : dask array (or any array ``dask.array.from_array`` takes, with its chunks)
    n_clusters, method, **options
        As for :func:`cluster_image`; :func:`stream_refusal` names those that cannot stream.
    scheduler : dask.distributed Client or scheduler name, optional
        Where the block tasks run (default: dask's default scheduler).

    Raises
    ------
    ValueError
        For an option that cannot stream (naming it and the fix), and as :func:`cluster_image`.
    """
    yield Progress("reading blocks", 0.0)
    arr, params, layout, reason = _plan(image, n_clusters, method, options)
    if reason is not None:
        raise ValueError(
            f"{reason} needs the whole image, not one block at a time, so this fit cannot stream; "
            "fit on a subset that fits in memory (subset='level=N', 'crop=...' or 'every=N'; "
            "--subset on the command line) and label every pixel with that model."
        )
    channel_axis, dtype, n_channels = layout
    blocks = Blocks(arr, channel_axis, params.rgb)
    sample = _noisy_sample(arr, params, layout, scheduler)
    if sample is not None:  # as cluster_image: from the colour cells
        fit = yield from _fit_from_cells(blocks, params, scheduler, first=sample[0])
        if fit is not None:
            yield Progress("done", 1.0)
            return fit
    red = yield from _reduce_blocks(blocks, dtype, n_channels, scheduler)
    prep = yield from _prepared(red, params, arr.ndim, dtype)
    result = yield from fit_prepared(prep)
    yield Progress("done", 1.0)
    return StreamFit(result.model, result.centers, result.counts, result.inertia)


def _prepared(red: Reduction, params, ndim: int, dtype):
    """Generator: the :class:`~._prepare.Prepared` of a merged reduction, its points standing for
    the pixels."""
    rows = _point_rows(red, dtype)
    pix = PixelData(values=rows, shape=(rows.shape[0],), valid=None, time_axis=None, ndim=ndim)
    yield from fast_kernels(_builds.needs(rows, params.method, False, reduced=False))
    prep = reduced_prepared(params, pix, red, np.random.default_rng(params.random_state))
    check_fit_points(prep)
    return prep


def _noisy_sample(arr, params, layout, scheduler) -> np.ndarray | None:
    """The sampled runs of pixel rows (the first is the image's first pixel) when
    :func:`cluster_image` on the loaded image would start K-means from its colour cells
    (:func:`.cells.use_cells`: the same runs, read from their blocks), else None."""
    import dask.array as da

    channel_axis, dtype, n_channels = layout
    shape = tuple(s for ax, s in enumerate(arr.shape) if ax != channel_axis)
    n = int(np.prod(shape))
    if not (params.method == "kmeans" and dtype == np.uint8 and n_channels == 3 and n >= CELL_PIXELS):
        return None
    if params.normalize == "percentile" or channel_axis is None:
        return None
    starts = run_starts(n)
    pos = np.minimum((starts[:, None] + np.arange(RUN_PIXELS + 1)).ravel(), n - 1)
    moved = da.moveaxis(arr, channel_axis, -1)
    sample = np.asarray(moved.vindex[np.unravel_index(pos, shape)].compute(scheduler=scheduler))
    rows = channels_last(sample, 1, params.rgb)
    return rows if noisy_runs(list(rows.reshape(starts.size, RUN_PIXELS + 1, 3))) else None


def _fit_from_cells(blocks: Blocks, params, scheduler, first):
    """Generator: K-means from the colour cells of the blocks (:mod:`.cells`), the fit
    :func:`cluster_image` makes on the loaded image (``first``: its first pixel, the reference of
    the squares); None when too few cells are occupied."""
    common = dict(channel_axis=blocks.channel_axis, rgb=blocks.rgb)
    run = functools.partial(run_blocks, blocks, scheduler=scheduler)
    yield from fast_kernels(_builds.needs(np.empty((CELL_PIXELS, 3), np.uint8), cells=True))
    table, hist = yield from run(
        cells_block,
        merge_added,
        stage="counting colour cells",
        start=0.05,
        span=0.2,
        per_block=lambda i: common,
    )
    red = cell_reduction(table, hist, np.asarray(first, np.float64))
    if red is None:
        return None
    passes = []

    def assign(plan, lut, out):
        start, span = (0.6, 0.15) if not passes else (0.8, 0.05)  # the refining pass, then the last
        passes.append(start)
        kwargs = dict(common, plan=plan, lut=lut)
        stage = "a pass over the pixels"
        acc = yield from run(
            assign_block, merge_added, stage=stage, start=start, span=span, per_block=lambda i: kwargs
        )
        return acc

    def exact(prep):  # (a cluster left without pixels: the exact colours, late in the progress)
        uint8 = np.dtype(np.uint8)
        exact_red = yield from rescaled(_reduce_blocks(blocks, uint8, 3, scheduler), 0.85, 0.03)
        return (yield from rescaled(_prepared(exact_red, params, blocks.arr.ndim, uint8), 0.86, 0.0))

    red.assign, red.exact = assign, exact
    yield from fast_kernels(_builds.cell_fit_needs(params.n_clusters))
    ndim = blocks.arr.ndim
    pix = PixelData(values=red.raw_points, shape=(red.n_points,), valid=None, time_axis=None, ndim=ndim)
    prep = reduced_prepared(params, pix, red, np.random.default_rng(params.random_state))
    check_fit_points(prep)
    fit = yield from fit_kmeans(prep)
    return StreamFit(fit.model, fit.centers, fit.counts, fit.inertia)


def why_not_stream(image, n_clusters=3, method="kmeans", **options) -> str | None:
    """The option that keeps the fit of ``image`` from streaming (see :func:`stream_refusal`), or
    None; a ValueError / TypeError for options :func:`cluster_image` refuses. Reads no pixel."""
    return _plan(image, n_clusters, method, options)[3]


def _plan(image, n_clusters, method, options):
    """The dask array, validated parameters, (channel axis, dtype, channels) and refusal of a fit."""
    import dask.array as da

    options = dict(options)
    masked = options.pop("mask", None) is not None
    options.pop("max_bytes", None)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; the options are: {', '.join(OPTIONS)}.")
    if not isinstance(image, da.Array):
        chunks = getattr(image, "chunks", None)  # zarr: a tuple; h5py: None when contiguous
        if not (isinstance(chunks, tuple) and len(chunks) == len(image.shape)):
            chunks = "auto"
        image = da.from_array(image, chunks=chunks)
    params = validate_params(image.ndim, n_clusters=n_clusters, method=method, **options)
    dtype = check_dtype(np.empty(0, image.dtype)).dtype
    channel_axis = image.ndim - 1 if params.rgb else params.channel_axis
    probe_shape = tuple(int(s) if ax == channel_axis else 1 for ax, s in enumerate(image.shape))
    n_channels = channels_last(np.empty(probe_shape, dtype), channel_axis, params.rgb).shape[-1]
    return image, params, (channel_axis, dtype, n_channels), stream_refusal(params, n_channels, masked)


def fit_stream(image, n_clusters=3, method="kmeans", *, progress=None, scheduler=None, **options):
    """The exact fit of a lazy image, block by block (:func:`iter_fit_stream` with a callback)."""
    gen = iter_fit_stream(image, n_clusters, method, scheduler=scheduler, **options)
    return run_with_progress(gen, progress)


def _point_rows(red: Reduction, dtype) -> np.ndarray:
    """The points as pixel rows (one per distinct value or cell), in the image's dtype when exact:
    what the fit labels in place of the pixels. Exact values are decoded in integers: float64
    points round values beyond 2**53 (uint64 near its maximum would not even cast back)."""
    if not red.exact:
        return red.raw_points
    return red.coder.decode(red.codes).astype(dtype) + np.asarray(red.coder.lo).astype(dtype)


def _reduce_blocks(blocks: Blocks, dtype, c: int, scheduler):
    """Generator: the merged :class:`Reduction` of all blocks (exact or on a grid)."""
    common = dict(channel_axis=blocks.channel_axis, rgb=blocks.rgb)
    run = functools.partial(run_blocks, blocks, scheduler=scheduler)
    coder = None
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        coder = exact_coder(dtype, [info.min] * c, [info.max] * c)
    scan = None
    if coder is None:  # the channel ranges first (and the grid's sample)
        n_total = int(np.prod(blocks.global_shape))
        step = max(1, n_total // SAMPLE_POINTS)

        def per_block(i):
            return dict(common, offset=blocks.offsets[i], global_shape=blocks.global_shape, step=step)

        scan = yield from run(
            scan_block, merge_scans, stage="channel ranges", start=0.0, span=0.15, per_block=per_block
        )
        if scan[0] == 0:
            raise ValueError(
                "no valid pixels: every pixel is NaN or infinite, so none can be clustered; check the image."
            )
        if dtype.kind in "iu":
            coder = exact_coder(dtype, scan[1], scan[2])
    if coder is not None:
        occupied, counts = yield from run(
            count_block,
            merge_counts,
            stage="counting values",
            start=0.15,
            span=0.15,
            per_block=lambda i: dict(common, coder=coder),
        )
        return exact_reduction(coder, occupied, counts)
    n, lo, hi, _, first, sample = scan
    lo, hi = lo.astype(np.float64), hi.astype(np.float64)
    check_magnitude(lo, hi)
    grid = grid_coder(sample, lo, hi, grid_levels(c))
    ref = np.asarray(first, np.float64)
    occupied, w, sums, sq = yield from run(
        cell_block,
        merge_cells,
        stage="summing grid cells",
        start=0.15,
        span=0.15,
        per_block=lambda i: dict(common, coder=grid, ref=ref),
    )
    return Reduction(sums / w[:, None], w, SquareSums(ref, sq), grid, occupied, exact=False)
