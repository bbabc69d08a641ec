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
dependencies include it); the first line says which numba, threading layer and
OpenMP wait policy. Its numpy-only code (the kernels switched off) runs beside
it as "napari-cluster-seg numpy". Tools take turns, run after run (``--repeat``
rounds), so that their times come from the same minutes.

Images: the astronaut photo upscaled to 4096² (few colours: smooth upscaling),
the same photo with camera-like noise (Poisson and Gaussian, added in float and
quantised: over 2 M distinct colours, counted and printed), a noisy uint16
micrograph (over 5,000 distinct values), a 64x512x512 stack and a float32
image; grey runs after colour in the same process, as in a session.

``--layers`` runs the whole benchmark once per numba threading layer available
(each in a subprocess with ``NUMBA_THREADING_LAYER``); ``--shared`` repeats the
key cases while a second process of this plugin keeps clustering in a loop, all
tools under the same load.

Run: ``.venv/bin/python benchmarks/bench_kmeans.py`` (about 15 minutes, OpenCV at k = 8 being slow;
``--quick`` for the small cases only).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _memory import peak_extra_memory  # noqa: E402

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


def noisy_photo(size, seed=0):
    """The astronaut at ``size``² with camera-like noise: Poisson (shot noise, 0.5 electrons per grey
    level) and Gaussian read noise added in float, then quantised to uint8 (about 2.3 M distinct
    colours at 4096²)."""
    img = astronaut_rgb(size).astype(np.float64)
    rng = np.random.default_rng(seed)
    img = rng.poisson(img * 0.5) / 0.5 + rng.normal(0, 2.0, img.shape)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def noisy_micrograph(size, seed=0):
    """:func:`microscopy_uint16` with Poisson shot noise and Gaussian read noise (thousands of
    distinct values instead of a few hundred)."""
    img = microscopy_uint16(size).astype(np.float64)
    rng = np.random.default_rng(seed)
    img = rng.poisson(img + 400) + rng.normal(0, 25, img.shape)
    return np.clip(img, 0, 65535).astype(np.uint16)


def distinct_values(image, channels):
    """Number of distinct values (colours) of an integer image."""
    x = image.reshape(-1, channels).astype(np.int64)
    codes = x[:, 0]
    for c in range(1, channels):
        codes = codes * 65536 + x[:, c]
    return int(np.unique(codes).size)


def stack_uint16():
    tile = make_nuclei_3d((64, 128, 128), 30, seed=1)
    return np.tile(tile, (1, 4, 4))


def float3(size):
    rgb = astronaut_rgb(size).astype(np.float32) / 255
    rng = np.random.default_rng(0)
    return rgb + rng.normal(0, 0.02, rgb.shape).astype(np.float32)


def engine() -> str:
    """Which kernels this project runs: numba's (version, threading layer, wait policy), or numpy."""
    return _accel.threading_info()


# ------------------------------------------------------ layers and shared load
#: A parallel loop that starts numba's threading layer, and prints which one started.
_LAYER_PROBE = """
import numpy as np, numba
@numba.njit(parallel=True)
def f(a):
    s = 0.0
    for i in numba.prange(a.size):
        s += a[i]
    return s
f(np.ones(64))
print(numba.threading_layer())
"""


