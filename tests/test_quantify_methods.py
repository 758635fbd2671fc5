"""myoscan.quantify: MuscleMap clustering, slabs and landmarks, regional indices, config files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from myoscan.errors import InputError
from myoscan.io import Volume
from myoscan.labels import load_catalog
from myoscan.quantify import (
    ABDOMINAL_CAVITY,
    QuantifyConfig,
    SliceRange,
    cluster_fat_pct,
    landmark_z_mm,
    level_z_ranges,
    quantify,
    regional_indices,
    slab_between,
    slab_from_world_z,
    vertebral_levels,
)


def vol(array, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)) -> Volume:
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = origin
    return Volume(np.asarray(array), affine)


# --------------------------------------------------------------------------- clustering


def musclemap_fat_pct(values, method, components, seed=0):
    """MuscleMap's recipe written out with scikit-learn, independently of myoscan."""
    x = np.asarray(values, float).reshape(-1, 1)
    with threadpool_limits(1):
        labels = _fit_labels(x, method, components, seed)
    clusters = sorted((x[labels == c].mean(), c) for c in range(components))
    muscle_max = x[labels == clusters[0][1]].max()
    if components == 2:
        return 100 * np.mean(x > muscle_max), np.nan
    fat_min = x[labels == clusters[-1][1]].min()
    return 100 * np.mean(x >= fat_min), 100 * np.mean((x > muscle_max) & (x < fat_min))


def _fit_labels(x, method, components, seed):
    if method == "kmeans":
        model = KMeans(n_clusters=components, init="k-means++", tol=0.001, n_init=20, max_iter=1000,
                       random_state=seed).fit(x)
        labels = model.labels_
    else:
        model = GaussianMixture(n_components=components, covariance_type="full", init_params="kmeans",
                                tol=0.001, n_init=20, max_iter=1000, random_state=seed).fit(x)
        labels = model.predict(x)
    return labels


def bimodal(seed=1):
    rng = np.random.default_rng(seed)
    return np.r_[rng.normal(100, 5, 700), rng.normal(400, 10, 300)]


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_clearly_bimodal_label_is_30_percent_fat(method):
    fat, undefined = cluster_fat_pct(bimodal(), method, 2)
    assert fat == pytest.approx(30.0)
    assert np.isnan(undefined)


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_three_classes_give_fat_and_undefined(method):
    rng = np.random.default_rng(2)
    values = np.r_[rng.normal(100, 5, 500), rng.normal(250, 5, 200), rng.normal(400, 5, 300)]
    assert cluster_fat_pct(values, method, 3) == (pytest.approx(30.0), pytest.approx(20.0))


@pytest.mark.parametrize("components", [2, 3])
@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_clustering_matches_scikit_learn_called_directly(method, components):
    rng = np.random.default_rng(5)  # overlapping classes: the answer depends on the fit itself
    values = np.r_[rng.normal(100, 30, 600), rng.normal(180, 40, 250), rng.normal(300, 50, 150)]
    ours = cluster_fat_pct(values, method, components, seed=0)
    np.testing.assert_allclose(ours, musclemap_fat_pct(values, method, components, seed=0))


def test_fit_on_a_subset_still_classifies_every_voxel():
    fat, _ = cluster_fat_pct(bimodal(), "kmeans", 2, max_voxels=200, seed=3)
    assert fat == pytest.approx(30.0)


def test_too_few_distinct_values_give_nan():
    assert np.isnan(cluster_fat_pct(np.full(50, 7.0), "gmm", 2)[0])


def test_quantify_clusters_each_label_of_an_image():
    rng = np.random.default_rng(4)
    lab = np.zeros((10, 10, 20), np.uint8)
    lab[:, :, :10], lab[:, :, 10:] = 1, 2
    fat = rng.random(lab.shape) < 0.3
    image = np.where(fat, rng.normal(400, 10, lab.shape), rng.normal(100, 5, lab.shape))
    image[:, :, 10:] = np.where(rng.random((10, 10, 10)) < 0.1, 400.0, 100.0)  # exactly 10 % fat
    table = quantify(vol(lab), image=vol(image)).set_index("label_id")
    for method in ("gmm", "kmeans"):
        assert table.loc[1, f"fat_pct_{method}"] == pytest.approx(
            musclemap_fat_pct(image[lab == 1], method, 2)[0])
        assert table.loc[2, f"fat_pct_{method}"] == pytest.approx(100 * np.mean(image[lab == 2] > 250))
    three = quantify(vol(lab), image=vol(image), config=QuantifyConfig(cluster_components=3,
                                                                       cluster_methods=("kmeans",)))
    assert {"fat_pct_kmeans", "undefined_pct_kmeans"} <= set(three.columns)
    assert "fat_pct_gmm" not in three


