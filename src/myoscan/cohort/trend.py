"""Age trends and correlations (seed 001 Fig. 3-4, seed 003 Tables 3-4).

* :func:`strata_summary` -- n, mean, SD, median and IQR of a measure per age stratum
  (decades by default) and group (sex), optionally with the share below a cut-off.
* :func:`decline_per_decade` -- per-group OLS of the measure on age; change per decade
  10 x b1 with CI 10 x b1 +/- 1.96 x 10 x SE (seed 001).
* :func:`cochran_armitage` / :func:`proportion_trend` -- Cochran-Armitage test for a
  linear trend of the proportion below a cut-off across age strata.
* :func:`correlate` -- Pearson (or Spearman) r with a Fisher-z 95 % CI (seed 001).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from myoscan.cohort._columns import (
    group_values,
    normalize_sex,
    numeric_column,
    require_columns,
)
from myoscan.cohort._data import (
    TooFewSubjectsError,
    complete_cases,
    per_label,
)
from myoscan.errors import InputError

__all__ = [
    "DECLINE_CI_Z",
    "DECADE_EDGES",
    "AgeStrata",
    "AgeTrend",
    "age_strata",
    "age_trend",
    "cochran_armitage",
    "correlate",
    "decline_per_decade",
    "fisher_z_ci",
    "proportion_trend",
    "strata_summary",
    "stratified_values",
]

#: Normal quantile of the per-decade CI, 10 b1 +/- 1.96 x 10 SE(b1) (seed 001).
DECLINE_CI_Z = 1.96
#: Fewest subjects for a correlation (Fisher z needs n > 3).
MIN_CORRELATION_SUBJECTS = 4


#: Lower bounds of the age strata: decades 40-49 ... 80+ (seed 001 Fig. 4).
DECADE_EDGES = (40.0, 50.0, 60.0, 70.0, 80.0)


@dataclass(frozen=True)
class AgeStrata:
    """How subjects are stratified for :func:`strata_summary`, :func:`decline_per_decade` and plots.

    Attributes
    ----------
    age : str
        Age column, in years.
    by : str or None
        Grouping column (``sex`` by default); None pools everyone in group ``'all'``.
    edges : tuple of float
        Lower bounds of the age strata (see :func:`age_strata`).
    cutoff : float or mapping, optional
        Count subjects strictly below this value; a mapping like
        ``{"male": 7.0, "female": 5.5}`` gives sex-specific values (read from ``sex``;
        subjects of unknown sex are then left out of the strata).
    sex : str
        Sex column used by a sex-specific cut-off.

    Examples
    --------
    >>> AgeStrata(by=None, edges=(50, 70)).edges
    (50, 70)
    """

    age: str = "age"
    by: str | None = "sex"
    edges: tuple[float, ...] = DECADE_EDGES
    cutoff: float | Mapping[str, float] | None = None
    sex: str = "sex"


def age_strata(age: pd.Series, edges: Sequence[float]) -> pd.Series:
    """Assign ages to strata ``[e0, e1), [e1, e2), ..., [e_last, inf)``.

    Parameters
    ----------
    age : pandas.Series
        Age in years.
    edges : sequence of float
        Increasing lower bounds, e.g. ``(40, 50, 60, 70, 80)``.

    Returns
    -------
    pandas.Series
        Ordered categorical labelled ``'40-49'``, ..., ``'80+'`` (``'40-<50'`` for
        non-integer edges); NaN below the first edge or where age is missing.

    Raises
    ------
    InputError
        If ``edges`` is empty or not strictly increasing.

    Examples
    --------
    >>> age_strata(pd.Series([39.9, 40, 49.5, 85]), [40, 50, 80]).tolist()
    [nan, '40-49', '40-49', '80+']
    """
    bounds = [float(e) for e in edges]
    if not bounds or any(b >= a for a, b in zip(bounds[1:], bounds[:-1], strict=True)):
        raise InputError(f"age bins must be increasing numbers like 40,50,60, got {list(edges)}")
    whole = all(b.is_integer() for b in bounds)
    names = [
        f"{lo:g}-{hi - 1:g}" if whole else f"{lo:g}-<{hi:g}"
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    ] + [f"{bounds[-1]:g}+"]
    return pd.cut(age, [*bounds, np.inf], right=False, labels=names)


def _groups(rows: pd.DataFrame, by: str | None, *, source: str) -> pd.Series:
    if by is None:
        return pd.Series("all", index=rows.index, dtype=object)
    return group_values(rows, by, source=source)


def _cutoff_per_row(
    rows: pd.DataFrame, cutoff: float | Mapping[str, float], sex: str, *, source: str
) -> pd.Series:
    if isinstance(cutoff, Mapping):
        unknown = sorted(set(cutoff) - {"male", "female"})
        if unknown:
            raise InputError(
                f"sex-specific cut-off keys must be 'male' and 'female', got {', '.join(unknown)}"
            )
        require_columns(rows, [sex], source=source)
        sexes = normalize_sex(rows[sex], source=f"{source} column {sex!r}")
        return sexes.map(dict(cutoff)).astype(float)
    return pd.Series(float(cutoff), index=rows.index)


def stratified_values(
    rows: pd.DataFrame, measure: str, strata: AgeStrata = AgeStrata(), *, source: str = "cohort table"
) -> pd.DataFrame:
    """Return the value, age, group, stratum (and, with a cut-off, ``below``) of each subject in the strata.

    Examples
    --------
    >>> t = pd.DataFrame({"age": [35.0, 45.0], "v_ml": [1.0, 2.0]})
    >>> stratified_values(t, "v_ml", AgeStrata(by=None, edges=(40,))).values.tolist()
    [[2.0, 45.0, 'all', '40+']]
    """
    data = pd.DataFrame({
        "value": numeric_column(rows, measure, source=source),
        "age": numeric_column(rows, strata.age, source=source),
        "group": _groups(rows, strata.by, source=source),
    })  # fmt: skip
    data["stratum"] = age_strata(data["age"], strata.edges)
    data = data.dropna(subset=["value", "age", "group", "stratum"])
    if strata.cutoff is not None:
        limit = _cutoff_per_row(rows, strata.cutoff, strata.sex, source=source).loc[data.index]
        data = data[limit.notna()]  # unknown sex, sex-specific cut-off: neither below nor above
        data["below"] = data["value"] < limit[limit.notna()]
    return data


def strata_summary(
    table: pd.DataFrame,
    measure: str,
    strata: AgeStrata = AgeStrata(),
    *,
    labels: Sequence[str] | None = None,
    source: str = "cohort table",
) -> pd.DataFrame:
    """Distribution of a measure per age stratum and group.

    Parameters
    ----------
    table : pandas.DataFrame
        Joined cohort table; long tables per label.
    measure : str
        Column, e.g. ``tmv_cm3``.
    strata : AgeStrata
        Age column, grouping, strata edges and optional cut-off.
    labels, source
        As in :func:`myoscan.cohort.regress`.

    Returns
    -------
    pandas.DataFrame
        One row per label x group x stratum: ``group``, ``age_stratum``, ``n``,
        ``<measure>_mean``, ``<measure>_sd``, ``<measure>_median``, ``<measure>_q1``,
        ``<measure>_q3`` and, with a cut-off, ``n_below``, ``pct_below``.

    Examples
    --------
    >>> t = pd.DataFrame({"age": [45, 47, 55, 58], "sex": ["F", "F", "M", "M"], "tmv_cm3": [1.0, 3, 5, 7]})
    >>> s = strata_summary(t, "tmv_cm3", AgeStrata(edges=(40, 50)))
    >>> s[["group", "age_stratum", "tmv_cm3_median"]].values.tolist()
    [['female', '40-49', 2.0], ['male', '50+', 6.0]]
    """

    def analyse(rows: pd.DataFrame, label: str | None) -> pd.DataFrame:
        data = stratified_values(rows, measure, strata, source=source)
        records = []
        for (group, stratum), cell in data.groupby(["group", "stratum"], observed=True, sort=True):
            values = cell["value"]
            record = {
                "group": group, "age_stratum": str(stratum), "n": len(values),
                f"{measure}_mean": values.mean(), f"{measure}_sd": values.std(ddof=1),
                f"{measure}_median": values.median(), f"{measure}_q1": values.quantile(0.25),
                f"{measure}_q3": values.quantile(0.75),
            }  # fmt: skip
            if strata.cutoff is not None:
                record.update(n_below=int(cell["below"].sum()), pct_below=100.0 * cell["below"].mean())
            records.append(record)
        if not records:
            raise TooFewSubjectsError(
                f"{measure}: no subject with a value in the age strata from {strata.edges[0]}"
            )
        return pd.DataFrame(records)

    return per_label(table, analyse, labels=labels, source=source)


def decline_per_decade(
    table: pd.DataFrame,
    measure: str,
    strata: AgeStrata = AgeStrata(),
    *,
    labels: Sequence[str] | None = None,
    source: str = "cohort table",
) -> pd.DataFrame:
    """Change of a measure per decade of age, per group (seed 001).

    Fits ``measure = b0 + b1 age`` by OLS separately per group on the subjects inside
    the age strata; the change per decade is ``10 b1`` with CI ``10 b1 +/- 1.96 x 10
    SE(b1)``. Negative values are a decline. A group with fewer than 3 subjects, a single
    age or a single value of the measure is an error.

    Returns
    -------
    pandas.DataFrame
        One row per label x group: ``group``, ``n``, ``<measure>_per_year``,
        ``<measure>_per_decade``, ``<measure>_per_decade_ci_low``,
        ``<measure>_per_decade_ci_high``, ``p``, ``r2``.

    Examples
    --------
    >>> t = pd.DataFrame({"age": [40.0, 50, 60, 70], "tmv_cm3": [10.0, 9, 8, 7]})
    >>> d = decline_per_decade(t, "tmv_cm3", AgeStrata(by=None))
    >>> round(float(d["tmv_cm3_per_decade"].iloc[0]), 9)
    -1.0
    """
    import statsmodels.api as sm

    def analyse(rows: pd.DataFrame, label: str | None) -> pd.DataFrame:
        data = stratified_values(rows, measure, replace(strata, cutoff=None), source=source)
        records = []
        for group, cell in data.groupby("group", sort=True):
            if len(cell) < 3 or cell["age"].nunique() < 2:
                raise TooFewSubjectsError(
                    f"{measure} ~ {strata.age} in group {group}: {len(cell)} subject(s), need 3"
                )
            if cell["value"].nunique() < 2:  # OLS would return rounding noise with a tiny p
                raise TooFewSubjectsError(
                    f"{measure} ~ {strata.age} in group {group}: {measure} has a single value "
                    f"({cell['value'].iloc[0]:g}) in the {len(cell)} subjects"
                )
            fit = sm.OLS(cell["value"], sm.add_constant(cell[["age"]])).fit()
            slope, se = float(fit.params["age"]), float(fit.bse["age"])
            records.append({
                "group": group, "n": len(cell), f"{measure}_per_year": slope,
                f"{measure}_per_decade": 10 * slope,
                f"{measure}_per_decade_ci_low": 10 * slope - DECLINE_CI_Z * 10 * se,
                f"{measure}_per_decade_ci_high": 10 * slope + DECLINE_CI_Z * 10 * se,
                "p": float(fit.pvalues["age"]), "r2": float(fit.rsquared),
            })  # fmt: skip
        return pd.DataFrame(records)

    return per_label(table, analyse, labels=labels, source=source)


def cochran_armitage(
    events: Sequence[float], totals: Sequence[float], scores: Sequence[float] | None = None
) -> tuple[float, float]:
    """Cochran-Armitage test for a linear trend in proportions across ordered groups.

    ``Z = sum s_i (e_i - n_i p) / sqrt(p (1 - p) [sum n_i s_i^2 - (sum n_i s_i)^2 / N])``
    with ``p`` the pooled proportion (Agresti 2002, sec. 5.3.5; SAS PROC FREQ TREND).
    Seed 001 prints the same statistic with weights ``w_i = n_i (s_i - mean s)``.
    Written here because neither scipy nor statsmodels has it: statsmodels'
    ``Table.test_ordinal_association`` is the linear-by-linear test, whose Z is this
    one times ``sqrt((N - 1) / N)``.

    Parameters
    ----------
    events, totals : sequence of float
        Count with the outcome and group size, per ordered group.
    scores : sequence of float, optional
        Group scores (default 0, 1, 2, ...).

    Returns
    -------
    z : float
        Positive when the proportion rises with the score.
    p : float
        Two-sided p-value (NaN when there is no variation).

    Raises
    ------
    InputError
        If the lengths differ, a count is negative, or events exceed totals.

    Examples
    --------
    >>> z, p = cochran_armitage([10, 20, 30], [30, 40, 50])
    >>> round(z, 4), round(p, 4)
    (2.2842, 0.0224)
    """
    from scipy import stats

    e, n = np.asarray(events, dtype=float), np.asarray(totals, dtype=float)
    s = np.arange(len(n), dtype=float) if scores is None else np.asarray(scores, dtype=float)
    if not (e.shape == n.shape == s.shape) or e.ndim != 1:
        raise InputError(
            f"Cochran-Armitage: events, totals and scores need one value per group, "
            f"got shapes {e.shape}, {n.shape}, {s.shape}"
        )
    if (e < 0).any() or (e > n).any():
        raise InputError("Cochran-Armitage: counts must satisfy 0 <= events <= totals")
    total = n.sum()
    pooled = e.sum() / total
    statistic = float(np.sum(s * (e - n * pooled)))
    variance = pooled * (1 - pooled) * (np.sum(n * s**2) - np.sum(n * s) ** 2 / total)
    if variance <= 0:
        return float("nan"), float("nan")
    z = statistic / np.sqrt(variance)
    return float(z), float(2 * stats.norm.sf(abs(z)))


def proportion_trend(strata: pd.DataFrame, order: Sequence[str] | None = None) -> pd.DataFrame:
    """Cochran-Armitage trend of ``pct_below`` across the age strata of :func:`strata_summary`.

    Strata are scored 0, 1, 2, ... in age order: by their position in ``order`` (every
    stratum defined, so an empty one still counts as a step), else by row order.

    Returns
    -------
    pandas.DataFrame
        One row per label x group: ``group``, ``n``, ``n_below``, ``pct_below``,
        ``n_strata``, ``cochran_armitage_z``, ``p``.

    Raises
    ------
    InputError
        If ``strata`` was computed without a cut-off.

    Examples
    --------
    >>> s = pd.DataFrame({"group": ["all"] * 3, "age_stratum": ["50-59", "60-69", "70+"],
    ...                   "n": [30, 40, 50], "n_below": [10, 20, 30]})
    >>> round(float(proportion_trend(s)["cochran_armitage_z"].iloc[0]), 4)
    2.2842
    """
    if "n_below" not in strata.columns:
        raise InputError("trend test needs the share below a cut-off; give a cut-off")
    keys = [c for c in ("name", "group") if c in strata.columns]
    records = []
    for key, cells in strata.groupby(keys, sort=False):
        scores = None if order is None else [list(order).index(str(k)) for k in cells["age_stratum"]]
        z, p = cochran_armitage(cells["n_below"], cells["n"], scores)
        record = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        n, below = int(cells["n"].sum()), int(cells["n_below"].sum())
        record.update(n=n, n_below=below, pct_below=100.0 * below / n, n_strata=len(cells),
                      cochran_armitage_z=z, p=p)  # fmt: skip
        records.append(record)
    return pd.DataFrame(records)


@dataclass(frozen=True)
class AgeTrend:
    """Tables of :func:`age_trend`: per-stratum summary, per-decade change, trend tests."""

    strata: pd.DataFrame
    decline: pd.DataFrame
    trend_tests: pd.DataFrame | None


def age_trend(
    table: pd.DataFrame,
    measure: str,
    strata: AgeStrata = AgeStrata(),
    *,
    labels: Sequence[str] | None = None,
    source: str = "cohort table",
) -> AgeTrend:
    """Everything of seed 001 Fig. 4 for one measure: strata, decline per decade, trend tests.

    Parameters are those of :func:`strata_summary`; ``trend_tests`` is None without a
    cut-off.

    Examples
    --------
    >>> t = pd.DataFrame({"age": np.repeat([45.0, 55, 65], 4), "tmv_cm3": np.arange(12.0)[::-1]})
    >>> age_trend(t, "tmv_cm3", AgeStrata(by=None, cutoff=4.0)).trend_tests["n_below"].tolist()
    [4]
    """
    summary = strata_summary(table, measure, strata, labels=labels, source=source)
    decline = decline_per_decade(table, measure, strata, labels=labels, source=source)
    if strata.cutoff is None:
        return AgeTrend(summary, decline, None)
    # score strata by their place among all defined strata: a stratum empty for a group is still a step
    order = [str(c) for c in age_strata(pd.Series([], dtype=float), strata.edges).cat.categories]
    return AgeTrend(summary, decline, proportion_trend(summary, order))


def fisher_z_ci(r: float, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Confidence interval of a correlation by Fisher's z: ``tanh(atanh(r) +/- z / sqrt(n - 3))`` (seed 001).

    Examples
    --------
    >>> [round(v, 4) for v in fisher_z_ci(0.5, 28)]
    [0.156, 0.7358]
    """
    from scipy import stats

    if n <= 3:
        return float("nan"), float("nan")
    half = stats.norm.ppf(0.5 + confidence / 2) / np.sqrt(n - 3)
    centre = np.arctanh(np.clip(r, -1 + 1e-15, 1 - 1e-15))
    return float(np.tanh(centre - half)), float(np.tanh(centre + half))


