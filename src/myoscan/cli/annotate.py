"""``myoscan annotate``: model-assisted annotation with 3D Slicer or ITK-SNAP."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from myoscan.cli._common import add_common_flags, existing_path

log = logging.getLogger(__name__)

DESCRIPTION = """\
Model-assisted annotation (seed 000): a model segments a new image, a rater corrects the
segmentation in 3D Slicer or ITK-SNAP, and the corrected file goes back into the dataset.

  myoscan annotate export sub-07_water.nii.gz --model leg-demo -o sub-07.seg.nrrd
  myoscan annotate export image.nii.gz --labels labels.nii.gz --scheme leg -o case.seg.nrrd
  (correct sub-07.seg.nrrd in 3D Slicer: File > Add Data, Segment Editor, Save)
  myoscan annotate import sub-07.seg.nrrd --image ds/sub-07/anat/sub-07_water.nii.gz --scheme leg
  myoscan annotate import corrected.nii.gz --labels case.itksnap.txt --scheme leg -o case_dseg.nii.gz

export writes a Slicer segmentation (.seg.nrrd: one segment per catalog structure, named
and coloured from the label catalog) and an ITK-SNAP label-description file
(<name>.itksnap.txt; in ITK-SNAP: Segmentation > Open, then Label Editor > Import). import
matches segments by NAME (canonical, display or tool names), not by position or value, so
renamed, reordered, added or deleted segments keep their meaning; a cropped Slicer file is
placed back onto the image grid. Without -o the label map goes where the dataset keeps it
(BIDS: derivatives/labels/sub-*/anat/sub-*_dseg.nii.gz). See docs/annotate.md."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``myoscan annotate`` with its ``export`` and ``import`` actions."""
    p = subparsers.add_parser("annotate", help="export to / import from 3D Slicer and ITK-SNAP",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    e = actions.add_parser("export", help="write a prediction or label map as .seg.nrrd + ITK-SNAP labels",
                           description="Write a model's prediction (--model) or a label map (--labels) "
                                       "as a 3D Slicer .seg.nrrd and an ITK-SNAP label-description file.")
    e.add_argument("images", nargs="+", type=existing_path, metavar="IMAGE",
                   help="input image(s), one per model contrast in the model's order")
    source = e.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="model bundle name or folder to segment IMAGE with")
    source.add_argument("--labels", type=existing_path, help="an existing label map to export instead")
    e.add_argument("--scheme", help="label scheme of --labels; with --model, the scheme to renumber the "
                                    "prediction into by structure name (default: the model's scheme)")
    e.add_argument("-o", "--output", type=Path, required=True, help="output .seg.nrrd")
    e.add_argument("--itksnap", type=Path, help="label-description file (default OUTPUT.itksnap.txt)")
    e.add_argument("--only-present", action="store_true",
                   help="only segments present in the label map (default: every structure of the scheme)")
    e.add_argument("--device", default="auto", help="device for --model: auto, cpu, cuda, mps")
    add_common_flags(e)
    e.set_defaults(handler=run)

    i = actions.add_parser("import", help="read a corrected segmentation back with catalog label ids",
                           description="Read a corrected .seg.nrrd (or a label map with an ITK-SNAP label "
                                       "file) and write it with the scheme's label ids, matched by name.")
    i.add_argument("segmentation", type=existing_path, help="corrected .seg.nrrd or label map")
    i.add_argument("--scheme", required=True, help="label scheme of the written label map, e.g. leg")
    i.add_argument("--image", type=existing_path,
                   help="the image it belongs to (its grid; default output location in the dataset)")
    i.add_argument("--labels", type=existing_path, help="ITK-SNAP label-description file naming the values")
    i.add_argument("--contrast", help="contrast suffix of --image in a non-BIDS folder (to name the case)")
    i.add_argument("-o", "--output", type=Path, help="label map to write (default: from --image)")
    i.add_argument("--force", action="store_true", help="replace an existing label map")
    add_common_flags(i)
    i.set_defaults(handler=run)


def _export(args: argparse.Namespace) -> int:
    from myoscan.annotate import export_segmentation
    from myoscan.errors import InputError
    from myoscan.io import check_same_grid, read_volume

    if args.labels is not None:
        if not args.scheme:
            raise InputError("--scheme is required with --labels (the scheme of the label ids, e.g. leg)")
        labels, scheme = read_volume(args.labels), args.scheme
        for image in args.images:  # the rater opens IMAGE with it: it must overlay exactly
            check_same_grid(read_volume(image), labels)
    else:
        from myoscan.segment import load_bundle, resolve_bundle
        from myoscan.segment.predict import segment_volumes

        bundle = load_bundle(resolve_bundle(args.model))
        result = segment_volumes([read_volume(p) for p in args.images], bundle, device=args.device,
                                 show_progress=not args.quiet)
        if result.scheme is None:
            raise InputError(f"model {bundle.name}: its labels are not catalog labels, so segments cannot "
                             "be named; export its label map with --labels and --scheme instead")
        labels, scheme = result.labels, result.scheme
        if args.scheme and args.scheme != result.scheme:  # renumber by structure name, not by value
            labels, scheme = _to_scheme(labels, result.names, args.scheme), args.scheme
    written = export_segmentation(labels, args.output, scheme=scheme, itksnap_path=args.itksnap,
                                  only_present=args.only_present)
    for path in written:
        log.info("wrote %s", path)
    return 0


def _to_scheme(labels, names: dict[int, str], scheme: str):
    """Renumber ``labels`` with each structure's id in ``scheme`` (InputError when one is missing)."""
    import numpy as np

    from myoscan.labels import load_catalog

    target = load_catalog().scheme(scheme)
    lut = np.zeros(max(names, default=0) + 1, dtype=np.int64)
    for value, name in names.items():
        lut[value] = target.id_of(name)  # raises when the structure is not in the scheme
    return labels.with_array(lut[np.asarray(labels.array)])


def _import(args: argparse.Namespace) -> int:
    from myoscan.annotate import import_segmentation, label_path_for
    from myoscan.errors import InputError
    from myoscan.io import write_volume

    if args.output is None and args.image is None:
        raise InputError("give -o/--output or --image (the label map then goes where the dataset keeps it)")
    target = args.output or label_path_for(args.image, args.contrast)
    if target.exists() and not args.force:
        raise InputError(f"{target}: already exists; pass --force to replace it")
    volume = import_segmentation(args.segmentation, scheme=args.scheme, reference=args.image,
                                 label_file=args.labels)
    write_volume(volume, target)
    log.info("wrote %s (%d labels of scheme %s)", target, len(set(volume.array.ravel().tolist()) - {0}),
             args.scheme)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``myoscan annotate export`` or ``myoscan annotate import``."""
    return _export(args) if args.action == "export" else _import(args)
