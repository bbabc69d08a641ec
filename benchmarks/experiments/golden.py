"""Golden outputs of core: md5 digests of every result over a matrix of small deterministic inputs.

Records (``--record``) or compares (``--check``) the digests of labels, centres, counts, inertia,
feature centres, ``cut(k)`` labels, the dendrogram, model predictions / ``apply`` on another image,
the model's JSON and k-scan scores, over grey uint8 / uint16 / float (with NaN), RGB, a 3D stack,
time + channels, masks; K-means, agglomerative (several linkages) and divisive, connected on/off,
normalizations, features, clean-up, ``fit_stride``, smoothing and an explicit ``max_bytes``. Error
messages of refused runs are recorded too. A refactoring must leave every digest identical.

The numba and numpy-only paths are recorded separately (their float results may differ in the
last bits): the file is ``golden/golden-numba.json`` or ``golden/golden-numpy.json`` next to this
script, chosen by ``NAPARI_CLUSTER_SEG_NUMBA``. These JSON files are not committed (see
``.gitignore``): record them from the commit before a refactoring, then check after it.

Run: ``PYTHONPATH=src python benchmarks/experiments/golden.py --record`` (then ``--check``; ``--rtol 1e-12``
lets floats differ in their last bits when labels and counts are identical), once
with numba and once with ``NAPARI_CLUSTER_SEG_NUMBA=0``; ``--only SUBSTRING`` runs matching cases.
"""

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[2] / "src"
sys.path.insert(0, str(SRC))

from napari_cluster_seg.core import ClusterModel, cluster_image, scan_n_clusters  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden"


def md5(a) -> str:
    a = np.ascontiguousarray(np.asarray(a))
    return hashlib.md5(str((a.dtype.str, a.shape)).encode() + a.tobytes()).hexdigest()[:16]


