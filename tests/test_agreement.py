"""Tests of myoscan.agreement and ``myoscan agreement``.

Worked examples from the statistics literature:

* Shrout PE, Fleiss JL. Intraclass correlations: uses in assessing rater reliability.
  Psychol Bull 1979;86:420-428, Table 2: 6 targets rated by 4 judges. The paper gives
  ICC(1,1) = .17, ICC(2,1) = .29, ICC(3,1) = .71, ICC(1,4) = .44, ICC(2,4) = .62,
  ICC(3,4) = .91 and the ANOVA mean squares BMS 11.24, WMS 6.26, JMS 32.49, EMS 1.02.
  The 95 % confidence limits and p values are those R's psych::ICC prints for the same
  data (an independent implementation; psych's help page uses this example).
* Bland JM, Altman DG. Statistical methods for assessing agreement between two methods
  of clinical measurement. Lancet 1986;i:307-310, Table 1: peak expiratory flow rate
  (l/min) of 17 subjects, first reading with the Wright and the mini Wright meter.
  The paper gives mean difference -2.1, SD 38.8, limits (2 SD) -79.7 to 75.5, 95 % CI of
  the bias -22.0 to 17.8 (SE 9.4, t = 2.12), of the lower limit -114.3 to -45.1 and of
  the upper limit 40.9 to 110.1 (SE 16.3), and r = 0.94.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from myoscan.agreement import (
    agreement_figure,
    agreement_stats,
    agreement_table,
    bland_altman,
    icc_table,
    measure_unit,
    pair_measurements,
    save_figure,
)
from myoscan.cli import main
from myoscan.errors import InputError
from myoscan.outputs import read_table

SHROUT_FLEISS = np.array([
    [9, 2, 5, 8],
    [6, 1, 3, 2],
    [8, 4, 6, 8],
    [7, 1, 2, 6],
    [10, 5, 6, 9],
    [6, 2, 4, 7],
], dtype=float)

WRIGHT = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
MINI_WRIGHT = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]


# --------------------------------------------------------------------------- worked examples


def test_icc_reproduces_shrout_fleiss_1979_table_2():
    table = icc_table(SHROUT_FLEISS)
    published = {"icc1_1": 0.17, "icc2_1": 0.29, "icc3_1": 0.71,
                 "icc1_k": 0.44, "icc2_k": 0.62, "icc3_k": 0.91}
    for form, value in published.items():
        assert table.loc[form, "icc"] == pytest.approx(value, abs=0.005), form
    # F tests from the mean squares: BMS / WMS (one-way) and BMS / EMS (two-way).
    assert table.loc["icc1_1", "f"] == pytest.approx(11.24 / 6.26, abs=0.01)
    assert table.loc["icc2_1", "f"] == pytest.approx(11.24 / 1.02, abs=0.1)
    assert table.loc["icc2_1", ["df1", "df2"]].tolist() == [5, 15]
    assert table.loc["icc1_1", ["df1", "df2"]].tolist() == [5, 18]


def test_icc_confidence_limits_match_r_psych():
    table = icc_table(SHROUT_FLEISS)
    lower = {"icc1_1": -0.133, "icc2_1": 0.019, "icc3_1": 0.342, "icc1_k": -0.884, "icc2_k": 0.071,
             "icc3_k": 0.676}
    upper = {"icc1_1": 0.72, "icc2_1": 0.76, "icc3_1": 0.95, "icc1_k": 0.91, "icc2_k": 0.93, "icc3_k": 0.99}
    for form in lower:
        assert table.loc[form, "ci95_low"] == pytest.approx(lower[form], abs=0.0005), form
        assert table.loc[form, "ci95_high"] == pytest.approx(upper[form], abs=0.005), form
    assert table.loc["icc1_1", "p"] == pytest.approx(0.16477, abs=5e-6)
    assert table.loc["icc2_1", "p"] == pytest.approx(0.00013, abs=5e-6)


def test_bland_altman_reproduces_the_lancet_1986_example():
    ba = bland_altman(WRIGHT, MINI_WRIGHT, sd_multiplier=2.0)  # the paper used 2 SD
    assert ba.n_pairs == 17
    assert ba.bias == pytest.approx(-2.1, abs=0.05)
    assert ba.sd_diff == pytest.approx(38.8, abs=0.05)
    # The paper derives the rest from the rounded -2.1 and 38.8, hence the tolerances.
    assert (ba.loa_lower, ba.loa_upper) == (pytest.approx(-79.7, abs=0.1), pytest.approx(75.5, abs=0.1))
    assert ba.bias_ci95_low == pytest.approx(-22.0, abs=0.1)
    assert ba.bias_ci95_high == pytest.approx(17.8, abs=0.1)
    assert ba.loa_lower_ci95_low == pytest.approx(-114.3, abs=0.2)
    assert ba.loa_lower_ci95_high == pytest.approx(-45.1, abs=0.2)
    assert ba.loa_upper_ci95_low == pytest.approx(40.9, abs=0.2)
    assert ba.loa_upper_ci95_high == pytest.approx(110.1, abs=0.2)
    stats = agreement_stats(WRIGHT, MINI_WRIGHT)
    assert stats["pearson_r"] == pytest.approx(0.94, abs=0.005)
    # The default 1.96 SD limits (seed 002).
    assert stats["loa_upper"] - stats["loa_lower"] == pytest.approx(2 * 1.96 * ba.sd_diff)


# --------------------------------------------------------------------------- statistics by hand


def test_agreement_stats_against_direct_formulas():
    rng = np.random.default_rng(7)
    b = rng.uniform(50, 150, 25)
    a = 1.2 * b + rng.normal(0, 3, 25)
    s = agreement_stats(a, b)
    diff = a - b
    assert s["n_pairs"] == 25
    assert s["mae"] == pytest.approx(np.mean(np.abs(diff)))
    assert s["rmse"] == pytest.approx(np.sqrt(np.mean(diff**2)))
    assert s["mean_a"] == pytest.approx(a.mean())
    assert s["se_b"] == pytest.approx(b.std(ddof=1) / 5)
    assert s["pearson_r"] == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert s["r2"] == pytest.approx(np.corrcoef(a, b)[0, 1] ** 2)
    beta = np.linalg.lstsq(a[:, None], b, rcond=None)[0][0]
    assert s["slope_origin"] == pytest.approx(beta)
    assert s["slope_origin_ci95_low"] < beta < s["slope_origin_ci95_high"]
    slope, intercept = np.polyfit((a + b) / 2, diff, 1)
    assert s["prop_bias_slope"] == pytest.approx(slope)
    assert s["prop_bias_intercept"] == pytest.approx(intercept)
    assert s["prop_bias_p"] < 0.01  # a = 1.2 b: the difference grows with the mean (seed 000)
    assert s["icc2_1"] == pytest.approx(icc_table(np.column_stack([a, b])).loc["icc2_1", "icc"])


def test_proportional_bias_is_exact_for_a_pure_scale_error():
    b = np.array([10.0, 20.0, 30.0, 40.0])
    ba = bland_altman(1.2 * b, b)
    assert ba.prop_bias_slope == pytest.approx(0.2 / 1.1)
    assert ba.prop_bias_intercept == pytest.approx(0.0, abs=1e-12)


def test_constant_data_give_nan_not_errors():
    s = agreement_stats([5.0, 5.0, 5.0], [5.0, 5.0, 5.0])
    assert s["bias"] == 0.0 and s["mae"] == 0.0
    assert np.isnan(s["pearson_r"]) and np.isnan(s["prop_bias_slope"])


@pytest.mark.parametrize("n", [0, 2], ids=["none", "two"])
def test_fewer_than_three_pairs_raise(n):
    with pytest.raises(InputError, match="at least 3 paired cases"):
        agreement_stats(np.arange(n, dtype=float), np.arange(n, dtype=float))
    with pytest.raises(InputError, match="at least 3 cases"):
        icc_table(np.ones((n, 2)))


def test_icc_rejects_missing_ratings():
    ratings = SHROUT_FLEISS.copy()
    ratings[0, 0] = np.nan
    with pytest.raises(InputError, match="every case rated by every rater"):
        icc_table(ratings)


def test_measure_units():
    measures = ("volume_ml", "imf_pct", "mean_hu", "smi_cm2_m2", "mass_g", "pa_ratio")
    assert [measure_unit(m) for m in measures] == ["ml", "%", "HU", "cm²/m²", "g", ""]


# --------------------------------------------------------------------------- tables


def _tables(n_subjects=8, seed=3):
    """CNN and ground-truth per-label tables (2 labels, volume and IMF) as quantify writes them."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        for label_id, name, base in ((1, "soleus_left", 300.0), (2, "soleus_right", 310.0)):
            rows.append({"subject": f"sub-{s:02d}", "label_id": label_id, "name": name,
                         "volume_ml": base + rng.normal(0, 40), "imf_pct": 8 + rng.normal(0, 2)})
    gt = pd.DataFrame(rows)
    cnn = gt.assign(volume_ml=gt.volume_ml * 1.03 + rng.normal(0, 5, len(gt)),
                    imf_pct=gt.imf_pct + 0.5 + rng.normal(0, 0.3, len(gt)))
    return cnn, gt


