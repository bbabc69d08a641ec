"""The streaming fit (core/stream.py): a lazy image fitted block by block, the same fit as loading it."""

import threading
import warnings

import numpy as np
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from napari_cluster_seg.core import cluster_image, fit_lazy, label_lazy
from napari_cluster_seg.core.stream import fit_stream, iter_fit_stream, why_not_stream

da = pytest.importorskip("dask.array")


def _smooth_image(shape, seed=0, scale=4000):
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.random(shape) * scale, 2).astype(np.uint16)


def _case(name):
    img = _smooth_image(
        {"rgb": (61, 77, 3), "3d": (9, 40, 37), "time_mc": (5, 31, 29, 2)}.get(name, (97, 131))
    )
    if name in ("uint8", "rgb"):
        img = (img // 16).astype(np.uint8)
    if name == "int32_wide":  # integer range too wide to count: the grid, with exact integer sums
        img = img.astype(np.int32) * 1000 - 5
    return img


INT_CASES = [  # name, chunks (uneven), options (cluster_image's and label_lazy's)
    ("uint16", (30, 41), {}),
    ("uint8", (30, 41), {}),
    ("rgb", (20, 33, 1), {"rgb": True}),
    ("3d", (4, 15, 16), {}),
    ("time_mc", (2, 12, 10, 1), {"channel_axis": 3, "time_axis": 0}),
    ("int32_wide", (30, 41), {}),
]


def _assert_same_fit(fit, res):
    np.testing.assert_array_equal(fit.model.points, res.model.points)
    np.testing.assert_array_equal(fit.model.labels, res.model.labels)
    np.testing.assert_array_equal(fit.centers, res.centers)
    np.testing.assert_array_equal(fit.counts, res.counts)
    assert fit.inertia == res.inertia


@pytest.mark.parametrize("method", ["kmeans", "agglomerative", "divisive"])
@pytest.mark.parametrize("name, chunks, opts", INT_CASES)
def test_streamed_fit_equals_cluster_image_on_the_loaded_array(name, chunks, opts, method, accel):
    img = _case(name)
    res = cluster_image(img, 3, method, **opts)
    lazy = da.from_array(img, chunks=chunks)
    fit = fit_stream(lazy, 3, method, **opts)
    _assert_same_fit(fit, res)
    np.testing.assert_array_equal(label_lazy(fit.model, lazy, **opts).compute(), res.labels)


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
@pytest.mark.parametrize("normalize", ["zscore", "percentile", "none"])
def test_normalisation_statistics_come_from_the_merged_blocks(normalize, method):
    img = _case("rgb")
    res = cluster_image(img, 4, method, rgb=True, normalize=normalize)
    fit = fit_stream(da.from_array(img, chunks=(17, 23, 3)), 4, method, rgb=True, normalize=normalize)
    _assert_same_fit(fit, res)


@pytest.mark.parametrize("multichannel", [False, True])
def test_float_images_stream_to_the_same_grid(multichannel):
    img = _smooth_image((61, 77, 3) if multichannel else (97, 131)).astype(np.float32) / 7
    img.flat[::97] = np.nan  # NaN pixels are not clustered
    opts = {"channel_axis": 2} if multichannel else {}
    lazy = da.from_array(img, chunks=(20, 33, 3) if multichannel else (30, 41))
    res = cluster_image(img, 3, **opts)
    fit = fit_stream(lazy, 3, **opts)
    # the same grid cells; float cell sums added block by block differ in their last bits at most
    np.testing.assert_allclose(fit.model.points, res.model.points, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fit.centers, res.centers, rtol=1e-12)
    np.testing.assert_array_equal(fit.counts, res.counts)
    labels = label_lazy(fit.model, lazy, **opts).compute()
    np.testing.assert_array_equal(labels, label_lazy(res.model, lazy, **opts).compute())
    if not multichannel:  # cluster_image labels a grid cell by its mean: a boundary pixel may differ
        assert (labels == res.labels).mean() >= 0.9999
    assert np.all(labels[np.isnan(img).any(axis=-1) if multichannel else np.isnan(img)] == 0)


def test_fit_lazy_streams_without_a_subset_and_loads_for_whole_image_options():
    img = _case("uint16")
    lazy = da.from_array(img, chunks=(30, 41))
    assert fit_lazy(lazy, 3).to_dict() == cluster_image(img, 3).model.to_dict()
    assert why_not_stream(lazy, 3, smoothing=1.0) == "smoothing=1.0"
    assert why_not_stream(lazy, 3, "agglomerative", connected=True) == "connected=True"
    assert why_not_stream(lazy, 3, mask=img > 100) == "mask"
    # those load the image (after the memory check) and fit as cluster_image
    smoothed = fit_lazy(lazy, 3, smoothing=1.0)
    assert smoothed.to_dict() == cluster_image(img, 3, smoothing=1.0).model.to_dict()
    with pytest.raises(ValueError, match=r"smoothing=1.0 needs the whole image.*subset='level=N'"):
        fit_lazy(lazy, 3, smoothing=1.0, max_bytes=1000)
    with pytest.raises(ValueError, match="min_size.*subset"):
        list(iter_fit_stream(lazy, 3, min_size=10))


def _counting_image(shape, chunks, seen):
    """A lazy uint16 image computed block by block from a function (never whole); ``seen``
    collects the size of every block computed."""

    def block(block_info=None):
        loc = block_info[None]["array-location"]
        y = np.arange(*loc[0])[:, None]
        x = np.arange(*loc[1])[None, :]
        seen.append((loc[0][1] - loc[0][0]) * (loc[1][1] - loc[1][0]))
        return ((np.sin(x / 50.0) + np.cos(y / 70.0) + 2) * 10000).astype(np.uint16)

    chunks = da.core.normalize_chunks(chunks, shape)
    return da.map_blocks(block, dtype=np.uint16, chunks=chunks, meta=np.empty((0, 0), np.uint16))


def test_memory_stays_bounded_by_blocks_and_distinct_values():
    shape, chunks = (2**13, 2**13), (1024, 1024)  # 2**26 pixels: 128 MB as uint16
    seen = []
    image = _counting_image(shape, chunks, seen)
    proc = psutil.Process()
    base = peak = proc.memory_info().rss
    stop = threading.Event()

    def watch():
        nonlocal peak
        while not stop.wait(0.01):
            peak = max(peak, proc.memory_info().rss)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        fit = fit_stream(image, 3)
    finally:
        stop.set()
        watcher.join()
    assert len(seen) == 64 and max(seen) == 2**20  # every block once, none larger than a chunk
    assert peak - base < 64 * 2**20  # far below the image's 128 MB (a batch of blocks at most)
    assert fit.counts.sum() == 2**26


def test_cancelling_stops_between_batches_of_blocks():
    seen = []
    image = _counting_image((2**12, 2**12), (256, 256), seen)  # 256 blocks
    gen = iter_fit_stream(image, 3)
    for step in gen:
        if step.stage.startswith("counting values"):
            break
    gen.close()
    assert 0 < len(seen) < 256  # the first pass's blocks, not all of them
    with pytest.raises(StopIteration):
        next(gen)


def test_a_distributed_client_fits_the_same():
    distributed = pytest.importorskip("distributed")
    img = _case("rgb")
    lazy = da.from_array(img, chunks=(20, 33, 3))
    res = cluster_image(img, 3, "agglomerative", rgb=True)
    with distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster, set_as_default=False) as client:
            fit = fit_stream(lazy, 3, "agglomerative", rgb=True, scheduler=client)
            model = fit_lazy(lazy, 3, "agglomerative", rgb=True, scheduler=client)
    _assert_same_fit(fit, res)
    assert model.to_dict() == res.model.to_dict()


