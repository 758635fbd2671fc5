"""``myoscan report``: self-contained HTML QC reports of one subject or a whole cohort."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from myoscan.cli._common import add_common_flags, comma_list, existing_path, positive_float

if TYPE_CHECKING:
    from myoscan.report import ReportOptions

log = logging.getLogger(__name__)

DESCRIPTION = """\
Quality-control reports as single HTML files that open offline (figures embedded, no
scripts or external links).

  one subject:  myoscan report DERIV/sub-01/anat -o sub-01.html
  a cohort:     myoscan report --cohort DERIV -o qc/index.html [--subject-pages all]

A subject report shows axial slices at 10/30/50/70/90 % of the labelled range and a
coronal view with the segmentation in catalog colours over the water image (else CT, else
fat fraction; or --image), in radiological convention unless --neurological; the metric
table with units; QC flags: fat-water swap share (when water and fat exist), labels cut by
the field of view, labels missing or with implausible volume (robust z against
DERIV/cohort_metrics.csv when found, else the label scheme), left/right asymmetry, inputs
changed since the run. The cohort report shows done/failed counts, box plots by age decade
and sex, and the outlier list linking to subject pages written beside it (refreshed only
when their inputs changed). See docs/report.md."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``myoscan report``."""
    p = subparsers.add_parser(
        "report",
        help="HTML QC report of a subject or a cohort (opens offline)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "subject",
        nargs="?",
        type=existing_path,
        metavar="SUBJECT_DERIV",
        help="a subject's derivatives folder, e.g. DERIV/sub-01/anat",
    )
    p.add_argument(
        "--cohort",
        type=existing_path,
        metavar="DERIV",
        help="derivatives root of `myoscan run`: write the cohort report instead",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="HTML file to write (cohort: the index; subject pages go beside it)",
    )
    p.add_argument(
        "--image", type=existing_path, help="image under the overlay (default: water, CT, fat fraction)"
    )
    p.add_argument(
        "--cohort-table",
        type=existing_path,
        help="cohort metric table for the volume checks (default: cohort_metrics.* above SUBJECT_DERIV)",
    )
    p.add_argument("--no-cohort", action="store_true", help="do not compare with a cohort table")
    p.add_argument("--scheme", help="label scheme (default: from the label map's JSON side-car)")
    p.add_argument(
        "--levels",
        type=comma_list,
        default=None,
        help="axial levels in %% of the labelled range (default 10,30,50,70,90)",
    )
    p.add_argument(
        "--neurological",
        action="store_true",
        help="patient's right on the image right (default: radiological, right on the left)",
    )
    p.add_argument(
        "--z-threshold",
        type=positive_float,
        default=3.5,
        help="|robust z| flagged as an outlier (default 3.5, Iglewicz & Hoaglin)",
    )
    p.add_argument("--no-swap-check", action="store_true", help="skip the fat-water swap detector (faster)")
    p.add_argument(
        "--subject-pages",
        choices=("outliers", "all", "none"),
        default="outliers",
        help="cohort: which subject pages to write beside the index (default: outliers)",
    )
    p.add_argument("--qc-table", type=Path, help="subject: also write the QC flags (.csv/.tsv/.parquet)")
    add_common_flags(p)
    p.set_defaults(handler=run)


def _levels(values: list[str] | None) -> tuple[float, ...] | None:
    from myoscan.errors import InputError

    if values is None:
        return None
    try:
        return tuple(float(v) for v in values)
    except ValueError:
        raise InputError(f"--levels expects percentages like 10,50,90, got {','.join(values)}") from None


def run(args: argparse.Namespace) -> int:
    """Write a subject or cohort report."""
    from myoscan.errors import InputError
    from myoscan.report import ReportOptions

    if (args.subject is None) == (args.cohort is None):
        raise InputError("give either SUBJECT_DERIV or --cohort DERIV (not both, not neither)")
    options = ReportOptions(
        **({"levels_pct": levels} if (levels := _levels(args.levels)) else {}),
        convention="neurological" if args.neurological else "radiological",
        z_threshold=args.z_threshold,
        check_swap=not args.no_swap_check,
        scheme=args.scheme,
    )
    return _run_cohort(args, options) if args.cohort is not None else _run_subject(args, options)


def _run_subject(args: argparse.Namespace, options: ReportOptions) -> int:
    from myoscan.errors import InputError
    from myoscan.outputs import write_output_set, write_table, write_text
    from myoscan.report import subject_report

    if args.no_cohort and args.cohort_table:
        raise InputError("--no-cohort and --cohort-table contradict each other; give one")
    cohort = False if args.no_cohort else args.cohort_table
    report = subject_report(args.subject, image=args.image, cohort=cohort, options=options)
    output = args.output / f"{report.key}.html" if args.output.is_dir() else args.output
    writers = {output: lambda path: write_text(report.html, path)}
    if args.qc_table:
        writers[args.qc_table] = lambda path: write_table(report.flags, path)
    write_output_set(writers)  # the page and its QC table appear together or not at all
    log.info("%s: QC %s; report %s", report.key, report.status, output)
    return 0


def _run_cohort(args: argparse.Namespace, options: ReportOptions) -> int:
    from myoscan.errors import InputError
    from myoscan.report import write_cohort_report

    subject_only = {"--image": args.image, "--qc-table": args.qc_table, "--cohort-table": args.cohort_table,
                    "--no-cohort": args.no_cohort}  # fmt: skip
    given = [flag for flag, value in subject_only.items() if value]
    if given:
        raise InputError(f"{', '.join(given)} apply to a subject report, not to --cohort")
    output = args.output / "index.html" if args.output.is_dir() else args.output
    report = write_cohort_report(args.cohort, output, subject_pages=args.subject_pages, options=options,
                                 show_progress=not args.quiet)  # fmt: skip
    counts = report.counts
    log.info("cohort report %s: %d done, %d failed, %d outliers, %d subject pages", output, counts["done"],
             counts["failed"], len(report.outliers), len(report.pages))  # fmt: skip
    return 0
