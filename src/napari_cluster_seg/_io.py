"""Reading images and writing labels for the command line: TIFF / OME-TIFF, PNG / JPEG, zarr and
OME-Zarr (multiscale), lazily where the file allows.

Labels are written block by block (never the whole label image in memory) to a temporary name
next to the output and renamed at the end, so that a failed or interrupted write leaves nothing
behind; an existing output is replaced only with ``overwrite=True``.

OME-Zarr labels are written by :mod:`._ome`.

Needs tifffile, imageio (PNG / JPEG), zarr (v3 API) and dask: the ``large`` extra.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: TIFF files larger than this are read lazily (through tifffile's zarr store).
LAZY_TIFF_BYTES = 256 * 2**20
#: Size of the blocks images are read in when the file's chunks are smaller (whole numbers of
#: them) or larger than :data:`MAX_BLOCK_BYTES` (parts of them); chunks in between are kept.
BLOCK_BYTES = 4 * 2**20
MAX_BLOCK_BYTES = 64 * 2**20
#: Tile of the TIFF files written (a multiple of 16, as TIFF requires).
TIFF_TILE = 512
TIFF_SUFFIXES = (".tif", ".tiff")
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass
class Image:
    """An opened image: its pyramid levels (dask arrays, largest first) and what is known of it."""

    path: Path
    levels: list
    kind: str  # "tiff", "plain", "zarr" or "ome-zarr"
    rgb: bool = False
    channel_axis: int | None = None
    time_axis: int | None = None
    ome: dict = field(default_factory=dict)  # OME-Zarr: the multiscale metadata, the zarr format

    @property
    def data(self):
        return self.levels[0]


def _dask(arr):
    """``arr`` as a dask array whose blocks are the file's own chunks, or whole numbers of them
    of about :data:`BLOCK_BYTES` when they are smaller (a TIFF's strips of a few rows, a zarr
    chunked by 1 along an axis: a task per tiny chunk costs more than its work), or parts of
    about that size when larger than :data:`MAX_BLOCK_BYTES` (an untiled TIFF, an image in
    memory: a block, with its features, is held per worker)."""
    import dask.array as da
    from dask.array.core import normalize_chunks

    chunks = getattr(arr, "chunks", None)
    previous = chunks if isinstance(chunks, tuple) and len(chunks) == len(arr.shape) else None
    itemsize = np.dtype(arr.dtype).itemsize
    if previous is not None and BLOCK_BYTES <= int(np.prod(previous)) * itemsize <= MAX_BLOCK_BYTES:
        return da.from_array(arr, chunks=previous)
    chunks = normalize_chunks(
        "auto", arr.shape, limit=BLOCK_BYTES, dtype=np.dtype(arr.dtype), previous_chunks=previous
    )
    return da.from_array(arr, chunks=chunks)


def _multiscales(attrs: dict):
    """The OME-NGFF multiscales entry of a group's attributes (0.4: top level; 0.5: under "ome")."""
    if "multiscales" in attrs:
        return attrs["multiscales"][0], False
    if "ome" in attrs and "multiscales" in attrs["ome"]:
        return attrs["ome"]["multiscales"][0], True
    return None, False


