from __future__ import annotations

import gzip

import nibabel as nib
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from dicom_factory import write_series
from myoscan.errors import GeometryMismatchError, InputError, IrregularSpacingWarning
from myoscan.io import (
    Volume,
    check_same_grid,
    image_suffix,
    read_dicom_series,
    read_mask_folder,
    read_volume,
    require_3d,
    write_volume,
)


def oblique_affine(spacing=(0.7, 0.8, 5.0), origin=(-12.5, 30.0, 101.0), angle_deg=20.0):
    """A rotated, anisotropic voxel -> RAS affine."""
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def sitk_voxel_to_ras(image: sitk.Image, index) -> np.ndarray:
    lps = np.array(image.TransformContinuousIndexToPhysicalPoint([float(i) for i in index]))
    return lps * np.array([-1.0, -1.0, 1.0])


def test_volume_geometry_properties():
    vol = Volume(np.zeros((4, 5, 6), np.int16), oblique_affine())
    assert vol.spacing_mm == pytest.approx((0.7, 0.8, 5.0))
    assert vol.origin_mm == pytest.approx((-12.5, 30.0, 101.0))
    assert np.allclose(np.linalg.norm(vol.direction, axis=0), 1.0)
    assert vol.voxel_volume_ml == pytest.approx(0.7 * 0.8 * 5.0 / 1000)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd"], ids=["nii", "niigz", "nrrd"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32], ids=["u8", "i16", "f32"])
def test_roundtrip_keeps_values_dtype_and_geometry(tmp_path, suffix, dtype):
    rng = np.random.default_rng(0)
    array = (rng.random((6, 7, 3)) * 100).astype(dtype)
    if dtype == np.float32:
        array += np.float32(0.25)  # a fractional part that must survive
    vol = Volume(array, oblique_affine())
    back = read_volume(write_volume(vol, tmp_path / f"img{suffix}"))
    assert back.array.dtype == dtype
    np.testing.assert_array_equal(back.array, array)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-5)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_written_geometry_agrees_with_simpleitk(tmp_path, suffix):
    vol = Volume(np.zeros((6, 7, 3), np.int16), oblique_affine())
    path = write_volume(vol, tmp_path / f"img{suffix}")
    image = sitk.ReadImage(str(path))
    for index in [(0, 0, 0), (5, 6, 2), (2.5, 1.0, 1.5)]:
        expected = vol.affine @ np.array([*index, 1.0])
        np.testing.assert_allclose(sitk_voxel_to_ras(image, index), expected[:3], atol=1e-4)


def test_nifti_scaled_integers_become_floats(tmp_path):
    image = nib.Nifti1Image(np.arange(8, dtype=np.int16).reshape(2, 2, 2), np.eye(4))
    image.header.set_slope_inter(0.5, -1.0)
    nib.save(image, tmp_path / "scaled.nii.gz")
    vol = read_volume(tmp_path / "scaled.nii.gz")
    assert vol.array.dtype.kind == "f"
    assert vol.array[1, 1, 1] == pytest.approx(7 * 0.5 - 1.0)


