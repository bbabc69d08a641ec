"""Parameter validation for :func:`cluster_image`, kept in one place.

Every check raises a :class:`ValueError` (or :class:`TypeError` for a wrong
type) whose message names the bad value and says how to fix it.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field

import numpy as np

from .features import FeatureSpec, validate_features

METHODS = ("kmeans", "agglomerative", "divisive")
LINKAGES = ("ward", "complete", "average", "single")
NORMALIZATIONS = ("none", "minmax", "zscore", "percentile")
#: The methods ``connected=True`` works with (K-means groups pixels by value only).
CONNECTED_METHODS = ("agglomerative", "divisive")
#: The methods that read ``linkage``.
LINKAGE_METHODS = ("agglomerative",)

#: Largest number of clusters accepted (labels are stored as uint8/uint16).
MAX_CLUSTERS = 1000
#: Most spatial axes ``connected=True`` works on (superpixels are 2D or 3D, or 1D as one row).
MAX_CONNECTED_AXES = 3


@dataclass(frozen=True)
class Rule:
    """How one option of :func:`cluster_image` is checked.

    ``kind``: "int" (between ``low`` and ``high``; None: unbounded), "choice" (one of
    ``choices``, any case), "bool", "number" (a real number, at least ``low``), or "axis",
    "pair", "features", "sequence" (checked by their own code: axes against the image,
    percentiles, the feature options, spacing). ``default`` is :func:`cluster_image`'s;
    ``optional``: None is allowed too; ``fix`` ends the message of a value out of range.
    """

    kind: str
    default: object = None
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    optional: bool = False
    fix: str = ""


#: Every option of :func:`cluster_image` (in its documented order) and its rule: what
#: :func:`validate_params` checks and what a user interface offers.
OPTION_RULES = {
    "n_clusters": Rule("int", 3, 2, MAX_CLUSTERS, fix="A segmentation needs at least 2 clusters."),
    "method": Rule("choice", "kmeans", choices=METHODS),
    "linkage": Rule("choice", "ward", choices=LINKAGES),
    "channel_axis": Rule("axis", optional=True),
    "rgb": Rule("bool", False),
    "time_axis": Rule("axis", optional=True),
    "normalize": Rule("choice", "minmax", choices=NORMALIZATIONS),
    "percentiles": Rule("pair", (1.0, 99.0), 0, 100),
    "smoothing": Rule("number", 0.0, 0, fix="(the Gaussian sigma in pixels; 0 turns it off)"),
    "fit_stride": Rule(
        "int",
        1,
        1,
        fix="Use 1 to fit on every pixel, 2 to fit on every second pixel along each spatial axis, ...",
    ),
    "n_init": Rule("int", 4, 1, 100),
    "max_units": Rule("int", 2048, 16, 8192),
    "random_state": Rule("int", 0, 0, optional=True),
    "connected": Rule("bool", False),
    "color_space": Rule("features", "rgb"),
    "filters": Rule("features", ()),
    "scales": Rule("features", (1.0, 4.0)),
    "spatial_weight": Rule("number", 0.0, 0, fix="(0 turns it off)"),
    "intensity": Rule("bool", True),
    "spacing": Rule("sequence", optional=True),
    "min_size": Rule("int", 0, 0, fix="Islands smaller than this many pixels are merged; 0 keeps all."),
    "hole_size": Rule("int", 0, 0, fix="Holes up to this many pixels are filled; 0 keeps all."),
}

#: The options of :func:`cluster_image` that :func:`validate_params` checks, in order.
OPTIONS = tuple(OPTION_RULES)


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

    def as_dict(self) -> dict:
        """Plain-Python dict of the options (JSON-serialisable)."""
        d = asdict(self)
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
        unknown = sorted(set(options) - set(OPTION_RULES))
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


def check_int(name, value, low=None, high=None, *, fix="", message=None) -> int:
    """``value`` as an int between ``low`` and ``high`` (None: unbounded): the one integer check.

    Not an integer (True and False are not) is a TypeError, out of range a ValueError, both
    naming the value; ``message`` (formatted with ``value``, ``low`` and ``high``) replaces both by
    one ValueError in the caller's words.
    """
    integer = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    if integer and (low is None or value >= low) and (high is None or value <= high):
        return int(value)
    if message is not None:
        raise ValueError(message.format(value=value, low=low, high=high))
    if not integer:
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    bounds = f">= {low}" if high is None else (f"<= {high}" if low is None else f"between {low} and {high}")
    raise ValueError(f"{name} must be {bounds}, got {int(value)}. {fix}".rstrip())


def _check_choice(name, value, choices):
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(map(repr, choices))}.")
    return value.lower()


def check_option(name, value):
    """``value`` checked by the rule of option ``name`` in :data:`OPTION_RULES` (integers, choices,
    bools and numbers; the other kinds are returned as they are)."""
    rule = OPTION_RULES[name]
    if value is None and rule.optional:
        return None
    if rule.kind == "int":
        return check_int(name, value, rule.low, rule.high, fix=rule.fix)
    if rule.kind == "choice":
        return _check_choice(name, value, rule.choices)
    if rule.kind == "bool":
        return check_bool(name, value)
    if rule.kind == "number":
        number = _is_number(value) and np.isfinite(_float(value)) and value >= rule.low
        if not number:
            raise ValueError(f"{name}={value!r} must be a finite number >= {rule.low:g} {rule.fix}.")
        return float(value)
    return value


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


def validate_params(ndim, **options) -> ClusterParams:
    """Check every option of :func:`cluster_image` (rules: :data:`OPTION_RULES`; missing ones take their
    defaults, ``n_clusters`` is required) against an image of ``ndim`` dims."""
    unknown = sorted(set(options) - set(OPTION_RULES))
    if unknown or "n_clusters" not in options:
        what = f"unknown option(s) {', '.join(unknown)}" if unknown else "n_clusters is missing"
        raise TypeError(f"{what}; the options are: {', '.join(OPTIONS)}.")
    o = {name: options.get(name, rule.default) for name, rule in OPTION_RULES.items()}
    for name in ("n_clusters", "method", "linkage", "normalize", "rgb", "connected", "intensity"):
        o[name] = check_option(name, o[name])
    channel_axis, time_axis, n_spatial = _check_axes(ndim, o["channel_axis"], o["time_axis"], o["rgb"])
    percentiles = _check_percentiles(o["percentiles"])
    for name in ("smoothing", "fit_stride", "n_init", "max_units"):
        o[name] = check_option(name, o[name])
    check_combinations(
        o["method"],
        o["connected"],
        n_spatial,
        f"{ndim}D image with channel_axis={channel_axis} and time_axis={time_axis}",
    )
    o["random_state"] = check_option("random_state", o["random_state"])
    if not _is_number(o["spatial_weight"]):  # its range is checked with the other feature options
        raise ValueError(f"spatial_weight={o['spatial_weight']!r} must be a number >= 0 (0 turns it off).")
    for name in ("min_size", "hole_size"):
        o[name] = check_option(name, o[name])
    features = validate_features(
        o["color_space"], o["filters"], o["scales"], _float(o["spatial_weight"]), o["intensity"], rgb=o["rgb"]
    )
    params = {name: o[name] for name in ("n_clusters", "method", "linkage", "normalize", "rgb", "smoothing")}
    params.update(
        {name: o[name] for name in ("fit_stride", "n_init", "max_units", "connected", "random_state")}
    )
    return ClusterParams(
        **params,
        channel_axis=channel_axis,
        time_axis=time_axis,
        percentiles=percentiles,
        features=features,
        spacing=check_spacing(o["spacing"], n_spatial),
        min_size=o["min_size"],
        hole_size=o["hole_size"],
    )


def _check_axes(ndim, channel_axis, time_axis, rgb):
    """The channel and time axes as indices (RGB: the last axis holds the channels), and the
    number of spatial axes left."""
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
    return channel_axis, time_axis, n_spatial


def _check_percentiles(percentiles) -> tuple[float, float]:
    try:
        lo, hi = (float(p) for p in percentiles)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"percentiles must be a pair of numbers (low, high), got {percentiles!r}.") from None
    if not OPTION_RULES["percentiles"].low <= lo < hi <= OPTION_RULES["percentiles"].high:
        raise ValueError(f"percentiles={percentiles!r} must satisfy 0 <= low < high <= 100, e.g. (1, 99).")
    return lo, hi


def check_combinations(method, connected, n_spatial, image="image"):
    """The allowed combinations: ``connected=True`` only with :data:`CONNECTED_METHODS` and on
    at most :data:`MAX_CONNECTED_AXES` spatial axes (``image`` describes the image for the message)."""
    if connected and method not in CONNECTED_METHODS:
        raise ValueError(
            "connected=True needs a hierarchical method ('agglomerative' or 'divisive'): K-means "
            "groups pixels by value only; use connected=False with it."
        )
    if connected and n_spatial > MAX_CONNECTED_AXES:
        raise ValueError(
            f"connected=True works on images with 1 to {MAX_CONNECTED_AXES} spatial axes, but this "
            f"{image} has {n_spatial}; pass time_axis (and channel_axis) for the axes that are not spatial, "
            "or connected=False."
        )
