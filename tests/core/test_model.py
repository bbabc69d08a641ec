import json

import numpy as np
import pytest
from skimage import data

from napari_cluster_seg import ClusterModel, cluster_image

CASES = [
    ("kmeans", {}),
    ("agglomerative", {}),
    ("agglomerative", {"linkage": "single"}),
    ("divisive", {}),
    ("kmeans", {"smoothing": 1.0}),
    ("kmeans", {"normalize": "percentile"}),
    ("agglomerative", {"fit_stride": 2}),
]


def rgb_image():
    return data.astronaut()[::2, ::2]


@pytest.mark.parametrize(("method", "options"), CASES)
def test_save_load_predict_gives_identical_labels_rgb(tmp_path, method, options):
    img = rgb_image()
    res = cluster_image(img, 5, method, rgb=True, **options)
    path = res.model.save(tmp_path / "model.json")
    loaded = ClusterModel.load(path)
    np.testing.assert_array_equal(loaded.predict(img), res.labels)
    assert loaded.to_dict() == res.model.to_dict()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("method", ["kmeans", "agglomerative", "divisive"])
def test_save_load_predict_identical_grey(tmp_path, dtype, method):
    img = data.camera()[::2, ::2].astype(dtype)
    if dtype == np.float32:
        img = img / 7.0 + 0.5
        img[3, 4] = np.nan
    res = cluster_image(img, 4, method)
    loaded = ClusterModel.load(res.model.save(tmp_path / "m.json"))
    np.testing.assert_array_equal(loaded.predict(img), res.labels)


def test_multichannel_model_applies_to_other_image_and_frames():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(2, 30, 40)).astype(np.float32)
    a[:, :15] += 4
    res = cluster_image(a, 2, channel_axis=0)
    # the same image with the channel axis last, and a time series of it
    np.testing.assert_array_equal(res.model.predict(np.moveaxis(a, 0, -1), channel_axis=-1), res.labels)
    stack = np.stack([a, a[:, ::-1]])  # (t, c, y, x)
    out = res.model.predict(stack, channel_axis=1, time_axis=0)
    np.testing.assert_array_equal(out[0], res.labels)
    np.testing.assert_array_equal(out[1], res.labels[::-1])


def test_predict_on_new_image_uses_fitted_thresholds():
    img = np.repeat(np.array([0, 100, 200], np.uint8), 10).reshape(3, 10)
    model = cluster_image(img, 3).model
    other = np.array([[0, 49, 50, 51, 140, 151, 255]], np.uint8)
    # centres 0, 100, 200: thresholds at 50 and 150 (ties to the darker cluster)
    np.testing.assert_array_equal(model.predict(other), [[1, 1, 1, 2, 2, 3, 3]])


def test_connected_model_labels_by_colour_close_to_fit():
    # 128x128: connected Ward's exact pixel tree, as at 256x256 (EXACT_MAX_PIXELS), at a quarter of the
    # cost (the numpy pass builds it in a Python heap)
    img = data.astronaut()[::4, ::4]
    res = cluster_image(img, 4, "agglomerative", rgb=True, connected=True)
    assert np.mean(res.model.predict(img) == res.labels) > 0.7


def test_model_json_is_plain_and_small(tmp_path):
    res = cluster_image(rgb_image(), 3, rgb=True)
    text = res.model.save(tmp_path / "m.json").read_text()
    d = json.loads(text)
    assert d["kind"] == "centers" and len(d["points"]) == 3 and d["labels"] == [1, 2, 3]
    assert len(text) < 5000


def test_incompatible_image_is_a_clear_error():
    model = cluster_image(rgb_image(), 3, rgb=True).model
    with pytest.raises(ValueError, match="fitted on RGB"):
        model.predict(np.zeros((10, 10, 5), np.uint8))
    with pytest.raises(ValueError, match="fitted on RGB images but the image is not RGB"):
        model.predict(np.zeros((10, 10, 3), np.uint8), rgb=False)
    grey = cluster_image(data.camera(), 3).model
    with pytest.raises(ValueError, match="non-RGB images but the image is RGB"):
        grey.predict(rgb_image(), rgb=True)
    two = cluster_image(np.random.default_rng(0).random((2, 8, 8)), 2, channel_axis=0).model
    with pytest.raises(ValueError, match="2-channel"):
        two.predict(np.zeros((3, 8, 8)), channel_axis=0)


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON model"):
        ClusterModel.load(bad)
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a 'napari-cluster-seg model'"):
        ClusterModel.load(bad)
    d = cluster_image(data.camera(), 3).model.to_dict()
    del d["points"]
    bad.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="incomplete or damaged"):
        ClusterModel.load(bad)


def test_apply_measures_the_new_image():
    img = data.camera()
    res = cluster_image(img, 3)
    applied = res.model.apply(img)
    np.testing.assert_array_equal(applied.labels, res.labels)
    np.testing.assert_allclose(applied.centers, res.centers)
    np.testing.assert_array_equal(applied.counts, res.counts)
    assert applied.inertia == pytest.approx(res.inertia)
    dark = res.model.apply(img[img < 60].reshape(1, -1))  # only the darkest cluster's pixels
    assert dark.counts[0] == np.count_nonzero(img < 60) and dark.counts[1:].sum() == 0
    assert np.isnan(dark.centers[2]).all()
