"""Find what a report shows: a subject's derivatives, its images, the cohort tables.

The batch pipeline (``myoscan run``) writes per subject, into
``DERIV/sub-XX[/ses-YY]/anat/``, the label map ``<key>_dseg.nii.gz`` (+ ``.json`` side-car),
``<key>_metrics.tsv``, ``<key>_indices.tsv``, ``<key>_provenance.json`` and derived images
(``<key>_water.nii.gz``, ``<key>_desc-stitched_water.nii.gz`` ...), where ``<key>`` is
``sub-XX`` or ``sub-XX_ses-YY``. Inputs the pipeline did not copy (the acquired water image,
a segmentation found under the dataset's ``derivatives/``) are found through the provenance
record: ``dataset`` (the BIDS root) joined with the keys of ``inputs_sha256``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from myoscan._typing import PathLike
from myoscan.errors import InputError
from myoscan.outputs import read_table

__all__ = [
    "DISPLAY_CONTRASTS",
    "SubjectFiles",
    "find_cohort_root",
    "find_subject_files",
    "list_subject_folders",
    "participant_info",
    "read_cohort_table",
    "sex_labels",
]

log = logging.getLogger(__name__)

#: Contrasts that can be shown under the overlay, in order of preference (issue 9: water,
#: else CT, else fat fraction; then the other Dixon and weighted images).
DISPLAY_CONTRASTS: tuple[str, ...] = ("water", "ct", "fatfrac", "inphase", "T1w", "T2w", "outphase", "fat")

_KEY = r"sub-[A-Za-z0-9]+(?:_ses-[A-Za-z0-9]+)?"
_DERIVATIVE = re.compile(rf"^(?P<key>{_KEY})_(?:dseg\.nii(?:\.gz)?|metrics\.tsv|provenance\.json)$")
_IMAGE_SUFFIXES = (".nii.gz", ".nii")
#: Participant columns a report may show: nothing else from participants.tsv is read.
_PARTICIPANT_COLUMNS = ("age", "sex")


def _bids_suffix(name: str) -> str | None:
    """``sub-01_desc-stitched_water.nii.gz`` -> ``'water'``; None if not a NIfTI name."""
    stem = next((name[: -len(s)] for s in _IMAGE_SUFFIXES if name.endswith(s)), None)
    return None if stem is None else stem.rsplit("_", 1)[-1]


@dataclass(frozen=True)
class SubjectFiles:
    """The files of one subject (or subject session) a report uses.

    Attributes
    ----------
    key : str
        ``sub-XX`` or ``sub-XX_ses-YY``: the prefix of the derivative file names.
    folder : pathlib.Path
        Folder holding the subject's derivatives.
    dseg : pathlib.Path
        Label map.
    dseg_sidecar, metrics, indices, provenance : pathlib.Path or None
        JSON side-car of the label map, per-label metric table, regional-index table and
        provenance record, when present.
    images : mapping of str to pathlib.Path
        Contrast -> image, derivatives first, then inputs listed in the provenance record.
    dataset : pathlib.Path or None
        BIDS root named in the provenance record.
    inputs_sha256 : mapping of str to str
        Input hashes of the provenance record, keyed by path relative to ``dataset``.
    """

    key: str
    folder: Path
    dseg: Path
    dseg_sidecar: Path | None = None
    metrics: Path | None = None
    indices: Path | None = None
    provenance: Path | None = None
    images: Mapping[str, Path] = field(default_factory=dict)
    dataset: Path | None = None
    inputs_sha256: Mapping[str, str] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        """``sub-XX``."""
        return self.key.split("_", 1)[0]

    @property
    def session(self) -> str | None:
        """``ses-YY`` or None."""
        parts = self.key.split("_", 1)
        return parts[1] if len(parts) == 2 else None

    def sidecar(self) -> dict[str, Any]:
        """Read the label map's JSON side-car (empty when absent or unreadable)."""
        return _read_json(self.dseg_sidecar) or {}

    def provenance_record(self) -> dict[str, Any]:
        """Read the provenance record (empty when absent or unreadable)."""
        return _read_json(self.provenance) or {}

    def input_path(self, relative: str) -> Path | None:
        """Absolute path of a provenance input, or None without a dataset root."""
        return None if self.dataset is None else self.dataset / relative


