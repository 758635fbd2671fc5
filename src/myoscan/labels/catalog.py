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
"""

from __future__ import annotations

import csv
import difflib
import functools
import logging
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from myoscan.errors import InputError

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

#: Label schemes, in the order of the catalog's id columns.
SCHEME_NAMES: tuple[str, ...] = (
    "leg", "cervical", "abdomen", "thigh", "musclemap", "ts_total", "ts_total_mr",
)

#: One line per scheme: what it is and where its ids come from.
SCHEME_DESCRIPTIONS: Mapping[str, str] = MappingProxyType({
    "leg": "calf muscle groups + tibia/fibula, seed 000; ids of MuscleMap's leg model",
    "cervical": "cervical muscle groups at fixed vertebral levels, seed 002 Table 1 ids",
    "abdomen": "abdominal muscle groups on CT, seed 003; myoscan ids 2k-1 left, 2k right",
    "thigh": "27 pelvic-thigh structures per side, seeds 001/004; ids 2k-1 left, 2k right",
    "musclemap": "MuscleMap whole-body model label values (label space v1.3)",
    "ts_total": "TotalSegmentator 'total' class ids (v2, 117 classes): muscles and bones",
    "ts_total_mr": "TotalSegmentator 'total_mr' class ids: muscles and bones",
})

#: Other spellings accepted by :meth:`Catalog.scheme`.
SCHEME_ALIASES: Mapping[str, str] = MappingProxyType({
    "total": "ts_total", "total_fast": "ts_total", "total_mr": "ts_total_mr",
})

#: TotalSegmentator task whose class table backs a ``ts_*`` scheme.
TS_TASK_OF_SCHEME: Mapping[str, str] = MappingProxyType({"ts_total": "total", "ts_total_mr": "total_mr"})

#: Columns of :meth:`Scheme.table`, the per-label metadata every metric table starts with.
TABLE_COLUMNS: tuple[str, ...] = (
    "label_id", "name", "base", "display_name", "side", "region", "group", "tissue", "color", "levels",
)

#: Vertebral levels from cranial to caudal, used to expand ranges such as ``C4-C6``.
VERTEBRAL_LEVELS: tuple[str, ...] = (
    tuple(f"C{i}" for i in range(1, 8)) + tuple(f"T{i}" for i in range(1, 13))
    + tuple(f"L{i}" for i in range(1, 6)) + tuple(f"S{i}" for i in range(1, 6))
)

SIDES = ("left", "right", "midline")
TISSUES = ("muscle", "bone")
_REQUIRED_COLUMNS = (
    "name", "base", "side", "display_name", "region", "group", "tissue", "color", "levels",
    *SCHEME_NAMES, "ts_name", "ts_mr_name", "musclemap_name",
)
_TOOL_NAME_COLUMNS = {"ts_total": "ts_name", "ts_total_mr": "ts_mr_name"}
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_SIDE_WORDS = {"l": "left", "lt": "left", "left": "left", "r": "right", "rt": "right", "right": "right"}
_CHUNK = 1 << 22  # voxels per block in remap/bincount: bounds temporaries to ~32 MB
_LUT_MAX = 1 << 24  # largest id handled by lookup table / histogram; beyond, np.unique


class LabelWarning(UserWarning):
    """Labels of an image that a scheme does not know, or that a remap sets to background."""


@dataclass(frozen=True)
class Structure:
    """One sided anatomical structure (a muscle, muscle group or bone).

    Attributes
    ----------
    name : str
        Canonical snake_case name with side suffix, e.g. ``'soleus_left'``; midline
        structures have none (``'sacrum'``).
    base : str
        Name without side, e.g. ``'soleus'``.
    display_name : str
        Human-readable name, e.g. ``'Soleus (left)'``.
    side : {'left', 'right', 'midline'}
        Body side.
    region : str
        Body region: ``leg``, ``thigh``, ``pelvis``, ``abdomen``, ``thorax``, ``cervical``, ...
    group : str
        Compartment or muscle group of the papers (``anterior``, ``gluteal``, ``mfss``, ...).
    tissue : {'muscle', 'bone'}
        Tissue type.
    color : tuple of 3 int
        Display colour (r, g, b), 0-255.
    levels : tuple of str
        Vertebral levels where the structure is measured (seed 002), e.g. ``('C4', 'C5', 'C6')``.
    ids : mapping of str to int
        Label id in each scheme that contains the structure.
    aliases : tuple of str
        Names other tools use (TotalSegmentator, MuscleMap) and accepted spellings.
    abbreviation, layer, part_of, notes : str
        Paper abbreviation (``'MFSS'``), cervical layer (``'deep'``/``'superficial'``), base of
        a coarser structure containing this one (``'iliopsoas'`` for ``psoas``), free text.

    Examples
    --------
    >>> s = load_catalog().structure("soleus_left")
    >>> (s.base, s.side, s.group, s.ids["leg"], s.color_hex)
    ('soleus', 'left', 'soleus', 7, '#8b5a2b')
    """

    name: str
    base: str
    display_name: str
    side: str
    region: str
    group: str
    tissue: str
    color: tuple[int, int, int]
    levels: tuple[str, ...] = ()
    ids: Mapping[str, int] = field(default_factory=dict, compare=False)
    aliases: tuple[str, ...] = ()
    abbreviation: str = ""
    layer: str = ""
    part_of: str = ""
    notes: str = ""

    @property
    def is_bilateral(self) -> bool:
        """True for a left or right structure, False for a midline one."""
        return self.side != "midline"

    @property
    def color_hex(self) -> str:
        """Colour as ``'#rrggbb'``."""
        return "#{:02x}{:02x}{:02x}".format(*self.color)

    @property
    def levels_text(self) -> str | None:
        """Levels as written in the paper (``'C4-C6'``), or None when not level-bound."""
        if not self.levels:
            return None
        return self.levels[0] if len(self.levels) == 1 else f"{self.levels[0]}-{self.levels[-1]}"

    @property
    def counterpart(self) -> str | None:
        """Canonical name of the same structure on the other side (None for midline)."""
        if not self.is_bilateral:
            return None
        return f"{self.base}_{'right' if self.side == 'left' else 'left'}"

    def id_in(self, scheme: str) -> int | None:
        """Label id in ``scheme``, or None when the scheme does not contain the structure."""
        return self.ids.get(scheme)


@dataclass(frozen=True, eq=False)
class Scheme:
    """One labelling scheme: label id -> structure.

    Get one from :meth:`Catalog.scheme`.

    Examples
    --------
    >>> leg = load_catalog().scheme("leg")
    >>> leg.id_of("gastrocnemius_right"), leg.structure(1).name, len(leg)
    (10, 'leg_anterior_compartment_left', 14)
    """

    name: str
    description: str
    labels: Mapping[int, Structure]
    _catalog: Catalog = field(repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, (int, np.integer)):
            return int(item) in self.labels
        if isinstance(item, Structure):
            return self.name in item.ids
        if isinstance(item, str):
            return item in self._by_name()
        return False

    @property
    def ids(self) -> tuple[int, ...]:
        """Label ids in increasing order."""
        return tuple(self.labels)

    @property
    def names(self) -> tuple[str, ...]:
        """Canonical structure names in label-id order."""
        return tuple(s.name for s in self.labels.values())

    def _by_name(self) -> dict[str, int]:
        return {s.name: i for i, s in self.labels.items()}

    def id_of(self, structure: str | Structure) -> int:
        """Label id of a structure.

        Parameters
        ----------
        structure : str or Structure
            Canonical name, display name or any tool name (see :meth:`Catalog.resolve`).

        Returns
        -------
        int
            Label id in this scheme.

        Raises
        ------
        InputError
            If the name is unknown or the structure is not part of this scheme.

        Examples
        --------
        >>> load_catalog().scheme("ts_total").id_of("iliopsoas_left")
        88
        """
        s = self._catalog.resolve(structure)
        if self.name not in s.ids:
            where = ", ".join(k for k in SCHEME_NAMES if k in s.ids) or "no scheme"
            raise InputError(
                f"{s.name} is not in label scheme {self.name!r} (it is in: {where}); "
                f"run `myoscan labels --scheme {self.name}` to list the scheme's labels."
            )
        return s.ids[self.name]

    def structure(self, label_id: int) -> Structure:
        """Structure with label id ``label_id``.

        Raises
        ------
        InputError
            If the id is not in this scheme.

        Examples
        --------
        >>> load_catalog().scheme("thigh").structure(54).name
        'femur_right'
        """
        try:
            return self.labels[int(label_id)]
        except (KeyError, TypeError, ValueError):
            raise InputError(
                f"label id {label_id!r} is not in label scheme {self.name!r} (valid ids "
                f"{_compact_ids(self.ids)}); check --scheme or remap the labels."
            ) from None

    def table(self) -> pd.DataFrame:
        """Per-label metadata table, one row per label id.

        Returns
        -------
        pandas.DataFrame
            Columns ``label_id, name, base, display_name, side, region, group, tissue, color,
            levels`` (``color`` as ``'#rrggbb'``, ``levels`` like ``'C4-C6'`` or None).

        Examples
        --------
        >>> table = load_catalog().scheme("cervical").table()
        >>> table.loc[0, "name"], table.loc[0, "levels"], len(table)
        ('multifidus_semispinalis_cervicis_right', 'C4-C6', 14)
        """
        rows = [
            (i, s.name, s.base, s.display_name, s.side, s.region, s.group, s.tissue, s.color_hex,
             s.levels_text)
            for i, s in self.labels.items()
        ]
        table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
        return table.astype({"label_id": "int64"})

    def pairs(self) -> list[tuple[str, int, int]]:
        """Bilateral structures with both sides in this scheme.

        Returns
        -------
        list of (str, int, int)
            ``(base, left_id, right_id)``, ordered by the smaller id.

        Examples
        --------
        >>> load_catalog().scheme("cervical").pairs()[0]
        ('multifidus_semispinalis_cervicis', 2, 1)
        """
        sides: dict[str, dict[str, int]] = {}
        for i, s in self.labels.items():
            if s.is_bilateral:
                sides.setdefault(s.base, {})[s.side] = i
        found = [(b, d["left"], d["right"]) for b, d in sides.items() if len(d) == 2]
        return sorted(found, key=lambda t: min(t[1], t[2]))

    def unknown_ids(self, ids: Iterable[int] | npt.ArrayLike) -> tuple[int, ...]:
        """Ids (other than background 0) that are not labels of this scheme.

        Parameters
        ----------
        ids : iterable of int or ndarray
            Label ids, or a whole label image.

        Returns
        -------
        tuple of int
            Sorted ids unknown to the scheme; empty when all are known.

        Examples
        --------
        >>> load_catalog().scheme("leg").unknown_ids([0, 1, 7, 15, 99])
        (15, 99)
        """
        present = _present_ids(_as_label_array(ids))
        return tuple(int(i) for i in present if int(i) not in self.labels)


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
        self._index: dict[str, set[str]] = {}
        for s in self._structures:
            for key in (s.name, s.display_name, *s.aliases):
                self._index.setdefault(_normalize(key), set()).add(s.name)
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
        hits = self._index.get(_normalize(name), set())
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
        array = _as_label_array(labels)
        lut_map = {i: self._target_id(s, dst, merge_parts) for i, s in src.labels.items()}
        out_dtype = _min_uint(max(dst.labels, default=0))
        present = _present_ids(array)
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
                listed += [_compact_ids(other)] if other else []
                parts.append(f"ids not in scheme {src.name!r}: {', '.join(listed)}")
            warnings.warn(
                f"remap {src.name} -> {dst.name}: set to 0 (background): {'; '.join(parts)}.",
                LabelWarning,
                stacklevel=2,
            )
        top = int(present[-1]) if present.size else 0
        if top > _LUT_MAX:  # huge sparse ids: map the distinct values instead
            values, inverse = np.unique(array, return_inverse=True)
            mapped = np.array([lut_map.get(int(v), 0) for v in values], dtype=out_dtype)
            return mapped[inverse].reshape(array.shape)
        lut = np.zeros(top + 1, dtype=out_dtype)
        for i, t in lut_map.items():
            if i <= top:
                lut[i] = t
        out = np.empty(array.shape, dtype=out_dtype)
        flat_in, flat_out = array.reshape(-1), out.reshape(-1)
        for start in range(0, flat_in.size, _CHUNK):
            flat_out[start:start + _CHUNK] = lut[flat_in[start:start + _CHUNK]]
        return out

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
        key = _normalize(str(name))
        close = difflib.get_close_matches(key, list(self._index), n=8, cutoff=0.6)
        names = list(dict.fromkeys(n for k in close for n in sorted(self._index[k])))[:5]
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


def _build(text: str, label: str, ts_text: str, ts_label: str) -> Catalog:
    ts_classes = _read_ts_classes(ts_text, ts_label)
    rows = _read_csv_rows(text, label)
    missing = [c for c in _REQUIRED_COLUMNS if c not in rows[0]] if rows else list(_REQUIRED_COLUMNS)
    if missing:
        raise InputError(f"{label}: missing column(s) {', '.join(missing)}; see docs/labels.md.")
    structures = [_structure_from_row(row, label, ts_classes) for row in rows]
    _check_catalog(structures, label)
    return Catalog(structures, ts_classes, source=label)


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


# --------------------------------------------------------------------------- helpers


def _normalize(text: str) -> str:
    """Lower-case snake form with the side last: ``'Left Gluteus Max.'`` -> ``gluteus_max_left``."""
    tokens = re.findall(r"[a-z0-9]+", str(text).lower())
    if len(tokens) > 1 and tokens[0] in _SIDE_WORDS:
        tokens = tokens[1:] + [tokens[0]]
    if len(tokens) > 1 and tokens[-1] in _SIDE_WORDS:
        tokens[-1] = _SIDE_WORDS[tokens[-1]]
    return "_".join(tokens)


def _as_label_array(labels: Any) -> np.ndarray:
    """Validate a label image or id list: whole, non-negative numbers, returned as an int array."""
    array = np.asarray(labels)
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype.kind in "iu":
        if array.dtype.kind == "i" and array.size and array.min() < 0:
            raise InputError(
                f"label ids must be >= 0, found {int(array.min())}; is this a label image?"
            )
        return array
    if array.dtype.kind == "f":
        if array.size and not np.isfinite(array).all():
            raise InputError("label image has NaN or Inf values; is this an intensity image?")
        if array.size and (array != np.round(array)).any():
            raise InputError(
                "label image has non-whole values; pass an integer label map, not an intensity image."
            )
        if array.size and array.min() < 0:
            raise InputError(f"label ids must be >= 0, found {array.min():g}; is this a label image?")
        return array.astype(np.int64)
    raise InputError(f"expected integer label ids, got an array of dtype {array.dtype}.")


def _present_ids(array: np.ndarray) -> np.ndarray:
    """Sorted distinct non-zero ids, by chunked bincount (linear time, bounded memory)."""
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    top = int(array.max())
    if top == 0:
        return np.zeros(0, dtype=np.int64)
    if top > _LUT_MAX:  # sparse huge ids: sorting is cheaper than a giant histogram
        present = np.unique(array)
    else:
        counts = np.zeros(top + 1, dtype=np.int64)
        flat = array.reshape(-1)
        for start in range(0, flat.size, _CHUNK):
            counts += np.bincount(flat[start:start + _CHUNK], minlength=top + 1)
        present = np.flatnonzero(counts)
    return present[present != 0].astype(np.int64)


def _min_uint(top: int) -> np.dtype:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def _compact_ids(ids: Iterable[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``'1-3, 5'``."""
    runs: list[list[int]] = []
    for i in sorted({int(i) for i in ids}):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "none"
