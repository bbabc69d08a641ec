"""The numba kernel builds: which exist (one table, :func:`_build_args`), which a run needs
(:func:`needs`), which numba's disk cache holds, and loading or compiling them.

A *build* is one kernel of :mod:`._kernels` compiled for one set of argument types; the wrappers
in :mod:`._accel` call them. A run announces what it needs before it starts (the widget shows the
first-run compile as a progress stage); :func:`warm_up` loads what is cached and never compiles
unless asked.
"""

from __future__ import annotations

import numpy as np

from . import _accel
from ._accel import kernels


#: Kernel builds: name -> (kernel in ``_kernels``, tiny arguments of the types the wrappers of :mod:`._accel`
#: pass it; only their types matter). Several builds of one kernel differ in argument types.
def _build_args():
    z = np.zeros
    rgb, f2, f1, i1 = z((1, 3), np.uint8), z((1, 3)), z(1), z(1, np.int64)
    i3 = z((1, 1, 4), np.int64)
    grey_args = {}
    for name, dtype in (("8", np.uint8), ("16", np.uint16)):
        grey_args[f"count_grey{name}"] = ("count_grey", (z(1, dtype), z((1, 1), np.int64)))
        for lut_name, lut in (("", np.uint8), ("_i16", np.int16)):
            grey_args[f"lookup_grey{name}{lut_name}"] = ("lookup_grey", (z(1, dtype), z(1, lut), z(1, lut)))
    edge = z((2, 2), np.int64)[:, 0]  # a column of the edge list: not contiguous
    return {
        "count_rgb8": ("count_rgb8", (rgb, z(1, np.uint32))),
        "occupied_codes": ("occupied_codes", (z(1, np.uint32),)),
        "lookup_rgb8": ("lookup_rgb8", (rgb, z(1, np.uint8), z(1, np.uint8))),
        "lookup_rgb8_i16": ("lookup_rgb8", (rgb, z(1, np.int16), z(1, np.int16))),
        **{
            f"int_label_sums_u{bits}": ("int_label_sums", (z(1, np.int16), z((1, 3), t), 1))
            for bits, t in ((8, np.uint8), (16, np.uint16))
        },
        "rgb8_cells": ("rgb8_cells", (rgb, i3, z((1, 3, 256), np.int64))),
        "rgb8_candidates": ("rgb8_candidates", (i1, z((3, 1)), f2, 0.0, z((1, 1), np.int16), z(1, np.int16))),
        **{
            f"rgb8_assign{name}": (
                "rgb8_assign",
                (rgb, z((3, 1)), f2, z((1, 1), np.int16), z(1, np.int16), i3, z(1, t), z(1, t)),
            )
            for name, t in (("", np.uint8), ("_u16", np.uint16))
        },
        "gather_rgb8": ("gather_rgb8", (rgb, z(1, np.int32), z((1, 3), np.float32), z((1, 3), np.float32))),
        **grey_args,
        "lloyd_pass": ("lloyd_pass", (f2, f1, f2, z(1, np.intp))),
        "lloyd_pass_serial": ("lloyd_pass_serial", (f2, f1, f2, z(1, np.intp))),
        "group_sums": ("group_sums", (i1, f1, f2, 1)),
        "kmeans_1d_layer": ("kmeans_1d_layer", (f1, f1, f1, f1, 1, f1, z(1, np.intp))),
        "deviation_sums": ("deviation_sums", (i1, f1, f2, f1, 1)),
        "weighted_squares": ("weighted_squares", (f2, f1, f1)),
        "decode_codes": ("decode_codes", (i1, i1, f2)),
        "cell_codes": ("cell_codes", (f2, 1, f1, f1, i1)),
        "grid_group_sums": ("grid_group_sums", (f2, f1, 1, f1, f1, 1)),
        **_grid_builds(),
        "lookup_codes": ("lookup_grey", (z(1, np.int32), z(1, np.uint8), z(1, np.uint8))),
        "lookup_codes_i16": ("lookup_grey", (z(1, np.int32), z(1, np.int16), z(1, np.int16))),
        **{
            f"{kernel}_f{bits}": (kernel, (z((1, 3), t), z((1, 3), t), z(1, np.intp), z(0, t)))
            for kernel in ("nearest", "nearest_serial")
            for bits, t in ((32, np.float32), (64, np.float64))
        },
        "nn_chain": ("nn_chain", (z((1, 1)), f1, 0)),
        "smooth_first_axis": ("features.smooth_first_axis", (z((1, 1, 1), np.float32),) * 2 + (f1,)),
        "smooth_axis_inplace": ("features.smooth_axis_inplace", (z((1, 1, 1), np.float32), f1)),
        "ward_greedy": ("ward_greedy", (f2, f1, edge, edge)),
        "roots_after": ("roots_after", (z((1, 4)), 0, 0)),
    }


