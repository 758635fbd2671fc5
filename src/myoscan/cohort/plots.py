"""Figures of the cohort analyses (PNG, written atomically).

Matplotlib is imported inside each function and used through its object-oriented API
(``Figure`` rendered by the Agg canvas), so importing :mod:`myoscan.cohort` stays cheap
and no global backend state is touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from myoscan._typing import PathLike
from myoscan.cohort.regression import partial_residuals
from myoscan.cohort.trend import AgeStrata, stratified_values
from myoscan.outputs import write_figure

__all__ = ["plot_age_boxes", "plot_forest", "plot_marginal_means", "plot_partial_residuals"]

#: Colours of the groups in every figure (seed 001 Fig. 4: men blue, women red).
GROUP_COLOURS = {"male": "#1f77b4", "female": "#d62728"}
_OTHER_COLOURS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_DPI = 150


def _figure(width_in: float, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg renderer, whatever pyplot's backend is
    return fig


def _colour(group: str, index: int) -> str:
    return GROUP_COLOURS.get(group, _OTHER_COLOURS[index % len(_OTHER_COLOURS)])


def plot_partial_residuals(
    rows: pd.DataFrame,
    outcome: str,
    covariates: Sequence[str],
    variables: Sequence[str],
    path: PathLike,
    *,
    label: str | None = None,
    source: str = "cohort table",
) -> Path:
    """Residual plots of partial correlations (seed 000 Fig. 2-3), one panel per variable.

    Each panel plots the residuals of ``outcome`` against those of one variable after
    regressing both on the other covariates, with the least-squares line and Pearson r.

    Parameters
    ----------
    rows : pandas.DataFrame
        Rows of one label (or a wide table).
    outcome, covariates : str, sequence of str
        As in :func:`myoscan.cohort.partial_correlations`.
    variables : sequence of str
        Design columns to plot (e.g. ``['age', 'bmi']``).
    path : str or os.PathLike
        PNG to write.
    label : str, optional
        Label name for the title and ``{side}`` templates.
    source : str
        Name used in messages.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> t = pd.DataFrame({"age": np.arange(20.0, 40.0), "bmi": np.tile([22.0, 27.0], 10)})
    >>> t["v_ml"] = t["age"] + t["bmi"] + np.tile([0.5, -0.5, 0.2, -0.2], 5)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "p.png"
    >>> plot_partial_residuals(t, "v_ml", ["age", "bmi"], ["age"], out).stat().st_size > 0
    True
    """
    fig = _figure(3.6 * len(variables), 3.4)
    axes = fig.subplots(1, len(variables), squeeze=False)[0]
    for ax, variable in zip(axes, variables, strict=True):
        res = partial_residuals(rows, outcome, covariates, variable, label=label, source=source)
        x, y = res.iloc[:, 0].to_numpy(), res.iloc[:, 1].to_numpy()
        ax.scatter(x, y, s=10, alpha=0.6, color="#1f77b4", edgecolors="none")
        slope, intercept = np.polyfit(x, y, 1)
        grid = np.linspace(x.min(), x.max(), 2)
        ax.plot(grid, intercept + slope * grid, color="black", linewidth=1)
        r = float(np.corrcoef(x, y)[0, 1])
        ax.set_title(f"{label + ': ' if label else ''}{variable} (r = {r:.3f}, n = {len(x)})", fontsize=9)
        ax.set_xlabel(res.columns[0])
        ax.set_ylabel(res.columns[1])
    return write_figure(fig, path)


def plot_marginal_means(means: pd.DataFrame, path: PathLike) -> Path:
    """Bar chart of estimated marginal means with +/- 1 SE error bars (seed 000 Fig. 4).

    Parameters
    ----------
    means : pandas.DataFrame
        ``means`` of :func:`myoscan.cohort.estimated_marginal_means` (one outcome).
    path : str or os.PathLike
        PNG to write.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> m = pd.DataFrame({"outcome": "v_ml", "level": ["female", "male"], "v_ml_emm": [10.0, 12.0],
    ...                   "v_ml_emm_se": [0.5, 0.6]})
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "emm.png"
    >>> plot_marginal_means(m, out).exists()
    True
    """
    outcome = str(means["outcome"].iloc[0])
    names = list(dict.fromkeys(means["name"])) if "name" in means.columns else [outcome]
    levels = list(dict.fromkeys(means["level"].astype(str)))
    fig = _figure(max(4.0, 0.9 * len(names) * len(levels)), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / len(levels)
    for j, level in enumerate(levels):
        rows = means[means["level"].astype(str) == level]
        if "name" in rows.columns:
            rows = rows.set_index("name").reindex(names)
        positions = np.arange(len(names)) + (j - (len(levels) - 1) / 2) * width
        ax.bar(positions, rows[f"{outcome}_emm"], width, yerr=rows[f"{outcome}_emm_se"], capsize=3,
               color=_colour(level, j), label=level)  # fmt: skip
    ax.set_xticks(np.arange(len(names)), names, rotation=45 if len(names) > 3 else 0, ha="right")
    ax.set_ylabel(f"{outcome}\n(marginal mean \u00b1 SE)")
    ax.legend(frameon=False)
    return write_figure(fig, path)


def plot_forest(results: pd.DataFrame, path: PathLike) -> Path:
    """Forest plot of odds ratios with profile-likelihood 95 % CIs (seed 001 Fig. 5).

    Parameters
    ----------
    results : pandas.DataFrame
        Output of :func:`myoscan.cohort.logistic_regression`.
    path : str or os.PathLike
        PNG to write.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> r = pd.DataFrame({"exposure": "pa_ratio", "outcome": ["fall", "weak_grip"], "or": [1.5, 1.1],
    ...                   "or_ci_low": [1.2, 0.9], "or_ci_high": [1.9, 1.3], "events_high": [50, 40],
    ...                   "events_low": [30, 38], "contrast": "high vs low tertile"})
    >>> plot_forest(r, pathlib.Path(tempfile.mkdtemp()) / "forest.png").exists()
    True
    """
    from matplotlib.ticker import FuncFormatter

    shown = results.dropna(subset=["or"]).reset_index(drop=True)
    fig = _figure(7.5, 1.6 + 0.4 * max(len(shown), 1))
    ax = fig.add_subplot()
    positions = np.arange(len(shown))[::-1]
    for y, (_, row) in zip(positions, shown.iterrows(), strict=True):
        ax.plot([row["or_ci_low"], row["or_ci_high"]], [y, y], color="black", linewidth=1.2)
        ax.plot(row["or"], y, "s", color="#1f77b4", markersize=6)
        events = f"  {row['events_high']:.0f}/{row['events_low']:.0f}" if "events_high" in row.index else ""
        ax.annotate(f"{row['or']:.2f} ({row['or_ci_low']:.2f}-{row['or_ci_high']:.2f}){events}",
                    (1.02, y), xycoords=("axes fraction", "data"), va="center", fontsize=8)  # fmt: skip
    names = [f"{row['name']}: {row['outcome']}" if "name" in shown.columns else str(row["outcome"])
             for _, row in shown.iterrows()]  # fmt: skip
    ax.set_yticks(positions, names)
    ax.set_ylim(-0.7, len(shown) - 0.3)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if v in (0.5, 2, 3, 5) else ""))
    contrast = shown["contrast"].iloc[0] if len(shown) else ""
    exposure = results["exposure"].iloc[0] if len(results) else ""
    ax.set_xlabel(f"odds ratio, {exposure} {contrast}\n(95 % profile-likelihood CI; events high/low)")
    return write_figure(fig, path)


def plot_age_boxes(
    rows: pd.DataFrame,
    measure: str,
    path: PathLike,
    strata: AgeStrata | None = None,
    *,
    title: str | None = None,
    source: str = "cohort table",
) -> Path:
    """Box plots of a measure per age stratum and group (seed 001 Fig. 4).

    Boxes show median and IQR, whiskers 1.5 x IQR, outliers as points; the number of
    subjects is written under each box and cut-offs are dashed lines.

    Parameters
    ----------
    rows : pandas.DataFrame
        Rows of one label (or a wide table).
    measure : str
        Column to plot.
    path : str or os.PathLike
        PNG to write.
    strata : AgeStrata, optional
        Age column, grouping, strata edges and cut-off (drawn as dashed lines); decades
        by sex by default.
    title : str, optional
        Figure title.
    source : str
        Name used in messages.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> t = pd.DataFrame({"age": np.linspace(40, 89, 40), "sex": ["M", "F"] * 20,
    ...                   "tmv_cm3": np.linspace(12000, 8000, 40)})
    >>> plot_age_boxes(t, "tmv_cm3", pathlib.Path(tempfile.mkdtemp()) / "box.png").exists()
    True
    """
    strata = strata or AgeStrata()
    data = stratified_values(rows, measure, replace(strata, cutoff=None), source=source)
    cutoff = strata.cutoff
    names = list(data["stratum"].cat.categories)
    groups = sorted(data["group"].unique())
    fig = _figure(max(5.0, 1.2 * len(names) * max(len(groups), 1)), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / max(len(groups), 1)
    low = float(data["value"].min()) if len(data) else 0.0
    for j, group in enumerate(groups):
        cells = [
            data.loc[(data["group"] == group) & (data["stratum"] == s), "value"].to_numpy() for s in names
        ]
        positions = np.arange(len(names)) + (j - (len(groups) - 1) / 2) * width
        kept = [(p, c) for p, c in zip(positions, cells, strict=True) if len(c)]
        if not kept:
            continue
        box = ax.boxplot([c for _, c in kept], positions=[p for p, _ in kept], widths=width * 0.9,
                         patch_artist=True, whis=1.5, flierprops={"markersize": 3})  # fmt: skip
        for patch in box["boxes"]:
            patch.set_facecolor(_colour(group, j))
            patch.set_alpha(0.6)
        for p, c in kept:
            ax.annotate(
                str(len(c)), (p, low), xytext=(0, -12), textcoords="offset points", ha="center", fontsize=7
            )
        ax.plot([], [], "s", color=_colour(group, j), label=group)
    if isinstance(cutoff, Mapping):
        for j, (group, value) in enumerate(cutoff.items()):
            ax.axhline(value, color=_colour(group, j), linestyle="--", linewidth=1)
    elif cutoff is not None:
        ax.axhline(float(cutoff), color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_xlabel(f"{strata.age} (years)")
    ax.set_ylabel(measure)
    if title:
        ax.set_title(title)
    if len(groups) > 1:
        ax.legend(frameon=False)
    return write_figure(fig, path)
