import os
from pathlib import Path

import pytest
from hypothesis import settings

#: Hypothesis profiles, chosen by HYPOTHESIS_PROFILE: "ci" (default; derandomised, so CI is stable)
#: and "long" (random, thousands of examples: a fuzzing run of tests/core/test_properties.py).
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("long", max_examples=3000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: The project's shared data folder (beside the project root); tests skip when it is absent.
SHARED_DATA = Path(
    os.environ.get("NAPARI_CLUSTER_SEG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def pytest_addoption(parser):
    parser.addoption(
        "--numpy-rerun",
        action="store_true",
        help="scripts/test.sh's second pass of tests/core (NAPARI_CLUSTER_SEG_NUMBA=0): leave out the tests "
        "that already ran their numpy path in the first pass (see tests/core/conftest.py)",
    )


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def numpy_only(monkeypatch):
    """Run the core without the optional numba kernels (its numpy code paths)."""
    from napari_cluster_seg.core import _accel

    monkeypatch.setattr(_accel, "_module", None)
