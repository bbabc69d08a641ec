"""Pure computation on numpy arrays: no napari, Qt or magicgui imports here."""

from ._api import ClusterResult, Dendrogram, Progress, cluster_image, iter_cluster_image
from ._params import LINKAGES, METHODS, NORMALIZATIONS, ClusterParams
from .compare import Comparison, compare_labels
from .preprocess import load_array
from .table import cluster_table, write_table_csv

__all__ = [
    "LINKAGES",
    "METHODS",
    "NORMALIZATIONS",
    "ClusterParams",
    "ClusterResult",
    "Comparison",
    "Dendrogram",
    "Progress",
    "cluster_image",
    "cluster_table",
    "compare_labels",
    "iter_cluster_image",
    "load_array",
    "write_table_csv",
]