def test_agreement_table_per_label_and_measure():
    cnn, gt = _tables()
    result = agreement_table({"cnn": cnn, "gt": gt}, measures=["volume_ml", "imf_pct"])
    assert result[["label_id", "name", "measure", "unit"]].values.tolist() == [
        [1, "soleus_left", "volume_ml", "ml"], [2, "soleus_right", "volume_ml", "ml"],
        [1, "soleus_left", "imf_pct", "%"], [2, "soleus_right", "imf_pct", "%"]]
    row = result.iloc[2]
    a = cnn.loc[cnn.label_id == 1, "imf_pct"].to_numpy()
    b = gt.loc[gt.label_id == 1, "imf_pct"].to_numpy()
    expected = agreement_stats(a, b)
    for column in ("n_pairs", "bias", "loa_upper", "rmse", "icc2_1", "icc2_1_ci95_low", "icc2_1_p",
                   "slope_origin"):
        assert row[column] == pytest.approx(expected[column]), column
    assert row["raters"] == "cnn|gt"


def test_missing_subjects_are_reported_and_the_rest_compared():
    cnn, gt = _tables()
    cnn = cnn[cnn.subject != "sub-03"]
    gt = gt[~((gt.subject == "sub-05") & (gt.label_id == 2))]
    with pytest.warns(UserWarning, match=r"cnn: no rows for 1 subject .*sub-03"):
        result = agreement_table({"cnn": cnn, "gt": gt}, measures=["volume_ml"])
    assert result["n_pairs"].tolist() == [7, 6]


