"""Dixon fat-water imaging: water/fat <-> in-phase/opposed-phase, fat fraction, swap check.

Two-point Dixon acquires the in-phase (IP = W + F) and opposed-phase (OP = W - F)
echoes; water and fat follow as W = (IP + OP) / 2 and F = (IP - OP) / 2 (seed 002).
The fat fraction FF = F / (F + W) x 100 is only meaningful where there is signal: a
voxel whose total signal W + F lies below the *noise floor* (:func:`noise_floor`) gets
NaN, never 0 or 100.

**Fat-water swaps.** The scanner resolves which of the two chemical species is water
from the (unwrapped) phase of the echoes; where phase unwrapping fails - typically far
from the isocentre, in a smooth region driven by B0 inhomogeneity - water and fat are
exchanged (seed 002: about 10 % of scans). In a swapped region muscle looks
fat-dominant and subcutaneous fat looks water-dominant. :func:`detect_swaps` finds such
regions from physics and anatomy:

* Invariants. The total signal S = W + F (= IP) and the dominance magnitude
  |d| = |W - F| / (W + F) (= |OP| / IP) are the same whether or not a voxel is swapped;
  a swap only flips the sign of d. With *magnitude* IP/OP both candidate pairs
  (W, F) and (F, W) satisfy W + F = IP and |W - F| = |OP|, so IP/OP cannot decide a
  swap voxel by voxel; they give swap-free S and |d|, a consistency check of the W/F
  maps, and - when OP is *signed* (phase-corrected real OP) - the species directly:
  sign(OP) = sign(W - F) in an unswapped voxel.
* Anatomy. Voxels with a clear species vote: the outer layer under the skin and bone
  marrow should be fat; deep water-looking tissue is as expected (deep fat-looking
  tissue does not vote: marrow, intermuscular and visceral fat are real); the outer
  layer should look fattier than the tissue beneath; on T1-weighted gradient echo fat is
  brighter than muscle. Anatomy is layered, so at a given depth below the skin the
  tissue is much the same along the surface: the species expected at each depth is
  learnt from the scan's own surroundings (after a first pass corrected what it found)
  and voxels disagreeing with it vote swapped.
* Coherence. A swap is a spatially coherent region bounded by surfaces where the
  dominant species flips abruptly. The mask is the exact minimum cut of a binary Markov
  random field over supervoxels: cutting between neighbours of the same observed species
  is expensive, cutting where the species flips abruptly is cheap, and partial-volume
  voxels (real water/fat interfaces) tie their two sides together, so the mask snaps to
  swap boundaries and whole tissue patches follow the evidence.

Limits (see docs/dixon.md): built for limbs, pelvis and trunk with a subcutaneous fat
layer; swaps buried more than ~45 mm below the skin are found only with the brightness
cue or a signed OP; small swaps in proton-density contrast under thick, uneven
subcutaneous fat can be missed; a scan swapped in its entirety relies on the absolute
cues alone.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from myoscan.errors import InputError
from myoscan.io import Volume, check_same_grid, require_3d

__all__ = [
    "DEFAULT_MAX_FLOOR_FRACTION",
    "DEFAULT_MIN_FLOOR_FRACTION",
    "DEFAULT_MIN_SNR",
    "DixonMaps",
    "SwapConfig",
    "SwapResult",
    "combine_in_opp",
    "detect_swaps",
    "estimate_noise_level",
    "fat_fraction",
    "fat_fraction_pct",
    "fix_swaps",
    "ip_op_from_water_fat",
    "is_signed_opposed_phase",
    "noise_floor",
    "process_dixon",
    "split_water_fat",
    "water_fat_from_ip_op",
]

log = logging.getLogger(__name__)

#: Total signal must exceed this multiple of the background noise level (the modal
#: signal of background air) for a fat fraction to be reported.
DEFAULT_MIN_SNR = 5.0
#: The noise floor is at least this fraction of the 99th percentile of W + F ...
DEFAULT_MIN_FLOOR_FRACTION = 0.02
#: ... and at most this fraction, so dark tissue (muscle on T1-weighted Dixon is 30-50 %
#: of fat) is never cut by a poor background estimate.
DEFAULT_MAX_FLOOR_FRACTION = 0.15


# ------------------------------------------------------------------------- Dixon algebra


def _float(array: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return np.asarray(array, dtype=np.float64)


def split_water_fat(
    in_phase: npt.ArrayLike, opposed_phase: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Water and fat from in-phase and opposed-phase images (seed 002).

    W = (IP + OP) / 2 and F = (IP - OP) / 2. With *magnitude* OP (all values >= 0, as
    scanners usually store it) this assigns the larger species to water in every voxel:
    fat-dominant tissue comes out as water and FF never exceeds 50 %.

    Parameters
    ----------
    in_phase, opposed_phase : (I, J, K) array_like
        Echo images on one grid.

    Returns
    -------
    water, fat : (I, J, K) ndarray of float64

    Examples
    --------
    >>> split_water_fat([[[10.0]]], [[[6.0]]])
    (array([[[8.]]]), array([[[2.]]]))
    """
    ip, op = _float(in_phase), _float(opposed_phase)
    return (ip + op) / 2.0, (ip - op) / 2.0


