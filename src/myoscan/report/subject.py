"""The QC report of one subject: overlays, metrics table, QC flags, provenance.

:func:`subject_report` gathers a subject's derivatives (:func:`~myoscan.report.files.find_subject_files`),
runs the QC checks (:mod:`myoscan.report.qc`) and returns the HTML page as a string with
the flags as a table; :func:`write_subject_report` writes it atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from myoscan import __version__
from myoscan._typing import PathLike
from myoscan.errors import InputError
from myoscan.io import Volume, grid_difference, read_volume
from myoscan.labels import Structure, load_catalog
from myoscan.outputs import read_table, write_text
from myoscan.report import markup, qc, sections
from myoscan.report.files import (
    SubjectFiles,
    find_cohort_root,
    find_subject_files,
    participant_info,
    read_cohort_table,
)
from myoscan.report.labelmap import LabelProfiles, RasGrid, label_profiles, to_ras_grid
from myoscan.report.sections import ShownImage

__all__ = ["AXIAL_LEVELS_PCT", "ReportOptions", "SubjectReport", "subject_report", "write_subject_report"]

log = logging.getLogger(__name__)

#: Axial levels shown, in % of the labelled superior-inferior range (inferior = 0 %).
AXIAL_LEVELS_PCT: tuple[float, ...] = (10.0, 30.0, 50.0, 70.0, 90.0)
#: Colours of labels the catalog does not know (Sasha Trubetskoy's distinct colours).
_FALLBACK_COLORS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
                    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
                    (0, 128, 128), (170, 110, 40)]  # fmt: skip


@dataclass(frozen=True)
class ReportOptions:
    """Settings of the subject and cohort reports.

    Parameters
    ----------
    levels_pct : tuple of float
        Axial levels in % of the labelled superior-inferior range.
    convention : {'radiological', 'neurological'}
        Radiological: patient's right on the image left (default, as the seed figures).
    z_threshold : float
        |robust z| above which a volume (or cohort measure) is an outlier.
    check_swap : bool
        Run the fat-water swap detector when water and fat images are available.
    scheme : str, optional
        Label scheme; default: the label map's side-car, else names from the metrics table.
    """

    levels_pct: tuple[float, ...] = AXIAL_LEVELS_PCT
    convention: Literal["radiological", "neurological"] = "radiological"
    z_threshold: float = qc.ROBUST_Z_THRESHOLD
    check_swap: bool = True
    scheme: str | None = None

    def __post_init__(self) -> None:
        if not self.levels_pct or not all(0.0 <= p <= 100.0 for p in self.levels_pct):
            raise InputError(f"axial levels must be percentages in [0, 100], got {list(self.levels_pct)}")
        if self.convention not in ("radiological", "neurological"):
            raise InputError(f"convention must be radiological or neurological, got {self.convention!r}")
        if not self.z_threshold > 0:
            raise InputError(f"the robust z threshold must be > 0, got {self.z_threshold}")


@dataclass(frozen=True)
class SubjectReport:
    """A rendered subject report.

    Attributes
    ----------
    key : str
        ``sub-XX`` or ``sub-XX_ses-YY``.
    html : str
        The self-contained page.
    flags : pandas.DataFrame
        QC flags (``check, severity, structure, value, message``), most severe first.
    """

    key: str
    html: str
    flags: pd.DataFrame

    @property
    def status(self) -> str:
        """Worst QC severity of the subject."""
        return qc.worst_severity(self.flags["severity"]) if not self.flags.empty else "n/a"


# ------------------------------------------------------------------------------ inputs


def _scheme_name(options: ReportOptions, sidecar: Mapping[str, Any], record: Mapping[str, Any]) -> str | None:
    """Name the label scheme: ``--scheme``, else the side-car of the label map, else the run parameters."""
    catalog = load_catalog()
    if options.scheme:
        return catalog.scheme(options.scheme).name
    parameters = record.get("parameters") or {}
    name = sidecar.get("scheme") or sidecar.get("label_scheme") or parameters.get("scheme")
    if not name:
        return None
    try:
        return catalog.scheme(str(name)).name
    except InputError:
        log.warning(
            "unknown label scheme %r in the side-car or provenance; colours from structure names", name
        )
        return None


def _label_names(
    ids: np.ndarray, scheme: str | None, metrics: pd.DataFrame | None, sidecar: Mapping[str, Any]
) -> dict[int, str]:
    """Structure name per label id: scheme, then metrics table, then side-car, then ``label_<id>``."""
    names: dict[int, str] = {}
    raw = sidecar.get("labels") or sidecar.get("label_names") or {}
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            if str(key).isdigit() and isinstance(value, str):
                names[int(key)] = value
    if metrics is not None and {"label_id", "name"} <= set(metrics.columns):
        names.update(
            {
                int(i): str(n)
                for i, n in zip(metrics["label_id"], metrics["name"], strict=True)
                if pd.notna(i) and pd.notna(n)
            }
        )
    if scheme is not None:
        names.update({i: s.name for i, s in load_catalog().scheme(scheme).labels.items()})
    return {int(i): names.get(int(i), f"label_{int(i)}") for i in ids}


def _structures(names: Mapping[int, str]) -> dict[int, Structure | None]:
    catalog = load_catalog()
    found: dict[int, Structure | None] = {}
    for label_id, name in names.items():
        try:
            found[label_id] = catalog.resolve(name)
        except InputError:
            found[label_id] = None
    return found


def _colors(structures: Mapping[int, Structure | None]) -> dict[int, tuple[int, int, int]]:
    colors = {}
    spare = iter(_FALLBACK_COLORS * (len(structures) // len(_FALLBACK_COLORS) + 1))
    for label_id, structure in structures.items():
        colors[label_id] = tuple(structure.color) if structure is not None else next(spare)
    return colors  # type: ignore[return-value]


def _metrics(
    table: pd.DataFrame | None, files: SubjectFiles, profiles: LabelProfiles, names: Mapping[int, str]
) -> tuple[pd.DataFrame, str]:
    """Use the subject's metric table, or count volumes from the label map when there is none."""
    if table is not None and {"label_id", "volume_ml"} <= set(table.columns):
        if "name" not in table.columns:
            table = table.assign(name=[names.get(int(i), f"label_{i}") for i in table["label_id"]])
        return table, f"from {files.metrics.name if files.metrics else 'the metrics table'}"
    if table is not None:
        log.warning("%s lacks label_id/volume_ml columns; volumes counted from the label map", files.metrics)
    counted = pd.DataFrame({
        "label_id": profiles.ids,
        "name": [names[int(i)] for i in profiles.ids],
        "n_voxels": profiles.n_voxels,
        "volume_ml": profiles.volume_ml,
    })  # fmt: skip
    return counted, f"counted from {files.dseg.name} (no metrics table found)"


