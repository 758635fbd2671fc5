"""Anatomical cues of the swap detector: body, tissue layers, bone marrow, per-voxel votes.

Every function takes arrays on the analysis grid and returns arrays; a vote > 0 says
"swapped". See :mod:`myoscan.dixon` for how the cues combine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from myoscan.dixon.grid import smooth
from myoscan.dixon.signal import estimate_noise_level

if TYPE_CHECKING:
    from myoscan.dixon.swap import SwapConfig

__all__ = [
    "MAX_MARROW_AREA_MM2",
    "MIN_BODY_FRACTION",
    "body_mask",
    "brightness_cue",
    "expected_species",
    "layer_contrast",
    "species_votes",
    "tissue_layers",
]


#: The body is at least this bright (fraction of P99 of W + F), whatever the noise: in
#: high-SNR or noise-free scans the noise floor drops to 2 % of P99 and would take in the
#: partial-volume rim outside the skin, whose water-looking voxels then pose as a swapped
#: outer layer (noise-free phantoms came out 25-100 % "swapped").
MIN_BODY_FRACTION = 0.10


def body_mask(total: np.ndarray, floor: float, slice_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Body: smoothed W + F above a threshold, specks removed, holes filled; and the holes.

    Holes (bone cortex, air pockets between the thighs) are filled per slice and also
    returned, since they carry no species information. The threshold is the noise floor, raised to
    twice the background level in noisy scans (the background of W + F is the sum of two
    Rician variables and reaches past the floor) and to :data:`MIN_BODY_FRACTION` of P99 in
    quiet ones, but never above 25 % of P99.
    """
    p99 = float(np.percentile(total, 99.0))
    level = estimate_noise_level(total)
    raised = max(floor, MIN_BODY_FRACTION * p99, 2.0 * level if np.isfinite(level) else 0.0)
    threshold = min(raised, 0.25 * p99)
    body = ndimage.binary_opening(ndimage.gaussian_filter(total, 1.0) > threshold)
    labels, n = ndimage.label(body)
    if n > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        body = sizes[labels] >= 0.01 * sizes.max()  # drop specks, keep both legs / arms
    filled = np.moveaxis(body, slice_axis, 0).copy()
    for k in range(filled.shape[0]):
        filled[k] = ndimage.binary_fill_holes(filled[k])
    filled = np.moveaxis(filled, 0, slice_axis)
    return filled, filled & ~body



def brightness_cue(total: np.ndarray, sign: np.ndarray, conf: np.ndarray, inner: np.ndarray,
                   min_ratio: float) -> np.ndarray | None:
    """+1 where S is at the level of fat, -1 at the level of muscle; None if not usable.

    Levels are the medians of S over confident water- and fat-looking voxels below the
    skin (the outermost layer is darkened by partial volume with air). The cue is used
    only when fat-looking tissue is brighter than water-looking tissue by ``min_ratio``
    (T1-weighted gradient echo), so a protocol without that contrast switches it off.
    """
    confident = inner & (conf > 0.5)
    water_like, fat_like = total[confident & (sign > 0)], total[confident & (sign < 0)]
    if min(water_like.size, fat_like.size) < 50:
        return None
    water_level, fat_level = float(np.median(water_like)), float(np.median(fat_like))
    if water_level <= 0 or fat_level / water_level < min_ratio:
        return None
    mid = 0.5 * (np.log(water_level) + np.log(fat_level))
    half_gap = 0.5 * (np.log(fat_level) - np.log(water_level))
    cue = (np.log(np.maximum(total, 1e-12)) - mid) / half_gap
    return np.clip(cue, -1.0, 1.0).astype(np.float32)


#: Largest cross-section of a bone interior (the femoral shaft's marrow is 3-6 cm^2); larger
#: dark-ringed areas are not taken for bone.
MAX_MARROW_AREA_MM2 = 3000.0


