"""Segment the nuclei of a stained tissue image by clustering its colours, then count them.

The immunohistochemistry sample bundled with scikit-image (no download) shows tissue with brown
DAB staining and blue (haematoxylin) nuclei. K-means with the default RGB feature settings
(CIELAB colour, light smoothing) separates four colour classes; the nuclei are the class whose
mean colour is the most blue. Their pixels become a mask, and the mask's connected regions,
with touching nuclei split by a distance-transform watershed, the nuclei.

    python examples/segment_nuclei.py                       # prints a summary, writes nothing
    python examples/segment_nuclei.py --output nuclei.tif   # also saves the nuclei label image
"""

import argparse

import numpy as np
from skimage import data

from napari_cluster_seg import cluster_image, clusters_to_objects
from napari_cluster_seg.core import DEFAULT_FEATURES


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="save the nuclei label image here (e.g. nuclei.tif)")
    args = parser.parse_args(argv)

    tissue = data.immunohistochemistry()  # (512, 512, 3) uint8 RGB
    result = cluster_image(tissue, n_clusters=4, rgb=True, **DEFAULT_FEATURES["rgb"])
    # labels 1..4 go from the darkest to the brightest cluster; centers[i] is label i + 1's mean colour
    for label, (center, count) in enumerate(zip(result.centers, result.counts), start=1):
        print(f"cluster {label}: mean RGB {np.round(center).astype(int).tolist()}, {count} pixels")
    blueness = result.centers[:, 2] - result.centers[:, 0]  # blue minus red
    nuclei_cluster = int(np.argmax(blueness)) + 1
    print(f"nuclei: cluster {nuclei_cluster} (the most blue)")

    nuclei = clusters_to_objects(
        result.labels, [nuclei_cluster], split_touching=True, min_distance=3, min_size=20
    )
    areas = nuclei.table["pixels"]
    print(f"{nuclei.n_objects} nuclei, median area {np.median(areas):.0f} pixels")

    if args.output:
        from skimage.io import imsave

        imsave(args.output, nuclei.labels, check_contrast=False)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
