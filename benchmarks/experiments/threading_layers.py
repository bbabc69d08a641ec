"""Why the compiled kernels slow down under numba's OpenMP layer when other work shares the cores.

Every configuration (a threading layer forced with ``NUMBA_THREADING_LAYER``;
for OpenMP with libgomp's default spinning, ``GOMP_SPINCOUNT=300000``, and
with ``OMP_WAIT_POLICY=passive``; and the package's own default, i.e. no
setting) runs in a subprocess of its own, first on an otherwise idle machine
("quiet") and then while a second process of the plugin (package defaults)
keeps clustering in a loop ("shared"). The configurations take turns, round
by round (``--rounds``), so that all are measured in the same minutes; printed
per step: the median wall time in ms.

Steps: the compiled kernels one by one (parallel counting and labelling,
one parallel Lloyd pass over 1.7 M colours, serial and parallel builds of a
Lloyd pass on 65,536 and 262,144 rows), a *serial* group-sum on 7,018
points right after a parallel kernel and the same one after the pool has been
idle for 0.2 s, and whole runs of ``cluster_image`` (RGB 2048² noisy photo,
grey uint16 2048², a re-cut of a colour agglomerative tree).

Run: ``python benchmarks/experiments/threading_layers.py`` (~3 min);
``--src DIR`` imports the package from another checkout; ``--src A,B`` runs both
versions, interleaved (an A/B in the same minutes; the loading process runs B).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
NUMBA_VARS = ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def noisy_photo(size, seed=0):
    """The astronaut at ``size``² with camera-like noise (Poisson + Gaussian in float, then
    quantised to uint8): about a million distinct colours at 2048²."""
    from skimage import data, transform

    img = transform.resize(data.astronaut(), (size, size), order=1, preserve_range=True, anti_aliasing=False)
    rng = np.random.default_rng(seed)
    img = rng.poisson(np.maximum(img, 0) * 0.5) / 0.5 + rng.normal(0, 2.0, img.shape)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def noisy_micrograph(size, seed=0):
    """A uint16 grey image: smooth blobs on a background, Poisson + read noise (thousands of values)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    blobs = ndimage.gaussian_filter((rng.random((size, size)) > 0.9995).astype(np.float64), 12)
    img = 300 + 4000 * blobs / blobs.max()
    img = rng.poisson(img) + rng.normal(0, 20, img.shape)
    return np.clip(img, 0, 65535).astype(np.uint16)


def steps():
    """The timed steps: name -> function returning its time in seconds."""
    from napari_cluster_seg import cluster_image
    from napari_cluster_seg.core import _accel

    k = _accel.kernels()
    photo = noisy_photo(2048)
    grey = noisy_micrograph(2048)
    rgb_rows = photo.reshape(-1, 3)
    grey_rows = grey.reshape(-1, 1)
    rng = np.random.default_rng(1)
    colours = rng.random((1_700_000, 3)) * 255
    weights = np.ones(colours.shape[0])
    small = rng.random((7018, 3))
    small_w = np.ones(7018)
    small_labels = rng.integers(0, 6, 7018)
    serial = getattr(k, "group_sums_serial", None) or k.group_sums
    lut = np.zeros(2**24, np.uint8)
    out = np.empty(rgb_rows.shape[0], np.uint8)
    tree = cluster_image(photo[::2, ::2], 6, "agglomerative", rgb=True)

    def timed(fn, before=None):
        def run():
            if before is not None:
                before()
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0

        return run

    def serial_sum():
        serial(small_labels, small_w, small, 6)

    return {
        "lookup_rgb8 2048² (parallel)": timed(lambda: _accel.lookup_rgb8(rgb_rows, lut, out)),
        "count_grey 2048² (parallel)": timed(lambda: _accel.count_grey(grey_rows)),
        "Lloyd pass 1.7 M x 3, k=3": timed(lambda: _accel.lloyd_pass(colours, weights, colours[:3])),
        **{
            f"Lloyd pass {n} x 3, k=8, {build}": timed(
                lambda n=n, build=build: getattr(k, build)(
                    colours[:n], weights[:n], colours[:8], np.empty(n, np.intp)
                )
            )
            for n in (65536, 262144)
            for build in ("lloyd_pass_serial", "lloyd_pass")
        },
        "serial group-sum 7018, right after a parallel kernel": timed(
            serial_sum, lambda: _accel.count_grey(grey_rows[:65536])
        ),
        "serial group-sum 7018, after 0.2 s idle": timed(serial_sum, lambda: time.sleep(0.2)),
        "cluster_image RGB 2048² k=3": timed(
            lambda: cluster_image(photo, 3, rgb=True, normalize="none", random_state=0)
        ),
        "cluster_image grey uint16 2048² k=3": timed(
            lambda: cluster_image(grey, 3, normalize="none", random_state=0)
        ),
        "agglomerative cut(10) RGB 1024²": timed(lambda: tree.cut(10)),
    }


