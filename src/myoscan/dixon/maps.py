"""The Volume-level Dixon API: :class:`DixonMaps` and :func:`process_dixon` (what the CLI runs).

Volumes in, float32 Volumes out on the same grid; the array formulas are in
:mod:`myoscan.dixon.signal`, the swap check in :mod:`myoscan.dixon.swap`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from myoscan.dixon.signal import (
    as_float64,
    combine_in_opp,
    fat_fraction_pct,
    is_signed_opposed_phase,
    noise_floor,
    split_water_fat,
)
from myoscan.dixon.swap import SwapConfig, SwapResult, detect_swaps, fix_swaps
from myoscan.errors import InputError
from myoscan.io import Volume, check_same_grid, require_3d

__all__ = ["DixonMaps", "fat_fraction", "ip_op_from_water_fat", "process_dixon", "water_fat_from_ip_op"]

log = logging.getLogger(__name__)


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
    arrays = as_float64(a.array), as_float64(b.array)
    for volume, array in zip((a, b), arrays, strict=True):
        if not np.isfinite(array).any():
            raise InputError(f"{volume.name or 'image'}: every voxel is NaN or infinite; check that this is "
                             "the right file (an unmasked export, not an empty map)")
    return arrays


def _axial_axis(volume: Volume) -> int:
    """Voxel axis closest to world z: the axis across axial slices, whatever the array order."""
    matrix = volume.affine[:3, :3]
    return int(np.argmax(np.abs(matrix[2]) / np.linalg.norm(matrix, axis=0)))


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
    config: SwapConfig = SwapConfig(),  # noqa: B008 (frozen dataclass, shared safely)
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
                            slice_axis=_axial_axis(water), floor=floor, config=config)
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
