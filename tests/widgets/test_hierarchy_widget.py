"""Hierarchical results in the widget: live re-cut when k changes, and the docked dendrogram."""

import numpy as np
import pytest
from napari.layers import Labels

from napari_cluster_seg import cluster_image


def only_labels(viewer):
    (layer,) = [layer for layer in viewer.layers if isinstance(layer, Labels)]
    return layer


@pytest.fixture
def hierarchical_run(run_on_astronaut):
    def run(method):
        viewer, widget, image = run_on_astronaut(method, 3)
        return viewer, widget, image, only_labels(viewer)

    return run


@pytest.mark.parametrize("method", ["agglomerative", "divisive"])
def test_changing_k_recuts_the_same_layer_live(hierarchical_run, method):
    viewer, widget, image, layer = hierarchical_run(method)
    widget.n_clusters.value = 6  # no Run: the tree is cut again at once
    assert widget.worker is None
    assert only_labels(viewer) is layer
    expected = cluster_image(image.data, 6, method, rgb=True, random_state=0)
    np.testing.assert_array_equal(layer.data, expected.labels)
    assert layer.metadata["napari_cluster_seg"]["params"]["n_clusters"] == 6
    assert "6 clusters" in widget.status.value


def test_no_recut_after_other_settings_change(hierarchical_run):
    viewer, widget, image, layer = hierarchical_run("agglomerative")
    before = layer.data.copy()
    widget.smoothing.value = 1.0
    widget.n_clusters.value = 5
    np.testing.assert_array_equal(layer.data, before)  # needs a new Run


def test_kmeans_results_are_not_recut(run_on_astronaut):
    viewer, widget, image = run_on_astronaut("kmeans", 3)
    before = only_labels(viewer).data.copy()
    widget.n_clusters.value = 5
    np.testing.assert_array_equal(only_labels(viewer).data, before)
    assert widget.dendrogram_widget is None


@pytest.mark.parametrize("method", ["agglomerative", "divisive"])
def test_dendrogram_is_docked_with_label_colours_and_cut(hierarchical_run, method):
    viewer, widget, image, layer = hierarchical_run(method)
    dock = widget.dendrogram_widget
    assert dock is not None
    assert any(inner is widget.plots for inner in viewer.window.dock_widgets.values())
    assert dock in widget.plots.plots()
    d = dock.dendrogram
    assert d.n_clusters == 3 and set(d.leaf_labels.tolist()) == {1, 2, 3}
    assert dock.cut_line.get_ydata()[0] == pytest.approx(d.cut_height())
    # every label's colour appears among the drawn links
    drawn = {tuple(np.round(np.asarray(c.get_colors()[0])[:3], 3)) for c in dock.axes.collections}
    for label in (1, 2, 3):
        colour = tuple(np.round(np.asarray(layer.get_color(label))[:3], 3))
        assert any(np.allclose(colour, c, atol=0.01) for c in drawn), label


def test_clicking_a_height_in_the_dendrogram_sets_k(hierarchical_run):
    from matplotlib.backend_bases import MouseEvent

    viewer, widget, image, layer = hierarchical_run("agglomerative")
    dock = widget.dendrogram_widget
    d = dock.dendrogram
    y = d.cut_height(5)
    x = np.mean(dock.axes.get_xlim())
    px, py = dock.axes.transData.transform((x, y))
    MouseEvent("button_press_event", dock.canvas, px, py, button=1)._process()
    assert widget.n_clusters.value == 5
    assert len(np.unique(layer.data)) == 5
    assert dock.dendrogram.n_clusters == 5
    assert dock.cut_line.get_ydata()[0] == pytest.approx(dock.dendrogram.cut_height())


@pytest.mark.parametrize("method", ["agglomerative", "divisive"])
def test_connected_regions_from_the_widget(cluster_widget, run_widget, method):
    from skimage.measure import label as components

    viewer, widget = cluster_widget
    img = np.full((40, 60), 10.0, np.float32)
    img[10:30, 5:20] = 100.0
    img[10:30, 40:55] = 100.0
    image = viewer.add_image(img, name="two squares")
    widget.image.value = image
    widget.method.value = method
    assert not widget.connected.native.isHidden()  # shown for hierarchical methods
    widget.connected.value = True
    widget.n_clusters.value = 3
    run_widget(widget)
    layer = only_labels(viewer)
    assert layer.data[20, 10] != layer.data[20, 45]  # same brightness, separate regions
    assert layer.metadata["napari_cluster_seg"]["params"]["connected"] is True
    for lab in (1, 2, 3):
        assert components(layer.data == lab).max() == 1
    widget.n_clusters.value = 2  # live re-cut works for connected trees too
    assert set(np.unique(layer.data)) == {1, 2}


@pytest.mark.parametrize("shape", [(60, 30), (40, 50)], ids=["same-shape", "other-shape"])
def test_no_recut_of_an_old_tree_after_the_image_data_changed(cluster_widget, run_widget, bands, shape):
    viewer, widget = cluster_widget
    img, truth = bands
    image = viewer.add_image(img, name="bands")
    widget.image.value = image
    widget.method.value = "agglomerative"
    run_widget(widget)
    layer = only_labels(viewer)
    new_data = np.random.default_rng(5).integers(0, 4000, shape).astype(np.uint16)
    image.data = new_data
    assert "the data of 'bands' changed" in widget.status.value and "press Run" in widget.status.value
    widget.n_clusters.value = 2  # the tree is of the old data: no re-cut
    np.testing.assert_array_equal(layer.data, truth)
    assert "press Run" in widget.status.value
    run_widget(widget)  # Run clusters the new data (into a new layer if the shape changed)
    expected = cluster_image(new_data, 2, "agglomerative").labels
    out = viewer.layers[viewer.layers.index(image) + 1]
    assert (out is layer) == (shape == img.shape)
    np.testing.assert_array_equal(out.data, expected)


def test_no_recut_after_the_image_data_changed_in_place(cluster_widget, run_widget, bands):
    """In-place changes send no event and keep the data object: the values tell."""
    viewer, widget = cluster_widget
    img, truth = bands
    image = viewer.add_image(img.copy(), name="bands")
    widget.image.value = image
    widget.method.value = "agglomerative"
    run_widget(widget)
    layer = only_labels(viewer)
    image.data[:] = image.data[::-1].copy()
    image.refresh()
    widget.n_clusters.value = 2  # the tree is of the old values: no re-cut
    np.testing.assert_array_equal(layer.data, truth)
    assert "the data of 'bands' changed" in widget.status.value and "press Run" in widget.status.value


def test_a_result_of_data_changed_during_the_run_is_dropped(cluster_widget, qtbot, bands):
    import threading

    from .conftest import WORKER_TIMEOUT_MS

    viewer, widget = cluster_widget
    img, _ = bands
    image = viewer.add_image(img, name="bands")
    widget.image.value = image
    widget.warm_up_thread.join(timeout=120)
    release = threading.Event()
    widget.warm_up_thread = threading.Thread(target=release.wait, daemon=True)  # holds the run back
    widget.warm_up_thread.start()
    widget.run.clicked()
    image.data = img[::-1].copy()  # while the old data is being clustered
    release.set()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    assert not any(isinstance(layer, Labels) for layer in viewer.layers)
    assert "the data of 'bands' changed during the run" in widget.status.value
