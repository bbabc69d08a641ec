"""The scripts in examples/ run headless, without napari or Qt, and do what they say.

Each runs in a fresh Python process (as ``python examples/<name>.py``) in an empty working
directory, which must stay empty unless the script is given an output path.
"""

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
COINS_PIXELS = 303 * 384

#: Runs the script as __main__, then fails if it (or anything it imported) loaded napari or Qt.
RUNNER = """
import runpy, sys
script, *args = sys.argv[1:]
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
gui = sorted(m for m in sys.modules if m.split(".")[0] in {NAMES})
assert not gui, f"the example imported {{gui}}"
""".format(NAMES={"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy"})


def run_example(name, *args, cwd):
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(EXAMPLES / name), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def number(pattern, text):
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the output:\n{text}"
    return match.group(1)


def test_every_example_is_tested():
    tested = {"segment_nuclei.py", "compare_methods.py", "model_reuse.py", "objects_table.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_segment_nuclei(tmp_path):
    out = run_example("segment_nuclei.py", cwd=tmp_path)
    assert list(tmp_path.iterdir()) == [], "wrote files without --output"
    # the most blue of the four colour classes is the haematoxylin-stained nuclei
    cluster = int(number(r"nuclei: cluster (\d) \(the most blue\)", out))
    rgb = [int(v) for v in number(rf"cluster {cluster}: mean RGB \[([\d, ]+)\]", out).split(", ")]
    assert rgb[2] > rgb[0]
    n = int(number(r"(\d+) nuclei, median area", out))
    assert 150 <= n <= 800
    median_area = float(number(r"median area (\d+) pixels", out))
    assert 20 <= median_area <= 400

    from skimage.io import imread

    out = run_example("segment_nuclei.py", "--output", "nuclei.tif", cwd=tmp_path)
    labels = imread(tmp_path / "nuclei.tif")
    assert labels.shape == (512, 512)
    assert np.array_equal(np.unique(labels), np.arange(n + 1))  # objects 1..n, same count as printed


def test_compare_methods(tmp_path):
    out = run_example("compare_methods.py", cwd=tmp_path)
    assert list(tmp_path.iterdir()) == []
    aris = [float(v) for v in re.findall(r"ARI (-?[\d.]+)", out)]
    assert len(aris) == 3 and all(-1 <= a <= 1 for a in aris)
    assert aris[0] > 0.5  # agglomerative Ward and K-means mostly agree on three grey classes
    recut = [int(v) for v in number(r"re-cut to 5 clusters: pixels per label \[([\d, ]+)\]", out).split(", ")]
    assert len(recut) == 5 and sum(recut) == COINS_PIXELS and min(recut) > 0
    assert 2 <= int(number(r"suggested k .*: (\d+)", out)) <= 8


def test_model_reuse(tmp_path):
    out = run_example("model_reuse.py", cwd=tmp_path)
    assert list(tmp_path.iterdir()) == [], "the model file must go to a temporary folder"
    assert "same labels True" in out
    shares = [float(v) for v in number(r"share of each label: \[([\d., ]+)\]", out).split(", ")]
    assert len(shares) == 5 and sum(shares) == pytest.approx(1, abs=0.01)

    run_example("model_reuse.py", "--output-dir", "models", cwd=tmp_path)
    from napari_cluster_seg import ClusterModel

    model = ClusterModel.load(tmp_path / "models" / "astronaut-5-lab.json")
    assert model.n_clusters == 5


def test_objects_table(tmp_path):
    out = run_example("objects_table.py", cwd=tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert int(number(r"(\d+) objects in cluster 3", out)) == 24  # the photo shows 24 coins

    args = ("--output", "coins.csv", "--pixel-size", "0.1", "--unit", "mm")
    run_example("objects_table.py", *args, cwd=tmp_path)
    with open(tmp_path / "coins.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 24
    assert [int(r["label"]) for r in rows] == list(range(1, 25))
    for row in rows:
        assert row["size_unit"] == "mm^2" and row["cluster"] == "3"
        assert float(row["area"]) == pytest.approx(int(row["pixels"]) * 0.01)
        assert 300 <= int(row["pixels"]) < COINS_PIXELS
        assert 0 <= float(row["centroid-0"]) <= 30.3 and 0 <= float(row["centroid-1"]) <= 38.4
        assert 100 < float(row["mean_grey"]) <= 255  # the coins are the bright class
