from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from myoscan.bids import parse_bids_name
from myoscan.cli import main
from myoscan.io import Volume, read_volume, write_volume
from myoscan.pipeline import RunConfig, discover, run_pipeline
from myoscan.quantify import quantify

AFFINE = np.diag([0.8, 0.8, 4.0, 1.0])


def make_subject(root: Path, subject: str, rng: np.random.Generator, shape=(40, 32, 8)) -> None:
    """Water/fat images and a 4-label leg segmentation with subject-specific sizes and fat."""
    labels = np.zeros(shape, np.uint8)
    width = int(rng.integers(6, 10))
    labels[2 : 2 + width, 4:20, 1:7] = 7  # soleus_left
    labels[20 : 20 + width, 4:20, 1:7] = 8  # soleus_right
    labels[4:12, 22:30, 2:6] = 1  # anterior compartment left
    labels[24:32, 22:30, 2:6] = 2  # anterior compartment right
    ff = np.where(labels > 0, rng.uniform(0.03, 0.2), 0.9)
    signal_ = rng.uniform(400, 600, size=shape)
    water = (signal_ * (1 - ff)).astype(np.float32)
    fat = (signal_ * ff).astype(np.float32)
    anat = root / subject / "anat"
    write_volume(Volume(water, AFFINE), anat / f"{subject}_water.nii.gz")
    write_volume(Volume(fat, AFFINE), anat / f"{subject}_fat.nii.gz")
    seg_dir = root / "derivatives" / "manual" / subject / "anat"
    write_volume(Volume(labels, AFFINE), seg_dir / f"{subject}_dseg.nii.gz")


@pytest.fixture()
def dataset(tmp_path) -> Path:
    root = tmp_path / "bids"
    rng = np.random.default_rng(7)
    subjects = [f"sub-{i:02d}" for i in range(1, 7)]
    for subject in subjects:
        make_subject(root, subject, rng)
    pd.DataFrame(
        {
            "participant_id": subjects,
            "age": [34, 45, 52, 61, 70, 28],
            "sex": ["F", "M", "F", "M", "F", "M"],
            "height_cm": [165, 180, 160, 175, 158, 183],
            "patient_name": ["Ann", "Bob", "Cy", "Di", "Ed", "Flo"],
            "date_of_birth": ["1990-01-01"] * 6,
        }
    ).to_csv(root / "participants.tsv", sep="\t", index=False)
    return root


def test_parse_bids_name():
    assert parse_bids_name("sub-01_ses-a_chunk-2_fat.nii.gz") == (
        {"sub": "01", "ses": "a", "chunk": "2"},
        "fat",
    )
    assert parse_bids_name("notes.txt") is None
    assert parse_bids_name("ses-1_water.nii.gz") is None


def test_discover_finds_contrasts_and_existing_segmentations(dataset):
    cases = discover(dataset)
    assert [c.subject for c in cases] == [f"sub-{i:02d}" for i in range(1, 7)]
    assert set(cases[0].images) == {"water", "fat"}
    assert cases[0].segmentation.name == "sub-01_dseg.nii.gz"
    assert [c.subject for c in discover(dataset, subjects=["02", "sub-03"])] == ["sub-02", "sub-03"]


def test_quantify_run_matches_direct_quantify_and_is_resumable(dataset, tmp_path):
    out = tmp_path / "deriv1"
    with pytest.warns(UserWarning, match="patient_name, date_of_birth look like personal identifiers"):
        summary = run_pipeline(
            dataset, out, RunConfig(steps=("quantify",), scheme="leg"), show_progress=False
        )
    assert summary.counts == {"done": 6, "skipped": 0, "failed": 0}
    cohort = pd.read_csv(out / "cohort_metrics.csv")
    assert len(cohort) == 6 * 4  # one row per subject and label
    assert {"age", "sex", "height_cm"} <= set(cohort.columns)
    assert not {"patient_name", "date_of_birth"} & set(cohort.columns)
    assert "Ann" not in (out / "cohort_metrics.csv").read_text()
    # Values equal a direct call of the quantify API on the same files.
    anat = dataset / "sub-03" / "anat"
    direct = quantify(
        read_volume(dataset / "derivatives/manual/sub-03/anat/sub-03_dseg.nii.gz"),
        water=read_volume(anat / "sub-03_water.nii.gz"),
        fat=read_volume(anat / "sub-03_fat.nii.gz"),
        scheme="leg",
    )
    mine = cohort[cohort.subject == "sub-03"].set_index("name").loc[direct["name"]]
    np.testing.assert_allclose(mine["volume_ml"], direct["volume_ml"])
    np.testing.assert_allclose(mine["imf_pct"], direct["imf_pct"])
    indices = pd.read_csv(out / "cohort_indices.csv")
    assert len(indices) == 6
    provenance = (out / "sub-03" / "anat" / "sub-03_provenance.json").read_text()
    assert "inputs_sha256" in provenance and "Phantom" not in provenance
    again = run_pipeline(dataset, out, RunConfig(steps=("quantify",), scheme="leg"), show_progress=False)
    assert again.counts == {"done": 0, "skipped": 6, "failed": 0}
    changed = run_pipeline(
        dataset, out, RunConfig(steps=("quantify",), scheme="leg", erode_iterations=0), show_progress=False
    )
    assert changed.counts["done"] == 6  # a parameter change invalidates the provenance


