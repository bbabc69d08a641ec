"""Closing the viewer while a run goes on (the event loop keeps running, as in a script or IPython's
``%gui qt``): no worker callback touches the deleted widgets, the run stops, the process lives."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import time

    import numpy as np
    import napari
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    viewer = napari.Viewer(show=False)
    _, widget = viewer.window.add_plugin_dock_widget("napari-cluster-seg", "Cluster segmentation")
    image = viewer.add_image(np.random.default_rng(0).random((1024, 1024), np.float32), name="noise")
    widget.image.value = image
    widget.method.value = "divisive"
    widget.smoothing.value = 2.0
    widget.warm_up_thread.join()
    steps = []
    widget.run.clicked()
    worker = widget.worker
    worker.yielded.connect(steps.append)
    worker.finished.connect(lambda: steps.append("finished"))
    deadline = time.time() + 120
    while not steps and time.time() < deadline:  # the run is under way: its first step was reported
        app.processEvents()
    assert steps and steps[-1] != "finished", steps
    viewer.close()
    print("closed during the run", flush=True)
    while steps[-1] != "finished" and time.time() < deadline:  # the event loop keeps running
        app.processEvents()
        time.sleep(0.005)
    for _ in range(100):
        app.processEvents()
    assert steps[-1] == "finished", "the worker did not stop"
    print("worker finished after the viewer was closed", flush=True)
    """
)


def test_closing_the_viewer_during_a_run_neither_raises_nor_aborts(tmp_path):
    script = tmp_path / "close_during_run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "closed during the run" in proc.stdout and "worker finished after" in proc.stdout, out[-3000:]
    assert "RuntimeError" not in out and "Traceback" not in out, out[-3000:]
