"""What a run needs (:class:`Job`), the worker bodies, and :class:`JobRunner` (start / cancel / progress).

The worker bodies are generators run in napari's worker thread; they only call the core and never
touch a widget or a layer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from ..core import ClusterModel, Progress, iter_cluster_image, iter_scan_n_clusters, warm_up
from ._lazy import lazy_run
from ._state import Source


@dataclass
class Job:
    """Everything a run needs, captured on the main thread when Run is pressed."""

    arrays: list  # layer data (possibly lazy), one per channel layer
    options: dict
    source: Source  # the layers and data objects the result is computed from
    method: str
    layer_kwargs: dict = field(default_factory=dict)
    new_layer: bool = False
    signature: tuple = ()  # the settings apart from k: a change of k alone re-cuts a hierarchy
    lazy: bool = False  # lazy (dask, zarr) or multiscale data: fitted by streaming, labelled lazily
    levels: tuple = ()  # the pyramid levels of a multiscale image layer (largest first)
    fit_level: int = 0  # the pyramid level the model is fitted on (level 0 is labelled through it)

    @property
    def source_name(self) -> str:
        return self.source.name


def job_image(job: Job):
    """The job's image, not loaded: the core checks the memory a run needs (for its path and
    options) before it loads a lazy array. Several channel layers are stacked, lazily when any
    of them is lazy (dask comes with napari)."""
    arrays = job.arrays
    if len(arrays) == 1:
        return arrays[0]
    if all(isinstance(a, np.ndarray) for a in arrays):
        return np.stack(arrays, axis=-1)
    import dask.array as da  # only for lazy layers

    return da.stack([da.asarray(a) for a in arrays], axis=-1)


def run_job(job: Job):
    """Worker body (generator): cluster the data (loaded; a lazy layer streamed), return the result."""
    if job.lazy:
        return (yield from lazy_run(job, job_image(job)))
    return (yield from iter_cluster_image(job_image(job), **job.options))


def scan_job(job: Job, k_max: int):
    """Worker body (generator): score k = 2..k_max with the job's settings."""
    # k is what is scanned (iter_scan_n_clusters ignores n_clusters; clean-up does not change scores)
    return (yield from iter_scan_n_clusters(job_image(job), k_max, **job.options))


def apply_job(job: Job, path):
    """Worker body: read the model file at ``path`` and label the job's image with it."""
    yield Progress("reading the model file", 0.0)
    model = ClusterModel.load(path)
    yield Progress("applying the model", 0.5)
    return model.apply(
        job_image(job),
        channel_axis=job.options["channel_axis"],
        rgb=job.options["rgb"],
        time_axis=job.options["time_axis"],
    )


class JobView(Protocol):
    """What :class:`JobRunner` shows a job's course on (the main widget)."""

    def set_status(self, text: str, *, error: bool = False) -> None: ...
    def set_busy(self, busy: bool) -> None: ...
    def show_progress(self, step: Progress) -> None: ...
    def report_error(self, err: Exception) -> None: ...


class JobRunner:
    """Runs one job at a time in a napari worker and reports its course to a :class:`JobView`.

    ``worker`` is the running worker (None when idle). ``warm_up_thread`` imports what the
    computations load lazily while the user picks options; the first job waits for it.
    ``guard`` wraps the worker's callbacks (they do nothing once the widget is gone).
    """

    def __init__(self, view: JobView, guard: Callable[[Callable], Callable] = lambda slot: slot):
        self.view = view
        self.guard = guard
        self.worker = None
        self.cancel_event = None
        self.cancelled_status, self.job_ended = "", True
        # the first Run then starts at once instead of waiting ~1.5 s for scikit-learn and friends
        self.warm_up_thread = threading.Thread(target=warm_up, name="napari-cluster-seg warm-up", daemon=True)
        self.warm_up_thread.start()

    def start(self, body, job: Job, on_done, what: str, *args) -> bool:
        """Run ``body(job, *args)`` in a worker; ``on_done(job, value)`` with its result."""
        return self.start_task(
            body, (job, *args), lambda value: on_done(job, value), f"{what} {job.source_name!r} ..."
        )

    def start_task(
        self,
        body,
        args: tuple,
        on_done,
        status: str,
        cancel_event: threading.Event | None = None,
        cancelled: str = "cancelled: earlier results are unchanged.",
    ) -> bool:
        """Run ``body(*args)`` in a worker; ``on_done(value)`` with its result. ``cancel_event`` is set
        on Cancel (for bodies that wait on work of their own between their steps)."""
        if self.worker is not None:
            self.view.set_status("already running: wait, or press Cancel.")
            return False
        from napari.qt.threading import create_worker

        warm_up_thread = self.warm_up_thread

        def after_warm_up(*body_args):
            # never import in two threads of ours at once (concurrent imports of modules that import
            # each other can see each other half-initialised): the first job waits for the warm-up
            warm_up_thread.join()
            return (yield from body(*body_args))

        # Errors are reported by the widget itself (status line and a warning notification).
        worker = create_worker(
            after_warm_up, *args, _progress={"desc": "Cluster segmentation"}, _ignore_errors=True
        )
        guard, view = self.guard, self.view
        worker.yielded.connect(guard(self._on_progress))
        worker.returned.connect(guard(self._ended(on_done)))
        worker.errored.connect(guard(self._ended(view.report_error)))
        worker.aborted.connect(guard(self._ended(lambda: view.set_status(cancelled))))
        worker.finished.connect(guard(self._on_finished))
        self.worker = worker
        self.cancel_event = cancel_event
        self.cancelled_status, self.job_ended = cancelled, False
        view.set_busy(True)
        view.set_status(status)
        worker.start()
        return True

    def _on_progress(self, step: Progress):
        self.view.show_progress(step)
        pbar = getattr(self.worker, "pbar", None)
        if pbar is not None:
            pbar.set_description(f"Cluster segmentation: {step.stage}")

    def _ended(self, slot):
        def ended(*args):
            self.job_ended = True
            slot(*args)

        return ended

    def _on_finished(self):
        if not self.job_ended:
            # Cancel came as the body returned: the worker then emits neither `returned` (it drops
            # the value of an aborted job) nor `aborted` (its loop had already ended)
            self.view.set_status(self.cancelled_status)
        self.worker = None
        self.cancel_event = None
        self.view.set_busy(False)

    def cancel(self):
        """Ask the running job to stop at its next step."""
        if self.worker is not None and not self.job_ended:  # (ended: its result is already shown)
            self.view.set_status("cancelling ...")
            self.worker.quit()
            if self.cancel_event is not None:
                self.cancel_event.set()

    def stop(self):
        """The widget is gone: stop the running job at its next step, touching no widget."""
        if self.worker is not None:
            self.worker.quit()
            if self.cancel_event is not None:
                self.cancel_event.set()
