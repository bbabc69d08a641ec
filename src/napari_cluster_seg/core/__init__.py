"""Pure computation on numpy arrays: no napari, Qt or magicgui imports here."""

from ._params import (
    CONNECTED_METHODS,
    LINKAGE_METHODS,
    LINKAGES,
    METHODS,
    NORMALIZATIONS,
    OPTION_RULES,
    ClusterParams,
    Rule,
)
from ._progress import Progress
from ._result import ClusterResult, Dendrogram
from ._segment import cluster_image, iter_cluster_image, warm_up
from .choose_k import KScan, iter_scan_n_clusters, scan_n_clusters
from .cleanup import clean_labels
from .compare import Comparison, compare_labels
from .features import COLOR_SPACES, DEFAULT_FEATURES, FILTERS, FeatureSpec
from .lazy import label_lazy
from .lazy_fit import Subset, fit_lazy
from .model import ClusterModel
from .objects import Objects, clusters_to_mask, clusters_to_objects
from .preprocess import load_array
from .table import cluster_table, write_table_csv

__all__ = [
    "COLOR_SPACES",
    "DEFAULT_FEATURES",
    "FILTERS",
    "FeatureSpec",
    "clean_labels",
    "clusters_to_mask",
    "clusters_to_objects",
    "CONNECTED_METHODS",
    "LINKAGE_METHODS",
    "LINKAGES",
    "METHODS",
    "NORMALIZATIONS",
    "OPTION_RULES",
    "Rule",
    "ClusterModel",
    "ClusterParams",
    "ClusterResult",
    "Comparison",
    "Dendrogram",
    "KScan",
    "Objects",
    "Progress",
    "cluster_image",
    "cluster_table",
    "compare_labels",
    "iter_cluster_image",
    "iter_scan_n_clusters",
    "load_array",
    "scan_n_clusters",
    "warm_up",
    "write_table_csv",
    "Subset",
    "fit_lazy",
    "label_lazy",
]
