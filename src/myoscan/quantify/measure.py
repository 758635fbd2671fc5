"""The quantify entry points: validate inputs, one pass over the volume, tidy tables.

:func:`measure` does the work once and returns :class:`Measurements`, from which
:meth:`~Measurements.label_table` (one row per label) and :meth:`~Measurements.slice_table`
(one row per label and slice) are built. :func:`quantify` and :func:`quantify_slices` are
the one-call forms.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from myoscan.errors import InputError
from myoscan.io import Volume, check_same_grid, require_3d
from myoscan.quantify import core
from myoscan.quantify.clustering import cluster_label_fat_pct
from myoscan.quantify.config import MUSCLE_DENSITY_G_ML, QuantifyConfig
from myoscan.quantify.ct import ct_channels, ct_columns
from myoscan.quantify.dixon_metrics import (
    dixon_channels,
    dixon_columns,
    fat_fraction_channels,
    fat_fraction_columns,
    fat_fraction_scale,
)
from myoscan.quantify.identity import label_identity
from myoscan.quantify.slab import SliceRange

__all__ = ["Measurements", "measure", "quantify", "quantify_slices"]

log = logging.getLogger(__name__)

_CM2_PER_MM2 = 0.01


@dataclass(frozen=True)
class _Inputs:
    """Validated arrays of one run, cropped to the slab, by role."""

    rows: core.LabelRows
    images: dict[str, np.ndarray]
    files: dict[str, str]
    slice_axis: int
    first_slice: int


@dataclass(frozen=True)
class Measurements:
    """Everything one quantify run measured; build tables with the methods.

    Attributes
    ----------
    identity : pandas.DataFrame
        Identity columns of the reported labels (one row each).
    rows : ndarray of int
        Accumulator row of each reported label.
    sums, eroded : dict of str to (n_rows, n_slices) ndarray
        Channel sums per label row and slice of the slab, over the whole and the eroded masks.
    slice_index, slice_z_mm : (n_slices,) ndarray
        Index (in the full image) and world z of every slab slice.
    voxel_volume_ml, pixel_area_cm2 : float
        Size of one voxel and of one voxel face in a slice.
    per_label : dict of str to (n_rows,) ndarray
        Statistics that are not sums (medians, clustering fat %).
    modalities : tuple of str
        Inputs given: ``dixon``, ``fat_fraction``, ``ct``, ``image``.
    csa_slice : int or None
        Slab column of ``csa_cm2_at_slice``.
    density_g_ml : float
        Muscle density for ``mass_g``.
    """

    identity: pd.DataFrame
    rows: np.ndarray
    sums: dict[str, np.ndarray]
    eroded: dict[str, np.ndarray]
    slice_index: np.ndarray
    slice_z_mm: np.ndarray
    voxel_volume_ml: float
    pixel_area_cm2: float
    per_label: dict[str, np.ndarray] = field(default_factory=dict)
    modalities: tuple[str, ...] = ()
    csa_slice: int | None = None
    density_g_ml: float = MUSCLE_DENSITY_G_ML

    def _sum_columns(self, sums: dict[str, np.ndarray], eroded: dict[str, np.ndarray]) -> dict:
        columns: dict[str, np.ndarray] = {}
        if "dixon" in self.modalities:
            columns.update(dixon_columns(sums, eroded))
        if "fat_fraction" in self.modalities:
            columns.update(fat_fraction_columns(sums))
        if "ct" in self.modalities:
            columns.update(ct_columns(sums, self.voxel_volume_ml))
        return columns

    def label_table(self) -> pd.DataFrame:
        """One row per label: identity, size, and every metric of the given inputs.

        Returns
        -------
        pandas.DataFrame
            Columns in the order of the metric-table contract (docs/developing.md).
        """
        pick = {name: values[self.rows] for name, values in self.sums.items()}
        totals = {name: values.sum(axis=1) for name, values in pick.items()}
        eroded = {name: values[self.rows].sum(axis=1) for name, values in self.eroded.items()}
        n = totals["n"]
        table = self.identity.drop(columns="input_name").copy()
        table["n_voxels"] = np.rint(n).astype(np.int64)
        table["volume_ml"] = n * self.voxel_volume_ml
        is_muscle = (table["tissue"] == "muscle").to_numpy()
        table["mass_g"] = np.where(is_muscle, table["volume_ml"] * self.density_g_ml, np.nan)
        table["max_csa_cm2"] = pick["n"].max(axis=1) * self.pixel_area_cm2
        if self.csa_slice is not None:
            table["csa_cm2_at_slice"] = pick["n"][:, self.csa_slice] * self.pixel_area_cm2
        medians = {k: v[self.rows] for k, v in self.per_label.items()}
        metrics = {**self._sum_columns(totals, eroded), **medians}
        for column in _METRIC_ORDER:
            if column in metrics:
                table[column] = metrics[column]
        if "n_voxels_eroded" in table:
            table["n_voxels_eroded"] = table["n_voxels_eroded"].astype("Int64")
        table["input_name"] = self.identity["input_name"].to_numpy()
        return table

    def slice_table(self) -> pd.DataFrame:
        """One row per label and slice containing it: CSA and per-slice means (fat, HU).

        Returns
        -------
        pandas.DataFrame
            Identity columns, ``slice_index`` (in the full image), ``z_mm`` (world z of the
            slice centre), ``n_voxels``, ``csa_cm2`` and the per-slice metrics.
        """
        pick = {name: values[self.rows] for name, values in self.sums.items()}
        eroded = {name: values[self.rows] for name, values in self.eroded.items()}
        label_pos, slice_pos = np.nonzero(pick["n"] > 0)
        table = self.identity.drop(columns="input_name").iloc[label_pos].reset_index(drop=True)
        table["slice_index"] = self.slice_index[slice_pos]
        table["z_mm"] = self.slice_z_mm[slice_pos]
        n = pick["n"][label_pos, slice_pos]
        table["n_voxels"] = np.rint(n).astype(np.int64)
        table["csa_cm2"] = n * self.pixel_area_cm2
        per_slice = {k: v[label_pos, slice_pos] for k, v in pick.items()}
        per_slice_eroded = {k: v[label_pos, slice_pos] for k, v in eroded.items()}
        for column, values in self._sum_columns(per_slice, per_slice_eroded).items():
            table[column] = values
        if "n_voxels_eroded" in table:
            table["n_voxels_eroded"] = table["n_voxels_eroded"].astype("Int64")
        return table


#: Metric columns in table order (after identity, n_voxels, volume_ml, mass_g, CSA).
_METRIC_ORDER = (
    "imf_pct", "imf_uneroded_pct", "n_voxels_eroded", "voxelwise_ff_mean_pct",
    "ff_mean_pct", "ff_median_pct", "ff_mean_below50_pct",
    "mean_hu", "sd_hu", "median_hu", "lean_muscle_pct", "imat_volume_ml",
    "fat_pct_gmm", "undefined_pct_gmm", "fat_pct_kmeans", "undefined_pct_kmeans",
)


# --------------------------------------------------------------------------- validation


def _prepare(
    labels: Volume,
    images: Mapping[str, Volume | None],
    slab: SliceRange | None,
    label_z_ranges: Mapping[int, tuple[float, float]] | None,
    config: QuantifyConfig,
) -> _Inputs:
    """Check shapes, grids and values; apply per-label z ranges; crop everything to the slab."""
    require_3d(labels)
    given = {role: require_3d(vol) for role, vol in images.items() if vol is not None}
    for vol in given.values():
        check_same_grid(labels, vol)
    axis = core.slice_axis_of(labels.affine) if config.slice_axis is None else config.slice_axis
    rows = core.label_rows(labels.array, name=labels.name)
    if label_z_ranges:
        rows = _restrict_labels_to_z(rows, labels, axis, label_z_ranges)
    n_slices = labels.spatial_shape[axis]
    window = (slab or SliceRange(0, n_slices)).clipped(n_slices, name=labels.name)
    index = [slice(None)] * 3
    index[axis] = slice(window.start, window.stop)
    crop = tuple(index)
    arrays = {role: vol.array[crop] for role, vol in given.items()}
    for role, array in arrays.items():
        if array.dtype.kind not in "iuf":
            raise InputError(f"{given[role].name}: expected a numeric image, got dtype {array.dtype}")
    cropped = core.LabelRows(rows.rows[crop], rows.row_ids)
    _check_non_negative(cropped.rows, arrays, given, ("fat", "water"))
    return _Inputs(cropped, arrays, {role: vol.name for role, vol in given.items()}, axis, window.start)


def _restrict_labels_to_z(rows: core.LabelRows, labels: Volume, axis: int,
                          ranges: Mapping[int, tuple[float, float]]) -> core.LabelRows:
    """Set each label to background outside its own world z range (e.g. its vertebral levels)."""
    array = rows.rows.copy()
    z = core.slice_centres_z_mm(labels.affine, labels.spatial_shape, axis)
    row_of = {int(i): r for r, i in enumerate(rows.row_ids) if r}
    for label_id, (low, high) in ranges.items():
        if label_id not in row_of:
            continue
        outside = np.flatnonzero((z < min(low, high) - 1e-3) | (z > max(low, high) + 1e-3))
        moved = np.moveaxis(array, axis, 0)
        part = moved[outside]
        part[part == row_of[label_id]] = 0
        moved[outside] = part
    return core.LabelRows(array, rows.row_ids)


def _check_non_negative(rows: np.ndarray, arrays: Mapping[str, np.ndarray], volumes: Mapping[str, Volume],
                        roles: tuple[str, ...]) -> None:
    """Fat and water are magnitudes: negative voxels inside the labels are an error."""
    for role in roles:
        if role not in arrays or arrays[role].dtype.kind == "u":
            continue
        array = arrays[role]
        with warnings.catch_warnings():  # an all-NaN image is reported after the pass
            warnings.simplefilter("ignore", RuntimeWarning)
            if not np.nanmin(array) < 0:  # fast path: nothing negative anywhere
                continue
        inside = array[rows > 0]
        bad = int(np.count_nonzero(inside < 0))
        if bad:
            raise InputError(
                f"{volumes[role].name}: {bad} voxels inside the labels are negative (min {inside.min():g}); "
                f"{role} must be a non-negative magnitude image - check that fat and water are not "
                "phase or difference images"
            )


def _check_finite(sums: Mapping[str, np.ndarray], row_ids: np.ndarray, files: Mapping[str, str],
                  channel_roles: Mapping[str, str]) -> None:
    """NaN/Inf voxels inside labels poison the sums: name the image and the labels."""
    for channel, role in channel_roles.items():
        totals = sums[channel][1:].sum(axis=1)
        bad = np.flatnonzero(~np.isfinite(totals)) + 1
        if bad.size:
            ids = ", ".join(str(int(i)) for i in row_ids[bad][:10])
            raise InputError(
                f"{files[role]}: NaN or Inf voxels inside label(s) {ids}; fix the image or mask those "
                "voxels out of the segmentation"
            )


def _warn_invalid_fat_fraction(sums: Mapping[str, np.ndarray], inputs: _Inputs) -> None:
    """Say which labels hold voxels without a fat fraction (NaN below the Dixon noise floor)."""
    if "n_ff_invalid" not in sums:
        return
    invalid = sums["n_ff_invalid"][1:].sum(axis=1)
    rows = np.flatnonzero(invalid) + 1
    if rows.size:
        total = sums["n"][1:].sum(axis=1)[rows - 1]
        detail = ", ".join(f"{int(inputs.rows.row_ids[r])} ({100 * invalid[r - 1] / t:.1f} %)"
                           for r, t in zip(rows[:10], total[:10], strict=False))
        warnings.warn(
            f"{inputs.files['ff']}: voxels without a fat fraction (NaN) inside label(s) {detail}; "
            "they are left out of the ff_* metrics", stacklevel=3,
        )


# --------------------------------------------------------------------------- measure


def _ff_scale(inputs: _Inputs, config: QuantifyConfig) -> float | None:
    """Factor from the fat-fraction map's unit to percent (``auto``: judged on the whole map)."""
    if "ff" not in inputs.images:
        return None
    image = inputs.images["ff"]
    step = max(1, round((image.size / 1e6) ** (1 / 3)))  # about a million voxels are plenty
    sample = image[::step, ::step, ::step].astype(np.float64).ravel()
    return fat_fraction_scale(sample, config.fat_fraction_unit, name=inputs.files["ff"])


