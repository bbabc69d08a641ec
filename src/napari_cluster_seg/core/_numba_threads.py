"""numba's thread pool for the compiled kernels: started with threads that sleep between parallel
regions, and described for reports. Used by :mod:`._accel` once the kernels load (numba is then
importable).

numba runs the parallel kernels on one of three threading layers: ``tbb`` (when the ``tbb``
package is installed), else ``omp`` (GNU OpenMP, present on almost every Linux), else
``workqueue``. OpenMP's threads by default keep spinning after each parallel region (GNU OpenMP:
about 300,000 spins); on a machine whose cores are shared (napari's own threads, a second session,
dask workers) they take the cores from the serial steps in between and from the other programs,
and the kernels ran 2.6 times slower than under ``workqueue``
(``benchmarks/experiments/threading_layers.py``). So when the user has set neither
``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT``, :func:`start` starts numba's thread pool with
``OMP_WAIT_POLICY=passive`` (threads sleep as soon as a region ends; set only while the pool
starts, so it does not leak to other libraries or subprocesses). It never changes the layer itself
nor any setting the user made (``NUMBA_THREADING_LAYER``, ``NUMBA_THREADING_LAYER_PRIORITY``,
``NUMBA_NUM_THREADS``, ``OMP_*`` / ``GOMP_*`` variables, ``numba.config``), nor a pool that other
code started first. :func:`layer` tells which layer is in use.
"""

from __future__ import annotations

import os

#: How numba's thread pool was started: set by :func:`start`.
_THREADING = {"wait_policy": None}
#: Environment variables that say the user chose how OpenMP threads wait.
WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def start() -> None:
    """Start numba's thread pool now, with ``OMP_WAIT_POLICY=passive`` unless the user chose how
    OpenMP threads wait (GNU OpenMP reads it once, when numba loads it with the pool); the variable
    is removed again afterwards. A pool already running (started by other code) is left alone."""
    from numba.np.ufunc import parallel  # optional kernels: numba may be missing or off

    if getattr(parallel, "_is_initialized", True):  # running, or a numba whose internals moved
        return
    added = not any(var in os.environ for var in WAIT_VARS)
    if added:
        os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        parallel._launch_threads()
        if added and parallel.threading_layer() == "omp":
            _THREADING["wait_policy"] = "passive (set by napari-cluster-seg)"
    except (ValueError, ImportError):  # no layer could load (e.g. the user asked for a missing one)
        pass
    finally:
        if added:
            os.environ.pop("OMP_WAIT_POLICY", None)


def layer() -> str | None:
    """numba's threading layer in use (``"omp"``, ``"tbb"`` or ``"workqueue"``), or None when no
    layer could start."""
    import numba  # optional kernels: numba may be missing or off

    try:
        return numba.threading_layer()
    except ValueError:
        return None


def info() -> str:
    """One line for reports: the numba version, threading layer, threads and OpenMP wait policy."""
    import numba  # optional kernels: numba may be missing or off

    name = layer()
    text = f"numba {numba.__version__}, threading layer {name} ({numba.config.NUMBA_NUM_THREADS} threads"
    if name == "omp":
        user = ", ".join(f"{var}={os.environ[var]}" for var in WAIT_VARS if var in os.environ)
        text += f", wait policy {_THREADING['wait_policy'] or user or 'OpenMP default'}"
    return text + ")"
