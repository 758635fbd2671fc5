"""Tests of myoscan.cohort: equal to statsmodels/pingouin/scipy on the same data, known effects recovered."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
import statsmodels.api as sm
from scipy import stats

from myoscan.cli import main
from myoscan.cohort import (
    AgeStrata,
    age_strata,
    age_trend,
    ancova,
    average_sides,
    cochran_armitage,
    correlate,
    decline_per_decade,
    encode_covariates,
    estimated_marginal_means,
    fisher_z_ci,
    hierarchical_regression,
    join_participants,
    logistic_regression,
    partial_correlations,
    partial_residuals,
    profile_likelihood_ci,
    read_cohort_table,
    regress,
    repeated_measures_ancova,
    strata_summary,
    table2,
    tertiles,
)
from myoscan.cohort.simulate import SimulationConfig, simulate_cohort
from myoscan.errors import InputError

TRUE = SimulationConfig()
#: Estimates must lie within this many standard errors of the truth (a seeded draw).
WITHIN_SE = 3.5
pytestmark = pytest.mark.filterwarnings("ignore:.*inplace keyword:DeprecationWarning")


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(1500, seed=11)


@pytest.fixture(scope="module")
def long_table(cohort):
    table, _ = join_participants(cohort.metrics, cohort.participants)
    return table


@pytest.fixture(scope="module")
def wide_table(cohort):
    table, _ = join_participants(cohort.regional, cohort.participants)
    return table


def _design(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    data = rows[columns].copy()
    if "sex" in data:
        data["sex"] = (data["sex"] == "M").astype(float)
    return data


# ------------------------------------------------------------------ input and join


def test_join_strips_bids_prefix_and_reports_unmatched_ids():
    metrics = pd.DataFrame({"subject": ["sub-01", "sub-02", "sub-03"], "tmv_cm3": [1.0, 2.0, 3.0]})
    participants = pd.DataFrame({"participant_id": ["01", "02", "04"], "age": [50, 60, 70]})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        table, report = join_participants(metrics, participants)
    assert [str(w.message) for w in record] == [
        "1 subject(s) of metrics table are not in participants table and are left out: sub-03",
        "1 subject(s) of participants table have no metrics in metrics table: 04",
    ]
    assert table["subject"].tolist() == ["sub-01", "sub-02"]
    assert table["age"].tolist() == [50, 60]
    assert (report.n_matched, report.metrics_only, report.participants_only) == (2, ("sub-03",), ("04",))


def test_join_lists_at_most_ten_ids():
    metrics = pd.DataFrame({"subject": [f"sub-{i:02d}" for i in range(30)], "v": 1.0})
    participants = pd.DataFrame({"participant_id": ["sub-00"], "age": [1]})
    with pytest.warns(UserWarning, match=r"29 subject.*\(and 19 more\)"):
        join_participants(metrics, participants)


@pytest.mark.parametrize(
    ("metrics", "participants", "match"),
    [
        (pd.DataFrame({"id": ["a"]}), None, "no subject id column"),
        (pd.DataFrame({"subject": ["a"]}), pd.DataFrame({"participant_id": ["b"]}), "matches"),
        (pd.DataFrame({"subject": ["a"]}), pd.DataFrame({"subject": ["a", "sub-a"]}), "repeat"),
        (pd.DataFrame({"subject": ["a", "a"], "session": ["1", "2"]}), None, "pass --session"),
    ],
    ids=["no-id-column", "no-match", "repeated-participant", "repeated-subject"],
)
def test_join_errors(metrics, participants, match):
    with pytest.raises(InputError, match=match):
        join_participants(metrics, participants)


def test_join_selects_session_and_prefers_participant_columns():
    metrics = pd.DataFrame(
        {"subject": ["sub-1", "sub-1"], "session": ["ses-a", "ses-b"], "v": [1.0, 2.0], "age": [0, 0]}
    )
    table, _ = join_participants(
        metrics, pd.DataFrame({"participant_id": ["sub-1"], "age": [40]}), session="b"
    )
    assert table[["v", "age"]].values.tolist() == [[2.0, 40]]


def test_read_keeps_leading_zeros_and_bids_missing(tmp_path):
    path = tmp_path / "participants.tsv"
    path.write_text("participant_id\tage\tsex\n001\t41\tF\n002\tn/a\tM\n")
    table = read_cohort_table(path)
    assert table["participant_id"].tolist() == ["001", "002"]
    assert np.isnan(table["age"].iloc[1])


def test_covariate_encoding_and_errors():
    table = pd.DataFrame({"age": [40, 50, 60], "sex": ["female", "1", "m"], "site": ["b", "a", "c"]})
    design = encode_covariates(table, ["age", "sex", "site"], source="p.tsv")
    assert design.to_dict("list") == {
        "age": [40.0, 50.0, 60.0],
        "sex": [0.0, 1.0, 1.0],
        "site[b]": [1.0, 0.0, 0.0],
        "site[c]": [0.0, 0.0, 1.0],
    }
    with pytest.raises(InputError, match=r"unknown covariate 'agee' \(did you mean 'age'\?\)"):
        encode_covariates(table, ["agee"], source="p.tsv")
    with pytest.raises(InputError, match="unknown sex code"):
        encode_covariates(pd.DataFrame({"sex": ["M", "x"]}), ["sex"], source="p.tsv")
    bad = pd.DataFrame({"bmi": ["22.5", "twenty", "24"]})
    with pytest.raises(InputError, match=r"'bmi' must be numeric .* 'twenty'"):
        encode_covariates(bad, ["bmi"], source="p.tsv")


def test_too_few_subjects_skips_unchosen_label_and_raises_for_chosen(long_table):
    table = pd.concat([long_table, long_table.iloc[:3].assign(name="rare_left")], ignore_index=True)
    with pytest.warns(UserWarning, match="1 label.* skipped .*rare_left"):
        result = regress(table, "volume_ml", ["age", "bmi", "sex"])
    assert "rare_left" not in set(result["name"])
    with pytest.raises(InputError, match="rare_left: 3 subject.*need at least 6"):
        regress(table, "volume_ml", ["age", "bmi", "sex"], labels=["rare_left"])
    with pytest.raises(InputError, match="unknown label 'nope'"):
        regress(table, "volume_ml", ["age"], labels=["nope"])


# ------------------------------------------------------------------ linear models (seed 000)


def test_regress_equals_statsmodels(long_table):
    result = regress(long_table, "volume_ml", ["age", "bmi", "sex"], labels=["soleus_left"])
    rows = long_table[long_table["name"] == "soleus_left"]
    x = _design(rows, ["age", "bmi", "sex"])
    fit = sm.OLS(rows["volume_ml"], sm.add_constant(x)).fit()
    z = (x - x.mean()) / x.std()
    zy = (rows["volume_ml"] - rows["volume_ml"].mean()) / rows["volume_ml"].std()
    std = sm.OLS(zy, sm.add_constant(z)).fit()
    got = result.set_index("term")
    for term in ("age", "bmi", "sex"):
        assert got.loc[term, "coef"] == pytest.approx(fit.params[term], rel=1e-10)
        assert got.loc[term, "coef_se"] == pytest.approx(fit.bse[term], rel=1e-10)
        assert got.loc[term, "p"] == pytest.approx(fit.pvalues[term], rel=1e-8)
        assert got.loc[term, "beta_std"] == pytest.approx(std.params[term], rel=1e-10)
        assert got.loc[term, "beta_std_se"] == pytest.approx(std.bse[term], rel=1e-10)
        # standardized beta is the raw slope rescaled by SD(x) / SD(y)
        assert got.loc[term, "beta_std"] == pytest.approx(
            fit.params[term] * x[term].std() / rows["volume_ml"].std(), rel=1e-10
        )
    row = got.iloc[0]
    assert (row["f"], row["f_p"], row["r2"]) == pytest.approx(
        (fit.fvalue, fit.f_pvalue, fit.rsquared), rel=1e-10
    )
    assert row["shapiro_w"] == pytest.approx(stats.shapiro(fit.resid).statistic, rel=1e-12)
    bp = sm.stats.diagnostic.het_breuschpagan(fit.resid, fit.model.exog)
    assert (row["breusch_pagan_lm"], row["breusch_pagan_p"]) == pytest.approx(bp[:2], rel=1e-10)


def test_regress_recovers_known_imf_effects(long_table):
    result = regress(long_table, "imf_pct", ["age", "bmi", "sex"])
    truth = {"age": TRUE.imf_pct_per_year, "bmi": TRUE.imf_pct_per_bmi, "sex": TRUE.imf_pct_male}
    errors = (result["coef"] - result["term"].map(truth)) / result["coef_se"]
    assert errors.abs().max() < WITHIN_SE
    assert len(result) == 6 * 3 and (result["p"] < 1e-10).all()


def test_table2_layout(long_table):
    wide = table2(regress(long_table, "imf_pct", ["age", "bmi", "sex"]))
    assert len(wide) == 6
    assert list(wide.columns[:5]) == ["name", "outcome", "age_beta_std", "age_beta_std_se", "age_p"]
    assert {"f", "f_p", "r2", "shapiro_p", "breusch_pagan_p"} <= set(wide.columns)


def test_partial_correlation_equals_pingouin_and_residual_correlation(long_table):
    result = partial_correlations(
        long_table, "imf_pct", ["age", "bmi", "sex"], labels=["gastrocnemius_right"]
    )
    assert result["variable"].tolist() == ["age", "bmi"]  # sex has two values: not continuous
    rows = long_table[long_table["name"] == "gastrocnemius_right"]
    data = _design(rows, ["age", "bmi", "sex"]).assign(imf_pct=rows["imf_pct"])
    expected = pg.partial_corr(data=data, x="age", y="imf_pct", covar=["bmi", "sex"])
    got = result.iloc[0]
    assert got["r"] == pytest.approx(expected["r"].iloc[0], rel=1e-10)
    assert got["p"] == pytest.approx(expected["p_val"].iloc[0], rel=1e-8)
    assert (got["r_ci_low"], got["r_ci_high"]) == pytest.approx(tuple(expected["CI95"].iloc[0]), abs=1e-6)
    residuals = partial_residuals(rows, "imf_pct", ["age", "bmi", "sex"], "age")
    assert np.corrcoef(residuals.T.to_numpy())[0, 1] == pytest.approx(got["r"], rel=1e-10)


def test_marginal_means_are_predictions_at_covariate_means(long_table):
    rows = long_table[long_table["name"] == "soleus_right"]
    emm = estimated_marginal_means(rows, "imf_pct", ["age", "bmi", "sex"], "sex")
    x = _design(rows, ["age", "bmi", "sex"])
    fit = sm.OLS(rows["imf_pct"], sm.add_constant(x)).fit()
    for level, male in (("female", 0.0), ("male", 1.0)):
        point = np.array([1.0, x["age"].mean(), x["bmi"].mean(), male])
        pred = fit.get_prediction(point[None, :]).summary_frame()
        row = emm.means.set_index("level").loc[level]
        assert row["imf_pct_emm"] == pytest.approx(pred["mean"].iloc[0], rel=1e-10)
        assert row["imf_pct_emm_se"] == pytest.approx(pred["mean_se"].iloc[0], rel=1e-10)
        assert row["n"] == int((x["sex"] == male).sum())
    contrast = emm.contrasts.iloc[0]
    assert contrast["imf_pct_difference"] == pytest.approx(-fit.params["sex"], rel=1e-10)
    assert contrast["p"] == pytest.approx(fit.pvalues["sex"], rel=1e-8)
    assert (
        abs(-contrast["imf_pct_difference"] - TRUE.imf_pct_male)
        < WITHIN_SE * contrast["imf_pct_difference_se"]
    )


def test_marginal_means_weight_other_factors_equally():
    rng = np.random.default_rng(0)
    t = pd.DataFrame(
        {
            "sex": rng.choice(["F", "M"], 80),
            "site": rng.choice(["a", "b", "c"], 80, p=[0.6, 0.3, 0.1]),
            "age": rng.normal(50, 5, 80),
        }
    )
    t["v_ml"] = 10 + 3 * (t["sex"] == "M") + t["site"].map({"a": 0, "b": 2, "c": 5}) + rng.normal(0, 1, 80)
    means = estimated_marginal_means(t, "v_ml", ["age", "sex", "site"], "sex").means
    x = encode_covariates(t, ["age", "sex", "site"], source="t")
    fit = sm.OLS(t["v_ml"], sm.add_constant(x)).fit()
    point = np.array([1.0, x["age"].mean(), 0.0, 1 / 3, 1 / 3])  # site b and c at 1/3 each
    assert means["v_ml_emm"].iloc[0] == pytest.approx(float(fit.params @ point), rel=1e-10)
    with pytest.raises(InputError, match="numeric"):
        estimated_marginal_means(t, "v_ml", ["age", "sex"], "age")


def test_interaction_term_equals_statsmodels_formula():
    # seed 003: SMM = b0 + b1 BMI + b2 sex + b3 sex x BMI
    rng = np.random.default_rng(1)
    t = pd.DataFrame({"sex": rng.choice(["M", "F"], 200), "bmi": rng.normal(26, 4, 200)})
    male = t["sex"] == "M"
    t["smm_kg_m2"] = 20 + 5 * male + 0.3 * t["bmi"] + 0.2 * male * t["bmi"] + rng.normal(0, 1, 200)
    result = regress(t, "smm_kg_m2", ["bmi", "sex", "sex:bmi"]).set_index("term")
    fit = sm.OLS.from_formula("smm_kg_m2 ~ bmi * C(sex, Treatment('F'))", t).fit()
    assert result.loc["sex:bmi", "coef"] == pytest.approx(fit.params.iloc[3], rel=1e-10)
    assert result.loc["sex:bmi", "p"] == pytest.approx(fit.pvalues.iloc[3], rel=1e-8)
    means = estimated_marginal_means(t, "smm_kg_m2", ["bmi", "sex", "sex:bmi"], "sex").means
    at_mean_bmi = fit.params.iloc[1] + (fit.params.iloc[2] + fit.params.iloc[3]) * t["bmi"].mean()
    assert means["smm_kg_m2_emm"].iloc[1] == pytest.approx(fit.params.iloc[0] + at_mean_bmi, rel=1e-10)
    with pytest.raises(InputError, match="interaction 'site:bmi' needs numeric or two-level"):
        regress(t.assign(site=rng.choice(["a", "b", "c"], 200)), "smm_kg_m2", ["site:bmi"])


def test_hierarchical_equals_statsmodels_f_change_and_uses_side(long_table):
    result = hierarchical_regression(
        long_table,
        "plantarflexion_force_{side}_n",
        ["age", "bmi", "sex"],
        ["volume_ml", "imf_pct"],
        labels=["soleus_left", "soleus_right"],
    )
    assert (
        result["outcome"].tolist()
        == ["plantarflexion_force_left_n"] * 2 + ["plantarflexion_force_right_n"] * 2
    )
    rows = long_table[long_table["name"] == "soleus_right"]
    base = sm.add_constant(_design(rows, ["age", "bmi", "sex"]))
    reduced = sm.OLS(rows["plantarflexion_force_right_n"], base).fit()
    full = sm.OLS(rows["plantarflexion_force_right_n"], base.assign(volume_ml=rows["volume_ml"])).fit()
    table = sm.stats.anova_lm(reduced, full)
    got = result.iloc[2]
    assert got["f_change"] == pytest.approx(table["F"].iloc[1], rel=1e-10)
    assert got["p_change"] == pytest.approx(table["Pr(>F)"].iloc[1], rel=1e-8)
    assert got["delta_r2"] == pytest.approx(full.rsquared - reduced.rsquared, rel=1e-10)
    assert got["f_change"] == pytest.approx((full.tvalues["volume_ml"]) ** 2, rel=1e-8)
    # known effect: force depends on soleus volume, not on IMF
    assert (result.loc[result["added"] == "volume_ml", "p_change"] < 1e-10).all()
    assert (result.loc[result["added"] == "imf_pct", "delta_r2"] < 0.01).all()


def test_side_template_needs_a_side(wide_table):
    with pytest.raises(InputError, match="no left/right side"):
        hierarchical_regression(wide_table, "plantarflexion_force_{side}_n", ["age"], ["tmv_cm3"])


# ------------------------------------------------------------------ logistic (seed 001)


def test_tertiles_split_at_33rd_and_67th_percentiles():
    values = pd.Series([5.0, 1, 2, 3, 4, 6, np.nan, 7, 8, 9])
    groups, cuts = tertiles(values)
    assert cuts == pytest.approx(tuple(np.nanquantile(values, [1 / 3, 2 / 3])))
    assert groups.value_counts().to_dict() == {"low": 3, "middle": 3, "high": 3}
    assert pd.isna(groups.iloc[6])


def _budworm():
    """Collett's budworm data (R ?confint.glm, MASS) as one row per moth."""
    ldose = np.tile(np.arange(6.0), 2)
    dead = [1, 4, 9, 13, 18, 20, 0, 2, 6, 10, 12, 16]
    male = np.repeat([1.0, 0.0], 6)
    rows = [
        (d, m, y) for d, k, m in zip(ldose, dead, male, strict=True) for y in [1.0] * k + [0.0] * (20 - k)
    ]
    a = np.array(rows)
    return a[:, 2], np.c_[1 - a[:, 1], a[:, 1], a[:, 0]]


