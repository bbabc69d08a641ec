"""K-means on a noisy uint8 RGB photo from its colour cells (core.cells, core._fit_cells): the labels
are every pixel's nearest centre, the statistics exact, the same with and without numba, and the
fit as good as the one on the exact colours."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_cluster_seg import cluster_image
from napari_cluster_seg.core import _accel, _fit_cells, _fit_kmeans, cells
from napari_cluster_seg.core.normalize import fit_normalizer
from napari_cluster_seg.core.reduce import reduce_pixels

from .test_values import run as drain


def noisy_photo(size=1024, sigma=8.0, seed=0):
    """The astronaut at ``size``², with camera-like noise: about a million distinct colours."""
    from skimage import data, transform

    base = transform.resize(data.astronaut(), (size, size), order=1, preserve_range=True)
    noise = np.random.default_rng(seed).normal(0.0, sigma, base.shape)
    return np.clip(base + noise + 0.5, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photo():
    return noisy_photo()


@pytest.fixture
def spy(monkeypatch):
    """Counts the fits finished on the pixels (the colour cells' path)."""
    calls = []
    original = _fit_kmeans.fit_pixels

    def counted(*args):
        calls.append(args)
        return (yield from original(*args))

    monkeypatch.setattr(_fit_kmeans, "fit_pixels", counted)
    return calls


def exact_colours(monkeypatch, *args, **kwargs):
    """``cluster_image(*args, **kwargs)`` on the exact colours (the image taken for a smooth one)."""
    with monkeypatch.context() as m:
        m.setattr(cells, "noisy", lambda values: False)
        return cluster_image(*args, **kwargs)


def nearest(values, tabs, centers):
    """Every row's nearest centre by the kernels' arithmetic (ties: the lower index), by brute force."""
    x = [tabs[c][values[:, c]] for c in range(3)]
    best, arg = None, np.zeros(values.shape[0], np.intp)
    for q in range(centers.shape[0]):
        d = (x[0] - centers[q, 0]) ** 2
        d += (x[1] - centers[q, 1]) ** 2
        d += (x[2] - centers[q, 2]) ** 2
        if best is not None:
            arg[d < best] = q
        best = d if best is None else np.minimum(best, d)
    return arg


@pytest.mark.parametrize("normalize", ["none", "minmax", "zscore"])
def test_labels_are_every_pixel_s_nearest_centre_and_statistics_exact(photo, spy, accel, normalize):
    res = cluster_image(photo, 5, rgb=True, normalize=normalize, random_state=0)
    assert len(spy) == 1
    values = photo.reshape(-1, 3)
    model = res.model
    tabs = cells.value_tables(model.normalizer)
    expected = model.labels[nearest(values, tabs, model.points)]
    np.testing.assert_array_equal(res.labels.ravel(), expected)
    np.testing.assert_array_equal(model.predict(photo), res.labels)
    flat = res.labels.ravel().astype(np.intp)
    counts = np.bincount(flat, minlength=6)[1:]
    np.testing.assert_array_equal(res.counts, counts)
    sums = np.stack([np.bincount(flat, weights=values[:, c], minlength=6)[1:] for c in range(3)], 1)
    np.testing.assert_array_equal(res.centers, sums / counts[:, None])
    dev = (values - res.centers[flat - 1]) / model.normalizer.scale
    assert res.inertia == pytest.approx(float(np.sum(dev * dev)), rel=1e-9)


def test_numba_and_numpy_give_identical_results(photo, spy):
    if not _accel.enabled():
        pytest.skip("numba kernels disabled (NAPARI_CLUSTER_SEG_NUMBA=0)")
    res = cluster_image(photo, 4, rgb=True, random_state=1)
    saved, _accel._module = _accel._module, None
    try:
        ref = cluster_image(photo, 4, rgb=True, random_state=1)
    finally:
        _accel._module = saved
    assert len(spy) == 2
    np.testing.assert_array_equal(res.labels, ref.labels)
    np.testing.assert_array_equal(res.centers, ref.centers)
    np.testing.assert_array_equal(res.model.points, ref.model.points)
    assert res.inertia == ref.inertia


@pytest.mark.parametrize("k", [3, 8])
def test_as_good_a_fit_as_on_the_exact_colours(photo, spy, monkeypatch, k):
    res = cluster_image(photo, k, rgb=True, normalize="none", random_state=0)
    exact = exact_colours(monkeypatch, photo, k, rgb=True, normalize="none", random_state=0)
    assert len(spy) == 1
    assert res.inertia <= 1.001 * exact.inertia


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**31 - 1),
    k=st.integers(2, 9),
    grid=st.sampled_from([None, 1.0, 0.5]),
    how=st.sampled_from(["none", "minmax", "zscore"]),
)
def test_a_pass_labels_every_pixel_with_its_nearest_centre(monkeypatch, accel, seed, k, grid, how):
    """Any centres (on integer or half-integer colours: pixels exactly halfway between two), any
    affine normalisation: each pixel's centre and every sum are the brute force's."""
    monkeypatch.setattr(cells, "MIN_CELLS", 1)
    rng = np.random.default_rng(seed)
    spread = rng.choice([4, 40, 255])
    values = np.clip(rng.normal(128, spread, (3000, 3)), 0, 255).astype(np.uint8)
    red = cells.reduce_cells(values)
    normalizer = cells.histogram_normalizer(red.hist, how)
    raw = rng.uniform(0, 255, (k, 3)) if grid is None else np.round(rng.uniform(0, 255, (k, 3)) / grid) * grid
    centers = np.ascontiguousarray(normalizer(raw))
    tabs = cells.value_tables(normalizer)
    lut = np.arange(k).astype(np.uint8)
    out = np.empty(values.shape[0], np.uint8)
    assign = _fit_cells.memory_assign(values)
    counts, sums = drain(_fit_cells.pixel_pass(red, assign, tabs, centers, lut, out))
    expected = nearest(values, tabs, centers)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(counts, np.bincount(expected, minlength=k))
    for c in range(3):
        np.testing.assert_array_equal(sums[:, c], np.bincount(expected, weights=values[:, c], minlength=k))


