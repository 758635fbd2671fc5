"""``myoscan train``: train a segmentation model bundle from labelled images."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from myoscan.cli._common import add_common_flags, existing_path, positive_int

log = logging.getLogger(__name__)

DESCRIPTION = """\
Train a segmentation network (MONAI/PyTorch) and write it as a model bundle that
`myoscan segment --model BUNDLE_DIR` runs.

  myoscan train --config leg-2d-unet --data dataset/ -o models/leg
  myoscan train --config thigh-unetr --data datalist.json -o models/thigh --set training.lr=1e-4
  myoscan train --config abdomen-ct-resunet --data ct/ -o cv/abdomen --folds 5
  myoscan train --config my.yaml --data dataset/ -o models/leg --resume
  myoscan train --list-configs
  myoscan train --config leg-2d-unet --show-config --set training.batch_size=4

--config is a shipped configuration (--list-configs; one per seed paper plus leg-demo) or
a YAML file, which may start with `extends: <name>` and change only some fields. Every
field can be set with --set section.field=value (value read as YAML) or from a YAML file
with --overrides. --data is a BIDS dataset with label maps under derivatives/ (MuscleMap
layout), a MONAI datalist JSON, or a folder of <case>_<contrast>.nii.gz / <case>_dseg.nii.gz
pairs (also images/+labels/ and nnU-Net imagesTr/+labelsTr/). Every image needs a label
map on the same voxel grid.

Checkpoints go to BUNDLE_DIR.training/; --resume continues from there with the same split,
optimiser and random state. With --folds K (or validation.folds in the config) K bundles are
trained under OUTPUT/fold-<k>/ with cv_fold_metrics.csv and cv_summary.csv (mean ± SD Dice
per structure). See docs/train.md."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``myoscan train``."""
    p = subparsers.add_parser("train", help="train a segmentation model bundle (MONAI)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="shipped config name or YAML file")
    p.add_argument("--data", type=existing_path, action="append",
                   help="BIDS dataset, datalist .json or folder of pairs (repeat to pool several)")
    p.add_argument("--validation-data", type=existing_path, action="append",
                   help="separate validation data (repeatable; default: held-out fraction of --data)")
    p.add_argument("-o", "--output", type=Path,
                   help="bundle folder to write (a folder of fold bundles with --folds)")
    p.add_argument("--folds", type=positive_int, help="k-fold cross-validation (1 = single model)")
    p.add_argument("--max-iterations", type=positive_int, help="run length (overrides the config)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. training.lr=2e-4 (repeatable)")
    p.add_argument("--overrides", dest="override_file", type=existing_path, metavar="YAML",
                   help="YAML file of config fields to override (applied before --set)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT.training/checkpoint.pt")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--list-configs", action="store_true", help="list the shipped configs and exit")
    p.add_argument("--show-config", action="store_true", help="print the resolved config as YAML and exit")
    add_common_flags(p)
    p.set_defaults(handler=run)


def _command(args: argparse.Namespace) -> str:
    """Rebuild the command line that reproduces this run (for the model card)."""
    parts = ["myoscan", "train", "--config", str(args.config)]
    for path in args.data:
        parts += ["--data", str(path)]
    for path in args.validation_data or []:
        parts += ["--validation-data", str(path)]
    parts += ["-o", str(args.output)]
    if args.folds:
        parts += ["--folds", str(args.folds)]
    if args.max_iterations:
        parts += ["--max-iterations", str(args.max_iterations)]
    if args.override_file:
        parts += ["--overrides", str(args.override_file)]
    for item in args.overrides:
        parts += ["--set", item]
    return shlex.join(parts)


def _list_configs() -> int:
    from myoscan.train import config_names, load_config

    for name in config_names():
        cfg = load_config(name)
        print(f"{name:20s} {cfg.description}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``myoscan train``."""
    import yaml

    from myoscan.errors import InputError
    from myoscan.train import cross_validate, load_config, train

    if args.list_configs:
        return _list_configs()
    if not args.config:
        raise InputError("--config is required (a shipped name from --list-configs or a YAML file)")
    if args.override_file:
        try:
            data = yaml.safe_load(Path(args.override_file).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"{args.override_file}: invalid YAML ({exc})") from exc
        if not isinstance(data, dict):
            raise InputError(f"{args.override_file}: expected a mapping of config sections")
        cfg = load_config(load_config(args.config, data), args.overrides)
    else:
        cfg = load_config(args.config, args.overrides)
    if args.show_config:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None, width=100), end="")
        return 0
    if args.data is None or args.output is None:
        raise InputError("--data and -o/--output are required to train")
    folds = args.folds or cfg.validation.folds
    common = dict(max_iterations=args.max_iterations, resume=args.resume, device=args.device,
                  show_progress=not args.quiet, command=_command(args))
    if folds > 1:
        if args.validation_data:
            raise InputError("--validation-data cannot be combined with --folds: folds validate on "
                             "held-out parts of --data")
        result = cross_validate(cfg, args.data, args.output, folds=folds, **common)
        print(result.summary.to_string(index=False), file=sys.stdout)
        log.info("wrote %d fold bundles and cv_summary.csv to %s", folds, args.output)
        return 0
    result = train(cfg, args.data, args.output, validation_data=args.validation_data, **common)
    table = result.dice.to_frame("dice").assign(dice_post=result.dice_post)
    print(table.round(4).to_string(), file=sys.stdout)
    on_training = result.validation_cases == result.train_cases
    print(f"mean Dice {result.mean_dice:.4f} (postprocessed"
          f"{', on the training cases: no held-out data' if on_training else ''}) at iteration "
          f"{result.best_iteration} of {result.iterations}; bundle: {result.bundle}", file=sys.stdout)
    return 0
