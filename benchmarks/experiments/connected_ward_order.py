"""Experiment: how much does a connectivity-constrained Ward tree depend on its merge order?

Prints, for photos at 128² and 256² (astronaut, coffee, chelsea; normalised RGB), the
within-cluster sums of squares of the cuts at k = 2..20 relative to scikit-learn's structured
Ward (``ward_tree`` with a ``grid_to_graph`` connectivity, one tree, cut at every k):

* ``greedy, pixels`` (128² only; slow): this project's one-closest-pair-at-a-time order on single
  pixels: the same order as scikit-learn's, so the ratios are 1;
* ``rounds, pixels``: the rounds of mutual-nearest-neighbour merges ``cluster_image`` uses for
  connected Ward, on single pixels: an equally valid order, with different cuts;
* ``cluster_image``: ``cluster_image(..., "agglomerative", connected=True)`` (superpixels, then
  the rounds), cut with ``result.cut(k)``.

Run: ``.venv/bin/python benchmarks/experiments/connected_ward_order.py`` (about 2 minutes).
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
from napari_cluster_seg.core.hierarchy import LinkageTree  # noqa: E402
from napari_cluster_seg.core.regions import _greedy_linkage, _ward_mutual_nearest  # noqa: E402

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
                ("rounds, pixels", lambda x=x: LinkageTree(_ward_mutual_nearest(x, ones, edges), len(x)).cut)
            ]
            if size == 128:
                runs.insert(
                    0,
                    (
                        "greedy, pixels",
                        lambda x=x: LinkageTree(_greedy_linkage(x, ones, edges, "ward"), len(x)).cut,
                    ),
                )
            runs.append(
                (
                    "cluster_image",
                    lambda img=img: (lambda r: lambda k: r.cut(k).labels.ravel() - 1)(
                        cluster_image(img, 6, "agglomerative", rgb=True, connected=True)
                    ),
                )
            )
            for order, build in runs:
                t0 = time.perf_counter()
                cut = build()
                elapsed = time.perf_counter() - t0
                r = np.array([wcss(x, cut(k) + 1, 3) / reference[k] for k in KS])
                if order == "cluster_image":
                    means.append(r.mean())
                print(
                    f"{size:<5d} {name:10s} {order:16s} {elapsed:7.2f} {r[4]:6.3f} {r.mean():6.3f} "
                    f"{r.min():6.3f} {r.max():6.3f}",
                    flush=True,
                )
    print(f"cluster_image, mean over photos, sizes and k: {np.mean(means):.3f}")


if __name__ == "__main__":
    main()
