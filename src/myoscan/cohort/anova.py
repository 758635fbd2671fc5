"""ANCOVA across and within muscles (seed 002).

* :func:`repeated_measures_ancova` -- a metric measured in several muscles of each
  subject (within-subject factor), a between-subject factor (sex) and covariates (age,
  BMI): univariate repeated-measures tests with Greenhouse-Geisser and Huynh-Feldt
  corrections and Mauchly's sphericity test, then paired t-tests between muscles.
* :func:`ancova` -- one-way ANCOVA per muscle (statsmodels) with estimated marginal means.

Neither statsmodels nor pingouin has a repeated-measures ANCOVA (pingouin's
``rm_anova``/``mixed_anova`` take no covariates, statsmodels' ``AnovaRM`` no between
factor or covariates), so :func:`repeated_measures_ancova` uses the textbook univariate
approach of the multivariate linear model (as SPSS GLM does): the k repeated values are
projected on k - 1 orthonormal contrasts, regressed on the between-subject design
(intercept, sum-coded factor, mean-centred covariates), and each within-subject effect is
tested with ``F = (tr H / q(k-1)) / (tr E / df_e(k-1))`` from its hypothesis and error
SSCP matrices. Between-subject effects are F-tests of statsmodels OLS on the subject mean.
With sum coding the within-subject main effect is tested at the unweighted mean of the
between-subject groups (type III, SPSS's default); pingouin's ``mixed_anova`` weights the
groups by size, so the two agree exactly only for groups of equal size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from myoscan.cohort._columns import (
    group_values,
    numeric_column,
    require_columns,
)
from myoscan.cohort._data import (
    TooFewSubjectsError,
    is_long,
    per_label,
)
from myoscan.cohort.regression import estimated_marginal_means
from myoscan.errors import InputError

__all__ = [
    "RepeatedMeasures",
    "ancova",
    "average_sides",
    "repeated_measures_ancova",
    "within_subject_matrix",
]


def average_sides(table: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Average left and right labels of each muscle (seed 002: ``x_left``, ``x_right`` -> ``x``).

    Labels without a side are kept as they are. A subject missing one side gets NaN.

    Returns
    -------
    pandas.DataFrame
        Long table with ``subject``, ``name`` and ``measure``, plus the subject-level
        columns (those constant within each subject, e.g. age, sex).

    Examples
    --------
    >>> t = pd.DataFrame({"subject": ["a", "a"], "name": ["soleus_left", "soleus_right"],
    ...                   "imf_pct": [4.0, 6.0]})
    >>> average_sides(t, "imf_pct")[["name", "imf_pct"]].values.tolist()
    [['soleus', 5.0]]
    """
    require_columns(table, ["subject", "name", measure], source="metrics table")
    names = table["name"].astype(str)
    sides = names.str.extract(r"_(left|right)$", expand=False)
    base = names.where(sides.isna(), names.str.replace(r"_(left|right)$", "", regex=True))
    values = pd.DataFrame({"subject": table["subject"], "name": base,
                           measure: numeric_column(table, measure, source="metrics table")})  # fmt: skip
    grouped = values.groupby(["subject", "name"], sort=False)[measure]
    means = grouped.mean()
    # a bilateral muscle needs both sides measured; a midline one its single value
    bilateral = means.index.get_level_values("name").isin(base[sides.notna()].unique())
    means[bilateral & (grouped.count() < 2).to_numpy()] = np.nan
    means = means.reset_index()
    # keep only subject-level columns (constant within each subject), e.g. age, sex, bmi
    others = table.drop(columns=["name", measure])
    constant = others.groupby("subject").nunique(dropna=False).max() <= 1
    subjects = others[["subject", *constant.index[constant]]].drop_duplicates("subject")
    return means.merge(subjects, on="subject", how="left")