def _bone_interiors(dark: np.ndarray, inner: np.ndarray, slice_axis: int,
                    spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Regions enclosed, slice by slice, by a dark ring (cortical bone) inside the body.

    The ring is thickened by two voxels to bridge gaps (thin or partial-volume cortex),
    its interior found, and grown back by the same amount up to the cortex.
    """
    cortex = np.moveaxis(dark & inner, slice_axis, 0)
    disk = np.zeros((1, 3, 3), dtype=bool)
    disk[0, 1, :] = disk[0, :, 1] = True
    thick = ndimage.binary_dilation(cortex, structure=disk, iterations=2)
    interiors = np.zeros(cortex.shape, dtype=bool)
    pixel_mm2 = float(np.prod(spacing_mm)) / spacing_mm[slice_axis]
    for k, plane in enumerate(thick):
        holes, n = ndimage.label(ndimage.binary_fill_holes(plane) & ~plane)
        if n:
            area = np.bincount(holes.ravel()) * pixel_mm2
            area[0] = np.inf
            interiors[k] = (area <= MAX_MARROW_AREA_MM2)[holes]
    grown = ndimage.binary_dilation(interiors, structure=disk, iterations=2, mask=~cortex)
    return np.moveaxis(grown, 0, slice_axis) & inner


def tissue_layers(
    depth: np.ndarray, body: np.ndarray, dark: np.ndarray, spacing_mm: tuple[float, float, float],
    slice_axis: int, config: SwapConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Masks of the tissue below the skin, the outer layer, deep soft tissue and bone interiors.

    Bone interiors are regions enclosed, slice by slice, by a dark ring (cortical bone,
    ``dark``) of at most :data:`MAX_MARROW_AREA_MM2`; in adult limbs they hold fatty
    (yellow) marrow.
    """
    skin = max(config.skin_mm, 1.01 * min(spacing_mm))
    inner = body & (depth > skin)
    shell = inner & (depth <= max(config.shell_mm, skin + 2 * min(spacing_mm)))
    marrow = _bone_interiors(dark, inner, slice_axis, spacing_mm)
    return inner, shell & ~marrow, body & (depth > config.deep_mm) & ~marrow, marrow


def layer_contrast(looks: np.ndarray, conf: np.ndarray, shell: np.ndarray, inner: np.ndarray,
                   spacing_mm: tuple[float, ...], sigma_mm: float) -> np.ndarray:
    """Regional mean species of the outer layer minus that of the tissue beneath, halved.

    It is > 0 where the outer layer looks less fatty than the tissue beneath it, i.e.
    where the anatomy is inverted. Comparing the layers rather than testing the outer
    layer alone keeps lean subjects (fat thinner than the layer: outer layer partly
    muscle, yet fattier than the muscle beneath) and obese ones (deeper tissue partly
    fat) on the right side.
    """
    below = inner & ~shell
    outer_mean = smooth(np.where(shell, looks, 0.0), np.where(shell, conf, 0.0), spacing_mm, sigma_mm)
    below_mean = smooth(np.where(below, looks, 0.0), np.where(below, conf, 0.0), spacing_mm, sigma_mm)
    return 0.5 * (outer_mean - below_mean)


#: Depth bands (mm below the body surface) within which anatomy is compared sideways.
_DEPTH_BANDS_MM = (0.0, 4.0, 7.0, 10.0, 14.0, 20.0, 28.0, 40.0, 60.0, 90.0, np.inf)


def expected_species(corrected: np.ndarray, conf: np.ndarray, depth: np.ndarray, inner: np.ndarray,
                     spacing_mm: tuple[float, ...], sigma_mm: float) -> np.ndarray:
    """Regional mean species at each voxel's depth (-1 fat ... +1 water).

    Anatomy is layered: at a given depth below the skin the tissue is much the same
    along the surface. A swap that covers a small part of a layer disagrees with the
    rest of that layer around it; the surround kernel keeps the region itself out.
    """
    expected = np.zeros(depth.shape)
    band = np.digitize(depth, _DEPTH_BANDS_MM) - 1
    for b in range(len(_DEPTH_BANDS_MM) - 1):
        member = inner & (band == b)
        if member.any():
            mean = smooth(np.where(member, corrected, 0.0), np.where(member, conf, 0.0), spacing_mm,
                           sigma_mm, hole_mm=sigma_mm / 2.5)
            expected[member] = mean[member]
    return expected


def species_votes(
    looks: np.ndarray, conf: np.ndarray, layers: tuple[np.ndarray, ...],
    config: SwapConfig, brightness: np.ndarray | None, op_sign: np.ndarray | None,
) -> np.ndarray:
    """Per-voxel swap votes (+ = swapped) from the local cues; ``looks`` = conf x sign(W - F)."""
    inner, shell, deep, marrow = layers
    votes = np.where(shell, config.shell_weight * looks, 0.0)  # the outer layer should be fat
    votes += np.where(marrow, config.marrow_weight * looks, 0.0)  # and so should bone marrow
    deep_weight = np.where(looks > 0, config.deep_water_weight, config.deep_fat_weight)
    votes -= np.where(deep, deep_weight * looks, 0.0)  # deep tissue should be (mostly) water
    if brightness is not None:  # bright tissue should be fat, dark tissue water
        votes += np.where(inner, config.brightness_weight * looks * brightness, 0.0)
    if op_sign is not None:  # a signed OP tells the species outright
        votes -= config.signed_op_weight * looks * op_sign
    return votes.astype(np.float32)
