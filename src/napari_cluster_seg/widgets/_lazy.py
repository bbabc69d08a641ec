"""Lazy (dask, zarr) and multiscale Image layers: a fit that streams the blocks, and lazy labels.

:func:`lazy_run` is the worker body of a run on a lazy layer. When the options allow it
(:func:`~napari_cluster_seg.core.stream.why_not_stream` is None) the model is fitted by streaming
the blocks (progress per batch of blocks, stopped between batches by Cancel), the exact fit of
the loaded image, and the result's labels are a lazy dask array per pyramid level
(:func:`~napari_cluster_seg.core.label_lazy`): napari computes the tiles it shows, nothing else.
Options that need the whole image (smoothing, features, ``connected``, clean-up, ...) keep the
in-memory path when the loaded image fits in memory, and otherwise stop with a message that
names the option and the ways out (a pyramid level to fit on, or leaving the option out).

A pyramid level other than 0 can be chosen to fit on (``Job.fit_level``); level 0 is then
labelled through that model.

Labels of a multiscale image, one lazy array per level: the model labels each pixel by its own
values (no smoothing, filters or coordinates: a model with those is fitted on level 0, loaded, or
refused on another level, as its sigmas are in pixels), so every level's pixels are labelled
from that level, and zooming out reads only the small levels (on a pyramid made by striding
these are level 0's labels at that stride; on one made by averaging, a coarse pixel gets the
label of its mean).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core import ClusterParams, Progress, iter_cluster_image, label_lazy, preprocess
from ..core.lazy import as_dask
from ..core.memory import estimate_memory
from ..core.stream import iter_fit_stream, why_not_stream

#: File name endings "Save labels..." writes (TIFF or zarr).
LABEL_SUFFIXES = (".tif", ".tiff", ".zarr")


def is_lazy(data) -> bool:
    """Whether layer data is lazy (dask, zarr, xarray ...: not a numpy array in memory)."""
    return not isinstance(data, np.ndarray)


@dataclass
class LazyResult:
    """A run on a lazy image: the fitted model and lazy labels (one dask array per pyramid level).

    ``centers``, ``counts`` and ``inertia`` are the fit's (in label order, as
    :class:`~napari_cluster_seg.core.ClusterResult` reports them); the counts are the pixels of
    the image fitted on, level ``fit_level``. No hierarchy is kept: changing k needs another run.
    """

    levels: list
    model: object
    centers: np.ndarray
    counts: np.ndarray
    inertia: float
    fit_level: int = 0
    feature_centers: np.ndarray | None = field(default=None, repr=False)
    feature_names: tuple | None = field(default=None, repr=False)
    is_hierarchical = False  # no live re-cut of a lazy result
    lazy = True

    @property
    def labels(self):
        """The labels of level 0 (lazy)."""
        return self.levels[0]

    @property
    def params(self):
        return self.model.params

    @property
    def n_clusters(self) -> int:
        return int(self.centers.shape[0])

    @property
    def multiscale(self) -> bool:
        return len(self.levels) > 1

    @property
    def layer_data(self):
        """What a Labels layer shows: the list of levels (multiscale) or the one lazy array."""
        return list(self.levels) if self.multiscale else self.levels[0]


def lazy_run(job, image):
    """Worker body (generator) of a run on the lazy ``image`` (level 0) of ``job``: a
    :class:`LazyResult`, or a ClusterResult when the options need the whole image and it fits."""
    options = dict(job.options)
    levels = [image] if len(job.levels) < 2 else [as_dask(level) for level in job.levels]
    levels[0] = as_dask(image)
    if not 0 <= job.fit_level < len(levels):
        raise ValueError(f"fit on level {job.fit_level}: this image has levels 0 to {len(levels) - 1}.")
    fitted_on = levels[job.fit_level]
    reason = why_not_stream(fitted_on, **options)
    if job.fit_level == 0 and reason is not None:  # the in-memory path, if the image fits
        check_loadable(fitted_on, reason, options, multiscale=len(levels) > 1)
        return (yield from iter_cluster_image(fitted_on, **options))
    if options.get("min_size", 0) > 1 or options.get("hole_size", 0) > 0:  # fitted on another level
        raise ValueError(
            "the clean-up (remove islands / fill holes) needs the whole image, not one block at a time; "
            "set both to 0 to label level 0 through a model fitted on another level."
        )
    if not pixelwise(ClusterParams.from_dict(dict(options), len(fitted_on.shape))):
        # sigmas are in pixels: fitted on level N they would mean 2**N level-0 pixels, and labelling
        # the coarse levels would need every level-0 block (napari's thumbnail reads the smallest)
        raise ValueError(
            f"smoothing, filter features and spatial weight fitted on level {job.fit_level} would not "
            "match level 0 (their sigmas are in pixels); fit on level 0, or leave those options out."
        )
    if reason is None:
        fit = yield from iter_fit_stream(fitted_on, **options)
    else:
        fit = yield from iter_cluster_image(fitted_on, **options)  # a level small enough to load
    yield Progress("lazy labels (computed as napari shows them)", 1.0)
    label_levels = lazy_levels(fit.model, levels, options)
    return LazyResult(label_levels, fit.model, fit.centers, fit.counts, fit.inertia, fit_level=job.fit_level)


def check_loadable(image, reason: str, options: dict, multiscale: bool) -> None:
    """A ValueError naming ``reason`` and the ways out when loading ``image`` would not fit."""
    params = ClusterParams.from_dict(dict(options), len(image.shape))
    needed = estimate_memory(image.shape, image.dtype, params)
    limit = preprocess.available_memory()
    if needed <= limit:
        return
    level = (
        "choose a smaller pyramid level in 'fit on level' (Input channels and time), " if multiscale else ""
    )
    raise ValueError(
        f"{reason} needs the whole image of shape {tuple(image.shape)} in memory (about "
        f"{needed / 2**30:.2f} GB of the {limit / 2**30:.2f} GB available), so it cannot be fitted block "
        f"by block: {level}leave that option out to stream the fit, or fit on a crop or every n-th "
        "block with the command line (napari-cluster-seg segment --subset ...)."
    )


def pixelwise(params) -> bool:
    """Whether a model labels each pixel by its own values alone (no smoothing, filters or coordinates)."""
    spec = params.features
    neighbours = spec.active and (bool(spec.filters) or spec.spatial_weight > 0)
    return params.smoothing == 0 and not neighbours


def lazy_levels(model, levels: list, options: dict) -> list:
    """Lazy labels of every pyramid level, largest first: each level labelled from its own pixels
    (``lazy_run`` only gets here with a model that labels a pixel by its values alone)."""
    kwargs = dict(channel_axis=options["channel_axis"], rgb=options["rgb"], time_axis=options["time_axis"])
    return [label_lazy(model, level, **kwargs) for level in levels]


# ---------------------------------------------------------------------------- saving labels
def label_level0(layer):
    """Level 0 of a Labels layer's data (multiscale or not), as it is (numpy or lazy)."""
    data = layer.data[0] if layer.multiscale else layer.data
    return getattr(data, "__wrapped__", data)  # napari hands plugins its objects behind a proxy


