"""Time and peak memory of every method on large images (foundation sizes).

Prints one row per (image, method): median wall time over --repeat runs and
peak extra memory of one run. Cases: the astronaut photo upscaled to 1024² and
4096² RGB (uint8) and a 64x512x512 uint16 stack of synthetic nuclei.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from napari_cluster_seg import cluster_image  # noqa: E402
from napari_cluster_seg._sample_data import make_nuclei_3d  # noqa: E402

METHODS = [("kmeans", "ward"), ("agglomerative", "ward"), ("agglomerative", "average"), ("divisive", "ward")]


def astronaut(size):
    from skimage import data

    img = data.astronaut()
    reps = size // img.shape[0]
    return np.repeat(np.repeat(img, reps, 0), reps, 1)


def stack():
    tile = make_nuclei_3d((64, 128, 128), 30, seed=1)
    return np.tile(tile, (1, 4, 4))


def measure(image, repeat, **kwargs):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = cluster_image(image, **kwargs)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    cluster_image(image, **kwargs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak, res


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="only the 1024² photo")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("-k", type=int, default=4, help="number of clusters")
    args = parser.parse_args(argv)
    cases = [("RGB 1024² uint8", lambda: astronaut(1024), {"rgb": True})]
    if not args.quick:
        cases += [
            ("RGB 4096² uint8", lambda: astronaut(4096), {"rgb": True}),
            ("stack 64x512x512 uint16", stack, {}),
        ]
    cluster_image(astronaut(512), 3, rgb=True)  # warm up imports
    print(f"{'image':26s} {'method':24s} {'time (s)':>9s} {'peak MB':>8s} {'input MB':>8s}")
    for name, make, kw in cases:
        image = make()
        for method, linkage in METHODS:
            t, peak, res = measure(image, args.repeat, n_clusters=args.k, method=method, linkage=linkage, **kw)
            label = method if method != "agglomerative" else f"agglomerative ({linkage})"
            print(
                f"{name:26s} {label:24s} {t:9.2f} {peak / 2**20:8.0f} {image.nbytes / 2**20:8.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
