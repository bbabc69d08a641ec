import numpy as np
import pytest

from napari_cluster_seg import ClusterModel, cluster_image
from napari_cluster_seg.core import clean_labels


def test_islands_take_the_majority_neighbour_label():
    img = np.ones((8, 8), np.uint8)
    img[:, 4:] = 2
    img[2, 1] = 2  # a 1-pixel island of 2 inside 1
    img[5, 6] = 1  # and of 1 inside 2
    img[6:, :2] = 0  # not clustered: never changed
    out = clean_labels(img, min_size=2)
    expected = img.copy()
    expected[2, 1], expected[5, 6] = 1, 2
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == img.dtype
    assert img[2, 1] == 2  # the input is not modified


def test_holes_up_to_size_are_filled_and_border_regions_kept():
    img = np.ones((9, 9), np.uint8)
    img[3:6, 3:6] = 2  # a 9-pixel hole
    img[0:2, 0:2] = 3  # 4 pixels on the border: not a hole
    assert clean_labels(img, hole_size=9)[4, 4] == 1
    assert clean_labels(img, hole_size=8)[4, 4] == 2
    assert clean_labels(img, hole_size=100)[0, 0] == 3


def test_island_next_to_unclustered_only_stays():
    img = np.zeros((5, 5), np.uint8)
    img[2, 2] = 1
    np.testing.assert_array_equal(clean_labels(img, min_size=5), img)


def test_3d_and_time_axis():
    vol = np.ones((6, 6, 6), np.uint8)
    vol[3, 3, 3] = 2
    assert clean_labels(vol, min_size=2)[3, 3, 3] == 1
    movie = np.ones((2, 6, 6), np.uint8)
    movie[:, 2, 2] = 2  # one pixel per frame; as a 3D volume it would be a 2-voxel region
    assert np.all(clean_labels(movie, min_size=2, time_axis=0)[:, 2, 2] == 1)
    assert np.all(clean_labels(movie, min_size=2)[:, 2, 2] == 2)


def test_bad_options():
    with pytest.raises(ValueError, match="min_size=-1"):
        clean_labels(np.ones((3, 3), np.uint8), min_size=-1)
    with pytest.raises(ValueError, match="integer array"):
        clean_labels(np.ones((3, 3)), min_size=2)


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_clean_up_in_cluster_image_and_models(tmp_path, method):
    from skimage import data

    img = data.camera()[::2, ::2]
    raw = cluster_image(img, 4, method)
    res = cluster_image(img, 4, method, min_size=30, hole_size=60)
    np.testing.assert_array_equal(res.labels, clean_labels(raw.labels, min_size=30, hole_size=60))
    assert res.counts.tolist() == [int((res.labels == i).sum()) for i in range(1, 5)]
    from skimage.measure import label as components

    sizes = np.bincount(components(res.labels, background=0, connectivity=1).ravel())[1:]
    assert sizes.min() >= 30
    # the saved model cleans the same way
    loaded = ClusterModel.load(res.model.save(tmp_path / "m.json"))
    np.testing.assert_array_equal(loaded.predict(img), res.labels)
    if method == "agglomerative":
        np.testing.assert_array_equal(
            res.cut(3).labels, clean_labels(raw.cut(3).labels, min_size=30, hole_size=60)
        )