def test_a_smooth_or_upscaled_photo_is_counted_exactly(spy):
    from skimage import data

    upscaled = np.repeat(np.repeat(data.astronaut(), 2, axis=0), 2, axis=1)
    assert not cells.noisy(upscaled.reshape(-1, 3))
    cluster_image(upscaled, 3, rgb=True)
    assert spy == []


def test_few_colours_are_counted_exactly(spy, monkeypatch):
    palette = np.random.default_rng(0).integers(0, 256, (12, 3)).astype(np.uint8)
    image = palette[np.random.default_rng(1).integers(0, 12, (1024, 1024))]
    assert cells.noisy(image.reshape(-1, 3)) and cells.reduce_cells(image.reshape(-1, 3)) is None
    res = cluster_image(image, 4, rgb=True, random_state=0)
    ref = exact_colours(monkeypatch, image, 4, rgb=True, random_state=0)
    assert spy == []
    np.testing.assert_array_equal(res.labels, ref.labels)


def test_a_cluster_left_without_pixels_falls_back_to_the_exact_colours(photo, monkeypatch):
    def lost(*args):
        yield from ()

    monkeypatch.setattr(_fit_kmeans, "fit_pixels", lost)
    res = cluster_image(photo, 3, rgb=True, random_state=0)
    ref = exact_colours(monkeypatch, photo, 3, rgb=True, random_state=0)
    np.testing.assert_array_equal(res.labels, ref.labels)
    assert res.inertia == ref.inertia


@pytest.mark.parametrize(
    "options",
    [
        dict(normalize="percentile"),
        dict(fit_stride=2),
        dict(smoothing=1.0),
        dict(color_space="lab"),
        dict(method="agglomerative"),
    ],
)
def test_the_cells_only_serve_k_means_on_the_colours_themselves(photo, spy, options):
    cluster_image(photo, 3, rgb=True, **options)
    assert spy == []


def test_small_images_are_counted_exactly(photo, spy):
    cluster_image(photo[:512], 3, rgb=True)
    assert spy == []


@pytest.mark.parametrize("how", ["none", "minmax", "zscore"])
def test_normalisation_from_the_histograms_equals_that_of_the_colours(photo, how):
    values = photo.reshape(-1, 3)
    red = reduce_pixels(values)
    ref = fit_normalizer(red.raw_points, red.weights, how)
    norm = cells.histogram_normalizer(cells.reduce_cells(values).hist, how)
    np.testing.assert_allclose(norm.offset, ref.offset, rtol=1e-12)
    np.testing.assert_allclose(norm.scale, ref.scale, rtol=1e-12)


