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

from ._chunks import SquareSums
from ._model_json import MAX_NDIM, invalid, is_int, model_args, model_dict, number_array
from ._params import ClusterParams, check_bool, check_spacing, labels_dtype, normalize_axis
from ._result import ClusterResult
from ._stats import cluster_stats, pixel_group_means
from .cleanup import clean_labels
from .features import n_features
from .kmeans import assign_nearest, nearest_center
from .normalize import Normalizer
from .preprocess import PixelData, array_like, load_array, pixels_for, scatter_valid
from .reduce import GRID_MAX_CHANNELS, reduce_pixels
from .sample import label_pixels
from .units import UnitGrid

KINDS = ("centers", "units")


@dataclass
class _Groups:
    """What a prediction's labels came from, for :meth:`ClusterModel.apply`'s statistics: groups of
    pixels (a reduction's points, or the pixels nearest each centre / unit) with their raw means,
    weights, labels (1..k) and the per-channel sums of squares of all pixels."""

    raw_points: np.ndarray
    weights: np.ndarray
    labels: np.ndarray
    total_sq: SquareSums
    per_centre: bool


@dataclass
class _Prediction:
    """Labels of an image, its pixel data, the groups they came from and the axes used."""

    labels: np.ndarray
    pix: PixelData
    groups: _Groups
    channel_axis: int | None
    time_axis: int | None


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

    def __post_init__(self):
        """Check every part against the others (a model from a file is not trusted)."""
        self._check_layout()
        self.points = number_array(self.points, "points", 2)
        m, nf = self.points.shape
        if nf != self.n_features or m == 0 or not np.isfinite(self.points).all():
            raise invalid(
                f"points have shape {self.points.shape} but must be finite, at least one, with the "
                f"{self.n_features} features its channels and options give"
            )
        self._check_labels()
        self._check_normalizer()
        if self.grid is not None:
            self._check_grid()

    def _check_layout(self):
        """Options, channels, dimensions and kind."""
        p = self.params
        if not isinstance(p, ClusterParams):
            raise TypeError(f"params must be a ClusterParams, got {type(p).__name__}.")
        if not is_int(self.n_channels) or self.n_channels < 1:
            raise invalid(f"n_channels={self.n_channels!r} must be a positive integer")
        if not is_int(self.ndim) or not 1 <= self.ndim <= MAX_NDIM:
            raise invalid(f"ndim={self.ndim!r} must be an integer between 1 and {MAX_NDIM}")
        self.n_channels, self.ndim = int(self.n_channels), int(self.ndim)
        axes = (p.channel_axis, p.time_axis)
        if any(ax is not None and ax >= self.ndim for ax in axes) or self.n_spatial < 1:
            raise invalid(f"ndim={self.ndim} does not hold its channel and time axes and a spatial axis")
        expected = 3 if p.rgb else 1 if p.channel_axis is None else self.n_channels
        if self.n_channels != expected:
            raise invalid(f"n_channels={self.n_channels} but its options give {expected} channel(s)")
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise invalid(f"kind={self.kind!r} is not one of {KINDS}")

    @property
    def n_clusters(self) -> int:
        return int(self.params.n_clusters)

    @property
    def n_spatial(self) -> int:
        """Spatial axes of the image the model was fitted on."""
        p = self.params
        return self.ndim - (p.channel_axis is not None) - (p.time_axis is not None)

    @property
    def n_features(self) -> int:
        """Features per pixel (of the image it was fitted on): the width of ``points``."""
        return n_features(self.params.features, self.n_channels, self.n_spatial)

    def _check_labels(self):
        k, m = self.n_clusters, self.points.shape[0]
        labels = number_array(self.labels, "labels", 1, "iu")
        if labels.size != m or (m and not 1 <= labels.min() <= labels.max() <= k):
            raise invalid(f"labels must be {m} integers between 1 and n_clusters={k}, one per point")
        if self.kind == "centers" and (m != k or self.grid is not None):
            raise invalid(f"a K-means model has one centre per cluster ({k}) and no grid, got {m} centres")
        self.labels = labels.astype(labels_dtype(k))

    def _check_normalizer(self):
        n, nf = self.normalizer, self.n_features
        if not isinstance(n, Normalizer):
            raise invalid(f"normalizer must be a Normalizer, got {type(n).__name__}")
        offset, scale = (number_array(a, name, 1) for a, name in ((n.offset, "offset"), (n.scale, "scale")))
        if offset.size != nf or scale.size != nf or not np.isfinite(offset).all() or not (scale > 0).all():
            raise invalid(f"the normalizer's offset and scale must be {nf} finite numbers (scale > 0)")
        if (n.clip_low is None) != (n.clip_high is None):
            raise invalid("the normalizer has one clip limit without the other")
        clips = ()
        if n.clip_low is not None:
            clips = (number_array(n.clip_low, "clip_low", 1), number_array(n.clip_high, "clip_high", 1))
            if clips[0].size != nf or clips[1].size != nf or not (clips[0] <= clips[1]).all():
                raise invalid(f"the normalizer's clip limits must be {nf} numbers, low <= high")
        self.normalizer = Normalizer(offset, scale, *clips)

    def _check_grid(self):
        g, (m, nf) = self.grid, self.points.shape
        if not isinstance(g, UnitGrid):
            raise invalid(f"grid must be a UnitGrid, got {type(g).__name__}")
        if not is_int(g.levels) or not 1 <= g.levels or int(g.levels) ** nf > 2**62:
            raise invalid(f"the grid's levels={g.levels!r} must be an integer >= 1 with levels**{nf} < 2**62")
        lo = number_array(g.lo, "the grid's lo", 1)
        span = number_array(g.span, "the grid's span", 1)
        finite = np.isfinite(lo).all() and (np.isfinite(span) & (span > 0)).all()
        if lo.size != nf or span.size != nf or not finite:
            raise invalid(f"the grid's lo and span must be {nf} finite numbers (span > 0)")
        codes = number_array(g.unit_codes, "the grid's unit_codes", 1, "iu")
        if codes.size != m or codes[0] < 0 or codes[-1] >= int(g.levels) ** nf or np.any(np.diff(codes) <= 0):
            raise invalid(f"the grid's unit_codes must be {m} increasing cell codes, one per point")
        self.grid = UnitGrid(int(g.levels), lo, span, codes.astype(np.int64))

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
        if rgb is not None and check_bool("rgb", rgb) != p.rgb:
            raise ValueError(
                f"this model was fitted on {'RGB' if p.rgb else 'non-RGB'} images but the image is "
                f"{'RGB' if rgb else 'not RGB'}; apply it to an image like the one it was fitted on."
            )
        if channel_axis is None and self.n_channels > 1 and not p.rgb:
            channel_axis = p.channel_axis if len(image.shape) == self.ndim else -1
        if p.rgb:
            channel_axis = -1
        ndim = len(image.shape)  # array-likes (not loaded yet) need not have .ndim
        channel_axis = normalize_axis(channel_axis, ndim, "channel_axis")
        time_axis = normalize_axis(time_axis, ndim, "time_axis")
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
        if time_axis is not None and time_axis == channel_axis:
            raise ValueError(
                f"time_axis={time_axis} is also the channel axis; the time and channel axes must differ."
            )
        n_spatial = ndim - (channel_axis is not None) - (time_axis is not None)
        self._check_features(image.shape, n_spatial)
        if spacing is None and p.spacing is not None and ndim == self.ndim:
            spacing = p.spacing
        spacing = check_spacing(spacing, n_spatial)
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
        if pix.n_channels != self.points.shape[1]:  # never hand the kernels rows of another width
            raise ValueError(
                f"the image gives {pix.n_channels} features per pixel but the model has "
                f"{self.points.shape[1]}; apply it to an image like the one it was fitted on."
            )
        return pix, channel_axis, time_axis

    def _check_features(self, shape, n_spatial):
        """ValueError unless an image of ``shape`` with ``n_spatial`` spatial axes gives the model's
        features."""
        if n_spatial < 1:
            raise ValueError(
                f"the image of shape {shape} has no spatial axis besides its channel and time axes; "
                "pass an image with at least one spatial axis."
            )
        got = n_features(self.params.features, self.n_channels, n_spatial)
        if got != self.points.shape[1]:
            raise ValueError(
                f"this model's features (filters / spatial coordinates) were computed on images with "
                f"{self.n_spatial} spatial axes ({self.points.shape[1]} features), but the image of shape "
                f"{shape} has {n_spatial} ({got} features); apply it to images with {self.n_spatial} "
                "spatial axes (pass time_axis for a time axis)."
            )

    def _predict(self, image, **options):
        """Labels of ``image`` and the statistics they came from (see :meth:`predict`)."""
        p = self.params
        pix, channel_axis, time_axis = self._pixels(image, **options)
        if pix.n_channels > GRID_MAX_CHANNELS:  # many features: each pixel to its nearest centre / unit
            nearest, counts, sums, total_sq = label_pixels(
                pix.values, lambda chunk: self.normalizer(chunk, dtype=np.float32), self.points
            )
            out = self.labels[nearest]
            with np.errstate(invalid="ignore", divide="ignore"):
                means = sums / np.maximum(counts, 1)[:, None]
            groups = _Groups(means, counts.astype(np.float64), self.labels, total_sq, per_centre=True)
        else:
            red = reduce_pixels(pix.values)
            per_point = self._label_points(self.normalizer(red.raw_points)).astype(self.labels.dtype)
            out = red.map_pixels(pix.values, per_point, np.empty(pix.n_valid, per_point.dtype))
            groups = _Groups(red.raw_points, red.weights, per_point, red.total_sq, per_centre=False)
        labels = scatter_valid(out, pix.shape, pix.valid)
        if p.min_size > 1 or p.hole_size > 0:
            labels = clean_labels(labels, min_size=p.min_size, hole_size=p.hole_size, time_axis=pix.time_axis)
        return _Prediction(labels, pix, groups, channel_axis, time_axis)

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
        return self._predict(image, **options).labels

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
        run = self._predict(image, **options)
        labels, pix, g = run.labels, run.pix, run.groups
        k = self.n_clusters
        with np.errstate(invalid="ignore", divide="ignore"):
            feature_means, _, inertia, feature_centers = cluster_stats(
                g.raw_points, g.weights, g.labels.astype(np.intp) - 1, k, g.total_sq, self.normalizer
            )
            if g.per_centre:  # from the groups' rounded means, as the fit's sampled path
                feature_centers = self.normalizer(feature_means)
        flat = labels.ravel() if pix.valid is None else labels.ravel()[pix.valid]
        centers = pixel_group_means(pix.base_values, flat, k + 1)[1:]
        counts = np.bincount(labels.ravel(), minlength=k + 1)[1:].astype(np.int64)
        spacing = options.get("spacing", self.params.spacing)
        params = replace(self.params, channel_axis=run.channel_axis, time_axis=run.time_axis, spacing=spacing)
        return ClusterResult(
            labels,
            centers,
            counts,
            inertia,
            params,
            self,
            feature_centers=feature_centers,
            feature_names=pix.names,
        )

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        """Plain-Python form (JSON-serialisable) of the model."""
        return model_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ClusterModel:
        """Inverse of :meth:`to_dict`; raises ValueError for anything else.

        Every part is checked: known keys and version, options as
        :func:`cluster_image` checks them, and arrays of the right shape and
        type, finite, consistent with each other and with the model's
        channels and features; labels between 1 and ``n_clusters``.
        """
        return cls(*model_args(d))

    def save(self, path) -> Path:
        """Write the model to a JSON file; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, path) -> ClusterModel:
        """Read a model written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is not a model file (not text, not JSON, or a model
            that is incomplete, damaged or of another version); the message
            names the file and what is wrong.
        """
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ValueError(
                f"{path} is not a JSON model file (it is not UTF-8 text, e.g. an image or another binary "
                "file); load a file written by ClusterModel.save()."
            ) from None
        except (json.JSONDecodeError, RecursionError) as err:
            raise ValueError(
                f"{path} is not a JSON model file ({err}); load a file written by ClusterModel.save()."
            ) from None
        try:
            return cls.from_dict(d)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
