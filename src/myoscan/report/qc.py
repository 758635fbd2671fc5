"""Quality-control flags of one segmented scan.

Each check returns :class:`QCFlag` records (check, severity, structure, value, message);
:func:`flags_table` turns them into a tidy table. Checks:

* ``coverage`` - a label touching the first or last slice of the field of view along any
  axis is cut by it, so its volume is underestimated; the cut cross-section is given in %
  of the label's largest cross-section along that axis.
* ``volume`` - robust z-score of ``volume_ml`` against the cohort (median and MAD per
  structure, Iglewicz & Hoaglin modified z); |z| > 3.5 is implausibly small or large.
* ``missing`` - a structure most of the cohort has (or, without a cohort, one of the label
  scheme in the body regions present) is absent.
* ``asymmetry`` - left and right volumes of a structure differ by more than 50 % of their mean.
* ``unknown_label`` - label ids the label scheme does not define.
* ``swap`` - fat-water swap share of the body and of the labelled voxels (myoscan.dixon).
* ``provenance`` - an input changed since the pipeline run (hash differs from the record).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from myoscan.report.labelmap import FACES, LabelProfiles

__all__ = [
    "ASYMMETRY_WARN_PCT",
    "COHORT_EXPECTED_FRACTION",
    "MAD_TO_SD",
    "MEANAD_TO_SD",
    "MIN_REFERENCE_N",
    "ROBUST_Z_THRESHOLD",
    "QCFlag",
    "asymmetry_flags",
    "coverage_flags",
    "flags_table",
    "missing_flags",
    "robust_z",
    "robust_z_by",
    "swap_flags",
    "unknown_label_flags",
    "volume_flags",
    "worst_severity",
]

log = logging.getLogger(__name__)

#: Modified z-score cut-off for an outlier (Iglewicz & Hoaglin 1993, "How to detect and handle outliers").
ROBUST_Z_THRESHOLD = 3.5
#: MAD -> SD of a normal distribution (1 / 0.6745; Iglewicz & Hoaglin 1993).
MAD_TO_SD = 1.4826
#: Mean absolute deviation -> SD of a normal distribution (sqrt(pi / 2)), used when the MAD is 0.
MEANAD_TO_SD = 1.2533
#: Fewest cohort values of a structure for a robust z-score.
MIN_REFERENCE_N = 5
#: A structure is expected when at least this share of the cohort has it.
COHORT_EXPECTED_FRACTION = 0.5
#: Left/right volume difference (|L - R| / mean(L, R) x 100) flagged as implausible. Seed 001 reports
#: a median whole-thigh L/R asymmetry of 3.1 % (IQR 1.4-4.9 %); 50 % is far outside and in practice a
#: segmentation or field-of-view error, or a real finding worth a look.
ASYMMETRY_WARN_PCT = 50.0

SEVERITIES = ("n/a", "pass", "info", "warn", "fail")


@dataclass(frozen=True)
class QCFlag:
    """One QC finding.

    Attributes
    ----------
    check : str
        ``coverage``, ``volume``, ``missing``, ``asymmetry``, ``unknown_label``, ``swap``, ``provenance``.
    severity : {'pass', 'info', 'warn', 'fail', 'n/a'}
        ``n/a`` = the check could not run (the message says why).
    message : str
        One sentence for the reader.
    structure : str
        Canonical structure name, or ``''`` for a scan-level flag.
    value : float
        The number behind the flag (cut %, robust z, swapped %, ...), NaN if none.
    unit : str
        Unit of ``value`` (``'%'``, ``'z'``, ``'n'``).
    """

    check: str
    severity: str
    message: str
    structure: str = ""
    value: float = float("nan")
    unit: str = ""


def flags_table(flags: Iterable[QCFlag]) -> pd.DataFrame:
    """QC flags as a table, most severe first.

    Examples
    --------
    >>> cut = QCFlag("coverage", "warn", "cut", "soleus_left", 40.0, "%")
    >>> flags_table([QCFlag("volume", "pass", "ok"), cut])
    ... # doctest: +NORMALIZE_WHITESPACE
          check severity     structure  value unit message
    0  coverage     warn   soleus_left   40.0    %     cut
    1    volume     pass                  NaN           ok
    """
    columns = ["check", "severity", "structure", "value", "unit", "message"]
    table = pd.DataFrame([asdict(f) for f in flags], columns=list(QCFlag.__dataclass_fields__))[columns]
    if table.empty:
        return table
    rank = table["severity"].map({s: i for i, s in enumerate(SEVERITIES)}).fillna(0)
    order = np.lexsort((table["structure"].to_numpy(dtype=str), table["check"].to_numpy(dtype=str), -rank))
    return table.iloc[order].reset_index(drop=True)


def worst_severity(severities: Iterable[str]) -> str:
    """Return the most severe of several severities (``'n/a'`` when none).

    Examples
    --------
    >>> worst_severity(["pass", "warn", "info"])
    'warn'
    """
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return max(severities, key=lambda s: rank.get(s, 0), default="n/a")


# ------------------------------------------------------------------------------ robust z


def robust_z(values: npt.ArrayLike, reference: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Score ``values`` with the modified z against the median and MAD of ``reference``.

    z = (x - median) / (1.4826 MAD); when the MAD is 0 the mean absolute deviation is used
    (x 1.2533), and when that is 0 too z is NaN. NaN reference values are ignored.

    Parameters
    ----------
    values : array_like
        Values to score.
    reference : array_like
        Reference sample (at least :data:`MIN_REFERENCE_N` finite values, else all NaN).

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> robust_z([10.0, 100.0], [9.0, 10.0, 11.0, 10.0, 12.0, 8.0]).round(2).tolist()
    [0.0, 60.7]
    """
    x = np.asarray(values, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    ref = ref[np.isfinite(ref)]
    if ref.size < MIN_REFERENCE_N:
        return np.full(x.shape, np.nan)
    median = np.median(ref)
    deviation = np.abs(ref - median)
    scale = MAD_TO_SD * np.median(deviation)
    if scale <= 0:
        scale = MEANAD_TO_SD * deviation.mean()
    if scale <= 0:
        return np.full(x.shape, np.nan)
    return (x - median) / scale


def robust_z_by(table: pd.DataFrame, column: str, by: str | Sequence[str]) -> pd.Series:
    """Score ``column`` with the modified z within each group of ``by`` (vectorised over groups).

    Groups with fewer than :data:`MIN_REFERENCE_N` finite values get NaN.

    Examples
    --------
    >>> t = pd.DataFrame({"name": ["a"] * 6, "volume_ml": [9.0, 10.0, 11.0, 10.0, 12.0, 100.0]})
    >>> robust_z_by(t, "volume_ml", "name").round(1).tolist()
    [-1.0, -0.3, 0.3, -0.3, 1.0, 60.4]
    """
    values = pd.to_numeric(table[column], errors="coerce").astype(np.float64)
    groups = values.groupby([table[c] for c in ([by] if isinstance(by, str) else by)], dropna=False)
    median = groups.transform("median")
    deviation = (values - median).abs()
    dev_groups = deviation.groupby([table[c] for c in ([by] if isinstance(by, str) else by)], dropna=False)
    scale = MAD_TO_SD * dev_groups.transform("median")
    scale = scale.where(scale > 0, MEANAD_TO_SD * dev_groups.transform("mean"))
    count = groups.transform("count")
    z = (values - median) / scale.where(scale > 0)
    return z.where(count >= MIN_REFERENCE_N)


# ------------------------------------------------------------------------------ checks


def coverage_flags(profiles: LabelProfiles, names: Mapping[int, str]) -> list[QCFlag]:
    """Flag labels cut by the field of view (touching the first or last slice of an axis).

    Parameters
    ----------
    profiles : LabelProfiles
        Slice counts of a RAS-ordered label map.
    names : mapping of int to str
        Structure name per label id.

    Returns
    -------
    list of QCFlag
        One ``warn`` per cut label (value = largest cut cross-section in %), or one ``pass``.
    """
    flags = []
    cut = {face: profiles.face_pct(*face) for face in FACES}
    for row, label_id in enumerate(profiles.ids):
        faces = [(FACES[face], pct[row]) for face, pct in cut.items() if pct[row] > 0]
        if not faces:
            continue
        where = ", ".join(f"{name} ({pct:.0f} %)" for name, pct in faces)
        worst = max(p for _, p in faces)
        flags.append(
            QCFlag(
                "coverage",
                "warn",
                f"touches the {where} edge of the field of view (cut cross-section in % of its largest); "
                "volume and indices are underestimated",
                names.get(int(label_id), f"label_{label_id}"),
                float(worst),
                "%",
            )
        )
    if not flags:
        flags.append(QCFlag("coverage", "pass", "every label lies inside the field of view"))
    return flags


def volume_flags(
    volumes_ml: Mapping[str, float],
    cohort: pd.DataFrame | None,
    *,
    threshold: float = ROBUST_Z_THRESHOLD,
) -> tuple[list[QCFlag], dict[str, float]]:
    """Robust z of each structure's volume against the cohort, and flags beyond ``threshold``.

    Parameters
    ----------
    volumes_ml : mapping of str to float
        Volume per structure name of the subject.
    cohort : pandas.DataFrame or None
        Cohort metric table with ``name`` and ``volume_ml`` columns (one row per subject and label).
    threshold : float
        |z| above this is flagged.

    Returns
    -------
    flags : list of QCFlag
    z : dict of str to float
        Robust z per structure (NaN where the cohort is too small).
    """
    if cohort is None or not {"name", "volume_ml"} <= set(cohort.columns):
        return [QCFlag("volume", "n/a", "no cohort table (cohort_metrics.csv) to compare volumes with")], {}
    volumes = pd.to_numeric(cohort["volume_ml"], errors="coerce")
    reference = {str(k): v.to_numpy() for k, v in volumes.groupby(cohort["name"].astype(str))}
    z = {name: float(robust_z([v], reference.get(name, []))[0]) for name, v in volumes_ml.items()}
    flags = []
    for name, score in z.items():
        if np.isfinite(score) and abs(score) > threshold:
            median = float(np.nanmedian(reference[name]))
            kind = "large" if score > 0 else "small"
            flags.append(
                QCFlag(
                    "volume",
                    "warn",
                    f"implausibly {kind}: {volumes_ml[name]:.1f} mL vs cohort median "
                    f"{median:.1f} mL (robust z {score:+.1f})",
                    name,
                    score,
                    "z",
                )
            )
    scored = sum(np.isfinite(v) for v in z.values())
    if not flags:
        if scored:
            flags.append(
                QCFlag("volume", "pass", f"{scored} volumes within |z| <= {threshold:g} of the cohort")
            )
        else:
            flags.append(QCFlag("volume", "n/a", f"fewer than {MIN_REFERENCE_N} cohort values per structure"))
    return flags, z


def missing_flags(
    present: Iterable[str],
    *,
    cohort: pd.DataFrame | None = None,
    expected: Iterable[str] = (),
    scheme: str | None = None,
) -> list[QCFlag]:
    """Flag structures expected but absent.

    Expected are the structures at least :data:`COHORT_EXPECTED_FRACTION` of the cohort
    subjects have (``volume_ml`` > 0) when a cohort table is given, else ``expected``.

    Parameters
    ----------
    present : iterable of str
        Structure names in the subject's label map.
    cohort : pandas.DataFrame, optional
        Cohort metric table (``subject``, ``name``, ``volume_ml``; ``session`` optional).
    expected : iterable of str
        Fallback expected set (e.g. the scheme's structures in the regions present).
    scheme : str, optional
        Name of the scheme behind ``expected`` (for the message).

    Returns
    -------
    list of QCFlag
    """
    have = set(present)
    if cohort is not None and {"subject", "name", "volume_ml"} <= set(cohort.columns):
        keys = ["subject", "session"] if "session" in cohort.columns else ["subject"]
        n_cases = max(len(cohort[keys].drop_duplicates()), 1)
        has = cohort.loc[pd.to_numeric(cohort["volume_ml"], errors="coerce") > 0]
        share = has.drop_duplicates([*keys, "name"]).groupby("name").size() / n_cases
        wanted = {str(n): float(s) for n, s in share.items() if s >= COHORT_EXPECTED_FRACTION}
        missing = sorted(set(wanted) - have)
        flags = [
            QCFlag(
                "missing",
                "warn",
                f"absent, but present in {wanted[n] * 100:.0f} % of the cohort",
                n,
                wanted[n] * 100,
                "%",
            )
            for n in missing
        ]
        return flags or [
            QCFlag("missing", "pass", f"all {len(wanted)} structures common in the cohort present")
        ]
    wanted_set = set(expected)
    if not wanted_set:
        return [
            QCFlag("missing", "n/a", "no cohort table and no label scheme to know which structures to expect")
        ]
    missing = sorted(wanted_set - have)
    source = f"label scheme {scheme!r}" if scheme else "label scheme"
    flags = [
        QCFlag("missing", "warn", f"absent, but part of the {source} in the body regions present", n)
        for n in missing
    ]
    return flags or [QCFlag("missing", "pass", f"all {len(wanted_set)} structures of the {source} present")]


def asymmetry_flags(
    volumes_ml: Mapping[str, float], *, threshold_pct: float = ASYMMETRY_WARN_PCT
) -> list[QCFlag]:
    """Flag bilateral structures whose left and right volumes differ implausibly.

    Structures pair up by name: ``<base>_left`` with ``<base>_right``.

    Examples
    --------
    >>> [f.structure for f in asymmetry_flags({"soleus_left": 100.0, "soleus_right": 40.0})]
    ['soleus']
    """
    flags = []
    for name, left in sorted(volumes_ml.items()):
        if not name.endswith("_left"):
            continue
        base = name[: -len("_left")]
        right = volumes_ml.get(f"{base}_right")
        if right is None or not (left > 0 and right > 0):
            continue
        pct = abs(left - right) / ((left + right) / 2) * 100
        if pct > threshold_pct:
            flags.append(
                QCFlag(
                    "asymmetry",
                    "warn",
                    f"left {left:.1f} mL vs right {right:.1f} mL: "
                    f"{pct:.0f} % asymmetry (> {threshold_pct:g} %)",
                    base,
                    pct,
                    "%",
                )
            )
    return flags


def unknown_label_flags(ids: Iterable[int], known: Iterable[int] | None, scheme: str | None) -> list[QCFlag]:
    """Flag label ids the scheme does not define (nothing when the scheme is unknown)."""
    if known is None:
        return []
    unknown = sorted(set(int(i) for i in ids) - set(int(k) for k in known))
    if not unknown:
        return []
    shown = ", ".join(str(i) for i in unknown[:20]) + (" ..." if len(unknown) > 20 else "")
    return [
        QCFlag(
            "unknown_label",
            "warn",
            f"label ids not in scheme {scheme!r}: {shown}",
            "",
            float(len(unknown)),
            "n",
        )
    ]


def swap_flags(
    water: np.ndarray,
    fat: np.ndarray,
    spacing_mm: tuple[float, float, float],
    *,
    labels: np.ndarray | None = None,
    in_phase: np.ndarray | None = None,
    opposed_phase: np.ndarray | None = None,
) -> list[QCFlag]:
    """Fat-water swap share of the body and of the labelled voxels (myoscan.dixon detector).

    Parameters
    ----------
    water, fat : (I, J, K) ndarray
        Water and fat images on one grid.
    spacing_mm : tuple of 3 float
        Voxel size; the axis with the largest spacing is taken as the slice axis.
    labels : (I, J, K) ndarray, optional
        Label map on the same grid: adds the swapped share of the labelled voxels.
    in_phase, opposed_phase : (I, J, K) ndarray, optional
        The echoes of the same acquisition (both or neither); the detector uses them when
        they agree with water and fat.

    Returns
    -------
    list of QCFlag
        One ``swap`` flag: ``fail`` when a swapped region was found (value = swapped % of
        the body), ``pass`` otherwise, ``n/a`` when the detector is unavailable.
    """
    try:
        from myoscan.dixon import detect_swaps
    except ImportError:
        return [QCFlag("swap", "n/a", "fat-water swap detector (myoscan.dixon) not available")]
    echoes = {"in_phase": in_phase, "opposed_phase": opposed_phase} if in_phase is not None else {}
    result = detect_swaps(water, fat, spacing_mm=spacing_mm, slice_axis=int(np.argmax(spacing_mm)), **echoes)
    body_pct = result.swapped_fraction * 100
    plural = "s" if result.n_regions != 1 else ""
    volume = f"{result.swapped_volume_ml:.1f} mL in {result.n_regions} region{plural}"
    text = f"swapped share of the body {body_pct:.1f} % ({volume})"
    if labels is not None and labels.shape == result.mask.shape and (labelled := labels > 0).any():
        share = np.count_nonzero(result.mask & labelled) / np.count_nonzero(labelled) * 100
        text += f"; of the labelled voxels {share:.1f} %"
    if result.has_swap:
        text += "; IMF and fat fractions there are wrong: swap water and fat back (myoscan dixon) and re-run"
    text += f"; cues: {', '.join(result.cues) or 'none'}" + "".join(f"; {note}" for note in result.notes)
    return [QCFlag("swap", "fail" if result.has_swap else "pass", text, "", body_pct, "%")]
