"""Keep the whole image in view while the user has not moved the camera.

napari fits the view when the first layer arrives, but not when the canvas shrinks (a dock widget
appears, the window is resized): the image is then clipped. :class:`ViewFit` re-fits the view
(``viewer.reset_view()``) after such changes and after a run, but only while the camera is where
the last fit put it; once the user has zoomed, panned or rotated, their view is left alone
(until a fit of their own, e.g. napari's 'home' button, hands it back).
"""

from __future__ import annotations

import numpy as np


def viewer_camera(viewer):
    """The viewer's camera (``viewer.scene.camera`` since napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def _canvas_size_event(viewer):
    """The event of a change of the canvas size (``viewer.canvas.size`` since napari 0.9)."""
    canvas = getattr(viewer, "canvas", None)
    events = getattr(canvas, "events", None)
    return getattr(events, "size", None) or getattr(viewer.events, "_canvas_size", None)


class ViewFit:
    """Re-fits ``viewer``'s view while its camera is where the last fit left it."""

    def __init__(self, viewer):
        self._viewer = viewer
        self._fitted = None  # (center, zoom, angles) after the last fit (ours, napari's or the user's)
        self._size_event = _canvas_size_event(viewer)
        viewer.events.reset_view.connect(self._on_reset)
        if self._size_event is not None:
            self._size_event.connect(self.refit)
        if not self._at_fit():
            self._fitted = None

    def disconnect(self):
        """Stop following the viewer (the widget is gone)."""
        self._viewer.events.reset_view.disconnect(self._on_reset)
        if self._size_event is not None:
            self._size_event.disconnect(self.refit)

    def _state(self) -> tuple:
        camera = viewer_camera(self._viewer)
        return tuple(np.asarray(camera.center, float)), float(camera.zoom), tuple(np.asarray(camera.angles))

    def _on_reset(self, _event=None):
        self._fitted = self._state()

    def _at_fit(self) -> bool:
        """Whether the camera shows the layers as a fit would now (then it is ours to re-fit)."""
        if len(self._viewer.layers) == 0:
            self._fitted = self._state()  # napari fits the view when the first layer arrives
            return True
        before = self._state()
        self._viewer.reset_view()  # records the fitted state
        if not self.user_moved(before):
            return True
        camera = viewer_camera(self._viewer)
        camera.angles, camera.center, camera.zoom = before[2], before[0], before[1]
        return False

    def user_moved(self, state: tuple | None = None) -> bool:
        """True when the camera (or ``state``) differs from where the last fit put it."""
        if self._fitted is None:
            return True
        (center, zoom, angles), (center0, zoom0, angles0) = state or self._state(), self._fitted
        return not (
            np.isclose(zoom, zoom0, rtol=1e-6)
            and np.allclose(center, center0, rtol=1e-6, atol=1e-6 / max(zoom0, 1e-12))
            and np.allclose(angles, angles0, atol=1e-6)
        )

    def refit(self, _event=None) -> bool:
        """Fit the view to the layers unless the user has moved the camera; returns whether it did."""
        if self.user_moved() or len(self._viewer.layers) == 0:
            return False
        self._viewer.reset_view()
        return True
