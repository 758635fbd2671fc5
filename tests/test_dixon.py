from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy import ndimage

from myoscan.cli import main
from myoscan.dixon import (
    SwapConfig,
    combine_in_opp,
    detect_swaps,
    estimate_noise_level,
    fat_fraction,
    fat_fraction_pct,
    fix_swaps,
    is_signed_opposed_phase,
    noise_floor,
    process_dixon,
    split_water_fat,
    water_fat_from_ip_op,
)
from myoscan.errors import GeometryMismatchError, InputError
from myoscan.io import Volume, read_volume, write_volume

SPACING = (3.0, 3.0, 5.0)
SHAPE = (112, 64, 30)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b), 1)


def legs(*, swap=None, fat_level=1.0, muscle_level=0.45, sat_mm=10.0, noise=0.02, seed=0):
    """Two thighs on a 3 x 3 x 5 mm grid: water-dominant muscle inside fat-dominant subcutaneous fat.

    Each thigh has an uneven subcutaneous fat ring, a femur (cortex without signal around
    fatty marrow) and an intermuscular fat septum; tissue borders are blurred (partial
    volume), a smooth bias field multiplies the signal and the magnitudes are Rician.
    ``fat_level`` / ``muscle_level`` set the total signal of fat and muscle (T1-weighted:
    fat brighter; equal levels: proton-density weighting). ``swap(X, Y, Z)`` (mm) marks
    where water and fat are exchanged. Returns water, fat, the swap truth and tissue mask.
    """
    rng = np.random.default_rng(seed)
    axes = [(np.arange(n) - (n - 1) / 2 * (a < 2)) * s
            for a, (n, s) in enumerate(zip(SHAPE, SPACING, strict=True))]
    X, Y, Z = np.meshgrid(*axes, indexing="ij")
    fat_fraction_true = np.zeros(SHAPE)
    level = np.zeros(SHAPE)
    tissue = np.zeros(SHAPE, bool)
    for side in (-1, 1):
        cx = side * 75.0 + 3 * np.sin(Z / 40)
        radius = np.hypot(X - cx, Y * 1.15)
        angle = np.arctan2(Y, X - cx)
        body = radius < 68 + 6 * np.cos(Z / 60)
        muscle = radius < 68 + 6 * np.cos(Z / 60) - sat_mm * (1 + 0.4 * np.cos(2 * angle + side))
        bone = np.hypot(X - cx + side * 8, Y - 5.0)
        septum = muscle & (np.abs((X - cx) * 0.6 + (Y - 10) * 0.8) < 2.0) & (bone > 14)
        ff = np.select([bone < 10, bone < 14, septum, muscle, body], [0.9, 0.0, 0.85, 0.05, 0.92], 0.0)
        soft = muscle_level + (fat_level - muscle_level) * ff
        signal = np.where(bone < 14, np.where(bone < 10, fat_level, 0.02), soft)
        fat_fraction_true = np.where(body, ff, fat_fraction_true)
        level = np.where(body, signal, level)
        tissue |= body
    water = ndimage.gaussian_filter(level * (1 - fat_fraction_true), 0.6)
    fat = ndimage.gaussian_filter(level * fat_fraction_true, 0.6)
    bias = 1 + 0.2 * np.sin(X / 150 + 0.3) * np.cos(Y / 120) + 0.1 * np.sin(Z / 80)
    water, fat = water * bias, fat * bias
    truth = np.zeros(SHAPE, bool) if swap is None else swap(X, Y, Z)
    water, fat = np.where(truth, fat, water), np.where(truth, water, fat)

    def rician(a):
        return np.hypot(a + rng.normal(0, noise, SHAPE), rng.normal(0, noise, SHAPE))

    return rician(water).astype(np.float32), rician(fat).astype(np.float32), truth, tissue


def side_blob(X, Y, Z):  # lateral half of the right thigh: subcutaneous fat and muscle
    return ((X - 110) ** 2 / 50**2 + Y**2 / 45**2 + (Z - 70) ** 2 / 50**2) < 1


def slab(X, Y, Z):  # both thighs over 50 mm (a whole-station swap looks like this)
    return (Z >= 40) & (Z < 90)


def small_blob(X, Y, Z):  # 25 mm sphere at the skin
    return ((X - 130) ** 2 + (Y - 20) ** 2 + (Z - 70) ** 2) < 25**2


def deep_blob(X, Y, Z):  # inside the muscle, 30 mm from the skin
    return ((X - 60) ** 2 + (Y + 10) ** 2 + (Z - 70) ** 2) < 25**2


