"""Peak extra memory of one call, as every benchmark here measures it (see README.md).

Two measures of the same call: the resident set size sampled every 2 ms, minus the size before
it (freed heap memory is returned to the system first, so earlier runs' leftovers do not lower
it), which also counts memory that C/C++ libraries (OpenCV, faiss) allocate; and the peak of what
Python and numpy allocate (``tracemalloc``), which catches short peaks between two samples.
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
import tracemalloc

import psutil

_PROCESS = psutil.Process()


def rss() -> int:
    """Resident set size of this process, in bytes."""
    return _PROCESS.memory_info().rss


def release_free_memory() -> None:
    """Return freed heap memory to the system (glibc), so the baseline does not hide earlier runs'
    leftovers: without it, a run after others measured up to 100 MB less than in a fresh process."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory(fn):
    """Run ``fn()``; return (result, sampled resident peak beyond the start, tracemalloc peak)."""
    gc.collect()
    release_free_memory()
    base = rss()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    tracemalloc.start()
    traced_base = tracemalloc.get_traced_memory()[0]
    try:
        result = fn()
    finally:
        traced = tracemalloc.get_traced_memory()[1] - traced_base
        tracemalloc.stop()
        stop.set()
        thread.join()
    peak[0] = max(peak[0], rss())
    return result, peak[0] - base, traced


def peak_extra_memory(fn):
    """Run ``fn()``; return (result, peak extra bytes): the larger of the two measures."""
    result, sampled, traced = peak_memory(fn)
    return result, max(sampled, traced)
