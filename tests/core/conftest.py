import pytest

from napari_cluster_seg.core import _accel


@pytest.fixture(params=["numba", "numpy"])
def accel(request, monkeypatch):
    """Both kernel paths: the compiled one (when numba is on) and numpy."""
    if request.param == "numpy":
        monkeypatch.setattr(_accel, "_module", None)
    elif not _accel.enabled():
        pytest.skip("numba kernels disabled (NAPARI_CLUSTER_SEG_NUMBA=0)")
    return request.param
