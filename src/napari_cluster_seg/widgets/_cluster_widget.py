"""The *Cluster segmentation* dock widget: reads layers, runs the core in a worker, writes Labels."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    Select,
    SpinBox,
)

from ..core import (
    NORMALIZATIONS,
    ClusterModel,
    Progress,
    cluster_table,
    iter_cluster_image,
    iter_scan_n_clusters,
    warm_up,
    write_table_csv,
)
from ._compare import CompareSection
from ._features import FeatureSection
from ._layers import layer_data, output_name, result_metadata, transform_kwargs
from ._state import Lifetime, ResultLayers, Source

if TYPE_CHECKING:  # pragma: no cover
    import napari

METHOD_CHOICES = [("K-means", "kmeans"), ("Agglomerative", "agglomerative"), ("Divisive", "divisive")]
LINKAGE_CHOICES = ["ward", "complete", "average", "single"]
NORMALIZE_CHOICES = [
    ("min-max", "minmax"),
    ("z-score", "zscore"),
    ("percentile clip (1-99%)", "percentile"),
    ("none", "none"),
]
assert {v for _, v in NORMALIZE_CHOICES} == set(NORMALIZATIONS)


@dataclass
class Job:
    """Everything a run needs, captured on the main thread when Run is pressed."""

    arrays: list  # layer data (possibly lazy), one per channel layer
    options: dict
    source: Source  # the layers and data objects the result is computed from
    method: str
    layer_kwargs: dict = field(default_factory=dict)
    new_layer: bool = False
    signature: tuple = ()  # the settings apart from k: a change of k alone re-cuts a hierarchy

    @property
    def source_name(self) -> str:
        return self.source.name


def _job_image(job: Job):
    """The job's image, not loaded: the core checks the memory a run needs (for its path and
    options) before it loads a lazy array. Several channel layers are stacked, lazily when any
    of them is lazy (dask comes with napari)."""
    arrays = job.arrays
    if len(arrays) == 1:
        return arrays[0]
    if all(isinstance(a, np.ndarray) for a in arrays):
        return np.stack(arrays, axis=-1)
    import dask.array as da  # only for lazy layers

    return da.stack([da.asarray(a) for a in arrays], axis=-1)


def run_job(job: Job):
    """Worker body (generator): load the data, cluster it, return the result."""
    return (yield from iter_cluster_image(_job_image(job), **job.options))


def scan_job(job: Job, k_max: int):
    """Worker body (generator): score k = 2..k_max with the job's settings."""
    # k is what is scanned (iter_scan_n_clusters ignores n_clusters; clean-up does not change scores)
    return (yield from iter_scan_n_clusters(_job_image(job), k_max, **job.options))


def apply_job(job: Job, path):
    """Worker body: read the model file at ``path`` and label the job's image with it."""
    yield Progress("reading the model file", 0.0)
    model = ClusterModel.load(path)
    yield Progress("applying the model", 0.5)
    return model.apply(
        _job_image(job),
        channel_axis=job.options["channel_axis"],
        rgb=job.options["rgb"],
        time_axis=job.options["time_axis"],
    )


def _axis_choice_list(layer) -> list:
    choices: list[tuple[str, Any]] = [("none", None)]
    if layer is not None and not getattr(layer, "rgb", False):
        labels = getattr(layer, "axis_labels", None) or [str(i) for i in range(layer.ndim)]
        choices += [(f"axis {i} ({labels[i]})", i) for i in range(layer.ndim)]
    return choices


