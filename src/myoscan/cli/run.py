"""``myoscan run``: process a BIDS dataset on a Dask cluster."""

from __future__ import annotations

import argparse
import sys

from myoscan.cli._common import add_common_flags, comma_list, existing_path, non_negative_int, positive_int

DESCRIPTION = """\
Run the per-subject steps (dixon, stitch, segment, quantify) over a BIDS dataset
(sub-*/[ses-*/]anat/*_{water,fat,inphase,outphase,fatfrac,T1w,T2w,ct}.nii.gz) and write
BIDS derivatives: <sub>_dseg.nii.gz + JSON side-car, <sub>_metrics.tsv, <sub>_indices.tsv,
<sub>_provenance.json, and cohort_metrics.{csv,parquet} joined with participants.tsv.
Subjects run as Dask tasks on a LocalCluster of --workers processes, or on an existing
cluster (--scheduler tcp://host:8786). Finished subjects whose inputs and parameters are
unchanged are skipped, so an interrupted run is resumed by running it again. Failed
subjects are listed in errors.tsv; the exit code is 1 if any failed."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``myoscan run``."""
    p = subparsers.add_parser(
        "run",
        help="batch-process a BIDS dataset (Dask, resumable)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", type=existing_path, help="BIDS dataset root")
    p.add_argument(
        "-o", "--output", required=True, help="derivatives folder, e.g. DATASET/derivatives/myoscan"
    )
    p.add_argument(
        "--steps",
        type=comma_list,
        default=["quantify"],
        help="comma-separated steps from dixon,stitch,segment,quantify (default: quantify)",
    )
    p.add_argument("--model", help="model bundle (folder or shipped name) for the segment step")
    p.add_argument(
        "--scheme", help="label scheme of existing segmentations (default: from their JSON side-car)"
    )
    p.add_argument("--erode", type=non_negative_int, default=1, help="erosion iterations for IMF (default 1)")
    p.add_argument("--subjects", type=comma_list, help="only these subjects, e.g. sub-01,sub-02")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=positive_int, default=1, help="LocalCluster worker processes (default 1)"
    )
    where.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    p.add_argument(
        "--threads-per-worker", type=positive_int, default=1, help="threads per worker (default 1)"
    )
    p.add_argument("--memory-limit", default="auto", help="per-worker memory limit, e.g. 4GiB (default auto)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "mps"], help="device for segmentation")
    p.add_argument(
        "--report",
        action="store_true",
        help="write the HTML QC report to OUTPUT/qc/index.html after the run (see myoscan report)",
    )
    add_common_flags(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the pipeline and print a summary line."""
    from myoscan.pipeline import RunConfig, run_pipeline

    config = RunConfig(
        steps=tuple(args.steps),
        model=args.model,
        scheme=args.scheme,
        erode_iterations=args.erode,
        device=args.device,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        memory_limit=args.memory_limit,
        scheduler=args.scheduler,
    )
    summary = run_pipeline(
        args.dataset, args.output, config, subjects=args.subjects, show_progress=not args.quiet
    )
    print(summary.describe(), file=sys.stderr)
    if args.report:
        from myoscan.report import write_cohort_report

        report = write_cohort_report(
            summary.out_dir, summary.out_dir / "qc" / "index.html", show_progress=not args.quiet
        )
        print(
            f"QC report: {summary.out_dir / 'qc' / 'index.html'} ({len(report.outliers)} outliers)",
            file=sys.stderr,
        )
    for result in summary.results:
        if result.status == "failed":
            print(
                f"  failed: {result.subject} {result.session or ''} at {result.step}: {result.message}",
                file=sys.stderr,
            )
    return 1 if summary.n_failed else 0
