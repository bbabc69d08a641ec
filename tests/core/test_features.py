"""Pixel features: known responses, colour round trips, blockwise = whole, and their use in clustering."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_cluster_seg import ClusterModel, cluster_image
from napari_cluster_seg.core import features as F
from napari_cluster_seg.core.features import (
    convert_color,
    coordinate_features,
    feature_names,
    filter_features,
    validate_features,
)


def spec(*filters, scales=(2.0,), **kw):
    return validate_features(
        kw.pop("color_space", "rgb"),
        filters,
        scales,
        kw.pop("spatial_weight", 0.0),
        kw.pop("intensity", True),
        rgb=kw.pop("rgb", False),
    )


def test_gradient_of_a_ramp_is_its_slope():
    ramp = np.tile(np.arange(64, dtype=np.float32) * 0.5, (48, 1))  # slope 0.5 per pixel along x
    out = filter_features(ramp[..., None], spec("gradient", scales=(2.0,)))
    inner = out[10:-10, 10:-10, 0]
    np.testing.assert_allclose(inner, 2.0 * 0.5, rtol=1e-3)  # scale-normalised: s * |grad|


def test_log_and_hessian_of_a_bright_blob():
    yy, xx = np.mgrid[:64, :64]
    blob = np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / (2 * 4.0**2)).astype(np.float32)
    out = filter_features(blob[..., None], spec("log", "hessian", scales=(4.0,)))
    log, h1, h2 = out[..., 0], out[..., 1], out[..., 2]
    assert np.unravel_index(np.argmax(log), log.shape) == (32, 32)  # bright blobs respond positively
    assert log[32, 32] > 0
    # at the centre of a bright blob both Hessian eigenvalues are negative and equal
    assert h1[32, 32] < 0 and h2[32, 32] < 0
    assert h1[32, 32] == pytest.approx(h2[32, 32], rel=1e-3)
    assert np.all(h1 >= h2 - 1e-6)  # largest first


def test_structure_tensor_of_stripes_has_one_direction():
    stripes = np.tile(np.sin(np.arange(64) / 2.0).astype(np.float32), (64, 1))
    out = filter_features(stripes[..., None], spec("structure", scales=(3.0,)))
    l1, l2 = out[20:-20, 20:-20, 0], out[20:-20, 20:-20, 1]
    assert np.all(l1 > 10 * np.abs(l2).max())


def test_3d_blob_has_three_negative_hessian_eigenvalues():
    zz, yy, xx = np.mgrid[:32, :32, :32]
    blob = np.exp(-((zz - 16) ** 2 + (yy - 16) ** 2 + (xx - 16) ** 2) / (2 * 3.0**2)).astype(np.float32)
    out = filter_features(blob[..., None], spec("hessian", "structure", scales=(3.0,)))
    assert out.shape == (32, 32, 32, 6)
    assert np.all(out[16, 16, 16, :3] < 0)
    np.testing.assert_allclose(out[16, 16, 16, :3], out[16, 16, 16, 0], rtol=1e-3)


@pytest.mark.parametrize("name", F.FILTERS)
def test_blockwise_equals_whole_image(monkeypatch, name):
    rng = np.random.default_rng(0)
    img = ndi.gaussian_filter(rng.normal(size=(70, 50, 2)), (1, 1, 0)).astype(np.float32)
    s = spec(name, scales=(1.0, 2.5))
    whole = filter_features(img, s)
    monkeypatch.setattr(F, "BLOCK_PIXELS", 50 * 7)  # blocks of 7 rows
    blocks = filter_features(img, s)
    np.testing.assert_allclose(blocks, whole, atol=1e-5)


def test_time_axis_filters_frame_by_frame():
    rng = np.random.default_rng(1)
    movie = rng.normal(size=(3, 30, 40, 1)).astype(np.float32)
    s = spec("gaussian", "log", scales=(2.0,))
    out = filter_features(movie, s, time_axis=0)
    for t in range(3):
        np.testing.assert_allclose(out[t], filter_features(movie[t], s), atol=1e-6)


def test_anisotropic_spacing_shrinks_sigma_on_coarse_axes():
    img = np.zeros((20, 40, 40, 1), np.float32)
    img[10, 20, 20] = 1
    s = spec("gaussian", scales=(2.0,))
    out = filter_features(img, s, spacing=(2.0, 1.0, 1.0))[..., 0]
    expected = ndi.gaussian_filter(img[..., 0], (1.0, 2.0, 2.0), mode="nearest")
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_colour_conversions():
    from skimage.color import hsv2rgb, lab2rgb

    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    lab = convert_color(rgb, "lab")
    np.testing.assert_allclose(lab2rgb(lab.astype(np.float64)), rgb / 255.0, atol=1e-3)  # round trip
    hsv = convert_color(rgb, "hsv")
    s = np.hypot(hsv[..., 0], hsv[..., 1])
    h = np.mod(np.arctan2(hsv[..., 1], hsv[..., 0]) / (2 * np.pi), 1.0)
    back = hsv2rgb(np.stack([h, s, hsv[..., 2]], -1))
    np.testing.assert_allclose(back, rgb / 255.0, atol=1e-3)
    # hue is an angle: red just below 360 degrees is next to red at 0 degrees
    reds = convert_color(np.array([[[255, 0, 8], [255, 8, 0], [0, 255, 0]]], np.uint8), "hsv")[0]
    assert np.linalg.norm(reds[0] - reds[1]) < 0.1 < np.linalg.norm(reds[0] - reds[2])


def test_coordinates_in_physical_units():
    c = coordinate_features((5, 11), spacing=(2.0, 1.0), weight=1.0)
    # the largest physical extent (10 along x; 8 along y) spans the weight
    assert c[..., 1].max() == pytest.approx(1.0)
    assert c[..., 0].max() == pytest.approx(0.8)
    np.testing.assert_allclose(c[1, 0, 0] - c[0, 0, 0], 2.0 / 10)


def test_feature_names_match_the_computed_columns():
    s = spec("gaussian", "hessian", scales=(1.0, 2.0), spatial_weight=0.5)
    names = feature_names(s, ["0"], 2)
    res = cluster_image(
        np.random.default_rng(0).random((20, 20)), 2, filters=s.filters, scales=s.scales, spatial_weight=0.5
    )
    assert list(res.feature_names) == names
    assert res.feature_centers.shape == (2, len(names)) == (2, 1 + 2 * (1 + 2) + 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"color_space": "xyz", "rgb": True}, "color_space='xyz' is not supported"),
        ({"color_space": "lab"}, "needs an RGB image"),
        ({"filters": ("sobel",)}, "not supported"),
        ({"filters": ("log",), "scales": (0.0,)}, "between 0.3 and 64"),
        ({"spatial_weight": -1}, "spatial_weight=-1"),
        ({"intensity": False}, "at least one filter"),
        ({"spacing": (1.0,)}, "needs 2 positive pixel sizes"),
        ({"min_size": -3}, "min_size must be >= 0"),
    ],
)
def test_bad_feature_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cluster_image(np.zeros((8, 8), np.uint8) + np.arange(8, dtype=np.uint8), 2, **kwargs)


def blobs_on_gradient():
    """Bright small blobs and a bright smooth region: intensity alone mixes them, LoG separates them."""
    yy, xx = np.mgrid[:96, :96]
    img = np.where(xx > 60, 0.6, 0.0) + 0.05 * np.random.default_rng(3).normal(size=(96, 96))
    truth = np.zeros((96, 96), bool)
    for cy, cx in [(20, 20), (50, 30), (75, 15), (30, 45)]:
        blob = (yy - cy) ** 2 + (xx - cx) ** 2 <= 16
        img[blob] = 0.6
        truth |= blob
    return img.astype(np.float32), truth


def test_log_features_separate_blobs_from_plateaus():
    img, truth = blobs_on_gradient()

    def best_iou(labels):
        return max(
            ((labels == lab) & truth).sum() / ((labels == lab) | truth).sum() for lab in np.unique(labels)
        )

    plain = cluster_image(img, 3).labels  # the blobs share a cluster with the plateau
    with_log = cluster_image(img, 3, filters=("log",), scales=(2.0,)).labels
    assert best_iou(plain) < 0.1
    assert best_iou(with_log) > 5 * best_iou(plain)


@pytest.mark.parametrize("method", ["kmeans", "agglomerative", "divisive"])
def test_many_features_use_a_sample_and_label_every_pixel(method, tmp_path):
    from skimage import data

    img = data.coins()[::2, ::2]
    opts = dict(filters=("gaussian", "log", "gradient"), scales=(1.0, 3.0), normalize="zscore")
    res = cluster_image(img, 4, method, **opts)
    assert len(res.feature_names) == 7 and set(np.unique(res.labels)) == {1, 2, 3, 4}
    assert res.counts.sum() == img.size
    # brightness order of the channel means
    assert np.all(np.diff(res.centers[:, 0]) > 0)
    for lab in range(1, 5):
        assert res.centers[lab - 1, 0] == pytest.approx(img[res.labels == lab].mean())
    again = cluster_image(img, 4, method, **opts)
    np.testing.assert_array_equal(again.labels, res.labels)
    model = ClusterModel.load(res.model.save(tmp_path / "m.json"))
    np.testing.assert_array_equal(model.predict(img), res.labels)
    assert model.params.features == res.params.features


def test_many_features_kmeans_close_to_sklearn():
    from skimage import data
    from sklearn.cluster import KMeans

    img = data.coins()[::2, ::2]
    res = cluster_image(
        img, 4, filters=("gaussian", "log", "gradient"), scales=(1.0, 3.0), normalize="zscore"
    )
    x = res.model.transform(img).reshape(-1, len(res.feature_names))
    sk = KMeans(4, n_init=4, random_state=0).fit(x)
    assert res.inertia <= 1.02 * sk.inertia_


def test_lab_features_keep_rgb_centres_and_saved_models(tmp_path):
    from skimage import data

    img = data.astronaut()[::4, ::4]
    res = cluster_image(img, 4, rgb=True, color_space="lab", normalize="percentile")
    assert res.feature_names == ("L", "a", "b")
    for lab in range(1, 5):  # centres in RGB input units, ordered by luminance
        np.testing.assert_allclose(res.centers[lab - 1], img[res.labels == lab].mean(axis=0), rtol=0.02)
    luma = res.centers @ [0.2126, 0.7152, 0.0722]
    assert np.all(np.diff(luma) > 0)
    loaded = ClusterModel.load(res.model.save(tmp_path / "lab.json"))
    assert loaded.params.features.color_space == "lab"
    np.testing.assert_array_equal(loaded.predict(img), res.labels)


def test_spatial_weight_makes_clusters_compact():
    from skimage.measure import label as components

    rng = np.random.default_rng(4)
    noise = rng.random((60, 60)).astype(np.float32)  # no structure in the values at all
    plain = cluster_image(noise, 4).labels
    spatial = cluster_image(noise, 4, spatial_weight=10.0).labels
    pieces = lambda lab: sum(components(lab == i).max() for i in range(1, 5))  # noqa: E731
    assert pieces(spatial) < pieces(plain) / 10


def test_time_series_features_never_cross_frames():
    movie = np.zeros((2, 40, 40), np.float32)
    movie[0, 10:20, 10:20] = 1.0
    res = cluster_image(movie, 2, time_axis=0, filters=("gaussian",), scales=(3.0,))
    assert res.labels.shape == movie.shape
    assert len(np.unique(res.labels[1])) == 1  # the empty frame sees no blur from frame 0


def test_colour_conversion_in_blocks_equals_whole(monkeypatch):
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (40, 30, 3)).astype(np.uint8)
    whole = convert_color(rgb, "lab")
    monkeypatch.setattr(F, "BLOCK_PIXELS", 4 * 97)
    np.testing.assert_array_equal(convert_color(rgb, "lab"), whole)
    assert convert_color(rgb, "hsv").shape == rgb.shape


def test_features_with_nan_pixels_leave_them_unclustered():
    img = np.random.default_rng(6).random((40, 40)).astype(np.float32)
    img[:20] += 2.0
    img[5:8, 5:8] = np.nan
    res = cluster_image(img, 2, filters=("gaussian", "log"), scales=(1.0, 2.0))
    assert np.all(res.labels[5:8, 5:8] == 0)
    assert np.all(res.labels[img == img] > 0)
    assert np.mean(res.labels[25:] == 1) > 0.95 and np.mean(res.labels[10:18] == 2) > 0.95


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_lab_equals_skimage(dtype):
    from skimage.color import rgb2lab

    rng = np.random.default_rng(7)
    if dtype == np.float32:
        rgb = rng.random((30, 40, 3)).astype(dtype)
    else:
        rgb = rng.integers(0, np.iinfo(dtype).max + 1, (30, 40, 3)).astype(dtype)
    np.testing.assert_allclose(convert_color(rgb, "lab"), rgb2lab(rgb), atol=2e-4)


def test_model_transform_gives_the_normalised_features_with_nan_for_invalid_pixels():
    img = np.random.default_rng(8).random((20, 30)).astype(np.float32)
    img[2, 3] = np.nan
    res = cluster_image(img, 2, filters=("gaussian",), scales=(2.0,), normalize="minmax")
    feats = res.model.transform(img)
    assert feats.shape == (20, 30, 2) and feats.dtype == np.float32
    valid = ~np.isnan(feats[..., 0])
    assert not valid[2, 3] and valid.sum() == img.size - 1
    assert feats[..., 0][valid].min() == pytest.approx(0, abs=1e-6)
    assert feats[..., 0][valid].max() == pytest.approx(1)
    for lab in (1, 2):  # feature centres are the means of the features
        np.testing.assert_allclose(
            res.feature_centers[lab - 1], feats[res.labels == lab].mean(axis=0), atol=1e-3
        )


@pytest.mark.parametrize(
    ("shape", "time_axis", "sigma"),
    [
        ((50, 37, 3), None, 1.0),
        ((5, 40, 33, 2), 0, 1.5),
        ((7, 9, 11, 1), None, 0.7),
        ((30, 3), None, 1.0),
        ((9, 2, 3), None, 1.5),  # an axis shorter than the kernel radius
    ],
)
def test_smoothing_equals_scipy_bit_for_bit(shape, time_axis, sigma):
    """The compiled smoothing (when numba runs) and the scipy path give scipy's numbers exactly."""
    from scipy import ndimage

    from napari_cluster_seg.core.preprocess import _smooth

    img = (np.random.default_rng(0).random(shape) * 100).astype(np.float32)
    got = _smooth(img, np.ones(shape[:-1], bool), sigma, time_axis)
    sigmas = [0 if ax == time_axis else sigma for ax in range(len(shape) - 1)]
    want = np.stack(
        [ndimage.gaussian_filter(img[..., c], sigmas, mode="nearest") for c in range(shape[-1])], -1
    )
    np.testing.assert_array_equal(got, want)


def test_hsv_of_subnormal_and_negative_values_is_that_of_black():
    """Subnormal channel values (whose saturation would depend on the floating-point mode) and
    the negative values of signed integers convert as 0: finite features, no warning."""
    import warnings

    tiny = np.finfo(np.float32).tiny
    rows = np.array([[[1e-40, 0, 0], [0, 1e-42, 5e-41], [0.5, 0.25, 0.0]]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hsv = convert_color(rows, "hsv")
        signed = convert_color(np.array([[[-5, -100, 0]]], np.int8), "hsv")
    np.testing.assert_array_equal(hsv[0, :2], 0.0)
    np.testing.assert_array_equal(signed, 0.0)
    assert np.all(np.isfinite(hsv)) and hsv[0, 2, 0] > tiny  # a normal colour keeps its saturation