def smooth(shape, seed):
    """Smooth field in 0..1 plus a little noise (deterministic)."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    base = sum(np.sin(g / (5.0 + 3 * i)) for i, g in enumerate(grids)) / (2 * len(shape)) + 0.5
    return np.clip(base + rng.normal(0, 0.04, shape), 0, 1)


def inputs():
    grey = smooth((48, 40), 0)
    grey8 = (grey * 255).astype(np.uint8)
    grey16 = (grey * 60000).astype(np.uint16)
    f32 = grey.astype(np.float32)
    fnan = grey.copy()
    fnan[3:6, 4:9] = np.nan
    fnan[10, 10] = np.inf
    rgb = (np.stack([smooth((40, 36), s) for s in (1, 2, 3)], axis=-1) * 255).astype(np.uint8)
    stack = (smooth((6, 24, 20), 4) * 1000).astype(np.uint16)
    tc = np.stack([smooth((3, 20, 22), s) for s in (5, 6)], axis=-1).astype(np.float32)
    big = (smooth((300, 260), 7) * 255).astype(np.uint8)  # > 2**16 pixels: connected via superpixels
    # 2**20 pixels with camera-like noise: K-means from the colour cells (core.cells)
    noise = np.random.default_rng(14).normal(0, 8, (1024, 1024, 3))
    noisy = np.clip(np.stack([smooth((1024, 1024), s) for s in (15, 16, 17)], -1) * 255 + noise, 0, 255)
    mask = np.ones(grey.shape, bool)
    mask[:, :8] = False
    mask[20:30, 20:30] = False
    return {
        "grey8": grey8,
        "grey16": grey16,
        "f32": f32,
        "fnan": fnan,
        "rgb": rgb,
        "stack": stack,
        "tc": tc,
        "big": big,
        "noisy_rgb": noisy.astype(np.uint8),
        "mask": mask,
        "other8": (smooth((30, 50), 8) * 255).astype(np.uint8),
        "other_rgb": (np.stack([smooth((20, 24), s) for s in (9, 10, 11)], -1) * 255).astype(np.uint8),
        "other_tc": np.stack([smooth((2, 16, 18), s) for s in (12, 13)], axis=-1).astype(np.float32),
    }


HIER = ("agglomerative", "divisive")


def cases():
    """(name, image key, other image key for the model, k, method, options)."""
    out = []
    for img in ("grey8", "grey16", "f32", "fnan"):
        for method in ("kmeans",) + HIER:
            out.append((f"{img}-{method}", img, "other8", 4, method, {}))
    for link in ("complete", "average", "single"):
        out.append((f"grey8-agg-{link}", "grey8", "other8", 3, "agglomerative", {"linkage": link}))
    for norm in ("none", "zscore", "percentile"):
        for method in ("kmeans", "agglomerative"):
            out.append((f"f32-{norm}-{method}", "f32", "other8", 3, method, {"normalize": norm}))
    for method in ("kmeans",) + HIER:
        out.append((f"rgb-{method}", "rgb", "other_rgb", 5, method, {"rgb": True}))
        out.append((f"rgb-lab-{method}", "rgb", "other_rgb", 4, method, {"rgb": True, "color_space": "lab"}))
        out.append(
            (
                f"rgb-filters-{method}",
                "rgb",
                "other_rgb",
                4,
                method,
                {"rgb": True, "filters": ("gaussian", "gradient"), "scales": (1.0, 2.0)},
            )
        )
        out.append((f"stack-{method}", "stack", None, 3, method, {}))
        out.append((f"tc-{method}", "tc", "other_tc", 3, method, {"time_axis": 0, "channel_axis": -1}))
        out.append((f"grey8-mask-{method}", "grey8", "other8", 3, method, {"mask": "mask"}))
        out.append(
            (
                f"grey8-spatial-{method}",
                "grey8",
                "other8",
                4,
                method,
                {"spatial_weight": 2.0, "smoothing": 1.0},
            )
        )
        out.append((f"grey16-stride-{method}", "grey16", "other8", 3, method, {"fit_stride": 2}))
        out.append((f"grey8-cleanup-{method}", "grey8", "other8", 4, method, {"min_size": 6, "hole_size": 4}))
        out.append((f"grey8-maxbytes-{method}", "grey8", "other8", 3, method, {"max_bytes": 2**30}))
    for method in HIER:
        out.append((f"grey8-connected-{method}", "grey8", "other8", 4, method, {"connected": True}))
        out.append(
            (f"rgb-connected-{method}", "rgb", "other_rgb", 3, method, {"rgb": True, "connected": True})
        )
        out.append(
            (
                f"tc-connected-{method}",
                "tc",
                "other_tc",
                3,
                method,
                {"time_axis": 0, "channel_axis": -1, "connected": True},
            )
        )
        out.append((f"big-connected-{method}", "big", None, 4, method, {"connected": True, "max_units": 256}))
        out.append(
            (f"grey8-connected-mask-{method}", "grey8", None, 3, method, {"connected": True, "mask": "mask"})
        )
    for link in ("average", "complete"):
        out.append(
            (
                f"grey8-connected-{link}",
                "grey8",
                "other8",
                3,
                "agglomerative",
                {"connected": True, "linkage": link},
            )
        )
    out.append(("grey8-seed7-divisive", "grey8", "other8", 4, "divisive", {"random_state": 7}))
    out.append(("rgb-seed7-kmeans", "rgb", "other_rgb", 4, "kmeans", {"rgb": True, "random_state": 7}))
    out.append(("noisy-rgb-cells-kmeans", "noisy_rgb", "rgb", 5, "kmeans", {"rgb": True}))
    out.append(("grey8-toosmall-maxbytes", "grey8", None, 3, "kmeans", {"max_bytes": 1000}))
    out.append(("grey8-k300", "grey8", None, 300, "kmeans", {}))
    out.append(("grey8-bad-connected", "grey8", None, 3, "kmeans", {"connected": True}))
    return out


def _floats(a) -> list:
    return [float(x) for x in np.asarray(a, np.float64).ravel()]


def close(key, want, got, want_values, got_values, rtol) -> bool:
    """Whether entry ``key`` differs only in its floats, each within ``rtol`` (relative to the
    largest magnitude of its array): labels, counts and every other digest equal."""
    if rtol is None or got is None:
        return False
    if key in ("inertia", "silhouette", "ch") and isinstance(want, list):  # k-scan scores: reprs
        a, b = np.array([float(x) for x in want]), np.array([float(x) for x in got])
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=0))
    if key not in want_values or key not in got_values:
        return False
    if isinstance(want, list) and (want[0] != got[0] or want[2] != got[2]):  # labels, counts
        return False
    a, b = np.array(want_values[key]), np.array(got_values[key])
    scale = np.max(np.abs(a)) if a.size else 0.0
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= rtol * scale))


def digest_result(res, image, predict_options, other):
    values = {  # the floats behind the digests, for --rtol
        "centers": _floats(res.centers),
        "inertia": [res.inertia],
        "feature_centers": _floats(res.feature_centers),
    }
    d = {
        "values": values,
        "labels": md5(res.labels),
        "centers": md5(res.centers),
        "counts": res.counts.tolist(),
        "inertia": repr(res.inertia),
        "feature_centers": md5(res.feature_centers),
        "feature_names": res.feature_names,
        "params": json.dumps(res.params.as_dict(), sort_keys=True),
        "model_json": hashlib.md5(json.dumps(res.model.to_dict(), sort_keys=True).encode()).hexdigest()[:16],
    }
    model = ClusterModel.from_dict(json.loads(json.dumps(res.model.to_dict())))
    d["model_predict_self"] = md5(model.predict(image, **predict_options))
    if other is not None:
        d["model_predict_other"] = md5(res.model.predict(other))
        app = res.model.apply(other)
        d["model_apply_other"] = [md5(app.labels), md5(app.centers), app.counts.tolist(), repr(app.inertia)]
        values["model_apply_other"] = _floats(app.centers) + [app.inertia]
    if res.is_hierarchical:
        k = res.n_clusters
        for kk in sorted({2, max(2, k - 1), k + 1, k + 3}):
            try:
                cut = res.cut(kk)
                d[f"cut{kk}"] = [md5(cut.labels), md5(cut.centers), cut.counts.tolist(), repr(cut.inertia)]
                values[f"cut{kk}"] = _floats(cut.centers) + [cut.inertia]
            except ValueError as e:
                d[f"cut{kk}"] = f"ValueError: {e}"
        dend = res.dendrogram(12)
        d["dendrogram"] = [md5(dend.Z), dend.leaf_labels.tolist(), repr(dend.cut_height())]
    return d


def run_case(data, name, img, other, k, method, options):
    options = dict(options)
    if options.get("mask") == "mask":
        options["mask"] = data["mask"]
    try:
        res = cluster_image(data[img], k, method, **options)
    except (ValueError, TypeError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    predict_options = {key: options[key] for key in ("mask", "spacing") if key in options}
    return digest_result(res, data[img], predict_options, None if other is None else data[other])


def scans(data):
    out = {}
    runs = [
        ("scan-grey8-kmeans", "grey8", "kmeans", {}),
        ("scan-rgb-kmeans", "rgb", "kmeans", {"rgb": True}),
        ("scan-rgb-filters-kmeans", "rgb", "kmeans", {"rgb": True, "filters": ("gaussian", "log")}),
        ("scan-grey16-agg", "grey16", "agglomerative", {}),
        ("scan-f32-divisive", "f32", "divisive", {"mask": data["mask"]}),
        ("scan-grey8-connected-divisive", "grey8", "divisive", {"connected": True}),
    ]
    for name, img, method, options in runs:
        s = scan_n_clusters(data[img], 6, method, **options)
        out[name] = {
            "ks": s.ks.tolist(),
            "inertia": [repr(float(x)) for x in s.inertia],
            "silhouette": [repr(float(x)) for x in s.silhouette],
            "ch": [repr(float(x)) for x in s.calinski_harabasz],
            "suggested": s.suggested,
        }
    return out


def compute(only=None):
    data = inputs()
    out = {}
    for name, img, other, k, method, options in cases():
        if only and only not in name:
            continue
        out[name] = run_case(data, name, img, other, k, method, options)
    if not only or "scan" in only:
        out.update(scans(data))
    return out


def main():
    ap = argparse.ArgumentParser()
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--record", action="store_true")
    group.add_argument("--check", action="store_true")
    group.add_argument("--print", action="store_true")
    ap.add_argument("--only")
    ap.add_argument(
        "--rtol",
        type=float,
        help="with --check: floats (centres, inertia, scores) may differ by this relative amount "
        "when labels, counts and every other digest are identical (a change of summation order)",
    )
    args = ap.parse_args()
    mode = "numpy" if os.environ.get("NAPARI_CLUSTER_SEG_NUMBA", "1") == "0" else "numba"
    path = GOLDEN / f"golden-{mode}.json"
    t0 = time.perf_counter()
    got = compute(args.only)
    seconds = time.perf_counter() - t0
    if args.print:
        print(json.dumps(got, indent=1))
    elif args.record:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=1, sort_keys=True))
        print(f"recorded {len(got)} cases ({mode}) to {path} in {seconds:.1f} s")
    else:
        want = json.loads(path.read_text())
        got = json.loads(json.dumps(got))  # tuples -> lists, as stored
        # with --only, the cases it ran (a k-scan case runs only when SUBSTRING names a scan)
        names = [n for n in want if not args.only or (args.only in n and n in got)]
        bad, near = [], []
        for n in names:
            w, g = want[n], got.get(n, {})
            wv, gv = w.get("values", {}), g.get("values", {})
            keys = [key for key in sorted(set(w) | set(g)) if key != "values" and w.get(key) != g.get(key)]
            if not keys:
                continue
            (
                near if all(close(key, w.get(key), g.get(key), wv, gv, args.rtol) for key in keys) else bad
            ).append(n)
            for key in keys:
                print(f"DIFF {n} {key}: want {w.get(key)!r} got {g.get(key)!r}")
        same = len(names) - len(bad) - len(near)
        tol = f", {len(near)} within rtol={args.rtol}" if args.rtol is not None else ""
        print(f"{mode}: {same}/{len(names)} cases identical{tol} ({seconds:.1f} s)")
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
