"""The ``napari-cluster-seg`` command: fit a model, apply it to a batch of images, or both.

Built on click (argument parsing, help, testing with ``CliRunner``); dask runs the labelling block
by block, with dask's progress bar (or distributed's, with ``--scheduler`` / ``--workers``).
See ``docs/cli.md``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

from . import _io, _ome
from .core import ClusterModel, fit_lazy, label_lazy, write_table_csv
from .core.lazy import lazy_cluster_stats, lazy_cluster_table, resolve_layout

#: Exit code of every refused input (bad option, missing file, existing output, ...).
EXIT_ERROR = 2
#: Exit code of an unexpected error while computing (a damaged chunk of a file, or a bug).
EXIT_UNEXPECTED = 1
FORMATS = ("auto", "tif", "zarr", "ome-zarr")


class Runner:
    """Where dask runs: the local threads (default), a new LocalCluster or an existing cluster."""

    def __init__(self, scheduler=None, workers=None, quiet=False):
        self.scheduler, self.workers, self.quiet = scheduler, workers, quiet
        self.client = None

    def __enter__(self):
        if self.scheduler and self.workers:
            raise ValueError(
                f"--scheduler {self.scheduler} and --workers {self.workers} both say where to run; give "
                "one of them (--workers starts a local cluster, --scheduler joins an existing one)."
            )
        if self.scheduler or self.workers:
            try:
                from distributed import Client, LocalCluster
            except ImportError:
                raise ValueError(
                    "--scheduler and --workers need dask.distributed; install it with "
                    "pip install 'napari-cluster-seg[large]'."
                ) from None
            if self.scheduler:
                self.client = Client(self.scheduler, timeout="10s", set_as_default=False)
            else:
                cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True)
                self.client = Client(cluster, set_as_default=False)
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            cluster = self.client.cluster if self.scheduler is None else None
            self.client.close()
            if cluster is not None:
                cluster.close()

    def compute(self, *collections):
        """Compute dask collections with a progress bar; returns their results."""
        if self.client is not None:
            futures = self.client.compute(list(collections))
            if not self.quiet:
                from distributed import progress

                progress(futures)
            return tuple(self.client.gather(futures))
        ctx = contextlib.nullcontext()
        if not self.quiet:
            from dask.diagnostics import ProgressBar

            ctx = ProgressBar(out=sys.stderr)
        with ctx:
            return _io.compute_and_wait(*collections)


def _fail(message) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _guarded(fn):
    """Turn the errors of bad input into a message and exit code 2 (no traceback)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError, FileNotFoundError, PermissionError, IsADirectoryError) as err:
            _fail(err)
        except OSError as err:
            _fail(f"{err.__class__.__name__}: {err}")
        except Exception as err:  # e.g. a damaged chunk found while computing: a message, exit code 1
            if os.environ.get("NAPARI_CLUSTER_SEG_TRACEBACK"):
                raise
            click.echo(
                f"Error: {err.__class__.__name__}: {err}\n(no output was left half-written. If the inputs "
                "are intact this is a bug: please report it, with the traceback that "
                "NAPARI_CLUSTER_SEG_TRACEBACK=1 shows.)",
                err=True,
            )
            sys.exit(EXIT_UNEXPECTED)

    return wrapper


def _layout_options(f):
    """The options that say how an image's axes are laid out."""
    f = click.option("--rgb/--no-rgb", default=None, help="Colour channels last (default: as read).")(f)
    f = click.option("--channel-axis", type=int, default=None, help="Axis holding the channels.")(f)
    f = click.option(
        "--time-axis", type=int, default=None, help="Axis holding time points (default: as the file says)."
    )(f)
    return f


def _run_options(f):
    f = click.option(
        "--scheduler", metavar="ADDRESS", default=None, help="Run on this dask.distributed scheduler."
    )(f)
    f = click.option(
        "--workers", type=click.IntRange(1), default=None, help="Start a local cluster of N worker processes."
    )(f)
    f = click.option("--quiet", is_flag=True, help="No progress bars.")(f)
    f = click.option("--overwrite", is_flag=True, help="Replace existing outputs.")(f)
    return f


