"""Images larger than memory: lazy labels block by block, and fits on a subset the user names.

:func:`label_lazy` turns a fitted :class:`~napari_cluster_seg.core.ClusterModel` and a dask (or
zarr, or any chunked) array into a *lazy* dask array of labels. Every block is labelled on its
own (``map_blocks``); when the model's pixels depend on their neighbours (``smoothing`` or filter
features) the blocks overlap by the kernels' support (``map_overlap``, :func:`halo`), so the
labels do not depend on the chunking. A pixel's label is the model's decision for that pixel
alone:

* integer images without smoothing or features: the label of its value, exactly as
  :meth:`ClusterModel.predict` gives it on the whole array (identical labels);
* more features than a grid holds (:data:`~.reduce.GRID_MAX_CHANNELS`): its nearest centre or
  unit in float32, as ``predict`` does (identical);
* other float features: its nearest centre or unit in float64. ``predict`` on a whole float
  image labels the pixels of one small cell of a grid by the cell's mean instead, so the two
  differ only for pixels on a decision boundary (a few in 10**5).

:func:`~.lazy_fit.fit_lazy` (:mod:`.lazy_fit`) fits the model: streamed over the blocks, or on
a subset the user names.

:func:`lazy_cluster_stats` counts the pixels and sums the channel values per label, block by
block, for the per-cluster table of a lazy result (:func:`lazy_cluster_table`).

dask is imported when these functions run, not with :mod:`napari_cluster_seg.core`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ._chunks import CHUNK
from ._params import check_spacing, normalize_axis
from .preprocess import channels_last, scatter_valid
from .reduce import GRID_MAX_CHANNELS, reduce_pixels
from .sample import label_pixels
from .table import physical_units

#: scipy.ndimage's truncation of Gaussian kernels (radius ``int(4 * sigma + 0.5)``).
TRUNCATE = 4.0


def _radius(sigma: float) -> int:
    return int(TRUNCATE * float(sigma) + 0.5) if sigma > 0 else 0


def halo(params, n_spatial: int, spacing=None) -> tuple[int, ...]:
    """Pixels of context each spatial axis needs so that a block's labels equal the whole image's.

    The support of the widest kernel the model's options apply: the smoothing Gaussian, and for
    each filter at each scale its Gaussian (derivatives), DoG's outer ``1.6 * sigma``, or the
    structure tensor's inner derivative (sigma 1) plus its window. Sigmas follow the features'
    anisotropy (``scale * min(spacing) / spacing``).
    """
    spacing = np.ones(n_spatial) if spacing is None else np.asarray(spacing, np.float64)
    spec = params.features
    out = []
    for ax in range(n_spatial):
        ratio = spacing.min() / spacing[ax]
        r = _radius(params.smoothing)
        for name in spec.filters if spec.active else ():
            for s in spec.scales:
                sig = s * ratio
                if name == "dog":
                    need = _radius(1.6 * sig)
                elif name == "structure":
                    need = _radius(ratio) + _radius(sig)
                else:
                    need = _radius(sig)
                r = max(r, need)
        out.append(r)
    return tuple(out)


@dataclass(frozen=True)
class Layout:
    """Where a lazy image keeps its channels and time, resolved as :meth:`ClusterModel.predict`
    resolves them, and the spacing the model's features use."""

    ndim: int
    channel_axis: int | None
    time_axis: int | None
    rgb: bool
    spacing: tuple | None

    @property
    def label_axes(self) -> list[int]:
        """Axes of the image that the labels keep (all but the channel axis)."""
        return [ax for ax in range(self.ndim) if ax != self.channel_axis]

    @property
    def spatial_axes(self) -> list[int]:
        """Axes of the image that are spatial."""
        return [ax for ax in self.label_axes if ax != self.time_axis]


