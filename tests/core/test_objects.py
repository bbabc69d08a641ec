"""From clusters to masks and objects (``core.objects``)."""

import numpy as np
import pytest
from skimage.draw import disk
from skimage.measure import regionprops_table

from napari_cluster_seg import cluster_image
from napari_cluster_seg.core import clusters_to_mask, clusters_to_objects


def _discs(shape, centres, radius, value=2, background=1):
    labels = np.full(shape, background, np.uint8)
    for c in centres:
        labels[disk(c, radius, shape=shape)] = value
    return labels


def test_mask_is_the_chosen_clusters():
    labels = np.array([[0, 1, 2], [3, 2, 1]], np.uint8)
    np.testing.assert_array_equal(clusters_to_mask(labels, 2), labels == 2)
    np.testing.assert_array_equal(clusters_to_mask(labels, [1, 3]), np.isin(labels, [1, 3]))


def test_separate_discs_are_separate_objects_with_exact_areas():
    labels = _discs((64, 80), [(16, 16), (40, 60)], 8)
    objs = clusters_to_objects(labels, [2])
    assert objs.n_objects == 2
    np.testing.assert_array_equal(objs.mask, labels == 2)
    disc_area = int(np.count_nonzero(_discs((64, 80), [(16, 16)], 8) == 2))
    assert objs.table["pixels"].tolist() == [disc_area, disc_area]
    np.testing.assert_allclose(objs.table["centroid-0"], [16, 40])
    np.testing.assert_allclose(objs.table["centroid-1"], [16, 60])
    assert objs.table["cluster"].tolist() == [2, 2]


def test_touching_discs_are_split_in_two():
    # two discs of radius 10 whose centres are 18 px apart overlap in a narrow neck
    labels = _discs((48, 80), [(24, 25), (24, 43)], 10)
    joined = clusters_to_objects(labels, 2)
    assert joined.n_objects == 1
    split = clusters_to_objects(labels, 2, split_touching=True, min_distance=5)
    assert split.n_objects == 2
    # each half holds its own centre, and the split loses no pixel
    assert split.labels[24, 25] != split.labels[24, 43]
    np.testing.assert_array_equal(split.labels > 0, labels == 2)
    sizes = split.table["pixels"]
    assert abs(int(sizes[0]) - int(sizes[1])) <= 24 and sizes.sum() == np.count_nonzero(labels == 2)


def test_round_objects_are_not_over_split():
    labels = _discs((96, 96), [(20, 20), (20, 70), (70, 30), (70, 72)], 9)
    split = clusters_to_objects(labels, 2, split_touching=True, min_distance=5)
    assert split.n_objects == 4


def test_min_size_drops_small_objects_and_renumbers():
    labels = np.ones((20, 20), np.uint8)
    labels[2:4, 2:4] = 2  # 4 px
    labels[10:16, 10:16] = 2  # 36 px
    objs = clusters_to_objects(labels, 2, min_size=5)
    assert objs.n_objects == 1 and objs.table["pixels"].tolist() == [36]
    assert set(np.unique(objs.labels)) == {0, 1}
    assert objs.mask[2, 2]  # the mask keeps every chosen pixel


def test_table_equals_regionprops_in_physical_units_with_intensity():
    rng = np.random.default_rng(1)
    labels = _discs((60, 70), [(15, 15), (40, 50), (45, 15)], 7)
    image = rng.normal(100, 10, (60, 70, 3))
    objs = clusters_to_objects(
        labels, [2], image=image, channel_axis=-1, channel_names="RGB", scale=(0.5, 0.25), units=("um", "um")
    )
    ref = regionprops_table(
        objs.labels,
        intensity_image=image,
        properties=("label", "area", "centroid", "intensity_mean"),
        spacing=(0.5, 0.25),
    )
    np.testing.assert_array_equal(objs.table["label"], ref["label"])
    np.testing.assert_allclose(objs.table["area"], ref["area"])
    np.testing.assert_allclose(objs.table["area"], objs.table["pixels"] * 0.125)
    np.testing.assert_allclose(objs.table["centroid-0"], ref["centroid-0"])
    np.testing.assert_allclose(objs.table["centroid-1"], ref["centroid-1"])
    for c, name in enumerate("RGB"):
        np.testing.assert_allclose(objs.table[f"mean_{name}"], ref[f"intensity_mean-{c}"])
    assert set(objs.table["size_unit"]) == {"um^2"}
    assert objs.table["index"].tolist() == [1, 2, 3]