def _channels(inputs: _Inputs, config: QuantifyConfig, ff_scale: float | None
              ) -> tuple[dict, dict[str, str], list[str]]:
    """Channels to accumulate, the image role each reads, and the modalities."""
    images, channels, roles, modalities = inputs.images, {}, {}, []
    if "fat" in images:
        channels.update(dixon_channels())
        roles.update(fat="fat", water="water", ff_voxel="fat")
        modalities.append("dixon")
    if ff_scale is not None:
        channels.update(fat_fraction_channels(ff_scale, config.ff_viable_below_pct))
        roles.update(ff="ff", n_ff_invalid="ff", ff_below="ff", n_ff_below="ff")
        modalities.append("fat_fraction")
    if "ct" in images:
        channels.update(ct_channels(config.ct_muscle_hu, config.ct_adipose_hu))
        roles.update(hu="ct", hu2="ct")
        modalities.append("ct")
    if "image" in images:
        modalities.append("image")
    return channels, roles, modalities


def _eroded_sums(inputs: _Inputs, sums: dict[str, np.ndarray], config: QuantifyConfig,
                 show_progress: bool) -> dict[str, np.ndarray]:
    """Sum n, fat and water over the eroded masks: whole-mask sums minus the rim sums."""
    keys = ("n", "fat", "water")
    if config.erosion_iterations == 0:
        return {k: sums[k] for k in keys}
    rims = core.erosion_rims(inputs.rows.rows, config.erosion_iterations,
                             border_outside=config.erode_at_image_border, show_progress=show_progress)
    channels = {k: v for k, v in dixon_channels().items() if k in keys}
    rim = core.rim_sums(rims, inputs.rows.n_rows, inputs.slice_axis,
                        {k: inputs.images[k] for k in ("fat", "water")}, channels)
    eroded = {k: sums[k] - rim[k] for k in keys}
    emptied = np.flatnonzero((sums["n"].sum(axis=1) > 0) & (eroded["n"].sum(axis=1) == 0))
    if emptied.size:
        warnings.warn(
            f"erosion by {config.erosion_iterations} iteration(s) removes every voxel of label(s) "
            f"{', '.join(map(str, inputs.rows.row_ids[emptied]))}; their imf_pct is NaN "
            "(imf_uneroded_pct is still reported; lower --erode to keep them)", stacklevel=3,
        )
    return eroded


