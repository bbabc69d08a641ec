"""napari-cluster-seg: segment images by clustering their pixels.

The public API is pure numpy (importing it does not import napari or Qt)::

    from napari_cluster_seg import cluster_image
    result = cluster_image(image, n_clusters=3, method="kmeans")
"""

from .core import (
    ClusterModel,
    ClusterParams,
    ClusterResult,
    Comparison,
    Progress,
    cluster_image,
    cluster_table,
    clusters_to_objects,
    compare_labels,
    iter_cluster_image,
    scan_n_clusters,
)

try:
    from ._version import version as __version__
except ImportError:  # pragma: no cover - not installed
    __version__ = "unknown"

__all__ = [
    "ClusterModel",
    "ClusterParams",
    "ClusterResult",
    "Comparison",
    "Progress",
    "cluster_image",
    "cluster_table",
    "clusters_to_objects",
    "compare_labels",
    "iter_cluster_image",
    "scan_n_clusters",
]