def correlate(
    table: pd.DataFrame,
    x: str,
    y: str,
    *,
    by: str | None = None,
    method: str = "pearson",
    labels: Sequence[str] | None = None,
    source: str = "cohort table",
) -> pd.DataFrame:
    """Correlation of two columns with a Fisher-z 95 % CI, per label and group.

    Pearson r and p come from :func:`scipy.stats.pearsonr` (its CI is the Fisher-z
    interval of seed 001); Spearman rho and p from :func:`scipy.stats.spearmanr` with
    the same Fisher-z interval. A 0/1 column gives the point-biserial r (seed 004).

    Parameters
    ----------
    table : pandas.DataFrame
        Joined cohort table.
    x, y : str
        Numeric columns (e.g. ``tmv_cm3`` and ``dexa_leg_lean_kg``, or ``age`` and ``mass_g``).
    by : str, optional
        Grouping column (e.g. ``sex``).
    method : {'pearson', 'spearman'}
        Correlation coefficient.
    labels, source
        As in :func:`myoscan.cohort.regress`.

    Returns
    -------
    pandas.DataFrame
        One row per label x group: ``x``, ``y``, ``method``, ``group``, ``n``, ``r``,
        ``r_ci_low``, ``r_ci_high``, ``p``.

    Raises
    ------
    InputError
        For an unknown method or column, fewer than 4 subjects, or a column with a single
        value in a group (r undefined).

    Examples
    --------
    >>> t = pd.DataFrame({"a": [1.0, 2, 3, 4, 5], "b": [2.0, 4, 5, 4, 6]})
    >>> round(float(correlate(t, "a", "b")["r"].iloc[0]), 3)
    0.853
    """
    from scipy import stats

    if method not in {"pearson", "spearman"}:
        raise InputError(f"correlation method must be 'pearson' or 'spearman', got {method!r}")

    def analyse(rows: pd.DataFrame, label: str | None) -> pd.DataFrame:
        data = pd.DataFrame({
            "x": numeric_column(rows, x, source=source), "y": numeric_column(rows, y, source=source),
            "group": _groups(rows, by, source=source),
        })  # fmt: skip
        records = []
        for group, cell in data.dropna().groupby("group", sort=True):
            what = (
                f"correlation of {x} and {y}"
                + (f" in {group}" if by else "")
                + (f" for {label}" if label else "")
            )
            cell = complete_cases(cell, minimum=MIN_CORRELATION_SUBJECTS, what=what)
            constant = [name for name, column in ((x, "x"), (y, "y")) if cell[column].nunique() < 2]
            if constant:
                raise TooFewSubjectsError(
                    f"{what}: {constant[0]} has a single value in the {len(cell)} subjects; r is undefined"
                )
            if method == "pearson":
                res = stats.pearsonr(cell["x"], cell["y"])
                r, p = float(res.statistic), float(res.pvalue)
                low, high = res.confidence_interval(0.95)
            else:
                res = stats.spearmanr(cell["x"], cell["y"])
                r, p = float(res.statistic), float(res.pvalue)
                low, high = fisher_z_ci(r, len(cell))
            records.append({"x": x, "y": y, "method": method, "group": group, "n": len(cell),
                            "r": r, "r_ci_low": float(low), "r_ci_high": float(high), "p": p})  # fmt: skip
        if not records:
            raise TooFewSubjectsError(f"correlation of {x} and {y}: no subject with both values")
        return pd.DataFrame(records)

    return per_label(table, analyse, labels=labels, source=source)
