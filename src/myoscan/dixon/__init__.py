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

from myoscan.dixon.cues import MAX_MARROW_AREA_MM2 as MAX_MARROW_AREA_MM2
from myoscan.dixon.maps import (
    DixonMaps,
    fat_fraction,
    ip_op_from_water_fat,
    process_dixon,
    water_fat_from_ip_op,
)
from myoscan.dixon.signal import (
    DEFAULT_MAX_FLOOR_FRACTION,
    DEFAULT_MIN_FLOOR_FRACTION,
    DEFAULT_MIN_SNR,
    combine_in_opp,
    estimate_noise_level,
    fat_fraction_pct,
    is_signed_opposed_phase,
    noise_floor,
    split_water_fat,
)
from myoscan.dixon.swap import SwapConfig, SwapResult, detect_swaps, fix_swaps

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