@pytest.fixture(scope="module")
def phantom_dataset(tmp_path_factory) -> Path:
    """Four leg Dixon phantoms (half resolution) written as a BIDS dataset with truth."""
    from myoscan.phantom import PhantomConfig, write_dataset

    root = tmp_path_factory.mktemp("phantoms") / "bids"
    config = PhantomConfig(shape=(224, 133, 16), spacing_mm=(1.42, 1.42, 5.0))
    write_dataset(
        "leg", "dixon", 4, root, seed=11, config=config, images=["water", "fat"], show_progress=False
    )
    return root


def test_phantom_dataset_outputs_equal_truth_and_are_identical_for_1_and_2_workers(phantom_dataset, tmp_path):
    one, two = tmp_path / "w1", tmp_path / "w2"
    for out, workers in ((one, 1), (two, 2)):
        summary = run_pipeline(
            phantom_dataset, out, RunConfig(scheme="leg", workers=workers), show_progress=False
        )
        assert summary.counts == {"done": 4, "skipped": 0, "failed": 0}
    for name in ("cohort_metrics.csv", "cohort_indices.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(one / name), pd.read_csv(two / name))
    files = sorted(p.relative_to(one) for p in one.rglob("*.tsv") if p.name != "errors.tsv")
    assert len(files) == 8
    assert files == sorted(p.relative_to(two) for p in two.rglob("*.tsv") if p.name != "errors.tsv")
    for rel in files:
        assert (one / rel).read_bytes() == (two / rel).read_bytes()
    truth = pd.read_csv(phantom_dataset / "derivatives/phantom/truth_labels.tsv", sep="\t")
    cohort = pd.read_csv(one / "cohort_metrics.csv")
    merged = cohort.merge(truth, on=["subject", "name"], suffixes=("", "_true"))
    assert len(merged) == len(truth) == len(cohort)
    np.testing.assert_array_equal(merged["n_voxels"], merged["n_voxels_true"])
    # NIfTI stores the spacing in float32: 1.42 mm becomes 1.41999996 mm.
    np.testing.assert_allclose(merged["volume_ml"], merged["volume_ml_true"], rtol=1e-6)
    muscle = merged[merged["tissue"] == "muscle"]
    assert np.abs(muscle["imf_pct"] - muscle["imf_pct_true"]).max() < 1.5  # default phantom noise
    assert {"age", "sex", "bmi"} <= set(cohort.columns)


def test_corrupt_subject_is_recorded_and_others_finish(dataset, tmp_path, capsys):
    bad = dataset / "sub-04" / "anat" / "sub-04_water.nii.gz"
    bad.write_bytes(bad.read_bytes()[:100])
    out = tmp_path / "deriv"
    code = main(["run", str(dataset), "-o", str(out), "--scheme", "leg", "--workers", "2", "--quiet"])
    assert code == 1
    errors = pd.read_csv(out / "errors.tsv", sep="\t")
    assert errors["subject"].tolist() == ["sub-04"]
    assert errors["step"].iloc[0] == "quantify"
    assert "sub-04_water.nii.gz" in errors["message"].iloc[0]
    assert sorted(pd.read_csv(out / "cohort_metrics.csv")["subject"].unique()) == [
        "sub-01",
        "sub-02",
        "sub-03",
        "sub-05",
        "sub-06",
    ]
    assert "1 failed" in capsys.readouterr().err


def test_bad_arguments_exit_2(dataset, tmp_path):
    assert main(["run", str(dataset), "-o", str(tmp_path / "x"), "--steps", "quantify,colour"]) == 2
    assert main(["run", str(dataset), "-o", str(tmp_path / "x"), "--steps", "segment"]) == 2
    assert main(["run", str(tmp_path / "nothing"), "-o", str(tmp_path / "x")]) == 2


def test_killed_run_resumes_with_one_row_per_subject_and_no_partial_files(tmp_path):
    root = tmp_path / "bids"
    rng = np.random.default_rng(3)
    subjects = [f"sub-{i:02d}" for i in range(1, 13)]
    for subject in subjects:
        make_subject(root, subject, rng, shape=(96, 80, 24))
    out = tmp_path / "deriv"
    command = [
        sys.executable,
        "-m",
        "myoscan",
        "run",
        str(root),
        "-o",
        str(out),
        "--scheme",
        "leg",
        "--workers",
        "1",
        "--quiet",
    ]
    process = subprocess.Popen(command, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.rglob("*_provenance.json"))) < 3:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the runner and its Dask workers, mid-run
    process.wait()
    finished_before = len(list(out.rglob("*_provenance.json")))
    assert 3 <= finished_before < 12, "the kill should land mid-run"
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{finished_before} skipped" in result.stderr
    cohort = pd.read_csv(out / "cohort_metrics.csv")
    assert sorted(cohort["subject"].unique()) == subjects
    assert cohort.groupby(["subject", "name"]).size().eq(1).all()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    for tsv in out.rglob("*_metrics.tsv"):
        assert len(pd.read_csv(tsv, sep="\t")) == 4


