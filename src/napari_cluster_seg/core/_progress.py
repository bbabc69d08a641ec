"""Progress reports of a run: :class:`Progress`, and the drivers of generators that yield them."""

from __future__ import annotations

from typing import NamedTuple


class Progress(NamedTuple):
    """One progress report of :func:`iter_cluster_image`."""

    stage: str
    fraction: float


def run_with_progress(gen, progress=None):
    """Run a generator of :class:`Progress` to its end, calling ``progress(stage, fraction)``; its value."""
    try:
        while True:
            step = next(gen)
            if progress is not None:
                progress(step.stage, step.fraction)
    except StopIteration as stop:
        return stop.value


def as_progress(gen, stage: str, start: float, span: float):
    """Generator: run ``gen`` (which yields fractions 0..1) as :class:`Progress` in
    ``[start, start + span]``; returns its value."""
    try:
        while True:
            yield Progress(stage, start + span * min(1.0, float(next(gen))))
    except StopIteration as stop:
        return stop.value


def rescaled(gen, start: float, span: float):
    """Generator: re-yield the :class:`Progress` of ``gen`` with fractions mapped into
    ``[start, start + span]`` (a run inside a longer one); returns its value."""
    try:
        while True:
            step = next(gen)
            yield Progress(step.stage, start + span * step.fraction)
    except StopIteration as stop:
        return stop.value