def _fit_options(f):
    f = click.option(
        "-k", "--n-clusters", type=int, default=3, show_default=True, help="Number of clusters."
    )(f)
    f = click.option(
        "--method",
        type=click.Choice(["kmeans", "agglomerative", "divisive"]),
        default="kmeans",
        show_default=True,
    )(f)
    f = click.option("--normalize", default=None, help="minmax, zscore, percentile or none.")(f)
    f = click.option("--smoothing", type=float, default=None, help="Gaussian sigma (pixels).")(f)
    f = click.option("--filters", default=None, help="Comma-separated filter features, e.g. log,gradient.")(f)
    f = click.option("--scales", default=None, help="Comma-separated filter sigmas, e.g. 1,4.")(f)
    f = click.option(
        "--subset",
        default=None,
        help="Fit on a part only: level=N (pyramid level), crop=0:512,0:512, every=N (blocks).",
    )(f)
    return f


def _fit_kwargs(
    image: _io.Image, n_clusters, method, normalize, smoothing, filters, scales, rgb, channel_axis, time_axis
):
    opts = {"rgb": image.rgb if rgb is None else rgb}
    axis = image.channel_axis if channel_axis is None else channel_axis
    if axis is not None and not opts["rgb"]:
        opts["channel_axis"] = axis
    time_axis = image.time_axis if time_axis is None else time_axis
    if time_axis is not None:
        opts["time_axis"] = time_axis
    if normalize is not None:
        opts["normalize"] = normalize
    if smoothing is not None:
        opts["smoothing"] = smoothing
    if filters:
        opts["filters"] = tuple(s.strip() for s in filters.split(",") if s.strip())
    if scales:
        try:
            opts["scales"] = tuple(float(s) for s in scales.split(","))
        except ValueError:
            raise ValueError(f"--scales {scales!r} must be numbers separated by commas, e.g. 1,4.") from None
    return dict(n_clusters=n_clusters, method=method, **opts)


def _fit(image: _io.Image, subset, kwargs, runner: Runner) -> ClusterModel:
    """The model of ``image``: streamed over all its blocks (on the runner's cluster, if any) unless
    ``subset`` names the part to fit on."""
    kwargs = dict(kwargs)
    n_clusters, method = kwargs.pop("n_clusters"), kwargs.pop("method")
    progress = None if runner.quiet else _FitProgress()
    try:
        return fit_lazy(
            image.levels,
            n_clusters,
            method,
            subset=subset,
            progress=progress,
            scheduler=runner.client,
            **kwargs,
        )
    finally:
        if progress is not None:
            progress.close()


class _FitProgress:
    """The fit's progress on one line of stderr."""

    def __init__(self):
        self.shown = False

    def __call__(self, stage, fraction):
        click.echo(f"\rfit: {stage} ({100 * fraction:3.0f} %)\x1b[K", nl=False, err=True)
        self.shown = True

    def close(self):
        if self.shown:
            click.echo("", err=True)


def _outputs(image: _io.Image, out_dir: Path, fmt: str):
    """The labels path (for OME-Zarr: ``labels/clusters`` inside the image), the CSV path and the
    format of ``image``'s outputs."""
    stem = image.path.resolve().name
    for suffix in (
        (".ome.tiff", ".ome.tif", ".ome.zarr") + _io.TIFF_SUFFIXES + _io.PLAIN_SUFFIXES + (".zarr",)
    ):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if fmt == "auto":
        fmt = {"ome-zarr": "ome-zarr", "zarr": "zarr"}.get(image.kind, "tif")
    if fmt == "ome-zarr" and image.kind != "ome-zarr":
        raise ValueError(f"--format ome-zarr needs an OME-Zarr input; {image.path} is not one.")
    csv = out_dir / f"{stem}_clusters.csv"
    if fmt == "ome-zarr":
        return image.path / "labels" / _ome.OME_LABEL_NAME, csv, fmt
    return out_dir / f"{stem}_labels.{'tif' if fmt == 'tif' else 'zarr'}", csv, fmt


