"""Property test of :func:`cluster_image` over random small images (hypothesis).

Every dtype (bool, uint8..uint64, int8..int64, float16/32/64, with extreme values, ranges of a
few ulps, constant images, NaN and inf), every layout (1D, grey 2D, 3D, RGB/RGBA, up to 8
channels on any axis, time series, with or without a mask), every method (K-means, all four
linkages, divisive; connected or not) and the options (normalisations, smoothing, fit_stride,
features, clean-up, k = 2..6), with and without the numba kernels. The contract checked:

* the call raises a ``ValueError`` or ``TypeError`` from the package's own code, or returns a
  result whose labels have the image's shape without its channel axis, values 0..k, 0 exactly
  on the invalid pixels (NaN / inf in a used channel, or outside the mask), every label 1..k
  present (before clean-up: clean-up may merge a whole cluster away), counts equal to the label
  histogram, finite centres ordered darkest first, finite non-negative inertia;
* centres are the mean channel values of each label's pixels (smoothed values when smoothing
  without features: then only within the values' range), feature centres the mean normalised
  features and the inertia their sum of squares (all before clean-up, and not checked against
  the clipped space of ``normalize="percentile"``);
* the same ``random_state`` gives the identical result; the image and mask are not modified;
* ``result.model.predict(image)`` (also after a JSON round trip) gives the result's labels for
  K-means and colour-class models, valid labels for connected ones;
* hierarchical results: ``cut(k2)`` satisfies the same contract, ``cut(k)`` gives the labels
  back, cuts nest, and the dendrogram's ``cut_height(k)`` leaves k clusters.

Profiles (registered in ``tests/conftest.py``, chosen by ``HYPOTHESIS_PROFILE``): ``ci`` (the
default: derandomised, a few hundred examples in total, well under two minutes) and ``long``
(random, thousands of examples; e.g. ``HYPOTHESIS_PROFILE=long pytest tests/core/test_properties.py``,
also with ``NAPARI_CLUSTER_SEG_NUMBA=0``).
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays, from_dtype

import napari_cluster_seg
from napari_cluster_seg import ClusterModel, cluster_image
from napari_cluster_seg.core import _accel
from napari_cluster_seg.core.features import FILTERS
from napari_cluster_seg.core.preprocess import LUMA_WEIGHTS

PACKAGE_DIR = str(Path(napari_cluster_seg.__file__).resolve().parent)
DTYPES = ("bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64") + (
    "float16",
    "float32",
    "float64",
)
#: Examples of the main test in the loaded profile; the smaller tests take a share of them.
N_EXAMPLES = settings().max_examples
FUZZ = settings(
    settings(), suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None
)


# ---------------------------------------------------------------- strategies
@st.composite
def layouts(draw):
    """(image shape, layout options, channel axis or None, number of channels used)."""
    kinds = ["grey2d", "grey2d", "grey3d", "rgb", "channels", "time", "time+channels", "1d"]
    kind = draw(st.sampled_from(kinds))
    side = st.integers(1, 24)
    small = st.integers(1, 10)
    if kind == "1d":
        return (draw(st.integers(1, 64)),), {}, None, 1
    if kind == "grey2d":
        return (draw(side), draw(side)), {}, None, 1
    if kind == "grey3d":
        return (draw(st.integers(1, 3)), draw(small), draw(small)), {}, None, 1
    if kind == "rgb":
        c = draw(st.sampled_from([3, 4]))
        return (draw(side), draw(side), c), {"rgb": True}, 2, 3
    if kind == "channels":
        c = draw(st.integers(2, 8))
        h, w = draw(small), draw(small)
        axis = draw(st.sampled_from([0, 2, -1]))
        shape = (c, h, w) if axis == 0 else (h, w, c)
        return shape, {"channel_axis": axis}, axis % 3, c
    t = draw(st.integers(1, 3))
    if kind == "time":
        axis = draw(st.sampled_from([0, 2]))
        h, w = draw(side), draw(side)
        shape = (t, h, w) if axis == 0 else (h, w, t)
        return shape, {"time_axis": axis}, None, 1
    c = draw(st.sampled_from([2, 3, 4]))
    rgb = c in (3, 4) and draw(st.booleans())
    shape = (t, draw(small), draw(small), c)
    opts = {"time_axis": 0, "rgb": True} if rgb else {"time_axis": 0, "channel_axis": -1}
    return shape, opts, 3, 3 if rgb else c


def _extremes(dtype):
    if dtype.kind == "b":
        return [False, True]
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        vals = [info.min, info.min + 1, info.max - 1, info.max, 0, 1]
        if dtype == np.uint64:
            vals += [2**63, 2**63 - 1, 2**63 + 1]
        if dtype.kind == "i":
            vals += [-1]
        return vals
    info = np.finfo(dtype)
    return [info.max, -info.max, info.tiny, -info.tiny, info.smallest_subnormal, 0.0, -0.0, 1.0, info.eps]


@st.composite
def palettes(draw, dtype):
    """A few values of ``dtype``: any, extreme, within a few ulps of each other, or one value."""
    if dtype.kind == "b":
        return np.array(draw(st.lists(st.booleans(), min_size=1, max_size=2, unique=True)), dtype)
    mode = draw(st.sampled_from(["any", "extreme", "tiny", "constant", "levels"]))
    finite = from_dtype(dtype, allow_nan=False, allow_infinity=False)
    if mode == "any":
        vals = draw(st.lists(finite, min_size=1, max_size=8))
    elif mode == "extreme":
        vals = draw(st.lists(st.sampled_from(_extremes(dtype)), min_size=1, max_size=5))
    elif mode == "constant":
        vals = [draw(finite)]
    elif mode == "levels":  # a few evenly spaced levels, as in a quantised image
        n = draw(st.integers(2, 8))
        step = draw(st.sampled_from([1, 3, 16, 60]))
        vals = [i * step for i in range(n)]
        if dtype.kind == "i":
            vals = [v - step * (n // 2) for v in vals]
        fits = [v for v in vals if dtype.kind == "f" or np.can_cast(np.min_scalar_type(v), dtype, "safe")]
        vals = fits or [0]
    else:  # tiny: a base value and its next representable neighbours
        base = np.asarray(draw(finite), dtype)
        steps = draw(st.lists(st.integers(0, 3), min_size=1, max_size=4))
        vals = []
        for s in steps:
            v = base
            for _ in range(s):
                if dtype.kind == "f":
                    nxt = np.nextafter(v, np.asarray(np.inf, dtype))
                    v = nxt if np.isfinite(nxt) else v
                else:
                    v = v if v == np.iinfo(dtype).max else np.asarray(int(v) + 1, dtype)
            vals.append(v)
    return np.array([np.asarray(v, dtype) for v in vals], dtype)


@st.composite
def patterns(draw, shape, n):
    """Index array of ``shape`` into a palette of ``n`` values: sparse, blocks or noise."""
    kind = draw(st.sampled_from(["sparse", "blocks", "noise"]))
    elems = st.integers(0, n - 1)
    if kind == "sparse" or n == 1:
        return draw(arrays(np.uint8, shape, elements=elems, fill=elems))
    if kind == "blocks":
        blocks = tuple(min(s, draw(st.integers(1, 4))) for s in shape)
        coarse = draw(arrays(np.uint8, blocks, elements=elems))
        reps = [-(-s // b) for s, b in zip(shape, blocks)]
        fine = coarse
        for ax, r in enumerate(reps):
            fine = np.repeat(fine, r, axis=ax)
        return fine[tuple(slice(0, s) for s in shape)]
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).integers(0, n, shape).astype(np.uint8)


@st.composite
def images(draw, shape, dtype):
    dtype = np.dtype(dtype)
    palette = draw(palettes(dtype))
    image = palette[draw(patterns(shape, palette.size))]
    if dtype.kind == "f" and draw(st.booleans()):  # NaN / inf, sparse or nearly everywhere
        fill = st.just(0) if draw(st.integers(0, 9)) else st.integers(0, 3)
        bad = draw(arrays(np.uint8, shape, elements=st.integers(0, 3), fill=fill))
        image[bad == 1] = np.nan
        image[bad == 2] = np.inf
        image[bad == 3] = -np.inf
    return image


@st.composite
def masks(draw, shape):
    kind = draw(st.sampled_from(["none", "none", "sparse", "blocks"]))
    if kind == "none":
        return None
    if kind == "sparse":
        return draw(arrays(bool, shape, elements=st.booleans(), fill=st.booleans()))
    return draw(patterns(shape, 2)).astype(bool)


@st.composite
def methods(draw):
    name = draw(st.sampled_from(["kmeans", "agglomerative", "divisive"]))
    opts = {}
    if name == "agglomerative":
        opts["linkage"] = draw(st.sampled_from(["ward", "complete", "average", "single"]))
    if name != "kmeans":
        opts["connected"] = draw(st.booleans())
        if draw(st.integers(0, 4)) == 0:
            opts["max_units"] = draw(st.integers(16, 64))
    return name, opts


@st.composite
def options(draw, rgb):
    opts = {"random_state": draw(st.integers(0, 2**31 - 1)), "n_init": draw(st.integers(1, 4))}
    opts["normalize"] = draw(st.sampled_from(["minmax", "zscore", "percentile", "none"]))
    if opts["normalize"] == "percentile" and draw(st.booleans()):
        opts["percentiles"] = draw(st.sampled_from([(0, 100), (5, 95), (10, 90), (0.5, 99.5)]))
    if draw(st.integers(0, 3)) == 0:
        opts["smoothing"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
    if draw(st.integers(0, 3)) == 0:
        opts["fit_stride"] = draw(st.integers(2, 3))
    if draw(st.integers(0, 2)) == 0:  # features
        if rgb:
            opts["color_space"] = draw(st.sampled_from(["rgb", "lab", "hsv"]))
        filters = draw(st.lists(st.sampled_from(FILTERS), max_size=2, unique=True))
        if filters:
            opts["filters"] = tuple(filters)
            opts["scales"] = tuple(draw(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=1, max_size=2)))
        if draw(st.booleans()):
            opts["spatial_weight"] = draw(st.sampled_from([0.5, 1.0, 5.0]))
        if (filters or opts.get("spatial_weight")) and draw(st.integers(0, 3)) == 0:
            opts["intensity"] = False
    if draw(st.integers(0, 3)) == 0:
        opts["min_size"] = draw(st.integers(0, 6))
        opts["hole_size"] = draw(st.integers(0, 6))
    return opts


@st.composite
def cases(draw):
    """Everything one call of cluster_image takes."""
    shape, layout, channel_axis, n_channels = draw(layouts())
    dtype = draw(st.sampled_from(DTYPES))
    image = draw(images(shape, dtype))
    spatial = tuple(s for ax, s in enumerate(shape) if ax != channel_axis)
    mask = draw(masks(spatial))
    method, method_opts = draw(methods())
    opts = {**layout, **method_opts, **draw(options(layout.get("rgb", False)))}
    k = draw(st.integers(2, 6))
    return {
        "image": image,
        "k": k,
        "method": method,
        "mask": mask,
        "opts": opts,
        "channel_axis": channel_axis,
        "n_channels": n_channels,
    }


@st.composite
def extreme_cases(draw):
    """Grey, 3D or RGB images of any dtype and the default options (but the normalisation)."""
    shape = draw(st.sampled_from([(16, 16), (3, 8, 8), (12, 12, 3)]))
    rgb = shape[-1] == 3
    return {
        "image": draw(images(shape, draw(st.sampled_from(DTYPES)))),
        "k": draw(st.integers(2, 4)),
        "method": draw(st.sampled_from(["kmeans", "agglomerative", "divisive"])),
        "mask": None,
        "opts": {"normalize": draw(st.sampled_from(["minmax", "zscore", "percentile", "none"])), "rgb": rgb},
        "channel_axis": 2 if rgb else None,
        "n_channels": 3 if rgb else 1,
    }


# ---------------------------------------------------------------- oracle
@contextmanager
def numba_kernels(use: bool):
    """Run with the compiled kernels (if numba is available) or the numpy paths only."""
    saved = _accel.kernels() if use else _accel._module
    _accel._module = saved if use else None
    try:
        yield
    finally:
        _accel._module = saved


def _channel_values(case):
    """(spatial shape + (channels,)) channel values as used (RGBA: no alpha), longdouble."""
    image, axis = case["image"], case["channel_axis"]
    cl = image[..., None] if axis is None else np.moveaxis(image, axis, -1)
    if case["opts"].get("rgb"):
        cl = cl[..., :3]
    return cl


def _valid(case, cl):
    valid = np.ones(cl.shape[:-1], bool)
    if cl.dtype.kind == "f":
        valid &= np.isfinite(cl).all(axis=-1)
    if case["mask"] is not None:
        valid &= case["mask"]
    return valid


def _features_active(opts):
    return (
        opts.get("color_space", "rgb") != "rgb"
        or bool(opts.get("filters"))
        or opts.get("spatial_weight", 0) > 0
        or not opts.get("intensity", True)
    )


def _cleaned(opts):
    return opts.get("min_size", 0) > 1 or opts.get("hole_size", 0) > 0


def _layout(case):
    return {key: case["opts"][key] for key in ("channel_axis", "rgb", "time_axis") if key in case["opts"]}


def check_raised(err, case):
    """A refusal must be a ValueError / TypeError raised by our own code, telling the truth."""
    assert isinstance(err, (ValueError, TypeError)), f"{type(err).__name__}: {err}"
    tb = err.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename
    assert where.startswith(PACKAGE_DIR), f"{type(err).__name__} raised in {where}: {err}"
    assert "n_clusters <= 0" not in str(err), f"the advice must be possible: {err}"
    m = re.search(r"more than the (\d+) distinct values in the image \(", str(err))
    opts = case["opts"]
    if m and not opts.get("smoothing") and opts.get("fit_stride", 1) == 1 and not _features_active(opts):
        # an exact count ("at the working resolution" is not claimed): it must be the true one
        cl = _channel_values(case)
        vals = cl[_valid(case, cl)]
        distinct = np.unique(vals.astype(np.float64) if vals.dtype.kind == "f" else vals, axis=0).shape[0]
        assert int(m.group(1)) == distinct, f"says {m.group(1)} distinct values, there are {distinct}: {err}"


def _order_key(res, case, cl, valid):
    centers = res.centers
    if case["opts"].get("rgb"):
        return centers[:, :3] @ LUMA_WEIGHTS
    if centers.shape[1] == 1:
        return centers[:, 0]
    if _features_active(case["opts"]):  # ordered by min-max scaled channel means
        vals = cl[valid].astype(np.float64)
        lo, hi = vals.min(axis=0), vals.max(axis=0)
        offset, scale = lo, np.where(hi > lo, hi - lo, 1.0)
    else:
        offset, scale = res.model.normalizer.offset, res.model.normalizer.scale
    return ((centers - offset) / scale).mean(axis=1)


def _label_means(values, flat, k):
    """Mean row of ``values`` per label 1..k of ``flat`` (in the values' precision)."""
    return np.stack([values[flat == i].mean(axis=0) for i in range(1, k + 1)])


def _tol(values: np.ndarray, rel: float) -> np.ndarray:
    """Per-channel float tolerance for means of ``values`` (n, c): relative to their magnitude."""
    mag = np.abs(values).max(axis=0) if values.size else np.zeros(values.shape[1])
    return rel * (1.0 + mag)


def check_result(res, case, k):
    """The documented contract of a ClusterResult for k clusters on the case's image."""
    opts = case["opts"]
    cl = _channel_values(case)
    valid = _valid(case, cl)
    labels = res.labels
    assert labels.shape == cl.shape[:-1], f"labels {labels.shape} for spatial shape {cl.shape[:-1]}"
    assert labels.dtype == (np.uint8 if k < 256 else np.uint16), labels.dtype
    assert int(labels.max()) <= k, f"label {labels.max()} > k={k}"
    np.testing.assert_array_equal(labels == 0, ~valid, err_msg="label 0 must be exactly the invalid pixels")
    hist = np.bincount(labels.ravel(), minlength=k + 1)[1:]
    np.testing.assert_array_equal(res.counts, hist, err_msg="counts must be the label histogram")
    cleaned = _cleaned(opts)
    if not cleaned:
        assert np.all(hist > 0), f"empty labels: counts {hist.tolist()}"
    assert res.centers.shape == (k, cl.shape[-1]), res.centers.shape
    assert np.all(np.isfinite(res.centers)), f"centres {res.centers}"
    assert res.feature_centers is not None and res.feature_centers.shape[0] == k
    assert np.all(np.isfinite(res.feature_centers)), f"feature centres {res.feature_centers}"
    assert np.isfinite(res.inertia) and res.inertia >= 0, f"inertia {res.inertia}"
    vals = cl[valid].astype(np.longdouble)  # exact for every integer dtype
    flat = labels[valid].astype(np.intp)
    smoothed = opts.get("smoothing") and not _features_active(opts)  # centres of float32 smoothed values
    tol = _tol(vals.astype(np.float64), 1e-6 if smoothed else 1e-9)
    lo, hi = vals.min(axis=0).astype(np.float64), vals.max(axis=0).astype(np.float64)
    assert np.all(res.centers >= lo - tol) and np.all(res.centers <= hi + tol), (
        f"centres {res.centers} outside the values' range [{lo}, {hi}]"
    )
    key = _order_key(res, case, cl, valid)
    assert np.all(np.diff(key) >= -1e-9 * (1 + np.abs(key).max())), f"labels not darkest first: {key}"
    if cleaned:
        return  # centres, feature centres and inertia describe the clusters before clean-up
    if not smoothed:  # centres: the channel values' means
        means = _label_means(vals, flat, k).astype(np.float64)
        assert np.all(np.abs(res.centers - means) <= tol), f"centres {res.centers}, the labels' means {means}"
    if opts.get("normalize") == "percentile":
        return  # clipped feature space: the mean of clipped values is not the clipped mean
    _check_feature_space(res, case, vals, flat, valid, k)


def _check_feature_space(res, case, vals, flat, valid, k):
    """Feature centres = mean normalised features per label; inertia = their sum of squares."""
    opts, norm = case["opts"], res.model.normalizer
    if not _features_active(opts) and not opts.get("smoothing"):
        feats = ((vals - norm.offset) / norm.scale).astype(np.float64)
        rel = 1e-9
    else:  # the model's own features (float32), smoothed and filtered as in the fit
        feats = res.model.transform(case["image"], mask=case["mask"], **_layout(case))[valid]
        feats = feats.astype(np.float64)
        rel = 1e-4
    means = _label_means(feats, flat, k)
    # a mean in input units carries a rounding error relative to the values' offset
    offset_tol = rel * np.abs(norm.offset / norm.scale)
    tol = _tol(feats, rel) + offset_tol
    assert np.all(np.abs(res.feature_centers - means) <= tol), (
        f"feature centres {res.feature_centers}, the labels' mean features {means}"
    )
    inertia = float(((feats - means[flat - 1]) ** 2).sum())
    # rounding, and a precision loss below 1e-7 of the features' spread squared per pixel; the float32
    # features of the model carry an error relative to the offset too
    spread = feats.max(axis=0) - feats.min(axis=0)
    err = _tol(feats, rel) + (offset_tol if rel > 1e-9 else 0)
    per_pixel = np.sum(1e-7 * (1 + spread) ** 2 + err * (2 * np.abs(feats).max(axis=0) + err))
    # a unit's or cell's mean in input units is rounded at the values' magnitude (offset): its error
    # (a few ulps of the offset) in normalised units, squared, per pixel; negligible unless the
    # values' offset dwarfs their spread (5.9e12 plus or minus a few ulps)
    ulps = 4 * np.finfo(np.float64).eps * np.abs(norm.offset / norm.scale)
    slack = 10 * rel * inertia + feats.shape[0] * (float(per_pixel) + float(np.sum(ulps**2)))
    assert abs(res.inertia - inertia) <= slack, f"inertia {res.inertia}, the labels' sum of squares {inertia}"


def check_same(a, b):
    np.testing.assert_array_equal(a.labels, b.labels, err_msg="same random_state, other labels")
    np.testing.assert_array_equal(a.centers, b.centers, err_msg="same random_state, other centres")
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.feature_centers, b.feature_centers)
    assert a.inertia == b.inertia or (np.isnan(a.inertia) and np.isnan(b.inertia)), (a.inertia, b.inertia)