def combine_in_opp(
    water: npt.ArrayLike, fat: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """In-phase and opposed-phase images from water and fat: IP = W + F, OP = W - F.

    Examples
    --------
    >>> combine_in_opp([[[8.0]]], [[[2.0]]])
    (array([[[10.]]]), array([[[6.]]]))
    """
    w, f = _float(water), _float(fat)
    return w + f, w - f


def estimate_noise_level(signal: npt.ArrayLike) -> float:
    """Noise level of a magnitude image: the modal value of its background air.

    The background of a magnitude image is Rician with its mode near the noise SD. The
    mode is the highest bin of a 250-bin histogram of the values in (0, P99 / 2), refined
    by a parabola through its neighbours; it counts as background only if it lies below
    0.3 x P99 and the histogram falls below
    half its height after it. Returns NaN when there is no such peak (no air in the
    field of view, or a background set to exactly 0).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> air = np.hypot(*rng.normal(0, 2.0, (2, 20000)))   # Rayleigh, sigma 2
    >>> body = np.full(20000, 300.0)
    >>> round(estimate_noise_level(np.concatenate([air, body])), 0)
    2.0
    """
    values = _float(signal).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan")
    p99 = float(np.percentile(values, 99.0))
    low = values[(values > 0) & (values < 0.5 * p99)]
    if low.size < 100:
        return float("nan")
    counts, edges = np.histogram(low, bins=250, range=(0.0, 0.5 * p99))
    peak = int(np.argmax(counts))
    if edges[peak] >= 0.3 * p99 or counts[peak:].min() > 0.5 * counts[peak]:
        return float("nan")
    offset = 0.0
    if 0 < peak < counts.size - 1:  # parabola through the peak bin and its neighbours
        left, centre, right = (float(c) for c in counts[peak - 1: peak + 2])
        curvature = left - 2 * centre + right
        offset = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
    return float(edges[peak] + (0.5 + offset) * (edges[1] - edges[0]))


def noise_floor(
    total_signal: npt.ArrayLike,
    *,
    min_snr: float = DEFAULT_MIN_SNR,
    min_fraction: float = DEFAULT_MIN_FLOOR_FRACTION,
    max_fraction: float = DEFAULT_MAX_FLOOR_FRACTION,
) -> float:
    """Signal threshold below which a fat fraction is not reported (the noise-floor rule).

    floor = clip(min_snr x noise level, min_fraction x P99, max_fraction x P99), where
    P99 is the 99th percentile of the total signal W + F (= IP) and the noise level comes
    from :func:`estimate_noise_level`; without background air the floor is
    ``min_fraction x P99``.

    Parameters
    ----------
    total_signal : (I, J, K) array_like
        W + F or the in-phase image.
    min_snr, min_fraction, max_fraction : float
        See the module constants.

    Returns
    -------
    float
        The floor, in the units of ``total_signal``.

    Examples
    --------
    >>> noise_floor(np.array([0.0] * 50 + [100.0] * 50))   # no noisy air: 2 % of P99
    2.0
    """
    values = _float(total_signal)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise InputError("cannot compute a noise floor: the image holds no finite values")
    p99 = float(np.percentile(finite, 99.0))
    level = estimate_noise_level(finite)
    floor = min_snr * level if np.isfinite(level) else 0.0
    return float(np.clip(floor, min_fraction * p99, max_fraction * p99))


def fat_fraction_pct(
    water: npt.ArrayLike, fat: npt.ArrayLike, *, floor: float | None = None
) -> npt.NDArray[np.float32]:
    """Voxelwise fat fraction F / (F + W) x 100, NaN where W + F is below the noise floor.

    Parameters
    ----------
    water, fat : (I, J, K) array_like
        Water and fat images on one grid.
    floor : float, optional
        Minimum total signal W + F; :func:`noise_floor` of W + F when omitted. Voxels with
        W + F <= max(floor, 0) get NaN.

    Returns
    -------
    (I, J, K) ndarray of float32
        Fat fraction in percent.

    Examples
    --------
    >>> fat_fraction_pct([[[90.0, 1.0]]], [[[10.0, 0.5]]], floor=5.0)
    array([[[10., nan]]], dtype=float32)
    """
    w, f = _float(water), _float(fat)
    total = w + f
    if floor is None:
        floor = noise_floor(total)
    valid = total > max(float(floor), 0.0)
    out = np.full(total.shape, np.nan, dtype=np.float32)
    out[valid] = (100.0 * f[valid] / total[valid]).astype(np.float32)
    return out


def is_signed_opposed_phase(opposed_phase: npt.ArrayLike, in_phase: npt.ArrayLike) -> bool:
    """Whether OP carries its sign (phase-corrected real OP) rather than being a magnitude.

    True when more than 1 % of the voxels with clear signal (IP above 10 % of its 99th
    percentile) have OP below -10 % of their IP.

    Examples
    --------
    >>> is_signed_opposed_phase([[[5.0, -8.0]]], [[[10.0, 10.0]]])
    True
    """
    ip, op = _float(in_phase), _float(opposed_phase)
    signal = ip > 0.1 * float(np.percentile(ip, 99.0))
    if not signal.any():
        return False
    negative = op[signal] < -0.1 * ip[signal]
    return bool(negative.mean() > 0.01)


# ------------------------------------------------------------------------- swap detection


@dataclass(frozen=True)
class SwapConfig:
    """Settings of :func:`detect_swaps`; lengths in mm, weights in votes per voxel.

    Parameters
    ----------
    skin_mm : float
        Outer layer ignored (skin, partial volume with air); at least one voxel.
    shell_mm : float
        Body surface layer expected fat-dominant (subcutaneous fat).
    deep_mm : float
        Tissue deeper than this is expected mostly water-dominant (muscle); only
        water-looking deep tissue votes (``deep_fat_weight`` 0: deep fat is common).
    ambiguity : float
        |d| = |W - F| / (W + F) below this (FF between 40 and 60 %) carries no species vote.
    shell_weight, marrow_weight, deep_water_weight, deep_fat_weight : float
        Votes of the outer layer and of bone marrow (both expected fat), and of deep
        water- and fat-looking soft tissue.
    brightness_weight, signed_op_weight : float
        Votes of the fat-is-brighter cue and of a signed OP image.
    min_brightness_ratio : float
        The brightness cue is used only when fat- and water-looking tissue differ in
        W + F by at least this ratio (T1-weighted gradient echo; off for PDFF protocols).
    context_mm, context_weight : float
        Gaussian radius (SD) over which the outer layer is compared with the tissue
        beneath, and the weight of that comparison in the per-voxel cost.
    consistency_mm, consistency_weight, consistency_depth_mm : float
        Gaussian radius over which the species expected at each depth is learnt, the
        weight of the vote against voxels that disagree with it, and the depth down to
        which anatomy is layered (skin, subcutaneous fat, outer muscle); deeper tissue
        (pelvic and visceral fat, marrow) varies too much to be compared sideways.
    boundary_mm : float
        Cost of cutting 1 mm^2 between neighbours of one observed species, in mm^3 of
        tissue with a full vote (so the balance does not depend on the voxel size).
    flip_coupling, interface_coupling : float
        Fraction of that cost paid where the species flips abruptly (a swap boundary or a
        sharp tissue border), and the minimum fraction paid next to a partial-volume voxel
        (a water/fat interface, whose two sides keep one label).
    supervoxel_mm : float
        Edge of the blocks whose connected water-looking, fat-looking, ambiguous and
        signal-free parts are the nodes of the min-cut.
    analysis_mm : float
        Finer images are subsampled to about this voxel size first (speed); the mask is
        then refined on the full grid.
    min_region_ml : float
        Swapped regions smaller than this are dropped; a scan with any region left fails QC.
    """

    skin_mm: float = 2.0
    shell_mm: float = 6.0
    deep_mm: float = 15.0
    ambiguity: float = 0.2
    shell_weight: float = 1.0
    marrow_weight: float = 0.5
    deep_water_weight: float = 0.3
    deep_fat_weight: float = 0.0
    brightness_weight: float = 0.5
    min_brightness_ratio: float = 1.25
    signed_op_weight: float = 3.0
    context_mm: float = 15.0
    context_weight: float = 0.5
    consistency_mm: float = 40.0
    consistency_weight: float = 1.0
    consistency_depth_mm: float = 45.0
    boundary_mm: float = 6.0
    flip_coupling: float = 0.05
    interface_coupling: float = 0.5
    supervoxel_mm: float = 8.0
    analysis_mm: float = 1.5
    min_region_ml: float = 2.0


@dataclass(frozen=True)
class SwapResult:
    """Outcome of :func:`detect_swaps`.

    Attributes
    ----------
    probability : (I, J, K) ndarray of float32
        Regional swap evidence mapped to [0, 1] (0.5 = undecided); 0 outside the body.
    mask : (I, J, K) ndarray of bool
        Detected swapped voxels.
    body : (I, J, K) ndarray of bool
        Voxels with signal (total signal above the noise floor, holes filled per slice).
    voxel_volume_ml : float
        Volume of one voxel.
    cues : tuple of str
        Cues that voted (``outer-layer``, ``deep``, ``brightness``, ``signed-op``).
    n_regions : int
        Connected swapped regions of at least ``min_region_ml``.
    """

    probability: npt.NDArray[np.float32]
    mask: npt.NDArray[np.bool_]
    body: npt.NDArray[np.bool_]
    voxel_volume_ml: float
    cues: tuple[str, ...]
    n_regions: int
    notes: tuple[str, ...] = ()

    @property
    def swapped_volume_ml(self) -> float:
        """Volume of the swapped voxels in mL."""
        return float(np.count_nonzero(self.mask)) * self.voxel_volume_ml

    @property
    def swapped_fraction(self) -> float:
        """Swapped share of the body (0-1); NaN for an empty body."""
        body = int(np.count_nonzero(self.body))
        return float(np.count_nonzero(self.mask)) / body if body else float("nan")

    @property
    def has_swap(self) -> bool:
        """QC flag: True when at least one swapped region was found."""
        return self.n_regions > 0

    def summary(self) -> dict[str, Any]:
        """Plain-value QC record (for JSON reports)."""
        return {
            "swap_detected": self.has_swap,
            "qc": "fail" if self.has_swap else "pass",
            "swapped_fraction": self.swapped_fraction,
            "swapped_volume_ml": self.swapped_volume_ml,
            "body_volume_ml": float(np.count_nonzero(self.body)) * self.voxel_volume_ml,
            "n_regions": self.n_regions,
            "cues": list(self.cues),
            "notes": list(self.notes),
        }


def _body_mask(total: np.ndarray, floor: float, slice_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Body: smoothed W + F above a threshold, specks removed, holes filled; and the holes.

    Holes (bone cortex, air pockets between the thighs) are filled per slice and also
    returned, since they carry no species information. The threshold is the noise floor, raised to
    twice the background level in noisy scans (the background of W + F is the sum of two
    Rician variables and reaches past the floor), but never above 25 % of P99.
    """
    p99 = float(np.percentile(total, 99.0))
    level = estimate_noise_level(total)
    threshold = floor if not np.isfinite(level) else min(max(floor, 2.0 * level), 0.25 * p99)
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


def _smooth(values: np.ndarray, weights: np.ndarray, spacing_mm: tuple[float, ...], sigma_mm: float,
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
    return _upsample(mean, factors, values.shape)


def _block_sum(array: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Sum over blocks of ``factors`` voxels (a trailing partial block is summed alone)."""
    for axis, k in enumerate(factors):
        if k > 1:
            array = np.add.reduceat(array, np.arange(0, array.shape[axis], k), axis=axis)
    return array


def _brightness_cue(total: np.ndarray, sign: np.ndarray, conf: np.ndarray, inner: np.ndarray,
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


def _layers(depth: np.ndarray, body: np.ndarray, dark: np.ndarray, spacing_mm: tuple[float, float, float],
            slice_axis: int, config: SwapConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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


def _layer_contrast(looks: np.ndarray, conf: np.ndarray, shell: np.ndarray, inner: np.ndarray,
                    spacing_mm: tuple[float, ...], sigma_mm: float) -> np.ndarray:
    """Regional mean species of the outer layer minus that of the tissue beneath, halved.

    It is > 0 where the outer layer looks less fatty than the tissue beneath it, i.e.
    where the anatomy is inverted. Comparing the layers rather than testing the outer
    layer alone keeps lean subjects (fat thinner than the layer: outer layer partly
    muscle, yet fattier than the muscle beneath) and obese ones (deeper tissue partly
    fat) on the right side.
    """
    below = inner & ~shell
    outer_mean = _smooth(np.where(shell, looks, 0.0), np.where(shell, conf, 0.0), spacing_mm, sigma_mm)
    below_mean = _smooth(np.where(below, looks, 0.0), np.where(below, conf, 0.0), spacing_mm, sigma_mm)
    return 0.5 * (outer_mean - below_mean)


#: Depth bands (mm below the body surface) within which anatomy is compared sideways.
_DEPTH_BANDS_MM = (0.0, 4.0, 7.0, 10.0, 14.0, 20.0, 28.0, 40.0, 60.0, 90.0, np.inf)


def _expected_species(corrected: np.ndarray, conf: np.ndarray, depth: np.ndarray, inner: np.ndarray,
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
            mean = _smooth(np.where(member, corrected, 0.0), np.where(member, conf, 0.0), spacing_mm,
                           sigma_mm, hole_mm=sigma_mm / 2.5)
            expected[member] = mean[member]
    return expected


def _species_votes(
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


def _supervoxels(species: np.ndarray, body: np.ndarray, block: list[int]) -> tuple[np.ndarray, int]:
    """Label the connected parts of one species within each block (-1 outside the body).

    Blocks are separated by inserting an empty plane after every block along each axis,
    so one labelling pass per species finds the parts of all blocks at once.
    """
    index = [np.arange(n) + np.arange(n) // b for n, b in zip(body.shape, block, strict=True)]
    grid = np.ix_(*index)
    expanded = np.zeros(tuple(int(ix[-1]) + 1 for ix in index), dtype=bool)
    node = np.full(body.shape, -1, dtype=np.int64)
    n_nodes = 0
    for value in np.unique(species[body]):
        expanded[grid] = body & (species == value)
        labels, n = ndimage.label(expanded)
        part = labels[grid]
        node[part > 0] = part[part > 0] - 1 + n_nodes
        n_nodes += n
    return node, n_nodes


def _supervoxel_graph(
    unary: np.ndarray, species: np.ndarray, conf: np.ndarray, body: np.ndarray,
    spacing_mm: tuple[float, float, float], config: SwapConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Graph of supervoxels: connected parts of one observed species within each block.

    ``species`` is 0 water-looking, 1 fat-looking, 2 ambiguous, 3 without signal. Edge
    couplings are summed over the shared voxel faces (cost per mm^2 x face area); node
    costs are the unary votes summed over the voxels (x voxel volume). Returns the node
    of every voxel (-1 outside the body), node costs, and each edge's two nodes and weight.
    """
    block = [max(1, round(config.supervoxel_mm / s)) for s in spacing_mm]
    node, n_nodes = _supervoxels(species, body, block)
    voxel_mm3 = float(np.prod(spacing_mm))
    node_cost = np.bincount(node[body], weights=unary[body], minlength=n_nodes) * voxel_mm3
    areas_mm2 = voxel_mm3 / np.asarray(spacing_mm)
    firsts, seconds, couplings = [], [], []
    for axis in range(3):
        lo, hi = [slice(None)] * 3, [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        a, b = node[tuple(lo)], node[tuple(hi)]
        cross = (a >= 0) & (b >= 0) & (a != b)
        kind_a, kind_b = species[tuple(lo)][cross], species[tuple(hi)][cross]
        strength = np.minimum(conf[tuple(lo)], conf[tuple(hi)])[cross]
        coupling = np.where(kind_a == kind_b, config.flip_coupling + (1 - config.flip_coupling) * strength,
                            config.flip_coupling)
        # A partial-volume voxel sits on a water/fat interface: both sides keep one label.
        # Voxels without signal (bone cortex, air in the gut) carry no such information.
        has_signal = (kind_a != 3) & (kind_b != 3)
        coupling = np.maximum(coupling, has_signal * config.interface_coupling * (1.0 - strength))
        firsts.append(np.minimum(a[cross], b[cross]))
        seconds.append(np.maximum(a[cross], b[cross]))
        couplings.append(coupling * config.boundary_mm * areas_mm2[axis])
    pair = np.concatenate(firsts) * n_nodes + np.concatenate(seconds)
    pairs, where = np.unique(pair, return_inverse=True)
    weight = np.bincount(where, weights=np.concatenate(couplings))
    return node, node_cost, pairs // n_nodes, pairs % n_nodes, weight


def _min_cut(node_cost: np.ndarray, first: np.ndarray, second: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Exact minimiser of sum(cost * label) + sum(weight * [labels differ]); True = swapped."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import breadth_first_order, maximum_flow

    n = node_cost.size
    if not np.any(node_cost > 0):
        return np.zeros(n, dtype=bool)
    source, sink = n, n + 1
    to_swap, to_clean = np.maximum(-node_cost, 0.0), np.maximum(node_cost, 0.0)
    scale = min(1000.0, 2.0**30 / max(to_swap.sum() + to_clean.sum() + 2 * weight.sum(), 1e-9))
    rows = np.concatenate([first, second, np.full(n, source), np.arange(n)])
    cols = np.concatenate([second, first, np.arange(n), np.full(n, sink)])
    caps = np.rint(np.concatenate([weight, weight, to_swap, to_clean]) * scale).astype(np.int32)
    keep = caps > 0
    graph = sp.csr_matrix((caps[keep], (rows[keep], cols[keep])), shape=(n + 2, n + 2))
    flow = maximum_flow(graph, source, sink, method="dinic").flow
    residual = (graph - flow).tocsr()
    residual.data[residual.data < 0] = 0
    residual.eliminate_zeros()
    clean_side = np.zeros(n + 2, dtype=bool)
    clean_side[breadth_first_order(residual, source, directed=True, return_predecessors=False)] = True
    return ~clean_side[:n]


def _check_in_opp(water: np.ndarray, fat: np.ndarray, in_phase: np.ndarray, opposed_phase: np.ndarray,
                  body: np.ndarray) -> tuple[bool, str | None]:
    """Whether W/F and IP/OP describe one acquisition (up to a global scale)."""
    total = (water + fat)[body]
    ip = in_phase[body]
    usable = total > 0
    if usable.sum() < 100:
        return False, "too few voxels with signal to compare W/F with IP/OP"
    scale = float(np.median(ip[usable] / total[usable]))
    mismatch = np.abs(scale * total[usable] - ip[usable]) / np.maximum(ip[usable], 1e-12)
    magnitude = np.abs(np.abs(water - fat)[body][usable] * scale - np.abs(opposed_phase[body][usable]))
    magnitude /= np.maximum(ip[usable], 1e-12)
    bad = float(np.mean((mismatch > 0.1) | (magnitude > 0.1)))
    if bad > 0.1:
        return False, (f"W + F and |W - F| disagree with IP and |OP| by more than 10 % in {bad:.0%} of the "
                       "body; IP/OP were not used (are they from the same acquisition?)")
    note = None if abs(scale - 1) < 0.02 else f"IP/OP are scaled x{scale:.3g} relative to W/F"
    return True, note


def detect_swaps(
    water: npt.ArrayLike,
    fat: npt.ArrayLike,
    *,
    spacing_mm: tuple[float, float, float],
    in_phase: npt.ArrayLike | None = None,
    opposed_phase: npt.ArrayLike | None = None,
    slice_axis: int = 2,
    floor: float | None = None,
    config: SwapConfig = SwapConfig(),
) -> SwapResult:
    """Find regions where the scanner exchanged water and fat.

    See the module docstring for the method and docs/dixon.md for its limits.

    Parameters
    ----------
    water, fat : (I, J, K) array_like
        Water and fat images on one grid.
    spacing_mm : tuple of 3 float
        Voxel size along I, J, K.
    in_phase, opposed_phase : (I, J, K) array_like, optional
        The echoes of the same acquisition; used for swap-free S and |d|, and for the
        species itself when OP is signed.
    slice_axis : int
        Axis of the acquired slices (holes such as bone cortex are filled per slice).
    floor : float, optional
        Body threshold on W + F; :func:`noise_floor` when omitted.
    config : SwapConfig
        Weights and scales of the cues.

    Returns
    -------
    SwapResult

    Raises
    ------
    InputError
        Arrays of different shapes, or only one of the two echoes given.

    Examples
    --------
    >>> water = np.zeros((30, 30, 4)); fat = np.zeros((30, 30, 4))
    >>> yy, xx = np.mgrid[:30, :30] - 14.5
    >>> r = np.hypot(yy, xx)[..., None] * np.ones(4)
    >>> fat[(r < 13) & (r >= 9)] = 100.0; water[r < 9] = 50.0   # fat ring around muscle
    >>> detect_swaps(water, fat, spacing_mm=(2.0, 2.0, 5.0)).has_swap
    False
    """
    w, f = _float(water), _float(fat)
    if w.shape != f.shape or w.ndim != 3:
        raise InputError(f"water and fat must be 3D arrays of one shape, got {w.shape} and {f.shape}")
    if (in_phase is None) != (opposed_phase is None):
        raise InputError("give both in_phase and opposed_phase, or neither")
    spacing = tuple(float(s) for s in spacing_mm)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    floor = noise_floor(w + f) if floor is None else floor
    body_full, holes_full = _body_mask(w + f, floor, slice_axis)
    probability = np.zeros(w.shape, dtype=np.float32)
    full_mask = np.zeros(w.shape, dtype=bool)
    if not body_full.any():
        return SwapResult(probability, full_mask, body_full, voxel_ml, (), 0, ("no signal above the floor",))
    echoes = None
    if in_phase is not None:
        echoes = (_float(in_phase), _float(opposed_phase))
        if echoes[0].shape != w.shape or echoes[1].shape != w.shape:
            raise InputError(f"in-phase/opposed-phase shapes {echoes[0].shape}, {echoes[1].shape} differ "
                             f"from water/fat {w.shape}")
    box = ndimage.find_objects(body_full.astype(np.int8))[0]  # work inside the body's bounding box
    factors = tuple(max(1, int(config.analysis_mm // s)) for s in spacing)
    coarse = [_subsample(a[box], factors) for a in (w, f, *(echoes or ()))]
    coarse_spacing = tuple(s * k for s, k in zip(spacing, factors, strict=True))
    body, holes = (_body_mask(coarse[0] + coarse[1], floor, slice_axis) if max(factors) > 1
                   else (body_full[box], holes_full[box]))
    coarse_echoes = None if echoes is None else (coarse[2], coarse[3])
    mask, regional, cues, notes = _detect_on_grid(coarse[0], coarse[1], body, holes, coarse_echoes,
                                                  coarse_spacing, floor, slice_axis, config)
    inside = body_full[box]
    mask, n_regions = _drop_small_regions(_upsample(mask, factors, inside.shape) & inside,
                                          config.min_region_ml / voxel_ml)
    full_mask[box] = mask
    probability[box] = np.where(inside, _upsample(regional, factors, inside.shape), 0.0)
    return SwapResult(probability, full_mask, body_full, voxel_ml, tuple(cues), n_regions, tuple(notes))


def _subsample(array: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Every ``factors``-th voxel along each axis.

    Picking rather than averaging keeps swap boundaries abrupt: a block mean across one
    would look like a partial-volume water/fat interface.
    """
    return array[tuple(slice(None, None, k) for k in factors)]


def _upsample(array: np.ndarray, factors: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Repeat every voxel ``factors`` times and crop to ``shape`` (inverse of :func:`_subsample`)."""
    for axis, k in enumerate(factors):
        if k > 1:
            array = np.repeat(array, k, axis=axis)
    return array[tuple(slice(0, n) for n in shape)]


def _detect_on_grid(
    w: np.ndarray, f: np.ndarray, body: np.ndarray, holes: np.ndarray,
    echoes: tuple[np.ndarray, np.ndarray] | None,
    spacing: tuple[float, float, float], floor: float, slice_axis: int, config: SwapConfig,
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Swap mask and regional swap probability on one analysis grid.

    Two passes: the first uses the absolute anatomical cues; the second adds the
    same-depth consistency cue, with the expected species at each depth learnt from the
    scan corrected by the first pass (so a large swap does not teach its own anatomy).
    """
    total, sign, conf, op_sign, cues, notes = _species_signals(w, f, body, echoes, config)
    void = holes | (body & (total <= floor))
    conf *= np.clip(total / floor - 1.0, 0.0, 1.0) if floor > 0 else 1.0  # d is noise near the floor
    conf[void] = 0.0
    depth = ndimage.distance_transform_edt(body, sampling=spacing)
    dark = void | (body & (total < 0.4 * np.median(total[body])))  # cortex, partial volume included
    layers = _layers(depth, body, dark, spacing, slice_axis, config)
    looks = conf * sign
    brightness = _brightness_cue(total, sign, conf, layers[0], config.min_brightness_ratio)
    if brightness is not None:
        cues.append("brightness")
    votes = _species_votes(looks, conf, layers, config, brightness, op_sign)
    contrast = _layer_contrast(looks, conf, layers[1], layers[0], spacing, config.context_mm)
    # Only voxels with a species vote; void and ambiguous voxels follow their neighbours.
    unary = np.where(body & (conf > 0), votes + config.context_weight * contrast, 0.0)
    species = np.select([void, conf == 0, sign > 0], [3, 2, 0], default=1)
    node, node_cost, first, second, weight = _supervoxel_graph(unary, species, conf, body, spacing, config)
    swapped = _min_cut(node_cost, first, second, weight)
    if config.consistency_weight > 0:
        corrected = np.where(body, looks * (1 - 2 * swapped[node].astype(np.float64)), 0.0)
        soft = layers[0] & ~layers[3] & (depth <= config.consistency_depth_mm)
        expected = _expected_species(corrected, conf, depth, soft, spacing, config.consistency_mm)
        unary = unary - config.consistency_weight * looks * expected
        voxel_mm3 = float(np.prod(spacing))
        node_cost = np.bincount(node[body], weights=unary[body], minlength=node_cost.size) * voxel_mm3
        swapped = _min_cut(node_cost, first, second, weight)
    mask = np.zeros(body.shape, dtype=bool)
    mask[body] = swapped[node[body]]
    regional = _smooth(unary, body.astype(np.float64), spacing, config.supervoxel_mm)
    return mask, np.where(body, 1.0 / (1.0 + np.exp(-regional / 0.1)), 0.0), cues, notes


def _species_signals(
    w: np.ndarray, f: np.ndarray, body: np.ndarray, echoes: tuple[np.ndarray, np.ndarray] | None,
    config: SwapConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, list[str], list[str]]:
    """Total signal, observed species sign(W - F), its confidence, signed-OP species, cues, notes.

    S and |d| come from IP/OP when they match W/F (swap-free by construction), else from W/F.
    """
    total = w + f
    magnitude = np.abs(w - f) / np.maximum(total, 1e-12)
    op_sign = None
    cues, notes = ["outer-layer", "deep"], []
    if echoes is not None:
        ip, op = echoes
        consistent, note = _check_in_opp(w, f, ip, op, body)
        if note:
            notes.append(note)
            if not consistent:
                warnings.warn(note, stacklevel=3)
        if consistent:
            total = ip
            magnitude = np.abs(op) / np.maximum(ip, 1e-12)
            if is_signed_opposed_phase(op, ip):
                op_sign = np.sign(op) * (magnitude > config.ambiguity)
                cues.append("signed-op")
    conf = np.clip((np.minimum(magnitude, 1.0) - config.ambiguity) / (1.0 - config.ambiguity), 0.0, 1.0)
    return total, np.sign(w - f), np.where(body, conf, 0.0), op_sign, cues, notes


def _drop_small_regions(mask: np.ndarray, min_voxels: float) -> tuple[np.ndarray, int]:
    """Remove connected regions smaller than ``min_voxels``; return the mask and the count kept."""
    regions, n = ndimage.label(mask)
    if n == 0:
        return mask, 0
    sizes = np.bincount(regions.ravel())
    sizes[0] = 0
    keep = sizes >= min_voxels
    return keep[regions], int(np.count_nonzero(keep))


def fix_swaps(
    water: npt.ArrayLike, fat: npt.ArrayLike, mask: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Exchange water and fat inside ``mask`` (the swapped regions).

    Examples
    --------
    >>> fix_swaps([[[1.0, 2.0]]], [[[9.0, 8.0]]], [[[True, False]]])
    (array([[[9., 2.]]]), array([[[1., 8.]]]))
    """
    w, f, m = _float(water), _float(fat), np.asarray(mask, dtype=bool)
    return np.where(m, f, w), np.where(m, w, f)


# ------------------------------------------------------------------------- Volume API


@dataclass(frozen=True)
class DixonMaps:
    """Water, fat and fat fraction of one Dixon scan, with what was done to get them.

    Attributes
    ----------
    water, fat : Volume
        float32 signal maps.
    fat_fraction : Volume
        Fat fraction in percent (float32), NaN below the noise floor.
    noise_floor : float
        Minimum W + F for a fat fraction (the noise-floor rule, :func:`noise_floor`).
    in_phase, opposed_phase : Volume or None
        The echoes (given, or computed from W and F).
    swap : SwapResult or None
        Swap check, when it ran.
    is_fixed : bool
        Whether W and F were exchanged back inside the detected swap regions.
    notes : tuple of str
        Caveats found on the way (magnitude OP, scaling ...).
    """

    water: Volume
    fat: Volume
    fat_fraction: Volume
    noise_floor: float
    in_phase: Volume | None = None
    opposed_phase: Volume | None = None
    swap: SwapResult | None = None
    is_fixed: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    def report(self) -> dict[str, Any]:
        """Plain-value summary for a JSON side-car."""
        ff = self.fat_fraction.array
        valid = np.isfinite(ff)
        return {
            "noise_floor": self.noise_floor,
            "fat_fraction_valid_fraction": float(valid.mean()),
            "fat_fraction_median_pct": float(np.median(ff[valid])) if valid.any() else float("nan"),
            "swap_check": None if self.swap is None else self.swap.summary(),
            "swap_fixed": self.is_fixed,
            "notes": list(self.notes),
        }


def _pair(a: Volume, b: Volume) -> tuple[np.ndarray, np.ndarray]:
    require_3d(a)
    require_3d(b)
    check_same_grid(a, b)
    return _float(a.array), _float(b.array)


def _as_volume(reference: Volume, array: np.ndarray, name: str) -> Volume:
    return Volume(np.asarray(array, dtype=np.float32), reference.affine.copy(), None,
                  {"source": reference.name, "map": name})


def fat_fraction(water: Volume, fat: Volume, *, floor: float | None = None) -> Volume:
    """Fat-fraction map in percent of a water/fat pair (NaN below the noise floor).

    Raises
    ------
    GeometryMismatchError
        If water and fat are not on one voxel grid.
    """
    w, f = _pair(water, fat)
    return _as_volume(water, fat_fraction_pct(w, f, floor=floor), "fat_fraction_pct")


def _opposed_phase_note(ip: np.ndarray, op: np.ndarray) -> str | None:
    if is_signed_opposed_phase(op, ip):
        return None
    if np.any(op < 0):
        return None
    return ("opposed-phase is a magnitude image: W = (IP + OP) / 2 takes the larger species as water, "
            "so fat-dominant tissue (subcutaneous fat, marrow) comes out as water and FF <= 50 %; "
            "muscle FF below 50 % is unaffected")


def water_fat_from_ip_op(in_phase: Volume, opposed_phase: Volume, *, floor: float | None = None) -> DixonMaps:
    """Water, fat and fat fraction from in-phase and opposed-phase volumes (seed 002).

    Parameters
    ----------
    in_phase, opposed_phase : Volume
        The two echoes on one grid.
    floor : float, optional
        Noise floor on W + F (= IP) for the fat fraction; :func:`noise_floor` if omitted.

    Returns
    -------
    DixonMaps

    Raises
    ------
    GeometryMismatchError
        If the echoes are not on one voxel grid.
    """
    ip, op = _pair(in_phase, opposed_phase)
    water, fat = split_water_fat(ip, op)
    floor = noise_floor(ip) if floor is None else float(floor)
    note = _opposed_phase_note(ip, op)
    return DixonMaps(
        water=_as_volume(in_phase, water, "water"),
        fat=_as_volume(in_phase, fat, "fat"),
        fat_fraction=_as_volume(in_phase, fat_fraction_pct(water, fat, floor=floor), "fat_fraction_pct"),
        noise_floor=floor, in_phase=in_phase, opposed_phase=opposed_phase,
        notes=(note,) if note else (),
    )


def ip_op_from_water_fat(water: Volume, fat: Volume) -> tuple[Volume, Volume]:
    """In-phase (W + F) and opposed-phase (W - F) volumes from water and fat."""
    w, f = _pair(water, fat)
    ip, op = combine_in_opp(w, f)
    return _as_volume(water, ip, "in_phase"), _as_volume(water, op, "opposed_phase")


def process_dixon(
    *,
    water: Volume | None = None,
    fat: Volume | None = None,
    in_phase: Volume | None = None,
    opposed_phase: Volume | None = None,
    check_swaps: bool = True,
    fix: bool = False,
    floor: float | None = None,
    config: SwapConfig = SwapConfig(),
) -> DixonMaps:
    """Everything ``myoscan dixon`` computes, from whichever Dixon images are at hand.

    * IP + OP: W and F by the seed-002 formula, and the fat fraction.
    * W + F (optionally with IP + OP of the same acquisition): the fat fraction, IP and OP
      when not given, and the swap check (``check_swaps``), which uses IP/OP when present;
      ``fix`` exchanges W and F back inside the detected regions before the fat fraction.

    Raises
    ------
    InputError
        Missing half of a pair, nothing to work on, or ``fix`` without a swap check.
    GeometryMismatchError
        Images not on one voxel grid.
    """
    if (water is None) != (fat is None):
        raise InputError("give both water and fat images, or neither")
    if (in_phase is None) != (opposed_phase is None):
        raise InputError("give both in-phase and opposed-phase images, or neither")
    if water is None:
        if in_phase is None:
            raise InputError("no Dixon images given: pass water + fat, in-phase + opposed-phase, or all four")
        if fix:
            raise InputError("--fix needs the scanner's water and fat images: magnitude IP/OP do not swap")
        return water_fat_from_ip_op(in_phase, opposed_phase, floor=floor)
    if fix and not check_swaps:
        raise InputError("fix needs the swap check; do not switch it off")
    w, f = _pair(water, fat)
    ip = op = None
    if in_phase is not None:
        ip, op = _pair(in_phase, opposed_phase)
        check_same_grid(water, in_phase)
    floor = noise_floor(w + f) if floor is None else float(floor)
    swap = None
    if check_swaps:
        swap = detect_swaps(w, f, spacing_mm=water.spacing_mm, in_phase=ip, opposed_phase=op,
                            floor=floor, config=config)
        if swap.has_swap:
            log.info("swap check: swap found in %.1f %% of the body (%.0f mL)",
                     100 * swap.swapped_fraction, swap.swapped_volume_ml)
        else:
            log.info("swap check: no swap found")
        if fix and swap.has_swap:
            w, f = fix_swaps(w, f, swap.mask)
    water_out, fat_out = _as_volume(water, w, "water"), _as_volume(water, f, "fat")
    if in_phase is None:
        in_phase, opposed_phase = ip_op_from_water_fat(water_out, fat_out)
    return DixonMaps(
        water=water_out, fat=fat_out,
        fat_fraction=_as_volume(water, fat_fraction_pct(w, f, floor=floor), "fat_fraction_pct"),
        noise_floor=floor, in_phase=in_phase, opposed_phase=opposed_phase, swap=swap,
        is_fixed=bool(fix and swap is not None and swap.has_swap),
        notes=swap.notes if swap is not None else (),
    )
