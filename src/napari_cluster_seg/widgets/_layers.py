"""Reading napari layers for the core, and writing results back as Labels layers (with their
per-cluster table as ``layer.features``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import METHODS, cluster_table, write_table_csv

#: Key of this plugin's entry in a result layer's ``metadata``.
METADATA_KEY = "napari_cluster_seg"

#: How a result layer's name calls each of the core's methods (and an applied model).
METHOD_LABELS = {**{m: m for m in METHODS}, "kmeans": "K-means", "model": "model"}


def image_layers(viewer) -> list:
    """The viewer's Image layers, in layer-list order."""
    from napari.layers import Image

    return [layer for layer in viewer.layers if isinstance(layer, Image)]


def axis_choices(layer) -> list:
    """Choices of an axis of ``layer`` (a channel or time axis): none, or one of its data axes."""
    choices: list[tuple[str, Any]] = [("none", None)]
    if layer is not None and not getattr(layer, "rgb", False):
        labels = getattr(layer, "axis_labels", None) or [str(i) for i in range(layer.ndim)]
        choices += [(f"axis {i} ({labels[i]})", i) for i in range(layer.ndim)]
    return choices


def layer_data(layer):
    """The full-resolution data of an Image layer (level 0 of a multiscale layer), not loaded."""
    return layer.data[0] if layer.multiscale else layer.data


def transform_kwargs(layer, drop_axis: int | None = None) -> dict:
    """Keyword arguments that give a new layer the transforms of ``layer``.

    ``drop_axis`` is a data axis of ``layer`` that the new layer does not have
    (a channel axis); the transforms are then restricted to the other axes.
    """
    if drop_axis is None:
        return {
            "scale": np.asarray(layer.scale),
            "translate": np.asarray(layer.translate),
            "rotate": np.asarray(layer.rotate),
            "shear": np.asarray(layer.shear),
            "affine": layer.affine.affine_matrix,
            "units": layer.units,
            "axis_labels": layer.axis_labels,
        }
    from napari.utils.transforms import Affine
    from napari.utils.transforms.transform_utils import decompose_linear_matrix

    keep = [i for i in range(layer.ndim) if i != drop_axis]
    full = Affine(
        scale=layer.scale, translate=layer.translate, rotate=layer.rotate, shear=layer.shear, ndim=layer.ndim
    )
    # Restrict the composed linear map to the kept axes and decompose it again
    # (slicing the shear's upper-triangular coefficients directly would be wrong).
    rotate, scale, shear = decompose_linear_matrix(full.linear_matrix[np.ix_(keep, keep)])
    return {
        "scale": scale,
        "translate": full.translate[keep],
        "rotate": rotate,
        "shear": shear,
        "affine": layer.affine.set_slice(keep).affine_matrix,
        "units": tuple(layer.units[i] for i in keep),
        "axis_labels": tuple(layer.axis_labels[i] for i in keep),
    }


def result_metadata(source_name: str, result) -> dict:
    """What a result layer records about the run that produced it (a lazy result: the pyramid
    level the model was fitted on, whose pixels ``counts`` counts)."""
    meta = {
        "source": source_name,
        "method": result.params.method,
        "params": result.params.as_dict(),
        "centers": result.centers.tolist(),
        "counts": result.counts.tolist(),
        "inertia": result.inertia,
    }
    if getattr(result, "lazy", False):
        meta.update(lazy=True, fit_level=result.fit_level)
    return {METADATA_KEY: meta}


def output_name(source_name: str, method: str) -> str:
    return f"{source_name} {METHOD_LABELS[method]}"


def set_features(layer, result) -> str:
    """Per-cluster table as the layer's features (napari's features table, clusters-plotter); a note
    for the status line when there is none.

    A lazy result's table comes from its fit (the streamed fit counts every pixel of level 0: no
    pass over the labels). A model fitted on another pyramid level counted that level's pixels;
    counting level 0's labels would compute every block, so that result has no table."""
    level = getattr(result, "fit_level", 0)
    if level > 0:
        layer.features = {}
        return (
            f"no cluster table: the model was fitted on level {level}, and counting level 0 reads all of it"
        )
    layer.features = cluster_table(result, scale=layer.scale, units=layer.units)
    return ""


def save_features_csv(layer, path):
    """Write the features table of a result layer to ``path`` (CSV)."""
    features = layer.features
    return write_table_csv({c: features[c].to_numpy() for c in features.columns}, path)


def index_above(viewer, layer) -> int:
    """The layer-list index just above ``layer`` (the end of the list if it is not there)."""
    for i, other in enumerate(viewer.layers):
        if other is layer:
            return i + 1
    return len(viewer.layers)


def write_result(viewer, results, job, kind: str, result, target):
    """Write ``result`` of ``job`` into ``target`` if it is this plugin's unedited result layer of the
    same shape (``results``: the widget's :class:`~._state.ResultLayers`), else into a new layer above
    the image; returns (layer, note for the status line)."""
    from napari.layers import Labels

    data = getattr(result, "layer_data", result.labels)  # a lazy result: its levels (lazy)
    multiscale = isinstance(data, list)
    reason = results.why_not_reusable(target, result.labels.shape, viewer.layers)
    if reason is None and bool(target.multiscale) != multiscale:
        reason = "of another kind"
    metadata = result_metadata(job.source_name, result)
    if reason is None:
        layer = target
        layer.data = data
        layer.metadata = {**layer.metadata, **metadata}
        table_note = set_features(layer, result)
    else:
        layer = Labels(
            data,
            name=output_name(job.source_name, kind),
            metadata=metadata,
            multiscale=multiscale,
            **job.layer_kwargs,
        )
        table_note = set_features(layer, result)
        viewer.layers.insert(index_above(viewer, job.source.layer), layer)
    results.record(layer, job.source.layer, kind)
    notes = [table_note] if table_note else []
    if reason in ("edited", "renamed"):
        notes.insert(0, f"{target.name!r} was {reason}, so this result went to {layer.name!r}")
    return layer, "; ".join(notes)