def check_model(res, case):
    """predict() gives the result's labels where the docs promise it (K-means, colour classes)."""
    layout = _layout(case)
    pred = res.model.predict(case["image"], mask=case["mask"], **layout)
    assert pred.shape == res.labels.shape
    if res.params.connected:  # labels by nearest region colour: a valid labelling
        np.testing.assert_array_equal(pred == 0, res.labels == 0)
        assert int(pred.max()) <= res.n_clusters
    else:
        np.testing.assert_array_equal(pred, res.labels, err_msg="predict on the fitted image differs")
    loaded = ClusterModel.from_dict(json.loads(json.dumps(res.model.to_dict())))
    np.testing.assert_array_equal(
        loaded.predict(case["image"], mask=case["mask"], **layout), pred, err_msg="JSON round trip"
    )
    assert pred.dtype == res.labels.dtype, f"predict gives {pred.dtype} labels, the result {res.labels.dtype}"


def check_hierarchy(res, case, k2):
    """cut(k2) is a valid result, cut(k) the result itself, cuts nest; the dendrogram agrees."""
    k = res.n_clusters
    np.testing.assert_array_equal(res.cut(k).labels, res.labels, err_msg="cut(k) differs from the result")
    try:
        cut = res.cut(k2)
    except ValueError as err:
        check_raised(err, case)
        n_fit = res._hierarchy.n_fit_units
        assert k2 > n_fit or "can be told apart" in str(err), f"cut({k2}) of {n_fit} units refused: {err}"
        cut = None
    if cut is not None:
        check_result(cut, case, k2)
    if cut is not None and not _cleaned(case["opts"]):
        fine, coarse = (cut.labels, res.labels) if k2 > k else (res.labels, cut.labels)
        pairs = np.unique(np.stack([fine.ravel(), coarse.ravel()]), axis=1)
        assert np.unique(pairs[0]).size == pairs.shape[1], f"cut({k2}) does not nest in cut({k})"
    d = res.dendrogram()
    assert set(np.unique(d.leaf_labels).tolist()) == set(range(1, k + 1)), d.leaf_labels
    left = d.clusters_at(d.cut_height())
    heights, n = d.Z[:, 2], d.n_leaves
    tied = (k < n and heights[n - k] == heights[n - k - 1]) or (k == n and heights[0] == 0)
    if tied:  # documented: no horizontal cut leaves k clusters; the line passes through the tie
        assert left < k, f"cut_height({k}) at a tie leaves {left} clusters"
    else:
        assert left == k, f"the dendrogram's cut_height({k}) leaves {left} clusters"


