"""Linear models per label: seed 000 Table 2 and 3, partial correlations, marginal means.

* :func:`regress` -- multiple linear regression of a metric on covariates: raw and
  standardized coefficients (all variables z-scored, as in seed 000 Table 2), model F,
  p and R², with Shapiro-Wilk and Breusch-Pagan checks of the residuals.
* :func:`partial_correlations` -- partial Pearson r of the outcome with one covariate
  controlling for the others (pingouin), seed 000 Fig. 2-3 / seed 002 Fig. 6.
* :func:`estimated_marginal_means` -- means per level of a factor at the mean of the
  other covariates, with SE (seed 000 Fig. 4, seed 002 Fig. 5B).
* :func:`hierarchical_regression` -- R² change, F change and p of adding a variable to
  a base model (seed 000 Table 3).

All fitting is done by statsmodels (OLS, ``t_test``, ``compare_f_test``,
``het_breuschpagan``), scipy (``shapiro``) and pingouin (``partial_corr``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from myoscan.cohort._columns import (
    covariate_levels,
    encode_covariates,
    numeric_column,
)
from myoscan.cohort._data import (
    TooFewSubjectsError,
    complete_cases,
    per_label,
    resolve_side_template,
)
from myoscan.errors import InputError

__all__ = [
    "MarginalMeans",
    "estimated_marginal_means",
    "hierarchical_regression",
    "partial_correlations",
    "partial_residuals",
    "regress",
    "residual_diagnostics",
    "table2",
]

#: A model needs this many more complete subjects than it has parameters (so that
#: residual tests have at least two degrees of freedom).
EXTRA_SUBJECTS = 2


def _model_frame(
    rows: pd.DataFrame, outcome: str, covariates: Sequence[str], label: str | None, *, source: str
) -> tuple[pd.Series, pd.DataFrame]:
    """Complete-case outcome and encoded design (no intercept) for one label."""
    outcome = resolve_side_template(outcome, label, rows)
    covariates = [resolve_side_template(c, label, rows) for c in covariates]
    what = f"{outcome} ~ {' + '.join(covariates)}" + (f" for {label}" if label else "")
    names = [outcome, *covariates]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # a repeated column makes the design singular (or the outcome its own predictor)
        raise InputError(
            f"{what}: {', '.join(repeated)} appears more than once as outcome or covariate; list each once"
        )
    y = numeric_column(rows, outcome, source=source).rename(outcome)
    design = encode_covariates(rows, covariates, source=source)
    data = complete_cases(
        pd.concat([y, design], axis=1), minimum=design.shape[1] + 1 + EXTRA_SUBJECTS, what=what
    )
    constant = [c for c in data.columns if data[c].nunique() < 2]
    if constant:
        raise TooFewSubjectsError(
            f"{what}: {', '.join(constant)} has a single value in the {len(data)} subjects"
        )
    return data[outcome], data[design.columns]


def _ols(y: pd.Series, design: pd.DataFrame):
    import statsmodels.api as sm

    return sm.OLS(y, sm.add_constant(design, has_constant="add")).fit()


def _zscore(frame: pd.DataFrame | pd.Series):
    return (frame - frame.mean()) / frame.std(ddof=1)


def residual_diagnostics(fit) -> dict[str, float]:
    """Shapiro-Wilk normality and Breusch-Pagan homoscedasticity tests of OLS residuals.

    Parameters
    ----------
    fit : statsmodels RegressionResults
        A fitted OLS model with a constant.

    Returns
    -------
    dict
        ``shapiro_w``, ``shapiro_p``, ``breusch_pagan_lm``, ``breusch_pagan_p``.

    Examples
    --------
    >>> import statsmodels.api as sm
    >>> x = np.arange(20.0); y = 2 * x + np.sin(x)
    >>> sorted(residual_diagnostics(sm.OLS(y, sm.add_constant(x)).fit()))
    ['breusch_pagan_lm', 'breusch_pagan_p', 'shapiro_p', 'shapiro_w']
    """
    from scipy import stats
    from statsmodels.stats.diagnostic import het_breuschpagan

    shapiro = stats.shapiro(fit.resid)
    lm, lm_p, _, _ = het_breuschpagan(fit.resid, fit.model.exog)
    return {
        "shapiro_w": float(shapiro.statistic),
        "shapiro_p": float(shapiro.pvalue),
        "breusch_pagan_lm": float(lm),
        "breusch_pagan_p": float(lm_p),
    }


def _model_summary(fit) -> dict[str, float]:
    return {
        "n": int(fit.nobs),
        "f": float(fit.fvalue),
        "f_df_model": float(fit.df_model),
        "f_df_resid": float(fit.df_resid),
        "f_p": float(fit.f_pvalue),
        "r2": float(fit.rsquared),
        "r2_adj": float(fit.rsquared_adj),
        **residual_diagnostics(fit),
    }


def regress(
    table: pd.DataFrame,
    outcome: str,
    covariates: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    source: str = "cohort table",
) -> pd.DataFrame:
    """Multiple linear regression of ``outcome`` on ``covariates`` per label (seed 000 Table 2).

    Parameters
    ----------
    table : pandas.DataFrame
        Joined cohort table (see :func:`join_participants`); long tables are analysed
        per label (``name``).
    outcome : str
        Metric column, e.g. ``volume_ml``; ``{side}`` is replaced by the label's side.
    covariates : sequence of str
        Covariate columns; ``sex`` is coded 1 = male, other text columns as indicators.
    labels : sequence of str, optional
        Labels to analyse (all by default).
    source : str
        Name used in messages.

    Returns
    -------
    pandas.DataFrame
        One row per label x term (intercept excluded) with ``outcome``, ``term``, raw
        ``coef`` (outcome units per covariate unit), ``coef_se``, ``coef_ci_low``,
        ``coef_ci_high``, standardized ``beta_std`` and ``beta_std_se`` (all variables
        z-scored), ``t``, ``p``, and per-model ``n``, ``f``, ``f_df_model``,
        ``f_df_resid``, ``f_p``, ``r2``, ``r2_adj``, ``shapiro_w``, ``shapiro_p``,
        ``breusch_pagan_lm``, ``breusch_pagan_p``.

    Raises
    ------
    InputError
        For unknown or non-numeric columns, or too few subjects.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = pd.DataFrame({"age": rng.uniform(20, 80, 50)})
    >>> t["imf_pct"] = 2 + 0.1 * t["age"] + rng.normal(0, 1, 50)
    >>> round(float(regress(t, "imf_pct", ["age"])["coef"].iloc[0]), 1)
    0.1
    """

    def analyse(rows: pd.DataFrame, label: str | None) -> pd.DataFrame:
        y, design = _model_frame(rows, outcome, covariates, label, source=source)
        fit = _ols(y, design)
        std = _ols(_zscore(y), _zscore(design))
        ci = fit.conf_int()
        terms = list(design.columns)
        result = pd.DataFrame({
            "outcome": y.name,
            "term": terms,
            "coef": fit.params[terms].to_numpy(),
            "coef_se": fit.bse[terms].to_numpy(),
            "coef_ci_low": ci.loc[terms, 0].to_numpy(),
            "coef_ci_high": ci.loc[terms, 1].to_numpy(),
            "beta_std": std.params[terms].to_numpy(),
            "beta_std_se": std.bse[terms].to_numpy(),
            "t": fit.tvalues[terms].to_numpy(),
            "p": fit.pvalues[terms].to_numpy(),
        })  # fmt: skip
        return result.assign(**_model_summary(fit))

    return per_label(table, analyse, labels=labels, source=source)


#: Per-model columns of :func:`regress`, kept once per label in :func:`table2`.
_MODEL_COLUMNS = ("n", "f", "f_df_model", "f_df_resid", "f_p", "r2", "r2_adj",
                  "shapiro_w", "shapiro_p", "breusch_pagan_lm", "breusch_pagan_p")  # fmt: skip


def table2(coefficients: pd.DataFrame) -> pd.DataFrame:
    """Reshape :func:`regress` output into the seed 000 Table 2 layout (one row per label).

    Returns
    -------
    pandas.DataFrame
        ``name`` (long tables), ``outcome``, then ``<term>_beta_std``,
        ``<term>_beta_std_se``, ``<term>_p`` per covariate, then the model columns
        ``n``, ``f``, ``f_p``, ``r2`` ... (see :func:`regress`).

    Examples
    --------
    >>> c = pd.DataFrame({"outcome": ["v", "v"], "term": ["age", "sex"], "beta_std": [0.1, 0.5],
    ...                   "beta_std_se": [0.07, 0.07], "p": [0.2, 0.001], "n": [95, 95],
    ...                   "f": [30.0, 30.0], "f_p": [1e-9, 1e-9], "r2": [0.5, 0.5]})
    >>> list(table2(c).columns)  # doctest: +NORMALIZE_WHITESPACE
    ['outcome', 'age_beta_std', 'age_beta_std_se', 'age_p', 'sex_beta_std', 'sex_beta_std_se',
     'sex_p', 'n', 'f', 'f_p', 'r2']
    """
    keys = [c for c in ("name", "outcome") if c in coefficients.columns]
    rows = []
    for key, group in coefficients.groupby(keys, sort=False):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        for _, term in group.iterrows():
            for stat in ("beta_std", "beta_std_se", "p"):
                row[f"{term['term']}_{stat}"] = term[stat]
        first = group.iloc[0]
        row.update({c: first[c] for c in _MODEL_COLUMNS if c in group.columns})
        rows.append(row)
    return pd.DataFrame(rows)


def _continuous(design: pd.DataFrame) -> list[str]:
    return [c for c in design.columns if ":" not in c and design[c].nunique() > 2]


def partial_correlations(
    table: pd.DataFrame,
    outcome: str,
    covariates: Sequence[str],
    *,
    of: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    source: str = "cohort table",
) -> pd.DataFrame:
    """Partial Pearson correlation of ``outcome`` with each covariate, controlling for the others.

    Parameters
    ----------
    table, outcome, covariates, labels, source
        As in :func:`regress`.
    of : sequence of str, optional
        Covariates to correlate with the outcome (default: every covariate with more
        than two distinct values, e.g. age and BMI but not sex).

    Returns
    -------
    pandas.DataFrame
        One row per label x covariate: ``outcome``, ``variable``, ``controlling_for``,
        ``n``, ``r``, ``r_ci_low``, ``r_ci_high`` (95 %, Fisher z), ``p`` (two-sided).

    Raises
    ------
    InputError
        If ``of`` names a column that is not a covariate.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> t = pd.DataFrame({"age": rng.normal(50, 10, 80), "bmi": rng.normal(25, 4, 80)})
    >>> t["imf_pct"] = 0.1 * t["age"] + 0.2 * t["bmi"] + rng.normal(0, 1, 80)
    >>> partial_correlations(t, "imf_pct", ["age", "bmi"])["variable"].tolist()
    ['age', 'bmi']
    """
    import pingouin as pg

    unknown = sorted(set(of or ()) - set(covariates))
    if unknown:
        raise InputError(
            f"partial correlation of {', '.join(unknown)}: not among the covariates {', '.join(covariates)}"
        )

    def analyse(rows: pd.DataFrame, label: str | None) -> pd.DataFrame:
        y, design = _model_frame(rows, outcome, covariates, label, source=source)
        data = pd.concat([y, design], axis=1)
        variables = _design_columns(design, of) if of else _continuous(design)
        records = []
        for variable in variables:
            others = [c for c in design.columns if c != variable]
            res = pg.partial_corr(data=data, x=variable, y=y.name, covar=others or None)
            ci = res["CI95"].iloc[0]
            records.append({
                "outcome": y.name, "variable": variable, "controlling_for": ",".join(others),
                "n": int(res["n"].iloc[0]), "r": float(res["r"].iloc[0]),
                "r_ci_low": float(ci[0]), "r_ci_high": float(ci[1]), "p": float(res["p_val"].iloc[0]),
            })  # fmt: skip
        return pd.DataFrame(records)

    return per_label(table, analyse, labels=labels, source=source)


def _design_columns(design: pd.DataFrame, covariates: Sequence[str]) -> list[str]:
    """Design columns that encode the given covariates (``site`` -> ``site[b]``, ...)."""
    return [c for c in design.columns if c in covariates or c.split("[", 1)[0] in covariates]


def partial_residuals(
    rows: pd.DataFrame,
    outcome: str,
    covariates: Sequence[str],
    variable: str,
    *,
    label: str | None = None,
    source: str = "cohort table",
) -> pd.DataFrame:
    """Residuals of outcome and of one covariate after regressing both on the other covariates.

    Their Pearson correlation is the partial correlation; their scatter is the residual
    plot of seed 000 Fig. 2-3.

    Returns
    -------
    pandas.DataFrame
        ``<variable>_residual`` and ``<outcome>_residual`` (units of each), one row per
        complete subject.

    Examples
    --------
    >>> t = pd.DataFrame({"age": [20.0, 30, 40, 50, 60, 70], "bmi": [22.0, 27, 24, 30, 23, 26]})
    >>> t["v_ml"] = [1.0, 2.5, 2.9, 4.8, 4.2, 6.1]
    >>> list(partial_residuals(t, "v_ml", ["age", "bmi"], "age").columns)
    ['age_residual', 'v_ml_residual']
    """
    y, design = _model_frame(rows, outcome, covariates, label, source=source)
    if variable not in design.columns:
        raise InputError(f"{variable}: not a design column of {', '.join(design.columns)}")
    others = design.drop(columns=variable)
    return pd.DataFrame({
        f"{variable}_residual": _ols(design[variable], others).resid,
        f"{y.name}_residual": _ols(y, others).resid,
    })  # fmt: skip


@dataclass(frozen=True)
class MarginalMeans:
    """Estimated marginal means per factor level and their pairwise differences."""

    means: pd.DataFrame
    contrasts: pd.DataFrame


def _reference_rows(
    rows: pd.DataFrame, design: pd.DataFrame, covariates: Sequence[str], factor: str, *, source: str
) -> dict[str, pd.Series]:
    """One design row (with constant) per level of ``factor``, other covariates at their means.

    Numeric covariates are held at their sample mean; other categorical covariates are
    averaged over their levels with equal weights (the ``emmeans`` convention).
    """
    levels = covariate_levels(rows, factor, source=source)
    if levels is None:
        raise InputError(f"marginal means: {factor!r} is numeric; choose a categorical covariate such as sex")
    base = design.mean()
    for covariate in covariates:
        if covariate == factor or ":" in covariate:
            continue
        other = covariate_levels(rows, covariate, source=source)
        if other:
            for column in design.columns.intersection(list(next(iter(other.values())))):
                base[column] = np.mean([values[column] for values in other.values()])
    grid = {}
    for level, values in levels.items():
        row = base.copy()
        for column, value in values.items():
            row[column] = value
        for term in (c for c in covariates if ":" in c):  # interactions at the grid values
            row[term] = np.prod([row[part] for part in term.split(":")])
        grid[level] = pd.concat([pd.Series({"const": 1.0}), row])
    return grid


def estimated_marginal_means(
    table: pd.DataFrame,
    outcome: str,
    covariates: Sequence[str],
    factor: str,
    *,
    labels: Sequence[str] | None = None,
    source: str = "cohort table",
) -> MarginalMeans:
    """Estimated marginal means of ``outcome`` per level of ``factor``, adjusted for the other covariates.

    The mean of level *l* is the model prediction at *l* with numeric covariates at their
    sample mean and other categorical covariates weighted equally; SE and 95 % CI come
    from the model covariance (statsmodels ``t_test``).

    Parameters
    ----------
    table, outcome, covariates, labels, source
        As in :func:`regress`.
    factor : str
        A categorical covariate (e.g. ``sex``); must be one of ``covariates``.

    Returns
    -------
    MarginalMeans
        ``means``: one row per label x level with ``outcome``, ``factor``, ``level``,
        ``n`` (subjects at that level), ``<outcome>_emm``, ``<outcome>_emm_se``,
        ``<outcome>_emm_ci_low``, ``<outcome>_emm_ci_high``. ``contrasts``: one row per
        label x pair of levels with ``level_a``, ``level_b``, ``<outcome>_difference``
        (a - b), ``<outcome>_difference_se``, ``t``, ``p``.

    Raises
    ------
    InputError
        If ``factor`` is not a covariate or is numeric.

    Examples
    --------
    >>> t = pd.DataFrame({"sex": ["F", "M"] * 10, "age": np.arange(20.0, 40.0)})
    >>> t["v_ml"] = 100 + 20 * (t["sex"] == "M") + 0.5 * t["age"]
    >>> emm = estimated_marginal_means(t, "v_ml", ["age", "sex"], "sex").means
    >>> emm["v_ml_emm"].round(6).tolist()
    [114.75, 134.75]
    """
    if factor not in covariates:
        raise InputError(
            f"marginal means: factor {factor!r} must be one of the covariates {', '.join(covariates)}"
        )

    def analyse(rows: pd.DataFrame, label: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
        y, design = _model_frame(rows, outcome, covariates, label, source=source)
        fit = _ols(y, design)
        grid = _reference_rows(rows.loc[y.index], design, covariates, factor, source=source)
        levels = covariate_levels(rows.loc[y.index], factor, source=source) or {}
        name = y.name
        means = []
        for level, row in grid.items():
            test = fit.t_test(row[fit.params.index].to_numpy()[None, :])
            ci = test.conf_int()[0]
            at_level = np.logical_and.reduce([design[c] == v for c, v in levels[level].items()])
            means.append({
                "outcome": name, "factor": factor, "level": level, "n": int(at_level.sum()),
                f"{name}_emm": float(test.effect[0]), f"{name}_emm_se": float(test.sd[0, 0]),
                f"{name}_emm_ci_low": float(ci[0]), f"{name}_emm_ci_high": float(ci[1]),
            })  # fmt: skip
        contrasts = []
        names = list(grid)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                diff = (grid[a] - grid[b])[fit.params.index].to_numpy()[None, :]
                test = fit.t_test(diff)
                contrasts.append({
                    "outcome": name, "factor": factor, "level_a": a, "level_b": b,
                    f"{name}_difference": float(test.effect[0]),
                    f"{name}_difference_se": float(test.sd[0, 0]),
                    "t": float(test.tvalue[0, 0]), "p": float(test.pvalue),
                })  # fmt: skip
        return pd.DataFrame(means), pd.DataFrame(contrasts)

    means, contrasts = per_label(table, analyse, labels=labels, source=source)
    return MarginalMeans(means=means, contrasts=contrasts)


def hierarchical_regression(
    table: pd.DataFrame,
    outcome: str,
    base: Sequence[str],
    add: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    source: str = "cohort table",
) -> pd.DataFrame:
    """R² change from adding each variable in ``add`` to a base model (seed 000 Table 3).

    Each added variable is its own step (base + that variable), fitted on the subjects
    complete for the outcome, the base covariates and that variable.

    Parameters
    ----------
    table, labels, source
        As in :func:`regress`.
    outcome : str
        Outcome column, e.g. ``plantarflexion_force_{side}_n`` (``{side}`` is filled in
        per label, so left muscles go with left force).
    base : sequence of str
        Covariates of the first step (e.g. age, bmi, sex).
    add : sequence of str
        Variables added one at a time (e.g. ``volume_ml``, ``imf_pct``).

    Returns
    -------
    pandas.DataFrame
        One row per label x added variable: ``outcome``, ``added``, ``n``,
        ``beta_std``, ``beta_std_se`` (standardized coefficient of the added variable in
        the full model), ``f_change``, ``f_change_df1``, ``f_change_df2``, ``p_change``,
        ``r2_base``, ``r2``, ``delta_r2``, and the full model's ``shapiro_w``,
        ``shapiro_p``, ``breusch_pagan_lm``, ``breusch_pagan_p``.

    Raises
    ------
    InputError
        For unknown or non-numeric columns, or too few subjects.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> t = pd.DataFrame({"age": rng.normal(40, 10, 60), "volume_ml": rng.normal(300, 50, 60)})
    >>> t["force_n"] = 2 * t["volume_ml"] - 3 * t["age"] + rng.normal(0, 60, 60)
    >>> r = hierarchical_regression(t, "force_n", ["age"], ["volume_ml"])
    >>> bool(r["delta_r2"].iloc[0] > 0.3)
    True
    """

    def analyse(rows: pd.DataFrame, label: str | None) -> pd.DataFrame:
        records = []
        for variable in add:
            y, design = _model_frame(rows, outcome, [*base, variable], label, source=source)
            added = resolve_side_template(variable, label, rows)
            added_columns = _design_columns(design, [added])
            full = _ols(y, design)
            reduced = _ols(y, design.drop(columns=added_columns))
            f_change, p_change, df1 = full.compare_f_test(reduced)
            std = _ols(_zscore(y), _zscore(design))
            single = added_columns[0] if len(added_columns) == 1 else None
            records.append({
                "outcome": y.name, "added": added, "n": int(full.nobs),
                "beta_std": float(std.params[single]) if single else np.nan,
                "beta_std_se": float(std.bse[single]) if single else np.nan,
                "f_change": float(f_change), "f_change_df1": float(df1), "f_change_df2": float(full.df_resid),
                "p_change": float(p_change), "r2_base": float(reduced.rsquared), "r2": float(full.rsquared),
                "delta_r2": float(full.rsquared - reduced.rsquared), **residual_diagnostics(full),
            })  # fmt: skip
        return pd.DataFrame(records)

    return per_label(table, analyse, labels=labels, source=source)
