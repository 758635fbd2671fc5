"""``myoscan demo``: outputs of the whole pipeline, and the shipped demo model's accuracy."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from myoscan.cli import main  # noqa: E402
from myoscan.demo import DEMO_MODEL, DEMO_SEED, run_demo  # noqa: E402
from myoscan.segment import build_network, find_bundles, save_bundle  # noqa: E402

torch.set_num_threads(2)

LEG_MUSCLES = ["leg_anterior_compartment_left", "leg_anterior_compartment_right",
               "soleus_left", "soleus_right"]


@pytest.fixture(scope="module")
def tiny_leg_bundle(tmp_path_factory):
    """A small untrained leg model: the pipeline runs end to end, the Dice is meaningless."""
    config = {
        "name": "tiny-leg-demo",
        "architecture": {"name": "unet2d", "params": {"channels": [4, 8, 16], "strides": [2, 2]}},
        "inputs": {"contrasts": ["water"], "modality": "mri"},
        "preprocessing": {"target_spacing_mm": [2.8, 2.8, None], "intensity": {"mode": "percentile"},
                          "crop_foreground": True},
        "inference": {"roi_size": [64, 64], "overlap": 0.25, "sw_batch_size": 8},
        "postprocessing": {"lr_consistency": True},
        "labels": {"scheme": "leg", "ids": {str(i + 1): n for i, n in enumerate(LEG_MUSCLES)}},
    }
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "tiny-leg-demo"
    return save_bundle(folder, network=build_network(config), config=config, model_card="# tiny")


@pytest.fixture(scope="module")
def demo_run(tiny_leg_bundle, tmp_path_factory):
    """One demo run through the CLI (the slow part), shared by the tests below."""
    import contextlib
    import io

    out_dir = tmp_path_factory.mktemp("demo")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["demo", "-o", str(out_dir), "--seed", "7", "--model", str(tiny_leg_bundle),
                     "--device", "cpu"])
    return code, out_dir, stdout.getvalue()


def test_demo_writes_every_output(demo_run):
    code, out_dir, printed = demo_run
    assert code == 0
    assert "mean Dice over 4 labels" in printed and "overlay.png" in printed
    for name in ("segmentation.nii.gz", "segmentation.json", "metrics.csv", "accuracy.csv", "overlay.png",
                 "summary.txt", "phantom/truth.json", "phantom/water.nii.gz", "phantom/labels.nii.gz"):
        assert (out_dir / name).is_file(), name
    accuracy = pd.read_csv(out_dir / "accuracy.csv")
    assert accuracy["name"].tolist() == LEG_MUSCLES  # one row per model label, catalog names
    assert accuracy["dice"].between(0, 1).all()
    assert (accuracy["volume_true_ml"] > 0).all() and accuracy["imf_true_pct"].notna().all()
    metrics = pd.read_csv(out_dir / "metrics.csv")
    assert {"label_id", "name", "volume_ml", "imf_pct"} <= set(metrics.columns)
    summary = (out_dir / "summary.txt").read_text()
    assert "mean Dice over 4 labels" in summary and "not for real scans" in summary
    sidecar = json.loads((out_dir / "segmentation.json").read_text())
    assert sidecar["model"]["name"] == "tiny-leg-demo"
    assert (out_dir / "overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_is_reproducible_through_the_api(demo_run, tiny_leg_bundle, tmp_path):
    _, out_dir, _ = demo_run
    again = run_demo(tmp_path / "again", seed=7, model=tiny_leg_bundle, device="cpu", show_progress=False)
    pd.testing.assert_frame_equal(again.accuracy, pd.read_csv(out_dir / "accuracy.csv"), check_dtype=False)
    assert again.mean_dice == pytest.approx(again.accuracy["dice"].mean())
    assert again.summary.splitlines()[3:] == (out_dir / "summary.txt").read_text().splitlines()[3:]


def test_demo_without_model_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MYOSCAN_MODELS", str(tmp_path / "none"))
    code = main(["demo", "-o", str(tmp_path / "d"), "--model", "no-such-model"])
    assert code == 2
    assert "no such model folder or bundle name" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()  # the output folder was created before the model failed


def test_demo_output_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    # it ended in a FileExistsError traceback (exit 1)
    (tmp_path / "taken").write_text("x")
    assert main(["demo", "-o", str(tmp_path / "taken")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "taken: exists and is not a folder" in err


@pytest.mark.slow
def test_shipped_demo_model_reaches_dice_090_on_a_fresh_phantom(tmp_path):
    if DEMO_MODEL not in {b.name for b in find_bundles() if b.source == "built-in"}:
        pytest.skip("the leg-demo bundle is not shipped in src/myoscan/models/ yet")
    result = run_demo(tmp_path, seed=DEMO_SEED, device="cpu", show_progress=False)
    assert result.mean_dice >= 0.90, result.summary
    assert np.all(result.accuracy["dice"] > 0.75), result.summary
