"""A model file is not trusted: every part is checked when a model is built, and every image
against the model before any kernel runs (issue 14, item 8)."""

import copy
import json

import numpy as np
import pytest

from napari_cluster_seg import ClusterModel, cluster_image


def rgb_image():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    img[:12] //= 4
    return img


@pytest.fixture(scope="module")
def models():
    img = rgb_image()
    return {
        "kmeans": cluster_image(img, 3, rgb=True).model.to_dict(),
        "grid": cluster_image(img, 3, "agglomerative", rgb=True, max_units=16).model.to_dict(),
        "features": cluster_image(img[..., 0], 3, filters=("hessian",), scales=(1.0,)).model.to_dict(),
    }


def _set(d, path, value):
    d = copy.deepcopy(d)
    *keys, last = path
    target = d
    for key in keys:
        target = target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value(target[last]) if callable(value) else value
    return d


_DELETE = object()
_GRID3 = {"levels": 2, "lo": [0] * 3, "span": [1] * 3, "unit_codes": [0, 1, 2]}  # a valid grid

CORRUPTIONS = {
    # shapes and widths: narrower or wider than the channels / features
    "points narrower": ("kmeans", ("points",), lambda p: [row[:1] for row in p]),
    "points wider": ("kmeans", ("points",), lambda p: [row + [0.5] for row in p]),
    "points flat": ("kmeans", ("points",), lambda p: [x for row in p for x in row]),
    "points ragged": ("kmeans", ("points",), lambda p: [p[0], p[1][:2], p[2]]),
    "points empty": ("kmeans", ("points",), []),
    "points strings": ("kmeans", ("points",), lambda p: [["a"] * len(row) for row in p]),
    "points NaN": ("kmeans", ("points",), lambda p: [[float("nan")] * len(p[0])] + p[1:]),
    "points inf": ("kmeans", ("points",), lambda p: [[float("inf")] * len(p[0])] + p[1:]),
    "points huge int": ("kmeans", ("points",), lambda p: [[10**400] * len(p[0])] + p[1:]),
    "features narrower": ("features", ("points",), lambda p: [row[:-1] for row in p]),
    # labels
    "label 300": ("kmeans", ("labels",), [1, 2, 300]),
    "label -1": ("kmeans", ("labels",), [1, 2, -1]),
    "label 0": ("kmeans", ("labels",), [0, 1, 2]),
    "label float": ("kmeans", ("labels",), [1, 2, 2.5]),
    "label bool": ("kmeans", ("labels",), [True, True, True]),
    "label 2**70": ("kmeans", ("labels",), [1, 2, 2**70]),
    "labels too few": ("kmeans", ("labels",), [1, 2]),
    "units label 300": ("grid", ("labels",), lambda lab: [300] + lab[1:]),
    # counts and types
    "n_clusters 300": ("kmeans", ("params", "n_clusters"), 300),
    "n_clusters 1": ("kmeans", ("params", "n_clusters"), 1),
    "n_clusters 10**9": ("kmeans", ("params", "n_clusters"), 10**9),
    "n_clusters string": ("kmeans", ("params", "n_clusters"), "3"),
    "n_channels 2": ("kmeans", ("n_channels",), 2),
    "n_channels string": ("kmeans", ("n_channels",), "3"),
    "ndim 0": ("kmeans", ("ndim",), 0),
    "ndim 1 for RGB": ("kmeans", ("ndim",), 1),
    "ndim huge": ("kmeans", ("ndim",), 10**6),
    "kind": ("kmeans", ("kind",), "other"),
    "kind list": ("kmeans", ("kind",), ["centers"]),
    "centres with a grid": ("kmeans", ("grid",), _GRID3),
    # options
    "unknown option": ("kmeans", ("params", "colour"), "red"),
    "rgb string": ("kmeans", ("params", "rgb"), "no"),
    "method": ("kmeans", ("params", "method"), "magic"),
    "channel axis": ("kmeans", ("params", "channel_axis"), 7),
    "params not a dict": ("kmeans", ("params",), [1, 2]),
    "features not a dict": ("kmeans", ("params", "features"), "lab"),
    "filter": ("features", ("params", "features", "filters"), ["magic"]),
    # normaliser
    "offset narrower": ("kmeans", ("normalizer", "offset"), [0.0]),
    "scale zero": ("kmeans", ("normalizer", "scale"), [0.0, 1.0, 1.0]),
    "scale NaN": ("kmeans", ("normalizer", "scale"), [float("nan"), 1.0, 1.0]),
    "one clip": ("kmeans", ("normalizer", "clip_low"), [0.0, 0.0, 0.0]),
    "clips crossed": ("kmeans", ("normalizer",), lambda n: dict(n, clip_low=[1.0] * 3, clip_high=[0.0] * 3)),
    "normalizer key": ("kmeans", ("normalizer", "gain"), [1.0]),
    "normalizer list": ("kmeans", ("normalizer",), [0.0, 1.0]),
    # grid
    "grid lo narrower": ("grid", ("grid", "lo"), [0.0]),
    "grid span zero": ("grid", ("grid", "span"), lambda s: [0.0] + s[1:]),
    "grid levels 0": ("grid", ("grid", "levels"), 0),
    "grid levels huge": ("grid", ("grid", "levels"), 2**40),
    "grid levels float": ("grid", ("grid", "levels"), 2.5),
    "grid codes unsorted": ("grid", ("grid", "unit_codes"), lambda c: c[::-1]),
    "grid codes too few": ("grid", ("grid", "unit_codes"), lambda c: c[:-1]),
    "grid codes out of range": ("grid", ("grid", "unit_codes"), lambda c: c[:-1] + [10**12]),
    "grid codes empty": ("grid", ("grid", "unit_codes"), []),
    "grid missing key": ("grid", ("grid", "lo"), _DELETE),
    # keys and versions
    "missing key": ("kmeans", ("labels",), _DELETE),
    "unknown key": ("kmeans", ("extra",), 1),
    "version 2": ("kmeans", ("version",), 2),
    "version True": ("kmeans", ("version",), True),
    "version string": ("kmeans", ("version",), "1"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_a_damaged_model_is_a_value_error_naming_the_file(tmp_path, models, case):
    which, path, value = CORRUPTIONS[case]
    d = _set(models[which], path, value)
    with pytest.raises(ValueError, match="model"):
        ClusterModel.from_dict(d)
    file = tmp_path / "damaged.json"
    file.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="damaged.json"):
        ClusterModel.load(file)


def test_the_unchanged_models_load_and_predict_as_before(tmp_path, models, accel):
    img = rgb_image()
    for which, d in models.items():
        model = ClusterModel.from_dict(d)
        image = img[..., 0] if which == "features" else img
        assert model.predict(image).dtype == np.uint8
        assert model.to_dict() == d


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", b"", b"[" * 100000, b"3", b"null", b"\xef\xbb\xbf{}"],
)
def test_a_file_that_is_not_a_model_is_a_value_error_naming_it(tmp_path, content):
    file = tmp_path / "other.bin"
    file.write_bytes(content)
    with pytest.raises(ValueError, match="other.bin") as err:
        ClusterModel.load(file)
    assert type(err.value) is ValueError  # not a UnicodeDecodeError (a ValueError subclass)


def test_an_image_whose_features_differ_is_refused_before_labelling(accel):
    """A model on coordinates / Hessian eigenvalues of 2D images has other features on 3D ones."""
    rng = np.random.default_rng(1)
    img = rng.random((20, 24))
    for options in ({"spatial_weight": 1.0}, {"filters": ("hessian",), "scales": (1.0,)}):
        model = cluster_image(img, 2, **options).model
        with pytest.raises(ValueError, match="2 spatial axes"):
            model.predict(rng.random((4, 20, 24)))
        np.testing.assert_array_equal(
            model.predict(np.stack([img, img]), time_axis=0)[1], cluster_image(img, 2, **options).labels
        )


def test_a_model_built_in_memory_is_checked_too(accel):
    model = cluster_image(rgb_image(), 3, rgb=True).model
    with pytest.raises(ValueError, match="points"):
        ClusterModel(model.params, 3, 3, model.normalizer, "centers", model.points[:, :2], model.labels)
    with pytest.raises(ValueError, match="labels"):
        ClusterModel(model.params, 3, 3, model.normalizer, "centers", model.points, np.array([1, 2, 300]))


def test_predict_returns_the_labels_dtype_of_cluster_image(accel):
    img = rgb_image()
    for method in ("kmeans", "agglomerative", "divisive"):
        res = cluster_image(img, 3, method, rgb=True)
        assert res.model.predict(img).dtype == res.labels.dtype == np.uint8
        assert res.model.apply(img).labels.dtype == np.uint8
    grey = np.arange(600, dtype=np.uint16).reshape(20, 30)
    res = cluster_image(grey, 300)
    assert res.model.predict(grey).dtype == res.labels.dtype == np.uint16


def test_predict_checks_its_options(accel):
    model = cluster_image(rgb_image()[..., 0], 2).model
    img = rgb_image()[..., 0]
    with pytest.raises(TypeError, match="rgb must be True or False"):
        model.predict(img, rgb="no")
    with pytest.raises(ValueError, match="spacing"):
        model.predict(img, spacing=(1.0,))
    with pytest.raises(ValueError, match="spacing"):
        model.predict(img, spacing=("a", 1))
    stack = np.stack([img, img])
    with pytest.raises(ValueError, match="no spatial axis"):
        cluster_image(stack, 2, channel_axis=0).model.predict(stack[:, :1, 0], channel_axis=0, time_axis=1)
