"""Hierarchical clustering side by side: napari-cluster-seg against scikit-learn's structured Ward.

Cases: the astronaut photo resized to 512², 1024², 2048² and 4096² (RGB
uint8) and a 64x512x512 uint16 stack of synthetic nuclei. For each case this
project runs agglomerative Ward and divisive clustering, each in both flavours
(colour classes; connected regions), and prints the time of the run, its peak
extra resident memory (from a separate, sampled run) and the time of
``result.cut(k')`` for another k (medians of three runs).

scikit-learn's ``AgglomerativeClustering(linkage="ward")`` with a
``grid_to_graph`` pixel connectivity (its way of making Ward tractable) runs
on the photo at 128², 256² and (with ``--sklearn-512``, ~1 minute) 512²,
sizes it finishes within 60 s. There its runs alternate with this project's, one run each per
round (7 rounds at 128², 5 at 256², one at 512²), and the times are the medians over the rounds,
so that both come from the same minutes: from run to run of the script, scikit-learn alone took
anywhere from 0.7 to 2.1 s at 128². This project's results'
within-cluster sums of
squares (over all pixels, in the normalised [0, 1] colour space both
cluster in) are printed relative to scikit-learn's, with their adjusted Rand
index. Connected Ward builds scikit-learn's own pixel tree up to 65,536 pixels
(so at 128² and 256²: both 1) and a superpixel tree above.

The first line says which numba, threading layer and OpenMP wait policy ran.
Beside each time: the same run with the compiled kernels switched off ("numpy
s", one run). The photo is followed by the same photo with camera-like noise
(``bench_kmeans.noisy_photo``, 2.3 M distinct colours at 4096²); ``--layers``
runs everything once per numba threading layer (subprocesses), ``--shared``
runs the key cases (colour agglomerative and divisive at 4096², ``cut()`` at
2048²) while a second process of this plugin keeps clustering in a loop.

Run: ``.venv/bin/python benchmarks/bench_hierarchy.py`` (a few minutes).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_kmeans import (  # noqa: E402
    SharedLoad,
    astronaut_rgb,
    engine,
    noisy_photo,
    peak_extra_memory,
    run_per_layer,
    stack_uint16,
    strip_option,
    wcss,
)

from napari_cluster_seg import cluster_image  # noqa: E402
from napari_cluster_seg.core import _accel, warm_up  # noqa: E402

K = 6
K_RECUT = 10


def minmax(image):
    x = image.astype(np.float64)
    lo = x.reshape(-1, x.shape[-1]).min(0) if image.ndim == 3 else x.min()
    hi = x.reshape(-1, x.shape[-1]).max(0) if image.ndim == 3 else x.max()
    return (x - lo) / np.where(hi > lo, hi - lo, 1)


def run_ours(image, rgb, memory=True, repeat=3, **kwargs):
    """Median of ``repeat`` timed runs and re-cuts (no memory sampler: its thread would slow the
    Python parts), then a sampled run for the peak memory."""
    times, cut_times = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = cluster_image(image, K, rgb=rgb, **kwargs)
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result.cut(K_RECUT)
        cut_times.append(time.perf_counter() - t0)
    elapsed, t_cut = float(np.median(times)), float(np.median(cut_times))
    peak = peak_extra_memory(lambda: cluster_image(image, K, rgb=rgb, **kwargs))[1] if memory else 0
    return result, elapsed, peak, t_cut


def run_numpy(image, rgb, **kwargs):
    """One run with the compiled kernels switched off: its time."""
    saved = _accel._module
    _accel._module = None
    try:
        t0 = time.perf_counter()
        cluster_image(image, K, rgb=rgb, **kwargs)
        return time.perf_counter() - t0
    finally:
        _accel._module = saved


def run_sklearn(image, repeat=1):
    """scikit-learn's structured Ward: labels and the median time of ``repeat`` runs."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.image import grid_to_graph

    x = minmax(image).reshape(-1, 3)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        graph = grid_to_graph(*image.shape[:2])
        labels = AgglomerativeClustering(n_clusters=K, linkage="ward", connectivity=graph).fit_predict(x)
        times.append(time.perf_counter() - t0)
    return labels.reshape(image.shape[:2]) + 1, float(np.median(times))


