"""The *Cluster segmentation* dock widget: reads layers, runs the core in a worker, writes Labels.

The form (controls, layout, reading them into a job) is :mod:`._form`; the worker bodies and
start / cancel / progress are :mod:`._jobs`; layers in and out are :mod:`._layers`; the plots share
one tabbed dock (:mod:`._plot_dock`); :mod:`._view` keeps the image in view.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from ..core.lazy import as_dask
from ._form import METHOD_CHOICES, ClusterForm
from ._jobs import Job, JobRunner, apply_job, run_job, scan_job
from ._layers import METADATA_KEY, save_features_csv, write_result
from ._lazy import check_label_path, label_level0, save_labels_job
from ._plot_dock import PlotTabs
from ._state import Lifetime, ResultLayers
from ._view import ViewFit

if TYPE_CHECKING:  # pragma: no cover
    import napari


class ClusterSegWidget(ClusterForm):
    """Cluster the pixels of an Image layer into a Labels layer.

    Controls (also for scripts and tests): ``image``, ``method``,
    ``linkage``, ``connected``, ``n_clusters``, ``run``, ``cancel``, ``progress``
    and ``status`` (always shown); in collapsible ``sections``: ``channel_axis``,
    ``extra_channels``, ``time_axis``; ``k_max`` and ``suggest_k`` (plot ``k_plot``,
    scores ``last_scan``); ``normalize``, ``smoothing``, ``fit_stride``, ``seed``;
    ``fit_level`` (multiscale images: the pyramid level to fit on);
    ``feature_section`` (features preset, colour space, filters, scales,
    spatial weight, clean-up); ``new_layer``, ``save_table``, ``save_labels``
    (``save_labels_to(path)``), ``save_model`` /
    ``apply_model`` (``save_model_to(path)``, ``apply_model_from(path)``); and for
    comparisons ``compare_a``, ``compare_b``, ``compare`` (heat map
    ``comparison.heatmap``). The plots (also ``dendrogram_widget``) are tabs of one
    docked ``plots`` panel. The running worker is ``widget.worker`` (None when idle);
    the last result is ``widget.last_result``.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer)
        self.last_result = None
        self.dendrogram_widget = None
        self.k_plot = None
        self.last_scan = None
        self._scan_title = ""
        self._last_output = None
        self._results = ResultLayers()  # result layers by image layer and kind, with edit detection
        self._live = None  # (job, result, layer) of the last hierarchical result, for live re-cuts
        # no worker callback touches the widget once the viewer's window (and so the widget) is gone
        self._lifetime = Lifetime(self.native, on_end=self._stop)
        self._jobs = JobRunner(self, self._lifetime.guard)
        self.plots = PlotTabs(viewer)
        self.comparison.guard = self._lifetime.guard
        self.comparison.show_plot = self.plots.show_plot
        self.view_fit = ViewFit(viewer)  # the whole image in view while the user has not moved it
        self.n_clusters.changed.connect(self._on_k_changed)
        self.run.clicked.connect(self._on_run)
        self.cancel.clicked.connect(self._jobs.cancel)
        self.save_table.clicked.connect(self._on_save_table)
        self.save_labels.clicked.connect(self._on_save_labels)
        self.suggest_k.clicked.connect(self._on_suggest_k)
        self.save_model.clicked.connect(self._on_save_model)
        self.apply_model.clicked.connect(self._on_apply_model)
        for event in self._layer_events():
            event.connect(self._refresh_choices)
        viewer.layers.events.removed.connect(self._forget_layer)

    def _layer_events(self):
        events = self._viewer.layers.events
        return events.inserted, events.removed, events.reordered

    # the job runner's state (kept as attributes of the widget for scripts and tests)
    worker = property(lambda self: self._jobs.worker)
    warm_up_thread = property(
        lambda self: self._jobs.warm_up_thread,
        lambda self, thread: setattr(self._jobs, "warm_up_thread", thread),
    )
    # compare section
    compare_a = property(lambda self: self.comparison.compare_a)
    compare_b = property(lambda self: self.comparison.compare_b)
    compare = property(lambda self: self.comparison.compare)
    compare_result = property(lambda self: self.comparison.compare_result)
    compare_worker = property(lambda self: self.comparison.worker)
    last_comparison = property(lambda self: self.comparison.last_comparison)

    def _refresh_choices(self, _event=None):
        self.reset_choices()
        self._on_image()

    def _stop(self):
        """The widget is gone (viewer closed): stop the run at its next step and stop listening to
        the viewer (the viewer model can outlive its window), touching no widget."""
        self._jobs.stop()
        for event in self._layer_events():
            event.disconnect(self._refresh_choices)
        self._viewer.layers.events.removed.disconnect(self._forget_layer)
        self.view_fit.disconnect()
        self._set_live(None)  # disconnects the live result's image data events

    # --------------------------------------------------------------------- run
    def _start(self, body, on_done, what: str, *args) -> bool:
        """Run ``body(job, *args)`` for the current settings in a worker; ``on_done(job, value)``."""
        if self.worker is not None:
            self.set_status("already running: wait, or press Cancel.")
            return False
        try:
            job = self.collect()
        except Exception as err:  # reported in the status line, never raised to Qt
            self.report_error(err)
            return False
        return self._jobs.start(body, job, on_done, what, *args)

    def _on_run(self, _value=None):
        self._start(run_job, self._on_result, "clustering")

    def _on_result(self, job: Job, result, kind: str | None = None):
        kind = job.method if kind is None else kind
        problem = job.source.problem(self._viewer.layers)
        if problem is not None:  # the result would not fit the image any more
            self.set_status(f"{problem} during the run, so its result was dropped: press Run again.")
            return
        self.last_result = result
        target = None if job.new_layer else self._results.latest(job.source.layer, kind)
        layer, note = write_result(self._viewer, self._results, job, kind, result, target)
        self._last_output = layer
        self.comparison.preselect(layer)
        self._report_result(result, layer, note)
        live = result.is_hierarchical and kind == job.method
        self._set_live((replace(job, arrays=[]), result, layer) if live else None)
        if live:
            self._show_dendrogram(result, layer)
        self.view_fit.refit()

    def _forget_layer(self, event):
        """A layer left the viewer: forget it (as an image, a result layer and a live re-cut's source)."""
        layer = event.value
        self._results.forget(layer)
        if self._live is not None and (layer is self._live[2] or layer in self._live_sources()):
            self._set_live(None)

    def save_table_to(self, path):
        """Write the features table of the last result layer to ``path`` (CSV)."""
        layer = self._last_output
        if layer is None or layer not in self._viewer.layers:
            raise ValueError("no cluster result to save yet: press Run first.")
        return save_features_csv(layer, path)

    def _report_result(self, result, layer, note: str = ""):
        counted = "pixels per label"
        if getattr(result, "lazy", False):
            counted = (
                f"lazy labels, computed as you pan and zoom; pixels per label (level {result.fit_level})"
            )
            if result.params.method != "kmeans":
                note = (f"{note}; " if note else "") + "k cannot be changed live on a lazy image: press Run"
        self.set_status(
            (f"{note}. " if note else "")
            + f"{result.n_clusters} clusters in {layer.name!r}; {counted}: "
            + ", ".join(str(c) for c in result.counts)
        )

    # ---------------------------------------------------- hierarchy: live re-cut
    def _live_sources(self) -> list:
        return [] if self._live is None else [ref() for ref in self._live[0].source.layers]

    def _set_live(self, live):
        """Keep ``live`` = (job, result, layer) for re-cuts; watch its image layers' data meanwhile."""
        for layer in self._live_sources():
            if layer is not None:
                layer.events.data.disconnect(self._on_source_data)
        self._live = live
        for layer in self._live_sources():
            layer.events.data.connect(self._on_source_data)

    def _on_source_data(self, _event=None):
        """The data of a live result's image changed: its tree no longer describes it."""
        problem = None if self._live is None else self._live[0].source.problem(self._viewer.layers)
        if problem is not None:
            self._set_live(None)
            self.set_status(f"{problem}: press Run to cluster the new data (then k can be changed again).")

    def _live_target(self):
        """The (job, result, layer) that a change of k re-cuts, or None."""
        if self._live is None or self.worker is not None:
            return None
        job, result, layer = self._live
        if layer not in self._viewer.layers or self.current_signature() != job.signature:
            return None
        problem = job.source.problem(self._viewer.layers)
        if problem is not None:
            self._on_source_data()
            return None
        return self._live

    def _on_k_changed(self, k):
        target = self._live_target()
        if target is None or target[1].n_clusters == k:
            return
        job, result, layer = target
        try:
            new = result.cut(int(k))
        except Exception as err:  # reported in the status line, never raised to Qt
            self.report_error(err)
            return
        # a new layer if `layer` was edited
        out, note = write_result(self._viewer, self._results, job, job.method, new, layer)
        self._set_live((job, new, out))
        self.last_result = new
        self._last_output = out
        self._report_result(new, out, note)
        self._show_dendrogram(new, out)

    def _show_dendrogram(self, result, layer):
        from ._dendrogram import DendrogramWidget

        if self.dendrogram_widget is None:
            self.dendrogram_widget = DendrogramWidget(self._viewer, on_pick=self._on_dendrogram_pick)
        linkage = f" ({result.params.linkage})" if result.params.method == "agglomerative" else ""
        self.dendrogram_widget.show_dendrogram(
            result.dendrogram(), layer.get_color, title=f"{layer.name}{linkage}, k = {result.n_clusters}"
        )
        self.plots.show_plot(self.dendrogram_widget, "Dendrogram")

    def _on_dendrogram_pick(self, k: int):
        self.n_clusters.value = min(k, self.n_clusters.max)

    # ------------------------------------------------------------- suggest k
    def _on_suggest_k(self, _value=None):
        self._start(scan_job, self._on_scan, "scoring k = 2..K for", int(self.k_max.value))

    def _on_scan(self, job: Job, scan):
        from ._plots import KScanPlot

        self.last_scan = scan
        if self.k_plot is None:
            self.k_plot = KScanPlot(self._viewer, on_pick=self._on_k_pick)
        method = dict((v, n) for n, v in METHOD_CHOICES)[job.method]
        self._scan_title = f"{job.source_name}, {method}"
        self.k_plot.show_scan(scan, current_k=int(self.n_clusters.value), title=self._scan_title)
        self.plots.show_plot(self.k_plot, "Choose k")
        self.set_status(
            f"suggested k = {scan.suggested} ({scan.RULE}); click a point of the plot to choose k, then Run."
        )

    def _on_k_pick(self, k: int):
        self.n_clusters.value = min(k, self.n_clusters.max)
        if self.k_plot is not None and self.last_scan is not None:
            self.k_plot.show_scan(
                self.last_scan, current_k=int(self.n_clusters.value), title=self._scan_title
            )

    # ----------------------------------------------------------------- models
    def save_model_to(self, path):
        """Save the fitted model of the last result to ``path`` (JSON)."""
        if self.last_result is None or self.last_result.model is None:
            raise ValueError("no fitted model yet: press Run first.")
        return self.last_result.model.save(path)

    def apply_model_from(self, path) -> bool:
        """Label the chosen image with the model saved at ``path`` (a ``<image> model`` Labels layer).

        The file is read and applied in a worker (progress, Cancel); any error, also a damaged
        file, shows in the status line. Returns whether the worker started.
        """
        return self._start(
            apply_job,
            lambda job, result: self._on_result(job, result, kind="model"),
            "applying the model to",
            path,
        )

    def _on_save_table(self, _value=None):
        self._save_with_dialog("cluster table", "clusters.csv", "CSV (*.csv)", self.save_table_to)

    def _labels_to_save(self):
        """The selected Labels layer if it is one of this plugin's results, else the last result's."""
        from napari.layers import Labels

        active = self._viewer.layers.selection.active
        if isinstance(active, Labels) and METADATA_KEY in active.metadata:
            return active
        layer = self._last_output
        if layer is None or layer not in self._viewer.layers:
            raise ValueError("no cluster result to save yet: press Run first (or select a result layer).")
        return layer

    def save_labels_to(self, path) -> bool:
        """Write the labels of the selected result layer (else the last result's) to ``path`` (.tif,
        .tiff or .zarr) in a worker, block by block (progress, Cancel; a temporary name renamed at
        the end). An existing file is replaced (the file dialog has asked), a folder never. Returns
        whether the worker started."""
        if self.worker is not None:
            self.set_status("already running: wait, or press Cancel.")
            return False
        try:
            layer = self._labels_to_save()
            path, overwrite = check_label_path(path)
        except Exception as err:  # reported in the status line, never raised to Qt
            self.report_error(err)
            return False
        cancel = threading.Event()  # the write runs in a thread of its own: Cancel stops it through this
        return self._jobs.start_task(
            save_labels_job,
            (as_dask(label_level0(layer)), path, overwrite, cancel),
            lambda out: self.set_status(
                f"labels of {layer.name!r} saved to {out}" if out else "cancelled: no labels were written."
            ),
            f"saving the labels of {layer.name!r} to {path.name} ...",
            cancel_event=cancel,
            cancelled="cancelled: no labels were written.",
        )

    def _on_save_labels(self, _value=None):
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(
            self.native, "Save labels", "labels.tif", "TIFF (*.tif *.tiff);;zarr (*.zarr)"
        )
        if path:
            self.save_labels_to(path)

    def _on_save_model(self, _value=None):
        self._save_with_dialog("model", "model.json", "JSON (*.json)", self.save_model_to)

    def _save_with_dialog(self, what: str, default: str, file_filter: str, save):
        """Ask for a file name, call ``save(path)``, report the outcome in the status line."""
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self.native, f"Save {what}", default, file_filter)
        if not path:
            return
        try:
            save(path)
        except Exception as err:  # reported in the status line, never raised to Qt
            self.report_error(err)
            return
        self.set_status(f"{what} saved to {path}")

    def _on_apply_model(self, _value=None):
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self.native, "Apply model", "", "JSON (*.json)")
        if path:
            self.apply_model_from(path)
