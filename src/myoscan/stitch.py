"""Multi-station fusion: overlapping stations of one scan onto one global grid (seed 001).

Whole-body and neck-to-knee protocols (UK Biobank Dixon) acquire the body in several
overlapping *stations*. :func:`stitch_volumes` fuses them as seed 001 describes:

1. Per station: slices sorted along the slice normal by ImagePositionPatient, in-plane
   spacing from PixelSpacing, slice spacing = median distance between consecutive slices
   (:func:`myoscan.io.read_dicom_series`). Resampling then uses the *actual* slice
   positions, so a missing or irregular slice is interpolated across, not misplaced.
2. Stations are sorted superior -> inferior. Two stations covering the same positions
   (overlapping by more than half of the shorter one) are duplicates: the most recently
   acquired one (SeriesTime, else AcquisitionTime) is kept and the other is reported.
3. One global grid covers all stations, in their common orientation, with the finest
   spacing of any station along each axis unless ``spacing_mm`` is given.
4. Each station is resampled onto that grid by trilinear interpolation, restricted to its
   footprint. Trilinear interpolation on an axis-aligned grid is separable, so it is done
   as three 1-D linear interpolations (exact copies where the grids coincide).
5. Overlaps are blended by the mean of the contributing stations (seed 001) or by a
   linear ramp across the overlap (``blend='ramp'``); voxels covered by no station are 0
   and a coverage map counts the stations behind every voxel.

Every contrast of a Dixon set (water, fat, in-phase, opposed-phase) is fused onto the
same grid by :func:`stitch_contrasts`, so the fused images stay voxel-aligned.

Stations must share one orientation up to the direction of their axes and the order of
their in-plane axes (for example all axial). Stations rotated against each other, or
acquired in different planes (an axial and a coronal station), cannot be fused by stacking
and raise an :class:`~myoscan.errors.InputError`.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from myoscan._typing import PathLike
from myoscan.errors import InputError, IrregularSpacingWarning
from myoscan.io import Volume, read_volume, require_3d
from myoscan.progress import progress

__all__ = [
    "CONTRAST_ALIASES",
    "DUPLICATE_OVERLAP",
    "Station",
    "StitchResult",
    "find_stations",
    "Grid",
    "global_grid",
    "read_station",
    "resample_station",
    "stitch_contrasts",
    "stitch_volumes",
]

log = logging.getLogger(__name__)

#: Two stations overlapping by more than this share of the shorter one are duplicates.
DUPLICATE_OVERLAP = 0.5
#: Largest fused grid (voxels; 4 GB per float32 contrast): more means a wrong spacing (metres, not mm).
MAX_GRID_VOXELS = 1_000_000_000
#: Positions closer than this share of a voxel count as the same: NIfTI stores the affine in
#: float32 (about 1e-5 of a voxel at 500 mm), which must not cost the last slice or turn a
#: copy into an interpolation.
GRID_TOLERANCE = 1e-3
#: Direction cosines of two stations may differ by this much and still count as one orientation.
ORIENTATION_TOLERANCE = 1e-3
#: Names that identify the contrasts of a Dixon set in file names, folder names and
#: SeriesDescription (UK Biobank: ``Dixon_BH_17s_W``, ``_F``, ``_in``, ``_opp``; BIDS
#: suffixes ``water``, ``fat``, ``inphase``, ``outphase`` as used by ``myoscan run``).
CONTRAST_ALIASES: dict[str, frozenset[str]] = {
    "water": frozenset({"water", "w"}),
    "fat": frozenset({"fat", "f"}),
    "in": frozenset({"in", "ip", "inphase"}),
    "opp": frozenset({"opp", "op", "oop", "outphase", "opposed"}),
}
for _canonical, _alias in (("inphase", "in"), ("outphase", "opp")):
    CONTRAST_ALIASES[_canonical] = CONTRAST_ALIASES[_alias]


@dataclass(frozen=True, eq=False)
class Station:
    """One station, in the axis order and direction of the reference orientation.

    Attributes
    ----------
    array : (I, J, K) ndarray of float32
        Voxel values, every axis increasing along the reference direction of that axis.
    coords_mm : tuple of 3 ndarray
        Position of every index along each axis, in mm, measured along the reference
        axis from the world origin (the slice table of a DICOM series, so irregular
        slice gaps are kept).
    direction : (3, 3) ndarray
        Reference direction cosines (RAS, columns = axes).
    name : str
        Where the station came from (for messages and the report).
    acquired : float or None
        Acquisition time of day in seconds (SeriesTime, else AcquisitionTime).
    """

    array: np.ndarray
    coords_mm: tuple[np.ndarray, np.ndarray, np.ndarray]
    direction: npt.NDArray[np.float64]
    name: str
    acquired: float | None = None

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Median spacing along each axis (mm); 0 for a single slice."""
        return tuple(float(np.median(np.diff(c))) if c.size > 1 else 0.0  # type: ignore[return-value]
                     for c in self.coords_mm)

    def extent_mm(self, axis: int) -> tuple[float, float]:
        """First and last voxel centre along ``axis`` (mm)."""
        return float(self.coords_mm[axis][0]), float(self.coords_mm[axis][-1])


