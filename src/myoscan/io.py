"""Image input/output: NIfTI, NRRD (incl. 3D Slicer ``.seg.nrrd``) and DICOM series.

Every reader returns a :class:`Volume`: the voxel array in (I, J, K) order plus a
4 x 4 affine mapping voxel indices to RAS world coordinates in millimetres, the
convention of nibabel. NRRD and DICOM store LPS coordinates; they are converted
on read and back on write, so a volume read from any format and written to any
other lands at the same place in the world.

Writers go through :func:`myoscan.outputs.atomic_path`: a failed write never
leaves a partial file.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from myoscan._typing import PathLike
from myoscan.errors import GeometryMismatchError, InputError, IrregularSpacingWarning
from myoscan.outputs import atomic_path

__all__ = [
    "GEOMETRY_ATOL_MM",
    "NIFTI_SUFFIXES",
    "NRRD_SUFFIXES",
    "Volume",
    "check_same_grid",
    "grid_difference",
    "image_suffix",
    "read_dicom_series",
    "read_mask_folder",
    "read_volume",
    "require_3d",
    "write_volume",
]

log = logging.getLogger(__name__)

#: Default tolerance when comparing two voxel grids (mm, and unitless for directions).
GEOMETRY_ATOL_MM = 1e-3
NIFTI_SUFFIXES = (".nii", ".nii.gz")
NRRD_SUFFIXES = (".nrrd", ".nhdr", ".seg.nrrd")
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: Technical DICOM attributes copied into ``Volume.meta``; nothing that identifies a patient.
_DICOM_META_TAGS = (
    "Modality",
    "SeriesDescription",
    "SeriesNumber",
    "SeriesTime",
    "AcquisitionTime",
    "ImageType",
    "EchoTime",
    "RepetitionTime",
    "MagneticFieldStrength",
    "Manufacturer",
    "ManufacturerModelName",
    "ConvolutionKernel",
    "KVP",
    "BodyPartExamined",
)


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D (or 3D + channels) image with its position in the world.

    Parameters
    ----------
    array : ndarray
        Voxel values indexed (I, J, K[, C]).
    affine : (4, 4) ndarray
        Voxel index -> RAS world coordinates in mm.
    path : pathlib.Path, optional
        Where the volume was read from (used in error messages).
    meta : mapping
        Extra information from the file (DICOM technical tags, Slicer segment names ...).

    Examples
    --------
    >>> vol = Volume(np.zeros((2, 3, 4)), np.diag([0.7, 0.7, 5.0, 1.0]))
    >>> vol.spacing_mm
    (0.7, 0.7, 5.0)
    """

    array: np.ndarray
    affine: npt.NDArray[np.float64]
    path: Path | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise InputError(f"{self.name}: affine must be 4 x 4, got shape {affine.shape}")
        if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise InputError(f"{self.name}: the voxel-to-world affine is not finite or has a zero spacing; "
                             "the image's geometry is unknown")
        if self.array.ndim < 3:
            raise InputError(
                f"{self.name}: expected a 3D image, got {self.array.ndim}D with shape "
                f"{self.array.shape}; 2D slices are not supported"
            )
        object.__setattr__(self, "affine", affine)

    @property
    def name(self) -> str:
        """File name of the source, or ``'<array>'`` for an in-memory volume."""
        return self.path.name if self.path is not None else "<array>"

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the voxel array."""
        return tuple(self.array.shape)

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """Shape of the first three (spatial) axes."""
        return tuple(self.array.shape[:3])  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size along I, J, K in mm (column norms of the affine)."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return tuple(float(round(v, 10)) for v in norms)  # type: ignore[return-value]

    @property
    def origin_mm(self) -> tuple[float, float, float]:
        """RAS position of the centre of voxel (0, 0, 0) in mm."""
        return tuple(float(v) for v in self.affine[:3, 3])  # type: ignore[return-value]

    @property
    def direction(self) -> npt.NDArray[np.float64]:
        """(3, 3) unit direction cosines of the I, J, K axes (columns) in RAS."""
        return self.affine[:3, :3] / np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (mm^3 / 1000)."""
        return float(abs(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    def with_array(self, array: np.ndarray, **meta: Any) -> Volume:
        """Return a volume on the same grid holding ``array``.

        Raises
        ------
        InputError
            If the spatial shape of ``array`` differs from this volume's.
        """
        if tuple(array.shape[:3]) != self.spatial_shape:
            raise InputError(
                f"{self.name}: new array has spatial shape {tuple(array.shape[:3])}, "
                f"expected {self.spatial_shape}"
            )
        return Volume(array, self.affine.copy(), self.path, {**self.meta, **meta})


# --------------------------------------------------------------------------- helpers


def image_suffix(path: PathLike) -> str:
    """Lower-case image extension including double ones (``.nii.gz``, ``.seg.nrrd``).

    Examples
    --------
    >>> image_suffix("sub-01_T1w.NII.GZ")
    '.nii.gz'
    """
    name = Path(path).name.lower()
    for suffix in (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".nhdr"):
        if name.endswith(suffix):
            return suffix
    return Path(name).suffix


def require_3d(volume: Volume) -> Volume:
    """Return ``volume`` if it is a single 3D image, else raise a clear InputError."""
    if volume.array.ndim != 3:
        raise InputError(
            f"{volume.name}: expected a 3D image, got {volume.array.ndim}D with shape "
            f"{volume.shape}; split 4D series into 3D volumes first"
        )
    return volume


def _squeeze_trailing(array: np.ndarray) -> np.ndarray:
    """Drop singleton axes beyond the third (NIfTI stores 3D images as 1 x ... sometimes)."""
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return array


def _missing(path: Path) -> InputError:
    return InputError(f"{path}: no such file or directory; check the path")


# --------------------------------------------------------------------------- NIfTI


def _read_nifti(path: Path) -> Volume:
    import nibabel as nib

    try:
        image = nib.load(str(path))
        # dataobj keeps integer label maps integer and applies scl_slope/inter to floats;
        # get_fdata() would turn every label map into float64.
        array = np.asanyarray(image.dataobj)
    except Exception as exc:  # nibabel raises many types for truncated/corrupt files
        raise InputError(f"{path.name}: cannot read NIfTI ({exc}); the file may be corrupt") from exc
    if int(image.header["sform_code"]) == 0 and int(image.header["qform_code"]) == 0:
        _require_nifti_spacing(path)
    return Volume(_squeeze_trailing(np.asarray(array)), image.affine, path)


def _require_nifti_spacing(path: Path) -> None:
    """Refuse a NIfTI without orientation codes whose stored pixdim is zero.

    nibabel replaces zero pixdim by 1 when it loads a header, so volumes would silently be
    computed for 1 mm voxels; the raw header is read again without that fix to detect it.
    """
    import nibabel as nib
    from nibabel.openers import ImageOpener

    with ImageOpener(str(path)) as handle:
        raw = nib.Nifti1Header.from_fileobj(handle, check=False)
    pixdim = np.asarray(raw["pixdim"][1:4], dtype=float)
    if np.any(~np.isfinite(pixdim) | (pixdim <= 0)):
        raise InputError(
            f"{path.name}: the voxel spacing is unknown (no qform/sform and pixdim {pixdim.tolist()}); "
            "write the image with its real spacing"
        )


def _write_nifti(volume: Volume, path: Path) -> None:
    import nibabel as nib

    array = volume.array
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if array.dtype == np.int64 and array.size and array.min() >= np.iinfo(np.int32).min \
            and array.max() <= np.iinfo(np.int32).max:
        array = array.astype(np.int32)  # int64 NIfTI is poorly supported by viewers
    image = nib.Nifti1Image(array, volume.affine)
    image.set_qform(volume.affine, code=1)
    image.set_sform(volume.affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, str(path))


# --------------------------------------------------------------------------- NRRD

_SPACES_LPS = {"left-posterior-superior", "lps"}
_SPACES_RAS = {"right-anterior-superior", "ras"}


def _nrrd_affine(header: Mapping[str, Any], path: Path) -> tuple[np.ndarray, list[int]]:
    """RAS affine of an NRRD header and the indices of its spatial axes."""
    directions = header.get("space directions")
    if directions is None:
        return _nrrd_axis_aligned_affine(header, path)
    spatial_axes = [
        axis for axis, vector in enumerate(directions)
        if vector is not None and np.all(np.isfinite(np.asarray(vector, dtype=float)))
    ]
    if len(spatial_axes) != 3:
        raise InputError(f"{path.name}: expected 3 spatial axes in the NRRD header, got {len(spatial_axes)}")
    matrix = np.column_stack([np.asarray(directions[a], dtype=float) for a in spatial_axes])
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
    affine = np.eye(4)
    affine[:3, :3] = matrix
    affine[:3, 3] = origin
    space = str(header.get("space", "left-posterior-superior")).lower()
    if space in _SPACES_LPS:
        affine = _LPS_TO_RAS @ affine
    elif space not in _SPACES_RAS:
        raise InputError(f"{path.name}: unsupported NRRD space {space!r}; expected LPS or RAS")
    return affine, spatial_axes


def _nrrd_axis_aligned_affine(header: Mapping[str, Any], path: Path) -> tuple[np.ndarray, list[int]]:
    """Affine of an NRRD without a world space: per-axis ``spacings`` (and ``axis mins``).

    Read as ITK/SimpleITK read it: axes along LPS x, y, z; the origin is 0, or the axis
    minimum plus half a voxel for cell-centred axes (NRRD's default centering).
    """
    spacings = np.asarray(header.get("spacings", []), dtype=float)
    spatial_axes = [axis for axis, value in enumerate(spacings) if np.isfinite(value) and value != 0]
    if len(spatial_axes) != 3:
        raise InputError(f"{path.name}: NRRD header has no 'space directions' and no 3 'spacings'; "
                         "the voxel spacing is unknown")
    spacing = spacings[spatial_axes]
    origin = np.zeros(3)
    if "axis mins" in header:
        mins = np.asarray(header["axis mins"], dtype=float)[spatial_axes]
        centerings = list(header.get("centerings", [])) or ["cell"] * len(spacings)
        half = np.array([0.0 if str(centerings[a]).lower() == "node" else 0.5 for a in spatial_axes])
        origin = np.where(np.isfinite(mins), mins + half * spacing, 0.0)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = origin
    return _LPS_TO_RAS @ affine, spatial_axes


def _slicer_segments(header: Mapping[str, Any], layered: bool) -> list[dict[str, Any]]:
    """Segment records (name, layer, label value, colour) of a 3D Slicer .seg.nrrd header.

    Files of Slicer <= 4.10 have no ``Layer``/``LabelValue`` fields: each segment is a binary
    mask in its own layer (4D data), which Slicer reads as layer = segment index, value 1.
    """
    segments = []
    index = 0
    while f"Segment{index}_ID" in header:
        prefix = f"Segment{index}_"
        color = [float(c) for c in str(header.get(prefix + "Color", "0.5 0.5 0.5")).split()]
        legacy = layered and prefix + "Layer" not in header
        segments.append({
            "id": header[prefix + "ID"],
            "name": header.get(prefix + "Name", header[prefix + "ID"]),
            "layer": int(header.get(prefix + "Layer", index if legacy else 0)),
            "label_value": int(header.get(prefix + "LabelValue", 1 if legacy else index + 1)),
            "color": color,
        })
        index += 1
    return segments


def _merge_slicer_layers(
    data: np.ndarray, spatial_axes: list[int], segments: list[dict[str, Any]], path: Path
) -> tuple[np.ndarray, dict[int, str]]:
    """Collapse a (possibly layered) Slicer segmentation into one label map.

    Slicer stores overlapping segments in separate layers, each a label map using the
    segments' ``LabelValue``. Output labels keep the LabelValue when those are unique
    across segments, else segments are numbered 1..N in header order.
    """
    layered = data.ndim == 4
    if layered:
        layer_axis = next(a for a in range(4) if a not in spatial_axes)
        data = np.moveaxis(data, layer_axis, 0)
    values = [s["label_value"] for s in segments]
    renumber = len(set(values)) != len(values)
    top = len(segments) if renumber else max(values, default=0)  # LabelValues may exceed 255 (musclemap ids)
    out = np.zeros(data.shape[-3:], dtype=np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.uint32)
    names: dict[int, str] = {}
    filled = np.zeros(out.shape, dtype=bool)
    for number, segment in enumerate(segments, start=1):
        layer = data[segment["layer"]] if layered else data
        mask = layer == segment["label_value"]
        target = number if renumber else segment["label_value"]
        overlap = np.count_nonzero(mask & filled)
        if overlap:
            warnings.warn(
                f"{path.name}: segment {segment['name']!r} overlaps earlier segments in "
                f"{overlap} voxels; the later segment wins in the label map",
                stacklevel=3,
            )
        out[mask] = target
        filled |= mask
        names[target] = str(segment["name"])
    return out, names


def _read_nrrd(path: Path) -> Volume:
    import nrrd

    try:
        data, header = nrrd.read(str(path))
    except Exception as exc:  # pynrrd raises NRRDError, OSError, ValueError ...
        raise InputError(f"{path.name}: cannot read NRRD ({exc}); the file may be corrupt") from exc
    affine, spatial_axes = _nrrd_affine(header, path)
    segments = _slicer_segments(header, layered=data.ndim == 4)
    meta: dict[str, Any] = {}
    if segments:
        data, names = _merge_slicer_layers(data, spatial_axes, segments, path)
        meta["segment_names"] = names
        meta["segment_colors"] = {
            (i + 1 if len({s["label_value"] for s in segments}) != len(segments) else s["label_value"]):
            s["color"] for i, s in enumerate(segments)
        }
    elif data.ndim == 4:
        # Move a non-spatial axis (e.g. vector components) to the end: (I, J, K, C).
        extra = next(a for a in range(4) if a not in spatial_axes)
        data = np.moveaxis(data, extra, -1)
    return Volume(_squeeze_trailing(np.asarray(data)), affine, path, meta)


def _write_nrrd(volume: Volume, path: Path, extra_header: Mapping[str, Any] | None) -> None:
    import nrrd

    if volume.array.ndim != 3:
        raise InputError(f"{path.name}: only 3D volumes can be written as NRRD, got {volume.shape}")
    lps = _LPS_TO_RAS @ volume.affine
    header: dict[str, Any] = {
        "space": "left-posterior-superior",
        "space directions": lps[:3, :3].T.copy(),
        "space origin": lps[:3, 3].copy(),
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip",
    }
    header.update(extra_header or {})
    array = volume.array.astype(np.uint8) if volume.array.dtype == np.bool_ else volume.array
    nrrd.write(str(path), np.ascontiguousarray(array), header, index_order="F")


# --------------------------------------------------------------------------- DICOM


def _dicom_headers(folder: Path) -> list[tuple[Path, Any]]:
    """(file, header without pixel data) of every DICOM image in ``folder`` (recursive)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    headers = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(str(file), stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError, ValueError):
            continue  # not a DICOM file (DICOMDIR, notes, thumbnails ...)
        if "ImagePositionPatient" in ds and "Rows" in ds:
            headers.append((file, ds))
    return headers


def _numbers(datasets: list[Any], tag: str, count: int, folder: Path) -> np.ndarray:
    """(n_slices, count) float values of a geometry tag; InputError when missing or malformed."""
    missing = sum(tag not in ds for ds in datasets)
    if missing:
        raise InputError(f"{folder}: {missing} of {len(datasets)} slices have no {tag}, so the image "
                         "geometry is unknown; export the series again with its geometry tags")
    try:
        values = np.array([[float(v) for v in ds[tag].value] for ds in datasets])
    except (TypeError, ValueError):
        values = np.empty((0, 0))
    if values.shape != (len(datasets), count) or not np.all(np.isfinite(values)):
        raise InputError(f"{folder}: {tag} must hold {count} numbers in every slice; the series is "
                         "malformed")
    return values


def _pixels(ds: Any, file: Path, folder: Path) -> np.ndarray:
    """Return the 2D stored pixel values of one slice; InputError for corrupt or unsupported data."""
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises ValueError, RuntimeError, NotImplementedError ...
        raise InputError(f"{folder}: cannot decode the pixel data of {file.name} ({exc}); the file may "
                         "be truncated or use a compression pydicom cannot decode") from exc
    if pixels.ndim != 2:
        raise InputError(f"{folder}: {file.name} holds pixels of shape {pixels.shape}; multi-frame and "
                         "colour DICOM are not supported - convert the series first (e.g. dcm2niix)")
    return pixels


def _slice_geometry(datasets: list[Any], folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row/column direction cosines and slice normal (LPS) shared by all slices."""
    orientations = _numbers(datasets, "ImageOrientationPatient", 6, folder)
    if np.abs(orientations - orientations[0]).max() > 1e-4:
        raise InputError(
            f"{folder}: slices have different ImageOrientationPatient; "
            "the folder mixes series or is a localizer — give one series"
        )
    row_dir = orientations[0, :3] / np.linalg.norm(orientations[0, :3])
    col_dir = orientations[0, 3:] / np.linalg.norm(orientations[0, 3:])
    normal = np.cross(row_dir, col_dir)
    return row_dir, col_dir, normal / np.linalg.norm(normal)


#: Largest in-plane offset (mm) of a slice from the line through the first slice along the normal.
_SHEAR_TOLERANCE_MM = 0.1


def _refuse_sheared_stack(positions: np.ndarray, along: np.ndarray, normal: np.ndarray, folder: Path) -> None:
    """Slices must be stacked along their normal; a gantry-tilted CT is not (it is sheared).

    A volume with one direction per axis cannot hold a sheared stack: reading it anyway would
    put far slices millimetres off in the world, so it is refused (dcm2niix corrects the tilt).
    """
    offsets = positions - positions[0] - np.outer(along - along[0], normal)
    shift = float(np.linalg.norm(offsets, axis=1).max()) if len(positions) > 1 else 0.0
    if shift > _SHEAR_TOLERANCE_MM:
        raise InputError(
            f"{folder}: slices are not stacked along their normal (up to {shift:.2f} mm off; a "
            "gantry-tilted or sheared series); convert it with dcm2niix, which corrects the tilt"
        )


def read_dicom_series(folder: PathLike, *, series_uid: str | None = None) -> Volume:
    """Read one DICOM series from a folder into a RAS :class:`Volume`.

    Slices are sorted by the projection of ImagePositionPatient on the slice normal;
    the slice spacing is the median distance between consecutive slices (robust to
    one irregular gap, which is reported). RescaleSlope/RescaleIntercept are applied
    per slice, so CT comes out in Hounsfield units (float32).

    Parameters
    ----------
    folder : str or os.PathLike
        Folder (searched recursively) holding the series.
    series_uid : str, optional
        SeriesInstanceUID to read when the folder holds several series.

    Returns
    -------
    Volume
        (columns, rows, slices) array; ``meta`` holds technical tags only (no patient data).

    Raises
    ------
    InputError
        No DICOM images, several series without ``series_uid``, inconsistent slices.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise _missing(folder)
    import pydicom

    headers = _dicom_headers(folder)
    if not headers:
        raise InputError(f"{folder}: no DICOM images with ImagePositionPatient found")
    by_series: dict[str, list[tuple[Path, Any]]] = {}
    for file, ds in headers:
        by_series.setdefault(str(getattr(ds, "SeriesInstanceUID", "unknown")), []).append((file, ds))
    if series_uid is not None:
        if series_uid not in by_series:
            raise InputError(f"{folder}: no series {series_uid}; found {sorted(by_series)}")
        chosen = by_series[series_uid]
    elif len(by_series) > 1:
        listing = ", ".join(
            f"{uid} ({len(v)} slices, {getattr(v[0][1], 'SeriesDescription', '?')})"
            for uid, v in by_series.items()
        )
        raise InputError(
            f"{folder}: holds {len(by_series)} series ({listing}); move each series into a folder of its "
            "own (in Python: read_volume(folder, series_uid=...))"
        )
    else:
        chosen = next(iter(by_series.values()))
    # Pixel data is read only for the chosen series.
    files = [file for file, _ in chosen]
    try:
        datasets = [pydicom.dcmread(str(file)) for file in files]
    except Exception as exc:  # a file readable header-only but not whole: truncated
        raise InputError(f"{folder}: cannot read a slice of the series ({exc}); a file may be "
                         "truncated") from exc
    row_dir, col_dir, normal = _slice_geometry(datasets, folder)
    positions = _numbers(datasets, "ImagePositionPatient", 3, folder)
    order = np.argsort(positions @ normal, kind="stable")
    datasets = [datasets[i] for i in order]
    files = [files[i] for i in order]
    positions = positions[order]
    along = positions @ normal
    _refuse_sheared_stack(positions, along, normal, folder)
    if len(datasets) > 1:
        gaps = np.diff(along)
        if np.any(gaps < 1e-3):
            raise InputError(f"{folder}: two slices share one position; the folder holds duplicates")
        slice_spacing = float(np.median(gaps))
        if np.abs(gaps - slice_spacing).max() > 0.01 * slice_spacing + 1e-3:
            warnings.warn(
                f"{folder}: irregular slice spacing (min {gaps.min():.3f}, max {gaps.max():.3f} mm); "
                f"using the median {slice_spacing:.3f} mm; resample with `myoscan stitch` "
                "for exact geometry",
                IrregularSpacingWarning,
                stacklevel=2,
            )
    else:
        slice_spacing = float(getattr(datasets[0], "SpacingBetweenSlices", 0) or 0)
        slice_spacing = slice_spacing or float(getattr(datasets[0], "SliceThickness", 0) or 0)
        if not slice_spacing > 0:
            raise InputError(f"{folder}: a single slice without SpacingBetweenSlices or SliceThickness; "
                             "its slice spacing is unknown")
    row_spacing, col_spacing = _numbers(datasets, "PixelSpacing", 2, folder)[0]
    pixels = [_pixels(ds, file, folder) for ds, file in zip(datasets, files, strict=True)]
    shapes = {p.shape for p in pixels}
    if len(shapes) != 1:
        raise InputError(f"{folder}: slices have different sizes {sorted(shapes)}")
    n_rows, n_columns = pixels[0].shape
    array = np.empty((n_columns, n_rows, len(datasets)), dtype=np.float32)
    for k, (ds, stored) in enumerate(zip(datasets, pixels, strict=True)):
        slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
        intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
        # Rows are stored bottom-up (j = n_rows - 1 - row), as dcm2niix does, so a
        # NIfTI converted by dcm2niix and this volume share one voxel grid.
        array[:, :, k] = stored[::-1, :].T.astype(np.float32) * slope + intercept
    lps = np.eye(4)
    lps[:3, 0] = row_dir * col_spacing  # i runs along a row (increasing column index)
    lps[:3, 1] = -col_dir * row_spacing  # j runs up a column (decreasing row index)
    lps[:3, 2] = normal * slice_spacing
    lps[:3, 3] = positions[0] + (n_rows - 1) * row_spacing * col_dir
    meta = {tag: str(getattr(datasets[0], tag)) for tag in _DICOM_META_TAGS if tag in datasets[0]}
    meta["SeriesInstanceUID"] = str(getattr(datasets[0], "SeriesInstanceUID", ""))
    meta["slice_positions_mm"] = along.tolist()
    return Volume(array, _LPS_TO_RAS @ lps, folder, meta)


# --------------------------------------------------------------------------- public


def read_volume(path: PathLike, *, series_uid: str | None = None) -> Volume:
    """Read an image file or DICOM series folder.

    Parameters
    ----------
    path : str or os.PathLike
        ``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.seg.nrrd`` (3D Slicer; merged into
        one label map, segment names in ``meta['segment_names']``) or a DICOM folder.
    series_uid : str, optional
        For DICOM folders holding several series.

    Returns
    -------
    Volume

    Raises
    ------
    InputError
        Missing, unreadable or unsupported file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.nii.gz"
    >>> _ = write_volume(Volume(np.ones((2, 2, 2), np.int16), np.diag([2., 2., 3., 1.])), out)
    >>> read_volume(out).spacing_mm
    (2.0, 2.0, 3.0)
    """
    source = Path(path)
    if not source.exists():
        raise _missing(source)
    if source.is_dir():
        return read_dicom_series(source, series_uid=series_uid)
    suffix = image_suffix(source)
    if suffix in NIFTI_SUFFIXES:
        return _read_nifti(source)
    if suffix in NRRD_SUFFIXES:
        return _read_nrrd(source)
    if suffix in (".dcm", ".ima"):
        return read_dicom_series(source.parent, series_uid=series_uid)
    raise InputError(
        f"{source.name}: unsupported image format {suffix!r}; use NIfTI (.nii/.nii.gz), "
        "NRRD (.nrrd/.nhdr/.seg.nrrd) or a DICOM folder"
    )


def write_volume(
    volume: Volume, path: PathLike, *, dtype: npt.DTypeLike | None = None,
    nrrd_header: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``volume`` as NIfTI or NRRD (by extension), atomically, keeping its geometry.

    Parameters
    ----------
    volume : Volume
        Image to write.
    path : str or os.PathLike
        Destination ending in ``.nii``, ``.nii.gz``, ``.nrrd`` or ``.seg.nrrd``.
    dtype : dtype, optional
        Cast the array before writing.
    nrrd_header : mapping, optional
        Extra NRRD header fields (e.g. Slicer ``Segment0_Name``).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    target = Path(path)
    if dtype is not None:
        volume = volume.with_array(volume.array.astype(dtype))
    suffix = image_suffix(target)
    if suffix not in NIFTI_SUFFIXES + (".nrrd", ".seg.nrrd"):
        raise InputError(f"{target.name}: cannot write {suffix!r}; use .nii, .nii.gz or .nrrd")
    with atomic_path(target) as tmp:
        if suffix in NIFTI_SUFFIXES:
            _write_nifti(volume, tmp)
        else:
            _write_nrrd(volume, tmp, nrrd_header)
    return target


def grid_difference(a: Volume, b: Volume, *, atol_mm: float = GEOMETRY_ATOL_MM) -> str | None:
    """Describe how the voxel grids of ``a`` and ``b`` differ, or ``None`` if they match.

    Examples
    --------
    >>> a = Volume(np.zeros((2, 2, 2)), np.eye(4))
    >>> grid_difference(a, a) is None
    True
    """
    if a.spatial_shape != b.spatial_shape:
        return f"shape {a.spatial_shape} vs {b.spatial_shape}"
    if not np.allclose(a.spacing_mm, b.spacing_mm, atol=atol_mm, rtol=0):
        return f"spacing {a.spacing_mm} mm vs {b.spacing_mm} mm"
    if not np.allclose(a.origin_mm, b.origin_mm, atol=atol_mm, rtol=0):
        shift = np.linalg.norm(np.subtract(a.origin_mm, b.origin_mm))
        return (
            f"origin {np.round(a.origin_mm, 3).tolist()} mm vs "
            f"{np.round(b.origin_mm, 3).tolist()} mm ({shift:.3g} mm apart)"
        )
    if not np.allclose(a.direction, b.direction, atol=atol_mm, rtol=0):
        return f"direction cosines differ by up to {np.abs(a.direction - b.direction).max():.3g}"
    return None


def check_same_grid(a: Volume, b: Volume, *, atol_mm: float = GEOMETRY_ATOL_MM) -> None:
    """Raise :class:`GeometryMismatchError` unless ``a`` and ``b`` share one voxel grid.

    Shapes must match exactly; spacing, origin and direction within ``atol_mm``.
    The message names both files and the first difference found.
    """
    difference = grid_difference(a, b, atol_mm=atol_mm)
    if difference is not None:
        raise GeometryMismatchError(
            f"{a.name} and {b.name} are not on the same voxel grid: {difference}. "
            "Resample one onto the other first."
        )


_MASK_NAME = re.compile(r"^(?P<name>.+?)(\.seg\.nrrd|\.nii\.gz|\.nii|\.nrrd|\.nhdr)$", re.IGNORECASE)


def read_mask_folder(folder: PathLike) -> tuple[Volume, dict[int, str]]:
    """Combine a folder of binary masks (file name = structure name) into one label map.

    This is how TotalSegmentator writes its output. Labels are numbered 1..N in sorted
    file-name order; all masks must share one grid.

    Returns
    -------
    Volume
        Label map (uint8 or uint16).
    dict of int to str
        Label id -> structure name (file name without extension).

    Raises
    ------
    InputError
        Empty folder, masks on different grids, or overlapping masks.
    """
    source = Path(folder)
    if not source.is_dir():
        raise _missing(source)
    # Hidden files are skipped: macOS leaves "._<name>.nii.gz" resource forks beside copied masks.
    files = sorted(p for p in source.iterdir()
                   if p.is_file() and not p.name.startswith(".") and _MASK_NAME.match(p.name))
    if not files:
        raise InputError(f"{source}: no NIfTI/NRRD mask files found")
    names: dict[int, str] = {}
    labels: np.ndarray | None = None
    reference: Volume | None = None
    for number, file in enumerate(files, start=1):
        mask = require_3d(read_volume(file))
        if reference is None:
            reference = mask
            labels = np.zeros(mask.spatial_shape, dtype=np.uint8 if len(files) < 256 else np.uint16)
        else:
            check_same_grid(reference, mask)
        assert labels is not None
        inside = mask.array > 0
        clash = np.count_nonzero(inside & (labels > 0))
        if clash:
            raise InputError(
                f"{file.name} overlaps {clash} voxels already claimed by another mask in {source}; "
                "masks must be disjoint to form one label map"
            )
        labels[inside] = number
        names[number] = _MASK_NAME.match(file.name)["name"]  # type: ignore[index]
    assert reference is not None and labels is not None
    # The label map is the folder's: messages about it must name the folder, not its first mask.
    return Volume(labels, reference.affine.copy(), source), names
