"""The napari-cluster-seg command end to end on files (click's CliRunner)."""

import contextlib
import threading
import time

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
    r = _run("segment", tmp_path / "a.tif", "-o", tmp_path, "--workers", 2, "--scheduler", "tcp://x:1")
    assert r.exit_code == 2 and "give one of them" in r.output  # not a silent choice of one


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


def test_an_interrupted_write_waits_for_its_running_tasks(tmp_path):
    """Interrupted from another thread (as the widget's Save labels is), the write leaves nothing:
    the blocks still being computed finish before the temporary output is removed (with dask's
    shared pool they went on writing and re-created it)."""
    da = pytest.importorskip("dask.array")
    from dask.callbacks import Callback

    def slow(block):
        time.sleep(0.02)
        return block

    labels = da.ones((192, 192), np.uint8, chunks=16).map_blocks(slow, dtype=np.uint8)
    done = []

    class Interrupt(Callback):
        def _posttask(self, *args):
            done.append(1)
            if len(done) == 5:
                raise KeyboardInterrupt

    def write():
        with contextlib.suppress(KeyboardInterrupt), Interrupt():
            _io.write_zarr(labels, tmp_path / "c.zarr")

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    time.sleep(0.3)  # time for any straggling task to write its block
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


def test_batch_outputs_are_checked_before_anything_is_written(tmp_path):
    """Two inputs with one output name (or one input twice), an output that is an input, a folder
    given for a file, a missing model folder: refused before the fit, nothing written or lost."""
    a = _img((30, 30))
    for sub in ("d1", "d2", "out", "keep"):
        (tmp_path / sub).mkdir()
    tifffile.imwrite(tmp_path / "d1" / "x.tif", a)
    tifffile.imwrite(tmp_path / "d2" / "x.tif", a[::-1])
    (tmp_path / "keep" / "mine.txt").write_text("mine")
    x1, x2, out = tmp_path / "d1" / "x.tif", tmp_path / "d2" / "x.tif", tmp_path / "out"
    cases = [
        (("segment", x1, x2, "-o", out), "would both be written"),
        (("segment", x1, x1, "-o", out, "--overwrite"), "would both be written"),
        (("segment", x1, "-o", out, "--save-model", out / "x_clusters.csv"), "would both be written"),
        (("fit", x1, "-o", x1, "--overwrite"), "would replace the input"),
        (("fit", x1, "-o", tmp_path / "keep", "--overwrite"), "is a folder"),
        (("segment", x1, "-o", out, "--save-model", tmp_path / "keep", "--overwrite"), "is a folder"),
        (("segment", x1, "-o", x1), "is a file, not a folder"),
        (("segment", x1, "-o", out, "--save-model", tmp_path / "no" / "m.json"), "does not exist"),
    ]
    for args, message in cases:
        r = _run(*args)
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, (args, r.output)
    assert list(out.iterdir()) == []
    assert (tmp_path / "keep" / "mine.txt").read_text() == "mine"
    np.testing.assert_array_equal(tifffile.imread(x1), a)