@dataclass(frozen=True)
class StitchResult:
    """Fused images of one scan.

    Attributes
    ----------
    volumes : dict of str to Volume
        Contrast -> fused float32 image; all share one grid.
    coverage : Volume
        uint8 number of stations behind each voxel (0 = not covered, value 0 there).
    stations : list of dict
        Kept stations superior -> inferior per contrast: name, extent, spacing, time.
    dropped : list of dict
        Duplicate stations left out and the station kept instead.
    notes : list of str
        Irregular slice gaps, differing station sets between contrasts ...
    """

    volumes: dict[str, Volume]
    coverage: Volume
    stations: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """Plain-value summary for a JSON side-car."""
        volume = next(iter(self.volumes.values()))
        return {
            "contrasts": list(self.volumes),
            "shape": list(volume.shape),
            "spacing_mm": list(volume.spacing_mm),
            "origin_mm": list(volume.origin_mm),
            "direction": volume.direction.tolist(),
            "covered_fraction": float(np.mean(self.coverage.array > 0)),
            "stations": self.stations,
            "dropped": self.dropped,
            "notes": self.notes,
        }


# ------------------------------------------------------------------------- stations


def _time_of_day_s(text: object) -> float | None:
    """Seconds since midnight of a DICOM TM value (``HHMMSS.FFFFFF``; ``HH:MM:SS`` accepted).

    Examples
    --------
    >>> _time_of_day_s("101502.5")
    36902.5
    """
    match = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(\.\d+)?", str(text).strip().replace(":", ""))
    if match is None:
        return None
    hours, minutes, seconds, fraction = match.groups()
    return (int(hours) * 3600 + int(minutes or 0) * 60 + int(seconds or 0)
            + (float(fraction) if fraction else 0.0))


def _axis_positions(volume: Volume, axis: int) -> np.ndarray:
    """Positions (mm) of the indices along one voxel axis, relative to voxel 0.

    The slice axis of a DICOM series uses the true slice positions, which the median
    slice spacing of the affine only approximates when a slice is missing.
    """
    n = volume.spatial_shape[axis]
    table = volume.meta.get("slice_positions_mm") if axis == 2 else None
    if table is not None and len(table) == n:
        along = np.asarray(table, dtype=np.float64)
        return along - along[0]
    return np.arange(n) * volume.spacing_mm[axis]


def _as_station(volume: Volume, reference: np.ndarray | None, name: str) -> Station:
    """Express ``volume`` in the reference orientation (axis order and signs)."""
    require_3d(volume)
    own = volume.direction
    if not np.allclose(own.T @ own, np.eye(3), atol=ORIENTATION_TOLERANCE):
        raise InputError(f"{name}: voxel axes are not orthogonal (sheared grid); resample it first")
    ref = own if reference is None else reference
    overlap = ref.T @ own  # (reference axis, own axis)
    target = np.argmax(np.abs(overlap), axis=0)
    alignment = np.abs(overlap[target, np.arange(3)])
    if sorted(target.tolist()) != [0, 1, 2] or np.any(alignment < 1 - ORIENTATION_TOLERANCE):
        angle = float(np.degrees(np.arccos(np.clip(alignment.min(), -1.0, 1.0))))
        raise InputError(
            f"{name}: its orientation differs from the first station by {angle:.1f} degrees; stations "
            "must share one orientation (oblique or mixed-orientation stations cannot be stacked) - "
            "resample them onto a common grid first"
        )
    if target[2] != 2:  # the slice axis lies in the first station's slice plane
        planes = ("sagittal", "coronal", "axial")
        own_plane, ref_plane = (planes[int(np.argmax(np.abs(m[:, 2])))] for m in (own, ref))
        raise InputError(
            f"{name}: its slices are {own_plane if own_plane != ref_plane else 'differently oriented'} while "
            f"the first station's are {ref_plane}; stations must share one slice orientation - fuse "
            "stations of one acquisition plane"
        )
    signs = np.sign(overlap[target, np.arange(3)])
    origin = ref.T @ volume.affine[:3, 3]
    coords: list[np.ndarray] = [np.empty(0)] * 3
    array = np.asarray(volume.array, dtype=np.float32)
    for axis in range(3):
        position = origin[target[axis]] + signs[axis] * _axis_positions(volume, axis)
        if signs[axis] < 0:
            array = np.flip(array, axis=axis)
            position = position[::-1]
        coords[target[axis]] = position
    array = np.ascontiguousarray(np.transpose(array, np.argsort(target)))
    acquired = next((t for t in (_time_of_day_s(volume.meta.get(tag, "")) for tag in ("SeriesTime",
                     "AcquisitionTime")) if t is not None), None)
    return Station(array, (coords[0], coords[1], coords[2]), ref.copy(), name, acquired)


