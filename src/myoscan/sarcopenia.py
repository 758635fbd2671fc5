"""Sarcopenia criteria (EWGSOP2, AWGS 2019) and muscle-mass indices from imaging.

Classification works on a participants table with one row per subject. Each criterion
(low strength, low muscle mass, low physical performance) uses every measure that is
available for it: it is low when any available measure is below its cut-off, not low
when at least one is available and none is below, and missing when none is available.
Criteria are then combined with three-valued logic, so a category is missing only when
the missing criterion could change it. The category follows the consensus algorithm:

* EWGSOP2 (Cruz-Jentoft 2019; seed 001): ``probable`` = low strength, ``confirmed`` =
  low strength + low muscle mass, ``severe`` = confirmed + low performance; ``none``
  when strength is not low.
* AWGS 2019 (Chen 2020; seed 004): ``possible`` = low strength or low performance,
  ``sarcopenia`` = low muscle mass + (low strength or low performance), ``severe`` = low
  muscle mass + low strength + low performance; ``none`` otherwise.

Imaging gives muscle volume, not DXA lean mass: :func:`muscle_indices` turns volume into
mass (1.06 g/mL, seed 003), height²- and BMI-adjusted indices and BMI-adjusted z-scores.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from myoscan.cohort._columns import (
    normalize_sex,
    numeric_column,
    require_columns,
)
from myoscan.errors import InputError

__all__ = [
    "AWGS2019_ALMI_KG_M2",
    "AWGS2019_CHAIR_STAND_S",
    "AWGS2019_GAIT_SPEED_M_S",
    "AWGS2019_GRIP_KG",
    "AWGS2019_SPPB_SCORE",
    "EWGSOP2_ALMI_KG_M2",
    "EWGSOP2_ASM_KG",
    "EWGSOP2_CHAIR_STAND_S",
    "EWGSOP2_GAIT_SPEED_M_S",
    "EWGSOP2_GRIP_KG",
    "EWGSOP2_SPPB_SCORE",
    "MUSCLE_DENSITY_G_ML",
    "Awgs2019Config",
    "Ewgsop2Config",
    "SarcopeniaColumns",
    "SexCutoff",
    "bmi_adjusted_zscore",
    "classify_awgs2019",
    "classify_ewgsop2",
    "height_m",
    "muscle_indices",
    "muscle_mass_g",
    "normalize_sex",
]

log = logging.getLogger(__name__)

#: Skeletal muscle density used to turn volume into mass: 1.06 kg/L (seed 003).
MUSCLE_DENSITY_G_ML = 1.06


@dataclass(frozen=True)
class SexCutoff:
    """A sex-specific cut-off value.

    Examples
    --------
    >>> SexCutoff(male=27.0, female=16.0).for_sex(pd.Series(["female", "male"])).tolist()
    [16.0, 27.0]
    """

    male: float
    female: float

    def for_sex(self, sex: pd.Series) -> pd.Series:
        """Cut-off per row of a normalised sex column (NaN where sex is missing)."""
        return sex.map({"male": self.male, "female": self.female}).astype(float)


EWGSOP2_GRIP_KG = SexCutoff(male=27.0, female=16.0)  # seed 001: grip < 27 kg men, < 16 kg women
EWGSOP2_ALMI_KG_M2 = SexCutoff(male=7.0, female=5.5)  # seed 001: ALMI < 7.0 / < 5.5 kg/m2
EWGSOP2_ASM_KG = SexCutoff(male=20.0, female=15.0)  # EWGSOP2 (seed 001 ref 1): ASM < 20 / < 15 kg
EWGSOP2_CHAIR_STAND_S = 15.0  # EWGSOP2 (seed 001 ref 1): five rises > 15 s
EWGSOP2_GAIT_SPEED_M_S = 0.8  # EWGSOP2 (issue 8): severe when gait speed <= 0.8 m/s
EWGSOP2_SPPB_SCORE = 8.0  # EWGSOP2 (seed 001 ref 1): SPPB <= 8 points
AWGS2019_GRIP_KG = SexCutoff(male=28.0, female=18.0)  # AWGS 2019 (seed 004 ref 4): < 28 / < 18 kg
AWGS2019_ALMI_KG_M2 = {  # AWGS 2019: DXA < 7.0 / < 5.4 (seed 004), BIA < 7.0 / < 5.7 kg/m2 (issue 8)
    "dxa": SexCutoff(male=7.0, female=5.4),
    "bia": SexCutoff(male=7.0, female=5.7),
}
AWGS2019_GAIT_SPEED_M_S = 1.0  # AWGS 2019 (issue 8): 6-m gait speed < 1.0 m/s
AWGS2019_CHAIR_STAND_S = 12.0  # AWGS 2019 (seed 004 ref 4): five-time chair stand >= 12 s
AWGS2019_SPPB_SCORE = 9.0  # AWGS 2019 (seed 004 ref 4): SPPB <= 9 points


@dataclass(frozen=True)
class Ewgsop2Config:
    """EWGSOP2 cut-offs.

    Low when ``grip < grip_kg``, ``chair stand > chair_stand_s``, ``ALMI < almi_kg_m2``,
    ``ASM < asm_kg``, ``gait <= gait_speed_m_s``, ``SPPB <= sppb_score``.
    """

    grip_kg: SexCutoff = EWGSOP2_GRIP_KG
    chair_stand_s: float = EWGSOP2_CHAIR_STAND_S
    almi_kg_m2: SexCutoff = EWGSOP2_ALMI_KG_M2
    asm_kg: SexCutoff = EWGSOP2_ASM_KG
    gait_speed_m_s: float = EWGSOP2_GAIT_SPEED_M_S
    sppb_score: float = EWGSOP2_SPPB_SCORE


@dataclass(frozen=True)
class Awgs2019Config:
    """AWGS 2019 cut-offs.

    Low when ``grip < grip_kg``, ``ALMI < almi_kg_m2`` (by ``mass_method`` unless given),
    ``gait < gait_speed_m_s``, ``chair stand >= chair_stand_s``, ``SPPB <= sppb_score``.
    """

    grip_kg: SexCutoff = AWGS2019_GRIP_KG
    mass_method: Literal["dxa", "bia"] = "dxa"
    almi_kg_m2: SexCutoff | None = None
    gait_speed_m_s: float = AWGS2019_GAIT_SPEED_M_S
    chair_stand_s: float = AWGS2019_CHAIR_STAND_S
    sppb_score: float = AWGS2019_SPPB_SCORE

    def __post_init__(self) -> None:
        if self.mass_method not in AWGS2019_ALMI_KG_M2:
            raise InputError(f"AWGS 2019 mass method must be 'dxa' or 'bia', got {self.mass_method!r}")

    @property
    def almi_cutoff(self) -> SexCutoff:
        """The ALMI cut-off in use (explicit, else the one for ``mass_method``)."""
        return self.almi_kg_m2 or AWGS2019_ALMI_KG_M2[self.mass_method]


@dataclass(frozen=True)
class SarcopeniaColumns:
    """Which column holds each measure; ``None`` = not measured.

    A measure left at its default column name is skipped when the table has no such
    column; a column named explicitly must exist.
    """

    sex: str = "sex"
    grip_kg: str | None = "grip_kg"
    almi_kg_m2: str | None = "almi_kg_m2"
    asm_kg: str | None = None
    gait_speed_m_s: str | None = "gait_speed_m_s"
    chair_stand_s: str | None = None
    sppb_score: str | None = None


def _measures(table: pd.DataFrame, columns: SarcopeniaColumns, *, source: str) -> dict[str, pd.Series]:
    """Numeric series per available measure, keyed by the SarcopeniaColumns field name."""
    require_columns(table, [columns.sex], source=source)
    found: dict[str, pd.Series] = {}
    for spec in dataclasses.fields(columns):
        name = getattr(columns, spec.name)
        if spec.name == "sex" or name is None:
            continue
        if name not in table.columns and name == spec.default:
            log.info("%s: no %r column, %s not used", source, name, spec.name)
            continue
        found[spec.name] = numeric_column(table, name, source=source)
    return found


def _low(values: pd.Series, cutoff: pd.Series | float, op: str) -> pd.Series:
    """Nullable boolean ``values <op> cutoff``; missing where either side is missing."""
    cut = cutoff if isinstance(cutoff, pd.Series) else pd.Series(cutoff, index=values.index)
    compare = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}[op]
    result = pd.Series(compare(values.to_numpy(), cut.to_numpy()), index=values.index, dtype="boolean")
    return result.mask(values.isna() | cut.isna())


def _any_low(flags: Sequence[pd.Series], index: pd.Index) -> pd.Series:
    """Combine flags: True if any is True, False if some are known and none True, else NA."""
    if not flags:
        return pd.Series(pd.NA, index=index, dtype="boolean")
    stacked = pd.concat(flags, axis=1)
    any_true = stacked.eq(True).any(axis=1)
    any_known = stacked.notna().any(axis=1)
    return any_true.astype("boolean").mask(~any_known)


def _as_int(flag: pd.Series) -> pd.Series:
    return flag.astype("Int8")


def classify_ewgsop2(
    table: pd.DataFrame,
    *,
    columns: SarcopeniaColumns = SarcopeniaColumns(),
    config: Ewgsop2Config = Ewgsop2Config(),
    source: str = "participants table",
) -> pd.DataFrame:
    """Classify each subject by the EWGSOP2 algorithm.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject with sex and the measures named in ``columns`` (grip in kg,
        ALMI in kg/m², ASM in kg, gait speed in m/s, chair-stand time in s, SPPB points).
    columns : SarcopeniaColumns
        Column of each measure.
    config : Ewgsop2Config
        Cut-offs (defaults from EWGSOP2).
    source : str
        Name used in messages.

    Returns
    -------
    pandas.DataFrame
        ``table`` plus ``ewgsop2_low_strength``, ``ewgsop2_low_muscle_mass``,
        ``ewgsop2_low_performance`` (0/1, empty when not measured),
        ``ewgsop2_category`` in {'none', 'probable', 'confirmed', 'severe'} (empty when
        strength is unknown) and 0/1 outcome columns ``ewgsop2_probable_sarcopenia``
        (low strength), ``ewgsop2_sarcopenia`` (confirmed or severe) and
        ``ewgsop2_severe_sarcopenia``.

    Raises
    ------
    InputError
        If sex or every strength measure is missing, or a value is not a number.

    Examples
    --------
    >>> t = pd.DataFrame({"sex": ["M", "F"], "grip_kg": [26.0, 16.0], "almi_kg_m2": [6.9, 5.0]})
    >>> classify_ewgsop2(t)["ewgsop2_category"].tolist()
    ['confirmed', 'none']
    """
    found = _measures(table, columns, source=source)
    if not {"grip_kg", "chair_stand_s"} & found.keys():
        raise InputError(f"{source}: EWGSOP2 needs grip strength ({columns.grip_kg!r}) or chair-stand time")
    sex = normalize_sex(table[columns.sex], source=f"{source} column {columns.sex!r}")
    tests = {
        "grip_kg": ("strength", config.grip_kg.for_sex(sex), "<"),
        "chair_stand_s": ("strength", config.chair_stand_s, ">"),
        "almi_kg_m2": ("mass", config.almi_kg_m2.for_sex(sex), "<"),
        "asm_kg": ("mass", config.asm_kg.for_sex(sex), "<"),
        "gait_speed_m_s": ("performance", config.gait_speed_m_s, "<="),
        "sppb_score": ("performance", config.sppb_score, "<="),
    }
    strength, mass, performance = _criteria(found, tests, table.index)
    category = pd.Series(np.nan, index=table.index, dtype=object)
    category[_sure(~strength)] = "none"
    category[_sure(strength)] = "probable"
    confirmed = _sure(strength) & _sure(mass)
    category[confirmed] = "confirmed"
    category[confirmed & _sure(performance)] = "severe"
    could_be_confirmed = _sure(strength) & _maybe(mass)
    return _with_results("ewgsop2", table, strength, mass, performance, category, {
        "probable_sarcopenia": strength,
        "sarcopenia": _known(category, {"confirmed", "severe"}, could_be_confirmed & ~confirmed),
        "severe_sarcopenia": _known(
            category, {"severe"}, could_be_confirmed & _maybe(performance) & (category != "severe")
        ),
    })  # fmt: skip


def classify_awgs2019(
    table: pd.DataFrame,
    *,
    columns: SarcopeniaColumns = SarcopeniaColumns(),
    config: Awgs2019Config = Awgs2019Config(),
    source: str = "participants table",
) -> pd.DataFrame:
    """Classify each subject by the AWGS 2019 algorithm.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject with sex and the measures named in ``columns``.
    columns : SarcopeniaColumns
        Column of each measure (``asm_kg`` is not used by AWGS 2019).
    config : Awgs2019Config
        Cut-offs; ``mass_method`` picks the DXA or BIA ALMI cut-off.
    source : str
        Name used in messages.

    Returns
    -------
    pandas.DataFrame
        ``table`` plus ``awgs2019_low_strength``, ``awgs2019_low_muscle_mass``,
        ``awgs2019_low_performance`` (0/1), ``awgs2019_category`` in {'none', 'possible',
        'sarcopenia', 'severe'} and 0/1 outcomes ``awgs2019_possible_sarcopenia``,
        ``awgs2019_sarcopenia`` (sarcopenia or severe) and ``awgs2019_severe_sarcopenia``.

    Raises
    ------
    InputError
        If sex or every strength and performance measure is missing.

    Examples
    --------
    >>> t = pd.DataFrame({"sex": ["M", "F"], "grip_kg": [27.9, 18.0], "almi_kg_m2": [6.9, 5.3],
    ...                   "gait_speed_m_s": [1.2, 1.0]})
    >>> classify_awgs2019(t)["awgs2019_category"].tolist()
    ['sarcopenia', 'none']
    """
    found = _measures(table, columns, source=source)
    found.pop("asm_kg", None)
    if not {"grip_kg", "gait_speed_m_s", "chair_stand_s", "sppb_score"} & found.keys():
        raise InputError(
            f"{source}: AWGS 2019 needs grip strength ({columns.grip_kg!r}) or a performance test"
        )
    sex = normalize_sex(table[columns.sex], source=f"{source} column {columns.sex!r}")
    tests = {
        "grip_kg": ("strength", config.grip_kg.for_sex(sex), "<"),
        "almi_kg_m2": ("mass", config.almi_cutoff.for_sex(sex), "<"),
        "gait_speed_m_s": ("performance", config.gait_speed_m_s, "<"),
        "chair_stand_s": ("performance", config.chair_stand_s, ">="),
        "sppb_score": ("performance", config.sppb_score, "<="),
    }
    strength, mass, performance = _criteria(found, tests, table.index)
    function_low = strength | performance  # Kleene logic: unknown unless decided
    category = pd.Series(np.nan, index=table.index, dtype=object)
    category[_sure(~function_low)] = "none"
    category[_sure(function_low)] = "possible"
    sarcopenic = _sure(function_low) & _sure(mass)
    category[sarcopenic] = "sarcopenia"
    category[sarcopenic & _sure(strength) & _sure(performance)] = "severe"
    could_be_sarcopenic = _sure(function_low) & _maybe(mass)
    could_be_severe = could_be_sarcopenic & _maybe(strength) & _maybe(performance)
    return _with_results("awgs2019", table, strength, mass, performance, category, {
        "possible_sarcopenia": function_low,
        "sarcopenia": _known(category, {"sarcopenia", "severe"}, could_be_sarcopenic & ~sarcopenic),
        "severe_sarcopenia": _known(category, {"severe"}, could_be_severe & (category != "severe")),
    })  # fmt: skip


def _criteria(
    found: dict[str, pd.Series], tests: dict[str, tuple[str, pd.Series | float, str]], index: pd.Index
) -> tuple[pd.Series, pd.Series, pd.Series]:
    flags: dict[str, list[pd.Series]] = {"strength": [], "mass": [], "performance": []}
    for measure, (criterion, cutoff, op) in tests.items():
        if measure in found:
            flags[criterion].append(_low(found[measure], cutoff, op))
    return tuple(_any_low(flags[c], index) for c in ("strength", "mass", "performance"))  # type: ignore[return-value]


def _sure(flag: pd.Series) -> pd.Series:
    """Plain bool: known to be True."""
    return flag.fillna(False).astype(bool)


def _maybe(flag: pd.Series) -> pd.Series:
    """Plain bool: True or unknown."""
    return flag.fillna(True).astype(bool)


def _known(category: pd.Series, positive: set[str], unknown: pd.Series) -> pd.Series:
    """0/1 indicator of ``category in positive``; missing where undecidable."""
    flag = category.isin(positive).astype("boolean")
    return flag.mask(category.isna() | unknown)


def _with_results(
    prefix: str,
    table: pd.DataFrame,
    strength: pd.Series,
    mass: pd.Series,
    performance: pd.Series,
    category: pd.Series,
    outcomes: dict[str, pd.Series],
) -> pd.DataFrame:
    result = table.copy()
    result[f"{prefix}_low_strength"] = _as_int(strength)
    result[f"{prefix}_low_muscle_mass"] = _as_int(mass)
    result[f"{prefix}_low_performance"] = _as_int(performance)
    result[f"{prefix}_category"] = category
    for name, flag in outcomes.items():
        result[f"{prefix}_{name}"] = _as_int(flag)
    return result


def muscle_mass_g(volume_ml: pd.Series | np.ndarray | float, *, density_g_ml: float = MUSCLE_DENSITY_G_ML):
    """Muscle mass from volume at 1.06 g/mL (seed 003).

    Examples
    --------
    >>> round(muscle_mass_g(1000.0), 6)
    1060.0
    """
    return volume_ml * density_g_ml


#: Plausible adult heights, used to tell metres from centimetres when a column has no unit.
_HEIGHT_RANGE_M = (1.0, 2.5)


def height_m(table: pd.DataFrame, column: str, *, source: str = "participants table") -> pd.Series:
    """Height in metres from a ``*_m`` or ``*_cm`` column (a unit-less one is judged by its values).

    Raises
    ------
    InputError
        If the column is missing, not numeric, or a unit-less column is neither
        plausibly metres nor centimetres.

    Examples
    --------
    >>> height_m(pd.DataFrame({"height_cm": [170.0]}), "height_cm").tolist()
    [1.7]
    """
    values = numeric_column(table, column, source=source)
    if column.endswith("_cm"):
        return values / 100.0
    if column.endswith("_m"):
        return values
    median = float(values.median())
    low, high = _HEIGHT_RANGE_M
    if low <= median <= high:
        log.info("%s: column %r read as metres (median %.2f)", source, column, median)
        return values
    if 100 * low <= median <= 100 * high:
        log.info("%s: column %r read as centimetres (median %.0f)", source, column, median)
        return values / 100.0
    raise InputError(
        f"{source}: cannot tell the unit of column {column!r} (median {median:g}); rename it "
        f"height_m or height_cm"
    )


def bmi_adjusted_zscore(index: pd.Series, bmi: pd.Series, sex: pd.Series) -> pd.Series:
    """BMI-adjusted z-score of a muscle index: residual of ``index ~ BMI + sex + sex x BMI`` / residual SD.

    The regression is the one of seed 003 (``SMM = b0 + b1 BMI + b2 sex + b3 sex x BMI``);
    the z-score is the residual divided by the root mean squared error, so it is free of
    BMI and sex by construction.

    Parameters
    ----------
    index, bmi : pandas.Series
        Muscle index (e.g. mass / height²) and BMI in kg/m², same index.
    sex : pandas.Series
        Normalised sex (``'male'`` / ``'female'``).

    Returns
    -------
    pandas.Series
        z-scores, NaN where any input is missing.

    Raises
    ------
    InputError
        If fewer than 6 subjects have complete data, or only one sex is present.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> bmi = pd.Series(rng.normal(25, 3, 40)); sex = pd.Series(["male", "female"] * 20)
    >>> z = bmi_adjusted_zscore(2 * bmi + rng.normal(0, 1, 40), bmi, sex)
    >>> abs(round(float(z.mean()), 6))
    0.0
    """
    import statsmodels.api as sm

    male = (sex == "male").astype(float).where(sex.notna())
    design = pd.DataFrame({"bmi": bmi, "male": male, "male_x_bmi": male * bmi})
    data = pd.concat([index.rename("index"), design], axis=1).dropna()
    if len(data) < 6 or data["male"].nunique() < 2:
        raise InputError(
            f"BMI-adjusted z-score needs at least 6 subjects of both sexes with index, BMI and sex; "
            f"got {len(data)} ({data['male'].nunique()} sex)"
        )
    fit = sm.OLS(data["index"], sm.add_constant(data[["bmi", "male", "male_x_bmi"]])).fit()
    z = fit.resid / np.sqrt(fit.mse_resid)
    return z.reindex(index.index)


def _mass_stem(volume_column: str) -> str:
    for suffix in ("_volume_ml", "volume_ml", "_ml", "_cm3"):
        if volume_column.endswith(suffix):
            stem = volume_column[: -len(suffix)]
            return f"{stem}_" if stem else ""
    return f"{volume_column}_"


def muscle_indices(
    table: pd.DataFrame,
    volume_column: str,
    *,
    height: str | None = "height_m",
    bmi: str | None = "bmi",
    sex: str | None = "sex",
    density_g_ml: float = MUSCLE_DENSITY_G_ML,
    source: str = "table",
) -> pd.DataFrame:
    """Add mass, height²- and BMI-adjusted indices and BMI-adjusted z-scores of a volume column.

    For ``volume_ml`` (or ``tmv_cm3``, stem ``tmv_``) the columns added are ``mass_g``
    (volume x density), ``volume_ml_m2`` (volume / height², seed 004), ``mass_g_m2``
    (mass / height², seed 003), ``mass_g_per_bmi`` (mass / BMI, seed 003) and
    ``mass_g_m2_bmi_z`` (BMI-adjusted z-score of mass / height², seed 003). Indices whose
    inputs are not given (``None``) are left out.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject (one label).
    volume_column : str
        Muscle volume in mL (= cm³).
    height, bmi, sex : str or None
        Columns of height (``*_m`` or ``*_cm``), BMI in kg/m² and sex.
    density_g_ml : float
        Muscle density in g/mL.
    source : str
        Name used in messages.

    Returns
    -------
    pandas.DataFrame
        ``table`` with the new columns.

    Raises
    ------
    InputError
        If a named column is missing or not numeric.

    Examples
    --------
    >>> t = pd.DataFrame({"tmv_cm3": [1000.0], "height_m": [2.0], "bmi": [20.0]})
    >>> row = muscle_indices(t, "tmv_cm3", sex=None).iloc[0, 3:]
    >>> row.round(3).to_dict()  # doctest: +NORMALIZE_WHITESPACE
    {'tmv_mass_g': 1060.0, 'tmv_cm3_m2': 250.0, 'tmv_mass_g_m2': 265.0,
     'tmv_mass_g_per_bmi': 53.0}
    """
    volume = numeric_column(table, volume_column, source=source)
    stem = _mass_stem(volume_column)
    result = table.copy()
    mass = muscle_mass_g(volume, density_g_ml=density_g_ml)
    result[f"{stem}mass_g"] = mass
    if height is not None:
        h2 = height_m(table, height, source=source) ** 2
        result[f"{volume_column}_m2"] = volume / h2
        result[f"{stem}mass_g_m2"] = mass / h2
    if bmi is not None:
        bmi_values = numeric_column(table, bmi, source=source)
        result[f"{stem}mass_g_per_bmi"] = mass / bmi_values
        if height is not None and sex is not None:
            sexes = normalize_sex(table[sex], source=f"{source} column {sex!r}")
            result[f"{stem}mass_g_m2_bmi_z"] = bmi_adjusted_zscore(
                result[f"{stem}mass_g_m2"], bmi_values, sexes
            )
    return result
