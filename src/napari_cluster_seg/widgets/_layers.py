"""Reading napari layers for the core, and writing results back as Labels layers."""

from __future__ import annotations

import numpy as np

#: Key of this plugin's entry in a result layer's ``metadata``.
METADATA_KEY = "napari_cluster_seg"

METHOD_LABELS = {
    "kmeans": "K-means",
    "agglomerative": "agglomerative",
    "divisive": "divisive",
    "model": "model",
}


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
    """What a result layer records about the run that produced it."""
    return {
        METADATA_KEY: {
            "source": source_name,
            "method": result.params.method,
            "params": result.params.as_dict(),
            "centers": result.centers.tolist(),
            "counts": result.counts.tolist(),
            "inertia": result.inertia,
        }
    }


def output_name(source_name: str, method: str) -> str:
    return f"{source_name} {METHOD_LABELS[method]}"