def read_station(
    source: PathLike | Volume, *, reference: np.ndarray | None = None, series_uid: str | None = None,
) -> tuple[Station, list[str]]:
    """Read one station (DICOM series folder, NIfTI/NRRD file or Volume).

    Parameters
    ----------
    source : str, os.PathLike or Volume
        The station.
    reference : (3, 3) ndarray, optional
        Direction cosines to express the station in (those of the first station).
    series_uid : str, optional
        Series to read from a folder holding several.

    Returns
    -------
    Station
    list of str
        Notes, e.g. an irregular slice gap that the fusion interpolates across.

    Raises
    ------
    InputError
        Unreadable source, or an orientation that differs from ``reference``.
    """
    notes: list[str] = []
    if isinstance(source, Volume):
        volume, name = source, source.name
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            volume = read_volume(source, series_uid=series_uid)
        name = Path(source).name
        if series_uid:
            name += f"/{volume.meta.get('SeriesDescription') or series_uid}"
        for warning in caught:
            if issubclass(warning.category, IrregularSpacingWarning):
                detail = str(warning.message).split(";")[0].split(": ", 1)[-1]
                notes.append(f"{name}: {detail}; fused using the true slice positions")
            else:
                warnings.warn(warning.message, stacklevel=2)
    return _as_station(volume, reference, name), notes


# ------------------------------------------------------------------------- grid and resampling


