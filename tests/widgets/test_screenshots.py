"""The viewer really renders: screenshots of the canvas and the window are not blank."""

from pathlib import Path

import numpy as np
from napari.layers import Labels

SHOTS = Path(__file__).resolve().parents[2] / "test-screenshots"


def _save(name, image):
    from skimage.io import imsave

    SHOTS.mkdir(exist_ok=True)
    imsave(SHOTS / name, image, check_contrast=False)


def test_screenshot_of_a_result_is_not_blank(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    (image,) = viewer.open_sample("napari-cluster-seg", "astronaut")
    _, widget = viewer.window.add_plugin_dock_widget("napari-cluster-seg", "Cluster segmentation")
    widget.image.value = image
    widget.n_clusters.value = 4
    widget.run.clicked()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    (labels,) = [layer for layer in viewer.layers if isinstance(layer, Labels)]
    labels.opacity = 1.0
    canvas = viewer.screenshot(canvas_only=True, flash=False)
    window = viewer.screenshot(canvas_only=False, flash=False)
    _save("result-canvas.png", canvas)
    _save("result-window.png", window)
    rgb = canvas[..., :3].reshape(-1, 3)
    assert rgb.std() > 20, "canvas screenshot is (nearly) uniform"
    # the labels layer is drawn: its four colours cover most of the canvas where the image is
    colours = {tuple(np.round(np.asarray(labels.get_color(v))[:3] * 255).astype(int)) for v in (1, 2, 3, 4)}
    present = sum(np.all(np.abs(rgb.astype(int) - c) <= 3, axis=1).mean() for c in colours)
    assert present > 0.3, f"label colours cover only {present:.0%} of the canvas"
    labels.visible = False
    hidden = viewer.screenshot(canvas_only=True, flash=False)
    assert np.abs(hidden.astype(int) - canvas.astype(int)).mean() > 10
    assert window.shape[0] > canvas.shape[0] and window[..., :3].std() > 20


def test_demo_writes_a_screenshot(laptop_demo):
    """The README's demo command, headless: napari + sample + widget + results, saved as PNG."""
    stdout, shot = laptop_demo
    assert "kmeans: 4 clusters in 'astronaut K-means'" in stdout, stdout
    assert "agglomerative: 4 clusters in 'astronaut agglomerative'" in stdout, stdout
    assert "screenshot written to" in stdout and "(1366x768)" in stdout, stdout
    assert shot.shape[0] >= 600 and shot.shape[1] >= 1000
    assert shot[..., :3].std() > 20