def _per_label_stats(inputs: _Inputs, counts: np.ndarray, scale_ff: float | None, config: QuantifyConfig,
                     show_progress: bool) -> dict[str, np.ndarray]:
    """Medians (CT, FF) and clustering fat % from one sort of the foreground by label."""
    wanted = [r for r in ("ct", "ff", "image") if r in inputs.images]
    if not wanted:
        return {}
    segments = core.segment_values(inputs.rows.rows, counts)
    out: dict[str, np.ndarray] = {}
    if "ct" in wanted:
        out["median_hu"] = core.segment_medians(segments.values(inputs.images["ct"]), segments.bounds)
    if "ff" in wanted:
        out["ff_median_pct"] = core.segment_medians(segments.values(inputs.images["ff"]),
                                                    segments.bounds, skip_nan=True) * scale_ff
    if "image" in wanted:
        values = segments.values(inputs.images["image"])
        if not np.isfinite(values).all():
            raise InputError(f"{inputs.files['image']}: NaN or Inf voxels inside the labels; fix the image")
        fit = {"n_init": config.cluster_n_init, "max_iter": config.cluster_max_iter,
               "tol": config.cluster_tol, "max_voxels": config.cluster_max_voxels, "seed": config.seed}
        for method in config.cluster_methods:
            fat, undefined = cluster_label_fat_pct(values, segments.bounds, method, config.cluster_components,
                                                   show_progress=show_progress, **fit)
            out[f"fat_pct_{method}"] = fat
            if config.cluster_components == 3:
                out[f"undefined_pct_{method}"] = undefined
    return out


