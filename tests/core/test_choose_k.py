import numpy as np
import pytest

from napari_cluster_seg import scan_n_clusters
from napari_cluster_seg.core import Progress, iter_scan_n_clusters


def grey_levels(k, seed=0):
    rng = np.random.default_rng(seed)
    levels = np.linspace(20, 230, k)
    truth = np.repeat(np.arange(k), 60 * 60 // k + 1)[: 60 * 60].reshape(60, 60)
    return levels[truth] + rng.normal(0, 4, truth.shape)


def colour_blobs(k, seed=0):
    rng = np.random.default_rng(seed)
    colours = rng.permutation(np.array(np.meshgrid([30, 220], [30, 220], [30, 220])).reshape(3, -1).T)[:k]
    truth = np.repeat(np.arange(k), 80 * 80 // k + 1)[: 80 * 80].reshape(80, 80)
    return np.clip(colours[truth] + rng.normal(0, 8, truth.shape + (3,)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("k", [3, 4, 6])
@pytest.mark.parametrize("method", ["kmeans", "agglomerative", "divisive"])
def test_suggests_the_known_number_grey(k, method):
    scan = scan_n_clusters(grey_levels(k), 9, method)
    assert scan.suggested == k
    np.testing.assert_array_equal(scan.ks, np.arange(2, 10))
    assert np.all(np.diff(scan.inertia) <= 1e-9)  # more clusters never fit worse
    i = k - 2
    assert scan.calinski_harabasz[i] > 5 * scan.calinski_harabasz[i - 1]  # the jump at the true k


@pytest.mark.parametrize("k", [2, 5])
def test_suggests_the_known_number_rgb(k):
    assert scan_n_clusters(colour_blobs(k), 8, rgb=True).suggested == k
    assert scan_n_clusters(colour_blobs(k), 8, "agglomerative", rgb=True, connected=True).suggested == k


def test_inertia_matches_cluster_image():
    from napari_cluster_seg import cluster_image

    img = colour_blobs(4)
    scan = scan_n_clusters(img, 6, rgb=True)
    for k, inertia in zip(scan.ks, scan.inertia):
        assert inertia == pytest.approx(cluster_image(img, int(k), rgb=True).inertia, rel=1e-6)


def test_deterministic_and_reports_progress():
    img = grey_levels(3)
    steps = []
    a = scan_n_clusters(img, 5, progress=lambda s, f: steps.append(f))
    b = scan_n_clusters(img, 5)
    np.testing.assert_array_equal(a.silhouette, b.silhouette)
    assert steps == sorted(steps) and steps[-1] == 1.0
    gen = iter_scan_n_clusters(img, 5)
    assert isinstance(next(gen), Progress)
    gen.close()  # cancelling between steps is allowed


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k_max": 2}, "k_max=2 must be an integer larger"),
        ({"k_max": 5, "k_min": 1}, "k_min=1"),
        ({"k_max": 5, "sample_size": 3}, "sample_size=3"),
        ({"k_max": 20}, "n_clusters=20 is more than"),
    ],
)
def test_bad_options(kwargs, match):
    img = np.repeat(np.arange(10, dtype=np.uint8), 10).reshape(10, 10)
    with pytest.raises(ValueError, match=match):
        scan_n_clusters(img, **kwargs)


@pytest.mark.parametrize("filters", [("log",), ("gaussian", "log", "gradient")])
@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_scan_with_features_reports_progress(filters, method):
    from napari_cluster_seg import cluster_image

    # few features: reduced on the grid; many: a pixel sample
    steps = []
    opts = dict(filters=filters, scales=(1.0, 2.0), smoothing=1.0)
    scan = scan_n_clusters(grey_levels(3), 5, method, progress=lambda s, f: steps.append((s, f)), **opts)
    assert all(isinstance(s, str) and 0 <= f <= 1 for s, f in steps)
    assert [f for _, f in steps] == sorted(f for _, f in steps)
    assert np.all(np.diff(scan.inertia) <= 1e-6 * scan.inertia[0])
    if method == "kmeans":
        assert scan.inertia[1] == pytest.approx(cluster_image(grey_levels(3), 3, **opts).inertia, rel=1e-6)


@pytest.mark.parametrize("method", ["kmeans", "agglomerative", "divisive"])
def test_cluster_image_progress_with_many_features(method):
    from napari_cluster_seg import cluster_image

    steps = []
    cluster_image(
        grey_levels(3),
        3,
        method,
        filters=("gaussian", "log", "gradient"),
        scales=(1.0, 2.0),
        progress=lambda s, f: steps.append((s, f)),
    )
    assert all(isinstance(s, str) for s, _ in steps)
    assert [f for _, f in steps] == sorted(f for _, f in steps) and steps[-1][1] == 1.0


def test_shared_silhouettes_equal_sklearn(monkeypatch):
    """One pass over the pairwise distances (in blocks) scores every k as scikit-learn would,
    singletons (score 0), label gaps and one-cluster labellings (NaN) included."""
    from sklearn.metrics import silhouette_score

    from napari_cluster_seg.core import choose_k

    monkeypatch.setattr(choose_k, "SILHOUETTE_BLOCK", 7 * 250)  # several blocks of 7 rows
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(c, 1.0, (60, 3)) for c in (0, 4, 9)] + [rng.normal(0, 1, (10, 3))])
    x[5] = x[6]  # a zero distance off the diagonal
    labelings = [rng.integers(0, k, x.shape[0]) for k in (2, 3, 7)]
    labelings.append(np.repeat([0, 1, 2, 3], [60, 60, 60, 10]) * 5)  # labels with gaps
    singleton = labelings[1].copy()
    singleton[0] = 9
    labelings += [singleton, np.zeros(x.shape[0], int)]
    scores = choose_k._silhouettes(x, labelings)
    expected = [silhouette_score(x, lab) for lab in labelings[:-1]]
    np.testing.assert_allclose(scores[:-1], expected, rtol=1e-10, atol=1e-12)
    assert np.isnan(scores[-1])
