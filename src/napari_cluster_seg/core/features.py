"""Pixel features: colour spaces, multiscale filter responses and spatial coordinates.

Clustering raw intensities is no better than a threshold. The features here
let the clustering see colour as perceived (CIELAB), hue as an angle (HSV),
local structure at chosen scales (the filter bank that ilastik and APOC made
standard) and position (for more contiguous clusters).

For every channel of the (colour-converted) image, at every scale ``s``
(sigma in pixels along the finest axis; axes with a coarser ``spacing`` get
proportionally smaller sigmas):

=============  =====================================================  =========
name           response                                               features
=============  =====================================================  =========
``gaussian``   Gaussian smoothing                                      1
``gradient``   ``s * |grad G_s * I|`` (gradient magnitude)             1
``log``        ``-s**2 * laplace(G_s * I)`` (bright blobs positive)    1
``dog``        ``G_s * I - G_{1.6 s} * I`` (difference of Gaussians)  1
``structure``  eigenvalues of the structure tensor (inner scale 1,     ndim
               window ``s``), largest first
``hessian``    ``s**2 *`` eigenvalues of the Hessian, largest first    ndim
=============  =====================================================  =========

Derivative responses are scale-normalised (the powers of ``s``), so one
structure gives comparable values at every scale; the per-feature
normalisation of :func:`cluster_image` then removes what remains of units.
Spatial coordinates are the one exception: they are scaled together (in
physical units from ``spacing``), so that ``spatial_weight`` sets how much
position counts against the other features.

Filters run block by block along the first spatial axis (with a margin of
the widest kernel's support, about ``6.4 * s + 4`` pixels) and frame by frame
along a time axis, so their temporaries stay bounded; filtering never
crosses frames.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import _accel
from ._chunks import CHUNK, for_chunks, frame_slices

COLOR_SPACES = ("rgb", "lab", "hsv")
FILTERS = ("gaussian", "gradient", "log", "dog", "structure", "hessian")
#: The project's default feature settings (options of :func:`cluster_image`; the widget's
#: "default features" preset): for RGB images CIELAB colour, lightly smoothed; for grey and
#: multichannel images the lightly smoothed values plus a blob detector (Laplacian of Gaussian,
#: sigma 4 px: objects of roughly 8-16 px across). Both clip each feature to its 1-99 % range.
#: Measured on annotated nuclei images in ``benchmarks/quality.py``.
DEFAULT_FEATURES = {
    "grey": {"smoothing": 1.0, "filters": ("log",), "scales": (4.0,), "normalize": "percentile"},
    "rgb": {"color_space": "lab", "smoothing": 1.0, "normalize": "percentile"},
}
#: Pixels per block of filtering (along the first spatial axis, times the rest).
BLOCK_PIXELS = 2**22


@dataclass(frozen=True)
class FeatureSpec:
    """The feature choices of a run (part of :class:`ClusterParams` and of saved models).

    Attributes
    ----------
    color_space : {"rgb", "lab", "hsv"}
        For RGB images: channels as given, CIELAB (L* 0..100, a*, b*), or the
        HSV cone ``(S cos H, S sin H, V)`` (hue as an angle, weighted by
        saturation so that greys have no hue).
    filters : tuple of str
        Filter responses added per channel and scale (see :data:`FILTERS`).
    scales : tuple of float
        Sigmas (pixels) of the filters.
    spatial_weight : float
        Weight of the spatial coordinates (0: not used). At 1 the image's
        largest physical extent spans 1, like a min-max normalised feature.
    intensity : bool
        Keep the (colour-converted, smoothed) channel values themselves.
    """

    color_space: str = "rgb"
    filters: tuple = ()
    scales: tuple = (1.0, 4.0)
    spatial_weight: float = 0.0
    intensity: bool = True

    @property
    def active(self) -> bool:
        """Whether the features differ from the plain channel values."""
        return (
            self.color_space != "rgb" or bool(self.filters) or self.spatial_weight > 0 or not self.intensity
        )

    def as_dict(self) -> dict:
        return {
            "color_space": self.color_space,
            "filters": list(self.filters),
            "scales": list(self.scales),
            "spatial_weight": self.spatial_weight,
            "intensity": self.intensity,
        }


def validate_features(color_space, filters, scales, spatial_weight, intensity, *, rgb: bool) -> FeatureSpec:
    """Check the feature options; raise ValueError naming the bad value and the fix."""
    if not isinstance(color_space, str) or color_space.lower() not in COLOR_SPACES:
        raise ValueError(
            f"color_space={color_space!r} is not supported; "
            f"choose one of {', '.join(map(repr, COLOR_SPACES))}."
        )
    color_space = color_space.lower()
    if color_space != "rgb" and not rgb:
        raise ValueError(
            f"color_space={color_space!r} needs an RGB image; pass rgb=True, or color_space='rgb' "
            "for grey and multichannel images."
        )
    if isinstance(filters, str):
        filters = (filters,)
    filters = tuple(str(f).lower() for f in (filters or ()))
    bad = [f for f in filters if f not in FILTERS]
    if bad:
        raise ValueError(f"filters {bad} are not supported; choose from {', '.join(map(repr, FILTERS))}.")
    filters = tuple(dict.fromkeys(filters))  # no duplicates, order kept
    try:
        scales = tuple(float(s) for s in np.atleast_1d(scales))
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"scales must be a sequence of numbers (sigmas in pixels), got {scales!r}."
        ) from None
    if filters and (not scales or not all(np.isfinite(s) and 0.3 <= s <= 64 for s in scales)):
        raise ValueError(f"scales={scales!r} must be sigmas between 0.3 and 64 pixels, e.g. (1, 4).")
    scales = tuple(sorted(set(scales)))
    if not np.isfinite(spatial_weight) or spatial_weight < 0:
        raise ValueError(f"spatial_weight={spatial_weight!r} must be a finite number >= 0 (0 turns it off).")
    if not intensity and not filters and spatial_weight == 0:
        raise ValueError("with intensity=False, choose at least one filter or a spatial_weight > 0.")
    return FeatureSpec(color_space, filters, scales, float(spatial_weight), bool(intensity))


def _unit_range(image_cl: np.ndarray) -> np.ndarray:
    """RGB values as floats in [0, 1] (integers by their dtype's maximum; floats clipped)."""
    if np.issubdtype(image_cl.dtype, np.integer):
        return image_cl.astype(np.float32) / np.float32(np.iinfo(image_cl.dtype).max)
    return np.clip(image_cl.astype(np.float32), 0, 1)


def convert_color(rgb: np.ndarray, color_space: str) -> np.ndarray:
    """Convert RGB (channels last) to ``color_space``; float32 out.

    Examples
    --------
    >>> import numpy as np
    >>> convert_color(np.array([[[255, 0, 0]]], np.uint8), "hsv").round(3)
    array([[[1., 0., 1.]]], dtype=float32)
    """
    if color_space == "rgb":
        return rgb.astype(np.float32)
    flat = rgb.reshape(-1, 3)
    if _distinct_colours_first(flat):  # convert each distinct colour once, then look it up
        occupied, _ = _accel.count_rgb8(flat)
        colours = np.stack([(occupied >> s) & 255 for s in (0, 8, 16)], 1).astype(np.uint8)
        converted = _convert_all(colours, color_space)
        return _accel.gather_rgb8(flat, occupied, converted).reshape(rgb.shape[:-1] + (3,))
    return _convert_all(flat, color_space).reshape(rgb.shape[:-1] + (3,))


def _convert_all(rows: np.ndarray, color_space: str) -> np.ndarray:
    """Colour-convert RGB rows (n, 3), in chunks on all cores; float32 out."""
    out = np.empty(rows.shape, np.float32)
    for_chunks(lambda a, b: _convert_rows(rows[a:b], color_space, out[a:b]), rows.shape[0], chunk=CHUNK // 4)
    return out


def _distinct_colours_first(flat: np.ndarray) -> bool:
    """Whether uint8 RGB rows are converted colour by colour (compiled counting and lookup): for
    a million pixels or more, which hold at most 2**24 colours and usually far fewer."""
    return _accel.enabled() and flat.dtype == np.uint8 and flat.shape[0] >= 2**20 and flat.flags.c_contiguous


def _convert_rows(rows: np.ndarray, color_space: str, out: np.ndarray) -> None:
    """Colour-convert RGB rows (n, 3) into ``out`` (float32)."""
    if color_space == "lab":
        out[:] = _lab(rows, _srgb_linear_table(rows.dtype))
    else:
        out[:] = _hsv_cone(_unit_range(rows))


#: sRGB -> XYZ (D65) and the D65 white point, 2-degree observer: skimage's constants.
_XYZ_FROM_RGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    np.float32,
)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883], np.float32)


