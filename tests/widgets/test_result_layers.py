"""Which layer a result goes to: keyed by the layer objects, never an edited or foreign layer."""

import gc

import numpy as np
import pytest
from napari.layers import Labels

from napari_cluster_seg import cluster_image
from napari_cluster_seg.widgets import _cluster_widget


def labels_layers(viewer):
    return [layer for layer in viewer.layers if isinstance(layer, Labels)]


def tile(i: int) -> np.ndarray:
    """A 24x16 uint8 tile of three bands whose order depends on ``i`` (so each tile has its own labels)."""
    order = [(0, 1, 2), (2, 0, 1), (1, 2, 0), (0, 2, 1)][i % 4]
    rows = np.repeat(np.array(order), 8)
    rows = np.roll(rows, i % 5)
    return np.array([30, 120, 220], np.uint8)[rows][:, None].repeat(16, 1) + np.uint8(i % 3)


@pytest.mark.parametrize("reuse_ids", [False, True], ids=["natural", "forced-id-reuse"])
def test_many_tiles_each_removed_after_its_run_get_their_own_results(
    cluster_widget, run_widget, monkeypatch, reuse_ids
):
    viewer, widget = cluster_widget
    if reuse_ids:
        # what CPython does after a layer is freed, made certain: every layer gets the same id()
        monkeypatch.setattr(_cluster_widget, "id", lambda obj: 1, raising=False)
    widget.n_clusters.value = 3
    n = 8
    for i in range(n):
        image = viewer.add_image(tile(i), name=f"tile{i}")
        widget.image.value = image
        run_widget(widget)
        assert "error" not in widget.status.value.lower(), widget.status.value
        viewer.layers.remove(image)
        del image
        gc.collect()
    # a hand-made image (the same shape as the tiles) and its own result
    hand = viewer.add_image(tile(99), name="hand-made")
    widget.image.value = hand
    run_widget(widget)
    outs = {layer.name: layer for layer in labels_layers(viewer)}
    assert sorted(outs) == sorted([f"tile{i} K-means" for i in range(n)] + ["hand-made K-means"])
    for i in range(n):
        expected = cluster_image(tile(i), 3, random_state=0).labels
        np.testing.assert_array_equal(outs[f"tile{i} K-means"].data, expected, err_msg=f"tile{i}")
        assert outs[f"tile{i} K-means"].metadata["napari_cluster_seg"]["source"] == f"tile{i}"
    np.testing.assert_array_equal(outs["hand-made K-means"].data, cluster_image(tile(99), 3).labels)


def test_a_hand_made_labels_layer_with_a_result_name_is_never_written(cluster_widget, run_widget, bands):
    viewer, widget = cluster_widget
    img, truth = bands
    image = viewer.add_image(img, name="bands")
    mine = viewer.add_labels(np.full(img.shape, 7, np.uint8), name="bands K-means")
    widget.image.value = image
    run_widget(widget)
    assert (mine.data == 7).all()
    out = viewer.layers["bands K-means [1]"]
    np.testing.assert_array_equal(out.data, truth)


def paint(layer):
    layer.paint((2, 3), 9)


def fill(layer):
    layer.fill((0, 0), 9)


def erase(layer):
    layer.paint((2, 3), 0)


def replace_data(layer):
    layer.data = np.where(layer.data == 1, 2, layer.data).astype(layer.data.dtype)


def in_place_without_event(layer):
    layer.data[0, 0] = 3  # e.g. from the console


@pytest.mark.parametrize("edit", [paint, fill, erase, replace_data, in_place_without_event])
def test_an_edited_result_is_never_overwritten(cluster_widget, run_widget, bands, edit):
    viewer, widget = cluster_widget
    img, truth = bands
    widget.image.value = viewer.add_image(img, name="bands")
    widget.n_clusters.value = 2
    run_widget(widget)
    (edited,) = labels_layers(viewer)
    edit(edited)
    kept = edited.data.copy()
    assert not np.array_equal(kept, cluster_image(img, 2).labels)
    widget.n_clusters.value = 3
    run_widget(widget)
    np.testing.assert_array_equal(edited.data, kept)  # the correction is still there
    assert edited.metadata["napari_cluster_seg"]["params"]["n_clusters"] == 2
    new = viewer.layers["bands K-means [1]"]
    np.testing.assert_array_equal(new.data, truth)
    assert "'bands K-means' was edited, so this result went to 'bands K-means [1]'" in widget.status.value
    # the new layer is the one a further run replaces (it was not edited)
    widget.n_clusters.value = 2
    run_widget(widget)
    assert len(labels_layers(viewer)) == 2 and new.data.max() == 2
    np.testing.assert_array_equal(edited.data, kept)


def test_a_renamed_or_removed_result_is_not_written_again(cluster_widget, run_widget, bands):
    viewer, widget = cluster_widget
    img, truth = bands
    widget.image.value = viewer.add_image(img, name="bands")
    run_widget(widget)
    (first,) = labels_layers(viewer)
    first.name = "my segmentation"
    run_widget(widget)
    second = viewer.layers["bands K-means"]
    assert second is not first and "'my segmentation' was renamed" in widget.status.value
    viewer.layers.remove(second)
    run_widget(widget)
    third = viewer.layers["bands K-means"]
    assert third is not second and len(labels_layers(viewer)) == 2
    np.testing.assert_array_equal(third.data, truth)


def test_unedited_result_is_replaced_and_painting_back_is_no_edit(cluster_widget, run_widget, bands):
    viewer, widget = cluster_widget
    img, truth = bands
    widget.image.value = viewer.add_image(img, name="bands")
    run_widget(widget)
    (out,) = labels_layers(viewer)
    out.paint((2, 3), int(out.data[2, 3]))  # paints the value it had: nothing of the user's to lose
    widget.n_clusters.value = 2
    run_widget(widget)
    assert labels_layers(viewer) == [out] and out.data.max() == 2


def test_a_live_recut_never_overwrites_an_edited_layer(cluster_widget, run_widget, bands):
    viewer, widget = cluster_widget
    img, truth = bands
    image = viewer.add_image(img, name="bands")
    widget.image.value = image
    widget.method.value = "agglomerative"
    run_widget(widget)
    (layer,) = labels_layers(viewer)
    paint(layer)
    kept = layer.data.copy()
    widget.n_clusters.value = 2  # re-cut: goes to a new layer
    np.testing.assert_array_equal(layer.data, kept)
    new = viewer.layers["bands agglomerative [1]"]
    np.testing.assert_array_equal(new.data, cluster_image(img, 2, "agglomerative").labels)
    assert "'bands agglomerative' was edited" in widget.status.value
    widget.n_clusters.value = 3  # the new layer, unedited, is re-cut in place
    assert len(labels_layers(viewer)) == 2
    np.testing.assert_array_equal(new.data, truth)
    np.testing.assert_array_equal(layer.data, kept)