def test_profile_ci_matches_r_mass_confint():
    y, x = _budworm()
    # R: confint(glm(SF ~ sex + ldose - 1, family = binomial)) with MASS profiling
    expected = {0: (-4.4581438, -2.613610), 1: (-3.1728745, -1.655117), 2: (0.8228708, 1.3390581)}
    for column, bounds in expected.items():
        assert profile_likelihood_ci(y, x, column) == pytest.approx(bounds, abs=1e-4)


def test_profile_ci_bounds_are_likelihood_ratio_roots():
    y, x = _budworm()
    low, high = profile_likelihood_ci(y, x, 2)
    full = sm.GLM(y, x, family=sm.families.Binomial()).fit()
    for bound in (low, high):
        fixed = sm.GLM(y, x, family=sm.families.Binomial()).fit_constrained(f"x3 = {bound!r}")
        assert 2 * (full.llf - fixed.llf) == pytest.approx(stats.chi2.ppf(0.95, 1), abs=1e-6)


def test_profile_ci_differs_from_wald_only_where_it_should():
    rng = np.random.default_rng(7)
    # small sample, large OR: profile interval is asymmetric and shifted right of Wald
    exposure = np.arange(60.0)  # tertiles: 20 low, 20 middle, 20 high subjects
    y = np.r_[np.repeat([0.0, 1.0], [18, 2]), np.repeat([0.0, 1.0], [10, 10]), np.repeat([0.0, 1.0], [6, 14])]
    with pytest.warns(UserWarning, match="16 events .* fewer than 10 per parameter"):
        small = logistic_regression(pd.DataFrame({"e": exposure, "y": y}), "e", ["y"]).iloc[0]
    assert small["or"] == pytest.approx((14 / 6) / (2 / 18))  # the 2 x 2 odds ratio
    assert (small["events_high"], small["events_low"]) == (14, 2)
    assert small["or_ci_low"] / small["or_wald_ci_low"] > 1.05
    assert small["or_ci_high"] / small["or_wald_ci_high"] > 1.15
    # large sample, OR near 1: the two agree to within 1 %
    n = 4000
    e = rng.normal(size=n)
    big_y = (rng.random(n) < 1 / (1 + np.exp(-(-0.5 + 0.05 * e)))).astype(float)
    big = logistic_regression(pd.DataFrame({"e": e, "y": big_y}), "e", ["y"], use_tertiles=False).iloc[0]
    assert big["or_ci_low"] == pytest.approx(big["or_wald_ci_low"], rel=0.01)
    assert big["or_ci_high"] == pytest.approx(big["or_wald_ci_high"], rel=0.01)