def read_image(path, pixels: bool = True) -> Image:
    """Open ``path`` (TIFF, OME-TIFF, PNG, JPEG, zarr array or OME-Zarr image) without reading its
    pixels where the format allows it (zarr, large TIFF).

    ``pixels=False``: only check that the file opens (its header) and say what it is; TIFF, PNG
    and JPEG images then have no ``levels`` (a batch is checked before it is read one at a time).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist; check the file name.")
    name = path.name.lower()
    if path.is_dir() or name.endswith(".zarr"):
        return _read_zarr(path)
    if name.endswith(TIFF_SUFFIXES):
        with _unreadable(path, "TIFF"):
            return _read_tiff(path) if pixels else _peek(path, "tiff")
    if name.endswith(PLAIN_SUFFIXES):
        with _unreadable(path, "PNG / JPEG"):
            return _read_plain(path) if pixels else _peek(path, "plain")
    raise ValueError(
        f"{path} is not a file type this command reads; give a TIFF (.tif, .tiff), PNG, JPEG or a "
        "zarr / OME-Zarr directory (.zarr)."
    )


@contextlib.contextmanager
def _unreadable(path: Path, kind: str):
    """The reading library's errors for a file it cannot read (any type: tifffile, imageio and Pillow
    raise struct.error, KeyError, ... for a damaged file), as a ValueError naming the file."""
    try:
        yield
    except Exception as err:
        raise ValueError(
            f"{path} could not be read as a {kind} file ({err.__class__.__name__}: {err}); check that it "
            "is a complete image of that type, or convert it."
        ) from None


def _peek(path: Path, kind: str) -> Image:
    """An image without pixels, after reading its header."""
    if kind == "tiff":
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tif.series[0]
    else:
        import imageio.v3 as iio

        iio.improps(path, plugin="pillow")  # PNG, JPEG, BMP, GIF (no search through every plugin)
    return Image(path, [], kind)


def _read_plain(path: Path) -> Image:
    import imageio.v3 as iio

    data = np.asarray(iio.imread(path))
    if data.ndim == 3 and data.shape[-1] == 2:  # grey and alpha: the grey (alpha is ignored, as in RGBA)
        data = data[..., 0]
    rgb = data.ndim == 3 and data.shape[-1] in (3, 4)
    return Image(path, [_dask(data)], "plain", rgb=rgb)


def _read_tiff(path: Path) -> Image:
    import tifffile
    import zarr

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        shape, dtype, axes = series.shape, series.dtype, series.axes
        n_levels = len(series.levels)
    if int(np.prod(shape)) * np.dtype(dtype).itemsize > LAZY_TIFF_BYTES or n_levels > 1:
        store = tifffile.imread(path, aszarr=True)
        z = zarr.open(store, mode="r")
        if isinstance(z, zarr.Group):
            levels = [_dask(z[str(i)]) for i in range(n_levels)]
        else:
            levels = [_dask(z)]
    else:
        levels = [_dask(tifffile.imread(path))]
    rgb = axes.endswith("S") and shape[-1] in (3, 4)
    channel_axis = axes.index("C") if "C" in axes else None
    if channel_axis is None and "S" in axes and not rgb:  # samples that are not RGB: channels
        channel_axis = axes.index("S")
    time_axis = axes.index("T") if "T" in axes else None
    return Image(path, levels, "tiff", rgb=rgb, channel_axis=channel_axis, time_axis=time_axis)


def _read_zarr(path: Path) -> Image:
    import zarr

    try:
        z = zarr.open(str(path), mode="r")
    except Exception as err:  # zarr raises several types for "not a zarr store"
        raise ValueError(f"{path} is not a zarr array or group ({err}).") from None
    if isinstance(z, zarr.Array):
        return Image(path, [_dask(z)], "zarr")
    ms, nested = _multiscales(dict(z.attrs))
    if ms is None:
        arrays = sorted(name for name, _ in z.arrays())
        if len(arrays) != 1:
            raise ValueError(
                f"{path} is a zarr group without OME-Zarr multiscales metadata and with {len(arrays)} "
                "arrays; give the path of one array (e.g. image.zarr/0)."
            )
        return Image(path, [_dask(z[arrays[0]])], "zarr")
    with _unreadable(path, "OME-Zarr (its multiscales datasets)"):
        levels = [_dask(z[d["path"]]) for d in ms["datasets"]]
    axes = ms.get("axes", [])
    types = [a.get("type") if isinstance(a, dict) else None for a in axes]
    channel_axis = types.index("channel") if "channel" in types else None
    time_axis = types.index("time") if "time" in types else None
    version = z.attrs["ome"].get("version") if nested else ms.get("version")
    ome = {"multiscales": ms, "nested": nested, "zarr_format": z.metadata.zarr_format, "version": version}
    return Image(path, levels, "ome-zarr", channel_axis=channel_axis, time_axis=time_axis, ome=ome)


# ---------------------------------------------------------------- writing
def _is_folder_output(path: Path) -> bool:
    """Whether the output ``path`` is written as a folder (a zarr array or group) or a file."""
    return path.name.lower().endswith(".zarr")


def check_free(path, overwrite: bool, folder: bool | None = None, *, parent_made: bool = False) -> Path:
    """``path``, after checking that writing it replaces nothing (or ``overwrite`` allows it).

    ``folder``: whether the output is a folder (default: a name ending in ``.zarr``). Even with
    ``overwrite``, an existing folder is never replaced by a file, nor a file by a folder: that
    would delete what the user has (e.g. ``-o results/`` given for a model file).
    ``parent_made``: the writer creates the parent folder (an OME-Zarr image's ``labels``).
    """
    path = Path(path)
    folder = _is_folder_output(path) if folder is None else folder
    if path.exists() and not overwrite:
        raise ValueError(
            f"{path} exists already; choose another output, or pass overwrite=True (--overwrite on "
            "the command line) to replace it."
        )
    if path.exists() and path.is_dir() != folder:
        have, want = ("a folder", "file") if path.is_dir() else ("a file", "folder")
        raise ValueError(
            f"{path} is {have}, and this output is a {want}: it is not replaced, even with overwrite; "
            f"choose another output name."
        )
    if not (path.parent.is_dir() or parent_made and path.parent.parent.is_dir()):
        raise ValueError(f"the folder {path.parent} does not exist; create it first.")
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path, overwrite: bool = False, folder: bool | None = None):
    """Yield a temporary path next to ``path``; on success rename it to ``path`` (replacing an
    existing one only with ``overwrite``, and only one of the same kind: :func:`check_free`), on
    any error (or interruption) remove it."""
    path = check_free(path, overwrite, folder)
    tmp = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    old = None
    try:
        if path.exists():
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:  # the rename failed (or was interrupted): the old output back, no debris
        if old is not None and old.exists() and not path.exists():
            os.replace(old, path)
        _remove(tmp)
        raise
    if old is not None:
        _remove(old)


def _strips(labels, plane: tuple, height: int, compute):
    """The rows of one plane of ``labels`` in strips of ``height`` rows (the last one shorter),
    computed a band of blocks at a time, so that every block of the plane is computed once
    (not once per strip crossing it); holds a band and a strip."""
    rest, y = None, 0
    for h in labels.chunks[-2]:
        band = np.asarray(compute(labels[plane + (slice(y, y + h),)]))
        y += h
        rows = band if rest is None else np.concatenate([rest, band])
        while rows.shape[0] >= height:
            yield rows[:height]
            rows = rows[height:]
        rest = rows
    if rest is not None and rest.shape[0]:
        yield rest


def write_tiff(labels, path, *, overwrite=False, compute=None) -> Path:
    """Write a lazy label array to a tiled TIFF, one strip of tiles at a time (a plane at a time:
    blocks of more than one plane are computed once per plane; chunk leading axes by 1)."""
    import tifffile

    shape, dtype = labels.shape, labels.dtype
    tile = tuple(min(TIFF_TILE, -(-s // 16) * 16) for s in shape[-2:]) if len(shape) >= 2 else None
    compute = compute or _compute_one

    def tiles():
        planes = np.ndindex(*shape[:-2]) if len(shape) > 2 else [()]
        for plane in planes:
            for strip in _strips(labels, plane, tile[0], compute):
                for x in range(0, shape[-1], tile[1]):
                    yield strip[:, x : x + tile[1]]

    with atomic_path(path, overwrite) as tmp:
        if len(shape) < 2:
            tifffile.imwrite(tmp, np.asarray(compute(labels)))
        else:
            tifffile.imwrite(
                tmp,
                tiles(),
                shape=shape,
                dtype=dtype,
                tile=tile,
                bigtiff=True,
                compression="zlib",
                photometric="minisblack",
            )
    return Path(path)


def regular_chunks(labels):
    """``labels`` with regular chunks (zarr needs them: all equal but the last)."""
    size = labels.chunksize
    if all(len(set(c[:-1])) <= 1 and c[-1] <= c[0] for c in labels.chunks):
        return labels
    return labels.rechunk(size)


def _zarr_array(path, shape, chunks, dtype, zarr_format=3, attributes=None):
    import zarr

    return zarr.create_array(
        store=str(path),
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        zarr_format=zarr_format,
        fill_value=0,
        attributes=attributes or {},
    )


def compute_and_wait(*collections):
    """``dask.compute(*collections)`` on threads, on a pool of our own that is shut down (its
    running tasks finished, its queued ones dropped) before an error or an interruption propagates:
    dask's shared pool lets the running tasks go on writing blocks after the writer has removed its
    temporary output, which re-creates it."""
    import dask

    pool = ThreadPoolExecutor(max(1, os.cpu_count() or 1), thread_name_prefix="napari-cluster-seg io")
    try:
        return dask.compute(*collections, scheduler="threads", pool=pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _compute_one(x):
    return compute_and_wait(x)[0]


def store(labels, target, compute=None):
    """Write the lazy ``labels`` into ``target`` (a zarr array) block by block."""
    import dask.array as da

    job = da.store(labels, target, lock=False, compute=False)
    (compute or _compute_one)(job)


def write_zarr(labels, path, *, overwrite=False, compute=None) -> Path:
    """Write a lazy label array to a zarr (v3) array, block by block."""
    labels = regular_chunks(labels)
    with atomic_path(path, overwrite) as tmp:
        target = _zarr_array(tmp, labels.shape, labels.chunksize, labels.dtype)
        store(labels, target, compute)
    return Path(path)


def write_text(text: str, path, *, overwrite=False) -> Path:
    """Write a small text file (a model, a table) through a temporary name."""
    with atomic_path(path, overwrite) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def write_json(data: dict, path, *, overwrite=False) -> Path:
    return write_text(json.dumps(data), path, overwrite=overwrite)