def test_too_few_pairs_empty_stats_or_error():
    cnn, gt = _tables(n_subjects=4)
    cnn = cnn[~((cnn.label_id == 2) & (cnn.subject.isin(["sub-00", "sub-01"])))]
    with pytest.warns(UserWarning, match="fewer than 3 paired cases.*2/soleus_right volume_ml"):
        result = agreement_table({"cnn": cnn, "gt": gt}, measures=["volume_ml"])
    assert result.set_index("label_id").loc[2, "n_pairs"] == 2
    assert np.isnan(result.set_index("label_id").loc[2, "icc2_1"])
    with pytest.raises(InputError, match="no label has 3 or more paired cases"), pytest.warns(UserWarning):
        agreement_table({"cnn": cnn.iloc[:2], "gt": gt}, measures=["volume_ml"])


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda t: t.drop(columns="imf_pct"), "no column.*imf_pct"),
        (lambda t: t.assign(imf_pct="high"), "not numeric"),
        (lambda t: pd.concat([t, t.iloc[:1]]), "share their keys"),
        (lambda t: t.drop(columns=["label_id", "name"]), "no column 'label'"),
    ],
    ids=["missing-measure", "text-measure", "duplicate-rows", "no-label-column"],
)
def test_bad_tables_raise(mutate, match):
    cnn, gt = _tables()
    with pytest.raises(InputError, match=match):
        agreement_table({"cnn": mutate(cnn), "gt": gt}, measures=["imf_pct"], group_keys=("label",))


