"""From an image array to pixel features: loading, validity, smoothing (normalisation: :mod:`.normalize`).

The functions here work on plain numpy arrays (a dask or other lazy array is
loaded by :func:`load_array` after a memory check that computes nothing) and
never modify their input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psutil

from . import _accel
from ._chunks import pool
from .features import convert_color, coordinate_features, feature_names, filter_features
from .memory import estimate_memory

#: Rec. 709 luma weights, used to order RGB clusters by brightness.
LUMA_WEIGHTS = np.array([0.2126, 0.7152, 0.0722])


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (``psutil.virtual_memory().available``)."""
    return int(psutil.virtual_memory().available)


def _format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def array_like(data):
    """``data`` itself if it describes its ``shape`` and ``dtype`` (numpy, dask, zarr, xarray, ...),
    else ``np.asarray(data)`` (lists and other sequences: nothing lazy to keep). Reads nothing.

    Raises
    ------
    ValueError
        If the shape is not known (a dask array with chunks of unknown size,
        e.g. after boolean indexing).
    """
    if not (hasattr(data, "shape") and hasattr(data, "dtype")):
        return np.asarray(data)
    shape = tuple(data.shape)
    unknown = [ax for ax, s in enumerate(shape) if not isinstance(s, (int, np.integer))]
    if unknown:
        raise ValueError(
            f"the image's shape {shape} is not known along axis {unknown[0]} (a dask array with chunks "
            "of unknown size, e.g. after boolean indexing); call data.compute_chunk_sizes() first, "
            "or pass a numpy array."
        )
    return data


def array_info(data) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an array-like (see :func:`array_like`), without computing a lazy array.

    Raises
    ------
    ValueError
        If the shape is not known.
    TypeError
        If the dtype is not a numpy dtype.
    """
    data = array_like(data)
    try:
        dtype = np.dtype(data.dtype)
    except TypeError:
        raise TypeError(
            f"the image's dtype {data.dtype!r} is not a numpy dtype; convert it to a numpy array first."
        ) from None
    return tuple(int(s) for s in data.shape), dtype


def _too_large(shape, dtype, needed, limit, what="needs about"):
    return ValueError(
        f"the image of shape {shape} ({dtype}) {what} {_format_bytes(needed)} of memory to "
        f"cluster, but only {_format_bytes(limit)} is available; crop it, open a lower "
        "resolution level, or cluster a few frames at a time (or raise max_bytes)."
    )


def load_array(data, *, max_bytes: int | None = None, params=None, mask=None) -> np.ndarray:
    """Return ``data`` as an in-memory numpy array, after checking that the run fits in memory.

    Nothing is computed (or read) before the check: the shape and dtype of a
    lazy array (dask, zarr, xarray, any object with ``shape`` and ``dtype``)
    are enough for :func:`~napari_cluster_seg.core.memory.estimate_memory`.

    Parameters
    ----------
    data : array-like
        A numpy array (returned as is), a lazy array (computed after the
        check; a dask array is written chunk by chunk into one numpy array),
        or a sequence (converted with ``np.asarray``).
    max_bytes : int, optional
        Most memory the run may add (the loaded image included, for a lazy
        one); default :func:`available_memory`.
    params : ClusterParams, optional
        The validated options of the run, so that the estimate follows the
        path they choose; default those of a K-means run on a grey image.
    mask : array of bool, optional
        The run's mask (a masked run copies the valid pixels).

    Raises
    ------
    ValueError
        If the run would not fit (naming the sizes and the fix), if the
        allocation fails anyway, or if a lazy array's shape is unknown.
    """
    data = array_like(data)
    shape, dtype = array_info(data)
    in_memory = isinstance(data, np.ndarray)
    needed = estimate_memory(
        shape,
        dtype,
        params,
        masked=mask is not None,
        in_memory=in_memory,
        contiguous=data.flags.c_contiguous if in_memory else True,
    )
    limit = available_memory() if max_bytes is None else int(max_bytes)
    if needed > limit:
        raise _too_large(shape, dtype, needed, limit)
    if in_memory:
        return data
    try:
        return _compute(data, shape, dtype)
    except MemoryError:
        raise _too_large(shape, dtype, needed, available_memory(), "could not be loaded: it needs") from None


def _compute(data, shape, dtype) -> np.ndarray:
    """A lazy array's values as a numpy array (a dask array: written block by block into one)."""
    if type(data).__module__.split(".")[0] == "dask" and hasattr(data, "store"):
        out = np.empty(shape, dtype)
        data.store(out, lock=False)
        return out
    if hasattr(data, "compute"):  # xarray and the like
        data = data.compute()
    return np.asarray(data)


