"""Muscle composition: per-muscle IMF, marbled fat and the eroded masks that define it.

Every muscle voxel gets a fat fraction ``f = p (1 - a + a m / mean_E(m))`` where ``p`` is
the muscle's true IMF, ``m >= 0`` a smooth random marbling pattern (fat streaks) and
``mean_E`` its mean over the muscle's *eroded* mask (seed 000: one erosion with a 3x3x3
kernel). With water ``S (1 - f)`` and fat ``S f`` at constant total signal ``S``,
``mean(F) / (mean(F) + mean(W))`` over the eroded mask is exactly ``p``. Partial-volume
blurring and fascial lines later touch only the border voxels an erosion removes.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage

__all__ = [
    "IMF_LEVELS",
    "draw_imf_pct",
    "eroded_labels",
    "interior_mask",
    "marbling_field",
    "muscle_fat_fraction",
]

ImfLevel = Literal["low", "normal", "high", "random"]

#: IMF levels: factor on the region's reference IMF and the allowed range (%).
IMF_LEVELS: dict[str, tuple[float, tuple[float, float]]] = {
    "low": (0.5, (1.0, 8.0)),
    "normal": (1.0, (1.5, 30.0)),
    "high": (2.6, (10.0, 45.0)),
}
#: Range of ``imf='random'`` (issue 4: "e.g. 2-25 %").
RANDOM_IMF_PCT = (2.0, 25.0)
#: Largest fat fraction of a single muscle voxel (a marbling streak).
MAX_VOXEL_FAT = 0.9


def draw_imf_pct(names: list[str], bases: list[str], reference: dict[str, float], imf_factor: float,
                 level: ImfLevel, rng: np.random.Generator) -> np.ndarray:
    """Draw the true IMF (%) of each structure.

    Parameters
    ----------
    names, bases : list of str
        Structure names and their base names (same length).
    reference : dict of str to float
        Reference IMF (%) per base name; bases not listed use the mean of the others.
    imf_factor : float
        The subject's IMF factor (age, BMI, sex).
    level : {'low', 'normal', 'high', 'random'}
        Overall fat infiltration.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of float
        IMF in percent, one per name.
    """
    draws = rng.standard_normal(len(names))
    uniform = rng.random(len(names))
    if level == "random":
        lo, hi = RANDOM_IMF_PCT
        return lo + (hi - lo) * uniform
    factor, (lo, hi) = IMF_LEVELS[level]
    default = float(np.mean(list(reference.values()))) if reference else 6.0
    ref = np.array([reference.get(b, default) for b in bases])
    return np.clip(ref * factor * imf_factor * np.exp(0.12 * draws), lo, hi)


def eroded_labels(labels: np.ndarray, structure: Literal["cube", "cross"] = "cube",
                  axes_order: str = "kji") -> np.ndarray:
    """Label map keeping only voxels whose whole neighbourhood carries the same label.

    This is one binary erosion of every label's mask at once (border voxels of the image
    are eroded, as ``scipy.ndimage.binary_erosion`` with ``border_value=0`` does).

    Parameters
    ----------
    labels : (K, J, I) or (I, J, K) ndarray of int
        Label map (the neighbourhood is symmetric, so the axis order does not matter).
    structure : {'cube', 'cross'}
        3x3x3 cube (26-connectivity, seed 000) or the 6-connected cross.

    Returns
    -------
    ndarray
        Same shape and dtype; eroded-away voxels are 0.

    Examples
    --------
    >>> lab = np.zeros((5, 5, 5), np.uint8); lab[1:4, 1:4, 1:4] = 2
    >>> int((eroded_labels(lab) == 2).sum())
    1
    """
    footprint = np.ones((3, 3, 3), bool) if structure == "cube" else ndimage.generate_binary_structure(3, 1)
    low = ndimage.minimum_filter(labels, footprint=footprint, mode="constant", cval=0)
    high = ndimage.maximum_filter(labels, footprint=footprint, mode="constant", cval=0)
    return np.where((low == high), labels, 0).astype(labels.dtype, copy=False)


def interior_mask(labels: np.ndarray) -> np.ndarray:
    """Voxels whose four in-plane neighbours carry the same label (internal (K, J, I) layout).

    Border voxels (the complement) are the only muscle voxels partial-volume effects may
    change; every 3D or in-plane erosion with at least 4-connectivity removes them.
    """
    same = np.ones(labels.shape, bool)
    for axis in (1, 2):
        eq = np.diff(labels, axis=axis) == 0
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(0, -1)
        hi[axis] = slice(1, None)
        same[tuple(lo)] &= eq
        same[tuple(hi)] &= eq
        edge = [slice(None)] * 3
        edge[axis] = 0
        same[tuple(edge)] = False
        edge[axis] = -1
        same[tuple(edge)] = False
    return same


def marbling_field(shape: tuple[int, int, int], spacing_mm: tuple[float, float, float],
                   rng: np.random.Generator) -> np.ndarray:
    """Fat-streak pattern in [0, 1], mostly 0 (internal (K, J, I) layout, float32).

    Smooth Gaussian noise (correlation ~0.7 mm in-plane, ~5 mm along the fibres), passed
    through a soft threshold so about a fifth of the voxels carry some streak fat.
    """
    noise = rng.standard_normal(shape, dtype=np.float32)
    sigma = (max(2.5 / spacing_mm[2], 0.4), max(0.7 / spacing_mm[1], 0.5), max(0.7 / spacing_mm[0], 0.5))
    field = ndimage.gaussian_filter(noise, sigma, truncate=3.0)
    field /= field.std() + np.float32(1e-9)
    x = np.clip((field - np.float32(0.8)) / np.float32(1.6), 0, 1)
    return x * x * (3 - 2 * x)


def muscle_fat_fraction(labels: np.ndarray, eroded: np.ndarray, muscle: np.ndarray,
                        imf_by_label: np.ndarray, marbling: np.ndarray, share: float,
                        default_imf: float) -> tuple[np.ndarray, np.ndarray]:
    """Voxel fat fraction of muscle tissue whose eroded-mask mean is each label's IMF.

    Parameters
    ----------
    labels : ndarray of int
        Label ids (0 = unlabelled).
    eroded : ndarray of int
        :func:`eroded_labels` of ``labels``.
    muscle : ndarray of bool
        Muscle tissue (labelled or not).
    imf_by_label : ndarray of float
        True IMF as a fraction (0-1), indexed by label id.
    marbling : ndarray of float
        :func:`marbling_field` (values in [0, 1]).
    share : float
        Part of the IMF carried by the streaks (0 = diffuse fat only).
    default_imf : float
        IMF (fraction) of unlabelled muscle.

    Returns
    -------
    fraction : ndarray of float32
        Fat fraction per voxel (0 outside muscle).
    share_by_label : ndarray of float
        Marbling share actually used per label (lowered where streaks would exceed 90 %).
    """
    n = len(imf_by_label)
    ids = np.where(muscle, labels, 0).ravel()
    sum_e = np.bincount(eroded.ravel(), weights=marbling.ravel(), minlength=n)[:n]
    cnt_e = np.bincount(eroded.ravel(), minlength=n)[:n]
    sum_a = np.bincount(ids, weights=marbling.ravel(), minlength=n)[:n]
    cnt_a = np.bincount(ids, minlength=n)[:n]
    mean = np.where(cnt_e > 0, sum_e / np.maximum(cnt_e, 1), sum_a / np.maximum(cnt_a, 1))
    peak = 1.0  # marbling_field is a smoothstep, bounded by 1
    p = imf_by_label.astype(float).copy()
    unlabelled_mean = sum_a[0] / max(cnt_a[0], 1)
    p[0], mean[0] = default_imf, unlabelled_mean
    ratio = np.where(mean > 0, peak / np.maximum(mean, 1e-12), 1.0)
    room = np.where(p > 0, (MAX_VOXEL_FAT / np.maximum(p, 1e-9) - 1) / np.maximum(ratio - 1, 1e-9), 0.0)
    alpha = np.where(mean > 0, np.clip(np.minimum(share, room), 0.0, 1.0), 0.0)
    base = (p * (1 - alpha)).astype(np.float32)
    slope = np.where(mean > 0, p * alpha / np.maximum(mean, 1e-12), 0.0).astype(np.float32)
    lab = np.where(muscle, labels, 0)
    fraction = base[lab] + slope[lab] * marbling
    fraction[~muscle] = 0
    return fraction.astype(np.float32, copy=False), alpha
