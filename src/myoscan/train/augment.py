"""Training augmentation on MONAI transforms, including a left-right flip that swaps labels.

Samples reach these transforms in RAS voxel order: array axis 0 runs left-right, so a mirror
image of the body is a flip of axis 0 — with every left structure becoming its right
counterpart. MONAI's ``RandFlipd`` flips arrays only; :class:`RandFlipLeftRightd` adds the
label swap from the catalog's bilateral pairs. Everything else is MONAI: ``RandAffined``
(seed 002 rotations and anisotropic scaling), ``RandZoomd`` (seed 003 zoom),
and intensity transforms. Seed 002's elastic deformation is a smooth field on a few control
points per axis (NiftyNet's B-spline deformation); MONAI's ``Rand3DElasticd`` is a
Gaussian-smoothed dense field instead and ``Rand2DElasticd`` fixes the control spacing in
voxels, so :class:`RandControlPointElasticd` builds the field from MONAI's own parts
(``RandDeformGrid`` + ``Resample``) with the spacing derived from the sample size.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import (
    CenterSpatialCrop,
    Compose,
    MapTransform,
    RandAdjustContrastd,
    RandAffined,
    RandBiasFieldd,
    RandDeformGrid,
    RandGaussianNoised,
    RandomizableTransform,
    RandScaleIntensityd,
    RandZoomd,
    Resample,
)
from monai.transforms.utils import create_control_grid

from myoscan.train.config import AugmentationConfig

__all__ = [
    "RandControlPointElasticd",
    "RandFlipLeftRightd",
    "build_augmentation",
    "swap_lookup",
]

IMAGE, LABEL = "image", "label"


def swap_lookup(channel_names: Sequence[str], counterpart: Mapping[str, str | None]) -> np.ndarray:
    """Lookup table sending each label channel to its other-side channel.

    Parameters
    ----------
    channel_names : sequence of str
        Structure name of output channels 1..N (channel 0 is background).
    counterpart : mapping of str to str or None
        Structure name -> name of the same structure on the other side (None = midline).

    Returns
    -------
    (N + 1,) ndarray of int
        ``lut[c]`` is the channel of the mirrored structure; unpaired channels map to themselves.

    Examples
    --------
    >>> swap_lookup(["a_left", "a_right", "b"], {"a_left": "a_right", "a_right": "a_left", "b": None})
    array([0, 2, 1, 3])
    """
    index = {name: i for i, name in enumerate(channel_names, start=1)}
    lut = np.arange(len(channel_names) + 1)
    for name, channel in index.items():
        other = counterpart.get(name)
        if other is not None and other in index:
            lut[channel] = index[other]
    return lut


class RandFlipLeftRightd(RandomizableTransform, MapTransform):
    """Mirror image and label across the mid-sagittal plane and swap left/right labels.

    Parameters
    ----------
    keys : keys
        Image keys to flip (the label key is handled separately).
    label_key : str
        Key of the label map (channel-first tensor of channel indices).
    swap : (N + 1,) array of int
        :func:`swap_lookup` table.
    prob : float
        Probability of flipping a sample.

    Examples
    --------
    >>> flip = RandFlipLeftRightd("image", "label", np.array([0, 2, 1]), prob=1.0)
    >>> out = flip({"image": torch.tensor([[[1.0], [2.0]]]), "label": torch.tensor([[[1], [0]]])})
    >>> out["image"].flatten().tolist(), out["label"].flatten().tolist()
    ([2.0, 1.0], [0, 2])
    """

    def __init__(self, keys: KeysCollection, label_key: str, swap: np.ndarray, prob: float = 0.5) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, prob)
        self.label_key = label_key
        self.swap = torch.as_tensor(np.asarray(swap), dtype=torch.long)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Flip (with probability ``prob``) and return a new dict."""
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            d[key] = torch.flip(torch.as_tensor(d[key]), dims=[1])  # dim 0 = channels
        label = torch.flip(torch.as_tensor(d[self.label_key]), dims=[1])
        d[self.label_key] = self.swap.to(label.device)[label.long()].to(label.dtype)
        return d


