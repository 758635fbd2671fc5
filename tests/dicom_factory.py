"""Build small synthetic DICOM series with pydicom (shared by io and stitch tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def write_series(
    folder: Path,
    pixels: np.ndarray,
    *,
    origin_lps: tuple[float, float, float] = (0.0, 0.0, 0.0),
    row_dir: tuple[float, float, float] = (1.0, 0.0, 0.0),
    col_dir: tuple[float, float, float] = (0.0, 1.0, 0.0),
    pixel_spacing: tuple[float, float] = (1.0, 1.0),
    slice_positions: np.ndarray | None = None,
    slice_spacing: float = 1.0,
    slope: float = 1.0,
    intercept: float = 0.0,
    modality: str = "CT",
    series_uid: str | None = None,
    series_time: str = "120000",
    series_description: str = "synthetic",
    shuffle_seed: int | None = 0,
) -> Path:
    """Write ``pixels`` (slices, rows, cols) of stored values as one DICOM file per slice.

    Slice ``k`` lies at ``origin + slice_positions[k] * normal`` (LPS), normal = row x col.
    Files are written in shuffled order with random names so readers must sort by position.
    """
    folder.mkdir(parents=True, exist_ok=True)
    n_slices, n_rows, n_cols = pixels.shape
    row = np.asarray(row_dir, float)
    col = np.asarray(col_dir, float)
    normal = np.cross(row, col)
    if slice_positions is None:
        slice_positions = np.arange(n_slices) * slice_spacing
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid()
    order = np.arange(n_slices)
    if shuffle_seed is not None:
        np.random.default_rng(shuffle_seed).shuffle(order)
    for k in order:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE if modality == "CT" else MR_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"{generate_uid()}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = modality
        ds.PatientName = "Phantom^Synthetic"
        ds.PatientID = "SYN-0001"
        ds.PatientBirthDate = "19700101"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SeriesTime = series_time
        ds.AcquisitionTime = series_time
        ds.SeriesDescription = series_description
        ds.InstanceNumber = int(k) + 1
        position = np.asarray(origin_lps, float) + float(slice_positions[k]) * normal
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row, *col)]
        ds.PixelSpacing = [f"{pixel_spacing[0]:.6f}", f"{pixel_spacing[1]:.6f}"]
        ds.SliceThickness = f"{slice_spacing:.6f}"
        ds.Rows, ds.Columns = n_rows, n_cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope = f"{slope:g}"
        ds.RescaleIntercept = f"{intercept:g}"
        ds.PixelData = np.ascontiguousarray(pixels[k].astype(np.int16)).tobytes()
        ds.save_as(ds.filename, enforce_file_format=True)
    return folder


def read_back(folder: Path) -> list[pydicom.Dataset]:
    """All datasets in ``folder`` (for assertions on what was written)."""
    return [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
