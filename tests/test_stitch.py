from __future__ import annotations

import json
from pathlib import Path

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from dicom_factory import write_series
from myoscan.cli import main
from myoscan.cli.stitch import output_paths
from myoscan.errors import InputError
from myoscan.io import Volume, check_same_grid, read_volume, write_volume
from myoscan.outputs import write_output_set
from myoscan.stitch import (
    find_stations,
    global_grid,
    read_station,
    resample_station,
    stitch_contrasts,
    stitch_volumes,
)

# One known smooth volume on a lattice: 20 columns x 24 rows x 30 slices, axial, LPS.
ORIGIN_LPS = (-20.0, -15.0, -100.0)
PIXEL_SPACING = (1.5, 2.0)  # DICOM (row, column) spacing: rows 1.5 mm apart, columns 2.0 mm apart
SLICE_MM = 3.0
N_ROWS, N_COLS, N_SLICES = 24, 20, 30
SLOPE, INTERCEPT = 0.02, 100.0


def known_function(r, a, s):
    """Smooth test function of RAS position (mm)."""
    return 200 + 40 * np.sin(r / 25) + 30 * np.cos(a / 20) + 0.8 * s + 15 * np.sin(s / 18)


def lattice_values(offset: float = 0.0) -> np.ndarray:
    """Stored DICOM values (slices, rows, cols) of the known volume on the whole lattice."""
    k, r, c = np.meshgrid(np.arange(N_SLICES), np.arange(N_ROWS), np.arange(N_COLS), indexing="ij")
    x_lps = ORIGIN_LPS[0] + c * PIXEL_SPACING[1]
    y_lps = ORIGIN_LPS[1] + r * PIXEL_SPACING[0]
    z_lps = ORIGIN_LPS[2] + k * SLICE_MM
    value = known_function(-x_lps, -y_lps, z_lps) + offset
    return np.round((value - INTERCEPT) / SLOPE).astype(np.int16)


def as_io_layout(stored: np.ndarray) -> np.ndarray:
    """(slices, rows, cols) stored values -> (I, J, K) real values as myoscan.io reads them."""
    return np.stack([s[::-1, :].T for s in stored], axis=-1).astype(np.float64) * SLOPE + INTERCEPT


def write_station(folder, slices, *, offset=0.0, series_time="120000", description="synthetic", seed=0):
    stored = lattice_values(offset)[list(slices)]
    return write_series(folder, stored, origin_lps=ORIGIN_LPS, pixel_spacing=PIXEL_SPACING,
                        slice_positions=np.asarray(slices, float) * SLICE_MM, slope=SLOPE,
                        intercept=INTERCEPT, modality="MR", series_time=series_time,
                        series_description=description, shuffle_seed=seed)


STATION_A = range(0, 12)
STATION_B = range(9, 22)  # overlaps A by 3 slices
STATION_C = [k for k in range(18, 30) if k != 24]  # overlaps B by 4 slices; slice 24 missing
OFFSETS = {"A": 0.0, "B": 4.0, "C": -2.0}


@pytest.fixture(scope="module")
def stations(tmp_path_factory):
    root = tmp_path_factory.mktemp("stations")
    write_station(root / "A", STATION_A, offset=OFFSETS["A"], seed=1)
    write_station(root / "B_early", STATION_B, offset=50.0, series_time="101500", seed=2)  # superseded
    write_station(root / "B_late", STATION_B, offset=OFFSETS["B"], series_time="113000.25", seed=3)
    write_station(root / "C", STATION_C, offset=OFFSETS["C"], seed=4)
    return root


def expected_fused() -> np.ndarray:
    """Known volume plus each station's offset, averaged where stations overlap."""
    total = np.zeros((N_COLS, N_ROWS, N_SLICES))
    count = np.zeros(N_SLICES)
    for name, slices in (("A", STATION_A), ("B", STATION_B), ("C", range(18, 30))):
        ks = list(slices)
        total[..., ks] += as_io_layout(lattice_values(OFFSETS[name]))[..., ks]
        count[ks] += 1
    return total / count