def test_interrater_reliability_with_four_raters_is_shrout_fleiss():
    tables = {
        f"judge{j + 1}": pd.DataFrame({"subject": [f"t{i}" for i in range(6)], "rating": SHROUT_FLEISS[:, j]})
        for j in range(4)
    }
    result = agreement_table(tables, measures=["rating"], group_keys=())
    row = result.iloc[0]
    assert row["n_pairs"] == 6 and row["raters"] == "judge1|judge2|judge3|judge4"
    assert row["icc2_1"] == pytest.approx(0.29, abs=0.005) and row["icc3_k"] == pytest.approx(0.91, abs=0.005)
    assert row["mean_1"] == pytest.approx(SHROUT_FLEISS[:, 0].mean())
    assert "bias" not in result.columns


# --------------------------------------------------------------------------- plots


def test_figures_have_a_panel_per_label_and_units(tmp_path):
    cnn, gt = _tables()
    paired = pair_measurements({"cnn": cnn, "gt": gt}, measures=["volume_ml", "imf_pct"])
    fig = agreement_figure(paired, "volume_ml", kind="bland_altman", a="cnn", b="gt")
    assert [ax.get_title() for ax in fig.axes] == ["soleus_left", "soleus_right"]
    assert fig.axes[0].get_xlabel() == "mean of cnn and gt (ml)"
    assert fig.axes[0].get_ylabel() == "cnn − gt (ml)"
    fig = agreement_figure(paired, "imf_pct", kind="correlation", a="cnn", b="gt")
    assert (fig.axes[1].get_xlabel(), fig.axes[1].get_ylabel()) == ("cnn (%)", "gt (%)")
    path = save_figure(fig, tmp_path / "plots" / "imf.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["imf.png"]  # no temporary left behind


# --------------------------------------------------------------------------- CLI


def test_cli_two_tables_with_plots(tmp_path):
    cnn, gt = _tables()
    cnn.to_csv(tmp_path / "cnn.csv", index=False)
    gt.to_csv(tmp_path / "gt.tsv", sep="\t", index=False)
    out = tmp_path / "agreement.csv"
    code = main(["agreement", "--a", str(tmp_path / "cnn.csv"), "--b", str(tmp_path / "gt.tsv"),
                 "--on", "subject,label", "--measure", "volume_ml", "imf_pct", "-o", str(out),
                 "--plots", str(tmp_path / "plots"), "-q"])
    assert code == 0
    result = read_table(out)
    assert len(result) == 4 and {"icc2_1", "icc2_1_ci95_low", "icc2_1_p", "loa_lower", "prop_bias_p",
                                 "mae", "rmse", "r2", "slope_origin"} <= set(result.columns)
    expected = agreement_table({"cnn": cnn, "gt": gt}, measures=["volume_ml", "imf_pct"])
    np.testing.assert_allclose(result["icc2_1"], expected["icc2_1"])
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "imf_pct_bland_altman.png", "imf_pct_correlation.png",
        "volume_ml_bland_altman.png", "volume_ml_correlation.png"]


