"""Hierarchical methods on units of similar pixels, and the state that relabels a tree at any k."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ._chunks import SquareSums, group_means
from ._params import ClusterParams
from ._prepare import Prepared, pixel_transform
from ._progress import Progress, as_progress
from ._result import ClusterResult, clean_result
from ._stats import check_clusters, cluster_stats, pixel_group_means, rank_lut, too_many_clusters
from .hierarchy import BisectingTree, LinkageTree, Tree, weighted_linkage
from .kmeans import assign_nearest, weighted_kmeans
from .model import ClusterModel
from .normalize import Normalizer
from .preprocess import scatter_valid
from .sample import PixelSample, label_pixels
from .units import UnitGrid, coarsen

#: Units of a hierarchy over many features (K-means centres of a pixel sample).
SAMPLED_UNITS = 256
#: Sampled pixels those units are fitted on.
SAMPLED_UNIT_FIT = 2**14


@dataclass
class UnitTree:
    """What building a tree returns: the tree over the fitted units and how every pixel reaches them."""

    tree: Tree
    n_fit_units: int
    unit_to_fit: np.ndarray  # for every unit: index of the fitted unit whose cluster it takes
    units: np.ndarray  # (u, n_features) normalised unit means
    unit_raw: np.ndarray  # (u, n_features) unit means in feature units (input units without features)
    unit_weights: np.ndarray
    total_sq: SquareSums  # per channel: sum of squares of all pixel values (about a reference)
    unit_of_pixel: np.ndarray  # (n_valid,) unit of every valid pixel
    grid: UnitGrid | None = None  # how other pixels find their unit (None: nearest unit mean)
    pixel_units: bool = False  # the units are the pixels (connected Ward on a small image)


@dataclass
class HierarchyState(UnitTree):
    """What :meth:`ClusterResult.cut` needs to relabel a hierarchical result: the tree and the
    image it was built on."""

    valid: np.ndarray | None = None
    shape: tuple = ()
    normalizer: Normalizer | None = None
    time_axis: int | None = None  # of the label image
    n_channels: int = 1
    ndim: int = 2  # dimensions of the input image (with its channel axis)
    unit_base: np.ndarray | None = None  # with features: (u, n_channels) unit means of the channels
    base_normalizer: Normalizer | None = None  # orders multichannel clusters by their channel means
    feature_names: tuple | None = None

    @classmethod
    def of(cls, prep: Prepared, built: UnitTree) -> HierarchyState:
        """The hierarchy state of a tree built on the units of a prepared image."""
        pix = prep.pix
        unit_base = None
        if pix.base is not None:  # features: the units' channel means, for centres and label order
            unit_base = pixel_group_means(pix.base, built.unit_of_pixel, built.units.shape[0])
        return cls(
            **{f.name: getattr(built, f.name) for f in fields(UnitTree)},
            valid=pix.valid,
            shape=pix.shape,
            normalizer=prep.normalizer,
            time_axis=pix.time_axis,
            n_channels=pix.base_values.shape[1],
            ndim=pix.ndim,
            unit_base=unit_base,
            base_normalizer=prep.base_normalizer,
            feature_names=pix.names,
        )

    def relabel(self, params: ClusterParams) -> ClusterResult:
        """The result of cutting the tree into ``params.n_clusters`` clusters."""
        k = params.n_clusters
        fit_labels = self.tree.cut(k)
        unit_labels = fit_labels[self.unit_to_fit]
        raw, counts, wcss, features = cluster_stats(
            self.unit_raw, self.unit_weights, unit_labels, k, self.total_sq, self.normalizer
        )
        check_clusters(counts, raw, wcss, self.n_channels)
        if self.unit_base is None:
            base_means = raw
        else:
            base_means, _ = group_means(self.unit_base, self.unit_weights, unit_labels, k)
        lut, order = rank_lut(base_means, params, self.base_normalizer)
        unit_labels = lut[unit_labels]
        labels = scatter_valid(unit_labels[self.unit_of_pixel], self.shape, self.valid)
        labels, counts = clean_result(labels, counts[order], params, self.time_axis)
        return ClusterResult(
            labels,
            base_means[order],
            counts,
            wcss,
            params,
            self._model(params, unit_labels),
            feature_centers=features[order],
            feature_names=self.feature_names,
            _hierarchy=self,
            _fit_unit_labels=lut[fit_labels],
        )

    def _model(self, params: ClusterParams, unit_labels: np.ndarray) -> ClusterModel:
        """The model of a cut whose units have these labels (single-pixel units: the regions of the
        tree's finer cut at ``max_units``)."""
        model_points, model_labels = self.units, unit_labels
        if self.pixel_units and self.units.shape[0] > params.max_units:  # the model keeps finer regions
            g = max(params.max_units, params.n_clusters)
            region = self.tree.cut(g)[self.unit_to_fit]  # nested in the clusters, so one label per region
            model_points, _ = group_means(self.units, self.unit_weights, region, g)
            member = np.empty(g, np.intp)
            member[region] = np.arange(region.size)
            model_labels = unit_labels[member]
        return ClusterModel(
            params,
            self.n_channels,
            self.ndim,
            self.normalizer,
            "units",
            model_points,
            model_labels,
            self.grid,
        )


@dataclass
class Units:
    """Groups of similar pixels before the tree: normalised and raw means, pixel weights and the
    weight the fit sees (0: a unit of pixels ``fit_stride`` skips)."""

    units: np.ndarray
    unit_raw: np.ndarray
    weights: np.ndarray
    fit_weights: np.ndarray
    grid: UnitGrid | None = None
    unit_of_point: np.ndarray | None = None  # of a reduction's points (None: sampled units)
    unit_of_pixel: np.ndarray | None = None  # (sampled units: known from their labelling)
    total_sq: SquareSums | None = None


def _sampled_units(prep: Prepared):
    """Generator: many features: units are K-means centres of the pixel sample, every pixel goes
    to the nearest; returns :class:`Units`."""
    red, pix, rng = prep.red, prep.pix, prep.rng
    n_units = min(prep.params.max_units, SAMPLED_UNITS, red.n_points)
    pick = rng.choice(red.n_points, min(red.n_points, SAMPLED_UNIT_FIT), replace=False)
    units, *_ = yield from as_progress(
        weighted_kmeans(prep.points[pick], red.weights[pick], n_units, rng=rng, max_iter=10),
        "grouping pixels into units (K-means)",
        0.3,
        0.1,
    )
    transform = pixel_transform(prep.normalizer, pix.values)
    unit_of_pixel, counts, sums, total_sq = label_pixels(pix.values, transform, units)
    keep = np.flatnonzero(counts > 0)
    units, counts, sums = units[keep], counts[keep], sums[keep]
    relabel = np.full(n_units, -1, np.intp)
    relabel[keep] = np.arange(keep.size)
    unit_of_pixel = relabel[unit_of_pixel].astype(unit_of_pixel.dtype)
    unit_w = counts.astype(np.float64)
    return Units(
        units, sums / unit_w[:, None], unit_w, unit_w, unit_of_pixel=unit_of_pixel, total_sq=total_sq
    )


def _grid_units(prep: Prepared) -> Units:
    """The reduction's points merged on a grid into at most ``max_units`` units."""
    red = prep.red
    unit_of_point, units, unit_w, grid = coarsen(prep.points, red.weights, prep.params.max_units)
    unit_raw, _ = group_means(red.raw_points, red.weights, unit_of_point, units.shape[0])
    fit_w = np.bincount(unit_of_point, weights=prep.fit_w, minlength=units.shape[0])
    return Units(units, unit_raw, unit_w, fit_w, grid, unit_of_point=unit_of_point, total_sq=red.total_sq)


def _grow_tree(prep: Prepared, points: np.ndarray, weights: np.ndarray):
    """Generator: the agglomerative or divisive tree of weighted points; returns the tree."""
    params, n = prep.params, points.shape[0]
    if params.method == "agglomerative":
        yield Progress(f"agglomerative clustering of {n} units", 0.4)
        return LinkageTree(weighted_linkage(points, weights, params.linkage), n)
    tree = BisectingTree(points, weights, rng=prep.rng, n_init=max(params.n_init, 3))
    for frac in tree.grow(params.n_clusters):
        yield Progress("divisive clustering (bisecting K-means)", 0.4 + 0.4 * frac)
    return tree


def build_units_tree(prep: Prepared):
    """Generator: build the tree on units; returns the :class:`HierarchyState`."""
    red, pix, k = prep.red, prep.pix, prep.params.n_clusters
    yield Progress("grouping pixels into units", 0.3)
    u = (yield from _sampled_units(prep)) if isinstance(red, PixelSample) else _grid_units(prep)
    fit_units = np.flatnonzero(u.fit_weights > 0)
    if fit_units.size < k:
        raise too_many_clusters(
            k, fit_units.size, pix.n_channels, red.exact and u.units.shape[0] == red.n_points
        )
    fit_pts = u.units[fit_units]
    tree = yield from _grow_tree(prep, fit_pts, u.fit_weights[fit_units])
    # Units absent from the fit (fit_stride > 1) follow the nearest fitted unit.
    unit_to_fit = np.empty(u.units.shape[0], np.intp)
    unit_to_fit[fit_units] = np.arange(fit_units.size)
    missing = np.flatnonzero(u.fit_weights <= 0)
    if missing.size:
        unit_to_fit[missing] = assign_nearest(u.units[missing], fit_pts)
    yield Progress("labelling", 0.85)
    unit_of_pixel = u.unit_of_pixel
    if unit_of_pixel is None:
        small = np.int16 if u.units.shape[0] < 2**15 else np.int32
        unit_of_pixel = red.map_pixels(
            pix.values, u.unit_of_point.astype(small), np.empty(pix.n_valid, small)
        )
    built = UnitTree(
        tree, fit_units.size, unit_to_fit, u.units, u.unit_raw, u.weights, u.total_sq, unit_of_pixel, u.grid
    )
    return HierarchyState.of(prep, built)
