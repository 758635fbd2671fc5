"""Fat-water swap detection and repair on arrays: :func:`detect_swaps`, :func:`fix_swaps`.

The method (invariants, anatomical cues, min-cut coherence) is described in the
:mod:`myoscan.dixon` docstring and in docs/dixon.md; the cues live in
:mod:`myoscan.dixon.cues`, the graph in :mod:`myoscan.dixon.graph`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from myoscan.dixon.cues import (
    body_mask,
    brightness_cue,
    expected_species,
    layer_contrast,
    species_votes,
    tissue_layers,
)
from myoscan.dixon.graph import min_cut, supervoxel_graph
from myoscan.dixon.grid import smooth, subsample, upsample
from myoscan.dixon.signal import as_float64, is_signed_opposed_phase, noise_floor
from myoscan.errors import InputError

__all__ = ["SwapConfig", "SwapResult", "detect_swaps", "fix_swaps"]


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
    w, f = as_float64(water), as_float64(fat)
    if w.shape != f.shape or w.ndim != 3:
        raise InputError(f"water and fat must be 3D arrays of one shape, got {w.shape} and {f.shape}")
    if (in_phase is None) != (opposed_phase is None):
        raise InputError("give both in_phase and opposed_phase, or neither")
    spacing = tuple(float(s) for s in spacing_mm)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    echoes = None
    if in_phase is not None:
        echoes = (as_float64(in_phase), as_float64(opposed_phase))
        if echoes[0].shape != w.shape or echoes[1].shape != w.shape:
            raise InputError(f"in-phase/opposed-phase shapes {echoes[0].shape}, {echoes[1].shape} differ "
                             f"from water/fat {w.shape}")
    w, f, echoes, input_notes = _without_non_finite(w, f, echoes)
    floor = noise_floor(w + f) if floor is None else floor
    body_full, holes_full = body_mask(w + f, floor, slice_axis)
    probability = np.zeros(w.shape, dtype=np.float32)
    full_mask = np.zeros(w.shape, dtype=bool)
    if not body_full.any():
        return SwapResult(probability, full_mask, body_full, voxel_ml, (), 0,
                          (*input_notes, "no signal above the floor"))
    box = ndimage.find_objects(body_full.astype(np.int8))[0]  # work inside the body's bounding box
    factors = tuple(max(1, int(config.analysis_mm // s)) for s in spacing)
    coarse = [subsample(a[box], factors) for a in (w, f, *(echoes or ()))]
    coarse_spacing = tuple(s * k for s, k in zip(spacing, factors, strict=True))
    body, holes = (body_mask(coarse[0] + coarse[1], floor, slice_axis) if max(factors) > 1
                   else (body_full[box], holes_full[box]))
    coarse_echoes = None if echoes is None else (coarse[2], coarse[3])
    mask, regional, cues, notes = _detect_on_grid(coarse[0], coarse[1], body, holes, coarse_echoes,
                                                  coarse_spacing, floor, slice_axis, config)
    inside = body_full[box]
    mask, n_regions = _drop_small_regions(upsample(mask, factors, inside.shape) & inside,
                                          config.min_region_ml / voxel_ml)
    full_mask[box] = mask
    probability[box] = np.where(inside, upsample(regional, factors, inside.shape), 0.0)
    return SwapResult(probability, full_mask, body_full, voxel_ml, tuple(cues), n_regions,
                      (*input_notes, *notes))


def _without_non_finite(
    w: np.ndarray, f: np.ndarray, echoes: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None, tuple[str, ...]]:
    """Treat NaN/Inf voxels (of any input) as voxels without signal, with a note saying how many.

    A single NaN would otherwise spread through the smoothing and the min-cut capacities
    and could mark half the body as swapped.
    """
    arrays = (w, f, *(echoes or ()))
    bad = ~np.logical_and.reduce([np.isfinite(a) for a in arrays])
    n_bad = int(np.count_nonzero(bad))
    if not n_bad:
        return w, f, echoes, ()
    w, f, *rest = (np.where(bad, 0.0, a) for a in arrays)
    note = f"{n_bad} voxels with NaN/Inf in the inputs were treated as voxels without signal"
    return w, f, (rest[0], rest[1]) if rest else None, (note,)



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
    layers = tissue_layers(depth, body, dark, spacing, slice_axis, config)
    looks = conf * sign
    brightness = brightness_cue(total, sign, conf, layers[0], config.min_brightness_ratio)
    if brightness is not None:
        cues.append("brightness")
    votes = species_votes(looks, conf, layers, config, brightness, op_sign)
    contrast = layer_contrast(looks, conf, layers[1], layers[0], spacing, config.context_mm)
    # Only voxels with a species vote; void and ambiguous voxels follow their neighbours.
    unary = np.where(body & (conf > 0), votes + config.context_weight * contrast, 0.0)
    species = np.select([void, conf == 0, sign > 0], [3, 2, 0], default=1)
    node, node_cost, first, second, weight = supervoxel_graph(unary, species, conf, body, spacing, config)
    swapped = min_cut(node_cost, first, second, weight)
    if config.consistency_weight > 0:
        corrected = np.where(body, looks * (1 - 2 * swapped[node].astype(np.float64)), 0.0)
        soft = layers[0] & ~layers[3] & (depth <= config.consistency_depth_mm)
        expected = expected_species(corrected, conf, depth, soft, spacing, config.consistency_mm)
        unary = unary - config.consistency_weight * looks * expected
        voxel_mm3 = float(np.prod(spacing))
        node_cost = np.bincount(node[body], weights=unary[body], minlength=node_cost.size) * voxel_mm3
        swapped = min_cut(node_cost, first, second, weight)
    mask = np.zeros(body.shape, dtype=bool)
    mask[body] = swapped[node[body]]
    regional = smooth(unary, body.astype(np.float64), spacing, config.supervoxel_mm)
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
    w, f, m = as_float64(water), as_float64(fat), np.asarray(mask, dtype=bool)
    return np.where(m, f, w), np.where(m, w, f)



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
