"""napari dock widgets (thin GUI over :mod:`napari_cluster_seg.core`)."""

from ._cluster_widget import ClusterSegWidget

__all__ = ["ClusterSegWidget"]