def _read_json(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: cannot read JSON (%s); ignored", path.name, exc)
        return None
    return data if isinstance(data, dict) else None


def _derivative_folders(folder: Path) -> dict[str, Path]:
    """Case key -> folder, for every folder at or below ``folder`` holding derivatives."""
    found: dict[str, Path] = {}
    candidates = [folder, *sorted(folder.glob("anat")), *sorted(folder.glob("ses-*/anat"))]
    for candidate in candidates:
        for path in sorted(candidate.iterdir()) if candidate.is_dir() else ():
            match = _DERIVATIVE.match(path.name)
            if match:
                found.setdefault(match["key"], candidate)
    return found


def _optional(folder: Path, name: str) -> Path | None:
    path = folder / name
    return path if path.is_file() else None


def find_subject_files(folder: PathLike) -> SubjectFiles:
    """Locate a subject's derivatives, label map and displayable images.

    Parameters
    ----------
    folder : str or os.PathLike
        ``DERIV/sub-XX/anat``, ``DERIV/sub-XX`` (one session) or ``DERIV/sub-XX/ses-YY``.

    Returns
    -------
    SubjectFiles

    Raises
    ------
    InputError
        The folder does not exist, holds no myoscan derivatives, holds several sessions,
        or has no label map (``<key>_dseg.nii.gz`` here or among the provenance inputs).
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(
            f"{root}: no such folder; pass a subject's derivatives folder, e.g. DERIV/sub-01/anat"
        )
    cases = _derivative_folders(root)
    if not cases:
        hint = (" It holds sub-* folders: for the cohort report use `myoscan report --cohort`."
                if any(root.glob("sub-*")) else " Run `myoscan run` first.")  # fmt: skip
        raise InputError(f"{root}: no myoscan derivatives (<sub>_dseg.nii.gz, _metrics.tsv or "
                         f"_provenance.json) here or in anat/ or ses-*/anat/.{hint}")  # fmt: skip
    if len(cases) > 1:
        raise InputError(
            f"{root}: holds several cases ({', '.join(sorted(cases))}); pass one of their "
            f"folders, e.g. {cases[sorted(cases)[0]]}"
        )
    key, anat = next(iter(cases.items()))
    provenance = _optional(anat, f"{key}_provenance.json")
    record = _read_json(provenance) or {}
    dataset = Path(record["dataset"]) if isinstance(record.get("dataset"), str) else None
    inputs = {str(k): str(v) for k, v in (record.get("inputs_sha256") or {}).items()}
    local = {p.name: p for p in sorted(anat.glob(f"{key}_*.nii*"))}
    dseg = local.get(f"{key}_dseg.nii.gz") or local.get(f"{key}_dseg.nii")
    if dseg is None:
        dseg = _input_of_suffix(inputs, dataset, "dseg")
    if dseg is None:
        raise InputError(
            f"{anat}: no label map: neither {key}_dseg.nii.gz here nor a *_dseg.nii.gz among "
            f"the inputs of {key}_provenance.json; run `myoscan run` with the segment step"
        )
    sidecar = dseg.with_name(dseg.name.split(".nii")[0] + ".json")
    images: dict[str, Path] = {}
    for contrast in DISPLAY_CONTRASTS:
        path = _local_image(local, contrast) or _input_of_suffix(inputs, dataset, contrast)
        if path is not None:
            images[contrast] = path
    return SubjectFiles(
        key=key,
        folder=anat,
        dseg=dseg,
        dseg_sidecar=sidecar if sidecar.is_file() else None,
        metrics=_optional(anat, f"{key}_metrics.tsv"),
        indices=_optional(anat, f"{key}_indices.tsv"),
        provenance=provenance,
        images=images,
        dataset=dataset,
        inputs_sha256=inputs,
    )


def _local_image(local: Mapping[str, Path], contrast: str) -> Path | None:
    """Find a derivative image of ``contrast``; a stitched one (on the label grid) comes first."""
    hits = [p for name, p in local.items() if _bids_suffix(name) == contrast and "_chunk-" not in name]
    hits.sort(key=lambda p: ("desc-stitched" not in p.name, len(p.name)))
    return hits[0] if hits else None


def _input_of_suffix(inputs: Mapping[str, str], dataset: Path | None, suffix: str) -> Path | None:
    """Find the single existing provenance input with BIDS ``suffix`` (not multi-station inputs)."""
    if dataset is None:
        return None
    hits = [rel for rel in inputs if _bids_suffix(Path(rel).name) == suffix]
    if len(hits) != 1:
        return None
    path = dataset / hits[0]
    return path if path.is_file() else None


def find_cohort_root(folder: PathLike, *, max_levels: int = 4) -> Path | None:
    r"""Find the derivatives root above a subject folder: the first one holding a cohort table.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "sub-01" / "anat").mkdir(parents=True)
    >>> _ = (root / "cohort_metrics.csv").write_text("subject,name,volume_ml\\n")
    >>> find_cohort_root(root / "sub-01" / "anat") == root
    True
    """
    start = Path(folder).resolve()
    for candidate in [start, *start.parents][: max_levels + 1]:
        if any((candidate / f"cohort_metrics.{ext}").is_file() for ext in ("parquet", "csv")):
            return candidate
    return None


def read_cohort_table(root: PathLike, kind: str = "metrics") -> pd.DataFrame | None:
    """``cohort_<kind>.parquet`` (preferred) or ``.csv`` under ``root``; None if neither exists."""
    for ext in ("parquet", "csv"):
        path = Path(root) / f"cohort_{kind}.{ext}"
        if path.is_file():
            return read_table(path)
    return None


def list_subject_folders(deriv: PathLike) -> list[Path]:
    """Every subject (and session) derivatives folder under a derivatives root, sorted.

    Raises
    ------
    InputError
        ``deriv`` is not a folder.
    """
    root = Path(deriv)
    if not root.is_dir():
        raise InputError(f"{root}: no such derivatives folder; pass the output folder of `myoscan run`")
    folders = {
        p.parent
        for pattern in (
            "sub-*/anat/*_provenance.json",
            "sub-*/ses-*/anat/*_provenance.json",
            "sub-*/anat/*_dseg.nii*",
            "sub-*/ses-*/anat/*_dseg.nii*",
        )
        for p in root.glob(pattern)
    }
    return sorted(folders)


def participant_info(
    subject: str,
    *,
    dataset: Path | None = None,
    cohort: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Age and sex of a subject: the only participant fields a report shows.

    Read from ``participants.tsv`` of the BIDS dataset when available, else from the
    participant columns joined into the cohort table. Names, dates of birth and any other
    column are never read into a report.

    Parameters
    ----------
    subject : str
        ``sub-XX``.
    dataset : pathlib.Path, optional
        BIDS root (from the provenance record).
    cohort : pandas.DataFrame, optional
        Cohort table with a ``subject`` column.

    Returns
    -------
    dict
        ``{'age': float or None, 'sex': str or None}``.
    """
    row: Mapping[str, Any] = {}
    table = None
    if dataset is not None and (dataset / "participants.tsv").is_file():
        table = pd.read_csv(dataset / "participants.tsv", sep="\t", na_values=["n/a"], dtype=str)
        table = table.rename(columns={"participant_id": "subject"})
    elif cohort is not None:
        table = cohort
    if table is not None and "subject" in table.columns:
        lower = {str(c).lower(): c for c in table.columns}
        hits = table.loc[table["subject"].astype(str) == subject]
        if not hits.empty:
            row = {name: hits.iloc[0][lower[name]] for name in _PARTICIPANT_COLUMNS if name in lower}
    age = pd.to_numeric(pd.Series([row.get("age")]), errors="coerce").iloc[0]
    sex = sex_labels(pd.Series([row.get("sex")], dtype=object)).iloc[0]
    return {"age": None if pd.isna(age) else float(age), "sex": None if pd.isna(sex) else str(sex)}


def sex_labels(values: pd.Series) -> pd.Series:
    """Map sex codes to ``'female'``/``'male'`` (:func:`myoscan.cohort.normalize_sex`), others to ``'other'``.

    Unlike the statistics, a report never fails on an unexpected code (BIDS allows ``O``).

    Examples
    --------
    >>> sex_labels(pd.Series(["F", "male", 1, "O", None])).tolist()
    ['female', 'male', 'male', 'other', nan]
    """
    from myoscan.cohort import normalize_sex

    mapping = {}
    for value in pd.unique(values.dropna()):
        try:
            mapping[value] = normalize_sex(pd.Series([value])).iloc[0]
        except InputError:
            mapping[value] = "other"
    return values.map(mapping).astype(object)
