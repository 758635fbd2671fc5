"""Measurement agreement and reliability: Bland-Altman, error, correlation and ICC.

Two tables of the same measures (e.g. muscle volume and IMF from a CNN and from manual
ground truth, or from two raters) are paired by case and label, and for every label and
measure this module reports what seeds 000 and 002 report (Tables 2 and 3, Figs. 3-4):

* Bland-Altman (Bland & Altman 1986): mean bias ``a - b``, SD of the differences, 95 %
  limits of agreement ``bias +- 1.96 SD`` with the approximate confidence intervals of
  the paper (SE of the bias ``s / sqrt(n)``, of each limit ``sqrt(3 s^2 / n)``), and
  proportional bias (slope of the difference on the mean, with p; seed 000);
* MAE, RMSE, Pearson r and r^2, and the slope of the reference on the method through
  the origin (seed 002's bias correction, ``b = beta * a``);
* all six intraclass correlations of Shrout & Fleiss (1979) -- ICC(1,1), ICC(2,1)
  (two-way random, absolute agreement: the seeds' choice), ICC(3,1) and the average-measure
  forms -- with 95 % CI and the F-test p, from :func:`pingouin.intraclass_corr`.

With three or more raters only the ICCs are defined (interrater reliability).

Examples
--------
>>> a = pd.DataFrame({"subject": list("pqrs"), "label_id": 1, "volume_ml": [10.0, 12, 15, 11]})
>>> b = a.assign(volume_ml=[11.0, 12, 14, 12])
>>> row = agreement_table({"cnn": a, "gt": b}, measures=["volume_ml"]).iloc[0]
>>> float(row["bias"]), float(row["mae"]), int(row["n_pairs"])
(-0.25, 0.75, 4)
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from myoscan._typing import PathLike
from myoscan.errors import InputError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ICC_FORMS",
    "LOA_SD_MULTIPLIER",
    "MIN_PAIRS",
    "BlandAltman",
    "agreement_figure",
    "agreement_from_pairs",
    "agreement_stats",
    "agreement_table",
    "bland_altman",
    "icc_table",
    "measure_unit",
    "pair_measurements",
    "save_figure",
]

#: Limits of agreement are bias +- this many SDs of the differences (seed 002 Figs. 3-4;
#: Bland & Altman 1986 rounded it to 2).
LOA_SD_MULTIPLIER = 1.96
#: Fewest paired cases for which agreement statistics (and ICC) are computed.
MIN_PAIRS = 3
#: pingouin's ICC types (McGraw & Wong naming) -> Shrout & Fleiss (1979) column prefixes.
ICC_FORMS: dict[str, str] = {
    "ICC(1,1)": "icc1_1", "ICC(A,1)": "icc2_1", "ICC(C,1)": "icc3_1",
    "ICC(1,k)": "icc1_k", "ICC(A,k)": "icc2_k", "ICC(C,k)": "icc3_k",
}  # fmt: skip

#: Unit suffixes of measure names (metric-table contract) -> unit shown on axes.
_UNITS: tuple[tuple[str, str], ...] = (
    ("cm3_m2", "cm³/m²"), ("cm2_m2", "cm²/m²"), ("g_m2", "g/m²"), ("cm3", "cm³"), ("cm2", "cm²"),
    ("ml", "ml"), ("pct", "%"), ("hu", "HU"), ("mm", "mm"), ("kg", "kg"), ("g", "g"), ("voxels", "voxels"),
)  # fmt: skip


def measure_unit(measure: str) -> str:
    """Return the unit of a measure from its name suffix (``''`` if dimensionless).

    Examples
    --------
    >>> measure_unit("volume_ml"), measure_unit("imf_pct"), measure_unit("tvi_cm3_m2"), measure_unit("dice")
    ('ml', '%', 'cm³/m²', '')
    """
    lower = measure.lower()
    return next((unit for suffix, unit in _UNITS if lower.endswith(f"_{suffix}")), "")


@dataclass(frozen=True)
class BlandAltman:
    """Bland-Altman agreement of a method ``a`` with a reference ``b`` (units of the measure).

    Attributes
    ----------
    n_pairs : int
        Number of paired observations.
    bias, sd_diff : float
        Mean and SD (ddof 1) of ``a - b``.
    bias_ci95_low, bias_ci95_high : float
        95 % CI of the bias (t distribution, n - 1 df).
    loa_lower, loa_upper : float
        Limits of agreement ``bias -+ multiplier x sd_diff``.
    loa_lower_ci95_low, loa_lower_ci95_high, loa_upper_ci95_low, loa_upper_ci95_high : float
        Approximate 95 % CIs of the limits, SE ``sqrt(3 sd^2 / n)`` (Bland & Altman 1986).
    prop_bias_slope, prop_bias_intercept, prop_bias_p : float
        Least-squares line of ``a - b`` on ``(a + b) / 2`` and the p value of its slope.
    """

    n_pairs: int
    bias: float
    sd_diff: float
    bias_ci95_low: float
    bias_ci95_high: float
    loa_lower: float
    loa_upper: float
    loa_lower_ci95_low: float
    loa_lower_ci95_high: float
    loa_upper_ci95_low: float
    loa_upper_ci95_high: float
    prop_bias_slope: float
    prop_bias_intercept: float
    prop_bias_p: float


def _paired(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Two equal-length float vectors with at least MIN_PAIRS finite pairs, NaN pairs dropped."""
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if x.shape != y.shape:
        raise InputError(f"paired measurements differ in length: {x.size} vs {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < MIN_PAIRS:
        raise InputError(f"agreement needs at least {MIN_PAIRS} paired cases, got {int(keep.sum())}")
    return x[keep], y[keep]


def bland_altman(
    a: npt.ArrayLike, b: npt.ArrayLike, *, sd_multiplier: float = LOA_SD_MULTIPLIER
) -> BlandAltman:
    """Bland-Altman bias, limits of agreement and proportional bias of ``a`` against ``b``.

    Parameters
    ----------
    a, b : (N,) array_like of float
        The method and the reference, paired by position; pairs with a NaN are dropped.
    sd_multiplier : float
        Limits are ``bias -+ sd_multiplier x SD`` (1.96; 2 reproduces Bland & Altman 1986).

    Returns
    -------
    BlandAltman

    Raises
    ------
    InputError
        If the lengths differ or fewer than :data:`MIN_PAIRS` complete pairs remain.

    Examples
    --------
    >>> ba = bland_altman([1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 2.5, 4.0])
    >>> ba.bias, round(ba.sd_diff, 4)
    (0.0, 0.4082)
    """
    x, y = _paired(a, b)
    diff, mean = x - y, (x + y) / 2.0
    n = diff.size
    bias, sd = float(diff.mean()), float(diff.std(ddof=1))
    t = float(stats.t.ppf(0.975, n - 1))
    se_bias, se_limit = sd / math.sqrt(n), math.sqrt(3.0 * sd**2 / n)
    lower, upper = bias - sd_multiplier * sd, bias + sd_multiplier * sd
    if np.ptp(mean) > 0:
        fit = stats.linregress(mean, diff)
        slope, intercept, p = float(fit.slope), float(fit.intercept), float(fit.pvalue)
    else:
        slope = intercept = p = math.nan
    return BlandAltman(
        n_pairs=n, bias=bias, sd_diff=sd,
        bias_ci95_low=bias - t * se_bias, bias_ci95_high=bias + t * se_bias,
        loa_lower=lower, loa_upper=upper,
        loa_lower_ci95_low=lower - t * se_limit, loa_lower_ci95_high=lower + t * se_limit,
        loa_upper_ci95_low=upper - t * se_limit, loa_upper_ci95_high=upper + t * se_limit,
        prop_bias_slope=slope, prop_bias_intercept=intercept, prop_bias_p=p,
    )  # fmt: skip


@contextlib.contextmanager
def _pingouin_unrounded() -> Iterator[None]:
    """Switch off pingouin's output rounding (it rounds ICC CIs to 2 decimals) and restore it."""
    import pingouin

    saved = dict(pingouin.options)
    try:
        for key in [k for k in pingouin.options if k == "round" or k.startswith("round.")]:
            pingouin.options[key] = None
        yield
    finally:
        pingouin.options.clear()
        pingouin.options.update(saved)


def icc_table(ratings: npt.ArrayLike) -> pd.DataFrame:
    """Compute the six Shrout & Fleiss intraclass correlations of a targets x raters matrix.

    Parameters
    ----------
    ratings : (N, K) array_like of float
        Rating of target i by rater j; N >= 3 targets, K >= 2 raters, no missing values.

    Returns
    -------
    pandas.DataFrame
        Indexed by form ``icc1_1``, ``icc2_1``, ``icc3_1``, ``icc1_k``, ``icc2_k``,
        ``icc3_k`` (Shrout & Fleiss ICC(1,1) ... ICC(3,k); pingouin's ICC(1,1), ICC(A,1),
        ICC(C,1) ...), columns ``icc``, ``ci95_low``, ``ci95_high``, ``f``, ``df1``, ``df2``,
        ``p`` (F test of ICC = 0).

    Raises
    ------
    InputError
        If the matrix is not 2D, has fewer than 3 targets or 2 raters, or misses values.

    Examples
    --------
    >>> icc_table([[1, 2], [3, 3], [5, 6], [7, 7]]).loc["icc2_1", "icc"].round(3)
    np.float64(0.96)
    """
    import pingouin

    matrix = np.asarray(ratings, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] < MIN_PAIRS or matrix.shape[1] < 2:
        raise InputError(f"ICC needs at least {MIN_PAIRS} cases rated by at least 2 raters, "
                         f"got a {' x '.join(map(str, matrix.shape))} table")
    if not np.isfinite(matrix).all():
        raise InputError("ICC needs every case rated by every rater; drop incomplete cases first")
    n, k = matrix.shape
    long = pd.DataFrame({"target": np.repeat(np.arange(n), k), "rater": np.tile(np.arange(k), n),
                         "rating": matrix.ravel()})
    with _pingouin_unrounded(), np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        # Constant data give NaN (0/0), which is the answer. pingouin 0.7 itself calls a pandas
        # method deprecated in pandas 3.1; that notice is for pingouin, not for our users.
        warnings.filterwarnings("ignore", message="The inplace keyword", module="pingouin")
        result = pingouin.intraclass_corr(long, targets="target", raters="rater", ratings="rating")
    ci = np.stack(result["CI95"].to_numpy()).astype(float)
    table = pd.DataFrame({
        "icc": result["ICC"].to_numpy(float), "ci95_low": ci[:, 0], "ci95_high": ci[:, 1],
        "f": result["F"].to_numpy(float), "df1": result["df1"].to_numpy(float),
        "df2": result["df2"].to_numpy(float), "p": result["pval"].to_numpy(float),
    }, index=pd.Index([ICC_FORMS[t] for t in result["Type"]], name="form"))
    return table.loc[list(ICC_FORMS.values())]


def _icc_columns(matrix: np.ndarray) -> dict[str, float]:
    """ICC forms flattened to ``icc2_1``, ``icc2_1_ci95_low``, ``icc2_1_ci95_high``, ``icc2_1_p`` ..."""
    table = icc_table(matrix)
    out: dict[str, float] = {}
    for form, row in table.iterrows():
        out[str(form)] = float(row["icc"])
        out[f"{form}_ci95_low"], out[f"{form}_ci95_high"] = float(row["ci95_low"]), float(row["ci95_high"])
        out[f"{form}_p"] = float(row["p"])
    return out


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def agreement_stats(
    a: npt.ArrayLike, b: npt.ArrayLike, *, sd_multiplier: float = LOA_SD_MULTIPLIER
) -> dict[str, float]:
    """Every agreement statistic of a method ``a`` against a reference ``b``.

    Parameters
    ----------
    a, b : (N,) array_like of float
        Paired measurements (method, reference); pairs with a NaN are dropped.
    sd_multiplier : float
        Width of the limits of agreement in SDs of the differences.

    Returns
    -------
    dict of str to float
        ``n_pairs``, ``mean_a``, ``se_a``, ``mean_b``, ``se_b`` (mean +- SE, seed 002
        Table 2), the fields of :class:`BlandAltman`, ``mae``, ``rmse``, ``pearson_r``,
        ``pearson_p``, ``r2``, ``slope_origin`` (beta of ``b = beta a``) with
        ``slope_origin_ci95_low`` / ``_high``, and for each ICC form ``<form>``,
        ``<form>_ci95_low``, ``<form>_ci95_high``, ``<form>_p``. Correlations of
        constant data are NaN.

    Raises
    ------
    InputError
        If fewer than :data:`MIN_PAIRS` complete pairs remain.

    Examples
    --------
    >>> s = agreement_stats([2.0, 4.0, 6.0, 8.0], [1.0, 2.0, 3.0, 4.0])
    >>> round(s["slope_origin"], 9), round(s["rmse"], 4), s["r2"]
    (0.5, 2.7386, 1.0)
    """
    import statsmodels.api as sm

    x, y = _paired(a, b)
    diff = x - y
    out: dict[str, float] = {"n_pairs": x.size}
    out["mean_a"], out["se_a"] = _mean_se(x)
    out["mean_b"], out["se_b"] = _mean_se(y)
    out.update(asdict(bland_altman(x, y, sd_multiplier=sd_multiplier)))
    out["mae"] = float(np.abs(diff).mean())
    out["rmse"] = float(np.sqrt((diff**2).mean()))
    if np.ptp(x) > 0 and np.ptp(y) > 0:
        r = stats.pearsonr(x, y)
        out["pearson_r"], out["pearson_p"] = float(r.statistic), float(r.pvalue)
    else:
        out["pearson_r"] = out["pearson_p"] = math.nan
    out["r2"] = out["pearson_r"] ** 2
    if np.any(x != 0):
        fit = sm.OLS(y, x[:, None]).fit()  # no constant: regression through the origin
        low, high = fit.conf_int(0.05)[0]
        out["slope_origin"] = float(fit.params[0])
        out["slope_origin_ci95_low"], out["slope_origin_ci95_high"] = float(low), float(high)
    else:
        out["slope_origin"] = out["slope_origin_ci95_low"] = out["slope_origin_ci95_high"] = math.nan
    out.update(_icc_columns(np.column_stack([x, y])))
    return out


def _resolve_key(key: str, columns: pd.Index, table_name: str) -> str:
    """Column for a join key; ``label`` falls back to ``label_id`` then ``name``."""
    if key in columns:
        return key
    if key == "label":
        for candidate in ("label_id", "name"):
            if candidate in columns:
                return candidate
    raise InputError(f"{table_name}: no column {key!r} to match rows on; "
                     f"columns are {', '.join(map(str, columns))}")


def _check_table(name: str, table: pd.DataFrame, keys: Sequence[str], measures: Sequence[str]) -> None:
    """Raise unless ``table`` has rows, the measure columns, numeric, and unique keys."""
    if table.empty:
        raise InputError(f"{name}: no rows; expected one row per case (and label) with {', '.join(measures)}")
    missing = [m for m in measures if m not in table.columns]
    if missing:
        raise InputError(f"{name}: no column(s) {', '.join(missing)}; "
                         f"columns are {', '.join(map(str, table.columns))}")
    for measure in measures:
        if not pd.api.types.is_numeric_dtype(table[measure]):
            values = table[measure]
            bad = values[values.notna() & pd.to_numeric(values, errors="coerce").isna()]
            example = bad.iloc[0] if len(bad) else values.iloc[0]
            raise InputError(f"{name}: column {measure!r} is not numeric (e.g. {str(example)!r}); "
                             "fix the value or leave the cell empty")
    no_key = table[list(keys)].isna().any(axis=1)
    if no_key.any():
        empty = [k for k in keys if table[k].isna().any()]
        raise InputError(f"{name}: {int(no_key.sum())} row(s) have no {'/'.join(empty)} to match on "
                         f"(e.g. row {int(no_key.to_numpy().argmax()) + 1}); fill the value or drop the row")
    duplicated = table.duplicated(list(keys), keep=False)
    if duplicated.any():
        example = table.loc[duplicated, list(keys)].iloc[0].to_dict()
        raise InputError(f"{name}: {int(duplicated.sum())} rows share their keys, e.g. {example}; "
                         f"add the column that tells them apart to the keys (now {', '.join(keys)})")


def _key_text(value: object) -> str:
    """Key value as text, ``1.0`` written ``1`` (an id column read as float matches an int one)."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _keys_of(table: pd.DataFrame, keys: Sequence[str]) -> set[tuple[str, ...]]:
    return {tuple(map(_key_text, row)) for row in table[list(keys)].to_numpy(dtype=object)}


def _shown(keys: Sequence[tuple[str, ...]]) -> str:
    return ", ".join("/".join(key) for key in keys[:20]) + (" ..." if len(keys) > 20 else "")


def _warn_missing_cases(
    tables: Mapping[str, pd.DataFrame], case_keys: Sequence[str], group_keys: Sequence[str] = ()
) -> None:
    """Warn, per table, about cases other tables have and it lacks (they are left out).

    Rows (e.g. labels) missing for a case the table does have are named as well.
    """
    cases = {name: _keys_of(t, case_keys) for name, t in tables.items()}
    everyone = set().union(*cases.values())
    for name, present in cases.items():
        absent = sorted(everyone - present)
        if absent:
            warnings.warn(f"{name}: no rows for {len(absent)} {'/'.join(case_keys)} present in another table "
                          f"({_shown(absent)}); they are left out", stacklevel=3)
    if not group_keys:
        return
    keys = [*group_keys, *case_keys]
    rows = {name: _keys_of(t, keys) for name, t in tables.items()}
    every_row = set().union(*rows.values())
    n_group = len(group_keys)
    for name, present in rows.items():
        absent = sorted(row for row in every_row - present if row[n_group:] in cases[name])
        if absent:
            warnings.warn(f"{name}: no rows for {len(absent)} {'/'.join(keys)} present in another table "
                          f"({_shown(absent)}); they are left out", stacklevel=3)


def pair_measurements(
    tables: Mapping[str, pd.DataFrame],
    *,
    measures: Sequence[str],
    case_keys: Sequence[str] = ("subject",),
    group_keys: Sequence[str] = ("label_id",),
) -> pd.DataFrame:
    """Match the rows of two or more raters' tables and stack the measures (long format).

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Rater name (e.g. the file name) -> its table, in order (first = method ``a``,
        second = reference ``b``). Tables follow the per-label metric-table contract.
    measures : sequence of str
        Numeric columns to compare, e.g. ``["volume_ml", "imf_pct"]``.
    case_keys : sequence of str
        Columns identifying a case (target), e.g. ``("subject",)`` or ``("subject", "session")``.
    group_keys : sequence of str
        Columns within which cases are compared, e.g. ``("label_id",)``; ``"label"``
        stands for ``label_id`` (or ``name``) when no ``label`` column exists. Empty for
        one-row-per-case tables (e.g. regional indices).

    Returns
    -------
    pandas.DataFrame
        Columns: the group keys (plus ``name`` when grouping by ``label_id``), the case
        keys, ``measure``, then one value column per rater. Only cases every table has,
        with a value from every rater, are kept.

    Raises
    ------
    InputError
        Fewer than 2 tables, missing or non-numeric columns, duplicated keys, no case
        shared by all tables, or no value present in every table.

    Warns
    -----
    UserWarning
        Naming the cases (and label rows) missing from a table, and the measures without
        any complete pair (the rest is still compared).

    Examples
    --------
    >>> a = pd.DataFrame({"subject": ["p", "q"], "label_id": 1, "volume_ml": [1.0, 2.0]})
    >>> pair_measurements({"a": a, "b": a}, measures=["volume_ml"]).columns.tolist()
    ['label_id', 'subject', 'measure', 'a', 'b']
    """
    if len(tables) < 2:
        raise InputError(f"agreement needs at least 2 tables, got {len(tables)}")
    first_name, first = next(iter(tables.items()))
    case_cols = [_resolve_key(k, first.columns, first_name) for k in case_keys]
    group_cols = [_resolve_key(k, first.columns, first_name) for k in group_keys]
    keys = [*group_cols, *case_cols]
    for name, table in tables.items():
        for key in keys:
            _resolve_key(key, table.columns, name)
        _check_table(name, table, keys, measures)
    _warn_missing_cases(tables, case_cols, group_cols)
    merged = None
    for name, table in tables.items():
        part = table[keys + list(measures)].melt(id_vars=keys, var_name="measure", value_name=name)
        merged = part if merged is None else merged.merge(part, on=[*keys, "measure"], how="inner")
    assert merged is not None
    if merged.empty:
        raise InputError(f"{', '.join(tables)} share no {'/'.join(keys)}; check that the key columns hold "
                         "the same values (e.g. sub-01 vs 01) and types")
    complete = merged.dropna(subset=list(tables)).reset_index(drop=True)
    lost = [m for m in measures if m not in set(complete["measure"])]
    if lost:
        warnings.warn(f"{', '.join(lost)}: no case has a value in every table ({', '.join(tables)}); "
                      "left out", stacklevel=2)
    if complete.empty:
        raise InputError(f"no case has a value in every table ({', '.join(tables)}) for "
                         f"{', '.join(measures)}; nothing to compare")
    merged = complete
    if group_cols == ["label_id"] and "name" in first.columns:
        names = first.drop_duplicates("label_id").set_index("label_id")["name"]
        merged.insert(1, "name", merged["label_id"].map(names))
    return merged


def agreement_table(
    tables: Mapping[str, pd.DataFrame],
    *,
    measures: Sequence[str],
    case_keys: Sequence[str] = ("subject",),
    group_keys: Sequence[str] = ("label_id",),
    sd_multiplier: float = LOA_SD_MULTIPLIER,
) -> pd.DataFrame:
    """Agreement (two tables) or interrater reliability (three or more) per label and measure.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Rater name -> table, as in :func:`pair_measurements`. With two tables the first
        is the method ``a`` and the second the reference ``b``.
    measures, case_keys, group_keys
        As in :func:`pair_measurements`.
    sd_multiplier : float
        Width of the limits of agreement in SDs (two tables only).

    Returns
    -------
    pandas.DataFrame
        One row per group and measure: the group keys (and ``name``), ``measure``,
        ``unit``, ``raters`` (names joined by ``|``), ``n_pairs`` (complete cases) and,
        for two tables, every column of :func:`agreement_stats` (in the unit of the
        measure); for more tables ``mean_<i>`` per rater and the ICC columns. Groups with
        fewer than :data:`MIN_PAIRS` complete cases get NaN statistics (and a warning).

    Raises
    ------
    InputError
        As :func:`pair_measurements`, or if no group has :data:`MIN_PAIRS` complete cases.

    Examples
    --------
    >>> a = pd.DataFrame({"subject": list("pqr"), "label_id": 1, "imf_pct": [5.0, 8.0, 9.0]})
    >>> t = agreement_table({"a": a, "b": a.assign(imf_pct=[6.0, 8.0, 10.0])}, measures=["imf_pct"])
    >>> t[["measure", "unit", "bias", "icc2_1"]].round(3).to_dict("records")
    [{'measure': 'imf_pct', 'unit': '%', 'bias': -0.667, 'icc2_1': 0.923}]
    """
    paired = pair_measurements(tables, measures=measures, case_keys=case_keys, group_keys=group_keys)
    return agreement_from_pairs(paired, raters=list(tables), case_keys=case_keys, sd_multiplier=sd_multiplier)


def agreement_from_pairs(
    paired: pd.DataFrame,
    *,
    raters: Sequence[str],
    case_keys: Sequence[str] = ("subject",),
    sd_multiplier: float = LOA_SD_MULTIPLIER,
) -> pd.DataFrame:
    """Agreement statistics of already paired measurements (see :func:`agreement_table`).

    Parameters
    ----------
    paired : pandas.DataFrame
        Output of :func:`pair_measurements`: group columns, case columns, ``measure`` and
        one value column per rater.
    raters : sequence of str
        The rater value columns, method first.
    case_keys : sequence of str
        The case columns; every other column except ``measure`` and the raters groups.
    sd_multiplier : float
        Width of the limits of agreement in SDs.

    Returns
    -------
    pandas.DataFrame
        As :func:`agreement_table`.

    Raises
    ------
    InputError
        If no group has :data:`MIN_PAIRS` complete cases.

    Examples
    --------
    >>> p = pd.DataFrame({"subject": list("pqr"), "measure": "volume_ml", "a": [1.0, 2, 3], "b": [1.0, 2, 4]})
    >>> agreement_from_pairs(p, raters=["a", "b"])["rmse"].round(3).tolist()
    [0.577]
    """
    raters = list(raters)
    by = [c for c in paired.columns if c not in (*case_keys, "measure", *raters)]
    rows, too_few = [], []
    for measure in pd.unique(paired["measure"]):
        subset = paired[paired["measure"] == measure]
        groups = subset.groupby(by, sort=True, dropna=False) if by else [((), subset)]
        for key, group in groups:
            row = dict(zip(by, key, strict=True))
            row.update(measure=measure, unit=measure_unit(measure), raters="|".join(raters),
                       n_pairs=len(group))
            if len(group) < MIN_PAIRS:
                too_few.append(f"{'/'.join(map(str, key)) or 'all'} {measure} (n={len(group)})")
            elif len(raters) == 2:
                row.update(agreement_stats(group[raters[0]], group[raters[1]], sd_multiplier=sd_multiplier))
            else:
                matrix = group[raters].to_numpy(float)
                row.update({f"mean_{i + 1}": float(v) for i, v in enumerate(matrix.mean(axis=0))})
                row.update(_icc_columns(matrix))
            rows.append(row)
    if rows and len(too_few) == len(rows):
        raise InputError(f"no label has {MIN_PAIRS} or more paired cases for agreement/ICC: "
                         f"{'; '.join(too_few[:10])}")
    if too_few:
        warnings.warn(f"fewer than {MIN_PAIRS} paired cases, statistics left empty for: "
                      f"{'; '.join(too_few[:20])}", stacklevel=2)
    return pd.DataFrame(rows)


def _panel_grid(n_panels: int) -> tuple[int, int]:
    """(rows, columns) of a near-square panel grid, at most 4 columns."""
    columns = min(4, max(1, math.ceil(math.sqrt(n_panels))))
    return math.ceil(n_panels / columns), columns


def agreement_figure(
    paired: pd.DataFrame,
    measure: str,
    *,
    kind: Literal["bland_altman", "correlation"],
    a: str,
    b: str,
    panel: str | None = "name",
    sd_multiplier: float = LOA_SD_MULTIPLIER,
) -> Figure:
    """Bland-Altman or correlation figure of one measure, a panel per label (seed 002 Figs. 3-4).

    Parameters
    ----------
    paired : pandas.DataFrame
        Output of :func:`pair_measurements` (columns ``measure``, ``a``, ``b``, ``panel``).
    measure : str
        Measure to plot; its unit (from the name) labels the axes.
    kind : {'bland_altman', 'correlation'}
        Difference ``a - b`` against the mean with bias (dashed) and limits (grey dashed),
        or ``b`` against ``a`` with the least-squares line (dashed), the line through
        the origin of seed 002 (solid, slope beta) and the identity (dotted).
    a, b : str
        Column names of the method and the reference (the rater names).
    panel : str, optional
        Column that names each panel (falls back to ``name``, then ``label_id``); None or
        absent: one panel with all cases.
    sd_multiplier : float
        Width of the limits of agreement in SDs.

    Returns
    -------
    matplotlib.figure.Figure
        Drawn with the Agg canvas (no display needed, no pyplot state).

    Raises
    ------
    InputError
        If ``paired`` holds no values of ``measure``.

    Examples
    --------
    >>> p = pd.DataFrame({"subject": list("pqr"), "measure": "volume_ml", "a": [1.0, 2, 3], "b": [1.0, 2, 4]})
    >>> agreement_figure(p, "volume_ml", kind="correlation", a="a", b="b").axes[0].get_xlabel()
    'a (ml)'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = paired[paired["measure"] == measure]
    if data.empty:
        raise InputError(f"no paired values of {measure!r} to plot")
    panel = next((c for c in (panel, "name", "label_id") if c is not None and c in data.columns), None)
    unit = measure_unit(measure)
    suffix = f" ({unit})" if unit else ""
    groups = list(data.groupby(panel, sort=False)) if panel else [(measure, data)]
    n_rows, n_cols = _panel_grid(len(groups))
    fig = Figure(figsize=(3.2 * n_cols, 2.9 * n_rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax, (title, group) in zip(axes, groups, strict=False):
        x, y = group[a].to_numpy(float), group[b].to_numpy(float)
        if kind == "bland_altman":
            _draw_bland_altman(ax, x, y, sd_multiplier)
            ax.set_xlabel(f"mean of {a} and {b}{suffix}")
            ax.set_ylabel(f"{a} − {b}{suffix}")
        else:
            _draw_correlation(ax, x, y)
            ax.set_xlabel(f"{a}{suffix}")
            ax.set_ylabel(f"{b}{suffix}")
        ax.set_title(str(title), fontsize=10)
    for ax in axes[len(groups):]:
        ax.remove()
    fig.suptitle(f"{measure}: {'Bland–Altman' if kind == 'bland_altman' else 'correlation'}, {a} vs {b}")
    return fig


def save_figure(figure: Figure, path: PathLike, *, dpi: int = 120) -> Path:
    """Write a figure (e.g. from :func:`agreement_figure`) as a PNG, atomically.

    :func:`myoscan.outputs.write_figure` with a default resolution of 120 dpi; a figure
    that pyplot manages is closed afterwards (:func:`agreement_figure` makes none such).

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure to write.
    path : str or os.PathLike
        Destination PNG; its folder is created. Nothing is left behind on failure.
    dpi : int
        Resolution in dots per inch.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> save_figure(agreement_figure(paired, "imf_pct", kind="bland_altman", a="cnn", b="gt"),
    ...             "imf_ba.png")  # doctest: +SKIP
    """
    from myoscan.outputs import write_figure

    return write_figure(figure, path, dpi=dpi)


#: White box behind panel annotations so lines do not cross the text.
_TEXT_BOX = {"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1.5}


def _draw_bland_altman(ax: Axes, x: np.ndarray, y: np.ndarray, sd_multiplier: float) -> None:
    """Scatter of differences on means with bias and limits of agreement lines."""
    ax.scatter((x + y) / 2, x - y, s=14, color="black", alpha=0.7)
    if x.size >= MIN_PAIRS:
        ba = bland_altman(x, y, sd_multiplier=sd_multiplier)
        ax.axhline(ba.bias, color="black", linestyle="--", linewidth=1)
        for limit in (ba.loa_lower, ba.loa_upper):
            ax.axhline(limit, color="grey", linestyle="--", linewidth=1)
        ax.text(0.02, 0.97, f"bias {ba.bias:.3g}, LoA {ba.loa_lower:.3g} to {ba.loa_upper:.3g}",
                transform=ax.transAxes, va="top", fontsize=7, bbox=_TEXT_BOX)


def _draw_correlation(ax: Axes, x: np.ndarray, y: np.ndarray) -> None:
    """Scatter of reference on method with fit, through-origin and identity lines."""
    ax.scatter(x, y, s=14, color="black", alpha=0.7)
    span = np.array([min(x.min(), y.min()), max(x.max(), y.max())])
    ax.plot(span, span, color="grey", linestyle=":", linewidth=1)
    if x.size >= MIN_PAIRS and np.ptp(x) > 0 and np.ptp(y) > 0 and np.any(x != 0):
        fit = stats.linregress(x, y)
        beta = float(x @ y / (x @ x))
        ax.plot(span, fit.intercept + fit.slope * span, color="black", linestyle="--", linewidth=1)
        ax.plot(span, beta * span, color="black", linewidth=1)
        ax.text(0.02, 0.97, f"r² = {fit.rvalue**2:.3f}, β = {beta:.3f}", transform=ax.transAxes,
                va="top", fontsize=7, bbox=_TEXT_BOX)
