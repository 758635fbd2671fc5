"""myoscan.quantify on tiny synthetic volumes whose answers are worked out by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import ndimage as ndi

from myoscan.errors import GeometryMismatchError, InputError
from myoscan.io import Volume
from myoscan.labels import LabelWarning
from myoscan.quantify import (
    QuantifyConfig,
    erosion_rims,
    label_volumes_ml,
    measure,
    quantify,
    quantify_slices,
    voxelwise_fat_fraction,
)
from myoscan.quantify.core import label_rows, slice_axis_of


def vol(array, spacing=(1.0, 1.0, 1.0)) -> Volume:
    return Volume(np.asarray(array), np.diag([*spacing, 1.0]))


def row(table, label_id):
    return table.set_index("label_id").loc[label_id]


# --------------------------------------------------------------------------- volume and CSA


def anisotropic_labels():
    lab = np.zeros((4, 5, 6), np.uint8)
    lab[0:2, 0:5, 0:3] = 1  # 30 voxels, 10 per slice in slices 0-2
    lab[3, 1:3, 2:6] = 2  # 8 voxels, 2 per slice in slices 2-5
    return lab


def test_volume_and_csa_use_anisotropic_spacing():
    # voxel 0.5 x 0.8 x 3.0 mm = 1.2 mm3 = 0.0012 mL; in-plane face 0.4 mm2 = 0.004 cm2
    table = quantify(vol(anisotropic_labels(), (0.5, 0.8, 3.0)))
    one, two = row(table, 1), row(table, 2)
    assert (one["n_voxels"], two["n_voxels"]) == (30, 8)
    assert one["volume_ml"] == pytest.approx(0.036)
    assert two["volume_ml"] == pytest.approx(0.0096)
    assert one["max_csa_cm2"] == pytest.approx(0.04)
    assert two["max_csa_cm2"] == pytest.approx(0.008)
    assert np.isnan(one["mass_g"])  # tissue unknown without a scheme: no mass, not 0


def test_mass_uses_muscle_density_for_muscles_only():
    lab = np.zeros((2, 2, 2), np.uint8)
    lab[0] = 1  # leg_anterior_compartment_left (muscle), 4 voxels of 8 mm3
    lab[1] = 11  # tibia_left (bone)
    table = quantify(vol(lab, (2.0, 2.0, 2.0)), scheme="leg")
    assert row(table, 1)["mass_g"] == pytest.approx(0.032 * 1.06)
    assert np.isnan(row(table, 11)["mass_g"])


def test_csa_at_slice_by_index_and_by_world_z():
    labels = Volume(anisotropic_labels(), np.diag([0.5, 0.8, 3.0, 1.0]) + np.array(
        [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, -10.0], [0, 0, 0, 0]]))
    by_index = quantify(labels, config=QuantifyConfig(csa_slice_index=2))
    by_z = quantify(labels, config=QuantifyConfig(csa_world_z_mm=-4.2))  # slice 2 is at z = -4 mm
    for table in (by_index, by_z):
        assert row(table, 1)["csa_cm2_at_slice"] == pytest.approx(0.04)
        assert row(table, 2)["csa_cm2_at_slice"] == pytest.approx(0.008)
    at_five = quantify(labels, config=QuantifyConfig(csa_slice_index=5))
    assert row(at_five, 1)["csa_cm2_at_slice"] == 0.0  # measured and absent: a true zero
    with pytest.raises(InputError, match="outside the image"):
        quantify(labels, config=QuantifyConfig(csa_world_z_mm=100.0))


def test_slice_axis_follows_world_z_in_a_sagittal_stack():
    # voxel axis 0 runs along world z (3 mm); in-plane axes 0.8 and 0.5 mm
    affine = np.array([[0, 0.8, 0, 0], [0, 0, 0.5, 0], [3.0, 0, 0, 0], [0, 0, 0, 1]])
    lab = np.zeros((3, 4, 4), np.uint8)
    lab[1, :2, :] = 1  # 8 voxels in slice 1
    assert slice_axis_of(affine) == 0
    table = quantify(Volume(lab, affine))
    assert row(table, 1)["max_csa_cm2"] == pytest.approx(8 * 0.4 / 100)
    assert row(table, 1)["volume_ml"] == pytest.approx(8 * 1.2 / 1000)


def test_label_volumes_ml_matches_docstring_case():
    assert label_volumes_ml(np.array([[[0, 1, 1, 2]]]), (1.0, 1.0, 10.0)).to_dict() == {1: 0.02, 2: 0.01}


# --------------------------------------------------------------------------- Dixon


def dixon_cube():
    """5x5x5 label in a 7x7x7 image: F/W = 10/90 in the 3x3x3 core, 50/150 in the 98-voxel rim."""
    lab = np.zeros((7, 7, 7), np.uint8)
    lab[1:6, 1:6, 1:6] = 1
    fat = np.where(lab > 0, 50.0, 0.0)
    water = np.where(lab > 0, 150.0, 0.0)
    fat[2:5, 2:5, 2:5], water[2:5, 2:5, 2:5] = 10.0, 90.0
    return lab, fat.astype(np.float32), water.astype(np.float32)


def test_dixon_imf_eroded_uneroded_and_voxelwise():
    lab, fat, water = dixon_cube()
    t = row(quantify(vol(lab), fat=vol(fat), water=vol(water)), 1)
    assert t["n_voxels_eroded"] == 27
    assert t["imf_pct"] == pytest.approx(10.0)  # core only
    # uneroded: F = 27*10 + 98*50 = 5170, W = 27*90 + 98*150 = 17130
    assert t["imf_uneroded_pct"] == pytest.approx(100 * 5170 / 22300)
    # mean of voxel ratios: (27*0.10 + 98*0.25) / 125
    assert t["voxelwise_ff_mean_pct"] == pytest.approx(21.76)


@pytest.mark.parametrize(("iterations", "n_eroded", "imf"), [(0, 125, 100 * 5170 / 22300), (1, 27, 10.0),
                                                             (2, 1, 10.0)], ids=["none", "one", "two"])
def test_erosion_iterations(iterations, n_eroded, imf):
    lab, fat, water = dixon_cube()
    t = row(quantify(vol(lab), fat=vol(fat), water=vol(water),
                     config=QuantifyConfig(erosion_iterations=iterations)), 1)
    assert (t["n_voxels_eroded"], t["imf_pct"]) == (n_eroded, pytest.approx(imf))


def test_touching_labels_erode_each_other():
    # two 3x3x3 cubes sharing a face: per-label erosion keeps only each centre (a joint mask
    # would keep a 4x1x1 core)
    lab = np.zeros((9, 5, 5), np.uint8)
    lab[1:4, 1:4, 1:4] = 1
    lab[4:7, 1:4, 1:4] = 2
    fat = np.where(lab > 0, 50.0, 0.0)
    water = fat.copy()
    for centre in ((2, 2, 2), (5, 2, 2)):
        fat[centre], water[centre] = 20.0, 80.0
    table = quantify(vol(lab), fat=vol(fat), water=vol(water))
    for label in (1, 2):
        assert row(table, label)["n_voxels_eroded"] == 1
        assert row(table, label)["imf_pct"] == pytest.approx(20.0)


@pytest.mark.parametrize(("border_outside", "n_eroded", "imf"), [(True, 27, 10.0), (False, 125, 41.36)],
                         ids=["border-outside", "border-inside"])
def test_erosion_at_the_image_border(border_outside, n_eroded, imf):
    # the label fills the whole 5x5x5 image: only the border setting decides what erodes
    lab = np.ones((5, 5, 5), np.uint8)
    fat, water = np.full(lab.shape, 50.0), np.full(lab.shape, 50.0)
    fat[1:4, 1:4, 1:4], water[1:4, 1:4, 1:4] = 10.0, 90.0
    t = row(quantify(vol(lab), fat=vol(fat), water=vol(water),
                     config=QuantifyConfig(erode_at_image_border=border_outside)), 1)
    assert (t["n_voxels_eroded"], t["imf_pct"]) == (n_eroded, pytest.approx(imf))


@pytest.mark.parametrize(("border_outside", "expected"), [(True, 1), (False, 2)], ids=["outside", "inside"])
def test_erosion_of_a_label_touching_one_face(border_outside, expected):
    lab = np.zeros((4, 5, 5), np.uint8)
    lab[0:3, 1:4, 1:4] = 1  # touches the i = 0 face only
    assert len(erosion_rims(lab, 1, border_outside=border_outside)) == 27 - expected


def random_labels(shape=(18, 16, 14), n_labels=4, seed=3):
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.normal(size=shape), 2.0)
    edges = np.quantile(field, np.linspace(0.3, 1.0, n_labels + 1)[1:-1])
    return np.digitize(field, edges).astype(np.uint8) * (field > np.quantile(field, 0.3))


@pytest.mark.parametrize("iterations", [1, 2])
@pytest.mark.parametrize("border_value", [0, 1])
def test_erosion_equals_scipy_binary_erosion_per_label(iterations, border_value):
    lab = random_labels()
    rims = erosion_rims(lab, iterations, border_outside=border_value == 0)
    cube = np.ones((3, 3, 3), bool)
    for label in range(1, int(lab.max()) + 1):
        mask = lab == label
        eroded = ndi.binary_erosion(mask, cube, iterations=iterations, border_value=border_value)
        expected = np.flatnonzero((mask & ~eroded).ravel())
        assert np.array_equal(np.sort(rims.flat_index[rims.rows == label]), expected)


def test_dixon_values_are_never_truncated_and_int_inputs_work():
    lab = np.ones((2, 2, 2), np.uint8)
    no_erosion = QuantifyConfig(erosion_iterations=0)
    small = quantify(vol(lab), fat=vol(np.full(lab.shape, 0.25, np.float32)),
                     water=vol(np.full(lab.shape, 0.75, np.float32)), config=no_erosion)
    assert row(small, 1)["imf_pct"] == pytest.approx(25.0)  # int truncation would give 0/0
    ints = quantify(vol(lab), fat=vol(np.full(lab.shape, 300, np.int16)),
                    water=vol(np.full(lab.shape, 32000, np.int16)), config=no_erosion)
    assert row(ints, 1)["imf_pct"] == pytest.approx(100 * 300 / 32300)  # int16 sum would overflow


def test_voxelwise_fat_fraction_zero_signal_counts_as_zero():
    assert voxelwise_fat_fraction(np.array([1.0, 0.0]), np.array([1.0, 0.0])).tolist() == [0.5, 0.0]


# --------------------------------------------------------------------------- fat-fraction map


@pytest.mark.parametrize(("factor", "unit"), [(1.0, "auto"), (100.0, "auto"), (1000.0, "auto"),
                                              (100.0, "percent"), (1.0, "fraction")],
                         ids=["fraction", "percent", "permille", "percent-explicit", "fraction-explicit"])
def test_fat_fraction_map_mean_median_and_amra_below_50(factor, unit):
    lab = np.zeros((1, 2, 3), np.uint8)
    lab[0, :, :2] = 1
    ff = np.full(lab.shape, 0.95)  # subcutaneous fat outside the label tells the unit
    ff[0, :, :2] = [[0.1, 0.2], [0.6, 0.9]]
    config = QuantifyConfig(fat_fraction_unit=unit)
    t = row(quantify(vol(lab), fat_fraction=vol(ff * factor), config=config), 1)
    assert t["ff_mean_pct"] == pytest.approx(45.0)
    assert t["ff_median_pct"] == pytest.approx(40.0)
    assert t["ff_mean_below50_pct"] == pytest.approx(15.0)  # mean of 10 % and 20 %


def test_fat_fraction_unit_that_cannot_be_told_is_an_error():
    lab = np.ones((1, 1, 2), np.uint8)
    with pytest.raises(InputError, match="--ff-unit"):
        quantify(vol(lab), fat_fraction=vol(np.array([[[3000.0, 5000.0]]])))


# --------------------------------------------------------------------------- CT


def test_ct_metrics_with_inclusive_hu_ranges():
    lab = np.zeros((2, 3, 2), np.uint8)
    lab[:, :, 0] = 1
    hu = np.zeros(lab.shape, np.int16)
    values = [-200, -190, -30, -29, 150, 151]
    hu[:, :, 0] = np.reshape(values, (2, 3))
    t = row(quantify(vol(lab, (1.0, 2.0, 5.0)), ct=vol(hu, (1.0, 2.0, 5.0))), 1)
    assert t["mean_hu"] == pytest.approx(-148 / 6)
    assert t["sd_hu"] == pytest.approx(np.sqrt(np.mean((np.array(values) + 148 / 6) ** 2)))
    assert t["median_hu"] == pytest.approx(-29.5)
    assert t["lean_muscle_pct"] == pytest.approx(100 * 2 / 6)  # -29 and 150
    assert t["imat_volume_ml"] == pytest.approx(2 * 0.01)  # -190 and -30, 10 mm3 each


def test_float_ct_is_not_truncated():
    lab = np.ones((1, 1, 2), np.uint8)
    t = row(quantify(vol(lab), ct=vol(np.array([[[40.5, 41.0]]], np.float32))), 1)
    assert t["mean_hu"] == pytest.approx(40.75)


# --------------------------------------------------------------------------- per-slice


def test_per_slice_table_gives_csa_and_fat_profile():
    lab, fat, water = dixon_cube()
    table = quantify_slices(vol(lab, (1.0, 1.0, 2.0)), fat=vol(fat, (1.0, 1.0, 2.0)),
                            water=vol(water, (1.0, 1.0, 2.0)))
    assert table["slice_index"].tolist() == [1, 2, 3, 4, 5]
    assert table["z_mm"].tolist() == [2.0, 4.0, 6.0, 8.0, 10.0]
    assert table["csa_cm2"].tolist() == pytest.approx([0.25] * 5)
    ends = table[table["slice_index"].isin([1, 5])]
    assert ends["imf_pct"].isna().all()  # nothing left after erosion in the end slices
    assert ends["imf_uneroded_pct"].tolist() == pytest.approx([25.0, 25.0])
    middle = table[table["slice_index"].between(2, 4)]
    assert middle["n_voxels_eroded"].tolist() == [9, 9, 9]
    assert middle["imf_pct"].tolist() == pytest.approx([10.0] * 3)
    # 9 core voxels (10/90) and 16 rim voxels (50/150) per slice
    assert middle["imf_uneroded_pct"].tolist() == pytest.approx([100 * 890 / 4100] * 3)


# --------------------------------------------------------------------------- label handling


@pytest.mark.filterwarnings("ignore:erosion by")
def test_memory_order_and_large_ids_do_not_change_results():
    lab = random_labels()
    rng = np.random.default_rng(0)
    fat, water = rng.uniform(0, 100, lab.shape), rng.uniform(0, 300, lab.shape)
    ct = rng.normal(40, 30, lab.shape)
    big = np.where(lab > 0, lab.astype(np.int64) * 7000, 0)  # ids 7000..28000: compacted rows
    reference = quantify(vol(lab), fat=vol(fat), water=vol(water), ct=vol(ct))
    fortran = quantify(vol(np.asfortranarray(lab)), fat=vol(np.asfortranarray(fat)), water=vol(water),
                       ct=vol(np.asfortranarray(ct)))
    compacted = quantify(vol(big), fat=vol(fat), water=vol(water), ct=vol(ct))
    metrics = ["n_voxels", "volume_ml", "imf_pct", "imf_uneroded_pct", "voxelwise_ff_mean_pct", "mean_hu",
               "sd_hu", "median_hu", "max_csa_cm2"]
    np.testing.assert_allclose(fortran[metrics].to_numpy(float), reference[metrics].to_numpy(float))
    np.testing.assert_allclose(compacted[metrics].to_numpy(float), reference[metrics].to_numpy(float))
    assert compacted["label_id"].tolist() == [7000, 14000, 21000, 28000][:len(reference)]
    # against plain numpy for one label
    mask = lab == 2
    assert row(reference, 2)["mean_hu"] == pytest.approx(ct[mask].mean())
    assert row(reference, 2)["median_hu"] == pytest.approx(np.median(ct[mask]))
    assert row(reference, 2)["imf_uneroded_pct"] == pytest.approx(
        100 * fat[mask].mean() / (fat[mask].mean() + water[mask].mean()))


def test_label_rows_recode_ids():
    rows = label_rows(np.array([[[0, 5000, 7, 5000]]]))
    assert rows.row_ids.tolist() == [0, 7, 5000]
    assert rows.rows.tolist() == [[[0, 2, 1, 2]]]


def test_scheme_names_and_unknown_ids_are_warned_but_reported():
    lab = np.zeros((2, 2, 2), np.uint8)
    lab[0, 0] = 7  # soleus_left
    lab[1, 1] = 99  # not in the leg scheme
    with pytest.warns(LabelWarning, match="99"):
        table = quantify(vol(lab), scheme="leg")
    assert table["name"].tolist() == ["soleus_left", "label_99"]
    assert table.loc[0, ["side", "region", "group", "tissue"]].tolist() == ["left", "leg", "soleus", "muscle"]


def test_names_are_resolved_through_the_catalog():
    lab = np.zeros((2, 2, 2), np.uint8)
    lab[0] = 1
    lab[1] = 2
    table = quantify(vol(lab), names={1: "autochthon_left", 2: "liver"})
    assert table["name"].tolist() == ["erector_spinae_left", "liver"]
    assert table["input_name"].tolist() == ["autochthon_left", "liver"]
    assert table.loc[0, "group"] == "erector_spinae"
    assert table.loc[1, ["side", "tissue"]].isna().all()


def test_contract_columns_in_order():
    lab, fat, water = dixon_cube()
    table = quantify(vol(lab), fat=vol(fat), water=vol(water), ct=vol(fat), scheme="leg")
    assert table.columns.tolist() == [
        "label_id", "name", "side", "region", "group", "tissue", "n_voxels", "volume_ml", "mass_g",
        "max_csa_cm2", "imf_pct", "imf_uneroded_pct", "n_voxels_eroded", "voxelwise_ff_mean_pct", "mean_hu",
        "sd_hu", "median_hu", "lean_muscle_pct", "imat_volume_ml", "input_name"]


# --------------------------------------------------------------------------- bad input


def test_four_d_images_are_rejected():
    lab = vol(np.ones((2, 2, 2), np.uint8))
    with pytest.raises(InputError, match="4D"):
        quantify(lab, ct=Volume(np.zeros((2, 2, 2, 3)), np.eye(4)))


def test_mismatched_grids_name_both_images():
    lab = Volume(np.ones((2, 2, 2), np.uint8), np.eye(4))
    with pytest.raises(GeometryMismatchError, match="spacing"):
        quantify(lab, ct=vol(np.zeros((2, 2, 2)), (1.0, 1.0, 2.0)))


def test_nan_inside_a_label_is_an_error_but_outside_is_not():
    lab = np.zeros((2, 2, 2), np.uint8)
    lab[0] = 1
    ct = np.zeros((2, 2, 2))
    ct[1, 1, 1] = np.nan  # background
    assert row(quantify(vol(lab), ct=vol(ct)), 1)["mean_hu"] == 0.0
    ct[0, 0, 0] = np.inf
    with pytest.raises(InputError, match="NaN or Inf voxels inside label"):
        quantify(vol(lab), ct=vol(ct))


@pytest.mark.filterwarnings("ignore:erosion by")
def test_negative_fat_inside_a_label_is_an_error():
    lab = np.zeros((2, 2, 2), np.uint8)
    lab[0] = 1
    fat, water = np.ones((2, 2, 2)), np.ones((2, 2, 2))
    fat[1] = -5.0  # background noise: allowed
    fat[1, 1, 1] = np.nan  # and NaN in the background must not hide what follows
    quantify(vol(lab), fat=vol(fat), water=vol(water))
    fat[0, 0, 0] = -1.0
    with pytest.raises(InputError, match="negative"):
        quantify(vol(lab), fat=vol(fat), water=vol(water))


@pytest.mark.parametrize(("labels", "match"), [
    (np.zeros((2, 2, 2), np.uint8), "no labelled voxels"),
    (np.full((2, 2, 2), -1, np.int16), ">= 0"),
    (np.full((2, 2, 2), 1.5), "non-whole"),
], ids=["empty", "negative", "fractional"])
def test_invalid_label_images(labels, match):
    with pytest.raises(InputError, match=match):
        quantify(vol(labels))


def test_dixon_needs_both_images():
    lab = vol(np.ones((2, 2, 2), np.uint8))
    with pytest.raises(InputError, match="both"):
        quantify(lab, water=vol(np.ones((2, 2, 2))))


def test_erosion_that_empties_a_label_warns_and_gives_nan():
    lab = np.zeros((5, 5, 5), np.uint8)
    lab[1:3, 1:3, 1:3] = 1  # 2x2x2: nothing survives one erosion
    ones = vol(np.ones(lab.shape))
    with pytest.warns(UserWarning, match="removes every voxel"):
        t = row(quantify(vol(lab), fat=ones, water=ones), 1)
    assert np.isnan(t["imf_pct"]) and t["imf_uneroded_pct"] == pytest.approx(50.0)


def test_measure_builds_both_tables_from_one_pass():
    lab, fat, water = dixon_cube()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = measure(vol(lab), fat=vol(fat), water=vol(water))
    assert result.label_table()["n_voxels"].sum() == result.slice_table()["n_voxels"].sum() == 125


@pytest.mark.parametrize(("border_outside", "n_eroded"), [(True, 9), (False, 27)], ids=["outside", "inside"])
def test_slab_faces_erode_like_the_image_border(border_outside, n_eroded):
    from myoscan.quantify import SliceRange

    lab, fat, water = dixon_cube()  # cube on slices 1-5; the slab keeps 2-4
    config = QuantifyConfig(erode_at_image_border=border_outside)
    t = row(quantify(vol(lab), fat=vol(fat), water=vol(water), slab=SliceRange(2, 5), config=config), 1)
    assert t["n_voxels"] == 75
    assert (t["n_voxels_eroded"], t["imf_pct"]) == (n_eroded, pytest.approx(10.0))
