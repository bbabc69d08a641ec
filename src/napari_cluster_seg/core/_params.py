"""Parameter validation for :func:`cluster_image`, kept in one place.

Every check raises a :class:`ValueError` (or :class:`TypeError` for a wrong
type) whose message names the bad value and says how to fix it.
"""

from __future__ import annotations

import inspect
import numbers
from dataclasses import asdict, dataclass, field

import numpy as np

from .features import FeatureSpec, validate_features

METHODS = ("kmeans", "agglomerative", "divisive")
LINKAGES = ("ward", "complete", "average", "single")
NORMALIZATIONS = ("none", "minmax", "zscore", "percentile")

#: Largest number of clusters accepted (labels are stored as uint8/uint16).
MAX_CLUSTERS = 1000
#: Most spatial axes ``connected=True`` works on (superpixels are 2D or 3D, or 1D as one row).
MAX_CONNECTED_AXES = 3


@dataclass(frozen=True)
class ClusterParams:
    """Validated, normalised options of one clustering run.

    Stored in the result (and in a napari layer's metadata) so that a run can
    be reproduced exactly.
    """

    n_clusters: int
    method: str = "kmeans"
    linkage: str = "ward"
    channel_axis: int | None = None
    rgb: bool = False
    time_axis: int | None = None
    normalize: str = "minmax"
    percentiles: tuple[float, float] = (1.0, 99.0)
    smoothing: float = 0.0
    fit_stride: int = 1
    n_init: int = 4
    max_units: int = 2048
    connected: bool = False
    random_state: int | None = 0
    features: FeatureSpec = field(default_factory=FeatureSpec)
    spacing: tuple | None = None
    min_size: int = 0
    hole_size: int = 0
    extra: dict = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict:
        """Plain-Python dict of the options (JSON-serialisable)."""
        d = asdict(self)
        d.pop("extra")
        d["percentiles"] = list(self.percentiles)
        d["features"] = self.features.as_dict()
        d["spacing"] = None if self.spacing is None else list(self.spacing)
        return d

    @classmethod
    def from_dict(cls, d: dict, ndim: int) -> ClusterParams:
        """Inverse of :meth:`as_dict`: every value checked by :func:`validate_params` for an image
        of ``ndim`` dimensions (missing options take their defaults; unknown ones are an error)."""
        if not isinstance(d, dict) or not isinstance(d.get("features", {}), dict):
            raise TypeError(f"the options must be a dict (with a 'features' dict), got {type(d).__name__}.")
        options = {key: value for key, value in d.items() if key != "features"}
        options.update(d.get("features", {}))
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))}")
        return validate_params(ndim, **options)


def labels_dtype(k: int):
    """dtype of a label image with labels 0..k (every result's and every model's)."""
    return np.uint8 if k < 256 else np.uint16


def check_bool(name, value) -> bool:
    """``value`` as a bool: True/False (also numpy's); anything else (e.g. "no", 1) is a TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__}).")
    return bool(value)


def check_spacing(spacing, n_spatial: int):
    """``spacing`` as a tuple of ``n_spatial`` positive pixel sizes (None stays None)."""
    if spacing is None:
        return None
    try:
        spacing = tuple(float(abs(s)) for s in spacing)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"spacing must be a sequence of pixel sizes, one per spatial axis, got {spacing!r}."
        ) from None
    if len(spacing) != n_spatial or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(
            f"spacing={spacing!r} needs {n_spatial} positive pixel sizes, one per spatial axis "
            "(not the channel or time axis)."
        )
    return spacing


def _is_number(value) -> bool:
    """A real number (True and False are not numbers here: a checkbox's value in a number's place)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _float(value: numbers.Real) -> float:
    """``value`` as a float; integers beyond float's range become infinite (not an OverflowError)."""
    try:
        return float(value)
    except OverflowError:
        return np.inf if value > 0 else -np.inf


def _check_int(name, value, *, low, high=None, fix=""):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {bounds}, got {value}. {fix}".rstrip())
    return value


def _check_choice(name, value, choices):
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(map(repr, choices))}.")
    return value.lower()


def normalize_axis(axis, ndim, name):
    """Return ``axis`` as a non-negative index into ``ndim`` axes, or None."""
    if axis is None:
        return None
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} must be an integer axis index or None, got {axis!r}.")
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{name}={axis} is out of range for an image with {ndim} dimensions; "
            f"use an axis between {-ndim} and {ndim - 1}."
        )
    return int(axis) % ndim


