"""Restrict measurements to a slab of slices: by index, by world z, or between landmarks.

A slab is a contiguous range of slices (:class:`SliceRange`, half-open like Python slices)
along the slice axis of the measured image. It can be given directly, as a world z range
(RAS mm, slice centres inside the closed range), or between two landmark structures of a
label image (which need not share the measured grid, only its world space), e.g.

* seed 003's abdominal cavity, from the lowest lung voxel to the bottom of L5 in a
  TotalSegmentator segmentation: ``slab_between(seg, names, "lung_*@bottom", "vertebrae_L5@bottom")``
  (:data:`ABDOMINAL_CAVITY`);
* vertebral levels (seed 002 Table 1): ``vertebral_levels("C4-C6")`` = top of C4 to bottom of C6.

Landmark edges are the world z of the centre of the highest (``@top``) or lowest
(``@bottom``) slice that contains the structure; both ends are included.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from myoscan.errors import InputError
from myoscan.io import GEOMETRY_ATOL_MM, Volume
from myoscan.labels.catalog import VERTEBRAL_LEVELS
from myoscan.quantify.core import label_rows, slice_axis_of, slice_centres_z_mm

__all__ = [
    "ABDOMINAL_CAVITY",
    "SLAB_PRESETS",
    "SliceRange",
    "landmark_z_mm",
    "level_z_ranges",
    "slab_between",
    "slab_from_world_z",
    "vertebral_levels",
]

#: Seed 003: the abdominal cavity from the inferior aspect of the lungs to the inferior aspect of L5.
ABDOMINAL_CAVITY = ("lung_*@bottom", "vertebrae_L5@bottom")
#: Named slabs accepted by ``--slab-preset``.
SLAB_PRESETS = {"abdominal-cavity": ABDOMINAL_CAVITY}


@dataclass(frozen=True)
class SliceRange:
    """Slices ``start <= k < stop`` along the slice axis.

    Examples
    --------
    >>> SliceRange(2, 5).indices().tolist()
    [2, 3, 4]
    """

    start: int
    stop: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.stop:
            raise InputError(f"slab {self.start}:{self.stop} is empty or negative; "
                             "expected 0 <= start < stop")

    def indices(self) -> np.ndarray:
        """Slice indices in the slab."""
        return np.arange(self.start, self.stop)

    def clipped(self, n_slices: int, *, name: str = "<array>") -> SliceRange:
        """Return the part inside an image of ``n_slices`` slices (InputError when nothing is)."""
        if self.start >= n_slices:
            raise InputError(f"{name}: slab {self.start}:{self.stop} starts beyond the last slice "
                             f"({n_slices - 1}); check the slice range")
        return SliceRange(self.start, min(self.stop, n_slices))


def slab_from_world_z(
    volume: Volume, z_low_mm: float, z_high_mm: float, *, slice_axis: int | None = None
) -> SliceRange:
    """Slices of ``volume`` whose centre lies within world z ``[z_low_mm, z_high_mm]``.

    Raises
    ------
    InputError
        If no slice centre lies in the range.

    Examples
    --------
    >>> vol = Volume(np.zeros((2, 2, 10)), np.diag([1.0, 1.0, 3.0, 1.0]))
    >>> slab_from_world_z(vol, 5.0, 12.0)
    SliceRange(start=2, stop=5)
    """
    axis = slice_axis_of(volume.affine) if slice_axis is None else slice_axis
    low, high = sorted((float(z_low_mm), float(z_high_mm)))
    z = slice_centres_z_mm(volume.affine, volume.spatial_shape, axis)
    inside = np.flatnonzero((z >= low - GEOMETRY_ATOL_MM) & (z <= high + GEOMETRY_ATOL_MM))
    if inside.size == 0:
        raise InputError(
            f"{volume.name}: no slice centre lies between z = {low:g} and {high:g} mm (the image spans "
            f"{z.min():g} to {z.max():g} mm); check the slab or the landmarks"
        )
    return SliceRange(int(inside.min()), int(inside.max()) + 1)


def _matching_ids(names: Mapping[int, str], pattern: str) -> list[int]:
    """Label ids whose name (or catalog name/alias) matches a glob pattern, case-insensitively."""
    wanted = _spellings(pattern)
    return [int(label_id) for label_id, name in names.items()
            if any(fnmatch.fnmatchcase(s, w) for s in _spellings(name) for w in wanted)]


def _spellings(name: str) -> set[str]:
    """Lower-case name plus the catalog name and aliases of the structure it denotes."""
    from myoscan.quantify.identity import resolve_or_none

    structure = resolve_or_none(name)
    found = {name.lower()}
    if structure is not None:
        found |= {structure.name.lower(), *(a.lower() for a in structure.aliases)}
    return found


def landmark_z_mm(landmarks: Volume, names: Mapping[int, str], spec: str) -> float:
    """World z of the top or bottom of a landmark structure.

    Parameters
    ----------
    landmarks : Volume
        Label image holding the landmark (e.g. a TotalSegmentator segmentation).
    names : mapping of int to str
        Label id -> structure name of ``landmarks``.
    spec : str
        ``NAME@top`` or ``NAME@bottom`` (default ``@bottom``); NAME is a structure name
        (TotalSegmentator or catalog spelling) or a glob such as ``lung_*``.

    Returns
    -------
    float
        World z (RAS, mm) of the centre of the highest/lowest slice containing the structure.

    Raises
    ------
    InputError
        Unknown edge, or the structure is absent from the image.

    Examples
    --------
    >>> lab = np.zeros((2, 2, 6), np.uint8); lab[0, 0, 2:4] = 1
    >>> landmark_z_mm(Volume(lab, np.diag([1.0, 1.0, 2.0, 1.0])), {1: "liver"}, "liver@top")
    6.0
    """
    name, _, edge = spec.partition("@")
    edge = edge.strip().lower() or "bottom"
    if edge not in ("top", "bottom"):
        raise InputError(f"landmark {spec!r}: edge must be @top or @bottom")
    ids = _matching_ids(names, name.strip())
    rows = label_rows(landmarks.array, name=landmarks.name)
    axis = slice_axis_of(landmarks.affine)
    present = np.zeros(landmarks.spatial_shape[axis], dtype=bool)
    if ids:
        in_plane = tuple(a for a in range(3) if a != axis)
        hit_rows = np.flatnonzero(np.isin(rows.row_ids, ids))
        present = np.isin(rows.rows, hit_rows).any(axis=in_plane)
    if not present.any():
        known = ", ".join(sorted(names.values())[:12])
        raise InputError(
            f"{landmarks.name}: landmark {name.strip()!r} is not in the segmentation "
            f"(labels include: {known}{', ...' if len(names) > 12 else ''}); pass --landmarks with a "
            "segmentation that contains it"
        )
    z = slice_centres_z_mm(landmarks.affine, landmarks.spatial_shape, axis)[present]
    return float(z.max() if edge == "top" else z.min())


def slab_between(landmarks: Volume, names: Mapping[int, str], upper: str, lower: str) -> tuple[float, float]:
    """World z range (low, high) in mm between two landmark edges (see :func:`landmark_z_mm`).

    Examples
    --------
    >>> lab = np.zeros((2, 2, 8), np.uint8); lab[0, 0, 6:] = 1; lab[0, 0, 1:3] = 2
    >>> vol = Volume(lab, np.eye(4))
    >>> slab_between(vol, {1: "lung_lower_lobe_left", 2: "vertebrae_L5"}, *ABDOMINAL_CAVITY)
    (1.0, 6.0)
    """
    z = sorted((landmark_z_mm(landmarks, names, upper), landmark_z_mm(landmarks, names, lower)))
    return z[0], z[1]


def vertebral_levels(levels: str) -> tuple[str, str]:
    """Landmark specs spanning vertebral levels: ``'C4-C6'`` -> top of C4 to bottom of C6.

    Examples
    --------
    >>> vertebral_levels("C4-C6")
    ('vertebrae_C4@top', 'vertebrae_C6@bottom')
    """
    ends = [t.strip().upper() for t in re.split(r"\s*[-\u2013:]\s*", levels.strip())]
    if len(ends) > 2 or not all(e in VERTEBRAL_LEVELS for e in ends):
        raise InputError(f"vertebral levels {levels!r}: expected e.g. 'C4-C6', 'L3' or 'T12-L5'")
    first, last = ends[0], ends[-1]
    if VERTEBRAL_LEVELS.index(last) < VERTEBRAL_LEVELS.index(first):
        first, last = last, first
    return f"vertebrae_{first}@top", f"vertebrae_{last}@bottom"


def level_z_ranges(
    label_levels: Mapping[int, Iterable[str]], landmarks: Volume, names: Mapping[int, str]
) -> dict[int, tuple[float, float]]:
    """World z range of each label's own vertebral levels (seed 002 Table 1).

    Parameters
    ----------
    label_levels : mapping of int to sequence of str
        Label id -> levels, e.g. ``{1: ('C4', 'C5', 'C6')}`` (the catalog's ``levels``).
    landmarks, names
        Segmentation holding the vertebrae and its label names.

    Returns
    -------
    dict of int to (float, float)
        Label id -> (z_low_mm, z_high_mm).

    Examples
    --------
    >>> lab = np.zeros((1, 1, 9), np.uint8); lab[0, 0, 6:] = 1; lab[0, 0, 3:6] = 2; lab[0, 0, :3] = 3
    >>> names = {1: "vertebrae_C4", 2: "vertebrae_C5", 3: "vertebrae_C6"}
    >>> level_z_ranges({7: ("C5", "C6")}, Volume(lab, np.eye(4)), names)
    {7: (0.0, 5.0)}
    """
    cache: dict[str, float] = {}

    def z_of(spec: str) -> float:
        if spec not in cache:
            cache[spec] = landmark_z_mm(landmarks, names, spec)
        return cache[spec]

    ranges = {}
    for label_id, levels in label_levels.items():
        levels = tuple(levels)
        if levels:
            upper, lower = vertebral_levels(f"{levels[0]}-{levels[-1]}")
            ranges[int(label_id)] = tuple(sorted((z_of(upper), z_of(lower))))
    return ranges  # type: ignore[return-value]
