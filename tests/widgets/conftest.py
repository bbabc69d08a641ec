import gc
import os
import subprocess
import sys

import numpy as np
import pytest

WORKER_TIMEOUT_MS = 60_000


@pytest.fixture(scope="session", autouse=True)
def frozen_import_heap():
    """Import napari's Qt viewer and the plugin first, then move those objects (~350,000: modules,
    classes, caches) out of the garbage collector's reach with ``gc.freeze()``.

    napari runs a full ``gc.collect()`` on every layer removal (and make_napari_viewer on its set-up
    and tear-down); over the import heap each took 0.6-0.7 s on the 2-core CI machine (busy), a third
    of the widget tests' time. Frozen objects are only skipped by the collector: everything a test
    creates (its viewer, layers, widgets, workers) is collected as before, so napari's check that no
    QtViewer outlives its test (make_napari_viewer's tear-down) still sees every leak.
    """
    import napari._qt.qt_viewer  # noqa: F401 - the heavy imports a viewer needs
    import napari._vispy.canvas  # noqa: F401

    import napari_cluster_seg.widgets  # noqa: F401
    from napari_cluster_seg.core import warm_up

    warm_up()
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
def refrozen_heap(frozen_import_heap):
    """Before each widget test: collect the garbage, then freeze what lives on (what the tests before
    imported or cached: the core tests' numba builds, scikit-learn, ...). The previous test's viewer is
    gone by then (its tear-down checked), so nothing a test creates is frozen."""
    gc.collect()
    gc.freeze()


@pytest.fixture
def cluster_widget(make_napari_viewer):
    """A viewer and the plugin's widget, docked through the npe2 manifest."""
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-cluster-seg", "Cluster segmentation")
    return viewer, widget


@pytest.fixture
def run_widget(qtbot):
    """Press Run and wait until the worker has finished; returns the widget."""

    def run(widget):
        widget.run.clicked()
        assert widget.worker is not None or widget.status.value, "Run did not start a worker"
        qtbot.waitUntil(lambda: widget.worker is None, timeout=WORKER_TIMEOUT_MS)
        return widget

    return run


@pytest.fixture
def bands():
    """A 2D uint16 image of three bands with known truth labels 1..3."""
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 20)[:, None].repeat(30, 1)
    img = (np.array([500, 5000, 20000])[truth] + rng.normal(0, 50, truth.shape)).astype(np.uint16)
    return img, truth + 1


@pytest.fixture
def run_on_astronaut(cluster_widget, run_widget):
    """Open the astronaut sample, choose it with ``method`` and ``n_clusters``, Run and wait;
    returns (viewer, widget, image)."""

    def run(method="kmeans", n_clusters=3):
        viewer, widget = cluster_widget
        (image,) = viewer.open_sample("napari-cluster-seg", "astronaut")
        widget.image.value = image
        widget.method.value = method
        widget.n_clusters.value = n_clusters
        run_widget(widget)
        return viewer, widget, image

    return run


@pytest.fixture
def kmeans_and_agglomerative(run_on_astronaut, run_widget):
    """The astronaut sample clustered by K-means and agglomerative (k = 4) in the widget."""
    viewer, widget, image = run_on_astronaut("kmeans", 4)
    widget.method.value = "agglomerative"
    run_widget(widget)
    km, ag = viewer.layers["astronaut K-means"], viewer.layers["astronaut agglomerative"]
    return viewer, widget, image, km, ag


@pytest.fixture(scope="session")
def laptop_demo(tmp_path_factory):
    """The demo command (``python -m napari_cluster_seg.demo``) run once, headless, as the README's
    screenshot is made (``--compare``) at a laptop's 1366x768: (its stdout, the saved screenshot).
    Shared by the screenshot and window-size tests: the subprocess (a napari start) is their cost."""
    from skimage.io import imread

    out = tmp_path_factory.mktemp("demo") / "demo.png"
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "xcb")}
    command = ["-m", "napari_cluster_seg.demo", "--size", "1366x768", "--compare", "--screenshot", str(out)]
    proc = subprocess.run(
        [sys.executable, *command, "--exit"], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, imread(out)