# --------------------------------------------------------------------------- slabs


def ts_like_segmentation():
    """TotalSegmentator 'total' ids on 10 slices of 3 mm from z = -30: L5 in slices 1-3,
    lower left lung lobe in slices 8-9, left iliopsoas (4 voxels a slice) everywhere."""
    lab = np.zeros((4, 4, 10), np.uint8)
    lab[0, 0, 1:4] = 27  # vertebra_l5
    lab[3, 3, 8:] = 11  # lung_lower_lobe_left
    lab[1:3, 1:3, :] = 88  # iliopsoas_left
    return vol(lab, (1.0, 1.0, 3.0), (0.0, 0.0, -30.0))


def test_slab_by_slice_range_keeps_original_slice_numbers():
    seg = ts_like_segmentation()
    table = quantify(seg, scheme="total", slab=SliceRange(2, 5)).set_index("name")
    assert table.loc["iliopsoas_left", "n_voxels"] == 12
    assert table.loc["vertebra_l5", "n_voxels"] == 2  # slices 2 and 3


def test_slab_by_world_z():
    seg = ts_like_segmentation()  # slice k is at z = -30 + 3k
    assert slab_from_world_z(seg, -25.0, -17.0) == SliceRange(2, 5)
    with pytest.raises(InputError, match="no slice centre"):
        slab_from_world_z(seg, 100.0, 120.0)


def test_abdominal_cavity_from_lung_base_to_bottom_of_l5():
    seg = ts_like_segmentation()
    names = load_catalog().label_names("total")
    assert landmark_z_mm(seg, names, "lung_*@bottom") == -6.0  # slice 8
    assert landmark_z_mm(seg, names, "vertebrae_L5@bottom") == -27.0  # slice 1
    assert landmark_z_mm(seg, names, "vertebra_l5@top") == -21.0  # slice 3, catalog spelling
    low, high = slab_between(seg, names, *ABDOMINAL_CAVITY)
    slab = slab_from_world_z(seg, low, high)
    assert slab == SliceRange(1, 9)
    assert quantify(seg, scheme="total", slab=slab).set_index("name").loc["iliopsoas_left", "n_voxels"] == 32


def test_missing_landmark_is_an_error_naming_it():
    seg = ts_like_segmentation()
    with pytest.raises(InputError, match="vertebrae_L4"):
        landmark_z_mm(seg, load_catalog().label_names("total"), "vertebrae_L4@bottom")
    with pytest.raises(InputError, match="@top or @bottom"):
        landmark_z_mm(seg, {}, "liver@middle")


def test_vertebral_levels_spec():
    assert vertebral_levels("C4-C6") == ("vertebrae_C4@top", "vertebrae_C6@bottom")
    assert vertebral_levels("L3") == ("vertebrae_L3@top", "vertebrae_L3@bottom")
    with pytest.raises(InputError):
        vertebral_levels("C9")


def cervical_case():
    """Vertebrae C3..C6 (TotalSegmentator ids 48..45) from top to bottom, 3 slices each, and
    the cervical-scheme MFSS right (label 1, levels C4-C6) on every slice (4 voxels a slice)."""
    landmarks = np.zeros((4, 4, 12), np.uint8)
    for level, ts_id in enumerate((48, 47, 46, 45)):  # C3 at the top (highest z)
        top = 12 - 3 * level
        landmarks[0, 0, top - 3:top] = ts_id
    muscles = np.zeros((4, 4, 12), np.uint8)
    muscles[2:, 2:, :] = 1
    return vol(landmarks, (1.0, 1.0, 2.0)), vol(muscles, (1.0, 1.0, 2.0))