def test_fused_volume_matches_known_volume_geometry_duplicate_and_gap(stations):
    sources = [stations / "C", stations / "B_early", stations / "A", stations / "B_late"]  # any order
    result = stitch_volumes(sources)
    fused = result.volumes["image"]
    station_a = read_volume(stations / "A")
    assert fused.shape == (N_COLS, N_ROWS, N_SLICES)
    # Geometry exact: the grid is station A's grid extended over all 30 slices.
    np.testing.assert_allclose(fused.affine, station_a.affine, atol=1e-9)
    expected = expected_fused()
    on_lattice = np.ones(N_SLICES, bool)
    on_lattice[24] = False
    # Away from the missing slice every voxel is a sample (or the mean of samples): exact.
    np.testing.assert_allclose(fused.array[..., on_lattice], expected[..., on_lattice], atol=1e-3)
    # Overlaps are averaged: A+B (k 9-11) -> offset 2, B+C (k 18-21) -> offset 1.
    truth = as_io_layout(lattice_values())
    np.testing.assert_allclose(fused.array[..., 9:12] - truth[..., 9:12], 2.0, atol=1e-3)
    np.testing.assert_allclose(fused.array[..., 18:22] - truth[..., 18:22], 1.0, atol=1e-3)
    # The missing slice is interpolated from its true neighbours, within interpolation error.
    c_values = as_io_layout(lattice_values(OFFSETS["C"]))
    np.testing.assert_allclose(fused.array[..., 24], (c_values[..., 23] + c_values[..., 25]) / 2, atol=1e-3)
    assert np.abs(fused.array[..., 24] - c_values[..., 24]).max() < 0.3
    # The later duplicate wins and the dropped one is reported.
    assert [d["name"] for d in result.dropped] == ["B_early"]
    assert result.dropped[0]["kept_instead"] == "B_late"
    assert result.dropped[0]["kept_acquired_s"] == pytest.approx(11 * 3600 + 30 * 60 + 0.25)
    # Coverage: 2 in the overlaps, 1 elsewhere.
    coverage = result.coverage.array[0, 0]
    np.testing.assert_array_equal(coverage, [2 if k in (9, 10, 11, 18, 19, 20, 21) else 1 for k in range(30)])
    # Stations are reported superior -> inferior, and the gap is noted.
    assert [s["name"] for s in result.stations] == ["C", "B_late", "A"]
    assert any("irregular slice spacing" in note and "C" in note for note in result.notes)


def test_ramp_blend_cross_fades_linearly(stations):
    fused = stitch_volumes([stations / "A", stations / "B_late"], blend="ramp").volumes["image"]
    truth = as_io_layout(lattice_values())[..., :22]
    offset = (fused.array - truth)[..., 9:12].mean(axis=(0, 1))  # A (0) -> B (4) over k 9..11
    # Weights are distance-to-own-edge + one voxel: A = (2,1,0)+1 voxels, B = (0,1,2)+1.
    np.testing.assert_allclose(offset, [4 * 1 / 4, 4 * 2 / 4, 4 * 3 / 4], atol=1e-3)
    np.testing.assert_allclose((fused.array - truth)[..., :9], 0.0, atol=1e-3)
    np.testing.assert_allclose((fused.array - truth)[..., 12:], 4.0, atol=1e-3)


def shifted_volume(shape, spacing, origin, direction=None):
    affine = np.eye(4)
    affine[:3, :3] = (np.eye(3) if direction is None else direction) * np.asarray(spacing)
    affine[:3, 3] = origin
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    values = known_function(world[:, 0], world[:, 1], world[:, 2]).reshape(shape).astype(np.float32)
    return Volume(values, affine)