def test_one_unit_string_is_every_axis_unit():
    objs = clusters_to_objects(np.array([[1, 2, 2]], np.uint8), 2, units="µm/s", scale=(2, 2))
    assert objs.table["size_unit"].tolist() == ["µm/s^2"] and objs.table["area"].tolist() == [8.0]


def test_grey_intensity_and_3d_volume():
    labels = np.ones((8, 16, 16), np.uint8)
    labels[2:6, 4:8, 4:8] = 3
    image = np.arange(labels.size, dtype=np.float32).reshape(labels.shape)
    objs = clusters_to_objects(labels, 3, image=image, scale=(2, 1, 1))
    assert objs.table["volume"].tolist() == [2.0 * 64]
    np.testing.assert_allclose(objs.table["mean_0"], image[labels == 3].mean())


def test_time_series_is_split_frame_by_frame_with_unique_ids():
    labels = np.ones((3, 20, 20), np.uint8)
    labels[:, 5:10, 5:10] = 2  # the same square in every frame: three objects, one per frame
    labels[2, 14:18, 14:18] = 2
    objs = clusters_to_objects(labels, 2, time_axis=0)
    assert objs.n_objects == 4
    assert objs.table["frame"].tolist() == [0, 1, 2, 2]
    assert len(np.unique(objs.labels[objs.labels > 0])) == 4
    assert "centroid-2" not in objs.table  # spatial axes only


def test_object_spanning_two_chosen_clusters_reports_the_majority():
    labels = np.ones((10, 10), np.uint8)
    labels[2:8, 2:5] = 2  # 18 px
    labels[2:8, 5:7] = 3  # 12 px, touching
    objs = clusters_to_objects(labels, [2, 3])
    assert objs.n_objects == 1 and objs.table["cluster"].tolist() == [2]


def test_no_object_gives_an_empty_table():
    objs = clusters_to_objects(np.ones((5, 5), np.uint8), 2, image=np.zeros((5, 5)))
    assert objs.n_objects == 0 and not objs.labels.any()
    assert all(len(col) == 0 for col in objs.table.values())


def test_from_a_clustering_result():
    from skimage import data

    coins = data.coins()
    res = cluster_image(coins, 3)
    objs = clusters_to_objects(res.labels, [3], min_size=50, image=coins)
    assert objs.n_objects > 5
    assert np.all(objs.table["mean_0"] > res.centers[1, 0])


@pytest.mark.parametrize(
    "call, exc, words",
    [
        (lambda: clusters_to_objects(np.ones((4, 4)), 1), TypeError, "integer label image"),
        (lambda: clusters_to_objects(np.ones((4, 4), int), []), ValueError, "at least one cluster"),
        (lambda: clusters_to_objects(np.ones((4, 4), int), 0), ValueError, "not cluster labels"),
        (lambda: clusters_to_objects(np.ones((4, 4), int), 1.5), TypeError, "integer labels"),
        (lambda: clusters_to_objects(np.ones((4, 4), int), 1, min_size=-1), ValueError, "min_size"),
        (lambda: clusters_to_objects(np.ones((4, 4), int), 1, min_distance=0), ValueError, "min_distance"),
        (lambda: clusters_to_objects(np.ones((4, 4), int), 1, scale=(1,)), ValueError, "2 finite pixel"),
        (lambda: clusters_to_objects(np.ones((4, 4), int), 1, scale=(1, 0)), ValueError, "pixel size of 0"),
        (lambda: clusters_to_objects(np.ones((4, 4), int), 1, units=("um",)), ValueError, "one per axis"),
        (lambda: clusters_to_objects(np.ones((4, 4), int), 1, image=np.ones((5, 4))), ValueError, "match"),
        (lambda: clusters_to_objects(np.ones((4, 4), int), 1, time_axis=3), ValueError, "not an axis"),
        (
            lambda: clusters_to_objects(
                np.ones((4, 4), int), 1, image=np.ones((4, 4, 3)), channel_axis=2, channel_names=["a"]
            ),
            ValueError,
            "name each",
        ),
    ],
)
def test_bad_input_names_the_problem(call, exc, words):
    with pytest.raises(exc, match=words):
        call()