def resolve_layout(model, image, *, channel_axis=None, rgb=None, time_axis=None, spacing=None) -> Layout:
    """The channel and time axes and the spacing for ``image``, checked against ``model`` on a small
    block of zeros (so the errors are :meth:`ClusterModel.predict`'s; nothing of ``image`` is read)."""

    p = model.params
    ndim = len(image.shape)
    if p.rgb:
        channel_axis = -1
    elif channel_axis is None and model.n_channels > 1:
        channel_axis = p.channel_axis if ndim == model.ndim else -1
    channel_axis = normalize_axis(channel_axis, ndim, "channel_axis")
    time_axis = normalize_axis(time_axis, ndim, "time_axis")
    probe_shape = tuple(s if ax == channel_axis else min(int(s), 2) for ax, s in enumerate(image.shape))
    model._pixels(np.zeros(probe_shape, image.dtype), channel_axis=channel_axis, rgb=rgb, time_axis=time_axis)
    n_spatial = ndim - (channel_axis is not None) - (time_axis is not None)
    if spacing is None and p.spacing is not None and ndim == model.ndim:
        spacing = p.spacing
    spacing = check_spacing(spacing, n_spatial)
    return Layout(ndim, channel_axis, time_axis, bool(p.rgb), spacing)


def as_dask(image):
    import dask.array as da

    if isinstance(image, da.Array):
        return image
    chunks = getattr(image, "chunks", None)
    if not (isinstance(chunks, tuple) and len(chunks) == len(image.shape)):
        chunks = "auto"
    return da.from_array(image, chunks=chunks)


def _merge_small(chunks: tuple, least: int) -> tuple:
    """``chunks`` of one axis merged so that every chunk holds at least ``least`` pixels (when the
    axis does): map_overlap takes its halo from the neighbouring chunk only."""
    out = []
    for c in chunks:
        if out and (out[-1] < least or c < least):
            out[-1] += c
        else:
            out.append(c)
    if len(out) > 1 and out[-1] < least:
        out[-2] += out.pop()
    return tuple(out)


def _label_rows(model, values: np.ndarray) -> np.ndarray:
    """The model's label of every row of pixel ``values`` (features, not yet normalised)."""
    dtype = model.labels.dtype
    n = values.shape[0]
    if values.shape[1] > GRID_MAX_CHANNELS:  # as predict: nearest centre / unit in float32
        nearest = label_pixels(values, lambda c: model.normalizer(c, dtype=np.float32), model.points)[0]
        return model.labels[nearest]
    if values.dtype.kind in "iub":
        red = reduce_pixels(values)
        if red.exact:  # the label of each distinct value, as predict on the whole image
            per_point = model._label_points(model.normalizer(red.raw_points)).astype(dtype)
            return red.map_pixels(values, per_point, np.empty(n, dtype))
    out = np.empty(n, dtype)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        out[start:stop] = model._label_points(model.normalizer(values[start:stop]))
    return out


def _coordinates(shape, offset, layout: Layout, global_shape, weight: float) -> np.ndarray:
    """The coordinate features of a block at ``offset`` (in label axes) of an image whose labels
    have ``global_shape``: what :func:`~.features.coordinate_features` gives on the whole image."""
    label_time = None if layout.time_axis is None else layout.label_axes.index(layout.time_axis)
    axes = [ax for ax in range(len(shape)) if ax != label_time]
    spacing = np.ones(len(axes)) if layout.spacing is None else np.asarray(layout.spacing, np.float64)
    extent = max(float((global_shape[ax] - 1) * sp) for ax, sp in zip(axes, spacing)) or 1.0
    out = np.empty(tuple(shape) + (len(axes),), np.float32)
    for i, (ax, sp) in enumerate(zip(axes, spacing)):
        line = np.arange(offset[ax], offset[ax] + shape[ax], dtype=np.float32)
        view = [1] * len(shape)
        view[ax] = shape[ax]
        out[..., i] = line.reshape(view) * np.float32(sp * weight / extent)
    return out


def _no_valid_pixel(block, layout: Layout) -> bool:
    """Whether every pixel of a block is invalid (NaN or infinite in a channel the model uses)."""
    if block.dtype.kind != "f":
        return False
    rows = channels_last(block, layout.channel_axis, layout.rgb)
    return not np.isfinite(rows).all(axis=-1).any()