@dataclass(frozen=True)
class Grid:
    """Axis-aligned global grid in the reference orientation."""

    coords_mm: tuple[np.ndarray, np.ndarray, np.ndarray]
    direction: npt.NDArray[np.float64]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Number of voxels along each axis."""
        return tuple(c.size for c in self.coords_mm)  # type: ignore[return-value]

    @property
    def affine(self) -> npt.NDArray[np.float64]:
        """Voxel -> RAS affine of the grid."""
        spacing = [float(c[1] - c[0]) if c.size > 1 else 1.0 for c in self.coords_mm]
        affine = np.eye(4)
        affine[:3, :3] = self.direction * np.asarray(spacing)
        affine[:3, 3] = self.direction @ np.array([c[0] for c in self.coords_mm])
        return affine


def global_grid(stations: Sequence[Station], spacing_mm: Sequence[float] | None = None) -> Grid:
    """Build the grid covering every station, at the finest spacing unless ``spacing_mm`` is given.

    Voxel centres start at the lowest first centre of any station along each axis and
    reach the highest last centre (within :data:`GRID_TOLERANCE` of a voxel).

    Raises
    ------
    InputError
        No stations, an axis with a single slice everywhere and no ``spacing_mm``, or a grid
        of more than :data:`MAX_GRID_VOXELS` voxels (a spacing given in metres, say).
    """
    if not stations:
        raise InputError("no stations to fuse")
    coords = []
    for axis in range(3):
        low = min(s.extent_mm(axis)[0] for s in stations)
        high = max(s.extent_mm(axis)[1] for s in stations)
        if spacing_mm is not None:
            step = float(spacing_mm[axis])
        else:
            steps = [s.spacing_mm[axis] for s in stations if s.spacing_mm[axis] > 0]
            if not steps:
                raise InputError(f"every station has a single voxel along axis {axis}; give --spacing")
            step = min(steps)
        n = int(np.floor((high - low) / step + GRID_TOLERANCE)) + 1
        coords.append((low, step, n))
    size = float(np.prod([n for _, _, n in coords], dtype=np.float64))
    if size > MAX_GRID_VOXELS:
        shape = " x ".join(str(n) for _, _, n in coords)
        spacing = ", ".join(f"{step:g}" for _, step, _ in coords)
        raise InputError(f"the fused grid would have {shape} voxels ({size * 4 / 1e9:.0f} GB per contrast) at "
                         f"{spacing} mm spacing; give --spacing in millimetres (e.g. 2,2,3)")
    axes = [low + np.arange(n) * step for low, step, n in coords]
    return Grid((axes[0], axes[1], axes[2]), stations[0].direction)


def _axis_plan(source: np.ndarray, target: np.ndarray) -> tuple[slice, np.ndarray, np.ndarray] | None:
    """Where ``target`` positions fall inside ``source`` and their linear weights.

    Returns the run of target indices inside the source range, the lower source index
    and the weight of the upper one for each, or None when they do not meet.
    """
    tolerance = GRID_TOLERANCE * (float(np.min(np.diff(source))) if source.size > 1 else 1.0) + 1e-6
    inside = np.flatnonzero((target >= source[0] - tolerance) & (target <= source[-1] + tolerance))
    if inside.size == 0:
        return None
    run = slice(int(inside[0]), int(inside[-1]) + 1)
    if source.size == 1:
        return run, np.zeros(inside.size, dtype=np.intp), np.zeros(inside.size)
    position = np.interp(target[run], source, np.arange(source.size, dtype=np.float64))
    lower = np.minimum(np.floor(position).astype(np.intp), source.size - 2)
    weight = position - lower
    snap = weight > 1 - GRID_TOLERANCE  # on the upper sample: take it exactly
    lower[snap] += 1
    weight[snap] = 0.0
    weight[weight < GRID_TOLERANCE] = 0.0
    return run, lower, weight


def _interpolate_axis(array: np.ndarray, axis: int, lower: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Linear interpolation along one axis (a plain slice where the grids coincide)."""
    if not weight.any() and np.all(np.diff(lower) == 1):
        index = [slice(None)] * array.ndim
        index[axis] = slice(int(lower[0]), int(lower[0]) + lower.size)
        return array[tuple(index)]
    low = np.take(array, lower, axis=axis)
    if not weight.any():
        return low
    high = np.take(array, np.minimum(lower + 1, array.shape[axis] - 1), axis=axis)
    shape = [1] * array.ndim
    shape[axis] = -1
    return low + (high - low) * weight.astype(np.float32).reshape(shape)


def resample_station(
    station: Station, grid: Grid, *, array: np.ndarray | None = None,
) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """Trilinear resampling of a station onto the part of ``grid`` it covers.

    Trilinear interpolation between axis-aligned grids factors into three 1-D linear
    interpolations; the axis that shrinks the data most goes first.

    Parameters
    ----------
    station : Station
    grid : global grid (from :func:`global_grid`)
    array : ndarray, optional
        Values to resample instead of ``station.array`` (another contrast on the same grid).

    Returns
    -------
    (box, values) or None
        ``box`` = slices of the grid covered by the station; ``values`` its resampled
        float32 values there. None if the station lies outside the grid.
    """
    plans = [_axis_plan(station.coords_mm[a], grid.coords_mm[a]) for a in range(3)]
    if any(p is None for p in plans):
        return None
    values = station.array if array is None else array
    order = sorted(range(3), key=lambda a: plans[a][1].size / values.shape[a])  # type: ignore[index]
    for axis in order:
        _, lower, weight = plans[axis]  # type: ignore[misc]
        values = _interpolate_axis(values, axis, lower, weight)
    box = (plans[0][0], plans[1][0], plans[2][0])  # type: ignore[index]
    return box, np.asarray(values, dtype=np.float32)


# ------------------------------------------------------------------------- fusion


def _stack_axis(stations: Sequence[Station]) -> int:
    """Return the axis along which the station centres spread the most (the table motion)."""
    centres = np.array([[np.mean(s.extent_mm(a)) for a in range(3)] for s in stations])
    return int(np.argmax(np.ptp(centres, axis=0))) if len(stations) > 1 else 2


