"""Experiment: how far can clustering go on the stained-tissue set (dsb2018-tissue)?

Mean foreground Dice over the 16 images, against their nuclei masks, of:

1. ``cluster_image`` with the default RGB features (CIELAB, sigma = 1, percentile clipping) at
   k = 6, 12, 24, 48: the best brightness cut of the clusters (what ``quality.py`` scores) and
   the best *subset* of clusters chosen with the mask (clusters added by their share of nucleus
   pixels): whether the brightness order or the clusters themselves are the limit;
2. scikit-learn K-means (k = 6 and 8) on other per-pixel spaces, each smoothed with sigma = 1
   and clipped to its 1-99 % range, scored like 1.: CIELAB (the default, for reference),
   whitened CIELAB, optical density, and CIELAB with L minus its Gaussian mean at 32 px;
3. classifiers trained on each image's own mask (a seeded sample of 20,000 pixels; they see
   the answer): gradient boosting on CIELAB at sigma = 1, and on CIELAB at sigma = 1, 2, 4 plus
   its Laplacian of Gaussian at 2, 4, 8 px.

Run: ``.venv/bin/python benchmarks/experiments/tissue_ceiling.py`` (about 1.5 minutes; needs
``../shared/data/dsb2018-tissue``).
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import quality  # noqa: E402

from napari_cluster_seg import cluster_image  # noqa: E402
from napari_cluster_seg.core import DEFAULT_FEATURES  # noqa: E402


def best_subset_dice(labels, truth):
    """Best Dice of a union of clusters, adding them by their share of truth pixels."""
    k = int(labels.max())
    n = np.bincount(labels.ravel(), minlength=k + 1)[1:]
    hits = np.bincount(labels.ravel(), weights=truth.ravel(), minlength=k + 1)[1:]
    order = np.argsort(-hits / np.maximum(n, 1))
    inter, size = np.cumsum(hits[order]), np.cumsum(n[order])
    return float(np.max(2 * inter / (size + truth.sum())))


def ranked_by(labels, brightness, k):
    """Labels 1..k ordered by the clusters' mean ``brightness``."""
    counts = np.maximum(np.bincount(labels.ravel(), minlength=k), 1)
    means = np.bincount(labels.ravel(), weights=brightness.ravel(), minlength=k) / counts
    rank = np.empty(k, np.intp)
    rank[np.argsort(means)] = np.arange(1, k + 1)
    return rank[labels]


def spaces(image):
    """Per-pixel feature spaces (h, w, 3), before smoothing."""
    from scipy import ndimage
    from skimage.color import rgb2lab

    lab = rgb2lab(image)
    x = lab.reshape(-1, 3)
    white = (x - x.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(x.T))).T
    background = lab.copy()
    background[..., 0] -= ndimage.gaussian_filter(lab[..., 0], 32)
    return {
        "CIELAB": lab,
        "whitened CIELAB": white.reshape(lab.shape),
        "optical density": -np.log((image.astype(np.float64) + 1) / 256),
        "CIELAB, L - G32(L)": background,
    }


def main():
    from scipy import ndimage
    from skimage.color import rgb2lab
    from sklearn.cluster import KMeans
    from sklearn.ensemble import HistGradientBoostingClassifier

    root = quality.DEFAULT_DATA
    if not (root / "dsb2018-tissue").is_dir():
        print(f"{root / 'dsb2018-tissue'} not found", file=sys.stderr)
        return 2
    data = quality.load_set(root, "dsb2018-tissue")
    scores: dict[str, list[float]] = {}

    def add(name, value):
        scores.setdefault(name, []).append(value)

    for _, image, truth in data:
        for k in (6, 12, 24, 48):
            labels = cluster_image(image, rgb=True, n_clusters=k, **DEFAULT_FEATURES["rgb"]).labels
            add(f"1. default features, k = {k}: best brightness cut", quality.best_cut_dice(labels, truth))
            add(f"1. default features, k = {k}: best subset (sees mask)", best_subset_dice(labels, truth))
        for scales in ((4.0,), (2.0, 4.0), (8.0,)):
            options = {**DEFAULT_FEATURES["rgb"], "filters": ("gaussian",), "scales": scales}
            for k in (6, 12, 24):
                labels = cluster_image(image, rgb=True, n_clusters=k, **options).labels
                add(
                    f"1b. default features + Gaussian at {scales} px, k = {k}",
                    quality.best_cut_dice(labels, truth),
                )
        grey = quality.luminance(image)
        for name, feats in spaces(image).items():
            smooth = np.stack([ndimage.gaussian_filter(feats[..., c], 1.0) for c in range(3)], -1)
            x = smooth.reshape(-1, 3)
            lo, hi = np.percentile(x, [1, 99], axis=0)
            x = np.clip((x - lo) / np.where(hi > lo, hi - lo, 1), 0, 1)
            for k in (6, 8):
                labels = KMeans(k, n_init=1, random_state=0).fit_predict(x).reshape(truth.shape)
                add(
                    f"2. K-means on {name}, k = {k}", quality.best_cut_dice(ranked_by(labels, grey, k), truth)
                )
        lab = rgb2lab(image)
        single = [ndimage.gaussian_filter(lab[..., c], 1.0) for c in range(3)]
        multi = [ndimage.gaussian_filter(lab[..., c], s) for s in (1, 2, 4) for c in range(3)]
        multi += [ndimage.gaussian_laplace(lab[..., c], s) for s in (2, 4, 8) for c in range(3)]
        y = truth.ravel()
        sample = np.random.default_rng(0).choice(y.size, 20_000, replace=False)
        for name, feats in (("CIELAB sigma = 1", single), ("multiscale CIELAB + LoG", multi)):
            x = np.stack(feats, -1).reshape(y.size, -1)
            fitted = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(x[sample], y[sample])
            add(
                f"3. boosting on {name} (trained on the mask)",
                quality.dice(fitted.predict(x).reshape(truth.shape) > 0, truth),
            )

    print(f"dsb2018-tissue, {len(data)} images: mean foreground Dice")
    for name, values in scores.items():
        print(f"{np.mean(values):.4f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
