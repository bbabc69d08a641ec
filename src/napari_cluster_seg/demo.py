"""Demo: napari with a built-in sample, the Cluster segmentation widget docked, and a result.

Run ``napari-cluster-seg-demo`` (or ``python -m napari_cluster_seg.demo``).
With ``--screenshot PATH`` the window is saved as a PNG once the clustering
has finished; with ``--exit`` the program then quits instead of handing the
window to the user (used headless, under Xvfb). It prints whether the window
kept the requested ``--size`` (the docked widget never makes it grow).
"""

from __future__ import annotations

import argparse
import sys
import time

SAMPLES = ("astronaut", "immunohistochemistry", "nuclei_3d")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="napari-cluster-seg-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--sample", choices=SAMPLES, default="astronaut")
    parser.add_argument("--method", choices=("kmeans", "agglomerative", "divisive"), default="kmeans")
    parser.add_argument("--n-clusters", type=int, default=4)
    parser.add_argument(
        "--compare", action="store_true", help="also run agglomerative clustering and compare side by side"
    )
    parser.add_argument("--screenshot", metavar="PATH", help="save a PNG of the window when done")
    parser.add_argument("--exit", action="store_true", help="quit after the screenshot (headless use)")
    parser.add_argument("--size", default="1500x900", help="window size WIDTHxHEIGHT (default 1500x900)")
    return parser.parse_args(argv)


def _wait(app, predicate, timeout=120.0):
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("the clustering did not finish in time")
        app.processEvents()
        time.sleep(0.02)


def main(argv=None) -> int:
    args = parse_args(argv)
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(title="napari-cluster-seg demo", show=True)
    width, height = (int(v) for v in args.size.lower().split("x"))
    viewer.window._qt_window.resize(width, height)
    (image,) = viewer.open_sample("napari-cluster-seg", args.sample)
    _, widget = viewer.window.add_plugin_dock_widget("napari-cluster-seg", "Cluster segmentation")
    app = QApplication.instance()

    def run(method):
        widget.image.value = image
        widget.method.value = method
        widget.n_clusters.value = args.n_clusters
        if args.sample == "nuclei_3d":
            widget.smoothing.value = 1.0
        widget.run.clicked()
        _wait(app, lambda: widget.worker is None)
        print(f"{method}: {widget.status.value}")

    run(args.method)
    if args.compare:
        run("agglomerative" if args.method != "agglomerative" else "kmeans")
        widget.compare.clicked()
        _wait(app, lambda: widget.compare_worker is None)
        print(f"compare: {widget.compare_result.value}")
    if args.screenshot:
        for _ in range(10):
            app.processEvents()
            time.sleep(0.05)
        from skimage.io import imsave

        shot = viewer.screenshot(path=None, canvas_only=False, flash=False)
        imsave(args.screenshot, shot, check_contrast=False)
        print(f"screenshot written to {args.screenshot} ({shot.shape[1]}x{shot.shape[0]})")
    window = viewer.window._qt_window.size()
    fits = "fits" if window.width() <= width and window.height() <= height else "is LARGER than"
    print(f"window {window.width()}x{window.height()} {fits} the requested {width}x{height}")
    if args.exit:
        viewer.close()
        return 0
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
