"""The *Clusters to objects* widget in a real viewer: masks and objects of chosen clusters."""

from types import SimpleNamespace

import numpy as np
import pytest
from napari.layers import Labels
from napari.utils.interactions import mouse_press_callbacks
from skimage.draw import disk
from skimage.measure import regionprops_table

from .conftest import WORKER_TIMEOUT_MS

TOUCHING = [(24, 25), (24, 43)]  # two discs of radius 10 overlapping in a narrow neck


def _cluster_labels():
    """Cluster 1 background, cluster 2 two touching discs, cluster 3 a square."""
    labels = np.ones((48, 80), np.uint8)
    for centre in TOUCHING:
        labels[disk(centre, 10, shape=labels.shape)] = 2
    labels[2:8, 66:76] = 3
    return labels


@pytest.fixture
def objects_widget(make_napari_viewer):
    """A viewer with a cluster-labels layer (0.5 um pixels, translated) and the widget, docked
    through the npe2 manifest."""
    viewer = make_napari_viewer()
    layer = viewer.add_labels(
        _cluster_labels(), name="clusters", scale=(0.5, 0.5), translate=(10, -5), units=("um", "um")
    )
    _, widget = viewer.window.add_plugin_dock_widget("napari-cluster-seg", "Clusters to objects")
    return viewer, widget, layer


@pytest.fixture
def make_objects(qtbot):
    """Press Objects and wait for the worker; returns the widget's new (or rewritten) layer."""

    def run(widget):
        widget.objects.clicked()
        qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
        return widget.last_layer

    return run


def test_the_list_shows_each_cluster_with_its_colour_and_size(objects_widget, qtbot):
    viewer, widget, layer = objects_widget
    assert widget.labels_layer.value is layer
    counts = np.bincount(layer.data.ravel())
    items = [widget.cluster_list.item(i) for i in range(widget.cluster_list.count())]
    assert [item.text().split()[0] for item in items] == ["1", "2", "3"]
    assert [int(item.text().split()[1].replace(",", "")) for item in items] == counts[1:].tolist()
    colour = items[1].icon().pixmap(12, 12).toImage().pixelColor(6, 6)
    expected = np.round(255 * np.asarray(layer.colormap.map(2)).ravel()[:3])
    np.testing.assert_allclose([colour.red(), colour.green(), colour.blue()], expected, atol=1)
    # painting a new cluster in refreshes the list
    layer.paint((40, 70), 4)
    qtbot.waitUntil(lambda: widget.cluster_list.count() == 4, timeout=2000)


def test_the_widget_stays_narrow_with_long_layer_names(objects_widget):
    viewer, widget, layer = objects_widget
    viewer.add_image(np.zeros(layer.data.shape), name="an image layer with a very long name " * 3)
    layer.name = "cluster labels with a very long name " * 3
    widget.reset_choices()
    assert widget.native.minimumSizeHint().width() <= 380


def test_mask_is_the_selected_clusters_with_the_layers_transform(objects_widget):
    viewer, widget, layer = objects_widget
    before = layer.data.copy()
    widget.select_clusters([2, 3])
    widget.mask.clicked()
    mask = viewer.layers[-1]
    assert isinstance(mask, Labels) and mask is widget.last_layer and mask is not layer
    np.testing.assert_array_equal(mask.data, np.isin(before, [2, 3]).astype(np.uint8))
    np.testing.assert_array_equal(mask.scale, layer.scale)
    np.testing.assert_array_equal(mask.translate, layer.translate)
    np.testing.assert_array_equal(mask.affine.affine_matrix, layer.affine.affine_matrix)
    np.testing.assert_array_equal(layer.data, before)


def test_touching_discs_are_one_object_or_two_when_split(objects_widget, make_objects):
    viewer, widget, layer = objects_widget
    widget.select_clusters([2])
    joined = make_objects(widget)
    assert joined.features["label"].tolist() == [1]
    widget.split.value = True
    widget.min_distance.value = 5
    split = make_objects(widget)
    assert split is joined, "the unedited objects layer of the same clusters is rewritten"
    (a, b) = (split.data[c] for c in TOUCHING)
    assert {int(a), int(b)} == {1, 2}
    np.testing.assert_array_equal(split.data > 0, layer.data == 2)
    assert split.features["label"].tolist() == [1, 2]
    np.testing.assert_array_equal(split.translate, layer.translate)
    np.testing.assert_array_equal(split.scale, layer.scale)


def test_table_equals_regionprops_in_physical_units(objects_widget, make_objects):
    viewer, widget, layer = objects_widget
    layer.scale = (2, 0.5)
    rng = np.random.default_rng(0)
    grey = viewer.add_image(rng.random(layer.data.shape), name="grey", units=("um", "um"))
    rgb = viewer.add_image(
        rng.integers(0, 255, (*layer.data.shape, 3), np.uint8), name="rgb", rgb=True, units=("um", "um")
    )
    images = {"grey": grey.data.copy(), "rgb": rgb.data.copy()}
    widget.select_clusters([2, 3])
    for image in (grey, rgb):
        widget.intensity.value = image
        out = make_objects(widget)
        pixels = images[image.name] if image.rgb else images[image.name][..., None]
        expected = regionprops_table(
            out.data, pixels, properties=("label", "area", "centroid", "intensity_mean"), spacing=(2, 0.5)
        )
        table = out.features
        assert table["label"].tolist() == expected["label"].tolist() == [1, 2]
        np.testing.assert_allclose(table["area"], expected["area"])
        # scale (2, 0.5): a pixel is 1 um^2, so the area in um^2 is the pixel count
        np.testing.assert_allclose(table["area"], np.bincount(out.data.ravel())[1:])
        assert set(table["size_unit"]) == {"micrometer^2"}
        for axis in (0, 1):
            np.testing.assert_allclose(table[f"centroid-{axis}"], expected[f"centroid-{axis}"])
        names = ["R", "G", "B"] if image.rgb else ["intensity"]
        for c, name in enumerate(names):
            np.testing.assert_allclose(table[f"mean_{name}"], expected[f"intensity_mean-{c}"])
        np.testing.assert_array_equal(image.data, images[image.name])  # inputs unchanged
    assert table["cluster"].tolist() == [3, 2]  # raster order: the square comes first


