"""Writing labels into an OME-Zarr image (its ``labels`` group, one label level per image level) and
reading the physical pixel size from its metadata, for the command line.

The label group is written through a temporary name next to its place (:func:`._io.atomic_path`),
block by block; needs zarr (v3 API) and dask: the ``large`` extra.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ._io import Image, atomic_path, regular_chunks, store

#: Name of the labels written into an OME-Zarr image's ``labels`` group.
OME_LABEL_NAME = "clusters"


def _drop_channel(transform: dict, ch) -> dict:
    """A coordinate transformation without the channel axis's entry."""
    t = dict(transform)
    for key in ("scale", "translation"):
        if key in t and ch is not None:
            t[key] = [v for i, v in enumerate(t[key]) if i != ch]
    return t


def _label_multiscales(image: Image, name: str, n_levels: int) -> dict:
    """The labels' multiscales entry: the image's axes and coordinate transformations without its
    channel axis; the datasets are the label arrays ``0``, ``1``, ... (one per image level)."""
    ms = image.ome["multiscales"]
    ch = image.channel_axis
    axes = [a for i, a in enumerate(ms.get("axes", [])) if i != ch]
    datasets = []
    for i, d in enumerate(ms["datasets"][:n_levels]):
        transforms = [_drop_channel(t, ch) for t in d.get("coordinateTransformations", [])]
        datasets.append({"path": str(i), "coordinateTransformations": transforms})
    out = {"name": name, "axes": axes, "datasets": datasets}
    if ms.get("coordinateTransformations"):
        out["coordinateTransformations"] = [_drop_channel(t, ch) for t in ms["coordinateTransformations"]]
    if "version" in ms:
        out["version"] = ms["version"]
    return out


def _scale_translation(image: Image, level: int, n: int):
    """Pixel size and offset of each of the ``n`` label axes of an image level (from its
    coordinate transformations; None when the metadata does not give them)."""
    datasets = image.ome["multiscales"]["datasets"]
    ch = image.channel_axis
    scale, shift = None, np.zeros(n)
    for t in datasets[level].get("coordinateTransformations", []):
        t = _drop_channel(t, ch)
        if t.get("type") == "scale" and len(t.get("scale", ())) == n:
            scale = np.asarray(t["scale"], np.float64)
        elif t.get("type") == "translation" and len(t.get("translation", ())) == n:
            shift = np.asarray(t["translation"], np.float64)
    if scale is None or not np.all(np.isfinite(scale) & (scale != 0)) or not np.all(np.isfinite(shift)):
        return None
    return scale, shift


def physical_size(image: Image):
    """Pixel size and unit along each axis of the labels (the image's axes without the channel
    axis), from an OME-Zarr image's level-0 scale and its axes' units; (None, None) when the
    image does not give a unit for every space axis (sizes are then in pixels)."""
    if image.kind != "ome-zarr":
        return None, None
    ms = image.ome["multiscales"]
    axes = [a for i, a in enumerate(ms.get("axes", [])) if i != image.channel_axis]
    n = len(image.data.shape) - (image.channel_axis is not None)
    st = _scale_translation(image, 0, n)
    if st is None or len(axes) != n or not all(isinstance(a, dict) for a in axes):
        return None, None
    scale = st[0]
    for t in ms.get("coordinateTransformations", []):  # the multiscale's own scale applies to every level
        t = _drop_channel(t, image.channel_axis)
        if t.get("type") == "scale" and len(t.get("scale", ())) == n:
            scale = scale * np.asarray(t["scale"], np.float64)
    space = [a for a in axes if a.get("type") == "space"]
    if not space or not all(isinstance(a.get("unit"), str) for a in space):
        return None, None
    units = [str(a.get("unit", "")) for a in axes]
    return tuple(abs(float(v)) for v in scale), units