def test_stitch_and_dixon_steps_fuse_stations_then_split_water_and_fat(tmp_path):
    root = tmp_path / "bids"
    anat = root / "sub-01" / "anat"
    rng = np.random.default_rng(5)
    # Two overlapping stations along z (slices 0-9 and 6-15 of one smooth volume), IP and OP.
    z = np.arange(16)
    water_true = 300 + 20 * np.sin(z / 5.0)[None, None, :] + np.zeros((12, 10, 16))
    fat_true = 60 + 5 * np.cos(z / 4.0)[None, None, :] + np.zeros((12, 10, 16))
    for chunk, (k0, k1) in enumerate([(0, 10), (6, 16)], start=1):
        affine = AFFINE.copy()
        affine[2, 3] = k0 * AFFINE[2, 2]
        for suffix, image in (("inphase", water_true + fat_true), ("outphase", water_true - fat_true)):
            station = image[:, :, k0:k1] * rng.uniform(0.999, 1.001)  # stations differ slightly
            write_volume(
                Volume(station.astype(np.float32), affine), anat / f"sub-01_chunk-{chunk}_{suffix}.nii.gz"
            )
    out = tmp_path / "deriv"
    summary = run_pipeline(root, out, RunConfig(steps=("dixon", "stitch")), show_progress=False)
    assert summary.counts["done"] == 1, summary.results
    folder = out / "sub-01" / "anat"
    inphase = read_volume(folder / "sub-01_desc-stitched_inphase.nii.gz")
    outphase = read_volume(folder / "sub-01_desc-stitched_outphase.nii.gz")
    water = read_volume(folder / "sub-01_water.nii.gz")
    assert inphase.shape == (12, 10, 16)
    np.testing.assert_allclose(inphase.affine, AFFINE, atol=1e-4)
    np.testing.assert_allclose(water.array, (inphase.array + outphase.array) / 2, rtol=1e-5)
    np.testing.assert_allclose(water.array, water_true, rtol=2e-3)
    assert read_volume(folder / "sub-01_desc-stitched_coverage.nii.gz").array[:, :, 6:10].min() == 2
    assert {"sub-01_stitch.json", "sub-01_dixon.json", "sub-01_fatfrac.nii.gz"} <= {
        p.name for p in folder.iterdir()
    }


def test_plain_dseg_wins_over_desc_variants(tmp_path):
    root = tmp_path / "bids"
    make_subject(root, "sub-01", np.random.default_rng(0))
    tissue = root / "derivatives" / "aaa" / "sub-01" / "anat" / "sub-01_desc-tissue_dseg.nii.gz"
    write_volume(Volume(np.zeros((40, 32, 8), np.uint8), AFFINE), tissue)
    assert discover(root)[0].segmentation.name == "sub-01_dseg.nii.gz"


