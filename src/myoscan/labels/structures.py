"""The label vocabulary: schemes, sides, vertebral levels, and the Structure and Scheme types.

A :class:`Structure` is one sided muscle or bone with its id in every scheme; a
:class:`Scheme` maps the label ids of one labelling scheme to structures. Both come from
:func:`myoscan.labels.load_catalog`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from myoscan.errors import InputError
from myoscan.labels.ids import as_label_array, compact_ids, present_ids

if TYPE_CHECKING:
    from myoscan.labels.catalog import Catalog

__all__ = [
    "SCHEME_ALIASES",
    "SCHEME_DESCRIPTIONS",
    "SCHEME_NAMES",
    "SIDES",
    "TABLE_COLUMNS",
    "TISSUES",
    "TS_TASK_OF_SCHEME",
    "VERTEBRAL_LEVELS",
    "LabelWarning",
    "Scheme",
    "Structure",
]

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
    >>> from myoscan.labels import load_catalog
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
    >>> from myoscan.labels import load_catalog
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
        >>> from myoscan.labels import load_catalog
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
        >>> from myoscan.labels import load_catalog
        >>> load_catalog().scheme("thigh").structure(54).name
        'femur_right'
        """
        try:
            return self.labels[int(label_id)]
        except (KeyError, TypeError, ValueError):
            raise InputError(
                f"label id {label_id!r} is not in label scheme {self.name!r} (valid ids "
                f"{compact_ids(self.ids)}); check --scheme or remap the labels."
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
        >>> from myoscan.labels import load_catalog
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
        >>> from myoscan.labels import load_catalog
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
        >>> from myoscan.labels import load_catalog
        >>> load_catalog().scheme("leg").unknown_ids([0, 1, 7, 15, 99])
        (15, 99)
        """
        present = present_ids(as_label_array(ids))
        return tuple(int(i) for i in present if int(i) not in self.labels)
