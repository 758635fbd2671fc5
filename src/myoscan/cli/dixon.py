"""``myoscan dixon``: water, fat and fat fraction from Dixon images, with a fat-water swap check."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from myoscan.cli._common import add_common_flags, existing_path, positive_float
from myoscan.errors import InputError

DESCRIPTION = """\
From in-phase + opposed-phase images: W = (IP + OP) / 2, F = (IP - OP) / 2 and the fat
fraction. From water + fat (optionally with IP/OP of the same acquisition): the fat
fraction, IP = W + F and OP = W - F, and a fat-water swap check (swap probability, mask,
swapped share of the body, QC flag); --fix exchanges W and F back inside detected swaps.
Fat fraction is NaN where W + F is below the noise floor. Outputs (NIfTI, input
geometry) and a dixon.json report go to DIR; they appear together or not at all.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``myoscan dixon``."""
    from myoscan.dixon import SwapConfig

    p = subparsers.add_parser("dixon", help="water/fat/fat fraction from Dixon images; fat-water swap check",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--in-phase", "--ip", type=existing_path, metavar="IMAGE", help="in-phase image")
    p.add_argument("--opposed-phase", "--op", type=existing_path, metavar="IMAGE", help="opposed-phase image")
    p.add_argument("--water", type=existing_path, metavar="IMAGE", help="water image")
    p.add_argument("--fat", type=existing_path, metavar="IMAGE", help="fat image")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument("--noise-floor", type=positive_float, metavar="SIGNAL",
                   help="minimum W + F for a fat fraction (default: from the background noise, see docs)")
    p.add_argument("--no-swap-check", action="store_true", help="skip the fat-water swap check")
    p.add_argument("--fix", action="store_true", help="exchange W and F back inside detected swap regions")
    p.add_argument("--min-swap-ml", type=positive_float, default=SwapConfig.min_region_ml, metavar="ML",
                   help="smallest swapped region reported (default %(default)s mL)")
    add_common_flags(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Compute the Dixon maps and write them to the output folder."""
    import numpy as np

    from myoscan.dixon import SwapConfig, process_dixon
    from myoscan.io import read_volume, require_3d, write_volume
    from myoscan.outputs import write_json, write_output_set

    given = {k: getattr(args, k) for k in ("water", "fat", "in_phase", "opposed_phase")}
    if not any(given.values()):
        raise InputError("no input images: give --water and --fat, or --in-phase and --opposed-phase")
    volumes = {k: require_3d(read_volume(v)) if v is not None else None for k, v in given.items()}
    maps = process_dixon(**volumes, check_swaps=not args.no_swap_check, fix=args.fix, floor=args.noise_floor,
                         config=SwapConfig(min_region_ml=args.min_swap_ml))
    out = Path(args.output)
    images = {"water": maps.water, "fat": maps.fat, "fat_fraction_pct": maps.fat_fraction}
    if given["in_phase"] is None:
        images.update(in_phase=maps.in_phase, opposed_phase=maps.opposed_phase)
    if maps.swap is not None:
        images["swap_probability"] = maps.fat_fraction.with_array(maps.swap.probability)
        images["swap_mask"] = maps.fat_fraction.with_array(maps.swap.mask.astype(np.uint8))
    report = {"inputs": {k: str(v) for k, v in given.items() if v is not None}, **maps.report()}
    writers: dict[Path, Callable[[Path], object]] = {
        out / f"{name}.nii.gz": (lambda path, v=volume: write_volume(v, path))
        for name, volume in images.items()
    }
    writers[out / "dixon.json"] = lambda path: write_json(report, path)
    write_output_set(writers)
    for note in maps.notes:
        print(f"note: {note}")
    swap = maps.swap
    if swap is not None and swap.has_swap:
        print(f"swap check: SWAP in {100 * swap.swapped_fraction:.1f} % of the body "
              f"({swap.swapped_volume_ml:.0f} mL, {swap.n_regions} region(s))"
              f"{', fixed' if maps.is_fixed else ''}")
    elif swap is not None:
        print("swap check: no fat-water swap found")
    print(f"wrote {len(writers)} files to {out}")
    return 0
