"""The form of the main widget: its controls, their layout, and reading them into a :class:`Job`.

The essentials (image, method, clusters, Run / Cancel, progress and status) are always shown;
everything else sits in collapsible sections in a scroll area, so the widget stays narrow
(about 360 px) and short enough for a 1366x768 screen beside napari's own panels.
"""

from __future__ import annotations

import weakref

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
from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import QComboBox, QFrame, QScrollArea, QSizePolicy, QVBoxLayout, QWidget
from superqt import QCollapsible

from ..core import (
    CONNECTED_METHODS,
    LINKAGE_METHODS,
    LINKAGES,
    METHODS,
    NORMALIZATIONS,
    OPTION_RULES,
    Progress,
)
from ._compare import CompareSection
from ._features import FeatureSection
from ._jobs import Job
from ._layers import axis_choices, image_layers, layer_data, transform_kwargs
from ._lazy import is_lazy
from ._state import Source

#: Display names of the core's methods (the list itself is the core's: ``METHODS``).
METHOD_NAMES = {"kmeans": "K-means"}
METHOD_CHOICES = [(METHOD_NAMES.get(m, m.capitalize()), m) for m in METHODS]
LINKAGE_CHOICES = list(LINKAGES)
#: The widget offers at most 255 clusters (the core accepts up to ``OPTION_RULES["n_clusters"].high``):
#: up to 255 the labels are uint8 (half the memory of uint16 for the Labels layer and its copies in
#: the viewer), and more clusters than that are not a segmentation one reads by eye; the API and
#: the command line take more.
WIDGET_MAX_CLUSTERS = 255
NORMALIZE_CHOICES = [
    ("min-max", "minmax"),
    ("z-score", "zscore"),
    ("percentile clip (1-99%)", "percentile"),
    ("none", "none"),
]
assert {v for _, v in NORMALIZE_CHOICES} == set(NORMALIZATIONS)

#: Width the widget asks for (its minimum width is what its widest row needs, below ~380 px).
FORM_WIDTH = 360


def _row(*widgets) -> Container:
    return Container(widgets=list(widgets), layout="horizontal", labels=False)


class _ScrollArea(QScrollArea):
    """A vertical scroll area as wide as its content needs (never a horizontal scroll bar) that asks
    for :data:`FORM_WIDTH`."""

    def __init__(self, content: QWidget):
        super().__init__()
        self.setWidget(content)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)

    def minimumSizeHint(self) -> QSize:
        scroll_bar = self.verticalScrollBar().sizeHint().width()
        return QSize(self.widget().minimumSizeHint().width() + scroll_bar, 60)

    def sizeHint(self) -> QSize:
        return QSize(max(FORM_WIDTH, self.minimumSizeHint().width()), super().sizeHint().height())


