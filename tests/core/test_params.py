"""The one table of option rules (core._params.OPTION_RULES): validation reads it, the door exposes it,
and random_state reaches every randomised step."""

import numpy as np
import pytest

from napari_cluster_seg.core import (
    CONNECTED_METHODS,
    LINKAGE_METHODS,
    LINKAGES,
    METHODS,
    OPTION_RULES,
    ClusterParams,
    _params,
    cluster_image,
    constrained,
    regions,
)
from napari_cluster_seg.core._params import OPTIONS, check_int, validate_params


def test_the_table_covers_every_option_and_holds_cluster_images_defaults():
    import inspect

    assert OPTIONS == tuple(OPTION_RULES)
    assert set(OPTIONS) == {f for f in ClusterParams.__dataclass_fields__ if f != "features"} | {
        "color_space",
        "filters",
        "scales",
        "spatial_weight",
        "intensity",
    }
    signature = inspect.signature(cluster_image).parameters
    assert OPTION_RULES["n_clusters"].default == signature["n_clusters"].default
    assert OPTION_RULES["method"].choices == METHODS and OPTION_RULES["linkage"].choices == LINKAGES
    assert (OPTION_RULES["n_clusters"].low, OPTION_RULES["n_clusters"].high) == (2, 1000)
    assert set(CONNECTED_METHODS) | {"kmeans"} == set(METHODS) and LINKAGE_METHODS == ("agglomerative",)
    # the defaults validate to the defaults of ClusterParams
    defaults = validate_params(2, n_clusters=3)
    assert defaults == ClusterParams(n_clusters=3)
    assert "extra" not in ClusterParams.__dataclass_fields__


@pytest.mark.parametrize("name", ["n_clusters", "n_init", "max_units", "fit_stride", "min_size", "hole_size"])
def test_validation_reads_the_integer_ranges_from_the_table(monkeypatch, name):
    rule = OPTION_RULES[name]
    ok = 5 if name != "max_units" else 20
    validate_params(2, **{"n_clusters": 3, name: ok})
    monkeypatch.setitem(_params.OPTION_RULES, name, _params.Rule("int", rule.default, ok + 1, None))
    with pytest.raises(ValueError, match=rf"{name} must be >= {ok + 1}, got {ok}"):
        validate_params(2, **{"n_clusters": 3, name: ok} if name != "n_clusters" else {"n_clusters": ok})


def test_validation_reads_the_choices_and_combinations_from_the_table(monkeypatch):
    with pytest.raises(ValueError, match="connected=True needs a hierarchical method"):
        validate_params(2, n_clusters=3, method="kmeans", connected=True)
    monkeypatch.setattr(_params, "CONNECTED_METHODS", METHODS)
    assert validate_params(2, n_clusters=3, method="kmeans", connected=True).connected
    monkeypatch.setitem(_params.OPTION_RULES, "linkage", _params.Rule("choice", "ward", choices=("ward",)))
    with pytest.raises(ValueError, match="linkage='single' is not supported; choose one of 'ward'"):
        validate_params(2, n_clusters=3, linkage="single")


def test_one_integer_checker():
    assert check_int("x", np.int64(4), 2, 5) == 4 and type(check_int("x", np.uint8(4), 2)) is int
    for bad in (True, np.bool_(True), 2.0, "2", None):
        with pytest.raises(TypeError, match="x must be an integer"):
            check_int("x", bad, 0)
    with pytest.raises(ValueError, match=r"x must be between 2 and 5, got 6\. Fix it\."):
        check_int("x", 6, 2, 5, fix="Fix it.")
    with pytest.raises(ValueError, match=r"^x=True needs 2\.\.5$"):
        check_int("x", True, 2, 5, message="x={value!r} needs {low}..{high}")


def test_missing_or_unknown_options_are_type_errors():
    with pytest.raises(TypeError, match="n_clusters is missing"):
        validate_params(2)
    with pytest.raises(TypeError, match="unknown option.*colour"):
        validate_params(2, n_clusters=3, colour="red")


def test_random_state_reaches_connected_ward_on_superpixels(monkeypatch):
    """The rounds of connected Ward break ties in a seeded order: the run's random_state (the
    default 0 keeps the order it always had)."""
    seen = []
    original = constrained._ward_mutual_nearest

    def spy(points, weights, edges, random_state=0):
        seen.append(random_state)
        return original(points, weights, edges, random_state)

    monkeypatch.setattr(constrained, "_ward_mutual_nearest", spy)
    monkeypatch.setattr(regions, "EXACT_MAX_PIXELS", 0)  # superpixels even for Ward
    img = (np.add.outer(np.arange(40), np.arange(40)) % 17 * 15).astype(np.uint8)
    cluster_image(img, 3, "agglomerative", connected=True, random_state=11)
    cluster_image(img, 3, "agglomerative", connected=True)
    assert seen == [11, 0]


def test_connected_ward_ties_follow_the_seed():
    """Equal points on a chain: every round is all ties, so the merge order is the seed's."""
    m = 64
    points, weights = np.zeros((m, 1)), np.ones(m)
    edges = np.stack([np.arange(m - 1), np.arange(1, m)], axis=1)
    trees = {s: constrained.connected_linkage(points, weights, edges, random_state=s)[:, :2] for s in (0, 1)}
    np.testing.assert_array_equal(trees[0], constrained.connected_linkage(points, weights, edges)[:, :2])
    assert not np.array_equal(trees[0], trees[1])
