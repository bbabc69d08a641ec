"""Compiled (numba) kernels for the hot loops of the reduction, K-means and the hierarchies: the one
namespace :mod:`._accel` loads (``_accel.kernels()``), gathered from one module per stage.

- :mod:`._kernels_reduce`: counting, lookup tables, grid-cell codes and sums, decoding, gathering;
- :mod:`._kernels_kmeans`: nearest centres, Lloyd passes (serial and parallel builds), per-label
  sums and sums of squares;
- :mod:`._kernels_cells`: K-means on uint8 colour pixels by colour cells;
- :mod:`._kernels_hierarchy`: the nearest-neighbour chain, the connected Ward tree, cutting a tree.

Imported only through :mod:`._accel`, which falls back to numpy when numba is missing. Every kernel
is deterministic: parallel loops run over a fixed number of blocks (not of threads) or over chunks
of the rows, each summed from zero into a table of its own, and the partial sums are added in block
(chunk) order, so no result depends on the number of threads.
"""

from __future__ import annotations

from . import _kernels_cells, _kernels_hierarchy, _kernels_kmeans, _kernels_reduce
from ._kernels_cells import n_parts, rgb8_assign, rgb8_candidates, rgb8_cells
from ._kernels_hierarchy import LINKAGE_CODES, nn_chain, roots_after, ward_greedy
from ._kernels_kmeans import (
    deviation_sums,
    grid_group_sums,
    group_sums,
    int_label_sums,
    kmeans_1d_layer,
    lloyd_pass,
    lloyd_pass_serial,
    nearest,
    nearest_serial,
    weighted_squares,
)
from ._kernels_reduce import (
    cell_codes,
    cell_sums,
    cell_sums_serial,
    coded_sums,
    count_grey,
    count_rgb8,
    decode_codes,
    gather_rgb8,
    grid_cells,
    lookup_grey,
    lookup_grid,
    lookup_rgb8,
    occupied_codes,
)

#: The stage modules, for tests and tools that walk every kernel.
MODULES = (_kernels_reduce, _kernels_kmeans, _kernels_cells, _kernels_hierarchy)

__all__ = [
    "LINKAGE_CODES",
    "MODULES",
    "cell_codes",
    "cell_sums",
    "cell_sums_serial",
    "coded_sums",
    "count_grey",
    "count_rgb8",
    "decode_codes",
    "deviation_sums",
    "gather_rgb8",
    "grid_cells",
    "grid_group_sums",
    "group_sums",
    "int_label_sums",
    "kmeans_1d_layer",
    "lloyd_pass",
    "lloyd_pass_serial",
    "lookup_grey",
    "lookup_grid",
    "lookup_rgb8",
    "n_parts",
    "nearest",
    "nearest_serial",
    "occupied_codes",
    "nn_chain",
    "rgb8_assign",
    "rgb8_candidates",
    "rgb8_cells",
    "roots_after",
    "ward_greedy",
    "weighted_squares",
]
