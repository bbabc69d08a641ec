"""The widget's memory of layers, keyed by the layer objects themselves (never by ``id()``, which
Python gives to a new object once the old one is freed).

* :class:`Source`: the layers and data objects a result was computed from, to tell whether the
  result still fits them (every layer still in the viewer, its data the same object and shape,
  and in-memory data the same values).
* :class:`ResultLayers`: which result layer belongs to which image and kind, and what the plugin
  last wrote into each, to tell whether the user has edited it since (then it is never written to
  again). Removed layers are forgotten; a layer the plugin did not write is never its result layer.
"""

from __future__ import annotations

import weakref
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._layers import layer_data


def _ref(obj) -> Callable:
    """A weak reference to ``obj``, or (for objects that cannot have one) a function returning it."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


def checksum(data) -> tuple:
    """A fingerprint of an in-memory array's values (CRC-32 of its bytes, ~2 GB/s), dtype and shape.

    Lazy data is never read: a dask array is known by its ``name`` (a token of its graph), another
    lazy array by its identity; multiscale data (a sequence of levels) by its levels'."""
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return ("levels", *(checksum(level) for level in data))
    if not isinstance(data, np.ndarray) and hasattr(data, "shape") and hasattr(data, "dtype"):
        token = getattr(data, "name", None)
        token = token if isinstance(token, str) else id(data)
        return str(data.dtype), tuple(data.shape), type(data).__name__, token
    arr = np.ascontiguousarray(data)
    return str(arr.dtype), arr.shape, zlib.crc32(memoryview(arr.reshape(-1).view(np.uint8)))


@dataclass(frozen=True)
class Source:
    """The image layer and extra channel layers of a run, and their data objects at Run time."""

    name: str
    layers: tuple  # weak references: the image layer first
    data: tuple  # weak references to each layer's data object
    shapes: tuple
    digests: tuple = ()  # checksum of each in-memory (numpy) array, None for lazy data

    @classmethod
    def of(cls, layers, arrays) -> Source:
        return cls(
            layers[0].name,
            tuple(weakref.ref(layer) for layer in layers),
            tuple(_ref(a) for a in arrays),
            tuple(tuple(a.shape) for a in arrays),
            # in-memory data can change in place without an event (image.data[:] = ...; refresh());
            # lazy data is not read here (that would compute it)
            tuple(checksum(a) if isinstance(a, np.ndarray) else None for a in arrays),
        )

    @property
    def layer(self):
        """The image layer (None once it has been freed)."""
        return self.layers[0]()

    def problem(self, viewer_layers) -> str | None:
        """Why a result of this source no longer fits its layers; None while it does."""
        digests = self.digests or (None,) * len(self.layers)
        for layer_ref, data_ref, shape, digest in zip(self.layers, self.data, self.shapes, digests):
            layer = layer_ref()
            if layer is None or layer not in viewer_layers:
                return f"{self.name!r} was removed"
            data = layer_data(layer)
            if data is not data_ref() or tuple(data.shape) != shape:
                return f"the data of {layer.name!r} changed"
            if digest is not None and checksum(data) != digest:
                return f"the data of {layer.name!r} changed"
        return None


@dataclass(frozen=True)
class _Written:
    """What the plugin last put into a result layer."""

    name: str
    data: Callable  # weak reference to the data object
    digest: tuple


class ResultLayers:
    """Result layers by (image layer, kind), and whether each still holds what the plugin wrote."""

    def __init__(self):
        self._latest = weakref.WeakKeyDictionary()  # image layer -> {kind: weak ref to result layer}
        self._written = weakref.WeakKeyDictionary()  # result layer -> _Written

    def latest(self, image_layer, kind: str):
        """The result layer of ``kind`` last written for ``image_layer`` (or None)."""
        ref = self._latest.get(image_layer, {}).get(kind) if image_layer is not None else None
        return None if ref is None else ref()

    def record(self, layer, image_layer=None, kind: str | None = None):
        """Remember that the plugin has just written ``layer`` (for ``image_layer``'s ``kind``)."""
        self._written[layer] = _Written(layer.name, _ref(layer.data), checksum(layer.data))
        if image_layer is not None:
            self._latest.setdefault(image_layer, {})[kind] = weakref.ref(layer)

    def forget(self, layer):
        """Drop everything known about ``layer`` (removed from the viewer)."""
        self._latest.pop(layer, None)
        self._written.pop(layer, None)

    def edited(self, layer) -> bool:
        """True unless ``layer`` holds exactly what the plugin last wrote into it (painted, filled,
        erased, its data replaced or changed in place all count; so does a layer it never wrote)."""
        written = self._written.get(layer)
        data = layer.data
        return written is None or data is not written.data() or checksum(data) != written.digest

    def why_not_reusable(self, layer, shape, viewer_layers) -> str | None:
        """Why the plugin must not write a result of ``shape`` into ``layer``; None if it may."""
        if layer is None or layer not in self._written or layer not in viewer_layers:
            return "gone"
        if layer.name != self._written[layer].name:
            return "renamed"
        if self.edited(layer):
            return "edited"
        if tuple(layer.data.shape) != tuple(shape):
            return "of another shape"
        return None


class Lifetime:
    """Whether a widget's Qt object still exists (it goes with the viewer's window).

    Worker callbacks wrapped by :meth:`guard` do nothing once it is gone, so a run that ends after
    the viewer was closed never touches a deleted Qt widget; ``on_end()`` is called when it goes
    (to stop the running workers).
    """

    def __init__(self, qwidget, on_end: Callable[[], None] | None = None):
        self.alive = True
        self._on_end = on_end
        qwidget.destroyed.connect(self._end)

    def _end(self, *_):
        self.alive = False
        if self._on_end is not None:
            self._on_end()

    def guard(self, slot: Callable) -> Callable:
        """``slot`` as a callback that is skipped once the widget is gone."""

        def call(*args):
            if self.alive:
                return slot(*args)
            return None

        return call
