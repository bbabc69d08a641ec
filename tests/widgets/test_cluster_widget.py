import numpy as np
import pytest
from napari.layers import Labels

from napari_cluster_seg import cluster_image, compare_labels
from napari_cluster_seg.widgets import ClusterSegWidget
from napari_cluster_seg.widgets._compare import viewer_grid
from napari_cluster_seg.widgets._layers import METADATA_KEY

from .conftest import WORKER_TIMEOUT_MS


def labels_layers(viewer):
    return [layer for layer in viewer.layers if isinstance(layer, Labels)]


def test_widget_docks_through_the_manifest(cluster_widget):
    viewer, widget = cluster_widget
    assert isinstance(widget, ClusterSegWidget)
    for name in ("image", "method", "n_clusters", "run", "cancel", "compare"):
        assert hasattr(widget, name)


def test_widget_warms_up_the_lazy_imports_in_the_background(cluster_widget):
    import sys

    from napari_cluster_seg.core._segment import LAZY_IMPORTS

    viewer, widget = cluster_widget
    assert widget.warm_up_thread.daemon
    widget.warm_up_thread.join(timeout=120)
    assert not widget.warm_up_thread.is_alive()
    assert [m for m in LAZY_IMPORTS if m not in sys.modules] == []


def test_a_run_waits_for_the_warm_up(cluster_widget, qtbot, bands):
    import threading

    viewer, widget = cluster_widget
    widget.warm_up_thread.join(timeout=120)
    release = threading.Event()
    widget.warm_up_thread = threading.Thread(target=release.wait, daemon=True)  # a warm-up still going
    widget.warm_up_thread.start()
    img, truth = bands
    widget.image.value = viewer.add_image(img)
    widget.run.clicked()
    qtbot.wait(500)  # ample for this 60x30 image, were the run not waiting
    assert widget.worker is not None and labels_layers(viewer) == []
    release.set()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    (out,) = labels_layers(viewer)
    np.testing.assert_array_equal(out.data, truth)


def test_run_on_rgb_sample_gives_ordered_labels(cluster_widget, run_widget):
    viewer, widget = cluster_widget
    (image,) = viewer.open_sample("napari-cluster-seg", "astronaut")
    before = image.data.copy()
    widget.image.value = image
    widget.n_clusters.value = 4
    run_widget(widget)
    (out,) = labels_layers(viewer)
    assert out.name == "astronaut K-means"
    expected = cluster_image(image.data, 4, rgb=True, random_state=0)
    np.testing.assert_array_equal(out.data, expected.labels)
    assert set(np.unique(out.data)) == {1, 2, 3, 4}
    meta = out.metadata[METADATA_KEY]
    assert meta["params"]["n_clusters"] == 4 and meta["params"]["rgb"] is True
    np.testing.assert_allclose(meta["centers"], expected.centers)
    # above the image, and the image untouched
    assert viewer.layers.index(out) == viewer.layers.index(image) + 1
    np.testing.assert_array_equal(image.data, before)


@pytest.mark.parametrize("method", ["kmeans", "agglomerative", "divisive"])
def test_labels_keep_every_transform_of_the_image(cluster_widget, run_widget, bands, method):
    viewer, widget = cluster_widget
    img, truth = bands
    affine = np.array([[1.0, 0.2, 3.0], [0.0, 1.0, -2.0], [0.0, 0.0, 1.0]])
    image = viewer.add_image(
        img,
        name="bands",
        scale=(0.5, 2.0),
        translate=(10, -4),
        rotate=15,
        shear=[0.3],
        affine=affine,
        units=("um", "nm"),
        axis_labels=("y", "x"),
    )
    widget.image.value = image
    widget.method.value = method
    run_widget(widget)
    (out,) = labels_layers(viewer)
    np.testing.assert_array_equal(out.data, truth)
    np.testing.assert_allclose(out.scale, image.scale)
    np.testing.assert_allclose(out.translate, image.translate)
    np.testing.assert_allclose(out.rotate, image.rotate)
    np.testing.assert_allclose(out.shear, image.shear)
    np.testing.assert_allclose(out.affine.affine_matrix, image.affine.affine_matrix)
    assert out.units == image.units and out.axis_labels == image.axis_labels
    # same world position for every pixel
    np.testing.assert_allclose(out.data_to_world((3, 7)), image.data_to_world((3, 7)))