def validate_params(
    ndim,
    *,
    n_clusters,
    method="kmeans",
    linkage="ward",
    channel_axis=None,
    rgb=False,
    time_axis=None,
    normalize="minmax",
    percentiles=(1.0, 99.0),
    smoothing=0.0,
    fit_stride=1,
    n_init=4,
    max_units=2048,
    random_state=0,
    connected=False,
    color_space="rgb",
    filters=(),
    scales=(1.0, 4.0),
    spatial_weight=0.0,
    intensity=True,
    spacing=None,
    min_size=0,
    hole_size=0,
) -> ClusterParams:
    """Check every option of :func:`cluster_image` against an image of ``ndim`` dims."""
    n_clusters = _check_int(
        "n_clusters",
        n_clusters,
        low=2,
        high=MAX_CLUSTERS,
        fix="A segmentation needs at least 2 clusters.",
    )
    method = _check_choice("method", method, METHODS)
    linkage = _check_choice("linkage", linkage, LINKAGES)
    normalize = _check_choice("normalize", normalize, NORMALIZATIONS)
    rgb = check_bool("rgb", rgb)
    connected = check_bool("connected", connected)
    intensity = check_bool("intensity", intensity)
    if rgb:
        if channel_axis is not None and normalize_axis(channel_axis, ndim, "channel_axis") != ndim - 1:
            raise ValueError(
                f"rgb=True needs the colour channels on the last axis, but channel_axis={channel_axis}; "
                "pass channel_axis=None (or -1) with rgb=True."
            )
        channel_axis = ndim - 1
    channel_axis = normalize_axis(channel_axis, ndim, "channel_axis")
    time_axis = normalize_axis(time_axis, ndim, "time_axis")
    if time_axis is not None and time_axis == channel_axis:
        raise ValueError(
            f"time_axis={time_axis} is also the channel axis; the time and channel axes must differ."
        )
    n_spatial = ndim - (channel_axis is not None) - (time_axis is not None)
    if n_spatial < 1:
        raise ValueError(
            f"an image of {ndim} dimensions with channel_axis={channel_axis} and time_axis={time_axis} "
            "has no spatial axis left; pass at least a 2D image."
        )
    try:
        lo, hi = (float(p) for p in percentiles)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"percentiles must be a pair of numbers (low, high), got {percentiles!r}.") from None
    if not 0 <= lo < hi <= 100:
        raise ValueError(f"percentiles={percentiles!r} must satisfy 0 <= low < high <= 100, e.g. (1, 99).")
    if not _is_number(smoothing) or not np.isfinite(_float(smoothing)) or smoothing < 0:
        raise ValueError(
            f"smoothing={smoothing!r} must be a finite number >= 0 "
            "(the Gaussian sigma in pixels; 0 turns it off)."
        )
    fit_stride = _check_int(
        "fit_stride",
        fit_stride,
        low=1,
        fix="Use 1 to fit on every pixel, 2 to fit on every second pixel along each spatial axis, ...",
    )
    n_init = _check_int("n_init", n_init, low=1, high=100)
    max_units = _check_int("max_units", max_units, low=16, high=8192)
    if connected and method == "kmeans":
        raise ValueError(
            "connected=True needs a hierarchical method ('agglomerative' or 'divisive'): K-means "
            "groups pixels by value only; use connected=False with it."
        )
    if connected and n_spatial > MAX_CONNECTED_AXES:
        raise ValueError(
            f"connected=True works on images with 1 to {MAX_CONNECTED_AXES} spatial axes, but this "
            f"{ndim}D image with channel_axis={channel_axis} and time_axis={time_axis} has {n_spatial}; "
            "pass time_axis (and channel_axis) for the axes that are not spatial, or connected=False."
        )
    if random_state is not None:
        random_state = _check_int("random_state", random_state, low=0)
    if not _is_number(spatial_weight):
        raise ValueError(f"spatial_weight={spatial_weight!r} must be a number >= 0 (0 turns it off).")
    spatial_weight = _float(spatial_weight)
    min_size = _check_int(
        "min_size", min_size, low=0, fix="Islands smaller than this many pixels are merged; 0 keeps all."
    )
    hole_size = _check_int(
        "hole_size", hole_size, low=0, fix="Holes up to this many pixels are filled; 0 keeps all."
    )
    features = validate_features(color_space, filters, scales, spatial_weight, intensity, rgb=rgb)
    spacing = check_spacing(spacing, n_spatial)
    return ClusterParams(
        n_clusters=n_clusters,
        method=method,
        linkage=linkage,
        channel_axis=channel_axis,
        rgb=rgb,
        time_axis=time_axis,
        normalize=normalize,
        percentiles=(lo, hi),
        smoothing=float(smoothing),
        fit_stride=fit_stride,
        n_init=n_init,
        max_units=max_units,
        connected=connected,
        random_state=random_state,
        features=features,
        spacing=spacing,
        min_size=min_size,
        hole_size=hole_size,
    )


#: The options of :func:`cluster_image` that :func:`validate_params` checks, in order.
OPTIONS = tuple(inspect.signature(validate_params).parameters)[1:]