def _superior_first(stations: list[Station]) -> list[Station]:
    def height(station: Station) -> float:  # RAS z of the station centre
        centre = np.array([np.mean(station.extent_mm(a)) for a in range(3)])
        return float((station.direction @ centre)[2])
    return sorted(stations, key=height, reverse=True)


def drop_duplicates(
    stations: Sequence[Station], *, overlap: float = DUPLICATE_OVERLAP,
) -> tuple[list[Station], list[dict[str, Any]]]:
    """Keep the most recent of stations covering the same positions (seed 001).

    Two stations are duplicates when they overlap along the stacking axis by more than
    ``overlap`` of the shorter one. The latest SeriesTime/AcquisitionTime wins; without
    times (or with equal ones) the station listed last wins, with a warning.

    Returns
    -------
    kept : list of Station
        In input order.
    dropped : list of dict
        ``name``, ``kept_instead``, ``acquired_s``, ``kept_acquired_s``, ``reason``.
    """
    axis = _stack_axis(stations)
    rank = sorted(range(len(stations)), reverse=True,
                  key=lambda i: (stations[i].acquired if stations[i].acquired is not None else -1.0, i))
    kept: list[int] = []
    dropped: list[dict[str, Any]] = []
    for i in rank:
        lo, hi = stations[i].extent_mm(axis)
        for j in kept:
            lo_j, hi_j = stations[j].extent_mm(axis)
            shared = min(hi, hi_j) - max(lo, lo_j)
            if shared > overlap * min(hi - lo, hi_j - lo_j) and shared > 0:
                timed = stations[i].acquired is not None and stations[j].acquired is not None
                if timed and stations[j].acquired != stations[i].acquired:
                    reason = f"covers the same {shared:.0f} mm as {stations[j].name}, acquired later"
                elif timed:
                    reason = (f"covers the same {shared:.0f} mm as {stations[j].name}, acquired at the same "
                              "time; kept the one listed last")
                else:
                    reason = (f"covers the same {shared:.0f} mm as {stations[j].name}; no acquisition times, "
                              "kept the one listed last")
                if not timed or stations[j].acquired == stations[i].acquired:  # no time decided it
                    warnings.warn(f"{stations[i].name}: {reason}", stacklevel=2)
                log.warning("duplicate station %s dropped: %s", stations[i].name, reason)
                dropped.append({"name": stations[i].name, "kept_instead": stations[j].name,
                                "acquired_s": stations[i].acquired, "kept_acquired_s": stations[j].acquired,
                                "reason": reason})
                break
        else:
            kept.append(i)
    return [stations[i] for i in sorted(kept)], dropped


def _ramp_weight(station: Station, grid: Grid, box: tuple[slice, slice, slice], axis: int) -> np.ndarray:
    """Distance (mm) to the nearer end of the station along ``axis``, plus one voxel.

    In an overlap the two stations' weights then sum to a constant: a linear cross-fade.
    """
    position = grid.coords_mm[axis][box[axis]]
    lo, hi = station.extent_mm(axis)
    step = float(np.diff(grid.coords_mm[axis]).min()) if grid.coords_mm[axis].size > 1 else 1.0
    weight = np.minimum(position - lo, hi - position).clip(min=0.0) + step
    shape = [1, 1, 1]
    shape[axis] = -1
    return weight.astype(np.float32).reshape(shape)