def test_channel_axis_is_dropped_from_the_transforms(cluster_widget, run_widget):
    viewer, widget = cluster_widget
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 100).reshape(15, 20)
    ch0 = np.where(truth == 0, 0.0, 1.0) + rng.normal(0, 0.02, truth.shape)
    ch1 = np.where(truth == 2, 1.0, 0.0) + rng.normal(0, 0.02, truth.shape)
    data = np.stack([ch0, ch1]).astype(np.float32)
    image = viewer.add_image(data, name="two channels", scale=(1, 0.5, 0.25), translate=(0, 5, 6))
    widget.image.value = image
    widget.channel_axis.value = 0
    run_widget(widget)
    (out,) = labels_layers(viewer)
    assert out.data.shape == truth.shape
    np.testing.assert_array_equal(out.data, truth + 1)
    np.testing.assert_allclose(out.scale, (0.5, 0.25))
    np.testing.assert_allclose(out.translate, (5, 6))


def test_several_single_channel_layers_as_channels(cluster_widget, run_widget):
    viewer, widget = cluster_widget
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 100).reshape(15, 20)
    a = viewer.add_image((np.where(truth == 0, 0.0, 1.0) + rng.normal(0, 0.02, truth.shape)), name="c0")
    b = viewer.add_image((np.where(truth == 2, 9.0, 0.0) + rng.normal(0, 0.1, truth.shape)), name="c1")
    widget.image.value = a
    widget.extra_channels.value = [b]
    run_widget(widget)
    (out,) = labels_layers(viewer)
    np.testing.assert_array_equal(out.data, truth + 1)
    assert out.metadata[METADATA_KEY]["centers"][0] == pytest.approx([0.0, 0.0], abs=0.05)


def test_mismatched_channel_layers_give_an_error(cluster_widget):
    viewer, widget = cluster_widget
    a = viewer.add_image(np.zeros((10, 10)), name="a")
    b = viewer.add_image(np.zeros((10, 12)), name="b")
    widget.image.value = a
    widget.extra_channels.value = [b]
    widget.run.clicked()
    assert widget.worker is None
    assert "channel layers must have the same shape" in widget.status.value
    assert labels_layers(viewer) == []


@pytest.mark.parametrize("method", ["kmeans", "agglomerative", "divisive"])
def test_time_series_tzyx_and_3d_stack(cluster_widget, run_widget, method):
    viewer, widget = cluster_widget
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, (3, 4, 16, 16))
    data = (np.where(truth == 1, 900.0, 100.0) + rng.normal(0, 10, truth.shape)).astype(np.uint16)
    image = viewer.add_image(data, name="movie", scale=(1, 2, 0.5, 0.5))
    widget.image.value = image
    widget.time_axis.value = 0
    widget.method.value = method
    widget.n_clusters.value = 2
    run_widget(widget)
    (out,) = labels_layers(viewer)
    np.testing.assert_array_equal(out.data, truth + 1)
    assert out.metadata[METADATA_KEY]["params"]["time_axis"] == 0
    np.testing.assert_allclose(out.scale, image.scale)


def test_nuclei_3d_sample_and_dask_layer(cluster_widget, run_widget):
    da = pytest.importorskip("dask.array")
    viewer, widget = cluster_widget
    (stack,) = viewer.open_sample("napari-cluster-seg", "nuclei_3d")
    lazy = viewer.add_image(da.from_array(stack.data, chunks=(8, 64, 64)), name="lazy", scale=stack.scale)
    for layer in (stack, lazy):
        widget.image.value = layer
        widget.n_clusters.value = 2
        widget.smoothing.value = 1.0
        run_widget(widget)
    outs = labels_layers(viewer)
    assert len(outs) == 2
    np.testing.assert_array_equal(outs[0].data, outs[1].data)
    # nuclei (label 2) are a minority of voxels, background (label 1) the rest
    frac = (outs[0].data == 2).mean()
    assert 0.02 < frac < 0.5
    np.testing.assert_allclose(outs[0].scale, (2.0, 0.5, 0.5))