def _label_block(block, *, model, layout: Layout, starts, depth, global_shape, block_info=None):
    """Labels of one (overlapping) block: the model's pixels of it, and each pixel's label (0 for
    every pixel of a block without a valid one, e.g. a NaN margin: :meth:`ClusterModel.predict`
    refuses a whole image without one)."""
    block = np.asarray(block)
    if _no_valid_pixel(block, layout):
        shape = tuple(s for ax, s in enumerate(block.shape) if ax != layout.channel_axis)
        return np.zeros(shape, model.labels.dtype)
    pix, _, _ = model._pixels(
        block, channel_axis=layout.channel_axis, time_axis=layout.time_axis, spacing=layout.spacing
    )
    values = pix.values
    spec = model.params.features
    if spec.active and spec.spatial_weight > 0:
        loc = block_info[0]["chunk-location"]
        offset = [starts[ax][loc[ax]] - (depth[ax] if loc[ax] > 0 else 0) for ax in layout.label_axes]
        coords = _coordinates(pix.shape, offset, layout, global_shape, spec.spatial_weight)
        coords = coords.reshape(-1, coords.shape[-1])
        values = values.copy()
        values[:, -coords.shape[1] :] = coords if pix.valid is None else coords[pix.valid]
    return scatter_valid(_label_rows(model, values), pix.shape, pix.valid)


def label_lazy(
    model, image, *, channel_axis=None, rgb=None, time_axis=None, spacing=None, clean: bool | None = None
):
    """Label a lazy image with ``model``, block by block: a lazy dask array of labels.

    Parameters
    ----------
    model : ClusterModel
    image : dask array, zarr array or any array with ``shape``, ``dtype`` (and ``chunks``)
        Same channels as the model's image. Its chunks are kept, except that a channel (or
        RGB) axis becomes one chunk and chunks smaller than the filters' support are merged.
    channel_axis, rgb, time_axis, spacing
        As for :meth:`ClusterModel.predict`.
    clean : bool, optional
        A model with ``min_size`` / ``hole_size`` clean-up needs the whole image (islands and
        holes cross blocks): with ``clean=False`` the labels are given without the clean-up;
        by default that is a ValueError.

    Returns
    -------
    dask array of uint8 (k < 256) or uint16
        ``image``'s shape without its channel axis; nothing is computed yet. Computing it holds
        a few blocks (and their halo) per worker.

    Raises
    ------
    ValueError
        If the image does not match the model (as ``predict``), or the model cleans up and
        ``clean`` is not False.
    """
    import dask.array as da

    p = model.params
    if (p.min_size > 1 or p.hole_size > 0) and clean is not False:
        raise ValueError(
            f"this model cleans up its labels (min_size={p.min_size}, hole_size={p.hole_size}), which "
            "needs the whole image, not one block at a time; pass clean=False to label without the "
            "clean-up (or run clean_labels on each frame of the computed labels)."
        )
    image = as_dask(image)
    layout = resolve_layout(
        model, image, channel_axis=channel_axis, rgb=rgb, time_axis=time_axis, spacing=spacing
    )
    depth_spatial = halo(p, len(layout.spatial_axes), layout.spacing)
    depth = {ax: 0 for ax in range(layout.ndim)}
    depth.update(zip(layout.spatial_axes, depth_spatial))
    chunks = list(image.chunks)
    if layout.channel_axis is not None:
        chunks[layout.channel_axis] = (image.shape[layout.channel_axis],)
    for ax in layout.spatial_axes:
        chunks[ax] = _merge_small(chunks[ax], depth[ax])
        if len(chunks[ax]) == 1:  # the whole axis in one block (maybe shorter than the halo): no overlap
            depth[ax] = 0
    if tuple(chunks) != image.chunks:
        image = image.rechunk(tuple(chunks))
    starts = {
        ax: np.concatenate(([0], np.cumsum(image.chunks[ax])[:-1])).tolist() for ax in range(layout.ndim)
    }
    # in the labels' axes (no channel axis): starts and depth as seen by the block function
    label_axes = layout.label_axes
    dtype = model.labels.dtype
    fn = functools.partial(
        _block_fn,
        model=model,
        layout=layout,
        starts={i: starts[ax] for i, ax in enumerate(label_axes)},
        depth={i: depth[ax] for i, ax in enumerate(label_axes)},
        global_shape=tuple(image.shape[ax] for ax in label_axes),
    )
    drop = [] if layout.channel_axis is None else [layout.channel_axis]
    meta = np.empty((0,) * len(label_axes), dtype)
    if not any(depth.values()):
        return da.map_blocks(fn, image, drop_axis=drop, dtype=dtype, meta=meta)
    return da.map_overlap(
        fn,
        image,
        depth=depth,
        boundary="none",
        drop_axis=drop,
        dtype=dtype,
        meta=meta,
        allow_rechunk=False,
    )


