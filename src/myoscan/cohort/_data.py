"""Cohort input: read metrics and participants tables, join them, iterate over labels.

Every analysis in :mod:`myoscan.cohort` starts from one joined table with one row per
subject (wide metrics) or one row per subject x label (long metrics from
``myoscan quantify``, label in ``name``), and runs per label through :func:`per_label`.
Column checks and design matrices are in :mod:`myoscan.cohort._columns`.
"""

from __future__ import annotations

import csv
import logging
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from myoscan._typing import PathLike
from myoscan.cohort._columns import require_columns
from myoscan.errors import InputError
from myoscan.outputs import read_table

__all__ = [
    "ID_COLUMNS",
    "JoinReport",
    "TooFewSubjectsError",
    "complete_cases",
    "is_long",
    "join_participants",
    "label_frames",
    "label_side",
    "per_label",
    "read_cohort_table",
    "resolve_side_template",
    "subject_column",
]

log = logging.getLogger(__name__)

#: Subject id columns, in order of preference: quantify writes ``subject``, BIDS
#: ``participants.tsv`` has ``participant_id``.
ID_COLUMNS: tuple[str, ...] = ("subject", "participant_id")
BIDS_SUBJECT_PREFIX = "sub-"
#: How many unmatched ids a warning lists before "and N more".
MAX_IDS_LISTED = 10
_SIDE_SUFFIX = re.compile(r"_(left|right)$")


class TooFewSubjectsError(InputError):
    """A model has fewer complete subjects than it needs."""


def read_cohort_table(path: PathLike) -> pd.DataFrame:
    r"""Read a metrics or participants table, keeping subject ids as text.

    Parameters
    ----------
    path : str or os.PathLike
        CSV, TSV (BIDS ``participants.tsv``) or Parquet file. ``n/a``, ``NA`` and empty
        fields are missing values.

    Returns
    -------
    pandas.DataFrame
        The table; ``subject``, ``participant_id`` and ``session`` stay strings so that
        ids like ``001`` keep their leading zeros.

    Raises
    ------
    InputError
        If the file is missing, cannot be parsed, or has no rows.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "participants.tsv"
    >>> _ = p.write_text("participant_id\tage\n001\t40\n")
    >>> read_cohort_table(p)["participant_id"].tolist()
    ['001']
    """
    source = Path(path)
    if source.suffix.lower() == ".parquet" or not source.is_file():
        table = read_table(source)
    else:
        sep = "\t" if source.suffix.lower() == ".tsv" else None
        try:
            table = pd.read_csv(
                source,
                sep=sep,
                engine="python" if sep is None else "c",
                dtype={column: str for column in (*ID_COLUMNS, "session")},
                na_values=["n/a", "NA", "NaN", ""],
            )
        except (ValueError, OSError, pd.errors.ParserError, csv.Error) as exc:  # csv.Error: empty file
            raise InputError(
                f"{source.name}: cannot read table ({exc}); expected CSV, TSV or Parquet"
            ) from exc
    if table.empty:
        raise InputError(f"{source.name}: the table has no rows; expected one row per subject (or label)")
    return table


def subject_column(table: pd.DataFrame, *, source: str) -> str:
    """Name of the subject id column (``subject`` or ``participant_id``).

    Raises
    ------
    InputError
        If the table has neither column.

    Examples
    --------
    >>> subject_column(pd.DataFrame({"participant_id": ["sub-01"]}), source="p.tsv")
    'participant_id'
    """
    for column in ID_COLUMNS:
        if column in table.columns:
            return column
    raise InputError(
        f"{source}: no subject id column; expected one of {', '.join(ID_COLUMNS)}, "
        f"got columns {', '.join(map(str, table.columns))}"
    )


def _normalized_ids(ids: pd.Series) -> pd.Series:
    """``sub-01`` and ``01`` -> ``01`` (strip blanks and the BIDS prefix)."""
    text = ids.astype("string").str.strip().str.removeprefix(BIDS_SUBJECT_PREFIX)
    return text.astype(object).where(text.notna(), None)  # object ids: fast hashing in isin/merge