# ------------------------------------------------------------------ streamed, progress, fallbacks
def _same_fit(fit, res):
    assert fit.inertia == res.inertia
    np.testing.assert_array_equal(fit.centers, res.centers)
    np.testing.assert_array_equal(fit.counts, res.counts)
    assert fit.model.to_dict() == res.model.to_dict()


@pytest.mark.parametrize("layout", ["rgb", "channels first", "rgba"])
def test_a_streamed_fit_is_cluster_image_s_from_the_cells_too(photo, spy, layout):
    """A lazy noisy photo is fitted from its colour cells block by block: the same model, centres,
    counts and inertia as the loaded image, and the same labels through the lazy labelling."""
    da = pytest.importorskip("dask.array")
    from napari_cluster_seg.core import label_lazy
    from napari_cluster_seg.core.stream import fit_stream

    image, options, chunks = photo, dict(rgb=True), (300, 256, 3)
    if layout == "channels first":
        image, options, chunks = (
            np.ascontiguousarray(np.moveaxis(photo, -1, 0)),
            dict(channel_axis=0),
            (3, 256, 300),
        )
    elif layout == "rgba":
        image, chunks = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)]), (300, 256, 4)
    res = cluster_image(image, 4, random_state=2, **options)
    lazy = da.from_array(image, chunks=chunks)
    fit = fit_stream(lazy, 4, random_state=2, **options)
    assert len(spy) == 2
    _same_fit(fit, res)
    np.testing.assert_array_equal(label_lazy(fit.model, lazy).compute(), res.labels)


def test_a_distributed_client_fits_from_the_cells_the_same(photo):
    distributed = pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")
    from napari_cluster_seg.core.stream import fit_stream

    res = cluster_image(photo, 3, rgb=True)
    with distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster, set_as_default=False) as client:
            fit = fit_stream(da.from_array(photo, chunks=(512, 512, 3)), 3, rgb=True, scheduler=client)
    _same_fit(fit, res)


def test_streamed_fallbacks_equal_cluster_image_s(photo, monkeypatch):
    """Too few occupied cells, or a cluster left without pixels: the streamed fit goes to the exact
    colours as cluster_image does."""
    da = pytest.importorskip("dask.array")
    from napari_cluster_seg.core.stream import fit_stream

    palette = np.random.default_rng(0).integers(0, 256, (12, 3)).astype(np.uint8)
    few = palette[np.random.default_rng(1).integers(0, 12, (1024, 1024))]
    _same_fit(
        fit_stream(da.from_array(few, chunks=(256, 256, 3)), 4, rgb=True), cluster_image(few, 4, rgb=True)
    )

    def lost(*args):
        yield from ()

    monkeypatch.setattr(_fit_kmeans, "fit_pixels", lost)
    stages = []
    lazy = da.from_array(photo, chunks=(256, 256, 3))
    fit = fit_stream(lazy, 3, rgb=True, progress=lambda *s: stages.append(s))
    _same_fit(fit, exact_colours(monkeypatch, photo, 3, rgb=True))
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0, stages


@pytest.mark.parametrize("lose_a_cluster", [False, True])
def test_progress_only_goes_forward(photo, monkeypatch, lose_a_cluster):
    if lose_a_cluster:

        def lost(*args):
            yield from ()

        monkeypatch.setattr(_fit_kmeans, "fit_pixels", lost)
    stages = []
    cluster_image(photo, 3, rgb=True, progress=lambda stage, frac: stages.append((stage, frac)))
    fractions = [f for _, f in stages]
    assert fractions[-1] == 1.0 and fractions == sorted(fractions), stages
    assert any("colour cells" in stage for stage, _ in stages)


def test_a_mask_and_many_clusters(photo, spy):
    """Only the pixels under the mask are clustered (0 elsewhere); 256 clusters or more take uint16
    labels; every labelled pixel still has its nearest centre."""
    photo = np.concatenate([photo, photo[:64]])  # (2**20 pixels left under the mask)
    mask = np.ones(photo.shape[:2], bool)
    mask[:40] = False
    res = cluster_image(photo, 260, rgb=True, mask=mask, random_state=0)
    assert len(spy) == 1 and res.labels.dtype == np.uint16
    assert np.all(res.labels[~mask] == 0) and res.labels[mask].min() >= 1
    np.testing.assert_array_equal(res.model.predict(photo)[mask], res.labels[mask])
    counts = np.bincount(res.labels[mask].astype(np.intp), minlength=261)[1:]
    np.testing.assert_array_equal(res.counts, counts)
