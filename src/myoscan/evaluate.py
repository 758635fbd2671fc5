"""Segmentation accuracy: overlap, volume and surface-distance metrics per label.

For a predicted and a reference label image on the same grid, every label gets the
overlap metrics of seed 002 (Dice, Jaccard index, conformity coefficient, TPR, TNR,
PPV, volume ratio), seed 001 (IoU = Jaccard, precision = PPV, recall = TPR) and the
volume and surface metrics of seed 004 (RAVD, Hausdorff distance, ASSD), with HD95
added; distances are in millimetres on the true, possibly anisotropic, voxel grid.

Conventions (stated once, used everywhere):

* Label 0 is background and never evaluated. A label absent from both images is
  skipped. A label absent from one image is reported with the defined values --
  Dice, Jaccard 0; TPR 0 when only the reference has it, PPV 0 when only the
  prediction has it; distances NaN -- and flagged by ``in_ref`` / ``in_pred``.
* Summaries (mean +- SE, seed 002 Table 4) average over the cases whose
  *reference* contains the label; labels only in the prediction are excluded
  (seed 001: "classes absent from the ground truth were excluded from averaging").
  A structure the prediction missed stays in the Dice mean as 0 -- dropping it
  would inflate the mean, the very thing seed 001 guards against; ``n_missed``
  counts them.
* Surfaces are the voxels of a mask removed by one erosion with the 6-connected
  cross (``mask & ~erode(mask)``), outside the image counting as background --
  the definition of MONAI's ``get_mask_edges`` and medpy. HD is the larger of the
  two directed maxima, HD95 the larger of the two directed 95th percentiles (as
  MONAI's ``compute_hausdorff_distance``), ASSD the mean of the pooled distances
  of both surfaces (Heimann et al. 2009; MONAI ``symmetric=True``).
* RAVD is the relative *absolute* volume difference ``|Vp - Vr| / Vr x 100``
  (Heimann et al. 2009, SLIVER07); the signed ``(Vp - Vr) / Vr x 100`` of seed
  004's formula is ``volume_diff_pct``.

Examples
--------
>>> ref = np.zeros((4, 4, 4), dtype=np.uint8); ref[1:3, 1:3, 1:3] = 1
>>> pred = np.zeros_like(ref); pred[1:3, 1:3, 1:2] = 1
>>> row = evaluate_segmentation(pred, ref, (1.0, 1.0, 2.0)).iloc[0]
>>> float(row["dice"]), float(row["volume_ratio"]), float(row["hd_mm"])
(0.6666666666666666, 0.5, 2.0)
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats
from scipy.spatial import cKDTree

from myoscan._typing import LabelArray, PathLike, Spacing
from myoscan.errors import InputError
from myoscan.io import NIFTI_SUFFIXES, NRRD_SUFFIXES, check_same_grid, image_suffix, read_volume, require_3d

__all__ = [
    "DISTANCE_COLUMNS",
    "OVERLAP_COLUMNS",
    "SUMMARY_METRICS",
    "EvaluateConfig",
    "as_label_array",
    "confusion_counts",
    "evaluate_files",
    "evaluate_pairs",
    "evaluate_segmentation",
    "match_folders",
    "read_pairs_csv",
    "summarize_evaluation",
    "surface_distances_mm",
]

log = logging.getLogger(__name__)

#: Percentile of the robust Hausdorff distance (HD95, seed 004 / MONAI convention).
HD_PERCENTILE = 95.0

#: Overlap and volume columns of the per-label table, in order.
OVERLAP_COLUMNS: tuple[str, ...] = (
    "dice", "jaccard", "conformity", "tpr", "tnr", "ppv",
    "volume_ratio", "ravd_pct", "volume_diff_pct",
)  # fmt: skip
#: Surface-distance columns of the per-label table, in order.
DISTANCE_COLUMNS: tuple[str, ...] = ("hd_mm", "hd95_mm", "assd_mm")
#: Metrics averaged (mean +- SE) by :func:`summarize_evaluation`.
SUMMARY_METRICS: tuple[str, ...] = OVERLAP_COLUMNS + DISTANCE_COLUMNS



@dataclass(frozen=True)
class EvaluateConfig:
    """What to evaluate.

    Parameters
    ----------
    labels : tuple of int, optional
        Evaluate only these label ids (default: every id > 0 in either image).
    distances : bool
        Compute ``hd_mm``, ``hd95_mm`` and ``assd_mm`` (the slower part); NaN when False.
    hd_percentile : float
        Percentile of the robust Hausdorff distance, in (0, 100]; names its column
        (``hd95_mm`` for 95, ``hd99_mm`` for 99).

    Raises
    ------
    InputError
        If the percentile is out of range.

    Examples
    --------
    >>> EvaluateConfig(labels=(1, 2), hd_percentile=99).hd_column
    'hd99_mm'
    """

    labels: tuple[int, ...] | None = None
    distances: bool = True
    hd_percentile: float = HD_PERCENTILE

    def __post_init__(self) -> None:
        if not 0 < self.hd_percentile <= 100:
            raise InputError(f"Hausdorff percentile must be in (0, 100], got {self.hd_percentile}")
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(sorted({int(i) for i in self.labels})))

    @property
    def hd_column(self) -> str:
        """Column of the robust Hausdorff distance, e.g. ``hd95_mm``."""
        return f"hd{self.hd_percentile:g}_mm"


#: File names recognised as label images when pairing two folders.
_IMAGE_SUFFIXES: tuple[str, ...] = NIFTI_SUFFIXES + NRRD_SUFFIXES
#: Above this label id, counting by ``np.bincount`` would allocate too much; use ``np.unique``.
_MAX_BINCOUNT_LABEL = 1 << 24
#: Voxels per block when counting: bounds the int64 temporaries of ``np.bincount`` to ~32 MB.
_CHUNK = 1 << 22


def as_label_array(array: npt.ArrayLike, *, source: str = "label image") -> LabelArray:
    """Return ``array`` as a non-negative integer label map, or raise.

    Segmentations are often stored as floats (NIfTI ``float32``); those are
    accepted when every value is a whole number.

    Parameters
    ----------
    array : (I, J, K) array_like
        Label values; 0 is background.
    source : str
        Name used in error messages (usually the file name).

    Returns
    -------
    (I, J, K) ndarray of int
        The same labels with an integer dtype (no copy when already integer).

    Raises
    ------
    InputError
        If a value is not a whole number (e.g. an intensity image was given) or is negative.

    Examples
    --------
    >>> as_label_array(np.array([0.0, 2.0, 1.0])).tolist()
    [0, 2, 1]
    """
    values = np.asarray(array)
    if values.dtype == bool:
        return values.astype(np.uint8)
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            example = values[bad].flat[0]
            raise InputError(
                f"{source}: label image has non-integer values (e.g. {example:g}); expected whole-number "
                "label ids. Is this an intensity image rather than a segmentation?"
            )
        values = values.astype(np.int64)
    elif values.dtype.kind not in "iu":
        raise InputError(f"{source}: label image has dtype {values.dtype}; expected integer label ids")
    if values.dtype.kind == "i" and values.size and values.min() < 0:
        raise InputError(f"{source}: label image has negative values (min {values.min()}); "
                         "expected label ids >= 0")
    return values


def _chunked_counts(pred: LabelArray, ref: LabelArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-id voxel counts of pred, ref and pred == ref (index = label id), in bounded-memory blocks."""
    flat_pred, flat_ref = pred.reshape(-1), ref.reshape(-1)
    size = int(max(flat_pred.max(initial=0), flat_ref.max(initial=0))) + 1
    n_pred, n_ref, n_tp = (np.zeros(size, np.int64) for _ in range(3))
    for start in range(0, flat_pred.size, _CHUNK):
        p, r = flat_pred[start:start + _CHUNK], flat_ref[start:start + _CHUNK]
        n_pred += np.bincount(p, minlength=size)
        n_ref += np.bincount(r, minlength=size)
        n_tp += np.bincount(p[p == r], minlength=size)
    return n_pred, n_ref, n_tp


