"""The cohort QC report: run counts, distributions by age and sex, outliers, subject pages.

:func:`cohort_outliers` scores every structure's measures (volume, IMF, FF, HU) and every
regional index with a robust z across subjects; :func:`cohort_report` renders the index
page as a string; :func:`write_cohort_report` writes the index, refreshes the subject pages
it links to (beside it), and writes ``outliers.csv`` and ``qc_flags.csv``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from myoscan import __version__
from myoscan._typing import PathLike
from myoscan.errors import InputError
from myoscan.outputs import read_table, write_table, write_text
from myoscan.progress import progress
from myoscan.report import figures, markup, qc
from myoscan.report.files import list_subject_folders, read_cohort_table, sex_labels
from myoscan.report.subject import ReportOptions, subject_report

__all__ = [
    "OUTLIER_MEASURES",
    "CohortReport",
    "cohort_outliers",
    "cohort_report",
    "measures_by_group",
    "write_cohort_report",
]

log = logging.getLogger(__name__)

#: Per-label measures scored for outliers, when present in the cohort metric table.
OUTLIER_MEASURES: tuple[str, ...] = ("volume_ml", "imf_pct", "ff_mean_pct", "mean_hu")
#: Regional indices scored for outliers (plus every ``asymmetry_pct_*`` column).
OUTLIER_INDICES: tuple[str, ...] = ("tmv_cm3", "tvi_cm3_m2", "pa_ratio", "smi_cm2_m2", "smi_g_m2")
#: Most groups drawn per box-plot figure (largest total volume first).
MAX_GROUP_PANELS = 12
#: Most rows of the outlier / error / page tables on the page (the CSV files hold all).
MAX_TABLE_ROWS = 500

SubjectPages = Literal["outliers", "all", "none"]


@dataclass(frozen=True)
class CohortReport:
    """A rendered cohort index page.

    Attributes
    ----------
    html : str
        The self-contained index page.
    outliers : pandas.DataFrame
        ``subject, session, key, structure, measure, value, median, robust_z`` sorted by |z|.
    counts : dict of str to int
        ``done`` (subjects with results), ``failed`` (rows of errors.tsv), ``labels``.
    pages : dict of str to str
        Case key -> QC status of the subject pages linked from the index.
    """

    html: str
    outliers: pd.DataFrame
    counts: dict[str, int]
    pages: dict[str, str] = field(default_factory=dict)


def _case_keys(table: pd.DataFrame) -> pd.Series:
    subject = table["subject"].astype(str)
    if "session" not in table.columns:
        return subject
    session = table["session"]
    return subject.where(session.isna(), subject + "_" + session.astype(str))


def cohort_outliers(
    metrics: pd.DataFrame | None,
    indices: pd.DataFrame | None = None,
    *,
    threshold: float = qc.ROBUST_Z_THRESHOLD,
) -> pd.DataFrame:
    """Subjects whose measures lie beyond ``threshold`` robust z-scores of the cohort.

    Per-label measures (:data:`OUTLIER_MEASURES`) are scored within each structure
    (``name``), regional indices within each column. A structure absent in a subject is not
    scored (it shows as ``missing`` on the subject page).

    Parameters
    ----------
    metrics : pandas.DataFrame or None
        Cohort metric table (``subject``, ``name``, measures; ``session`` optional).
    indices : pandas.DataFrame, optional
        Cohort regional-index table (``subject``, index columns).
    threshold : float
        |z| above this is an outlier.

    Returns
    -------
    pandas.DataFrame
        ``subject, session, key, structure, measure, value, median, robust_z``, largest |z| first.

    Examples
    --------
    >>> t = pd.DataFrame({"subject": [f"sub-{i}" for i in range(6)], "name": "soleus_left",
    ...                   "volume_ml": [100.0, 98.0, 103.0, 101.0, 99.0, 1000.0]})
    >>> cohort_outliers(t)[["key", "measure", "robust_z"]].round(1).values.tolist()
    [['sub-5', 'volume_ml', 303.4]]
    """
    parts = []
    if metrics is not None and {"subject", "name"} <= set(metrics.columns):
        present = metrics
        if "volume_ml" in metrics.columns:
            present = metrics.loc[pd.to_numeric(metrics["volume_ml"], errors="coerce").fillna(0) > 0]
        for measure in (m for m in OUTLIER_MEASURES if m in present.columns):
            parts.append(_scored(present, measure, by="name", structure=present["name"].astype(str)))
    if indices is not None and "subject" in indices.columns:
        columns = [c for c in indices.columns if c in OUTLIER_INDICES or str(c).startswith("asymmetry_pct_")]
        for measure in columns:
            parts.append(_scored(indices, measure, by=None, structure=pd.Series("", index=indices.index)))
    columns = ["subject", "session", "key", "structure", "measure", "value", "median", "robust_z"]
    if not parts:
        return pd.DataFrame(columns=columns)
    scored = pd.concat(parts, ignore_index=True)
    flagged = scored.loc[scored["robust_z"].abs() > threshold].copy()
    flagged = flagged.iloc[np.argsort(-flagged["robust_z"].abs().to_numpy(), kind="stable")]
    return flagged[columns].reset_index(drop=True)


def _scored(table: pd.DataFrame, measure: str, *, by: str | None, structure: pd.Series) -> pd.DataFrame:
    values = pd.to_numeric(table[measure], errors="coerce")
    grouping = table[by] if by else pd.Series(0, index=table.index)
    frame = pd.DataFrame({"value": values, "group": grouping})
    return pd.DataFrame(
        {
            "subject": table["subject"].astype(str),
            "session": table["session"] if "session" in table.columns else pd.NA,
            "key": _case_keys(table),
            "structure": structure,
            "measure": measure,
            "value": values,
            "median": values.groupby(grouping).transform("median"),
            "robust_z": qc.robust_z_by(frame, "value", "group"),
        }
    )


def _weights(rows: pd.DataFrame, measure: str) -> pd.Series:
    """Voxel weights of a label mean: eroded voxels for IMF when known, else voxels, else volume."""
    for column in (["n_voxels_eroded"] if measure == "imf_pct" else []) + ["n_voxels", "volume_ml"]:
        if column in rows.columns:
            return pd.to_numeric(rows[column], errors="coerce")
    return pd.Series(1.0, index=rows.index)


def measures_by_group(metrics: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    """Per-subject muscle measures by catalog group: volume sum, IMF / FF / HU weighted means.

    IMF, FF and HU of a group are the means of its labels weighted by their voxel counts
    (``n_voxels_eroded`` for IMF when present, else ``n_voxels``). Bone labels
    (``tissue == 'bone'``) are left out; the :data:`MAX_GROUP_PANELS` largest groups are kept.

    Parameters
    ----------
    metrics : pandas.DataFrame
        Cohort metric table with ``subject``, ``group``, ``volume_ml``.

    Returns
    -------
    table : pandas.DataFrame
        One row per case (index ``key``) with columns ``<group>__<measure>``.
    panels : list of (column, measure, title)
        Columns to plot, their measure and the panel title (with unit).

    Examples
    --------
    >>> t = pd.DataFrame({"subject": ["sub-1"] * 2, "group": ["soleus"] * 2, "volume_ml": [10.0, 30.0],
    ...                   "n_voxels": [100, 300], "imf_pct": [2.0, 6.0]})
    >>> table, panels = measures_by_group(t)
    >>> table.round(2).to_dict("records"), [p[2] for p in panels]
    ([{'soleus__volume_ml': 40.0, 'soleus__imf_pct': 5.0}], ['soleus volume (mL)', 'soleus IMF (%)'])
    """
    rows = metrics.loc[metrics["group"].notna()]
    if "tissue" in rows.columns:
        rows = rows.loc[rows["tissue"].astype(str) != "bone"]
    keys = [_case_keys(rows).rename("key"), rows["group"]]
    volume = pd.to_numeric(rows["volume_ml"], errors="coerce")
    order = volume.groupby(rows["group"]).sum().sort_values(ascending=False).index[:MAX_GROUP_PANELS]
    columns = {f"{g}__volume_ml": s for g, s in volume.groupby(keys).sum().unstack().items()}
    titles = {
        "volume_ml": "volume (mL)",
        "imf_pct": "IMF (%)",
        "ff_mean_pct": "FF mean (%)",
        "mean_hu": "mean (HU)",
    }
    for measure in (m for m in titles if m != "volume_ml" and m in rows.columns):
        value = pd.to_numeric(rows[measure], errors="coerce")
        weight = _weights(rows, measure).where(value.notna(), 0.0).fillna(0.0)
        total = (value.fillna(0.0) * weight).groupby(keys).sum().unstack()
        norm = weight.groupby(keys).sum().unstack()
        columns.update({f"{g}__{measure}": s for g, s in (total / norm.where(norm > 0)).items()})
    table = pd.DataFrame(columns)
    panels = [
        (f"{g}__{m}", m, f"{str(g).replace('_', ' ')} {titles[m]}")
        for m in titles
        for g in order
        if f"{g}__{m}" in table.columns and table[f"{g}__{m}"].notna().any()
    ]
    return table, panels


def _per_case(metrics: pd.DataFrame | None, indices: pd.DataFrame | None) -> pd.DataFrame:
    """One row per case (index ``key``): age, sex and the main regional indices, nothing else."""
    tables = [
        t.assign(key=_case_keys(t)).drop_duplicates("key").set_index("key")
        for t in (indices, metrics)
        if t is not None and "subject" in t.columns
    ]
    if not tables:
        return pd.DataFrame(columns=["age", "sex"])
    people = pd.DataFrame(index=pd.Index(sorted(set().union(*(t.index for t in tables))), name="key"))
    for column in ("age", "sex", "tmv_cm3", "tvi_cm3_m2", "pa_ratio"):
        source = next((t for t in tables if column in t.columns), None)
        if source is not None:
            people[column] = source[column].reindex(people.index)
    if "sex" in people.columns:
        people["sex"] = sex_labels(people["sex"])
    return people


def _distributions(metrics: pd.DataFrame | None, indices: pd.DataFrame | None) -> str:
    people = _per_case(metrics, indices)
    if people.empty:
        return '<p class="note">No cohort tables (cohort_metrics / cohort_indices) to plot.</p>'
    parts = []
    index_panels = [
        (c, markup.column_header(c))
        for c in ("tmv_cm3", "tvi_cm3_m2", "pa_ratio")
        if c in people.columns and people[c].notna().any()
    ]
    if index_panels:
        parts.append(("Regional indices", people, index_panels))
    if metrics is not None and {"subject", "group", "volume_ml"} <= set(metrics.columns):
        groups, panels = measures_by_group(metrics)
        joined = groups.join(people[[c for c in ("age", "sex") if c in people.columns]], how="left")
        for family, name in (
            ("volume_ml", "Muscle volume by group"),
            ("imf_pct", "IMF by group"),
            ("ff_mean_pct", "Fat fraction by group"),
            ("mean_hu", "Attenuation by group"),
        ):
            chosen = [(c, t) for c, f, t in panels if f == family]
            if chosen:
                parts.append((name, joined, chosen))
    html = []
    for title, table, panels in parts:
        png = figures.figure_png(figures.box_by_age_sex_figure(table, panels))
        html.append(f"<h3>{markup.esc(title)}</h3>{markup.img_png(png, title)}")
    by = "age decade and sex" if "age" in people.columns and people["age"].notna().any() else "sex"
    note = (
        f"Box plots by {by} (seed 001 Fig. 4): median, IQR, whiskers 1.5 IQR. Group IMF/FF/HU are "
        "voxel-weighted means of the group's labels; bones are left out."
    )
    return "".join(html) + f'<p class="note">{markup.esc(note)}</p>'


def _counts(deriv: Path, metrics: pd.DataFrame | None, errors: pd.DataFrame | None) -> dict[str, int]:
    folders = list_subject_folders(deriv)
    done = sum(1 for f in folders if any(f.glob("*_provenance.json")))
    failed = (
        0
        if errors is None or errors.empty
        else len(errors.drop_duplicates([c for c in ("subject", "session") if c in errors.columns]))
    )
    labels = 0 if metrics is None or "name" not in metrics.columns else int(metrics["name"].nunique())
    return {"done": done, "failed": failed, "labels": labels}


def _linked(keys: pd.Series, links: Mapping[str, str]) -> list[str]:
    return [
        f'<a href="{markup.esc(links[k])}">{markup.esc(k)}</a>' if k in links else markup.esc(k) for k in keys
    ]


def cohort_report(
    deriv: PathLike,
    *,
    options: ReportOptions | None = None,
    links: Mapping[str, str] | None = None,
    pages: Mapping[str, str] | None = None,
) -> CohortReport:
    """Render the cohort index page of a derivatives folder.

    Parameters
    ----------
    deriv : str or os.PathLike
        Output folder of ``myoscan run`` (``cohort_metrics.*``, ``cohort_indices.*``, ``errors.tsv``).
    options : ReportOptions, optional
        The outlier threshold is ``options.z_threshold`` (default 3.5).
    links : mapping of str to str, optional
        Case key -> relative href of its subject page.
    pages : mapping of str to str, optional
        Case key -> QC status of the subject pages (listed on the page).

    Returns
    -------
    CohortReport

    Raises
    ------
    InputError
        ``deriv`` is not a folder, or holds neither cohort tables nor errors.tsv.
    """
    root, options = Path(deriv), options or ReportOptions()
    if not root.is_dir():
        raise InputError(f"{root}: no such derivatives folder; pass the output folder of `myoscan run`")
    metrics, indices = read_cohort_table(root, "metrics"), read_cohort_table(root, "indices")
    errors = read_table(root / "errors.tsv") if (root / "errors.tsv").is_file() else None
    if metrics is None and indices is None and errors is None:
        raise InputError(
            f"{root}: no cohort_metrics.csv/.parquet, cohort_indices or errors.tsv; "
            "run `myoscan run` on the dataset first"
        )
    links, pages = dict(links or {}), dict(pages or {})
    outliers = cohort_outliers(metrics, indices, threshold=options.z_threshold)
    counts = _counts(root, metrics, errors)
    body = [
        f"<h1>myoscan cohort QC report: {markup.esc(root.name)}</h1>",
        markup.meta_line(
            [
                ("subjects done", counts["done"]),
                ("failed", counts["failed"]),
                ("structures", counts["labels"]),
                ("outliers", len(outliers)),
            ]
        ),
        markup.section("Distributions", _distributions(metrics, indices), anchor="distributions"),
        markup.section("Outliers", _outlier_html(outliers, links, options.z_threshold), anchor="outliers"),
        _pages_html(pages, links),
        markup.section("Failed subjects", _errors_html(errors), anchor="failed"),
        f'<p class="note">Generated by myoscan {markup.esc(__version__)}. Participant data shown: '
        "age and sex only.</p>",
    ]
    html = markup.page(f"myoscan cohort QC {root.name}", "".join(body), generator=f"myoscan {__version__}")
    return CohortReport(html, outliers, counts, pages)


def _outlier_html(outliers: pd.DataFrame, links: Mapping[str, str], threshold: float) -> str:
    note = (
        f'<p class="note">{len(outliers)} values with |robust z| &gt; {threshold:g} (median and '
        f"1.4826 MAD per structure and measure, Iglewicz &amp; Hoaglin); all in outliers.csv.</p>"
    )
    if outliers.empty:
        return note
    shown = outliers.head(MAX_TABLE_ROWS)[["key", "structure", "measure", "value", "median", "robust_z"]]
    headers = {
        "key": "Subject",
        "structure": "Structure",
        "measure": "Measure",
        "value": "Value (measure unit)",
        "median": "Cohort median (measure unit)",
    }
    cells = {
        "key": _linked(shown["key"], links),
        "measure": [markup.esc(markup.column_header(str(m))) for m in shown["measure"]],
    }
    return note + markup.table_html(shown, headers=headers, cell_html=cells)


def _pages_html(pages: Mapping[str, str], links: Mapping[str, str]) -> str:
    if not pages:
        return ""
    rank = {s: i for i, s in enumerate(qc.SEVERITIES)}
    keys = sorted(pages, key=lambda k: (-rank.get(pages[k], 0), k))[:MAX_TABLE_ROWS]
    table = pd.DataFrame({"key": keys, "status": [pages[k] for k in keys]})
    cells = {"key": _linked(table["key"], links), "status": [markup.badge(s) for s in table["status"]]}
    return markup.section(
        "Subject pages",
        markup.table_html(table, headers={"key": "Subject", "status": "QC"}, cell_html=cells),
        anchor="pages",
    )


def _errors_html(errors: pd.DataFrame | None) -> str:
    if errors is None or errors.empty:
        return '<p class="note">No failed subjects (errors.tsv empty or absent).</p>'
    shown = errors[[c for c in ("subject", "session", "step", "message") if c in errors.columns]]
    return markup.table_html(shown.head(MAX_TABLE_ROWS))


# ------------------------------------------------------------------------------ writing


def _is_fresh(page: Path, sources: list[Path]) -> bool:
    """Tell whether ``page`` exists and is newer than every source file."""
    if not page.is_file():
        return False
    stamp = page.stat().st_mtime
    return all(not s.exists() or s.stat().st_mtime <= stamp for s in sources)


def write_cohort_report(
    deriv: PathLike,
    output: PathLike,
    *,
    subject_pages: SubjectPages = "outliers",
    options: ReportOptions | None = None,
    show_progress: bool = False,
) -> CohortReport:
    """Write the cohort index, the subject pages it links to, ``outliers.csv`` and ``qc_flags.csv``.

    Subject pages ``<key>.html`` (with their flags in ``<key>_qc.tsv``) are written beside
    ``output`` and refreshed only when older than the subject's derivatives or the cohort
    table, so re-running on a grown cohort renders only what changed.

    Parameters
    ----------
    deriv : str or os.PathLike
        Output folder of ``myoscan run``.
    output : str or os.PathLike
        Index page, e.g. ``qc/index.html``.
    subject_pages : {'outliers', 'all', 'none'}
        Which subject pages to generate: of subjects in the outlier list, of every subject
        with results, or none.
    options : ReportOptions, optional
        Report settings for the index and the subject pages.
    show_progress : bool
        Progress bar over the subject pages on stderr.

    Returns
    -------
    CohortReport
    """
    if subject_pages not in ("outliers", "all", "none"):
        raise InputError(f"subject_pages must be outliers, all or none, got {subject_pages!r}")
    root, out, options = Path(deriv), Path(output), options or ReportOptions()
    cohort = read_cohort_table(root, "metrics")
    folders = {_folder_key(f): f for f in list_subject_folders(root)}
    if subject_pages == "outliers":
        outliers = cohort_outliers(cohort, read_cohort_table(root, "indices"), threshold=options.z_threshold)
        wanted = sorted(set(outliers["key"]) & set(folders))
    else:
        wanted = sorted(folders) if subject_pages == "all" else []
    tables = [root / f"cohort_metrics.{ext}" for ext in ("parquet", "csv")]
    pages: dict[str, str] = {}
    flags = []
    for key in progress(wanted, desc="subject pages", unit="page", enabled=show_progress):
        page, qc_path = out.parent / f"{key}.html", out.parent / f"{key}_qc.tsv"
        if _is_fresh(page, [*folders[key].iterdir(), *tables]) and qc_path.is_file():
            table = read_table(qc_path)
        else:
            try:
                report = subject_report(
                    folders[key],
                    cohort=cohort if cohort is not None else False,
                    options=options,
                    index_href=os.path.relpath(out, out.parent),
                )
            except InputError as exc:
                log.warning("%s: no subject page (%s)", key, exc)
                continue
            write_table(report.flags, qc_path)
            write_text(report.html, page)
            table = report.flags
        pages[key] = qc.worst_severity(table["severity"].astype(str))
        flags.append(table.assign(key=key))
    links = {key: f"{key}.html" for key in pages}
    report = cohort_report(root, options=options, links=links, pages=pages)
    write_table(report.outliers, out.parent / "outliers.csv")
    if flags:
        write_table(pd.concat(flags, ignore_index=True), out.parent / "qc_flags.csv")
    write_text(report.html, out)
    return report


def _folder_key(folder: Path) -> str:
    """``DERIV/sub-01/ses-2/anat`` -> ``sub-01_ses-2``."""
    parts = [p for p in folder.parts if p.startswith(("sub-", "ses-"))]
    return "_".join(parts[-2:] if len(parts) >= 2 and parts[-1].startswith("ses-") else parts[-1:])
