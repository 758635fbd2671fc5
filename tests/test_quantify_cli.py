"""``myoscan quantify`` in-process through ``main``: outputs, options and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from myoscan.cli import main
from myoscan.io import Volume, read_mask_folder, read_volume, write_volume
from myoscan.quantify import quantify

SPACING = (0.8, 0.8, 3.0)


@pytest.fixture
def dixon_files(tmp_path):
    """Leg-scheme soleus_left (7) and gastrocnemius_left (9) with known fat, on a 0.8x0.8x3 mm grid."""
    affine = np.diag([*SPACING, 1.0])
    lab = np.zeros((10, 8, 6), np.uint8)
    lab[1:6, 1:6, 1:5] = 7
    lab[6:9, 1:7, 1:5] = 9  # touches the soleus
    fat = np.where(lab > 0, 20.0, 0.0).astype(np.float32)
    water = np.where(lab > 0, 80.0, 0.0).astype(np.float32)
    paths = {}
    for name, array in (("seg.nii.gz", lab), ("seg.nrrd", lab), ("fat.nii.gz", fat), ("water.nii.gz", water)):
        paths[name] = write_volume(Volume(array, affine), tmp_path / name)
    return paths


def run_cli(*args: object) -> int:
    return main(["quantify", *map(str, args)])


@pytest.mark.parametrize("seg", ["seg.nii.gz", "seg.nrrd"])
def test_dixon_run_writes_the_tidy_table(dixon_files, tmp_path, seg):
    out = tmp_path / "out.csv"
    code = run_cli("--seg", dixon_files[seg], "--water", dixon_files["water.nii.gz"], "--fat",
                   dixon_files["fat.nii.gz"], "--scheme", "leg", "-o", out, "-q")
    assert code == 0
    table = pd.read_csv(out).set_index("name")
    assert table.loc["soleus_left", "n_voxels"] == 100
    assert table.loc["soleus_left", "volume_ml"] == pytest.approx(100 * 0.8 * 0.8 * 3 / 1000)
    assert table.loc["soleus_left", "n_voxels_eroded"] == 3 * 3 * 2
    assert table.loc["soleus_left", "imf_pct"] == pytest.approx(20.0)
    assert table.loc["gastrocnemius_left", "n_voxels_eroded"] == 1 * 4 * 2
    assert table.loc["gastrocnemius_left", "voxelwise_ff_mean_pct"] == pytest.approx(20.0)
    assert list(table.columns[:5]) == ["label_id", "side", "region", "group", "tissue"]


def test_all_outputs_and_options(dixon_files, tmp_path):
    out, js, per_slice, indices = (tmp_path / n for n in ("t.csv", "t.json", "s.csv", "i.csv"))
    code = run_cli("--seg", dixon_files["seg.nii.gz"], "--water", dixon_files["water.nii.gz"], "--fat",
                   dixon_files["fat.nii.gz"], "--scheme", "leg", "--erode", "0", "--csa-slice", "2",
                   "--slab-slices", "1:4", "--height-m", "1.7", "-o", out, "--json", js, "--per-slice",
                   per_slice, "--indices", indices, "-q")
    assert code == 0
    table = pd.read_csv(out).set_index("name")
    assert table.loc["soleus_left", "n_voxels"] == 75  # slices 1-3 only
    assert table.loc["soleus_left", "n_voxels_eroded"] == 75  # --erode 0
    assert table.loc["soleus_left", "csa_cm2_at_slice"] == pytest.approx(25 * 0.64 / 100)
    slices = pd.read_csv(per_slice)
    assert sorted(slices["slice_index"].unique()) == [1, 2, 3]
    wide = pd.read_csv(indices)
    assert wide.loc[0, "tmv_cm3"] == pytest.approx(table["volume_ml"].sum())
    assert wide.loc[0, "tvi_cm3_m2"] == pytest.approx(table["volume_ml"].sum() / 1.7**2)
    data = json.loads(js.read_text())
    assert data["slab"] == {"start": 1, "stop": 4}
    assert data["config"]["erosion_iterations"] == 0
    assert {row["name"] for row in data["labels"]} == {"soleus_left", "gastrocnemius_left"}
    assert data["regional_indices"]["pa_ratio"] is None  # NaN becomes null


def test_mask_folder_and_ct_match_the_api(totalseg_dir, tmp_path):
    out = tmp_path / "ts.csv"
    code = run_cli("--seg", totalseg_dir / "example_seg_fast", "--ct", totalseg_dir / "example_ct_sm.nii.gz",
                   "--slab-preset", "abdominal-cavity", "--landmarks", totalseg_dir / "example_seg_fast",
                   "-o", out, "-q")
    assert code == 2  # the small CT holds no L5: a one-line error, no table
    assert not out.exists()
    assert run_cli("--seg", totalseg_dir / "example_seg_fast", "--ct", totalseg_dir / "example_ct_sm.nii.gz",
                   "-o", out, "-q") == 0
    labels, names = read_mask_folder(totalseg_dir / "example_seg_fast")
    expected = quantify(labels, ct=read_volume(totalseg_dir / "example_ct_sm.nii.gz"), names=names)
    written = pd.read_csv(out)
    np.testing.assert_allclose(written["mean_hu"], expected["mean_hu"])
    assert written["name"].tolist() == expected["name"].tolist()


def test_landmark_slab_between_structures(totalseg_dir, tmp_path):
    out = tmp_path / "slab.csv"
    code = run_cli("--seg", totalseg_dir / "example_seg_fast", "--ct", totalseg_dir / "example_ct_sm.nii.gz",
                   "--slab-between", "lung_*@bottom", "vertebrae_L2@bottom", "-o", out, "-q")
    assert code == 0
    full = pd.read_csv(tmp_path / "slab.csv").set_index("input_name")
    assert full.loc["autochthon_left", "n_voxels"] < 7013  # fewer than over all slices


def test_quiet_shows_no_progress(dixon_files, tmp_path, capsys):
    run_cli("--seg", dixon_files["seg.nii.gz"], "--water", dixon_files["water.nii.gz"], "--fat",
            dixon_files["fat.nii.gz"], "-o", tmp_path / "q.csv", "--quiet")
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- bad input


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("myoscan quantify: error:") and "\n" not in err
    return err


def test_corrupt_file_exits_2_without_output(dixon_files, tmp_path, capsys):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a nifti file")
    out = tmp_path / "out.csv"
    assert run_cli("--seg", dixon_files["seg.nii.gz"], "--ct", bad, "-o", out) == 2
    assert "broken.nii.gz" in one_line_error(capsys)
    assert not out.exists() and list(tmp_path.glob(".out*")) == []


def test_grid_mismatch_exits_2_naming_both_files(dixon_files, tmp_path, capsys):
    other = write_volume(Volume(np.zeros((10, 8, 6), np.float32), np.diag([1.0, 1.0, 3.0, 1.0])),
                         tmp_path / "ct.nii.gz")
    assert run_cli("--seg", dixon_files["seg.nii.gz"], "--ct", other, "-o", tmp_path / "o.csv") == 2
    err = one_line_error(capsys)
    assert "seg.nii.gz" in err and "ct.nii.gz" in err and "spacing" in err


def test_four_d_image_exits_2(dixon_files, tmp_path, capsys):
    four_d = write_volume(Volume(np.zeros((10, 8, 6, 2), np.float32), np.diag([*SPACING, 1.0])),
                          tmp_path / "4d.nii.gz")
    assert run_cli("--seg", dixon_files["seg.nii.gz"], "--ct", four_d, "-o", tmp_path / "o.csv") == 2
    assert "4D" in one_line_error(capsys)


def test_water_without_fat_and_missing_file_exit_2(dixon_files, tmp_path, capsys):
    assert run_cli("--seg", dixon_files["seg.nii.gz"], "--water", dixon_files["water.nii.gz"],
                   "-o", tmp_path / "o.csv") == 2
    assert "--fat" in one_line_error(capsys)
    assert run_cli("--seg", tmp_path / "missing.nii.gz", "-o", tmp_path / "o.csv") == 2
    assert "missing.nii.gz" in capsys.readouterr().err


@pytest.mark.parametrize(("role", "value", "expected"), [
    ("fat", np.nan, "NaN or Inf voxels inside label(s) 7"),
    ("fat", np.inf, "NaN or Inf voxels inside label(s) 7"),
    ("water", -3.0, "1 voxels inside the labels are negative (min -3)"),
])
def test_bad_voxels_in_fat_or_water_exit_2_with_one_line(dixon_files, tmp_path, capsys, recwarn, role, value,
                                                        expected):
    image = read_volume(dixon_files[f"{role}.nii.gz"])
    array = image.array.copy()
    array[2, 2, 2] = value  # inside soleus_left (7)
    bad = write_volume(image.with_array(array), tmp_path / f"bad_{role}.nii.gz")
    images = {"fat": dixon_files["fat.nii.gz"], "water": dixon_files["water.nii.gz"], role: bad}
    out = tmp_path / "o.csv"
    assert run_cli("--seg", dixon_files["seg.nii.gz"], "--water", images["water"], "--fat", images["fat"],
                   "-o", out, "-q") == 2
    err = one_line_error(capsys)  # no RuntimeWarning lines before the error
    assert f"bad_{role}.nii.gz" in err and expected in err
    assert not out.exists()
    assert [str(w.message) for w in recwarn if issubclass(w.category, RuntimeWarning)] == []


def test_label_absent_from_the_scheme_is_a_one_line_warning_and_still_reported(tmp_path):
    # a real process: warnings go through the CLI's logging, as users see them
    lab = np.zeros((5, 5, 4), np.uint8)
    lab[1:4, 1:4, 1:3] = 7
    lab[0, 0, 0] = 99  # not a leg-scheme id
    seg = write_volume(Volume(lab, np.diag([*SPACING, 1.0])), tmp_path / "seg.nii.gz")
    out = tmp_path / "o.csv"
    done = subprocess.run([sys.executable, "-m", "myoscan", "quantify", "--seg", str(seg), "--scheme", "leg",
                           "-o", str(out), "-q"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert done.stderr.splitlines() == [
        "myoscan: warning: label id(s) 99 are not in label scheme 'leg'; they "
        "are reported as label_<id> (check --scheme)"]
    table = pd.read_csv(out).set_index("label_id")
    assert table.loc[99, "name"] == "label_99" and table.loc[99, "n_voxels"] == 1
    assert table.loc[7, "name"] == "soleus_left" and table.loc[7, "n_voxels"] == 18


def test_empty_segmentation_exits_2(tmp_path, capsys):
    empty = write_volume(Volume(np.zeros((3, 3, 3), np.uint8), np.eye(4)), tmp_path / "empty.nii.gz")
    assert run_cli("--seg", empty, "-o", tmp_path / "o.csv", "-q") == 2
    assert "no labelled voxels" in one_line_error(capsys)


def test_two_slab_options_are_refused(dixon_files, tmp_path, capsys):
    assert run_cli("--seg", dixon_files["seg.nii.gz"], "--slab-slices", "1:3", "--slab-z=0:5",
                   "-o", tmp_path / "o.csv") == 2
    assert "one slab option" in one_line_error(capsys)


def test_levels_from_catalog_with_separate_landmarks(tmp_path):
    # vertebrae C3..C6 (TotalSegmentator ids 48..45), 3 slices each from the top; the
    # cervical MFSS right (label 1, levels C4-C6) on all 12 slices, 4 voxels a slice
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    landmarks = np.zeros((4, 4, 12), np.uint8)
    for level, ts_id in enumerate((48, 47, 46, 45)):
        landmarks[0, 0, 9 - 3 * level:12 - 3 * level] = ts_id
    muscles = np.zeros((4, 4, 12), np.uint8)
    muscles[2:, 2:, :] = 1
    lm = write_volume(Volume(landmarks, affine), tmp_path / "vertebrae.nii.gz")
    seg = write_volume(Volume(muscles, affine), tmp_path / "muscles.nii.gz")
    out = tmp_path / "cervical.csv"
    assert run_cli("--seg", seg, "--scheme", "cervical", "--levels-from-catalog", "--landmarks", lm,
                   "-o", out, "-q") == 0
    assert pd.read_csv(out).loc[0, "n_voxels"] == 9 * 4  # C6 bottom (slice 0) to C4 top (slice 8)


@pytest.mark.parametrize("bad", ["--per-slice", "--indices", "--json"])
def test_a_bad_second_output_leaves_no_output_at_all(dixon_files, tmp_path, capsys, bad):
    out = tmp_path / "out.csv"
    target = tmp_path / ("afile/x.json" if bad == "--json" else "x.xlsx")
    (tmp_path / "afile").write_text("not a folder")
    assert run_cli("--seg", dixon_files["seg.nii.gz"], "--scheme", "leg", "-o", out, bad, target, "-q") == 2
    one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["afile", *dixon_files])


def test_mask_folder_with_a_scheme_is_refused_not_misnamed(tmp_path, capsys):
    folder = tmp_path / "masks"
    lab = np.zeros((4, 4, 4), np.uint8)
    lab[:2] = 1
    write_volume(Volume(lab, np.eye(4)), folder / "adrenal_gland_left.nii.gz")  # id 1 in the folder
    out = tmp_path / "out.csv"
    assert run_cli("--seg", folder, "--scheme", "total", "-o", out) == 2  # total id 1 is the spleen
    assert "--scheme" in one_line_error(capsys)
    assert not out.exists()
    assert run_cli("--seg", folder, "-o", out, "-q") == 0
    assert pd.read_csv(out)["name"].tolist() == ["adrenal_gland_left"]


def test_two_outputs_with_one_name_are_refused(dixon_files, tmp_path, capsys):
    out = tmp_path / "out.csv"
    assert run_cli("--seg", dixon_files["seg.nii.gz"], "-o", out, "--per-slice", out, "-q") == 2
    assert "different names" in one_line_error(capsys)
    assert not out.exists()
