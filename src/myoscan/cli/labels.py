"""``myoscan labels``: list label schemes, print a scheme's label table, look up a structure."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import pandas as pd

from myoscan.cli._common import add_common_flags
from myoscan.labels import load_catalog
from myoscan.outputs import to_jsonable, write_text

FORMATS = ("table", "csv", "json")


def add_parser(subparsers) -> None:
    """Add the ``labels`` sub-command."""
    p = subparsers.add_parser(
        "labels",
        help="list label schemes and their structures",
        description=(
            "Without options: list the label schemes with their label counts. "
            "--scheme S: print the label table of scheme S (label_id, name, side, region, group, "
            "tissue, color, levels). --find NAME: show one structure, given by any name "
            "(canonical, TotalSegmentator, MuscleMap), with its id in every scheme. "
            "--ts-task T: print a TotalSegmentator class table (id -> name)."
        ),
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--scheme", metavar="S",
                      help="leg, cervical, abdomen, thigh, musclemap, ts_total or ts_total_mr")
    what.add_argument("--find", metavar="NAME", help="structure name in any spelling")
    what.add_argument("--ts-task", metavar="TASK", help="TotalSegmentator task, e.g. total, total_mr")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (readable text, default), csv or json")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="write to FILE (atomically) instead of standard output")
    add_common_flags(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Build the requested table and write it to stdout or ``--output``."""
    cat = load_catalog()
    if args.scheme:
        sch = cat.scheme(args.scheme)
        table, meta = sch.table(), {"scheme": sch.name, "description": sch.description}
    elif args.find:
        s = cat.resolve(args.find)
        table = cat.table().loc[lambda t: t["name"] == s.name].reset_index(drop=True)
        table["aliases"] = "; ".join(s.aliases)
        if args.format == "table":
            table = table.T.reset_index().set_axis(["field", "value"], axis=1)
        meta = {"structure": s.name}
    elif args.ts_task:
        names = cat.ts_class_names(args.ts_task)
        table = pd.DataFrame({"class_id": list(names), "name": list(names.values())})
        meta = {"task": args.ts_task}
    else:
        table, meta = _scheme_summary(cat), {}
    text = _render(table, args.format, meta)
    if args.output is not None:
        write_text(text, args.output)
    else:
        sys.stdout.write(text)
    return 0


def _scheme_summary(cat) -> pd.DataFrame:
    rows = []
    for name in cat.scheme_names:
        sch = cat.scheme(name)
        tissues = [s.tissue for s in sch.labels.values()]
        rows.append({
            "scheme": name, "labels": len(sch), "muscles": tissues.count("muscle"),
            "bones": tissues.count("bone"), "ids": f"{min(sch.ids)}-{max(sch.ids)}",
            "description": sch.description,
        })
    return pd.DataFrame(rows)


def _render(table: pd.DataFrame, fmt: str, meta: dict) -> str:
    if fmt == "csv":
        buffer = io.StringIO()
        table.to_csv(buffer, index=False)
        return buffer.getvalue()
    if fmt == "json":
        records = table.astype(object).where(table.notna(), None).to_dict("records")
        return json.dumps(to_jsonable({**meta, "rows": records}), indent=2) + "\n"
    shown = table.drop(columns=["base"] if "display_name" in table else [])
    shown = shown.astype(object).where(shown.notna(), "")
    left = {  # left-align text columns, like a hand-written table
        c: f"{{:<{max(len(c), shown[c].astype(str).str.len().max())}}}".format
        for c in shown.columns if not pd.api.types.is_numeric_dtype(table[c])
    }
    body = shown.to_string(index=False, formatters=left, justify="left")
    header = f"# {meta['scheme']}: {meta['description']}\n" if "scheme" in meta else ""
    return header + "\n".join(line.rstrip() for line in body.splitlines()) + "\n"
