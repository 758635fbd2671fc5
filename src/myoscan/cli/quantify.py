"""``myoscan quantify``: per-label muscle metrics of a segmentation (argument parsing only)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path

from myoscan.cli._common import add_common_flags, existing_path, non_negative_int, positive_float
from myoscan.errors import InputError

log = logging.getLogger(__name__)

_DESCRIPTION = """\
Measure every label of a segmentation in one pass: voxel count, volume (mL), mass, CSA, and
per input image Dixon IMF (eroded and uneroded, seeds 000/002) and MuscleMap's voxel-wise fat
fraction, fat-fraction map statistics (incl. AMRA's mean below 50 %), CT attenuation (mean/SD/
median HU, lean muscle -29..150 HU, IMAT -190..-30 HU, seed 003), or fat % of a T1/T2-weighted
image by Gaussian mixture / k-means (MuscleMap). Optionally restrict to a slab, write a per-slice
table, and regional indices (TMV, TVI, P/A ratio, L/R asymmetry, SMI). See docs/quantify.md.
"""


def add_parser(subparsers) -> None:
    """Register the ``quantify`` sub-command."""
    p = subparsers.add_parser("quantify", help="per-label volume, fat, HU and CSA of a segmentation",
                              description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seg", required=True, type=existing_path, metavar="SEG",
                   help="label image (NIfTI/NRRD/.seg.nrrd) or folder of binary masks named by structure")
    p.add_argument("--scheme", help="label scheme naming the ids (leg, cervical, abdomen, thigh, musclemap, "
                   "total, total_mr); see `myoscan labels`")
    images = p.add_argument_group("images (on the segmentation's grid)")
    images.add_argument("--water", type=existing_path, help="Dixon water image (with --fat)")
    images.add_argument("--fat", type=existing_path, help="Dixon fat image (with --water)")
    images.add_argument("--fat-fraction", type=existing_path, metavar="FF", help="fat-fraction map")
    images.add_argument("--ff-unit", choices=["auto", "fraction", "percent", "permille"],
                        help="unit of --fat-fraction (default: auto from the values)")
    images.add_argument("--ct", type=existing_path, help="CT image in HU")
    images.add_argument("--image", type=existing_path, metavar="IMG", help="T1/T2-weighted image to cluster")
    images.add_argument("--method", choices=["gmm", "kmeans", "both"], default="both",
                        help="clustering of --image (default: both)")
    images.add_argument("--components", type=int, choices=[2, 3], help="clustering classes (default 2)")
    method = p.add_argument_group("method")
    method.add_argument("--erode", type=non_negative_int, metavar="N",
                        help="erosion iterations (3x3x3) before imf_pct (default 1, seed 000; 0 = none)")
    method.add_argument("--border-inside", action="store_true",
                        help="erosion: voxels beyond the image border/slab count as inside (default outside)")
    method.add_argument("--csa-slice", type=non_negative_int, metavar="K",
                        help="slice index for csa_cm2_at_slice (e.g. the L3 slice)")
    method.add_argument("--csa-z", type=float, metavar="Z", help="world z (mm) for csa_cm2_at_slice")
    method.add_argument("--config", type=existing_path, help="QuantifyConfig as TOML or JSON (flags win)")
    slab = p.add_argument_group("slab (measure only part of the slices)")
    slab.add_argument("--slab-slices", metavar="START:STOP", help="slice indices, half-open")
    slab.add_argument("--slab-z", metavar="Z1:Z2", help="world z range in mm (write --slab-z=-120:35)")
    slab.add_argument("--slab-between", nargs=2, metavar=("UPPER", "LOWER"),
                      help="between landmark structures NAME[@top|@bottom], e.g. 'lung_*@bottom' "
                      "'vertebrae_L5@bottom'")
    slab.add_argument("--slab-preset", choices=["abdominal-cavity"],
                      help="abdominal-cavity: lowest lung voxel to the bottom of L5 (seed 003)")
    slab.add_argument("--slab-levels", metavar="LEVELS", help="vertebral levels, e.g. L3 or C4-C6")
    slab.add_argument("--levels-from-catalog", action="store_true",
                      help="restrict each label to its own vertebral levels from the catalog (seed 002)")
    slab.add_argument("--landmarks", type=existing_path,
                      help="segmentation holding the landmarks (default: --seg), e.g. TotalSegmentator")
    slab.add_argument("--landmark-scheme", help="scheme naming --landmarks ids (default: total)")
    out = p.add_argument_group("outputs")
    out.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.csv",
                     help="per-label table (.csv, .tsv or .parquet)")
    out.add_argument("--json", type=Path, metavar="OUT.json",
                     help="per-label table, indices and settings as JSON")
    out.add_argument("--per-slice", type=Path, metavar="OUT2.csv",
                     help="per-slice table (CSA, fat/HU profile)")
    out.add_argument("--indices", type=Path, metavar="OUT3.csv", help="regional indices (one row)")
    out.add_argument("--height-m", type=positive_float, metavar="H", help="body height in m for TVI/SMI")
    add_common_flags(p)
    p.set_defaults(handler=run)


def _config(args):
    from myoscan.quantify import QuantifyConfig

    flags = {
        "erosion_iterations": args.erode, "fat_fraction_unit": args.ff_unit,
        "cluster_components": args.components, "csa_slice_index": args.csa_slice,
        "csa_world_z_mm": args.csa_z,
        "cluster_methods": None if args.method == "both" else (args.method,),
        "erode_at_image_border": False if args.border_inside else None,
    }
    flags = {k: v for k, v in flags.items() if v is not None}
    if args.config:
        return QuantifyConfig.from_file(args.config, **flags)
    return dataclasses.replace(QuantifyConfig(), **flags)


def _landmarks(args, labels, names):
    """Landmark segmentation and its label names (only read when a slab needs them)."""
    from myoscan.quantify.files import label_names_of, load_segmentation

    if args.landmarks is None:
        return labels, label_names_of(names, args.landmark_scheme or args.scheme)
    landmarks, landmark_names = load_segmentation(args.landmarks)
    return landmarks, label_names_of(landmark_names, args.landmark_scheme or "total")


def _records(table) -> list[dict]:
    """Rows as plain JSON values (NaN and pandas NA -> None)."""
    return json.loads(table.to_json(orient="records"))


def run(args) -> int:
    """Read the inputs, quantify, write the tables; return 0."""
    from myoscan.io import read_volume
    from myoscan.outputs import write_json, write_output_set, write_table
    from myoscan.quantify import measure, regional_indices
    from myoscan.quantify.files import load_segmentation, resolve_slab, scheme_level_ranges

    config = _config(args)
    labels, names = load_segmentation(args.seg)
    if args.scheme and names and Path(args.seg).is_dir():
        raise InputError(f"{args.seg}: a mask folder numbers its masks 1..N by file name, so --scheme "
                         f"{args.scheme} would misname them; drop --scheme (the file names name the labels)")
    images = {role: read_volume(getattr(args, role)) if getattr(args, role) else None
              for role in ("water", "fat", "fat_fraction", "ct", "image")}
    needs_landmarks = args.slab_between or args.slab_preset or args.slab_levels or args.levels_from_catalog
    landmarks, landmark_names = _landmarks(args, labels, names) if needs_landmarks else (None, None)
    slab = resolve_slab(labels, slices=args.slab_slices, world_z=args.slab_z, between=args.slab_between,
                        preset=args.slab_preset, levels=args.slab_levels, landmarks=landmarks,
                        landmark_names=landmark_names)
    z_ranges = None
    if args.levels_from_catalog:
        if not args.scheme:
            raise InputError("--levels-from-catalog needs --scheme (e.g. cervical)")
        z_ranges = scheme_level_ranges(args.scheme, landmarks, landmark_names)
    result = measure(labels, **images, names=names, scheme=args.scheme, slab=slab, label_z_ranges=z_ranges,
                     config=config, progress=not args.quiet)
    table = result.label_table()
    indices = regional_indices(table, height_m=args.height_m, config=config)
    named = [p for p in (args.output, args.per_slice, args.indices, args.json) if p]
    if len({path.resolve() for path in named}) < len(named):
        raise InputError("two outputs share one file name; give -o, --per-slice, --indices and --json "
                         "different names")
    # Every output is staged and they appear together: a bad --per-slice name leaves no OUT.csv.
    writers: dict[Path, Callable[[Path], object]] = {args.output: lambda path: write_table(table, path)}
    if args.per_slice:
        per_slice = result.slice_table()
        writers[args.per_slice] = lambda path: write_table(per_slice, path)
    if args.indices:
        writers[args.indices] = lambda path: write_table(indices, path)
    if args.json:
        inputs = {"seg": args.seg, **{k: getattr(args, k) for k in images if getattr(args, k)}}
        record = {"inputs": inputs, "scheme": args.scheme, "config": config.to_dict(),
                  "slab": None if slab is None else {"start": slab.start, "stop": slab.stop},
                  "labels": _records(table), "regional_indices": _records(indices)[0]}
        writers[args.json] = lambda path: write_json(record, path)
    write_output_set(writers)
    log.info("wrote %s (%d labels)", args.output, len(table))
    return 0
