"""``myoscan segment`` and ``myoscan models`` through ``main([...])``: outputs and exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from myoscan.cli import main  # noqa: E402
from myoscan.io import Volume, read_volume, write_volume  # noqa: E402
from myoscan.segment import build_network, save_bundle  # noqa: E402

torch.set_num_threads(1)


def _config(contrasts=("water", "fat"), arch="unet2d"):
    return {
        "name": "cli-tiny", "description": "tiny test model",
        "architecture": {"name": arch, "params": {"channels": [4, 8, 16], "strides": [2, 2]}},
        "inputs": {"contrasts": list(contrasts), "modality": "mri"},
        "preprocessing": {"target_spacing_mm": [2.0, 2.0, None], "intensity": {"mode": "zscore"}},
        "inference": {"roi_size": [32, 32], "overlap": 0.25},
        "labels": {"scheme": "leg", "ids": {"1": "soleus_left", "2": "soleus_right"}},
    }


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    save_bundle(root / "cli-tiny", network=build_network(_config()), config=_config(),
                model_card="# cli-tiny\n\nTrained on nothing; for tests.")
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    # coronal slices: J runs inferior-superior, K anterior-posterior
    affine = np.array([[-0.8, 0, 0, 50.0], [0, 0, 3.0, -20.0], [0, 0.9, 0, 10.0], [0, 0, 0, 1]])
    shape = (40, 8, 36)
    water = write_volume(Volume(rng.normal(300, 50, shape).astype(np.float32), affine), folder / "w.nii.gz")
    fat = write_volume(Volume(rng.normal(60, 20, shape).astype(np.float32), affine), folder / "f.nii.gz")
    return {"water": water, "fat": fat, "folder": folder}


def test_segment_writes_label_map_on_input_grid_and_sidecar(models_dir, images, tmp_path, capsys):
    out = tmp_path / "out" / "seg.nii.gz"
    code = main(["segment", "--water", str(images["water"]), "--fat", str(images["fat"]),
                 "--model", "cli-tiny", "--models-dir", str(models_dir), "-o", str(out), "--device", "cpu",
                 "-q"])
    assert code == 0, capsys.readouterr().err
    seg, water = read_volume(out), read_volume(images["water"])
    assert seg.shape == water.shape
    np.testing.assert_allclose(seg.affine, water.affine, atol=1e-5)
    sidecar = json.loads((tmp_path / "out" / "seg.json").read_text())
    assert sidecar["model"]["name"] == "cli-tiny" and len(sidecar["model"]["sha256"]) == 64
    assert sidecar["label_scheme"] == "leg" and sidecar["labels"]["7"] == "soleus_left"
    assert set(np.unique(seg.array)) <= {0, 7, 8}


def test_positional_image_fills_the_remaining_contrast(models_dir, images, tmp_path):
    out = tmp_path / "seg.nii.gz"
    assert main(["segment", str(images["water"]), "--fat", str(images["fat"]), "--model",
                 str(models_dir / "cli-tiny"), "-o", str(out), "-q"]) == 0
    assert out.is_file()


def _expect_error(argv, match, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert match in err, err
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


def test_wrong_contrasts_exit_2(models_dir, images, tmp_path, capsys):
    _expect_error(["segment", "--in-phase", str(images["water"]), "--opposed-phase", str(images["fat"]),
                   "--model", str(models_dir / "cli-tiny"), "-o", str(tmp_path / "s.nii.gz")],
                  "missing water, fat", capsys)
    _expect_error(["segment", str(images["water"]), "--model", str(models_dir / "cli-tiny"),
                   "-o", str(tmp_path / "s.nii.gz")], "takes 2 contrast", capsys)
    # one IMAGE for two missing channels is ambiguous, not "no channel left"
    err = _expect_error(["segment", str(images["water"]), "--model", str(models_dir / "cli-tiny"),
                         "-o", str(tmp_path / "s.nii.gz")], "IMAGE fills one missing channel only", capsys)
    assert "no channel left" not in err
    assert not (tmp_path / "s.nii.gz").exists()


def test_2d_image_and_missing_spacing_exit_2(models_dir, images, tmp_path, capsys):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((20, 20), np.float32), np.eye(4)), tmp_path / "flat.nii.gz")
    _expect_error(["segment", str(tmp_path / "flat.nii.gz"), "--fat", str(images["fat"]),
                   "--model", str(models_dir / "cli-tiny"), "-o", str(tmp_path / "s.nii.gz")], "3D", capsys)
    import nrrd

    nrrd.write(str(tmp_path / "nospace.nrrd"), np.ones((8, 8, 4), np.float32))  # no space directions
    _expect_error(["segment", "--water", str(tmp_path / "nospace.nrrd"), "--fat",
                   str(tmp_path / "nospace.nrrd"), "--model", str(models_dir / "cli-tiny"),
                   "-o", str(tmp_path / "s.nii.gz")], "spacing is unknown", capsys)


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_non_finite_voxels_exit_2_instead_of_an_empty_segmentation(models_dir, images, tmp_path, capsys, bad):
    # One NaN/inf voxel used to turn the whole normalised image into NaN: exit 0, all background.
    water = read_volume(images["water"])
    array = water.array.copy()
    array[5, 3, 7] = bad
    write_volume(water.with_array(array), tmp_path / "bad.nii.gz")
    _expect_error(["segment", "--water", str(tmp_path / "bad.nii.gz"), "--fat", str(images["fat"]),
                   "--model", str(models_dir / "cli-tiny"), "-o", str(tmp_path / "s.nii.gz")],
                  "1 voxel(s) are NaN or infinite", capsys)
    assert not (tmp_path / "s.nii.gz").exists()


@pytest.mark.parametrize("problem", ["missing-weights", "unknown-architecture", "weights-mismatch"])
def test_broken_model_folders_exit_2(models_dir, images, tmp_path, capsys, problem):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(models_dir / "cli-tiny", broken)
    config = json.loads((broken / "config.json").read_text())
    if problem == "missing-weights":
        (broken / "weights.safetensors").unlink()
        match = "missing weights.safetensors"
    elif problem == "unknown-architecture":
        config["architecture"]["name"] = "swin9000"
        match = "unknown architecture 'swin9000'"
    else:
        config["architecture"]["params"]["channels"] = [8, 16, 32]
        match = "weights do not match the architecture"
    (broken / "config.json").write_text(json.dumps(config))
    _expect_error(["segment", "--water", str(images["water"]), "--fat", str(images["fat"]),
                   "--model", str(broken), "-o", str(tmp_path / "s.nii.gz")], match, capsys)


def test_totalseg_import_via_cli(totalseg_dir, tmp_path, capsys):
    out = tmp_path / "ts.nii.gz"
    assert main(["segment", str(totalseg_dir / "example_ct_sm.nii.gz"), "--model",
                 f"totalseg:{totalseg_dir / 'example_seg.nii.gz'}", "-o", str(out), "-q"]) == 0
    sidecar = json.loads((tmp_path / "ts.json").read_text())
    assert sidecar["label_scheme"] == "ts_total"
    assert sidecar["labels"]["86"] == "erector_spinae_left" and sidecar["labels"]["88"] == "iliopsoas_left"


def test_models_list_and_info(models_dir, capsys, monkeypatch):
    monkeypatch.setenv("MYOSCAN_MODELS", str(models_dir))
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "cli-tiny" in listing and "unet2d" in listing and "MYOSCAN_MODELS" in listing
    assert main(["models", "info", "cli-tiny"]) == 0
    info = capsys.readouterr().out
    assert "sha256" in info and "soleus_left" in info and "Trained on nothing" in info
    assert main(["models", "list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert any(e["name"] == "cli-tiny" and e["contrasts"] == ["water", "fat"] for e in entries)
    _expect_error(["models", "info", "no-such-model"], "no such model folder or bundle name", capsys)


def test_label_map_and_sidecar_are_written_together(models_dir, images, tmp_path, capsys):
    # a side-car path that cannot be written left the label map behind with exit 2
    (tmp_path / "seg.json").mkdir()
    _expect_error(["segment", "--water", str(images["water"]), "--fat", str(images["fat"]),
                   "--model", str(models_dir / "cli-tiny"), "-o", str(tmp_path / "seg.nii.gz"), "-q"],
                  "seg.json", capsys)
    assert not (tmp_path / "seg.nii.gz").exists()


def test_output_naming_an_input_image_is_refused(models_dir, images, tmp_path, capsys):
    # `-o` equal to an input replaced the image with the label map (exit 0)
    import shutil

    water = shutil.copy(images["water"], tmp_path / "w.nii.gz")
    before = (tmp_path / "w.nii.gz").read_bytes()
    _expect_error(["segment", "--water", str(water), "--fat", str(images["fat"]), "--model",
                   str(models_dir / "cli-tiny"), "-o", str(water), "-q"], "is one of the input images", capsys)
    assert (tmp_path / "w.nii.gz").read_bytes() == before
