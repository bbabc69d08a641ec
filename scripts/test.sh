#!/usr/bin/env bash
# The whole test suite (core, widgets in a real napari viewer, manifest,
# screenshots), after installing what it needs. Without a display the viewer
# tests run under Xvfb with Qt's xcb platform (offscreen has no OpenGL).
# With no arguments, the core tests then run once more without the optional numba kernels.
# Extra arguments go to pytest (and skip that second run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=xcb
if [ -n "${DISPLAY:-}" ]; then
  .venv/bin/python -m pytest "$@"
else
  xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python -m pytest "$@"
fi
if [ "$#" -eq 0 ]; then
  # The core once more without the optional numba kernels: its numpy code paths (no display needed).
  # --numpy-rerun leaves out the tests whose numpy path the first pass ran already (tests/core/conftest.py).
  echo "test: tests/core again with numpy only (NAPARI_CLUSTER_SEG_NUMBA=0)"
  NAPARI_CLUSTER_SEG_NUMBA=0 .venv/bin/python -m pytest -q --numpy-rerun tests/core
fi
