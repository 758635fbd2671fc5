"""Adapters for models users already have: nnU-Net v2, MuscleMap, TotalSegmentator output.

We cannot download real weights here, so each test builds a model folder in the formats
those tools write (nnU-Net: dataset.json, plans.json, fold_0/checkpoint_final.pth from its
own network builder; MuscleMap: model JSON + state-dict .pth) and checks geometry, label
names and agreement with the tool's own inference path.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from myoscan.errors import GeometryMismatchError, InputError, ModelError  # noqa: E402
from myoscan.io import Volume, read_volume, write_volume  # noqa: E402
from myoscan.segment.adapters import RunOptions, assign_inputs, parse_model_spec, run_model  # noqa: E402
from myoscan.segment.adapters.musclemap import load_musclemap_model  # noqa: E402
from myoscan.segment.adapters.totalseg import import_totalsegmentator  # noqa: E402

torch.set_num_threads(1)


def non_ras_volume(shape=(30, 26, 12), seed=0) -> Volume:
    """LPS-like, anisotropic, slightly oblique image with a bright blob and noise."""
    rng = np.random.default_rng(seed)
    affine = np.array([[-0.9, 0.05, 0, 40.0], [0, -1.1, 0, 30.0], [0.0, 0, 2.5, -12.0], [0, 0, 0, 1]])
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    blob = np.linalg.norm((idx - np.array(shape) / 2) * [0.9, 1.1, 2.5], axis=-1) < 8
    array = (blob * 200 + rng.normal(100, 10, shape)).astype(np.float32)
    return Volume(array, affine)


# --------------------------------------------------------------------------- nnU-Net


def _plans(arch_kwargs: dict) -> dict:
    resample = "resample_data_or_seg_to_shape"
    z_kwargs = {"order_z": 0, "force_separate_z": None}
    unet = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
    return {
        "dataset_name": "Dataset901_TinyLeg", "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [2.5, 1.0, 1.0],
        "original_median_shape_after_transp": [12, 26, 30],
        "image_reader_writer": "SimpleITKIO", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "configurations": {"3d_fullres": {
            "data_identifier": "nnUNetPlans_3d_fullres", "preprocessor_name": "DefaultPreprocessor",
            "batch_size": 2, "patch_size": [8, 16, 16], "median_image_size_in_voxels": [12, 26, 30],
            "spacing": [2.0, 1.0, 1.0],  # z, y, x: nnU-Net really resamples this input
            "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [False],
            "resampling_fn_data": resample, "resampling_fn_seg": resample,
            "resampling_fn_probabilities": resample,
            "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, **z_kwargs},
            "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, **z_kwargs},
            "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, **z_kwargs},
            "batch_dice": False,
            "architecture": {"network_class_name": unet, "arch_kwargs": arch_kwargs,
                             "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]},
        }},
        "experiment_planner_used": "ExperimentPlanner", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {
            "max": 400.0, "mean": 150.0, "median": 140.0, "min": 50.0, "percentile_00_5": 60.0,
            "percentile_99_5": 350.0, "std": 60.0}},
    }


@pytest.fixture(scope="module")
def nnunet_folder(tmp_path_factory):
    pytest.importorskip("nnunetv2")
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    arch = {"n_stages": 2, "features_per_stage": [4, 8], "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3], [3, 3, 3]], "strides": [[1, 1, 1], [2, 2, 2]],
            "n_conv_per_stage": [1, 1], "n_conv_per_stage_decoder": [1], "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}}
    results = tmp_path_factory.mktemp("nnUNet_results")
    folder = results / "Dataset901_TinyLeg" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    (folder / "fold_0").mkdir(parents=True)
    plans = _plans(arch)
    dataset = {"channel_names": {"0": "water"}, "labels": {"background": 0, "soleus_left": 1, "Tibia R": 2},
               "numTraining": 1, "file_ending": ".nii.gz"}
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(dataset))
    torch.manual_seed(0)
    net = get_network_from_plans(plans["configurations"]["3d_fullres"]["architecture"]["network_class_name"],
                                 arch, arch["_kw_requires_import"] if "_kw_requires_import" in arch else
                                 ["conv_op", "norm_op", "dropout_op", "nonlin"], 1, 3, deep_supervision=False)
    with torch.no_grad():  # a random net predicts one class everywhere; make its output vary
        head = net.decoder.seg_layers[-1]
        head.weight[0] = 0.0  # background logit 0; the two structures win where their mix is > 0
        head.bias.zero_()
    checkpoint = {  # what nnUNetTrainer.save_checkpoint writes, numpy floats and a device included
        "network_weights": net.state_dict(), "optimizer_state": {"state": {}, "param_groups": []},
        "grad_scaler_state": None,
        "logging": {"ema_fg_dice": [np.float64(0.5)], "epoch_end_timestamps": [1.0]},
        "_best_ema": np.float64(0.5), "current_epoch": 1,
        "init_args": {"plans": plans, "configuration": "3d_fullres", "fold": 0, "dataset_json": dataset,
                      "device": torch.device("cpu")},
        "trainer_name": "nnUNetTrainer", "inference_allowed_mirroring_axes": (0, 1, 2),
    }
    torch.save(checkpoint, folder / "fold_0" / "checkpoint_final.pth")
    return folder


def test_nnunet_adapter_matches_nnunet_and_keeps_geometry(nnunet_folder, tmp_path):
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    volume = non_ras_volume()
    path = write_volume(volume, tmp_path / "leg_0000.nii.gz")
    image = read_volume(path)
    options = RunOptions(device="cpu", mirroring=False, show_progress=False)  # 8x faster in 3D
    seg = run_model(f"nnunet:{nnunet_folder.parent}", image, options=options)
    assert seg.labels.shape == image.shape
    np.testing.assert_allclose(seg.labels.affine, image.affine)
    assert seg.names == {1: "soleus_left", 2: "tibia_right"}  # catalog names from dataset.json labels
    assert seg.model["kind"] == "nnunet" and seg.model["folds"] == ["0"]

    # nnU-Net's own path on the same file (its reader, its predictor) gives the same labels
    predictor = nnUNetPredictor(tile_step_size=0.5, use_mirroring=False, perform_everything_on_device=False,
                                device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(nnunet_folder), use_folds=(0,))
    data, properties = SimpleITKIO().read_images([str(path)])
    reference = predictor.predict_single_npy_array(data, properties)  # (z, y, x)
    assert np.array_equal(seg.labels.array, reference.transpose(2, 1, 0))
    assert len(np.unique(reference)) > 1


def test_nnunet_refuses_pickled_objects(nnunet_folder, tmp_path):
    import shutil

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    copy = tmp_path / "model"
    shutil.copytree(nnunet_folder, copy)
    checkpoint = torch.load(copy / "fold_0" / "checkpoint_final.pth", weights_only=False)
    checkpoint["init_args"]["hook"] = Evil()
    torch.save(checkpoint, copy / "fold_0" / "checkpoint_final.pth")
    with pytest.raises(ModelError, match="refused to load"):
        run_model(f"nnunet:{copy}", non_ras_volume(), options=_options())


def test_nnunet_folder_missing_files(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "plans.json").write_text("{}")
    with pytest.raises(ModelError, match="missing dataset.json"):
        run_model(f"nnunet:{tmp_path / 'm'}", non_ras_volume())


def test_nnunet_folder_with_incomplete_json_is_a_model_error(nnunet_folder, tmp_path):
    # dataset.json without channel_names said "the model takes 0 contrast(s): ;" and plans
    # lacking nnU-Net's architecture fields ended in a KeyError traceback
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(nnunet_folder, copy)
    dataset = json.loads((copy / "dataset.json").read_text())
    (copy / "dataset.json").write_text(json.dumps({"labels": dataset["labels"]}))
    with pytest.raises(ModelError, match=r"dataset.json: no 'channel_names' mapping"):
        run_model(f"nnunet:{copy}", non_ras_volume(), options=_options())
    (copy / "dataset.json").write_text(json.dumps(dataset))
    plans = json.loads((copy / "plans.json").read_text())
    del plans["configurations"]["3d_fullres"]["architecture"]
    (copy / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(ModelError, match=r"model: plans.json/dataset.json do not describe configuration '3d_fullres'"):
        run_model(f"nnunet:{copy}", non_ras_volume(), options=_options())


# --------------------------------------------------------------------------- MuscleMap


def _musclemap_model(folder, values=(3, 8)):
    from monai.networks.layers import Norm
    from monai.networks.nets import UNet

    model_json = {
        "parameters": {"roi_size": [32, 32], "spatial_window_batch_size": 4, "pix_dim": [1, 1, -1]},
        "model": {"spatial_dims": 2, "in_channels": 1, "out_channels": len(values) + 1,
                  "channels": [4, 8, 16], "act": "LeakyReLU", "strides": [2, 2], "num_res_units": 1,
                  "norm": "instance"},
        "labels": [{"region": "leg", "anatomy": "soleus", "side": "left", "value": values[0]},
                   {"region": "leg", "anatomy": "Tibia", "side": "right", "value": values[1]}],
    }
    torch.manual_seed(0)
    net = UNet(spatial_dims=2, in_channels=1, out_channels=len(values) + 1, channels=[4, 8, 16],
               act="LeakyReLU", strides=[2, 2], num_res_units=1, norm=Norm.INSTANCE)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "contrast_agnostic_leg_model.json").write_text(json.dumps(model_json))
    torch.save(net.state_dict(), folder / "contrast_agnostic_leg_model.pth")
    return folder, net


def test_musclemap_names_from_json_values_kept_geometry(tmp_path):
    folder, _ = _musclemap_model(tmp_path / "mm")
    image = non_ras_volume()
    seg = run_model(f"musclemap:{folder}", image, options=_options())
    assert seg.labels.shape == image.shape
    np.testing.assert_allclose(seg.labels.affine, image.affine)
    assert seg.names == {3: "soleus_left", 8: "tibia_right"}  # channel i -> i-th smallest JSON value
    assert set(np.unique(seg.labels.array)) <= {0, 3, 8}
    assert seg.model["kind"] == "musclemap"


def test_musclemap_reproduces_mm_segment_pipeline(tmp_path):
    """Same result as MuscleMap's MONAI transforms + SliceInferer on an image already at 1 mm RAS."""
    from monai.inferers import SliceInferer
    from monai.transforms import CropForeground, NormalizeIntensity

    folder, net = _musclemap_model(tmp_path / "mm", values=(1, 2))
    rng = np.random.default_rng(4)
    array = np.zeros((64, 58, 4), np.float32)
    array[24:40, 22:36] = rng.normal(300, 60, (16, 14, 4))  # the margin-20 box crops the image
    image = Volume(array, np.diag([1.0, 1.0, 3.0, 1.0]))  # RAS, 1 mm in-plane: no resampling
    model = load_musclemap_model(folder)
    seg = run_model(f"musclemap:{folder}", image, options=_options())

    # mm_segment: NormalizeIntensity(nonzero) -> CropForeground(margin=20) -> SliceInferer -> argmax
    normalised = NormalizeIntensity(nonzero=True)(torch.from_numpy(array)[None])
    cropper = CropForeground(margin=20, allow_smaller=True)  # MONAI 0.9 (pinned by MuscleMap): clip box
    box_start, box_end = cropper.compute_bounding_box(normalised)
    cropped = normalised[:, box_start[0]:box_end[0], box_start[1]:box_end[1], box_start[2]:box_end[2]]
    inferer = SliceInferer(roi_size=(32, 32), sw_batch_size=4, spatial_dim=2, mode="gaussian", overlap=0.9)
    net.eval()
    with torch.no_grad():
        logits = inferer(cropped[None].float(), net)
    expected = np.zeros(array.shape, np.uint8)
    expected[box_start[0]:box_end[0], box_start[1]:box_end[1], box_start[2]:box_end[2]] = (
        logits[0].argmax(0).numpy())
    assert model.settings.inference.overlap == 0.9
    assert (box_end - box_start)[0] < array.shape[0]
    assert np.mean(seg.labels.array == expected) > 0.999
    assert len(np.unique(expected)) > 1