def test_each_label_measured_on_its_own_vertebral_levels():
    landmarks, muscles = cervical_case()
    names = load_catalog().label_names("total")
    levels = {i: s.levels for i, s in load_catalog().scheme("cervical").labels.items()}
    ranges = level_z_ranges(levels, landmarks, names)
    assert ranges[1] == (0.0, 16.0)  # bottom of C6 (slice 0) to top of C4 (slice 8)
    table = quantify(muscles, scheme="cervical", label_z_ranges=ranges).set_index("label_id")
    assert table.loc[1, "n_voxels"] == 9 * 4  # slices 0-8


# --------------------------------------------------------------------------- regional indices


def thigh_table(**extra) -> pd.DataFrame:
    rows = [("sartorius_left", "left", "anterior", "muscle", 100.0),
            ("sartorius_right", "right", "anterior", "muscle", 110.0),
            ("rectus_femoris_left", "left", "anterior", "muscle", 200.0),
            ("semimembranosus_left", "left", "posterior", "muscle", 150.0),
            ("semimembranosus_right", "right", "posterior", "muscle", 150.0),
            ("femur_left", "left", "bone", "bone", 500.0),
            ("femur_right", "right", "bone", "bone", 400.0)]
    table = pd.DataFrame(rows, columns=["name", "side", "group", "tissue", "volume_ml"])
    return table.assign(**extra)