def test_nrrd_ras_space_and_detached_header(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    header = {"space": "right-anterior-superior", "space directions": np.diag([1.5, 2.0, 2.5]),
              "space origin": np.array([10.0, -5.0, 3.0]), "kinds": ["domain"] * 3}
    nrrd.write(str(tmp_path / "a.nhdr"), data, header, detached_header=True)
    vol = read_volume(tmp_path / "a.nhdr")
    np.testing.assert_array_equal(vol.array, data)
    np.testing.assert_allclose(vol.affine[:3, 3], [10.0, -5.0, 3.0])
    assert vol.spacing_mm == (1.5, 2.0, 2.5)


@pytest.mark.parametrize("header", [
    {"spacings": [0.5, 0.7, 3.0]},
    {"spacings": [0.5, 0.7, 3.0], "axis mins": [10.0, 20.0, 30.0]},
    {"spacings": [0.5, 0.7, 3.0], "axis mins": [10.0, 20.0, 30.0], "centerings": ["node"] * 3},
], ids=["spacings", "axis-mins", "node-centred"])
def test_nrrd_with_spacings_only_is_placed_like_simpleitk(tmp_path, header):
    # NRRD without a world space (per-axis spacings, as older tools write) is valid; it was refused
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    nrrd.write(str(tmp_path / "s.nrrd"), data, header)
    vol = read_volume(tmp_path / "s.nrrd")
    np.testing.assert_array_equal(vol.array, data)
    assert vol.spacing_mm == pytest.approx((0.5, 0.7, 3.0))
    image = sitk.ReadImage(str(tmp_path / "s.nrrd"))
    for index in [(0, 0, 0), (1, 2, 3)]:
        expected = vol.affine @ np.array([*index, 1.0])
        np.testing.assert_allclose(sitk_voxel_to_ras(image, index), expected[:3], atol=1e-6)


def test_nrrd_without_any_spacing_is_a_one_line_error(tmp_path):
    nrrd.write(str(tmp_path / "n.nrrd"), np.zeros((2, 2, 2), np.int16))
    with pytest.raises(InputError, match="no 'space directions' and no 3 'spacings'"):
        read_volume(tmp_path / "n.nrrd")


def test_slicer_seg_nrrd_layers_are_merged_with_names(tmp_path):
    # Two layers: segment A (value 1) and B (value 2) on layer 0, C (value 1) on layer 1
    # overlapping A at one voxel. Label values collide -> segments renumbered 1..3.
    layers = np.zeros((2, 3, 3, 2), np.uint8)
    layers[0, 0, :, 0] = 1
    layers[0, 2, :, 1] = 2
    layers[1, 1, 1, :] = 1
    header = {
        "space": "left-posterior-superior",
        "space directions": np.array([[np.nan] * 3, [2.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]]),
        "space origin": np.array([0.0, 0.0, 0.0]),
        "kinds": ["list", "domain", "domain", "domain"],
    }
    for i, (name, layer, value) in enumerate([("soleus_left", 0, 1), ("tibia_left", 0, 2), ("fat", 1, 1)]):
        header.update({f"Segment{i}_ID": f"S{i}", f"Segment{i}_Name": name, f"Segment{i}_Layer": str(layer),
                       f"Segment{i}_LabelValue": str(value), f"Segment{i}_Color": "1 0 0"})
    nrrd.write(str(tmp_path / "x.seg.nrrd"), layers, header)
    vol = read_volume(tmp_path / "x.seg.nrrd")
    assert vol.meta["segment_names"] == {1: "soleus_left", 2: "tibia_left", 3: "fat"}
    assert vol.shape == (3, 3, 2)
    assert np.count_nonzero(vol.array == 1) == 3
    assert np.count_nonzero(vol.array == 2) == 3
    assert np.count_nonzero(vol.array == 3) == 2
    assert vol.spacing_mm == (2.0, 2.0, 3.0)


def test_legacy_slicer_seg_nrrd_has_one_binary_layer_per_segment(tmp_path):
    # Slicer <= 4.10 writes no Segment<i>_Layer / _LabelValue: segment i is the binary layer i
    # (Slicer reads them so); they must not all be looked up in layer 0 as values 1, 2, 3.
    layers = np.zeros((3, 4, 3, 2), np.uint8)
    layers[0, 0, :, :] = 1  # 6 voxels
    layers[1, 1, :2, 0] = 1  # 2 voxels
    layers[2, 2:, :, 1] = 1  # 6 voxels
    header = {
        "space": "left-posterior-superior",
        "space directions": np.array([[np.nan] * 3, [1.0, 0, 0], [0, 1.0, 0], [0, 0, 2.0]]),
        "space origin": np.array([0.0, 0.0, 0.0]),
        "kinds": ["list", "domain", "domain", "domain"],
    }
    for i, name in enumerate(["soleus_left", "tibia_left", "gastrocnemius_left"]):
        header.update({f"Segment{i}_ID": f"Segment_{i + 1}", f"Segment{i}_Name": name,
                       f"Segment{i}_Color": "1 0 0", f"Segment{i}_Extent": "0 3 0 2 0 1"})
    nrrd.write(str(tmp_path / "old.seg.nrrd"), layers, header)
    vol = read_volume(tmp_path / "old.seg.nrrd")
    assert vol.meta["segment_names"] == {1: "soleus_left", 2: "tibia_left", 3: "gastrocnemius_left"}
    for number in (1, 2, 3):
        np.testing.assert_array_equal(vol.array == number, layers[number - 1] == 1)


def test_dicom_series_sorted_rescaled_and_geometry_matches_simpleitk(tmp_path):
    rng = np.random.default_rng(1)
    stored = rng.integers(0, 2000, size=(5, 6, 7)).astype(np.int16)  # (slices, rows, cols)
    row_dir = (np.cos(0.3), np.sin(0.3), 0.0)
    col_dir = (-np.sin(0.3), np.cos(0.3), 0.0)
    folder = write_series(tmp_path / "ct", stored, origin_lps=(100.0, -50.0, 20.0), row_dir=row_dir,
                          col_dir=col_dir, pixel_spacing=(0.8, 0.6), slice_spacing=2.5,
                          slope=1.0, intercept=-1024.0)
    vol = read_volume(folder)
    assert vol.shape == (7, 6, 5)
    assert vol.spacing_mm == pytest.approx((0.6, 0.8, 2.5))
    # Value check against the stored pixels: voxel (i, j, k) is column i, row (rows-1-j), slice k.
    assert vol.array[3, 0, 2] == stored[2, 5, 3] - 1024.0
    assert "PatientName" not in vol.meta and "PatientID" not in vol.meta
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    reference = reader.Execute()
    ref_array = sitk.GetArrayFromImage(reference)  # (k, row, col) in sitk's own slice order
    for (i, j, k) in [(0, 0, 0), (6, 5, 4), (3, 2, 1)]:
        world = vol.affine @ np.array([i, j, k, 1.0])
        lps = world[:3] * np.array([-1.0, -1.0, 1.0])
        idx = reference.TransformPhysicalPointToIndex(lps.tolist())
        assert ref_array[idx[2], idx[1], idx[0]] == pytest.approx(vol.array[i, j, k])


def test_dicom_irregular_gap_uses_median_spacing_and_warns(tmp_path):
    stored = np.zeros((5, 4, 4), np.int16)
    folder = write_series(tmp_path / "s", stored, slice_positions=np.array([0.0, 3.0, 6.0, 12.0, 15.0]))
    with pytest.warns(IrregularSpacingWarning, match="irregular slice spacing"):
        vol = read_dicom_series(folder)
    assert vol.spacing_mm[2] == pytest.approx(3.0)


def test_dicom_folder_with_two_series_needs_a_choice(tmp_path):
    write_series(tmp_path / "d", np.zeros((2, 3, 3)), series_uid="1.2.3.1")
    write_series(tmp_path / "d", np.zeros((2, 3, 3)), series_uid="1.2.3.2", origin_lps=(0, 0, 50))
    with pytest.raises(InputError, match="2 series") as error:
        read_volume(tmp_path / "d")
    # the command line has no series option: the message says what a user can do
    assert "move each series into a folder of its own" in str(error.value)
    assert read_volume(tmp_path / "d", series_uid="1.2.3.2").origin_mm[2] == pytest.approx(50.0)


def test_real_dicom_matches_totalsegmentator_nifti_grid(totalseg_dir):
    ct = read_volume(totalseg_dir / "example_ct_dicom")
    seg = read_volume(totalseg_dir / "example_seg_dicom.nii.gz")
    assert ct.shape == (512, 512, 20)
    assert ct.array.dtype == np.float32
    assert ct.array.min() == pytest.approx(-1024.0)  # HU: air outside the FOV circle
    np.testing.assert_allclose(ct.affine, seg.affine, atol=1e-3)
    check_same_grid(ct, seg)
    # HU inside TotalSegmentator's liver (class 5) is soft tissue, inside vertebrae it is bone.
    assert 20 < ct.array[seg.array == 5].mean() < 150


def test_check_same_grid_names_both_files_and_difference():
    a = Volume(np.zeros((2, 2, 2)), np.diag([1.0, 1.0, 1.0, 1.0]), path=None)
    b = Volume(np.zeros((2, 2, 2)), np.diag([1.0, 1.0, 2.0, 1.0]))
    object.__setattr__(a, "path", __import__("pathlib").Path("fat.nii.gz"))
    object.__setattr__(b, "path", __import__("pathlib").Path("water.nii.gz"))
    with pytest.raises(GeometryMismatchError, match=r"fat.nii.gz and water.nii.gz .*spacing"):
        check_same_grid(a, b)
    c = Volume(np.zeros((2, 2, 2)), np.eye(4) + np.array([[0, 0, 0, 0.5], [0] * 4, [0] * 4, [0] * 4]))
    with pytest.raises(GeometryMismatchError, match="origin"):
        check_same_grid(Volume(np.zeros((2, 2, 2)), np.eye(4)), c)
    with pytest.raises(GeometryMismatchError, match="shape"):
        check_same_grid(Volume(np.zeros((2, 2, 3)), np.eye(4)), c)


def test_gantry_tilted_series_is_refused_not_sheared(tmp_path):
    import pydicom

    stored = np.zeros((6, 4, 5), np.int16)
    folder = write_series(tmp_path / "tilt", stored, slice_spacing=2.5)
    for file in folder.iterdir():  # 15 degree tilt: each slice shifted along the columns
        ds = pydicom.dcmread(file)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [f"{x:.6f}", f"{y + z * np.tan(np.deg2rad(15)):.6f}", f"{z:.6f}"]
        ds.save_as(file)
    with pytest.raises(InputError, match=r"not stacked along their normal \(up to 3.35 mm off"):
        read_dicom_series(folder)


def test_read_mask_folder_on_totalsegmentator_output(totalseg_dir):
    labels, names = read_mask_folder(totalseg_dir / "example_seg_fast")
    assert len(names) == len(list((totalseg_dir / "example_seg_fast").glob("*.nii.gz")))
    femur_id = next(i for i, n in names.items() if n == "femur_left")
    mask = np.asarray(nib.load(totalseg_dir / "example_seg_fast" / "femur_left.nii.gz").dataobj) > 0
    np.testing.assert_array_equal(labels.array == femur_id, mask)
    # the label map is the folder's: messages about it name the folder, not its first mask file
    assert labels.name == "example_seg_fast"
    femur = nib.load(totalseg_dir / "example_seg_fast" / "femur_left.nii.gz")
    np.testing.assert_array_equal(labels.affine, femur.affine)


def test_read_mask_folder_skips_hidden_files(tmp_path):
    mask = np.zeros((3, 3, 3), np.uint8)
    mask[1] = 1
    write_volume(Volume(mask, np.eye(4)), tmp_path / "soleus_left.nii.gz")
    (tmp_path / "._soleus_left.nii.gz").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    labels, names = read_mask_folder(tmp_path)
    assert names == {1: "soleus_left"}
    assert np.count_nonzero(labels.array == 1) == 9


def test_read_mask_folder_names_nrrd_nhdr_and_slicer_masks_by_structure(tmp_path):
    masks = {"soleus_left": np.s_[0], "tibia_left": np.s_[1], "fibula_left": np.s_[2]}
    for (name, where), suffix in zip(masks.items(), [".seg.nrrd", ".nhdr", ".nrrd"], strict=True):
        mask = np.zeros((3, 3, 3), np.uint8)
        mask[where] = 1
        write_volume(Volume(mask, np.eye(4)), tmp_path / "tmp.nrrd")
        if suffix == ".nhdr":
            data, header = nrrd.read(str(tmp_path / "tmp.nrrd"))
            nrrd.write(str(tmp_path / f"{name}.nhdr"), data, header, detached_header=True)
            (tmp_path / "tmp.nrrd").unlink()
        else:
            (tmp_path / "tmp.nrrd").rename(tmp_path / f"{name}{suffix}")
    labels, names = read_mask_folder(tmp_path)
    assert sorted(names.values()) == ["fibula_left", "soleus_left", "tibia_left"]  # not 'soleus_left.seg'
    for number, name in names.items():
        rows = np.flatnonzero((labels.array == number).any(axis=(1, 2)))
        assert rows.tolist() == [list(masks).index(name)]
    # a folder of detached-header masks only is a mask folder for quantify, not a DICOM folder
    from myoscan.quantify.files import load_segmentation

    only = tmp_path / "nhdr_only"
    only.mkdir()
    for file in tmp_path.glob("tibia_left.*"):
        file.rename(only / file.name)
    assert load_segmentation(only)[1] == {1: "tibia_left"}


def test_read_mask_folder_rejects_overlaps(tmp_path):
    a = np.zeros((3, 3, 3), np.uint8)
    a[0] = 1
    b = np.zeros_like(a)
    b[0, 0] = 1
    write_volume(Volume(a, np.eye(4)), tmp_path / "a.nii.gz")
    write_volume(Volume(b, np.eye(4)), tmp_path / "b.nii.gz")
    with pytest.raises(InputError, match="overlaps 3 voxels"):
        read_mask_folder(tmp_path)


def test_bad_inputs_give_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_volume(tmp_path / "missing.nii.gz")
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(gzip.compress(b"not a nifti at all" * 10)[:30])
    with pytest.raises(InputError, match="broken.nii.gz: cannot read NIfTI"):
        read_volume(broken)
    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match="unsupported image format"):
        read_volume(tmp_path / "x.png")
    nib.save(nib.Nifti1Image(np.zeros((4, 4), np.float32), np.eye(4)), tmp_path / "flat.nii.gz")
    with pytest.raises(InputError, match="expected a 3D image"):
        read_volume(tmp_path / "flat.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), np.eye(4)), tmp_path / "t.nii.gz")
    with pytest.raises(InputError, match="4D"):
        require_3d(read_volume(tmp_path / "t.nii.gz"))
    with pytest.raises(InputError, match="no DICOM images"):
        read_volume(tmp_path)


def test_failed_write_leaves_no_file(tmp_path):
    vol = Volume(np.zeros((2, 2, 2, 2), np.float32), np.eye(4))
    with pytest.raises(InputError):
        write_volume(vol, tmp_path / "out.nrrd")
    assert list(tmp_path.iterdir()) == []


def test_image_suffix():
    assert image_suffix("a/b.seg.nrrd") == ".seg.nrrd"
    assert image_suffix("X.Nii") == ".nii"


def test_outputs_get_normal_file_permissions(tmp_path):
    import os
    import stat

    from myoscan.outputs import write_text

    path = write_text("x", tmp_path / "a.txt")
    expected = 0o666 & ~(mask := os.umask(0))
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == expected


def test_image_without_spacing_is_refused(tmp_path):
    image = nib.Nifti1Image(np.zeros((3, 3, 3), np.float32), None)
    image.header["pixdim"][1:4] = 0
    image.header["sform_code"] = 0
    image.header["qform_code"] = 0
    nib.save(image, tmp_path / "nospacing.nii.gz")
    with pytest.raises(InputError, match="voxel spacing is unknown"):
        read_volume(tmp_path / "nospacing.nii.gz")
    with pytest.raises(InputError, match="zero spacing"):
        Volume(np.zeros((2, 2, 2)), np.diag([1.0, 0.0, 1.0, 1.0]))


def test_published_folders_are_not_private(tmp_path):
    import os
    import stat

    from myoscan.outputs import normal_permissions, write_output_set

    mask = os.umask(0)
    os.umask(mask)
    write_output_set({tmp_path / "a.txt": lambda p: p.write_text("a")})
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~mask
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "f").write_text("x")
    os.chmod(private / "f", 0o600)
    normal_permissions(private)
    assert stat.S_IMODE(private.stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((private / "f").stat().st_mode) == 0o666 & ~mask


def _edit_series(folder, edit):
    import pydicom

    for file in sorted(folder.iterdir()):
        ds = pydicom.dcmread(file)
        edit(ds)
        ds.save_as(file)


@pytest.mark.parametrize("tag", ["PixelSpacing", "ImageOrientationPatient"])
def test_dicom_without_geometry_tags_is_a_one_line_error(tmp_path, tag):
    folder = write_series(tmp_path / "s", np.zeros((3, 4, 5), np.int16))
    _edit_series(folder, lambda ds: delattr(ds, tag))
    with pytest.raises(InputError, match=f"{tag}"):
        read_volume(folder)


def test_single_dicom_slice_without_thickness_is_a_one_line_error(tmp_path):
    folder = write_series(tmp_path / "s", np.zeros((1, 4, 5), np.int16))
    _edit_series(folder, lambda ds: delattr(ds, "SliceThickness"))
    with pytest.raises(InputError, match="slice spacing"):
        read_volume(folder)


def test_dicom_with_truncated_pixel_data_is_a_one_line_error(tmp_path):
    folder = write_series(tmp_path / "s", np.zeros((3, 4, 5), np.int16))
    victim = sorted(folder.iterdir())[1]
    victim.write_bytes(victim.read_bytes()[:-20])
    with pytest.raises(InputError, match="pixel data"):
        read_volume(folder)


def test_multiframe_dicom_is_refused_clearly(tmp_path):
    folder = write_series(tmp_path / "s", np.zeros((2, 4, 5), np.int16))

    def two_frames(ds):
        ds.NumberOfFrames = 2
        ds.PixelData = np.zeros((2, 4, 5), np.int16).tobytes()

    _edit_series(folder, two_frames)
    with pytest.raises(InputError, match="frame"):
        read_volume(folder)