def confusion_counts(pred: LabelArray, ref: LabelArray) -> pd.DataFrame:
    """True/false positive/negative voxel counts of every non-zero label, in one blocked pass.

    Parameters
    ----------
    pred, ref : (I, J, K) ndarray of int
        Predicted and reference label maps of the same shape, ids >= 0.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``label_id`` (every id > 0 present in either image, ascending),
        columns ``tp_voxels``, ``fp_voxels``, ``fn_voxels``, ``tn_voxels``.

    Examples
    --------
    >>> confusion_counts(np.array([0, 1, 1, 2]), np.array([1, 1, 0, 0])).to_dict("index")[1]
    {'tp_voxels': 1, 'fp_voxels': 1, 'fn_voxels': 1, 'tn_voxels': 1}
    """
    # Why not one bincount over pred * K + ref: only the diagonal of that K x K confusion
    # matrix is needed (FP and FN follow from the marginals), and K**2 bins explode for
    # large label ids. Counting pred, ref and pred[pred == ref] gives every label's counts
    # at once with O(K) memory; blocks of _CHUNK voxels bound the int64 temporaries.
    top = int(max(pred.max(initial=0), ref.max(initial=0)))
    if top < _MAX_BINCOUNT_LABEL:
        n_pred, n_ref, n_tp = _chunked_counts(pred, ref)
        ids = np.flatnonzero((n_pred > 0) | (n_ref > 0))
        ids = ids[ids > 0]
        tp, fp, fn = n_tp[ids], n_pred[ids] - n_tp[ids], n_ref[ids] - n_tp[ids]
    else:  # sparse huge ids: compact them with np.unique (sorts, but stays exact)
        ids, codes = np.unique(np.concatenate([pred.ravel(), ref.ravel()]), return_inverse=True)
        code_pred, code_ref = codes[: pred.size], codes[pred.size:]
        n_pred, n_ref, n_tp = _chunked_counts(code_pred, code_ref)
        keep = ids > 0
        ids, tp = ids[keep], n_tp[keep]
        fp, fn = n_pred[keep] - tp, n_ref[keep] - tp
    return pd.DataFrame(
        {"tp_voxels": tp, "fp_voxels": fp, "fn_voxels": fn, "tn_voxels": pred.size - tp - fp - fn},
        index=pd.Index(ids, name="label_id"),
    )


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with NaN where the denominator is 0."""
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _overlap_metrics(counts: pd.DataFrame) -> pd.DataFrame:
    """Overlap and volume metrics from confusion counts (vectorised over labels)."""
    tp, fp, fn, tn = (counts[c].to_numpy(dtype=float) for c in ("tp_voxels", "fp_voxels", "fn_voxels",
                                                                 "tn_voxels"))
    n_pred, n_ref = tp + fp, tp + fn
    volume_diff_pct = _ratio(n_pred - n_ref, n_ref) * 100.0
    return pd.DataFrame(
        {
            "dice": _ratio(2 * tp, 2 * tp + fp + fn),
            "jaccard": _ratio(tp, tp + fp + fn),
            # Conformity (Chang et al. 2009; seed 002) = 1 - (FP + FN) / TP = (3 Dice - 2) / Dice;
            # undefined (-inf) without overlap, reported as NaN.
            "conformity": 1.0 - _ratio(fp + fn, tp),
            "tpr": _ratio(tp, n_ref),
            "tnr": _ratio(tn, tn + fp),
            "ppv": _ratio(tp, n_pred),
            "volume_ratio": _ratio(n_pred, n_ref),
            "ravd_pct": np.abs(volume_diff_pct),
            "volume_diff_pct": volume_diff_pct,
        },
        index=counts.index,
    )


def _surface_points_mm(labels: LabelArray, spacing_mm: Spacing) -> dict[int, np.ndarray]:
    """Surface voxel centres (mm) of every label > 0, from one pass over the label map.

    A voxel is on the surface of its label when one of its six face neighbours has another
    label or lies outside the image: exactly the voxels one erosion with the 6-connected
    cross (border value 0) removes from that label's mask.
    """
    surface = np.zeros(labels.shape, dtype=bool)
    for axis in range(labels.ndim):
        lower = [slice(None)] * labels.ndim
        upper = [slice(None)] * labels.ndim
        lower[axis], upper[axis] = slice(None, -1), slice(1, None)
        differs = labels[tuple(lower)] != labels[tuple(upper)]
        surface[tuple(lower)] |= differs
        surface[tuple(upper)] |= differs
        first, last = [slice(None)] * labels.ndim, [slice(None)] * labels.ndim
        first[axis], last[axis] = 0, -1
        surface[tuple(first)] = True
        surface[tuple(last)] = True
    index = np.flatnonzero(surface.ravel() & (labels.ravel() > 0))
    owner = labels.ravel()[index]
    order = np.argsort(owner, kind="stable")
    index, owner = index[order], owner[order]
    coords = np.column_stack(np.unravel_index(index, labels.shape)) * np.asarray(spacing_mm, dtype=float)
    ids, starts = np.unique(owner, return_index=True)
    bounds = np.append(starts, owner.size)
    return {int(i): coords[bounds[k]:bounds[k + 1]] for k, i in enumerate(ids)}


def _nearest_mm(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Euclidean distance from each point to its nearest target (exact, KD-tree)."""
    return cKDTree(targets).query(points, k=1)[0]


