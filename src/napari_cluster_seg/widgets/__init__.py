"""napari dock widgets (thin GUI over :mod:`napari_cluster_seg.core`)."""

from ._cluster_widget import ClusterSegWidget
from ._objects import ClustersToObjectsWidget

__all__ = ["ClusterSegWidget", "ClustersToObjectsWidget"]
