"""Preprocessing, chunked inference, geometry round trip, post-processing, segment_volumes."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from myoscan.errors import GeometryMismatchError, InputError  # noqa: E402
from myoscan.io import Volume, read_volume  # noqa: E402
from myoscan.segment import build_network, load_bundle, save_bundle  # noqa: E402
from myoscan.segment.config import InferenceConfig, IntensityConfig, PreprocessConfig  # noqa: E402
from myoscan.segment.inference import plan_chunks, predict_labels, torch_predictor, window_starts  # noqa: E402
from myoscan.segment.postprocess import (  # noqa: E402
    enforce_left_right,
    fill_holes,
    keep_largest_component,
)
from myoscan.segment.predict import segment_volumes, sidecar_path, write_segmentation  # noqa: E402
from myoscan.segment.preprocess import normalize_intensity, prepare_image, prepare_labels, reorient  # noqa: E402

torch.set_num_threads(1)


def threshold_predictor(batch):
    """'Network' labelling channel 0 > 0.5 as class 1: the answer is known for any geometry."""
    x = batch[:, :1]
    return torch.cat([0.5 - x, x - 0.5], dim=1) * 10


def oblique_affine() -> np.ndarray:
    """Anisotropic (0.8, 1.1, 3 mm), axes permuted and flipped (not RAS), rotated 20 degrees."""
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    axes = np.array([[0, 0, -1], [-1, 0, 0], [0, 1, 0]], dtype=float)  # I -> -S ... (an "IRA"-like order)
    affine = np.eye(4)
    affine[:3, :3] = rotation @ axes @ np.diag([0.8, 1.1, 3.0])
    affine[:3, 3] = [12.0, -40.0, 7.5]
    return affine


def sphere_volume(shape=(48, 40, 22), radius_mm=14.0) -> tuple[Volume, np.ndarray]:
    affine = oblique_affine()
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    centre = affine[:3, :3] @ (np.array(shape) / 2) + affine[:3, 3]
    inside = np.linalg.norm(world - centre, axis=-1) < radius_mm
    return Volume(inside.astype(np.float32), affine), inside


# --------------------------------------------------------------------------- preprocessing


def test_reorient_to_ras_is_a_pure_permutation():
    volume, _ = sphere_volume()
    array, affine = reorient(volume.array, volume.affine, "RAS")
    assert sorted(array.shape) == sorted(volume.shape)
    assert np.all(np.diag(np.abs(affine[:3, :3]) == np.abs(affine[:3, :3]).max(axis=0))[:2])
    # the same voxel (array value) sits at the same world position
    assert array.sum() == volume.array.sum()
    np.testing.assert_allclose(np.abs(np.linalg.det(affine)), np.abs(np.linalg.det(volume.affine)))


@pytest.mark.parametrize(
    ("config", "values", "expected"),
    [
        (IntensityConfig(mode="window", window=(80, 450)), [80, 265, 450, 500], [0, 0.5, 1, 1]),
        (IntensityConfig.from_dict({"mode": "ct_window"}), [-57, 53.5, 164], [0, 0.25, 1]),  # gamma 2
        (IntensityConfig(mode="zscore"), [0, 1, 3], [0, -1, 1]),  # zeros stay, stats of non-zero
        (IntensityConfig(mode="none"), [3, -2], [3, -2]),
    ],
    ids=["window", "ct-window-gamma", "zscore-nonzero", "none"],
)
def test_intensity_modes(config, values, expected):
    out = normalize_intensity(np.array(values, dtype=np.float32), config)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_prepare_resamples_to_target_spacing_and_crops():
    volume, _ = sphere_volume()
    config = PreprocessConfig(target_spacing_mm=(1.5, 1.5, None), intensity=IntensityConfig(mode="none"),
                              crop_foreground=True, crop_margin_mm=3.0)
    prepared = prepare_image([volume], config)
    spacing = np.linalg.norm(prepared.affine[:3, :3], axis=0)
    np.testing.assert_allclose(spacing[:2], 1.5, rtol=0.05)
    assert prepared.shape[0] < prepared.grid_shape[0]  # cropped to the sphere
    labels = prepare_labels(volume.with_array(volume.array.astype(np.uint8)), prepared, config)
    assert labels.shape == prepared.shape


def test_contrasts_on_different_grids_are_rejected():
    volume, _ = sphere_volume()
    shifted = Volume(volume.array, volume.affine @ np.diag([1, 1, 1.5, 1]))
    with pytest.raises(GeometryMismatchError, match="spacing"):
        prepare_image([volume, shifted], PreprocessConfig())


def test_image_without_spacing_is_rejected():
    # A zero spacing is refused as soon as the Volume is made (myoscan.io), before preprocessing.
    with pytest.raises(InputError, match="zero spacing"):
        prepare_image([Volume(np.ones((4, 4, 4)), np.diag([1.0, 0.0, 1.0, 1.0]))], PreprocessConfig())


# --------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("target", [None, (1.0, 1.0, 2.0)], ids=["native-grid", "resampled"])
def test_prediction_lands_on_the_oblique_input_grid(target):
    volume, inside = sphere_volume()
    config = PreprocessConfig(target_spacing_mm=target, intensity=IntensityConfig(mode="none"),
                              crop_foreground=True, crop_margin_mm=2.0)
    prepared = prepare_image([volume], config)
    labels = predict_labels(prepared, threshold_predictor, InferenceConfig(roi_size=(16, 16)), 2,
                            show_progress=False)
    assert labels.shape == volume.shape
    if target is None:
        assert np.array_equal(labels == 1, inside)  # permutation only: exact
    else:
        dice = 2 * np.sum((labels == 1) & inside) / (np.sum(labels == 1) + np.sum(inside))
        assert dice > 0.9
        # and the centroid did not move (a flipped or shifted axis would move it by many mm)
        centroid = lambda m: volume.affine[:3, :3] @ np.argwhere(m).mean(0)  # noqa: E731
        assert np.linalg.norm(centroid(labels == 1) - centroid(inside)) < 1.0


def test_window_starts_match_monai():
    from monai.data.utils import dense_patch_slices
    from monai.inferers.utils import _get_scan_interval

    for size, roi, overlap in [(37, 8, 0.5), (16, 16, 0.5), (50, 12, 0.25), (9, 4, 0.9)]:
        interval = _get_scan_interval((size,), (roi,), 1, (overlap,))
        expected = sorted({s[0].start for s in dense_patch_slices((size,), (roi,), interval)})
        assert window_starts(size, roi, overlap) == expected


@pytest.mark.parametrize("overlap", [0.25, 0.5, 0.6])
def test_3d_chunks_tile_the_volume(overlap):
    chunks = plan_chunks(53, 10, roi=8, overlap=overlap)
    cores = [(c.core_start, c.core_stop) for c in chunks]
    assert cores[0][0] == 0 and cores[-1][1] == 53
    assert all(a[1] == b[0] for a, b in zip(cores, cores[1:], strict=False))
    assert all(c.start <= c.core_start < c.core_stop <= c.stop for c in chunks)


@pytest.mark.parametrize("arch", ["unet2d", "unet3d"])
def test_z_chunked_inference_equals_unchunked(arch):
    torch.manual_seed(0)
    if arch == "unet2d":
        net = build_network({"name": arch, "params": {"channels": [4, 8], "strides": [2]}},
                            in_channels=1, out_channels=3)
        config = InferenceConfig(mode="slice2d", roi_size=(16, 16), overlap=0.5)
    else:
        net = build_network({"name": arch, "params": {"channels": [4, 8], "strides": [2]}},
                            in_channels=1, out_channels=3)
        config = InferenceConfig(mode="sliding3d", roi_size=(16, 16, 8), overlap=0.5, sw_batch_size=2)
    rng = np.random.default_rng(0)
    volume = Volume(rng.normal(size=(20, 18, 33)).astype(np.float32), np.diag([1.2, 0.9, 2.5, 1.0]))
    prepared = prepare_image([volume], PreprocessConfig(target_spacing_mm=(1.0, 1.0, 2.0)))
    predictor = torch_predictor(net, torch.device("cpu"))
    whole = predict_labels(prepared, predictor, config, 3, chunk_slices=10_000, show_progress=False)
    for chunk in (1, 7):
        part = predict_labels(prepared, predictor, config, 3, chunk_slices=chunk, show_progress=False)
        assert np.array_equal(part, whole), f"chunk_slices={chunk}"
    assert len(np.unique(whole)) > 1


# --------------------------------------------------------------------------- post-processing


def test_fill_holes_only_fills_background():
    labels = np.zeros((7, 7, 2), dtype=np.uint8)
    labels[1:6, 1:6] = 1
    labels[3, 3, :] = 0  # a hole
    labels[2, 2, :] = 2  # another label inside: stays
    out = fill_holes(labels)
    assert out[3, 3, 0] == 1 and out[2, 2, 0] == 2


def test_largest_component_removes_islands():
    labels = np.zeros((10, 10, 10), dtype=np.uint8)
    labels[1:5, 1:5, 1:5] = 1
    labels[8, 8, 8] = 1
    out = keep_largest_component(labels)
    assert out[8, 8, 8] == 0 and out[2, 2, 2] == 1


def test_left_right_fix_uses_ras_x():
    # RAS: x grows towards the patient's right. Left soleus at low x, right at high x.
    labels = np.zeros((20, 4, 4), dtype=np.uint8)
    labels[1:5] = 1   # soleus_left, correct (low x)
    labels[12:18] = 2  # soleus_right, correct (high x)
    labels[15:17, 0, 0] = 0
    labels[19, 3, 3] = 1  # a stray "left" piece on the right side
    names = {1: "soleus_left", 2: "soleus_right"}
    out = enforce_left_right(labels, np.eye(4), names)
    assert out[19, 3, 3] == 2 and out[2, 2, 2] == 1
    # the same array with the x axis reversed: every piece lies on the other side now
    swapped = enforce_left_right(labels, np.diag([-1.0, 1, 1, 1]), names)
    assert swapped[2, 2, 2] == 2 and swapped[14, 2, 2] == 1 and swapped[19, 3, 3] == 1
    one_side = np.where(labels == 2, 0, labels)  # a single-leg scan: nothing to compare, unchanged
    assert np.array_equal(enforce_left_right(one_side, np.eye(4), names), one_side)


# --------------------------------------------------------------------------- segment_volumes


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    config = {
        "name": "tiny-leg", "architecture": {"name": "unet2d", "params": {"channels": [4, 8, 16],
                                                                          "strides": [2, 2]}},
        "inputs": {"contrasts": ["water", "fat"], "modality": "mri"},
        "preprocessing": {"target_spacing_mm": [1.5, 1.5, None], "intensity": {"mode": "zscore"},
                          "crop_foreground": True},
        "inference": {"roi_size": [32, 32], "overlap": 0.25},
        "postprocessing": {"largest_component": True, "lr_consistency": True, "fill_holes": True},
        "labels": {"scheme": "leg", "ids": {"1": "soleus_left", "2": "soleus_right"}},
    }
    torch.manual_seed(3)
    folder = tmp_path_factory.mktemp("bundles") / "tiny-leg"
    return load_bundle(save_bundle(folder, network=build_network(config), config=config, model_card="# t"))


def test_segment_volumes_writes_catalog_ids_on_input_grid(tiny_bundle, tmp_path):
    volume, _ = sphere_volume()
    rng = np.random.default_rng(1)
    water = volume.with_array(volume.array * 300 + rng.normal(50, 5, volume.shape).astype(np.float32))
    fat = volume.with_array(rng.normal(80, 5, volume.shape).astype(np.float32))
    seg = segment_volumes({"fat": fat, "water": water}, tiny_bundle, device="cpu", show_progress=False)
    assert seg.labels.shape == volume.shape
    np.testing.assert_allclose(seg.labels.affine, volume.affine)
    assert seg.scheme == "leg" and seg.names == {7: "soleus_left", 8: "soleus_right"}
    assert set(np.unique(seg.labels.array)) <= {0, 7, 8}
    path, side = write_segmentation(seg, tmp_path / "seg.nii.gz")
    assert side == sidecar_path(path) == tmp_path / "seg.json"
    back = read_volume(path)
    assert np.array_equal(back.array, seg.labels.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-5)
    meta = json.loads(side.read_text())
    assert meta["model"]["sha256"] == tiny_bundle.sha256
    assert meta["labels"] == {"7": "soleus_left", "8": "soleus_right"} and meta["label_scheme"] == "leg"


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        (lambda v: {"water": v}, "takes 2 contrast"),
        (lambda v: {"in_phase": v, "outphase": v}, "missing water, fat"),
        (lambda v: [v], "takes 2 image"),
    ],
    ids=["one-of-two", "wrong-contrasts", "wrong-count"],
)
def test_wrong_contrasts_are_one_line_errors(tiny_bundle, inputs, match):
    volume, _ = sphere_volume()
    with pytest.raises(InputError, match=match) as info:
        segment_volumes(inputs(volume), tiny_bundle, show_progress=False)
    assert "\n" not in str(info.value)


def test_2d_image_is_rejected():
    with pytest.raises(InputError, match="3D"):
        Volume(np.zeros((4, 4)), np.eye(4))


def test_onnx_runtime_matches_pytorch(tiny_bundle, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("MYOSCAN_CACHE", str(tmp_path))
    volume, _ = sphere_volume()
    rng = np.random.default_rng(2)
    noise = rng.normal(20, 5, (2, *volume.shape)).astype(np.float32)
    inputs = {"water": volume.with_array(volume.array * 100 + noise[0]), "fat": volume.with_array(noise[1])}
    torch_seg = segment_volumes(inputs, tiny_bundle, device="cpu", show_progress=False)
    onnx_seg = segment_volumes(inputs, tiny_bundle, use_onnx=True, show_progress=False)
    agreement = np.mean(torch_seg.labels.array == onnx_seg.labels.array)
    assert agreement > 0.999
    assert list((tmp_path / "onnx").glob("*.onnx"))  # cached export


def test_corrupt_onnx_cache_is_exported_again(tiny_bundle, tmp_path, monkeypatch):
    # an interrupted disk or a truncated copy left garbage in the cache: a traceback used to follow
    pytest.importorskip("onnxruntime")
    from myoscan.segment.onnx import cached_onnx_model

    monkeypatch.setenv("MYOSCAN_CACHE", str(tmp_path))
    roi = tiny_bundle.settings.inference.roi_size
    stale = tmp_path / "onnx" / f"{tiny_bundle.sha256[:16]}-{'x'.join(map(str, roi))}.onnx"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not an onnx model")
    volume, _ = sphere_volume()
    inputs = {"water": volume.with_array(volume.array * 100), "fat": volume.with_array(volume.array)}
    seg = segment_volumes(inputs, tiny_bundle, use_onnx=True, show_progress=False)
    assert seg.labels.shape == volume.shape
    assert cached_onnx_model(tiny_bundle, roi) == stale and stale.stat().st_size > 1000