def test_resampling_agrees_with_simpleitk(tmp_path):
    # Station off the output lattice by fractions of a voxel in all three axes.
    anchor = shifted_volume((30, 26, 20), (2.0, 2.0, 3.0), (0.0, 0.0, 0.0))
    moved = shifted_volume((24, 20, 14), (1.7, 2.3, 3.6), (5.3, 3.1, 7.7))
    result = stitch_volumes([anchor, moved], duplicate_overlap=1.0)  # 1.0: no duplicate check
    grid_volume = result.volumes["image"]
    reference = sitk.ReadImage(str(write_volume(grid_volume, tmp_path / "grid.nii.gz")))
    image = sitk.ReadImage(str(write_volume(moved, tmp_path / "moved.nii.gz")))
    resampled = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    expected = sitk.GetArrayFromImage(resampled).transpose(2, 1, 0)  # sitk arrays are (K, J, I)
    grid = global_grid([read_station(anchor)[0], read_station(moved)[0]])
    box, ours = resample_station(read_station(moved)[0], grid)
    inner = tuple(slice(b.start + 1, b.stop - 1) for b in box)  # SimpleITK pads the border half-voxel
    inner_ours = ours[tuple(slice(1, -1) for _ in range(3))]
    np.testing.assert_allclose(inner_ours, expected[inner], atol=2e-3)
    # And the resampled smooth function is within trilinear error of the truth.
    world_truth = shifted_volume(grid_volume.shape, grid_volume.spacing_mm, grid_volume.origin_mm).array
    assert np.abs(ours - world_truth[box]).max() < 0.25


def test_grid_uses_finest_spacing_or_the_requested_one():
    coarse = shifted_volume((10, 10, 5), (2.0, 2.0, 4.0), (0.0, 0.0, 0.0))
    fine = shifted_volume((10, 10, 5), (1.0, 3.0, 2.0), (0.0, 0.0, 12.0))
    default = stitch_volumes([coarse, fine]).volumes["image"]
    assert default.spacing_mm == (1.0, 2.0, 2.0)
    assert default.origin_mm == (0.0, 0.0, 0.0)
    assert default.shape == (19, 14, 11)  # x 0..18, y 0..27 (last centre 27), z 0..20
    chosen = stitch_volumes([coarse, fine], spacing_mm=(3.0, 3.0, 3.0)).volumes["image"]
    assert chosen.spacing_mm == (3.0, 3.0, 3.0)


