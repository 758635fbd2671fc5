"""``myoscan segment``: segment an image with a model bundle or an imported model (parsing only)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from myoscan.cli._common import add_common_flags, existing_path, positive_int

log = logging.getLogger(__name__)

_DESCRIPTION = """\
Segment one subject's image(s) and write a label map on the input grid plus a JSON side-car
naming the model, its SHA-256 and the label names.

--model takes a bundle folder or name (`myoscan models list`), nnunet:FOLDER (an nnU-Net v2
trained-model folder), musclemap:FILE.pth (a MuscleMap checkpoint with its JSON), or
totalseg:SEG (TotalSegmentator output, a multi-label file or folder of masks, imported onto
IMAGE's grid with catalog names). Dixon models take --water/--fat or --in-phase/--opposed-phase;
the positional IMAGE fills the remaining channel. See docs/segment.md.
"""


def _overlap(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def add_parser(subparsers) -> None:
    """Register the ``segment`` sub-command."""
    p = subparsers.add_parser("segment", help="segment muscles with a model bundle, nnU-Net or MuscleMap",
                              description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", nargs="?", type=existing_path, metavar="IMAGE",
                   help="image to segment (NIfTI/NRRD/DICOM folder)")
    dixon = p.add_argument_group("Dixon contrasts (on one grid)")
    for flags, dest in ((["--water"], "water"), (["--fat"], "fat"), (["--in-phase", "--inphase"], "inphase"),
                        (["--opposed-phase", "--outphase"], "outphase")):
        dixon.add_argument(*flags, dest=dest, type=existing_path, metavar="FILE", help=f"{dest} image")
    p.add_argument("-m", "--model", required=True,
                   help="bundle folder or name, nnunet:PATH, musclemap:PATH or totalseg:PATH")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="SEG.nii.gz",
                   help="label map (.nii.gz/.nii/.nrrd); the side-car is SEG.json")
    run_group = p.add_argument_group("inference")
    run_group.add_argument("--overlap", type=_overlap, help="sliding-window overlap (default: the model's)")
    run_group.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    run_group.add_argument("--onnx", action="store_true", help="run the network with ONNX Runtime (CPU)")
    run_group.add_argument("--batch-size", type=positive_int, metavar="N",
                           help="windows per forward pass (default: the model's)")
    run_group.add_argument("--chunk-slices", type=positive_int, metavar="N",
                           help="axial slices per chunk (default: from free memory)")
    run_group.add_argument("--no-mirroring", action="store_true", help="nnU-Net: no test-time mirroring")
    run_group.add_argument("--ts-task", choices=["total", "total_mr"], default="total",
                           help="totalseg: TotalSegmentator task that wrote the labels (default total)")
    run_group.add_argument("--models-dir", action="append", type=existing_path, default=[], metavar="DIR",
                           help="extra folder of bundles (also $MYOSCAN_MODELS)")
    add_common_flags(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read the images, run the model, write the label map and side-car."""
    from myoscan.errors import InputError
    from myoscan.io import image_suffix, read_volume
    from myoscan.segment.adapters import RunOptions, run_model
    from myoscan.segment.predict import write_segmentation

    if image_suffix(args.output) not in (".nii", ".nii.gz", ".nrrd"):
        raise InputError(f"{args.output.name}: output must end in .nii.gz, .nii or .nrrd")
    from myoscan.segment.predict import sidecar_path

    inputs = [getattr(args, k) for k in ("image", "water", "fat", "inphase", "outphase")]
    for target in (args.output, sidecar_path(args.output)):
        if any(p is not None and Path(p).resolve() == target.resolve() for p in inputs):
            raise InputError(f"{target}: is one of the input images; choose another output name")
    named = {name: read_volume(getattr(args, name)) for name in ("water", "fat", "inphase", "outphase")
             if getattr(args, name) is not None}
    image = read_volume(args.image) if args.image is not None else None
    if image is None and not named:
        raise InputError("no image given: pass IMAGE and/or --water/--fat/--in-phase/--opposed-phase")
    options = RunOptions(device=args.device, overlap=args.overlap, sw_batch_size=args.batch_size,
                         chunk_slices=args.chunk_slices, use_onnx=args.onnx, mirroring=not args.no_mirroring,
                         ts_task=args.ts_task, show_progress=not args.quiet)
    segmentation = run_model(args.model, image, named, options=options, models_dirs=args.models_dir)
    path, sidecar = write_segmentation(segmentation, args.output)
    present = len(segmentation.sidecar()["labels_present"])
    log.info("wrote %s (%d of %d labels present) and %s", path, present, len(segmentation.names),
             sidecar.name)
    return 0