def _grid_builds():
    """The builds of the grid reduction's kernels (float32 and float64 rows): one-pass cell sums,
    the cells found first and summed into the occupied cells, and the labelling by cells."""
    z = np.zeros
    f2, f1, i1, codes = z((1, 3)), z(1), z(1, np.int64), z(1, np.int32)
    grid = (f1, f1, i1, f1, i1, f1, f1, z((1, 1), np.int64))  # _grid_args
    out = {}
    for bits, t in ((32, np.float32), (64, np.float64)):
        rows = z((1, 3), t)
        for kernel in ("cell_sums", "cell_sums_serial"):
            out[f"{kernel}_f{bits}"] = (kernel, (rows, *grid, f1, 1, f2, f1, z((1, 1, 1)), codes))
        out[f"grid_cells_f{bits}"] = ("grid_cells", (rows, *grid, codes, z(1, np.uint8)))
        out[f"coded_sums_f{bits}"] = ("coded_sums", (rows, codes, codes, f1, 1, f2, f1, z((1, 1, 1))))
        for lut_name, lut in (("", np.uint8), ("_i16", np.int16)):
            out[f"lookup_grid_f{bits}{lut_name}"] = ("lookup_grid", (rows, *grid, z(1, lut), z(1, lut)))
    return out


#: Seconds each kernel took to compile on a 2-core machine (numba 0.68), for the progress message.
COMPILE_SECONDS = {}
_BUILDS: dict | None = None


def _build(name):
    """(dispatcher, argument types) of the build ``name``."""
    global _BUILDS
    import numba  # optional kernels: numba may be missing or off

    if _BUILDS is None:
        _BUILDS = _build_args()
    kernel, args = _BUILDS[name]
    module = kernels()
    if kernel.startswith("features."):  # the feature path's kernels (Gaussian smoothing)
        from . import _feature_kernels as module  # optional kernels: numba may be missing or off

        kernel = kernel[len("features.") :]
    return getattr(module, kernel), tuple(numba.typeof(a) for a in args)


def needs(values, method="kmeans", connected=False, base=None, reduced=True, cells=False) -> list[str]:
    """The kernel builds a run on pixel rows ``values`` (n, c) with ``method`` calls (for the common
    argument types; others compile when first called): counting and labelling by the pixel type,
    the Lloyd loops (serial, and parallel for many rows) and the hierarchies' loops. ``reduced=False``:
    the rows are points of a reduction made elsewhere (a streamed fit), labelled by their grid cells.
    ``cells``: K-means on uint8 RGB rows starts from the colour cells (:mod:`.cells`)."""
    if kernels() is None:
        return []
    n, c = values.shape
    many = n >= _accel.PARALLEL_ROWS
    tree = method != "kmeans"
    out = []
    if cells:  # the colour cells first; the rest once enough cells are occupied (cell_fit_needs)
        return ["rgb8_cells"]
    if values.dtype == np.uint8 and c == 3 and not connected:
        out += ["count_rgb8", "occupied_codes"] if many else []
        out += ["lookup_rgb8_i16" if tree else "lookup_rgb8"]
    elif values.dtype in (np.uint8, np.uint16) and c == 1 and not connected:
        bits = 8 * values.dtype.itemsize
        out += [f"count_grey{bits}", f"lookup_grey{bits}" + ("_i16" if tree else "")]
    out += ["group_sums", "deviation_sums", "weighted_squares"]  # the clusters' statistics
    if base is not None and base.dtype in (np.uint8, np.uint16) and method == "kmeans" and not connected:
        out += [f"int_label_sums_u{8 * base.dtype.itemsize}"]  # the channel means under features
    if values.dtype.kind in "iu" and (c > 1 or values.dtype.itemsize > 2) and not connected:
        out += ["decode_codes"]  # the distinct colours of an exact reduction
    if connected:
        pixel_tree = method == "agglomerative" and n <= _accel.PARALLEL_ROWS
        return out + (["ward_greedy", "roots_after"] if pixel_tree else [])
    if values.dtype.kind == "f" or c > 3 or tree:
        out += ["cell_codes"]  # the grid reduction; the hierarchies' units
    if values.dtype in (np.float32, np.float64) and c <= 4 and not connected:
        bits = 8 * values.dtype.itemsize  # counting pixels into grid cells, labelling them
        if reduced:  # by the cells found first (grid_cells) or as they are summed (cell_sums)
            sums = [f"grid_cells_f{bits}", f"coded_sums_f{bits}"] if many else [f"cell_sums_serial_f{bits}"]
            out += [*sums, "lookup_codes_i16"]
            out += [] if tree else ["lookup_codes"]
        else:  # by finding each row's cell
            out += [f"lookup_grid_f{bits}_i16"] + ([] if tree else [f"lookup_grid_f{bits}"])
    if c > 4:  # many features: every pixel goes to its nearest centre
        out += ["nearest_f32" if many else "nearest_serial_f32"]
    if method == "kmeans" and c == 1:  # the optimal 1D K-means' dynamic programme
        out += ["kmeans_1d_layer"]
    if method == "divisive" or (method == "kmeans" and c > 1):  # one column: optimal 1D K-means
        out += ["lloyd_pass_serial"] + (["lloyd_pass"] if many and method == "kmeans" else [])
    if method == "kmeans" and c > 1 and n > 2**14:  # the coresets' grids (over 4 * SEED_POINTS points)
        out += ["grid_group_sums"]
    if method == "agglomerative":
        out += ["nn_chain", "roots_after"]
    return list(dict.fromkeys(out))