def available_layers():
    """numba threading layers that start here, each tried in a fresh process (tbb needs Intel's TBB
    library: ``pip install tbb``, with its ``lib`` folder on ``LD_LIBRARY_PATH``)."""
    layers = []
    for layer in ("tbb", "omp", "workqueue"):
        env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
        done = subprocess.run([sys.executable, "-c", _LAYER_PROBE], env=env, capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip() == layer:
            layers.append(layer)
        else:
            print(f"numba threading layer {layer} does not start here: skipped")
    return layers


def run_per_layer(script, argv):
    """Run ``script`` with ``argv`` once per threading layer, each in a subprocess."""
    for layer in available_layers():
        print(f"\n######## NUMBA_THREADING_LAYER={layer}", flush=True)
        env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
        subprocess.run([sys.executable, script, *argv], env=env, check=True)


def busy_loop():
    """A second process of the plugin: clusters a 1024² noisy photo and a micrograph in a loop."""
    photo = noisy_photo(1024, seed=5)
    grey = noisy_micrograph(1024, seed=5)
    first = True
    while True:
        cluster_image(photo, 4, rgb=True, random_state=0)
        cluster_image(grey, 3)
        cluster_image(photo[::4, ::4], 4, "agglomerative", rgb=True)
        if first:
            print("ready", flush=True)
            first = False


class SharedLoad:
    """Context: a second process of this plugin (same environment) keeps clustering meanwhile."""

    def __enter__(self):
        me = str(Path(__file__).resolve().parent / "bench_kmeans.py")
        self.proc = subprocess.Popen([sys.executable, me, "--busy"], stdout=subprocess.PIPE, text=True)
        self.proc.stdout.readline()  # it has compiled and is clustering
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def strip_option(argv, option):
    return [a for a in argv if a != option]


# ------------------------------------------------------------------- tools
def rows(image, channels):
    return np.ascontiguousarray(image.reshape(-1, channels), dtype=np.float32)


def ours(image, k, channels):
    kw = {"channel_axis": -1} if channels > 1 else {}
    return cluster_image(image, k, normalize="none", random_state=0, **kw).labels.ravel()


def ours_numpy(image, k, channels):
    """This project with its compiled kernels switched off (``NAPARI_CLUSTER_SEG_NUMBA=0``)."""
    saved = _accel._module
    _accel._module = None
    try:
        return ours(image, k, channels)
    finally:
        _accel._module = saved


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
    if _accel.enabled():
        tools["napari-cluster-seg numpy"] = ours_numpy
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


def measure(tools, image, k, channels, repeat, memory=True):
    """{tool: (median time, WCSS, peak extra bytes)}; the tools take turns, round after round."""
    times = {tool: [] for tool in tools}
    labels = {}
    for _ in range(repeat):
        for tool, fn in tools.items():
            t0 = time.perf_counter()
            labels[tool] = fn(image, k, channels)
            times[tool].append(time.perf_counter() - t0)
    results = {}
    for tool, fn in tools.items():
        peak = peak_extra_memory(lambda: fn(image, k, channels))[1] if memory else 0
        results[tool] = (statistics.median(times[tool]), wcss(image, labels[tool], channels), peak)
    return results


def print_results(name, k, results):
    ours_t = results["napari-cluster-seg"][0]
    ref_wcss = results["scikit-learn"][1]
    for tool, (t, w, peak) in results.items():
        ratio = "" if tool == "napari-cluster-seg" else f"{t / ours_t:8.1f}x"
        print(
            f"{name:30s} {k:2d} {tool:26s} {t:9.3f} {ratio:>9s} {w / ref_wcss:13.5f} {peak / 2**20:8.0f}",
            flush=True,
        )


def header():
    head = (
        f"{'case':30s} {'k':>2s} {'tool':26s} {'median s':>9s} {'ref/ours':>9s} "
        f"{'WCSS/sklearn':>13s} {'peak MB':>8s}"
    )
    print(head)
    print("-" * len(head))


def cases_for(quick, shared):
    big = 1024 if quick else 4096
    mid = 512 if quick else 2048
    cases = [
        (f"RGB {big}² uint8", lambda: astronaut_rgb(big), 3, (3, 8)),
        (f"RGB {big}² noisy photo", lambda: noisy_photo(big), 3, (3, 8)),
        (f"grey {mid}² uint16", lambda: microscopy_uint16(mid), 1, (3, 5)),
        (f"grey {mid}² uint16 noisy", lambda: noisy_micrograph(mid), 1, (3, 5)),
        ("stack 64x512x512 uint16", stack_uint16, 1, (3, 5)),
        (f"float32 {mid}² 3-channel", lambda: float3(mid), 3, (5,)),
    ]
    if quick:
        cases = [c for c in cases if not c[0].startswith("stack")]
    if shared:  # the key cases: a noisy photo, then a noisy micrograph
        cases = [c for c in cases if "noisy" in c[0]]
    return cases


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1024² / 512² cases only")
    parser.add_argument("--layers", action="store_true", help="once per numba threading layer (subprocesses)")
    parser.add_argument("--shared", action="store_true", help="key cases, while a second process clusters")
    parser.add_argument("--no-cv2-k8", action="store_true", help="skip OpenCV at k = 8 (slow)")
    parser.add_argument("--busy", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.busy:
        return busy_loop()
    if args.layers:
        return run_per_layer(__file__, strip_option(argv, "--layers"))
    tools = available_tools()
    warm_up(compile=True)  # imports, and every numba kernel compiled or loaded from numba's cache
    warm = np.random.default_rng(0).random((16, 16, 3))
    cluster_image(warm, 2, channel_axis=-1)  # warm up imports (scikit-learn's k-means++ seeding)
    print(f"napari-cluster-seg kernels: {engine()}")
    for fn in tools.values():
        fn(warm, 2, 3)
    load = SharedLoad() if args.shared else None
    if load is not None:
        load.__enter__()
        print("shared: a second process of the plugin keeps clustering meanwhile")
    try:
        header()
        for name, make, channels, ks in cases_for(args.quick, args.shared):
            image = make()
            if "noisy" in name:
                print(f"{name}: {distinct_values(image, channels):,} distinct values", flush=True)
            for k in ks:
                use = dict(tools)
                if args.no_cv2_k8 and k == 8:
                    use.pop("cv2.kmeans", None)
                print_results(name, k, measure(use, image, k, channels, args.repeat, memory=not args.shared))
    finally:
        if load is not None:
            load.__exit__()


if __name__ == "__main__":
    main()