def test_segment_step_runs_adapter_models_and_tracks_their_hash(tmp_path):
    from test_segment_adapters import _musclemap_model

    root = tmp_path / "bids"
    rng = np.random.default_rng(2)
    for subject in ("sub-01", "sub-02"):
        make_subject(root, subject, rng)
    folder, _ = _musclemap_model(tmp_path / "mm")
    config = RunConfig(steps=("segment", "quantify"), model=f"musclemap:{folder}")
    out = tmp_path / "deriv"
    assert run_pipeline(root, out, config, show_progress=False).counts["done"] == 2
    seg = read_volume(out / "sub-01" / "anat" / "sub-01_dseg.nii.gz")
    water = read_volume(root / "sub-01" / "anat" / "sub-01_water.nii.gz")
    np.testing.assert_allclose(seg.affine, water.affine)
    sidecar = (out / "sub-01" / "anat" / "sub-01_dseg.json").read_text()
    assert '"kind": "musclemap"' in sidecar
    assert run_pipeline(root, out, config, show_progress=False).counts["skipped"] == 2
    model_json = folder / "contrast_agnostic_leg_model.json"
    model_json.write_text(model_json.read_text() + "\n")  # a changed model file invalidates the outputs
    assert run_pipeline(root, out, config, show_progress=False).counts["done"] == 2


def test_musclemap_style_label_names_are_found(tmp_path):
    root = tmp_path / "bids"
    make_subject(root, "sub-01", np.random.default_rng(0))
    plain = root / "derivatives" / "manual" / "sub-01" / "anat" / "sub-01_dseg.nii.gz"
    musclemap = plain.with_name("sub-01_water_dseg.nii.gz")
    plain.rename(musclemap)
    assert discover(root)[0].segmentation == musclemap


def _height_m(out: Path, subject: str) -> float:
    table = pd.read_csv(out / subject / "anat" / f"{subject}_indices.tsv", sep="\t")
    return float(table["height_m"].iloc[0])


def test_changed_input_image_or_participant_height_invalidates_only_that_subject(dataset, tmp_path):
    """Heights from participants.tsv enter the indices, so they are inputs like the images."""
    from distributed import LocalCluster

    out = tmp_path / "deriv"
    # One in-process cluster reused by every run, as with --scheduler: worker caches persist.
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        config = RunConfig(scheme="leg", scheduler=cluster.scheduler_address)
        with pytest.warns(UserWarning, match="personal identifiers"):
            run_pipeline(dataset, out, config, show_progress=False)
        assert _height_m(out, "sub-02") == pytest.approx(1.80)
        participants = pd.read_csv(dataset / "participants.tsv", sep="\t")
        participants.loc[participants["participant_id"] == "sub-02", "height_cm"] = 150
        participants.to_csv(dataset / "participants.tsv", sep="\t", index=False)
        water = read_volume(dataset / "sub-05" / "anat" / "sub-05_water.nii.gz")
        write_volume(water.with_array(water.array * 1.5), dataset / "sub-05" / "anat" / "sub-05_water.nii.gz")
        with pytest.warns(UserWarning, match="personal identifiers"):
            summary = run_pipeline(dataset, out, config, show_progress=False)
    done = sorted(r.subject for r in summary.results if r.status == "done")
    assert done == ["sub-02", "sub-05"]
    assert summary.counts["skipped"] == 4
    assert _height_m(out, "sub-02") == pytest.approx(1.50)
    cohort = pd.read_csv(out / "cohort_indices.csv").set_index("subject")
    assert cohort.loc["sub-02", "height_m"] == pytest.approx(1.50)


def test_subject_failing_on_rerun_leaves_no_stale_derivatives_in_the_cohort(dataset, tmp_path):
    out = tmp_path / "deriv"
    config = RunConfig(scheme="leg")
    with pytest.warns(UserWarning, match="personal identifiers"):
        assert run_pipeline(dataset, out, config, show_progress=False).counts["done"] == 6
    folder = out / "sub-04" / "anat"
    assert (folder / "sub-04_metrics.tsv").is_file()
    bad = dataset / "sub-04" / "anat" / "sub-04_water.nii.gz"
    bad.write_bytes(bad.read_bytes()[:100])  # the input changed (and is now unreadable)
    with pytest.warns(UserWarning, match="personal identifiers"):
        summary = run_pipeline(dataset, out, config, show_progress=False)
    assert summary.counts == {"done": 0, "skipped": 5, "failed": 1}
    # The old results were computed from the old image: they must not stay in the cohort.
    assert "sub-04" not in set(pd.read_csv(out / "cohort_metrics.csv")["subject"])
    assert "sub-04" not in set(pd.read_csv(out / "cohort_indices.csv")["subject"])
    assert not (folder / "sub-04_provenance.json").exists()
    assert not (folder / "sub-04_metrics.tsv").exists()


