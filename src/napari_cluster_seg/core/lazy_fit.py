"""Fit a model on an image larger than memory: streamed over all its blocks, or on a subset.

:func:`fit_lazy` fits a model on a subset that fits in memory (a pyramid level, a crop, or
every n-th block, :class:`Subset`); with no subset it streams the whole image (:mod:`.stream`: a
mergeable reduction over the blocks, the same fit as on the loaded image), or, for options that
need the whole image at once, loads it after the memory check of
:func:`~napari_cluster_seg.core.load_array`. The labels of the whole image come from
:func:`~.lazy.label_lazy`.

dask is imported when these functions run, not with :mod:`napari_cluster_seg.core`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ._params import normalize_axis, validate_params
from ._segment import cluster_image
from .lazy import as_dask
from .memory import estimate_memory
from .preprocess import available_memory
from .stream import fit_stream, why_not_stream


@dataclass(frozen=True)
class Subset:
    """The part of a large image a model is fitted on.

    Attributes
    ----------
    level : int, optional
        Pyramid level of a multiscale image (0: full resolution).
    crop : tuple of slice, optional
        A region (of that level), one slice per leading axis.
    every : int, optional
        Every n-th block (in C order) of that level's chunks; blocks of the regular chunk shape
        only, fitted as frames of a stack (smoothing and filters never cross blocks); with a time
        axis, each frame of those blocks is a frame.
    """

    level: int | None = None
    crop: tuple | None = None
    every: int | None = None

    @classmethod
    def parse(cls, text: str) -> Subset:
        """A subset from text: ``level=2``, ``crop=0:512,100:900`` or ``every=8`` (joined by ``;``)."""
        kwargs = {}
        for part in filter(None, (s.strip() for s in str(text).split(";"))):
            key, _, value = part.partition("=")
            key = key.strip()
            if key in kwargs:
                raise ValueError(f"subset {text!r} gives {key} twice; give each of level, crop, every once.")
            try:
                if key in ("level", "every"):
                    kwargs[key] = int(value)
                elif key == "crop":
                    kwargs[key] = tuple(_slice(s) for s in value.split(","))
                else:
                    raise ValueError
            except ValueError:
                raise ValueError(
                    f"subset {part!r} is not understood; write level=N, crop=START:STOP,START:STOP "
                    "(one range per leading axis) or every=N, joined by ';'."
                ) from None
        return cls(**kwargs)


def _slice(text: str) -> slice:
    lo, sep, hi = text.strip().partition(":")
    if not sep:
        raise ValueError(text)
    return slice(int(lo) if lo.strip() else None, int(hi) if hi.strip() else None)


def _levels(image) -> list:
    """A multiscale image (list / tuple of arrays, largest first) or one array, as a list."""
    if isinstance(image, (list, tuple)) and image and hasattr(image[0], "shape"):
        return list(image)
    return [image]


def subset_of(image, subset: Subset | str | None, *, time_axis=None):
    """The lazy array ``subset`` names in ``image`` (one array or a list of pyramid levels)."""
    if isinstance(subset, str):
        subset = Subset.parse(subset)
    subset = subset or Subset()
    levels = _levels(image)
    level = 0 if subset.level is None else subset.level
    if not 0 <= level < len(levels):
        raise ValueError(
            f"level={level} is not a level of this image, which has {len(levels)} level(s) "
            f"(0 to {len(levels) - 1}); choose one of those."
        )
    arr = as_dask(levels[level])
    if subset.crop is not None:
        text = ",".join(
            f"{'' if c.start is None else c.start}:{'' if c.stop is None else c.stop}" for c in subset.crop
        )
        if len(subset.crop) > arr.ndim:
            raise ValueError(
                f"crop={text} has {len(subset.crop)} ranges for an image of {arr.ndim} axes "
                f"(shape {tuple(arr.shape)}); give at most one START:STOP range per axis."
            )
        arr = arr[tuple(subset.crop)]
        if 0 in arr.shape:
            raise ValueError(
                f"crop={text} leaves no pixels of the image of shape {tuple(levels[level].shape)}; give "
                "ranges inside it (START < STOP)."
            )
    return arr, subset


def _every_block(arr, every: int, channel_axis, time_axis):
    """Every ``every``-th full-size block of ``arr`` stacked along a new first axis."""
    import dask.array as da

    if every < 1:
        raise ValueError(f"every={every} must be a positive whole number of blocks.")
    if channel_axis is not None:
        arr = arr.rechunk({channel_axis: -1})
    full = tuple(c[0] for c in arr.chunks)
    picked = []
    for n, index in enumerate(np.ndindex(*arr.numblocks)):
        if n % every == 0 and all(c[i] == f for c, i, f in zip(arr.chunks, index, full)):
            picked.append(arr.blocks[index])
    if not picked:
        raise ValueError(f"every={every} picks no full-size block; choose a smaller step or a crop.")
    if time_axis is not None:  # every frame of every block picked, as frames of one series
        return da.concatenate([da.moveaxis(b, time_axis, 0) for b in picked])
    return da.stack(picked)


def fit_lazy(image, n_clusters=3, method="kmeans", *, subset=None, progress=None, scheduler=None, **options):
    """Fit a :class:`ClusterModel` on a large image: on all of it by streaming its blocks, or on
    the subset named (loaded).

    Parameters
    ----------
    image : array-like, or list of array-likes
        A lazy (dask, zarr) or in-memory image, or the levels of a multiscale image (largest
        first).
    n_clusters, method, **options
        As for :func:`cluster_image` (``max_bytes`` limits the memory of the loaded subset;
        the subset is computed only after that check).
    subset : Subset or str, optional
        What to fit on (:class:`Subset`, or its text form ``"level=2"``, ``"crop=0:512,0:512"``,
        ``"every=8"``). Default: the whole of level 0, streamed block by block
        (:func:`~.stream.iter_fit_stream`: the same model as :func:`cluster_image` on the loaded
        image, exactly for integer images); options that need the whole image (smoothing,
        features, ``connected``, clean-up, ``fit_stride``, a mask) load it after the memory check.
    progress : callable, optional
        Called as ``progress(stage, fraction)``; the streamed fit reports every batch of blocks.
    scheduler : dask.distributed Client or scheduler name, optional
        Where the streamed fit's block tasks run (default: dask's default scheduler).

    Returns
    -------
    ClusterModel
        For the whole image's layout: apply it to level 0 with :func:`label_lazy`.

    Raises
    ------
    ValueError
        If the subset does not exist, would not fit in memory, or cannot carry the options
        (spatial coordinates need the whole image or a level).
    """

    arr, subset = subset_of(image, subset)
    weight = options.get("spatial_weight", 0) or 0
    if weight > 0 and (subset.crop is not None or subset.every is not None):
        raise ValueError(
            "spatial_weight > 0 places pixels by their position in the whole image, which a crop or "
            "a set of blocks does not have; fit on a pyramid level (subset='level=N') instead."
        )
    if subset.every is None:
        return _fit_whole(arr, n_clusters, method, progress=progress, scheduler=scheduler, **options)
    ndim = arr.ndim
    channel_axis = normalize_axis(options.get("channel_axis"), ndim, "channel_axis")
    if options.get("rgb"):
        channel_axis = ndim - 1
    time_axis = normalize_axis(options.get("time_axis"), ndim, "time_axis")
    stack = _every_block(arr, subset.every, channel_axis, time_axis)
    stacked = dict(options, time_axis=0)
    if options.get("channel_axis") is not None:  # the stack has a frame axis in front
        stacked["channel_axis"] = channel_axis + (time_axis is None or channel_axis < time_axis)
    model = cluster_image(stack, n_clusters, method, progress=progress, **stacked).model
    fitted_axis = model.params.channel_axis
    params = replace(
        model.params, time_axis=time_axis, channel_axis=None if fitted_axis is None else channel_axis
    )
    return replace(model, params=params, ndim=ndim)


def _fit_whole(arr, n_clusters, method, *, progress=None, scheduler=None, **options):
    """The fit on all of ``arr``: streamed block by block (exact, :mod:`.stream`), or, for options
    that need the whole image, loaded after the memory check (a ValueError naming the option
    when it does not fit)."""
    reason = why_not_stream(arr, n_clusters, method, **options)
    if reason is None:
        return fit_stream(arr, n_clusters, method, progress=progress, scheduler=scheduler, **options).model
    _check_loadable(arr, reason, n_clusters, method, options)
    return cluster_image(arr, n_clusters, method, progress=progress, **options).model


def _check_loadable(arr, reason: str, n_clusters, method, options) -> None:
    """A ValueError naming ``reason`` and the fix when loading ``arr`` for the fit would not fit."""
    opts = {k: v for k, v in options.items() if k not in ("mask", "max_bytes")}
    params = validate_params(arr.ndim, n_clusters=n_clusters, method=method, **opts)
    needed = estimate_memory(arr.shape, arr.dtype, params, masked=options.get("mask") is not None)
    limit = options.get("max_bytes")
    limit = available_memory() if limit is None else int(limit)
    if needed > limit:
        raise ValueError(
            f"{reason} needs the whole image of shape {arr.shape} ({arr.dtype}) in memory, about "
            f"{needed / 2**30:.2f} GB of the {limit / 2**30:.2f} GB available: it cannot be computed "
            "block by block. Fit on a subset instead (subset='level=N', 'crop=...' or 'every=N'; "
            "--subset on the command line), or leave that option out."
        )