def _ome_zarr(path, img, shapes, paths, version):
    """An OME-Zarr image (c, y, x) whose levels have ``shapes`` (any downsampling factor), with
    scale and pixel-centre translation per level."""
    g = zarr.open_group(path, mode="w", zarr_format=3 if version == "0.5" else 2)
    datasets = []
    for p, shape in zip(paths, shapes):
        index = [
            np.floor(np.arange(m) * n / m + 0.5).clip(0, n - 1).astype(int)
            for n, m in zip(img.shape[1:], shape)
        ]
        g.create_array(p, shape=(2, *shape), chunks=(1, 16, 16), dtype=img.dtype)[:] = img[:, index[0]][
            :, :, index[1]
        ]
        step = [n / m for n, m in zip(img.shape[1:], shape)]
        transforms = [
            {"type": "scale", "scale": [1.0] + [0.5 * s for s in step]},
            {"type": "translation", "translation": [0.0] + [0.25 * (s - 1) for s in step]},
        ]
        datasets.append({"path": p, "coordinateTransformations": transforms})
    axes = [{"name": "c", "type": "channel"}] + [
        {"name": n, "type": "space", "unit": "micrometer"} for n in "yx"
    ]
    ms = {"axes": axes, "datasets": datasets, "name": "img"}
    if version == "0.5":
        g.attrs["ome"] = {"version": "0.5", "multiscales": [ms]}
    else:
        g.attrs["multiscales"] = [dict(ms, version="0.4")]


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_labels_metadata_and_uneven_pyramid(tmp_path, version):
    """Label datasets named as written (not the image's "s0", "s1"), the version where the spec
    wants it, and every level the nearest labels of level 0, also for a 4/3 downsampling."""
    img = np.stack([_img((64, 48)), _img((64, 48), seed=1)])
    shapes, paths = [(64, 48), (48, 36), (21, 16)], ["s0", "s1", "s2"]
    _ome_zarr(tmp_path / "img.ome.zarr", img, shapes, paths, version)
    r = _run("segment", tmp_path / "img.ome.zarr", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    labels = zarr.open_group(tmp_path / "img.ome.zarr" / "labels", mode="r")
    group = labels["clusters"]
    attrs = group.attrs["ome"] if version == "0.5" else group.attrs
    if version == "0.5":
        assert attrs["version"] == "0.5" and labels.attrs["ome"] == {"labels": ["clusters"], "version": "0.5"}
    else:
        assert attrs["multiscales"][0]["version"] == "0.4" and labels.attrs["labels"] == ["clusters"]
    assert "source" in attrs["image-label"]
    (ms,) = attrs["multiscales"]
    assert [a["name"] for a in ms["axes"]] == ["y", "x"]
    lab0 = group["0"][:]
    header, *rows = (tmp_path / "img_clusters.csv").read_text().splitlines()
    assert header.split(",")[4:6] == ["area", "size_unit"]  # in the axes' units: pixels of 0.5 um
    assert all(float(r.split(",")[4]) == 0.25 * int(r.split(",")[2]) for r in rows)
    assert {r.split(",")[5] for r in rows} == {"micrometer^2"}
    for i, (d, shape) in enumerate(zip(ms["datasets"], shapes)):
        assert d["coordinateTransformations"][0]["scale"] == [0.5 * a / b for a, b in zip(shapes[0], shape)]
        level = group[d["path"]][:]
        index = [
            np.floor((np.arange(m) + 0.5) * n / m + 1e-6).clip(0, n - 1).astype(int)
            for n, m in zip(shapes[0], shape)
        ]
        np.testing.assert_array_equal(level, lab0[index[0]][:, index[1]])


def test_tiny_file_chunks_are_read_in_blocks_of_many_chunks(tmp_path):
    """A zarr chunked (1, 3) (or a TIFF of 1-row strips) is read in blocks of whole chunks, not as
    a task per chunk (minutes for 10**4 chunks); the labels are the same."""
    img = _img((40, 60))
    zarr.create_array(tmp_path / "t.zarr", shape=img.shape, chunks=(1, 3), dtype=img.dtype)[:] = img
    big = _io.read_image(tmp_path / "t.zarr").data
    assert big.numblocks == (1, 1)
    image = _io._dask(np.broadcast_to(np.uint16(0), (64, 2048, 2048)))  # one huge chunk: split
    assert image.chunksize[0] * image.chunksize[1] * image.chunksize[2] * 2 <= _io.BLOCK_BYTES
    store = zarr.create_array(tmp_path / "s.zarr", shape=(4000, 64), chunks=(4, 64), dtype=np.uint8)
    kept = zarr.create_array(store={}, shape=(64, 2048, 2048), chunks=(16, 512, 512), dtype=np.uint16)
    assert _io._dask(kept).chunksize == (16, 512, 512)  # 8 MB chunks: read as they are stored
    rows = _io._dask(store).chunks[0]
    assert len(rows) < 4000 // 4 and all(r % 4 == 0 for r in rows)
    r = _run("segment", tmp_path / "t.zarr", "-o", tmp_path, "-k", 3)
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(
        zarr.open_array(tmp_path / "t_labels.zarr", mode="r")[:], cluster_image(img, 3).labels
    )


def test_tiff_writer_computes_each_block_once(tmp_path):
    """Blocks taller than the TIFF's strips (and, from the command, stacks whose blocks hold many
    planes) are labelled once, not once per strip or plane crossing them."""
    da = pytest.importorskip("dask.array")
    calls = []

    def count(block):
        calls.extend([block.shape] if block.size else [])
        return block

    labels = da.ones((1100, 70), dtype=np.uint8, chunks=(1100, 40)).map_blocks(count, dtype=np.uint8)
    _io.write_tiff(labels, tmp_path / "l.tif", compute=lambda job: job.compute(scheduler="sync"))
    assert len(calls) == 2 and (tifffile.imread(tmp_path / "l.tif") == 1).all()
    from napari_cluster_seg.cli import _one_plane_blocks

    stack = da.zeros((6, 30, 40, 3), dtype=np.uint8, chunks=(3, 10, 40, 3))
    assert _one_plane_blocks(stack, -1).chunks[:3] == ((1,) * 6, (30,), (40,))
    assert _one_plane_blocks(stack, None).chunks[:2] == ((1,) * 6, (1,) * 30)


def test_layout_from_the_file_and_unreadable_files(tmp_path):
    """A grey + alpha PNG is a grey image (not a volume of 2 planes), TIFF samples that are not RGB
    are channels, a TIFF's T axis is time; a damaged file is an Error naming it (no traceback)."""
    import imageio.v3 as iio

    grey = (_img((30, 40)) // 16).astype(np.uint8)
    iio.imwrite(tmp_path / "la.png", np.stack([grey, np.full_like(grey, 255)], -1))
    image = _io.read_image(tmp_path / "la.png")
    assert image.data.shape == (30, 40) and not image.rgb
    tifffile.imwrite(tmp_path / "s.tif", np.stack([grey, grey[::-1]], -1), extrasamples=["unspecified"])
    assert _io.read_image(tmp_path / "s.tif").channel_axis == 2
    tifffile.imwrite(tmp_path / "t.tif", np.stack([grey] * 3), imagej=True, metadata={"axes": "TYX"})
    assert _io.read_image(tmp_path / "t.tif").time_axis == 0
    r = _run("segment", tmp_path / "t.tif", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "t_clusters.csv").read_text().splitlines()[0].split(",")[4] == "area"  # not volume
    (tmp_path / "bad.png").write_bytes(b"hi")
    (tmp_path / "bad.tif").write_bytes(b"hi")
    root = zarr.open_group(tmp_path / "bad.ome.zarr", mode="w", zarr_format=2)
    root.attrs["multiscales"] = [{"version": "0.4", "axes": [], "datasets": [{"path": "0"}]}]  # no array 0
    for name in ("bad.png", "bad.tif", "bad.ome.zarr"):
        r = _run("fit", tmp_path / name, "-o", tmp_path / "m.json")
        assert r.exit_code == 2 and f"{name} could not be read" in r.output, r.output


def test_a_damaged_chunk_is_an_error_message_and_leaves_nothing(tmp_path):
    img = _img((40, 40))
    z = zarr.create_array(tmp_path / "v.zarr", shape=img.shape, chunks=(20, 20), dtype=img.dtype)
    z[:] = img
    (tmp_path / "v.zarr" / "c" / "1" / "1").write_bytes(b"not zstd")
    (tmp_path / "out").mkdir()
    r = _run("segment", tmp_path / "v.zarr", "-o", tmp_path / "out")
    assert r.exit_code == 1 and "Error: " in r.output and "Traceback" not in r.output, r.output
    assert list((tmp_path / "out").iterdir()) == []


def test_a_batch_is_read_one_image_at_a_time(tmp_path, monkeypatch):
    """PNG / JPEG / small TIFF are loaded whole: a batch (a plate of a thousand wells) loads each one
    when its turn comes, not all of them before the first is labelled; but every file is checked
    (its header) before anything is written."""
    import imageio.v3 as iio

    from napari_cluster_seg import cli

    for name in "abc":
        iio.imwrite(tmp_path / f"{name}.png", (_img((20, 30), seed=ord(name)) // 16).astype(np.uint8))
    events = []
    read_plain, apply_one = _io._read_plain, cli._apply_one
    monkeypatch.setattr(
        _io, "_read_plain", lambda path: events.append(f"read {path.stem}") or read_plain(path)
    )
    monkeypatch.setattr(
        cli, "_apply_one", lambda m, img, *a: events.append(f"label {img.path.stem}") or apply_one(m, img, *a)
    )
    (tmp_path / "out").mkdir()
    r = _run(
        "segment",
        *(tmp_path / f"{n}.png" for n in "abc"),
        "-o",
        tmp_path / "out",
        "--save-model",
        tmp_path / "m.json",
    )
    assert r.exit_code == 0, r.output
    assert events == ["read a", "label a", "read b", "label b", "read c", "label c"]
    (tmp_path / "d.png").write_bytes(b"damaged")
    r = _run("apply", tmp_path / "m.json", tmp_path / "a.png", tmp_path / "d.png", "-o", tmp_path)
    assert (
        r.exit_code == 2
        and "d.png could not be read" in r.output
        and not (tmp_path / "a_labels.tif").exists()
    )


def test_a_failed_rename_keeps_the_old_output(tmp_path, monkeypatch):
    """--overwrite: the old output is replaced only by a complete new one; if the final rename fails
    the old one is back under its name and nothing else is left."""
    import os

    (tmp_path / "m.json").write_text("old")
    real = os.replace

    def replace(src, dst):
        if ".partial-" in str(src):
            raise PermissionError(f"cannot rename {src}")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(PermissionError):
        _io.write_text("new", tmp_path / "m.json", overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"] and (tmp_path / "m.json").read_text() == "old"
