import pytest

from napari_cluster_seg.core import _accel

#: Fixtures (and a parameter) by which a test runs both kernel paths in one session: its numpy path
#: (``_accel._module`` set to None, the state NAPARI_CLUSTER_SEG_NUMBA=0 gives) ran in the first pass.
BOTH_PATHS_FIXTURES = frozenset({"accel", "numpy_only", "engine"})
BOTH_PATHS_PARAM = "numba"


def pytest_collection_modifyitems(config, items):
    """With ``--numpy-rerun`` (scripts/test.sh's second pass, numba off) leave out the tests that run
    both kernel paths (or the numpy path only) in the first pass: re-run, they repeat their numpy
    case. Every other core test runs again on the numpy paths; without the option nothing is left out
    (e.g. on a machine without numba, where the first pass is the only one)."""
    if not config.getoption("--numpy-rerun", False):
        return
    if _accel.enabled():
        raise pytest.UsageError("--numpy-rerun is for the numpy-only pass: set NAPARI_CLUSTER_SEG_NUMBA=0")
    keep, done = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        fixtures = getattr(item, "fixturenames", ())
        both = BOTH_PATHS_FIXTURES.intersection(fixtures) or BOTH_PATHS_PARAM in params
        (done if both else keep).append(item)
    if done:
        config.hook.pytest_deselected(items=done)
        items[:] = keep


@pytest.fixture(params=["numba", "numpy"])
def accel(request, monkeypatch):
    """Both kernel paths: the compiled one (when numba is on) and numpy."""
    if request.param == "numpy":
        monkeypatch.setattr(_accel, "_module", None)
    elif not _accel.enabled():
        pytest.skip("numba kernels disabled (NAPARI_CLUSTER_SEG_NUMBA=0)")
    return request.param
