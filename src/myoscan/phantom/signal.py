"""Image synthesis: Dixon water/fat/in-phase/opposed-phase/fat-fraction and CT.

Pipeline on the internal ``(K, J, I)`` arrays: noise-free tissue signals from the material
map and the muscle fat fraction; partial volume (an in-plane blur) and fascial lines on the
border voxels only; then, for Dixon, a smooth multiplicative bias field, complex Gaussian
noise on the two echoes (magnitudes are Rician) and an optional fat-water swap; for CT,
spatially correlated Gaussian noise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from myoscan.phantom.materials import CT_FAT_HU, MUSCLE_SIGNAL, code_of, lookup

__all__ = [
    "PV_SIGMA_PX",
    "acquire_ct",
    "acquire_dixon",
    "bias_field",
    "clean_ct",
    "clean_dixon",
    "fat_fraction_pct",
    "swap_region",
]

#: In-plane blur (pixels) that models partial volume at tissue borders.
PV_SIGMA_PX = 0.6
#: Fat share of the border voxels between two muscles (a fascial line).
FASCIA_FAT = 0.22
#: Below this total signal (fraction of muscle signal) the fat-fraction map is NaN (noise floor).
FATFRAC_FLOOR = 0.05


def _muscle_border_lines(labels: np.ndarray, interior: np.ndarray, muscle: np.ndarray) -> np.ndarray:
    """Muscle border voxels whose in-plane neighbour is a different muscle (fascial planes)."""
    lines = np.zeros(labels.shape, bool)
    for axis in (1, 2):
        n = labels.shape[axis]
        a = np.take(labels, range(n - 1), axis=axis)
        b = np.take(labels, range(1, n), axis=axis)
        both = np.take(muscle, range(n - 1), axis=axis) & np.take(muscle, range(1, n), axis=axis)
        edge = (a != b) & both & (a > 0) & (b > 0)
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(0, -1)
        hi[axis] = slice(1, None)
        lines[tuple(lo)] |= edge
        lines[tuple(hi)] |= edge
    return lines & ~interior


def _partial_volume(image: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Blur in-plane everywhere except where ``keep`` (muscle interiors stay exact)."""
    blurred = ndimage.gaussian_filter(image, (0.0, PV_SIGMA_PX, PV_SIGMA_PX), truncate=3.0)
    return np.where(keep, image, blurred)