def _csa_slice(labels: Volume, axis: int, first: int, n_slices: int, config: QuantifyConfig) -> int | None:
    """Slab column of the slice chosen for ``csa_cm2_at_slice`` (by index or world z)."""
    index = config.csa_slice_index
    if config.csa_world_z_mm is not None:
        z = core.slice_centres_z_mm(labels.affine, labels.spatial_shape, axis)
        index = int(np.argmin(np.abs(z - config.csa_world_z_mm)))
        spacing = labels.spacing_mm[axis]
        if abs(z[index] - config.csa_world_z_mm) > spacing:
            raise InputError(f"{labels.name}: z = {config.csa_world_z_mm:g} mm is outside the image "
                             f"({z.min():g} to {z.max():g} mm); check --csa-z")
    if index is None:
        return None
    if not first <= index < first + n_slices:
        raise InputError(f"{labels.name}: CSA slice {index} is outside the measured slices "
                         f"{first}..{first + n_slices - 1}; check --csa-slice and the slab")
    return index - first


def measure(
    labels: Volume,
    *,
    water: Volume | None = None,
    fat: Volume | None = None,
    fat_fraction: Volume | None = None,
    ct: Volume | None = None,
    image: Volume | None = None,
    names: Mapping[int, str] | None = None,
    scheme: str | None = None,
    slab: SliceRange | None = None,
    label_z_ranges: Mapping[int, tuple[float, float]] | None = None,
    config: QuantifyConfig | None = None,
    progress: bool = False,
) -> Measurements:
    """Measure every label of a segmentation in one pass; tables come from the result.

    Parameters
    ----------
    labels : Volume
        3D label map (0 = background).
    water, fat : Volume, optional
        Dixon water and fat images (both or neither): ``imf_pct``, ``imf_uneroded_pct``,
        ``n_voxels_eroded``, ``voxelwise_ff_mean_pct``.
    fat_fraction : Volume, optional
        Fat-fraction map: ``ff_mean_pct``, ``ff_median_pct``, ``ff_mean_below50_pct``.
    ct : Volume, optional
        CT in HU: ``mean_hu``, ``sd_hu``, ``median_hu``, ``lean_muscle_pct``, ``imat_volume_ml``.
    image : Volume, optional
        T1/T2-weighted image: ``fat_pct_gmm``/``fat_pct_kmeans`` (MuscleMap clustering).
    names : mapping of int to str, optional
        Label id -> structure name (e.g. from :func:`myoscan.io.read_mask_folder`); default
        the Slicer segment names in ``labels.meta``.
    scheme : str, optional
        Label catalog scheme naming the ids (takes precedence over ``names``).
    slab : SliceRange, optional
        Measure only these slices (see :mod:`myoscan.quantify.slab`).
    label_z_ranges : mapping of int to (float, float), optional
        Per-label world z window (mm), e.g. from :func:`~myoscan.quantify.slab.level_z_ranges`.
    config : QuantifyConfig, optional
        Method settings (erosion, HU ranges, clustering, CSA slice ...); paper defaults.
    progress : bool
        Progress bars on stderr.

    Returns
    -------
    Measurements
        Per-label and per-slice tables via :meth:`Measurements.label_table` and
        :meth:`Measurements.slice_table`.

    Raises
    ------
    InputError
        4D images, grids that differ, NaN/Inf or negative fat/water voxels inside labels, an
        empty segmentation, invalid labels.

    Examples
    --------
    >>> lab = np.zeros((2, 2, 3), np.uint8); lab[0, :, :2] = 1
    >>> m = measure(Volume(lab, np.eye(4)))
    >>> len(m.label_table()), len(m.slice_table())
    (1, 2)
    """
    config = config if config is not None else QuantifyConfig()
    if (water is None) != (fat is None):
        raise InputError("Dixon metrics need both --water and --fat (got only "
                         f"{'water' if fat is None else 'fat'}); pass both, or --fat-fraction instead")
    inputs = _prepare(labels, {"water": water, "fat": fat, "ff": fat_fraction, "ct": ct, "image": image},
                      slab, label_z_ranges, config)
    ff_scale = _ff_scale(inputs, config)
    channels, roles, modalities = _channels(inputs, config, ff_scale)
    sums = core.accumulate(inputs.rows, inputs.slice_axis, inputs.images, channels, show_progress=progress)
    _check_finite(sums, inputs.rows.row_ids, inputs.files, roles)
    _warn_invalid_fat_fraction(sums, inputs)
    counts = sums["n"].sum(axis=1)
    present = np.flatnonzero(counts[1:]) + 1
    if present.size == 0:
        where = " inside the slab" if slab is not None or label_z_ranges else ""
        raise InputError(f"{labels.name}: the segmentation has no labelled voxels{where}; "
                         "check the file (and the slab)")
    names = names if names is not None else labels.meta.get("segment_names")
    _log_empty(names, inputs.rows.row_ids[present])
    eroded = _eroded_sums(inputs, sums, config, progress) if "dixon" in modalities else {}
    per_label = _per_label_stats(inputs, counts, ff_scale, config, progress)
    n_slices = sums["n"].shape[1]
    slice_index = inputs.first_slice + np.arange(n_slices)
    z = core.slice_centres_z_mm(labels.affine, labels.spatial_shape, inputs.slice_axis)[slice_index]
    return Measurements(
        identity=label_identity(inputs.rows.row_ids[present], names=names, scheme=scheme),
        rows=present, sums=sums, eroded=eroded, slice_index=slice_index, slice_z_mm=z,
        voxel_volume_ml=labels.voxel_volume_ml,
        pixel_area_cm2=core.in_plane_area_mm2(labels.affine, inputs.slice_axis) * _CM2_PER_MM2,
        per_label=per_label, modalities=tuple(modalities),
        csa_slice=_csa_slice(labels, inputs.slice_axis, inputs.first_slice, n_slices, config),
        density_g_ml=config.muscle_density_g_ml,
    )