def is_long(table: pd.DataFrame) -> bool:
    """Whether a metrics table is long (one row per subject x label, label in ``name``).

    Examples
    --------
    >>> is_long(pd.DataFrame({"subject": ["a"], "name": ["soleus_left"]}))
    True
    """
    return "name" in table.columns


@dataclass(frozen=True)
class JoinReport:
    """What happened when a metrics table was joined to a participants table.

    Attributes
    ----------
    n_metrics_subjects, n_participants, n_matched : int
        Distinct subjects in the metrics table, rows in the participants table, and
        subjects found in both.
    metrics_only, participants_only : tuple of str
        Subject ids present in only one of the two tables (left out of the analysis).
    """

    n_metrics_subjects: int
    n_participants: int
    n_matched: int
    metrics_only: tuple[str, ...] = field(default_factory=tuple)
    participants_only: tuple[str, ...] = field(default_factory=tuple)


def _id_list(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:MAX_IDS_LISTED])
    more = len(ids) - MAX_IDS_LISTED
    return shown + (f" (and {more} more)" if more > 0 else "")


def _select_session(metrics: pd.DataFrame, session: str | None, *, source: str) -> pd.DataFrame:
    if session is None:
        return metrics
    if "session" not in metrics.columns:
        raise InputError(f"{source}: --session {session} given but the table has no 'session' column")
    wanted = session if session.startswith("ses-") else f"ses-{session}"
    sessions = metrics["session"].astype("string").str.strip()
    keep = sessions.isin([wanted, wanted.removeprefix("ses-")]).fillna(False)
    if not keep.any():
        found = sorted(sessions.dropna().unique())
        raise InputError(f"{source}: no rows for session {wanted}; sessions present: {', '.join(found)}")
    return metrics.loc[keep.to_numpy()]


def _check_ids_present(table: pd.DataFrame, id_col: str, *, source: str) -> None:
    """Raise if a row has no subject id (it can be matched to nothing)."""
    missing = table[id_col].isna().to_numpy()
    if missing.any():
        raise InputError(
            f"{source}: {int(missing.sum())} row(s) have no {id_col} (e.g. row {int(missing.argmax()) + 1}); "
            "fill in the id or drop the row"
        )


def _check_unique(metrics: pd.DataFrame, id_col: str, *, source: str) -> None:
    _check_ids_present(metrics, id_col, source=source)
    keys = [id_col, "name"] if is_long(metrics) else [id_col]
    duplicated = metrics.duplicated(keys, keep=False)
    if duplicated.any():
        first = metrics.loc[duplicated, keys].iloc[0].tolist()
        hint = " (several sessions? pass --session)" if "session" in metrics.columns else ""
        raise InputError(
            f"{source}: {int(duplicated.sum())} rows repeat the same {' x '.join(keys)}, "
            f"e.g. {' / '.join(map(str, first))}{hint}; expected one row each"
        )


