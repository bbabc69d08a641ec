"""Segmentation quality on annotated images: mean foreground Dice per image set.

Runs on ``../shared/data`` (or ``--data``): ``dsb2018-nuclei`` (fluorescence,
bright nuclei) and ``dsb2018-tissue`` (stained tissue, dark nuclei), each
image with a nuclei mask.

For every image and method: cluster, order the clusters by brightness
(labels 1..k already are), and take as foreground the best cut of that order
(the darkest j clusters or the brightest k - j: what a user does by choosing
the nuclei clusters). Dice of that foreground against ``mask > 0``. Methods,
side by side in one run:

* ``otsu``: scikit-image's Otsu threshold (grey, or luminance for RGB);
  both sides tried, like every cut here.
* ``sklearn-kmeans``: scikit-learn ``KMeans(n_init=1, random_state=0)`` on
  the intensity / RGB values, at the set's k.
* ``plain``: this project's ``cluster_image`` with its defaults (channel
  values, no features), at the set's k.
* ``features``: this project's default feature settings
  (:data:`napari_cluster_seg.core.DEFAULT_FEATURES`, the widget's
  "default features" preset), at the set's k.
* ``best``: the best settings found for the set (listed below; chosen on
  these images, so optimistic).

With ``--ceiling``, two references that see the answer (not methods a user
has; they show how much a per-pixel method could get out of the features):

* ``oracle-threshold``: the best of 99 thresholds (percentiles 1..99) of the
  luminance smoothed with sigma = 1, chosen per image against its own mask.
* ``supervised-linear``: a logistic regression trained per image on its own
  mask (a seeded sample of 20,000 pixels), on exactly the default features
  (``result.model.transform``), predicting every pixel.

Usage::

    python benchmarks/quality.py                 # both sets, summary table
    python benchmarks/quality.py --per-image     # plus one line per image
    python benchmarks/quality.py --limit 2       # first two images per set (what the test runs)
    python benchmarks/quality.py --ceiling       # plus the two references that see the masks
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from napari_cluster_seg import cluster_image
from napari_cluster_seg.core import DEFAULT_FEATURES

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: Per set: whether images are RGB, how to read them, and the fixed k of every clustering method.
SETS = {
    "dsb2018-nuclei": {"rgb": False, "k": 5},
    "dsb2018-tissue": {"rgb": True, "k": 6},
}

#: Best settings found per set (on these images: an optimistic reference, not a target).
BEST = {
    "dsb2018-nuclei": {
        "n_clusters": 5,
        "smoothing": 1.0,
        "filters": ("log",),
        "scales": (4.0,),
        "normalize": "percentile",
    },
    "dsb2018-tissue": {"n_clusters": 8, "color_space": "lab", "smoothing": 1.0, "normalize": "percentile"},
}


def load_set(root: Path, name: str, limit: int | None = None):
    """[(id, image, truth mask)] of one set, in index order."""
    from skimage.io import imread

    rows = list(csv.DictReader((root / name / "index.tsv").open(), delimiter="\t"))
    if limit is not None:
        rows = rows[:limit]
    rgb = SETS[name]["rgb"]
    out = []
    for row in rows:
        image = imread(root / name / "images" / f"{row['id']}.png")
        image = image[..., :3] if rgb else image[..., 0]
        truth = imread(root / name / "masks" / f"{row['id']}.png") > 0
        out.append((row["id"], image, truth))
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.count_nonzero(a & b)) / total if total else 1.0


def best_cut_dice(labels: np.ndarray, truth: np.ndarray) -> float:
    """Best Dice over foregrounds 'labels > j' and '0 < labels <= j' (labels ordered by brightness)."""
    k = int(labels.max())
    best = 0.0
    for j in range(1, k):
        best = max(best, dice(labels > j, truth), dice((labels <= j) & (labels > 0), truth))
    return best


def luminance(image: np.ndarray) -> np.ndarray:
    return image @ np.array([0.2126, 0.7152, 0.0722]) if image.ndim == 3 else image.astype(np.float64)


def otsu_labels(image, rgb, k):
    from skimage.filters import threshold_otsu

    grey = luminance(image)
    return (grey > threshold_otsu(grey)).astype(np.uint8) + 1


def sklearn_labels(image, rgb, k):
    from sklearn.cluster import KMeans

    x = image.reshape(-1, 3 if rgb else 1).astype(np.float64)
    km = KMeans(k, n_init=1, random_state=0).fit(x)
    centres = km.cluster_centers_
    key = centres @ np.array([0.2126, 0.7152, 0.0722]) if rgb else centres[:, 0]
    rank = np.empty(k, np.uint8)
    rank[np.argsort(key)] = np.arange(1, k + 1)
    return rank[km.labels_].reshape(image.shape[:2])


def ours(options):
    def run(image, rgb, k):
        opts = {"n_clusters": k, **options}
        if not rgb:
            opts.pop("color_space", None)
        return cluster_image(image, rgb=rgb, **opts).labels

    return run


def oracle_threshold_labels(image, truth):
    """Best of 99 percentile thresholds of the smoothed luminance, chosen against ``truth``."""
    from scipy import ndimage

    grey = ndimage.gaussian_filter(luminance(image), 1.0)
    cuts = [(grey > t).astype(np.uint8) + 1 for t in np.percentile(grey, np.arange(1, 100))]
    return max(cuts, key=lambda labels: best_cut_dice(labels, truth))


def supervised_linear_labels(image, truth, rgb):
    """Logistic regression on the default features, trained on a sample of ``truth`` itself."""
    from sklearn.linear_model import LogisticRegression

    result = cluster_image(image, rgb=rgb, n_clusters=2, **DEFAULT_FEATURES["rgb" if rgb else "grey"])
    x = result.model.transform(image, rgb=rgb)
    x = x.reshape(-1, x.shape[-1])
    y = truth.ravel()
    sample = np.random.default_rng(0).choice(y.size, min(20_000, y.size), replace=False)
    fitted = LogisticRegression(max_iter=1000).fit(x[sample], y[sample])
    return fitted.predict(x).reshape(truth.shape).astype(np.uint8) + 1


#: Per method: whether it is given the true mask (the ``--ceiling`` references).
SEES_TRUTH = {"oracle-threshold", "supervised-linear"}


def methods_for(name: str, ceiling: bool = False) -> dict:
    rgb = SETS[name]["rgb"]
    methods = {
        "otsu": otsu_labels,
        "sklearn-kmeans": sklearn_labels,
        "plain": ours({}),
        "features": ours(DEFAULT_FEATURES["rgb" if rgb else "grey"]),
        "best": ours(BEST[name]),
    }
    if ceiling:
        methods["oracle-threshold"] = lambda image, rgb, k, truth: oracle_threshold_labels(image, truth)
        methods["supervised-linear"] = lambda image, rgb, k, truth: supervised_linear_labels(
            image, truth, rgb
        )
    return methods


def evaluate(
    root: Path, name: str, *, limit: int | None = None, methods: dict | None = None, ceiling: bool = False
):
    """Per method: (list of per-image Dice, total seconds); and the image ids."""
    data = load_set(root, name, limit)
    rgb, k = SETS[name]["rgb"], SETS[name]["k"]
    methods = methods_for(name, ceiling) if methods is None else methods
    scores = {m: ([], 0.0) for m in methods}
    for _, image, truth in data:
        for m, fn in methods.items():
            t0 = time.perf_counter()
            labels = fn(image, rgb, k, truth) if m in SEES_TRUTH else fn(image, rgb, k)
            elapsed = time.perf_counter() - t0
            per_image, total = scores[m]
            per_image.append(best_cut_dice(labels, truth))
            scores[m] = (per_image, total + elapsed)
    return scores, [d[0] for d in data]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sets", nargs="*", default=list(SETS))
    parser.add_argument("--limit", type=int, default=None, help="first N images per set")
    parser.add_argument("--per-image", action="store_true")
    parser.add_argument(
        "--ceiling", action="store_true", help="add two references trained or tuned on each image's mask"
    )
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"data folder {args.data} not found; pass --data", file=sys.stderr)
        return 2
    print(f"# default features: {DEFAULT_FEATURES}")
    for name in args.sets:
        scores, ids = evaluate(args.data, name, limit=args.limit, ceiling=args.ceiling)
        print(f"\n## {name}: {len(ids)} images, k = {SETS[name]['k']} (best: {BEST[name]})")
        print(f"{'method':<16} {'mean Dice':>9} {'min':>6} {'time/img':>9}")
        for m, (per_image, total) in scores.items():
            print(f"{m:<16} {np.mean(per_image):9.4f} {np.min(per_image):6.3f} {total / len(ids):8.3f}s")
        if args.per_image:
            print("\nimage     " + " ".join(f"{m[:10]:>10}" for m in scores))
            for i, id_ in enumerate(ids):
                print(f"{id_[:8]:<9} " + " ".join(f"{scores[m][0][i]:10.3f}" for m in scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
