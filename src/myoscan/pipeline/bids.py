"""Discover subjects and sessions in a BIDS dataset and name BIDS-derivative outputs.

Input images follow the layout MuscleMap recommends,
``sub-<id>[/ses-<id>]/anat/sub-<id>[_ses-<id>][_<key>-<value>...]_<suffix>.nii.gz`` with
``suffix`` one of :data:`CONTRASTS`. Several files of one contrast that differ only in a
``chunk-<n>`` entity are the stations of a multi-station acquisition (BIDS "chunk" =
partition of one volume) and are fused by the ``stitch`` step. Existing segmentations
(``*_dseg.nii.gz``) are looked up under ``<dataset>/derivatives/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from myoscan._typing import PathLike
from myoscan.bids import case_key, parse_bids_name
from myoscan.errors import InputError

__all__ = ["CONTRASTS", "Case", "discover", "parse_bids_name", "read_participants"]

#: Image suffixes the pipeline understands (BIDS suffix -> meaning).
CONTRASTS = ("water", "fat", "inphase", "outphase", "fatfrac", "T1w", "T2w", "ct")



@dataclass(frozen=True)
class Case:
    """One subject (and session) to process.

    Parameters
    ----------
    subject : str
        BIDS subject id including the prefix, e.g. ``sub-01``.
    session : str or None
        ``ses-<id>`` or ``None``.
    images : dict of str to tuple of Path
        Contrast -> input files (several files = stations to stitch, sorted by chunk).
    segmentation : Path or None
        An existing label map for this case found under ``derivatives/``.
    """

    subject: str
    session: str | None
    images: dict[str, tuple[Path, ...]] = field(default_factory=dict)
    segmentation: Path | None = None

    @property
    def key(self) -> str:
        """``sub-01`` or ``sub-01_ses-2``: the prefix of every output file name."""
        return self.subject if self.session is None else f"{self.subject}_{self.session}"

    @property
    def relative_dir(self) -> Path:
        """``sub-01/anat`` or ``sub-01/ses-2/anat``."""
        parts = [self.subject] + ([self.session] if self.session else [])
        return Path(*parts, "anat")


def _chunk_order(path: Path) -> int:
    parsed = parse_bids_name(path.name)
    return int(parsed[0].get("chunk", "0")) if parsed else 0


def _find_segmentations(dataset: Path, exclude: Path | None) -> dict[tuple[str, str | None], Path]:
    """Existing label maps per case; a plain ``_dseg`` wins over ``desc-*`` variants (e.g. tissue maps)."""
    candidates: dict[tuple[str, str | None], list[tuple[bool, Path]]] = {}
    derivatives = dataset / "derivatives"
    if not derivatives.is_dir():
        return {}
    for path in sorted(derivatives.rglob("*_dseg.nii*")):
        if exclude is not None and exclude in path.parents:
            continue
        parsed = parse_bids_name(path.name, lenient=True)  # MuscleMap: sub-01_water_dseg.nii.gz
        if parsed is None:
            continue
        plain = parse_bids_name(path.name) is not None and "desc" not in parsed[0]
        candidates.setdefault(case_key(parsed[0]), []).append((not plain, path))
    return {key: min(options)[1] for key, options in candidates.items()}


def discover(
    dataset: PathLike,
    *,
    subjects: list[str] | None = None,
    exclude: PathLike | None = None,
) -> list[Case]:
    """List the cases of a BIDS dataset with their input images.

    Parameters
    ----------
    dataset : str or os.PathLike
        BIDS root (contains ``sub-*`` folders).
    subjects : list of str, optional
        Only these subjects (with or without the ``sub-`` prefix).
    exclude : str or os.PathLike, optional
        A derivatives folder to ignore when looking for existing segmentations (our own
        output folder when it lives inside the dataset).

    Returns
    -------
    list of Case
        Sorted by subject and session.

    Raises
    ------
    InputError
        The folder has no subjects, or a requested subject is missing.
    """
    root = Path(dataset)
    if not root.is_dir():
        raise InputError(f"{root}: no such dataset folder")
    wanted = None if subjects is None else {s if s.startswith("sub-") else f"sub-{s}" for s in subjects}
    images: dict[tuple[str, str | None], dict[str, list[Path]]] = {}
    for path in sorted(root.glob("sub-*/**/anat/*.nii*")):
        if "derivatives" in path.relative_to(root).parts:
            continue
        parsed = parse_bids_name(path.name)
        if parsed is None or parsed[1] not in CONTRASTS:
            continue
        key = case_key(parsed[0])
        if wanted is not None and key[0] not in wanted:
            continue
        images.setdefault(key, {}).setdefault(parsed[1], []).append(path)
    if wanted is not None and (missing := wanted - {k[0] for k in images}):
        raise InputError(f"{root}: subjects not found: {', '.join(sorted(missing))}")
    if not images:
        raise InputError(
            f"{root}: no BIDS images found (expected sub-*/[ses-*/]anat/*_<contrast>.nii.gz with "
            f"contrast in {', '.join(CONTRASTS)})"
        )
    segmentations = _find_segmentations(root, Path(exclude).resolve() if exclude else None)
    cases = []
    for (subject, session), contrasts in sorted(images.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        ordered = {c: tuple(sorted(paths, key=_chunk_order)) for c, paths in contrasts.items()}
        cases.append(Case(subject, session, ordered, segmentations.get((subject, session))))
    return cases


def read_participants(dataset: PathLike) -> pd.DataFrame | None:
    """Read ``participants.tsv`` of a BIDS dataset (``None`` if it has none).

    Raises
    ------
    InputError
        If the file cannot be parsed as TSV, has no ``participant_id`` column, or lists
        a participant more than once (the cohort tables would repeat that subject).
    """
    path = Path(dataset) / "participants.tsv"
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a"])
    except (ValueError, OSError, pd.errors.ParserError) as exc:  # ParserError, UnicodeDecodeError ...
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read as a tab-separated table ({message})") from None
    if "participant_id" not in table.columns:
        raise InputError(f"{path}: has no participant_id column (BIDS requires one)")
    repeated = table["participant_id"][table["participant_id"].duplicated()].astype(str).unique()
    if len(repeated):
        raise InputError(
            f"{path}: lists {', '.join(repeated[:10])} more than once; keep one row per participant"
        )
    return table
