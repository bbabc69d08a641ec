"""Sample images that need no download (npe2 ``sample_data`` contributions)."""

from __future__ import annotations

import numpy as np


def astronaut():
    """scikit-image's bundled colour photo of astronaut Eileen Collins (512 x 512 RGB)."""
    from skimage import data

    return [(data.astronaut(), {"name": "astronaut", "rgb": True}, "image")]


def immunohistochemistry():
    """scikit-image's bundled immunohistochemistry (DAB) colour microscopy image."""
    from skimage import data

    return [(data.immunohistochemistry(), {"name": "immunohistochemistry", "rgb": True}, "image")]


def make_nuclei_3d(shape=(32, 128, 128), n_nuclei=40, *, seed=0) -> np.ndarray:
    """Deterministic synthetic fluorescence stack: bright ellipsoidal nuclei on a dim, noisy background.

    Returns uint16 data with a background of ~200, nuclei of ~1000-2000 and
    Poisson-like noise. The same ``seed`` always gives the same stack.

    Examples
    --------
    >>> stack = make_nuclei_3d((8, 32, 32), 3)
    >>> stack.shape, stack.dtype
    ((8, 32, 32), dtype('uint16'))
    """
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float32)
    signal = np.zeros(shape, np.float32)
    scale = np.array(shape, np.float32)
    for _ in range(n_nuclei):
        centre = rng.uniform(0.1, 0.9, 3) * scale
        radius = rng.uniform(0.06, 0.1) * scale[1:].mean() * np.array([0.6, 1.0, 1.0])
        radius[0] = max(radius[0], 1.5)
        r2 = sum(((grid[i] - centre[i]) / radius[i]) ** 2 for i in range(3))
        signal = np.maximum(signal, rng.uniform(800, 1800) * (r2 <= 1))
    from scipy import ndimage

    signal = ndimage.gaussian_filter(signal, 1.0)
    expected = 200 + signal
    noisy = expected + rng.normal(0, 1, shape) * np.sqrt(expected) * 2
    return np.clip(noisy, 0, 65535).astype(np.uint16)


def nuclei_3d():
    """A synthetic 3D stack of nuclei (32 x 128 x 128, uint16, anisotropic voxels)."""
    return [(make_nuclei_3d(), {"name": "nuclei_3d", "scale": (2.0, 0.5, 0.5), "colormap": "gray"}, "image")]
