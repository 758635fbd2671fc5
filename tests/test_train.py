"""Tests of myoscan.train: configs, data discovery, augmentation, training loop, resume, folds, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from myoscan.cli import main
from myoscan.errors import GeometryMismatchError, InputError
from myoscan.io import Volume, read_volume, write_volume
from myoscan.labels import load_catalog
from myoscan.train import config_names, find_dataset, load_config, train
from myoscan.train.augment import RandControlPointElasticd, RandFlipLeftRightd, swap_lookup
from myoscan.train.config import output_structures
from myoscan.train.data import check_dataset
from myoscan.train.loop import lr_factor, work_dir_of

AFFINE = np.diag([1.5, 1.5, 4.0, 1.0])  # RAS: voxel axis 0 runs to the subject's right
LEG = load_catalog().scheme("leg")


def tiny_case(seed: int, shape: tuple[int, int, int] = (40, 32, 4)) -> tuple[np.ndarray, np.ndarray]:
    """Two 'legs' (ellipses), each an anterior and a posterior muscle, on a dark background."""
    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    labels = np.zeros(shape, np.uint8)
    image = np.zeros(shape, np.float32)
    for centre_i, (front, back) in ((10, ("soleus_left", "gastrocnemius_left")),
                                    (30, ("soleus_right", "gastrocnemius_right"))):
        ci, cj = centre_i + rng.integers(-2, 3), 16 + rng.integers(-2, 3)
        inside = ((i - ci) / 8.0) ** 2 + ((j - cj) / 11.0) ** 2 < 1
        for k in range(shape[2]):
            labels[..., k][inside & (j < cj)] = LEG.id_of(front)
            labels[..., k][inside & (j >= cj)] = LEG.id_of(back)
            image[..., k][inside] = 100.0 + 60.0 * (j < cj)[inside]
    image += rng.normal(0.0, 8.0, shape).astype(np.float32)
    return np.abs(image), labels


def write_pairs(root: Path, n: int, *, start: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for s in range(start, start + n):
        image, labels = tiny_case(s)
        write_volume(Volume(image, AFFINE), root / f"case{s}_water.nii.gz")
        write_volume(Volume(labels, AFFINE), root / f"case{s}_dseg.nii.gz")
    return root


TINY = [
    "architecture.params={channels: [4, 8], strides: [2], num_res_units: 1}",
    "sampling.roi_size=[32, 32]", "inference.roi_size=[32, 32]", "inference.sw_batch_size=8",
    "labels.structures=[soleus_left, soleus_right, gastrocnemius_left, gastrocnemius_right]",
    "preprocessing.crop_foreground=false", "training.lr=3e-3", "training.batch_size=2",
    "training.amp=false", "validation.interval_iterations=4", "augmentation.flip_lr_prob=0.5",
]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("tiny") / "data", 4)


@pytest.fixture(scope="module")
def tiny_config():
    return load_config("leg-2d-unet", TINY)


# --------------------------------------------------------------------------- configs


def test_every_shipped_config_loads_and_names_scheme_structures():
    assert {"leg-2d-unet", "thigh-unetr", "abdomen-ct-resunet", "thigh-ct-unetr", "cervical-3d",
            "leg-demo"} <= set(config_names())
    for name in config_names():
        cfg = load_config(name)
        assert output_structures(cfg), name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("leg-2d-unet", {"training.optimizer": "adamw", "training.lr": 1e-4, "training.weight_decay": 1e-5,
                         "training.batch_size": 1, "training.loss": "dice_ce",
                         "sampling.roi_size": (416, 240), "architecture.name": "unet2d"}),
        ("thigh-unetr", {"training.optimizer": "adamw", "training.lr": 2e-5, "training.batch_size": 2,
                         "sampling.roi_size": (96, 96, 96), "sampling.num_samples": 4, "sampling.pos": 1.0,
                         "sampling.neg": 1.0, "validation.interval_epochs": 2, "training.amp": True,
                         "architecture.name": "unetr"}),
        ("abdomen-ct-resunet", {"training.optimizer": "adam", "training.lr": 1e-4,
                                "augmentation.zoom_pct": 20.0, "augmentation.affine_prob": 0.8,
                                "augmentation.rotate_deg": (0.0, 0.0, 20.0), "validation.folds": 5,
                                "architecture.name": "resunet2d"}),
        ("cervical-3d", {"augmentation.flip_lr_prob": 0.5, "augmentation.rotate_deg": (2.5, 2.5, 5.0),
                         "augmentation.scale_pct": (2.5, 2.5, 2.5), "augmentation.elastic_control_points": 3,
                         "inputs.contrasts": ("inphase", "outphase")}),
    ],
    ids=["seed000", "seed001", "seed003", "seed002"],
)
def test_shipped_configs_reproduce_the_seed_settings(name, expected):
    cfg = load_config(name)
    for key, value in expected.items():
        section, field_ = key.split(".")
        assert getattr(getattr(cfg, section), field_) == value, key


def test_shipped_configs_reproduce_every_stated_seed_number():
    # the numbers each paper states, one by one (the parametrised test above checks a few)
    leg = load_config("leg-2d-unet")
    assert leg.architecture.params == {"channels": [64, 128, 256, 512, 1024], "strides": [2, 2, 2, 2],
                                       "num_res_units": 2, "norm": "instance", "act": "leakyrelu"}
    assert (leg.sampling.num_samples, leg.training.max_iterations, leg.training.schedule) == (1, 150000, "constant")
    assert leg.inputs.contrasts == ("water",)

    thigh = load_config("thigh-unetr")
    assert (thigh.training.weight_decay, thigh.training.loss, thigh.training.max_epochs) == (1e-5, "dice_ce", 12000)
    assert thigh.preprocessing["target_spacing_mm"] == [1.5, 1.5, 2.0]
    assert thigh.preprocessing["intensity"] == {"mode": "window", "window": [80.0, 450.0], "clip": True}
    assert thigh.validation.patience > 0  # early stopping
    assert {k: thigh.architecture.params[k] for k in ("img_size", "hidden_size", "norm_name", "res_block")} == {
        "img_size": [96, 96, 96], "hidden_size": 768, "norm_name": "instance", "res_block": True}

    cervical = load_config("cervical-3d")
    assert cervical.training.batch_size * cervical.sampling.num_samples == 3  # "batch size = 3"
    assert (cervical.training.max_iterations, cervical.augmentation.elastic_sigma_mm) == (100000, 10.0)
    assert cervical.validation.fraction == 0.0  # validated on the non-augmented training images
    assert cervical.sampling.roi_size == (352, 240, 32)  # 360 -> 352, VNet needs multiples of 16

    abdomen = load_config("abdomen-ct-resunet")
    assert abdomen.preprocessing["intensity"]["window"] == [40.0 - 200.0, 40.0 + 200.0]  # W400 / L40
    assert (abdomen.architecture.params["num_res_units"], abdomen.architecture.params["norm"],
            abdomen.architecture.params["act"]) == (4, "batch", "prelu")
    assert len(abdomen.architecture.params["channels"]) == 4  # 4 encoding / 3 decoding blocks
    factor = lr_factor(abdomen, 300)  # 100 epochs at 1e-4, 100 at 1e-5, 100 at 1e-6
    assert [round(abdomen.training.lr * factor(e), 12) for e in (0, 99, 100, 199, 200, 299)] == [
        1e-4, 1e-4, 1e-5, 1e-5, 1e-6, 1e-6]
    assert abdomen.postprocessing["fill_holes"] is True

    thigh_ct = load_config("thigh-ct-unetr")
    assert (thigh_ct.sampling.roi_size, thigh_ct.sampling.num_samples) == ((96, 96, 96), 4)
    assert thigh_ct.preprocessing["crop_foreground"] is True


@pytest.mark.parametrize(("override", "match"), [
    # each of these trained into a traceback (exit 1) or silently ran with a wrong value
    ("sampling.roi_size=[100, 64]", "sampling.roi_size must be multiples of 16 for unet2d"),
    ("sampling.pos=-1", "sampling.pos and sampling.neg must be >= 0"),
    ("augmentation.affine_prob=2", "augmentation.affine_prob must be a probability"),
    ("augmentation.gamma_range=[2, 1]", "augmentation.gamma_range must be"),
])
def test_bad_sampling_and_augmentation_overrides_are_refused(override, match):
    with pytest.raises(InputError, match=match):
        load_config("leg-2d-unet", [override])


def test_unetr_training_window_must_equal_img_size():
    with pytest.raises(InputError, match=r"sampling.roi_size must be equal to UNETR img_size \[96, 96, 96\]"):
        load_config("thigh-unetr", ["sampling.roi_size=[64, 64, 64]"])


def test_seed002_config_keeps_the_papers_relu_activation():
    # seed 002 Training: "activation function = ReLu"; docs/segment.md says the VNet uses ReLU
    cfg = load_config("cervical-3d")
    assert cfg.architecture.name == "vnet"
    assert cfg.architecture.params.get("act", "relu") == "relu"
    assert (cfg.training.optimizer, cfg.training.lr, cfg.training.weight_decay) == ("adam", 1e-3, 1e-5)
    assert (cfg.sampling.num_samples, cfg.sampling.strategy) == (3, "uniform")
    assert cfg.preprocessing["target_spacing_mm"] == [0.7, 0.7, 3.0]


def test_ct_configs_window_and_spacing():
    thigh_ct = load_config("thigh-ct-unetr")
    assert thigh_ct.preprocessing["intensity"] == {"mode": "ct_window", "window": [-57.0, 164.0],
                                                   "gamma": 2.0, "clip": True}
    assert thigh_ct.preprocessing["target_spacing_mm"] == [1.5, 1.5, 2.0]
    assert load_config("thigh-unetr").preprocessing["intensity"]["window"] == [80.0, 450.0]


def test_overrides_yaml_extends_and_clear_errors(tmp_path):
    cfg = load_config("leg-2d-unet", ["training.lr=2e-4", "sampling.roi_size=[64, 32]"])
    assert (cfg.training.lr, cfg.sampling.roi_size) == (2e-4, (64, 32))
    user = tmp_path / "mine.yaml"
    user.write_text("extends: leg-2d-unet\nname: mine\ntraining: {batch_size: 4}\n"
                    "architecture: {params: {channels: [8, 16, 32, 64, 128]}}\n")
    mine = load_config(user)
    assert (mine.name, mine.training.batch_size, mine.training.lr) == ("mine", 4, 1e-4)
    assert mine.architecture.params["strides"] == [2, 2, 2, 2]  # params merge key by key
    assert load_config("cervical-3d", ["architecture.name=unet3d"]).architecture.params == {}
    with pytest.raises(InputError, match="did you mean training.lr"):
        load_config("leg-2d-unet", ["training.lrr=1"])
    with pytest.raises(InputError, match="training.batch_size: expected int"):
        load_config("leg-2d-unet", ["training.batch_size=two"])
    with pytest.raises(InputError, match="multiples of 16"):
        load_config("leg-2d-unet", ["inference.roi_size=[100, 100]"])
    with pytest.raises(InputError, match="unknown training config"):
        load_config("leg-2d-unett")


def test_multistep_schedule_of_seed_003():
    cfg = load_config("abdomen-ct-resunet", ["training.max_epochs=null", "training.max_iterations=300"])
    factor = lr_factor(cfg, 300)
    lrs = [cfg.training.lr * factor(i) for i in (0, 99, 100, 199, 200, 299)]
    assert lrs == pytest.approx([1e-4, 1e-4, 1e-5, 1e-5, 1e-6, 1e-6])


# --------------------------------------------------------------------------- data


def test_labels_of_another_scheme_map_to_output_channels():
    from myoscan.train.data import channel_lookup

    musclemap = load_catalog().scheme("musclemap")
    lut = channel_lookup(["soleus_left", "gastrocnemius_right"], "leg", source_scheme="musclemap")
    assert lut[musclemap.id_of("soleus_left")] == 1 and lut[musclemap.id_of("gastrocnemius_right")] == 2
    assert lut[musclemap.id_of("soleus_right")] == 0  # not predicted: background


def test_dataset_layouts(tmp_path):
    image, labels = tiny_case(0)
    flat = write_pairs(tmp_path / "flat", 2)
    assert [c.name for c in find_dataset(flat, ["water"]).cases] == ["case0", "case1"]

    nnunet = tmp_path / "nnunet"
    for folder in ("imagesTr", "labelsTr"):
        (nnunet / folder).mkdir(parents=True)
    write_volume(Volume(image, AFFINE), nnunet / "imagesTr" / "leg_001_0000.nii.gz")
    write_volume(Volume(image, AFFINE), nnunet / "imagesTr" / "leg_001_0001.nii.gz")
    write_volume(Volume(labels, AFFINE), nnunet / "labelsTr" / "leg_001.nii.gz")
    case = find_dataset(nnunet, ["water", "fat"]).cases[0]
    assert [p.name for p in case.images] == ["leg_001_0000.nii.gz", "leg_001_0001.nii.gz"]

    bids = tmp_path / "bids"
    anat, derived = bids / "sub-01" / "anat", bids / "derivatives" / "labels" / "sub-01" / "anat"
    write_volume(Volume(image, AFFINE), anat / "sub-01_water.nii.gz")
    write_volume(Volume(labels, AFFINE), derived / "sub-01_water_dseg.nii.gz")  # MuscleMap naming
    write_volume(Volume(labels, AFFINE), bids / "derivatives" / "myoscan" / "sub-01" / "anat"
                 / "sub-01_desc-model_dseg.nii.gz")
    dataset = find_dataset(bids, ["water"])
    assert dataset.layout == "bids"
    assert dataset.cases[0].label.parent == derived  # derivatives/labels wins over model output

    datalist = tmp_path / "list.json"
    datalist.write_text(json.dumps({
        "training": [{"image": "flat/case0_water.nii.gz", "label": "flat/case0_dseg.nii.gz"}],
        "validation": [{"image": ["flat/case1_water.nii.gz"], "label": "flat/case1_dseg.nii.gz"}],
    }))
    listed = find_dataset(datalist, ["water"])
    assert (len(listed.cases), len(listed.validation)) == (1, 1)


def test_bids_subject_without_labels_is_not_trained_on_another_pipelines_dseg(tmp_path):
    # `myoscan phantom --n` writes tissue maps as derivatives/phantom/*_desc-tissue_dseg: a
    # subject whose muscle labels are missing took its tissue map as label map (exit 0).
    image, labels = tiny_case(0)
    bids = tmp_path / "bids"
    for sub in ("01", "02"):
        write_volume(Volume(image, AFFINE), bids / f"sub-{sub}" / "anat" / f"sub-{sub}_water.nii.gz")
        write_volume(Volume((labels > 0).astype(np.uint8), AFFINE), bids / "derivatives" / "phantom"
                     / f"sub-{sub}" / "anat" / f"sub-{sub}_desc-tissue_dseg.nii.gz")
    write_volume(Volume(labels, AFFINE), bids / "derivatives" / "labels" / "sub-01" / "anat"
                 / "sub-01_dseg.nii.gz")
    with pytest.raises(InputError, match=r"no label map \(\*_dseg.nii.gz under derivatives/labels/\) for sub-02"):
        find_dataset(bids, ["water"])
    write_volume(Volume(labels, AFFINE), bids / "derivatives" / "labels" / "sub-02" / "anat"
                 / "sub-02_dseg.nii.gz")
    cases = find_dataset(bids, ["water"]).cases
    assert [c.label.parts[-4] for c in cases] == ["labels", "labels"]


def test_several_datasets_are_pooled_and_validation_data_is_separate(tmp_path):
    a, b = write_pairs(tmp_path / "a", 2), write_pairs(tmp_path / "b", 1)
    held = write_pairs(tmp_path / "held", 1)
    pooled = find_dataset([a, b], ["water"], validation=held)
    assert [c.name for c in pooled.cases] == ["a/case0", "a/case1", "b/case0"]
    assert [c.name for c in pooled.validation] == ["case0"]
    assert find_dataset(a, ["water"], validation=held).validation[0].name == "validation/case0"
    assert pooled.sources == (a, b)


def test_missing_label_and_geometry_mismatch_are_input_errors(tmp_path):
    data = write_pairs(tmp_path / "d", 2)
    (data / "case1_dseg.nii.gz").unlink()
    with pytest.raises(InputError, match="no label map for case1"):
        find_dataset(data, ["water"])
    image, labels = tiny_case(1)
    write_volume(Volume(labels, np.diag([1.5, 1.5, 5.0, 1.0])), data / "case1_dseg.nii.gz")
    with pytest.raises(GeometryMismatchError, match="spacing"):
        check_dataset(find_dataset(data, ["water"]))
    assert main(["train", "--config", "leg-2d-unet", "--data", str(data), "-o", str(tmp_path / "m")]) == 2


def test_a_nan_voxel_in_a_training_image_is_an_input_error(tmp_path, tiny_config):
    # it used to make the whole normalised image NaN and train the network into Dice 0
    from myoscan.segment import parse_config
    from myoscan.train.config import bundle_config
    from myoscan.train.data import channel_lookup, prepare_case

    data = write_pairs(tmp_path / "d", 1)
    image = read_volume(data / "case0_water.nii.gz")
    array = image.array.copy()
    array[3, 3, 1] = np.nan
    write_volume(image.with_array(array), data / "case0_water.nii.gz")
    case = find_dataset(data, ["water"]).cases[0]
    structures = output_structures(tiny_config)
    settings = parse_config(bundle_config(tiny_config, structures=structures))
    with pytest.raises(InputError, match="case0_water.nii.gz: 1 voxel"):
        prepare_case(case, settings, channel_lookup(structures, "leg"))


def test_a_training_case_failing_preparation_is_a_one_line_error(tmp_path, capsys):
    # MONAI's CacheDataset wrapped the InputError in RuntimeError: a traceback and exit 1
    data = write_pairs(tmp_path / "d", 3)
    for s in range(3):  # whichever case the seeded split puts into training
        image = read_volume(data / f"case{s}_water.nii.gz")
        array = image.array.copy()
        array[3, 3, 1] = np.nan
        write_volume(image.with_array(array), data / f"case{s}_water.nii.gz")
    out = tmp_path / "m"
    code = main(["train", "--config", "leg-2d-unet", "--data", str(data), "-o", str(out),
                 "--max-iterations", "2", "-q", "--set", "validation.fraction=0.0",
                 *sum([["--set", s] for s in TINY], [])])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "_water.nii.gz: 1 voxel(s) are NaN" in err, err
    assert not out.exists() and not work_dir_of(out).exists()


# --------------------------------------------------------------------------- augmentation


def test_flip_mirrors_and_swaps_left_right_labels():
    structures = ["soleus_left", "soleus_right", "tibia_left"]
    catalog = load_catalog()
    swap = swap_lookup(structures, {n: catalog.structure(n).counterpart for n in structures})
    assert swap.tolist() == [0, 2, 1, 3]  # tibia_right is not an output: tibia_left stays
    image, labels = tiny_case(3)
    channels = np.select([labels == LEG.id_of(n) for n in structures], [1, 2, 3], 0).astype(np.uint8)
    flip = RandFlipLeftRightd("image", "label", swap, prob=1.0)
    out = flip({"image": torch.from_numpy(image[None]), "label": torch.from_numpy(channels[None])})
    assert torch.equal(out["image"][0], torch.from_numpy(image[::-1].copy()))
    expected = swap[channels[::-1]]
    assert np.array_equal(out["label"][0].numpy(), expected)
    left_half = out["label"][0, :20].numpy()
    assert set(np.unique(left_half)) <= {0, 1}  # what was the right soleus now lies left and is left


@pytest.mark.parametrize("orientation", ["null", "PIR"])
def test_flip_needs_the_left_right_axis_first(orientation):
    # the flip mirrors array axis 0 and swaps left/right labels: with another axis first it
    # trained on anterior-posterior mirror images labelled with the wrong side
    with pytest.raises(InputError, match="flip_lr_prob"):
        load_config("leg-demo", [f"preprocessing.orientation={orientation}"])
    assert load_config("leg-demo", ["preprocessing.orientation=LPS"]).augmentation.flip_lr_prob > 0
    load_config("leg-demo", [f"preprocessing.orientation={orientation}", "augmentation.flip_lr_prob=0"])


def test_control_point_elastic_keeps_integer_labels():
    label = torch.zeros(1, 24, 24, 8)
    label[0, 6:18, 6:18, 2:6] = 3
    elastic = RandControlPointElasticd(["image", "label"], magnitude_vox=3.0, prob=1.0)
    elastic.set_random_state(0)
    out = elastic({"image": torch.rand(1, 24, 24, 8), "label": label})
    assert set(torch.unique(out["label"]).tolist()) <= {0.0, 3.0}
    assert not torch.equal(out["label"], label)


def test_elastic_sigma_in_mm_is_converted_per_axis_on_anisotropic_grids():
    # seed 002: sigma 10 mm on 0.7 x 0.7 x 3.0 mm voxels is 14.3 voxels in-plane but 3.3 slices
    # through-plane; one voxel magnitude for all axes moved tissue 4x too far along z.
    from myoscan.train.augment import build_augmentation
    from myoscan.train.config import AugmentationConfig

    spacing = (1.0, 1.0, 4.0)
    aug = build_augmentation(AugmentationConfig(elastic_prob=1.0, elastic_sigma_mm=4.0),
                             spatial_dims=3, spacing_mm=spacing, swap=None)
    shape = (24, 24, 24)
    coords = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in shape],
                                        indexing="ij"))
    shift_sd = []
    for seed in range(6):
        aug.set_random_state(seed)
        out = aug({"image": coords.clone(), "label": torch.zeros(1, *shape)})["image"]
        moved = (out - coords)[:, 8:16, 8:16, 8:16]  # interior: no zero padding
        shift_sd.append([float(moved[a].std()) for a in range(3)])
    sd = np.mean(shift_sd, axis=0)
    assert sd[0] > 0.2 and sd[1] > 0.2
    mm = sd * np.array(spacing)  # the displacement in mm is the same along every axis
    assert mm[2] == pytest.approx(0.5 * (mm[0] + mm[1]), rel=0.5)


# --------------------------------------------------------------------------- training


def test_training_lowers_loss_and_writes_a_bundle_that_predicts(tiny_data, tiny_config, tmp_path):
    from myoscan.segment import load_bundle
    from myoscan.segment.predict import segment_volumes

    result = train(tiny_config, tiny_data, tmp_path / "model", max_iterations=12, show_progress=False,
                   card_notes="Synthetic test data only.")
    losses = result.history["train_loss"].to_numpy()
    assert losses[-1] < losses[0]
    assert result.iterations == 12 and len(result.history) == 3
    for name in ("config.json", "weights.safetensors", "MODEL_CARD.md", "training_log.csv",
                 "learning_curve.png", "validation_dice.csv"):
        assert (tmp_path / "model" / name).is_file(), name
    bundle = load_bundle(tmp_path / "model")
    assert bundle.config["training"]["iterations"] == 12
    assert "Synthetic test data only." in bundle.model_card
    image = read_volume(tiny_data / "case0_water.nii.gz")
    seg = segment_volumes([image], bundle, device="cpu", show_progress=False)
    assert seg.labels.spatial_shape == image.spatial_shape
    assert set(np.unique(seg.labels.array)) <= {0, 7, 8, 9, 10}  # leg scheme ids
    assert np.isfinite(result.mean_dice) and result.mean_dice > 0
    with pytest.raises(InputError, match="pass --resume"):
        train(tiny_config, tiny_data, tmp_path / "model", max_iterations=2, show_progress=False)


def test_3d_patches_uniform_sampling_elastic_and_epochs(tiny_data, tmp_path):
    cfg = load_config("cervical-3d", [
        "architecture={name: unet3d, params: {channels: [4, 8], strides: [2], num_res_units: 1}}",
        "inputs.contrasts=[water]", "labels={scheme: leg, structures: [soleus_left, soleus_right]}",
        "preprocessing.target_spacing_mm=[null, null, null]", "sampling.roi_size=[16, 16, 4]",
        "sampling.num_samples=2", "inference.roi_size=[16, 16, 4]", "training.amp=false",
        "training.max_iterations=null", "training.max_epochs=2", "validation.interval_iterations=null",
        "validation.interval_epochs=1", "augmentation.elastic_sigma_mm=3.0",
    ])
    result = train(cfg, tiny_data, tmp_path / "m3d", show_progress=False)
    assert result.iterations == 8  # 4 cases, batch 1, validation on the training images (seed 002)
    assert result.history["epoch"].tolist() == [1.0, 2.0]
    assert result.train_cases == result.validation_cases


def test_early_stopping_keeps_the_best_weights(tiny_data, tiny_config, tmp_path):
    from myoscan.train.config import override

    cfg = override(tiny_config, **{"validation.patience": 1, "validation.min_delta": 1.0,
                                   "validation.interval_iterations": 2})
    result = train(cfg, tiny_data, tmp_path / "m", max_iterations=20, show_progress=False)
    assert result.stopped_early and result.iterations == 4  # no gain > 1.0 after the first validation
    assert result.best_iteration == 2
    assert result.history["best"].tolist() == [True, False]


def test_resume_continues_from_the_saved_iteration(tiny_data, tiny_config, tmp_path):
    # dropout draws from the torch RNG: the resumed run must restore it exactly (seed 002's VNet
    # trains with dropout 0.5), so the loader must not take a seed from that RNG when it starts
    from myoscan.train.config import override

    tiny_config = override(tiny_config, **{"architecture.params": {
        "channels": [4, 8], "strides": [2], "num_res_units": 1, "dropout": 0.3}})
    first = train(tiny_config, tiny_data, tmp_path / "a", max_iterations=4, show_progress=False)
    assert first.iterations == 4 and (work_dir_of(tmp_path / "a") / "checkpoint.pt").is_file()
    with pytest.raises(InputError, match="--resume"):
        train(tiny_config, tiny_data, tmp_path / "a", max_iterations=8, show_progress=False)
    resumed = train(tiny_config, tiny_data, tmp_path / "a", max_iterations=8, resume=True,
                    show_progress=False)
    assert resumed.history["iteration"].tolist() == [4, 8]
    straight = train(tiny_config, tiny_data, tmp_path / "b", max_iterations=8, show_progress=False)
    from safetensors.torch import load_file

    a, b = (load_file(tmp_path / name / "weights.safetensors") for name in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # same samples, optimiser state and RNG
    assert resumed.history["train_loss"].tolist() == pytest.approx(straight.history["train_loss"].tolist())


def test_validation_on_the_training_cases_is_said_in_card_and_summary(tmp_path, tiny_data, capsys):
    # with validation.fraction 0 (seed 002) the card presented training-set Dice as validation
    out = tmp_path / "m"
    assert main(["train", "--config", "leg-2d-unet", "--data", str(tiny_data), "-o", str(out),
                 "--max-iterations", "2", "--set", "validation.fraction=0.0", "-q",
                 *sum([["--set", s] for s in TINY], [])]) == 0
    assert "on the training cases: no held-out data" in capsys.readouterr().out
    card = (out / "MODEL_CARD.md").read_text()
    assert "**Measured on the training cases themselves**" in card.split("## Validation")[1]
    assert json.loads((out / "config.json").read_text())["training"]["validation_on_training_cases"] is True


def test_cross_validation_output_that_is_a_file_is_a_clear_error(tmp_path, tiny_data, capsys):
    # it ended in a NotADirectoryError traceback (exit 1)
    (tmp_path / "cv").write_text("x")
    code = main(["train", "--config", "leg-2d-unet", "--data", str(tiny_data), "-o", str(tmp_path / "cv"),
                 "--folds", "2", "--max-iterations", "2", "-q", *sum([["--set", s] for s in TINY], [])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cv: exists and is not a folder" in err and len(err.splitlines()) == 1


def test_cross_validation_writes_fold_bundles_and_summary(tmp_path, tiny_data):
    code = main(["train", "--config", "leg-2d-unet", "--data", str(tiny_data), "-o", str(tmp_path / "cv"),
                 "--folds", "2", "--max-iterations", "2", "-q", *sum([["--set", s] for s in TINY], [])])
    assert code == 0
    from myoscan.outputs import read_table

    summary = read_table(tmp_path / "cv" / "cv_summary.csv")
    assert summary["name"].iloc[-1] == "mean" and summary["n_folds"].iloc[-1] == 2
    assert "±" in summary["dice_mean_sd"].iloc[-1]
    folds = read_table(tmp_path / "cv" / "cv_fold_metrics.csv")
    assert set(folds["fold"]) == {1, 2}
    # the summary is mean and sample SD over folds of the postprocessed Dice, per structure
    expected = folds.groupby("name", sort=False)["dice_post"].agg(["mean", "std"])
    rows = summary.set_index("name").loc[expected.index]
    np.testing.assert_allclose(rows["dice_mean"], expected["mean"])
    np.testing.assert_allclose(rows["dice_sd"], expected["std"])
    per_fold = folds.groupby("fold")["dice_post"].mean()
    assert summary["dice_mean"].iloc[-1] == pytest.approx(per_fold.mean())
    assert summary["dice_sd"].iloc[-1] == pytest.approx(per_fold.std(ddof=1))
    for k in (1, 2):  # each fold's row is that fold bundle's own validation record
        record = json.loads((tmp_path / "cv" / f"fold-{k}" / "config.json").read_text())["training"]
        mine = folds[folds["fold"] == k].set_index("name")["dice_post"]
        assert mine.to_dict() == pytest.approx(record["validation_dice_post"], abs=6e-5)
    for k in (1, 2):
        card = (tmp_path / "cv" / f"fold-{k}" / "MODEL_CARD.md").read_text()
        assert "myoscan train --config leg-2d-unet" in card and "--folds 2" in card
        assert math.isfinite(json.loads((tmp_path / "cv" / f"fold-{k}" / "config.json").read_text())
                             ["training"]["validation_mean_dice"])