def clean_dixon(material: np.ndarray, fraction: np.ndarray, labels: np.ndarray,
                interior: np.ndarray, signal_by_label: np.ndarray, *,
                partial_volume: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free water and fat signals (float32).

    Muscle voxels: ``W = S (1 - f)``, ``F = S f`` with ``S`` constant within a label
    (``signal_by_label``, index 0 for unlabelled muscle); other materials from
    :mod:`myoscan.phantom.materials`. Labelled-muscle interiors keep their exact values;
    border voxels get partial volume and fascial lines.
    """
    muscle = material == code_of("muscle")
    water = lookup("water")[material]
    fat = lookup("fat")[material]
    total = signal_by_label.astype(np.float32)[labels[muscle]]
    water[muscle] = total * (1 - fraction[muscle])
    fat[muscle] = total * fraction[muscle]
    if not partial_volume:
        return water, fat
    keep = interior & (labels > 0) & muscle
    water, fat = _partial_volume(water, keep), _partial_volume(fat, keep)
    lines = _muscle_border_lines(labels, interior, muscle)
    imat = code_of("imat")
    water[lines] = (1 - FASCIA_FAT) * water[lines] + FASCIA_FAT * lookup("water")[imat]
    fat[lines] = (1 - FASCIA_FAT) * fat[lines] + FASCIA_FAT * lookup("fat")[imat]
    return water, fat


def clean_ct(material: np.ndarray, fraction: np.ndarray, labels: np.ndarray, interior: np.ndarray,
             lean_hu_by_label: np.ndarray, *, partial_volume: bool = True) -> np.ndarray:
    """Noise-free CT numbers (float32, HU): fat-infiltrated muscle is ``(1-f) lean + f fat``.

    ``lean_hu_by_label`` is the fat-free muscle CT number per label (index 0: unlabelled).
    """
    muscle = material == code_of("muscle")
    hu = lookup("hu")[material]
    lean = lean_hu_by_label.astype(np.float32)[labels[muscle]]
    hu[muscle] = (1 - fraction[muscle]) * lean + fraction[muscle] * np.float32(CT_FAT_HU)
    if not partial_volume:
        return hu
    hu = _partial_volume(hu, interior & (labels > 0) & muscle)
    lines = _muscle_border_lines(labels, interior, muscle)
    hu[lines] = (1 - FASCIA_FAT) * hu[lines] + FASCIA_FAT * lookup("hu")[code_of("imat")]
    return hu


def bias_field(shape: tuple[int, int, int], strength: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth multiplicative field with mean ~1 and relative spread ~``strength`` (float32).

    ``log B`` is a random combination of low-frequency cosines along each axis plus an
    in-plane cross term, scaled so that its SD is ``strength / 2``.
    """
    k, j, i = shape
    axes = [np.linspace(0, 1, n, dtype=np.float32) for n in (k, j, i)]
    parts = []
    for x in axes:
        c = rng.standard_normal(3)
        parts.append(sum(c[n] * np.cos(np.pi * (n + 1) * x + rng.uniform(0, np.pi)) for n in range(3)))
    cross = rng.standard_normal() * np.outer(axes[1] - 0.5, axes[2] - 0.5) * 4
    log_b = parts[0][:, None, None] + parts[1][None, :, None] + parts[2][None, None, :] + cross[None]
    log_b = log_b.astype(np.float32)
    log_b -= log_b.mean()
    log_b *= np.float32(strength / 2) / (log_b.std() + np.float32(1e-9))
    return np.exp(log_b)


def swap_region(body: np.ndarray, spacing_mm: tuple[float, float, float],
                rng: np.random.Generator) -> np.ndarray:
    """Draw a smooth blob (ellipsoid, wavy outline) at the body's edge where W and F swap.

    Centred 2-15 mm inside the skin on a random slice of the middle half of the scan (swaps
    arise at the body surface, where B0 is least uniform), radii 25-45 mm in-plane and
    30-60 mm along z; only voxels inside the body are swapped.
    """
    dk, dj, di = spacing_mm[2], spacing_mm[1], spacing_mm[0]
    n_k = body.shape[0]
    k0 = int(rng.integers(n_k // 4, max(n_k // 4 + 1, 3 * n_k // 4)))
    depth = ndimage.distance_transform_edt(body[k0], sampling=(dj, di))
    candidates = np.flatnonzero((depth > 2) & (depth < 15))
    if candidates.size == 0:
        candidates = np.flatnonzero(body[k0]) if body[k0].any() else np.arange(body[k0].size)
    j0, i0 = np.unravel_index(candidates[rng.integers(candidates.size)], body[k0].shape)
    centre = (k0, int(j0), int(i0))
    radii = (rng.uniform(30, 60), rng.uniform(25, 45), rng.uniform(25, 45))
    coords = np.ogrid[tuple(slice(0, n) for n in body.shape)]
    dist2 = sum(((c - centre[a]) * s / radii[a]) ** 2
                for a, (c, s) in enumerate(zip(coords, (dk, dj, di), strict=True)))
    angle = np.arctan2((coords[1] - centre[1]) * dj, (coords[2] - centre[2]) * di)
    wave = 1 + 0.15 * np.cos(3 * angle + rng.uniform(0, 2 * np.pi))
    return (dist2 <= wave ** 2) & body


def fat_fraction_pct(water: np.ndarray, fat: np.ndarray) -> np.ndarray:
    """``100 F / (W + F)`` (float32), NaN where ``W + F`` is below 5 % of the muscle signal.

    NaN (not 0 or 100) below the noise floor, the rule of :func:`myoscan.dixon.fat_fraction_pct`.
    """
    total = water + fat
    valid = total > np.float32(FATFRAC_FLOOR * MUSCLE_SIGNAL)
    return np.where(valid, 100 * fat / np.where(valid, total, 1), np.nan).astype(np.float32)


def acquire_dixon(water: np.ndarray, fat: np.ndarray, *, noise: float, bias: np.ndarray | None,
                  swap: np.ndarray | None, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Water, fat, in-phase, opposed-phase and fat-fraction images (float32).

    The echoes are ``IP = B (W + F) + n1`` and ``OP = B (W - F) + n2`` with complex Gaussian
    noise of SD ``noise * S`` per real/imaginary part; water and fat are the magnitudes of
    ``(IP + OP) / 2`` and ``(IP - OP) / 2``; a swap exchanges them inside ``swap``.
    """
    w = water * bias if bias is not None else water
    f = fat * bias if bias is not None else fat
    if noise > 0:
        sd = np.float32(noise * MUSCLE_SIGNAL)
        shape = w.shape

        def gauss() -> np.ndarray:
            return rng.standard_normal(shape, dtype=np.float32) * sd

        ip_re, ip_im, op_re, op_im = w + f + gauss(), gauss(), w - f + gauss(), gauss()
        inphase = np.hypot(ip_re, ip_im)
        outphase = np.hypot(op_re, op_im)
        w_out = np.hypot((ip_re + op_re) / 2, (ip_im + op_im) / 2)
        f_out = np.hypot((ip_re - op_re) / 2, (ip_im - op_im) / 2)
    else:
        inphase, outphase = w + f, np.abs(w - f)
        w_out, f_out = w.copy(), f.copy()
    if swap is not None:
        w_out[swap], f_out[swap] = f_out[swap], w_out[swap].copy()
    return {
        "water": w_out.astype(np.float32, copy=False),
        "fat": f_out.astype(np.float32, copy=False),
        "inphase": inphase.astype(np.float32, copy=False),
        "outphase": outphase.astype(np.float32, copy=False),
        "fatfrac": fat_fraction_pct(w_out, f_out),
    }


def acquire_ct(hu: np.ndarray, *, noise_hu: float, rng: np.random.Generator) -> np.ndarray:
    """CT image (int16 HU) with in-plane correlated Gaussian noise of SD ``noise_hu``."""
    if noise_hu > 0:
        n = rng.standard_normal(hu.shape, dtype=np.float32)
        n = ndimage.gaussian_filter(n, (0.0, 0.7, 0.7), truncate=3.0)
        n *= np.float32(noise_hu) / (n.std() + np.float32(1e-9))
        hu = hu + n
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
