"""From a clustering to objects and a measurement table (CSV): the coins in a photo.

scikit-image's coins photo (bundled, no download) is clustered into three classes (the default
feature settings for grey images, with holes of up to 500 pixels filled by their surrounding
class). The brightest class is the coins: its pixels become a mask, the mask's connected regions
the objects (those under 300 pixels dropped), and each object a row of the table: label,
cluster, pixels, area in physical units (from --pixel-size and --unit), centroid and mean grey
value. The table is written as CSV to a temporary folder that is removed at the end, unless
--output names the file to write.

    python examples/objects_table.py
    python examples/objects_table.py --output coins.csv --pixel-size 0.1 --unit mm
"""

import argparse
import csv
import tempfile
from pathlib import Path

from skimage import data

from napari_cluster_seg import cluster_image, clusters_to_objects
from napari_cluster_seg.core import DEFAULT_FEATURES, write_table_csv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="write the table to this CSV file")
    parser.add_argument("--pixel-size", type=float, default=1.0, help="pixel size (default 1)")
    parser.add_argument("--unit", default="pixel", help="unit of the pixel size (default: pixel)")
    args = parser.parse_args(argv)

    coins = data.coins()  # (303, 384) uint8
    result = cluster_image(coins, n_clusters=3, **DEFAULT_FEATURES["grey"], hole_size=500)
    brightest = result.n_clusters  # labels go from the darkest (1) to the brightest (k)
    objects = clusters_to_objects(
        result.labels,
        [brightest],
        min_size=300,
        image=coins,
        channel_names=["grey"],
        scale=(args.pixel_size, args.pixel_size),
        units=args.unit,
    )
    table = objects.table
    unit = table["size_unit"][0] if objects.n_objects else ""
    print(f"{objects.n_objects} objects in cluster {brightest}; "
          f"mask covers {objects.mask.mean():.1%} of the image")
    print(f"mean area {table['area'].mean():.1f} {unit}, mean grey value {table['mean_grey'].mean():.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        path = write_table_csv(table, args.output or Path(tmp) / "coins.csv")
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        print(f"table: {len(rows)} rows, columns {list(rows[0]) if rows else []}")
        if args.output:
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