def cell_fit_needs(k: int) -> list[str]:
    """The builds K-means from the colour cells calls once they are counted: the fit on the cells
    (its seedings' coreset), the candidate centres and the passes over the pixels (labels of
    ``labels_dtype(k)``)."""
    if kernels() is None:
        return []
    assign = "rgb8_assign_u16" if k >= 256 else "rgb8_assign"
    return ["lloyd_pass_serial", "grid_group_sums", "rgb8_candidates", assign]


def smoothing_needs(smoothing: float, color_space: str = "rgb", n_pixels: int = 0) -> list[str]:
    """The kernel builds the pixels' preparation calls: Gaussian smoothing (``smoothing`` > 0, with
    or without features) and the colour conversion of a million pixels or more, colour by colour
    (``features.convert_color``); announced before the pixels are prepared."""
    if kernels() is None:
        return []
    out = ["smooth_first_axis", "smooth_axis_inplace"] if smoothing and smoothing > 0 else []
    if color_space != "rgb" and n_pixels >= 2**20:
        out += ["count_rgb8", "occupied_codes", "gather_rgb8"]
    return out


def _in_disk_cache(dispatcher, sig) -> bool:
    """Whether numba's disk cache holds ``dispatcher``'s code for ``sig`` (numba's own index; any
    surprise in numba's internals counts as no)."""
    try:
        cache = dispatcher._cache
        return cache._index_key(sig, dispatcher.targetctx.codegen()) in cache._cache_file._load_index()
    except Exception:  # noqa: BLE001 - a private API: no means "will compile", which is only slower
        return False


def pending(builds) -> list[str]:
    """The builds of ``builds`` not loaded in this process yet."""
    if kernels() is None:
        return []
    out = []
    for name in builds:
        dispatcher, sig = _build(name)
        if sig not in dispatcher.overloads:
            out.append(name)
    return out


def to_compile(builds) -> list[str]:
    """The builds of ``builds`` that neither this process nor numba's disk cache has: they compile."""
    out = []
    for name in pending(builds):
        if not _in_disk_cache(*_build(name)):
            out.append(name)
    return out


def compile_seconds(builds) -> float:
    """About how long compiling ``builds`` takes (:data:`COMPILE_SECONDS`, 2 s for others)."""
    return sum(COMPILE_SECONDS.get(_build_args_of(name)[0], 2.0) for name in builds)


def _build_args_of(name):
    _build(name)
    return _BUILDS[name]


def prepare(build: str) -> None:
    """Load the build ``build`` from numba's disk cache, or compile it (and cache it)."""
    dispatcher, sig = _build(build)
    with _accel.KERNEL_LOCK:
        dispatcher.compile(sig)


def warm_up(compile: bool = False) -> None:
    """Load every build numba's disk cache holds (about 1 s in all); with ``compile``, compile the
    others too (about a minute). Without, nothing compiles: a run compiles the builds it needs
    (:func:`needs`) and says so."""
    if kernels() is None:
        return
    _build("nn_chain")
    for name in pending(list(_BUILDS)):
        if compile or _in_disk_cache(*_build(name)):
            prepare(name)
