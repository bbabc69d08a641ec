"""Experiment: how much does a connectivity-constrained Ward tree depend on its merge order?

Prints, for photos at 128² and 256² (astronaut, coffee, chelsea; normalised RGB), the
within-cluster sums of squares of the cuts at k = 2..20 relative to scikit-learn's structured
Ward (``ward_tree`` with a ``grid_to_graph`` connectivity, one tree, cut at every k):

* ``greedy, pixels``: this project's one-closest-pair-at-a-time order on single pixels
  (``constrained.exact_ward``, compiled with numba): the same order as scikit-learn's, so the ratios
  are 1. ``cluster_image(..., "agglomerative", connected=True)`` builds this tree on images of at
  most ``regions.EXACT_MAX_PIXELS`` (65,536) pixels, so on all of these photos;
* ``rounds, pixels``: the rounds of mutual-nearest-neighbour merges ``cluster_image`` uses for
  connected Ward on superpixels, on single pixels: an equally valid order, with different cuts;
* ``superpixels``: what ``cluster_image`` does on larger images (SLIC superpixels, then the
  rounds; forced here with ``EXACT_MAX_PIXELS = 0``), cut with ``result.cut(k)``.

Run: ``.venv/bin/python benchmarks/experiments/connected_ward_order.py`` (about 1 minute).
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_hierarchy import minmax  # noqa: E402
from bench_kmeans import astronaut_rgb, wcss  # noqa: E402

from napari_cluster_seg import cluster_image  # noqa: E402
from napari_cluster_seg.core import regions  # noqa: E402
from napari_cluster_seg.core._progress import run_with_progress  # noqa: E402
from napari_cluster_seg.core.constrained import _ward_mutual_nearest, exact_ward  # noqa: E402
from napari_cluster_seg.core.hierarchy import LinkageTree  # noqa: E402

KS = range(2, 21)


def photos(size):
    from skimage import data, transform

    yield "astronaut", astronaut_rgb(size)
    for name in ("coffee", "chelsea"):
        img = transform.resize(getattr(data, name)(), (size, size), preserve_range=True, anti_aliasing=True)
        yield name, img.astype(np.uint8)


def grid_edges(size):
    ids = np.arange(size * size).reshape(size, size)
    across = np.stack([ids[:, :-1].ravel(), ids[:, 1:].ravel()], 1)
    down = np.stack([ids[:-1].ravel(), ids[1:].ravel()], 1)
    return np.concatenate([across, down])


def _superpixel_cut(img):
    """``cluster_image``'s connected Ward on superpixels (its way above 65,536 pixels): a cut function."""
    saved, regions.EXACT_MAX_PIXELS = regions.EXACT_MAX_PIXELS, 0
    try:
        result = cluster_image(img, 6, "agglomerative", rgb=True, connected=True)
    finally:
        regions.EXACT_MAX_PIXELS = saved
    return lambda k: result.cut(k).labels.ravel() - 1


def main():
    from sklearn.cluster import ward_tree
    from sklearn.cluster._agglomerative import _hc_cut
    from sklearn.feature_extraction.image import grid_to_graph

    print(
        f"{'size':5s} {'photo':10s} {'order':16s} {'time s':>7s} {'k=6':>6s} {'mean':>6s} {'min':>6s} {'max':>6s}"
    )
    means = []
    for size in (128, 256):
        edges = grid_edges(size)
        for name, img in photos(size):
            x = minmax(img).reshape(-1, 3)
            children, _, n_leaves, _ = ward_tree(x, connectivity=grid_to_graph(size, size))
            reference = {k: wcss(x, _hc_cut(k, children, n_leaves) + 1, 3) for k in KS}
            ones = np.ones(len(x))
            runs = [
                (
                    "greedy, pixels",
                    lambda x=x: LinkageTree(run_with_progress(exact_ward(x, ones, edges)), len(x)).cut,
                ),
                ("rounds, pixels", lambda x=x: LinkageTree(_ward_mutual_nearest(x, ones, edges), len(x)).cut),
                ("superpixels", lambda img=img: _superpixel_cut(img)),
            ]
            for order, build in runs:
                t0 = time.perf_counter()
                cut = build()
                elapsed = time.perf_counter() - t0
                r = np.array([wcss(x, cut(k) + 1, 3) / reference[k] for k in KS])
                if order == "superpixels":
                    means.append(r.mean())
                print(
                    f"{size:<5d} {name:10s} {order:16s} {elapsed:7.2f} {r[4]:6.3f} {r.mean():6.3f} "
                    f"{r.min():6.3f} {r.max():6.3f}",
                    flush=True,
                )
    print(f"superpixels, mean over photos, sizes and k: {np.mean(means):.3f}")


if __name__ == "__main__":
    main()