def test_lazy_layers_too_large_for_memory_are_refused_before_loading(cluster_widget, monkeypatch, qtbot):
    """Options that need the whole image (here smoothing: it cannot stream) load a lazy layer only
    after the memory check, which sees it unloaded (also two lazy channel layers, stacked lazily):
    a clear error naming the option in the status line, no result, the layers untouched."""
    da = pytest.importorskip("dask.array")
    from napari_cluster_seg.core import preprocess

    viewer, widget = cluster_widget
    data = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    computed = []

    def counted(block):
        computed.append(block.shape)
        return block

    lazy = viewer.add_image(da.from_array(data, chunks=32).map_blocks(counted), name="lazy")
    other = viewer.add_image(da.from_array(data[::-1], chunks=32).map_blocks(counted), name="other")
    monkeypatch.setattr(preprocess, "available_memory", lambda: 1000)  # a 1 kB machine
    widget.image.value = lazy
    widget.smoothing.value = 1.0
    for extras in ([], [other]):
        widget.extra_channels.value = extras
        computed.clear()  # napari computes what it shows; the run must compute nothing
        widget.run.clicked()
        qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
        status = widget.status.value
        assert "smoothing=1.0 needs the whole image" in status and "in memory" in status, status
        assert labels_layers(viewer) == [] and computed == []
    monkeypatch.undo()
    widget.run.clicked()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    assert labels_layers(viewer)[0].data.shape == (64, 64)
    np.testing.assert_array_equal(np.asarray(lazy.data), data)


def test_rerun_replaces_data_of_the_same_layer_unless_new_layer(cluster_widget, run_widget, bands):
    viewer, widget = cluster_widget
    img, _ = bands
    image = viewer.add_image(img, name="bands")
    widget.image.value = image
    widget.n_clusters.value = 2
    run_widget(widget)
    (first,) = labels_layers(viewer)
    assert first.data.max() == 2
    widget.n_clusters.value = 3
    run_widget(widget)
    assert labels_layers(viewer) == [first]
    assert first.data.max() == 3 and first.metadata[METADATA_KEY]["params"]["n_clusters"] == 3
    widget.method.value = "divisive"  # another method: its own layer
    run_widget(widget)
    assert len(labels_layers(viewer)) == 2
    widget.method.value = "kmeans"
    widget.new_layer.value = True
    run_widget(widget)
    assert len(labels_layers(viewer)) == 3 and first.data.max() == 3


def test_bad_input_shows_error_and_keeps_previous_result(cluster_widget, run_widget):
    viewer, widget = cluster_widget
    img = np.zeros((20, 20), np.uint8)
    img[5:10] = 200
    image = viewer.add_image(img, name="binary")
    widget.image.value = image
    widget.n_clusters.value = 2
    run_widget(widget)
    (out,) = labels_layers(viewer)
    before = out.data.copy()
    widget.n_clusters.value = 5
    run_widget(widget)
    assert "n_clusters=5 is more than the 2 distinct values" in widget.status.value
    assert labels_layers(viewer) == [out]
    np.testing.assert_array_equal(out.data, before)


