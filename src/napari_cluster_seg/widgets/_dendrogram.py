"""A docked matplotlib dendrogram of a hierarchical result, styled with napari's theme.

Links below the cut are drawn in the colour of their cluster in the Labels
layer; the cut is a dashed line; clicking at a height asks for the number of
clusters that a cut there leaves.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._plots import ThemedPlot, hex_colour, theme_colours


class DendrogramWidget(ThemedPlot):
    """Draws :class:`napari_cluster_seg.core.Dendrogram` objects; ``on_pick(k)`` on clicks."""

    def __init__(self, viewer, on_pick: Callable[[int], None] | None = None, parent=None):
        super().__init__(viewer, nrows=1, height=220, parent=parent)
        self.on_pick = on_pick
        self.dendrogram = None
        self.cut_line = None

    def show_dendrogram(self, dendrogram, label_colour: Callable[[int], object], title: str = ""):
        """Draw ``dendrogram``; ``label_colour(label)`` gives the Labels layer's RGBA of a label."""
        from scipy.cluster.hierarchy import dendrogram as draw

        _, foreground, grey, _ = theme_colours(self._viewer)
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
        colours = {lab: hex_colour(label_colour(lab)) for lab in set(dendrogram.leaf_labels.tolist())}

        def link_colour(node):
            lab = node_label.get(int(node))
            return colours[lab] if lab is not None else grey

        if n > 1:
            draw(Z, ax=ax, link_color_func=link_colour, no_labels=True, above_threshold_color=grey)
        height = dendrogram.cut_height()
        self.cut_line = ax.axhline(height, color=foreground, linestyle="--", linewidth=1)
        ax.set_title(title or f"cut at k = {dendrogram.n_clusters} (click to change)", fontsize=9)
        ax.set_ylabel("merge height", fontsize=8)
        self.style()
        self.canvas.draw_idle()

    def _on_click(self, event):
        if self.dendrogram is None or event.inaxes is not self.axes or event.ydata is None:
            return
        k = self.dendrogram.clusters_at(float(event.ydata))
        k = int(np.clip(k, 2, self.dendrogram.n_leaves))
        if self.on_pick is not None:
            self.on_pick(k)
