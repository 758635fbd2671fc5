"""Reading and validating the catalog files (``catalog.csv``, ``ts_classes.csv``).

Plain CSV read with the standard library; ``#`` lines are comments. Every rule a row
must follow (snake_case names, side suffix, colours, positive unique ids, TotalSegmentator
names matching their class ids, ``part_of`` parents) is checked here, and a broken rule
raises :class:`~myoscan.errors.InputError` naming the file and row.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from types import MappingProxyType

from myoscan.errors import InputError
from myoscan.labels.structures import (
    SCHEME_NAMES,
    SIDES,
    TISSUES,
    TS_TASK_OF_SCHEME,
    VERTEBRAL_LEVELS,
    Structure,
)

__all__ = ["parse_catalog"]

_REQUIRED_COLUMNS = (
    "name", "base", "side", "display_name", "region", "group", "tissue", "color", "levels",
    *SCHEME_NAMES, "ts_name", "ts_mr_name", "musclemap_name",
)
_TOOL_NAME_COLUMNS = {"ts_total": "ts_name", "ts_total_mr": "ts_mr_name"}
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def _read_csv_rows(text: str, label: str) -> list[dict[str, str]]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise InputError(f"{label}: empty file; expected a CSV header and rows.")
    return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(lines)]


def _read_ts_classes(text: str, label: str) -> dict[str, dict[int, str]]:
    tables: dict[str, dict[int, str]] = {}
    for row in _read_csv_rows(text, label):
        try:
            task, class_id, name = row["task"], int(row["class_id"]), row["name"]
        except (KeyError, ValueError):
            raise InputError(f"{label}: bad row {row}; expected columns task, class_id, name.") from None
        if class_id in tables.setdefault(task, {}):
            raise InputError(f"{label}: task {task!r} lists class id {class_id} twice.")
        tables[task][class_id] = name
    return tables


def parse_catalog(
    text: str, label: str, ts_text: str, ts_label: str
) -> tuple[list[Structure], dict[str, dict[int, str]]]:
    """Structures and TotalSegmentator class tables from the text of the two CSV files.

    ``label`` and ``ts_label`` name the files in error messages.

    Raises
    ------
    InputError
        If a column is missing or a row breaks a rule (the message names the file and row).
    """
    ts_classes = _read_ts_classes(ts_text, ts_label)
    rows = _read_csv_rows(text, label)
    missing = [c for c in _REQUIRED_COLUMNS if c not in rows[0]] if rows else list(_REQUIRED_COLUMNS)
    if missing:
        raise InputError(f"{label}: missing column(s) {', '.join(missing)}; see docs/labels.md.")
    structures = [_structure_from_row(row, label, ts_classes) for row in rows]
    _check_catalog(structures, label)
    return structures, ts_classes


def _structure_from_row(row: dict[str, str], label: str, ts: Mapping[str, Mapping[int, str]]) -> Structure:
    name = row["name"]
    where = f"{label}: row {name!r}"
    if not _SNAKE.match(name) or not _SNAKE.match(row["base"]):
        raise InputError(f"{where}: name and base must be snake_case (a-z, 0-9, _).")
    side = row["side"]
    if side not in SIDES:
        raise InputError(f"{where}: side {side!r} must be one of {', '.join(SIDES)}.")
    expected = row["base"] if side == "midline" else f"{row['base']}_{side}"
    if name != expected or (side == "midline" and re.search(r"_(left|right)$", name)):
        raise InputError(f"{where}: name must be base + side suffix, expected {expected!r}.")
    if row["tissue"] not in TISSUES:
        raise InputError(f"{where}: tissue {row['tissue']!r} must be one of {', '.join(TISSUES)}.")
    if not _HEX.match(row["color"]):
        raise InputError(f"{where}: color {row['color']!r} must be '#rrggbb'.")
    color = tuple(int(row["color"][k:k + 2], 16) for k in (1, 3, 5))
    ids: dict[str, int] = {}
    for scheme in SCHEME_NAMES:
        cell = row[scheme]
        if cell:
            try:
                ids[scheme] = int(cell)
            except ValueError:
                raise InputError(f"{where}: {scheme} id {cell!r} is not a whole number.") from None
            if ids[scheme] <= 0:
                raise InputError(f"{where}: {scheme} id must be > 0 (0 is background), got {cell}.")
    for scheme, col in _TOOL_NAME_COLUMNS.items():
        tool_name, task = row[col], TS_TASK_OF_SCHEME[scheme]
        if bool(tool_name) != (scheme in ids):
            raise InputError(f"{where}: give both {scheme} and {col}, or neither.")
        if tool_name and ts.get(task, {}).get(ids[scheme]) != tool_name:
            actual = ts.get(task, {}).get(ids[scheme])
            raise InputError(
                f"{where}: {scheme} id {ids[scheme]} is {actual!r} in TotalSegmentator task "
                f"{task!r}, not {tool_name!r}; fix the id or the name."
            )
    if bool(row["musclemap_name"]) != ("musclemap" in ids):
        raise InputError(f"{where}: give both musclemap and musclemap_name, or neither.")
    extra = [a.strip() for a in row.get("aliases", "").split(";") if a.strip()]
    aliases = tuple(dict.fromkeys(a for a in (row["ts_name"], row["ts_mr_name"],
                                              row["musclemap_name"], *extra) if a))
    return Structure(
        name=name, base=row["base"], display_name=row["display_name"] or name, side=side,
        region=row["region"], group=row["group"], tissue=row["tissue"],
        color=color,  # type: ignore[arg-type]
        levels=_expand_levels(row["levels"], where), ids=MappingProxyType(ids), aliases=aliases,
        abbreviation=row.get("abbreviation", ""), layer=row.get("layer", ""),
        part_of=row.get("part_of", ""), notes=row.get("notes", ""),
    )


def _check_catalog(structures: list[Structure], label: str) -> None:
    by_name: dict[str, Structure] = {}
    for s in structures:
        if s.name in by_name:
            raise InputError(f"{label}: structure {s.name!r} is listed twice.")
        by_name[s.name] = s
    for scheme in SCHEME_NAMES:
        owner: dict[int, str] = {}
        for s in structures:
            i = s.ids.get(scheme)
            if i is not None and owner.setdefault(i, s.name) != s.name:
                raise InputError(f"{label}: {scheme} id {i} is used by both {owner[i]} and {s.name}.")
    for s in structures:
        if s.part_of:
            parent = s.part_of if s.side == "midline" else f"{s.part_of}_{s.side}"
            if parent not in by_name:
                raise InputError(f"{label}: row {s.name!r}: part_of {s.part_of!r} has no {parent!r} row.")


def _expand_levels(text: str, where: str) -> tuple[str, ...]:
    """``'C4-C6'`` -> ``('C4', 'C5', 'C6')``; ``'C6'`` -> ``('C6',)``; ``''`` -> ``()``."""
    if not text:
        return ()
    ends = [t.strip().upper() for t in re.split(r"\s*[-\u2013]\s*", text)]
    if len(ends) > 2 or any(e not in VERTEBRAL_LEVELS for e in ends):
        raise InputError(f"{where}: levels {text!r} must look like 'C4-C6' or 'C6'.")
    first, last = VERTEBRAL_LEVELS.index(ends[0]), VERTEBRAL_LEVELS.index(ends[-1])
    if last < first:
        raise InputError(f"{where}: levels {text!r} must run cranial to caudal (e.g. 'C4-C6').")
    return VERTEBRAL_LEVELS[first:last + 1]