def check_dtype(image: np.ndarray) -> np.ndarray:
    """Reject dtypes that have no meaningful ordering; turn booleans into uint8."""
    if image.dtype == bool:
        return image.view(np.uint8)
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(
            f"images of dtype {image.dtype} cannot be clustered; convert the image to an integer "
            "or floating-point type first (complex data: take its absolute value)."
        )
    return image


@dataclass
class PixelData:
    """The valid pixels of an image, one row per pixel, channels last.

    Attributes
    ----------
    values : ndarray, shape (n_valid, n_channels)
        Pixel values (input dtype when unsmoothed, float32 after smoothing);
        a view of the input where possible.
    shape : tuple of int
        Shape of the label image (the input's shape without its channel axis).
    valid : ndarray of bool or None
        Flat mask over ``shape`` of the pixels that take part; None when all do.
    time_axis : int or None
        Index of the time axis in ``shape``.
    ndim : int
        Dimensions of the input image (with its channel axis, if any).
    base : ndarray, shape (n_valid, n_channels) or None
        With features: the channel values behind them (else None: ``values``
        are the channel values).
    names : tuple of str or None
        Feature names (with features).
    n_coordinates : int
        Number of trailing spatial-coordinate features (scaled jointly, never
        normalised one by one).
    """

    values: np.ndarray
    shape: tuple
    valid: np.ndarray | None
    time_axis: int | None = None
    ndim: int = 2
    base: np.ndarray | None = None
    names: tuple | None = None
    n_coordinates: int = 0

    @property
    def base_values(self) -> np.ndarray:
        """The channel values (``values`` itself when no features are computed)."""
        return self.values if self.base is None else self.base

    @property
    def n_valid(self) -> int:
        return self.values.shape[0]

    @property
    def n_channels(self) -> int:
        return self.values.shape[1]


def _feature_kernels():
    """The compiled feature kernels, or None (numba missing or disabled)."""
    if not _accel.enabled():
        return None
    try:
        from . import _feature_kernels  # optional kernels: numba may be missing or off
    except ImportError:
        return None
    return _feature_kernels