def test_musclemap_json_without_labels_is_refused(tmp_path):
    folder, _ = _musclemap_model(tmp_path / "mm")
    config = json.loads((folder / "contrast_agnostic_leg_model.json").read_text())
    config["labels"] = []
    (folder / "contrast_agnostic_leg_model.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="lists no labels"):
        load_musclemap_model(folder)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda c: c["labels"][0].pop("value"), "labels"),
        (lambda c: c["labels"].__setitem__(0, "soleus"), "labels"),
        (lambda c: c["labels"][0].__setitem__("value", "x"), "labels"),
        (lambda c: c["parameters"].__setitem__("pix_dim", "one"), "pix_dim"),
        (lambda c: c.__setitem__("labels", {"value": 1}), "labels"),
        (lambda c: [c.clear(), c.update({"a": 1})], "parameters"),
    ],
    ids=["label-without-value", "label-not-an-object", "value-not-a-number", "pix-dim-text",
         "labels-not-a-list", "no-sections"],
)
def test_malformed_musclemap_json_is_a_model_error(tmp_path, change, match):
    folder, _ = _musclemap_model(tmp_path / "mm")
    config = json.loads((folder / "contrast_agnostic_leg_model.json").read_text())
    change(config)
    (folder / "contrast_agnostic_leg_model.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=match):
        load_musclemap_model(folder)


def test_musclemap_json_that_is_not_an_object_is_a_model_error(tmp_path):
    folder, _ = _musclemap_model(tmp_path / "mm")
    (folder / "contrast_agnostic_leg_model.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match="JSON object"):
        load_musclemap_model(folder)


def test_musclemap_weights_must_match(tmp_path):
    folder, _ = _musclemap_model(tmp_path / "mm")
    config = json.loads((folder / "contrast_agnostic_leg_model.json").read_text())
    config["model"]["channels"] = [8, 16, 32]
    (folder / "contrast_agnostic_leg_model.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="do not match"):
        load_musclemap_model(folder / "contrast_agnostic_leg_model.pth")


# --------------------------------------------------------------------------- TotalSegmentator


def test_totalseg_multilabel_file_maps_to_catalog_names(totalseg_dir):
    ct = read_volume(totalseg_dir / "example_ct_sm.nii.gz")
    seg = run_model(f"totalseg:{totalseg_dir / 'example_seg.nii.gz'}", ct)
    assert seg.scheme == "ts_total"
    assert seg.names[86] == "erector_spinae_left"  # TotalSegmentator 'autochthon_left'
    assert seg.names[88] == "iliopsoas_left"
    assert seg.names[5] == "liver"  # organs keep their TotalSegmentator name
    assert seg.labels.shape == ct.shape


def test_totalseg_mask_folder_maps_to_catalog_names(totalseg_dir):
    seg = import_totalsegmentator(totalseg_dir / "example_seg_fast")
    names = set(seg.names.values())
    assert {"gluteus_maximus_left", "iliopsoas_right", "erector_spinae_left", "femur_left",
            "iliac_bone_left"} <= names
    assert seg.scheme == "ts_total" and seg.names[75] == "femur_left"
    multi = read_volume(totalseg_dir / "example_seg_fast.nii.gz")
    assert np.array_equal(seg.labels.array, multi.array)  # folder and --ml file agree id for id


def test_totalseg_grid_must_match_the_image(totalseg_dir):
    other = non_ras_volume()
    with pytest.raises(GeometryMismatchError):
        run_model(f"totalseg:{totalseg_dir / 'example_seg.nii.gz'}", other)


def test_totalseg_wrong_task_is_reported(totalseg_dir):
    with pytest.raises(InputError, match="not TotalSegmentator 'total_mr' class ids"):
        import_totalsegmentator(totalseg_dir / "example_seg.nii.gz", task="total_mr")


# --------------------------------------------------------------------------- dispatch


def test_model_specs_and_input_assignment():
    assert parse_model_spec("musclemap:/a/b.pth") == ("musclemap", "/a/b.pth")
    assert parse_model_spec("totalseg:seg.nii.gz") == ("totalseg", "seg.nii.gz")
    v = non_ras_volume()
    assert list(assign_inputs(["inphase", "outphase"], None, {"opposed_phase": v, "in_phase": v})) == [
        "inphase", "outphase"]  # other spellings of the Dixon contrasts are accepted
    assert list(assign_inputs(["water", "fat"], v, {"fat": v})) == ["water", "fat"]
    with pytest.raises(InputError, match="takes 2 contrast.*--opposed-phase.*missing outphase"):
        assign_inputs(["inphase", "outphase"], None, {"inphase": v})
    with pytest.raises(InputError, match="not used by this model: fat"):
        assign_inputs(["water"], None, {"water": v, "fat": v})


def _options():
    return RunOptions(device="cpu", show_progress=False)