def _fuse(stations: Sequence[Station], arrays: Sequence[np.ndarray], grid: Grid,
          blend: Literal["mean", "ramp"], axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Blend the resampled stations on ``grid``; return the image and the coverage count."""
    total = np.zeros(grid.shape, dtype=np.float32)
    count = np.zeros(grid.shape, dtype=np.uint8)
    weights = np.zeros(grid.shape, dtype=np.float32) if blend == "ramp" else None
    for station, array in zip(stations, arrays, strict=True):
        resampled = resample_station(station, grid, array=array)
        if resampled is None:
            continue
        box, values = resampled
        count[box] += 1
        if weights is None:
            total[box] += values
        else:
            weight = _ramp_weight(station, grid, box, axis)
            total[box] += values * weight
            weights[box] += weight
    divisor = count.astype(np.float32) if weights is None else weights
    np.divide(total, divisor, out=total, where=count > 0)
    return total, count


#: A station given as a file or DICOM folder, a (folder, SeriesInstanceUID) pair, a Volume or a Station.
StationSource = PathLike | tuple[PathLike, str] | Volume | Station


def _load(source: StationSource, reference: np.ndarray | None) -> tuple[Station, list[str]]:
    if isinstance(source, Station):
        if reference is not None and not np.allclose(source.direction, reference,
                                                     atol=ORIENTATION_TOLERANCE):
            raise InputError(f"{source.name}: orientation differs from the first station")
        return source, []
    if isinstance(source, tuple):
        return read_station(source[0], reference=reference, series_uid=source[1])
    return read_station(source, reference=reference)


def _station_record(station: Station, axis: int) -> dict[str, Any]:
    lo, hi = station.extent_mm(axis)
    return {"name": station.name, "shape": list(station.array.shape), "spacing_mm": list(station.spacing_mm),
            "stack_axis_range_mm": [lo, hi], "acquired_s": station.acquired}


def stitch_contrasts(
    stations: Mapping[str, Sequence[StationSource]],
    *,
    spacing_mm: Sequence[float] | None = None,
    blend: Literal["mean", "ramp"] = "mean",
    duplicate_overlap: float = DUPLICATE_OVERLAP,
    show_progress: bool = False,
) -> StitchResult:
    """Fuse the stations of every contrast onto one shared grid.

    Parameters
    ----------
    stations : mapping of str to sequence
        Contrast -> its stations, in any order (files, DICOM folders, (folder, series
        UID) pairs, Volumes or Stations).
    spacing_mm : sequence of 3 float, optional
        Output spacing along the grid axes; the finest station spacing per axis if omitted.
    blend : {'mean', 'ramp'}
        Overlap blending: mean of the stations (seed 001) or linear cross-fade.
    duplicate_overlap : float
        Share of the shorter station two stations must share to be duplicates (1 = never).
    show_progress : bool
        Progress bar on stderr.

    Returns
    -------
    StitchResult

    Raises
    ------
    InputError
        No stations, unreadable input, stations of different orientation, bad ``blend``.
    """
    if blend not in ("mean", "ramp"):
        raise InputError(f"blend must be 'mean' or 'ramp', got {blend!r}")
    if not stations or not all(stations.values()):
        missing = ", ".join(c for c, s in stations.items() if not s) or "fusion"
        raise InputError(f"no stations given for {missing}")
    reference: np.ndarray | None = None
    kept: dict[str, list[Station]] = {}
    dropped: list[dict[str, Any]] = []
    notes: list[str] = []
    jobs = [(c, s) for c, sources in stations.items() for s in sources]
    loaded: dict[str, list[Station]] = {c: [] for c in stations}
    for contrast, source in progress(jobs, desc="reading stations", unit="station", enabled=show_progress):
        station, station_notes = _load(source, reference)
        reference = station.direction if reference is None else reference
        loaded[contrast].append(station)
        notes.extend(station_notes)
    for contrast, group in loaded.items():
        keep, drop = drop_duplicates(group, overlap=duplicate_overlap)
        kept[contrast] = _superior_first(keep)
        dropped.extend({"contrast": contrast, **d} for d in drop)
    everything = [s for group in kept.values() for s in group]
    grid = global_grid(everything, spacing_mm)
    axis = _stack_axis(next(iter(kept.values())))
    volumes: dict[str, Volume] = {}
    coverage: np.ndarray | None = None
    for contrast, group in progress(kept.items(), desc="fusing", unit="contrast", enabled=show_progress):
        fused, count = _fuse(group, [s.array for s in group], grid, blend, axis)
        volumes[contrast] = Volume(fused, grid.affine, None, {"contrast": contrast, "stations": len(group)})
        if coverage is None:
            coverage = count
        elif not np.array_equal(coverage > 0, count > 0):
            first = next(iter(kept))
            notes.append(f"{contrast}: its stations cover a different region than those of {first}")
    assert coverage is not None
    records = [{"contrast": c, **_station_record(s, axis)} for c, group in kept.items() for s in group]
    return StitchResult(volumes, Volume(coverage, grid.affine, None, {"map": "coverage"}), records, dropped,
                        notes)


def stitch_volumes(
    stations: Sequence[StationSource],
    *,
    spacing_mm: Sequence[float] | None = None,
    blend: Literal["mean", "ramp"] = "mean",
    duplicate_overlap: float = DUPLICATE_OVERLAP,
    show_progress: bool = False,
) -> StitchResult:
    """Fuse the stations of one image; the result's ``volumes`` holds it under ``'image'``.

    See :func:`stitch_contrasts` for the parameters.
    """
    return stitch_contrasts({"image": list(stations)}, spacing_mm=spacing_mm, blend=blend,
                            duplicate_overlap=duplicate_overlap, show_progress=show_progress)


# ------------------------------------------------------------------------- discovery (CLI)

_IMAGE_NAME = re.compile(r"\.(nii|nii\.gz|nrrd|nhdr)$", re.IGNORECASE)


def _tokens(text: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", text.lower()) if t}


def _dicom_series(folder: Path) -> dict[str, tuple[str, Path]]:
    """SeriesInstanceUID -> (SeriesDescription, folder holding it) under ``folder`` (headers only)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    files: dict[str, list[Path]] = {}
    descriptions: dict[str, str] = {}
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and not _IMAGE_NAME.search(p.name)):
        try:
            ds = pydicom.dcmread(str(file), stop_before_pixels=True, specific_tags=[
                "SeriesInstanceUID", "SeriesDescription", "ImagePositionPatient"])
        except (InvalidDicomError, OSError, EOFError, ValueError):
            continue
        if "ImagePositionPatient" in ds:
            uid = str(getattr(ds, "SeriesInstanceUID", ""))
            files.setdefault(uid, []).append(file.parent)
            descriptions.setdefault(uid, str(getattr(ds, "SeriesDescription", "")))
    return {uid: (descriptions[uid], Path(os.path.commonpath(parents))) for uid, parents in files.items()}


