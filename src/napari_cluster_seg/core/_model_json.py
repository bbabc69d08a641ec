"""The JSON form of a :class:`~.model.ClusterModel`: its keys and the checks of what a file holds."""

from __future__ import annotations

import numbers

import numpy as np

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