def _block_fn(block, model, layout, starts, depth, global_shape, block_info=None):
    # block_info[0]["chunk-location"] indexes the image's axes; starts and depth are in the labels'
    if block_info is not None and layout.channel_axis is not None:
        loc = list(block_info[0]["chunk-location"])
        del loc[layout.channel_axis]
        block_info = {0: {"chunk-location": tuple(loc)}}
    return _label_block(
        block,
        model=model,
        layout=layout,
        starts=starts,
        depth=depth,
        global_shape=global_shape,
        block_info=block_info,
    )


# ---------------------------------------------------------------- per-cluster table
def _block_stats(labels, channels, k):
    flat = labels.ravel()
    out = np.zeros((k + 1, channels.shape[-1] + 1))
    out[:, 0] = np.bincount(flat, minlength=k + 1)[: k + 1]
    for c in range(channels.shape[-1]):
        values = channels[..., c].astype(np.float64).ravel()
        ok = np.isfinite(values)
        out[:, c + 1] = np.bincount(flat[ok], weights=values[ok], minlength=k + 1)[: k + 1]
    return out


def lazy_cluster_stats(labels, image, model, layout: Layout):
    """A dask (delayed) array (k + 1, 1 + channels): per label, its pixel count and the sums of
    its channel values; block by block, with the blocks of ``labels`` (computed once when computed
    together with them)."""
    import dask
    import dask.array as da

    image = as_dask(image)
    if layout.channel_axis is None:
        channels = image[..., None]
    else:
        channels = da.moveaxis(image, layout.channel_axis, -1)
    if layout.rgb:
        channels = channels[..., : model.n_channels]
    channels = channels.rechunk(labels.chunks + (-1,))
    k = model.n_clusters
    parts = [
        dask.delayed(_block_stats)(lab, ch, k)
        for lab, ch in zip(labels.to_delayed().ravel(), channels.to_delayed().ravel())
    ]
    while len(parts) > 1:  # a tree of sums: few partial results at once
        parts = [dask.delayed(sum)(parts[i : i + 8]) for i in range(0, len(parts), 8)]
    return parts[0]


def lazy_cluster_table(
    stats: np.ndarray, model, layout: Layout, channel_names=None, *, scale=None, units=None
) -> dict:
    """The per-cluster table (as :func:`cluster_table`: rows for the labels with pixels; index, label,
    pixels, fraction, area / volume, mean of each channel) from :func:`lazy_cluster_stats`.

    ``scale`` and ``units``: pixel size and unit along each axis of the labels (as
    :func:`cluster_table`; a time axis is left out); default: pixels."""
    counts = stats[1:, 0].astype(np.int64)
    rows = np.flatnonzero(counts > 0)
    labels = rows + 1
    spatial = [i for i, ax in enumerate(layout.label_axes) if ax != layout.time_axis]
    spacing, size_unit = physical_units(len(layout.label_axes), spatial, scale, units)
    size = "area" if len(spatial) == 2 else "volume" if len(spatial) > 2 else "length"
    table = {
        "index": labels,
        "label": labels,
        "pixels": counts[rows],
        "fraction": counts[rows] / max(int(counts.sum()), 1),
        size: counts[rows] * float(np.prod(spacing)),
        "size_unit": np.array([size_unit] * rows.size),
    }
    n_channels = stats.shape[1] - 1
    default = ["R", "G", "B"] if layout.rgb else [str(c) for c in range(n_channels)]
    for c, name in enumerate(channel_names or default):
        table[f"mean_{name}"] = stats[rows + 1, c + 1] / counts[rows]
    return table