def test_logistic_equals_statsmodels_and_recovers_known_or(wide_table):
    result = logistic_regression(wide_table, "pa_ratio", ["fall"], ["age", "sex", "bmi"]).iloc[0]
    groups, cuts = tertiles(wide_table["pa_ratio"])
    kept = wide_table[groups.isin(["low", "high"])]
    high = (groups[kept.index] == "high").astype(float)
    x = sm.add_constant(pd.concat([high.rename("high"), _design(kept, ["age", "sex", "bmi"])], axis=1))
    fit = sm.GLM(kept["fall"].astype(float), x, family=sm.families.Binomial()).fit()
    ci = np.exp(fit.conf_int().loc["high"])
    assert result["or"] == pytest.approx(np.exp(fit.params["high"]), rel=1e-8)
    assert (result["or_wald_ci_low"], result["or_wald_ci_high"]) == pytest.approx(tuple(ci), rel=1e-8)
    assert result["p"] == pytest.approx(fit.pvalues["high"], rel=1e-6)
    assert result["wald_chi2"] == pytest.approx(fit.tvalues["high"] ** 2, rel=1e-8)
    assert (result["pa_ratio_cut_low"], result["pa_ratio_cut_high"]) == pytest.approx(cuts)
    assert result["events_high"] == int(kept.loc[high == 1, "fall"].sum())
    assert result["events_low"] == int(kept.loc[high == 0, "fall"].sum())
    assert result["n_high"] + result["n_low"] == result["n"] == len(kept)
    assert abs(result["log_or"] - np.log(TRUE.fall_odds_ratio)) < WITHIN_SE * result["log_or_se"]


