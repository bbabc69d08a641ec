"""The napari-cluster-seg command end to end on files (click's CliRunner)."""

import numpy as np
import pytest
from scipy import ndimage as ndi

pytest.importorskip("zarr")
pytest.importorskip("click")
import tifffile  # noqa: E402
import zarr  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from napari_cluster_seg import _io  # noqa: E402
from napari_cluster_seg.cli import main  # noqa: E402
from napari_cluster_seg.core import ClusterModel, cluster_image  # noqa: E402


def _img(shape, seed=0):
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.random(shape) * 4000, 2).astype(np.uint16)


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args] + ["--quiet"])
    return result


def test_segment_tiff_png_zarr_one_model_for_the_batch(tmp_path):
    a, b = _img((70, 90)), _img((50, 60), seed=1)
    tifffile.imwrite(tmp_path / "a.tif", a)
    zarr.create_array(tmp_path / "b.zarr", shape=b.shape, chunks=(20, 25), dtype=b.dtype)[:] = b
    out = tmp_path / "out"
    out.mkdir()
    r = _run(
        "segment",
        tmp_path / "a.tif",
        tmp_path / "b.zarr",
        "-o",
        out,
        "-k",
        3,
        "--save-model",
        tmp_path / "m.json",
    )
    assert r.exit_code == 0, r.output
    model = ClusterModel.load(tmp_path / "m.json")
    np.testing.assert_array_equal(tifffile.imread(out / "a_labels.tif"), model.predict(a))
    np.testing.assert_array_equal(zarr.open_array(out / "b_labels.zarr", mode="r")[:], model.predict(b))
    np.testing.assert_array_equal(model.points, cluster_image(a, 3).model.points)
    header, *rows = (out / "a_clusters.csv").read_text().splitlines()
    assert header.startswith("index,label,pixels,fraction,area")
    assert sum(int(r.split(",")[2]) for r in rows) == a.size


def test_fit_then_apply_png(tmp_path):
    import imageio.v3 as iio

    rgb = (np.stack([_img((40, 50), s) for s in range(3)], -1) // 16).astype(np.uint8)
    iio.imwrite(tmp_path / "p.png", rgb)
    assert _run("fit", tmp_path / "p.png", "-o", tmp_path / "m.json", "-k", 4).exit_code == 0
    r = _run("apply", tmp_path / "m.json", tmp_path / "p.png", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    model = ClusterModel.load(tmp_path / "m.json")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "p_labels.tif"), model.predict(rgb, rgb=True))


def test_refuses_to_overwrite_and_overwrites_when_asked(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", _img((30, 30)))
    (tmp_path / "a_labels.tif").write_bytes(b"mine")
    r = _run("segment", tmp_path / "a.tif", "-o", tmp_path)
    assert r.exit_code == 2 and "exists already" in r.output and "Traceback" not in r.output
    assert (tmp_path / "a_labels.tif").read_bytes() == b"mine"
    assert not (tmp_path / "a_clusters.csv").exists()
    assert _run("segment", tmp_path / "a.tif", "-o", tmp_path, "--overwrite").exit_code == 0
    assert tifffile.imread(tmp_path / "a_labels.tif").shape == (30, 30)


def test_bad_input_exits_with_code_2(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", _img((30, 30)))
    for args in (
        ("segment", tmp_path / "missing.tif", "-o", tmp_path),
        ("segment", tmp_path / "a.tif", "-o", tmp_path, "-k", 1),
        ("segment", tmp_path / "a.tif", "-o", tmp_path, "--subset", "level=5"),
        ("apply", tmp_path / "a.tif", tmp_path / "a.tif", "-o", tmp_path),  # not a model
    ):
        r = _run(*args)
        assert r.exit_code == 2, (args, r.output)
        assert "Error:" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("writer", ["tiff", "zarr"])
def test_failed_write_leaves_nothing(tmp_path, writer):
    da = pytest.importorskip("dask.array")
    calls = []

    def fail(block):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("disk full")
        return block

    labels = da.zeros((600, 600), np.uint8, chunks=100).map_blocks(fail, dtype=np.uint8)
    target = tmp_path / ("l.tif" if writer == "tiff" else "l.zarr")
    write = _io.write_tiff if writer == "tiff" else _io.write_zarr
    with pytest.raises(RuntimeError, match="disk full"):
        write(labels, target, compute=lambda job: job.compute(scheduler="sync"))
    assert list(tmp_path.iterdir()) == []


def test_ome_zarr_labels_with_pyramid(tmp_path):
    img = _img((64, 48))
    root = zarr.open_group(tmp_path / "img.ome.zarr", mode="w", zarr_format=2)
    root.create_array("0", shape=img.shape, chunks=(32, 32), dtype=img.dtype)[:] = img
    root.create_array("1", shape=(32, 24), chunks=(32, 32), dtype=img.dtype)[:] = img[::2, ::2]
    axes = [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    datasets = [
        {"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [2.0**i, 2.0**i]}]}
        for i in range(2)
    ]
    root.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": datasets}]
    r = _run("segment", tmp_path / "img.ome.zarr", "-o", tmp_path, "--subset", "level=1")
    assert r.exit_code == 0, r.output
    labels = zarr.open_group(tmp_path / "img.ome.zarr" / "labels", mode="r")
    assert labels.attrs["labels"] == ["clusters"]
    group = labels["clusters"]
    assert group.attrs["multiscales"][0]["datasets"] == datasets
    lab0 = group["0"][:]
    np.testing.assert_array_equal(group["1"][:], lab0[::2, ::2])
    assert (tmp_path / "img_clusters.csv").exists()
    assert _run("segment", tmp_path / "img.ome.zarr", "-o", tmp_path).exit_code == 2  # no overwrite


def test_local_cluster_run_gives_identical_labels(tmp_path):
    pytest.importorskip("distributed")
    img = _img((80, 64))
    zarr.create_array(tmp_path / "v.zarr", shape=img.shape, chunks=(30, 30), dtype=img.dtype)[:] = img
    (tmp_path / "o1").mkdir()
    (tmp_path / "o2").mkdir()
    assert _run("segment", tmp_path / "v.zarr", "-o", tmp_path / "o1", "--smoothing", 1).exit_code == 0
    r = _run("segment", tmp_path / "v.zarr", "-o", tmp_path / "o2", "--smoothing", 1, "--workers", 2)
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(
        zarr.open_array(tmp_path / "o1" / "v_labels.zarr", mode="r")[:],
        zarr.open_array(tmp_path / "o2" / "v_labels.zarr", mode="r")[:],
    )


def test_the_streamed_fit_runs_on_the_local_cluster(tmp_path):
    """Without --subset the fit streams the blocks, here on worker processes (pickled tasks):
    the model is cluster_image's on the loaded image."""
    pytest.importorskip("distributed")
    img = _img((80, 64))
    zarr.create_array(tmp_path / "v.zarr", shape=img.shape, chunks=(30, 30), dtype=img.dtype)[:] = img
    r = _run("fit", tmp_path / "v.zarr", "-o", tmp_path / "m.json", "-k", 3, "--workers", 2)
    assert r.exit_code == 0, r.output
    model = ClusterModel.load(tmp_path / "m.json")
    assert model.to_dict() == cluster_image(img, 3).model.to_dict()
