import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def test_npe2_validate_with_imports():
    npe2 = shutil.which("npe2", path=str(Path(sys.executable).parent)) or shutil.which("npe2")
    assert npe2, "npe2 command not found"
    out = subprocess.run(
        [npe2, "validate", "napari-cluster-seg", "--imports"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid" in out.stdout


def test_manifest_contributions():
    from npe2 import PluginManifest

    pm = PluginManifest.from_distribution("napari-cluster-seg")
    widgets = [w.display_name for w in pm.contributions.widgets]
    assert widgets == ["Cluster segmentation", "Clusters to objects"]
    assert {s.key for s in pm.contributions.sample_data} == {"astronaut", "immunohistochemistry", "nuclei_3d"}
    menu = pm.contributions.menus["napari/layers/segment"]
    assert [item.command for item in menu] == [
        "napari-cluster-seg.cluster_widget",
        "napari-cluster-seg.objects_widget",
    ]


def test_sample_data_needs_no_download_and_is_deterministic():
    from napari_cluster_seg import _sample_data as sd

    ((astro, meta, kind),) = sd.astronaut()
    assert astro.shape == (512, 512, 3) and meta["rgb"] and kind == "image"
    ((ihc, meta, _),) = sd.immunohistochemistry()
    assert ihc.ndim == 3 and meta["rgb"]
    ((stack, meta, _),) = sd.nuclei_3d()
    assert stack.shape == (32, 128, 128) and stack.dtype == np.uint16
    np.testing.assert_array_equal(stack, sd.make_nuclei_3d())
    # nuclei are bright, background is dim: two well-separated populations
    assert np.percentile(stack, 50) < 400 and stack.max() > 1000


@pytest.mark.parametrize("key", ["astronaut", "immunohistochemistry", "nuclei_3d"])
def test_samples_open_in_napari(make_napari_viewer, key):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-cluster-seg", key)
    assert len(layers) == 1 and layers[0].data.size > 0


def test_built_wheel_has_license_and_manifest(tmp_path):
    """What pip installs from a release: the licence text, the npe2 manifest and the metadata the
    napari hub reads (licence, Python versions, keywords)."""
    import zipfile

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(root)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = tmp_path.glob("napari_cluster_seg-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "napari_cluster_seg/napari.yaml" in names
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = zf.read(meta_name).decode()
    assert "License-Expression: BSD-3-Clause" in meta
    assert "Classifier: Framework :: napari" in meta
    assert "Classifier: Programming Language :: Python :: 3.11" in meta
    assert "Keywords:" in meta
