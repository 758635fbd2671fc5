"""``myoscan phantom``: synthetic Dixon MRI / CT scans with exact ground truth."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from myoscan.cli._common import add_common_flags, comma_list, float_triple, non_negative_int, positive_int

log = logging.getLogger(__name__)

REGIONS = ("leg", "thigh", "abdomen", "cervical")
IMF_LEVELS = ("low", "normal", "high", "random")


def _noise(text: str) -> float:
    """Argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _shape(text: str) -> tuple[int, int, int]:
    """Argparse type: ``448,266,60`` -> (448, 266, 60)."""
    values = float_triple(text)
    if any(v != int(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected three whole numbers like 448,266,60, got {text!r}")
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def add_parser(subparsers) -> None:
    """Add the ``phantom`` sub-command."""
    p = subparsers.add_parser(
        "phantom",
        help="generate synthetic Dixon/CT scans with known muscle volumes and fat",
        description=(
            "Generate a digital phantom of both legs (calves), thighs, abdomen or neck: Dixon MRI "
            "(water, fat, in-phase, opposed-phase, fat fraction) or CT, with the label map in the "
            "region's catalog ids, a tissue map and truth.json (true volume, IMF / HU per label, "
            "TMV, P/A ratio, asymmetry). Without --n one phantom is written to DIR; with --n a "
            "BIDS-like dataset of N subjects (labels under derivatives/). The same seed gives "
            "byte-identical files."
        ),
    )
    p.add_argument("--region", required=True, choices=REGIONS, help="body region = label scheme")
    p.add_argument("--modality", choices=("dixon", "ct"), default="dixon", help="default: dixon")
    p.add_argument("--n", type=positive_int, metavar="N", help="write a dataset of N subjects")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--noise", type=_noise, metavar="SIGMA",
                   help="Dixon: noise SD per echo relative to the muscle signal (default 0.02); "
                        "CT: SD in HU (default 12); 0 = noise-free")
    p.add_argument("--bias-field", action="store_true", help="smooth multiplicative bias (Dixon)")
    p.add_argument("--swap", action="store_true",
                   help="swap water and fat inside a blob (Dixon); the blob is saved as a mask")
    p.add_argument("--imf", type=str.lower, choices=IMF_LEVELS, default="normal",
                   help="fat infiltration: low, normal (default), high or random (2-25 %% per muscle)")
    p.add_argument("--shape", type=_shape, metavar="I,J,K", help="voxels (default per region)")
    p.add_argument("--spacing", type=float_triple, metavar="X,Y,Z",
                   help="voxel size in mm (default per region; with only one of --shape/--spacing "
                        "the other keeps the default field of view)")
    p.add_argument("--images", type=comma_list, metavar="A,B",
                   help="write only these images, e.g. water (default: all of the modality)")
    p.add_argument("--sex", choices=("female", "male"), help="fix the sex (default: random)")
    p.add_argument("--preview", action="store_true",
                   help="also write preview.png (middle slice with labels; single phantom only)")
    p.add_argument("--overwrite", action="store_true", help="allow a non-empty output folder")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="output folder")
    add_common_flags(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Generate and write the phantom(s)."""
    from myoscan.errors import InputError
    from myoscan.phantom import PhantomConfig, make_phantom, save_overlay, write_dataset, write_phantom
    from myoscan.phantom.writers import check_images, check_output_folder

    config = PhantomConfig(shape=args.shape, spacing_mm=args.spacing, noise=args.noise,
                           bias_field=args.bias_field, swap=args.swap, imf=args.imf, sex=args.sex)
    if args.n is not None:
        if args.preview:
            raise InputError("--preview shows a single phantom; drop it or drop --n")
        table = write_dataset(args.region, args.modality, args.n, args.output, seed=args.seed,
                              config=config, overwrite=args.overwrite, images=args.images,
                              show_progress=not args.quiet)
        log.info("wrote %d %s %s phantoms to %s", len(table), args.region, args.modality, args.output)
        return 0
    config = config.resolved(args.region, args.modality)
    check_output_folder(args.output, args.overwrite)
    check_images(args.modality, args.images)
    phantom = make_phantom(args.region, args.modality, seed=args.seed, config=config)
    written = write_phantom(phantom, args.output, overwrite=args.overwrite, images=args.images)
    if args.preview:
        save_overlay(phantom, args.output / "preview.png")
    regional = phantom.truth["regional"]
    log.info("wrote %s %s phantom (%s, seed %d, TMV %.0f cm3) to %s: %s", args.region, args.modality,
             phantom.subject.sex, args.seed, regional["tmv_cm3"], args.output,
             ", ".join(p.name for p in written.values()))
    return 0
