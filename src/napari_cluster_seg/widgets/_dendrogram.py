"""A docked matplotlib dendrogram of a hierarchical result, styled with napari's theme.

Links below the cut are drawn in the colour of their cluster in the Labels
layer; the cut is a dashed line; clicking at a height asks for the number of
clusters that a cut there leaves.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from qtpy.QtWidgets import QVBoxLayout, QWidget


def _theme_colours(viewer):
    """(background, foreground, grey) hex colours of the viewer's napari theme."""
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
        return theme.background.as_hex(), theme.text.as_hex(), theme.secondary.as_hex()
    except Exception:  # pragma: no cover - very old / exotic napari themes
        return "#262930", "#f0f1f2", "#888888"


def _hex(rgba) -> str:
    r, g, b = (int(round(255 * float(c))) for c in np.asarray(rgba)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


class DendrogramWidget(QWidget):
    """Draws :class:`napari_cluster_seg.core.Dendrogram` objects; ``on_pick(k)`` on clicks."""

    def __init__(self, viewer, on_pick: Callable[[int], None] | None = None, parent=None):
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self._viewer = viewer
        self.on_pick = on_pick
        self.figure = Figure(figsize=(4, 3), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.axes = self.figure.add_subplot()
        self.dendrogram = None
        self.cut_line = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.canvas.mpl_connect("button_press_event", self._on_click)
        self.setMinimumHeight(220)

    def show_dendrogram(self, dendrogram, label_colour: Callable[[int], object], title: str = ""):
        """Draw ``dendrogram``; ``label_colour(label)`` gives the Labels layer's RGBA of a label."""
        from scipy.cluster.hierarchy import dendrogram as draw

        background, foreground, grey = _theme_colours(self._viewer)
        self.dendrogram = dendrogram
        ax = self.axes
        ax.clear()
        Z = dendrogram.Z
        n = dendrogram.n_leaves
        # the label of every node below the cut; nodes above the cut are grey
        node_label = {i: int(dendrogram.leaf_labels[i]) for i in range(n)}
        for i, (a, b, _, _) in enumerate(Z):
            la, lb = node_label.get(int(a)), node_label.get(int(b))
            node_label[n + i] = la if la is not None and la == lb else None
        colours = {lab: _hex(label_colour(lab)) for lab in set(dendrogram.leaf_labels.tolist())}

        def link_colour(node):
            lab = node_label.get(int(node))
            return colours[lab] if lab is not None else grey

        if n > 1:
            draw(Z, ax=ax, link_color_func=link_colour, no_labels=True, above_threshold_color=grey)
        height = dendrogram.cut_height()
        self.cut_line = ax.axhline(height, color=foreground, linestyle="--", linewidth=1)
        ax.set_title(title or f"cut at k = {dendrogram.n_clusters} (click to change)", color=foreground, fontsize=9)
        ax.set_ylabel("merge height", color=foreground, fontsize=8)
        self.figure.set_facecolor(background)
        ax.set_facecolor(background)
        ax.tick_params(colors=foreground, labelsize=7)
        for spine in ax.spines.values():
            spine.set_color(grey)
        self.canvas.draw_idle()

    def _on_click(self, event):
        if self.dendrogram is None or event.inaxes is not self.axes or event.ydata is None:
            return
        k = self.dendrogram.clusters_at(float(event.ydata))
        k = int(np.clip(k, 2, self.dendrogram.n_leaves))
        if self.on_pick is not None:
            self.on_pick(k)
