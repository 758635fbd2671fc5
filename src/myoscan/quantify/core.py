"""Array kernels: per-(label, slice) sums in one pass, per-label erosion rims, sorted segments.

Everything here takes plain arrays. Labels are first turned into *rows*: small integers that
index the accumulator arrays directly (row 0 is background). Small label ids are used as rows
as they are; large or sparse ids are compacted once through a lookup table.

One pass over the volume fills, for every requested *channel* (a voxel-wise weight such as
the fat signal), an array of shape ``(n_rows, n_slices)`` with the sum of the weights of each
label in each slice (``np.bincount`` on ``row * n_slices + slice``, block by block in memory
order). Per-label totals, per-slice profiles and slab restrictions are all sums over these.
Sums are accumulated in float64 whatever the image dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from myoscan.errors import InputError
from myoscan.progress import progress

__all__ = [
    "Channel",
    "LabelRows",
    "Rims",
    "accumulate",
    "erosion_rims",
    "in_plane_area_mm2",
    "label_rows",
    "label_volumes_ml",
    "rim_sums",
    "safe_ratio",
    "Segments",
    "segment_medians",
    "segment_values",
    "slice_axis_of",
    "slice_centres_z_mm",
]

#: Label ids below this are used directly as accumulator rows; larger ids are compacted.
_DIRECT_MAX_ID = 1024
#: Largest id for which present ids are found with a histogram rather than a sort.
_HISTOGRAM_MAX_ID = 1 << 24
#: Voxels per block of the accumulation pass (keeps temporaries in cache-sized chunks).
_BLOCK_VOXELS = 1 << 20

#: A channel maps the image blocks of one pass ({role: 1D array}) to voxel weights.
Channel = Callable[[Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class LabelRows:
    """A label image recoded as accumulator rows.

    Attributes
    ----------
    rows : (I, J, K) ndarray of unsigned int
        Row of each voxel (0 = background); the input array itself when ids are small.
    row_ids : (n_rows,) ndarray of int64
        Original label id of each row (``row_ids[0] == 0``).
    """

    rows: np.ndarray
    row_ids: npt.NDArray[np.int64]

    @property
    def n_rows(self) -> int:
        """Number of accumulator rows, background included."""
        return int(self.row_ids.size)


def label_rows(labels: np.ndarray, *, name: str = "<array>") -> LabelRows:
    """Check a label image and recode it as accumulator rows.

    Parameters
    ----------
    labels : (I, J, K) ndarray of int (or float holding whole numbers)
        Label map; 0 is background.
    name : str
        File name for error messages.

    Returns
    -------
    LabelRows

    Raises
    ------
    InputError
        Negative, non-integer or non-finite labels.

    Examples
    --------
    >>> label_rows(np.array([[[0, 3, 3]]], dtype=np.uint8)).row_ids.tolist()
    [0, 1, 2, 3]
    >>> label_rows(np.array([[[0, 5000]]])).row_ids.tolist()
    [0, 5000]
    """
    array = labels
    if array.dtype == np.bool_:
        array = array.view(np.uint8)
    elif array.dtype.kind == "f":
        if not (np.isfinite(array.min()) and np.isfinite(array.max())):
            raise InputError(f"{name}: label image has NaN/Inf voxels; is it an intensity image?")
        if not np.array_equal(array, np.round(array)):
            raise InputError(f"{name}: label image has non-whole values; pass an integer label map, "
                             "not an intensity or probability image")
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iu":
        raise InputError(f"{name}: expected integer labels, got dtype {array.dtype}")
    if array.size == 0:
        raise InputError(f"{name}: label image is empty (shape {array.shape})")
    low, top = int(array.min()), int(array.max())
    if low < 0:
        raise InputError(f"{name}: label ids must be >= 0, found {low}; is this a label image?")
    if top < _DIRECT_MAX_ID:
        if array.dtype.itemsize > 2:  # bincount/find_objects are fastest on small dtypes
            array = array.astype(np.uint16)
        return LabelRows(array, np.arange(top + 1, dtype=np.int64))
    present = _present_ids(array, top)
    dtype = np.uint16 if present.size < 65535 else np.uint32
    if top > _HISTOGRAM_MAX_ID:  # huge sparse ids: binary search instead of a lookup table
        rows = (np.searchsorted(present, array) + 1).astype(dtype)
        rows[array == 0] = 0
    else:
        lut = np.zeros(top + 1, dtype=dtype)
        lut[present] = np.arange(1, present.size + 1)
        rows = np.empty_like(array, dtype=dtype)  # keeps the memory layout of the input
        np.take(lut, array, out=rows)
    return LabelRows(rows, np.concatenate([[0], present]).astype(np.int64))


def _present_ids(array: np.ndarray, top: int) -> np.ndarray:
    """Sorted distinct non-zero ids: a histogram when ids are not huge, else a sort."""
    if top > _HISTOGRAM_MAX_ID:
        present = np.unique(array)
    else:
        counts = np.zeros(top + 1, dtype=np.int64)
        flat = array.ravel(order="K")
        for start in range(0, flat.size, _BLOCK_VOXELS * 4):
            counts += np.bincount(flat[start:start + _BLOCK_VOXELS * 4], minlength=top + 1)
        present = np.flatnonzero(counts)
    return present[present != 0].astype(np.int64)


def slice_axis_of(affine: npt.ArrayLike) -> int:
    """Voxel axis closest to world z (superior-inferior): the axis across axial slices.

    Examples
    --------
    >>> slice_axis_of(np.diag([0.7, 0.7, 5.0, 1.0]))
    2
    """
    matrix = np.asarray(affine, dtype=float)[:3, :3]
    return int(np.argmax(np.abs(matrix[2]) / np.linalg.norm(matrix, axis=0)))


def in_plane_area_mm2(affine: npt.ArrayLike, slice_axis: int) -> float:
    """Area of one voxel face in a slice (mm²): the norm of the cross product of the in-plane axes.

    Examples
    --------
    >>> in_plane_area_mm2(np.diag([0.5, 2.0, 5.0, 1.0]), 2)
    1.0
    """
    matrix = np.asarray(affine, dtype=float)[:3, :3]
    a, b = (matrix[:, axis] for axis in range(3) if axis != slice_axis)
    return float(np.linalg.norm(np.cross(a, b)))


def slice_centres_z_mm(affine: npt.ArrayLike, shape: tuple[int, ...], slice_axis: int) -> np.ndarray:
    """World z (RAS, mm) of the centre of every slice.

    Examples
    --------
    >>> slice_centres_z_mm(np.diag([1.0, 1.0, 3.0, 1.0]), (4, 4, 3), 2).tolist()
    [0.0, 3.0, 6.0]
    """
    affine = np.asarray(affine, dtype=float)
    centre = (np.asarray(shape[:3], dtype=float) - 1.0) / 2.0
    index = np.tile(centre, (shape[slice_axis], 1))
    index[:, slice_axis] = np.arange(shape[slice_axis])
    return index @ affine[2, :3] + affine[2, 3]


def label_volumes_ml(labels: npt.NDArray[np.integer], spacing_mm: tuple[float, float, float]):
    """Volume of every non-zero label.

    Parameters
    ----------
    labels : (I, J, K) ndarray of int
        Label map; 0 is background.
    spacing_mm : tuple of 3 float
        Voxel size along I, J, K, in millimetres.

    Returns
    -------
    pandas.Series
        Volume in millilitres, indexed by label id.

    Examples
    --------
    >>> label_volumes_ml(np.array([[[0, 1, 1, 2]]]), (1.0, 1.0, 10.0)).to_dict()
    {1: 0.02, 2: 0.01}
    """
    import pandas as pd

    recoded = label_rows(np.asarray(labels))
    counts = np.bincount(recoded.rows.reshape(-1), minlength=recoded.n_rows)
    present = np.flatnonzero(counts[1:]) + 1
    voxel_ml = float(np.prod(spacing_mm)) / 1000.0
    return pd.Series(counts[present] * voxel_ml, index=recoded.row_ids[present].tolist(), name="volume_ml")


# --------------------------------------------------------------------------- one pass


def _memory_order(array: np.ndarray) -> str:
    """'F' when the first axis varies fastest in memory (NIfTI arrays), else 'C'."""
    if array.flags.f_contiguous and not array.flags.c_contiguous:
        return "F"
    strides = np.abs(array.strides)
    return "F" if strides[0] < strides[-1] else "C"


def accumulate(
    rows: LabelRows,
    slice_axis: int,
    images: Mapping[str, np.ndarray],
    channels: Mapping[str, Channel],
    *,
    show_progress: bool = False,
) -> dict[str, np.ndarray]:
    """Sum every channel per (label row, slice) in one pass over the volume.

    The volume is read in blocks of whole planes along the axis that varies slowest in
    memory; in each block only labelled voxels are gathered, then every channel is one
    ``np.bincount`` keyed by ``row * n_slices + slice``. Background (row 0) is not summed.

    Parameters
    ----------
    rows : LabelRows
        Recoded label image, shape (I, J, K).
    slice_axis : {0, 1, 2}
        Axis whose index is the slice number.
    images : mapping of str to (I, J, K) ndarray
        Images the channels read, by role (``'fat'``, ``'ct'`` ...), on the label grid.
    channels : mapping of str to callable
        Channel name -> function of the gathered image values returning voxel weights.
    show_progress : bool
        Progress bar on stderr.

    Returns
    -------
    dict of str to (n_rows, n_slices) ndarray of float64
        ``'n'`` (voxel counts) and one array per channel; row 0 stays zero.

    Examples
    --------
    >>> lab = label_rows(np.array([[[1, 1], [2, 0]]], dtype=np.uint8))
    >>> img = {"x": np.array([[[1.0, 3.0], [5.0, 7.0]]])}
    >>> sums = accumulate(lab, 2, img, {"x": lambda b: b["x"]})
    >>> sums["n"].tolist(), sums["x"].sum(axis=1).tolist()
    ([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0]], [0.0, 4.0, 5.0])
    """
    labels = rows.rows
    order = _memory_order(labels)
    chunk_axis = 2 if order == "F" else 0
    n_slices = labels.shape[slice_axis]
    size = rows.n_rows * n_slices
    out = {name: np.zeros(size) for name in ("n", *channels)}
    plane = labels.size // max(labels.shape[chunk_axis], 1)
    step = max(1, _BLOCK_VOXELS // max(plane, 1))
    starts = range(0, labels.shape[chunk_axis], step)
    for start in progress(starts, desc="measuring", unit="block", enabled=show_progress):
        index = [slice(None)] * 3
        index[chunk_axis] = slice(start, start + step)
        block = tuple(index)
        flat_labels = labels[block].ravel(order=order)
        inside = np.flatnonzero(flat_labels)
        if inside.size == 0:
            continue
        key = flat_labels[inside].astype(np.intp)
        key *= n_slices
        key += _coordinate(inside, labels[block].shape, slice_axis, order)
        if slice_axis == chunk_axis:
            key += start
        values = {role: image[block].ravel(order=order)[inside] for role, image in images.items()}
        out["n"] += np.bincount(key, minlength=size)
        for name, channel in channels.items():
            out[name] += np.bincount(key, weights=channel(values), minlength=size)
    return {name: values.reshape(rows.n_rows, n_slices) for name, values in out.items()}


def _coordinate(flat_index: np.ndarray, shape: tuple[int, ...], axis: int, order: str) -> np.ndarray:
    """Index along ``axis`` of positions in an array of ``shape`` raveled in ``order``."""
    faster = shape[:axis] if order == "F" else shape[axis + 1:]
    coordinate = flat_index // int(np.prod(faster, dtype=np.int64))
    if (order == "F" and axis < 2) or (order == "C" and axis > 0):
        coordinate %= shape[axis]
    return coordinate


# --------------------------------------------------------------------------- erosion


def _find_objects(rows: np.ndarray) -> list[tuple[slice, ...] | None]:
    """Bounding box of every row; scans in memory order (3-6x faster on NIfTI's F order)."""
    if _memory_order(rows) == "F":
        return [None if box is None else box[::-1] for box in ndi.find_objects(rows.T)]
    return ndi.find_objects(rows)


@dataclass(frozen=True)
class Rims:
    """Voxels removed by erosion, as positions in the label array raveled in ``order``.

    Attributes
    ----------
    flat_index : ndarray of intp
        Positions of the rim voxels.
    rows : ndarray
        Label row of each rim voxel.
    shape : tuple of 3 int
        Shape of the label array.
    order : {'C', 'F'}
        Memory order of the positions.
    """

    flat_index: np.ndarray
    rows: np.ndarray
    shape: tuple[int, int, int]
    order: str

    def __len__(self) -> int:
        return int(self.flat_index.size)


def erosion_rims(
    rows: np.ndarray,
    iterations: int,
    *,
    border_outside: bool = True,
    show_progress: bool = False,
) -> Rims:
    """Voxels removed by eroding every label separately with a 3x3x3 cube.

    Each label is eroded as a binary mask in which every other label (and background)
    counts as outside, so touching labels erode each other's shared face. The work is done
    on each label's bounding box (:func:`scipy.ndimage.find_objects`) plus a one-voxel
    margin, with the cube split into three 1D erosions; the result equals
    ``scipy.ndimage.binary_erosion(mask, np.ones((3, 3, 3)), iterations, border_value=b)``
    on the whole image, with ``b = 0`` when ``border_outside`` else 1.

    Parameters
    ----------
    rows : (I, J, K) ndarray of int
        Label map (accumulator rows); 0 is background.
    iterations : int
        Erosion iterations (>= 1).
    border_outside : bool
        Whether voxels beyond the image border count as outside (scipy ``border_value=0``).
    show_progress : bool
        Progress bar on stderr.

    Returns
    -------
    Rims
        The removed voxels and their labels.

    Examples
    --------
    >>> lab = np.zeros((5, 5, 5), dtype=np.uint8); lab[1:4, 1:4, 1:4] = 1
    >>> len(erosion_rims(lab, 1))  # a 3x3x3 cube keeps only its centre
    26
    """
    order = _memory_order(rows)
    positions, rim_rows = [], []
    boxes = list(enumerate(_find_objects(rows), start=1))
    for row, box in progress(boxes, desc="eroding", unit="label", enabled=show_progress):
        if box is None:
            continue
        padded = tuple(slice(max(b.start - 1, 0), min(b.stop + 1, n))
                       for b, n in zip(box, rows.shape, strict=True))
        mask = rows[padded] == row
        rim = mask ^ _erode_cube(mask, iterations, outside=not border_outside)
        local = np.unravel_index(np.flatnonzero(rim.ravel(order=order)), rim.shape, order=order)
        where = tuple(c + p.start for c, p in zip(local, padded, strict=True))
        positions.append(np.ravel_multi_index(where, rows.shape, order=order))
        rim_rows.append(np.full(local[0].size, row, dtype=rows.dtype))
    if not positions:
        return Rims(np.zeros(0, dtype=np.intp), np.zeros(0, dtype=rows.dtype), rows.shape, order)
    return Rims(np.concatenate(positions), np.concatenate(rim_rows), rows.shape, order)


def _erode_cube(mask: np.ndarray, iterations: int, *, outside: bool) -> np.ndarray:
    """Binary erosion by a 3x3x3 cube as three shrinking 1D erosions of a padded mask.

    ``outside`` is the value beyond the array. Inside a bounding box with a one-voxel
    margin, the margin holds no voxel of the mask, so padding with the image-border value
    on every face is exact on faces that are not the image border as well.
    """
    eroded = mask
    for _ in range(iterations):
        padded = np.pad(eroded, 1, constant_values=outside)
        along_i = padded[:-2] & padded[1:-1]
        along_i &= padded[2:]
        along_j = along_i[:, :-2] & along_i[:, 1:-1]
        along_j &= along_i[:, 2:]
        eroded = along_j[:, :, :-2] & along_j[:, :, 1:-1]
        eroded &= along_j[:, :, 2:]
    return eroded


def rim_sums(
    rims: Rims,
    n_rows: int,
    slice_axis: int,
    images: Mapping[str, np.ndarray],
    channels: Mapping[str, Channel],
) -> dict[str, np.ndarray]:
    """Per-(row, slice) sums of the channels over the rim voxels only (see :func:`accumulate`).

    Examples
    --------
    >>> lab = np.zeros((3, 3, 3), np.uint8); lab[1, 1, :] = 1
    >>> rim_sums(erosion_rims(lab, 1), 2, 2, {}, {})["n"].tolist()
    [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    """
    n_slices = rims.shape[slice_axis]
    key = rims.rows.astype(np.intp) * n_slices
    key += _coordinate(rims.flat_index, rims.shape, slice_axis, rims.order)
    values = {role: image.ravel(order=rims.order)[rims.flat_index] for role, image in images.items()}
    size = n_rows * n_slices
    out = {"n": np.bincount(key, minlength=size).astype(float)}
    for name, channel in channels.items():
        weights = channel(values) if key.size else np.zeros(0)
        out[name] = np.bincount(key, weights=weights, minlength=size)
    return {name: values.reshape(n_rows, n_slices) for name, values in out.items()}


# --------------------------------------------------------------------------- sorted segments


@dataclass(frozen=True)
class Segments:
    """Foreground voxels grouped by label row: one stable sort, reused for every image.

    Attributes
    ----------
    flat_index : (n_foreground,) ndarray of intp
        Positions (in the memory order ``order``) of the foreground voxels, sorted by row.
    bounds : (n_rows + 1,) ndarray of int64
        Voxels of row ``r`` are ``flat_index[bounds[r]:bounds[r + 1]]`` (row 0 is empty).
    order : {'C', 'F'}
        Memory order the positions refer to.
    """

    flat_index: np.ndarray
    bounds: np.ndarray
    order: str

    def values(self, image: np.ndarray) -> np.ndarray:
        """Values of ``image`` (same shape as the labels) in segment order, dtype kept."""
        return image.ravel(order=self.order)[self.flat_index]


def segment_values(rows: np.ndarray, counts: npt.ArrayLike) -> Segments:
    """Group the foreground voxels by label with one stable sort of their label rows.

    Parameters
    ----------
    rows : (I, J, K) ndarray of int
        Label rows; 0 is background.
    counts : (n_rows,) array_like
        Voxel count of every row (from :func:`accumulate`).

    Returns
    -------
    Segments

    Examples
    --------
    >>> seg = segment_values(np.array([[[2, 0, 1, 2]]]), [1, 1, 2])
    >>> seg.values(np.array([[[5, 6, 7, 8]]])).tolist(), seg.bounds.tolist()
    ([7, 5, 8], [0, 0, 1, 3])
    """
    order = _memory_order(rows)
    flat_rows = rows.ravel(order=order)
    foreground = np.flatnonzero(flat_rows)
    sorter = np.argsort(flat_rows[foreground], kind="stable")
    counts = np.asarray(counts, dtype=np.int64).copy()
    counts[0] = 0
    return Segments(foreground[sorter], np.concatenate([[0], np.cumsum(counts)]), order)


def segment_medians(values: np.ndarray, bounds: np.ndarray, *, skip_nan: bool = False) -> np.ndarray:
    """Median of every segment of :meth:`Segments.values` (NaN for empty ones), in float64.

    ``skip_nan`` ignores NaN values (a segment of only NaN gives NaN).

    Examples
    --------
    >>> segment_medians(np.array([7.0, 5.0, 8.0, 1.0]), np.array([0, 0, 1, 4])).tolist()
    [nan, 7.0, 5.0]
    """
    out = np.full(bounds.size - 1, np.nan)
    for row in np.flatnonzero(np.diff(bounds)):
        segment = values[bounds[row]:bounds[row + 1]].astype(np.float64)
        if skip_nan:
            segment = segment[~np.isnan(segment)]
            if not segment.size:
                continue
        out[row] = np.median(segment)
    return out


def safe_ratio(numerator: npt.ArrayLike, denominator: npt.ArrayLike, scale: float = 1.0) -> np.ndarray:
    """``scale * numerator / denominator`` with NaN (never 0 or Inf) where the denominator is 0.

    Examples
    --------
    >>> safe_ratio([1.0, 2.0], [4.0, 0.0], 100).tolist()
    [25.0, nan]
    """
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num * scale, den, out=out, where=den != 0)
    return out
