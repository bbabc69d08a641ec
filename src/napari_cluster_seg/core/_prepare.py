"""Preparation: load and validate, pixels and features, the fast kernels, normaliser and reduction."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import _builds
from ._chunks import channel_range
from ._params import OPTIONS, ClusterParams, validate_params
from ._progress import Progress, rescaled
from ._stats import too_many_clusters
from .cells import CellReduction, histogram_normalizer, reduce_cells, use_cells
from .normalize import Normalizer, fit_normalizer, fix_coordinates
from .preprocess import (
    PixelData,
    array_like,
    downsample_mask,
    load_array,
    pixels_for,
)
from .reduce import GRID_MAX_CHANNELS, Reduction, check_magnitude, n_distinct_rows, reduce_pixels
from .sample import PixelSample, sample_pixels


@dataclass
class Prepared:
    """Validated options and the image's pixels, reduced and normalised: what every fit starts from.

    ``red`` (the reduction: distinct values, grid cells or a pixel sample), ``points`` (its points
    normalised) and ``fit_w`` (each point's weight in the fit: 0 for pixels ``fit_stride`` skips)
    are None when the connected flavour needs no reduction.
    """

    params: ClusterParams
    pix: PixelData
    red: Reduction | PixelSample | None
    normalizer: Normalizer
    points: np.ndarray | None
    fit_w: np.ndarray | None
    rng: np.random.Generator  # seeded by params.random_state
    base_normalizer: Normalizer  # orders multichannel clusters by their channel means


def prepare(image, *, mask, max_bytes, cells=False, **options):
    """Generator: load, validate, prepare and reduce the pixels; returns a :class:`Prepared`.
    ``cells``: K-means on a large uint8 RGB image may start from its colour cells (:mod:`.cells`;
    a fit's choice: the k-scan compares k on the colours)."""
    yield Progress("loading image", 0.0)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; the options are: {', '.join(OPTIONS)}.")
    image = array_like(image)  # a lazy array stays lazy until its memory is checked
    params = validate_params(len(image.shape), **options)
    image = load_array(image, max_bytes=max_bytes, params=params, mask=mask)
    rng = np.random.default_rng(params.random_state)
    space = params.features.color_space if params.features is not None and params.features.active else "rgb"
    channels = image.shape[params.channel_axis] if params.channel_axis is not None else 1
    pixels = int(np.prod(image.shape)) // channels
    yield from fast_kernels(_builds.smoothing_needs(params.smoothing, space, pixels))
    yield Progress("preparing pixels" + (" (smoothing)" if params.smoothing else ""), 0.05)
    pix = pixels_for(
        image,
        channel_axis=params.channel_axis,
        rgb=params.rgb,
        time_axis=params.time_axis,
        smoothing=params.smoothing,
        mask=mask,
        features=params.features,
        spacing=params.spacing,
    )
    cells = cells and use_cells(pix.values, params, pix)
    if cells and not pix.values.flags.c_contiguous:  # (an RGBA image's RGB): one copy for every pass
        pix = replace(pix, values=np.ascontiguousarray(pix.values))
    yield from fast_kernels(_builds.needs(pix.values, params.method, params.connected, pix.base, cells=cells))
    base_normalizer = _base_normalizer(pix, params)
    if params.connected and params.normalize in ("none", "minmax"):
        # superpixels need no reduction: the channel ranges are all the normalisation needs
        lo, hi = channel_range(pix.values)
        normalizer = range_normalizer(lo, hi, params.normalize, floats=pix.values.dtype.kind == "f")
        normalizer = fix_coordinates(normalizer, pix.n_coordinates)
        return Prepared(params, pix, None, normalizer, None, None, rng, base_normalizer or normalizer)
    prep = None
    if cells:
        yield Progress("counting colour cells", 0.15)
        red = reduce_cells(pix.values)
        if red is not None:
            yield from fast_kernels(_builds.cell_fit_needs(params.n_clusters))
            prep = reduced_prepared(params, pix, red, rng, base_normalizer)
        else:  # few colours: counted exactly
            yield from fast_kernels(_builds.needs(pix.values, params.method, params.connected, pix.base))
    if prep is None:
        prep = yield from _reduce(params, pix, rng, base_normalizer)
    if not params.connected:
        check_fit_points(prep)
    return prep


def exact_prepared(prep: Prepared):
    """Generator: the :class:`Prepared` of ``prep``'s pixels (in memory, reduced to their colour
    cells) on their exact colours instead, with a fresh random generator: what the run would have
    prepared without the cells."""
    pix, params = prep.pix, prep.params
    builds = _builds.needs(pix.values, params.method, params.connected, pix.base)
    yield from rescaled(fast_kernels(builds), 0.86, 0.0)  # (progress never goes back)
    yield Progress("counting the exact colours", 0.86)
    base = None if prep.base_normalizer is prep.normalizer else prep.base_normalizer
    rng = np.random.default_rng(params.random_state)
    return reduced_prepared(params, pix, reduce_pixels(pix.values), rng, base)


def _base_normalizer(pix: PixelData, params: ClusterParams) -> Normalizer | None:
    """With features: the min-max normaliser of the channel values that orders multichannel
    clusters (None: the features' own normaliser does), after checking float channel values
    against what float64's squares hold (the centres are their means, whatever the features)."""
    floats = pix.base is not None and pix.base.dtype.kind == "f"
    multichannel = pix.base is not None and pix.base.shape[1] > 1 and not params.rgb
    if not (floats or multichannel):
        return None
    base_range = channel_range(pix.base)  # one pass over the channel values for both uses
    if floats:
        check_magnitude(*base_range, small=False)
    if multichannel:
        return range_normalizer(*base_range, "minmax", floats=floats)
    return None


def _reduce(params: ClusterParams, pix: PixelData, rng, base_normalizer):
    """Generator: the pixels reduced to weighted points (or sampled), normalised, with the weights
    the fit sees; returns a :class:`Prepared`."""
    fit_sel = _fit_selection(pix, params)
    if pix.n_channels > GRID_MAX_CHANNELS:
        yield Progress(f"sampling pixels ({pix.n_channels} features)", 0.15)
        if pix.values.dtype.kind == "f":
            check_magnitude(*channel_range(pix.values))
        red = sample_pixels(pix.values, rng, fit_sel)
    else:
        yield Progress("finding distinct values", 0.15)
        red = reduce_pixels(pix.values)
    fit_w = None
    if not (params.fit_stride == 1 or isinstance(red, PixelSample)):
        fit_idx = red.point_index(pix.values[fit_sel])
        fit_w = np.bincount(fit_idx, minlength=red.n_points).astype(np.float64)
    return reduced_prepared(params, pix, red, rng, base_normalizer, fit_w)


def reduced_prepared(params: ClusterParams, pix: PixelData, red, rng, base_normalizer=None, fit_w=None):
    """A :class:`Prepared` from pixels already reduced to ``red``: normalised from its weighted
    points, with ``fit_w`` (default: every pixel) as the fit's weights. The seam where the merged
    reduction of a lazy image's blocks (:mod:`.stream`) joins the in-memory path."""
    if isinstance(red, CellReduction):  # the pixels' own channel ranges, not the cells' means'
        normalizer = histogram_normalizer(red.hist, params.normalize)
    else:
        normalizer = fit_normalizer(red.raw_points, red.weights, params.normalize, params.percentiles)
    normalizer = fix_coordinates(normalizer, pix.n_coordinates)
    raw = red.raw_points
    # normalize="none": the points are the float64 values themselves (a copy of millions of colours
    # costs 20 ms; nothing writes into them)
    keep = normalizer.identity and raw.dtype == np.float64 and raw.flags.c_contiguous
    points = raw if keep else normalizer(raw)
    fit_w = red.weights if fit_w is None else fit_w
    return Prepared(params, pix, red, normalizer, points, fit_w, rng, base_normalizer or normalizer)


def _fit_selection(pix, params):
    """Flat mask over the valid pixels of those the fit sees (None: all), or a ValueError when
    ``fit_stride`` keeps none of them."""
    if params.fit_stride == 1:
        return None
    fit_sel = downsample_mask(pix.shape, params.fit_stride, pix.time_axis)
    if pix.valid is not None:
        fit_sel = fit_sel[pix.valid]
    if not fit_sel.any():
        raise ValueError(
            f"no valid pixels to fit on: fit_stride={params.fit_stride} keeps only pixels that are "
            "masked out, NaN or infinite; choose a smaller fit_stride (or fit_stride=1)."
        )
    return fit_sel


def check_fit_points(prep: Prepared) -> None:
    """The one check before any fit: the pixels the fit sees (``fit_w > 0``) must hold at least
    k distinct points *after normalisation* (clipping merges values; a pixel sample repeats
    them), else no clustering has k non-empty clusters."""
    params, k = prep.params, prep.params.n_clusters
    use = positive_rows(prep.fit_w)
    n_used = prep.fit_w.size if use is None else use.size
    # a strided subset of the fit points first (no copy of all of them); all only when it is short
    step = max(1, n_used // (16 * k))
    n_distinct = n_distinct_rows(prep.points[::step] if use is None else prep.points[use[::step]], k)
    if n_distinct < k and step > 1:
        n_distinct = n_distinct_rows(prep.points if use is None else prep.points[use], k)
    if n_distinct < k:
        exact = prep.red.exact and prep.normalizer.clip_low is None
        raise too_many_clusters(k, n_distinct, prep.pix.n_channels, exact, params.normalize)


def positive_rows(weights: np.ndarray) -> np.ndarray | None:
    """The rows of positive weight, or None when that is every row (the usual case: no index
    array of millions of entries)."""
    positive = weights > 0
    return None if positive.all() else np.flatnonzero(positive)


def fast_kernels(builds):
    """Generator: load the numba kernel builds a run needs, compiling (once per install, a
    progress stage each) those numba's disk cache does not hold yet."""
    todo = _builds.to_compile(builds)
    for i, build in enumerate(todo):
        left = _builds.compile_seconds(todo[i:])
        yield Progress(f"preparing fast kernels {i + 1}/{len(todo)} (first run only, ~{left:.0f} s)", 0.05)
        _builds.prepare(build)
    for build in _builds.pending(builds):
        _builds.prepare(build)


def range_normalizer(lo, hi, how, *, floats: bool):
    """Min-max (or no) normalisation from the channel ranges ``lo``, ``hi`` of pixel rows (of float
    values: checked first against what float64's squares hold)."""
    if floats:
        check_magnitude(lo, hi)
    return fit_normalizer(np.stack([lo, hi]).astype(np.float64), np.ones(2), how)


def pixel_transform(normalizer, values):
    """Rows of pixel values -> normalised features (for chunked labelling): float32, or float64
    for 64-bit ``values`` (whose normalised values float32 may not hold)."""
    dtype = np.float64 if values.dtype.itemsize == 8 else np.float32
    return lambda chunk: normalizer(chunk, dtype=dtype)
