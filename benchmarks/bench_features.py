"""The default feature set and the k-suggestion scan: times and peak memory, against another version.

Cases (K-means k = 5 unless said): the project's default features (``DEFAULT_FEATURES``) on a
4096² RGB photo with camera-like noise (>= 2 M distinct colours), on the upscaled astronaut
(4096², 0.86 M colours) and on a noisy 2048² uint16 micrograph (>= 5,000 distinct values); the
plain run of the noisy photo (no features) for the ratio; and ``scan_n_clusters`` k = 2..10 for
each method on the astronaut at 2048².

Every measurement runs in a fresh subprocess (after a warm-up run on a small crop), with numba
and with ``NAPARI_CLUSTER_SEG_NUMBA=0``. With ``--against SRC`` (the ``src`` folder of another
checkout, e.g. ``git archive <commit> src | tar -x -C /tmp/base``) the two versions run
interleaved, round by round, so that a shared machine's load hits both alike; the table shows
the median of the rounds for each, their ratio, and whether labels / scores agree (fraction of
identical labels; largest silhouette difference). Peak extra memory as ``benchmarks/README.md``
describes (sampled resident set and tracemalloc), from one run.

Run: ``.venv/bin/python benchmarks/bench_features.py [--against /tmp/base/src] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _memory import peak_extra_memory

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
CASES = {
    "features RGB 4096² noisy photo": ("noisy_photo", "features", 5),
    "features RGB 4096² astronaut": ("astronaut", "features", 5),
    "features grey 2048² uint16": ("micrograph", "features", 5),
    "plain RGB 4096² noisy photo": ("noisy_photo", "plain", 5),
    "k-scan 2..10 kmeans 2048²": ("astronaut_2048", "kmeans", 10),
    "k-scan 2..10 agglomerative 2048²": ("astronaut_2048", "agglomerative", 10),
    "k-scan 2..10 divisive 2048²": ("astronaut_2048", "divisive", 10),
}


# ------------------------------------------------------------------ images
def astronaut(size):
    from skimage import data, transform

    img = data.astronaut()
    return (
        transform.resize(img, (size, size), order=1, preserve_range=True, anti_aliasing=False) + 0.5
    ).astype(np.uint8)


def noisy_photo(size):
    """The upscaled astronaut with camera-like noise: shot noise (variance proportional to the
    signal) plus read noise, independent per channel; >= 2 M distinct colours at 4096²."""
    base = astronaut(size).astype(np.float32)
    rng = np.random.default_rng(0)
    noisy = base + rng.standard_normal(base.shape, dtype=np.float32) * np.sqrt(9.0 + 0.4 * base)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def micrograph(size):
    """Nuclei on a background (the sample generator), 12-bit-like range, with Gaussian noise."""
    from napari_cluster_seg._sample_data import make_nuclei_3d

    tile = make_nuclei_3d((4, 512, 512), 120, seed=3)[2].astype(np.float64)
    img = np.tile(tile, (size // 512, size // 512)) * 8
    img += np.random.default_rng(1).normal(0, 20, img.shape)
    return np.clip(img, 0, 65535).astype(np.uint16)


IMAGES = {
    "noisy_photo": lambda: noisy_photo(4096),
    "astronaut": lambda: astronaut(4096),
    "astronaut_2048": lambda: astronaut(2048),
    "micrograph": lambda: micrograph(2048),
}


# ---------------------------------------------------------------- measures
# ------------------------------------------------------------------- child
def child(case: str, image_path: str, out_path: str, repeat: int):
    """Run one case in this process (the napari_cluster_seg on sys.path); write times as JSON."""
    from napari_cluster_seg import cluster_image, scan_n_clusters
    from napari_cluster_seg.core import warm_up
    from napari_cluster_seg.core.features import DEFAULT_FEATURES

    warm_up()
    _, what, k = CASES[case]
    image = np.load(image_path)
    rgb = image.ndim == 3
    if what in ("features", "plain"):
        options = dict(DEFAULT_FEATURES["rgb" if rgb else "grey"]) if what == "features" else {}

        def run(img):
            return cluster_image(img, k, rgb=rgb, **options).labels
    else:

        def run(img):
            return scan_n_clusters(img, k, what, rgb=rgb)

    run(image[:256, :256])  # imports, compiled kernels
    times, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = run(image)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    _, peak = peak_extra_memory(lambda: run(image))
    if what in ("features", "plain"):
        np.save(out_path + ".npy", result)
    else:
        np.save(out_path + ".npy", np.concatenate([result.silhouette, result.inertia, [result.suggested]]))
    Path(out_path).write_text(json.dumps({"times": times, "cpu": cpu, "peak": peak}))


# ------------------------------------------------------------------ parent
def measure(case, image_path, src, numba, repeat, tmp):
    env = dict(os.environ, PYTHONPATH=str(src))
    if not numba:
        env["NAPARI_CLUSTER_SEG_NUMBA"] = "0"
    out = str(Path(tmp) / f"{abs(hash((case, str(src), numba)))}")
    cmd = [sys.executable, __file__, "--child", case, image_path, out, "--repeat", str(repeat)]
    subprocess.run(cmd, env=env, check=True)
    data = json.loads(Path(out).read_text())
    result = np.load(out + ".npy")
    return statistics.median(data["times"]), statistics.median(data["cpu"]), data["peak"], result


def agreement(case, a, b):
    if CASES[case][1] in ("features", "plain"):
        return f"{100 * np.mean(a == b):.4f}% same"
    return f"sil Δ {np.nanmax(np.abs(a[:9] - b[:9])):.1e}" + ("" if a[-1] == b[-1] else " k differs")


def engine():
    import numba

    layer = numba.config.THREADING_LAYER
    threads = numba.config.NUMBA_NUM_THREADS
    return f"numba {numba.__version__}, threading layer setting {layer!r}, {threads} threads"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="src folder of the version to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1, help="runs per subprocess")
    parser.add_argument("--cases", nargs="*", default=list(CASES), help="subset of the cases (names)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child, repeat=args.repeat)
    sys.path.insert(0, str(SRC))
    print(f"this version: {SRC}; against: {args.against or '-'}; {engine()}; {os.cpu_count()} cores")
    versions = {"new": SRC} if args.against is None else {"new": SRC, "old": args.against.resolve()}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for case in args.cases:
            name = CASES[case][0]
            if name not in paths:
                paths[name] = str(Path(tmp) / f"{name}.npy")
                np.save(paths[name], IMAGES[name]())
        head = (
            f"{'case':34s} {'engine':6s} {'version':7s} {'median s':>9s} {'cpu s':>7s} {'peak MB':>8s}"
            f"  {'old/new':>7s}  agreement"
        )
        print(head + "\n" + "-" * len(head), flush=True)
        for case in args.cases:
            for numba in (True, False):
                runs = {v: [] for v in versions}
                for _ in range(args.rounds):  # interleaved: new, old, new, old, ...
                    for v, src in versions.items():
                        runs[v].append(measure(case, paths[CASES[case][0]], src, numba, args.repeat, tmp))
                med = {v: statistics.median(r[0] for r in rs) for v, rs in runs.items()}
                for v, rs in runs.items():
                    ratio = f"{med['old'] / med['new']:6.2f}x" if "old" in med and v == "new" else ""
                    agree = agreement(case, rs[-1][3], runs["old"][-1][3]) if ratio else ""
                    cpu = statistics.median(r[1] for r in rs)
                    peak = max(r[2] for r in rs) / 2**20
                    eng = "numba" if numba else "numpy"
                    print(
                        f"{case:34s} {eng:6s} {v:7s} {med[v]:9.3f} {cpu:7.2f} {peak:8.0f}"
                        f"  {ratio:>7s}  {agree}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
