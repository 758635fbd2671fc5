"""``myoscan models list|info``: the model bundles myoscan can find (argument parsing only)."""

from __future__ import annotations

import argparse
import json

from myoscan.cli._common import add_common_flags, existing_path

_DESCRIPTION = """\
List model bundles (built-in ones shipped with myoscan, folders in $MYOSCAN_MODELS, and
folders given with --models-dir) or show one bundle's configuration, hash and model card.
"""


def add_parser(subparsers) -> None:
    """Register the ``models`` sub-command with ``list`` and ``info``."""
    p = subparsers.add_parser("models", help="list model bundles or show one", description=_DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list bundles")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info = actions.add_parser("info", help="configuration summary, hash and model card of a bundle")
    info.add_argument("bundle", metavar="BUNDLE", help="bundle folder or name")
    info.add_argument("--json", action="store_true", help="print the full config and hash as JSON")
    for sub in (listing, info):
        sub.add_argument("--models-dir", action="append", type=existing_path, default=[], metavar="DIR",
                         help="extra folder of bundles (also $MYOSCAN_MODELS)")
        add_common_flags(sub)
    add_common_flags(p)
    p.set_defaults(handler=run)


def _list(args: argparse.Namespace) -> int:
    from myoscan.segment.bundle import MODELS_ENV, find_bundles

    bundles = find_bundles(args.models_dir)
    if args.json:
        print(json.dumps([{"name": b.name, "path": str(b.path), "architecture": b.architecture,
                           "contrasts": list(b.contrasts), "labels": b.n_labels, "scheme": b.label_scheme,
                           "source": b.source, "error": b.error} for b in bundles], indent=2))
        return 0
    if not bundles:
        print(f"no model bundles found (built-in, ${MODELS_ENV} or --models-dir)")
        return 0
    rows = [("NAME", "ARCHITECTURE", "INPUTS", "LABELS", "SOURCE", "PATH")]
    for b in bundles:
        labels = f"{b.n_labels} ({b.label_scheme})" if b.label_scheme else str(b.n_labels)
        rows.append((b.name, b.architecture if not b.error else "BROKEN", "+".join(b.contrasts) or "?",
                     labels, b.source, str(b.path)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
    for b in bundles:
        if b.error:
            print(f"  {b.path}: {b.error}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from myoscan.segment.bundle import bundle_sha256, load_bundle, resolve_bundle
    from myoscan.segment.predict import scheme_values

    folder = resolve_bundle(args.bundle, args.models_dir)
    bundle = load_bundle(folder)  # validates config and weights, not just the JSON
    s = bundle.settings
    if args.json:
        print(json.dumps({"path": str(folder), "sha256": bundle_sha256(folder), "config": bundle.config},
                         indent=2))
        return 0
    n_params = sum(p.numel() for p in bundle.network.parameters())
    pre, inf, post = s.preprocessing, s.inference, s.postprocessing
    lines = [
        f"name          {s.name}",
        f"path          {folder}",
        f"sha256        {bundle.sha256}",
        f"architecture  {s.architecture['name']} ({n_params / 1e6:.2f} M parameters)",
        f"inputs        {', '.join(s.contrasts)} ({s.modality})",
        f"orientation   {pre.orientation or 'as stored'}; spacing {pre.target_spacing_mm or 'as stored'} mm",
        f"intensity     {pre.intensity.mode}"
        + (f" {list(pre.intensity.window)}" if pre.intensity.window else "")
        + (f" gamma {pre.intensity.gamma:g}" if pre.intensity.gamma != 1 else ""),
        f"inference     {inf.mode}, window {list(inf.roi_size)}, overlap {inf.overlap:g}, "
        f"{inf.blend} blending",
        "postprocess   " + (", ".join(k for k, v in vars(post).items() if v) or "none"),
        f"labels        {len(s.labels)} in scheme {s.label_scheme or '(model channels)'} "
        "(output channel -> value written)",
    ]
    if s.label_values is not None:
        values = dict(s.label_values)
    else:
        values, _ = scheme_values(s.labels, s.label_scheme)
    lines += [f"  {channel:>3} -> {values[channel]:>4}  {name}" for channel, name in s.labels.items()]
    print("\n".join(lines))
    print("\n" + bundle.model_card.strip())
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch to ``list`` or ``info``."""
    return _list(args) if args.action == "list" else _info(args)
