"""Out-of-core segmentation of a large uint16 zarr volume (issue 17): not a timed test.

Writes a synthetic volume (three intensity classes, smoothed noise; compressed zarr) of the size
given, then prints: the read-and-write floor (read every chunk, write a uint8 array of the same
shape), this plugin's segment (fit on every n-th block, then the exact fit streamed over every
block; + lazy labels + zarr write), the peak
resident memory of the process, and dask-ml KMeans on the same volume if dask-ml is installed.

    python benchmarks/bench_large.py                 # 512 MB: 64 x 2048 x 2048
    python benchmarks/bench_large.py --size 27GB     # 200 x 8192 x 8192 (needs ~10 GB of disk)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import dask.array as da
import numpy as np
import psutil
import zarr

from napari_cluster_seg import _io
from napari_cluster_seg.core import fit_lazy, label_lazy
from napari_cluster_seg.core.stream import fit_stream

CHUNKS = (16, 512, 512)


def parse_size(text: str) -> int:
    units = {"KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}
    for unit, factor in units.items():
        if text.upper().endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def volume_shape(n_bytes: int) -> tuple:
    voxels = n_bytes // 2
    side = 2048 if voxels <= 64 * 2048 * 2048 else 8192
    return (max(16, voxels // (side * side)), side, side)


def _block(shape, seed):
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    classes = ((np.sin(x / 37.0 + seed) + np.cos(y / 23.0) + z / 50.0) * 1.5).astype(np.int64) % 3
    return (classes * 12000 + 8000 + rng.normal(0, 1500, shape)).clip(0, 65535).astype(np.uint16)


def write_volume(path: Path, shape):
    arr = zarr.create_array(str(path), shape=shape, chunks=CHUNKS, dtype=np.uint16)
    for i, index in enumerate(np.ndindex(*[-(-s // c) for s, c in zip(shape, CHUNKS)])):
        sl = tuple(slice(j * c, min((j + 1) * c, s)) for j, c, s in zip(index, CHUNKS, shape))
        arr[sl] = _block(tuple(s.stop - s.start for s in sl), i)


class PeakRSS:
    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self):
        self.peak = psutil.Process().memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        proc = psutil.Process()
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed(label, fn):
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
    print(f"{label:<44s} {dt:8.1f} s   peak RSS {mem.peak / 2**30:5.2f} GB", flush=True)
    return out, dt


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="512MB", help="volume size, e.g. 512MB or 27GB")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--every", type=int, default=8, help="fit on every n-th block")
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="bench_large_"))
    shape = volume_shape(parse_size(args.size))
    src = work / "volume.zarr"
    print(f"volume {shape} uint16 ({np.prod(shape) * 2 / 2**30:.2f} GB), chunks {CHUNKS}, in {work}")
    if not src.exists():
        timed("write synthetic volume", lambda: write_volume(src, shape))
    image = da.from_zarr(str(src))

    def floor():
        out = zarr.create_array(str(work / "floor.zarr"), shape=shape, chunks=CHUNKS, dtype=np.uint8)
        da.store((image > 20000).astype(np.uint8), out, lock=False)

    _, t_floor = timed("floor: read every chunk, write uint8", floor)

    def segment():
        model = fit_lazy(image, args.k, subset=f"every={args.every}")
        labels = label_lazy(model, image)
        _io.write_zarr(labels, work / "labels.zarr", overwrite=True)
        return model

    model, t_seg = timed(f"plugin segment (fit every={args.every} + label + write)", segment)
    print(
        f"  centres (normalised): {np.round(model.points[:, 0], 4).tolist()}; {t_seg / t_floor:.2f}x the floor"
    )

    def streamed():
        model = fit_lazy(image, args.k)  # the exact fit on every voxel, block by block
        labels = label_lazy(model, image)
        _io.write_zarr(labels, work / "labels_streamed.zarr", overwrite=True)
        return model

    model, t_stream = timed("plugin segment (streamed exact fit + label + write)", streamed)
    print(
        f"  centres (normalised): {np.round(model.points[:, 0], 4).tolist()}; "
        f"{t_stream / t_floor:.2f}x the floor"
    )
    try:
        from dask_ml.cluster import KMeans
    except ImportError:
        print("dask-ml KMeans: skipped (dask-ml is not installed: pip install dask-ml)")
    else:

        def dask_ml():
            km = KMeans(n_clusters=args.k, random_state=0)
            km.fit(image.reshape(-1, 1).rechunk((2**22, 1)).astype(np.float32))
            return km

        km, t_ml = timed("dask-ml KMeans (k-means||)", dask_ml)
        # the within-cluster sums of squares side by side, in the volume's own units (no
        # normalisation: dask-ml fits the raw values). dask-ml's inertia_ is a sum of distances,
        # not of squares: its WCSS is computed here from its labels and centres.
        values = image.reshape(-1).astype(np.float64)
        centres = np.asarray(km.cluster_centers_, np.float64)[:, 0]
        wcss_ml = float(((values - km.labels_.map_blocks(lambda x: centres[x], dtype=np.float64)) ** 2).sum())
        ours = fit_stream(image, args.k, normalize="none")
        print(
            f"  WCSS: dask-ml {wcss_ml:.6g}, this plugin {ours.inertia:.6g} "
            f"({ours.inertia / wcss_ml:.6f}x); this plugin's streamed segment {t_ml / t_stream:.0f}x faster"
        )
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