def run_case(case, use_numba, k2=None):
    image, mask = case["image"], case["mask"]
    image_before = image.copy()
    mask_before = None if mask is None else mask.copy()
    note(
        f"image {image.dtype} {image.shape} values {np.unique(image)[:8]}; k={case['k']} "
        f"method={case['method']!r} opts={case['opts']} mask={'no' if mask is None else mask.sum()} "
        f"numba={use_numba}"
    )
    with numba_kernels(use_numba):
        try:
            res = cluster_image(image, case["k"], case["method"], mask=mask, **case["opts"])
        except Exception as err:  # noqa: BLE001 - the type is the property
            check_raised(err, case)
            return
        finally:
            assert image.tobytes() == image_before.tobytes(), "the image was modified"
            assert mask is None or np.array_equal(mask, mask_before), "the mask was modified"
        check_result(res, case, case["k"])
        check_same(res, cluster_image(image, case["k"], case["method"], mask=mask, **case["opts"]))
        check_model(res, case)
        if res.is_hierarchical and k2 is not None:
            check_hierarchy(res, case, k2)


USE_NUMBA = st.booleans()


@FUZZ
@given(case=cases(), use_numba=USE_NUMBA, k2=st.integers(2, 8))
def test_cluster_image_contract(case, use_numba, k2):
    run_case(case, use_numba, k2)


@settings(FUZZ, max_examples=max(10, N_EXAMPLES // 3))
@given(case=extreme_cases(), use_numba=USE_NUMBA, k2=st.integers(2, 5))
def test_extreme_values(case, use_numba, k2):
    """Default options on grey, 3D and RGB images of one dtype's extreme and tiny-range values."""
    run_case(case, use_numba, k2)