def _check_outputs(inputs, outputs, overwrite) -> None:
    """Refuse, before anything is computed, outputs that exist (without ``overwrite``), that two
    inputs would both write, or that would replace (or lie inside) an input.

    ``inputs``: paths read; ``outputs``: (path, is a folder, the input it belongs to or None, and
    whether its writer creates its parent folder: an OME-Zarr image's ``labels``).
    """
    sources = {Path(p).resolve(): Path(p) for p in inputs}
    seen = {}
    for path, folder, owner, parent_made in outputs:
        _io.check_free(path, overwrite, folder, parent_made=parent_made)
        key = path.resolve()
        if key in seen:
            first = seen[key]
            raise ValueError(
                f"{first or 'an output'} and {owner or 'another output'} would both be written to {path}"
                " (the same name, or the same image given twice); give each image once, with "
                "distinct names, or label them into different folders."
            )
        seen[key] = owner
        for src, given in sources.items():
            if key == src or key in src.parents:
                raise ValueError(
                    f"the output {path} would replace the input {given}; choose another output name "
                    "or folder."
                )


def _batch_outputs(opened, out_dir: Path, fmt) -> list:
    """Every output of a batch, as :func:`_check_outputs` takes them."""
    if not out_dir.is_dir():
        what = "is a file, not a folder" if out_dir.exists() else "does not exist"
        raise ValueError(f"the output folder {out_dir} {what}; give an existing folder (-o/--out-dir).")
    outputs = []
    for img in opened:
        labels_path, csv_path, kind = _outputs(img, out_dir, fmt)
        outputs += [
            (labels_path, kind != "tif", img.path, kind == "ome-zarr"),
            (csv_path, False, img.path, False),
        ]
    return outputs


def _one_plane_blocks(data, channel_axis):
    """``data`` chunked by 1 along the labels' leading axes (all but the last two, and the channels),
    its planes in blocks of about :data:`~._io.BLOCK_BYTES`."""
    if channel_axis is not None and -data.ndim <= channel_axis < 0:
        channel_axis += data.ndim
    label_axes = [ax for ax in range(data.ndim) if ax != channel_axis]
    if len(label_axes) <= 2:
        return data
    chunks = {ax: 1 for ax in label_axes[:-2]}
    chunks.update({ax: "auto" for ax in label_axes[-2:]})
    return data.rechunk(chunks, block_size_limit=_io.BLOCK_BYTES)


