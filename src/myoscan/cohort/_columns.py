"""Column validation and design matrices for the cohort analyses.

Checks happen once, at the boundary: unknown columns are named with their closest match,
non-numeric values are quoted, sex codes are normalised (1 = male, 0 = female, seed 001),
and covariates become numeric design columns (indicators for text columns, products for
``a:b`` interaction terms).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import pandas as pd

from myoscan.errors import InputError

__all__ = [
    "SEX_COLUMNS",
    "covariate_levels",
    "encode_covariates",
    "group_values",
    "is_sex_column",
    "normalize_sex",
    "numeric_column",
    "require_columns",
    "text_codes",
    "unparsed_examples",
]

_SEX_WORDS = {
    "male": "male", "m": "male", "man": "male", "men": "male", "1": "male", "1.0": "male",
    "female": "female", "f": "female", "woman": "female", "women": "female", "0": "female",
    "0.0": "female",
}  # fmt: skip


#: Column names read as sex (coded 1 = male, 0 = female).
SEX_COLUMNS = frozenset({"sex", "gender"})


def is_sex_column(name: str) -> bool:
    """Whether a column name means sex.

    Examples
    --------
    >>> is_sex_column("Sex"), is_sex_column("site")
    (True, False)
    """
    return name.lower() in SEX_COLUMNS


def text_codes(values: pd.Series) -> pd.Series:
    """Return the stripped lower-case text of each value; missing stays missing.

    Examples
    --------
    >>> text_codes(pd.Series([" Yes", 1, None])).tolist()
    ['yes', '1', nan]
    """
    return values.astype(object).map(lambda v: None if v is None or v != v else str(v).strip().lower())


def unparsed_examples(values: pd.Series, parsed: pd.Series) -> tuple[int, str]:
    """Count and up to three quoted examples of values that ``parsed`` left missing.

    Examples
    --------
    >>> unparsed_examples(pd.Series(["1", "x", None]), pd.Series([1.0, None, None]))
    (1, "'x'")
    """
    bad = values[parsed.isna().to_numpy() & values.notna().to_numpy()]
    plain = (v.item() if hasattr(v, "item") else v for v in pd.unique(bad)[:3])  # 80.4, not np.float64(80.4)
    return len(bad), ", ".join(repr(v) for v in plain)


def group_values(table: pd.DataFrame, column: str, *, source: str) -> pd.Series:
    """Return a grouping column as text labels: sex as male/female, others as strings.

    Examples
    --------
    >>> group_values(pd.DataFrame({"sex": ["F", None]}), "sex", source="p.tsv").tolist()
    ['female', nan]
    """
    require_columns(table, [column], source=source)
    values = table[column]
    if is_sex_column(column):
        return normalize_sex(values, source=f"{source} column {column!r}")
    return values.astype(object).where(values.notna()).map(lambda v: v if v != v else str(v))


def normalize_sex(values: pd.Series, *, source: str = "sex") -> pd.Series:
    """Map sex codes to ``'male'`` / ``'female'`` (missing stays missing).

    Accepted, case-insensitive: male/m/man, female/f/woman, and 1 = male, 0 = female
    (the UK Biobank coding used in seed 001).

    Parameters
    ----------
    values : pandas.Series
        Sex column.
    source : str
        Name used in messages.

    Returns
    -------
    pandas.Series
        Object series of ``'male'``, ``'female'`` or NaN, same index.

    Raises
    ------
    InputError
        If a value is not one of the accepted codes.

    Examples
    --------
    >>> normalize_sex(pd.Series(["M", "female", None, 1])).tolist()
    ['male', 'female', nan, 'male']
    """
    mapped = text_codes(values).map(_SEX_WORDS)
    n_bad, examples = unparsed_examples(values, mapped)
    if n_bad:
        raise InputError(
            f"{source}: unknown sex code(s) {examples}; use male/female, M/F or 1 = male, 0 = female"
        )
    return mapped.astype(object)


def require_columns(
    table: pd.DataFrame, columns: Sequence[str], *, source: str, what: str = "column"
) -> None:
    """Raise a one-line :class:`InputError` naming every missing column and close matches.

    Examples
    --------
    >>> require_columns(pd.DataFrame({"age": [1]}), ["age"], source="t.csv")
    """
    missing = [c for c in columns if c not in table.columns]
    if not missing:
        return
    available = [str(c) for c in table.columns]
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, available, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise InputError(
        f"{source}: unknown {what}{'s' if len(missing) > 1 else ''} {', '.join(hints)}; "
        f"available: {', '.join(available)}"
    )


def numeric_column(table: pd.DataFrame, column: str, *, source: str) -> pd.Series:
    """Return a column as float, with a one-line error quoting values that are not numbers.

    Raises
    ------
    InputError
        If the column is missing or holds text that is not a number.

    Examples
    --------
    >>> numeric_column(pd.DataFrame({"age": ["40", None]}), "age", source="p.tsv").tolist()
    [40.0, nan]
    """
    require_columns(table, [column], source=source)
    values = table[column]
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    parsed = pd.to_numeric(values, errors="coerce")
    n_bad, examples = unparsed_examples(values, parsed)
    if n_bad:
        raise InputError(
            f"{source}: column {column!r} must be numeric but has {n_bad} non-numeric value(s), "
            f"e.g. {examples}; fix them or leave the cells empty"
        )
    return parsed.astype(float)


def _is_categorical(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return False
    parsed = pd.to_numeric(values.dropna(), errors="coerce")
    return bool(parsed.isna().all())


def encode_covariates(table: pd.DataFrame, covariates: Sequence[str], *, source: str) -> pd.DataFrame:
    """Numeric design columns (no intercept) for the given covariates.

    Numbers stay as they are. ``sex`` (or ``gender``) becomes ``sex`` = 1 for male and 0
    for female (seed 001 coding). Other text columns become 0/1 indicators named
    ``<column>[<level>]`` for every level except the first in sorted order. ``a:b`` is the
    product of two numeric or two-level columns (e.g. ``sex:bmi`` for seed 003's
    ``SMM ~ BMI + sex + sex x BMI``).

    Parameters
    ----------
    table : pandas.DataFrame
        Joined cohort table.
    covariates : sequence of str
        Column names.
    source : str
        Name used in messages.

    Returns
    -------
    pandas.DataFrame
        Float columns on the index of ``table``; missing stays NaN.

    Raises
    ------
    InputError
        If a covariate is unknown, or a numeric-looking column holds text.

    Examples
    --------
    >>> t = pd.DataFrame({"age": [40, 50], "sex": ["F", "M"], "site": ["b", "a"]})
    >>> encode_covariates(t, ["age", "sex", "site", "sex:age"], source="p.tsv").to_dict("list")
    {'age': [40.0, 50.0], 'sex': [0.0, 1.0], 'site[b]': [1.0, 0.0], 'sex:age': [0.0, 50.0]}
    """
    parts = [part for name in covariates for part in name.split(":")]
    require_columns(table, parts, source=source, what="covariate")
    columns: dict[str, pd.Series] = {}
    for name in covariates:
        if ":" in name:
            columns[name] = _interaction(table, name, source=source)
        else:
            columns.update(_encode_one(table, name, source=source))
    return pd.DataFrame(columns, index=table.index)


def _encode_one(table: pd.DataFrame, name: str, *, source: str) -> dict[str, pd.Series]:
    values = table[name]
    if is_sex_column(name):
        sex = normalize_sex(values, source=f"{source} column {name!r}")
        return {name: (sex == "male").astype(float).where(sex.notna())}
    if _is_categorical(values):
        levels = sorted(values.dropna().astype(str).unique())
        return {
            f"{name}[{level}]": (values.astype(str) == level).astype(float).where(values.notna())
            for level in levels[1:]
        }
    return {name: numeric_column(table, name, source=source)}


def _interaction(table: pd.DataFrame, term: str, *, source: str) -> pd.Series:
    """Product of the single design columns of ``a:b`` (e.g. ``sex:bmi``, seed 003)."""
    product = pd.Series(1.0, index=table.index)
    for part in term.split(":"):
        encoded = _encode_one(table, part, source=source)
        if len(encoded) != 1:
            raise InputError(
                f"{source}: interaction {term!r} needs numeric or two-level columns; "
                f"{part!r} has {len(encoded) + 1} levels"
            )
        product = product * next(iter(encoded.values()))
    return product


def covariate_levels(
    table: pd.DataFrame, covariate: str, *, source: str
) -> dict[str, dict[str, float]] | None:
    """Design-column values of each level of a categorical covariate (``None`` if numeric).

    Uses the coding of :func:`encode_covariates`; a numeric 0/1 column counts as
    categorical with levels ``'0'`` and ``'1'``.

    Examples
    --------
    >>> covariate_levels(pd.DataFrame({"sex": ["F", "M"]}), "sex", source="p.tsv")
    {'female': {'sex': 0.0}, 'male': {'sex': 1.0}}
    """
    require_columns(table, [covariate], source=source, what="covariate")
    values = table[covariate]
    if is_sex_column(covariate):
        return {"female": {covariate: 0.0}, "male": {covariate: 1.0}}
    if _is_categorical(values):
        levels = sorted(values.dropna().astype(str).unique())
        return {
            level: {f"{covariate}[{other}]": float(other == level) for other in levels[1:]}
            for level in levels
        }
    numbers = numeric_column(table, covariate, source=source).dropna()
    if set(numbers.unique()) <= {0.0, 1.0}:
        return {"0": {covariate: 0.0}, "1": {covariate: 1.0}}
    return None
