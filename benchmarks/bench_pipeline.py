"""Throughput of ``myoscan run`` on 24 leg Dixon phantoms, 1 vs 2 Dask workers.

Prints subjects per hour for the quantify-only pipeline and for the full pipeline
(segment with the shipped demo model + quantify), and the 2-worker scaling ratio
(throughput with 2 workers / throughput with 1; 2.0 is perfect scaling).

    python benchmarks/bench_pipeline.py [--subjects 24] [--half] [--skip-full]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def make_dataset(root: Path, n: int, half: bool) -> None:
    from myoscan.phantom import PhantomConfig, write_dataset

    # Default: the seed 000 grid, 448 x 266 x 60 at 0.71 x 0.71 x 5 mm.
    config = PhantomConfig(shape=(224, 133, 30), spacing_mm=(1.42, 1.42, 5.0)) if half else None
    write_dataset(
        "leg", "dixon", n, root, seed=2024, config=config, images=["water", "fat"], show_progress=False
    )


def run_once(dataset: Path, out: Path, steps: tuple[str, ...], workers: int) -> float:
    from myoscan.pipeline import RunConfig, run_pipeline

    shutil.rmtree(out, ignore_errors=True)
    config = RunConfig(
        steps=steps, scheme="leg", model="leg-demo" if "segment" in steps else None, workers=workers
    )
    start = time.perf_counter()
    summary = run_pipeline(dataset, out, config, show_progress=False)
    seconds = time.perf_counter() - start
    if summary.n_failed:
        raise SystemExit(f"{summary.n_failed} subjects failed: {summary.results}")
    return summary.counts["done"] / seconds * 3600.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument(
        "--half", action="store_true", help="224 x 133 x 30 phantoms (default: 448 x 266 x 60)"
    )
    parser.add_argument("--skip-full", action="store_true", help="only the quantify-only pipeline")
    args = parser.parse_args()
    print(f"cpu cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "bids"
        start = time.perf_counter()
        make_dataset(dataset, args.subjects, args.half)
        print(f"{args.subjects} phantoms written in {time.perf_counter() - start:.1f} s")
        pipelines = [("quantify-only", ("quantify",))]
        if not args.skip_full:
            pipelines.append(("segment+quantify", ("segment", "quantify")))
        for label, steps in pipelines:
            rates = {w: run_once(dataset, Path(tmp) / f"out-{w}", steps, w) for w in (1, 2)}
            print(
                f"{label:18s} 1 worker: {rates[1]:8.0f} subjects/h   2 workers: {rates[2]:8.0f} subjects/h   "
                f"scaling x{rates[2] / rates[1]:.2f} of 2 ({rates[2] / rates[1] / 2:.0%})"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
