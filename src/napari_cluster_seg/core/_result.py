"""What a run returns: :class:`ClusterResult` (with ``cut`` and ``dendrogram``) and :class:`Dendrogram`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ._params import ClusterParams, check_int
from .cleanup import clean_labels

if TYPE_CHECKING:  # annotations only: the model module builds results (its apply), not the reverse
    from ._fit_hierarchy import HierarchyState
    from .model import ClusterModel


@dataclass
class Dendrogram:
    """The top of a hierarchical result's tree, ready to draw.

    Attributes
    ----------
    Z : ndarray, shape (n_leaves - 1, 4)
        scipy-format linkage matrix (for :func:`scipy.cluster.hierarchy.dendrogram`)
        over ``n_leaves`` leaves; merge heights never decrease. Agglomerative:
        the linkage distance (Ward: ``sqrt(2 * increase in SSE)``); divisive:
        ``sqrt(2 * SSE)`` of the cluster that was split.
    leaf_labels : ndarray, shape (n_leaves,)
        Label (1..k) that each leaf's pixels have in the result.
    n_clusters : int
        The result's k.
    """

    Z: np.ndarray
    leaf_labels: np.ndarray
    n_clusters: int

    @property
    def n_leaves(self) -> int:
        return self.Z.shape[0] + 1

    def cut_height(self, n_clusters: int | None = None) -> float:
        """A height at which a horizontal cut leaves ``n_clusters`` clusters (default: the result's).

        ``clusters_at(cut_height(k)) == k`` whenever a horizontal cut can
        leave k clusters: halfway between the merge that makes k clusters and
        the next one up (at the lower one when they differ by a rounding
        error only). When merges tie at that height (the merge to k - 1
        clusters and the one to k are equally high, or the lowest merge is at
        height 0 for ``k = n_leaves``), no horizontal cut leaves k clusters:
        the height of the tied merges is returned (the line passes through
        them), where :meth:`clusters_at` counts all of them as merged (fewer
        than k). :meth:`ClusterResult.cut` still gives k clusters, by merge order.
        """
        k = self.n_clusters if n_clusters is None else n_clusters
        k = check_int(
            "n_clusters",
            k,
            1,
            self.n_leaves,
            message="n_clusters={value!r} cannot be cut from a dendrogram of {high} leaves; "
            "choose an integer between {low} and {high}.",
        )
        if self.n_leaves == 1:
            return 0.0
        heights = self.Z[:, 2]
        above = heights[self.n_leaves - k] if k > 1 else heights[-1] * 1.05
        below = heights[self.n_leaves - k - 1] if k < self.n_leaves else 0.0
        middle = (above + below) / 2
        return float(middle if middle < above else below)  # nearly tied: the mean rounds to ``above``

    def clusters_at(self, height: float) -> int:
        """Number of clusters left by cutting the tree at ``height`` (merges at ``height`` are done)."""
        if isinstance(height, (bool, np.bool_)) or not isinstance(height, (int, float, np.number)):
            raise TypeError(f"height must be a number, got {height!r} ({type(height).__name__}).")
        return int(1 + np.count_nonzero(self.Z[:, 2] > height))


@dataclass
class ClusterResult:
    """Result of :func:`cluster_image`.

    Attributes
    ----------
    labels : ndarray of uint8 or uint16
        The image's shape without its channel axis. 0 marks pixels that were
        not clustered (NaN, infinite or masked); clusters are 1..k ordered by
        brightness (see :func:`cluster_image`).
    centers : ndarray, shape (k, n_channels)
        Mean value (input units) of each cluster's pixels, row ``i`` for
        label ``i + 1``: of the smoothed values when smoothing without
        features, of the channel values as given when features are used.
    counts : ndarray, shape (k,)
        Number of pixels of each label 1..k.
    inertia : float
        Within-cluster sum of squares over all clustered pixels, in the
        normalised feature space the clustering worked in.
    params : ClusterParams
        The validated options of the run.
    model : ClusterModel
        The fitted model: labels other images (or frames) the same way
        without refitting, and saves to / loads from JSON.
    feature_centers : ndarray, shape (k, n_features)
        Cluster means in the normalised feature space the clustering worked
        in (the channels themselves unless features were chosen).
    feature_names : tuple of str or None
        Names of the features (None: the channels).
    """

    labels: np.ndarray
    centers: np.ndarray
    counts: np.ndarray
    inertia: float
    params: ClusterParams
    model: ClusterModel | None = field(default=None, repr=False)
    feature_centers: np.ndarray | None = field(default=None, repr=False)
    feature_names: tuple | None = field(default=None, repr=False)
    _hierarchy: HierarchyState | None = field(default=None, repr=False)
    _fit_unit_labels: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_clusters(self) -> int:
        return int(self.centers.shape[0])

    @property
    def is_hierarchical(self) -> bool:
        return self._hierarchy is not None

    def cut(self, n_clusters: int) -> ClusterResult:
        """Labels for another number of clusters from the same hierarchy, without refitting.

        Only for ``method="agglomerative"`` or ``"divisive"``. Cuts nest:
        every cluster of ``cut(k + 1)`` lies inside one cluster of ``cut(k)``.

        Examples
        --------
        >>> import numpy as np
        >>> from napari_cluster_seg import cluster_image
        >>> img = np.repeat(np.arange(4, dtype=np.uint8) * 60, 4).reshape(4, 4)
        >>> res = cluster_image(img, 2, "agglomerative")
        >>> res.cut(4).labels[:, 0]
        array([1, 2, 3, 4], dtype=uint8)
        """
        if self._hierarchy is None:
            raise ValueError(
                f"cut() needs a hierarchical result, but this one came from method="
                f"{self.params.method!r}; run method='agglomerative' or 'divisive'."
            )
        n_clusters = check_int(
            "n_clusters",
            n_clusters,
            2,
            self._hierarchy.n_fit_units,
            message="n_clusters={value!r} cannot be cut from a hierarchy of {high} units; "
            "choose an integer between {low} and {high}.",
        )
        return self._hierarchy.relabel(replace(self.params, n_clusters=n_clusters))

    def dendrogram(self, max_leaves: int = 30) -> Dendrogram:
        """The top of the tree (at least this result's k leaves), with each leaf's label.

        Examples
        --------
        >>> import numpy as np
        >>> from napari_cluster_seg import cluster_image
        >>> img = np.repeat(np.array([0, 10, 100, 110], np.uint8), 4).reshape(4, 4)
        >>> d = cluster_image(img, 2, "agglomerative").dendrogram()
        >>> d.n_leaves, d.leaf_labels.tolist(), d.clusters_at(d.cut_height())
        (4, [1, 1, 2, 2], 2)
        """
        if self._hierarchy is None:
            raise ValueError(
                f"dendrogram() needs a hierarchical result, but this one came from method="
                f"{self.params.method!r}; run method='agglomerative' or 'divisive'."
            )
        n_leaves = max(check_int("max_leaves", max_leaves), self.n_clusters)
        Z, leaf_of_unit = self._hierarchy.tree.top(n_leaves)
        # heights never decrease up the tree: a divisive tree's sums of squares at rounding level
        # (values one ulp apart) can make a child's split look higher than its parent's
        Z = Z.copy()
        Z[:, 2] = np.maximum.accumulate(Z[:, 2])
        leaf_labels = np.zeros(Z.shape[0] + 1, self._fit_unit_labels.dtype)
        leaf_labels[leaf_of_unit] = self._fit_unit_labels
        return Dendrogram(Z, leaf_labels, self.n_clusters)


def clean_result(labels, counts, params: ClusterParams, time_axis):
    """Optional spatial clean-up of a label image (time axis ``time_axis``); returns (labels, counts)."""
    if params.min_size <= 1 and params.hole_size <= 0:
        return labels, counts
    labels = clean_labels(labels, min_size=params.min_size, hole_size=params.hole_size, time_axis=time_axis)
    counts = np.bincount(labels.ravel(), minlength=counts.size + 1)[1:].astype(np.int64)
    return labels, counts
