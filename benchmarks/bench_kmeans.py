"""K-means side by side: napari-cluster-seg against scikit-learn, OpenCV and faiss, in one run.

For every case, each tool clusters every pixel of the image and labels every
pixel; the time includes turning the image into the tool's input (float32
rows). Printed per case and tool: the median wall time of --repeat runs, the
time ratio (reference time / this project's time), the within-cluster sum of
squares over all pixels in the image's own units divided by scikit-learn's,
and the peak extra resident memory during one run (sampled from /proc every
2 ms, so C++ allocations of OpenCV and faiss count too).

All tools optimise the same objective on the same numbers: this project runs
with ``normalize="none"``; scikit-learn ``KMeans(n_init=1)`` (k-means++,
Lloyd, tol=1e-4), ``cv2.kmeans`` (attempts=1, k-means++ seeding,
300 iterations or eps 1e-4) and faiss ``Kmeans`` (its defaults: 25
iterations) are skipped when not installed (``pip install
opencv-python-headless faiss-cpu``).

This project runs its numba kernels when numba is installed (the test
dependencies include it) and says so in the first line; run with
``NAPARI_CLUSTER_SEG_NUMBA=0`` to measure its numpy-only code.

Run: ``.venv/bin/python benchmarks/bench_kmeans.py`` (about 10 minutes, OpenCV at k = 8 being slow;
``--quick`` for the small cases only).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from napari_cluster_seg import cluster_image  # noqa: E402
from napari_cluster_seg._sample_data import make_nuclei_3d  # noqa: E402
from napari_cluster_seg.core import _accel, warm_up  # noqa: E402


# ------------------------------------------------------------------ images
def astronaut_rgb(size):
    from skimage import data, transform

    img = data.astronaut()
    return (
        transform.resize(img, (size, size), order=1, preserve_range=True, anti_aliasing=False) + 0.5
    ).astype(np.uint8)


def microscopy_uint16(size):
    """A 2D grey uint16 image like a fluorescence micrograph: nuclei, background, noise."""
    tile = make_nuclei_3d((4, 512, 512), 120, seed=3)[2].astype(np.float64)
    reps = size // 512
    img = np.tile(tile, (reps, reps)) * 8  # 12-bit-like range
    return np.clip(img, 0, 65535).astype(np.uint16)


def stack_uint16():
    tile = make_nuclei_3d((64, 128, 128), 30, seed=1)
    return np.tile(tile, (1, 4, 4))


def float3(size):
    rgb = astronaut_rgb(size).astype(np.float32) / 255
    rng = np.random.default_rng(0)
    return rgb + rng.normal(0, 0.02, rgb.shape).astype(np.float32)


def engine() -> str:
    """Which kernels this project runs: numba's, or numpy only."""
    if not _accel.enabled():
        return "numpy only (numba missing, or NAPARI_CLUSTER_SEG_NUMBA=0)"
    import numba

    return f"numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} threads)"


# ------------------------------------------------------------------- tools
def rows(image, channels):
    return np.ascontiguousarray(image.reshape(-1, channels), dtype=np.float32)


def ours(image, k, channels):
    kw = {"channel_axis": -1} if channels > 1 else {}
    return cluster_image(image, k, normalize="none", random_state=0, **kw).labels.ravel()


def sklearn_kmeans(image, k, channels):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=1, random_state=0).fit_predict(rows(image, channels))


