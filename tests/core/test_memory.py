"""Loading and the memory guard: nothing lazy is computed before the check, and the estimate
covers what each path really allocates."""

import gc
import threading
import time
import tracemalloc
from collections import namedtuple

import numpy as np
import pytest

from napari_cluster_seg import cluster_image
from napari_cluster_seg.core import load_array, scan_n_clusters
from napari_cluster_seg.core._params import validate_params
from napari_cluster_seg.core.memory import estimate_memory
from napari_cluster_seg.core.preprocess import available_memory

da = pytest.importorskip("dask.array")

TOO_LARGE = r"needs about .* of memory to cluster, but only .* is available; crop it"


class Computed(AssertionError):
    pass


def poisoned(shape, dtype="uint8", chunks=4096):
    """A dask array whose every block raises when computed (and counts the attempts)."""
    calls = []

    def boom(block):
        calls.append(block.shape)
        raise Computed("a block of the lazy image was computed")

    meta = np.empty((0,) * len(shape), dtype)  # (without meta, dask calls boom once to find it)
    return da.zeros(shape, dtype=dtype, chunks=chunks).map_blocks(boom, dtype=dtype, meta=meta), calls


def counting(image, chunks):
    """A dask array of ``image`` that counts its computed blocks."""
    calls = []

    def count(block):
        calls.append(block.shape)
        return block

    meta = np.empty((0,) * image.ndim, image.dtype)
    return da.from_array(image, chunks=chunks).map_blocks(count, dtype=image.dtype, meta=meta), calls


def test_huge_lazy_image_is_refused_fast_without_computing_anything():
    lazy, calls = poisoned((200000, 200000))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=TOO_LARGE) as err:
        cluster_image(lazy, 3)
    assert time.perf_counter() - start < 5
    assert "(200000, 200000) (uint8)" in str(err.value)
    assert calls == []


@pytest.mark.parametrize(
    "options",
    [{}, {"method": "agglomerative"}, {"method": "divisive", "connected": True}, {"smoothing": 1.0}],
)
def test_memory_check_comes_before_any_computation(options):
    lazy, calls = poisoned((512, 512), chunks=128)
    with pytest.raises(ValueError, match=TOO_LARGE):
        cluster_image(lazy, 3, max_bytes=2**20, **options)
    with pytest.raises(ValueError, match=TOO_LARGE):
        scan_n_clusters(lazy, 4, max_bytes=2**20, **options)
    assert calls == []


def test_model_predict_apply_transform_check_before_computing():
    img = np.repeat(np.array([10, 100, 200], np.uint8), 100).reshape(30, 10)
    model = cluster_image(img, 3).model
    lazy, calls = poisoned((200000, 200000))
    for fn in (model.predict, model.apply, model.transform):
        with pytest.raises(ValueError, match=TOO_LARGE):
            fn(lazy)
        with pytest.raises(ValueError, match=TOO_LARGE):
            fn(lazy[:512, :512], max_bytes=2**20)
    assert calls == []


def test_lazy_image_within_the_limit_is_computed_once_and_clusters_like_numpy():
    img = np.repeat(np.array([10, 100, 200], np.uint8), 400).reshape(40, 30)
    lazy, calls = counting(img, chunks=(16, 16))
    res = cluster_image(lazy, 3)
    np.testing.assert_array_equal(res.labels, cluster_image(img, 3).labels)
    assert len(calls) == lazy.npartitions  # every block once, nothing twice
    calls.clear()
    model = res.model
    np.testing.assert_array_equal(model.predict(lazy), res.labels)
    assert len(calls) == lazy.npartitions


def test_unknown_dask_shape_is_a_value_error_that_says_how_to_fix_it():
    lazy = da.from_array(np.arange(400, dtype=np.uint16).reshape(20, 20), chunks=5)
    unknown = lazy[lazy[:, 0] > 30]  # rows of unknown count: shape (nan, 20)
    assert np.isnan(unknown.shape[0])
    for fn in (lambda x: cluster_image(x, 2), lambda x: scan_n_clusters(x, 3), load_array):
        with pytest.raises(ValueError, match=r"not known along axis 0 .*compute_chunk_sizes\(\)"):
            fn(unknown)
    res = cluster_image(unknown.compute_chunk_sizes(), 2)  # the fix works
    assert res.labels.shape == (18, 20)


def test_failed_allocation_while_loading_is_a_value_error():
    def no_memory(block):
        raise MemoryError("Unable to allocate 37.3 GiB")

    lazy = da.zeros((64, 64), dtype="uint8", chunks=32).map_blocks(
        no_memory, dtype="uint8", meta=np.empty((0, 0), np.uint8)
    )
    with pytest.raises(ValueError, match=r"could not be loaded: it needs .* crop it"):
        cluster_image(lazy, 2)


def test_sequences_are_converted_and_shape_dtype_objects_are_not_touched():
    res = cluster_image([[0, 0, 10, 10], [0, 0, 10, 200]], 3)
    assert res.labels.tolist() == [[1, 1, 2, 2], [1, 1, 2, 3]]

    class Lazy:  # any object with shape and dtype counts as lazy: only np.asarray reads it
        shape, dtype = (50000, 50000), np.dtype(np.float32)

        def __array__(self, *args, **kwargs):
            raise Computed("read before the check")

    with pytest.raises(ValueError, match=TOO_LARGE):
        cluster_image(Lazy(), 2, max_bytes=2**30)


