"""Docked matplotlib plots styled with napari's theme: the k scan and the contingency heat map."""

from __future__ import annotations

from typing import Callable

import numpy as np
from qtpy.QtCore import QSize
from qtpy.QtWidgets import QVBoxLayout, QWidget


def theme_colours(viewer):
    """(background, foreground, grey, accent) hex colours of the viewer's napari theme."""
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
        return (
            theme.background.as_hex(),
            theme.text.as_hex(),
            theme.secondary.as_hex(),
            theme.warning.as_hex(),
        )
    except Exception:  # pragma: no cover - very old / exotic napari themes
        return "#262930", "#f0f1f2", "#888888", "#e3b617"


def hex_colour(rgba) -> str:
    r, g, b = (int(round(255 * float(c))) for c in np.asarray(rgba)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


class ThemedPlot(QWidget):
    """A matplotlib canvas in a QWidget, with napari's theme colours and click handling."""

    def __init__(self, viewer, nrows: int = 1, *, height: int = 220, parent=None):
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self._viewer = viewer
        self.figure = Figure(figsize=(4, 3), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.axes_list = list(np.atleast_1d(self.figure.subplots(nrows, 1, sharex=True)))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.canvas.mpl_connect("button_press_event", self._on_click)
        self._height = height  # preferred; the plot may shrink to MIN_HEIGHT so the window fits a screen
        self.canvas.setMinimumHeight(self.MIN_HEIGHT)
        self.setMinimumHeight(self.MIN_HEIGHT)

    MIN_HEIGHT = 140

    def sizeHint(self):
        return QSize(super().sizeHint().width(), self._height)

    @property
    def axes(self):
        return self.axes_list[0]

    def style(self):
        """Apply the theme to the figure and every axes; returns the theme colours."""
        background, foreground, grey, accent = theme_colours(self._viewer)
        self.figure.set_facecolor(background)
        for ax in self.axes_list:
            ax.set_facecolor(background)
            ax.tick_params(colors=foreground, labelsize=7)
            ax.xaxis.label.set_color(foreground)
            ax.yaxis.label.set_color(foreground)
            ax.title.set_color(foreground)
            for spine in ax.spines.values():
                spine.set_color(grey)
        return background, foreground, grey, accent

    def _on_click(self, event):  # pragma: no cover - overridden
        pass


class KScanPlot(ThemedPlot):
    """Within-cluster sum of squares, silhouette and Calinski-Harabasz against k.

    The suggested k is marked; clicking near a k calls ``on_pick(k)``.
    """

    def __init__(self, viewer, on_pick: Callable[[int], None] | None = None, parent=None):
        super().__init__(viewer, nrows=3, height=300, parent=parent)
        self.on_pick = on_pick
        self.scan = None
        self.marker_lines = []

    def show_scan(self, scan, current_k: int | None = None, title: str = ""):
        background, foreground, grey, accent = theme_colours(self._viewer)
        self.scan = scan
        series = [
            (scan.inertia, "sum of squares\n(elbow)"),
            (scan.silhouette, "silhouette\n(higher better)"),
            (scan.calinski_harabasz, "Calinski-\nHarabasz"),
        ]
        self.marker_lines = []
        for ax, (values, name) in zip(self.axes_list, series):
            ax.clear()
            ax.plot(scan.ks, values, "o-", color=foreground, markersize=4, linewidth=1, picker=5)
            self.marker_lines.append(ax.axvline(scan.suggested, color=accent, linewidth=2, alpha=0.8))
            if current_k is not None:
                ax.axvline(current_k, color=grey, linestyle="--", linewidth=1)
            ax.set_ylabel(name, fontsize=7)
        self.axes_list[-1].set_xlabel("number of clusters k (click to choose)", fontsize=8)
        self.axes_list[-1].set_xticks(scan.ks)
        self.axes_list[0].set_title(
            (title + "\n" if title else "") + f"suggested k = {scan.suggested} ({scan.RULE})", fontsize=8
        )
        self.style()
        self.canvas.draw_idle()

    def _on_click(self, event):
        if self.scan is None or event.inaxes not in self.axes_list or event.xdata is None:
            return
        k = int(self.scan.ks[np.argmin(np.abs(self.scan.ks - event.xdata))])
        if self.on_pick is not None:
            self.on_pick(k)


class ContingencyPlot(ThemedPlot):
    """Heat map of a contingency table of two label images; clicking a cell calls ``on_pick(i, j)``."""

    def __init__(self, viewer, on_pick: Callable[[int, int], None] | None = None, parent=None):
        super().__init__(viewer, nrows=1, height=260, parent=parent)
        self.on_pick = on_pick
        self.table = None
        self.selected = None
        self._box = None

    def show_table(
        self, contingency: np.ndarray, name_a: str, name_b: str, title: str = "", labels_a=None, labels_b=None
    ):
        """Draw ``contingency[1:, 1:]`` (rows: labels of a, columns: labels of b), as fractions of rows.

        ``labels_a`` / ``labels_b`` name the rows / columns (0 first, as
        :class:`~napari_cluster_seg.core.Comparison` gives them; default 0..k).
        Cells are picked by position: ``on_pick(i, j)`` gets row ``i`` and column ``j`` (from 1).
        """
        background, foreground, grey, accent = theme_colours(self._viewer)
        table = np.asarray(contingency)[1:, 1:]
        self.table = table
        self.row_labels = np.arange(table.shape[0] + 1) if labels_a is None else np.asarray(labels_a)
        self.column_labels = np.arange(table.shape[1] + 1) if labels_b is None else np.asarray(labels_b)
        self.selected = None
        self._box = None
        ax = self.axes
        ax.clear()
        rows = table.sum(axis=1, keepdims=True)
        share = np.divide(table, rows, out=np.zeros(table.shape), where=rows > 0)
        ka, kb = table.shape
        ax.imshow(
            share,
            cmap="magma",
            vmin=0,
            vmax=1,
            aspect="auto",
            extent=(0.5, kb + 0.5, ka + 0.5, 0.5),
            interpolation="nearest",
        )
        if ka * kb <= 100:
            for i in range(ka):
                for j in range(kb):
                    ax.text(
                        j + 1,
                        i + 1,
                        f"{table[i, j]}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="black" if share[i, j] > 0.6 else "white",
                    )
        ax.set_xticks(range(1, kb + 1), [str(v) for v in self.column_labels[1:]])
        ax.set_yticks(range(1, ka + 1), [str(v) for v in self.row_labels[1:]])
        ax.set_xlabel(f"{name_b} label", fontsize=8)
        ax.set_ylabel(f"{name_a} label", fontsize=8)
        ax.set_title(title, fontsize=9)
        self.style()
        self.canvas.draw_idle()

    def mark(self, i: int, j: int):
        """Outline cell (label i of a, label j of b)."""
        from matplotlib.patches import Rectangle

        _, _, _, accent = theme_colours(self._viewer)
        if self._box is not None:
            self._box.remove()
        self._box = self.axes.add_patch(
            Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=accent, linewidth=2.5)
        )
        self.selected = (i, j)
        self.canvas.draw_idle()

    def _on_click(self, event):
        if self.table is None or event.inaxes is not self.axes or event.xdata is None:
            return
        ka, kb = self.table.shape
        i, j = int(round(event.ydata)), int(round(event.xdata))
        if 1 <= i <= ka and 1 <= j <= kb:
            self.mark(i, j)
            if self.on_pick is not None:
                self.on_pick(i, j)