class ClusterForm(Container):
    """The controls of the main widget (see :class:`~._cluster_widget.ClusterSegWidget` for their
    names) laid out as essentials and collapsible ``sections`` (title -> ``QCollapsible``); the
    status line and progress bar; and :meth:`collect`, which reads the controls into a :class:`Job`."""

    def __init__(self, viewer):
        super().__init__(labels=False)
        self._viewer = viewer
        self._make_essentials()
        self._make_input_controls()
        self._make_option_controls()
        self._make_output_controls()
        self.comparison = CompareSection(viewer, self.report_error)
        self.sections: dict[str, QCollapsible] = {}
        self._lay_out()
        self.method.changed.connect(self._on_method)
        self.image.changed.connect(self._on_image)
        self._on_method()
        self._on_image()

    # ------------------------------------------------------------------ controls
    def _make_essentials(self):
        self.image = ComboBox(label="image", choices=self._image_choices, nullable=False)
        self.method = ComboBox(label="method", choices=METHOD_CHOICES, value="kmeans")
        self.linkage = ComboBox(label="linkage", choices=LINKAGE_CHOICES, value="ward")
        self.connected = CheckBox(text="connected regions", value=False)
        self.connected.tooltip = (
            "Clusters are contiguous regions (pixels, or superpixels on large images, merged only with "
            "touching ones) instead of classes of similar pixels anywhere in the image."
        )
        k_rule = OPTION_RULES["n_clusters"]
        self.n_clusters = SpinBox(
            label="clusters", value=k_rule.default, min=k_rule.low, max=min(k_rule.high, WIDGET_MAX_CLUSTERS)
        )
        self.run = PushButton(text="Run")
        self.cancel = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", value=0, min=0, max=100, visible=False)
        self.status = Label(label="status", value="")
        self.status.native.setWordWrap(True)

    def _make_input_controls(self):
        self.channel_axis = ComboBox(label="channel axis", choices=self._axis_choices)
        self.extra_channels = Select(label="more channels", choices=self._extra_channel_choices)
        self.extra_channels.tooltip = (
            "Other single-channel Image layers of the same shape, clustered together with the image "
            "as channels of one multichannel image."
        )
        self.extra_channels.native.setMaximumHeight(70)
        self.time_axis = ComboBox(label="time axis", choices=self._axis_choices)
        self.time_axis.tooltip = "One model for all frames; smoothing does not cross frames."
        self.fit_level = ComboBox(label="fit on level", choices=self._level_choices)
        self.fit_level.tooltip = (
            "Multiscale images: the pyramid level the clusters are fitted on (0: all pixels, streamed "
            "block by block when the options allow it); the full-resolution labels are computed lazily "
            "through that model as napari shows them."
        )

    def _make_option_controls(self):
        self.normalize = ComboBox(label="normalise", choices=NORMALIZE_CHOICES, value="minmax")
        self.smoothing = FloatSpinBox(label="smoothing σ (px)", value=0.0, min=0.0, max=50.0, step=0.5)
        self.fit_stride = SpinBox(label="fit on every n-th pixel", value=1, min=1, max=64)
        self.fit_stride.tooltip = (
            "Fit the clusters on a reduced image (every n-th pixel along each spatial axis), "
            "then label every pixel at full resolution."
        )
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.feature_section = FeatureSection(self._set_smoothing_and_normalize)

    def _make_output_controls(self):
        self.new_layer = CheckBox(text="new layer", value=False)
        self.new_layer.tooltip = "Add a new Labels layer instead of replacing this method's last result."
        self.save_table = PushButton(text="Save cluster table (CSV)...")
        self.save_table.tooltip = (
            "Per-cluster pixel counts, area/volume and channel means of the last result."
        )
        self.save_model = PushButton(text="Save model...")
        self.save_model.tooltip = "Save the last result's fitted model (JSON) to label other images later."
        self.apply_model = PushButton(text="Apply model to image...")
        self.apply_model.tooltip = (
            "Label the chosen image (every frame of a time series) with a saved model, without refitting."
        )
        self.save_labels = PushButton(text="Save labels...")
        self.save_labels.tooltip = (
            "Write the selected result layer's labels (else the last result's) to a TIFF or zarr file, "
            "block by block (lazy labels are computed as they are written); Cancel stops it."
        )
        self.k_max = SpinBox(label="suggest k up to", value=10, min=3, max=50)
        self.suggest_k = PushButton(text="Suggest k")
        self.suggest_k.tooltip = (
            "Score k = 2..K with the current settings (sum of squares, silhouette, Calinski-Harabasz) "
            "in a docked plot; click a point there to choose k."
        )

    # -------------------------------------------------------------------- layout
    def _section_contents(self) -> list:
        """(title, magicgui container) of each collapsible section, top to bottom."""
        return [
            (
                "Input channels and time",
                [self.channel_axis, self.extra_channels, self.time_axis, self.fit_level],
            ),
            ("Choose k", [self.k_max, self.suggest_k]),
            ("Pre-processing", [self.normalize, self.smoothing, self.fit_stride, self.seed]),
            ("Features and clean-up", self.feature_section),
            (
                "Output and models",
                [
                    self.new_layer,
                    _row(self.save_table, self.save_labels),
                    _row(self.save_model, self.apply_model),
                ],
            ),
            ("Compare results", self.comparison),
        ]

    def _lay_out(self):
        """Essentials on top; the sections, collapsed, in a scroll area below them."""
        essentials = [self.image, self.method, self.linkage, self.connected, self.n_clusters]
        essentials = Container(widgets=essentials)
        self.extend([essentials, _row(self.run, self.cancel), self.progress, self.status])
        self._section_containers = []
        inner = QWidget()
        column = QVBoxLayout(inner)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        for title, container in self._section_contents():
            if isinstance(container, list):
                container = Container(widgets=container)
            container.margins = (4, 0, 0, 4)
            collapsible = QCollapsible(title, expandedIcon="▾", collapsedIcon="▸")
            collapsible.layout().setContentsMargins(0, 2, 0, 2)
            collapsible.addWidget(container.native)
            column.addWidget(collapsible)
            self.sections[title] = collapsible
            self._section_containers.append(container)
        column.addStretch(1)
        self.scroll_area = _ScrollArea(inner)
        self.native.layout().addWidget(self.scroll_area, 1)
        for combo in self.native.findChildren(QComboBox):  # long layer names must not widen the widget
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)

    def reset_choices(self, *_):
        """Refresh every drop-down (also those in the sections) from the viewer's layers."""
        super().reset_choices()
        for container in self._section_containers:
            container.reset_choices()

    # ------------------------------------------------------------------- choices
    def _image_choices(self, _widget=None):
        return [(layer.name, layer) for layer in image_layers(self._viewer)]

    def _axis_choices(self, _widget=None):
        return axis_choices(self.image.value if hasattr(self, "image") else None)

    def _level_choices(self, _widget=None):
        layer = self.image.value if hasattr(self, "image") else None
        if layer is None or not layer.multiscale:
            return [("0 (not multiscale)", 0)]
        return [(f"{i} ({' x '.join(map(str, level.shape))})", i) for i, level in enumerate(layer.data)]

    def _extra_channel_choices(self, _widget=None):
        primary = self.image.value if hasattr(self, "image") else None
        return [
            (layer.name, layer)
            for layer in image_layers(self._viewer)
            if layer is not primary and not layer.rgb
        ]

    def _on_method(self, _value=None):
        self.linkage.visible = self.method.value in LINKAGE_METHODS
        self.connected.visible = self.method.value in CONNECTED_METHODS

    def _on_image(self, _value=None):
        for combo in (self.channel_axis, self.time_axis, self.extra_channels, self.fit_level):
            combo.reset_choices()
        layer = self.image.value
        self.fit_level.enabled = layer is not None and layer.multiscale
        rgb = layer is not None and layer.rgb
        self.channel_axis.enabled = not rgb
        self.extra_channels.enabled = not rgb
        self.feature_section.set_rgb(rgb)

    def _set_smoothing_and_normalize(self, smoothing: float, normalize: str):
        self.smoothing.value = smoothing
        self.normalize.value = normalize

    # ---------------------------------------------------- status line (JobView)
    def set_status(self, text: str, *, error: bool = False):
        self.status.value = text
        self.status.native.setStyleSheet("color: #ff6060;" if error else "")

    def set_busy(self, busy: bool):
        """While a job runs: the buttons that start jobs off, Cancel and the progress bar on."""
        for button in (self.run, self.suggest_k, self.apply_model, self.save_labels):
            button.enabled = not busy
        self.cancel.enabled = busy
        self.progress.value = 0
        self.progress.visible = busy

    def show_progress(self, step: Progress):
        self.progress.value = int(round(100 * step.fraction))
        self.set_status(step.stage)

    def report_error(self, err):
        """Any exception (of a worker or a handler) as an error in the status line and a notification."""
        message = str(err) if type(err) in (ValueError, TypeError) else f"{type(err).__name__}: {err}"
        self.set_status(message, error=True)
        from napari.utils.notifications import show_warning

        show_warning(f"Cluster segmentation: {message}")

    # ------------------------------------------------------------ reading a run
    def collect(self) -> Job:
        """The settings of a run from the controls (ValueError naming the fix when they do not fit)."""
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
        options = self._options(layer, channel_axis)
        drop = self.channel_axis.value if (not extras and not layer.rgb) else None
        levels = tuple(layer.data) if layer.multiscale and not extras else ()
        return Job(
            lazy=bool(levels) or any(is_lazy(a) for a in arrays),
            levels=levels,
            fit_level=int(self.fit_level.value or 0) if levels else 0,
            signature=self._signature(layer, extras, options),
            arrays=arrays,
            options=options,
            source=Source.of([layer, *extras], arrays),
            method=self.method.value,
            layer_kwargs=transform_kwargs(layer, drop_axis=drop),
            new_layer=bool(self.new_layer.value),
        )

    def current_signature(self) -> tuple | None:
        """The signature (settings apart from k) a run would have now; None without an image."""
        image = self.image.value
        if image is None:
            return None
        extras = list(self.extra_channels.value or [])
        channel_axis = -1 if extras else self.channel_axis.value
        return self._signature(image, extras, self._options(image, channel_axis))

    @staticmethod
    def _signature(layer, extras, options) -> tuple:
        settings = {key: value for key, value in options.items() if key != "n_clusters"}
        if settings["method"] not in LINKAGE_METHODS:
            settings.pop("linkage")
        # weak references compare equal while they refer to the same live layer, never after it is freed
        layers = (weakref.ref(layer), tuple(weakref.ref(extra) for extra in extras))
        return (*layers, tuple(sorted(settings.items())))

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
            "connected": bool(self.connected.value) and self.method.value in CONNECTED_METHODS,
            "rgb": bool(layer.rgb),
            "channel_axis": None if layer.rgb else channel_axis,
            "time_axis": self.time_axis.value,
            "normalize": self.normalize.value,
            "smoothing": float(self.smoothing.value),
            "fit_stride": int(self.fit_stride.value),
            "random_state": int(self.seed.value),
        }
