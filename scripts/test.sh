#!/usr/bin/env bash
# The whole test suite (core, widgets in a real napari viewer, manifest,
# screenshots), after installing what it needs. Without a display the viewer
# tests run under Xvfb with Qt's xcb platform (offscreen has no OpenGL).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=xcb
if [ -n "${DISPLAY:-}" ]; then
  exec .venv/bin/python -m pytest "$@"
fi
exec xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python -m pytest "$@"
