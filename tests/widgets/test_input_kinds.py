"""Every input kind clusters with every method through the widget, exactly as through the API."""

import numpy as np
import pytest
from napari.layers import Labels

from napari_cluster_seg import cluster_image

RNG = np.random.default_rng(0)


def _grey_uint8():
    img = RNG.integers(0, 60, (24, 30)).astype(np.uint8)
    img[8:16] += 150
    return {"data": img}, {}, {}


def _grey_float_nan():
    img = RNG.normal(0, 1, (24, 30)).astype(np.float32)
    img[:, 15:] -= 8.0
    img[3, 4] = np.nan
    return {"data": img}, {}, {}


def _rgb(alpha=False):
    img = RNG.integers(0, 256, (24, 30, 4 if alpha else 3)).astype(np.uint8)
    return {"data": img, "rgb": True}, {}, {"rgb": True}


def _stack_uint16():
    img = RNG.integers(100, 400, (6, 20, 20)).astype(np.uint16)
    img[2:4, 5:12, 5:12] = 3000
    return {"data": img, "scale": (3, 1, 1)}, {}, {}


def _tyx():
    img = RNG.normal(0, 1, (3, 16, 16)).astype(np.float32) + np.arange(3)[:, None, None]
    return {"data": img}, {"time_axis": 0}, {"time_axis": 0}


def _tzyx():
    img = RNG.integers(0, 1000, (2, 3, 12, 12)).astype(np.uint16)
    return {"data": img}, {"time_axis": 0}, {"time_axis": 0}


def _channel_axis():
    img = RNG.random((2, 20, 20)).astype(np.float32)
    return {"data": img}, {"channel_axis": 0}, {"channel_axis": 0}


KINDS = {
    "grey-uint8": _grey_uint8,
    "grey-float32-nan": _grey_float_nan,
    "rgb": _rgb,
    "rgba": lambda: _rgb(alpha=True),
    "stack-uint16": _stack_uint16,
    "time-tyx": _tyx,
    "time-tzyx": _tzyx,
    "channel-axis": _channel_axis,
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_input_kind_with_every_method(cluster_widget, run_widget, kind):
    """One viewer per kind (a viewer's set-up and napari's leak check cost more than the runs); each
    method writes its own layer, checked against the API's result."""
    viewer, widget = cluster_widget
    layer_kwargs, widget_values, api_kwargs = KINDS[kind]()
    data = layer_kwargs.pop("data")
    image = viewer.add_image(data, name=kind, **layer_kwargs)
    widget.image.value = image
    for name, value in widget_values.items():
        getattr(widget, name).value = value
    widget.n_clusters.value = 3
    titles = {"kmeans": "K-means", "agglomerative": "agglomerative", "divisive": "divisive"}
    for i, (method, title) in enumerate(titles.items()):
        widget.method.value = method
        run_widget(widget)
        names = sorted(layer.name for layer in viewer.layers if isinstance(layer, Labels))
        assert names == sorted(f"{kind} {t}" for t in list(titles.values())[: i + 1]), names
        out = viewer.layers[f"{kind} {title}"]
        expected = cluster_image(data, 3, method, random_state=0, **api_kwargs)
        np.testing.assert_array_equal(out.data, expected.labels, err_msg=method)
        assert set(np.unique(out.data)) - {0} == {1, 2, 3}, method
        assert out.ndim == expected.labels.ndim, method


def test_multichannel_from_several_layers_with_every_method(cluster_widget, run_widget):
    viewer, widget = cluster_widget
    a = RNG.random((20, 20)).astype(np.float32)
    b = RNG.random((20, 20)).astype(np.float32) * 50
    la = viewer.add_image(a, name="a")
    lb = viewer.add_image(b, name="b")
    widget.image.value = la
    widget.extra_channels.value = [lb]
    for method in ("kmeans", "agglomerative", "divisive"):
        widget.method.value = method
        run_widget(widget)
        out = viewer.layers[f"a {method if method != 'kmeans' else 'K-means'}"]
        expected = cluster_image(np.stack([a, b], -1), 3, method, channel_axis=-1)
        np.testing.assert_array_equal(out.data, expected.labels)


def test_widget_is_in_the_plugins_and_segment_menus(cluster_widget):
    from napari._app_model import get_app_model

    app = get_app_model()
    # with two widgets napari lists them in a submenu: Plugins > Cluster segmentation > ...
    for menu in ("napari/plugins/napari-cluster-seg", "napari/layers/segment"):
        ids = [getattr(item, "command", None) and item.command.id for item in app.menus.get_menu(menu)]
        assert "napari-cluster-seg.cluster_widget" in ids, menu
        assert "napari-cluster-seg.objects_widget" in ids, menu
