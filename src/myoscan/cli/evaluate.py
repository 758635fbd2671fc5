"""``myoscan evaluate``: segmentation accuracy of predicted against reference label images."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from myoscan.cli._common import add_common_flags, comma_list, existing_path, positive_float

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

DESCRIPTION = """\
Compare predicted label images with reference (ground-truth) label images on the same
voxel grid. Per label: Dice, Jaccard (IoU), conformity coefficient, TPR (recall), TNR,
PPV (precision), volume ratio, RAVD and signed volume difference (%), Hausdorff distance,
HD95 and ASSD in mm on the true (anisotropic) voxel spacing, voxel counts and volumes.

  one case:  myoscan evaluate --pred pred.nii.gz --ref gt.nii.gz -o metrics.csv
  folders:   myoscan evaluate --pred preds/ --ref gts/ -o metrics.csv   (pairs by file name)
  listed:    myoscan evaluate --pairs pairs.csv -o metrics.csv          (columns subject,pred,ref)

Batch runs add a subject column and also write a summary (default OUT_summary.csv): per
label the number of cases, mean and SE of every metric over cases whose reference has the
label (labels only in the prediction are excluded), and the volume correlation across
cases. Cases that fail (missing file, different grids, non-integer labels) are reported
and skipped; the exit code is then 1. See docs/evaluate.md."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``myoscan evaluate``."""
    p = subparsers.add_parser("evaluate", help="segmentation accuracy: Dice, HD95, ASSD, ... per label",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_argument_group("inputs (--pred and --ref, or --pairs)")
    source.add_argument("--pred", type=existing_path, help="predicted label image, or a folder of them")
    source.add_argument("--ref", type=existing_path, help="reference label image, or a folder of them")
    source.add_argument("--pairs", type=existing_path, help="CSV/TSV with columns subject, pred, ref")
    p.add_argument("-o", "--output", required=True, type=Path,
                   help="per-label table (.csv, .tsv or .parquet)")
    p.add_argument("--summary", type=Path,
                   help="summary table (default for batch runs: OUTPUT with _summary before the extension)")
    p.add_argument("--scheme",
                   help="label scheme naming the ids, e.g. thigh, leg, ts_total (default: label_<id>)")
    p.add_argument("--labels", type=comma_list, help="only these label ids, e.g. 1,2,5")
    p.add_argument("--hd-percentile", type=positive_float, default=95.0,
                   help="percentile of the robust Hausdorff distance (default 95 -> hd95_mm)")
    p.add_argument("--no-distances", action="store_true", help="skip HD/HD95/ASSD (much faster)")
    add_common_flags(p)
    p.set_defaults(handler=run)


def _label_ids(values: list[str] | None) -> tuple[int, ...] | None:
    from myoscan.errors import InputError

    if values is None:
        return None
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        raise InputError(f"--labels expects whole-number label ids like 1,2,5, "
                         f"got {','.join(values)}") from None


def _warn_unknown_ids(table: pd.DataFrame, names: dict[int, str] | None, scheme: str | None) -> None:
    """Log the label ids the chosen scheme does not define (a wrong --scheme, or extra labels)."""
    if names is None:
        return
    unknown = sorted(set(table["label_id"].astype(int)) - names.keys())
    if unknown:
        log.warning("label ids %s are not in scheme %s; named label_<id>", ", ".join(map(str, unknown[:20])),
                    scheme)


def _summary_path(output: Path) -> Path:
    """``out.csv`` -> ``out_summary.csv``."""
    return output.with_name(f"{output.stem}_summary{output.suffix}")


def run(args: argparse.Namespace) -> int:
    """Evaluate one pair or a batch and write the tables."""
    from myoscan import evaluate as ev
    from myoscan.errors import InputError
    from myoscan.outputs import write_output_set, write_table

    config = ev.EvaluateConfig(labels=_label_ids(args.labels), distances=not args.no_distances,
                               hd_percentile=args.hd_percentile)
    names = None
    if args.scheme:
        from myoscan.labels import load_catalog

        names = load_catalog().label_names(args.scheme)
    if args.pairs is not None:
        if args.pred is not None or args.ref is not None:
            raise InputError("give either --pairs or --pred/--ref, not both")
        pairs = ev.read_pairs_csv(args.pairs)
    elif args.pred is None or args.ref is None:
        raise InputError("give --pred and --ref (two label images or two folders), or --pairs CSV")
    elif args.pred.is_dir() and args.ref.is_dir():
        pairs = ev.match_folders(args.pred, args.ref)
    else:
        if args.pred.is_dir() or args.ref.is_dir():
            raise InputError(f"--pred {args.pred} and --ref {args.ref}: give two files or two folders")
        table = ev.evaluate_files(args.pred, args.ref, names=names, config=config)
        if table.empty:
            which = f"none of the labels {','.join(args.labels)}" if args.labels else "no label > 0"
            raise InputError(f"{args.pred.name} and {args.ref.name}: {which} occurs in either image; "
                             "nothing to evaluate")
        _warn_unknown_ids(table, names, args.scheme)
        writers = {args.output: lambda path: write_table(table, path)}
        if args.summary:
            summary = ev.summarize_evaluation(table)
            writers[args.summary] = lambda path: write_table(summary, path)
        write_output_set(writers)  # both tables appear, or neither
        log.info("wrote %s (%d labels)", args.output, len(table))
        return 0

    table, failures = ev.evaluate_pairs(pairs, names=names, config=config, show_progress=not args.quiet)
    if table.empty:
        first = next(iter(failures.items()))
        raise InputError(f"none of the {len(pairs)} cases could be evaluated; e.g. {first[0]}: {first[1]}")
    _warn_unknown_ids(table, names, args.scheme)
    summary_path = args.summary or _summary_path(args.output)
    summary = ev.summarize_evaluation(table)
    write_output_set({args.output: lambda path: write_table(table, path),
                      summary_path: lambda path: write_table(summary, path)})  # both, or neither
    log.info("wrote %s and %s (%d of %d cases)", args.output, summary_path, len(pairs) - len(failures),
             len(pairs))
    if failures:
        log.error("%d of %d cases failed (reasons above): %s", len(failures), len(pairs), ", ".join(failures))
    return 1 if failures else 0