def test_available_memory_is_psutils(monkeypatch):
    import psutil

    Mem = namedtuple("Mem", "available total")
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Mem(123456789, 10**10))
    assert available_memory() == 123456789
    img = np.zeros((64, 64), np.uint8)
    with pytest.raises(ValueError, match=r"only 117\.7 MB is available"):
        load_array(da.from_array(np.zeros((8000, 8000), np.uint8)))
    assert load_array(img) is img


def test_in_memory_image_counts_only_what_the_run_adds():
    # the issue: a 45000² grey image (2 GB) was refused as needing 24.5 GB
    shape = (45000, 45000)
    params = validate_params(2, n_clusters=3)
    in_memory = estimate_memory(shape, np.uint8, params, in_memory=True)
    lazy = estimate_memory(shape, np.uint8, params, in_memory=False)
    n = shape[0] * shape[1]
    assert in_memory < 1.5 * n  # uint8 labels plus small tables
    assert lazy >= in_memory + n  # a lazy image is loaded too
    big = np.empty(shape, np.uint8)  # not touched: no memory is used
    assert load_array(big, max_bytes=int(1.5 * n)) is big
    with pytest.raises(ValueError, match=TOO_LARGE):
        load_array(big, max_bytes=n // 2)


def test_estimate_follows_the_path():
    grey_params = validate_params(2, n_clusters=3)
    grey = estimate_memory((4000, 4000), np.uint8, grey_params, in_memory=True)
    rgb_params = validate_params(3, n_clusters=3, rgb=True)
    rgb = estimate_memory((4000, 4000, 3), np.uint8, rgb_params, in_memory=True)
    # the issue: noisy uint8 RGB at 4000² peaked at 1.58 GB (any image of this size may be that noisy)
    assert rgb >= 1.58 * 2**30
    assert grey < rgb / 10
    n = 4000 * 4000
    plain = estimate_memory((4000, 4000), np.uint16, grey_params, in_memory=True)
    masked = estimate_memory((4000, 4000), np.uint16, grey_params, masked=True, in_memory=True)
    assert masked >= plain + 2 * n  # the valid pixels are copied
    smoothed = estimate_memory((4000, 4000), np.uint16, validate_params(2, n_clusters=3, smoothing=1.0))
    assert smoothed >= plain + 4 * n  # float32 values


def _traced_peak(fn):
    """Peak bytes numpy and Python allocate while fn() runs (allocations of numba's own runtime
    are not seen: a lower bound of the run's peak)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _noisy_rgb(side):
    return np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)


def _smooth_grey(side, dtype):
    yy, xx = np.mgrid[:side, :side]
    noise = np.random.default_rng(1).normal(0, 0.05, (side, side))
    v = (np.sin(xx / 9.0) + np.cos(yy / 13.0) + 2) / 4 + noise
    v = np.clip(v, 0, 1)
    return (v * np.iinfo(dtype).max).astype(dtype) if np.dtype(dtype).kind == "u" else v.astype(dtype)


PATHS = {
    "kmeans rgb noisy": (lambda: _noisy_rgb(600), {"rgb": True}, False),
    "agglomerative rgb noisy": (lambda: _noisy_rgb(600), {"rgb": True, "method": "agglomerative"}, False),
    "kmeans float32 masked": (lambda: _smooth_grey(700, np.float32), {}, True),
    "kmeans uint16 features": (
        lambda: _smooth_grey(700, np.uint16),
        {"smoothing": 1.0, "filters": ("log",), "scales": (4.0,), "normalize": "percentile"},
        False,
    ),
    "divisive connected uint8 smoothing": (
        lambda: _smooth_grey(700, np.uint8),
        {"method": "divisive", "connected": True, "smoothing": 1.0},
        False,
    ),
    "kmeans 7 features": (
        lambda: _smooth_grey(500, np.uint8),
        {"filters": ("gaussian", "log", "gradient")},
        False,
    ),
    "kmeans uint8 clean-up": (lambda: _smooth_grey(700, np.uint8), {"min_size": 20, "n_clusters": 8}, False),
}


@pytest.mark.parametrize("path", list(PATHS))
def test_estimate_covers_the_measured_peak(path):
    make, options, masked = PATHS[path]
    image = make()
    options = {"n_clusters": 3, **options}
    mask = None
    if masked:
        mask = np.ones(image.shape[:2], bool)
        mask[:100] = False
    cluster_image(image[:64, :64], mask=None if mask is None else mask[-64:, -64:], **options)  # imports
    peak = _traced_peak(lambda: cluster_image(image, mask=mask, **options))
    params = validate_params(image.ndim, **options)
    estimate = estimate_memory(image.shape, image.dtype, params, masked=masked, in_memory=True)
    assert estimate >= peak
    # and not wildly above the run's real size (the fixed allocations aside)
    assert estimate <= 3 * peak + 32 * 2**20


def test_lazy_check_runs_in_other_threads_too():
    # the widget loads in a worker thread: the check must not depend on the main thread
    lazy, calls = poisoned((200000, 200000))
    errors = []

    def work():
        try:
            cluster_image(lazy, 3)
        except ValueError as err:
            errors.append(err)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert len(errors) == 1 and calls == []
