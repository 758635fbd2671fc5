"""The muscle and bone label catalog: structure names, groups, colours and ids per label scheme.

Plain data (``catalog.csv`` and ``ts_classes.csv`` beside this module) read with the standard
library; no torch. One row per sided structure (``soleus_left``), one id column per scheme.

>>> cat = load_catalog()                      # cached
>>> cat.scheme("leg").id_of("soleus_left")
7
>>> cat.resolve("autochthon_left").name       # TotalSegmentator name -> canonical structure
'erector_spinae_left'
>>> cat.scheme("cervical").structure(1).name  # seed 002 Table 1: MFSS right = 1
'multifidus_semispinalis_cervicis_right'

Schemes (``cat.scheme_names``): ``leg`` (seed 000), ``cervical`` (seed 002), ``abdomen``
(seed 003), ``thigh`` (seeds 001/004), ``musclemap`` (MuscleMap whole-body label values),
``ts_total`` and ``ts_total_mr`` (TotalSegmentator class ids). The id rules and sources are in
``docs/labels.md`` and in the header of ``catalog.csv``.

Modules: :mod:`~myoscan.labels.structures` (schemes, sides, levels; :class:`Structure`,
:class:`Scheme`), :mod:`~myoscan.labels.reading` (CSV parsing and validation),
:mod:`~myoscan.labels.names` (name normalisation and lookup), :mod:`~myoscan.labels.ids`
(label-id arrays, lookup-table remap); this module holds :class:`Catalog` and the loaders.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from myoscan.errors import InputError
from myoscan.labels.ids import as_label_array, compact_ids, map_ids, min_uint, present_ids
from myoscan.labels.names import close_names, name_index, normalize_name
from myoscan.labels.reading import parse_catalog
from myoscan.labels.structures import (
    SCHEME_ALIASES,
    SCHEME_DESCRIPTIONS,
    SCHEME_NAMES,
    TABLE_COLUMNS,
    TS_TASK_OF_SCHEME,
    VERTEBRAL_LEVELS,
    LabelWarning,
    Scheme,
    Structure,
)
from myoscan.labels.structures import SIDES as SIDES  # re-exported: importable from here as before
from myoscan.labels.structures import TISSUES as TISSUES

__all__ = [
    "SCHEME_NAMES",
    "TABLE_COLUMNS",
    "VERTEBRAL_LEVELS",
    "Catalog",
    "LabelWarning",
    "Scheme",
    "Structure",
    "load_catalog",
    "read_catalog",
    "unknown_ids",
]

log = logging.getLogger(__name__)


class Catalog:
    """All structures and schemes; build with :func:`load_catalog` (cached).

    Parameters
    ----------
    structures : sequence of Structure
        Structures, unique canonical names.
    ts_classes : mapping of str to mapping of int to str
        TotalSegmentator class tables by task name.
    source : str, optional
        Where the data came from (for messages).

    Examples
    --------
    >>> cat = load_catalog()
    >>> cat.scheme_names
    ('leg', 'cervical', 'abdomen', 'thigh', 'musclemap', 'ts_total', 'ts_total_mr')
    >>> cat.ts_class_names("total")[5]
    'liver'
    """

    def __init__(
        self,
        structures: Iterable[Structure],
        ts_classes: Mapping[str, Mapping[int, str]],
        *,
        source: str = "label catalog",
    ) -> None:
        self._structures = tuple(structures)
        self._source = source
        self._by_name = {s.name: s for s in self._structures}
        self._ts_classes = {k: MappingProxyType(dict(sorted(v.items()))) for k, v in ts_classes.items()}
        self._index = name_index(self._structures)
        self._schemes = {
            name: Scheme(
                name=name,
                description=SCHEME_DESCRIPTIONS.get(name, ""),
                labels=MappingProxyType(
                    dict(sorted((s.ids[name], s) for s in self._structures if name in s.ids))
                ),
                _catalog=self,
            )
            for name in SCHEME_NAMES
        }

    def __len__(self) -> int:
        return len(self._structures)

    def __iter__(self) -> Iterator[Structure]:
        return iter(self._structures)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._by_name

    def __repr__(self) -> str:
        return f"Catalog({len(self)} structures, schemes={self.scheme_names})"

    @property
    def scheme_names(self) -> tuple[str, ...]:
        """Names of the label schemes."""
        return tuple(self._schemes)

    @property
    def structures(self) -> tuple[Structure, ...]:
        """Every structure, in catalog order."""
        return self._structures

    @property
    def ts_tasks(self) -> tuple[str, ...]:
        """TotalSegmentator tasks whose class tables are known."""
        return tuple(self._ts_classes)

    def structure(self, name: str) -> Structure:
        """Structure by canonical name.

        Raises
        ------
        InputError
            If ``name`` is not a canonical name; the message lists close matches.

        Examples
        --------
        >>> load_catalog().structure("femur_left").ids["ts_total"]
        75
        """
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            raise InputError(self._unknown_message(name)) from None

    def resolve(self, name: str | Structure) -> Structure:
        """Structure from a canonical name, display name or tool name.

        Case, spaces and punctuation are ignored, and ``L``/``R``/``left``/``right`` may come
        first or last (``'Gluteus Maximus L'``, ``'left gluteus maximus'``).

        Parameters
        ----------
        name : str or Structure
            Canonical name (``'erector_spinae_left'``), display name, TotalSegmentator name
            (``'autochthon_left'``, ``'vertebrae_L3'``) or MuscleMap name (``'Psoas Major R'``).

        Returns
        -------
        Structure

        Raises
        ------
        InputError
            If the name matches no structure (close matches listed) or several.

        Examples
        --------
        >>> load_catalog().resolve("Psoas Major R").name
        'psoas_right'
        >>> load_catalog().resolve("hip_left").name
        'iliac_bone_left'
        """
        if isinstance(name, Structure):
            return name
        if not isinstance(name, str):
            raise InputError(f"expected a structure name, got {name!r}")
        if name in self._by_name:
            return self._by_name[name]
        hits = self._index.get(normalize_name(name), set())
        if len(hits) == 1:
            return self._by_name[next(iter(hits))]
        if len(hits) > 1:
            raise InputError(
                f"structure name {name!r} is ambiguous: it matches {', '.join(sorted(hits))}; "
                f"use one of these canonical names."
            )
        raise InputError(self._unknown_message(name))

    def scheme(self, name: str) -> Scheme:
        """Label scheme by name.

        Parameters
        ----------
        name : str
            One of :attr:`scheme_names` (``'total'``/``'total_mr'`` also accepted).

        Raises
        ------
        InputError
            If the scheme is unknown; the message lists the valid names.

        Examples
        --------
        >>> load_catalog().scheme("total").name
        'ts_total'
        """
        key = str(name).strip().lower()
        key = SCHEME_ALIASES.get(key, key)
        if key not in self._schemes:
            raise InputError(
                f"unknown label scheme {name!r}; valid schemes: {', '.join(self.scheme_names)}."
            )
        return self._schemes[key]

    def ts_class_names(self, task: str) -> dict[int, str]:
        """Full TotalSegmentator class table of a task, organs and landmarks included.

        Parameters
        ----------
        task : str
            ``'total'``, ``'total_mr'`` or another task in :attr:`ts_tasks` (a ``ts_``
            prefix as in the scheme names is accepted).

        Returns
        -------
        dict of int to str
            Class id -> TotalSegmentator class name, sorted by id.

        Raises
        ------
        InputError
            If the task is unknown.

        Examples
        --------
        >>> names = load_catalog().ts_class_names("total_mr")
        >>> len(names), names[19]
        (50, 'vertebrae')
        """
        key = str(task).strip().lower()
        key = TS_TASK_OF_SCHEME.get(key, key)
        key = {"total_fast": "total"}.get(key, key)
        if key not in self._ts_classes:
            raise InputError(
                f"unknown TotalSegmentator task {task!r}; known tasks: {', '.join(self.ts_tasks)}."
            )
        return dict(self._ts_classes[key])

    def label_names(self, scheme: str) -> dict[int, str]:
        """Name of every label id a scheme's images may contain.

        For ``ts_total``/``ts_total_mr`` this covers all TotalSegmentator classes: catalog
        structures get their canonical name (``86 -> 'erector_spinae_left'``), other classes
        keep TotalSegmentator's name (``5 -> 'liver'``).

        Examples
        --------
        >>> names = load_catalog().label_names("ts_total")
        >>> names[86], names[5], len(names)
        ('erector_spinae_left', 'liver', 117)
        """
        sch = self.scheme(scheme)
        names = {i: s.name for i, s in sch.labels.items()}
        task = TS_TASK_OF_SCHEME.get(sch.name)
        if task is not None:
            for i, ts_name in self._ts_classes[task].items():
                names.setdefault(i, ts_name)
        return dict(sorted(names.items()))

    def unknown_ids(self, ids: Iterable[int] | npt.ArrayLike, scheme: str) -> tuple[int, ...]:
        """Non-zero ids that ``scheme`` does not define (see :meth:`Scheme.unknown_ids`).

        Examples
        --------
        >>> load_catalog().unknown_ids([0, 2, 15], "cervical")
        (15,)
        """
        return self.scheme(scheme).unknown_ids(ids)

    def remap(
        self,
        labels: npt.ArrayLike,
        source: str,
        target: str,
        *,
        merge_parts: bool = True,
    ) -> np.ndarray:
        """Translate a label image from one scheme to another with a lookup table.

        Parameters
        ----------
        labels : (I, J, K) ndarray of int
            Label image in scheme ``source``; 0 is background. Float images holding whole
            numbers are accepted.
        source, target : str
            Scheme names.
        merge_parts : bool, optional
            Map a structure missing from ``target`` onto the structure containing it
            (``part_of``), e.g. MuscleMap's psoas and iliacus onto TotalSegmentator's
            iliopsoas. Default True.

        Returns
        -------
        ndarray of unsigned int
            Same shape; the smallest unsigned dtype holding ``target``'s ids.

        Raises
        ------
        InputError
            If a scheme is unknown or the labels are negative or not whole numbers.

        Warns
        -----
        LabelWarning
            Naming the ids set to 0: ids unknown to ``source``, and structures without an id
            in ``target``.

        Examples
        --------
        >>> cat = load_catalog()
        >>> cat.remap(np.array([[[0, 5, 6]]]), "abdomen", "ts_total").tolist()  # erector spinae
        [[[0, 86, 87]]]
        """
        src, dst = self.scheme(source), self.scheme(target)
        array = as_label_array(labels)
        lut_map = {i: self._target_id(s, dst, merge_parts) for i, s in src.labels.items()}
        out_dtype = min_uint(max(dst.labels, default=0))
        present = present_ids(array)
        dropped = [int(i) for i in present if lut_map.get(int(i), 0) == 0]
        if dropped:
            names = self.label_names(src.name)  # TotalSegmentator organs keep their names
            unknown = [i for i in dropped if i not in src.labels]
            lost = [f"{i} ({src.labels[i].name})" for i in dropped if i in src.labels]
            parts = []
            if lost:
                parts.append(f"no {dst.name!r} label for {', '.join(lost)}")
            if unknown:
                listed = [f"{i} ({names[i]})" for i in unknown if i in names]
                other = [i for i in unknown if i not in names]
                listed += [compact_ids(other)] if other else []
                parts.append(f"ids not in scheme {src.name!r}: {', '.join(listed)}")
            warnings.warn(
                f"remap {src.name} -> {dst.name}: set to 0 (background): {'; '.join(parts)}.",
                LabelWarning,
                stacklevel=2,
            )
        top = int(present[-1]) if present.size else 0
        return map_ids(array, lut_map, dtype=out_dtype, top=top)

    def table(self) -> pd.DataFrame:
        """Tabulate the whole catalog: one row per structure, one id column per scheme.

        Examples
        --------
        >>> t = load_catalog().table()
        >>> t.set_index("name").loc["femur_left", ["thigh", "ts_total", "musclemap"]].tolist()
        [53, 75, 6171]
        """
        rows = []
        for s in self._structures:
            row: dict[str, Any] = {
                "name": s.name, "base": s.base, "display_name": s.display_name, "side": s.side,
                "region": s.region, "group": s.group, "tissue": s.tissue, "color": s.color_hex,
                "levels": s.levels_text, "abbreviation": s.abbreviation or None,
                "layer": s.layer or None, "part_of": s.part_of or None,
            }
            row.update({k: s.ids.get(k) for k in SCHEME_NAMES})
            rows.append(row)
        table = pd.DataFrame(rows)
        return table.astype({k: "Int64" for k in SCHEME_NAMES})

    def _target_id(self, s: Structure, dst: Scheme, merge_parts: bool) -> int:
        seen = set()
        while s is not None and s.name not in seen:
            if dst.name in s.ids:
                return s.ids[dst.name]
            if not (merge_parts and s.part_of):
                return 0
            seen.add(s.name)
            parent = s.part_of if s.side == "midline" else f"{s.part_of}_{s.side}"
            s = self._by_name.get(parent)
        return 0

    def _unknown_message(self, name: object) -> str:
        names = close_names(name, self._index)
        hint = f" Close matches: {', '.join(names)}." if names else ""
        return (
            f"unknown structure {name!r} in the {self._source}.{hint} "
            f"Run `myoscan labels --scheme <scheme>` to list valid names."
        )


# --------------------------------------------------------------------------- loading


@functools.lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """Load the label catalog shipped with myoscan (read once, then cached).

    Returns
    -------
    Catalog

    Examples
    --------
    >>> load_catalog() is load_catalog()
    True
    """
    package = resources.files("myoscan.labels")
    return _build(
        (package / "catalog.csv").read_text(encoding="utf-8"), "catalog.csv",
        (package / "ts_classes.csv").read_text(encoding="utf-8"), "ts_classes.csv",
    )


def read_catalog(path: str | Path, ts_classes_path: str | Path | None = None) -> Catalog:
    """Read and validate a catalog file (same columns as the packaged ``catalog.csv``).

    Parameters
    ----------
    path : str or Path
        Catalog CSV; lines starting with ``#`` are comments.
    ts_classes_path : str or Path, optional
        TotalSegmentator class table; the packaged one when omitted.

    Returns
    -------
    Catalog

    Raises
    ------
    InputError
        If a file is missing or a row breaks a rule (the message names the file and row).

    Examples
    --------
    >>> from importlib import resources
    >>> len(read_catalog(resources.files("myoscan.labels") / "catalog.csv")) == len(load_catalog())
    True
    """
    path = Path(str(path))
    if not path.is_file():
        raise InputError(f"{path}: no such label catalog file; check the path.")
    if ts_classes_path is None:
        ts_text = (resources.files("myoscan.labels") / "ts_classes.csv").read_text(encoding="utf-8")
        ts_label = "ts_classes.csv"
    else:
        ts_path = Path(str(ts_classes_path))
        if not ts_path.is_file():
            raise InputError(f"{ts_path}: no such TotalSegmentator class table; check the path.")
        ts_text, ts_label = ts_path.read_text(encoding="utf-8"), ts_path.name
    return _build(path.read_text(encoding="utf-8"), path.name, ts_text, ts_label)


def unknown_ids(ids: Iterable[int] | npt.ArrayLike, scheme: str) -> tuple[int, ...]:
    """Non-zero label ids that a scheme of the packaged catalog does not define.

    Parameters
    ----------
    ids : iterable of int or ndarray
        Label ids, or a whole label image.
    scheme : str
        Scheme name.

    Returns
    -------
    tuple of int
        Sorted unknown ids; empty when every id is known.

    Examples
    --------
    >>> unknown_ids([0, 1, 14, 15], "leg")
    (15,)
    """
    return load_catalog().unknown_ids(ids, scheme)


def _build(text: str, label: str, ts_text: str, ts_label: str) -> Catalog:
    structures, ts_classes = parse_catalog(text, label, ts_text, ts_label)
    return Catalog(structures, ts_classes, source=label)
