"""Benchmark: validation Dice against training minutes on leg Dixon phantoms, on the CPU.

Generates leg phantoms (default 20 training + 4 validation subjects, fresh seeds; or uses
--data), trains the ``leg-demo`` configuration (or --config) for --iterations, and prints
the validation Dice at every validation against the training minutes, with the machine's
load average before and after. Target (issue 6): mean Dice >= 0.90 in <= 15 min on 2 cores.

    python benchmarks/bench_train.py                       # 20 + 4 phantoms, leg-demo
    python benchmarks/bench_train.py --subjects 24 --iterations 2000 --keep /tmp/bench
    python benchmarks/bench_train.py --data datalist.json --set training.lr=1e-3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def _phantoms(out: Path, n: int, seed: int, extra: list[str]) -> Path:
    cmd = ["myoscan", "phantom", "--region", "leg", "--modality", "dixon", "--n", str(n), "--seed", str(seed),
           "--images", "water", "-o", str(out), "-q", *extra]
    subprocess.run(cmd, check=True)
    return out


def _datalist(root: Path, sets: dict[str, Path], validation: Path) -> Path:
    def entries(prefix: str, folder: Path) -> list[dict[str, str]]:
        rows = []
        for image in sorted(folder.glob("sub-*/anat/*_water.nii.gz")):
            subject = image.name.split("_")[0]
            label = folder / "derivatives" / "labels" / subject / "anat" / f"{subject}_dseg.nii.gz"
            rows.append({"name": f"{prefix}-{subject}", "image": str(image), "label": str(label)})
        return rows

    data = {"training": [e for prefix, folder in sets.items() for e in entries(prefix, folder)],
            "validation": entries("val", validation)}
    path = root / "datalist.json"
    path.write_text(json.dumps(data, indent=1))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="existing dataset/datalist (skip phantom generation)")
    parser.add_argument("--subjects", type=int, default=20, help="training phantoms (>= 20 for the target)")
    parser.add_argument("--validation-subjects", type=int, default=4)
    parser.add_argument("--seed", type=int, default=500, help="phantom seed of the training set")
    parser.add_argument("--config", default="leg-demo")
    parser.add_argument("--iterations", type=int, help="run length (default: the config's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--keep", type=Path, help="keep data and model in this folder")
    args = parser.parse_args()

    from myoscan.train import load_config, train

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_train_"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    if args.data is None:
        start = time.monotonic()
        n_bias = args.subjects // 3
        sets = {"a": _phantoms(work / "train-a", args.subjects - n_bias, args.seed, []),
                "b": _phantoms(work / "train-b", n_bias, args.seed + 1, ["--bias-field"])}
        validation = _phantoms(work / "val", args.validation_subjects, args.seed + 2, [])
        data = _datalist(work, sets, validation)
        print(f"generated {args.subjects} + {args.validation_subjects} phantoms in "
              f"{(time.monotonic() - start) / 60:.1f} min")
    else:
        data = args.data
    cfg = load_config(args.config, args.overrides)
    print(f"config {cfg.name}; torch threads {torch.get_num_threads()}; CPU cores {os.cpu_count()}; "
          f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    out = work / "model"
    result = train(cfg, data, out, max_iterations=args.iterations, device="cpu", show_progress=False,
                   resume=(out.parent / f"{out.name}.training").exists())
    load_after = os.getloadavg()
    print("\nvalidation Dice against training time (CPU)")
    print(f"{'minutes':>8} {'iteration':>9} {'train loss':>10} {'mean Dice':>9}")
    for row in result.history.itertuples():
        print(f"{row.elapsed_min:8.2f} {row.iteration:9d} {row.train_loss:10.4f} {row.val_mean_dice:9.4f}")
    print(f"\nkept weights (iteration {result.best_iteration}), per structure:")
    print(result.dice.to_frame("dice").assign(dice_post=result.dice_post).round(4).to_string())
    minutes = result.elapsed_s / 60.0
    met = result.mean_dice >= 0.90 and minutes <= 15
    print(f"\nmean Dice {result.mean_dice:.4f} (postprocessed) after {minutes:.1f} training minutes; "
          f"target >= 0.90 in <= 15 min: {'met' if met else 'NOT met'}")
    print(f"load average after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; files in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
