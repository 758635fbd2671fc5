"""A label map seen in anatomical directions: RAS reorientation and per-label slice profiles.

Reports show and judge a segmentation in anatomical terms (axial levels, superior end of a
muscle, patient's left), so the voxel grid is first permuted and flipped to the RAS axes
closest to it (``nibabel.orientations``; oblique grids are not resampled, only relabelled to
their nearest axes). :func:`label_profiles` then counts, in one pass per axis, the voxels of
every label in every slice, from which volumes, extents, the largest cross-section and the
voxels on each face of the field of view follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from myoscan.errors import InputError
from myoscan.io import Volume

__all__ = [
    "FACES",
    "LabelProfiles",
    "RasGrid",
    "label_profiles",
    "slice_levels",
    "to_ras_grid",
]

#: Faces of a RAS-ordered grid: (axis, end) -> anatomical name (end 0 = first slice).
FACES: dict[tuple[int, int], str] = {
    (0, 0): "left",
    (0, 1): "right",
    (1, 0): "posterior",
    (1, 1): "anterior",
    (2, 0): "inferior",
    (2, 1): "superior",
}
#: Largest label id counted with a direct lookup table; larger ids are compacted first.
_LUT_MAX_ID = 1 << 16


@dataclass(frozen=True)
class RasGrid:
    """An array re-indexed so that axes 0, 1, 2 run towards patient Right, Anterior, Superior.

    Attributes
    ----------
    array : (X, Y, Z) ndarray
        The data (a view of the original where possible).
    spacing_mm : tuple of 3 float
        Voxel size along X, Y, Z.
    affine : (4, 4) ndarray
        Voxel index -> RAS world mm of the re-indexed array.
    is_oblique : bool
        True when the grid axes are not parallel to the RAS axes (display is approximate).
    """

    array: np.ndarray
    spacing_mm: tuple[float, float, float]
    affine: npt.NDArray[np.float64]
    is_oblique: bool

    def z_mm(self, k: int) -> float:
        """World S coordinate (mm) of the centre of axial slice ``k``."""
        return float((self.affine @ np.array([0.0, 0.0, float(k), 1.0]))[2])


def to_ras_grid(volume: Volume) -> RasGrid:
    """Permute and flip a volume's axes to the closest RAS orientation.

    Parameters
    ----------
    volume : Volume
        A 3D volume (extra channels are not supported).

    Returns
    -------
    RasGrid

    Examples
    --------
    >>> vol = Volume(np.arange(24).reshape(2, 3, 4), np.diag([-1.0, 2.0, 3.0, 1.0]))  # LAS grid
    >>> grid = to_ras_grid(vol)
    >>> grid.array.shape, grid.spacing_mm, int(grid.array[0, 0, 0])
    ((2, 3, 4), (1.0, 2.0, 3.0), 12)
    """
    from nibabel import orientations

    if volume.array.ndim != 3:
        raise InputError(f"{volume.name}: expected a 3D image, got shape {volume.shape}")
    ornt = orientations.io_orientation(volume.affine)
    array = orientations.apply_orientation(volume.array, ornt)
    affine = volume.affine @ orientations.inv_ornt_aff(ornt, volume.array.shape)
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
    direction = affine[:3, :3] / np.array(spacing)
    is_oblique = not np.allclose(direction, np.eye(3), atol=1e-3)
    return RasGrid(array, spacing, affine, is_oblique)  # type: ignore[arg-type]


@dataclass(frozen=True)
class LabelProfiles:
    """Voxel counts of every label in every slice along each axis of a RAS grid.

    Attributes
    ----------
    ids : (n,) ndarray of int64
        Label ids present (background excluded), increasing.
    counts : tuple of 3 ndarrays
        ``counts[a][i, s]``: voxels of label ``ids[i]`` in slice ``s`` along axis ``a``.
    spacing_mm : tuple of 3 float
        Voxel size, for areas and volumes.
    """

    ids: npt.NDArray[np.int64]
    counts: tuple[np.ndarray, np.ndarray, np.ndarray]
    spacing_mm: tuple[float, float, float]

    @property
    def n_voxels(self) -> npt.NDArray[np.int64]:
        """Voxels per label."""
        return self.counts[2].sum(axis=1)

    @property
    def volume_ml(self) -> npt.NDArray[np.float64]:
        """Volume per label in mL."""
        return self.n_voxels * float(np.prod(self.spacing_mm)) / 1000.0

    def extent(self, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """First and last slice index of each label along ``axis``."""
        occupied = self.counts[axis] > 0
        first = occupied.argmax(axis=1)
        last = occupied.shape[1] - 1 - occupied[:, ::-1].argmax(axis=1)
        return first, last

    def face_pct(self, axis: int, end: int) -> npt.NDArray[np.float64]:
        """Cross-section of each label on a face, in % of its largest cross-section on that axis.

        0 means the label does not touch the face; 100 means it is cut where it is widest.
        """
        counts = self.counts[axis]
        on_face = counts[:, 0 if end == 0 else -1].astype(np.float64)
        largest = counts.max(axis=1).astype(np.float64)
        return np.divide(on_face * 100.0, largest, out=np.zeros_like(on_face), where=largest > 0)


def _rows(labels: np.ndarray, name: str) -> tuple[np.ndarray, npt.NDArray[np.int64]]:
    """Labels recoded as rows 0..n (0 = background) and the id of each row > 0."""
    if not np.issubdtype(labels.dtype, np.integer):
        rounded = np.rint(labels)
        if not np.array_equal(rounded, labels, equal_nan=False):
            raise InputError(f"{name} holds non-integer values: is it an image rather than a segmentation?")
        labels = rounded.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise InputError(f"{name} holds negative values (min {labels.min()}); labels must be >= 0")
    top = int(labels.max()) if labels.size else 0
    if top <= _LUT_MAX_ID:
        present = np.flatnonzero(np.bincount(labels.ravel(), minlength=top + 1))
    else:
        present = np.unique(labels)
    ids = present[present > 0].astype(np.int64)
    dtype = np.min_scalar_type(ids.size)  # uint8 for up to 255 labels: rows cost one byte per voxel
    if top <= _LUT_MAX_ID:
        lut = np.zeros(top + 1, dtype=dtype)
        lut[ids] = np.arange(1, ids.size + 1)
        return lut[labels], ids
    return np.searchsorted(np.concatenate([[0], ids]), labels).astype(dtype), ids


def label_profiles(
    labels: np.ndarray, spacing_mm: tuple[float, float, float], *, name: str = "the label map"
) -> LabelProfiles:
    """Count the voxels of every label in every slice along each of the three axes.

    One ``np.bincount`` per slice: no full-volume pass per label.

    Parameters
    ----------
    labels : (X, Y, Z) ndarray of int
        Label map (0 = background), ideally RAS-ordered (:func:`to_ras_grid`).
    spacing_mm : tuple of 3 float
        Voxel size along the three axes.
    name : str
        File name for error messages.

    Returns
    -------
    LabelProfiles

    Raises
    ------
    InputError
        Non-integer or negative labels.

    Examples
    --------
    >>> lab = np.zeros((4, 4, 3), dtype=np.uint8); lab[1:3, 1:3, :] = 5; lab[0, 0, 0] = 2
    >>> prof = label_profiles(lab, (1.0, 1.0, 2.0))
    >>> prof.ids.tolist(), prof.n_voxels.tolist(), prof.face_pct(2, 1).tolist()
    ([2, 5], [1, 12], [0.0, 100.0])
    """
    rows, ids = _rows(np.asarray(labels), name)
    n_rows = ids.size + 1
    counts = []
    for axis in range(3):
        moved = np.moveaxis(rows, axis, 0)
        per_slice = (
            np.stack(
                [np.bincount(moved[s].ravel(), minlength=n_rows) for s in range(moved.shape[0])],
                axis=1,
            )
            if moved.shape[0]
            else np.zeros((n_rows, 0), dtype=np.int64)
        )
        counts.append(per_slice[1:])
    return LabelProfiles(ids, (counts[0], counts[1], counts[2]), tuple(float(s) for s in spacing_mm))


def slice_levels(profiles: LabelProfiles, percents: tuple[float, ...], *, axis: int = 2) -> list[int]:
    """Slice indices at given percentages of the labelled range along ``axis``.

    Parameters
    ----------
    profiles : LabelProfiles
        Slice counts of the label map.
    percents : tuple of float
        Positions in % between the first (0) and last (100) slice holding any label.
    axis : int
        2 for axial levels (inferior = 0 %).

    Returns
    -------
    list of int
        One slice index per percentage (empty when the map has no label).

    Examples
    --------
    >>> lab = np.zeros((2, 2, 20), dtype=np.uint8); lab[..., 5:16] = 1
    >>> slice_levels(label_profiles(lab, (1.0, 1.0, 1.0)), (0.0, 50.0, 100.0))
    [5, 10, 15]
    """
    occupied = np.flatnonzero(profiles.counts[axis].sum(axis=0))
    if occupied.size == 0:
        return []
    first, last = int(occupied[0]), int(occupied[-1])
    return [int(round(first + (last - first) * p / 100.0)) for p in percents]