def cv2_kmeans(image, k, channels):
    import cv2

    cv2.setRNGSeed(0)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 300, 1e-4)
    _, labels, _ = cv2.kmeans(rows(image, channels), k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    return labels.ravel()


def faiss_kmeans(image, k, channels):
    import faiss

    x = rows(image, channels)
    km = faiss.Kmeans(channels, k, seed=1234, verbose=False)
    km.train(x)
    _, labels = km.index.search(x, 1)
    return labels.ravel()


def available_tools():
    tools = {"napari-cluster-seg": ours, "scikit-learn": sklearn_kmeans}
    try:
        import cv2  # noqa: F401

        tools["cv2.kmeans"] = cv2_kmeans
    except ImportError:
        print("cv2 not installed: skipped")
    try:
        import faiss  # noqa: F401

        tools["faiss"] = faiss_kmeans
    except ImportError:
        print("faiss not installed: skipped")
    return tools


# ---------------------------------------------------------------- measures
def wcss(image, labels, channels):
    """Within-cluster sum of squares over all pixels, in the image's units (float64)."""
    x = image.reshape(-1, channels)
    labels = np.asarray(labels).ravel().astype(np.int64)
    k = int(labels.max()) + 1
    n = np.bincount(labels, minlength=k).astype(np.float64)
    total = 0.0
    for c in range(channels):
        col = x[:, c].astype(np.float64)
        s = np.bincount(labels, weights=col, minlength=k)
        total += float(np.dot(col, col) - np.dot(s, s / np.maximum(n, 1)))
    return total


def _rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


def _release_free_memory():
    """Return freed heap memory to the system (glibc), so the baseline does not hide earlier runs'
    leftovers: without it, a run after others measured up to 100 MB less than in a fresh process."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_extra_memory(fn):
    """Run fn() and return (result, peak extra bytes): the larger of the resident memory, sampled
    every 2 ms, and the peak of the memory Python and numpy allocate (tracemalloc), which catches
    short peaks between samples (it does not see allocations of C libraries such as OpenCV's,
    which the sampled resident memory does)."""
    gc.collect()
    _release_free_memory()
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    tracemalloc.start()
    traced_base = tracemalloc.get_traced_memory()[0]
    try:
        result = fn()
    finally:
        traced_peak = tracemalloc.get_traced_memory()[1] - traced_base
        tracemalloc.stop()
        stop.set()
        thread.join()
    peak[0] = max(peak[0], _rss())
    return result, max(peak[0] - base, traced_peak)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1024² / 512² cases only")
    args = parser.parse_args(argv)
    big = 1024 if args.quick else 4096
    mid = 512 if args.quick else 2048
    cases = [
        (f"RGB {big}² uint8", lambda: astronaut_rgb(big), 3, (3, 8)),
        (f"grey {mid}² uint16", lambda: microscopy_uint16(mid), 1, (3, 5)),
        ("stack 64x512x512 uint16", stack_uint16, 1, (3, 5)),
        (f"float32 {mid}² 3-channel", lambda: float3(mid), 3, (5,)),
    ]
    if args.quick:
        cases = [c for c in cases if not c[0].startswith("stack")]
    tools = available_tools()
    warm_up()  # imports, and the numba kernels compiled or loaded from numba's cache
    warm = np.random.default_rng(0).random((16, 16, 3))
    cluster_image(warm, 2, channel_axis=-1)  # warm up imports (scikit-learn's k-means++ seeding)
    print(f"napari-cluster-seg kernels: {engine()}")
    for fn in tools.values():
        fn(warm, 2, 3)
    header = f"{'case':28s} {'k':>2s} {'tool':20s} {'median s':>9s} {'ref/ours':>9s} {'WCSS/sklearn':>13s} {'peak MB':>8s}"
    print(header)
    print("-" * len(header))
    for name, make, channels, ks in cases:
        image = make()
        for k in ks:
            results = {}
            for tool, fn in tools.items():
                times = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    labels = fn(image, k, channels)
                    times.append(time.perf_counter() - t0)
                _, peak = peak_extra_memory(lambda: fn(image, k, channels))
                results[tool] = (statistics.median(times), wcss(image, labels, channels), peak)
            ours_t = results["napari-cluster-seg"][0]
            ref_wcss = results["scikit-learn"][1]
            for tool, (t, w, peak) in results.items():
                ratio = "" if tool == "napari-cluster-seg" else f"{t / ours_t:8.1f}x"
                print(
                    f"{name:28s} {k:2d} {tool:20s} {t:9.3f} {ratio:>9s} {w / ref_wcss:13.5f} {peak / 2**20:8.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
