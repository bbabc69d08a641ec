"""The JSON form of a :class:`~.model.ClusterModel`: its keys, the checks of what a file holds, and the
conversion both ways (:func:`model_dict`, :func:`model_args`)."""

from __future__ import annotations

import numbers

import numpy as np

from ._params import ClusterParams
from .normalize import Normalizer
from .units import UnitGrid

#: What a saved model says it is, and the version of its form.
FORMAT = "napari-cluster-seg model"
VERSION = 1
#: The keys of a saved model, of its normaliser and of its grid (all required, no others).
MODEL_KEYS = ("format", "version", "params", "n_channels", "ndim", "normalizer", "kind")
MODEL_KEYS += ("points", "labels", "grid")
NORMALIZER_KEYS = ("offset", "scale", "clip_low", "clip_high")
GRID_KEYS = ("levels", "lo", "span", "unit_codes")
#: Most dimensions of an image a model can be fitted on (numpy's limit).
MAX_NDIM = 64


def as_list(x):
    return None if x is None else np.asarray(x, np.float64).tolist()


def invalid(what: str) -> ValueError:
    return ValueError(
        f"the model is incomplete or damaged: {what}; save the model again from a fitted result."
    )


def is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def number_array(x, name: str, ndim: int, kinds: str = "iuf") -> np.ndarray:
    """``x`` (nested lists) as an array of ``ndim`` dimensions of numbers of the dtype kinds ``kinds``."""
    try:
        a = np.asarray(x)
    except (TypeError, ValueError, OverflowError):
        a = None
    if (
        a is None
        or a.dtype.kind not in kinds
        or a.ndim != ndim
        or (a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max)
    ):
        what = "integers" if kinds == "iu" else "numbers"
        shape = "" if a is None else f", got shape {a.shape} of {a.dtype}"
        raise invalid(f"{name} must be a {ndim}D array of {what}{shape}")
    return a.astype(np.int64 if kinds == "iu" else np.float64)


def checked_keys(d, keys, name: str) -> dict:
    if not isinstance(d, dict):
        raise invalid(f"{name} must be a dict, got {type(d).__name__}")
    missing, unknown = sorted(set(keys) - set(d)), sorted(set(d) - set(keys))
    if missing or unknown:
        raise invalid(f"{name} lacks the key(s) {missing} or has unknown key(s) {unknown}")
    return d


def model_dict(model) -> dict:
    """The plain-Python form (JSON-serialisable) of a :class:`~.model.ClusterModel`."""
    n = model.normalizer
    grid = None
    if model.grid is not None:
        grid = {
            "levels": int(model.grid.levels),
            "lo": as_list(model.grid.lo),
            "span": as_list(model.grid.span),
            "unit_codes": np.asarray(model.grid.unit_codes, np.int64).tolist(),
        }
    return {
        "format": FORMAT,
        "version": VERSION,
        "params": model.params.as_dict(),
        "n_channels": int(model.n_channels),
        "ndim": int(model.ndim),
        "normalizer": {
            "offset": as_list(n.offset),
            "scale": as_list(n.scale),
            "clip_low": as_list(n.clip_low),
            "clip_high": as_list(n.clip_high),
        },
        "kind": model.kind,
        "points": as_list(model.points),
        "labels": np.asarray(model.labels, np.int64).tolist(),
        "grid": grid,
    }


def model_args(d: dict) -> tuple:
    """The arguments of :class:`~.model.ClusterModel` (params, n_channels, ndim, normalizer, kind,
    points, labels, grid) read from its plain-Python form ``d``, which the model then checks
    against each other; ValueError for anything that is not such a form."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT!r} file; load a model saved with ClusterModel.save().")
    version = d.get("version")
    if not is_int(version) or version != VERSION:
        raise ValueError(
            f"model format version {version!r} is not supported by this version "
            f"(reads version {VERSION}); refit the model or upgrade napari-cluster-seg."
        )
    checked_keys(d, MODEL_KEYS, "the model")
    ndim = d["ndim"]
    if not is_int(ndim) or not 1 <= ndim <= MAX_NDIM:
        raise invalid(f"ndim={ndim!r} must be an integer between 1 and {MAX_NDIM}")
    try:
        params = ClusterParams.from_dict(d["params"], ndim)
    except (TypeError, ValueError) as err:
        raise invalid(f"its options: {err}") from None
    nd = checked_keys(d["normalizer"], NORMALIZER_KEYS, "the normalizer")
    clips = [None if nd[key] is None else number_array(nd[key], key, 1) for key in ("clip_low", "clip_high")]
    offset, scale = number_array(nd["offset"], "offset", 1), number_array(nd["scale"], "scale", 1)
    normalizer = Normalizer(offset, scale, *clips)
    grid = None
    if d["grid"] is not None:
        g = checked_keys(d["grid"], GRID_KEYS, "the grid")
        grid = UnitGrid(
            g["levels"],
            number_array(g["lo"], "the grid's lo", 1),
            number_array(g["span"], "the grid's span", 1),
            number_array(g["unit_codes"], "the grid's unit_codes", 1, "iu"),
        )
    points = number_array(d["points"], "points", 2)
    labels = number_array(d["labels"], "labels", 1, "iu")
    return params, d["n_channels"], ndim, normalizer, d["kind"], points, labels, grid