class ClusterSegWidget(Container):
    """Cluster the pixels of an Image layer into a Labels layer.

    Controls (also for scripts and tests): ``image``, ``method``,
    ``linkage``, ``connected``, ``n_clusters``, ``channel_axis``, ``extra_channels``,
    ``time_axis``, ``normalize``, ``smoothing``, ``fit_stride``, ``seed``,
    ``feature_section`` (features preset, colour space, filters, scales,
    spatial weight, clean-up), ``new_layer``, ``run``, ``cancel``, ``k_max``
    and ``suggest_k`` (docked plot ``k_plot``, scores ``last_scan``),
    ``save_table``, ``save_model`` / ``apply_model`` (``save_model_to(path)``,
    ``apply_model_from(path)``), and for comparisons ``compare_a``,
    ``compare_b``, ``compare`` (heat map ``comparison.heatmap``). The running
    worker is ``widget.worker`` (None when idle); the last result is
    ``widget.last_result``.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = viewer
        self.worker = None
        self.last_result = None
        self.dendrogram_widget = None
        self.k_plot = None
        self.last_scan = None
        self._scan_title = ""
        self._last_output = None
        self._results = ResultLayers()  # result layers by image layer and kind, with edit detection
        self._live = None  # (job, result, layer) of the last hierarchical result, for live re-cuts
        # no worker callback touches the widget once the viewer's window (and so the widget) is gone
        self._lifetime = Lifetime(self.native, on_end=self._stop_worker)

        self.image = ComboBox(label="image", choices=self._image_choices, nullable=False)
        self.channel_axis = ComboBox(label="channel axis", choices=self._axis_choices)
        self.extra_channels = Select(label="more channels", choices=self._extra_channel_choices)
        self.extra_channels.tooltip = (
            "Other single-channel Image layers of the same shape, clustered together with the image "
            "as channels of one multichannel image."
        )
        self.time_axis = ComboBox(label="time axis", choices=self._axis_choices)
        self.time_axis.tooltip = "One model for all frames; smoothing does not cross frames."
        self.method = ComboBox(label="method", choices=METHOD_CHOICES, value="kmeans")
        self.linkage = ComboBox(label="linkage", choices=LINKAGE_CHOICES, value="ward")
        self.connected = CheckBox(text="connected regions", value=False)
        self.connected.tooltip = (
            "Clusters are contiguous regions (pixels, or superpixels on large images, merged only with "
            "touching ones) instead of classes of similar pixels anywhere in the image."
        )
        self.n_clusters = SpinBox(label="clusters", value=3, min=2, max=255)
        self.normalize = ComboBox(label="normalise", choices=NORMALIZE_CHOICES, value="minmax")
        self.smoothing = FloatSpinBox(label="smoothing σ (px)", value=0.0, min=0.0, max=50.0, step=0.5)
        self.fit_stride = SpinBox(label="fit on every n-th pixel", value=1, min=1, max=64)
        self.fit_stride.tooltip = (
            "Fit the clusters on a reduced image (every n-th pixel along each spatial axis), "
            "then label every pixel at full resolution."
        )
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.feature_section = FeatureSection(self._set_smoothing_and_normalize)
        self.new_layer = CheckBox(text="new layer", value=False)
        self.new_layer.tooltip = "Add a new Labels layer instead of replacing this method's last result."
        self.run = PushButton(text="Run")
        self.cancel = PushButton(text="Cancel", enabled=False)
        self.save_table = PushButton(text="Save cluster table (CSV)...")
        self.save_table.tooltip = (
            "Per-cluster pixel counts, area/volume and channel means of the last result."
        )
        self.progress = ProgressBar(label="progress", value=0, min=0, max=100, visible=False)
        self.status = Label(label="status", value="")

        self.k_max = SpinBox(label="suggest k up to", value=10, min=3, max=50)
        self.suggest_k = PushButton(text="Suggest k")
        self.suggest_k.tooltip = (
            "Score k = 2..K with the current settings (sum of squares, silhouette, Calinski-Harabasz) "
            "in a docked plot; click a point there to choose k."
        )
        self.save_model = PushButton(text="Save model...")
        self.save_model.tooltip = "Save the last result's fitted model (JSON) to label other images later."
        self.apply_model = PushButton(text="Apply model to image...")
        self.apply_model.tooltip = (
            "Label the chosen image (every frame of a time series) with a saved model, without refitting."
        )
        self.comparison = CompareSection(viewer, self._report_error)
        self.comparison.guard = self._lifetime.guard

        self.extend(
            [
                self.image,
                self.channel_axis,
                self.extra_channels,
                self.time_axis,
                self.method,
                self.linkage,
                self.connected,
                self.n_clusters,
                self.normalize,
                self.smoothing,
                self.fit_stride,
                self.seed,
                self.feature_section,
                self.new_layer,
                Container(widgets=[self.run, self.cancel], layout="horizontal", labels=False),
                self.progress,
                self.status,
                Container(widgets=[self.k_max, self.suggest_k], layout="horizontal", labels=True),
                self.save_table,
                Container(widgets=[self.save_model, self.apply_model], layout="horizontal", labels=False),
                self.comparison,
            ]
        )
        self.n_clusters.changed.connect(self._on_k_changed)
        self.method.changed.connect(self._on_method)
        self.image.changed.connect(self._on_image)
        self.run.clicked.connect(self._on_run)
        self.cancel.clicked.connect(self._on_cancel)
        self.save_table.clicked.connect(self._on_save_table)
        self.suggest_k.clicked.connect(self._on_suggest_k)
        self.save_model.clicked.connect(self._on_save_model)
        self.apply_model.clicked.connect(self._on_apply_model)
        for event in (
            viewer.layers.events.inserted,
            viewer.layers.events.removed,
            viewer.layers.events.reordered,
        ):
            event.connect(self._refresh_choices)
        viewer.layers.events.removed.connect(self._forget_layer)
        self.extra_channels.native.setMaximumHeight(70)
        self.status.native.setWordWrap(True)
        self._on_method()
        self._on_image()
        # import what the computations load lazily while the user picks options: the first Run
        # then starts at once instead of waiting ~1.5 s for scikit-learn and friends
        self.warm_up_thread = threading.Thread(target=warm_up, name="napari-cluster-seg warm-up", daemon=True)
        self.warm_up_thread.start()

    # ----------------------------------------------------------------- choices
    def _image_layers(self):
        from napari.layers import Image

        return [layer for layer in self._viewer.layers if isinstance(layer, Image)]

    def _image_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self._image_layers()]

    def _axis_choices(self, _widget=None):
        return _axis_choice_list(self.image.value if hasattr(self, "image") else None)

    def _extra_channel_choices(self, _widget=None):
        primary = self.image.value if hasattr(self, "image") else None
        return [
            (layer.name, layer) for layer in self._image_layers() if layer is not primary and not layer.rgb
        ]

    # compare section (kept as attributes of the widget for scripts and tests)
    compare_a = property(lambda self: self.comparison.compare_a)
    compare_b = property(lambda self: self.comparison.compare_b)
    compare = property(lambda self: self.comparison.compare)
    compare_result = property(lambda self: self.comparison.compare_result)
    compare_worker = property(lambda self: self.comparison.worker)
    last_comparison = property(lambda self: self.comparison.last_comparison)

    def _refresh_choices(self, _event=None):
        self.reset_choices()
        self._on_image()

    def _on_method(self, _value=None):
        self.linkage.visible = self.method.value == "agglomerative"
        self.connected.visible = self.method.value != "kmeans"

    def _on_image(self, _value=None):
        for combo in (self.channel_axis, self.time_axis, self.extra_channels):
            combo.reset_choices()
        layer = self.image.value
        rgb = layer is not None and layer.rgb
        self.channel_axis.enabled = not rgb
        self.extra_channels.enabled = not rgb
        self.feature_section.set_rgb(rgb)

    # --------------------------------------------------------------------- run
    def _set_status(self, text: str, *, error: bool = False):
        self.status.value = text
        self.status.native.setStyleSheet("color: #ff6060;" if error else "")

    def _collect(self) -> Job:
        layer = self.image.value
        if layer is None:
            raise ValueError("no Image layer selected: open an image (File > Open Sample) and choose it.")
        channel_axis = self.channel_axis.value
        extras = list(self.extra_channels.value or [])
        arrays = [layer_data(layer)]
        if extras:
            if channel_axis is not None:
                raise ValueError("choose either a channel axis or more channel layers, not both.")
            for extra in extras:
                if tuple(extra.data.shape) != tuple(arrays[0].shape):
                    raise ValueError(
                        f"layer {extra.name!r} has shape {tuple(extra.data.shape)} but {layer.name!r} has "
                        f"{tuple(arrays[0].shape)}; channel layers must have the same shape."
                    )
                arrays.append(layer_data(extra))
            channel_axis = -1
        method = self.method.value
        options = self._options(layer, channel_axis)
        drop = self.channel_axis.value if (not extras and not layer.rgb) else None
        return Job(
            signature=self._signature(layer, extras, options),
            arrays=arrays,
            options=options,
            source=Source.of([layer, *extras], arrays),
            method=method,
            layer_kwargs=transform_kwargs(layer, drop_axis=drop),
            new_layer=bool(self.new_layer.value),
        )

    @staticmethod
    def _signature(layer, extras, options) -> tuple:
        settings = {key: value for key, value in options.items() if key != "n_clusters"}
        if settings["method"] != "agglomerative":
            settings.pop("linkage")
        # weak references compare equal while they refer to the same live layer, never after it is freed
        layers = (weakref.ref(layer), tuple(weakref.ref(extra) for extra in extras))
        return (*layers, tuple(sorted(settings.items())))

    def _set_smoothing_and_normalize(self, smoothing: float, normalize: str):
        self.smoothing.value = smoothing
        self.normalize.value = normalize

    @staticmethod
    def _spacing(layer, channel_axis, time_axis, n_extra: int) -> tuple:
        """Pixel size along the spatial axes of the clustered image (the layer's scale)."""
        drop = {time_axis} | ({channel_axis} if channel_axis is not None and n_extra == 0 else set())
        return tuple(float(abs(s)) for ax, s in enumerate(layer.scale) if ax not in drop)

    def _options(self, layer, channel_axis) -> dict:
        features = self.feature_section.options()
        if features["filters"] or features["spatial_weight"] > 0:
            extras = len(self.extra_channels.value or [])
            features["spacing"] = self._spacing(layer, channel_axis, self.time_axis.value, extras)
        return {
            **features,
            "n_clusters": int(self.n_clusters.value),
            "method": self.method.value,
            "linkage": self.linkage.value,
            "connected": bool(self.connected.value) and self.method.value != "kmeans",
            "rgb": bool(layer.rgb),
            "channel_axis": None if layer.rgb else channel_axis,
            "time_axis": self.time_axis.value,
            "normalize": self.normalize.value,
            "smoothing": float(self.smoothing.value),
            "fit_stride": int(self.fit_stride.value),
            "random_state": int(self.seed.value),
        }

    def _on_run(self, _value=None):
        self._start(run_job, self._on_result, "clustering")

    def _start(self, body, on_done, what: str, *args) -> bool:
        """Run ``body(job, *args)`` for the current settings in a worker; ``on_done(job, value)``."""
        if self.worker is not None:
            self._set_status("already running: wait, or press Cancel.")
            return False
        try:
            job = self._collect()
        except Exception as err:  # reported in the status line, never raised to Qt
            self._report_error(err)
            return False
        from napari.qt.threading import create_worker

        warm_up_thread = self.warm_up_thread

        def after_warm_up(*body_args):
            # never import in two threads of ours at once (concurrent imports of modules that import
            # each other can see each other half-initialised): the first job waits for the warm-up
            warm_up_thread.join()
            return (yield from body(*body_args))

        # Errors are reported by the widget itself (status line and a warning notification).
        worker = create_worker(
            after_warm_up, job, *args, _progress={"desc": "Cluster segmentation"}, _ignore_errors=True
        )
        guard = self._lifetime.guard  # nothing is shown once the viewer was closed
        worker.yielded.connect(guard(self._on_progress))
        worker.returned.connect(guard(lambda value: on_done(job, value)))
        worker.errored.connect(guard(self._report_error))
        worker.aborted.connect(guard(lambda: self._set_status("cancelled: earlier results are unchanged.")))
        worker.finished.connect(guard(self._on_finished))
        self.worker = worker
        self._set_busy(True)
        self.progress.value = 0
        self._set_status(f"{what} {job.source_name!r} ...")
        worker.start()
        return True

    def _on_progress(self, step):
        self.progress.value = int(round(100 * step.fraction))
        self._set_status(step.stage)
        pbar = getattr(self.worker, "pbar", None)
        if pbar is not None:
            pbar.set_description(f"Cluster segmentation: {step.stage}")

    def _on_cancel(self, _value=None):
        if self.worker is not None:
            self._set_status("cancelling ...")
            self.worker.quit()

    def _stop_worker(self):
        """The widget is gone (viewer closed): stop the run at its next step and stop listening to
        the viewer's layers (the viewer model can outlive its window), touching no widget."""
        if self.worker is not None:
            self.worker.quit()
        layers = self._viewer.layers.events
        for event in (layers.inserted, layers.removed, layers.reordered):
            event.disconnect(self._refresh_choices)
        layers.removed.disconnect(self._forget_layer)
        self._set_live(None)  # disconnects the live result's image data events

    def _on_finished(self):
        self.worker = None
        self._set_busy(False)

    def _set_busy(self, busy: bool):
        """While a job runs: the buttons that start jobs off, Cancel and the progress bar on."""
        for button in (self.run, self.suggest_k, self.apply_model):
            button.enabled = not busy
        self.cancel.enabled = busy
        self.progress.visible = busy

    def _report_error(self, err):
        """Any exception (of a worker or a handler) as an error in the status line and a notification."""
        message = str(err) if type(err) in (ValueError, TypeError) else f"{type(err).__name__}: {err}"
        self._set_status(message, error=True)
        from napari.utils.notifications import show_warning

        show_warning(f"Cluster segmentation: {message}")

    def _on_result(self, job: Job, result, kind: str | None = None):
        kind = job.method if kind is None else kind
        problem = job.source.problem(self._viewer.layers)
        if problem is not None:  # the result would not fit the image any more
            self._set_status(f"{problem} during the run, so its result was dropped: press Run again.")
            return
        self.last_result = result
        target = None if job.new_layer else self._results.latest(job.source.layer, kind)
        layer, note = self._write_result(job, kind, result, target)
        self._last_output = layer
        self.comparison.preselect(layer)
        self._report_result(result, layer, note)
        live = result.is_hierarchical and kind == job.method
        self._set_live((replace(job, arrays=[]), result, layer) if live else None)
        if live:
            self._show_dendrogram(result, layer)

    def _write_result(self, job: Job, kind: str, result, target):
        """Write ``result`` into ``target`` if it is this plugin's unedited result layer of the same
        shape, else into a new layer above the image; returns (layer, note for the status line)."""
        from napari.layers import Labels

        reason = self._results.why_not_reusable(target, result.labels.shape, self._viewer.layers)
        metadata = result_metadata(job.source_name, result)
        if reason is None:
            layer = target
            layer.data = result.labels
            layer.metadata = {**layer.metadata, **metadata}
            self._set_features(layer, result)
        else:
            layer = Labels(
                result.labels, name=output_name(job.source_name, kind), metadata=metadata, **job.layer_kwargs
            )
            self._set_features(layer, result)
            self._viewer.layers.insert(self._source_index(job), layer)
        self._results.record(layer, job.source.layer, kind)
        if reason in ("edited", "renamed"):
            return layer, f"{target.name!r} was {reason}, so this result went to {layer.name!r}"
        return layer, ""

    def _forget_layer(self, event):
        """A layer left the viewer: forget it (as an image, a result layer and a live re-cut's source)."""
        layer = event.value
        self._results.forget(layer)
        if self._live is not None and (layer is self._live[2] or layer in self._live_sources()):
            self._set_live(None)

    @staticmethod
    def _set_features(layer, result):
        """Per-cluster table as the layer's features (napari's features table, clusters-plotter)."""
        layer.features = cluster_table(result, scale=layer.scale, units=layer.units)

    def save_table_to(self, path):
        """Write the features table of the last result layer to ``path`` (CSV)."""
        layer = self._last_output
        if layer is None or layer not in self._viewer.layers:
            raise ValueError("no cluster result to save yet: press Run first.")
        features = layer.features
        return write_table_csv({c: features[c].to_numpy() for c in features.columns}, path)

    def _report_result(self, result, layer, note: str = ""):
        self._set_status(
            (f"{note}. " if note else "")
            + f"{result.n_clusters} clusters in {layer.name!r}; pixels per label: "
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
            self._set_status(f"{problem}: press Run to cluster the new data (then k can be changed again).")

    def _live_target(self):
        """The (job, result, layer) that a change of k re-cuts, or None."""
        if self._live is None or self.worker is not None:
            return None
        job, result, layer = self._live
        image = self.image.value
        if layer not in self._viewer.layers or image is None:
            return None
        extras = list(self.extra_channels.value or [])
        channel_axis = -1 if extras else self.channel_axis.value
        current = self._signature(image, extras, self._options(image, channel_axis))
        if current != job.signature:
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
            self._report_error(err)
            return
        out, note = self._write_result(job, job.method, new, layer)  # a new layer if `layer` was edited
        self._set_live((job, new, out))
        self.last_result = new
        self._last_output = out
        self._report_result(new, out, note)
        self._show_dendrogram(new, out)

    def _show_dendrogram(self, result, layer):
        from ._dendrogram import DendrogramWidget

        if self.dendrogram_widget is None:
            self.dendrogram_widget = DendrogramWidget(self._viewer, on_pick=self._on_dendrogram_pick)
            window = getattr(self._viewer, "window", None)
            if window is not None:
                window.add_dock_widget(self.dendrogram_widget, name="Cluster dendrogram", area="right")
        linkage = f" ({result.params.linkage})" if result.params.method == "agglomerative" else ""
        self.dendrogram_widget.show_dendrogram(
            result.dendrogram(), layer.get_color, title=f"{layer.name}{linkage}, k = {result.n_clusters}"
        )

    def _on_dendrogram_pick(self, k: int):
        self.n_clusters.value = min(k, self.n_clusters.max)

    def _source_index(self, job: Job) -> int:
        source = job.source.layer
        for i, layer in enumerate(self._viewer.layers):
            if layer is source:
                return i + 1
        return len(self._viewer.layers)

    # ------------------------------------------------------------- suggest k
    def _on_suggest_k(self, _value=None):
        self._start(scan_job, self._on_scan, "scoring k = 2..K for", int(self.k_max.value))

    def _on_scan(self, job: Job, scan):
        from ._plots import KScanPlot

        self.last_scan = scan
        if self.k_plot is None:
            self.k_plot = KScanPlot(self._viewer, on_pick=self._on_k_pick)
            window = getattr(self._viewer, "window", None)
            if window is not None:
                window.add_dock_widget(self.k_plot, name="Choose k", area="right")
        method = dict((v, n) for n, v in METHOD_CHOICES)[job.method]
        self._scan_title = f"{job.source_name}, {method}"
        self.k_plot.show_scan(scan, current_k=int(self.n_clusters.value), title=self._scan_title)
        self._set_status(
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
            self._report_error(err)
            return
        self._set_status(f"{what} saved to {path}")

    def _on_apply_model(self, _value=None):
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self.native, "Apply model", "", "JSON (*.json)")
        if path:
            self.apply_model_from(path)
