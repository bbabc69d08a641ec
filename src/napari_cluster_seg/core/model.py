"""A fitted clustering model: label other images without refitting; save and load as JSON.

Every :class:`~napari_cluster_seg.core.ClusterResult` carries one as
``result.model``. The model holds everything that turns pixels into labels:
the channel layout and preprocessing of the fit (smoothing, features,
per-channel normalisation) and, in the normalised feature space,

* K-means: the k centres (row ``i`` is label ``i + 1``); a pixel takes the
  label of its nearest centre, exactly as in the fit (one channel: by the
  thresholds halfway between centres, ties to the darker cluster);
* hierarchical results: the units the tree was built on, each with its label
  at the result's cut (for a tree built on single pixels: the regions of its
  cut into ``max_units`` clusters, each inside one cluster). A pixel takes the
  label of its unit: the unit whose grid cell holds it (colour classes), or,
  for a value that no unit covers and for ``connected=True`` models, the unit
  with the nearest mean. A connected model therefore labels a new image by
  superpixel (or region) *colour*; it does not re-grow connected regions
  there.

Applied to the image it was fitted on, a K-means or colour-class model gives
exactly the result's labels. Models are saved as small JSON files (no pickle):
numbers, lists and strings only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ._params import ClusterParams, normalize_axis
from .cleanup import clean_labels
from .kmeans import assign_nearest, nearest_center
from .preprocess import Normalizer, array_like, load_array, pixels_for, scatter_valid
from .reduce import GRID_MAX_CHANNELS, UnitGrid, label_pixels, reduce_pixels

FORMAT = "napari-cluster-seg model"
VERSION = 1


def _array(x):
    return None if x is None else np.asarray(x, np.float64).tolist()


@dataclass
class ClusterModel:
    """Everything needed to label pixels the way a fitted result did.

    Attributes
    ----------
    params : ClusterParams
        Options of the fit (channel layout, preprocessing, method, k).
    n_channels : int
        Channels the model expects (3 for RGB and RGBA images).
    ndim : int
        Dimensions of the image it was fitted on (with its channel axis).
    normalizer : Normalizer
        Per-feature normalisation fitted on that image.
    kind : {"centers", "units"}
        Whether ``points`` are cluster centres or hierarchy units.
    points : ndarray, shape (m, n_features)
        Centres or unit means, in the normalised feature space.
    labels : ndarray, shape (m,)
        Label (1..k) of each point.
    grid : UnitGrid or None
        The grid that assigned pixels to units in the fit, if any.
    """

    params: ClusterParams
    n_channels: int
    ndim: int
    normalizer: Normalizer
    kind: str
    points: np.ndarray
    labels: np.ndarray
    grid: UnitGrid | None = None

    @property
    def n_clusters(self) -> int:
        return int(self.params.n_clusters)

    # ---------------------------------------------------------------- predict
    def _label_points(self, points: np.ndarray) -> np.ndarray:
        if self.kind == "centers":
            return self.labels[nearest_center(points, self.points)]
        unit = np.full(points.shape[0], -1, np.intp)
        if self.grid is not None:
            unit = self.grid.unit_of(points)
        missing = np.flatnonzero(unit < 0)
        if missing.size:
            unit[missing] = assign_nearest(points[missing], self.points)
        return self.labels[unit]

    def _pixels(
        self, image, *, channel_axis=None, rgb=None, time_axis=None, mask=None, spacing=None, max_bytes=None
    ):
        """The model's pixel data of ``image`` (see :meth:`predict` for the options)."""
        image = array_like(image)  # loaded below, after the checks and the memory estimate
        p = self.params
        if rgb is not None and bool(rgb) != p.rgb:
            raise ValueError(
                f"this model was fitted on {'RGB' if p.rgb else 'non-RGB'} images but the image is "
                f"{'RGB' if rgb else 'not RGB'}; apply it to an image like the one it was fitted on."
            )
        if channel_axis is None and self.n_channels > 1 and not p.rgb:
            channel_axis = p.channel_axis if image.ndim == self.ndim else -1
        if p.rgb:
            channel_axis = -1
        channel_axis = normalize_axis(channel_axis, image.ndim, "channel_axis")
        time_axis = normalize_axis(time_axis, image.ndim, "time_axis")
        n_channels = 1 if channel_axis is None else image.shape[channel_axis]
        if p.rgb:
            n_channels = min(n_channels, 3) if n_channels in (3, 4) else n_channels
        if n_channels != self.n_channels:
            what = "RGB(A)" if p.rgb else f"{self.n_channels}-channel"
            raise ValueError(
                f"this model was fitted on {what} images but the image of shape {image.shape} has "
                f"{n_channels} channel(s)"
                + ("" if channel_axis is None else f" on axis {channel_axis}")
                + "; apply it to an image with the same channels (or pass channel_axis)."
            )
        if spacing is None and p.spacing is not None and image.ndim == self.ndim:
            spacing = p.spacing
        run = replace(p, channel_axis=channel_axis, time_axis=time_axis)
        image = load_array(image, max_bytes=max_bytes, params=run, mask=mask)
        pix = pixels_for(
            image,
            channel_axis=channel_axis,
            rgb=p.rgb,
            time_axis=time_axis,
            smoothing=p.smoothing,
            mask=mask,
            features=p.features,
            spacing=spacing,
        )
        return pix, channel_axis, time_axis

    def _predict(self, image, **options):
        """Labels of ``image`` and the statistics they came from (see :meth:`predict`)."""
        p = self.params
        pix, channel_axis, time_axis = self._pixels(image, **options)
        if pix.n_channels > GRID_MAX_CHANNELS:  # many features: each pixel to its nearest centre / unit
            nearest, counts, sums, total_sq = label_pixels(
                pix.values, lambda chunk: self.normalizer(chunk, dtype=np.float32), self.points
            )
            out = self.labels[nearest]
            stats = (self.labels, counts, sums, total_sq)
        else:
            red = reduce_pixels(pix.values)
            per_point = self._label_points(self.normalizer(red.raw_points)).astype(self.labels.dtype)
            out = red.map_pixels(pix.values, per_point, np.empty(pix.n_valid, per_point.dtype))
            stats = (red, per_point)
        labels = scatter_valid(out, pix.shape, pix.valid)
        if p.min_size > 1 or p.hole_size > 0:
            labels = clean_labels(labels, min_size=p.min_size, hole_size=p.hole_size, time_axis=pix.time_axis)
        return labels, pix, stats, channel_axis, time_axis

    def predict(self, image, **options) -> np.ndarray:
        """Label ``image`` with this model, without refitting.

        Parameters
        ----------
        image : array-like
            An image with the same channels as the fitted one (same number;
            RGB for an RGB model). Any number of spatial and time axes: a
            model fitted on one frame labels every frame of a time series.
        channel_axis : int, optional
            Channel axis of ``image``. Default: the model's, when ``image``
            has as many dimensions as the fitted image, else the last axis for
            a multichannel model.
        rgb : bool, optional
            Whether ``image`` is RGB(A) (colour channels last). Default: as
            the model. An RGB image given to a non-RGB model, or the reverse,
            is an error.
        time_axis : int, optional
            Time axis (only matters with smoothing, which never crosses frames).
        mask : array of bool, optional
            Pixels to label; the rest get 0 (as do NaN / infinite pixels).
        spacing : sequence of float, optional
            Pixel size per spatial axis (for spatial-coordinate features and
            anisotropic filters). Default: the model's, for an image with as
            many dimensions as the fitted one.
        max_bytes : int, optional
            Memory limit, checked before a lazy image is computed (see
            :func:`cluster_image`).

        Returns
        -------
        labels : ndarray of uint8 or uint16
            ``image``'s shape without its channel axis; label ``i`` is the
            model's cluster ``i``, 0 where a pixel was masked or not finite.

        Raises
        ------
        ValueError
            If the image's channels do not match the model's, or the run would
            not fit in memory.
        """
        return self._predict(image, **options)[0]

    def transform(self, image, **options) -> np.ndarray:
        """The normalised features the model labels ``image`` by (same options as :meth:`predict`).

        Returns
        -------
        ndarray of float32, shape ``labels.shape + (n_features,)``
            NaN where a pixel is masked or not finite. The features are
            named in ``result.feature_names`` (None: the channels).
        """
        pix, _, _ = self._pixels(image, **options)
        return scatter_valid(self.normalizer(pix.values, dtype=np.float32), pix.shape, pix.valid, np.nan)

    def apply(self, image, **options):
        """Like :meth:`predict` (same options), but returns a :class:`ClusterResult`.

        Its labels are :meth:`predict`'s; centres (mean channel values) and
        counts are measured on ``image`` (after any clean-up), the inertia
        before clean-up; ``params`` records the channel and time axes used.

        A cluster that no pixel of ``image`` falls into gets a count of 0
        and NaN centre values.
        """
        from dataclasses import replace

        from ._api import ClusterResult, _cluster_stats, _pixel_group_means

        labels, pix, stats, channel_axis, time_axis = self._predict(image, **options)
        k = self.n_clusters
        with np.errstate(invalid="ignore", divide="ignore"):
            if len(stats) == 2:  # points of a reduction and their labels
                red, per_point = stats
                feature_means, _, inertia = _cluster_stats(
                    red.raw_points,
                    red.weights,
                    per_point.astype(np.intp) - 1,
                    k,
                    red.total_sq,
                    self.normalizer,
                )
            else:  # per centre / unit: its label, pixel count and feature sums; sums of squares
                point_labels, counts, sums, total_sq = stats
                feature_means, _, inertia = _cluster_stats(
                    sums / np.maximum(counts, 1)[:, None],
                    counts.astype(np.float64),
                    point_labels.astype(np.intp) - 1,
                    k,
                    total_sq,
                    self.normalizer,
                )
        flat = labels.ravel() if pix.valid is None else labels.ravel()[pix.valid]
        centers = _pixel_group_means(pix.base_values, flat, k + 1)[1:]
        counts = np.bincount(labels.ravel(), minlength=k + 1)[1:].astype(np.int64)
        spacing = options.get("spacing", self.params.spacing)
        params = replace(self.params, channel_axis=channel_axis, time_axis=time_axis, spacing=spacing)
        return ClusterResult(
            labels,
            centers,
            counts,
            inertia,
            params,
            self,
            feature_centers=self.normalizer(feature_means),
            feature_names=pix.names,
        )

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        """Plain-Python form (JSON-serialisable) of the model."""
        n = self.normalizer
        grid = None
        if self.grid is not None:
            grid = {
                "levels": int(self.grid.levels),
                "lo": _array(self.grid.lo),
                "span": _array(self.grid.span),
                "unit_codes": np.asarray(self.grid.unit_codes, np.int64).tolist(),
            }
        return {
            "format": FORMAT,
            "version": VERSION,
            "params": self.params.as_dict(),
            "n_channels": int(self.n_channels),
            "ndim": int(self.ndim),
            "normalizer": {
                "offset": _array(n.offset),
                "scale": _array(n.scale),
                "clip_low": _array(n.clip_low),
                "clip_high": _array(n.clip_high),
            },
            "kind": self.kind,
            "points": _array(self.points),
            "labels": np.asarray(self.labels, np.int64).tolist(),
            "grid": grid,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ClusterModel:
        """Inverse of :meth:`to_dict`; raises ValueError for anything else."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT!r} file; load a model saved with ClusterModel.save().")
        if d.get("version") != VERSION:
            raise ValueError(
                f"model format version {d.get('version')!r} is not supported by this version "
                f"(reads version {VERSION}); refit the model or upgrade napari-cluster-seg."
            )
        try:
            params = ClusterParams.from_dict(d["params"])
            nd = d["normalizer"]

            def arr(x):
                return None if x is None else np.asarray(x, np.float64)

            normalizer = Normalizer(
                arr(nd["offset"]), arr(nd["scale"]), arr(nd["clip_low"]), arr(nd["clip_high"])
            )
            points = np.asarray(d["points"], np.float64).reshape(len(d["points"]), -1)
            k = int(params.n_clusters)
            labels = np.asarray(d["labels"], np.uint8 if k < 256 else np.uint16)
            grid = None
            if d["grid"] is not None:
                g = d["grid"]
                grid = UnitGrid(
                    int(g["levels"]), arr(g["lo"]), arr(g["span"]), np.asarray(g["unit_codes"], np.int64)
                )
            model = cls(
                params, int(d["n_channels"]), int(d["ndim"]), normalizer, d["kind"], points, labels, grid
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"the model file is incomplete or damaged ({err!r}); save the model again."
            ) from None
        if model.kind not in ("centers", "units") or points.shape[0] != labels.size or labels.size == 0:
            raise ValueError(
                "the model file is inconsistent (points and labels differ); save the model again."
            )
        return model

    def save(self, path) -> Path:
        """Write the model to a JSON file; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, path) -> ClusterModel:
        """Read a model written by :meth:`save`."""
        try:
            d = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{path} is not a JSON model file ({err}); load a file written by ClusterModel.save()."
            ) from None
        return cls.from_dict(d)
