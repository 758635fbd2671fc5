"""File-level helpers for quantify: segmentations from files or mask folders, slabs from specs.

These sit at the edge of the package (they read files); the command line and the pipeline
call them and pass plain arrays and values on to :func:`myoscan.quantify.measure`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from myoscan._typing import PathLike
from myoscan.errors import InputError
from myoscan.io import Volume, read_mask_folder, read_volume, require_3d
from myoscan.quantify.slab import (
    SLAB_PRESETS,
    SliceRange,
    level_z_ranges,
    slab_between,
    slab_from_world_z,
    vertebral_levels,
)

__all__ = ["label_names_of", "load_segmentation", "parse_range", "resolve_slab", "scheme_level_ranges"]


def load_segmentation(path: PathLike) -> tuple[Volume, dict[int, str] | None]:
    """Read a label image, or a folder of one binary mask per structure (TotalSegmentator).

    Parameters
    ----------
    path : str or os.PathLike
        Label image (NIfTI, NRRD, Slicer ``.seg.nrrd``) or folder of masks named
        ``<structure>.nii.gz``.

    Returns
    -------
    Volume
        3D label map.
    dict of int to str or None
        Label names: the mask file names, Slicer segment names, or None.

    Raises
    ------
    InputError
        Missing or unreadable file, 4D image, masks on different grids or overlapping.
    """
    source = Path(path)
    if source.is_dir() and not _is_dicom_folder(source):
        labels, names = read_mask_folder(source)
        return labels, names
    labels = require_3d(read_volume(source))
    names = labels.meta.get("segment_names")
    return labels, (dict(names) if names else None)


def _is_dicom_folder(folder: Path) -> bool:
    """Tell a DICOM series folder (no NIfTI/NRRD files) from a folder of masks."""
    return not any(p.name.lower().endswith((".nii", ".nii.gz", ".nrrd", ".nhdr")) for p in folder.iterdir())


def label_names_of(names: Mapping[int, str] | None, scheme: str | None) -> dict[int, str]:
    """Label id -> name for landmark lookups: given names, else every name the scheme knows.

    Examples
    --------
    >>> label_names_of(None, "total")[27]
    'vertebra_l5'
    """
    if names:
        return dict(names)
    if scheme is None:
        raise InputError("cannot find landmarks by name in an unnamed segmentation; give --scheme "
                         "(or --landmark-scheme), or a mask folder")
    from myoscan.labels import load_catalog

    return load_catalog().label_names(scheme)


def parse_range(text: str, *, what: str) -> tuple[float, float]:
    """``'A:B'`` -> (A, B) as floats.

    Examples
    --------
    >>> parse_range("-120:35.5", what="--slab-z")
    (-120.0, 35.5)
    """
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise InputError(f"{what}: expected START:STOP, got {text!r}") from None


def resolve_slab(
    labels: Volume,
    *,
    slices: str | None = None,
    world_z: str | None = None,
    between: tuple[str, str] | None = None,
    preset: str | None = None,
    levels: str | None = None,
    landmarks: Volume | None = None,
    landmark_names: Mapping[int, str] | None = None,
) -> SliceRange | None:
    """Turn one of the command-line slab forms (at most one may be given) into a slice range.

    Parameters
    ----------
    labels : Volume
        The measured segmentation (its grid defines the slices).
    slices : str, optional
        ``'START:STOP'`` slice indices, half-open.
    world_z : str, optional
        ``'Z1:Z2'`` in world mm.
    between : (str, str), optional
        Landmark specs ``NAME[@top|@bottom]`` (see :func:`~myoscan.quantify.slab.landmark_z_mm`).
    preset : str, optional
        A name in :data:`~myoscan.quantify.slab.SLAB_PRESETS` (``abdominal-cavity``).
    levels : str, optional
        Vertebral levels such as ``'L3'`` or ``'C4-C6'``.
    landmarks, landmark_names : Volume, mapping, optional
        Segmentation holding the landmarks and its label names.

    Returns
    -------
    SliceRange or None

    Raises
    ------
    InputError
        More than one form, bad syntax, unknown preset, missing landmark.
    """
    given = [f for f, v in (("slices", slices), ("z", world_z), ("between", between), ("preset", preset),
                            ("levels", levels)) if v]
    if len(given) > 1:
        raise InputError(f"give one slab option, not {' and '.join(given)}")
    if slices:
        start, stop = parse_range(slices, what="--slab-slices")
        if start != int(start) or stop != int(stop):
            raise InputError(f"--slab-slices: expected whole slice numbers, got {slices!r}")
        return SliceRange(int(start), int(stop))
    if world_z:
        return slab_from_world_z(labels, *parse_range(world_z, what="--slab-z"))
    if preset:
        if preset not in SLAB_PRESETS:
            raise InputError(f"unknown slab preset {preset!r}; known: {', '.join(SLAB_PRESETS)}")
        between = SLAB_PRESETS[preset]
    if levels:
        between = vertebral_levels(levels)
    if between is None:
        return None
    if landmarks is None or landmark_names is None:
        raise InputError("a landmark slab needs a segmentation with named landmarks (--landmarks)")
    return slab_from_world_z(labels, *slab_between(landmarks, landmark_names, *between))


def scheme_level_ranges(
    scheme: str, landmarks: Volume, landmark_names: Mapping[int, str]
) -> dict[int, tuple[float, float]]:
    """Per-label world z window from the catalog's vertebral levels of a scheme (``cervical``).

    Raises
    ------
    InputError
        If the scheme has no level-bound structures.
    """
    from myoscan.labels import load_catalog

    structures = load_catalog().scheme(scheme).labels
    levels = {i: s.levels for i, s in structures.items() if s.levels}
    if not levels:
        raise InputError(f"label scheme {scheme!r} has no vertebral levels; --levels-from-catalog needs "
                         "a level-bound scheme such as 'cervical'")
    return level_z_ranges(levels, landmarks, landmark_names)
