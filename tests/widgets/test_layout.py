"""The widget fits a laptop screen and napari's default window, the plots share one tabbed dock, and
the canvas shows the whole image (re-fitted only while the user has not moved the camera)."""

import numpy as np
import pytest
from qtpy.QtCore import QPoint, QRect
from qtpy.QtWidgets import QApplication, QDockWidget

from napari_cluster_seg.widgets._plot_dock import PlotTabs
from napari_cluster_seg.widgets._view import viewer_camera

from .conftest import WORKER_TIMEOUT_MS
from .test_screenshots import _save

MAX_WIDTH = 380  # the widget's minimum width may not exceed this


def settle(qtbot, ms=150):
    for _ in range(5):
        QApplication.processEvents()
    qtbot.wait(ms)


def shown_fraction(viewer, layer, canvas_shape) -> np.ndarray:
    """Fraction of the layer's extent along each displayed axis (rows, columns) that the canvas shows,
    from the camera's center and zoom (canvas pixels per world unit) and the canvas size in pixels."""
    camera = viewer_camera(viewer)
    shape = np.asarray(layer.data.shape[:2] if layer.rgb else layer.data.shape[-2:], float)
    scale, translate = np.asarray(layer.scale[-2:]), np.asarray(layer.translate[-2:])
    low, high = translate - 0.5 * scale, translate + (shape - 0.5) * scale
    center = np.asarray(camera.center[-2:])
    half = np.asarray(canvas_shape[:2], float) / (2 * camera.zoom)
    overlap = np.minimum(high, center + half) - np.maximum(low, center - half)
    return np.clip(overlap, 0, None) / (high - low)


def assert_whole_image_shown(viewer, layer, name):
    canvas = viewer.screenshot(canvas_only=True, flash=False)
    _save(name, canvas)
    assert canvas[..., :3].std() > 20, "canvas screenshot is (nearly) uniform"
    np.testing.assert_allclose(canvas.shape[:2], viewer.canvas.size, atol=2)  # the model's size is real
    fraction = shown_fraction(viewer, layer, canvas.shape)
    assert fraction.min() >= 0.95, f"the canvas shows {fraction} of the image's rows and columns"


def assert_inside_window(viewer, qwidget):
    window = viewer.window._qt_window
    top_left = qwidget.mapTo(window, QPoint(0, 0))
    assert qwidget.isVisible()
    assert window.rect().contains(QRect(top_left, qwidget.size())), (top_left, qwidget.size(), window.size())


def our_docks(viewer, widget):
    return [widget.native.parentWidget(), widget.plots.dock_widget()]


def dock_of(qwidget):
    parent = qwidget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


@pytest.fixture
def shown_viewer(make_napari_viewer, qtbot):
    """A shown viewer (optionally resized), the astronaut sample, and the widget docked."""

    def make(size=None):
        viewer = make_napari_viewer(show=True)
        if size is not None:
            viewer.window._qt_window.resize(*size)
        settle(qtbot)
        (image,) = viewer.open_sample("napari-cluster-seg", "astronaut")
        _, widget = viewer.window.add_plugin_dock_widget("napari-cluster-seg", "Cluster segmentation")
        widget.image.value = image
        settle(qtbot, 300)
        return viewer, widget, image

    return make


def run(widget, qtbot, method="kmeans", k=4):
    widget.method.value = method
    widget.n_clusters.value = k
    widget.run.clicked()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    settle(qtbot, 300)


def compare_last_two(widget, qtbot):
    widget.compare.clicked()
    qtbot.waitUntil(lambda: widget.compare_worker is None, timeout=WORKER_TIMEOUT_MS)
    settle(qtbot, 300)


def test_widget_is_narrow_and_short(cluster_widget):
    _, widget = cluster_widget
    hint = widget.native.minimumSizeHint()
    assert hint.width() <= MAX_WIDTH and hint.height() <= 400, hint
    assert widget.native.sizeHint().width() <= MAX_WIDTH
    assert all(not section.isExpanded() for section in widget.sections.values())
    # expanding every section scrolls instead of growing the widget
    for section in widget.sections.values():
        section.expand(animate=False)
    assert widget.native.minimumSizeHint().height() == hint.height()
    assert widget.native.minimumSizeHint().width() <= MAX_WIDTH


def test_fits_a_1366x768_screen_with_plots_and_shows_the_whole_image(shown_viewer, qtbot):
    viewer, widget, image = shown_viewer((1366, 768))
    window = viewer.window._qt_window
    assert (window.width(), window.height()) == (1366, 768)
    assert_inside_window(viewer, widget.native)
    assert_whole_image_shown(viewer, image, "layout-1366x768-docked.png")
    run(widget, qtbot, "kmeans")
    run(widget, qtbot, "agglomerative")  # the dendrogram docks below the widget
    assert_whole_image_shown(viewer, image, "layout-1366x768-canvas.png")
    compare_last_two(widget, qtbot)  # the heat map is a second tab; the image and results side by side
    shot = viewer.screenshot(canvas_only=False, flash=False)
    _save("layout-1366x768-window.png", shot)
    assert shot.shape[:2] == (768, 1366) and shot[..., :3].std() > 20
    assert (window.width(), window.height()) == (1366, 768), "the window grew beyond the screen"
    for qwidget in (widget.native, widget.run.native, widget.status.native, widget.plots):
        assert_inside_window(viewer, qwidget)
    assert widget.run.native.visibleRegion().boundingRect().size() == widget.run.native.size()
    assert dock_of(widget.native).width() <= MAX_WIDTH + 30  # the dock asks for the widget's width
    assert widget.plots.height() >= 200