def join_participants(
    metrics: pd.DataFrame,
    participants: pd.DataFrame | None = None,
    *,
    session: str | None = None,
    metrics_source: str = "metrics table",
    participants_source: str = "participants table",
) -> tuple[pd.DataFrame, JoinReport]:
    """Join a metrics table to a participants table by subject id.

    Ids are compared after stripping blanks and the BIDS ``sub-`` prefix, so ``sub-01``
    matches ``01``. Subjects found in only one table are left out and reported with a
    warning that gives their count and ids.

    Parameters
    ----------
    metrics : pandas.DataFrame
        Output of ``myoscan quantify`` (long, with ``name``) or a wide per-subject table,
        with a ``subject`` or ``participant_id`` column.
    participants : pandas.DataFrame, optional
        One row per subject (BIDS ``participants.tsv``). When omitted the metrics table
        must already hold every covariate.
    session : str, optional
        Keep only this session (``ses-01`` or ``01``) of a multi-session metrics table.
    metrics_source, participants_source : str
        Names used in messages (usually the file names).

    Returns
    -------
    table : pandas.DataFrame
        Metrics rows with participant columns added; the subject column is ``subject``
        holding the metrics table's ids. Where both tables have a column, the
        participants table's values are used.
    report : JoinReport
        Counts and ids of unmatched subjects.

    Raises
    ------
    InputError
        If an id column is missing, ids repeat, or no subject matches.

    Examples
    --------
    >>> m = pd.DataFrame({"subject": ["sub-01", "sub-02"], "tmv_cm3": [9000.0, 8000.0]})
    >>> p = pd.DataFrame({"participant_id": ["01", "02"], "age": [50, 60]})
    >>> table, report = join_participants(m, p)
    >>> table[["subject", "tmv_cm3", "age"]].to_dict("list")
    {'subject': ['sub-01', 'sub-02'], 'tmv_cm3': [9000.0, 8000.0], 'age': [50, 60]}
    """
    id_col = subject_column(metrics, source=metrics_source)
    metrics = _select_session(metrics, session, source=metrics_source)
    metrics = metrics.rename(columns={id_col: "subject"}).reset_index(drop=True)
    if id_col != "subject" and "participant_id" in metrics.columns:
        metrics = metrics.drop(columns="participant_id")
    _check_unique(metrics, "subject", source=metrics_source)
    metric_keys = _normalized_ids(metrics["subject"])
    n_metric_subjects = int(metric_keys.nunique())
    if participants is None:
        return metrics, JoinReport(n_metric_subjects, 0, n_metric_subjects)

    pid_col = subject_column(participants, source=participants_source)
    _check_ids_present(participants, pid_col, source=participants_source)
    part = participants.copy()
    part["_key"] = _normalized_ids(part[pid_col])
    repeated = part["_key"][part["_key"].duplicated()].dropna().unique().tolist()
    if repeated:
        raise InputError(
            f"{participants_source}: subject ids repeat ({_id_list(repeated)}); expected one row each"
        )
    part = part.drop(columns=[c for c in ID_COLUMNS if c in part.columns])
    shared = [c for c in part.columns if c in metrics.columns and c != "_key"]
    if shared:
        log.info("using %s from %s (also in %s)", ", ".join(shared), participants_source, metrics_source)
        metrics = metrics.drop(columns=shared)

    metric_set, part_set = set(metric_keys.dropna()), set(part["_key"].dropna())
    metrics_only = sorted(metrics.loc[~metric_keys.isin(part_set), "subject"].astype(str).unique())
    participants_only = sorted(
        participants.loc[~part["_key"].isin(metric_set).to_numpy(), pid_col].astype(str)
    )
    matched = metric_set & part_set
    if not matched:
        raise InputError(
            f"no subject id of {metrics_source} (e.g. {metrics['subject'].iloc[0]!r}) matches "
            f"{participants_source} (e.g. {participants[pid_col].iloc[0]!r}); check the id columns"
        )
    if metrics_only:
        warnings.warn(
            f"{len(metrics_only)} subject(s) of {metrics_source} are not in {participants_source} "
            f"and are left out: {_id_list(metrics_only)}",
            stacklevel=2,
        )
    if participants_only:
        warnings.warn(
            f"{len(participants_only)} subject(s) of {participants_source} have no metrics in "
            f"{metrics_source}: {_id_list(participants_only)}",
            stacklevel=2,
        )
    joined = metrics.assign(_key=metric_keys).merge(part, on="_key", how="inner").drop(columns="_key")
    report = JoinReport(
        n_metric_subjects, len(part), len(matched), tuple(metrics_only), tuple(participants_only)
    )
    return joined, report


def label_side(label: str, frame: pd.DataFrame | None = None) -> str | None:
    """Side of a label: the ``side`` column of a quantify table, else a ``_left``/``_right`` suffix.

    Examples
    --------
    >>> label_side("soleus_left")
    'left'
    >>> label_side("psoas") is None
    True
    """
    if frame is not None and "side" in frame.columns:
        sides = frame["side"].dropna().astype(str).unique()
        if len(sides) == 1 and sides[0] in {"left", "right"}:
            return str(sides[0])
    match = _SIDE_SUFFIX.search(label)
    return match.group(1) if match else None


def resolve_side_template(column: str, label: str | None, frame: pd.DataFrame) -> str:
    """Replace ``{side}`` in a column name by the label's side (``force_{side}_n`` -> ``force_left_n``).

    Raises
    ------
    InputError
        If the column name has ``{side}`` but the label has no side.

    Examples
    --------
    >>> resolve_side_template("force_{side}_n", "soleus_right", pd.DataFrame())
    'force_right_n'
    """
    if "{side}" not in column:
        return column
    side = label_side(label, frame) if label is not None else None
    if side is None:
        raise InputError(f"{column}: label {label!r} has no left/right side to fill in {{side}}")
    return column.replace("{side}", side)