def test_regional_indices_by_hand():
    table = thigh_table(mass_g=lambda t: np.where(t["tissue"] == "muscle", t["volume_ml"] * 1.06, np.nan),
                        csa_cm2_at_slice=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    r = regional_indices(table, height_m=1.6).iloc[0]
    assert r["tmv_cm3"] == pytest.approx(710.0)
    assert r["tvi_cm3_m2"] == pytest.approx(710.0 / 2.56)
    assert r["pa_ratio"] == pytest.approx(300.0 / 410.0)
    assert r["asymmetry_pct_sartorius"] == pytest.approx(10 / 105 * 100)
    assert r["asymmetry_pct_semimembranosus"] == 0.0
    assert "asymmetry_pct_rectus_femoris" not in r  # one side only
    assert "asymmetry_pct_femur" not in r  # bones are not muscle asymmetry
    assert (r["group_anterior_volume_ml"], r["group_posterior_volume_ml"], r["group_bone_volume_ml"]) == (
        410.0, 300.0, 900.0)
    assert r["smi_g_m2"] == pytest.approx(710 * 1.06 / 2.56)
    assert r["smi_cm2_m2"] == pytest.approx(15.0 / 2.56)
    assert r["smi_cm3_m2"] == pytest.approx(710.0 / 2.56)


def test_regional_indices_without_height_are_nan_and_groups_configurable():
    r = regional_indices(thigh_table(), config=QuantifyConfig(tmv_groups=("anterior",))).iloc[0]
    assert r["tmv_cm3"] == 410.0
    assert np.isnan(r["tvi_cm3_m2"]) and np.isnan(r["smi_g_m2"])


def test_regional_indices_one_row_per_subject_with_heights():
    table = pd.concat([thigh_table(subject="sub-01"), thigh_table(subject="sub-02", volume_ml=50.0)])
    out = regional_indices(table, height_m={"sub-01": 2.0, "sub-02": 1.0})
    assert out["subject"].tolist() == ["sub-01", "sub-02"]
    assert out["tvi_cm3_m2"].tolist() == pytest.approx([710.0 / 4, 250.0])


def test_height_in_centimetres_is_caught():
    with pytest.raises(InputError, match="metres"):
        regional_indices(thigh_table(), height_m=172.0)


def test_missing_columns_are_named():
    with pytest.raises(InputError, match="tissue"):
        regional_indices(pd.DataFrame({"name": ["a"], "side": ["left"], "group": ["g"], "volume_ml": [1.0]}))


def test_regional_indices_from_a_quantified_thigh_scheme():
    lab = np.zeros((4, 4, 4), np.uint8)
    lab[0, :, :] = 37  # semimembranosus_left, 16 voxels
    lab[1, :2, :] = 1  # sartorius_left, 8 voxels
    lab[2, :, :] = 3  # rectus_femoris_left, 16 voxels
    r = regional_indices(quantify(vol(lab, (1.0, 1.0, 5.0)), scheme="thigh"), height_m=1.0).iloc[0]
    assert r["pa_ratio"] == pytest.approx(16 / 24)
    assert r["tmv_cm3"] == pytest.approx(40 * 5 / 1000)


# --------------------------------------------------------------------------- config


def test_config_from_toml_and_json(tmp_path):
    toml = tmp_path / "q.toml"
    toml.write_text('[quantify]\nerosion_iterations = 2\nct_muscle_hu = [-30, 100]\n'
                    'cluster_methods = ["kmeans"]\n')
    c = QuantifyConfig.from_file(toml, cluster_components=3)
    assert (c.erosion_iterations, c.ct_muscle_hu, c.cluster_methods, c.cluster_components) == (
        2, (-30.0, 100.0), ("kmeans",), 3)
    js = tmp_path / "q.json"
    js.write_text(json.dumps({"seed": 7}))
    assert QuantifyConfig.from_file(js).seed == 7


@pytest.mark.parametrize(("values", "match"), [
    ({"erosion_iterations": -1}, "erosion_iterations"),
    ({"cluster_components": 4}, "cluster_components"),
    ({"ct_muscle_hu": (150.0, -29.0)}, "low <= high"),
    ({"csa_slice_index": 3, "csa_world_z_mm": 1.0}, "not both"),
], ids=["erosion", "components", "hu-order", "csa-both"])
def test_invalid_config_values(values, match):
    with pytest.raises(InputError, match=match):
        QuantifyConfig(**values)


@pytest.mark.parametrize(("text", "match"), [
    ('erosion_iterations = "2"', "erosion_iterations = '2' must be a whole number"),
    ("erosion_iterations = 1.5", "erosion_iterations = 1.5 must be a whole number"),
    ("ct_muscle_hu = 5", r"ct_muscle_hu = 5 must be two numbers \[low, high\]"),
    ('ct_adipose_hu = ["a", "b"]', "ct_adipose_hu .* must be two numbers"),
    ("tmv_groups = [1, 2]", "tmv_groups = \\[1, 2\\] must be a name or a list of names"),
    ('erode_at_image_border = "no"', "erode_at_image_border = 'no' must be true or false"),
    ('muscle_density_g_ml = "1.06"', "muscle_density_g_ml = '1.06' must be a number"),
], ids=["int-text", "int-fraction", "hu-scalar", "hu-text", "groups-numbers", "bool-text", "float-text"])
def test_config_file_values_of_the_wrong_type_are_named(tmp_path, text, match):
    # these ended in TypeError tracebacks (in the config check or in pandas' isin)
    path = tmp_path / "q.toml"
    path.write_text(f"[quantify]\n{text}\n")
    with pytest.raises(InputError, match=f"q.toml: QuantifyConfig field {match}"):
        QuantifyConfig.from_file(path)


def test_config_file_group_may_be_one_name(tmp_path):
    path = tmp_path / "q.toml"
    path.write_text('[quantify]\ntmv_groups = "anterior"\npa_posterior_groups = "posterior"\n')
    config = QuantifyConfig.from_file(path)
    assert (config.tmv_groups, config.pa_posterior_groups) == (("anterior",), ("posterior",))


def test_unknown_config_key_is_named(tmp_path):
    path = tmp_path / "q.json"
    path.write_text('{"erosion": 2}')
    with pytest.raises(InputError, match="erosion"):
        QuantifyConfig.from_file(path)


def test_fat_fraction_nan_voxels_inside_a_label_are_left_out_with_a_warning():
    from myoscan.io import Volume
    from myoscan.quantify import quantify

    labels = np.zeros((4, 4, 2), np.uint8)
    labels[:2] = 7
    ff = np.full(labels.shape, 10.0, np.float32)
    ff[0, 0, 0] = np.nan  # below the Dixon noise floor
    ff[1, 0, 0] = 40.0
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    with pytest.warns(UserWarning, match=r"without a fat fraction \(NaN\) inside label\(s\) 7 \(6.2 %\)"):
        row = quantify(Volume(labels, affine), fat_fraction=Volume(ff, affine), scheme="leg").iloc[0]
    assert row["ff_mean_pct"] == pytest.approx((40.0 + 14 * 10.0) / 15)
    assert row["ff_median_pct"] == pytest.approx(10.0)
    assert row["volume_ml"] == pytest.approx(16 * 2.0 / 1000)
