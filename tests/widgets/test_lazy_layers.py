"""Lazy (dask) and multiscale Image layers in the main widget: a streamed fit, lazy (multiscale)
Labels with the image's transforms, cancellation, Save labels, and the choices from the core."""

import threading
import time

import numpy as np
import pytest
from napari.layers import Labels

from napari_cluster_seg import cluster_image
from napari_cluster_seg.core import (
    CONNECTED_METHODS,
    LINKAGE_METHODS,
    LINKAGES,
    METHODS,
    OPTION_RULES,
    preprocess,
)
from napari_cluster_seg.widgets import _form

from .conftest import WORKER_TIMEOUT_MS

da = pytest.importorskip("dask.array")


def labels_layers(viewer):
    return [layer for layer in viewer.layers if isinstance(layer, Labels)]


def _stack():
    """A 2 x 64 x 96 uint16 stack of three bands, in dask chunks of 32 (uneven along y)."""
    rng = np.random.default_rng(1)
    band = np.repeat(np.array([300, 3000, 9000]), 32)[None, None, :]
    img = (band + rng.integers(0, 400, (2, 64, 96))).astype(np.uint16)
    return img


def _pyramid():
    """A 3-level RGB uint8 pyramid (128 x 192, 64 x 96, 32 x 48): level i is level 0 at stride 2**i."""
    rng = np.random.default_rng(2)
    base = rng.integers(0, 80, (128, 192, 3)).astype(np.uint8)
    base[:, 64:128] += np.array([150, 20, 20], np.uint8)
    base[40:90, 128:] += np.array([20, 20, 160], np.uint8)
    levels = [da.from_array(base[:: 2**i, :: 2**i], chunks=(32, 32, 3)) for i in range(3)]
    return base, levels


def _run(widget, qtbot):
    widget.run.clicked()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)


@pytest.mark.parametrize("method", ["kmeans", "divisive"])
def test_dask_layer_streams_into_lazy_labels_equal_to_the_loaded_run(cluster_widget, qtbot, method):
    viewer, widget = cluster_widget
    img = _stack()
    image = viewer.add_image(da.from_array(img, chunks=32), name="stack", scale=(2.0, 0.5, 0.5))
    widget.image.value = image
    widget.method.value = method
    widget.n_clusters.value = 3
    _run(widget, qtbot)
    (out,) = labels_layers(viewer)
    assert isinstance(out.data, da.Array), type(out.data)
    assert not out.multiscale
    expected = cluster_image(img, 3, method, random_state=0)
    np.testing.assert_array_equal(out.data.compute(), expected.labels)
    np.testing.assert_allclose(out.scale, image.scale)
    # the table comes from the streamed fit (every pixel of the image counted), no pass over the labels
    np.testing.assert_array_equal(out.features["pixels"], expected.counts)
    assert "lazy labels" in widget.status.value
    if method != "kmeans":
        assert "cannot be changed live" in widget.status.value
        widget.n_clusters.value = 4  # no live re-cut of a lazy result: the layer is unchanged
        assert out.data.max().compute() == 3 and widget.worker is None


def test_multiscale_layer_gets_multiscale_lazy_labels(cluster_widget, qtbot):
    viewer, widget = cluster_widget
    base, levels = _pyramid()
    image = viewer.add_image(
        levels, multiscale=True, rgb=True, name="pyramid", scale=(0.5, 0.5), translate=(3, 7)
    )
    widget.image.value = image
    assert list(widget.fit_level.choices) == [0, 1, 2] and widget.fit_level.enabled
    widget.n_clusters.value = 3
    _run(widget, qtbot)
    (out,) = labels_layers(viewer)
    assert out.multiscale
    assert [tuple(level.shape) for level in out.data] == [(128, 192), (64, 96), (32, 48)]
    assert all(isinstance(level, da.Array) for level in out.data)
    np.testing.assert_allclose(out.scale, image.scale)
    np.testing.assert_allclose(out.translate, image.translate)
    expected = cluster_image(base, 3, rgb=True, random_state=0)
    np.testing.assert_array_equal(out.data[0].compute(), expected.labels)
    # a pixel-wise model labels each level's own pixels (here level 0 at a stride: the same labels)
    model = widget.last_result.model
    for i in (1, 2):
        level = np.asarray(levels[i])
        np.testing.assert_array_equal(out.data[i].compute(), model.predict(level, rgb=True))
        np.testing.assert_array_equal(out.data[i].compute(), expected.labels[:: 2**i, :: 2**i])