def label_frames(
    table: pd.DataFrame, *, labels: Sequence[str] | None = None, source: str = "metrics table"
) -> Iterator[tuple[str | None, pd.DataFrame]]:
    """Yield ``(label, rows)`` per label of a long table, or ``(None, table)`` for a wide one.

    Raises
    ------
    InputError
        If ``labels`` names a label that is not in the table, or is given for a wide table.

    Examples
    --------
    >>> t = pd.DataFrame({"name": ["b", "a", "b"], "v": [1, 2, 3]})
    >>> [(label, len(rows)) for label, rows in label_frames(t)]
    [('a', 1), ('b', 2)]
    """
    if not is_long(table):
        if labels:
            raise InputError(
                f"{source}: --labels needs a long table with a 'name' column (one row per label)"
            )
        yield None, table
        return
    groups = dict(tuple(table.groupby(table["name"].astype(str), sort=True)))  # one pass over the rows
    wanted = list(labels) if labels else list(groups)
    unknown = sorted(set(wanted) - set(groups))
    if unknown:
        require_columns(pd.DataFrame(columns=list(groups)), unknown, source=source, what="label")
    for label in wanted:
        yield label, groups[label]


def per_label(
    table: pd.DataFrame,
    analyse: Callable[[pd.DataFrame, str | None], pd.DataFrame | tuple[pd.DataFrame, ...]],
    *,
    labels: Sequence[str] | None = None,
    source: str = "metrics table",
) -> pd.DataFrame | tuple[pd.DataFrame, ...]:
    """Run ``analyse(rows, label)`` for each label and stack the results with a ``name`` column.

    ``analyse`` returns one table or a tuple of tables; each is stacked over labels. A
    label with too few subjects is skipped with a warning when labels were not chosen
    explicitly; when they were (or the table is wide) the error propagates.

    Raises
    ------
    InputError
        If every label was skipped, or an explicitly chosen label fails.

    Examples
    --------
    >>> t = pd.DataFrame({"name": ["a", "a", "b"], "v": [1.0, 3.0, 5.0]})
    >>> per_label(t, lambda rows, label: pd.DataFrame({"mean": [rows.v.mean()]})).to_dict("list")
    {'name': ['a', 'b'], 'mean': [2.0, 5.0]}
    """
    results: list[tuple[pd.DataFrame, ...]] = []
    skipped: list[tuple[str, str]] = []
    single = False
    for label, rows in label_frames(table, labels=labels, source=source):
        try:
            result = analyse(rows, label)
        except TooFewSubjectsError as exc:
            if label is None or labels:
                raise
            skipped.append((label, str(exc)))
            continue
        single = isinstance(result, pd.DataFrame)
        parts = (result,) if single else tuple(result)
        if label is not None:
            parts = tuple(
                part.assign(name=label)[["name", *(c for c in part.columns if c != "name")]] for part in parts
            )
        results.append(parts)
    if skipped:
        warnings.warn(
            f"{len(skipped)} label(s) skipped for too few subjects: "
            + "; ".join(f"{label} ({msg})" for label, msg in skipped[:MAX_IDS_LISTED]),
            stacklevel=2,
        )
    if not results:
        raise InputError(f"{source}: every label has too few subjects; first: {skipped[0][1]}")
    stacked = tuple(pd.concat(column, ignore_index=True) for column in zip(*results, strict=True))
    return stacked[0] if single else stacked


def complete_cases(frame: pd.DataFrame, *, minimum: int, what: str) -> pd.DataFrame:
    """Rows without missing values; :class:`TooFewSubjectsError` if fewer than ``minimum``.

    Examples
    --------
    >>> complete_cases(pd.DataFrame({"a": [1.0, None, 3.0]}), minimum=2, what="model").shape
    (2, 1)
    """
    kept = frame.dropna()
    if len(kept) < minimum:
        raise TooFewSubjectsError(
            f"{what}: {len(kept)} subject(s) with complete data, need at least {minimum}"
        )
    return kept
