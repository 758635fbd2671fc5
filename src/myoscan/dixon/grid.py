"""The analysis grid of the swap detector: subsampling, voxel repetition, wide Gaussian means.

Picking every k-th voxel (rather than averaging) keeps swap boundaries abrupt; wide
normalised convolutions run on a grid coarsened by block sums and come back by repetition.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["smooth", "subsample", "upsample"]


def subsample(array: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Every ``factors``-th voxel along each axis.

    Picking rather than averaging keeps swap boundaries abrupt: a block mean across one
    would look like a partial-volume water/fat interface.
    """
    return array[tuple(slice(None, None, k) for k in factors)]


def upsample(array: np.ndarray, factors: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Repeat every voxel ``factors`` times and crop to ``shape`` (inverse of :func:`subsample`)."""
    for axis, k in enumerate(factors):
        if k > 1:
            array = np.repeat(array, k, axis=axis)
    return array[tuple(slice(0, n) for n in shape)]



def smooth(values: np.ndarray, weights: np.ndarray, spacing_mm: tuple[float, ...], sigma_mm: float,
           *, hole_mm: float | None = None) -> np.ndarray:
    """Gaussian-weighted mean of ``values`` (already multiplied by their weights) over ``sigma_mm``.

    A normalised convolution, computed on a grid coarsened so that sigma spans about
    four voxels (wide kernels stay cheap) and brought back by voxel repetition. With
    ``hole_mm`` the kernel is a surround: the Gaussian of that width is subtracted,
    scaled so the kernel is zero at its centre, so a region does not vote on itself.
    """
    factors = tuple(max(1, int(min(sigma_mm, hole_mm or sigma_mm) / (4.0 * s))) for s in spacing_mm)
    coarse = [_block_sum(a, factors) for a in (values, weights)]

    def blur(sigma: float) -> list[np.ndarray]:
        sigma_vox = tuple(sigma / (s * k) for s, k in zip(spacing_mm, factors, strict=True))
        return [ndimage.gaussian_filter(a, sigma_vox, mode="constant", truncate=3.0) for a in coarse]

    num, den = blur(sigma_mm)
    if hole_mm is not None:
        inner_num, inner_den = blur(hole_mm)
        scale = (hole_mm / sigma_mm) ** 3
        num, den = num - scale * inner_num, den - scale * inner_den
    mean = num / np.maximum(den, 1e-3 * max(float(den.max()), 1e-12))
    return upsample(mean, factors, values.shape)


def _block_sum(array: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Sum over blocks of ``factors`` voxels (a trailing partial block is summed alone)."""
    for axis, k in enumerate(factors):
        if k > 1:
            array = np.add.reduceat(array, np.arange(0, array.shape[axis], k), axis=axis)
    return array