def test_cli_raters_and_errors(tmp_path, capsys):
    for j in range(3):
        pd.DataFrame({"subject": [f"t{i}" for i in range(6)],
                      "score": SHROUT_FLEISS[:, j]}).to_csv(tmp_path / f"r{j}.csv", index=False)
    out = tmp_path / "icc.csv"
    assert main(["agreement", "--raters", *(str(tmp_path / f"r{j}.csv") for j in range(3)),
                 "--on", "subject", "--measure", "score", "-o", str(out), "-q"]) == 0
    expected = icc_table(SHROUT_FLEISS[:, :3]).loc["icc2_1", "icc"]
    assert read_table(out)["icc2_1"].iloc[0] == pytest.approx(expected)
    out2 = tmp_path / "none.csv"
    assert main(["agreement", "--a", str(tmp_path / "r0.csv"), "--b", str(tmp_path / "r1.csv"),
                 "--measure", "volume_ml", "-o", str(out2)]) == 2
    err = capsys.readouterr().err
    assert "r0: no column 'label'" in err and len(err.strip().splitlines()) == 1
    assert main(["agreement", "--a", str(tmp_path / "r0.csv"), "--on", "subject", "--measure", "score",
                 "-o", str(out2)]) == 2
    assert not out2.exists()


def test_docstring_examples_run():
    import doctest

    import myoscan.agreement as module

    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted >= 8


def test_missing_label_rows_of_a_present_subject_are_reported():
    cnn, gt = _tables()
    gt = gt[~((gt.subject == "sub-05") & (gt.label_id == 2))]  # the subject is there, one label is not
    with pytest.warns(UserWarning, match=r"gt: no rows for 1 label_id/subject .*2/sub-05"):
        result = agreement_table({"cnn": cnn, "gt": gt}, measures=["volume_ml"])
    assert result["n_pairs"].tolist() == [8, 7]


def test_non_numeric_measure_error_quotes_the_offending_value():
    cnn, gt = _tables()
    cnn = cnn.astype({"imf_pct": object})
    cnn.loc[cnn.index[3], "imf_pct"] = "n.d."
    with pytest.raises(InputError, match=r"'n\.d\.'"):
        agreement_table({"cnn": cnn, "gt": gt}, measures=["imf_pct"])


def test_measure_without_any_pair_is_reported_and_the_others_compared_and_plotted(tmp_path):
    cnn, gt = _tables()
    gt = gt.assign(imf_pct=np.nan)  # e.g. a CT reference: no IMF at all
    with pytest.warns(UserWarning, match="imf_pct: no case has a value in every table"):
        paired = pair_measurements({"cnn": cnn, "gt": gt}, measures=["volume_ml", "imf_pct"])
    assert set(paired["measure"]) == {"volume_ml"}
    cnn.to_csv(tmp_path / "cnn.csv", index=False)
    gt.to_csv(tmp_path / "gt.csv", index=False)
    out = tmp_path / "agreement.csv"
    code = main(["agreement", "--a", str(tmp_path / "cnn.csv"), "--b", str(tmp_path / "gt.csv"),
                 "--measure", "volume_ml", "imf_pct", "-o", str(out), "--plots", str(tmp_path / "plots"),
                 "-q"])
    assert code == 0
    assert set(read_table(out)["measure"]) == {"volume_ml"}
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "volume_ml_bland_altman.png", "volume_ml_correlation.png"]


def test_no_complete_pair_at_all_is_an_error_and_writes_nothing(tmp_path, capsys):
    cnn, gt = _tables()
    gt = gt.assign(imf_pct=np.nan)
    with pytest.raises(InputError, match="no case has a value"), pytest.warns(UserWarning):
        pair_measurements({"cnn": cnn, "gt": gt}, measures=["imf_pct"])
    cnn.to_csv(tmp_path / "cnn.csv", index=False)
    gt.to_csv(tmp_path / "gt.csv", index=False)
    out = tmp_path / "agreement.csv"
    assert main(["agreement", "--a", str(tmp_path / "cnn.csv"), "--b", str(tmp_path / "gt.csv"),
                 "--measure", "imf_pct", "-o", str(out), "-q"]) == 2
    assert not out.exists()