@st.composite
def _lazy_images(draw):
    """A small integer (or bool) image, 1-3 axes, with random uneven chunks (down to 1 pixel)."""
    from hypothesis.extra.numpy import arrays

    dtype = draw(st.sampled_from(["bool", "uint8", "int8", "uint16", "int32", "int64", "uint64"]))
    shape = draw(st.lists(st.integers(1, 9), min_size=1, max_size=3).map(tuple))
    if dtype == "bool":
        elements = st.booleans()
    else:
        info = np.iinfo(dtype)
        edge = st.sampled_from([int(info.min), int(info.max), 0])
        elements = st.one_of(edge, st.integers(max(int(info.min), -300), min(int(info.max), 300)))
    img = draw(arrays(dtype, shape, elements=elements))
    chunks = tuple(
        tuple(draw(st.lists(st.integers(1, n), min_size=1, max_size=n).map(lambda c, n=n: _cut(c, n))))
        for n in shape
    )
    return img, chunks


def _cut(sizes, n):
    """Chunk sizes summing to ``n``: ``sizes`` taken until the axis is covered, the last cut short."""
    out, total = [], 0
    for s in sizes:
        out.append(min(s, n - total))
        total += out[-1]
        if total == n:
            return out
    return out + [n - total]


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=_lazy_images(), k=st.integers(2, 4), method=st.sampled_from(["kmeans", "agglomerative", "divisive"])
)
def test_streamed_fit_equals_cluster_image_on_random_small_arrays(case, k, method):
    """Any small integer image, any chunks: the streamed fit is cluster_image's on the loaded array
    (the same model and labels), or both refuse it with the same error type."""
    img, chunks = case
    lazy = da.from_array(img, chunks=chunks)
    try:
        res = cluster_image(img, k, method)
    except (ValueError, TypeError) as err:
        with pytest.raises(type(err)):
            fit_stream(lazy, k, method)
        return
    fit = fit_stream(lazy, k, method)
    np.testing.assert_array_equal(fit.model.points, res.model.points)
    np.testing.assert_array_equal(fit.centers, res.centers)
    np.testing.assert_array_equal(fit.counts, res.counts)
    # wide integer ranges go through the grid: its sums of squares are added block by block
    assert fit.inertia == pytest.approx(res.inertia, rel=1e-9, abs=1e-12)
    np.testing.assert_array_equal(label_lazy(fit.model, lazy).compute(scheduler="sync"), res.labels)


