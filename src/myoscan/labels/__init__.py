"""Label catalog: structures, groups, colours and label ids per scheme (no torch).

>>> from myoscan.labels import load_catalog
>>> load_catalog().scheme("leg").id_of("soleus_left")
7

See :mod:`myoscan.labels.catalog` and ``docs/labels.md``.
"""

from __future__ import annotations

from myoscan.labels.catalog import (
    SCHEME_NAMES,
    TABLE_COLUMNS,
    VERTEBRAL_LEVELS,
    Catalog,
    LabelWarning,
    Scheme,
    Structure,
    load_catalog,
    read_catalog,
    unknown_ids,
)

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
