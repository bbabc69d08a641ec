"""Cluster one image with each method, compare the results, and let the data suggest k.

On scikit-image's coins photo (bundled, no download): K-means, agglomerative (Ward) and divisive
clustering of the grey values, and agglomerative clustering into connected regions. Prints each
method's time and within-cluster sum of squares (of the normalised values), their agreement with
K-means (adjusted Rand index), a re-cut of the agglomerative tree to more clusters without
reclustering, and the k that scan_n_clusters suggests (the highest silhouette score). Writes
nothing.

    python examples/compare_methods.py
    python examples/compare_methods.py --n-clusters 4
"""

import argparse
import time

from skimage import data

from napari_cluster_seg import cluster_image, compare_labels, scan_n_clusters

METHODS = {
    "K-means": dict(method="kmeans"),
    "agglomerative (Ward)": dict(method="agglomerative", linkage="ward"),
    "divisive": dict(method="divisive"),
    "agglomerative, connected regions": dict(method="agglomerative", connected=True),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-clusters", type=int, default=3)
    args = parser.parse_args(argv)
    k = args.n_clusters

    coins = data.coins()  # (303, 384) uint8
    results = {}
    for name, options in METHODS.items():
        start = time.perf_counter()
        results[name] = cluster_image(coins, k, smoothing=1.0, **options)
        seconds = time.perf_counter() - start
        print(f"{name}: {seconds:.2f} s, within-cluster sum of squares {results[name].inertia:.1f}")

    reference = results["K-means"]
    for name, result in list(results.items())[1:]:
        comparison = compare_labels(reference.labels, result.labels)
        print(f"agreement with K-means, {name}: ARI {comparison.ari:.3f}, NMI {comparison.nmi:.3f}")

    tree = results["agglomerative (Ward)"]
    finer = tree.cut(k + 2)  # the same tree cut lower: no reclustering, and the cuts nest
    print(f"agglomerative re-cut to {finer.n_clusters} clusters: pixels per label {finer.counts.tolist()}")

    scan = scan_n_clusters(coins, k_max=8, smoothing=1.0)
    print(f"suggested k (highest silhouette) for k = 2..8: {scan.suggested}")


if __name__ == "__main__":
    main()
