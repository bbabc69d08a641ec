"""Pixel features and clean-up from the widget, in a real viewer."""

import numpy as np
import pytest

from napari_cluster_seg import cluster_image
from napari_cluster_seg.core import DEFAULT_FEATURES, clean_labels


def test_default_features_preset_on_rgb(cluster_widget, run_widget):
    viewer, widget = cluster_widget
    (image,) = viewer.open_sample("napari-cluster-seg", "astronaut")
    widget.image.value = image
    section = widget.feature_section
    assert section.color_space.enabled
    section.features.value = "default"
    assert section.color_space.value == "lab"
    assert widget.smoothing.value == DEFAULT_FEATURES["rgb"]["smoothing"]
    assert widget.normalize.value == DEFAULT_FEATURES["rgb"]["normalize"]
    widget.n_clusters.value = 4
    run_widget(widget)
    out = viewer.layers["astronaut K-means"]
    expected = cluster_image(image.data, 4, rgb=True, **DEFAULT_FEATURES["rgb"])
    np.testing.assert_array_equal(out.data, expected.labels)
    assert list(out.features.columns[-3:]) == ["center_L", "center_a", "center_b"]
    meta = out.metadata["napari_cluster_seg"]["params"]
    assert meta["features"]["color_space"] == "lab"
    section.features.value = "none"  # back to plain channel values
    assert (
        section.color_space.value == "rgb"
        and widget.smoothing.value == 0
        and widget.normalize.value == "minmax"
    )


def test_default_features_preset_on_grey_with_anisotropic_scale(cluster_widget, run_widget):
    viewer, widget = cluster_widget
    rng = np.random.default_rng(0)
    img = rng.normal(100, 5, (12, 40, 40)).astype(np.float32)
    img[4:8, 10:20, 10:20] += 60
    image = viewer.add_image(img, name="stack", scale=(2.0, 0.5, 0.5))
    widget.image.value = image
    section = widget.feature_section
    assert not section.color_space.enabled
    section.features.value = "default"
    assert section.filters.value == ["log"] and section.scales.value == "4"
    run_widget(widget)
    out = viewer.layers["stack K-means"]
    expected = cluster_image(img, 3, spacing=(2.0, 0.5, 0.5), **DEFAULT_FEATURES["grey"])
    np.testing.assert_array_equal(out.data, expected.labels)
    assert out.metadata["napari_cluster_seg"]["params"]["spacing"] == [2.0, 0.5, 0.5]
    np.testing.assert_array_equal(out.scale, image.scale)


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_custom_filters_spatial_weight_and_clean_up(cluster_widget, run_widget, method):
    viewer, widget = cluster_widget
    from skimage import data

    img = data.camera()[::4, ::4]
    image = viewer.add_image(img, name="camera")
    widget.image.value = image
    section = widget.feature_section
    section.filters.value = ["gaussian", "gradient"]
    section.scales.value = "1, 2"
    section.spatial_weight.value = 0.5
    section.min_size.value = 20
    section.hole_size.value = 40
    widget.n_clusters.value = 4
    widget.method.value = method
    run_widget(widget)
    assert "4 clusters" in widget.status.value
    out = viewer.layers["camera K-means" if method == "kmeans" else "camera agglomerative"]
    options = dict(
        filters=("gaussian", "gradient"), scales=(1.0, 2.0), spatial_weight=0.5, spacing=(1.0, 1.0)
    )
    raw = cluster_image(img, 4, method, **options)
    np.testing.assert_array_equal(out.data, clean_labels(raw.labels, min_size=20, hole_size=40))
    assert out.features["pixels"].tolist() == [int((out.data == i).sum()) for i in range(1, 5)]


@pytest.mark.parametrize("scales", ["1, x", "0"])
def test_bad_scales_are_reported_and_nothing_is_added(cluster_widget, run_widget, scales):
    viewer, widget = cluster_widget
    image = viewer.add_image(np.arange(100, dtype=np.uint8).reshape(10, 10), name="ramp")
    widget.image.value = image
    widget.feature_section.filters.value = ["log"]
    widget.feature_section.scales.value = scales
    run_widget(widget)
    assert "scales" in widget.status.value
    assert len(viewer.layers) == 1
