"""Fat metrics from Dixon fat + water images and from fat-fraction maps.

Three definitions are kept apart by their column names:

* ``imf_pct`` -- seeds 000/002: mean(F) / (mean(F) + mean(W)) x 100 over the *eroded* mask
  (``imf_uneroded_pct``: the same over the whole mask). A ratio of means.
* ``voxelwise_ff_mean_pct`` -- MuscleMap's ``mm_extract_metrics -m dixon``: the mean over the
  (uneroded) mask of the voxel-wise F / (F + W) x 100, a voxel with F + W = 0 counting as 0 %
  as in MuscleMap. A mean of ratios; differs from ``imf_uneroded_pct`` when the signal varies.
* ``ff_mean_pct``, ``ff_median_pct``, ``ff_mean_below50_pct`` -- from a fat-fraction map; the
  last is the AMRA muscle fat infiltration: the mean FF of the voxels with FF < 50 %.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from myoscan.errors import InputError
from myoscan.quantify.core import Channel, safe_ratio

__all__ = [
    "FF_UNIT_SCALE_TO_PCT",
    "dixon_channels",
    "dixon_columns",
    "fat_fraction_channels",
    "fat_fraction_columns",
    "fat_fraction_scale",
    "voxelwise_fat_fraction",
]

#: Factor from a fat-fraction unit to percent.
FF_UNIT_SCALE_TO_PCT = {"fraction": 100.0, "percent": 1.0, "permille": 0.1}
#: ``auto`` unit: upper bound of the 99.9th percentile of the map's values for each unit. A map
#: nearly always holds fat (subcutaneous, marrow) near 100 %, so its top values reveal the unit.
_AUTO_UNIT_LIMITS = (("fraction", 1.5), ("percent", 150.0), ("permille", 1500.0))


def voxelwise_fat_fraction(fat: np.ndarray, water: np.ndarray) -> np.ndarray:
    """F / (F + W) per voxel as float32, 0 where F + W = 0 (MuscleMap's convention).

    Parameters
    ----------
    fat, water : ndarray
        Fat and water signal, same shape; any numeric dtype (never truncated).

    Returns
    -------
    ndarray of float32
        Fat fraction in [0, 1] for non-negative inputs.

    Examples
    --------
    >>> voxelwise_fat_fraction(np.array([1, 0, 3]), np.array([3, 0, 1])).tolist()
    [0.25, 0.0, 0.75]
    """
    f = np.asarray(fat, dtype=np.float32)
    total = f + np.asarray(water, dtype=np.float32)
    with np.errstate(invalid="ignore"):  # Inf / Inf: NaN/Inf voxels are reported by the caller
        return np.divide(f, total, out=np.zeros_like(total), where=total != 0)


def dixon_channels() -> dict[str, Channel]:
    """Channels summed per label for Dixon metrics: fat, water and voxel-wise fraction.

    Examples
    --------
    >>> sorted(dixon_channels())
    ['fat', 'ff_voxel', 'water']
    """
    return {
        "fat": lambda b: b["fat"],
        "water": lambda b: b["water"],
        "ff_voxel": lambda b: voxelwise_fat_fraction(b["fat"], b["water"]),
    }


def dixon_columns(whole: Mapping[str, np.ndarray], eroded: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Dixon metric columns from channel sums (per label, or per label and slice).

    Parameters
    ----------
    whole, eroded : mapping of str to ndarray
        Sums ``n``, ``fat``, ``water``, ``ff_voxel`` over the uneroded and the eroded masks.

    Returns
    -------
    dict of str to ndarray
        ``imf_pct``, ``imf_uneroded_pct``, ``n_voxels_eroded``, ``voxelwise_ff_mean_pct``;
        NaN where a mask is empty or has no signal.

    Examples
    --------
    >>> s = {"n": np.array([4.0]), "fat": np.array([10.0]), "water": np.array([30.0]),
    ...      "ff_voxel": np.array([1.2])}
    >>> e = {"n": np.array([1.0]), "fat": np.array([1.0]), "water": np.array([9.0])}
    >>> {k: v.tolist() for k, v in dixon_columns(s, e).items()}  # doctest: +NORMALIZE_WHITESPACE
    {'imf_pct': [10.0], 'imf_uneroded_pct': [25.0], 'n_voxels_eroded': [1],
     'voxelwise_ff_mean_pct': [30.0]}
    """
    return {
        "imf_pct": safe_ratio(eroded["fat"], eroded["fat"] + eroded["water"], 100.0),
        "imf_uneroded_pct": safe_ratio(whole["fat"], whole["fat"] + whole["water"], 100.0),
        "n_voxels_eroded": np.rint(eroded["n"]).astype(np.int64),
        "voxelwise_ff_mean_pct": safe_ratio(whole["ff_voxel"], whole["n"], 100.0),
    }


def fat_fraction_scale(sample: np.ndarray, unit: str, *, name: str = "<array>") -> float:
    """Factor turning fat-fraction map values into percent.

    Parameters
    ----------
    sample : ndarray
        FF values of the map (a subsample of the whole image is enough; non-finite values are
        ignored), used when ``unit='auto'``.
    unit : {'auto', 'fraction', 'percent', 'permille'}
        Unit of the map.
    name : str
        File name for messages.

    Returns
    -------
    float

    Raises
    ------
    InputError
        If ``auto`` cannot tell the unit.

    Examples
    --------
    >>> fat_fraction_scale(np.array([0.02, 0.1, 0.95]), "auto")
    100.0
    >>> fat_fraction_scale(np.array([4.0, 12.0, 96.0]), "auto")
    1.0
    """
    if unit != "auto":
        return FF_UNIT_SCALE_TO_PCT[unit]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 1.0
    high = float(np.percentile(sample, 99.9))
    for found, limit in _AUTO_UNIT_LIMITS:
        if high <= limit:
            return FF_UNIT_SCALE_TO_PCT[found]
    raise InputError(
        f"{name}: cannot tell the fat-fraction unit (99.9th percentile of the map is {high:g}); "
        "pass --ff-unit fraction|percent|permille"
    )


def fat_fraction_channels(scale_to_pct: float, below_pct: float) -> dict[str, Channel]:
    """Channels for fat-fraction maps: FF in %, and FF and count of voxels below ``below_pct``.

    Voxels without a fat fraction (NaN: below the noise floor of :mod:`myoscan.dixon`) count
    in ``n_ff_invalid`` and are left out of every FF metric.

    Examples
    --------
    >>> ch = fat_fraction_channels(100.0, 50.0)
    >>> ch["ff_below"]({"ff": np.array([0.2, 0.7, np.nan])}).tolist()
    [20.0, 0.0, 0.0]
    """
    def percent(blocks: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(blocks["ff"], dtype=np.float64) * scale_to_pct

    def valid(blocks: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.where(np.isnan(blocks["ff"]), 0.0, percent(blocks))

    def below(blocks: Mapping[str, np.ndarray]) -> np.ndarray:
        values = percent(blocks)
        return np.where(values < below_pct, values, 0.0)  # NaN < x is False

    return {
        "ff": valid,
        "n_ff_invalid": lambda b: np.isnan(b["ff"]).astype(np.float64),
        "ff_below": below,
        "n_ff_below": lambda b: (percent(b) < below_pct).astype(np.float64),
    }


def fat_fraction_columns(sums: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``ff_mean_pct`` and ``ff_mean_below50_pct`` from fat-fraction channel sums.

    Examples
    --------
    >>> s = {"n": np.array([2.0]), "ff": np.array([90.0]), "ff_below": np.array([20.0]),
    ...      "n_ff_below": np.array([1.0])}
    >>> {k: v.tolist() for k, v in fat_fraction_columns(s).items()}
    {'ff_mean_pct': [45.0], 'ff_mean_below50_pct': [20.0]}
    """
    return {
        "ff_mean_pct": safe_ratio(sums["ff"], sums["n"] - sums.get("n_ff_invalid", 0.0)),
        "ff_mean_below50_pct": safe_ratio(sums["ff_below"], sums["n_ff_below"]),
    }
