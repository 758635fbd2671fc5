"""Name every label of a measured image: catalog structure, side, region, group, tissue.

Names come from a label scheme of :mod:`myoscan.labels` (``--scheme``), or from names given
with the image (mask file names, Slicer segment names), which are looked up in the catalog
(TotalSegmentator and MuscleMap spellings are understood). Labels that cannot be named are
still reported, as ``label_<id>``, with a :class:`~myoscan.labels.LabelWarning`.
"""

from __future__ import annotations

import functools
import logging
import re
import warnings
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from myoscan.errors import InputError
from myoscan.labels import LabelWarning, Structure, load_catalog

__all__ = ["IDENTITY_COLUMNS", "label_identity", "resolve_or_none"]

log = logging.getLogger(__name__)

#: Leading columns of every quantify table (the metric-table contract of docs/developing.md).
IDENTITY_COLUMNS = ("label_id", "name", "side", "region", "group", "tissue")
_SIDE_SUFFIX = re.compile(r"_(left|right)$")


def _row(label_id: int, structure: Structure | None, fallback: str, input_name: str | None) -> dict:
    if structure is not None:
        return {"label_id": label_id, "name": structure.name, "side": structure.side,
                "region": structure.region, "group": structure.group, "tissue": structure.tissue,
                "input_name": input_name}
    side = _SIDE_SUFFIX.search(fallback)
    return {"label_id": label_id, "name": fallback, "side": side.group(1) if side else None,
            "region": None, "group": None, "tissue": None, "input_name": input_name}


@functools.lru_cache(maxsize=4096)
def resolve_or_none(name: str) -> Structure | None:
    """Catalog structure for a name in any known spelling, or None (cached: misses are slow).

    Examples
    --------
    >>> resolve_or_none("hip_left").name, resolve_or_none("liver")
    ('iliac_bone_left', None)
    """
    try:
        return load_catalog().resolve(name)
    except InputError:
        return None


def label_identity(
    label_ids: Iterable[int],
    *,
    names: Mapping[int, str] | None = None,
    scheme: str | None = None,
) -> pd.DataFrame:
    """Identity columns for label ids.

    Parameters
    ----------
    label_ids : iterable of int
        Ids present in the image.
    names : mapping of int to str, optional
        Names given with the image (e.g. mask file names); used when ``scheme`` is None.
    scheme : str, optional
        Catalog scheme (``leg``, ``thigh``, ``cervical``, ``abdomen``, ``musclemap``,
        ``total``/``ts_total``, ``total_mr``).

    Returns
    -------
    pandas.DataFrame
        ``label_id, name, side, region, group, tissue, input_name`` (None where unknown;
        ``input_name`` is the name given with the image).

    Warns
    -----
    LabelWarning
        For ids the scheme does not define, or that have no name; they are reported as
        ``label_<id>``.

    Examples
    --------
    >>> label_identity([7], scheme="leg")[["name", "side", "group"]].values.tolist()
    [['soleus_left', 'left', 'soleus']]
    >>> label_identity([3], names={3: "autochthon_right"}).loc[0, ["name", "input_name"]].tolist()
    ['erector_spinae_right', 'autochthon_right']
    """
    ids = [int(i) for i in label_ids]
    rows, unknown = [], []
    if scheme is not None:
        catalog = load_catalog()
        known = catalog.scheme(scheme)
        other = catalog.label_names(known.name)  # TotalSegmentator organs keep their names
        for i in ids:
            if i not in other:
                unknown.append(i)
            rows.append(_row(i, known.labels.get(i), other.get(i, f"label_{i}"), None))
        where = f"label scheme {known.name!r}"
    else:
        for i in ids:
            given = (names or {}).get(i)
            if given is None and names:
                unknown.append(i)
            rows.append(_row(i, resolve_or_none(given) if given else None, given or f"label_{i}", given))
        where = "the names given with the segmentation"
    if unknown:
        warnings.warn(
            f"label id(s) {', '.join(map(str, unknown))} are not in {where}; they are reported as "
            "label_<id> (check --scheme)", LabelWarning, stacklevel=3,
        )
    table = pd.DataFrame(rows, columns=[*IDENTITY_COLUMNS, "input_name"])
    unresolved = table.loc[table["tissue"].isna() & table["input_name"].notna(), "input_name"]
    if len(unresolved):
        log.info("%d structure(s) not in the label catalog (no side/group/tissue): %s", len(unresolved),
                 ", ".join(unresolved.head(10)))
    return table.astype({"label_id": np.int64})
