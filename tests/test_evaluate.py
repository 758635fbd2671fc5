"""Tests of myoscan.evaluate and ``myoscan evaluate``.

Hand-computed values on tiny masks (anisotropic spacing), and parity with independent
implementations on the two TotalSegmentator segmentations of one CT (normal vs fast
model, 3 mm voxels): SimpleITK's LabelOverlapMeasuresImageFilter, LabelShapeStatistics and
HausdorffDistanceImageFilter, scikit-learn's confusion matrices, and MONAI's Hausdorff
and average surface distance metrics.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from myoscan.cli import main
from myoscan.errors import GeometryMismatchError, InputError
from myoscan.evaluate import (
    EvaluateConfig,
    as_label_array,
    confusion_counts,
    evaluate_files,
    evaluate_pairs,
    evaluate_segmentation,
    match_folders,
    read_pairs_csv,
    summarize_evaluation,
    surface_distances_mm,
)
from myoscan.io import Volume, write_volume
from myoscan.outputs import read_table

SPACING = (0.5, 1.0, 2.0)  # anisotropic on purpose: every axis has its own step


def _cube_pair(axis: int) -> tuple[np.ndarray, np.ndarray]:
    """A 4-voxel cube (label 1) in an 8^3 grid, and the same cube shifted one voxel along ``axis``."""
    ref = np.zeros((8, 8, 8), dtype=np.uint8)
    ref[2:6, 2:6, 2:6] = 1
    return np.roll(ref, 1, axis=axis), ref


# --------------------------------------------------------------------------- hand-computed values


def test_shifted_cube_matches_hand_computation():
    pred, ref = _cube_pair(axis=2)
    row = evaluate_segmentation(pred, ref, SPACING).set_index("label_id").loc[1]
    # 64 voxels each, 48 shared; 512 voxels in the image.
    assert (row.tp_voxels, row.fp_voxels, row.fn_voxels, row.tn_voxels) == (48, 16, 16, 432)
    assert row.dice == pytest.approx(96 / 128)
    assert row.jaccard == pytest.approx(48 / 80)
    assert row.conformity == pytest.approx(1 - 32 / 48)  # = (3 Dice - 2) / Dice
    assert row.conformity == pytest.approx((3 * row.dice - 2) / row.dice)
    assert row.tpr == pytest.approx(0.75) and row.ppv == pytest.approx(0.75)
    assert row.tnr == pytest.approx(432 / 448)
    assert row.volume_ratio == 1.0 and row.ravd_pct == 0.0
    assert row.volume_ref_ml == pytest.approx(64 * 0.5 * 1.0 * 2.0 / 1000)
    # Each cube has 56 surface voxels: 16 on the leading face are 2.0 mm (one K step) from the
    # other surface, 4 face-interior voxels are 0.5 mm (one I step) from it, 36 coincide.
    assert row.hd_mm == pytest.approx(2.0)
    assert row.hd95_mm == pytest.approx(2.0)
    assert row.assd_mm == pytest.approx(2 * (16 * 2.0 + 4 * 0.5) / 112)


@pytest.mark.parametrize("axis", [0, 1, 2], ids=["I-0.5mm", "J-1mm", "K-2mm"])
def test_hausdorff_uses_the_spacing_of_the_shifted_axis(axis):
    pred, ref = _cube_pair(axis)
    row = evaluate_segmentation(pred, ref, SPACING).iloc[0]
    assert row.hd_mm == pytest.approx(SPACING[axis])


def test_surface_distances_between_two_points():
    a = np.zeros((3, 3, 3), bool)
    b = np.zeros((3, 3, 3), bool)
    a[0, 0, 0] = True
    b[2, 1, 2] = True
    expected = np.sqrt((2 * 0.5) ** 2 + (1 * 1.0) ** 2 + (2 * 2.0) ** 2)
    d_ab, d_ba = surface_distances_mm(a, b, SPACING)
    assert d_ab.tolist() == pytest.approx([expected]) and d_ba.tolist() == pytest.approx([expected])


def test_volume_difference_signs():
    ref = np.zeros((1, 1, 10), np.uint8)
    ref[..., :4] = 1
    pred = np.zeros_like(ref)
    pred[..., :5] = 1
    row = evaluate_segmentation(pred, ref, (1, 1, 1)).iloc[0]
    assert row.volume_ratio == pytest.approx(1.25)
    assert row.volume_diff_pct == pytest.approx(25.0) and row.ravd_pct == pytest.approx(25.0)
    row = evaluate_segmentation(ref, pred, (1, 1, 1)).iloc[0]
    assert row.volume_diff_pct == pytest.approx(-20.0) and row.ravd_pct == pytest.approx(20.0)


def test_labels_absent_from_one_image_get_defined_values_and_leave_the_means():
    ref = np.zeros((6, 6, 6), np.uint8)
    pred = np.zeros_like(ref)
    ref[0:2, 0:2, 0:2] = 1
    pred[0:2, 0:2, 0:1] = 1  # label 1 in both: Dice 2*4/(8+4)
    ref[4:6, 4:6, 4:6] = 2  # label 2 missed by the prediction
    pred[3, 0, 5] = 3  # label 3 only in the prediction
    table = evaluate_segmentation(pred, ref, (1, 1, 1)).set_index("label_id")
    assert list(table.index) == [1, 2, 3]  # label 4 (in neither) is skipped
    missed, spurious = table.loc[2], table.loc[3]
    assert missed.in_ref and not missed.in_pred
    assert (missed.dice, missed.jaccard, missed.tpr, missed.volume_ratio) == (0.0, 0.0, 0.0, 0.0)
    assert missed.ravd_pct == 100.0
    assert np.isnan(missed.ppv) and np.isnan(missed.conformity)
    assert np.isnan(missed[["hd_mm", "hd95_mm", "assd_mm"]].astype(float)).all()
    assert spurious.in_pred and not spurious.in_ref
    assert (spurious.dice, spurious.ppv) == (0.0, 0.0)
    assert np.isnan(spurious.tpr) and np.isnan(spurious.volume_ratio) and np.isnan(spurious.hd_mm)

    summary = summarize_evaluation(table.reset_index()).set_index("name")
    assert summary.loc["label_3", "n_cases"] == 0 and summary.loc["label_3", "n_spurious"] == 1
    assert np.isnan(summary.loc["label_3", "dice_mean"])
    everything = summary.loc["all_labels"]
    assert everything.n_cases == 2 and everything.n_missed == 1 and everything.n_spurious == 1
    # Mean over labels in the reference (1 and 2): the missed label counts as 0 (seed 001).
    assert everything.dice_mean == pytest.approx((8 / 12 + 0.0) / 2)
    assert everything.dice_se == pytest.approx(np.std([8 / 12, 0.0], ddof=1) / np.sqrt(2))
    # Distances exist only for label 1.
    assert everything.hd_mm_mean == pytest.approx(table.loc[1, "hd_mm"])


def test_names_restriction_and_no_distances():
    pred, ref = _cube_pair(axis=0)
    ref[0, 0, 0] = 7
    config = EvaluateConfig(labels=(1,), distances=False, hd_percentile=99)
    table = evaluate_segmentation(pred, ref, SPACING, names={1: "soleus_left"}, config=config)
    assert table["name"].tolist() == ["soleus_left"]
    assert {"hd99_mm", "hd_mm", "assd_mm"} <= set(table.columns) and table["hd_mm"].isna().all()


# --------------------------------------------------------------------------- input validation


def test_float_labels_with_whole_values_are_accepted():
    assert as_label_array(np.array([0.0, 3.0], np.float32)).dtype.kind == "i"
    assert as_label_array(np.array([True, False])).tolist() == [1, 0]


@pytest.mark.parametrize(
    ("values", "match"),
    [([0.0, 0.5], "non-integer"), ([0.0, np.nan], "non-integer"), ([-1, 2], "negative"),
     (["a", "b"], "dtype")],
    ids=["fraction", "nan", "negative", "strings"],
)
def test_bad_label_values_raise(values, match):
    with pytest.raises(InputError, match=match):
        as_label_array(np.array(values), source="seg.nii.gz")


def test_hausdorff_percentile_out_of_range_raises():
    with pytest.raises(InputError, match=r"percentile must be in \(0, 100\], got 120"):
        EvaluateConfig(hd_percentile=120)


def test_shape_and_spacing_errors():
    with pytest.raises(InputError, match="shape"):
        evaluate_segmentation(np.zeros((2, 2, 2), int), np.zeros((2, 2, 3), int), (1, 1, 1))
    with pytest.raises(InputError, match="spacing"):
        evaluate_segmentation(np.zeros((2, 2, 2), int), np.zeros((2, 2, 2), int), (1, 0, 1))


def test_confusion_counts_handle_large_sparse_label_ids():
    pred = np.array([0, 5_000_000, 5_000_000, 2])
    ref = np.array([5_000_000, 5_000_000, 0, 2])
    counts = confusion_counts(pred, ref)
    assert counts.loc[5_000_000].tolist() == [1, 1, 1, 1]
    assert counts.loc[2].tolist() == [1, 0, 0, 3]


# --------------------------------------------------------------------------- parity on real data


@pytest.fixture(scope="module")
def totalseg(totalseg_dir):
    """(pred, ref) SimpleITK images: the fast model's segmentation against the normal model's."""
    return (sitk.ReadImage(str(totalseg_dir / "example_seg_fast.nii.gz")),
            sitk.ReadImage(str(totalseg_dir / "example_seg.nii.gz")))


@pytest.fixture(scope="module")
def totalseg_table(totalseg_dir):
    """Our table for the pair, read through myoscan.io."""
    table = evaluate_files(totalseg_dir / "example_seg_fast.nii.gz", totalseg_dir / "example_seg.nii.gz")
    return table.set_index("label_id")


def test_totalseg_overlap_matches_simpleitk(totalseg, totalseg_table):
    pred, ref = totalseg
    overlap = sitk.LabelOverlapMeasuresImageFilter()
    overlap.Execute(pred, ref)  # source = prediction, target = reference
    table = totalseg_table
    assert len(table) >= 40 and (~table.in_pred).sum() >= 1  # label 13 only in the reference
    ids = [int(i) for i in table.index]
    itk = pd.DataFrame({
        "dice": [overlap.GetDiceCoefficient(i) for i in ids],
        "jaccard": [overlap.GetJaccardCoefficient(i) for i in ids],
        "tpr": [1 - overlap.GetFalseNegativeError(i) for i in ids],
        "ppv": [1 - overlap.GetFalseDiscoveryRate(i) for i in ids],
        "volume_similarity": [overlap.GetVolumeSimilarity(i) for i in ids],
    }, index=table.index)
    both = table.in_pred & table.in_ref
    for metric in ("dice", "jaccard", "tpr"):
        np.testing.assert_allclose(table[metric], itk[metric], atol=1e-12, err_msg=metric)
    np.testing.assert_allclose(table.loc[both, "ppv"], itk.loc[both, "ppv"], atol=1e-12)
    # ITK's volume similarity 2 (|S| - |T|) / (|S| + |T|) = 2 (VR - 1) / (VR + 1).
    vr = table.loc[both, "volume_ratio"]
    np.testing.assert_allclose(2 * (vr - 1) / (vr + 1), itk.loc[both, "volume_similarity"], atol=1e-12)
    np.testing.assert_allclose(table.loc[both, "conformity"],
                               (3 * itk.loc[both, "dice"] - 2) / itk.loc[both, "dice"], atol=1e-12)


def test_totalseg_volumes_and_counts_match_independent_tools(totalseg, totalseg_table):
    from sklearn.metrics import multilabel_confusion_matrix

    pred, ref = totalseg
    table = totalseg_table
    itk_ml = {}
    for image, column in ((pred, "volume_pred_ml"), (ref, "volume_ref_ml")):
        shape = sitk.LabelShapeStatisticsImageFilter()
        shape.Execute(image)
        volumes = pd.Series({i: shape.GetPhysicalSize(i) / 1000 for i in shape.GetLabels()})
        itk_ml[column] = volumes.reindex(table.index, fill_value=0.0)
        present = table[column] > 0
        np.testing.assert_allclose(table.loc[present, column], volumes.loc[table.index[present]], rtol=1e-12)
    signed_pct = (itk_ml["volume_pred_ml"] - itk_ml["volume_ref_ml"]) / itk_ml["volume_ref_ml"] * 100
    np.testing.assert_allclose(table["volume_diff_pct"], signed_pct, atol=1e-9)
    np.testing.assert_allclose(table["ravd_pct"], signed_pct.abs(), atol=1e-9)
    y_pred = sitk.GetArrayViewFromImage(pred).ravel()
    y_ref = sitk.GetArrayViewFromImage(ref).ravel()
    cm = multilabel_confusion_matrix(y_ref, y_pred, labels=list(table.index))  # [[tn, fp], [fn, tp]]
    expected = np.column_stack([cm[:, 1, 1], cm[:, 0, 1], cm[:, 1, 0], cm[:, 0, 0]])
    np.testing.assert_array_equal(table[["tp_voxels", "fp_voxels", "fn_voxels", "tn_voxels"]], expected)
    tn, fp = cm[:, 0, 0], cm[:, 0, 1]
    np.testing.assert_allclose(table["tnr"], tn / (tn + fp), atol=1e-12)


@pytest.mark.parametrize("spacing_zyx", [None, (3.0, 1.5, 0.8)], ids=["native-3mm", "anisotropic"])
def test_totalseg_distances_match_monai(totalseg, spacing_zyx, request):
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # MONAI's per-class loop is ~10x slower with threads on shared cores
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    pred_img, ref_img = totalseg
    # SimpleITK arrays are (K, J, I); the spacing is reversed to match.
    pred = sitk.GetArrayFromImage(pred_img)
    ref = sitk.GetArrayFromImage(ref_img)
    spacing = spacing_zyx or tuple(reversed(ref_img.GetSpacing()))
    table = evaluate_segmentation(pred, ref, spacing).set_index("label_id")
    both = table.index[table.in_pred & table.in_ref].to_numpy()
    y_pred = torch.from_numpy(np.stack([pred == i for i in both])[None]).float()
    y_ref = torch.from_numpy(np.stack([ref == i for i in both])[None]).float()
    with warnings.catch_warnings():
        # MONAI 1.6 warns about its own internal use of a deprecated argument; not ours.
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy", category=FutureWarning)
        monai = {
            "hd_mm": compute_hausdorff_distance(y_pred, y_ref, include_background=True,
                                                spacing=list(spacing)),
            "hd95_mm": compute_hausdorff_distance(y_pred, y_ref, include_background=True, percentile=95,
                                                  spacing=list(spacing)),
            "assd_mm": compute_average_surface_distance(y_pred, y_ref, include_background=True,
                                                        symmetric=True, spacing=list(spacing)),
        }
    for metric, values in monai.items():
        # MONAI works in float32: agreement to ~1e-5 mm.
        np.testing.assert_allclose(table.loc[both, metric], values[0].numpy(), atol=1e-4, err_msg=metric)


def test_totalseg_hausdorff_matches_simpleitk(totalseg, totalseg_table, request):
    # ITK's filter takes all voxels of both masks, not their surfaces; on these (native,
    # isotropic) masks the maxima coincide, so it checks hd_mm independently of MONAI.
    pred, ref = totalseg
    table = totalseg_table
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # 40 tiny filters: threads only add overhead
    request.addfinalizer(lambda: sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads))
    hausdorff = sitk.HausdorffDistanceImageFilter()
    for label in table.index[table.in_pred & table.in_ref]:
        hausdorff.Execute(pred == int(label), ref == int(label))
        assert table.loc[label, "hd_mm"] == pytest.approx(hausdorff.GetHausdorffDistance(), abs=1e-9), label


# --------------------------------------------------------------------------- batch and files


def _write_cases(tmp_path, n=4):
    """pred/ and ref/ folders of n cases with shrinking predictions; sub-99 only in pred/."""
    rng = np.random.default_rng(0)
    affine = np.diag([0.8, 0.8, 3.0, 1.0])
    (tmp_path / "pred").mkdir()
    (tmp_path / "ref").mkdir()
    for k in range(n):
        ref = np.zeros((12, 12, 6), np.uint8)
        ref[2:10, 2:8 + k % 3, 1:5] = 1
        ref[1:4, 9:12, 0:3 + k % 2] = 2
        pred = ref.copy()
        pred[rng.integers(0, 12, 6), rng.integers(0, 12, 6), rng.integers(0, 6, 6)] = 1
        write_volume(Volume(pred, affine), tmp_path / "pred" / f"sub-{k:02d}.nii.gz")
        write_volume(Volume(ref, affine), tmp_path / "ref" / f"sub-{k:02d}.nii.gz")
    write_volume(Volume(pred, affine), tmp_path / "pred" / "sub-99.nii.gz")
    return tmp_path / "pred", tmp_path / "ref"


def test_batch_over_folders_with_summary_and_volume_correlation(tmp_path):
    pred_dir, ref_dir = _write_cases(tmp_path)
    with pytest.warns(UserWarning, match="sub-99"):
        pairs = match_folders(pred_dir, ref_dir)
    assert pairs["subject"].tolist() == ["sub-00", "sub-01", "sub-02", "sub-03"]
    table, failures = evaluate_pairs(pairs, show_progress=False)
    assert failures == {} and table["subject"].nunique() == 4
    summary = summarize_evaluation(table).set_index("name")
    label1 = table[table.label_id == 1]
    expected_r = np.corrcoef(label1.volume_pred_ml, label1.volume_ref_ml)[0, 1]
    assert summary.loc["label_1", "volume_correlation_r"] == pytest.approx(expected_r)
    assert summary.loc["label_1", "dice_mean"] == pytest.approx(label1.dice.mean())
    assert summary.loc["label_1", "dice_se"] == pytest.approx(label1.dice.std(ddof=1) / 2)
    assert summary.loc["label_1", "n_cases"] == 4


def test_grid_mismatch_raises_for_one_pair_and_is_skipped_in_batch(tmp_path):
    pred_dir, ref_dir = _write_cases(tmp_path, n=3)
    shifted = Volume(np.zeros((12, 12, 6), np.uint8), np.diag([0.8, 0.8, 2.5, 1.0]))
    write_volume(shifted, pred_dir / "sub-01.nii.gz")
    with pytest.raises(GeometryMismatchError, match="sub-01.nii.gz"):
        evaluate_files(pred_dir / "sub-01.nii.gz", ref_dir / "sub-01.nii.gz")
    with pytest.warns(UserWarning):
        pairs = match_folders(pred_dir, ref_dir)
    table, failures = evaluate_pairs(pairs, show_progress=False)
    assert list(failures) == ["sub-01"] and "same voxel grid" in failures["sub-01"]
    assert sorted(table["subject"].unique()) == ["sub-00", "sub-02"]


def test_pairs_csv_relative_paths_and_errors(tmp_path):
    pred_dir, ref_dir = _write_cases(tmp_path, n=2)
    (tmp_path / "pairs.csv").write_text("subject,pred,ref\na,pred/sub-00.nii.gz,ref/sub-00.nii.gz\n"
                                        "b,pred/missing.nii.gz,ref/sub-01.nii.gz\n")
    pairs = read_pairs_csv(tmp_path / "pairs.csv")
    assert pairs.loc[0, "pred"] == (tmp_path / "pred" / "sub-00.nii.gz").resolve()
    table, failures = evaluate_pairs(pairs, show_progress=False)
    assert list(failures) == ["b"] and "missing.nii.gz" in failures["b"]
    (tmp_path / "bad.csv").write_text("case,seg\nx,y\n")
    with pytest.raises(InputError, match="expected columns subject, pred, ref"):
        read_pairs_csv(tmp_path / "bad.csv")


# --------------------------------------------------------------------------- CLI


def test_cli_single_pair_on_totalseg(tmp_path, totalseg_dir, totalseg_table):
    out = tmp_path / "metrics.csv"
    code = main(["evaluate", "--pred", str(totalseg_dir / "example_seg_fast.nii.gz"),
                 "--ref", str(totalseg_dir / "example_seg.nii.gz"), "-o", str(out),
                 "--summary", str(tmp_path / "summary.csv"), "-q"])
    assert code == 0
    written = read_table(out).set_index("label_id")
    np.testing.assert_allclose(written["hd95_mm"], totalseg_table["hd95_mm"], equal_nan=True)
    assert {"volume_ref_ml", "ravd_pct", "assd_mm", "in_ref"} <= set(written.columns)
    assert read_table(tmp_path / "summary.csv")["name"].iloc[-1] == "all_labels"


def test_cli_batch_writes_summary_and_returns_1_on_partial_failure(tmp_path, capsys):
    pred_dir, ref_dir = _write_cases(tmp_path, n=3)
    (pred_dir / "sub-02.nii.gz").write_bytes(b"not an image")
    out = tmp_path / "out" / "metrics.tsv"
    code = main(["evaluate", "--pred", str(pred_dir), "--ref", str(ref_dir), "-o", str(out), "-q"])
    assert code == 1
    err = capsys.readouterr().err
    assert "sub-02: skipped: sub-02.nii.gz: cannot read" in err
    # the unpaired file is reported in one plain line (it was "evaluate.py:103: UserWarning: ..."
    # followed by a line of source code)
    assert f"myoscan: warning: 1 image(s) in {pred_dir} have no counterpart and are left out: sub-99\n" in err
    assert "UserWarning" not in err and ".py:" not in err
    assert sorted(read_table(out)["subject"].unique()) == ["sub-00", "sub-01"]
    summary = read_table(tmp_path / "out" / "metrics_summary.tsv")
    assert {"dice_mean", "dice_se", "hd95_mm_mean", "volume_correlation_r"} <= set(summary.columns)


def test_cli_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    write_volume(Volume(np.full((3, 3, 3), 0.5, np.float32), affine), tmp_path / "prob.nii.gz")
    write_volume(Volume(np.zeros((3, 3, 3), np.uint8), affine), tmp_path / "ref.nii.gz")
    write_volume(Volume(np.zeros((3, 3, 4), np.uint8), affine), tmp_path / "other.nii.gz")
    out = tmp_path / "m.csv"
    assert main(["evaluate", "--pred", str(tmp_path / "prob.nii.gz"), "--ref", str(tmp_path / "ref.nii.gz"),
                 "-o", str(out)]) == 2
    assert "prob.nii.gz: label image has non-integer values" in capsys.readouterr().err
    assert main(["evaluate", "--pred", str(tmp_path / "other.nii.gz"), "--ref", str(tmp_path / "ref.nii.gz"),
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "other.nii.gz and ref.nii.gz are not on the same voxel grid" in err and len(err.splitlines()) == 1
    assert main(["evaluate", "--pred", str(tmp_path), "--ref", str(tmp_path / "ref.nii.gz"),
                 "-o", str(out)]) == 2
    assert not out.exists()  # nothing half-written


def test_cli_scheme_names_labels(tmp_path, totalseg_dir, capsys):
    out = tmp_path / "named.csv"
    assert main(["evaluate", "--pred", str(totalseg_dir / "example_seg_fast.nii.gz"),
                 "--ref", str(totalseg_dir / "example_seg.nii.gz"), "-o", str(out), "--scheme", "ts_total",
                 "--labels", "1,2,86", "--no-distances"]) == 0
    names = read_table(out).set_index("label_id")["name"].to_dict()
    assert names == {1: "spleen", 2: "kidney_right", 86: "erector_spinae_left"}
    assert main(["evaluate", "--pred", str(totalseg_dir / "example_seg_fast.nii.gz"),
                 "--ref", str(totalseg_dir / "example_seg.nii.gz"), "-o", str(out), "--scheme", "leg",
                 "--no-distances"]) == 0
    assert "are not in scheme leg" in capsys.readouterr().err
    assert main(["evaluate", "--pred", str(totalseg_dir / "example_seg_fast.nii.gz"),
                 "--ref", str(totalseg_dir / "example_seg.nii.gz"), "-o", str(out), "--scheme", "nope"]) == 2
    assert "unknown label scheme 'nope'" in capsys.readouterr().err


def test_docstring_examples_run():
    import doctest

    import myoscan.evaluate as module

    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted >= 8


def test_cli_bad_summary_path_writes_neither_table(tmp_path, capsys):
    pred_dir, ref_dir = _write_cases(tmp_path, n=3)
    out = tmp_path / "metrics.csv"
    code = main(["evaluate", "--pred", str(pred_dir), "--ref", str(ref_dir), "-o", str(out),
                 "--summary", str(tmp_path / "table4.xlsx"), "--no-distances", "-q"])
    assert code == 2
    assert "xlsx" in capsys.readouterr().err
    assert not out.exists()  # the per-case table and the summary appear together or not at all


def test_requested_labels_in_neither_image_are_reported(tmp_path, capsys):
    pred, ref = _cube_pair(axis=0)
    with pytest.warns(UserWarning, match=r"label id\(s\) 9 of the requested labels are in neither image"):
        table = evaluate_segmentation(pred, ref, SPACING, config=EvaluateConfig(labels=(1, 9)))
    assert table["label_id"].tolist() == [1]
    # one pair where no requested label exists: an error, not an empty table with exit 0
    affine = np.diag([*SPACING, 1.0])
    write_volume(Volume(pred.astype(np.uint8), affine), tmp_path / "pred.nii.gz")
    write_volume(Volume(ref.astype(np.uint8), affine), tmp_path / "ref.nii.gz")
    out = tmp_path / "m.csv"
    code = main(["evaluate", "--pred", str(tmp_path / "pred.nii.gz"), "--ref", str(tmp_path / "ref.nii.gz"),
                 "--labels", "99", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "pred.nii.gz and ref.nii.gz: none of the labels 99 occurs in either image" in err
    assert "myoscan: warning: label id(s) 99 of the requested labels are in neither image; skipped" in err