def _candidates(path: Path) -> list[tuple[StationSource, str]]:
    """Stations found at ``path`` with the text naming them (file stem, folder, series description)."""
    if not path.exists():
        raise InputError(f"{path}: no such file or directory; check the path")
    if path.is_file():
        return [(path, _IMAGE_NAME.sub("", path.name))]
    found: list[tuple[StationSource, str]] = [
        (p, _IMAGE_NAME.sub("", p.name))
        for p in sorted(path.rglob("*")) if p.is_file() and _IMAGE_NAME.search(p.name)
    ]
    series = _dicom_series(path)
    homes = [home for _, home in series.values()]
    for uid, (description, home) in series.items():
        if homes.count(home) == 1 and not any(h != home and h.is_relative_to(home) for h in homes):
            found.append((home, f"{home.name} {description}"))  # the series has a folder of its own
        else:
            found.append(((home, uid), f"{home.name} {description}"))
    return found


def find_stations(
    paths: Sequence[PathLike], contrasts: Sequence[str] | None = None,
) -> dict[str, list[StationSource]]:
    """Collect the stations under ``paths`` and sort them by contrast.

    Every image file (NIfTI/NRRD) and every DICOM series found under the paths is a
    station. With ``contrasts`` each station is given to the contrast named in its file
    name or SeriesDescription (see :data:`CONTRAST_ALIASES`: ``_W``/``water``, ``_F``/
    ``fat``, ``_in``/``inphase``, ``_opp``/``outphase``; BIDS names such as
    ``sub-01_chunk-2_water.nii.gz`` match too); stations naming no contrast are ignored.

    Returns
    -------
    dict of str to list
        Contrast (``'image'`` without ``contrasts``) -> stations.

    Raises
    ------
    InputError
        Nothing found, a station naming two contrasts, or a contrast without stations.
    """
    found = [c for p in paths for c in _candidates(Path(p))]
    if not found:
        raise InputError(f"no images or DICOM series found in {', '.join(str(p) for p in paths)}")
    if not contrasts:
        return {"image": [source for source, _ in found]}
    aliases = {c: CONTRAST_ALIASES.get(c.lower(), frozenset()) | {c.lower()} for c in contrasts}
    grouped: dict[str, list[StationSource]] = {c: [] for c in contrasts}
    for source, text in found:
        matches = [c for c, names in aliases.items() if names & _tokens(text)]
        if len(matches) > 1:
            raise InputError(f"{text!r} names several contrasts ({', '.join(matches)}); rename it")
        if matches:
            grouped[matches[0]].append(source)
        else:
            log.info("ignored %s: it names none of the contrasts %s", text, ", ".join(contrasts))
    empty = [c for c, group in grouped.items() if not group]
    if empty:
        raise InputError(
            f"no stations found for contrast {', '.join(empty)} among: {', '.join(t for _, t in found)}; "
            "name files or series after the contrast (e.g. *_water.nii.gz, Dixon_W)"
        )
    return grouped