# --------------------------------------------------------------------------- algebra


def test_split_and_combine_by_hand():
    water, fat = split_water_fat([[[100.0, 30.0]]], [[[60.0, -10.0]]])
    np.testing.assert_array_equal(water, [[[80.0, 10.0]]])
    np.testing.assert_array_equal(fat, [[[20.0, 20.0]]])
    ip, op = combine_in_opp(water, fat)
    np.testing.assert_array_equal(ip, [[[100.0, 30.0]]])
    np.testing.assert_array_equal(op, [[[60.0, -10.0]]])


def test_ip_op_round_trip_is_exact():
    rng = np.random.default_rng(1)
    ip = rng.integers(0, 4096, (16, 12, 6)).astype(np.float32)  # DICOM-like stored values
    op = (ip * rng.uniform(-1, 1, ip.shape)).round().astype(np.float32)
    ip_back, op_back = combine_in_opp(*split_water_fat(ip, op))
    np.testing.assert_array_equal(ip_back, ip)
    np.testing.assert_array_equal(op_back, op)
    real_ip, real_op = rng.uniform(0, 1000, (2, 8, 8, 4))
    np.testing.assert_allclose(combine_in_opp(*split_water_fat(real_ip, real_op)), (real_ip, real_op),
                               rtol=1e-15, atol=1e-12)


