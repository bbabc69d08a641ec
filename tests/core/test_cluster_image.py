import numpy as np
import pytest

from napari_cluster_seg import cluster_image, iter_cluster_image
from napari_cluster_seg.core import Progress

METHODS = [
    ("kmeans", "ward"),
    ("agglomerative", "ward"),
    ("agglomerative", "complete"),
    ("agglomerative", "average"),
    ("agglomerative", "single"),
    ("divisive", "ward"),
]
METHOD_IDS = [m if m != "agglomerative" else f"agglo-{lk}" for m, lk in METHODS]


def three_level_image(shape=(40, 50), levels=(10, 120, 240), dtype=np.uint8, noise=3.0, seed=0):
    """Three horizontal bands of known brightness plus a little noise."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.uint8)
    n = shape[-2] if len(shape) >= 2 else shape[0]
    band = np.arange(n) * 3 // n
    truth[...] = band.reshape((-1, 1)) if len(shape) >= 2 else band
    img = np.array(levels, float)[truth] + rng.normal(0, noise, shape)
    if np.issubdtype(dtype, np.integer):
        img = np.clip(np.rint(img), np.iinfo(dtype).min, np.iinfo(dtype).max)
    return img.astype(dtype), truth + 1


def assert_recovers(labels, truth):
    """Labels equal the truth exactly (1 = darkest band)."""
    np.testing.assert_array_equal(labels, truth)


@pytest.mark.parametrize(("method", "linkage"), METHODS, ids=METHOD_IDS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_grey_2d_every_method_and_dtype(method, linkage, dtype):
    levels = (10, 120, 240) if dtype == np.uint8 else (1000, 30000, 60000)
    img, truth = three_level_image(dtype=dtype, levels=levels, noise=2.0 if dtype == np.uint8 else 200)
    res = cluster_image(img, 3, method, linkage=linkage)
    assert res.labels.shape == img.shape and res.labels.dtype == np.uint8
    assert_recovers(res.labels, truth)
    assert res.centers.shape == (3, 1)
    # centres are in the input's units and ordered darkest first
    np.testing.assert_allclose(res.centers[:, 0], levels, rtol=0.02)
    assert res.counts.sum() == img.size


@pytest.mark.parametrize(("method", "linkage"), METHODS, ids=METHOD_IDS)
def test_float_with_negative_values_and_nan(method, linkage):
    img, truth = three_level_image(dtype=np.float32, levels=(-5.0, 0.0, 5.0), noise=0.2)
    img[0, 0] = np.nan
    img[5, 7] = np.inf
    res = cluster_image(img, 3, method, linkage=linkage)
    assert res.labels[0, 0] == 0 and res.labels[5, 7] == 0
    truth[0, 0] = truth[5, 7] = 0
    assert_recovers(res.labels, truth)
    assert res.counts.sum() == img.size - 2
    np.testing.assert_allclose(res.centers[:, 0], (-5, 0, 5), atol=0.1)


def rgb_image(alpha=False):
    """Four colour patches: dark blue, red, green, white; luminance order blue < red < green < white."""
    colours = np.array([[0, 0, 120], [200, 20, 20], [20, 200, 20], [250, 250, 250]], np.uint8)
    truth = np.repeat(np.repeat(np.arange(4).reshape(2, 2), 16, 0), 16, 1)
    img = colours[truth].copy()
    rng = np.random.default_rng(1)
    img = np.clip(img.astype(int) + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)
    if alpha:
        img = np.concatenate([img, rng.integers(0, 256, truth.shape + (1,), dtype=np.uint8)], axis=-1)
    return img, truth + 1


@pytest.mark.parametrize(("method", "linkage"), METHODS, ids=METHOD_IDS)
@pytest.mark.parametrize("alpha", [False, True], ids=["rgb", "rgba"])
def test_rgb_and_rgba(method, linkage, alpha):
    img, truth = rgb_image(alpha)
    res = cluster_image(img, 4, method, linkage=linkage, rgb=True)
    assert res.labels.shape == img.shape[:2]
    assert_recovers(res.labels, truth)
    assert res.centers.shape == (4, 3)  # alpha ignored


def blobs_stack(shape=(12, 30, 30)):
    z, y, x = np.indices(shape)
    truth = np.ones(shape, np.uint8)
    truth[(z - 6) ** 2 + (y - 10) ** 2 + (x - 10) ** 2 < 25] = 2
    truth[(z - 6) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 < 16] = 3
    rng = np.random.default_rng(0)
    img = np.array([200, 1000, 3000])[truth - 1] + rng.normal(0, 30, shape)
    return np.clip(img, 0, None).astype(np.uint16), truth


@pytest.mark.parametrize(("method", "linkage"), METHODS, ids=METHOD_IDS)
def test_3d_stack_clustered_as_one_volume(method, linkage):
    img, truth = blobs_stack()
    res = cluster_image(img, 3, method, linkage=linkage)
    assert res.labels.shape == img.shape
    assert_recovers(res.labels, truth)


@pytest.mark.parametrize(("method", "linkage"), METHODS, ids=METHOD_IDS)
@pytest.mark.parametrize("shape", [(4, 20, 20), (3, 4, 16, 16)], ids=["tyx", "tzyx"])
def test_time_series_one_model_for_all_frames(method, linkage, shape):
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, shape)
    # frames get brighter over time, but the two classes stay far apart
    drift = np.arange(shape[0]).reshape((-1,) + (1,) * (len(shape) - 1)) * 5.0
    img = (np.where(truth == 1, 800.0, 100.0) + drift + rng.normal(0, 3, shape)).astype(np.float32)
    res = cluster_image(img, 2, method, linkage=linkage, time_axis=0, smoothing=0.0)
    assert_recovers(res.labels, truth + 1)


def test_smoothing_does_not_cross_frames():
    from napari_cluster_seg.core.preprocess import pixel_data

    img = np.zeros((2, 16, 16), np.float32)
    img[1] = 100.0
    opts = dict(channel_axis=None, rgb=False, mask=None, smoothing=2.0)
    per_frame = pixel_data(img, time_axis=0, **opts).values.reshape(img.shape)
    np.testing.assert_allclose(per_frame, img, atol=1e-4)  # constant frames stay constant
    blurred = pixel_data(img, time_axis=None, **opts).values.reshape(img.shape)
    assert blurred[0].max() > 1.0  # without a time axis, frame 1 bleeds into frame 0


@pytest.mark.parametrize(("method", "linkage"), METHODS, ids=METHOD_IDS)
@pytest.mark.parametrize("channel_axis", [0, 2])
def test_multichannel_channel_axis(method, linkage, channel_axis):
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 100).reshape(15, 20)
    # channel 0 separates class 0 from the others, channel 1 separates class 2 from the others:
    # neither channel alone gives three clusters.
    ch0 = np.where(truth == 0, 0.0, 1.0) + rng.normal(0, 0.02, truth.shape)
    ch1 = np.where(truth == 2, 5000.0, 0.0) + rng.normal(0, 50, truth.shape)
    img = np.stack([ch0, ch1], axis=channel_axis).astype(np.float32)
    res = cluster_image(img, 3, method, linkage=linkage, channel_axis=channel_axis)
    assert res.labels.shape == truth.shape
    assert_recovers(res.labels, truth + 1)
    assert res.centers.shape == (3, 2)


def test_dask_array_is_loaded_after_a_size_check():
    da = pytest.importorskip("dask.array")
    img, truth = three_level_image(dtype=np.uint16, levels=(100, 2000, 4000), noise=20)
    lazy = da.from_array(img, chunks=(10, 10))
    res = cluster_image(lazy, 3)
    assert_recovers(res.labels, truth)
    with pytest.raises(ValueError, match=r"needs about .* of memory .* only .* available; crop it"):
        cluster_image(lazy, 3, max_bytes=1000)


def test_labels_are_deterministic_and_stable_across_seeds():
    img, _ = rgb_image()
    a = cluster_image(img, 4, rgb=True, random_state=3)
    b = cluster_image(img, 4, rgb=True, random_state=3)
    np.testing.assert_array_equal(a.labels, b.labels)
    # the brightness order makes the numbering independent of the seed on well-separated data
    c = cluster_image(img, 4, rgb=True, random_state=11)
    np.testing.assert_array_equal(a.labels, c.labels)
    d = cluster_image(img, 4, "divisive", rgb=True, random_state=11)
    np.testing.assert_array_equal(a.labels, d.labels)


def test_rgb_order_is_by_luminance_not_by_channel_sum():
    # pure blue (sum 255, luma 18) is darker than dim green (sum 150, luma 107)
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2, :, 2] = 255
    img[2:, :, 1] = 150
    res = cluster_image(img, 2, rgb=True)
    assert (res.labels[:2] == 1).all() and (res.labels[2:] == 2).all()


def test_exact_kmeans_matches_thresholds_and_ties_go_down():
    # values 0, 1, 2, 3 each once: optimal 2-means splits {0,1} | {2,3}
    img = np.array([[0, 1, 2, 3]], np.uint8)
    res = cluster_image(img, 2)
    np.testing.assert_array_equal(res.labels, [[1, 1, 2, 2]])


def test_kmeans_1d_is_the_global_optimum():
    from napari_cluster_seg.core.kmeans import kmeans_1d_optimal

    rng = np.random.default_rng(0)
    img = rng.gamma(2.0, 400, (64, 64)).astype(np.uint16)
    res = cluster_image(img, 4, normalize="none")
    values, counts = np.unique(img, return_counts=True)
    _, best = kmeans_1d_optimal(values.astype(float), counts.astype(float), 4)
    assert res.inertia == pytest.approx(best, rel=1e-9)


def test_normalisation_options_and_percentile_clipping():
    img, truth = three_level_image(dtype=np.float32, levels=(0, 1, 2), noise=0.05)
    for how in ("none", "minmax", "zscore", "percentile"):
        assert_recovers(cluster_image(img, 3, normalize=how).labels, truth)
    # minmax lets a large-range channel dominate nothing; "none" lets it dominate
    rng = np.random.default_rng(0)
    split = np.repeat([0, 1], 50)
    ch_small = split + rng.normal(0, 0.05, 100)  # informative, range ~1
    ch_large = rng.normal(0, 100, 100)  # noise with a huge range
    img2 = np.stack([ch_small, ch_large], -1).reshape(10, 10, 2)
    zs = cluster_image(img2, 2, channel_axis=-1, normalize="zscore")
    raw = cluster_image(img2, 2, channel_axis=-1, normalize="none")

    def agree(lab):
        return max((lab.ravel() - 1 == split).mean(), (lab.ravel() - 1 != split).mean())

    assert agree(zs.labels) > agree(raw.labels)


def test_fit_stride_fits_on_reduced_image_and_labels_all_pixels():
    img, truth = three_level_image(shape=(60, 60), dtype=np.float32, levels=(0, 1, 2), noise=0.05)
    for method in ("kmeans", "agglomerative", "divisive"):
        res = cluster_image(img, 3, method, fit_stride=4)
        assert res.labels.shape == img.shape
        assert_recovers(res.labels, truth)


def test_mask_leaves_pixels_unclustered():
    img, truth = three_level_image()
    mask = np.ones(img.shape, bool)
    mask[:, :10] = False
    res = cluster_image(img, 3, mask=mask)
    assert (res.labels[:, :10] == 0).all()
    np.testing.assert_array_equal(res.labels[:, 10:], truth[:, 10:])


def test_cut_reuses_the_hierarchy_and_nests():
    img, _ = rgb_image()
    for method in ("agglomerative", "divisive"):
        res = cluster_image(img, 2, method, rgb=True)
        finer = res.cut(4)
        assert finer.n_clusters == 4 and res.n_clusters == 2
        for lab in np.unique(finer.labels):
            assert len(np.unique(res.labels[finer.labels == lab])) == 1
        np.testing.assert_array_equal(finer.labels, cluster_image(img, 4, method, rgb=True).labels)
    with pytest.raises(ValueError, match="needs a hierarchical result"):
        cluster_image(img, 2, rgb=True).cut(3)


def test_iter_cluster_image_reports_progress_and_can_stop():
    img, _ = three_level_image()
    gen = iter_cluster_image(img, 3, "divisive")
    first = next(gen)
    assert isinstance(first, Progress) and 0 <= first.fraction <= 1
    gen.close()  # cancelled between steps: no result, no error
    stages = []
    res = cluster_image(img, 3, progress=lambda stage, frac: stages.append((stage, frac)))
    assert res.n_clusters == 3
    fractions = [f for _, f in stages]
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)


def test_input_is_never_modified():
    img = np.random.default_rng(0).random((20, 20)).astype(np.float32)
    img[0, 0] = np.nan
    before = img.copy()
    cluster_image(img, 3, smoothing=1.0, normalize="percentile")
    np.testing.assert_array_equal(img, before)


def test_bool_image_is_accepted():
    img = np.zeros((8, 8), bool)
    img[2:5, 2:5] = True
    np.testing.assert_array_equal(cluster_image(img, 2).labels, img + 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_clusters": 1}, r"n_clusters must be between 2 and .*got 1"),
        ({"n_clusters": 2.5}, r"n_clusters must be an integer"),
        ({"method": "dbscan"}, r"method='dbscan' is not supported; choose one of 'kmeans'"),
        ({"method": "agglomerative", "linkage": "median"}, r"linkage='median' is not supported"),
        ({"normalize": "l2"}, r"normalize='l2' is not supported"),
        ({"smoothing": -1}, r"smoothing=-1 must be a finite number >= 0"),
        ({"fit_stride": 0}, r"fit_stride must be >= 1, got 0"),
        ({"channel_axis": 5}, r"channel_axis=5 is out of range .* 2 dimensions"),
        ({"percentiles": (99, 1)}, r"percentiles=\(99, 1\) must satisfy 0 <= low < high <= 100"),
        ({"n_clusters": 9}, r"n_clusters=9 is more than the 4 distinct values .*choose n_clusters <= 4"),
        ({"n_clusters": 9, "method": "divisive"}, r"n_clusters=9 is more than the 4 distinct values"),
        ({"mask": np.zeros((4, 4), bool)}, r"no valid pixels"),
        (
            {"mask": np.ones((3, 3), bool)},
            r"mask has shape \(3, 3\) but the image's pixels have shape \(4, 4\)",
        ),
    ],
)
def test_bad_options_raise_clear_errors(kwargs, match):
    img = np.arange(16, dtype=np.uint8).reshape(4, 4) % 4
    kwargs = {"n_clusters": 2, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        cluster_image(img, **kwargs)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.full((4, 4), np.nan, np.float32), "every pixel is NaN, infinite or masked"),
        (np.zeros((4, 4), np.complex64), "dtype complex64 cannot be clustered"),
        (np.zeros((0, 4), np.uint8), "is empty"),
        (np.array(["a", "b"]), "cannot be clustered"),
    ],
)
def test_bad_images_raise_clear_errors(image, match):
    with pytest.raises(ValueError, match=match):
        cluster_image(image, 2)


def test_rgb_needs_three_or_four_channels():
    with pytest.raises(
        ValueError, match=r"rgb=True needs 3 \(RGB\) or 4 \(RGBA\) channels on the last axis, got 2"
    ):
        cluster_image(np.zeros((4, 4, 2), np.uint8), 2, rgb=True)


def test_real_nuclei_image_segments_like_the_annotation(shared_data):
    """K-means with k=2 on a real fluorescence image finds the annotated nuclei."""
    from skimage import io

    folder = shared_data / "dsb2018-nuclei"
    name = sorted((folder / "images").glob("*.png"))[0].name
    img = io.imread(folder / "images" / name)
    mask = io.imread(folder / "masks" / name) > 0
    grey = img[..., :3].mean(-1) if img.ndim == 3 else img
    for method in ("kmeans", "agglomerative", "divisive"):
        res = cluster_image(grey, 2, method, smoothing=1.0)
        fg = res.labels == 2
        dice = 2 * (fg & mask).sum() / (fg.sum() + mask.sum())
        assert dice > 0.7, (method, dice)


@pytest.mark.parametrize("method", ["agglomerative", "divisive"])
def test_dendrogram_matches_the_labels(method):
    img, _ = rgb_image()
    res = cluster_image(img, 3, method, rgb=True)
    d = res.dendrogram(max_leaves=4)
    assert d.n_leaves == 4 and d.n_clusters == 3
    assert sorted(set(d.leaf_labels.tolist())) == [1, 2, 3]
    for k in (2, 3, 4):
        assert d.clusters_at(d.cut_height(k)) == k
    with pytest.raises(ValueError, match="needs a hierarchical result"):
        cluster_image(img, 3, rgb=True).dendrogram()


def test_cluster_table_in_physical_units_for_a_time_series():
    from napari_cluster_seg import cluster_table

    img = np.zeros((2, 3, 4, 5), np.float32)  # (t, c, y, x)
    img[:, 0, :2] = 1.0
    res = cluster_image(img, 2, time_axis=0, channel_axis=1)
    table = cluster_table(res, scale=(10.0, 0.5, 0.25), units=("s", "um", "um"))
    assert table["pixels"].tolist() == [20, 20]
    np.testing.assert_allclose(table["area"], [20 * 0.125, 20 * 0.125])  # time is not a size
    assert table["size_unit"][0] == "um^2"
    assert [c for c in table if c.startswith("mean_")] == ["mean_0", "mean_1", "mean_2"]
    # centres in the normalised feature space: min-max scaled channel means
    np.testing.assert_allclose(table["center_0"], [0.0, 1.0])
    np.testing.assert_allclose(table["center_1"], [0.0, 0.0])


def test_cluster_table_feature_centres_with_features():
    from skimage import data

    from napari_cluster_seg import cluster_table

    img = data.camera()[::4, ::4]
    res = cluster_image(img, 3, filters=("log",), scales=(2.0,), normalize="zscore")
    table = cluster_table(res)
    assert [c for c in table if c.startswith("center_")] == ["center_0", "center_log_0_s2"]
    from napari_cluster_seg.core.preprocess import pixels_for

    pix = pixels_for(
        img,
        channel_axis=None,
        rgb=False,
        time_axis=None,
        smoothing=0,
        mask=None,
        features=res.params.features,
    )
    feats = res.model.normalizer(pix.values).reshape(img.shape + (2,))
    for lab in (1, 2, 3):
        np.testing.assert_allclose(
            table["center_log_0_s2"][lab - 1], feats[res.labels == lab, 1].mean(), atol=2e-3
        )
