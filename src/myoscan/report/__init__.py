"""Self-contained HTML quality-control reports of segmentations and cohorts.

>>> from myoscan.report import subject_report, write_cohort_report   # doctest: +SKIP
>>> report = subject_report("derivatives/sub-01/anat")                # doctest: +SKIP
>>> report.status, report.flags.head()                               # doctest: +SKIP

* :func:`subject_report` - axial slices at several levels and a coronal view with the label
  map overlaid in catalog colours, the metric table with units, QC flags (fat-water swap,
  field-of-view coverage, missing or implausibly sized labels), regional indices, provenance.
* :func:`cohort_report` / :func:`write_cohort_report` - distributions by age decade and sex,
  outliers (robust z) linking to subject pages, done/failed counts.

Pages open offline: inline CSS, PNG figures embedded as base64, no scripts or external
links. See ``docs/report.md``.
"""

from __future__ import annotations

from myoscan.report.cohort import CohortReport, cohort_outliers, cohort_report, write_cohort_report
from myoscan.report.files import SubjectFiles, find_subject_files
from myoscan.report.qc import ROBUST_Z_THRESHOLD, QCFlag, robust_z
from myoscan.report.subject import ReportOptions, SubjectReport, subject_report, write_subject_report

__all__ = [
    "ROBUST_Z_THRESHOLD",
    "CohortReport",
    "QCFlag",
    "ReportOptions",
    "SubjectFiles",
    "SubjectReport",
    "cohort_outliers",
    "cohort_report",
    "find_subject_files",
    "robust_z",
    "subject_report",
    "write_cohort_report",
    "write_subject_report",
]