def test_logistic_recovers_known_or_over_replicate_cohorts():
    estimates = []
    for seed in range(100, 108):
        cohort = simulate_cohort(1500, seed=seed)
        table, _ = join_participants(cohort.regional, cohort.participants)
        estimates.append(logistic_regression(table, "pa_ratio", ["fall"], ["age", "sex", "bmi"]).iloc[0])
    results = pd.DataFrame(estimates)
    pooled_se = results["log_or_se"].mean() / np.sqrt(len(results))
    assert abs(results["log_or"].mean() - np.log(TRUE.fall_odds_ratio)) < 3 * pooled_se
    covered = (results["or_ci_low"] < TRUE.fall_odds_ratio) & (TRUE.fall_odds_ratio < results["or_ci_high"])
    assert covered.sum() >= 7  # 95 % profile-likelihood intervals


def test_logistic_separation_and_bad_outcome():
    t = pd.DataFrame({"e": np.arange(30.0), "y": [0] * 10 + [0, 1] * 5 + [1] * 10, "bad": [2] * 30})
    with pytest.warns(UserWarning, match="never or always occurs"):
        result = logistic_regression(t, "e", ["y"]).iloc[0]
    assert np.isnan(result["or"]) and "separation" in result["note"]
    with pytest.raises(InputError, match="'bad' must be 0/1"):
        logistic_regression(t, "e", ["bad"])


# ------------------------------------------------------------------ trends (seed 001, 003)


def test_age_strata_boundaries():
    strata = age_strata(pd.Series([39.99, 40.0, 49.99, 50.0, 79.9, 80.0, 101.0]), [40, 50, 60, 70, 80])
    assert strata.astype(object).where(strata.notna(), None).tolist() == [
        None,
        "40-49",
        "40-49",
        "50-59",
        "70-79",
        "80+",
        "80+",
    ]
    with pytest.raises(InputError, match="increasing"):
        age_strata(pd.Series([1.0]), [50, 40])


def test_cochran_armitage_equals_linear_by_linear_rescaled_and_seed_formula():
    events, totals = np.array([5, 9, 16, 22, 30]), np.array([100, 110, 105, 98, 90])
    z, p = cochran_armitage(events, totals)
    table = sm.stats.Table(np.c_[totals - events, events])
    lbl = table.test_ordinal_association(row_scores=np.arange(5.0), col_scores=np.array([0.0, 1.0]))
    n = totals.sum()
    assert z == pytest.approx(lbl.zscore * np.sqrt(n / (n - 1)), rel=1e-10)
    # seed 001 form: sum w_i (p_i - p) / sqrt(p (1 - p) sum w_i^2 / n_i) with w_i = n_i (s_i - mean s)
    pooled, s = events.sum() / n, np.arange(5.0)
    w = totals * (s - np.sum(totals * s) / n)
    seed = np.sum(w * (events / totals - pooled)) / np.sqrt(pooled * (1 - pooled) * np.sum(w**2 / totals))
    assert z == pytest.approx(seed, rel=1e-10)
    assert p == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert cochran_armitage([3, 3], [10, 10])[0] == 0.0
    with pytest.raises(InputError, match="events <= totals"):
        cochran_armitage([5], [4])


def test_strata_summary_equals_pandas_and_cutoff_is_strict(wide_table):
    cutoff = {"male": 10000.0, "female": 7000.0}
    table = wide_table.copy()
    table.loc[table.index[0], "tmv_cm3"] = cutoff["male" if table["sex"].iloc[0] == "M" else "female"]
    summary = strata_summary(table, "tmv_cm3", AgeStrata(cutoff=cutoff))
    age_ok = table["age"] >= 40
    females_50 = table.loc[(table["sex"] == "F") & (table["age"] >= 50) & (table["age"] < 60), "tmv_cm3"]
    row = summary.set_index(["group", "age_stratum"]).loc[("female", "50-59")]
    assert row["n"] == len(females_50)
    assert row["tmv_cm3_median"] == pytest.approx(females_50.median())
    assert (row["tmv_cm3_q1"], row["tmv_cm3_q3"]) == pytest.approx(tuple(females_50.quantile([0.25, 0.75])))
    assert row["tmv_cm3_sd"] == pytest.approx(females_50.std())
    assert row["n_below"] == int((females_50 < 7000).sum())
    limit = table["sex"].map({"M": 10000.0, "F": 7000.0})
    assert summary["n_below"].sum() == int((table.loc[age_ok, "tmv_cm3"] < limit[age_ok]).sum())
    assert summary["n"].sum() == int(age_ok.sum())


def test_decline_per_decade_equals_ols_and_recovers_known_slopes(wide_table):
    decline = decline_per_decade(wide_table, "tmv_cm3").set_index("group")
    for group, code in (("male", "M"), ("female", "F")):
        rows = wide_table[wide_table["sex"] == code]
        fit = sm.OLS(rows["tmv_cm3"], sm.add_constant(rows[["age"]])).fit()
        row = decline.loc[group]
        assert row["tmv_cm3_per_decade"] == pytest.approx(10 * fit.params["age"], rel=1e-10)
        assert row["tmv_cm3_per_decade_ci_low"] == pytest.approx(
            10 * fit.params["age"] - 19.6 * fit.bse["age"]
        )
        se_decade = 10 * fit.bse["age"]
        assert abs(row["tmv_cm3_per_decade"] - TRUE.tmv_cm3_per_decade[group]) < WITHIN_SE * se_decade


