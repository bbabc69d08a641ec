"""Fit a clustering on one image, save the model as JSON, and label other images with it.

A model fitted on scikit-image's astronaut photo (bundled, no download) labels the coffee photo
without refitting, so a label means the same colour class in both. The model is saved to a JSON
file (no pickle), loaded back, and gives the same labels. The file goes to a temporary folder
that is removed at the end, unless --output-dir names a folder to keep it in.

    python examples/model_reuse.py
    python examples/model_reuse.py --output-dir models/
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
from skimage import data

from napari_cluster_seg import ClusterModel, cluster_image


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", help="keep the model file in this folder")
    args = parser.parse_args(argv)

    result = cluster_image(data.astronaut(), n_clusters=5, rgb=True, color_space="lab", random_state=0)
    print(f"fitted on the astronaut: pixels per label {result.counts.tolist()}")

    coffee = data.coffee()
    labels = result.model.predict(coffee)  # the same clusters, no refitting
    fractions = np.bincount(labels.ravel(), minlength=6)[1:] / labels.size
    print(f"coffee, share of each label: {np.round(fractions, 3).tolist()}")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.output_dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = result.model.save(folder / "astronaut-5-lab.json")
        model = ClusterModel.load(path)
        print(f"saved and loaded {path.name} ({path.stat().st_size} bytes)")
        again = model.apply(coffee)  # a ClusterResult: labels, centres and counts
        print(f"loaded model on the coffee: same labels {np.array_equal(again.labels, labels)}, "
              f"mean RGB of label 1 {np.round(again.centers[0]).astype(int).tolist()}")
        if args.output_dir:
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
