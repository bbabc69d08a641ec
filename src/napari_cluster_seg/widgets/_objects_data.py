"""What the *Clusters to objects* widget (:mod:`._objects`) reads from layers, without Qt: the labels
and pixel counts of a layer, a lazy layer's labels, the image to measure, and the worker body.
"""

from __future__ import annotations

import numpy as np

from ..core import clusters_to_mask, clusters_to_objects
from ._layers import layer_data

RGB_CHANNELS = ("R", "G", "B", "A")


def lazy_labels(layer):
    """Level 0 of a lazy (dask, zarr, multiscale) Labels layer, or None when its data is in memory:
    lazy labels are never computed on the GUI thread (for an image larger than memory they could
    not be)."""
    data = layer.data[0] if layer.multiscale else layer.data
    data = getattr(data, "__wrapped__", data)  # napari hands plugins its objects behind a proxy
    return None if isinstance(data, np.ndarray) else data


def table_counts(layer):
    """The labels > 0 and pixel counts of a lazy result's cluster table (``layer.features``), or
    None when it has none."""
    table = layer.features
    if not {"label", "pixels"} <= set(table.columns):
        return None
    values, counts = np.asarray(table["label"], np.int64), np.asarray(table["pixels"], np.int64)
    keep = (values > 0) & (counts > 0)
    return values[keep], counts[keep]


def mask_block(block, clusters):
    """The mask (uint8) of ``clusters`` in a block of labels."""
    return clusters_to_mask(block, clusters).astype(np.uint8)


def label_counts(data) -> tuple[np.ndarray, np.ndarray]:
    """The labels > 0 present in ``data`` (ascending) and their pixel counts."""
    arr = np.asarray(data)
    if arr.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    low, high = int(arr.min()), int(arr.max())
    if low >= 0 and high < 2**24:  # a dense count is fastest for the usual small label values
        counts = np.bincount(arr.ravel().astype(np.intp, copy=False), minlength=high + 1)
        present = np.flatnonzero(counts[1:]) + 1
        return present, counts[present]
    values, counts = np.unique(arr, return_counts=True)
    keep = values > 0
    return values[keep].astype(np.int64), counts[keep]


def intensity_for(image_layer, labels_shape: tuple) -> tuple:
    """(image, channel_axis, channel_names) of an Image layer for :func:`clusters_to_objects`: an
    RGB image's channels are R, G, B; an image of the labels' shape is one channel ``intensity``;
    an image with one axis more has its channels along that axis."""
    data = layer_data(image_layer)
    shape = tuple(data.shape)
    if image_layer.rgb and shape[:-1] == labels_shape:
        return data, -1, RGB_CHANNELS[: shape[-1]]
    if shape == labels_shape:
        return data, None, ("intensity",)
    if len(shape) == len(labels_shape) + 1:
        for axis in range(len(shape)):
            if shape[:axis] + shape[axis + 1 :] == labels_shape:
                return data, axis, None
    raise ValueError(
        f"the image {image_layer.name!r} of shape {shape} does not match the labels of shape "
        f"{labels_shape}; choose an image of the same shape (or with one channel axis more), or none."
    )


def objects_job(labels, clusters: list, options: dict):
    """Worker body: the objects of ``clusters`` in ``labels`` (loaded here if lazy)."""
    return clusters_to_objects(np.asarray(labels), clusters, **options)