def gaussian_weights(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """The 1D Gaussian kernel scipy.ndimage.gaussian_filter uses (radius ``int(truncate * sigma +
    0.5)``, the same float64 numbers)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return phi / phi.sum()


def _smooth_compiled(kernels, image_cl: np.ndarray, sigma: float, time_axis: int | None, out: np.ndarray):
    """Gaussian smoothing of every channel (last axis) along the spatial axes, compiled: the first
    axis from the input into ``out``, the others in place; scipy's numbers (see _feature_kernels)."""
    src = np.ascontiguousarray(image_cl, dtype=np.float32)
    shape = src.shape
    w = gaussian_weights(sigma)

    def along(arr, axis):  # (before, along, after) view of a C-contiguous array
        return arr.reshape(int(np.prod(shape[:axis])), shape[axis], -1)

    axes = [ax for ax in range(src.ndim - 1) if ax != time_axis]
    with _accel.KERNEL_LOCK:
        kernels.smooth_first_axis(along(src, axes[0]), along(out, axes[0]), w)
        for ax in axes[1:]:
            kernels.smooth_axis_inplace(along(out, ax), w)
    return out


def _beyond_float32(image_cl: np.ndarray, finite: np.ndarray) -> bool:
    """Whether float64 ``image_cl`` holds finite values that float32 cannot (one channel at a time)."""
    if image_cl.dtype != np.float64:
        return False  # every other dtype (int64 / uint64 too) is within float32's range
    limit = float(np.finfo(np.float32).max)
    for c in range(image_cl.shape[-1]):  # max and min: no temporary copy of the channel
        chan = image_cl[..., c]
        if (
            np.max(chan, where=finite, initial=-limit) > limit
            or np.min(chan, where=finite, initial=limit) < -limit
        ):
            return True
    return False


def _smooth(image_cl: np.ndarray, finite: np.ndarray, sigma: float, time_axis: int | None):
    """Gaussian smoothing along spatial axes, ignoring non-finite pixels (normalised convolution):
    float32, or float64 for float64 values beyond float32's range."""
    from scipy import ndimage  # heavy: loaded on first use (LAZY_IMPORTS)

    spatial_sigma = [0.0 if ax == time_axis else sigma for ax in range(image_cl.ndim - 1)]
    dtype = np.float64 if _beyond_float32(image_cl, finite) else np.float32
    out = np.empty(image_cl.shape, dtype)
    kernels = _feature_kernels()
    if (
        kernels is not None
        and dtype == np.float32
        and finite.all()
        and image_cl.ndim > 1
        and any(s > 0 for s in spatial_sigma)
    ):
        return _smooth_compiled(kernels, image_cl, sigma, time_axis, out)
    if finite.all():  # plain smoothing, channels in parallel (scipy releases the GIL)

        def one(c):
            out[..., c] = ndimage.gaussian_filter(
                image_cl[..., c].astype(dtype), spatial_sigma, mode="nearest"
            )

        list(pool().map(one, range(image_cl.shape[-1])))
        return out
    weight = finite.astype(np.float32)
    norm = ndimage.gaussian_filter(weight, spatial_sigma, mode="nearest")
    for c in range(image_cl.shape[-1]):
        chan = np.where(finite, image_cl[..., c], 0).astype(dtype, copy=False)
        smoothed = ndimage.gaussian_filter(chan * weight, spatial_sigma, mode="nearest")
        np.divide(smoothed, norm, out=out[..., c], where=norm > 0)
    return out


def channels_last(image: np.ndarray, channel_axis: int | None, rgb: bool) -> np.ndarray:
    """A view of ``image`` with its channels on a last axis (one for a grey image; RGBA loses alpha)."""
    image_cl = image[..., np.newaxis] if channel_axis is None else np.moveaxis(image, channel_axis, -1)
    if rgb:
        if image_cl.shape[-1] not in (3, 4):
            raise ValueError(
                f"rgb=True needs 3 (RGB) or 4 (RGBA) channels on the last axis, got "
                f"{image_cl.shape[-1]}; pass rgb=False and channel_axis for other channel counts."
            )
        image_cl = image_cl[..., :3]
    return image_cl


def pixel_data(
    image: np.ndarray,
    *,
    channel_axis: int | None,
    rgb: bool,
    time_axis: int | None,
    smoothing: float,
    mask: np.ndarray | None,
) -> PixelData:
    """Arrange an image's pixels as rows of channel values, dropping invalid pixels.

    A pixel is invalid (label 0) when any of its channels is NaN or infinite,
    or when ``mask`` is False there. For RGBA images the alpha channel is ignored.
    """
    image = check_dtype(image)
    image_cl = channels_last(image, channel_axis, rgb)
    if channel_axis is not None and time_axis is not None and time_axis > channel_axis:
        time_axis -= 1
    shape = image_cl.shape[:-1]
    if len(shape) == 0 or min(shape, default=0) == 0 or image_cl.shape[-1] == 0:
        raise ValueError(f"the image of shape {image.shape} is empty; pass an image with pixels.")

    finite = None
    if np.issubdtype(image_cl.dtype, np.floating) and not np.isfinite(image_cl).all():
        finite = np.isfinite(image_cl).all(axis=-1)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != shape:
            raise ValueError(
                f"mask has shape {mask.shape} but the image's pixels have shape {shape}; "
                "pass a mask of the image's shape without its channel axis."
            )
        mask = mask.astype(bool, copy=False)
        finite = mask if finite is None else finite & mask
    if finite is not None and not finite.any():
        raise ValueError(
            "no valid pixels: every pixel is NaN, infinite or masked out, so none can be clustered; "
            "check the image and the mask."
        )

    if smoothing > 0:
        fin = np.ones(shape, bool) if finite is None else finite
        values = _smooth(image_cl, fin, smoothing, time_axis).reshape(-1, image_cl.shape[-1])
    else:
        values = image_cl.reshape(-1, image_cl.shape[-1])
    valid = None
    if finite is not None and not finite.all():
        valid = finite.ravel()
        values = values[valid]
    return PixelData(values=values, shape=tuple(shape), valid=valid, time_axis=time_axis, ndim=image.ndim)


def pixels_for(
    image, *, channel_axis, rgb, time_axis, smoothing, mask, features=None, spacing=None
) -> PixelData:
    """The pixels a model works on: :func:`pixel_data`, then the features of ``features``, if any.

    With features, ``values`` holds the feature vectors (float32) and
    ``base`` the unsmoothed channel values (for cluster means and label order).
    """
    with_features = features is not None and features.active
    pix = pixel_data(
        image,
        channel_axis=channel_axis,
        rgb=rgb,
        time_axis=time_axis,
        smoothing=0.0 if with_features else smoothing,
        mask=mask,
    )
    if not with_features:
        return pix
    image_cl = channels_last(check_dtype(image), channel_axis, rgb)
    shape = pix.shape
    n_spatial = len(shape) - (pix.time_axis is not None)
    channels = _feature_channels(image_cl, features.color_space, pix.valid, shape)
    if features.color_space == "rgb":
        names = ["R", "G", "B"] if rgb else [str(c) for c in range(channels.shape[-1])]
    else:
        names = {"lab": ["L", "a", "b"], "hsv": ["Scos(H)", "Ssin(H)", "V"]}[features.color_space]
    all_names = feature_names(features, names, n_spatial)
    parts = _feature_parts(channels, features, pix, smoothing, spacing)
    values = _stack_columns(parts, int(np.prod(shape)))
    del parts
    if pix.valid is not None:
        values = values[pix.valid]
    _check_finite_features(values, all_names, pix.values)
    return PixelData(
        values=values,
        shape=shape,
        valid=pix.valid,
        time_axis=pix.time_axis,
        ndim=pix.ndim,
        base=pix.values,
        names=tuple(all_names),
        n_coordinates=n_spatial if features.spatial_weight > 0 else 0,
    )


def _feature_channels(image_cl, color_space, valid, shape) -> np.ndarray:
    """The channels features are computed from (colour-converted); invalid pixels filled with the
    channel's mean, since filters need numbers everywhere."""
    with np.errstate(over="ignore"):  # float64 values beyond float32's range: refused later, by name
        channels = convert_color(image_cl, color_space)
    if valid is not None:
        finite = valid.reshape(shape)
        channels = channels.astype(np.float32, copy=True)
        for c in range(channels.shape[-1]):
            chan = channels[..., c]
            ok = finite & np.isfinite(chan)
            chan[~ok] = chan[ok].mean() if ok.any() else 0.0
    return channels


def _feature_parts(channels, features, pix: PixelData, smoothing, spacing) -> list:
    """The blocks of feature columns, each shaped like the image: the (smoothed) channels, the
    filter responses and the coordinates."""
    parts = []
    if features.intensity:
        if smoothing > 0:
            fin = np.ones(pix.shape, bool) if pix.valid is None else pix.valid.reshape(pix.shape)
            parts.append(_smooth(channels, fin, smoothing, pix.time_axis))
        else:
            parts.append(channels.astype(np.float32, copy=False))
    if features.filters:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: refused later, by name
            parts.append(filter_features(channels, features, time_axis=pix.time_axis, spacing=spacing))
    if features.spatial_weight > 0:
        weight = features.spatial_weight
        parts.append(coordinate_features(pix.shape, time_axis=pix.time_axis, spacing=spacing, weight=weight))
    return parts


def _stack_columns(parts: list, n_pix: int) -> np.ndarray:
    """The blocks side by side as float32 rows of ``n_pix`` pixels. A single float32 block (the
    smoothed channels, say: always an array of this module's own) is those rows already."""
    if len(parts) == 1 and parts[0].dtype == np.float32 and parts[0].flags.c_contiguous:
        return parts[0].reshape(n_pix, -1)
    values = np.empty((n_pix, sum(p.shape[-1] for p in parts)), np.float32)
    col = 0
    with np.errstate(over="ignore"):  # float64 values beyond float32's range: refused later
        for part in parts:
            values[:, col : col + part.shape[-1]] = part.reshape(n_pix, -1)
            col += part.shape[-1]
    return values


def _check_finite_features(values: np.ndarray, names, base: np.ndarray) -> None:
    """ValueError naming the first feature that overflowed float32 (large finite pixel values:
    the structure tensor squares them, filters and smoothing add them up)."""
    bad = [i for i in range(values.shape[1]) if not np.isfinite(values[:, i]).all()]
    if not bad:
        return
    with np.errstate(over="ignore"):
        largest = float(np.max(np.abs(base.astype(np.float64)))) if base.size else 0.0
    raise ValueError(
        f"the feature {names[bad[0]]!r} overflows float32 on pixel values of magnitude up to {largest:.3g}; "
        "divide the image by a constant first (the normalised features do not depend on it), or "
        "leave that feature out."
    )


def scatter_valid(values: np.ndarray, shape: tuple, valid: np.ndarray | None, fill=0) -> np.ndarray:
    """Array of ``shape`` (plus ``values``' trailing axes) holding the rows ``values`` of the valid
    pixels (flat mask ``valid``; None: all) and ``fill`` elsewhere."""
    tail = values.shape[1:]
    if valid is None:
        return values.reshape(tuple(shape) + tail)
    out = np.full((valid.size,) + tail, fill, values.dtype)
    out[valid] = values
    return out.reshape(tuple(shape) + tail)


def downsample_mask(shape: tuple, stride: int, time_axis: int | None) -> np.ndarray:
    """Flat boolean mask selecting every ``stride``-th pixel along each non-time axis."""
    sel = np.zeros(shape, bool)
    index = tuple(slice(None) if ax == time_axis else slice(None, None, stride) for ax in range(len(shape)))
    sel[index] = True
    return sel.ravel()