def within_subject_matrix(
    table: pd.DataFrame, measure: str, levels: Sequence[str] | None = None, *, source: str = "cohort table"
) -> pd.DataFrame:
    """Subjects x levels matrix of a measure: labels of a long table or columns of a wide one.

    Parameters
    ----------
    table : pandas.DataFrame
        Long (``subject``, ``name``, measure) or wide table.
    measure : str
        Metric of a long table; ignored for a wide table (``levels`` are its columns).
    levels : sequence of str, optional
        Labels (long) or columns (wide) to compare; all labels by default.

    Returns
    -------
    pandas.DataFrame
        Indexed by subject, one column per level, NaN where missing.

    Raises
    ------
    InputError
        If fewer than two levels are given or found.

    Examples
    --------
    >>> t = pd.DataFrame({"subject": ["a", "a", "b", "b"], "name": ["x", "y", "x", "y"], "v": [1.0, 2, 3, 4]})
    >>> within_subject_matrix(t, "v").values.tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    if is_long(table):
        values = table.assign(_v=numeric_column(table, measure, source=source))
        wide = values.pivot_table(index="subject", columns="name", values="_v", aggfunc="first", dropna=False)
        wide.columns = wide.columns.astype(str)
        if levels:
            require_columns(wide, levels, source=source, what="label")
            wide = wide[list(levels)]
    else:
        if not levels:
            raise InputError(f"{source}: a wide table needs the columns to compare as levels")
        wide = pd.DataFrame({c: numeric_column(table, c, source=source) for c in levels})
        wide.index = table["subject"]
    if wide.shape[1] < 2:
        raise InputError(f"{source}: repeated measures need at least two levels, got {list(wide.columns)}")
    return wide


def _subject_rows(table: pd.DataFrame, subjects: pd.Index) -> pd.DataFrame:
    return table.drop_duplicates("subject").set_index("subject").reindex(subjects)


def _sum_coding(values: pd.Series, name: str) -> pd.DataFrame:
    """Sum-to-zero (effect) coding: level j -> e_j, last level -> -1 (so the intercept is the grand mean)."""
    levels = sorted(values.unique())
    if len(levels) < 2:
        raise TooFewSubjectsError(
            f"between factor {name!r} has a single level ({levels[0]}) among complete subjects"
        )
    coded = {f"{name}[{level}]": (values == level).astype(float) - (values == levels[-1]).astype(float)
             for level in levels[:-1]}  # fmt: skip
    return pd.DataFrame(coded, index=values.index)


@dataclass(frozen=True)
class RepeatedMeasures:
    """Results of :func:`repeated_measures_ancova`.

    Attributes
    ----------
    effects : pandas.DataFrame
        One row per effect: ``effect``, ``kind`` ('within' or 'between'), ``df1``,
        ``df2``, ``f``, ``p``, ``p_gg``, ``p_hf`` (sphericity-corrected, within only),
        ``eps_gg``, ``eps_hf``, ``np2`` (partial eta squared).
    sphericity : pandas.DataFrame
        Mauchly's ``w``, ``chi2``, ``dof``, ``p`` on the error matrix.
    pairwise : pandas.DataFrame
        Paired t-tests between levels (pingouin): ``level_a``, ``level_b``, ``n``,
        ``<measure>_mean_difference`` (a - b), ``t``, ``dof``, ``p``, ``p_adjusted``,
        ``hedges_g``.
    n_subjects : int
        Subjects with every level and covariate.
    """

    effects: pd.DataFrame
    sphericity: pd.DataFrame
    pairwise: pd.DataFrame
    n_subjects: int


def repeated_measures_ancova(
    table: pd.DataFrame,
    measure: str,
    *,
    levels: Sequence[str] | None = None,
    between: str | None = None,
    covariates: Sequence[str] = (),
    within_name: str = "muscle",
    padjust: str = "none",
    source: str = "cohort table",
) -> RepeatedMeasures:
    """Repeated-measures ANCOVA of a metric across muscles, then paired t-tests (seed 002).

    Parameters
    ----------
    table : pandas.DataFrame
        Joined cohort table, long (levels are labels) or wide (levels are columns).
    measure : str
        Metric of a long table, e.g. ``imf_pct``.
    levels : sequence of str, optional
        Labels or columns forming the within-subject factor (all labels by default).
    between : str, optional
        Between-subject factor (e.g. ``sex``), sum-coded.
    covariates : sequence of str
        Numeric covariates (e.g. age, bmi), mean-centred so that the within-subject
        effect is tested at the covariate means.
    within_name : str
        Name of the within-subject factor in the effect names.
    padjust : {'none', 'bonf', 'holm', 'fdr_bh', ...}
        Multiple-comparison correction of the paired t-tests (pingouin ``padjust``).
    source : str
        Name used in messages.

    Returns
    -------
    RepeatedMeasures

    Raises
    ------
    InputError
        For unknown or non-numeric columns, a single level, or too few subjects.

    Examples
    --------
    >>> rng = np.random.default_rng(4)
    >>> t = pd.DataFrame({"subject": np.repeat(np.arange(30), 3), "name": np.tile(["a", "b", "c"], 30)})
    >>> t["imf_pct"] = np.tile([5.0, 6.0, 8.0], 30) + rng.normal(0, 1, 90)
    >>> res = repeated_measures_ancova(t, "imf_pct")
    >>> res.effects["effect"].tolist(), bool(res.effects["p"].iloc[0] < 1e-6)
    (['muscle'], True)
    """
    from scipy import linalg, stats

    wide = within_subject_matrix(table, measure, levels, source=source)
    subjects = _subject_rows(table, wide.index)
    covs = pd.DataFrame({c: numeric_column(subjects, c, source=source) for c in covariates}, index=wide.index)
    complete = wide.notna().all(axis=1) & covs.notna().all(axis=1)
    group = None
    if between is not None:
        group = group_values(subjects, between, source=source)
        complete &= group.notna()
    wide = wide[complete]
    parts = [pd.DataFrame({"const": 1.0}, index=wide.index)]
    terms: dict[str, list[str]] = {}
    if group is not None:
        coded = _sum_coding(group[complete].astype(str), between)
        parts.append(coded)
        terms[between] = list(coded.columns)
    if covariates:
        parts.append(covs[complete] - covs[complete].mean())
        terms.update({c: [c] for c in covariates})
    design = pd.concat(parts, axis=1)
    y = wide.to_numpy(dtype=float)
    n, p = design.shape
    k = y.shape[1]
    if n < p + 2:
        raise TooFewSubjectsError(f"{measure}: {n} subject(s) with every level and covariate, need {p + 2}")

    x = design.to_numpy(dtype=float)
    contrasts = linalg.helmert(k).T  # (k, k-1), orthonormal, orthogonal to the mean
    z = y @ contrasts
    coef, *_ = np.linalg.lstsq(x, z, rcond=None)
    resid = z - x @ coef
    error = resid.T @ resid
    df_e = n - p
    xtx_inv = np.linalg.inv(x.T @ x)
    eps_gg = float(np.trace(error) ** 2 / ((k - 1) * np.trace(error @ error)))
    eps_hf = float(min(1.0, ((df_e + 1) * (k - 1) * eps_gg - 2) / ((k - 1) * (df_e - (k - 1) * eps_gg))))

    records = []
    within_terms = {within_name: [0]} | {
        f"{within_name} x {term}": [design.columns.get_loc(c) for c in columns]
        for term, columns in terms.items()
    }
    for effect, rows in within_terms.items():
        b = coef[rows]
        hyp = b.T @ np.linalg.solve(xtx_inv[np.ix_(rows, rows)], b)
        df1, df2 = len(rows) * (k - 1), df_e * (k - 1)
        f = (np.trace(hyp) / df1) / (np.trace(error) / df2)
        records.append({
            "effect": effect, "kind": "within", "df1": df1, "df2": df2, "f": f,
            "p": stats.f.sf(f, df1, df2),
            "p_gg": stats.f.sf(f, eps_gg * df1, eps_gg * df2),
            "p_hf": stats.f.sf(f, eps_hf * df1, eps_hf * df2),
            "eps_gg": eps_gg, "eps_hf": eps_hf, "np2": np.trace(hyp) / (np.trace(hyp) + np.trace(error)),
        })  # fmt: skip
    records += _between_effects(y.mean(axis=1), design, terms)
    pairwise = _paired_tests(wide, measure, padjust)
    return RepeatedMeasures(pd.DataFrame(records), _mauchly(error, df_e, k), pairwise, n)


def _between_effects(mean: np.ndarray, design: pd.DataFrame, terms: dict[str, list[str]]) -> list[dict]:
    import statsmodels.api as sm

    fit = sm.OLS(mean, design).fit()
    records = []
    for effect, columns in terms.items():
        restriction = np.zeros((len(columns), design.shape[1]))
        for i, column in enumerate(columns):
            restriction[i, design.columns.get_loc(column)] = 1.0
        test = fit.f_test(restriction)
        f, df1, df2 = float(np.squeeze(test.fvalue)), float(test.df_num), float(test.df_denom)
        records.append({"effect": effect, "kind": "between", "df1": df1, "df2": df2, "f": f,
                        "p": float(test.pvalue), "np2": f * df1 / (f * df1 + df2)})  # fmt: skip
    return records


def _mauchly(error: np.ndarray, df_e: int, k: int) -> pd.DataFrame:
    """Mauchly's sphericity test on the orthonormal-contrast error matrix.

    ``W = det(S) / (tr(S) / d)^d`` with ``S = E / df_e`` and ``d = k - 1``; the p-value uses
    the chi-square approximation with Anderson's second-order term, as R's
    ``mauchly.test`` (and pingouin) compute it, here on the error matrix left after the
    between-subject design and covariates. With fewer error degrees of freedom than
    contrasts the matrix is singular whatever the data, and the test is reported as NaN
    rather than as W = 0, p = 0.
    """
    from scipy import stats

    d = k - 1
    dof = d * (d + 1) / 2 - 1
    if dof <= 0:
        return pd.DataFrame([{"w": 1.0, "chi2": np.nan, "dof": dof, "p": 1.0}])
    if df_e < d:  # the d x d error covariance has rank <= df_e < d: W = 0 by construction, untestable
        return pd.DataFrame([{"w": np.nan, "chi2": np.nan, "dof": dof, "p": np.nan}])
    cov = error / df_e
    sign, logdet = np.linalg.slogdet(cov)
    log_w = logdet - d * np.log(np.trace(cov) / d) if sign > 0 else -np.inf
    f = 1 - (2 * d**2 + d + 2) / (6 * d * df_e)
    w2 = (d + 2) * (d - 1) * (d - 2) * (2 * d**3 + 6 * d**2 + 3 * k + 2) / (288 * (df_e * d * f) ** 2)
    chi2 = -df_e * f * log_w
    p1, p2 = stats.chi2.sf(chi2, dof), stats.chi2.sf(chi2, dof + 4)
    return pd.DataFrame(
        [{"w": float(np.exp(log_w)), "chi2": float(chi2), "dof": dof, "p": float(p1 + w2 * (p2 - p1))}]
    )


def _paired_tests(wide: pd.DataFrame, measure: str, padjust: str) -> pd.DataFrame:
    import pingouin as pg

    long = wide.rename_axis("subject").reset_index().melt(id_vars="subject", var_name="level", value_name="v")
    res = pg.pairwise_tests(data=long, dv="v", within="level", subject="subject", padjust=padjust)
    diffs = [float((wide[a] - wide[b]).mean()) for a, b in zip(res["A"], res["B"], strict=True)]
    out = pd.DataFrame({
        "level_a": res["A"], "level_b": res["B"], "n": len(wide),
        f"{measure}_mean_difference": diffs, "t": res["T"], "dof": res["dof"], "p": res["p_unc"],
        "p_adjusted": res["p_corr"] if "p_corr" in res.columns else res["p_unc"],
        "hedges_g": res["hedges"],
    })  # fmt: skip
    return out.assign(padjust=padjust)


def ancova(
    table: pd.DataFrame,
    measure: str,
    between: str,
    covariates: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    source: str = "cohort table",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One-way ANCOVA per label (seed 002: sex with covariates age and BMI) and marginal means.

    Parameters
    ----------
    table : pandas.DataFrame
        Joined cohort table; long tables per label.
    measure : str
        Metric, e.g. ``imf_pct``.
    between : str
        Factor, e.g. ``sex``.
    covariates : sequence of str
        Numeric covariates.
    labels, source
        As in :func:`myoscan.cohort.regress`.

    Returns
    -------
    anova : pandas.DataFrame
        Per label and term: ``measure``, ``source`` (term or 'Residual'), ``ss``, ``df``,
        ``f``, ``p``, ``np2`` (partial eta squared); statsmodels ``anova_lm`` type II, the
        table pingouin ``ancova`` gives.
    means : pandas.DataFrame
        Estimated marginal means per level (see :func:`estimated_marginal_means`).

    Raises
    ------
    InputError
        For unknown or non-numeric columns or too few subjects.

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> t = pd.DataFrame({"sex": ["F", "M"] * 20, "age": rng.normal(40, 9, 40)})
    >>> t["imf_pct"] = 8 - 2 * (t["sex"] == "M") + 0.05 * t["age"] + rng.normal(0, 1, 40)
    >>> aov, emm = ancova(t, "imf_pct", "sex", ["age"])
    >>> aov["source"].tolist()
    ['sex', 'age', 'Residual']
    """
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    names = [measure, between, *covariates]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # the measure as its own covariate, or a column twice: a degenerate model
        raise InputError(f"ANCOVA of {measure} by {between}: {', '.join(repeated)} is given more than once")

    def analyse(rows: pd.DataFrame, label: str | None) -> pd.DataFrame:
        data = pd.DataFrame({c: numeric_column(rows, c, source=source) for c in (measure, *covariates)})
        data["_group"] = group_values(rows, between, source=source)
        data = data.dropna()
        if len(data) < len(covariates) + 4 or data["_group"].nunique() < 2:
            raise TooFewSubjectsError(f"ANCOVA of {measure} by {between}: {len(data)} complete subject(s)")
        # Safe formula names; type II sums of squares equal type III here (no interactions),
        # and are what pingouin.ancova reports.
        names = {"g": between} | {f"x{i}": c for i, c in enumerate(covariates)}
        safe = pd.DataFrame({"y": data[measure], "g": data["_group"].astype(str)})
        safe = safe.assign(**{key: data[c] for key, c in names.items() if key != "g"})
        formula = "y ~ " + " + ".join(["C(g)", *(key for key in names if key != "g")])
        res = anova_lm(smf.ols(formula, safe).fit(), typ=2)
        res.index = [names.get(i.removeprefix("C(").removesuffix(")"), i) for i in res.index]
        out = pd.DataFrame(
            {
                "measure": measure,
                "source": res.index,
                "ss": res["sum_sq"].to_numpy(),
                "df": res["df"].to_numpy(),
                "f": res["F"].to_numpy(),
                "p": res["PR(>F)"].to_numpy(),
            }
        )
        residual = float(res.loc["Residual", "sum_sq"])
        out["np2"] = (out["ss"] / (out["ss"] + residual)).where(out["source"] != "Residual")
        return out

    aov = per_label(table, analyse, labels=labels, source=source)
    means = estimated_marginal_means(
        table, measure, [*covariates, between], between, labels=labels, source=source
    )
    return aov, means.means
