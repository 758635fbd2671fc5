"""Tests of myoscan.sarcopenia: every cut-off at its boundary for both sexes, categories, indices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from myoscan.cohort import normalize_sex
from myoscan.errors import InputError
from myoscan.sarcopenia import (
    MUSCLE_DENSITY_G_ML,
    Awgs2019Config,
    Ewgsop2Config,
    SarcopeniaColumns,
    SexCutoff,
    bmi_adjusted_zscore,
    classify_awgs2019,
    classify_ewgsop2,
    height_m,
    muscle_indices,
    muscle_mass_g,
)

ALL_COLUMNS = SarcopeniaColumns(asm_kg="asm_kg", chair_stand_s="chair_stand_s", sppb_score="sppb_score")
#: Values that are normal for every criterion and sex.
NORMAL = {
    "grip_kg": 45.0,
    "almi_kg_m2": 9.0,
    "asm_kg": 30.0,
    "gait_speed_m_s": 1.5,
    "chair_stand_s": 8.0,
    "sppb_score": 12.0,
}
EPS = 0.01

# (criteria, measure, flag, sex, cut-off, is a value AT the cut-off low?)
BOUNDARIES = [
    ("ewgsop2", "grip_kg", "low_strength", "M", 27.0, False),
    ("ewgsop2", "grip_kg", "low_strength", "F", 16.0, False),
    ("ewgsop2", "chair_stand_s", "low_strength", "M", 15.0, False),
    ("ewgsop2", "chair_stand_s", "low_strength", "F", 15.0, False),
    ("ewgsop2", "almi_kg_m2", "low_muscle_mass", "M", 7.0, False),
    ("ewgsop2", "almi_kg_m2", "low_muscle_mass", "F", 5.5, False),
    ("ewgsop2", "asm_kg", "low_muscle_mass", "M", 20.0, False),
    ("ewgsop2", "asm_kg", "low_muscle_mass", "F", 15.0, False),
    ("ewgsop2", "gait_speed_m_s", "low_performance", "M", 0.8, True),
    ("ewgsop2", "gait_speed_m_s", "low_performance", "F", 0.8, True),
    ("ewgsop2", "sppb_score", "low_performance", "M", 8.0, True),
    ("ewgsop2", "sppb_score", "low_performance", "F", 8.0, True),
    ("awgs2019", "grip_kg", "low_strength", "M", 28.0, False),
    ("awgs2019", "grip_kg", "low_strength", "F", 18.0, False),
    ("awgs2019", "almi_kg_m2", "low_muscle_mass", "M", 7.0, False),
    ("awgs2019", "almi_kg_m2", "low_muscle_mass", "F", 5.4, False),
    ("awgs2019", "gait_speed_m_s", "low_performance", "M", 1.0, False),
    ("awgs2019", "gait_speed_m_s", "low_performance", "F", 1.0, False),
    ("awgs2019", "chair_stand_s", "low_performance", "M", 12.0, True),
    ("awgs2019", "chair_stand_s", "low_performance", "F", 12.0, True),
    ("awgs2019", "sppb_score", "low_performance", "M", 9.0, True),
    ("awgs2019", "sppb_score", "low_performance", "F", 9.0, True),
]
#: Direction of each measure: True when low values are bad.
LOW_IS_BAD = {
    "grip_kg": True,
    "almi_kg_m2": True,
    "asm_kg": True,
    "gait_speed_m_s": True,
    "sppb_score": True,
    "chair_stand_s": False,
}


def _classify(criteria: str, table: pd.DataFrame, **config) -> pd.DataFrame:
    if criteria == "ewgsop2":
        return classify_ewgsop2(table, columns=ALL_COLUMNS, config=Ewgsop2Config(**config))
    return classify_awgs2019(table, columns=ALL_COLUMNS, config=Awgs2019Config(**config))


@pytest.mark.parametrize(
    ("criteria", "measure", "flag", "sex", "cutoff", "at_cutoff_is_low"),
    BOUNDARIES,
    ids=[f"{c}-{m}-{s}" for c, m, _, s, _, _ in BOUNDARIES],
)
def test_every_cutoff_at_its_boundary(criteria, measure, flag, sex, cutoff, at_cutoff_is_low):
    worse = -EPS if LOW_IS_BAD[measure] else EPS
    values = [cutoff + worse, cutoff, cutoff - worse]
    table = pd.DataFrame([{**NORMAL, "sex": sex, measure: v} for v in values])
    result = _classify(criteria, table)[f"{criteria}_{flag}"].tolist()
    assert result == [1, int(at_cutoff_is_low), 0]


def test_awgs_bia_cutoff_for_women_and_men():
    table = pd.DataFrame(
        [{**NORMAL, "sex": s, "almi_kg_m2": v} for s, v in (("F", 5.69), ("F", 5.7), ("M", 6.99), ("M", 7.0))]
    )
    low = _classify("awgs2019", table, mass_method="bia")["awgs2019_low_muscle_mass"].tolist()
    assert low == [1, 0, 1, 0]
    with pytest.raises(InputError, match="'dxa' or 'bia'"):
        Awgs2019Config(mass_method="ct")


@pytest.mark.parametrize(
    ("grip", "almi", "gait", "ewgsop2", "awgs2019"),
    [
        (40.0, 8.0, 1.2, "none", "none"),
        (20.0, 8.0, 1.2, "probable", "possible"),
        (20.0, 6.5, 1.2, "confirmed", "sarcopenia"),
        (20.0, 6.5, 0.7, "severe", "severe"),
        (40.0, 6.5, 0.7, "none", "sarcopenia"),  # AWGS: low mass + low performance, normal grip
        (40.0, 6.5, 0.9, "none", "sarcopenia"),  # gait 0.9: low for AWGS (< 1.0), not for EWGSOP2 (<= 0.8)
        (40.0, 8.0, 0.9, "none", "possible"),
        (20.0, np.nan, 0.7, "probable", "possible"),  # mass unknown: cannot confirm
        (np.nan, 6.5, 1.2, None, None),  # strength unknown
        (np.nan, 6.5, 0.7, None, "sarcopenia"),  # AWGS: low performance suffices
    ],
    ids=[
        "normal",
        "probable",
        "confirmed",
        "severe",
        "awgs-perf",
        "gait-0.9",
        "possible-perf",
        "mass-unknown",
        "grip-unknown",
        "grip-unknown-slow",
    ],
)
def test_categories_for_men(grip, almi, gait, ewgsop2, awgs2019):
    table = pd.DataFrame({"sex": ["M"], "grip_kg": [grip], "almi_kg_m2": [almi], "gait_speed_m_s": [gait]})
    got_e = classify_ewgsop2(table)["ewgsop2_category"].iloc[0]
    got_a = classify_awgs2019(table)["awgs2019_category"].iloc[0]
    assert (None if pd.isna(got_e) else got_e) == ewgsop2
    assert (None if pd.isna(got_a) else got_a) == awgs2019


def test_outcome_indicators_are_missing_only_when_undecidable():
    table = pd.DataFrame(
        {
            "sex": ["F"] * 5,
            "grip_kg": [10.0, 10.0, 10.0, 30.0, np.nan],
            "almi_kg_m2": [5.0, np.nan, 6.0, np.nan, 5.0],
            "gait_speed_m_s": [np.nan, 0.5, 0.5, np.nan, 0.5],
        }
    )
    result = classify_ewgsop2(table)
    assert result["ewgsop2_category"].tolist()[:4] == ["confirmed", "probable", "probable", "none"]
    assert result["ewgsop2_sarcopenia"].tolist() == [1, pd.NA, 0, 0, pd.NA]
    assert result["ewgsop2_severe_sarcopenia"].tolist() == [pd.NA, pd.NA, 0, 0, pd.NA]
    assert result["ewgsop2_probable_sarcopenia"].tolist() == [1, 1, 1, 0, pd.NA]
    assert str(result["ewgsop2_sarcopenia"].dtype) == "Int8"


def test_config_overrides_and_missing_columns():
    table = pd.DataFrame({"sex": ["M", "F"], "grip_kg": [29.0, 19.0], "almi_kg_m2": [8.0, 8.0]})
    custom = Ewgsop2Config(grip_kg=SexCutoff(male=30.0, female=20.0))
    assert classify_ewgsop2(table, config=custom)["ewgsop2_low_strength"].tolist() == [1, 1]
    # default-named columns that are absent are skipped; an explicitly named one must exist
    assert classify_ewgsop2(table)["ewgsop2_low_performance"].isna().all()
    with pytest.raises(InputError, match="unknown column 'gait_m_s'"):
        classify_ewgsop2(table, columns=SarcopeniaColumns(gait_speed_m_s="gait_m_s"))
    with pytest.raises(InputError, match="needs grip strength"):
        classify_ewgsop2(table.drop(columns="grip_kg"))
    with pytest.raises(InputError, match="unknown sex code"):
        classify_ewgsop2(table.assign(sex=["M", "other"]))
    with pytest.raises(InputError, match="'grip_kg' must be numeric"):
        classify_awgs2019(table.assign(grip_kg=["29", "weak"]))


def test_sex_codes():
    codes = pd.Series(["M", "male", "Man", "f", "FEMALE", "woman", 1, 0, "1", None])
    assert normalize_sex(codes).tolist() == ["male"] * 3 + ["female"] * 3 + ["male", "female", "male", np.nan]


def test_mass_and_height():
    assert MUSCLE_DENSITY_G_ML == 1.06
    assert muscle_mass_g(np.array([100.0, 250.0])) == pytest.approx([106.0, 265.0])
    assert height_m(pd.DataFrame({"height_cm": [180.0]}), "height_cm").tolist() == [1.8]
    assert height_m(pd.DataFrame({"height": [165.0, 170.0]}), "height").tolist() == [1.65, 1.7]
    assert height_m(pd.DataFrame({"height": [1.65, 1.7]}), "height").tolist() == [1.65, 1.7]
    with pytest.raises(InputError, match="rename it height_m or height_cm"):
        height_m(pd.DataFrame({"height": [65.0]}), "height")


def test_bmi_adjusted_zscore_is_the_seed_003_regression_residual():
    rng = np.random.default_rng(2)
    n = 300
    sex = pd.Series(rng.choice(["male", "female"], n))
    bmi = pd.Series(rng.normal(26, 4, n))
    index = pd.Series(
        40 + 8 * (sex == "male") + 1.5 * bmi + 0.5 * (sex == "male") * bmi + rng.normal(0, 4, n)
    )
    z = bmi_adjusted_zscore(index, bmi, sex)
    male = (sex == "male").astype(float)
    x = sm.add_constant(pd.DataFrame({"bmi": bmi, "male": male, "male_x_bmi": male * bmi}))
    fit = sm.OLS(index, x).fit()
    assert z.to_numpy() == pytest.approx((fit.resid / np.sqrt(fit.mse_resid)).to_numpy(), rel=1e-10)
    assert abs(np.corrcoef(z, bmi)[0, 1]) < 1e-10 and abs(np.corrcoef(z, male)[0, 1]) < 1e-10
    with pytest.raises(InputError, match="both sexes"):
        bmi_adjusted_zscore(index, bmi, pd.Series(["male"] * n))


def test_muscle_indices():
    table = pd.DataFrame(
        {
            "volume_ml": [1000.0, 800.0, 900, 1100, 700, 950, 1200, 850],
            "height_cm": [180.0, 160, 170, 185, 155, 175, 190, 165],
            "bmi": [25.0, 22, 24, 27, 21, 26, 28, 23],
            "sex": list("MFMMFMMF"),
        }
    )
    result = muscle_indices(table, "volume_ml", height="height_cm")
    first = result.iloc[0]
    assert first["mass_g"] == pytest.approx(1060.0)
    assert first["volume_ml_m2"] == pytest.approx(1000 / 1.8**2)
    assert first["mass_g_m2"] == pytest.approx(1060 / 1.8**2)
    assert first["mass_g_per_bmi"] == pytest.approx(1060 / 25)
    assert result["mass_g_m2_bmi_z"].notna().all()


def test_docstring_examples_run():
    import doctest

    import myoscan.sarcopenia as module

    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted >= 10
