"""Time multi-station fusion: 4 stations x 4 Dixon contrasts per subject.

Each station is 224 x 168 x 64 voxels of 2.2 x 2.2 x 3 mm, consecutive stations overlap
by about 20 % (13 slices), and station positions are off the slice lattice by fractions
of a millimetre (as table positions are), so the slice axis is really interpolated.

    python benchmarks/bench_stitch.py [--repeats 3] [--in-plane-shift] [--files]

Prints seconds per subject (all 4 contrasts). ``--in-plane-shift`` also offsets the
stations in-plane by a fraction of a voxel (full trilinear work on every axis);
``--files`` includes reading the stations from NIfTI files.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from myoscan.io import Volume, write_volume
from myoscan.stitch import stitch_contrasts

SHAPE = (224, 168, 64)
SPACING_MM = (2.2, 2.2, 3.0)
N_STATIONS = 4
OVERLAP_SLICES = 13
CONTRASTS = ("water", "fat", "in", "opp")


def make_subject(rng: np.random.Generator, in_plane_shift: bool) -> dict[str, list[Volume]]:
    """Synthetic stations: smooth anatomy-like values, float32, one Volume per station and contrast."""
    stations: dict[str, list[Volume]] = {c: [] for c in CONTRASTS}
    step_mm = (SHAPE[2] - OVERLAP_SLICES) * SPACING_MM[2]
    i, j, k = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in SHAPE), indexing="ij", sparse=True)
    for s in range(N_STATIONS):
        affine = np.diag([*SPACING_MM, 1.0])
        shift = rng.uniform(0.1, 0.9, 3) * (SPACING_MM if in_plane_shift else (0, 0, SPACING_MM[2]))
        affine[:3, 3] = (-246.4 + shift[0], -184.8 + shift[1], -s * step_mm + shift[2])
        base = 300 + 80 * np.sin(i / 17) * np.cos(j / 23) + 40 * np.sin((k + 51 * s) / 11)
        for n, contrast in enumerate(CONTRASTS):
            values = (base * (0.3 + 0.2 * n)).astype(np.float32)
            stations[contrast].append(Volume(values, affine, meta={"SeriesTime": f"1{s}0000"}))
    return stations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--in-plane-shift", action="store_true")
    parser.add_argument("--files", action="store_true", help="read the stations from NIfTI files")
    args = parser.parse_args()
    subject = make_subject(np.random.default_rng(0), args.in_plane_shift)
    with tempfile.TemporaryDirectory() as tmp:
        inputs: dict[str, list] = subject
        if args.files:
            inputs = {c: [write_volume(v, Path(tmp) / f"{c}_{i}.nii") for i, v in enumerate(vols)]
                      for c, vols in subject.items()}
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = stitch_contrasts(inputs)
            times.append(time.perf_counter() - start)
    fused = result.volumes["water"]
    print(f"stations: {N_STATIONS} x {len(CONTRASTS)} contrasts of {SHAPE} voxels, {SPACING_MM} mm, "
          f"{OVERLAP_SLICES}-slice overlap; in-plane shift: {args.in_plane_shift}; from files: {args.files}")
    print(f"fused grid: {fused.shape} voxels")
    print(f"seconds per subject: median {statistics.median(times):.2f} (min {min(times):.2f}, "
          f"max {max(times):.2f}, {args.repeats} runs)")


if __name__ == "__main__":
    main()
