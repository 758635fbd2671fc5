"""Training of segmentation networks: configs, datasets, augmentation, loop, cross-validation.

>>> from myoscan.train import load_config
>>> load_config("leg-2d-unet").architecture.name
'unet2d'

See docs/train.md.
"""

from __future__ import annotations

from myoscan.train.config import TrainConfig, bundle_config, config_names, load_config, output_structures

__all__ = ["TrainConfig", "bundle_config", "config_names", "load_config", "output_structures"]
