"""Compare two result layers: ARI / NMI, side by side, and a contingency heat map whose cells
highlight their pixels in the viewer."""

from __future__ import annotations

from typing import Callable

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton

from ..core import compare_labels, preprocess
from ._layers import METADATA_KEY, transform_kwargs
from ._lazy import is_lazy, label_level0

#: Bytes per pixel that comparing two label images holds (both labels loaded, and the index pairs).
COMPARE_BYTES_PER_PIXEL = 24


def compare_data(a, b):
    """:func:`compare_labels` of two label arrays; lazy ones are loaded here (in the worker) after
    checking that both fit in memory (a ValueError naming the sizes otherwise)."""
    if is_lazy(a) or is_lazy(b):
        needed = int(np.prod(a.shape)) * COMPARE_BYTES_PER_PIXEL
        limit = preprocess.available_memory()
        if needed > limit:
            raise ValueError(
                f"comparing needs both label images in memory (about {needed / 2**30:.2f} GB of the "
                f"{limit / 2**30:.2f} GB available); compare results of a crop or of a smaller image."
            )
        a, b = np.asarray(a), np.asarray(b)
    return compare_labels(a, b)


#: Name of the Labels layer that shows the pixels of a chosen heat-map cell.
HIGHLIGHT_NAME = "comparison: selected cell"


def viewer_grid(viewer):
    """The viewer's grid settings (``viewer.canvas.grid`` since napari 0.9, ``viewer.grid`` before)."""
    canvas = getattr(viewer, "canvas", None)
    return canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid


class CompareSection(Container):
    """``compare_a``, ``compare_b``, ``compare`` and ``compare_result`` of the main widget.

    After a comparison, a docked heat map (``heatmap``) shows the contingency
    table; clicking cell (i, j) puts the pixels with label i in a and j in b
    into the Labels layer :data:`HIGHLIGHT_NAME` (``highlight_layer``) and
    shows it over the image (grid off; Compare again for the side-by-side view).
    """

    def __init__(self, viewer, report_error: Callable[[Exception], None]):
        super().__init__(labels=True)
        self._viewer = viewer
        self._report_error = report_error
        self.worker = None
        self.last_comparison = None
        self.heatmap = None
        self.highlight_layer = None
        self._pair = None
        #: wraps the worker's callbacks (the main widget skips them once the viewer is closed)
        self.guard: Callable[[Callable], Callable] = lambda slot: slot
        #: shows the heat map (the main widget: as a tab of its plot dock); alone, in a dock of its own
        self.show_plot: Callable[[object, str], None] = self._dock_plot
        self.compare_a = ComboBox(label="compare", choices=self._labels_choices)
        self.compare_b = ComboBox(label="with", choices=self._labels_choices)
        self.compare = PushButton(text="Compare side by side")
        self.compare_result = Label(label="result", value="")
        self.compare_result.native.setWordWrap(True)
        self.extend([self.compare_a, self.compare_b, self.compare, self.compare_result])
        self.compare.clicked.connect(self._on_compare)
        self.margins = (0, 0, 0, 0)  # align with the main widget's rows

    def _labels_choices(self, _widget=None):
        from napari.layers import Labels

        return [
            (layer.name, layer)
            for layer in self._viewer.layers
            if isinstance(layer, Labels) and layer is not self.highlight_layer
        ]

    def preselect(self, newest):
        """Offer the newest result and the previous result of the same image."""
        self.compare_a.reset_choices()
        self.compare_b.reset_choices()
        source = newest.metadata[METADATA_KEY]["source"]
        others = [
            layer
            for _, layer in self._labels_choices()
            if layer is not newest
            and METADATA_KEY in layer.metadata
            and layer.metadata[METADATA_KEY]["source"] == source
            and layer.data.shape == newest.data.shape
        ]
        if others:
            self.compare_a.value = others[-1]
            self.compare_b.value = newest

    def _on_compare(self, _value=None):
        a, b = self.compare_a.value, self.compare_b.value
        if a is None or b is None or a is b:
            self._report_error(ValueError("choose two different Labels layers to compare."))
            return
        if a.data.shape != b.data.shape:
            self._report_error(
                ValueError(
                    f"{a.name!r} {a.data.shape} and {b.name!r} {b.data.shape} differ in shape; "
                    "compare results of the same image."
                )
            )
            return
        from napari.qt.threading import create_worker

        # lazy labels are computed in the worker, never here
        worker = create_worker(compare_data, label_level0(a), label_level0(b), _ignore_errors=True)
        worker.returned.connect(self.guard(lambda comp: self._show_comparison(a, b, comp)))
        worker.errored.connect(self.guard(self._report_error))
        worker.finished.connect(lambda: setattr(self, "worker", None))
        self.worker = worker
        self.compare_result.value = "comparing ..."
        worker.start()

    def _show_comparison(self, a, b, comparison):
        self.last_comparison = comparison
        self._pair = (a, b)
        self.compare_result.value = (
            f"ARI {comparison.ari:.3f}, NMI {comparison.nmi:.3f} ({comparison.n_pixels} pixels); "
            "click a cell of the heat map to see its pixels over the image."
        )
        self._show_heatmap(a, b, comparison)
        source = a.metadata.get(METADATA_KEY, {}).get("source")
        self._remove_highlight()
        shown = 0
        for layer in self._viewer.layers:
            layer.visible = layer is a or layer is b or layer.name == source
            shown += layer.visible
        # One row: the image and both results side by side.
        grid = viewer_grid(self._viewer)
        grid.shape = (1, shown)
        grid.enabled = True
        self._viewer.reset_view()

    def _show_heatmap(self, a, b, comparison):
        from ._plots import ContingencyPlot

        if self.heatmap is None:
            self.heatmap = ContingencyPlot(self._viewer, on_pick=self.highlight)
        self.heatmap.show_table(
            comparison.contingency,
            a.name,
            b.name,
            title=f"ARI {comparison.ari:.3f}, NMI {comparison.nmi:.3f} (row shares)",
            labels_a=comparison.labels_a,
            labels_b=comparison.labels_b,
        )
        self.show_plot(self.heatmap, "Comparison")

    def _dock_plot(self, plot, title: str):
        window = getattr(self._viewer, "window", None)
        if window is not None and plot.parentWidget() is None:
            window.add_dock_widget(plot, name=f"Cluster {title.lower()}", area="right")

    def _remove_highlight(self):
        if self.highlight_layer is not None and self.highlight_layer in self._viewer.layers:
            self._viewer.layers.remove(self.highlight_layer)
        self.highlight_layer = None

    def highlight(self, i: int, j: int):
        """Show the pixels of cell (row ``i``, column ``j``) of the contingency table: the label of
        row ``i`` in the first layer and of column ``j`` in the second (labels i and j when every
        label 0..k occurs; ``Comparison.labels_a`` / ``labels_b`` otherwise)."""
        from napari.layers import Labels

        if self._pair is None:
            return
        a, b = self._pair
        comparison = self.last_comparison
        if comparison is not None and comparison.labels_a is not None:
            i, j = int(comparison.labels_a[i]), int(comparison.labels_b[j])
        if a not in self._viewer.layers or b not in self._viewer.layers:
            self._report_error(ValueError("a compared layer was removed; compare again."))
            return
        # lazy labels give a lazy selection (computed as napari shows it)
        selected = ((label_level0(a) == i) & (label_level0(b) == j)).astype(np.uint8)
        name = f"{a.name} {i} & {b.name} {j}"
        if self.highlight_layer is None or self.highlight_layer not in self._viewer.layers:
            self.highlight_layer = Labels(selected, name=HIGHLIGHT_NAME, opacity=0.9, **transform_kwargs(a))
            self._viewer.layers.append(self.highlight_layer)
        else:
            self.highlight_layer.data = selected
        self.highlight_layer.metadata = {
            METADATA_KEY + "_highlight": {"a": a.name, "b": b.name, "cell": [i, j]}
        }
        # the selected pixels over the image (the compared layers stay in the list, hidden)
        source = a.metadata.get(METADATA_KEY, {}).get("source")
        for layer in self._viewer.layers:
            layer.visible = layer is self.highlight_layer or layer.name == source
        viewer_grid(self._viewer).enabled = False
        if isinstance(selected, np.ndarray):
            pixels = f"{int(selected.sum())} pixels"
        else:  # the count is the contingency table's cell (counting again would read every block)
            pixels = f"the pixels of cell ({i}, {j})"
        self.compare_result.value = (
            f"ARI {self.last_comparison.ari:.3f}, NMI {self.last_comparison.nmi:.3f}; "
            f"highlighted {pixels}: {name}"
        )
