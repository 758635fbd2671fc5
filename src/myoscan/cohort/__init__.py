"""Cohort statistics over metrics tables: regressions, logistic models, age trends, ANCOVA.

Every function takes a joined cohort table (a metrics table from ``myoscan quantify``,
long with one row per subject x label in ``name`` or wide with one row per subject,
joined to a participants table by :func:`join_participants`) and returns tidy
DataFrames. Long tables are analysed per label. See ``docs/cohort.md``.
"""

from __future__ import annotations

from myoscan.cohort._columns import encode_covariates, normalize_sex
from myoscan.cohort._data import (
    JoinReport,
    join_participants,
    read_cohort_table,
)
from myoscan.cohort.anova import RepeatedMeasures, ancova, average_sides, repeated_measures_ancova
from myoscan.cohort.logistic import binary_column, logistic_regression, profile_likelihood_ci, tertiles
from myoscan.cohort.regression import (
    MarginalMeans,
    estimated_marginal_means,
    hierarchical_regression,
    partial_correlations,
    partial_residuals,
    regress,
    residual_diagnostics,
    table2,
)
from myoscan.cohort.trend import (
    AgeStrata,
    AgeTrend,
    age_strata,
    age_trend,
    cochran_armitage,
    correlate,
    decline_per_decade,
    fisher_z_ci,
    proportion_trend,
    strata_summary,
)

__all__ = [
    "AgeStrata",
    "AgeTrend",
    "JoinReport",
    "MarginalMeans",
    "RepeatedMeasures",
    "age_strata",
    "age_trend",
    "ancova",
    "average_sides",
    "binary_column",
    "cochran_armitage",
    "correlate",
    "decline_per_decade",
    "encode_covariates",
    "estimated_marginal_means",
    "fisher_z_ci",
    "hierarchical_regression",
    "join_participants",
    "logistic_regression",
    "normalize_sex",
    "partial_correlations",
    "partial_residuals",
    "profile_likelihood_ci",
    "proportion_trend",
    "read_cohort_table",
    "regress",
    "repeated_measures_ancova",
    "residual_diagnostics",
    "strata_summary",
    "table2",
    "tertiles",
]
