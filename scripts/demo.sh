#!/usr/bin/env bash
# The demo: napari with a built-in sample (the astronaut photo), the Cluster
# segmentation widget docked and a K-means result shown. Without a display it
# runs under Xvfb and writes the window to demo.png (or the path in $SCREENSHOT).
# Extra arguments go to napari-cluster-seg-demo (see --help), e.g. --compare.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -n "${DISPLAY:-}" ] && [ "${HEADLESS:-0}" != 1 ]; then
  exec .venv/bin/napari-cluster-seg-demo "$@"
fi
export QT_QPA_PLATFORM=xcb
exec xvfb-run -a -s "-screen 0 1920x1080x24" \
  .venv/bin/napari-cluster-seg-demo --screenshot "${SCREENSHOT:-demo.png}" --exit "$@"