def measure():
    """In a subprocess: one round of every step (each three times, the median) per line on stdin."""
    from napari_cluster_seg.core import _accel, warm_up

    warm_up()
    todo = steps()
    layer = _accel.threading_layer() if hasattr(_accel, "threading_layer") else _numba_layer()
    print(json.dumps({"layer": layer}), flush=True)
    for _ in sys.stdin:
        times = {name: 1000 * float(np.median([run() for _ in range(3)])) for name, run in todo.items()}
        print(json.dumps(times), flush=True)


def _numba_layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:
        return "none launched"


def busy():
    """In the loading subprocess: cluster in a loop until killed."""
    from napari_cluster_seg import cluster_image

    photo = noisy_photo(1024, seed=5)
    grey = noisy_micrograph(1024, seed=5)
    first = True
    while True:
        cluster_image(photo, 4, rgb=True, random_state=0)
        cluster_image(grey, 3)
        if first:
            print("ready", flush=True)
            first = False


def _env(src, extra):
    env = {key: value for key, value in os.environ.items() if key not in NUMBA_VARS}
    env.update(extra)
    env["PYTHONPATH"] = str(src)
    return env


def _start(src, extra, mode):
    me = str(Path(__file__).resolve())
    return subprocess.Popen(
        [sys.executable, me, mode],
        env=_env(src, extra),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def run_rounds(workers, rounds):
    """Round by round, every configuration's subprocess measures once (same minutes for all)."""
    times = {name: [] for name in workers}
    for _ in range(rounds):
        for name, proc in workers.items():
            proc.stdin.write("go\n")
            proc.stdin.flush()
            times[name].append(json.loads(proc.stdout.readline()))
    return {
        name: {step: float(np.median([r[step] for r in rs])) for step in rs[0]} for name, rs in times.items()
    }


def configs():
    """(name, environment): the package's default, OpenMP as libgomp sets it up by default (spinning
    300,000 times after each region; named explicitly, so the package leaves it alone), OpenMP with
    passive waiting, workqueue, and tbb if installed."""
    found = [
        ("default", {}),
        ("omp spinning", {"NUMBA_THREADING_LAYER": "omp", "GOMP_SPINCOUNT": "300000"}),
        ("omp passive", {"NUMBA_THREADING_LAYER": "omp", "OMP_WAIT_POLICY": "passive"}),
        ("workqueue", {"NUMBA_THREADING_LAYER": "workqueue"}),
    ]
    try:
        import tbb  # noqa: F401

        found.append(("tbb", {"NUMBA_THREADING_LAYER": "tbb"}))
    except ImportError:
        print("tbb not installed: its layer is skipped")
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--src", default=str(ROOT / "src"), help="the checkout's src/ to import; A,B: both, interleaved"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated config names to run (prefixes)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--busy", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        return measure()
    if args.busy:
        return busy()
    import numba

    srcs = args.src.split(",")
    print(f"numba {numba.__version__}, {os.cpu_count()} cores")
    for i, src in enumerate(srcs):
        print(f"package {'ABCD'[i] + ': ' if len(srcs) > 1 else 'from '}{src}")
    wanted = [w for w in args.only.split(",") if w]
    chosen = [(n, extra) for n, extra in configs() if not wanted or any(n.startswith(w) for w in wanted)]
    workers = {
        (f"{'ABCD'[i]} " if len(srcs) > 1 else "") + name: _start(src, extra, "--measure")
        for name, extra in chosen
        for i, src in enumerate(srcs)
    }
    layers = {name: json.loads(proc.stdout.readline())["layer"] for name, proc in workers.items()}
    try:
        for shared in (False, True):
            loader = _start(srcs[-1], {}, "--busy") if shared else None
            if loader is not None:
                loader.stdout.readline()  # compiled and clustering
            try:
                load = os.getloadavg()[0]
                result = run_rounds(workers, args.rounds)
            finally:
                if loader is not None:
                    loader.kill()
                    loader.wait()
            what = "shared: a second process clustering in a loop" if shared else "quiet"
            print(f"\n== {what} (load average at the start {load:.1f}); median ms of {args.rounds} rounds")
            names = list(result)
            print(f"{'step':55s}" + "".join(f" {n[:16]:>16s}" for n in names))
            print(f"{'(layer in use)':55s}" + "".join(f" {layers[n][:16]:>16s}" for n in names))
            for step in result[names[0]]:
                print(f"{step:55s}" + "".join(f" {result[n][step]:16.2f}" for n in names), flush=True)
    finally:
        for proc in workers.values():
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
