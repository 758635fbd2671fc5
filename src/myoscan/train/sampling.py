"""Training samples: a seeded split, and batches that are a pure function of the iteration.

The samples of iteration ``i`` depend only on ``(seed, i)``: each batch slot takes its
volume from a per-epoch permutation seeded with ``(seed, epoch)`` and seeds the random
transforms (MONAI crops, augmentation) with ``(seed, i, slot)``. Any number of data-loader
workers therefore yields the same batches, and a resumed run needs only the iteration
counter to continue the same sample stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from myoscan.train.augment import build_augmentation
from myoscan.train.config import TrainConfig
from myoscan.train.data import Case, Dataset

__all__ = ["SampleKeys", "Samples", "collate", "sample_transform", "split_cases"]


def split_cases(dataset: Dataset, fraction: float, seed: int) -> tuple[tuple[Case, ...], tuple[Case, ...]]:
    """Training and validation cases: the data's own list, a seeded random split, or all.

    ``fraction == 0`` (or a single case) validates on the training cases themselves, as
    seed 002 did; otherwise ``max(1, round(fraction * n))`` random cases are held out.

    Examples
    --------
    >>> from pathlib import Path
    >>> ds = Dataset(Path("."), "folder", tuple(Case(str(i), (), Path()) for i in range(10)))
    >>> [len(part) for part in split_cases(ds, 0.2, seed=0)]
    [8, 2]
    """
    if dataset.validation:
        return dataset.cases, dataset.validation
    cases = dataset.cases
    if fraction <= 0 or len(cases) < 2:
        return cases, cases
    n_val = min(len(cases) - 1, max(1, round(fraction * len(cases))))
    order = np.random.default_rng(seed).permutation(len(cases))
    held = set(order[:n_val].tolist())
    return (tuple(c for i, c in enumerate(cases) if i not in held),
            tuple(c for i, c in enumerate(cases) if i in held))


def _clone(x: Any) -> Any:
    return x.clone() if isinstance(x, torch.Tensor) else np.array(x, copy=True)


def sample_transform(config: TrainConfig, spatial_dims: int, spacing_mm: Sequence[float],
                     swap: np.ndarray | None) -> Any:
    """Build the random part of the pipeline: crop samples, squeeze slices, augment.

    Parameters
    ----------
    config : TrainConfig
        Sampling and augmentation settings.
    spatial_dims : {2, 3}
        2 cuts (roi_x, roi_y, 1) crops and squeezes them to axial slices.
    spacing_mm : sequence of float
        Network-grid voxel size (for the elastic deformation).
    swap : ndarray or None
        Left/right channel lookup for the flip.

    Returns
    -------
    monai.transforms.Compose
    """
    from monai.transforms import (
        Compose,
        EnsureTyped,
        Lambdad,
        RandCropByPosNegLabeld,
        RandSpatialCropSamplesd,
        SqueezeDimd,
    )

    s = config.sampling
    keys = ["image", "label"]
    roi = tuple(s.roi_size) + ((1,) if spatial_dims == 2 else ())
    if s.strategy == "pos_neg":
        crop = RandCropByPosNegLabeld(keys, label_key="label", spatial_size=roi, pos=s.pos, neg=s.neg,
                                      num_samples=s.num_samples, fg_indices_key="fg", bg_indices_key="bg",
                                      allow_smaller=True)
    else:
        crop = RandSpatialCropSamplesd(keys, roi_size=roi, num_samples=s.num_samples, random_size=False)
    steps: list[Any] = [crop, EnsureTyped(keys, track_meta=False), Lambdad(keys, _clone)]
    if spatial_dims == 2:
        steps.append(SqueezeDimd(keys, dim=-1))
    steps.extend(build_augmentation(config.augmentation, spatial_dims=spatial_dims,
                                    spacing_mm=spacing_mm, swap=swap).transforms)
    return Compose(steps)


class Samples(torch.utils.data.Dataset):
    """Training samples addressed by ``(iteration, slot)`` keys (see module docstring).

    Parameters
    ----------
    cache : sequence of dict
        Preprocessed training volumes (a MONAI ``CacheDataset``).
    transform : monai.transforms.Compose
        :func:`sample_transform`.
    seed : int
        Run seed.
    batch_size : int
        Volumes per iteration.
    """

    def __init__(self, cache: Any, transform: Any, seed: int, batch_size: int) -> None:
        self.cache, self.transform, self.seed, self.batch_size = cache, transform, seed, batch_size

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, key: tuple[int, int]) -> list[dict[str, Any]]:
        iteration, slot = key
        n = len(self.cache)
        position = iteration * self.batch_size + slot
        order = np.random.default_rng([self.seed, position // n]).permutation(n)
        item = dict(self.cache[int(order[position % n])])
        state = np.random.default_rng([self.seed, iteration, slot]).integers(2**31)
        self.transform.set_random_state(seed=int(state))
        out = self.transform(item)
        return out if isinstance(out, list) else [out]


class SampleKeys(torch.utils.data.Sampler):
    """``(iteration, slot)`` keys for iterations ``start .. stop - 1``, ``batch_size`` slots each."""

    def __init__(self, start: int, stop: int, batch_size: int) -> None:
        self.start, self.stop, self.batch_size = start, stop, batch_size

    def __len__(self) -> int:
        return (self.stop - self.start) * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for iteration in range(self.start, self.stop):
            for slot in range(self.batch_size):
                yield iteration, slot


def collate(items: list[list[dict[str, Any]]]) -> dict[str, torch.Tensor]:
    """Stack the samples of all batch slots: ``image`` float32, ``label`` int64 channel indices."""
    flat = [sample for item in items for sample in item]
    return {
        "image": torch.stack([torch.as_tensor(s["image"], dtype=torch.float32) for s in flat]),
        "label": torch.stack([torch.as_tensor(s["label"]).round().to(torch.long) for s in flat]),
    }
