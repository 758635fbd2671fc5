"""Clean-up of predicted label maps: left/right consistency, largest component, hole filling.

All functions take an (I, J, K) integer label map and return a new one; each label is
processed inside its own bounding box (``scipy.ndimage.find_objects``, one pass for all
labels), so the cost follows the structures, not the whole volume times the labels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from myoscan.segment.config import PostprocessConfig

__all__ = [
    "axial_axis",
    "enforce_left_right",
    "fill_holes",
    "keep_largest_component",
    "postprocess_labels",
    "sided_name",
]

log = logging.getLogger(__name__)

_FULL_3D = np.ones((3, 3, 3), dtype=bool)


def axial_axis(affine: npt.NDArray[np.float64]) -> int:
    """Voxel axis running closest to the superior-inferior direction.

    Examples
    --------
    >>> axial_axis(np.diag([1.0, 1.0, 3.0, 1.0]))
    2
    """
    return int(np.argmax(np.abs(affine[2, :3]) / np.linalg.norm(affine[:3, :3], axis=0)))


def _boxes(labels: np.ndarray) -> list[tuple[int, tuple[slice, ...]]]:
    return [(i + 1, box) for i, box in enumerate(ndimage.find_objects(labels)) if box is not None]


def fill_holes(labels: npt.NDArray[np.integer], *, axis: int = 2) -> npt.NDArray[np.integer]:
    """Fill background holes enclosed by one label, slice by slice across ``axis`` (seed 003).

    Only background voxels are filled; a label enclosed by another keeps its voxels.

    Examples
    --------
    >>> ring = np.ones((3, 3, 1), int); ring[1, 1, 0] = 0
    >>> int(fill_holes(ring)[1, 1, 0])
    1
    """
    out = labels.copy()
    structure = np.zeros((3, 3, 3), dtype=bool)
    plane = [slice(None)] * 3
    plane[axis] = slice(1, 2)
    structure[tuple(plane)] = ndimage.generate_binary_structure(2, 1).reshape(
        [1 if a == axis else 3 for a in range(3)]
    )
    for value, box in _boxes(labels):
        region = out[box]
        mask = region == value
        holes = ndimage.binary_fill_holes(mask, structure=structure) & ~mask & (region == 0)
        region[holes] = value
    return out


def keep_largest_component(labels: npt.NDArray[np.integer]) -> npt.NDArray[np.integer]:
    """Keep only the largest 26-connected component of every label; the rest becomes 0.

    Examples
    --------
    >>> arr = np.array([[[1, 1, 0, 1]]])
    >>> keep_largest_component(arr).ravel().tolist()
    [1, 1, 0, 0]
    """
    out = labels.copy()
    for value, box in _boxes(labels):
        region = out[box]
        components, count = ndimage.label(region == value, structure=_FULL_3D)
        if count > 1:
            sizes = np.bincount(components.ravel())
            sizes[0] = 0
            region[(components != np.argmax(sizes)) & (components > 0)] = 0
    return out


def sided_name(name: str) -> tuple[str, str, str] | None:
    """(canonical name, side, partner name) of a left/right structure, else None.

    The label catalog resolves tool spellings (``'Gluteus Maximus L'``); names it does
    not know fall back to a ``_left``/``_right`` suffix.

    Examples
    --------
    >>> sided_name("soleus_left"), sided_name("sacrum")
    (('soleus_left', 'left', 'soleus_right'), None)
    """
    from myoscan.errors import InputError
    from myoscan.labels import load_catalog

    try:
        structure = load_catalog().resolve(name)
    except InputError:  # custom label outside the catalog
        for side, other in (("left", "right"), ("right", "left")):
            if name.endswith(f"_{side}"):
                return name, side, name[: -len(side)] + other
        return None
    if not structure.is_bilateral:
        return None
    return structure.name, structure.side, structure.counterpart  # type: ignore[return-value]


def enforce_left_right(
    labels: npt.NDArray[np.integer], affine: npt.NDArray[np.float64], names: Mapping[int, str],
) -> npt.NDArray[np.integer]:
    """Give every connected piece of a sided label the side of the body it lies on.

    The body midline is the midpoint (RAS x) between the centroids of all left and all
    right structures; in RAS, x grows towards the patient's right. A ``*_left``
    component whose centroid lies right of the midline becomes its ``*_right`` partner
    and vice versa. Nothing changes when the model has no pairs or one side is absent
    (e.g. a single-leg scan).

    Parameters
    ----------
    labels : (I, J, K) ndarray of int
        Label map.
    affine : (4, 4) ndarray
        Voxel -> RAS (mm) of ``labels``.
    names : mapping of int to str
        Label value -> structure name.
    """
    sided = {value: sided_name(name) for value, name in names.items()}
    value_of = {info[0]: value for value, info in sided.items() if info is not None}
    pairs = {
        value: (value_of[info[2]], info[1])
        for value, info in sided.items() if info is not None and info[2] in value_of
    }
    if not pairs:
        return labels
    x_of = affine[0, :3]
    left, right = [], []
    centroids = {}
    for value, box in _boxes(labels):
        if value not in pairs:
            continue
        components, count = ndimage.label(labels[box] == value, structure=_FULL_3D)
        # world x of every voxel of the box (linear in the indices), summed per component
        axes = [x_of[a] * np.arange(b.start, b.stop).reshape([-1 if d == a else 1 for d in range(3)])
                for a, b in enumerate(box)]
        world_x = axes[0] + axes[1] + axes[2] + affine[0, 3]
        flat = components.ravel()
        sizes = np.bincount(flat, minlength=count + 1)[1:]
        xs = np.bincount(flat, weights=np.broadcast_to(world_x, components.shape).ravel(),
                         minlength=count + 1)[1:] / np.maximum(sizes, 1)
        centroids[value] = (box, components, xs)
        (left if pairs[value][1] == "left" else right).extend(zip(xs, sizes, strict=True))
    if not left or not right:
        return labels
    midline = 0.5 * (np.average([x for x, _ in left], weights=[w for _, w in left])
                     + np.average([x for x, _ in right], weights=[w for _, w in right]))
    out = labels.copy()
    for value, (box, components, xs) in centroids.items():
        partner, side = pairs[value]
        wrong = np.concatenate([[False], xs > midline if side == "left" else xs < midline])
        if wrong.any():
            log.debug("relabelling %d piece(s) of %s to %s", wrong.sum(), names[value], names[partner])
            out[box][wrong[components]] = partner
    return out


def postprocess_labels(
    labels: npt.NDArray[np.integer],
    affine: npt.NDArray[np.float64],
    names: Mapping[int, str],
    config: PostprocessConfig,
) -> npt.NDArray[np.integer]:
    """Apply the configured steps: left/right consistency, largest component, hole filling."""
    if config.lr_consistency:
        labels = enforce_left_right(labels, affine, names)
    if config.largest_component:
        labels = keep_largest_component(labels)
    if config.fill_holes:
        labels = fill_holes(labels, axis=axial_axis(affine))
    return labels