def test_cohort_tables_hold_only_subjects_with_a_provenance_record(dataset, tmp_path):
    from myoscan.pipeline import collect_cohort

    out = tmp_path / "deriv"
    run_pipeline(dataset, out, RunConfig(scheme="leg", steps=("quantify",)), subjects=["sub-01", "sub-02"],
                 show_progress=False)
    (out / "sub-02" / "anat" / "sub-02_provenance.json").unlink()  # as if killed before the record
    collect_cohort(out, None)
    assert set(pd.read_csv(out / "cohort_metrics.csv")["subject"]) == {"sub-01"}
    (out / "sub-01" / "anat" / "sub-01_provenance.json").unlink()
    collect_cohort(out, None)
    assert not (out / "cohort_metrics.csv").exists()  # no finished subject: no stale cohort table


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--scheme", "nosuch"], "unknown label scheme 'nosuch'"),
        (["--steps", "segment,quantify", "--model", "/nonexistent/model"], "/nonexistent/model"),
        (["--steps", "segment", "--model", "musclemap:/nonexistent/mm"], "/nonexistent/mm"),
        (["--memory-limit", "lots"], "memory limit"),
        (["--subjects", "sub-99"], "subjects not found: sub-99"),
        (["--scheduler", "nonsense"], "Dask scheduler"),
    ],
    ids=["scheme", "bundle", "adapter", "memory", "subject", "scheduler"],
)
def test_bad_run_arguments_exit_2_with_one_line(dataset, tmp_path, capsys, flags, message):
    out = tmp_path / "x"
    assert main(["run", str(dataset), "-o", str(out), "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(out.rglob("*_metrics.tsv"))


def test_output_that_is_a_file_exits_2(dataset, tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["run", str(dataset), "-o", str(target), "--quiet"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_unreachable_scheduler_exits_2(dataset, tmp_path, capsys):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = main(["run", str(dataset), "-o", str(tmp_path / "x"), "--scheduler", "tcp://127.0.0.1:9",
                     "-q"])
    assert code == 2
    assert "cannot connect to the Dask scheduler" in capsys.readouterr().err


def test_process_case_never_raises_even_when_the_model_is_gone(dataset, tmp_path):
    from myoscan.pipeline.runner import process_case

    case = discover(dataset)[0]
    config = RunConfig(steps=("segment", "quantify"), model=str(tmp_path / "vanished"))
    result = process_case(case, config, str(dataset), str(tmp_path / "out"))
    assert result.status == "failed"
    assert "vanished" in result.message


def test_dicom_style_identifier_columns_never_reach_the_cohort_tables(tmp_path):
    import json

    from myoscan.pipeline import collect_cohort

    folder = tmp_path / "sub-01" / "anat"
    folder.mkdir(parents=True)
    pd.DataFrame({"name": ["soleus_left"], "volume_ml": [300.0]}).to_csv(
        folder / "sub-01_metrics.tsv", sep="\t", index=False
    )
    (folder / "sub-01_provenance.json").write_text(json.dumps({"outputs": ["sub-01_metrics.tsv"]}))
    participants = pd.DataFrame({
        "participant_id": ["sub-01"], "age": [61], "sex": ["F"],
        "PatientName": ["DOE^JANE"], "PatientBirthDate": ["19600101"], "Patient Name": ["Jane Doe"],
        "OtherPatientIDs": ["MRN123"], "BirthDate": ["1960-01-01"],
    })  # fmt: skip
    with pytest.warns(UserWarning, match="personal identifiers"):
        collect_cohort(tmp_path, participants)
    cohort = pd.read_csv(tmp_path / "cohort_metrics.csv")
    assert list(cohort.columns) == ["subject", "name", "volume_ml", "age", "sex"]
    text = (tmp_path / "cohort_metrics.csv").read_text()
    assert "DOE" not in text and "Jane" not in text and "1960" not in text and "MRN" not in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("participant_id\tage\nsub-01\t50\nsub-01\t51\n", "sub-01 more than once"),
        ('participant_id\tage\n"sub-01\t50\n', "cannot read"),
        ("id\tage\nsub-01\t50\n", "no participant_id column"),
    ],
    ids=["duplicate-id", "malformed", "no-id-column"],
)
def test_bad_participants_table_exits_2_before_any_subject_runs(dataset, tmp_path, capsys, content, message):
    (dataset / "participants.tsv").write_text(content)
    out = tmp_path / "deriv"
    assert main(["run", str(dataset), "-o", str(out), "--scheme", "leg", "-q"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(out.rglob("*_provenance.json"))
