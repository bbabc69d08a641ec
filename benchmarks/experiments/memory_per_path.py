"""Experiment: peak memory of ``cluster_image`` per path, against the memory guard's estimate.

For every path (K-means and the hierarchical methods on grey uint8 / uint16 / float32, uint8 RGB
with few and with many distinct colours, multichannel float, smoothing, features, masks,
connected methods, ``fit_stride``, clean-up, a time series) and 2-3 image sizes, one run in a
fresh process measures the peak memory the run adds to the (in-memory) image: the larger of the
``tracemalloc`` peak and the resident set size sampled every 2 ms minus the size before the run
(as ``benchmarks/README.md`` describes), after a warm-up run of the same path on a small image
(imports, numba compilation, the thread pool). It prints one row per run with
``memory.estimate_memory`` for the same image and options and the ratio estimate / measured; the
guard's model (``core/memory.py``) was fitted to these rows.

Run: ``.venv/bin/python benchmarks/experiments/memory_per_path.py`` (about 10 minutes on 2 cores;
``--quick`` runs the two smaller sizes only, ``--case NAME`` one case, ``--big`` adds a 4096²
noisy RGB and an 8192² grey image). ``NAPARI_CLUSTER_SEG_NUMBA=0`` measures the numpy-only paths.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[2] / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_memory.py

from _memory import peak_memory  # noqa: E402


def grey(side, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    base = (np.sin(xx / 17.0) + np.cos(yy / 23.0) + 2) / 4  # smooth 0..1
    noise = rng.normal(0, 0.05, (side, side))
    v = np.clip(base + noise, 0, 1)
    if dtype == np.uint8:
        return (v * 255).astype(np.uint8)
    if dtype == np.uint16:
        return (v * 65535).astype(np.uint16)
    if dtype == np.int32:
        return (v * 2e7).astype(np.int32)  # ~2e7 distinct values: exact counting, wide code space
    return v.astype(dtype)


def rgb_quiet(side):
    g = grey(side, np.uint8)
    return np.stack([g, 255 - g, g // 2], axis=-1)  # a few hundred colours


def rgb_noisy(side):
    return np.random.default_rng(1).integers(0, 256, (side, side, 3), dtype=np.uint8)  # ~all colours


def multi_float(side, c=3):
    rng = np.random.default_rng(2)
    return np.stack(
        [grey(side, np.float32, s) + rng.normal(0, 0.1, (side, side)).astype(np.float32) for s in range(c)],
        axis=-1,
    )


def with_nan(side):
    img = grey(side, np.float32)
    img[::7, ::5] = np.nan
    return img


def series(side):
    return np.stack([grey(side // 2, np.uint16, s) for s in range(4)])  # 4 frames of side/2 squared


#: name -> (image factory, options, mask?)
CASES = {
    "kmeans grey uint8": (grey, {}, False),
    "kmeans grey uint16": (lambda s: grey(s, np.uint16), {}, False),
    "kmeans grey int32 wide": (lambda s: grey(s, np.int32), {}, False),
    "kmeans grey float32": (lambda s: grey(s, np.float32), {}, False),
    "kmeans grey float32 NaN": (with_nan, {}, False),
    "kmeans grey uint8 mask": (grey, {}, True),
    "kmeans grey uint8 k=50": (grey, {"n_clusters": 50}, False),
    "kmeans rgb quiet": (rgb_quiet, {"rgb": True}, False),
    "kmeans rgb noisy": (rgb_noisy, {"rgb": True}, False),
    "kmeans rgb noisy stride2": (rgb_noisy, {"rgb": True, "fit_stride": 2}, False),
    "kmeans 3ch float32": (multi_float, {"channel_axis": -1}, False),
    "kmeans 2ch uint16 axis0": (
        lambda s: np.stack([grey(s, np.uint16, 0), grey(s, np.uint16, 1)]),
        {"channel_axis": 0},
        False,
    ),
    "kmeans grey smoothing": (grey, {"smoothing": 1.0}, False),
    "kmeans rgb smoothing": (rgb_noisy, {"rgb": True, "smoothing": 1.0}, False),
    "kmeans grey features": (
        lambda s: grey(s, np.uint16),
        {"smoothing": 1.0, "filters": ("log",), "scales": (4.0,), "normalize": "percentile"},
        False,
    ),
    "kmeans rgb lab": (
        rgb_noisy,
        {"rgb": True, "color_space": "lab", "smoothing": 1.0, "normalize": "percentile"},
        False,
    ),
    "kmeans grey 7 features": (
        grey,
        {"filters": ("gaussian", "log", "gradient"), "scales": (1.0, 4.0)},
        False,
    ),
    "kmeans grey min_size": (grey, {"min_size": 20, "hole_size": 20}, False),
    "kmeans series uint16": (series, {"time_axis": 0}, False),
    "agglo grey uint8": (grey, {"method": "agglomerative"}, False),
    "agglo grey uint16": (lambda s: grey(s, np.uint16), {"method": "agglomerative"}, False),
    "agglo grey float32": (lambda s: grey(s, np.float32), {"method": "agglomerative"}, False),
    "agglo rgb quiet": (rgb_quiet, {"method": "agglomerative", "rgb": True}, False),
    "agglo rgb noisy": (rgb_noisy, {"method": "agglomerative", "rgb": True}, False),
    "agglo rgb noisy stride2": (rgb_noisy, {"method": "agglomerative", "rgb": True, "fit_stride": 2}, False),
    "agglo 3ch float32 average": (
        multi_float,
        {"method": "agglomerative", "channel_axis": -1, "linkage": "average"},
        False,
    ),
    "agglo grey 7 features": (
        grey,
        {"method": "agglomerative", "filters": ("gaussian", "log", "gradient"), "scales": (1.0, 4.0)},
        False,
    ),
    "divisive grey uint16": (lambda s: grey(s, np.uint16), {"method": "divisive"}, False),
    "divisive rgb noisy": (rgb_noisy, {"method": "divisive", "rgb": True}, False),
    "connected agglo grey uint8": (grey, {"method": "agglomerative", "connected": True}, False),
    "connected agglo rgb": (rgb_noisy, {"method": "agglomerative", "connected": True, "rgb": True}, False),
    "connected divisive 3ch float32": (
        multi_float,
        {"method": "divisive", "connected": True, "channel_axis": -1},
        False,
    ),
    "connected agglo grey mask": (grey, {"method": "agglomerative", "connected": True}, True),
    "connected agglo zscore": (
        grey,
        {"method": "agglomerative", "connected": True, "normalize": "zscore"},
        False,
    ),
}
SIZES = (512, 1024, 2048)
#: Cases whose run on single pixels has a size limit (connected Ward: at most 65,536 pixels).
PIXEL_CASES = {
    "connected ward pixels": (rgb_noisy, {"method": "agglomerative", "connected": True, "rgb": True}, False)
}
PIXEL_SIZES = (128, 256)
BIG = {"kmeans rgb noisy": 4096, "kmeans grey uint8": 8192, "agglo rgb noisy": 4096}


def case_image(name, side):
    make, options, masked = {**CASES, **PIXEL_CASES}[name]
    image = make(side)
    options = {"n_clusters": 3, **options}
    mask = None
    if masked:
        shape = image.shape[:-1] if options.get("rgb") or options.get("channel_axis") == -1 else image.shape
        mask = np.ones(shape, bool)
        mask[: shape[0] // 3] = False
    return image, options, mask


def run_one(name, sides):
    """Measure one case at the given sizes (smallest first) in this process; one JSON row each."""
    from napari_cluster_seg import cluster_image
    from napari_cluster_seg.core import _accel
    from napari_cluster_seg.core._params import validate_params
    from napari_cluster_seg.core.memory import estimate_memory

    small, options, small_mask = case_image(name, 96)
    cluster_image(small, mask=small_mask, **options)  # warm-up: imports, numba, thread pool
    for side in sides:
        image, options, mask = case_image(name, side)
        _, rss, traced = peak_memory(lambda im=image, m=mask, o=options: cluster_image(im, mask=m, **o))
        opts = {k: v for k, v in options.items() if k != "n_clusters"}
        params = validate_params(image.ndim, n_clusters=options["n_clusters"], **opts)
        est = estimate_memory(
            image.shape,
            image.dtype,
            params,
            masked=mask is not None,
            in_memory=True,
            contiguous=image.flags.c_contiguous,
        )
        row = {
            "case": name,
            "side": side,
            "image_mb": image.nbytes / 2**20,
            "traced_mb": traced / 2**20,
            "rss_mb": rss / 2**20,
            "peak_mb": max(traced, rss) / 2**20,
            "estimate_mb": est / 2**20,
            "ratio": est / max(traced, rss, 1),
            "numba": _accel.enabled(),
        }
        print(json.dumps(row), flush=True)
        del image, mask


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=2, metavar=("CASE", "SIDES"), help=argparse.SUPPRESS)
    parser.add_argument("--case", action="append", help="run only these cases")
    parser.add_argument("--quick", action="store_true", help="the two smaller sizes only")
    parser.add_argument("--big", action="store_true", help="add the large images of BIG")
    args = parser.parse_args(argv)
    if args.one:
        return run_one(args.one[0], [int(x) for x in args.one[1].split(",")])
    jobs = {name: list(SIZES[:2] if args.quick else SIZES) for name in CASES}
    jobs.update({name: list(PIXEL_SIZES) for name in PIXEL_CASES})
    if args.big:
        for name, side in BIG.items():
            jobs[name].append(side)
    if args.case:
        jobs = {name: sides for name, sides in jobs.items() if name in args.case}
    print(f"numba: {os.environ.get('NAPARI_CLUSTER_SEG_NUMBA', '1') != '0'}; sizes in MB")
    print(
        f"{'case':34s} {'side':>5s} {'image':>8s} {'traced':>8s} {'rss':>8s} {'estimate':>9s} {'ratio':>6s}"
    )
    for name, sides in jobs.items():
        cmd = [sys.executable, __file__, "--one", name, ",".join(map(str, sides))]
        out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
        for line in out.stdout.strip().splitlines():
            r = json.loads(line)
            print(
                f"{name:34s} {r['side']:5d} {r['image_mb']:8.1f} {r['traced_mb']:8.1f} {r['rss_mb']:8.1f} "
                f"{r['estimate_mb']:9.1f} {r['ratio']:6.2f}",
                flush=True,
            )
        if out.returncode:
            print(f"{name:34s} failed: {out.stderr.strip().splitlines()[-1]}", flush=True)


if __name__ == "__main__":
    main()