def _on_label_grid(image: Volume, labels: Volume) -> tuple[np.ndarray, str | None]:
    """Put the image on the label grid: as is when the grids match, else resampled (linear)."""
    from scipy import ndimage

    if image.array.ndim != 3:
        raise InputError(f"{image.name}: expected a 3D image to display, got shape {image.shape}")
    difference = grid_difference(image, labels)
    if difference is None:
        return image.array, None
    to_image = np.linalg.inv(image.affine) @ labels.affine
    resampled = ndimage.affine_transform(
        np.asarray(image.array, dtype=np.float32),
        to_image[:3, :3],
        offset=to_image[:3, 3],
        output_shape=labels.spatial_shape,
        order=1,
        mode="constant",
        cval=np.nan,
    )
    return resampled, f"resampled onto the label grid ({difference})"


def _shown(contrast: str, path: Path, labels: Volume, array: np.ndarray, note: str | None) -> ShownImage:
    return ShownImage(contrast, path, to_ras_grid(Volume(np.asarray(array), labels.affine)), note)


def _pick_image(files: SubjectFiles, explicit: PathLike | None, labels: Volume) -> ShownImage | None:
    """Choose the image under the overlay: ``explicit``, else one on the label grid, else one resampled."""
    if explicit is not None:
        path = Path(explicit)
        stem = path.name.lower().split(".nii")[0].split(".nrrd")[0]
        contrast = next((c for c in ("ct", "fatfrac", "water", "fat") if stem.endswith(c)), "image")
        return _shown(contrast, path, labels, *_on_label_grid(read_volume(path), labels))
    readable = []
    for contrast, path in files.images.items():
        try:
            volume = read_volume(path)
        except InputError as exc:
            log.warning("%s: cannot read (%s); trying the next image", path.name, exc)
            continue
        if volume.array.ndim == 3 and grid_difference(volume, labels) is None:
            return _shown(contrast, path, labels, volume.array, None)
        readable.append((contrast, path, volume))
    for contrast, path, volume in readable:
        if volume.array.ndim == 3:
            return _shown(contrast, path, labels, *_on_label_grid(volume, labels))
    return None


def _cohort_table(cohort: pd.DataFrame | PathLike | bool | None, files: SubjectFiles) -> pd.DataFrame | None:
    if cohort is False:
        return None
    if isinstance(cohort, pd.DataFrame):
        return cohort
    if cohort is None or cohort is True:
        root = find_cohort_root(files.folder)
        return None if root is None else read_cohort_table(root, "metrics")
    table = read_table(cohort)
    missing = [c for c in ("name", "volume_ml") if c not in table.columns]
    if missing:  # named explicitly, so a wrong table is an error, not a silently skipped check
        raise InputError(
            f"{Path(cohort).name}: not a cohort metric table (no {', '.join(missing)} column); give "
            "cohort_metrics.csv of `myoscan run` or a table of name, volume_ml per subject and label"
        )
    return table