def _log_empty(names: Mapping[int, str] | None, present: np.ndarray) -> None:
    """Named labels without voxels (e.g. TotalSegmentator's empty masks) are not reported."""
    if names:
        empty = sorted(set(names) - {int(i) for i in present})
        if empty:
            listed = ", ".join(names[i] for i in empty[:8])
            log.info("%d named label(s) have no voxels in the measured slices and are not reported: %s%s",
                     len(empty), listed,
                     ", ..." if len(empty) > 8 else "")


def quantify(labels: Volume, **options: Any) -> pd.DataFrame:
    """Per-label muscle metrics of a segmentation: volume, fat, attenuation, CSA.

    Takes the parameters of :func:`measure` and returns its
    :meth:`~Measurements.label_table`.

    Returns
    -------
    pandas.DataFrame
        One row per label: ``label_id, name, side, region, group, tissue, n_voxels, volume_ml,
        mass_g, max_csa_cm2[, csa_cm2_at_slice]`` and the metric columns of the given inputs,
        then ``input_name``. Missing values are NaN.

    Raises
    ------
    InputError
        Bad input, as listed for :func:`measure`.

    Examples
    --------
    >>> lab = np.zeros((4, 4, 2), np.uint8); lab[:2] = 7
    >>> ct = Volume(np.full((4, 4, 2), 40, np.int16), np.diag([1.0, 1.0, 2.5, 1.0]))
    >>> t = quantify(Volume(lab, ct.affine), ct=ct, scheme="leg")
    >>> t[["name", "n_voxels", "volume_ml", "mean_hu", "max_csa_cm2"]].values.tolist()
    [['soleus_left', 16, 0.04, 40.0, 0.08]]
    """
    return measure(labels, **options).label_table()


def quantify_slices(labels: Volume, **options: Any) -> pd.DataFrame:
    """Per-slice table (CSA and fat/HU profile per label); the parameters of :func:`measure`.

    Examples
    --------
    >>> lab = np.zeros((2, 2, 3), np.uint8); lab[0, :, :2] = 1
    >>> quantify_slices(Volume(lab, np.eye(4)))[["slice_index", "n_voxels", "csa_cm2"]].values.tolist()
    [[0.0, 2.0, 0.02], [1.0, 2.0, 0.02]]
    """
    return measure(labels, **options).slice_table()


def _signature_of_measure(function: Callable[..., pd.DataFrame]) -> None:
    """Show :func:`measure`'s keyword parameters in ``help()`` of the one-call forms."""
    function.__signature__ = inspect.signature(measure).replace(  # type: ignore[attr-defined]
        return_annotation=pd.DataFrame)


_signature_of_measure(quantify)
_signature_of_measure(quantify_slices)