def test_flipped_axes_are_reoriented_not_rejected():
    volume = shifted_volume((12, 10, 6), (2.0, 2.0, 3.0), (0.0, 0.0, 0.0))
    flipped_affine = volume.affine @ np.array([[1, 0, 0, 0], [0, -1, 0, 9], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    flipped = Volume(volume.array[:, ::-1, :].copy(), flipped_affine)
    fused = stitch_volumes([volume, flipped], duplicate_overlap=1.0).volumes["image"]
    np.testing.assert_allclose(fused.affine, volume.affine, atol=1e-9)
    np.testing.assert_allclose(fused.array, volume.array, atol=1e-4)


def test_rotated_station_is_rejected_with_a_clear_error():
    angle = np.deg2rad(10)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    straight = shifted_volume((8, 8, 4), (2.0, 2.0, 3.0), (0.0, 0.0, 0.0))
    rotated = shifted_volume((8, 8, 4), (2.0, 2.0, 3.0), (0.0, 0.0, 9.0), rotation)
    with pytest.raises(InputError, match="orientation differs .* by 10.0 degrees"):
        stitch_volumes([straight, rotated])


def test_cli_rejects_oblique_dicom_station_with_exit_2(stations, tmp_path, capsys):
    tilt = np.deg2rad(8)
    write_series(tmp_path / "oblique", lattice_values()[:6], origin_lps=(-20.0, -15.0, 0.0),
                 row_dir=(np.cos(tilt), np.sin(tilt), 0.0), col_dir=(-np.sin(tilt), np.cos(tilt), 0.0),
                 pixel_spacing=PIXEL_SPACING, slice_spacing=SLICE_MM, slope=SLOPE, intercept=INTERCEPT)
    out = tmp_path / "out" / "fused.nrrd"
    code = main(["stitch", str(stations / "A"), str(tmp_path / "oblique"), "-o", str(out), "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert "orientation differs" in err and err.count("\n") == 1
    assert not out.parent.exists() or not any(out.parent.iterdir())


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz"])
def test_cli_writes_fused_image_coverage_and_report(stations, tmp_path, suffix, capsys):
    out = tmp_path / f"fused{suffix}"
    code = main(["stitch", str(stations), "-o", str(out), "-q"])  # one folder holding every station
    assert code == 0
    fused = read_volume(out)
    np.testing.assert_allclose(fused.affine, read_volume(stations / "A").affine, atol=1e-5)
    np.testing.assert_allclose(fused.array[..., :24], expected_fused()[..., :24], atol=1e-3)
    coverage = read_volume(tmp_path / f"fused_coverage{suffix}")
    check_same_grid(fused, coverage)
    report = json.loads((tmp_path / "fused_stitch.json").read_text())
    assert report["dropped"][0]["name"].startswith("B_early")
    assert report["shape"] == [N_COLS, N_ROWS, N_SLICES]
    assert "dropped duplicate station B_early" in capsys.readouterr().out
    if suffix == ".nrrd":  # NRRD keeps origin, spacing and direction (seed 001), in LPS
        _, header = nrrd.read(str(out))
        origin_lps = read_volume(stations / "A").affine[:3, 3] * [-1, -1, 1]
        np.testing.assert_allclose(header["space origin"], origin_lps, atol=1e-5)
        assert header["space"] == "left-posterior-superior"


def test_dixon_set_shares_one_grid_from_dicom_series_descriptions(tmp_path):
    for name, slices, start in (("station1", range(0, 12), "100000"), ("station2", range(9, 22), "101000")):
        write_station(tmp_path / name, slices, description="Dixon_BH_17s_W", series_time=start)
        write_station(tmp_path / name, slices, offset=-60.0, description="Dixon_BH_17s_F", series_time=start)
    out = tmp_path / "out" / "sub-01.nii.gz"
    assert main(["stitch", str(tmp_path / "station1"), str(tmp_path / "station2"), "-o", str(out),
                 "--contrast", "water", "fat", "-q"]) == 0
    water = read_volume(tmp_path / "out" / "sub-01_water.nii.gz")
    fat = read_volume(tmp_path / "out" / "sub-01_fat.nii.gz")
    check_same_grid(water, fat)
    np.testing.assert_allclose(water.array - fat.array, 60.0, atol=1e-3)
    assert water.shape == (N_COLS, N_ROWS, 22)


def test_bids_folder_contrasts_and_different_station_grids(tmp_path):
    anat = tmp_path / "sub-01" / "anat"
    for chunk, (origin_z, spacing) in enumerate([(0.0, (2.0, 2.0, 3.0)), (24.0, (1.5, 2.0, 3.0))], start=1):
        for contrast, scale in (("water", 1.0), ("fat", 0.25)):
            volume = shifted_volume((16, 12, 10), spacing, (0.0, 0.0, origin_z))
            name = f"sub-01_chunk-{chunk}_{contrast}.nii.gz"
            write_volume(volume.with_array(volume.array * scale), anat / name)
    found = find_stations([tmp_path], ["water", "fat"])
    assert {c: len(v) for c, v in found.items()} == {"water": 2, "fat": 2}
    result = stitch_contrasts(found)
    check_same_grid(result.volumes["water"], result.volumes["fat"])
    assert result.volumes["water"].spacing_mm == (1.5, 2.0, 3.0)
    covered = result.coverage.array > 0
    water, fat = result.volumes["water"].array, result.volumes["fat"].array
    np.testing.assert_allclose(fat[covered], 0.25 * water[covered], rtol=1e-5)


def test_find_stations_names_missing_contrast(tmp_path):
    volume = shifted_volume((4, 4, 4), (1.0, 1.0, 1.0), (0, 0, 0))
    write_volume(volume, tmp_path / "sub-01_chunk-1_water.nii.gz")
    with pytest.raises(InputError, match="no stations found for contrast fat"):
        find_stations([tmp_path], ["water", "fat"])


def test_bad_output_extension_exits_2_before_any_work(stations, tmp_path, capsys):
    assert main(["stitch", str(stations / "A"), "-o", str(tmp_path / "fused.mha")]) == 2
    assert ".nrrd, .nii.gz or .nii" in capsys.readouterr().err


def test_output_names():
    images, coverage, report = output_paths(Path("d/x.nii.gz"), ["image"])
    assert images["image"].name == "x.nii.gz" and coverage.name == "x_coverage.nii.gz"
    assert report.name == "x_stitch.json"


def test_output_set_appears_together_or_not_at_all(tmp_path):
    def fail(path):
        raise OSError("disk full")

    writers = {tmp_path / "a.txt": lambda p: p.write_text("a"), tmp_path / "b.txt": fail}
    with pytest.raises(OSError, match="disk full"):
        write_output_set(writers)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    write_output_set({tmp_path / "a.txt": lambda p: p.write_text("a"),
                      tmp_path / "b.txt": lambda p: p.write_text("b")})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_spacing_in_metres_is_a_clear_error_not_a_memory_traceback(tmp_path, capsys):
    volume = shifted_volume((12, 10, 6), (2.0, 2.0, 3.0), (0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="give --spacing in millimetres"):
        stitch_volumes([volume], spacing_mm=(0.002, 0.002, 0.003))
    source = write_volume(volume, tmp_path / "station.nii.gz")
    out = tmp_path / "out" / "fused.nii.gz"
    assert main(["stitch", str(source), "-o", str(out), "--spacing", "0.002,0.002,0.003", "-q"]) == 2
    err = capsys.readouterr().err
    assert "11001 x 9001 x 5001 voxels" in err and err.count("\n") == 1
    assert not out.parent.exists()


def test_cli_rejects_a_coronal_station_among_axial_ones(stations, tmp_path, capsys):
    # Row x col normal along -y (LPS): a coronal series; it was "reoriented" and fused (or even
    # dropped the axial station as a duplicate) instead of being rejected as inconsistent.
    coronal = lattice_values()[:N_ROWS, :, :N_COLS]
    write_series(tmp_path / "coronal", coronal, origin_lps=(-20.0, -15.0, -100.0), col_dir=(0.0, 0.0, -1.0),
                 pixel_spacing=(3.0, 2.0), slice_spacing=1.5, slope=SLOPE, intercept=INTERCEPT, modality="MR")
    out = tmp_path / "out" / "fused.nii.gz"
    assert main(["stitch", str(stations / "A"), str(tmp_path / "coronal"), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "coronal: its slices are coronal while the first station's are axial" in err
    assert err.count("\n") == 1 and not out.parent.exists()
    with pytest.raises(InputError, match="its slices are axial while the first station's are coronal"):
        stitch_volumes([tmp_path / "coronal", stations / "A"])


def test_duplicates_with_equal_times_keep_the_last_listed_and_say_so(tmp_path):
    volume = shifted_volume((6, 6, 8), (2.0, 2.0, 3.0), (0.0, 0.0, 0.0))
    first = Volume(volume.array, volume.affine, Path("first.nii.gz"), {"SeriesTime": "101500"})
    second = Volume(volume.array + 1, volume.affine, Path("second.nii.gz"), {"SeriesTime": "101500"})
    with pytest.warns(UserWarning, match="acquired at the same time; kept the one listed last"):
        result = stitch_volumes([first, second])
    assert [d["name"] for d in result.dropped] == ["first.nii.gz"]
    assert "acquired later" not in result.dropped[0]["reason"]
    np.testing.assert_allclose(result.volumes["image"].array, volume.array + 1, atol=1e-4)


def test_float32_nifti_geometry_keeps_the_last_slice(tmp_path):
    # NIfTI stores the affine in float32: the last station's last slice centre lands ~1e-5 of a
    # voxel short of the lattice, and the grid ended one slice early (coverage lost it).
    paths = []
    for s in range(3):
        affine = np.diag([2.2321, 2.2321, 3.0, 1.0])
        affine[:3, 3] = (-250.123, -180.777, -490.3 + s * 150.0)
        volume = Volume(np.full((6, 6, 60), s + 1.0, np.float32), affine)
        paths.append(write_volume(volume, tmp_path / f"station{s}.nii.gz"))
    result = stitch_volumes(paths)
    fused = result.volumes["image"]
    assert fused.shape == (6, 6, 160)  # (2 x 150 + 59 x 3) / 3 + 1 slices
    assert (result.coverage.array > 0).all()
    np.testing.assert_array_equal(fused.array[..., -10:], 3.0)  # copies, not interpolations
    np.testing.assert_array_equal(fused.array[..., :50], 1.0)
    np.testing.assert_allclose(fused.affine[2, 3], read_volume(paths[0]).affine[2, 3])