def _apply_one(model, image: _io.Image, out_dir: Path, fmt, runner: Runner, overwrite, axes):
    rgb, channel_axis, time_axis = axes
    rgb = image.rgb if rgb is None else rgb
    time_axis = image.time_axis if time_axis is None else time_axis
    channel_axis = image.channel_axis if channel_axis is None and not rgb else channel_axis
    data = image.data
    labels_path, csv_path, fmt = _outputs(image, out_dir, fmt)
    if fmt == "tif":  # written plane by plane: blocks of one plane, so that each is labelled once
        data = _one_plane_blocks(data, data.ndim - 1 if rgb else channel_axis)
    labels = label_lazy(model, data, channel_axis=channel_axis, rgb=rgb, time_axis=time_axis, clean=False)
    layout = resolve_layout(model, data, channel_axis=channel_axis, rgb=rgb, time_axis=time_axis)
    stats = lazy_cluster_stats(labels, data, model, layout)
    found = []

    def compute(job):  # the first job (level 0's labels) also sums the stats: one pass over the image
        if found:
            return runner.compute(job)[0]
        found.append(runner.compute(job, stats)[1])

    if fmt == "tif":  # written strip by strip: the stats take a pass of their own
        found.append(runner.compute(stats)[0])
        _io.write_tiff(labels, labels_path, overwrite=overwrite, compute=lambda job: runner.compute(job)[0])
    elif fmt == "zarr":
        _io.write_zarr(labels, labels_path, overwrite=overwrite, compute=compute)
    else:
        labels_path = _ome.write_ome_labels(labels, image, overwrite=overwrite, compute=compute)
    stats_value = found[0]
    scale, units = _ome.physical_size(image)
    table = lazy_cluster_table(stats_value, model, layout, scale=scale, units=units)
    with _io.atomic_path(csv_path, overwrite) as tmp:
        write_table_csv(table, tmp)
    return labels_path, csv_path


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Segment images by clustering their pixels; any size, on one machine or a dask cluster."""


@main.command()
@click.argument("image", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", "output", type=click.Path(path_type=Path), required=True, help="Model JSON file."
)
@_fit_options
@_layout_options
@_run_options
@_guarded
def fit(
    image,
    output,
    n_clusters,
    method,
    normalize,
    smoothing,
    filters,
    scales,
    subset,
    rgb,
    channel_axis,
    time_axis,
    scheduler,
    workers,
    quiet,
    overwrite,
):
    """Fit a model on IMAGE (or a subset of it) and save it as JSON."""
    img = _io.read_image(image)
    _check_outputs([image], [(output, False, None, False)], overwrite)
    kwargs = _fit_kwargs(
        img, n_clusters, method, normalize, smoothing, filters, scales, rgb, channel_axis, time_axis
    )
    with Runner(scheduler, workers, quiet) as runner:
        model = _fit(img, subset, kwargs, runner)
    _io.write_json(model.to_dict(), output, overwrite=overwrite)
    click.echo(f"model: {output}")


def _apply_all(model, opened, out_dir, fmt, axes, runner, overwrite) -> None:
    """Label the opened images (their outputs checked by :func:`_check_outputs` already); those
    opened without pixels are read one at a time."""
    for img in opened:
        img = img if img.levels else _io.read_image(img.path)
        labels_path, csv_path = _apply_one(model, img, out_dir, fmt, runner, overwrite, axes)
        click.echo(f"{img.path}: labels {labels_path}, table {csv_path}")


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out-dir", type=click.Path(path_type=Path), default=Path("."), show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="Labels file type; auto: OME-Zarr labels for OME-Zarr, zarr for zarr, else TIFF.",
)
@_layout_options
@_run_options
@_guarded
def apply(model, images, out_dir, fmt, rgb, channel_axis, time_axis, scheduler, workers, quiet, overwrite):
    """Label IMAGES with a saved MODEL: labels and a per-cluster CSV per image."""
    m = ClusterModel.load(model)
    opened = [_io.read_image(p, pixels=False) for p in images]
    _check_outputs([model, *images], _batch_outputs(opened, out_dir, fmt), overwrite)
    with Runner(scheduler, workers, quiet) as runner:
        _apply_all(m, opened, out_dir, fmt, (rgb, channel_axis, time_axis), runner, overwrite)


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out-dir", type=click.Path(path_type=Path), default=Path("."), show_default=True)
@click.option(
    "--fit-on",
    type=click.Path(path_type=Path),
    default=None,
    help="Fit on this image (default: the first of IMAGES).",
)
@click.option("--save-model", type=click.Path(path_type=Path), default=None, help="Also save the model here.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@_fit_options
@_layout_options
@_run_options
@_guarded
def segment(
    images,
    out_dir,
    fit_on,
    save_model,
    fmt,
    n_clusters,
    method,
    normalize,
    smoothing,
    filters,
    scales,
    subset,
    rgb,
    channel_axis,
    time_axis,
    scheduler,
    workers,
    quiet,
    overwrite,
):
    """Fit one model (on the first image, or --fit-on) and label every image with it."""
    first = _io.read_image(fit_on or images[0])
    rest = images if fit_on is not None else images[1:]  # the first is open already
    opened = ([] if fit_on is not None else [first]) + [_io.read_image(p, pixels=False) for p in rest]
    outputs = _batch_outputs(opened, out_dir, fmt)  # all refused before the fit
    if save_model is not None:
        outputs.append((save_model, False, None, False))
    _check_outputs([fit_on or images[0], *images], outputs, overwrite)
    kwargs = _fit_kwargs(
        first, n_clusters, method, normalize, smoothing, filters, scales, rgb, channel_axis, time_axis
    )
    with Runner(scheduler, workers, quiet) as runner:  # one cluster for the fit and the labels
        model = _fit(first, subset, kwargs, runner)
        if save_model is not None:
            _io.write_json(model.to_dict(), save_model, overwrite=overwrite)
        _apply_all(model, opened, out_dir, fmt, (rgb, channel_axis, time_axis), runner, overwrite)


if __name__ == "__main__":  # pragma: no cover
    main()