def test_fits_napari_default_window(shown_viewer, qtbot):
    viewer, widget, image = shown_viewer()
    window = viewer.window._qt_window
    assert_inside_window(viewer, widget.native)
    assert_whole_image_shown(viewer, image, "layout-default-docked.png")
    run(widget, qtbot, "divisive")  # a hierarchical result: the plot dock appears too
    _save("layout-default-window.png", viewer.screenshot(canvas_only=False, flash=False))
    assert_inside_window(viewer, widget.native)
    assert_inside_window(viewer, widget.plots)
    # the plugin's docks (widget and plots, one above the other) need less height than the window has
    central = window.height() - window.menuBar().height() - window.statusBar().height()
    needed = sum(dock.minimumSizeHint().height() for dock in our_docks(viewer, widget))
    assert needed <= central, (needed, central)
    assert_whole_image_shown(viewer, image, "layout-default-canvas.png")


def test_plots_are_tabs_of_one_dock_that_comes_back_when_closed(shown_viewer, qtbot):
    viewer, widget, image = shown_viewer((1366, 768))
    run(widget, qtbot, "kmeans")
    run(widget, qtbot, "agglomerative")
    widget.k_max.value = 5
    widget.suggest_k.clicked()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
    compare_last_two(widget, qtbot)
    plots = widget.plots
    assert [inner for inner in viewer.window.dock_widgets.values() if isinstance(inner, PlotTabs)] == [plots]
    assert plots.plots() == [widget.dendrogram_widget, widget.k_plot, widget.comparison.heatmap]
    assert [plots.tabText(i) for i in range(plots.count())] == ["Dendrogram", "Choose k", "Comparison"]
    assert plots.currentWidget() is widget.comparison.heatmap
    # the dock's close button removes it from the window; the next plot brings it back
    plots.dock_widget().destroyOnClose()
    assert plots.dock_widget() is None and plots not in viewer.window.dock_widgets.values()
    widget.n_clusters.value = 3  # a live re-cut of the agglomerative result redraws its dendrogram
    settle(qtbot)
    assert widget.dendrogram_widget.dendrogram.n_clusters == 3
    assert any(inner is plots for inner in viewer.window.dock_widgets.values())
    assert plots.isVisible() and plots.currentWidget() is widget.dendrogram_widget and plots.count() == 3
    # hidden (the dock's hide button): shown again by the next plot
    plots.dock_widget().close()
    settle(qtbot)
    assert not plots.isVisible()
    widget.n_clusters.value = 4
    settle(qtbot)
    assert plots.isVisible()


def test_view_is_refitted_only_while_the_user_has_not_moved_the_camera(shown_viewer, qtbot):
    viewer, widget, image = shown_viewer()
    camera = viewer_camera(viewer)
    window = viewer.window._qt_window
    window.resize(window.width() + 200, window.height())  # the canvas changes size: fitted again
    settle(qtbot, 300)
    assert_whole_image_shown(viewer, image, "refit-wider.png")
    assert widget.view_fit.refit()
    # the user zooms in and pans: neither a run nor a change of the canvas size undoes it
    camera.zoom = camera.zoom * 3
    camera.center = (0.0, 100.0, 120.0)
    moved = (tuple(camera.center), camera.zoom)
    run(widget, qtbot, "divisive")  # also docks the dendrogram, which shrinks the canvas
    window.resize(window.width() - 200, window.height())
    settle(qtbot, 300)
    assert (tuple(camera.center), camera.zoom) == moved
    assert not widget.view_fit.refit()
    # napari's 'home' button (reset_view) hands the view back to the widget
    viewer.reset_view()
    camera.zoom = camera.zoom  # no change
    window.resize(window.width() + 150, window.height())
    settle(qtbot, 300)
    assert_whole_image_shown(viewer, image, "refit-after-home.png")


def test_a_view_the_user_set_before_docking_is_kept(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    (image,) = viewer.open_sample("napari-cluster-seg", "astronaut")
    camera = viewer_camera(viewer)
    camera.zoom = camera.zoom * 2
    camera.center = (0.0, 300.0, 200.0)
    before = (tuple(camera.center), camera.zoom)
    _, widget = viewer.window.add_plugin_dock_widget("napari-cluster-seg", "Cluster segmentation")
    settle(qtbot, 300)
    assert (tuple(camera.center), camera.zoom) == before
    assert widget.view_fit.user_moved()


def test_demo_window_keeps_the_requested_laptop_size(laptop_demo):
    """The demo (two results, compared, with the plot dock) at 1366x768 comes out 1366x768."""
    stdout, shot = laptop_demo
    assert "window 1366x768 fits the requested 1366x768" in stdout, stdout
    assert shot.shape[:2] == (768, 1366) and shot[..., :3].std() > 20
