"""The quality benchmark runs on a two-image subset of each annotated set (skipped without the data)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "quality.py"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_best_cut_dice_on_known_labels(quality):
    labels = np.array([[1, 1, 2, 3], [1, 2, 3, 3]])
    truth = labels == 1  # the darkest cluster is the foreground
    assert quality.best_cut_dice(labels, truth) == 1.0
    assert quality.best_cut_dice(labels, labels >= 2) == 1.0
    half = np.zeros_like(truth)
    half[0, 0] = True
    assert quality.best_cut_dice(labels, half) == pytest.approx(2 * 1 / (1 + 3))


@pytest.mark.parametrize("name", ["dsb2018-nuclei", "dsb2018-tissue"])
def test_quality_script_runs_on_a_subset(quality, shared_data, name, capsys):
    if not (shared_data / name).is_dir():
        pytest.skip(f"{name} not in {shared_data}")
    scores, ids = quality.evaluate(shared_data, name, limit=2)
    assert len(ids) == 2
    assert set(scores) == {"otsu", "sklearn-kmeans", "plain", "features", "best"}
    for per_image, seconds in scores.values():
        assert len(per_image) == 2 and all(0.3 < d <= 1.0 for d in per_image) and seconds > 0
    assert quality.main(["--data", str(shared_data), "--sets", name, "--limit", "2", "--per-image"]) == 0
    out = capsys.readouterr().out
    assert "mean Dice" in out and ids[0][:8] in out


@pytest.mark.parametrize("rgb", [False, True])
def test_ceiling_references_recover_a_noisy_disk(quality, rgb):
    """The two references that see the mask find a noisy bright disk; with a mask unrelated to the
    image they cannot (so they do use the image, not only the mask)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    disk = (yy - 48) ** 2 + (xx - 40) ** 2 < 20**2
    grey = np.clip(60 + 120 * disk + rng.normal(0, 20, disk.shape), 0, 255).astype(np.uint8)
    image = np.stack([grey, grey // 2, 255 - grey], -1) if rgb else grey
    unrelated = xx > 70

    def supervised(im, t):
        return quality.supervised_linear_labels(im, t, rgb)

    for labels_of in (quality.oracle_threshold_labels, supervised):
        assert quality.best_cut_dice(labels_of(image, disk), disk) > 0.95
        assert quality.best_cut_dice(labels_of(image, unrelated), unrelated) < 0.7
