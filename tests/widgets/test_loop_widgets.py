"""The interactive loop in a real viewer: suggest k, compare with a heat map, save and apply a model."""

import numpy as np
import pytest
from matplotlib.backend_bases import MouseEvent
from napari.layers import Labels

from napari_cluster_seg import ClusterModel, cluster_image, compare_labels, scan_n_clusters
from napari_cluster_seg.widgets._compare import HIGHLIGHT_NAME, viewer_grid

from .conftest import WORKER_TIMEOUT_MS


def click(plot, ax, x, y):
    px, py = ax.transData.transform((x, y))
    MouseEvent("button_press_event", plot.canvas, px, py, button=1)._process()


def four_levels():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(4), 25)[:, None].repeat(80, 1)
    return (np.array([20, 90, 160, 230])[truth] + rng.normal(0, 4, truth.shape)).clip(0, 255).astype(np.uint8)


def test_suggest_k_plots_scores_and_a_click_sets_k(cluster_widget, qtbot):
    viewer, widget = cluster_widget
    image = viewer.add_image(four_levels(), name="levels")
    widget.image.value = image
    widget.k_max.value = 8
    widget.suggest_k.clicked()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    scan = widget.last_scan
    expected = scan_n_clusters(image.data, 8, random_state=0)
    assert scan.suggested == expected.suggested == 4
    np.testing.assert_allclose(scan.silhouette, expected.silhouette)
    plot = widget.k_plot
    assert any(inner is widget.plots for inner in viewer.window.dock_widgets.values())
    assert plot in widget.plots.plots()
    assert "suggested k = 4" in widget.status.value
    # three curves over k = 2..8, the suggestion marked in each
    for ax, line in zip(plot.axes_list, plot.marker_lines):
        np.testing.assert_array_equal(ax.lines[0].get_xdata(), np.arange(2, 9))
        assert line.get_xdata()[0] == 4
    np.testing.assert_allclose(plot.axes_list[1].lines[0].get_ydata(), scan.silhouette)
    ax = plot.axes_list[1]
    click(plot, ax, 6.1, scan.silhouette[4])
    assert widget.n_clusters.value == 6
    assert not any(isinstance(layer, Labels) for layer in viewer.layers)  # nothing run yet


def test_suggest_k_bad_settings_report_in_the_widget(cluster_widget, qtbot):
    viewer, widget = cluster_widget
    image = viewer.add_image(np.repeat(np.arange(4, dtype=np.uint8), 16).reshape(8, 8), name="four values")
    widget.image.value = image
    widget.k_max.value = 10  # more clusters than distinct values
    widget.suggest_k.clicked()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    assert "more than the 4 distinct values" in widget.status.value
    assert widget.last_scan is None


def test_heat_map_of_the_comparison_and_a_click_highlights_pixels(kmeans_and_agglomerative, qtbot):
    viewer, widget, image, km, ag = kmeans_and_agglomerative
    widget.compare_a.value, widget.compare_b.value = km, ag
    widget.compare.clicked()
    qtbot.waitUntil(lambda: widget.compare_worker is None, timeout=WORKER_TIMEOUT_MS)
    heat = widget.comparison.heatmap
    assert any(inner is widget.plots for inner in viewer.window.dock_widgets.values())
    assert heat in widget.plots.plots()
    expected = compare_labels(km.data, ag.data)
    np.testing.assert_array_equal(heat.table, expected.contingency[1:, 1:])
    assert heat.table.shape == (4, 4)
    assert f"NMI {expected.nmi:.3f}" in heat.axes.get_title()
    click(heat, heat.axes, 2, 3)  # column = agglomerative label 2, row = K-means label 3
    assert heat.selected == (3, 2)
    highlight = viewer.layers[HIGHLIGHT_NAME]
    np.testing.assert_array_equal(highlight.data, (km.data == 3) & (ag.data == 2))
    np.testing.assert_array_equal(highlight.scale, km.scale)
    assert highlight.visible and image.visible and not km.visible and not ag.visible
    assert not viewer_grid(viewer).enabled  # shown over the image
    click(heat, heat.axes, 1, 1)
    assert viewer.layers[HIGHLIGHT_NAME] is highlight  # the same layer is updated
    np.testing.assert_array_equal(highlight.data, (km.data == 1) & (ag.data == 1))
    assert f"highlighted {int(((km.data == 1) & (ag.data == 1)).sum())} pixels" in widget.compare_result.value
    # the highlight layer is not offered for comparisons
    assert highlight not in widget.compare_a.choices
    assert km.data.max() == 4 and ag.data.max() == 4  # compared layers untouched


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_save_model_and_apply_it_to_another_image(run_on_astronaut, qtbot, tmp_path, method):
    viewer, widget, image = run_on_astronaut(method, 4)
    path = widget.save_model_to(tmp_path / "model.json")
    fitted = widget.last_result
    # a second image: the photo flipped and scaled, with its own transform
    other = viewer.add_image(image.data[::-1, ::2], name="other", rgb=True, scale=(1.0, 2.0))
    widget.image.value = other
    assert widget.apply_model_from(path)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    out = viewer.layers["other model"]
    np.testing.assert_array_equal(out.data, ClusterModel.load(path).predict(other.data))
    np.testing.assert_array_equal(out.data, fitted.labels[::-1, ::2])  # same pixels, same labels
    np.testing.assert_array_equal(out.scale, (1.0, 2.0))
    assert out.features["pixels"].tolist() == [int((out.data == i).sum()) for i in range(1, 5)]