def test_volume_api_keeps_geometry_and_flags_magnitude_op():
    affine = np.array([[0, -1.5, 0, 10], [2.0, 0, 0, -4], [0, 0, 4.0, 30], [0, 0, 0, 1]])
    ip = Volume(np.full((4, 5, 3), 100.0, np.float32), affine)
    op = ip.with_array(np.full((4, 5, 3), 60.0, np.float32))
    maps = water_fat_from_ip_op(ip, op)
    np.testing.assert_array_equal(maps.water.affine, affine)
    assert maps.water.array.dtype == np.float32
    assert maps.water.array[0, 0, 0] == 80.0 and maps.fat.array[0, 0, 0] == 20.0
    assert maps.fat_fraction.array[0, 0, 0] == pytest.approx(20.0)
    assert any("magnitude" in note for note in maps.notes)
    other = Volume(np.zeros((4, 5, 3), np.float32), np.diag([1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(GeometryMismatchError, match="spacing"):
        water_fat_from_ip_op(ip, other)


def test_signed_opposed_phase_is_recognised():
    ip = np.full((10, 10, 2), 100.0)
    op = np.where(np.arange(10)[:, None, None] < 5, 80.0, -70.0) * np.ones_like(ip)
    assert is_signed_opposed_phase(op, ip)
    assert not is_signed_opposed_phase(np.abs(op), ip)


# --------------------------------------------------------------------------- fat fraction


def test_fat_fraction_by_hand_with_nan_below_floor():
    ff = fat_fraction_pct([[[90.0, 0.0, 3.0, 40.0]]], [[[10.0, 50.0, 1.0, 0.0]]], floor=5.0)
    np.testing.assert_allclose(ff[0, 0, [0, 1, 3]], [10.0, 100.0, 0.0])
    assert np.isnan(ff[0, 0, 2])  # W + F = 4 < floor: NaN, never 0 or 100


def test_noise_level_and_floor_rule():
    rng = np.random.default_rng(0)
    air = np.hypot(*rng.normal(0, 2.0, (2, 50000)))  # Rayleigh background, sigma 2: mode 2
    tissue = rng.normal(300, 5, 50000)
    image = np.concatenate([air, tissue])
    assert estimate_noise_level(image) == pytest.approx(2.0, abs=0.15)
    assert noise_floor(image) == pytest.approx(5 * estimate_noise_level(image))
    assert np.isnan(estimate_noise_level(np.full(1000, 50.0)))  # no air: no background peak
    assert noise_floor(np.concatenate([np.zeros(500), np.full(500, 100.0)])) == pytest.approx(2.0)
    very_noisy = np.concatenate([np.hypot(*rng.normal(0, 30.0, (2, 50000))), tissue])
    assert noise_floor(very_noisy) == pytest.approx(0.15 * np.percentile(very_noisy, 99))  # capped


def test_fat_fraction_volume_and_grid_check():
    water = Volume(np.array([[[9.0, 0.1]]] * 2, np.float32).reshape(2, 1, 2, 1)[..., 0], np.eye(4))
    fat = water.with_array(np.ones_like(water.array))
    ff = fat_fraction(water, fat, floor=2.0)
    np.testing.assert_allclose(ff.array[:, 0, 0], 10.0)
    assert np.isnan(ff.array[:, 0, 1]).all()
    with pytest.raises(GeometryMismatchError):
        fat_fraction(water, Volume(fat.array, np.diag([2.0, 1.0, 1.0, 1.0])))


# --------------------------------------------------------------------------- swap detection


@pytest.mark.parametrize("fat_level", [1.0, 0.5], ids=["t1w", "pd"])
def test_no_swap_reported_on_clean_scans(fat_level):
    for kwargs in ({}, {"sat_mm": 3.0}):  # normal and lean subject
        water, fat, _, _ = legs(fat_level=fat_level, **kwargs)
        result = detect_swaps(water, fat, spacing_mm=SPACING)
        assert not result.has_swap
        assert result.swapped_fraction == 0.0
        assert result.summary()["qc"] == "pass"


@pytest.mark.parametrize(
    ("region", "fat_level"),
    [(side_blob, 1.0), (slab, 0.5), (small_blob, 1.0), (slab, 1.0)],
    ids=["side-t1w", "slab-pd", "small-t1w", "slab-t1w"],
)
def test_injected_swap_is_found(region, fat_level):
    water, fat, truth, _ = legs(swap=region, fat_level=fat_level)
    result = detect_swaps(water, fat, spacing_mm=SPACING)
    injected = truth & result.body
    assert dice(result.mask, injected) >= 0.8
    assert result.has_swap and result.summary()["qc"] == "fail"
    assert result.swapped_fraction == pytest.approx(injected.sum() / result.body.sum(), rel=0.2)
    assert result.probability[injected].mean() > result.probability[result.body & ~injected].mean()
    assert ("brightness" in result.cues) == (fat_level == 1.0 and region is not slab)


def test_signed_opposed_phase_finds_a_deep_swap_anatomy_cannot():
    water, fat, truth, _ = legs(swap=deep_blob, fat_level=0.5)
    clean_w, clean_f, _, _ = legs(fat_level=0.5)
    ip, signed_op = clean_w + clean_f, clean_w - clean_f  # the echoes do not swap
    without = detect_swaps(water, fat, spacing_mm=SPACING, in_phase=ip, opposed_phase=np.abs(signed_op))
    assert not without.has_swap  # magnitude echoes cannot tell a buried swap (documented limit)
    signed = detect_swaps(water, fat, spacing_mm=SPACING, in_phase=ip, opposed_phase=signed_op)
    assert "signed-op" in signed.cues
    assert dice(signed.mask, truth & signed.body) >= 0.8


def test_inconsistent_echoes_are_ignored_with_a_warning():
    water, fat, truth, _ = legs(swap=side_blob)
    with pytest.warns(UserWarning, match="disagree with IP"):
        result = detect_swaps(water, fat, spacing_mm=SPACING, in_phase=np.roll(water + fat, 10, axis=0),
                              opposed_phase=np.abs(water - fat))
    assert dice(result.mask, truth & result.body) >= 0.8
    scaled = detect_swaps(water, fat, spacing_mm=SPACING, in_phase=3 * (water + fat),
                          opposed_phase=3 * np.abs(water - fat))
    assert any("scaled x3" in note for note in scaled.notes)


def test_fix_restores_water_and_fat():
    water, fat, truth, tissue = legs(swap=side_blob, noise=0.0)
    clean_w, clean_f, _, _ = legs(noise=0.0)
    result = detect_swaps(water, fat, spacing_mm=SPACING)
    fixed_w, fixed_f = fix_swaps(water, fat, result.mask)
    hit = result.mask & truth
    np.testing.assert_allclose(fixed_w[hit], clean_w[hit], atol=1e-6)
    np.testing.assert_allclose(fixed_f[hit], clean_f[hit], atol=1e-6)
    ff_before = fat_fraction_pct(water, fat, floor=0.05)[truth & tissue]
    ff_after = fat_fraction_pct(fixed_w, fixed_f, floor=0.05)[truth & tissue]
    ff_clean = fat_fraction_pct(clean_w, clean_f, floor=0.05)[truth & tissue]
    assert np.nanmedian(np.abs(ff_after - ff_clean)) < 1.0 < np.nanmedian(np.abs(ff_before - ff_clean))


def test_small_regions_are_dropped():
    water, fat, truth, _ = legs(swap=small_blob)
    result = detect_swaps(water, fat, spacing_mm=SPACING, config=SwapConfig(min_region_ml=500.0))
    assert not result.has_swap and not result.mask.any()


def test_swap_check_on_phantom_with_recorded_swap():
    phantom = pytest.importorskip("myoscan.phantom")
    for swap in (False, True):
        config = phantom.PhantomConfig(swap=swap, bias_field=True)
        ph = phantom.make_phantom("thigh", "dixon", seed=0, config=config)
        water, fat = ph.images["water"], ph.images["fat"]
        result = detect_swaps(water.array, fat.array, spacing_mm=water.spacing_mm)
        if swap:
            assert dice(result.mask, ph.swap_mask.array > 0) >= 0.8
        else:
            assert not result.has_swap


# --------------------------------------------------------------------------- pipeline and CLI


def test_process_dixon_rejects_half_pairs_and_fix_without_water_fat():
    ip = Volume(np.ones((4, 4, 4), np.float32), np.eye(4))
    with pytest.raises(InputError, match="both in-phase and opposed-phase"):
        process_dixon(in_phase=ip)
    with pytest.raises(InputError, match="do not swap"):
        process_dixon(in_phase=ip, opposed_phase=ip, fix=True)
    with pytest.raises(InputError, match="no Dixon images"):
        process_dixon()


@pytest.fixture
def swapped_files(tmp_path):
    water, fat, truth, _ = legs(swap=side_blob)
    affine = np.diag([*SPACING, 1.0])
    affine[:3, 3] = (-166.5, -94.5, -40.0)
    paths = {}
    for name, array in (("water", water), ("fat", fat)):
        paths[name] = write_volume(Volume(array, affine), tmp_path / "in" / f"{name}.nii.gz")
    return paths, truth, affine


def test_cli_water_fat_swap_check_and_fix(swapped_files, tmp_path, capsys):
    paths, truth, affine = swapped_files
    out = tmp_path / "out"
    args = ["dixon", "--water", str(paths["water"]), "--fat", str(paths["fat"]), "-o", str(out), "--fix"]
    assert main(args) == 0
    report = json.loads((out / "dixon.json").read_text())
    assert report["swap_check"]["swap_detected"] is True and report["swap_fixed"] is True
    assert report["swap_check"]["qc"] == "fail"
    mask = read_volume(out / "swap_mask.nii.gz")
    np.testing.assert_allclose(mask.affine, affine, atol=1e-6)
    assert dice(mask.array > 0, truth & (read_volume(out / "swap_probability.nii.gz").array > 0)) >= 0.8
    water, fat = read_volume(out / "water.nii.gz").array, read_volume(out / "fat.nii.gz").array
    ip, op = read_volume(out / "in_phase.nii.gz").array, read_volume(out / "opposed_phase.nii.gz").array
    np.testing.assert_allclose(ip, water + fat, rtol=1e-6)
    np.testing.assert_allclose(op, water - fat, rtol=1e-6, atol=1e-6)
    clean_w, clean_f, _, _ = legs()
    inside = (mask.array > 0) & truth
    ff_fixed = read_volume(out / "fat_fraction_pct.nii.gz").array[inside]
    ff_clean = fat_fraction_pct(clean_w, clean_f, floor=0.05)[inside]
    assert abs(np.nanmedian(ff_fixed) - np.nanmedian(ff_clean)) < 1.0  # per-voxel noise differs
    assert "SWAP in" in capsys.readouterr().out


def test_cli_in_phase_opposed_phase(tmp_path):
    affine = np.diag([2.0, 2.0, 4.0, 1.0])
    ip = np.full((6, 6, 3), 200.0, np.float32)
    op = np.full((6, 6, 3), 120.0, np.float32)
    op[0] = 0.0
    ip[5] = 1.0  # below the noise floor
    for name, array in (("ip", ip), ("op", op)):
        write_volume(Volume(array, affine), tmp_path / f"{name}.nii.gz")
    out = tmp_path / "out"
    ip_path, op_path = str(tmp_path / "ip.nii.gz"), str(tmp_path / "op.nii.gz")
    assert main(["dixon", "--in-phase", ip_path, "--opposed-phase", op_path, "-o", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["dixon.json", "fat.nii.gz", "fat_fraction_pct.nii.gz",
                                                     "water.nii.gz"]
    ff = read_volume(out / "fat_fraction_pct.nii.gz")
    np.testing.assert_array_equal(ff.affine, affine)
    assert ff.array[2, 2, 1] == pytest.approx(20.0) and ff.array[0, 2, 1] == pytest.approx(50.0)
    assert np.isnan(ff.array[5]).all()
    assert read_volume(out / "water.nii.gz").array[2, 2, 1] == 160.0


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    write_volume(Volume(np.ones((3, 3, 3), np.float32), np.eye(4)), tmp_path / "w.nii.gz")
    assert main(["dixon", "--water", str(tmp_path / "w.nii.gz"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "both water and fat" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags", [("--water", "--fat"), ("--in-phase", "--opposed-phase")])
def test_cli_all_nan_image_is_named_exit_2(tmp_path, capsys, flags):
    rng = np.random.default_rng(0)
    write_volume(Volume(rng.uniform(50, 500, (8, 8, 4)).astype(np.float32), np.eye(4)), tmp_path / "good.nii.gz")
    write_volume(Volume(np.full((8, 8, 4), np.nan, np.float32), np.eye(4)), tmp_path / "empty.nii.gz")
    out = tmp_path / "out"
    argv = ["dixon", flags[0], str(tmp_path / "good.nii.gz"), flags[1], str(tmp_path / "empty.nii.gz"),
            "--noise-floor", "5", "-o", str(out), "-q"]
    assert main(argv) == 2  # with --noise-floor it wrote all-NaN maps and exit 0
    err = capsys.readouterr().err
    assert "empty.nii.gz: every voxel is NaN or infinite" in err and err.count("\n") == 1
    assert not out.exists()


def test_docstring_examples_run():
    import doctest
    import importlib

    attempted = 0
    for name in ("", ".signal", ".grid", ".cues", ".graph", ".swap", ".maps"):
        result = doctest.testmod(importlib.import_module(f"myoscan.dixon{name}"))
        assert result.failed == 0, name
        attempted += result.attempted
    assert attempted >= 15


def _axes_permuted(volume: Volume, order: tuple[int, int, int]) -> Volume:
    """The same image stored with its voxel axes in another order (same world geometry)."""
    affine = volume.affine.copy()
    affine[:3, :3] = volume.affine[:3, :3][:, list(order)]
    return Volume(np.ascontiguousarray(np.transpose(volume.array, order)), affine)


@pytest.mark.parametrize("order", [(2, 0, 1), (1, 2, 0)], ids=["slices-first", "slices-second"])
def test_swap_check_does_not_depend_on_the_voxel_axis_order(order):
    phantom = pytest.importorskip("myoscan.phantom")
    config = phantom.PhantomConfig(shape=(448, 266, 12), spacing_mm=(0.71, 0.71, 5.0))
    ph = phantom.make_phantom("leg", "dixon", seed=0, config=config)
    water, fat = (_axes_permuted(ph.images[name], order) for name in ("water", "fat"))
    maps = process_dixon(water=water, fat=fat)  # axial slices along axis 0 or 1 of the arrays
    assert not maps.swap.has_swap and maps.swap.swapped_fraction == 0.0


def test_nan_voxels_do_not_fake_a_swap():
    phantom = pytest.importorskip("myoscan.phantom")
    ph = phantom.make_phantom("leg", "dixon", seed=0, config=phantom.PhantomConfig(shape=(160, 120, 24),
                                                                                    noise=0.0))
    water = ph.images["water"].array.copy()
    water[119, 72, 16] = np.nan  # one voxel inside the left soleus
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no NaN reaches the min-cut capacities
        result = detect_swaps(water, ph.images["fat"].array, spacing_mm=ph.images["water"].spacing_mm)
    assert not result.has_swap and result.swapped_fraction == 0.0
    assert any("NaN" in note for note in result.notes)
    maps = process_dixon(water=ph.images["water"].with_array(water), fat=ph.images["fat"])
    assert np.isnan(maps.fat_fraction.array[119, 72, 16]) and not maps.swap.has_swap


@pytest.mark.parametrize(("region", "shape", "noise", "seed"), [
    ("leg", (160, 120, 24), 0.0, 1),
    ("abdomen", None, 0.0, 0),
    ("thigh", None, 0.005, 0),
], ids=["leg-noise-free", "abdomen-noise-free", "thigh-high-snr"])
def test_no_swap_reported_on_quiet_phantoms(region, shape, noise, seed):
    phantom = pytest.importorskip("myoscan.phantom")
    config = phantom.PhantomConfig(shape=shape, noise=noise)
    ph = phantom.make_phantom(region, "dixon", seed=seed, config=config)
    water, fat = ph.images["water"], ph.images["fat"]
    result = detect_swaps(water.array, fat.array, spacing_mm=water.spacing_mm)
    assert not result.has_swap and result.swapped_fraction == 0.0