# ------------------------------------------------------------------------------ QC


def _provenance_flags(files: SubjectFiles, used: list[Path]) -> list[qc.QCFlag]:
    """Flag inputs used by the report whose hash differs from the provenance record."""
    from myoscan.pipeline.provenance import file_sha256  # the hash the pipeline recorded

    if files.dataset is None or not files.inputs_sha256:
        return [qc.QCFlag("provenance", "n/a", "no provenance record with input hashes")]
    flags = []
    resolved = {p.resolve() for p in used}
    for relative, expected in files.inputs_sha256.items():
        path = files.input_path(relative)
        if path is None or path.resolve() not in resolved or not path.is_file():
            continue
        if file_sha256(path) != expected:
            flags.append(
                qc.QCFlag(
                    "provenance",
                    "warn",
                    f"{Path(relative).name} changed since the pipeline run "
                    "(hash differs from the provenance record); re-run the pipeline",
                )
            )
    return flags or [qc.QCFlag("provenance", "pass", "inputs used here match the provenance record")]


def _swap_flags(files: SubjectFiles, labels: Volume, options: ReportOptions) -> list[qc.QCFlag]:
    """Run the swap detector on the subject's water and fat (with IP/OP when on the same grid)."""
    if not options.check_swap:
        return [qc.QCFlag("swap", "n/a", "fat-water swap check switched off")]
    if "water" not in files.images or "fat" not in files.images:
        return [qc.QCFlag("swap", "n/a", "no water and fat images to check for fat-water swaps")]
    water, fat = read_volume(files.images["water"]), read_volume(files.images["fat"])
    if grid_difference(water, fat) is not None:
        return [
            qc.QCFlag("swap", "n/a", f"{water.name} and {fat.name} are not on one grid; swap check skipped")
        ]
    echoes = {}
    if "inphase" in files.images and "outphase" in files.images:
        ip, op = read_volume(files.images["inphase"]), read_volume(files.images["outphase"])
        if grid_difference(ip, water) is None and grid_difference(op, water) is None:
            echoes = {"in_phase": ip.array, "opposed_phase": op.array}
    same = grid_difference(water, labels) is None
    return qc.swap_flags(
        water.array, fat.array, water.spacing_mm, labels=labels.array if same else None, **echoes
    )


def _expected_from_scheme(scheme: str | None, present: Mapping[int, Structure | None]) -> list[str]:
    if scheme is None:
        return []
    regions = {s.region for s in present.values() if s is not None}
    return [s.name for s in load_catalog().scheme(scheme).labels.values() if s.region in regions]


# ------------------------------------------------------------------------------ page


@dataclass(frozen=True)
class _Subject:
    """What a subject page is built from (label map, its profiles, names, colours, metrics)."""

    files: SubjectFiles
    labels: Volume
    grid: RasGrid
    profiles: LabelProfiles
    scheme: str | None
    names: Mapping[int, str]
    structures: Mapping[int, Structure | None]
    colors: Mapping[int, tuple[int, int, int]]
    metrics: pd.DataFrame
    source: str
    sidecar: Mapping[str, Any]
    record: Mapping[str, Any]


def _gather(folder: PathLike, options: ReportOptions) -> _Subject:
    files = find_subject_files(folder)
    labels = read_volume(files.dseg)
    if labels.array.ndim != 3:
        raise InputError(f"{files.dseg.name}: expected a 3D label map, got shape {labels.shape}")
    sidecar, record = files.sidecar(), files.provenance_record()
    scheme = _scheme_name(options, sidecar, record)
    grid = to_ras_grid(labels)
    profiles = label_profiles(grid.array, grid.spacing_mm, name=files.dseg.name)
    table = read_table(files.metrics) if files.metrics is not None else None
    names = _label_names(profiles.ids, scheme, table, sidecar)
    structures = _structures(names)
    metrics, source = _metrics(table, files, profiles, names)
    metrics = metrics.loc[metrics["label_id"].isin(profiles.ids)]
    colors = _colors(structures)
    return _Subject(files, labels, grid, profiles, scheme, names, structures, colors, metrics, source,
                    sidecar, record)  # fmt: skip