def test_age_trend_tests_rising_share_below_cutoff(wide_table):
    trend = age_trend(wide_table, "tmv_cm3", AgeStrata(cutoff={"male": 10500.0, "female": 7300.0}))
    tests = trend.trend_tests.set_index("group")
    assert (tests["cochran_armitage_z"] > 3).all()  # the share below rises with age
    female = trend.strata[trend.strata["group"] == "female"]
    assert tests.loc["female", "cochran_armitage_z"] == pytest.approx(
        cochran_armitage(female["n_below"], female["n"])[0]
    )


def test_correlate_fisher_ci_equals_scipy_and_seed_formula(wide_table):
    result = correlate(wide_table, "age", "tmv_cm3", by="sex").set_index("group")
    rows = wide_table[wide_table["sex"] == "F"]
    res = stats.pearsonr(rows["age"], rows["tmv_cm3"])
    ci = res.confidence_interval(0.95)
    got = result.loc["female"]
    assert (got["r"], got["p"]) == pytest.approx((res.statistic, res.pvalue), rel=1e-10)
    assert (got["r_ci_low"], got["r_ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)
    z, half = np.arctanh(got["r"]), 1.959963984540054 / np.sqrt(len(rows) - 3)
    assert fisher_z_ci(got["r"], len(rows)) == pytest.approx((np.tanh(z - half), np.tanh(z + half)))
    spearman = correlate(wide_table, "age", "tmv_cm3", method="spearman")
    assert spearman["r"].iloc[0] == pytest.approx(
        stats.spearmanr(wide_table["age"], wide_table["tmv_cm3"])[0]
    )


# ------------------------------------------------------------------ ANCOVA (seed 002)


def _rm_data(n=36, k=4, seed=3, groups_equal=True):
    rng = np.random.default_rng(seed)
    sex = np.repeat(["F", "M"], n // 2) if groups_equal else rng.choice(["F", "M"], n, p=[0.7, 0.3])
    subject_effect = rng.normal(0, 1, n)
    drift = rng.normal(0, 0.6, (n, k)).cumsum(axis=1)  # non-spherical errors
    values = (
        subject_effect[:, None] + np.array([0, 0.4, 0.9, 0.3])[None, :k] + drift + 0.5 * (sex == "M")[:, None]
    )
    return pd.DataFrame(
        {
            "subject": np.repeat([f"s{i}" for i in range(n)], k),
            "name": np.tile([f"m{j}" for j in range(k)], n),
            "imf_pct": values.ravel(),
            "sex": np.repeat(sex, k),
            "age": np.repeat(rng.normal(50, 10, n), k),
        }
    )


def test_rm_anova_equals_pingouin_without_covariates():
    data = _rm_data()
    res = repeated_measures_ancova(data, "imf_pct")
    expected = pg.rm_anova(data, dv="imf_pct", within="name", subject="subject", correction=True)
    got = res.effects.iloc[0]
    assert got["f"] == pytest.approx(expected["F"].iloc[0], rel=1e-10)
    assert got["p"] == pytest.approx(expected["p_unc"].iloc[0], rel=1e-8)
    assert got["p_gg"] == pytest.approx(expected["p_GG_corr"].iloc[0], rel=1e-8)
    assert got["eps_gg"] == pytest.approx(expected["eps"].iloc[0], rel=1e-10)
    assert got["eps_hf"] == pytest.approx(
        min(1.0, pg.epsilon(data, dv="imf_pct", within="name", subject="subject", correction="hf")), rel=1e-10
    )
    spher = pg.sphericity(data, dv="imf_pct", within="name", subject="subject")
    assert tuple(res.sphericity[["w", "chi2", "p"]].iloc[0]) == pytest.approx(
        (spher.W, spher.chi2, spher.pval)
    )


def test_mixed_anova_equals_pingouin_for_equal_groups():
    data = _rm_data()
    res = repeated_measures_ancova(data, "imf_pct", between="sex").effects.set_index("effect")
    expected = pg.mixed_anova(
        data, dv="imf_pct", within="name", subject="subject", between="sex", correction=True
    )
    expected = expected.set_index("Source")
    for ours, theirs in (("muscle", "name"), ("muscle x sex", "Interaction"), ("sex", "sex")):
        assert res.loc[ours, "f"] == pytest.approx(expected.loc[theirs, "F"], rel=1e-8)
        assert res.loc[ours, "p"] == pytest.approx(expected.loc[theirs, "p_unc"], rel=1e-6)
        assert res.loc[ours, "np2"] == pytest.approx(expected.loc[theirs, "np2"], rel=1e-8)
    assert res.loc["muscle", "eps_gg"] == pytest.approx(expected.loc["name", "eps"], rel=1e-10)


def test_rm_ancova_equals_long_format_ols_with_subject_effects():
    data = _rm_data(groups_equal=False)
    res = repeated_measures_ancova(data, "imf_pct", between="sex", covariates=["age"]).effects.set_index(
        "effect"
    )
    # univariate model: subject intercepts + level effects + level x (sum-coded sex, centred age)
    sex = np.where(data["sex"] == "F", 1.0, -1.0)
    age = data["age"] - data.drop_duplicates("subject")["age"].mean()
    level = pd.get_dummies(data["name"], dtype=float)
    level_sum = level.iloc[:, :-1].sub(level.iloc[:, -1], axis=0)  # sum coding of the 4 levels
    design = pd.concat(
        [
            pd.get_dummies(data["subject"], dtype=float),
            level_sum,
            level_sum.mul(sex, axis=0).add_suffix(":sex"),
            level_sum.mul(age, axis=0).add_suffix(":age"),
        ],
        axis=1,
    )
    fit = sm.OLS(data["imf_pct"], design).fit()
    for effect, columns in (
        ("muscle", level_sum.columns),
        ("muscle x sex", level_sum.add_suffix(":sex").columns),
        ("muscle x age", level_sum.add_suffix(":age").columns),
    ):
        restriction = np.zeros((3, design.shape[1]))
        for i, column in enumerate(columns):
            restriction[i, design.columns.get_loc(column)] = 1.0
        test = fit.f_test(restriction)
        assert res.loc[effect, "f"] == pytest.approx(float(np.squeeze(test.fvalue)), rel=1e-8)
        assert res.loc[effect, "df2"] == test.df_denom
    # between-subject effects: OLS of the subject means = pingouin's ANCOVA on them
    means = data.groupby("subject").agg(
        imf_pct=("imf_pct", "mean"), sex=("sex", "first"), age=("age", "first")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = pg.ancova(means, dv="imf_pct", between="sex", covar="age").set_index("Source")
    for effect in ("sex", "age"):
        assert res.loc[effect, "f"] == pytest.approx(expected.loc[effect, "F"], rel=1e-8)


def test_rm_ancova_recovers_muscle_offsets_and_pairwise_equals_scipy(long_table):
    averaged = average_sides(long_table, "imf_pct")
    res = repeated_measures_ancova(
        averaged, "imf_pct", between="sex", covariates=["age", "bmi"], padjust="holm"
    )
    within = res.effects.set_index("effect")
    assert within.loc["muscle", "p"] < 1e-10
    assert (within.loc[["muscle x age", "muscle x bmi"], "p"] > 0.001).all()  # slopes equal across muscles
    pair = res.pairwise.set_index(["level_a", "level_b"]).loc[("gastrocnemius", "tibialis_anterior")]
    wide = averaged.pivot(index="subject", columns="name", values="imf_pct")
    diff = wide["gastrocnemius"] - wide["tibialis_anterior"]
    expected = stats.ttest_rel(wide["gastrocnemius"], wide["tibialis_anterior"])
    assert (pair["t"], pair["p"]) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-8)
    assert pair["imf_pct_mean_difference"] == pytest.approx(diff.mean())
    assert abs(pair["imf_pct_mean_difference"] - 2.5) < WITHIN_SE * diff.std() / np.sqrt(len(diff))
    assert (res.pairwise["p_adjusted"] >= res.pairwise["p"]).all()


def test_average_sides_needs_both_sides():
    t = pd.DataFrame(
        {
            "subject": ["a", "a", "b", "a"],
            "name": ["x_left", "x_right", "x_left", "core"],
            "imf_pct": [4.0, 6.0, 3.0, 9.0],
            "age": [50, 50, 60, 50],
        }
    )
    out = average_sides(t, "imf_pct").set_index(["subject", "name"])["imf_pct"]
    assert out[("a", "x")] == 5.0 and np.isnan(out[("b", "x")]) and out[("a", "core")] == 9.0


def test_ancova_equals_pingouin(long_table):
    aov, means = ancova(long_table, "imf_pct", "sex", ["age", "bmi"], labels=["gastrocnemius_left"])
    rows = long_table[long_table["name"] == "gastrocnemius_left"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = pg.ancova(rows, dv="imf_pct", between="sex", covar=["age", "bmi"])
    assert aov["f"].to_numpy()[:3] == pytest.approx(expected["F"].to_numpy()[:3], rel=1e-10)
    assert aov["ss"].to_numpy() == pytest.approx(expected["SS"].to_numpy(), rel=1e-10)
    assert aov["np2"].to_numpy()[:3] == pytest.approx(expected["np2"].to_numpy()[:3], rel=1e-10)
    assert means["level"].tolist() == ["female", "male"]


# ------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def cohort_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    assert main(["cohort", "simulate", "--n", "240", "--seed", "5", "-o", str(folder), "-q"]) == 0
    return folder


def test_cli_simulate_is_reproducible(cohort_files, tmp_path):
    assert main(["cohort", "simulate", "--n", "240", "--seed", "5", "-o", str(tmp_path), "-q"]) == 0
    for name in ("participants.tsv", "metrics.csv", "regional.csv"):
        assert (tmp_path / name).read_bytes() == (cohort_files / name).read_bytes()


def test_cli_regress_writes_tables_figures_and_record(cohort_files, tmp_path):
    out = tmp_path / "regress"
    code = main(
        [
            "cohort",
            "regress",
            "--metrics",
            str(cohort_files / "metrics.csv"),
            "--participants",
            str(cohort_files / "participants.tsv"),
            "--outcome",
            "imf_pct",
            "--covariates",
            "age,bmi,sex",
            "--labels",
            "soleus_left,soleus_right",
            "--partial",
            "--emm",
            "sex",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    table = pd.read_csv(out / "regress_table2.csv")
    assert table["name"].tolist() == ["soleus_left", "soleus_right"]
    assert pd.read_csv(out / "regress_emm.csv")["imf_pct_emm"].notna().all()
    for png in ("partial_soleus_left.png", "partial_soleus_right.png", "regress_emm.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((out / "cohort_regress.json").read_text())
    assert record["join"]["n_matched"] == 240 and "regress_table2.csv" in record["outputs"]
    assert not list(out.glob(".*tmp*"))


@pytest.mark.parametrize(
    ("args", "outputs"),
    [
        (
            [
                "hierarchical",
                "--outcome",
                "plantarflexion_force_{side}_n",
                "--base",
                "age,bmi,sex",
                "--add",
                "volume_ml,imf_pct",
                "--labels",
                "soleus_left",
            ],
            ["hierarchical.csv"],
        ),
        (
            ["logistic", "--exposure", "pa_ratio", "--outcomes", "fall", "--adjust", "age,sex,bmi"],
            ["logistic.csv", "logistic_forest.png"],
        ),
        (
            ["trend", "--measure", "tmv_cm3", "--cutoff", "male=10500,female=7300", "--age-bins", "40,55,70"],
            ["trend_strata.csv", "trend_decline.csv", "trend_test.csv", "trend.png"],
        ),
        (["correlate", "--x", "age", "--y", "tmv_cm3", "--by", "sex"], ["correlate.csv"]),
        (
            [
                "anova",
                "--measure",
                "imf_pct",
                "--average-sides",
                "--between",
                "sex",
                "--covariates",
                "age,bmi",
            ],
            ["anova_effects.csv", "anova_sphericity.csv", "anova_pairwise.csv"],
        ),
        (
            [
                "ancova",
                "--measure",
                "imf_pct",
                "--between",
                "sex",
                "--covariates",
                "age,bmi",
                "--labels",
                "soleus_left",
            ],
            ["ancova.csv", "ancova_emm.csv", "ancova_emm.png"],
        ),
        (["indices", "--labels", "soleus_left"], ["indices.csv"]),
    ],
    ids=["hierarchical", "logistic", "trend", "correlate", "anova", "ancova", "indices"],
)
def test_cli_analyses(cohort_files, tmp_path, args, outputs):
    wide = args[0] in {"logistic", "trend", "correlate"}
    metrics = cohort_files / ("regional.csv" if wide else "metrics.csv")
    code = main(
        [
            "cohort",
            *args,
            "--metrics",
            str(metrics),
            "--participants",
            str(cohort_files / "participants.tsv"),
            "-o",
            str(tmp_path),
            "-q",
        ]
    )
    assert code == 0
    for name in outputs:
        assert (tmp_path / name).stat().st_size > 0
    first = pd.read_csv(tmp_path / outputs[0])
    assert len(first) > 0 and not first.filter(like="_p").isna().all().any()


def test_cli_sarcopenia(cohort_files, tmp_path):
    code = main(
        [
            "cohort",
            "sarcopenia",
            "--participants",
            str(cohort_files / "participants.tsv"),
            "--criteria",
            "both",
            "-o",
            str(tmp_path),
            "-q",
        ]
    )
    assert code == 0
    result = pd.read_csv(tmp_path / "sarcopenia.csv")
    assert {"ewgsop2_category", "awgs2019_sarcopenia"} <= set(result.columns)
    summary = pd.read_csv(tmp_path / "sarcopenia_summary.csv")
    assert summary.groupby("criteria")["n"].sum().tolist() == [240, 240]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["regress", "--outcome", "imf_pct", "--covariates", "age,bmii"], "unknown covariate 'bmii'"),
        (["regress", "--outcome", "imf_pctt", "--covariates", "age"], "unknown column 'imf_pctt'"),
        (["regress", "--outcome", "imf_pct", "--covariates", "age", "--labels", "soleus"], "unknown label"),
        (["logistic", "--exposure", "volume_ml", "--outcomes", "age"], "must be 0/1"),
        (["trend", "--measure", "imf_pct", "--age-bins", "60,50"], "increasing"),
    ],
    ids=["covariate", "outcome", "label", "outcome-not-binary", "age-bins"],
)
def test_cli_bad_input_exits_2_with_one_line_and_no_outputs(cohort_files, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code = main(
        [
            "cohort",
            *args,
            "--metrics",
            str(cohort_files / "metrics.csv"),
            "--participants",
            str(cohort_files / "participants.tsv"),
            "-o",
            str(out),
            "-q",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_cli_reports_unmatched_ids(cohort_files, tmp_path, capsys):
    participants = pd.read_csv(cohort_files / "participants.tsv", sep="\t").iloc[5:]
    participants.to_csv(tmp_path / "participants.tsv", sep="\t", index=False)
    code = main(
        [
            "cohort",
            "correlate",
            "--x",
            "age",
            "--y",
            "tmv_cm3",
            "--metrics",
            str(cohort_files / "regional.csv"),
            "--participants",
            str(tmp_path / "participants.tsv"),
            "-o",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert (
        "myoscan: warning: 5 subject(s) of regional.csv are not in participants.tsv and are left out: sub-0001, "
        in err
    )
    record = json.loads((tmp_path / "out" / "cohort_correlate.json").read_text())
    assert record["join"]["metrics_only"] == [f"sub-000{i}" for i in range(1, 6)]


def test_docstring_examples_run():
    import doctest

    import myoscan.cohort._columns as columns
    import myoscan.cohort._data as data
    import myoscan.cohort.anova as anova
    import myoscan.cohort.logistic as logistic
    import myoscan.cohort.plots as plots
    import myoscan.cohort.regression as regression
    import myoscan.cohort.simulate as simulate
    import myoscan.cohort.trend as trend

    attempted = 0
    for module in (columns, data, anova, logistic, plots, regression, simulate, trend):
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted >= 60


def test_sex_specific_cutoff_leaves_out_subjects_of_unknown_sex():
    """Without a sex there is no cut-off: such a subject is neither below nor above it."""
    table = pd.DataFrame({
        "age": [45.0, 46.0, 47.0, 48.0],
        "sex": ["M", "F", None, "F"],
        "almi_kg_m2": [6.0, 6.0, 1.0, 5.0],  # the third is below any cut-off, but its sex is unknown
    })  # fmt: skip
    cutoff = {"male": 7.0, "female": 5.5}
    summary = strata_summary(table, "almi_kg_m2", AgeStrata(by=None, edges=(40,), cutoff=cutoff))
    row = summary.iloc[0]
    assert (row["n"], row["n_below"]) == (3, 2)
    assert row["pct_below"] == pytest.approx(100 * 2 / 3)


def test_mauchly_is_undefined_with_fewer_error_df_than_contrasts():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"subject": np.repeat(np.arange(3), 6), "name": np.tile(list("abcdef"), 3)})
    data["imf_pct"] = rng.normal(8, 1, len(data))
    sphericity = repeated_measures_ancova(data, "imf_pct").sphericity.iloc[0]
    assert np.isnan(sphericity["w"]) and np.isnan(sphericity["chi2"]) and np.isnan(sphericity["p"])


def test_cli_outputs_appear_together_or_not_at_all(cohort_files, tmp_path, capsys):
    out = tmp_path / "trend"
    (out / "cohort_trend.json").mkdir(parents=True)  # the record, written last, cannot be written
    code = main(["cohort", "trend", "--metrics", str(cohort_files / "regional.csv"), "--participants",
                 str(cohort_files / "participants.tsv"), "--measure", "tmv_cm3", "-o", str(out), "-q"])
    assert code == 2
    assert "cohort_trend.json" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["cohort_trend.json"]


def test_bad_value_examples_are_quoted_plainly():
    from myoscan.cohort.logistic import binary_column

    with pytest.raises(InputError, match=r"got 80\.4, 66\.2$"):
        binary_column(pd.DataFrame({"age": [80.4, 66.2, 1.0]}), "age", source="p.tsv")


@pytest.mark.parametrize(
    ("exposure", "outcome", "use_tertiles", "match"),
    [
        ([5.0] * 40, [0, 1] * 20, True, "single value"),
        ([5.0] * 40, [0, 1] * 20, False, "single value"),
        ([0.0, 1.0] * 20, [0, 1] * 20, True, "high tertile is empty"),
        (list(np.arange(40.0)), [0] * 40, True, "outcome is 0 for all 27"),
        (list(np.arange(40.0)), [1] * 40, False, "outcome is 1 for all 40"),
    ],
    ids=["constant-exposure", "constant-exposure-per-sd", "binary-exposure", "no-events", "all-events"],
)
def test_logistic_degenerate_exposure_or_outcome_is_an_error(exposure, outcome, use_tertiles, match):
    # a constant exposure gave OR 1.0 with p = 0.02 (every subject in the 'low' tertile), a
    # 0/1 exposure an empty high tertile, an outcome without events a NaN row and exit 0
    t = pd.DataFrame({"e": exposure, "y": outcome, "age": np.linspace(40, 80, 40)})
    with pytest.raises(InputError, match=match):
        logistic_regression(t, "e", ["y"], ["age"], use_tertiles=use_tertiles)


def test_logistic_outcome_without_events_among_others_is_a_noted_row():
    rng = np.random.default_rng(2)
    t = pd.DataFrame({"e": np.arange(90.0), "none": 0, "some": rng.binomial(1, 0.4, 90)})
    with pytest.warns(UserWarning, match="none ~ e: the outcome is 0 for all 60"):
        result = logistic_regression(t, "e", ["none", "some"]).set_index("outcome")
    assert np.isnan(result.loc["none", "or"]) and "no events" in result.loc["none", "note"]
    assert np.isfinite(result.loc["some", "or"]) and result.loc["none", "n_events"] == 0
    with pytest.raises(InputError, match=r"every outcome"), pytest.warns(UserWarning, match="none ~ e"):
        logistic_regression(t.assign(some=1), "e", ["none", "some"])


def test_cli_logistic_constant_outcome_exits_2_and_writes_nothing(cohort_files, tmp_path, capsys):
    participants = read_cohort_table(cohort_files / "participants.tsv").assign(fall=0)
    path = tmp_path / "participants_no_falls.tsv"
    participants.to_csv(path, sep="\t", index=False)
    out = tmp_path / "out"
    code = main(["cohort", "logistic", "--exposure", "pa_ratio", "--outcomes", "fall", "--metrics",
                 str(cohort_files / "regional.csv"), "--participants", str(path), "-o", str(out), "-q"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "outcome is 0 for all" in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_constant_measure_is_an_error_for_decline_and_correlation():
    # decline_per_decade fitted rounding noise (slope 1e-17 per year, p = 3e-7, r2 = -inf);
    # correlate returned r = NaN with exit 0
    t = pd.DataFrame({"age": np.linspace(40, 85, 30), "sex": ["F", "M"] * 15, "tmv_cm3": 5.0})
    with pytest.raises(InputError, match="tmv_cm3 has a single value"):
        decline_per_decade(t, "tmv_cm3")
    with pytest.raises(InputError, match="tmv_cm3 has a single value in the 15 subjects"):
        correlate(t, "age", "tmv_cm3", by="sex")
    # one constant label of a long table is skipped with a warning, the others analysed
    long = pd.concat([t.assign(name="a"), t.assign(name="b", tmv_cm3=np.linspace(9, 7, 30))])
    with pytest.warns(UserWarning, match="1 label"):
        result = correlate(long, "age", "tmv_cm3")
    assert result["name"].tolist() == ["b"] and result["r"].iloc[0] == pytest.approx(-1.0)


def test_cli_bad_participants_column_names_the_participants_file(cohort_files, tmp_path, capsys):
    participants = read_cohort_table(cohort_files / "participants.tsv")
    participants["age"] = participants["age"].astype(object)
    participants.loc[3, "age"] = "old"
    path = tmp_path / "participants_bad_age.tsv"
    participants.to_csv(path, sep="\t", index=False)
    code = main(["cohort", "correlate", "--x", "age", "--y", "tmv_cm3", "--metrics",
                 str(cohort_files / "regional.csv"), "--participants", str(path), "-o", str(tmp_path / "o"),
                 "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    # it said "regional.csv: column 'age' must be numeric", naming the file without that column
    assert "regional.csv joined with participants_bad_age.tsv: column 'age' must be numeric" in err


def test_trend_test_scores_strata_by_their_place_when_one_is_empty():
    # no subject in 50-59: the 40s, 60s and 70s are scored 0, 2, 3 (they were 0, 1, 2)
    ages = np.r_[np.full(20, 45.0), np.full(20, 65.0), np.full(20, 75.0)]
    below = np.r_[np.repeat([1.0, 9.0], [2, 18]), np.repeat([1.0, 9.0], [6, 14]),
                  np.repeat([1.0, 9.0], [12, 8])]
    t = pd.DataFrame({"age": ages, "v": below + np.linspace(0, 0.1, 60)})
    tests = age_trend(t, "v", AgeStrata(by=None, edges=(40, 50, 60, 70), cutoff=5.0)).trend_tests
    z, p = cochran_armitage([2, 6, 12], [20, 20, 20], [0, 2, 3])
    assert tests["cochran_armitage_z"].iloc[0] == pytest.approx(z)
    assert tests["p"].iloc[0] == pytest.approx(p)
    assert z != pytest.approx(cochran_armitage([2, 6, 12], [20, 20, 20])[0])


@pytest.mark.parametrize("which", ["metrics", "participants"])
@pytest.mark.parametrize("content", ["empty", "header"])
def test_cli_empty_or_header_only_table_is_a_one_line_error(cohort_files, tmp_path, capsys, which, content):
    # an empty file was a csv.Error traceback, a header-only one an IndexError traceback (exit 1),
    # and 'sarcopenia' wrote empty tables with exit 0
    source = cohort_files / ("regional.csv" if which == "metrics" else "participants.tsv")
    bad = tmp_path / f"bad{source.suffix}"
    bad.write_text("" if content == "empty" else source.read_text().splitlines()[0] + "\n")
    files = {"metrics": cohort_files / "regional.csv", "participants": cohort_files / "participants.tsv"}
    files[which] = bad
    out = tmp_path / "out"
    code = main(["cohort", "correlate", "--x", "age", "--y", "tmv_cm3", "--metrics", str(files["metrics"]),
                 "--participants", str(files["participants"]), "-o", str(out), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"myoscan cohort: error: {bad.name}: ")
    assert not out.exists()
    if which == "participants":
        assert main(["cohort", "sarcopenia", "--participants", str(bad), "-o", str(out), "-q"]) == 2
        assert not out.exists()


@pytest.mark.parametrize("analysis", ["logistic", "correlate"])
def test_cli_help_shows_plain_percent(analysis, capsys):
    # argparse %-formats help strings, not descriptions: "95%%" was printed literally
    assert main(["cohort", analysis, "--help"]) == 0
    text = capsys.readouterr().out
    assert "95 % " in text and "%%" not in text


@pytest.mark.parametrize(
    ("analysis", "match"),
    [
        # silently fitted a singular design
        (lambda t: regress(t, "tmv_cm3", ["age", "age", "sex"]), "age appears more than once"),
        # a ValueError traceback (two columns named age)
        (lambda t: regress(t, "age", ["age", "sex"]), "age appears more than once"),
        # dropped both copies of age from the base model: r2_base was that of bmi + sex
        (lambda t: hierarchical_regression(t, "grip_kg", ["age", "bmi", "sex"], ["age"]), "age appears more"),
        (lambda t: ancova(t, "tmv_cm3", "sex", ["tmv_cm3"]), "tmv_cm3 is given more than once"),
    ],
    ids=["covariate-twice", "outcome-as-covariate", "added-in-base", "ancova-measure-as-covariate"],
)
def test_repeated_variables_are_an_error(wide_table, analysis, match):
    with pytest.raises(InputError, match=match):
        analysis(wide_table)


def test_logistic_outcome_among_covariates_is_an_error(wide_table):
    # it fitted a perfectly separated model: OR 1.0, CI 0 to inf, p = 1
    with pytest.raises(InputError, match="fall is both an outcome and the exposure or a covariate"):
        logistic_regression(wide_table, "pa_ratio", ["fall"], ["fall", "sex"])


@pytest.mark.parametrize("which", ["metrics", "participants"])
def test_rows_without_subject_id_are_a_one_line_error(cohort, which):
    # a missing id was a TypeError traceback while listing the unmatched ids
    metrics, participants = cohort.metrics.copy(), cohort.participants.copy()
    frame, column = (metrics, "subject") if which == "metrics" else (participants, "participant_id")
    frame[column] = frame[column].astype(object)
    frame.loc[3, column] = None
    with pytest.raises(InputError, match=rf"{which}: 1 row\(s\) have no {column} \(e.g. row 4\)"):
        join_participants(metrics, participants, metrics_source="metrics", participants_source="participants")