def test_fit_on_a_pyramid_level_labels_level_zero_through_that_model(cluster_widget, qtbot):
    viewer, widget = cluster_widget
    base, levels = _pyramid()
    image = viewer.add_image(levels, multiscale=True, rgb=True, name="pyramid")
    widget.image.value = image
    widget.fit_level.value = 2
    widget.n_clusters.value = 3
    _run(widget, qtbot)
    (out,) = labels_layers(viewer)
    model = cluster_image(np.asarray(levels[2]), 3, rgb=True, random_state=0).model
    np.testing.assert_array_equal(out.data[0].compute(), model.predict(base, rgb=True))
    assert len(out.features) == 0 and "no cluster table" in widget.status.value
    assert "level 2" in widget.status.value
    # a clean-up needs the whole image: refused with a message, the layer unchanged
    widget.feature_section.min_size.value = 5
    _run(widget, qtbot)
    assert "clean-up" in widget.status.value and labels_layers(viewer) == [out]
    # smoothing fitted on level 2 (sigmas in level-2 pixels) would not match level 0: refused
    widget.feature_section.min_size.value = 0
    widget.smoothing.value = 1.0
    _run(widget, qtbot)
    assert "would not match level 0" in widget.status.value and labels_layers(viewer) == [out]


def test_options_that_need_the_whole_image_load_it_or_say_which_option(cluster_widget, qtbot, monkeypatch):
    viewer, widget = cluster_widget
    img = _stack()
    image = viewer.add_image(da.from_array(img, chunks=32), name="stack")
    widget.image.value = image
    widget.smoothing.value = 1.0
    monkeypatch.setattr(preprocess, "available_memory", lambda: 1000)
    _run(widget, qtbot)
    assert labels_layers(viewer) == []
    status = widget.status.value
    assert "smoothing=1.0 needs the whole image" in status and "--subset" in status, status
    monkeypatch.undo()
    _run(widget, qtbot)  # it fits: loaded, as before (an in-memory result)
    (out,) = labels_layers(viewer)
    assert isinstance(out.data, np.ndarray)
    np.testing.assert_array_equal(out.data, cluster_image(img, 3, smoothing=1.0).labels)


def test_connected_on_a_lazy_image_too_large_names_the_option(cluster_widget, qtbot, monkeypatch):
    viewer, widget = cluster_widget
    image = viewer.add_image(da.from_array(_stack()[0], chunks=32), name="plane")
    widget.image.value = image
    widget.method.value = "agglomerative"
    widget.connected.value = True
    monkeypatch.setattr(preprocess, "available_memory", lambda: 1000)
    _run(widget, qtbot)
    assert labels_layers(viewer) == []
    assert "connected=True needs the whole image" in widget.status.value, widget.status.value


def test_cancel_during_a_streamed_fit_leaves_no_layer(cluster_widget, qtbot):
    viewer, widget = cluster_widget
    img = np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8)
    started = threading.Event()

    def slow(block):
        started.set()
        time.sleep(0.05)
        return block

    image = viewer.add_image(da.from_array(img, chunks=16).map_blocks(slow, dtype=img.dtype), name="slow")
    widget.image.value = image
    started.clear()
    widget.run.clicked()
    qtbot.waitUntil(lambda: "block" in widget.status.value, timeout=WORKER_TIMEOUT_MS)
    widget.cancel.clicked()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    assert labels_layers(viewer) == []
    assert "cancelled" in widget.status.value


def _save(widget, qtbot, monkeypatch, path):
    from qtpy.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(path), "")))
    widget.save_labels.clicked()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)


@pytest.mark.parametrize("name", ["labels.zarr", "labels.tif"])
def test_save_labels_writes_the_lazy_labels(cluster_widget, qtbot, monkeypatch, tmp_path, name):
    viewer, widget = cluster_widget
    _, levels = _pyramid()
    image = viewer.add_image(levels, multiscale=True, rgb=True, name="pyramid")
    widget.image.value = image
    _run(widget, qtbot)
    (out,) = labels_layers(viewer)
    path = tmp_path / name
    _save(widget, qtbot, monkeypatch, path)
    assert "saved to" in widget.status.value, widget.status.value
    if name.endswith(".zarr"):
        import zarr

        written = np.asarray(zarr.open_array(str(path), mode="r"))
    else:
        import tifffile

        written = tifffile.imread(path)
    np.testing.assert_array_equal(written, out.data[0].compute())
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left behind


def test_save_labels_never_replaces_a_folder_and_cancel_leaves_nothing(
    cluster_widget, qtbot, monkeypatch, tmp_path
):
    viewer, widget = cluster_widget
    img = np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8)
    viewer.add_image(img, name="plain")
    widget.image.value = viewer.layers["plain"]
    _run(widget, qtbot)
    (out,) = labels_layers(viewer)
    folder = tmp_path / "old.zarr"
    folder.mkdir()
    _save(widget, qtbot, monkeypatch, folder)
    assert "existing folder" in widget.status.value and list(folder.iterdir()) == []
    # an existing file: the dialog asked, so it is replaced
    target = tmp_path / "labels.tif"
    target.write_bytes(b"old")
    _save(widget, qtbot, monkeypatch, target)
    import tifffile

    np.testing.assert_array_equal(tifffile.imread(target), out.data)

    # cancelled while writing: nothing new, no temporary
    def slow(block):
        time.sleep(0.05)
        return block

    out.data = da.from_array(out.data, chunks=16).map_blocks(slow, dtype=out.data.dtype)
    from qtpy.QtWidgets import QFileDialog

    chosen = (str(tmp_path / "c.zarr"), "")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: chosen))
    widget.save_labels.clicked()
    qtbot.waitUntil(lambda: "writing" in widget.status.value, timeout=WORKER_TIMEOUT_MS)
    widget.cancel.clicked()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    assert "cancelled" in widget.status.value

    def names():
        return sorted(p.name for p in tmp_path.iterdir())

    qtbot.waitUntil(lambda: names() == ["labels.tif", "old.zarr"], timeout=10_000)