def check_label_path(path) -> tuple[Path, bool]:
    """The output path and whether it may replace an existing file (the file dialog has asked)."""
    path = Path(path)
    if path.suffix.lower() not in LABEL_SUFFIXES:
        raise ValueError(
            f"{path.name} does not end in .tif, .tiff or .zarr; give the labels one of those names."
        )
    if path.is_dir():
        raise ValueError(f"{path} is an existing folder; choose a new name (labels never replace a folder).")
    return path, path.exists()


class Cancelled(Exception):
    """The user cancelled a write."""


def save_labels_job(labels, path, overwrite: bool, cancel: threading.Event):
    """Worker body (generator): write the lazy ``labels`` to ``path`` (TIFF or zarr: through a
    temporary name renamed at the end), yielding the share of blocks written; ``cancel`` (set by
    the widget's Cancel) stops it, leaving nothing behind."""
    from dask.callbacks import Callback

    from .._io import compute_and_wait, write_tiff, write_zarr

    # the writers compute a strip of tiles (TIFF) or the whole store (zarr) at a time: the share
    # written is the strips done plus the finished tasks of the current one
    state = {"base": 0.0, "share": 1.0, "done": 0, "total": 1, "error": None, "out": None}
    size = max(1, int(np.prod(labels.shape)))

    class Hook(Callback):
        def _start_state(self, dsk, s):
            state["done"], state["total"] = 0, max(1, len(s["ready"]) + len(s["waiting"]) + len(s["running"]))

        def _posttask(self, key, result, dsk, s, worker_id):
            state["done"] += 1
            if cancel.is_set():
                raise Cancelled()

    def compute(x):
        if cancel.is_set():
            raise Cancelled()
        state["share"] = getattr(x, "size", size) / size
        # compute_and_wait: when cancelled, the tasks already running finish before the writer
        # removes its temporary output (dask does not wait for them, and they would write into it)
        with Hook():
            out = compute_and_wait(x)[0]
        state["base"] += state["share"]
        state["done"] = 0
        return out

    def write():
        writer = write_zarr if path.suffix.lower() == ".zarr" else write_tiff
        try:
            state["out"] = writer(labels, path, overwrite=overwrite, compute=compute)
        except BaseException as err:  # reported by the generator (or dropped when cancelled)
            state["error"] = err

    thread = threading.Thread(target=write, name="napari-cluster-seg save labels", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            yield Progress(f"writing {path.name}", _share(state))
            thread.join(0.05)
    finally:
        if thread.is_alive():  # closed early: stop the write (it removes its temporary file)
            cancel.set()
            thread.join()
    if isinstance(state["error"], Cancelled):
        return None
    if state["error"] is not None:
        raise state["error"]
    return state["out"]


def _share(state) -> float:
    """The share of the labels written so far."""
    return min(0.99, state["base"] + state["share"] * state["done"] / state["total"])