def test_applying_an_incompatible_model_is_a_clear_error(cluster_widget, run_widget, qtbot, tmp_path):
    viewer, widget = cluster_widget
    grey = viewer.add_image(four_levels(), name="grey")
    model_path = cluster_image(grey.data, 3).model.save(tmp_path / "grey.json")
    (photo,) = viewer.open_sample("napari-cluster-seg", "astronaut")
    widget.image.value = photo
    n_layers = len(viewer.layers)
    widget.apply_model_from(model_path)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    assert "non-RGB images but the image is RGB" in widget.status.value
    assert len(viewer.layers) == n_layers
    (tmp_path / "junk.json").write_text("[]")
    widget.apply_model_from(tmp_path / "junk.json")  # read in the worker: the error comes from there
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    assert "not a 'napari-cluster-seg model'" in widget.status.value
    with pytest.raises(ValueError, match="press Run first"):
        type(widget)(viewer).save_model_to(tmp_path / "none.json")


def test_result_layers_save_with_napari_writers(cluster_widget, run_widget, tmp_path):
    import napari
    from skimage.io import imread

    viewer, widget = cluster_widget
    image = viewer.add_image(four_levels(), name="levels")
    widget.image.value = image
    run_widget(widget)
    layer = viewer.layers["levels K-means"]
    written = napari.save_layers(str(tmp_path / "labels.tif"), [layer])
    assert written
    np.testing.assert_array_equal(imread(written[0]), layer.data)


def test_save_buttons_ask_for_a_file_and_write_it(cluster_widget, run_widget, tmp_path, monkeypatch):
    from qtpy.QtWidgets import QFileDialog

    viewer, widget = cluster_widget
    widget.image.value = viewer.add_image(four_levels(), name="levels")
    run_widget(widget)
    for button, name in ((widget.save_model, "m.json"), (widget.save_table, "t.csv")):
        target = tmp_path / name
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, t=target: (str(t), ""))
        button.clicked()
        assert target.is_file() and f"saved to {target}" in widget.status.value
    assert ClusterModel.load(tmp_path / "m.json").n_clusters == 3