def main(argv=None):
    from sklearn.metrics import adjusted_rand_score

    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sklearn-512", action="store_true", help="also run scikit-learn at 512² (~1 min)")
    parser.add_argument("--quick", action="store_true", help="only up to 1024², scikit-learn at 128²")
    parser.add_argument("--layers", action="store_true", help="once per numba threading layer (subprocesses)")
    parser.add_argument("--shared", action="store_true", help="key cases, while a second process clusters")
    args = parser.parse_args(argv)
    if args.layers:
        return run_per_layer(__file__, strip_option(argv, "--layers"))
    warm_up(compile=True)  # imports, and every numba kernel compiled or loaded from numba's cache
    cluster_image(astronaut_rgb(64), 3, "agglomerative", rgb=True, connected=True)
    print(f"napari-cluster-seg kernels: {engine()}")

    variants = [
        ("agglomerative ward, colour", {"method": "agglomerative"}),
        ("agglomerative ward, connected", {"method": "agglomerative", "connected": True}),
        ("divisive, colour", {"method": "divisive"}),
        ("divisive, connected", {"method": "divisive", "connected": True}),
    ]
    print(f"k = {K}; cut() re-cuts to k = {K_RECUT}")
    head = f"{'case':30s} {'method':32s} {'time s':>8s} {'numpy s':>8s} {'peak MB':>8s} {'cut() s':>8s}"
    print(head)
    print("-" * len(head))
    sizes = (512, 1024) if args.quick else (512, 1024, 2048, 4096)
    cases = [(f"RGB {s}² uint8", (lambda s=s: astronaut_rgb(s)), True) for s in sizes]
    top = sizes[-1]
    cases.append((f"RGB {top}² noisy photo", lambda: noisy_photo(top), True))
    if not args.quick:
        cases.append(("stack 64x512x512 uint16", stack_uint16, False))
    load = None
    if args.shared:
        cases = [(f"RGB {s}² noisy photo", (lambda s=s: noisy_photo(s)), True) for s in (sizes[-2], top)]
        variants = [v for v in variants if "colour" in v[0]]
        load = SharedLoad().__enter__()
        print("shared: a second process of the plugin keeps clustering meanwhile")
    try:
        for name, make, rgb in cases:
            image = make()
            for label, kw in variants:
                _, t, peak, t_cut = run_ours(image, rgb, memory=not args.shared, **kw)
                t_np = run_numpy(image, rgb, **kw) if not args.shared else float("nan")
                row = f"{name:30s} {label:32s} {t:8.2f} {t_np:8.2f} {peak / 2**20:8.0f} {t_cut:8.3f}"
                print(row, flush=True)
    finally:
        if load is not None:
            load.__exit__()
    if args.shared:
        return

    print()
    print("Against scikit-learn AgglomerativeClustering(ward, grid_to_graph) on the same photo:")
    head = f"{'size':8s} {'method':32s} {'time s':>8s} {'sk/ours':>8s} {'WCSS/sk':>8s} {'ARI vs sk':>9s}"
    print(head)
    print("-" * len(head))
    sk_sizes = (128,) if args.quick else (128, 256) + ((512,) if args.sklearn_512 else ())
    for size in sk_sizes:
        image = astronaut_rgb(size)
        x = minmax(image).reshape(-1, 3)
        # Interleaved: scikit-learn once, then each of ours once, round after round, so both medians
        # come from the same minutes (this machine's speed drifts from minute to minute) and every
        # run follows other work alike.
        rounds = {128: 7, 256: 5}.get(size, 1)
        ours = [variants[1], variants[3], variants[0]]
        sk_times, times, results = [], {label: [] for label, _ in ours}, {}
        for _ in range(rounds):
            sk_labels, t = run_sklearn(image)
            sk_times.append(t)
            for label, kw in ours:
                results[label], t, _, _ = run_ours(image, True, memory=False, repeat=1, **kw)
                times[label].append(t)
        sk_t = float(np.median(sk_times))
        sk_w = wcss(x, sk_labels, 3)
        print(f"{size:<8d} {'scikit-learn structured ward':32s} {sk_t:8.3f} {'':>8s} {1.0:8.3f} {1.0:9.3f}")
        for label, _ in ours:
            t = float(np.median(times[label]))
            ratio = wcss(x, results[label].labels, 3) / sk_w
            ari = adjusted_rand_score(sk_labels.ravel(), results[label].labels.ravel())
            print(f"{size:<8d} {label:32s} {t:8.3f} {sk_t / t:7.1f}x {ratio:8.3f} {ari:9.3f}", flush=True)


if __name__ == "__main__":
    main()
