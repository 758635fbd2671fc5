"""Label-id arrays: validation, the ids present, lookup-table remapping, compact id lists.

Whole-image passes run in blocks of :data:`_CHUNK` voxels so temporaries stay small;
ids beyond :data:`_LUT_MAX` (sparse huge values) go through ``np.unique`` instead of a
table or histogram.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from myoscan.errors import InputError

__all__ = ["as_label_array", "compact_ids", "map_ids", "min_uint", "present_ids"]

_CHUNK = 1 << 22  # voxels per block in remap/bincount: bounds temporaries to ~32 MB
_LUT_MAX = 1 << 24  # largest id handled by lookup table / histogram; beyond, np.unique


def as_label_array(labels: Any) -> np.ndarray:
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


def present_ids(array: np.ndarray) -> np.ndarray:
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


def min_uint(top: int) -> np.dtype:
    """Smallest unsigned integer dtype that holds ``top``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def compact_ids(ids: Iterable[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``'1-3, 5'``."""
    runs: list[list[int]] = []
    for i in sorted({int(i) for i in ids}):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "none"


def map_ids(array: np.ndarray, mapping: Mapping[int, int], *, dtype: np.dtype, top: int) -> np.ndarray:
    """``mapping[v]`` for every value ``v`` of ``array`` (0 where unmapped), by lookup table.

    ``top`` is the largest id in ``array``; above :data:`_LUT_MAX` the distinct values are
    mapped instead of building a table.
    """
    if top > _LUT_MAX:  # huge sparse ids: map the distinct values instead
        values, inverse = np.unique(array, return_inverse=True)
        mapped = np.array([mapping.get(int(v), 0) for v in values], dtype=dtype)
        return mapped[inverse].reshape(array.shape)
    lut = np.zeros(top + 1, dtype=dtype)
    for i, t in mapping.items():
        if i <= top:
            lut[i] = t
    out = np.empty(array.shape, dtype=dtype)
    flat_in, flat_out = array.reshape(-1), out.reshape(-1)
    for start in range(0, flat_in.size, _CHUNK):
        flat_out[start:start + _CHUNK] = lut[flat_in[start:start + _CHUNK]]
    return out