class RandControlPointElasticd(RandomizableTransform, MapTransform):
    """Elastic deformation from random displacements on a coarse control grid (2D or 3D).

    Displacements on ``control_points`` nodes per axis (standard normal times a magnitude
    drawn uniformly from ``[0, magnitude_vox]``, as MONAI's ``RandDeformGrid``) are
    interpolated (bicubic in 2D, trilinear in 3D) to a dense field and applied with MONAI's
    ``Resample``; the same steps as MONAI's ``Rand2DElastic``, with the control spacing
    derived from the sample size so that seed 002's "3 control points" holds.

    Parameters
    ----------
    keys : keys
        Keys to deform with the same field.
    magnitude_vox : float or sequence of float
        Largest displacement scale of a control point, in voxels; one value per axis on
        anisotropic grids (a distance in mm is a different number of voxels along each axis).
    control_points : int
        Control nodes per axis (>= 2).
    prob : float
        Probability of deforming a sample.
    modes : sequence of str
        Interpolation per key (``'bilinear'`` or ``'nearest'``).
    """

    def __init__(self, keys: KeysCollection, magnitude_vox: float | Sequence[float], control_points: int = 3,
                 prob: float = 0.5, modes: Sequence[str] = ("bilinear", "nearest")) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, prob)
        self.magnitude = tuple(float(m) for m in np.atleast_1d(magnitude_vox))
        self.control_points = max(2, int(control_points))
        self.modes = tuple(modes)
        self.resampler = Resample()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Deform (with probability ``prob``) and return a new dict."""
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        first = next(iter(self.key_iterator(d)))
        shape = tuple(int(s) for s in d[first].shape[1:])
        spacing = [max(1.0, s / (self.control_points - 1)) for s in shape]
        magnitude = self.magnitude * len(shape) if len(self.magnitude) == 1 else self.magnitude
        if len(magnitude) != len(shape):
            raise ValueError(f"magnitude_vox: expected 1 or {len(shape)} values, got {len(magnitude)}")
        deform = RandDeformGrid(spacing=spacing, magnitude_range=(0.0, 1.0))
        deform.set_random_state(state=self.R)
        coarse = deform(spatial_size=shape)
        # RandDeformGrid scales every axis alike; scale each axis's offset by its own magnitude
        base = create_control_grid(shape, spacing, backend="torch")
        per_axis = torch.tensor([*magnitude, 0.0], dtype=coarse.dtype).reshape(-1, *[1] * len(shape))
        coarse = base + (coarse - base) * per_axis
        dense = torch.nn.functional.interpolate(
            coarse.unsqueeze(0), scale_factor=spacing, mode="bicubic" if len(shape) == 2 else "trilinear",
            align_corners=False, recompute_scale_factor=True,
        )
        grid = CenterSpatialCrop(roi_size=shape)(dense[0])
        for key, mode in zip(self.key_iterator(d), self.modes, strict=False):
            d[key] = self.resampler(torch.as_tensor(d[key]), grid, mode=mode, padding_mode="zeros")
        return d


def build_augmentation(
    config: AugmentationConfig,
    *,
    spatial_dims: int,
    spacing_mm: Sequence[float],
    swap: np.ndarray | None,
) -> Compose:
    """Random augmentation pipeline for training samples ``{'image', 'label'}``.

    Parameters
    ----------
    config : AugmentationConfig
        Probabilities and ranges.
    spatial_dims : {2, 3}
        2 for axial slices (C, X, Y), 3 for patches (C, X, Y, Z).
    spacing_mm : sequence of float
        Voxel size of the samples (to express the elastic sigma in voxels).
    swap : ndarray or None
        Left/right channel lookup (:func:`swap_lookup`); ``None`` disables the flip.

    Returns
    -------
    monai.transforms.Compose
        Seed it with ``set_random_state``; an empty Compose when everything is off.

    Examples
    --------
    >>> aug = build_augmentation(AugmentationConfig(flip_lr_prob=0.5), spatial_dims=2,
    ...                          spacing_mm=(1.0, 1.0), swap=np.array([0, 2, 1]))
    >>> [type(t).__name__ for t in aug.transforms]
    ['RandFlipLeftRightd']
    """
    c = config
    keys, modes = [IMAGE, LABEL], ("bilinear", "nearest")
    steps: list[Any] = []
    if c.flip_lr_prob > 0 and swap is not None:
        steps.append(RandFlipLeftRightd(IMAGE, LABEL, swap, prob=c.flip_lr_prob))
    rotate = [math.radians(a) for a in c.rotate_deg]
    scale = [s / 100.0 for s in c.scale_pct]
    if c.affine_prob > 0 and (any(rotate) or any(scale)):
        steps.append(RandAffined(
            keys, prob=c.affine_prob, mode=modes, padding_mode="zeros",
            rotate_range=rotate[2:] if spatial_dims == 2 else rotate,
            scale_range=scale[:2] if spatial_dims == 2 else scale,
        ))
    if c.affine_prob > 0 and c.zoom_pct > 0:
        steps.append(RandZoomd(keys, prob=c.affine_prob, min_zoom=1 - c.zoom_pct / 100,
                               max_zoom=1 + c.zoom_pct / 100, mode=("area", "nearest"), keep_size=True))
    if c.elastic_prob > 0:
        # sigma in mm is a different number of voxels along each axis of an anisotropic grid
        magnitude = [c.elastic_sigma_mm / float(s) for s in spacing_mm[:spatial_dims]]
        steps.append(RandControlPointElasticd(keys, magnitude, c.elastic_control_points,
                                              prob=c.elastic_prob, modes=modes))
    if c.bias_field_prob > 0:
        steps.append(RandBiasFieldd(IMAGE, prob=c.bias_field_prob, coeff_range=(0.0, c.bias_field_coeff)))
    if c.gamma_prob > 0:
        steps.append(RandAdjustContrastd(IMAGE, prob=c.gamma_prob, gamma=c.gamma_range))
    if c.intensity_scale_prob > 0:
        steps.append(RandScaleIntensityd(IMAGE, factors=c.intensity_scale, prob=c.intensity_scale_prob))
    if c.noise_prob > 0:
        steps.append(RandGaussianNoised(IMAGE, prob=c.noise_prob, std=c.noise_std))
    return Compose(steps)