def test_cancel_stops_the_run_and_keeps_previous_result(cluster_widget, run_widget, qtbot, bands):
    viewer, widget = cluster_widget
    img, _ = bands
    small = viewer.add_image(img, name="bands")
    widget.image.value = small
    run_widget(widget)
    (out,) = labels_layers(viewer)
    before = out.data.copy()
    big = viewer.add_image(np.random.default_rng(0).random((2048, 2048), np.float32), name="big")
    widget.image.value = big
    widget.smoothing.value = 3.0
    widget.run.clicked()
    assert widget.worker is not None and widget.cancel.enabled
    widget.cancel.clicked()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    assert "cancelled" in widget.status.value
    assert labels_layers(viewer) == [out]
    np.testing.assert_array_equal(out.data, before)
    assert widget.run.enabled and not widget.cancel.enabled


def test_cancel_as_the_job_returns_still_says_cancelled(cluster_widget, qtbot):
    """Cancel pressed while the body ends: the worker then emits neither its value nor `aborted`
    (the race that left "cancelling ..." on the status line); the status must still say so."""
    import threading

    from napari_cluster_seg.core import Progress

    viewer, widget = cluster_widget
    event, results = threading.Event(), []

    def body():
        yield Progress("waiting for Cancel", 0.0)
        event.wait(30)  # the body returns right after Cancel sets the event: no step in between
        return "value"

    widget._jobs.start_task(body, (), results.append, "waiting ...", cancel_event=event)
    qtbot.waitUntil(lambda: "waiting for Cancel" in widget.status.value, timeout=WORKER_TIMEOUT_MS)
    widget.cancel.clicked()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    assert results == [] and "cancelled" in widget.status.value
    assert widget.run.enabled and not widget.cancel.enabled


def test_viewer_stays_responsive_while_running(cluster_widget, qtbot):
    """The work runs in a thread: the Qt event loop keeps processing events meanwhile."""
    from qtpy.QtCore import QTimer

    viewer, widget = cluster_widget
    image = viewer.add_image(np.random.default_rng(0).random((1024, 1024), np.float32), name="noise")
    widget.image.value = image
    widget.smoothing.value = 2.0
    widget.method.value = "divisive"
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    widget.run.clicked()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    timer.stop()
    assert len(ticks) >= 3
    assert len(labels_layers(viewer)) == 1


def test_compare_reports_agreement_and_shows_grid(kmeans_and_agglomerative, qtbot):
    viewer, widget, image, km, ag = kmeans_and_agglomerative
    assert {widget.compare_a.value, widget.compare_b.value} == {km, ag}
    widget.compare.clicked()
    qtbot.waitUntil(lambda: widget.compare_worker is None, timeout=WORKER_TIMEOUT_MS)
    expected = compare_labels(km.data, ag.data)
    assert widget.last_comparison.ari == pytest.approx(expected.ari)
    assert f"ARI {expected.ari:.3f}" in widget.compare_result.value
    assert 0.3 < expected.ari < 1.0
    assert viewer_grid(viewer).enabled and tuple(viewer_grid(viewer).shape) == (1, 3)
    assert km.visible and ag.visible and image.visible


def test_result_layer_carries_a_per_cluster_table_and_saves_it(cluster_widget, run_widget, bands, tmp_path):
    import csv

    viewer, widget = cluster_widget
    img, truth = bands
    image = viewer.add_image(img, name="bands", scale=(0.5, 2.0), units=("um", "um"))
    widget.image.value = image
    run_widget(widget)
    (out,) = labels_layers(viewer)
    table = out.features
    assert table["index"].tolist() == [1, 2, 3] and table["label"].tolist() == [1, 2, 3]
    counts = [int((out.data == lab).sum()) for lab in (1, 2, 3)]
    assert table["pixels"].tolist() == counts
    np.testing.assert_allclose(table["area"], np.array(counts) * 0.5 * 2.0)  # physical units
    assert set(table["size_unit"]) == {"micrometer^2"}
    np.testing.assert_allclose(table["fraction"].sum(), 1.0)
    for lab in (1, 2, 3):
        np.testing.assert_allclose(table["mean_0"][lab - 1], img[out.data == lab].mean())
    path = widget.save_table_to(tmp_path / "clusters.csv")
    rows = list(csv.DictReader(path.open()))
    assert [int(r["pixels"]) for r in rows] == counts
