"""``myoscan agreement``: agreement and reliability of measures from two or more tables."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from myoscan.cli._common import add_common_flags, comma_list, existing_path, positive_float

log = logging.getLogger(__name__)

DESCRIPTION = """\
Compare the same measures (e.g. volume_ml, imf_pct) from two metric tables -- a method
(--a, e.g. the CNN) against a reference (--b, e.g. manual ground truth) -- or from three or
more raters (--raters). Rows are matched on the --on columns (default subject,label; "label"
means label_id). Per label and measure:

  two tables: n, mean +- SE of each, Bland-Altman bias (a - b), SD, 95 % limits of
    agreement with CIs, proportional bias (slope of difference on mean, p), MAE, RMSE,
    Pearson r, r^2, slope of b on a through the origin, and ICC(1,1), ICC(2,1), ICC(3,1),
    ICC(1,k), ICC(2,k), ICC(3,k) with 95 % CI and F-test p;
  three or more: the ICCs (interrater reliability) and each rater's mean.

Subjects missing from a table are reported and left out; labels with fewer than 3 paired
cases get empty statistics. --plots DIR writes, per measure, <measure>_bland_altman.png and
<measure>_correlation.png with one panel per label. See docs/evaluate.md."""

#: Join keys that identify a case (target); the other --on keys define the groups.
CASE_KEYS = ("subject", "session")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``myoscan agreement``."""
    p = subparsers.add_parser("agreement", help="ICC, Bland-Altman, MAE, RMSE between metric tables",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", type=existing_path, help="table of the method (e.g. CNN measures)")
    p.add_argument("--b", type=existing_path, help="table of the reference (e.g. ground-truth measures)")
    p.add_argument("--raters", type=existing_path, nargs="+", metavar="TABLE",
                   help="two or more raters' tables instead of --a/--b (interrater reliability)")
    p.add_argument("--on", type=comma_list, default=["subject", "label"],
                   help="columns matching rows (default subject,label); subject/session identify a case")
    p.add_argument("--measure", "--measures", dest="measures", nargs="+", required=True, metavar="COLUMN",
                   help="measure columns to compare, e.g. volume_ml imf_pct")
    p.add_argument("-o", "--output", required=True, type=Path, help="result table (.csv, .tsv or .parquet)")
    p.add_argument("--plots", type=Path, metavar="DIR", help="write Bland-Altman and correlation PNGs here")
    p.add_argument("--loa-sd", type=positive_float, default=1.96,
                   help="limits of agreement = bias +- this many SDs (default 1.96)")
    add_common_flags(p)
    p.set_defaults(handler=run)


def _split_keys(on: list[str]) -> tuple[list[str], list[str]]:
    """Case keys (subject/session, else the first key) and group keys (the rest)."""
    from myoscan.errors import InputError

    if not on:
        raise InputError("--on needs at least one column, e.g. subject,label")
    case = [k for k in on if k in CASE_KEYS] or on[:1]
    return case, [k for k in on if k not in case]


def _rater_names(paths: list[Path]) -> list[str]:
    """File stems (``cnn.csv`` -> ``cnn``), or full paths when stems repeat."""
    stems = [p.stem for p in paths]
    return stems if len(set(stems)) == len(stems) else [str(p) for p in paths]


def run(args: argparse.Namespace) -> int:
    """Read the tables, compute agreement, write the table and plots."""
    import pandas as pd

    from myoscan import agreement as ag
    from myoscan.errors import InputError
    from myoscan.outputs import read_table, write_output_set, write_table

    if args.raters and (args.a or args.b):
        raise InputError("give either --a/--b or --raters, not both")
    paths = list(args.raters or [p for p in (args.a, args.b) if p is not None])
    if len(paths) < 2:
        raise InputError("give two tables (--a METHOD --b REFERENCE) or two or more with --raters")
    resolved = [p.resolve() for p in paths]
    repeated = [str(p) for i, p in enumerate(paths) if resolved[i] in resolved[:i]]
    if repeated:
        raise InputError(f"{repeated[0]} is given more than once; compare different tables")
    tables = dict(zip(_rater_names(paths), (read_table(p) for p in paths), strict=True))
    case_keys, group_keys = _split_keys(args.on)
    paired = ag.pair_measurements(tables, measures=args.measures, case_keys=case_keys,
                                  group_keys=group_keys)
    result = ag.agreement_from_pairs(paired, raters=list(tables), case_keys=case_keys,
                                     sd_multiplier=args.loa_sd)
    writers = {args.output: lambda path: write_table(result, path)}
    if args.plots is not None and len(tables) != 2:
        log.warning("plots compare two tables; none written for %d raters", len(tables))
    elif args.plots is not None:
        a, b = tables
        for measure in pd.unique(paired["measure"]):  # measures without any pair were reported, left out
            for kind in ("bland_altman", "correlation"):
                figure = ag.agreement_figure(paired, measure, kind=kind, a=a, b=b, sd_multiplier=args.loa_sd)
                writers[args.plots / f"{measure}_{kind}.png"] = (
                    lambda path, figure=figure: ag.save_figure(figure, path)
                )
    for path in write_output_set(writers):  # the table and the plots appear together or not at all
        log.info("wrote %s", path)
    return 0