def test_cli_bad_plots_folder_writes_no_table(tmp_path, capsys):
    cnn, gt = _tables()
    cnn.to_csv(tmp_path / "cnn.csv", index=False)
    gt.to_csv(tmp_path / "gt.csv", index=False)
    (tmp_path / "plots").write_text("a file where the plots folder should be")
    out = tmp_path / "agreement.csv"
    assert main(["agreement", "--a", str(tmp_path / "cnn.csv"), "--b", str(tmp_path / "gt.csv"),
                 "--measure", "volume_ml", "-o", str(out), "--plots", str(tmp_path / "plots"), "-q"]) == 2
    assert "plots" in capsys.readouterr().err
    assert not out.exists()


def test_cli_missing_subjects_are_reported_in_one_plain_line(tmp_path, capsys):
    cnn, gt = _tables()
    cnn[cnn["subject"] != cnn["subject"].iloc[0]].to_csv(tmp_path / "cnn.csv", index=False)
    gt.to_csv(tmp_path / "gt.csv", index=False)
    code = main(["agreement", "--a", str(tmp_path / "cnn.csv"), "--b", str(tmp_path / "gt.csv"),
                 "--measure", "volume_ml", "-o", str(tmp_path / "out.csv"), "-q"])
    assert code == 0
    err = capsys.readouterr().err
    # it was "agreement.py:84: UserWarning: cnn: ..." followed by a line of source code
    first = gt["subject"].iloc[0]
    assert err.startswith(f"myoscan: warning: cnn: no rows for 1 subject present in another table ({first})")
    assert len(err.strip().splitlines()) == 1 and "UserWarning" not in err


def test_cli_empty_or_header_only_table_is_a_one_line_error(tmp_path, capsys):
    cnn, gt = _tables()
    gt.to_csv(tmp_path / "gt.csv", index=False)
    (tmp_path / "empty.csv").write_text("")
    gt.head(0).to_csv(tmp_path / "header.csv", index=False)
    expected = {"empty.csv": "empty.csv: cannot read table",  # was a csv.Error traceback
                "header.csv": "header: no rows"}  # was an IndexError traceback
    for name, message in expected.items():
        out = tmp_path / "out.csv"
        code = main(["agreement", "--a", str(tmp_path / name), "--b", str(tmp_path / "gt.csv"),
                     "--measure", "volume_ml", "-o", str(out), "-q"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()


def test_cli_same_table_twice_is_named(tmp_path, capsys):
    cnn, _ = _tables()
    cnn.to_csv(tmp_path / "cnn.csv", index=False)
    code = main(["agreement", "--a", str(tmp_path / "cnn.csv"), "--b", str(tmp_path / "cnn.csv"),
                 "--measure", "volume_ml", "-o", str(tmp_path / "out.csv"), "-q"])
    err = capsys.readouterr().err
    # it said "agreement needs at least 2 tables, got 1"
    assert code == 2 and "cnn.csv is given more than once" in err


def test_key_columns_read_as_float_match_and_missing_keys_are_named():
    cnn, gt = _tables()
    # an id column read as float (1.0) matches the int one: only the really missing row is reported
    # (every row was reported missing, "1.0" != "1")
    gt_float = gt.assign(label_id=gt["label_id"].astype(float)).iloc[1:]
    with pytest.warns(UserWarning) as caught:
        result = agreement_table({"cnn": cnn, "gt": gt_float}, measures=["volume_ml"])
    assert [str(w.message) for w in caught] == [
        "gt: no rows for 1 label_id/subject present in another table (1/sub-00); they are left out"]
    assert result["n_pairs"].tolist() == [7, 8]
    # a row without a key value was a TypeError traceback (sorting float NaN with text)
    extra = pd.DataFrame([{"subject": "sub-00", "label_id": np.nan, "name": "total", "volume_ml": 900.0,
                           "imf_pct": 5.0}])
    with pytest.raises(InputError, match=r"gt: 1 row\(s\) have no label_id to match on \(e.g. row 17\)"):
        agreement_table({"cnn": cnn, "gt": pd.concat([gt, extra], ignore_index=True)}, measures=["volume_ml"])
