"""Lazy labels (core/lazy.py): block by block, identical to the model's labels of the whole image."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_cluster_seg.core import Subset, cluster_image, fit_lazy, label_lazy
from napari_cluster_seg.core.lazy import halo

da = pytest.importorskip("dask.array")


def _smooth_image(shape, seed=0, scale=4000):
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.random(shape) * scale, 2).astype(np.uint16)


CASES = [  # image, chunks (uneven), cluster_image options, predict options
    ("grey2d", (97, 131), (30, 41), {}, {}),
    ("rgb", (61, 77, 3), (20, 33, 1), {"rgb": True}, {"rgb": True}),
    ("3d", (9, 40, 37), (4, 15, 16), {}, {}),
    (
        "time_multichannel",
        (5, 31, 29, 2),
        (2, 12, 10, 1),
        {"channel_axis": 3, "time_axis": 0},
        {"channel_axis": 3, "time_axis": 0},
    ),
]


@pytest.mark.parametrize("name, shape, chunks, fit_opts, opts", CASES)
def test_lazy_labels_equal_predict(name, shape, chunks, fit_opts, opts):
    img = _smooth_image(shape)
    if name == "rgb":
        img = (img // 16).astype(np.uint8)
    model = cluster_image(img, 3, **fit_opts).model
    lazy = label_lazy(model, da.from_array(img, chunks=chunks), **opts)
    assert isinstance(lazy, da.Array)
    labels = lazy.compute()
    expected = model.predict(img, **opts)
    assert labels.dtype == expected.dtype
    np.testing.assert_array_equal(labels, expected)


FEATURES = [
    {"smoothing": 1.5},
    {"filters": ("log", "structure"), "scales": (1.0, 2.0)},
    {"filters": ("dog", "hessian", "gradient", "gaussian"), "scales": (1.5,)},  # > 4 features
    {"spatial_weight": 0.5, "smoothing": 1.0},
]


@pytest.mark.parametrize("opts", FEATURES)
def test_filters_across_block_borders_equal_whole_image(opts):
    img = _smooth_image((83, 101), seed=1)
    model = cluster_image(img, 3, **opts).model
    blocks = label_lazy(model, da.from_array(img, chunks=(23, 30))).compute()
    whole = label_lazy(model, da.from_array(img, chunks=-1)).compute()
    np.testing.assert_array_equal(blocks, whole)
    # predict labels small grid cells of float features by their mean: equal but for a few pixels
    assert (blocks == model.predict(img)).mean() >= 0.999


@pytest.mark.parametrize(
    "opts",
    [
        {"smoothing": 2.0},
        {"filters": ("gaussian",), "scales": (3.0,)},
        {"filters": ("dog",), "scales": (2.0,)},
        {"filters": ("structure",), "scales": (2.0,)},
        {"filters": ("hessian", "log", "gradient"), "scales": (1.0, 2.5)},
    ],
)
def test_halo_is_the_support_of_the_features(opts):
    """An impulse changes the features exactly within the halo: enough context, and no more."""
    model = cluster_image(_smooth_image((64, 64), seed=2), 2, normalize="minmax", **opts).model
    impulse = np.zeros((81, 81), np.uint16)
    impulse[40, 40] = 60000
    feats = model.transform(impulse)
    changed = np.any(feats != feats[0, 0], axis=-1)
    rows, cols = np.nonzero(changed)
    reach = (np.abs(rows - 40).max(), np.abs(cols - 40).max())
    assert reach == halo(model.params, 2)


def test_anisotropic_halo_and_time_axis():
    img = _smooth_image((4, 50, 60), seed=3)
    model = cluster_image(
        img, 3, time_axis=0, smoothing=1.0, filters=("log",), scales=(2.0,), spacing=(1.0, 2.0)
    ).model
    assert halo(model.params, 2, (1.0, 2.0)) == (8, 4)
    lazy = label_lazy(model, da.from_array(img, chunks=(1, 17, 19)), time_axis=0)
    np.testing.assert_array_equal(
        lazy.compute(), label_lazy(model, da.from_array(img, chunks=-1), time_axis=0).compute()
    )


def test_cleanup_needs_the_whole_image():
    img = _smooth_image((40, 40))
    model = cluster_image(img, 3, min_size=5).model
    with pytest.raises(ValueError, match="clean=False"):
        label_lazy(model, da.from_array(img, chunks=20))
    labels = label_lazy(model, da.from_array(img, chunks=20), clean=False).compute()
    assert labels.shape == img.shape


def test_wrong_channels_raise_value_error():
    model = cluster_image(_smooth_image((30, 30)), 2).model
    with pytest.raises(ValueError, match="non-RGB"):
        label_lazy(model, da.zeros((30, 30, 3), np.uint8, chunks=10), rgb=True)


def test_fit_on_level_crop_and_every_block():
    img = _smooth_image((120, 160), seed=4)
    lazy = da.from_array(img, chunks=(40, 40))
    full = cluster_image(img, 3).model
    for subset in (Subset(level=0), "crop=0:120,0:160", Subset(every=1)):
        model = fit_lazy([lazy, lazy[::2, ::2]], 3, subset=subset)
        np.testing.assert_allclose(model.points, full.points)
        assert model.ndim == 2 and model.params.time_axis is None
    model = fit_lazy([lazy, lazy[::2, ::2]], 3, subset="level=1")
    assert (label_lazy(model, lazy).compute() == full.predict(img)).mean() > 0.95
    model = fit_lazy(lazy, 3, subset="every=3")
    np.testing.assert_array_equal(label_lazy(model, lazy).compute(), model.predict(img))


def test_bad_subsets_raise_value_error():
    lazy = da.zeros((40, 40), np.uint8, chunks=20)
    with pytest.raises(ValueError, match="level=3"):
        fit_lazy(lazy, 2, subset="level=3")
    with pytest.raises(ValueError, match="not understood"):
        fit_lazy(lazy, 2, subset="rows=4")
    with pytest.raises(ValueError, match="gives level twice"):  # not the last one silently
        fit_lazy(lazy, 2, subset="level=0;level=1")
    with pytest.raises(ValueError, match="spatial_weight"):
        fit_lazy(lazy, 2, subset="crop=0:10,0:10", spatial_weight=1.0)


def test_distributed_local_cluster_gives_identical_labels():
    distributed = pytest.importorskip("distributed")
    img = _smooth_image((64, 70), seed=5)
    model = cluster_image(img, 3, smoothing=1.0).model
    lazy = label_lazy(model, da.from_array(img, chunks=(20, 25)))
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        labels = client.compute(lazy).result()
    np.testing.assert_array_equal(labels, lazy.compute(scheduler="threads"))


def test_every_block_of_a_time_series_and_crop_messages():
    """every=N on a time series (the time axis a file's metadata names): every frame of the blocks
    picked is a frame of the fit; the model keeps the image's time and channel axes."""
    img = np.stack([_smooth_image((4, 40, 30), seed=s) for s in range(2)], axis=3)  # t, y, x, c
    lazy = da.from_array(img, chunks=(2, 20, 30, 1))
    model = fit_lazy(lazy, 3, subset="every=2", time_axis=0, channel_axis=3)
    assert model.params.time_axis == 0 and model.params.channel_axis == 3 and model.ndim == 4
    frames = np.concatenate([img[0:2, 0:20], img[2:4, 0:20]])  # blocks 0 and 2 of (2, 2, 1, 1)
    expected = cluster_image(frames, 3, time_axis=0, channel_axis=3).model
    np.testing.assert_array_equal(model.points, expected.points)
    labels = label_lazy(model, lazy, time_axis=0, channel_axis=3).compute()
    np.testing.assert_array_equal(labels, expected.predict(img, time_axis=0, channel_axis=3))
    with pytest.raises(ValueError, match=r"crop=5:2 leaves no pixels .*START < STOP"):
        fit_lazy(lazy, 3, subset="crop=5:2")
    with pytest.raises(ValueError, match=r"crop=0:1,:,:,:,0:3 has 5 ranges .*one START:STOP range per axis"):
        fit_lazy(lazy, 3, subset="crop=0:1,:,:,:,0:3")


@pytest.mark.parametrize("opts", [{}, {"smoothing": 1.0}])
def test_a_block_without_valid_pixels_is_labelled_0(opts):
    """A block all NaN (a slide's empty margin) is label 0, as predict labels it in the whole image;
    it used to raise 'no valid pixels' and fail the whole image."""
    img = _smooth_image((60, 50), seed=6).astype(np.float32)
    img[:30, :25] = np.nan
    model = cluster_image(img, 3, **opts).model
    labels = label_lazy(model, da.from_array(img, chunks=(30, 25))).compute()
    assert (labels[:30, :25] == 0).all()
    if not opts:
        np.testing.assert_array_equal(labels, model.predict(img))
    rgba = np.dstack([img, img, img, np.full_like(img, np.nan)])  # alpha is not used: RGB valid
    rgb_model = cluster_image(rgba, 3, rgb=True).model
    assert (
        label_lazy(rgb_model, da.from_array(rgba, chunks=(30, 25, 4)), rgb=True).compute() > 0
    ).sum() == 60 * 50 - 750


@pytest.mark.parametrize(
    "shape, chunks, opts",
    [((5, 5), (1, 1), {"smoothing": 3.0}), ((9, 1), (2, 1), {"filters": ("log",), "scales": (1.0,)})],
)
def test_an_axis_shorter_than_the_halo(shape, chunks, opts):
    """An image (or an axis) smaller than the filters' support, in chunks of 1: one block along that
    axis, the same labels (it used to be dask's 'Overlap depth is larger than smallest chunksize')."""
    img = (np.random.default_rng(7).random(shape) * 255).astype(np.uint8)
    model = cluster_image(img, 2, **opts).model
    labels = label_lazy(model, da.from_array(img, chunks=chunks)).compute()
    np.testing.assert_array_equal(labels, model.predict(img))
