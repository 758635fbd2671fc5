"""Per-label muscle quantification: volume, Dixon IMF, fat fraction, CT attenuation, CSA, indices.

>>> import numpy as np
>>> from myoscan.io import Volume
>>> from myoscan.quantify import quantify
>>> lab = np.zeros((4, 4, 2), np.uint8); lab[:2] = 7
>>> quantify(Volume(lab, np.diag([1.0, 1.0, 2.5, 1.0])), scheme="leg")[["name", "volume_ml"]].values.tolist()
[['soleus_left', 0.04]]

Modules: :mod:`~myoscan.quantify.config` (paper constants, :class:`QuantifyConfig`),
:mod:`~myoscan.quantify.core` (one-pass sums, erosion, sorted segments),
:mod:`~myoscan.quantify.dixon_metrics`, :mod:`~myoscan.quantify.ct`,
:mod:`~myoscan.quantify.clustering` (MuscleMap GMM/k-means), :mod:`~myoscan.quantify.slab`,
:mod:`~myoscan.quantify.regions` (TMV, TVI, P/A, asymmetry, SMI) and
:mod:`~myoscan.quantify.measure` (the entry points). See ``docs/quantify.md``.
"""

from __future__ import annotations

from myoscan.quantify.clustering import cluster_fat_pct
from myoscan.quantify.config import (
    CT_ADIPOSE_HU,
    CT_MUSCLE_HU,
    EROSION_ITERATIONS,
    FF_VIABLE_BELOW_PCT,
    MUSCLE_DENSITY_G_ML,
    QuantifyConfig,
)
from myoscan.quantify.core import erosion_rims, label_volumes_ml
from myoscan.quantify.dixon_metrics import voxelwise_fat_fraction
from myoscan.quantify.measure import Measurements, measure, quantify, quantify_slices
from myoscan.quantify.regions import regional_indices
from myoscan.quantify.slab import (
    ABDOMINAL_CAVITY,
    SliceRange,
    landmark_z_mm,
    level_z_ranges,
    slab_between,
    slab_from_world_z,
    vertebral_levels,
)

__all__ = [
    "ABDOMINAL_CAVITY",
    "CT_ADIPOSE_HU",
    "CT_MUSCLE_HU",
    "EROSION_ITERATIONS",
    "FF_VIABLE_BELOW_PCT",
    "MUSCLE_DENSITY_G_ML",
    "Measurements",
    "QuantifyConfig",
    "SliceRange",
    "cluster_fat_pct",
    "erosion_rims",
    "label_volumes_ml",
    "landmark_z_mm",
    "level_z_ranges",
    "measure",
    "quantify",
    "quantify_slices",
    "regional_indices",
    "slab_between",
    "slab_from_world_z",
    "vertebral_levels",
    "voxelwise_fat_fraction",
]
