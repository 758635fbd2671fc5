"""Time ``myoscan.phantom.make_phantom`` for the seed 000 leg Dixon grid (448 x 266 x 60).

Prints wall-clock and CPU seconds per phantom (median of ``--repeat`` runs after one warm-up
that loads the modules and the label catalog), the time to write its files, and the same for
the other regions/modalities with ``--all``. Target: leg Dixon <= 5 s on 2 cores.
Wall time on a shared machine includes waiting for the CPU; CPU time is what the phantom costs.

    python benchmarks/bench_phantom.py [--repeat 3] [--all] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from myoscan.phantom import MODALITIES, REGIONS, PhantomConfig, make_phantom, write_phantom


def time_one(region: str, modality: str, repeat: int, write: bool) -> None:
    make_phantom(region, modality, seed=0)  # warm-up: imports, catalog, first-touch allocations
    walls, cpus, writes = [], [], []
    shape = None
    for seed in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        phantom = make_phantom(region, modality, seed=seed, config=PhantomConfig())
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        shape = phantom.labels.shape
        if write:
            with tempfile.TemporaryDirectory() as folder:
                start = time.perf_counter()
                write_phantom(phantom, folder, overwrite=True)
                writes.append(time.perf_counter() - start)
    line = (f"{region:9s} {modality:5s} {'x'.join(map(str, shape)):>13s}  "
            f"wall {statistics.median(walls):5.2f} s  cpu {statistics.median(cpus):5.2f} s")
    if writes:
        line += f"  write {statistics.median(writes):5.2f} s"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="phantoms per case (median reported)")
    parser.add_argument("--all", action="store_true", help="every region and modality")
    parser.add_argument("--write", action="store_true", help="also time writing the NIfTI files")
    args = parser.parse_args()
    cases = [(r, m) for r in REGIONS for m in MODALITIES] if args.all else [("leg", "dixon")]
    for region, modality in cases:
        time_one(region, modality, args.repeat, args.write)


if __name__ == "__main__":
    main()