def test_inputs_are_unchanged_and_an_edited_result_is_never_overwritten(objects_widget, make_objects):
    viewer, widget, layer = objects_widget
    data, before = layer.data, layer.data.copy()
    widget.select_clusters([2])
    first = make_objects(widget)
    first.paint((20, 40), 7)  # the user corrects the result
    painted = first.data.copy()
    second = make_objects(widget)
    assert second is not first and len(viewer.layers) == 3
    assert "was edited" in widget.status.value
    np.testing.assert_array_equal(first.data, painted)
    assert layer.data is data
    np.testing.assert_array_equal(layer.data, before)


def _click(layer, world_position):
    event = SimpleNamespace(
        type="mouse_press",
        is_dragging=False,
        modifiers=[],
        position=world_position,
        view_direction=None,
        dims_displayed=[0, 1],
        dims_point=world_position,
    )
    mouse_press_callbacks(layer, event)


def test_a_canvas_click_toggles_the_cluster_under_the_cursor(objects_widget, qtbot):
    viewer, widget, layer = objects_widget
    widget.pick.value = True
    assert viewer.layers.selection.active is layer and layer.mode == "pan_zoom"
    layer.scale = (2, 0.5)
    disc = layer.data_to_world(TOUCHING[0])  # world coordinates: scale (2, 0.5), translate (10, -5)
    _click(layer, disc)
    assert widget.selected_clusters() == [2]
    _click(layer, layer.data_to_world((4, 70)))
    assert widget.selected_clusters() == [2, 3]
    _click(layer, disc)
    assert widget.selected_clusters() == [3]
    assert "unticked" in widget.status.value
    widget.pick.value = False
    _click(layer, disc)
    assert widget.selected_clusters() == [3]
    assert widget._on_canvas_click not in layer.mouse_drag_callbacks


def test_the_click_callback_goes_with_the_layer_and_the_widget(objects_widget, qtbot):
    viewer, widget, layer = objects_widget
    other = viewer.add_labels(_cluster_labels(), name="other")
    widget.labels_layer.value = other
    widget.pick.value = True
    assert widget._on_canvas_click in other.mouse_drag_callbacks
    widget.labels_layer.value = layer  # the callback follows the chosen layer
    assert widget._on_canvas_click not in other.mouse_drag_callbacks
    assert widget._on_canvas_click in layer.mouse_drag_callbacks
    assert viewer.layers.selection.active is layer
    viewer.layers.remove(layer)
    assert widget._on_canvas_click not in layer.mouse_drag_callbacks
    widget.labels_layer.value = other
    widget.pick.value = True
    assert widget._on_canvas_click in other.mouse_drag_callbacks
    with qtbot.waitSignal(widget.native.destroyed):
        viewer.window.remove_dock_widget(widget.native)
        widget.native.deleteLater()
    assert not [cb for cb in other.mouse_drag_callbacks if getattr(cb, "__self__", None) is widget]


def test_errors_go_to_the_status_line(objects_widget, make_objects):
    viewer, widget, layer = objects_widget
    n_layers = len(viewer.layers)
    widget.mask.clicked()
    assert "tick at least one cluster" in widget.status.value
    widget.select_clusters([2])
    widget.intensity.value = viewer.add_image(np.zeros((5, 5)), name="small")
    widget.objects.clicked()
    assert widget.worker is None and "does not match the labels" in widget.status.value
    assert len(viewer.layers) == n_layers + 1  # only the image added here


def test_lazy_cluster_labels_are_never_computed_on_the_gui_thread(make_napari_viewer, make_objects):
    """A lazy result (dask labels, as the main widget gives for dask and multiscale images): the
    list comes from its cluster table, the mask is lazy too, and only the objects' worker loads it."""
    da = pytest.importorskip("dask.array")
    import threading

    labels = _cluster_labels()
    computed = []

    def watched(block):
        computed.append(threading.current_thread() is threading.main_thread())
        return block

    lazy = da.from_array(labels, chunks=(24, 40)).map_blocks(watched, dtype=labels.dtype)
    counts = np.bincount(labels.ravel())
    viewer = make_napari_viewer()
    layer = viewer.add_labels(lazy, name="lazy clusters", features={"label": [1, 2, 3], "pixels": counts[1:]})
    _, widget = viewer.window.add_plugin_dock_widget("napari-cluster-seg", "Clusters to objects")
    widget.labels_layer.value = layer
    items = [widget.cluster_list.item(i).text().split() for i in range(widget.cluster_list.count())]
    assert [(int(v), int(n.replace(",", ""))) for v, n, _ in items] == list(zip([1, 2, 3], counts[1:]))
    computed.clear()  # napari itself draws the layer: only the widget's own work is watched below
    widget.select_clusters([2])
    widget.mask.clicked()
    mask = widget.last_layer
    assert isinstance(mask.data, da.Array) and "lazy" in widget.status.value
    assert not any(computed), "the mask was computed on the GUI thread"
    np.testing.assert_array_equal(np.asarray(mask.data), (labels == 2).astype(np.uint8))
    computed.clear()
    objects = make_objects(widget)
    assert computed and not any(computed), "objects are computed in the worker only"
    assert objects.features["label"].tolist() == [1]
