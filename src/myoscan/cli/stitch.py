"""``myoscan stitch``: fuse overlapping stations into one volume (seed 001)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from myoscan.cli._common import add_common_flags, existing_path, float_triple, positive_float
from myoscan.errors import InputError

DESCRIPTION = """\
Each STATION is a DICOM series folder, a NIfTI/NRRD file, or a folder holding several
(e.g. a UK Biobank station folder with the W, F, in and opp series, or a BIDS anat folder
with sub-01_chunk-1_water.nii.gz ...). Slices are sorted along the slice normal; stations
are ordered superior -> inferior; of two stations covering the same positions the most
recently acquired is kept (reported); every station is resampled trilinearly onto one
global grid (finest spacing unless --spacing) and overlaps are averaged (or cross-faded
with --blend ramp). With --contrast, every contrast is fused onto the same grid and
written as OUT_<contrast>. A coverage map (stations per voxel) and a JSON report are
written beside OUT; all outputs appear together or not at all.
"""

_SUFFIXES = (".nii.gz", ".nii", ".nrrd")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``myoscan stitch``."""
    from myoscan.stitch import DUPLICATE_OVERLAP

    p = subparsers.add_parser("stitch", help="fuse overlapping stations (multi-station MRI) into one volume",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stations", nargs="+", type=existing_path, metavar="STATION",
                   help="DICOM series folder, image file, or folder of stations")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                   help="output image (.nrrd, .nii.gz or .nii)")
    p.add_argument("--contrast", nargs="+", metavar="NAME",
                   help="contrasts of a Dixon set to fuse onto one grid, e.g. water fat in opp")
    p.add_argument("--spacing", type=float_triple, metavar="X,Y,Z",
                   help="output spacing in mm along the grid axes (default: finest station spacing)")
    p.add_argument("--blend", choices=("mean", "ramp"), default="mean",
                   help="overlap blending: mean of the stations (default) or linear cross-fade")
    p.add_argument("--duplicate-overlap", type=positive_float, default=DUPLICATE_OVERLAP, metavar="SHARE",
                   help="stations sharing more than this share of the shorter one are duplicates "
                        "(default %(default)s)")
    add_common_flags(p)
    p.set_defaults(handler=run)


def output_paths(output: Path, contrasts: list[str]) -> tuple[dict[str, Path], Path, Path]:
    """Image path per contrast, coverage path and report path for the ``-o`` argument.

    Examples
    --------
    >>> images, coverage, report = output_paths(Path("fused.nrrd"), ["water", "fat"])
    >>> images["fat"].name, coverage.name, report.name
    ('fused_fat.nrrd', 'fused_coverage.nrrd', 'fused_stitch.json')
    """
    name = output.name
    suffix = next((s for s in _SUFFIXES if name.lower().endswith(s)), None)
    if suffix is None:
        raise InputError(f"{name}: the output must end in .nrrd, .nii.gz or .nii")
    stem = name[: -len(suffix)]
    single = contrasts == ["image"]
    images = {c: output if single else output.with_name(f"{stem}_{c}{suffix}") for c in contrasts}
    return images, output.with_name(f"{stem}_coverage{suffix}"), output.with_name(f"{stem}_stitch.json")


def run(args: argparse.Namespace) -> int:
    """Fuse the stations and write the fused images, coverage map and report."""
    from myoscan.io import write_volume
    from myoscan.outputs import write_json, write_output_set
    from myoscan.stitch import find_stations, stitch_contrasts

    output_paths(Path(args.output), ["image"])  # fail on a bad extension before any work
    stations = find_stations(args.stations, args.contrast)
    result = stitch_contrasts(stations, spacing_mm=args.spacing, blend=args.blend,
                              duplicate_overlap=args.duplicate_overlap, show_progress=not args.quiet)
    images, coverage_path, report_path = output_paths(Path(args.output), list(result.volumes))
    writers: dict[Path, Callable[[Path], object]] = {
        images[c]: (lambda path, v=volume: write_volume(v, path)) for c, volume in result.volumes.items()
    }
    writers[coverage_path] = lambda path: write_volume(result.coverage, path)
    writers[report_path] = lambda path: write_json(result.report(), path)
    write_output_set(writers)
    for dropped in result.dropped:
        print(f"dropped duplicate station {dropped['name']}: {dropped['reason']}")
    for note in result.notes:
        print(f"note: {note}")
    volume = next(iter(result.volumes.values()))
    n_stations = len({s["name"] for s in result.stations})
    spacing = "x".join(f"{s:g}" for s in volume.spacing_mm)
    print(f"fused {n_stations} station(s) of {', '.join(result.volumes)} onto {volume.shape} voxels of "
          f"{spacing} mm -> {', '.join(str(p) for p in images.values())}")
    return 0
