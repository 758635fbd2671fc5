"""Time ``myoscan.quantify`` on a UK-Biobank-sized Dixon case against the time to load it.

Writes a synthetic 448 x 448 x 320 label volume with 113 labels (Voronoi cells inside an
elliptic body, 1 x 1 x 3 mm voxels) plus float32 fat and water images as NIfTI to a temporary
folder, then prints the time to read the three files next to the time ``quantify`` takes on
them (per-label volume, CSA, IMF on eroded and uneroded masks, voxel-wise fat fraction).
Target: quantify <= 1.5 x load.

    python benchmarks/bench_quantify.py [--shape 448,448,320] [--labels 113] [--repeat 2] [--format nii]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from myoscan.io import Volume, read_volume, write_volume
from myoscan.quantify import quantify

SPACING_MM = (1.0, 1.0, 3.0)
COARSE = 4  # labels are drawn on a 4x coarser grid and upsampled (keeps generation fast)


def synthetic_labels(shape: tuple[int, int, int], n_labels: int, seed: int) -> np.ndarray:
    """Voronoi cells of ``n_labels`` random seeds inside an elliptic cylinder (background outside)."""
    rng = np.random.default_rng(seed)
    coarse = tuple(max(1, s // COARSE) for s in shape)
    i, j = np.meshgrid(np.linspace(-1, 1, coarse[0]), np.linspace(-1, 1, coarse[1]), indexing="ij")
    body = np.broadcast_to(((i / 0.9) ** 2 + (j / 0.7) ** 2 < 1)[..., None], coarse)
    points = np.argwhere(body)[rng.choice(int(body.sum()), n_labels, replace=False)]
    markers = np.zeros(coarse, np.int32)
    markers[tuple(points.T)] = np.arange(1, n_labels + 1)
    nearest = ndi.distance_transform_edt(markers == 0, return_indices=True)[1]
    cells = np.where(body, markers[tuple(nearest)], 0).astype(np.uint8)
    full = cells.repeat(COARSE, 0).repeat(COARSE, 1).repeat(COARSE, 2)
    out = np.zeros(shape, np.uint8)
    part = tuple(slice(0, min(a, b)) for a, b in zip(shape, full.shape, strict=True))
    out[part] = full[part]
    return out


def dixon_images(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fat and water signal: muscle ~ 5-15 % fat depending on the label, noisy background."""
    rng = np.random.default_rng(seed)
    fat_pct = rng.uniform(5, 15, int(labels.max()) + 1)[labels]
    water = rng.normal(300.0, 30.0, labels.shape).astype(np.float32)
    fat = (water * (fat_pct / (100 - fat_pct))).astype(np.float32)
    fat += rng.normal(0.0, 5.0, labels.shape).astype(np.float32)
    background = labels == 0
    water[background] = rng.normal(10.0, 3.0, int(background.sum()))
    fat[background] = rng.normal(200.0, 20.0, int(background.sum()))
    return np.clip(fat, 0, None), np.clip(water, 0, None)


def in_memory(volume: Volume) -> Volume:
    """Uncompressed NIfTI is memory-mapped by nibabel: read it now so that load time is load time."""
    base = volume.array
    while base is not None and not isinstance(base, np.memmap):
        base = getattr(base, "base", None)
    if base is None:
        return volume
    return volume.with_array(np.array(volume.array, order="K"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="448,448,320", help="volume shape I,J,K")
    parser.add_argument("--labels", type=int, default=113, help="number of labels")
    parser.add_argument("--repeat", type=int, default=1, help="runs; the fastest of each is reported")
    parser.add_argument("--format", choices=["nii.gz", "nii"], default="nii.gz", help="file format")
    args = parser.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    affine = np.diag([*SPACING_MM, 1.0])
    labels = synthetic_labels(shape, args.labels, seed=0)
    fat, water = dixon_images(labels, seed=1)
    with tempfile.TemporaryDirectory() as folder:
        paths = {name: Path(folder) / f"{name}.{args.format}" for name in ("seg", "fat", "water")}
        for name, array in (("seg", labels), ("fat", fat), ("water", water)):
            write_volume(Volume(array, affine), paths[name])
        del labels, fat, water
        load_s, quantify_s = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            volumes = {name: in_memory(read_volume(path)) for name, path in paths.items()}
            load_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            table = quantify(volumes["seg"], fat=volumes["fat"], water=volumes["water"])
            quantify_s.append(time.perf_counter() - start)
            del volumes
    load, run = min(load_s), min(quantify_s)
    print(f"volume {shape[0]} x {shape[1]} x {shape[2]} ({np.prod(shape) / 1e6:.1f} M voxels), "
          f"{len(table)} labels, fat + water float32, .{args.format}")
    print(f"load (3 files): {load:6.2f} s")
    print(f"quantify:       {run:6.2f} s   ({run / load:.2f} x load; target <= 1.5 x)")


if __name__ == "__main__":
    main()