def test_a_model_file_is_read_in_the_worker_with_progress_and_cancel(
    cluster_widget, qtbot, tmp_path, monkeypatch
):
    import threading

    viewer, widget = cluster_widget
    grey = viewer.add_image(four_levels(), name="grey")
    path = cluster_image(grey.data, 4).model.save(tmp_path / "grey.json")
    load = ClusterModel.load.__func__
    release, threads = threading.Event(), []

    def slow_load(cls, p):  # a large file: reading takes a while
        threads.append(threading.current_thread())
        release.wait(timeout=60)
        return load(cls, p)

    monkeypatch.setattr(ClusterModel, "load", classmethod(slow_load))
    widget.image.value = grey
    assert widget.apply_model_from(path)  # returns at once: the GUI thread does not read the file
    qtbot.waitUntil(lambda: bool(threads) and "reading the model file" in widget.status.value, timeout=10_000)
    assert threads[0] is not threading.main_thread()
    assert widget.cancel.enabled and not widget.progress.native.isHidden()
    widget.cancel.clicked()
    release.set()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    assert "cancelled" in widget.status.value
    assert not any(isinstance(layer, Labels) for layer in viewer.layers)
    widget.apply_model_from(path)  # not cancelled: the model's labels
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    np.testing.assert_array_equal(viewer.layers["grey model"].data, cluster_image(grey.data, 4).labels)


def damaged_model_files(tmp_path, model_dict):
    import json

    files = {
        "binary": b"\x89PNG\r\n\x1a\n\x00\xff\xfe",
        "truncated": json.dumps(model_dict)[:100].encode(),
        "label 300": json.dumps({**model_dict, "labels": [300] * len(model_dict["labels"])}).encode(),
        "label -1": json.dumps({**model_dict, "labels": [-1] * len(model_dict["labels"])}).encode(),
        "huge number": json.dumps(model_dict).replace("[[", "[[1" + "0" * 400 + ", ", 1).encode(),
    }
    for name, content in files.items():
        (tmp_path / f"{name}.json").write_bytes(content)
    return [tmp_path / f"{name}.json" for name in files] + [tmp_path / "missing.json"]


def test_any_error_of_a_model_file_shows_in_the_status_line(cluster_widget, qtbot, tmp_path, monkeypatch):
    viewer, widget = cluster_widget
    grey = viewer.add_image(four_levels(), name="grey")
    widget.image.value = grey
    model = cluster_image(grey.data, 3).model
    paths = damaged_model_files(tmp_path, model.to_dict())
    for path in paths:
        widget.status.value = ""
        widget.apply_model_from(path)
        qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
        assert widget.status.value and "ff6060" in widget.status.native.styleSheet(), path.name
    assert [layer.name for layer in viewer.layers] == ["grey"]
    # whatever the core raises, it reaches the status line (never Qt's event loop)
    errors = (OverflowError("too large"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), KeyError("x"))
    for error in errors:

        def broken(cls, p, error=error):
            raise error

        monkeypatch.setattr(ClusterModel, "load", classmethod(broken))
        widget.apply_model_from(tmp_path / "any.json")
        qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
        assert type(error).__name__ in widget.status.value
    assert [layer.name for layer in viewer.layers] == ["grey"]


def test_heat_map_of_labels_with_gaps_maps_cells_to_their_labels(cluster_widget, qtbot):
    """Labels that do not run 0..k (a cluster emptied by clean-up, hand-made labels): the heat map's
    rows and columns are the labels that occur, and a click highlights those labels' pixels."""
    viewer, widget = cluster_widget
    a_data = np.repeat(np.array([1, 4, 9], np.uint16), 20).reshape(6, 10)
    b_data = np.tile(np.array([2, 2, 7, 7, 7], np.uint8), (6, 2))
    a = viewer.add_labels(a_data, name="gappy a")
    b = viewer.add_labels(b_data, name="gappy b")
    widget.compare_a.value, widget.compare_b.value = a, b
    widget.compare.clicked()
    qtbot.waitUntil(lambda: widget.compare_worker is None, timeout=WORKER_TIMEOUT_MS)
    heat = widget.comparison.heatmap
    assert heat.table.shape == (3, 2)
    assert [t.get_text() for t in heat.axes.get_yticklabels()] == ["1", "4", "9"]
    assert [t.get_text() for t in heat.axes.get_xticklabels()] == ["2", "7"]
    click(heat, heat.axes, 2, 3)  # row 3 = label 9 of a, column 2 = label 7 of b
    highlight = viewer.layers[HIGHLIGHT_NAME]
    np.testing.assert_array_equal(highlight.data, (a_data == 9) & (b_data == 7))
    assert "gappy a 9 & gappy b 7" in widget.compare_result.value