def surface_distances_mm(
    pred_mask: npt.NDArray[np.bool_],
    ref_mask: npt.NDArray[np.bool_],
    spacing_mm: Spacing,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Distances from each surface voxel of one mask to the other mask's surface.

    Parameters
    ----------
    pred_mask, ref_mask : (I, J, K) ndarray of bool
        Two non-empty binary masks of the same shape.
    spacing_mm : tuple of 3 float
        Voxel size along I, J, K in millimetres.

    Returns
    -------
    pred_to_ref_mm : (P,) ndarray of float
        For each of the P surface voxels of ``pred_mask``, the Euclidean distance
        in mm to the nearest surface voxel of ``ref_mask``.
    ref_to_pred_mm : (R,) ndarray of float
        The same from ``ref_mask`` to ``pred_mask``.

    Raises
    ------
    InputError
        If a mask is empty.

    Examples
    --------
    >>> a = np.zeros((1, 1, 5), bool); a[0, 0, 0] = True
    >>> b = np.zeros((1, 1, 5), bool); b[0, 0, 3] = True
    >>> [d.tolist() for d in surface_distances_mm(a, b, (1.0, 1.0, 2.0))]
    [[6.0], [6.0]]
    """
    surface_pred = _surface_points_mm(np.asarray(pred_mask, dtype=np.uint8), spacing_mm)
    surface_ref = _surface_points_mm(np.asarray(ref_mask, dtype=np.uint8), spacing_mm)
    if 1 not in surface_pred or 1 not in surface_ref:
        raise InputError("surface distances need two non-empty masks")
    return _nearest_mm(surface_pred[1], surface_ref[1]), _nearest_mm(surface_ref[1], surface_pred[1])


def _distance_metrics(pred: LabelArray, ref: LabelArray, label_ids: Iterable[int],
                      spacing_mm: Spacing, hd_percentile: float) -> pd.DataFrame:
    """HD, HD-percentile and ASSD (mm) of labels present in both images."""
    # Why not MONAI's compute_hausdorff_distance: it wants one-hot tensors of the whole
    # volume (one float channel per label) and erodes each class over its bounding box.
    # Here one pass per image finds the surface voxels of all labels at once, and each
    # label costs a KD-tree query over its surface points only -- independent of how
    # far apart its pieces lie (same definitions; checked against MONAI in the tests).
    surface_pred = _surface_points_mm(pred, spacing_mm)
    surface_ref = _surface_points_mm(ref, spacing_mm)
    rows = {}
    for label in label_ids:
        d_pred = _nearest_mm(surface_pred[label], surface_ref[label])
        d_ref = _nearest_mm(surface_ref[label], surface_pred[label])
        rows[label] = (
            max(d_pred.max(), d_ref.max()),
            max(np.percentile(d_pred, hd_percentile), np.percentile(d_ref, hd_percentile)),
            (d_pred.sum() + d_ref.sum()) / (d_pred.size + d_ref.size),
        )
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(DISTANCE_COLUMNS), dtype=float)


def evaluate_segmentation(
    pred: npt.ArrayLike,
    ref: npt.ArrayLike,
    spacing_mm: Spacing,
    *,
    names: Mapping[int, str] | None = None,
    config: EvaluateConfig | None = None,
) -> pd.DataFrame:
    """Accuracy metrics of a predicted against a reference label map, one row per label.

    Parameters
    ----------
    pred, ref : (I, J, K) array_like of int
        Predicted and reference label maps on the same grid; 0 is background.
        Float arrays are accepted when all values are whole numbers.
    spacing_mm : tuple of 3 float
        Voxel size along I, J, K in millimetres (used for volumes and distances).
    names : mapping of int to str, optional
        Structure name of each label id; ``label_<id>`` for ids it lacks.
        (:func:`evaluate_files` defaults to the segment names of a Slicer ``.seg.nrrd``.)
    config : EvaluateConfig, optional
        Label subset, whether to compute distances, Hausdorff percentile.

    Returns
    -------
    pandas.DataFrame
        One row per label present in either image: ``label_id``, ``name``, ``in_ref``,
        ``in_pred``, ``n_voxels_ref``, ``n_voxels_pred``, ``volume_ref_ml``,
        ``volume_pred_ml``, ``tp_voxels``, ``fp_voxels``, ``fn_voxels``, ``tn_voxels``,
        then :data:`OVERLAP_COLUMNS` (fractions in [0, 1] except ``conformity`` <= 1,
        ``volume_ratio`` >= 0 and the ``_pct`` columns) and ``hd_mm``, ``hd95_mm``,
        ``assd_mm``. Undefined values are NaN (see the module docstring).

    Raises
    ------
    InputError
        If the shapes differ, a label value is not a whole number or is negative,
        or the spacing is not three positive numbers.

    Examples
    --------
    >>> ref = np.array([[[1, 1, 0, 2]]]); pred = np.array([[[1, 0, 0, 3]]])
    >>> evaluate_segmentation(pred, ref, (1, 1, 1))[["label_id", "dice", "hd_mm"]].to_dict("list")
    {'label_id': [1, 2, 3], 'dice': [0.6666666666666666, 0.0, 0.0], 'hd_mm': [1.0, nan, nan]}
    """
    pred_arr = as_label_array(pred, source="prediction")
    ref_arr = as_label_array(ref, source="reference")
    if pred_arr.shape != ref_arr.shape:
        raise InputError(f"prediction and reference differ in shape: {pred_arr.shape} vs {ref_arr.shape}; "
                         "resample the prediction onto the reference grid first")
    spacing = tuple(float(s) for s in spacing_mm)
    if len(spacing) != pred_arr.ndim or not all(s > 0 and math.isfinite(s) for s in spacing):
        raise InputError(f"spacing must be {pred_arr.ndim} positive numbers in mm, got {spacing_mm}")
    config = config or EvaluateConfig()

    counts = confusion_counts(pred_arr, ref_arr)
    if config.labels is not None:
        absent = sorted(set(config.labels) - set(counts.index))
        if absent:  # skipped as the module says, but a mistyped id should not pass silently
            warnings.warn(f"label id(s) {', '.join(map(str, absent))} of the requested labels are in neither "
                          "image; skipped", stacklevel=2)
        counts = counts.loc[counts.index.intersection(pd.Index(config.labels))]
    voxel_ml = float(np.prod(spacing)) / 1000.0
    n_ref = counts["tp_voxels"] + counts["fn_voxels"]
    n_pred = counts["tp_voxels"] + counts["fp_voxels"]
    table = pd.DataFrame(
        {
            "name": [(names or {}).get(int(i), f"label_{i}") for i in counts.index],
            "in_ref": n_ref > 0,
            "in_pred": n_pred > 0,
            "n_voxels_ref": n_ref,
            "n_voxels_pred": n_pred,
            "volume_ref_ml": n_ref * voxel_ml,
            "volume_pred_ml": n_pred * voxel_ml,
        },
        index=counts.index,
    ).join(counts).join(_overlap_metrics(counts))
    both = table.index[table["in_ref"] & table["in_pred"]]
    if config.distances:
        table = table.join(_distance_metrics(pred_arr, ref_arr, both, spacing, config.hd_percentile))
    else:
        table = table.reindex(columns=[*table.columns, *DISTANCE_COLUMNS])
    table[list(DISTANCE_COLUMNS)] = table[list(DISTANCE_COLUMNS)].astype(float)
    table = table.rename(columns={"hd95_mm": config.hd_column})
    return table.reset_index()


def evaluate_files(
    pred_path: PathLike,
    ref_path: PathLike,
    *,
    names: Mapping[int, str] | None = None,
    config: EvaluateConfig | None = None,
) -> pd.DataFrame:
    """Read a predicted and a reference label image and evaluate them.

    Parameters
    ----------
    pred_path, ref_path : str or os.PathLike
        3D label images in any format :func:`myoscan.io.read_volume` reads.
    names, config
        As in :func:`evaluate_segmentation`.

    Returns
    -------
    pandas.DataFrame
        The table of :func:`evaluate_segmentation`, using the reference's spacing.

    Raises
    ------
    InputError
        If a file cannot be read or holds non-integer labels.
    GeometryMismatchError
        If the two images are not on the same grid (shape, spacing, origin, direction).

    Examples
    --------
    >>> evaluate_files("pred.nii.gz", "ref.nii.gz")  # doctest: +SKIP
    """
    pred, ref = require_3d(read_volume(pred_path)), require_3d(read_volume(ref_path))
    check_same_grid(pred, ref)
    pred_arr = as_label_array(pred.array, source=pred.name)
    ref_arr = as_label_array(ref.array, source=ref.name)
    pred_names, ref_names = pred.meta.get("segment_names") or {}, ref.meta.get("segment_names") or {}
    clashes = [f"{i}: {pred_names[i]!r} vs {ref_names[i]!r}"
               for i in sorted(pred_names.keys() & ref_names.keys()) if pred_names[i] != ref_names[i]]
    if clashes:  # Slicer numbers segments per file: the same id may be another structure
        warnings.warn(f"{pred.name} and {ref.name} name some label ids differently "
                      f"({'; '.join(clashes[:5])}); labels are compared by id", stacklevel=2)
    if names is None:
        names = {**pred_names, **ref_names} or None
    return evaluate_segmentation(pred_arr, ref_arr, ref.spacing_mm, names=names, config=config)


def _image_stem(path: Path) -> str | None:
    """File name without an image extension, or None for non-image files."""
    suffix = image_suffix(path)
    return path.name[: -len(suffix)] if suffix in _IMAGE_SUFFIXES else None


def match_folders(pred_dir: PathLike, ref_dir: PathLike) -> pd.DataFrame:
    """Pair label images of two folders by file name (``sub-01.nii.gz`` with ``sub-01.nii.gz``).

    Parameters
    ----------
    pred_dir, ref_dir : str or os.PathLike
        Folders of predicted and reference label images (NIfTI, NRRD, MetaImage).
        Pairs are matched on the name without extension, so formats may differ.

    Returns
    -------
    pandas.DataFrame
        Columns ``subject`` (the shared name), ``pred``, ``ref`` (paths), sorted by subject.

    Raises
    ------
    InputError
        If a folder is missing or no file name occurs in both.

    Warns
    -----
    UserWarning
        Naming the files found in only one folder (they are left out).

    Examples
    --------
    >>> match_folders("predictions/", "ground_truth/")  # doctest: +SKIP
    """
    found = []
    for folder in (Path(pred_dir), Path(ref_dir)):
        if not folder.is_dir():
            raise InputError(f"{folder}: not a folder; pass two folders of label images or --pairs CSV")
        found.append({stem: p for p in sorted(folder.iterdir()) if (stem := _image_stem(p)) is not None})
    preds, refs = found
    common = sorted(preds.keys() & refs.keys())
    if not common:
        raise InputError(f"no label image in {pred_dir} has a namesake in {ref_dir} "
                         f"({len(preds)} vs {len(refs)} images); name the pairs alike or use --pairs")
    for folder, only in ((pred_dir, preds.keys() - refs.keys()), (ref_dir, refs.keys() - preds.keys())):
        if only:
            warnings.warn(f"{len(only)} image(s) in {folder} have no counterpart and are left out: "
                          f"{', '.join(sorted(only)[:20])}", stacklevel=2)
    return pd.DataFrame({"subject": common, "pred": [preds[s] for s in common],
                         "ref": [refs[s] for s in common]})


def read_pairs_csv(path: PathLike) -> pd.DataFrame:
    """Read a CSV/TSV listing ``subject, pred, ref``; relative paths are taken from its folder.

    Parameters
    ----------
    path : str or os.PathLike
        Table with columns ``pred`` and ``ref`` and optionally ``subject`` (default:
        the reference file name without extension).

    Returns
    -------
    pandas.DataFrame
        Columns ``subject``, ``pred``, ``ref`` (absolute :class:`pathlib.Path`).

    Raises
    ------
    InputError
        If columns are missing, the table is empty or a subject is listed twice.

    Examples
    --------
    >>> read_pairs_csv("pairs.csv")  # doctest: +SKIP
    """
    from myoscan.outputs import read_table

    source = Path(path)
    table = read_table(source)
    missing = [c for c in ("pred", "ref") if c not in table.columns]
    if missing or table.empty:
        raise InputError(f"{source.name}: expected columns subject, pred, ref with one row per case; "
                         f"got columns {list(table.columns)} and {len(table)} rows")
    base = source.resolve().parent
    pairs = pd.DataFrame({
        c: [p if (p := Path(str(v))).is_absolute() else base / p for v in table[c]] for c in ("pred", "ref")
    })
    if "subject" in table.columns:
        pairs.insert(0, "subject", table["subject"].astype(str).to_numpy())
    else:
        pairs.insert(0, "subject", [_image_stem(p) or p.stem for p in pairs["ref"]])
    duplicated = pairs["subject"][pairs["subject"].duplicated()].unique()
    if len(duplicated):
        raise InputError(f"{source.name}: subject(s) listed more than once: {', '.join(duplicated[:10])}")
    return pairs


def evaluate_pairs(
    pairs: pd.DataFrame,
    *,
    names: Mapping[int, str] | None = None,
    config: EvaluateConfig | None = None,
    show_progress: bool = True,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Evaluate many cases; a case that fails is reported and skipped.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Columns ``subject``, ``pred``, ``ref`` as returned by :func:`match_folders`
        or :func:`read_pairs_csv`.
    names, config
        As in :func:`evaluate_segmentation`.
    show_progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    table : pandas.DataFrame
        The per-label tables of all cases with a leading ``subject`` column.
    failures : dict of str to str
        Subject -> one-line reason for every case that could not be evaluated
        (missing or unreadable file, grids that differ, non-integer labels).

    Examples
    --------
    >>> table, failures = evaluate_pairs(match_folders("pred/", "ref/"))  # doctest: +SKIP
    """
    from myoscan.progress import progress

    tables, failures = [], {}
    rows = pairs[["subject", "pred", "ref"]].itertuples(index=False)
    for subject, pred_path, ref_path in progress(rows, total=len(pairs), desc="evaluate", unit="case",
                                                 enabled=show_progress):
        try:
            table = evaluate_files(pred_path, ref_path, names=names, config=config)
        except InputError as exc:
            failures[str(subject)] = str(exc)
            log.warning("%s: skipped: %s", subject, exc)
            continue
        table.insert(0, "subject", str(subject))
        tables.append(table)
    if not tables:
        return pd.DataFrame(columns=["subject"]), failures
    return pd.concat(tables, ignore_index=True), failures


def _mean_se(values: pd.Series) -> tuple[float, float]:
    """Mean and standard error (SD / sqrt(n), ddof 1) ignoring NaN; NaN when undefined."""
    finite = values.dropna().to_numpy(dtype=float)
    if finite.size == 0:
        return math.nan, math.nan
    se = finite.std(ddof=1) / math.sqrt(finite.size) if finite.size > 1 else math.nan
    return float(finite.mean()), float(se)


def _summary_row(group: pd.DataFrame, metrics: Sequence[str], volume_correlation: bool) -> dict[str, float]:
    """One summary row: case counts, mean and SE of each metric, volume correlation."""
    scored = group[group["in_ref"]]
    row: dict[str, float] = {
        "n_cases": len(scored),
        "n_missed": int((~scored["in_pred"]).sum()),
        "n_spurious": int((~group["in_ref"]).sum()),
    }
    for metric in metrics:
        row[f"{metric}_mean"], row[f"{metric}_se"] = _mean_se(scored[metric])
    row["volume_correlation_r"] = row["volume_correlation_p"] = math.nan
    volumes = scored[["volume_pred_ml", "volume_ref_ml"]]
    if volume_correlation and len(volumes) >= 3 and volumes.nunique().min() > 1:
        result = stats.pearsonr(volumes["volume_pred_ml"], volumes["volume_ref_ml"])
        row["volume_correlation_r"] = float(result.statistic)
        row["volume_correlation_p"] = float(result.pvalue)
    return row


def summarize_evaluation(table: pd.DataFrame) -> pd.DataFrame:
    """Mean +- SE of every metric per label over cases (seed 002 Table 4) and volume correlation.

    Parameters
    ----------
    table : pandas.DataFrame
        Per-label rows from :func:`evaluate_segmentation` or :func:`evaluate_pairs`
        (one case or many).

    Returns
    -------
    pandas.DataFrame
        One row per label, then a row ``name == "all_labels"`` (``label_id`` missing)
        pooling every (case, label) row. Columns: ``label_id``, ``name``, ``n_cases``
        (cases whose reference has the label; the means run over these), ``n_missed``
        (of those, cases the prediction missed; distances exclude them), ``n_spurious``
        (cases with the label only in the prediction; excluded), ``<metric>_mean`` and
        ``<metric>_se`` (SD / sqrt(n), NaN for n < 2) for every metric, and
        ``volume_correlation_r`` / ``volume_correlation_p`` (Pearson, predicted vs
        reference volume across cases, seed 004; NaN with fewer than 3 cases).

    Examples
    --------
    >>> ref = np.array([[[1, 1, 0, 0]]]); pred = np.array([[[1, 0, 0, 0]]])
    >>> s = summarize_evaluation(evaluate_segmentation(pred, ref, (1, 1, 1)))
    >>> s[["name", "n_cases", "dice_mean"]].round(3).to_dict("list")
    {'name': ['label_1', 'all_labels'], 'n_cases': [1, 1], 'dice_mean': [0.667, 0.667]}
    """
    metrics = [c for c in table.columns if c in SUMMARY_METRICS or (c.startswith("hd") and c.endswith("_mm"))]
    rows = []
    for (label_id, name), group in table.groupby(["label_id", "name"], sort=True):
        rows.append({"label_id": label_id, "name": name, **_summary_row(group, metrics, True)})
    rows.append({"label_id": pd.NA, "name": "all_labels", **_summary_row(table, metrics, False)})
    summary = pd.DataFrame(rows)
    summary["label_id"] = summary["label_id"].astype("Int64")
    return summary
