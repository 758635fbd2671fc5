"""Structure-name normalisation and lookup: case, punctuation and side words do not matter.

``'Left Gluteus Max.'``, ``'gluteus max L'`` and ``'gluteus_max_left'`` all normalise to
``gluteus_max_left``; :meth:`myoscan.labels.Catalog.resolve` looks names up this way.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from myoscan.labels.structures import Structure

__all__ = ["close_names", "name_index", "normalize_name"]

_SIDE_WORDS = {"l": "left", "lt": "left", "left": "left", "r": "right", "rt": "right", "right": "right"}


def normalize_name(text: str) -> str:
    """Lower-case snake form with the side last: ``'Left Gluteus Max.'`` -> ``gluteus_max_left``."""
    tokens = re.findall(r"[a-z0-9]+", str(text).lower())
    if len(tokens) > 1 and tokens[0] in _SIDE_WORDS:
        tokens = tokens[1:] + [tokens[0]]
    if len(tokens) > 1 and tokens[-1] in _SIDE_WORDS:
        tokens[-1] = _SIDE_WORDS[tokens[-1]]
    return "_".join(tokens)


def name_index(structures: Iterable[Structure]) -> dict[str, set[str]]:
    """Normalised canonical, display and tool names -> the canonical names they denote."""
    index: dict[str, set[str]] = {}
    for s in structures:
        for key in (s.name, s.display_name, *s.aliases):
            index.setdefault(normalize_name(key), set()).add(s.name)
    return index


def close_names(name: object, index: Mapping[str, set[str]]) -> list[str]:
    """Up to five canonical names spelled like ``name`` (for "did you mean" messages)."""
    key = normalize_name(str(name))
    close = difflib.get_close_matches(key, list(index), n=8, cutoff=0.6)
    return list(dict.fromkeys(n for k in close for n in sorted(index[k])))[:5]