def test_widget_choices_follow_the_core_rules(cluster_widget, monkeypatch):
    viewer, widget = cluster_widget
    widget.image.value = viewer.add_image(_stack()[0], name="plane")
    assert list(widget.method.choices) == list(METHODS)
    assert list(widget.linkage.choices) == list(LINKAGES)
    rule = OPTION_RULES["n_clusters"]
    assert widget.n_clusters.min == rule.low and widget.n_clusters.value == rule.default
    assert widget.n_clusters.max == min(rule.high, _form.WIDGET_MAX_CLUSTERS)
    for method in METHODS:
        widget.method.value = method
        assert (not widget.connected.native.isHidden()) == (method in CONNECTED_METHODS)
        assert (not widget.linkage.native.isHidden()) == (method in LINKAGE_METHODS)
        widget.connected.value = True
        assert widget.collect().options["connected"] == (method in CONNECTED_METHODS)
    # the rules are read, not restated: another table gives other choices
    monkeypatch.setattr(_form, "CONNECTED_METHODS", ("divisive",))
    widget.method.value = "agglomerative"
    assert widget.connected.native.isHidden() and widget.collect().options["connected"] is False


def test_a_zoomed_out_multiscale_result_reads_no_level_zero_block_for_its_labels(cluster_widget, qtbot):
    """napari shows a small level of the labels when zoomed out: after the fit's one pass over
    level 0, showing the result computes none of level 0's blocks (only the small levels')."""
    viewer, widget = cluster_widget
    rng = np.random.default_rng(3)
    base = rng.integers(0, 100, (4096, 4096), dtype=np.uint8)
    base[1024:3072] += 120
    reads = {0: 0, 1: 0, 2: 0, 3: 0}

    def counter(level):
        def count(block):
            reads[level] += 1
            return block

        return count

    levels = [
        da.from_array(base[:: 2**i, :: 2**i], chunks=512).map_blocks(counter(i), dtype=np.uint8)
        for i in range(4)
    ]
    image = viewer.add_image(levels, multiscale=True, name="large")
    qtbot.wait(200)
    widget.image.value = image
    widget.n_clusters.value = 2
    before = dict(reads)
    _run(widget, qtbot)
    (out,) = labels_layers(viewer)
    assert out.multiscale and isinstance(out.data[0], da.Array)
    qtbot.wait(500)  # napari draws the labels
    n_blocks0 = levels[0].numblocks[0] * levels[0].numblocks[1]
    assert reads[0] - before[0] == n_blocks0  # the streamed fit's one pass, nothing for the display
    assert sum(reads[i] - before[i] for i in (1, 2, 3)) > 0  # the shown level was labelled


def test_lazy_results_rerun_in_place_and_compare_in_the_worker(cluster_widget, qtbot):
    """A re-run writes into the lazy result layer (edit detection reads no lazy data); Compare
    computes lazy labels in its worker; a heat-map cell gives a lazy selection."""
    viewer, widget = cluster_widget
    img = _stack()
    image = viewer.add_image(da.from_array(img, chunks=32), name="stack")
    widget.image.value = image
    _run(widget, qtbot)
    (km,) = labels_layers(viewer)
    widget.n_clusters.value = 2
    _run(widget, qtbot)
    assert labels_layers(viewer) == [km] and km.data.max().compute() == 2
    widget.method.value = "divisive"
    _run(widget, qtbot)
    dv = viewer.layers["stack divisive"]
    widget.compare_a.value, widget.compare_b.value = km, dv
    widget.compare.clicked()
    qtbot.waitUntil(lambda: widget.compare_worker is None, timeout=WORKER_TIMEOUT_MS)
    from napari_cluster_seg import compare_labels

    expected = compare_labels(km.data.compute(), dv.data.compute())
    assert widget.last_comparison.ari == pytest.approx(expected.ari)
    widget.comparison.highlight(1, 1)
    selected = widget.comparison.highlight_layer.data
    assert isinstance(selected, da.Array)
    np.testing.assert_array_equal(selected.compute(), (km.data == 1).compute() & (dv.data == 1).compute())