def test_exact_values_near_the_integer_limits_need_no_float_round_trip():
    """uint64 values beyond 2**53 counted exactly are decoded in integers: no 'invalid value
    encountered in cast' warning before the refusal (float64 merges them into one value), and
    the same fit as cluster_image where they are apart."""
    img = np.array([[2**64 - 1, 2**64 - 2]], np.uint64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="only one distinct value"):
            fit_stream(da.from_array(img, chunks=1), 2)
        img = np.array([[2**63 + 2**12, 2**63, 2**63 + 2**13]], np.uint64)
        _assert_same_fit(fit_stream(da.from_array(img, chunks=2), 2), cluster_image(img, 2))


class _Contiguous:
    """An array-like without chunks (an h5py dataset stored contiguously: ``chunks is None``)."""

    def __init__(self, data):
        self.data, self.shape, self.dtype, self.ndim, self.chunks = (
            data,
            data.shape,
            data.dtype,
            data.ndim,
            None,
        )

    def __getitem__(self, key):
        return self.data[key]


def test_an_array_like_without_chunks_streams():
    img = _case("uint8")
    _assert_same_fit(fit_stream(_Contiguous(img), 3), cluster_image(img, 3))


def test_tiny_blocks_are_reduced_several_at_a_time(monkeypatch):
    """1024 blocks of 16 x 16 pixels: reduced in a few tasks of whole blocks (a task per tiny block
    took 5-10x longer), the same fit."""
    from napari_cluster_seg.core import stream

    calls = []
    count_block = stream.count_block

    def counting(block, **kwargs):
        calls.append(block.shape)
        return count_block(block, **kwargs)

    monkeypatch.setattr(stream, "count_block", counting)
    seen = []
    image = _counting_image((512, 512), (16, 16), seen)
    fit = fit_stream(image, 3)
    assert len(seen) == 1024 and len(calls) <= 4
    _assert_same_fit(fit, cluster_image(image.compute(), 3))