def _subject_flags(
    subject: _Subject, cohort: pd.DataFrame | None, shown: ShownImage | None, options: ReportOptions
) -> tuple[pd.DataFrame, dict[str, float]]:
    """All QC flags of a subject and the robust z of each structure's volume."""
    files, scheme = subject.files, subject.scheme
    volume = pd.to_numeric(subject.metrics["volume_ml"], errors="coerce")
    volumes = {
        str(n): float(v) for n, v in zip(subject.metrics["name"], volume, strict=True) if np.isfinite(v)
    }
    volume_flags, z = qc.volume_flags(volumes, cohort, threshold=options.z_threshold)
    used = [files.dseg, *([shown.path] if shown else [])]
    swap_inputs = ("water", "fat", "inphase", "outphase") if options.check_swap else ()
    used += [files.images[c] for c in swap_inputs if c in files.images]
    known = load_catalog().scheme(scheme).ids if scheme else None
    expected = _expected_from_scheme(scheme, subject.structures)
    flags = qc.flags_table([
        *qc.coverage_flags(subject.profiles, subject.names),
        *volume_flags,
        *qc.missing_flags(set(subject.names.values()), cohort=cohort, expected=expected, scheme=scheme),
        *qc.asymmetry_flags(volumes),
        *qc.unknown_label_flags(subject.profiles.ids, known, scheme),
        *_swap_flags(files, subject.labels, options),
        *_provenance_flags(files, used),
    ])  # fmt: skip
    return flags, z


def subject_report(
    folder: PathLike,
    *,
    image: PathLike | None = None,
    cohort: pd.DataFrame | PathLike | bool | None = None,
    options: ReportOptions = ReportOptions(),
    index_href: str | None = None,
) -> SubjectReport:
    """Build the QC report of one subject.

    Parameters
    ----------
    folder : str or os.PathLike
        The subject's derivatives folder (``DERIV/sub-XX[/ses-YY]/anat`` or a parent of it).
    image : str or os.PathLike, optional
        Image under the overlay; default: water, else CT, else fat fraction found in the
        derivatives folder or among the provenance inputs. Resampled onto the label grid
        when its grid differs.
    cohort : DataFrame, path, bool or None
        Cohort metric table for the volume and missing-label checks. None or True: look for
        ``cohort_metrics.parquet/.csv`` in the derivatives root above ``folder``; False: none.
        A table given explicitly must have ``name`` and ``volume_ml`` columns.
    options : ReportOptions
        Levels, display convention, thresholds, scheme.
    index_href : str, optional
        Relative link back to a cohort index page.

    Returns
    -------
    SubjectReport

    Raises
    ------
    InputError
        Missing folder or label map, unreadable files, a label map that is not integer.
    """
    subject = _gather(folder, options)
    cohort_table = _cohort_table(cohort, subject.files)
    shown = _pick_image(subject.files, image, subject.labels)
    flags, z = _subject_flags(subject, cohort_table, shown, options)
    files, profiles = subject.files, subject.profiles
    person = participant_info(files.subject, dataset=files.dataset, cohort=cohort_table)
    title = files.subject + (f" {files.session}" if files.session else "")
    age = None if person["age"] is None else f"{person['age']:g}"
    facts = [("age (years)", age), ("sex", person["sex"]), ("label scheme", subject.scheme),
             ("labels", len(profiles.ids)), ("myoscan", subject.record.get("myoscan_version"))]  # fmt: skip
    legend = sections.legend(profiles.ids, subject.structures, subject.names, subject.colors)
    body = [
        f'<p><a href="{markup.esc(index_href)}">&larr; cohort report</a></p>' if index_href else "",
        f"<h1>myoscan QC report: {markup.esc(title)}</h1>",
        markup.meta_line(facts),
        sections.summary_line(flags),
        sections.overlay_section(subject.grid, profiles, shown, subject.colors, levels_pct=options.levels_pct,
                                 convention=options.convention, legend_html=legend),
        sections.flags_section(flags),
        sections.metrics_section(subject.metrics, structures=subject.structures, colors=subject.colors,
                                 robust_z=z, flags=flags, source=subject.source),
        sections.indices_section(read_table(files.indices) if files.indices is not None else None),
        sections.provenance_section(files.dseg.name, subject.record, subject.sidecar),
        f'<p class="note">Generated by myoscan {markup.esc(__version__)}. Shows subject ids, age and sex '
        "only; no names or dates of birth.</p>",
    ]  # fmt: skip
    html = markup.page(f"myoscan QC {title}", "".join(body), generator=f"myoscan {__version__}")
    return SubjectReport(files.key, html, flags)


def write_subject_report(folder: PathLike, output: PathLike, **kwargs: Any) -> SubjectReport:
    """Build a subject report (see :func:`subject_report`) and write it atomically to ``output``."""
    report = subject_report(folder, **kwargs)
    write_text(report.html, output)
    return report