def _srgb_linear(unit: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] -> linear RGB (the sRGB transfer function)."""
    return np.where(unit > 0.04045, ((unit + 0.055) / 1.055) ** 2.4, unit / 12.92).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _srgb_linear_table(dtype):
    """Lookup table value -> linear RGB for 8- and 16-bit unsigned images (None otherwise)."""
    if dtype in (np.uint8, np.uint16):
        top = np.iinfo(dtype).max
        return _srgb_linear(np.arange(top + 1, dtype=np.float64) / top)
    return None


def _lab(block: np.ndarray, table) -> np.ndarray:
    """CIELAB (D65) of RGB rows, float32; equals skimage's rgb2lab to float32 precision.
    The 3x3 product is written out: a BLAS product of (n, 3) rows took 4x the time (and its
    rounding can depend on a row's position)."""
    linear = table[block] if table is not None else _srgb_linear(_unit_range(block))
    m = _XYZ_FROM_RGB / _WHITE_D65[:, None]
    xyz = np.empty(linear.shape, np.float32)
    for i in range(3):
        xyz[:, i] = linear[:, 0] * m[i, 0] + linear[:, 1] * m[i, 1] + linear[:, 2] * m[i, 2]
    # cube root as exp(log(t) / 3): 4x faster than np.cbrt in float32, same to ~1e-6
    root = np.exp(np.log(np.maximum(xyz, np.float32(0.008856))) / np.float32(3))
    f = np.where(xyz > 0.008856, root, 7.787 * xyz + 16.0 / 116.0)
    lab = np.empty(xyz.shape, np.float32)
    lab[:, 0] = 116.0 * f[:, 1] - 16.0
    lab[:, 1] = 500.0 * (f[:, 0] - f[:, 1])
    lab[:, 2] = 200.0 * (f[:, 1] - f[:, 2])
    return lab


def _hsv_cone(unit: np.ndarray) -> np.ndarray:
    """(S cos H, S sin H, V) of RGB rows in [0, 1], float32."""
    from skimage.color import rgb2hsv  # heavy: loaded on first use (LAZY_IMPORTS)

    # subnormal values (and the negative ones of signed integers) as 0: the saturation of a colour
    # of subnormal values would otherwise depend on the floating-point mode (flush-to-zero, which
    # other libraries may set in the process, makes rgb2hsv divide by them as zeros)
    unit = np.where(unit < np.finfo(np.float32).tiny, np.float32(0), unit)
    hsv = rgb2hsv(unit[:, np.newaxis, :])[:, 0]
    angle = 2 * np.pi * hsv[:, 0]
    return np.stack([hsv[:, 1] * np.cos(angle), hsv[:, 1] * np.sin(angle), hsv[:, 2]], axis=-1)


def feature_names(spec: FeatureSpec, channel_names, n_spatial: int) -> list[str]:
    """Names of the features :func:`filter_features` computes, in order."""
    names = list(channel_names) if spec.intensity else []
    for f in spec.filters:
        for s in spec.scales:
            for c in channel_names:
                if f in ("structure", "hessian"):
                    names += [f"{f}{i + 1}_{c}_s{s:g}" for i in range(n_spatial)]
                else:
                    names.append(f"{f}_{c}_s{s:g}")
    if spec.spatial_weight > 0:
        names += [f"coord{i}" for i in range(n_spatial)]
    return names


def _sigmas(scale: float, spacing: np.ndarray) -> np.ndarray:
    return scale * spacing.min() / spacing


def _filter_one(img: np.ndarray, name: str, scale: float, spacing: np.ndarray) -> list[np.ndarray]:
    """Responses of one filter at one scale on one channel (float32 array of any ndim)."""
    from scipy import ndimage as ndi  # heavy: loaded on first use (LAZY_IMPORTS)

    sig = _sigmas(scale, spacing)
    if name == "gaussian":
        return [ndi.gaussian_filter(img, sig, mode="nearest")]
    if name == "gradient":
        return [scale * ndi.gaussian_gradient_magnitude(img, sig, mode="nearest")]
    if name == "log":
        return [-(scale**2) * ndi.gaussian_laplace(img, sig, mode="nearest")]
    if name == "dog":
        return [
            ndi.gaussian_filter(img, sig, mode="nearest")
            - ndi.gaussian_filter(img, 1.6 * sig, mode="nearest")
        ]
    if name == "structure":
        from skimage.feature import structure_tensor_eigenvalues  # heavy: loaded on first use (LAZY_IMPORTS)

        inner = np.ones(img.ndim) * spacing.min() / spacing
        grads = [
            ndi.gaussian_filter(img, inner, order=np.eye(img.ndim, dtype=int)[i], mode="nearest")
            for i in range(img.ndim)
        ]
        tensor = [
            ndi.gaussian_filter(grads[i] * grads[j], sig, mode="nearest")
            for i in range(img.ndim)
            for j in range(i, img.ndim)
        ]
        del grads
        return list(structure_tensor_eigenvalues(tensor))
    # hessian
    from skimage.feature import hessian_matrix_eigvals  # heavy: loaded on first use (LAZY_IMPORTS)

    d = img.ndim
    H = []
    for i in range(d):
        for j in range(i, d):
            order = np.zeros(d, int)
            order[i] += 1
            order[j] += 1
            H.append(ndi.gaussian_filter(img, sig, order=order, mode="nearest") * scale**2)
    return list(hessian_matrix_eigvals(H))


def n_features(spec: FeatureSpec, n_channels: int, n_spatial: int) -> int:
    """Number of values per pixel that ``spec`` computes for an image of ``n_channels`` channels
    and ``n_spatial`` spatial axes (the channels themselves when no feature is chosen)."""
    if not spec.active:
        return n_channels
    n_colour = 3 if spec.color_space != "rgb" else n_channels
    return len(feature_names(spec, [str(c) for c in range(n_colour)], n_spatial))


def _count_filter_features(spec: FeatureSpec, n_spatial: int) -> int:
    return sum((n_spatial if f in ("structure", "hessian") else 1) for f in spec.filters) * len(spec.scales)


def filter_features(
    channels: np.ndarray,
    spec: FeatureSpec,
    *,
    time_axis: int | None = None,
    spacing=None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Filter responses of every channel of ``channels`` (spatial..., C), blockwise.

    Returns an array of shape ``channels.shape[:-1] + (n_features,)`` (float32),
    ordered as :func:`feature_names` (without the intensity and coordinate
    features). The result equals filtering the whole image at once (up to
    float rounding): blocks overlap by the widest kernel's support.
    """
    shape = channels.shape[:-1]
    axes = [ax for ax in range(len(shape)) if ax != time_axis]
    spacing = np.ones(len(axes)) if spacing is None else np.asarray(spacing, np.float64)
    n_feat = _count_filter_features(spec, len(axes)) * channels.shape[-1]
    if out is None:
        out = np.empty(shape + (n_feat,), np.float32)
    # support of the widest kernel along the first axis: 4 sigma (scipy's truncate), DoG's outer
    # 1.6 sigma, plus the structure tensor's inner sigma 1
    margin = (
        int(np.ceil((4 * 1.6 * max(spec.scales) + 4) * spacing.min() / spacing[0])) + 2 if spec.filters else 0
    )
    first = axes[0]
    row_pixels = int(np.prod([shape[ax] for ax in axes[1:]])) or 1
    step = max(1, BLOCK_PIXELS // row_pixels)
    axis0 = first - (1 if time_axis is not None and time_axis < first else 0)  # within a frame
    for frame_index in frame_slices(shape, time_axis):
        frame = channels[frame_index]
        frame_out = out[frame_index]
        n0 = frame.shape[axis0]
        for start in range(0, n0, step):
            stop = min(n0, start + step)
            lo, hi = max(0, start - margin), min(n0, stop + margin)
            block = np.take(frame, np.arange(lo, hi), axis=axis0).astype(np.float32)
            col = 0
            for name in spec.filters:
                for s in spec.scales:
                    for c in range(block.shape[-1]):
                        for response in _filter_one(block[..., c], name, s, spacing):
                            keep = np.take(response, np.arange(start - lo, stop - lo), axis=axis0)
                            index = [slice(None)] * (frame_out.ndim - 1)
                            index[axis0] = slice(start, stop)
                            frame_out[tuple(index) + (col,)] = keep
                            col += 1
    return out


def coordinate_features(shape, *, time_axis=None, spacing=None, weight: float = 1.0) -> np.ndarray:
    """Spatial coordinates (physical units) of every pixel, scaled so the largest extent spans ``weight``."""
    axes = [ax for ax in range(len(shape)) if ax != time_axis]
    spacing = np.ones(len(axes)) if spacing is None else np.asarray(spacing, np.float64)
    extent = max(float((shape[ax] - 1) * sp) for ax, sp in zip(axes, spacing)) or 1.0
    grids = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij", sparse=True)
    out = np.empty(tuple(shape) + (len(axes),), np.float32)
    for i, (ax, sp) in enumerate(zip(axes, spacing)):
        out[..., i] = grids[ax] * np.float32(sp * weight / extent)
    return out
