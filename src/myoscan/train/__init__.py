"""Training of segmentation networks: configs, datasets, augmentation, loop, cross-validation.

>>> from myoscan.train import load_config
>>> load_config("leg-2d-unet").architecture.name
'unet2d'

Modules: :mod:`~myoscan.train.config` (typed YAML configs with overrides),
:mod:`~myoscan.train.data` (BIDS / datalist / folder discovery, checks, preprocessing),
:mod:`~myoscan.train.augment` (MONAI augmentation, left/right label swap),
:mod:`~myoscan.train.sampling` (seeded samples), :mod:`~myoscan.train.loop` (training and
bundle), :mod:`~myoscan.train.folds` (k-fold cross-validation). See docs/train.md.
"""

from __future__ import annotations

from myoscan.train.config import TrainConfig, bundle_config, config_names, load_config, output_structures
from myoscan.train.data import Case, Dataset, check_dataset, find_dataset
from myoscan.train.folds import CrossValidationResult, cross_validate
from myoscan.train.loop import TrainResult, train, work_dir_of

__all__ = [
    "Case",
    "CrossValidationResult",
    "Dataset",
    "TrainConfig",
    "TrainResult",
    "bundle_config",
    "check_dataset",
    "config_names",
    "cross_validate",
    "find_dataset",
    "load_config",
    "output_structures",
    "train",
    "work_dir_of",
]
