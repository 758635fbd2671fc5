"""Logistic regression of binary outcomes on an exposure (seed 001 Table 2 / Fig. 5).

Subjects are split into tertiles of the exposure (33rd and 67th percentiles); the high
tertile is compared with the low one (middle left out) in a logistic model adjusted for
covariates. Reported: odds ratio, its 95 % profile-likelihood CI (the seed's choice, with
better coverage than Wald in small samples or for ORs far from 1), the Wald CI, the Wald
chi² and p, and events per group.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from myoscan.cohort._columns import (
    encode_covariates,
    numeric_column,
    require_columns,
    text_codes,
    unparsed_examples,
)
from myoscan.cohort._data import TooFewSubjectsError, complete_cases, per_label
from myoscan.errors import InputError

__all__ = [
    "MIN_EVENTS_PER_PARAMETER",
    "TERTILE_QUANTILES",
    "binary_column",
    "logistic_regression",
    "profile_likelihood_ci",
    "tertiles",
]

log = logging.getLogger(__name__)

#: Tertile cut points: the 33rd and 67th percentiles (seed 001, "Statistical analysis").
TERTILE_QUANTILES = (1 / 3, 2 / 3)
#: Fewer events than this per model parameter triggers a warning (Peduzzi et al. 1996,
#: J Clin Epidemiol 49:1373, the usual rule of ten).
MIN_EVENTS_PER_PARAMETER = 10
#: How far (in Wald SEs, doubling each time) the profile search steps out before it
#: declares a confidence bound infinite.
_MAX_DOUBLINGS = 12
_ESTIMATES = ("log_or", "log_or_se", "or", "or_ci_low", "or_ci_high", "or_wald_ci_low", "or_wald_ci_high",
              "wald_chi2", "p")  # fmt: skip
_TRUE_WORDS = {"1", "1.0", "true", "yes", "y"}
_FALSE_WORDS = {"0", "0.0", "false", "no", "n"}


def tertiles(values: pd.Series) -> tuple[pd.Series, tuple[float, float]]:
    """Split values into ``'low'``, ``'middle'`` and ``'high'`` tertiles.

    Low is ``<= q(1/3)``, middle ``<= q(2/3)``, high above (``q`` = linear-interpolated
    quantile of the non-missing values).

    Returns
    -------
    groups : pandas.Series
        Tertile name per row, NaN where the value is missing.
    cuts : tuple of 2 float
        The two cut points, in the units of ``values``.

    Examples
    --------
    >>> groups, cuts = tertiles(pd.Series([1.0, 2, 3, 4, 5, 6]))
    >>> groups.tolist(), [round(c, 3) for c in cuts]
    (['low', 'low', 'middle', 'middle', 'high', 'high'], [2.667, 4.333])
    """
    low_cut, high_cut = (float(q) for q in values.quantile(list(TERTILE_QUANTILES)))
    groups = pd.Series(
        np.where(values <= low_cut, "low", np.where(values <= high_cut, "middle", "high")),
        index=values.index,
        dtype=object,
    )
    return groups.where(values.notna()), (low_cut, high_cut)


def binary_column(table: pd.DataFrame, column: str, *, source: str) -> pd.Series:
    """Return a 0/1 outcome column as float (accepts 0/1, true/false, yes/no; missing stays NaN).

    Raises
    ------
    InputError
        If a value is not one of the accepted codes.

    Examples
    --------
    >>> binary_column(pd.DataFrame({"fall": ["yes", "no", None]}), "fall", source="p.tsv").tolist()
    [1.0, 0.0, nan]
    """
    require_columns(table, [column], source=source, what="outcome")
    values = table[column]
    words = text_codes(values)
    result = pd.Series(np.nan, index=values.index)
    result[words.isin(_TRUE_WORDS)] = 1.0
    result[words.isin(_FALSE_WORDS)] = 0.0
    n_bad, examples = unparsed_examples(values, result)
    if n_bad:
        raise InputError(f"{source}: outcome {column!r} must be 0/1 (or true/false, yes/no), got {examples}")
    return result


def _binomial_llf(endog: np.ndarray, exog: np.ndarray, offset: np.ndarray, start: np.ndarray | None) -> float:
    """Maximised log-likelihood of a logistic model with a fixed offset."""
    import statsmodels.api as sm

    family = sm.families.Binomial()
    if exog.shape[1] == 0:
        return float(family.loglike(endog, 1.0 / (1.0 + np.exp(-offset))))
    fit = sm.GLM(endog, exog, family=family, offset=offset).fit(start_params=start)
    return float(fit.llf)


def profile_likelihood_ci(
    endog: np.ndarray, exog: np.ndarray, column: int, *, alpha: float = 0.05
) -> tuple[float, float]:
    """Profile-likelihood confidence interval of one logistic-regression coefficient.

    statsmodels (0.15) offers only Wald intervals for GLM and Logit (profile intervals
    are its open issue #1740), so the likelihood-ratio test is inverted here: the
    coefficient is fixed at *b* by moving ``b * x`` into the offset, the other
    coefficients are refitted by statsmodels, and the bounds are the two roots of
    ``2 (llf_max - llf(b)) = chi2_1(1 - alpha)`` found with :func:`scipy.optimize.brentq`.

    Parameters
    ----------
    endog : (N,) ndarray
        0/1 outcome.
    exog : (N, P) ndarray
        Design matrix including the constant column.
    column : int
        Index of the coefficient in ``exog``.
    alpha : float
        1 - coverage.

    Returns
    -------
    tuple of 2 float
        Lower and upper bound on the log-odds scale; ``-inf`` / ``inf`` when the profile
        never reaches the threshold (e.g. separation).

    Examples
    --------
    >>> x = np.repeat([0.0, 1.0], 20)
    >>> y = np.r_[np.repeat([0.0, 1.0], [15, 5]), np.repeat([0.0, 1.0], [5, 15])]
    >>> low, high = profile_likelihood_ci(y, np.c_[np.ones(40), x], 1)
    >>> round(low, 3), round(high, 3)
    (0.836, 3.732)
    """
    import statsmodels.api as sm
    from scipy import optimize, stats

    y = np.asarray(endog, dtype=float)
    x_all = np.asarray(exog, dtype=float)
    full = sm.GLM(y, x_all, family=sm.families.Binomial()).fit()
    b_hat = float(full.params[column])
    step = float(full.bse[column]) if np.isfinite(full.bse[column]) and full.bse[column] > 0 else 1.0
    others = np.delete(x_all, column, axis=1)
    x_j = x_all[:, column]
    start = np.delete(full.params, column)
    threshold = float(stats.chi2.ppf(1.0 - alpha, 1))

    def gap(b: float) -> float:
        return 2.0 * (full.llf - _binomial_llf(y, others, b * x_j, start)) - threshold

    bounds = []
    for direction in (-1.0, 1.0):
        inner, outer = b_hat, b_hat + direction * step
        for _ in range(_MAX_DOUBLINGS):
            if gap(outer) > 0:
                break
            inner, outer = outer, b_hat + 2.0 * (outer - b_hat)
        else:
            bounds.append(direction * np.inf)
            continue
        bounds.append(float(optimize.brentq(gap, min(inner, outer), max(inner, outer), xtol=1e-10)))
    return bounds[0], bounds[1]


def _fit_logistic(y: pd.Series, design: pd.DataFrame, exposure_term: str, alpha: float) -> dict[str, float]:
    import statsmodels.api as sm
    from scipy import stats

    exog = sm.add_constant(design, has_constant="add")
    fit = sm.GLM(y, exog, family=sm.families.Binomial()).fit()
    column = list(exog.columns).index(exposure_term)
    beta, se = float(fit.params.iloc[column]), float(fit.bse.iloc[column])
    low, high = profile_likelihood_ci(y.to_numpy(), exog.to_numpy(), column, alpha=alpha)
    z = float(stats.norm.ppf(1 - alpha / 2))
    wald = (beta / se) ** 2
    return {
        "log_or": beta, "log_or_se": se, "or": np.exp(beta),
        "or_ci_low": np.exp(low), "or_ci_high": np.exp(high),
        "or_wald_ci_low": np.exp(beta - z * se), "or_wald_ci_high": np.exp(beta + z * se),
        "wald_chi2": wald, "p": float(stats.chi2.sf(wald, 1)),
    }  # fmt: skip


def logistic_regression(
    table: pd.DataFrame,
    exposure: str,
    outcomes: Sequence[str],
    adjust: Sequence[str] = (),
    *,
    use_tertiles: bool = True,
    alpha: float = 0.05,
    labels: Sequence[str] | None = None,
    source: str = "cohort table",
) -> pd.DataFrame:
    """Odds ratios of binary outcomes for an exposure, adjusted for covariates (seed 001).

    Parameters
    ----------
    table : pandas.DataFrame
        Joined cohort table; long tables are analysed per label.
    exposure : str
        Exposure column (e.g. ``pa_ratio``, ``asymmetry_pct_quadriceps``).
    outcomes : sequence of str
        0/1 outcome columns (e.g. ``ewgsop2_sarcopenia`` from :mod:`myoscan.sarcopenia`).
    adjust : sequence of str
        Covariates (e.g. age, sex, bmi).
    use_tertiles : bool
        True: high vs low tertile of the exposure (tertiles from every subject of the
        label with an exposure value). False: OR per 1 SD of the exposure.
    alpha : float
        1 - CI coverage.
    labels, source
        As in :func:`myoscan.cohort.regress`.

    Returns
    -------
    pandas.DataFrame
        One row per label x outcome: ``exposure``, ``outcome``, ``contrast``, ``n``,
        ``n_events``, ``n_high``, ``n_low``, ``events_high``, ``events_low``,
        ``<exposure>_cut_low``, ``<exposure>_cut_high`` (tertile cut points) or
        ``<exposure>_sd`` (per-SD scale), ``log_or``, ``log_or_se``, ``or``,
        ``or_ci_low``, ``or_ci_high`` (profile likelihood), ``or_wald_ci_low``,
        ``or_wald_ci_high``, ``wald_chi2``, ``p`` (Wald). A model whose outcome never or
        always occurs in a group has NaN estimates and a ``note``.

    Raises
    ------
    InputError
        For unknown or non-numeric columns, non-binary outcomes, too few subjects, an
        exposure with a single value (or an empty high or low tertile from tied values),
        or when every outcome is the same for all complete subjects (one such outcome
        among others gets NaN estimates, a ``note`` and a warning).

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> t = pd.DataFrame({"pa_ratio": rng.normal(0.45, 0.05, 600), "age": rng.normal(65, 8, 600)})
    >>> t["weak_grip"] = rng.binomial(1, 1 / (1 + np.exp(-(-1.0 + 8 * (t["pa_ratio"] - 0.45)))))
    >>> r = logistic_regression(t, "pa_ratio", ["weak_grip"], ["age"])
    >>> r[["n_high", "n_low"]].iloc[0].tolist()
    [200, 200]
    """
    clashes = sorted(set(outcomes) & ({exposure} | set(adjust)))
    if clashes:  # an outcome that predicts itself separates perfectly: OR 1, CI 0 to inf
        raise InputError(
            f"logistic regression on {exposure}: {', '.join(clashes)} is both an outcome and the exposure "
            "or a covariate; an outcome cannot predict itself"
        )

    def analyse(rows: pd.DataFrame, label: str | None) -> pd.DataFrame:
        x = numeric_column(rows, exposure, source=source)
        covariates = encode_covariates(rows, adjust, source=source)
        where = f" for {label}" if label else ""
        if x.nunique() < 2:
            raise TooFewSubjectsError(
                f"{exposure}{where}: a single value in the {int(x.notna().sum())} subject(s) with one; "
                "no exposure contrast to estimate"
            )
        records = []
        if use_tertiles:
            groups, cuts = tertiles(x)
            empty = [g for g in ("low", "high") if not (groups == g).any()]
            if empty:  # tied values: e.g. a 0/1 exposure puts nobody above the 67th percentile
                raise TooFewSubjectsError(
                    f"{exposure}{where}: the {empty[0]} tertile is empty (cut points {cuts[0]:g} and "
                    f"{cuts[1]:g}; too many tied values); use --per-sd or a finer exposure"
                )
            term = f"{exposure}_high_tertile"
            predictor = (groups == "high").astype(float).where(groups.isin(["low", "high"]))
            extra = {f"{exposure}_cut_low": cuts[0], f"{exposure}_cut_high": cuts[1]}
            contrast = "high vs low tertile"
        else:
            sd = float(x.std(ddof=1))
            term, predictor = f"{exposure}_per_sd", (x - x.mean()) / sd
            extra, contrast = {f"{exposure}_sd": sd}, "per 1 SD"
        constant = []
        for outcome in outcomes:
            y = binary_column(rows, outcome, source=source).rename("_outcome")
            data = pd.concat([y, predictor.rename(term), covariates], axis=1)
            what = f"{outcome} ~ {exposure}" + (f" for {label}" if label else "")
            data = complete_cases(data, minimum=data.shape[1] + 2, what=what)
            if data["_outcome"].nunique() < 2:  # no events (or no non-events) at all
                message = (
                    f"{what}: the outcome is {int(data['_outcome'].iloc[0])} for all {len(data)} "
                    "complete subject(s); no odds ratio can be estimated"
                )
                constant.append(message)
                if len(constant) == len(outcomes):  # nothing estimable: an error, not a table of NaN
                    raise TooFewSubjectsError(
                        constant[0] if len(constant) == 1 else f"{'; '.join(constant[:3])} (every outcome)"
                    )
                warnings.warn(message, stacklevel=3)
                note = "outcome constant (no events or no non-events)"
                estimate = dict.fromkeys(_ESTIMATES, np.nan) | {"note": note}
            else:
                estimate = _estimate(data, term, alpha, what)
            records.append({
                "exposure": exposure, "outcome": outcome, "contrast": contrast,
                **_counts(data, term, use_tertiles), **extra, **estimate,
            })  # fmt: skip
        return pd.DataFrame(records)

    return per_label(table, analyse, labels=labels, source=source)


def _counts(data: pd.DataFrame, term: str, use_tertiles: bool) -> dict[str, float]:
    counts = {"n": len(data), "n_events": int(data["_outcome"].sum())}
    if use_tertiles:
        high = data[term] == 1.0
        counts.update({
            "n_high": int(high.sum()), "n_low": int((~high).sum()),
            "events_high": int(data.loc[high, "_outcome"].sum()),
            "events_low": int(data.loc[~high, "_outcome"].sum()),
        })  # fmt: skip
    return counts


def _estimate(data: pd.DataFrame, term: str, alpha: float, what: str) -> dict[str, object]:
    y, design = data["_outcome"], data.drop(columns="_outcome")
    values = design[term].unique()
    if len(values) < 2:
        raise TooFewSubjectsError(
            f"{what}: all {len(y)} complete subject(s) have the same exposure value or group; "
            "no odds ratio can be estimated"
        )
    cells = [y] if len(values) > 2 else [y[design[term] == value] for value in values]
    if any(cell.nunique() < 2 for cell in cells):
        warnings.warn(
            f"{what}: the outcome never or always occurs in a group; odds ratio not estimable", stacklevel=3
        )
        return dict.fromkeys(_ESTIMATES, np.nan) | {"note": "outcome constant within a group (separation)"}
    n_params = design.shape[1] + 1
    events = min(int(y.sum()), int((1 - y).sum()))
    if events < MIN_EVENTS_PER_PARAMETER * n_params:
        warnings.warn(
            f"{what}: {events} events (or non-events) for {n_params} parameters, fewer than "
            f"{MIN_EVENTS_PER_PARAMETER} per parameter; the odds ratio may be unstable",
            stacklevel=3,
        )
    return _fit_logistic(y, design, term, alpha)