def _level_indices(image: Image, level: int, shape0, shape) -> list:
    """For each axis, the level-0 index nearest (in physical coordinates: the levels' scale and
    translation) to every pixel of the label level ``level``, of ``shape``. Without usable
    transforms, the shapes' ratio (level 0 sampled at that stride)."""
    n = len(shape0)
    st0, st = _scale_translation(image, 0, n), _scale_translation(image, level, n)
    out = []
    for ax, (a, b) in enumerate(zip(shape0, shape)):
        if st0 is not None and st is not None:
            step, start = st[0][ax] / st0[0][ax], (st[1][ax] - st0[1][ax]) / st0[0][ax]
        else:
            step, start = a / b, 0.0
        nearest = np.floor(np.arange(b) * step + start + 0.5 + 1e-6)  # ties (in rounding error) up
        out.append(np.clip(nearest, 0, a - 1).astype(np.int64))
    return out


def _take(arr, axis: int, index: np.ndarray):
    """``arr`` at ``index`` along ``axis`` (a strided slice when the indices are evenly spaced)."""
    sl = [slice(None)] * arr.ndim
    steps = np.diff(index)
    if index.size == 1 or (steps[0] > 0 and np.all(steps == steps[0])):
        step = int(steps[0]) if index.size > 1 else 1
        sl[axis] = slice(int(index[0]), int(index[-1]) + 1, step)
    else:
        sl[axis] = index
    return arr[tuple(sl)]


def write_ome_labels(labels, image: Image, *, name=OME_LABEL_NAME, overwrite=False, compute=None) -> Path:
    """Write labels into the ``labels`` group of an OME-Zarr image, with a pyramid: every level of
    the image gets a label level of its shape, each pixel the label of the nearest level-0 pixel
    (by the levels' scale and translation, so any downsampling factor works). The group is written
    under a temporary name, then renamed and listed in ``labels``' metadata (with the OME-Zarr
    version of the image); nothing else of the image is touched."""
    import dask.array as da
    import zarr

    root = image.path
    fmt = image.ome["zarr_format"]
    labels_dir = root / "labels"
    created_dir = not labels_dir.exists()
    labels_dir.mkdir(exist_ok=True)
    out = labels_dir / name
    ch = image.channel_axis
    shapes = [tuple(s for i, s in enumerate(lv.shape) if i != ch) for lv in image.levels]
    labels = regular_chunks(labels)
    try:
        with atomic_path(out, overwrite, folder=True) as tmp:
            group = zarr.open_group(str(tmp), mode="w", zarr_format=fmt)
            target = group.create_array(
                "0", shape=labels.shape, chunks=labels.chunksize, dtype=labels.dtype, fill_value=0
            )
            store(labels, target, compute)
            for level, shape in enumerate(shapes[1:], 1):
                sampled = da.from_zarr(target)
                for ax, index in enumerate(_level_indices(image, level, shapes[0], shape)):
                    sampled = _take(sampled, ax, index)
                sampled = regular_chunks(sampled.rechunk(labels.chunksize))
                arr = group.create_array(
                    str(level), shape=shape, chunks=sampled.chunksize, dtype=labels.dtype, fill_value=0
                )
                store(sampled, arr, compute)
            ms = _label_multiscales(image, name, len(shapes))
            meta = {"multiscales": [ms], "image-label": {"source": {"image": "../../"}}}
            version = image.ome.get("version")
            if image.ome["nested"]:
                meta = {"ome": dict(meta, version=version or "0.5")}
            elif version:
                meta["image-label"]["version"] = version
            group.attrs.update(meta)
    except BaseException:
        if created_dir:
            shutil.rmtree(labels_dir, ignore_errors=True)
        raise
    _list_label(labels_dir, name, fmt, image.ome["nested"], image.ome.get("version"))
    return out


def _list_label(labels_dir: Path, name: str, fmt: int, nested: bool, version=None) -> None:
    """Add ``name`` to the ``labels`` group's list of label images (creating the group)."""
    import zarr

    group = zarr.open_group(str(labels_dir), mode="a", zarr_format=fmt)
    attrs = dict(group.attrs)
    listing = attrs.get("ome", {}) if nested else attrs
    names = list(listing.get("labels", []))
    if name not in names:
        names.append(name)
    if nested:
        version = listing.get("version", version or "0.5")
        group.attrs.update({"ome": dict(listing, labels=names, version=version)})
    else:
        group.attrs.update({"labels": names})
