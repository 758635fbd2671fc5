"""CT attenuation metrics per label: mean/SD/median HU, lean muscle fraction, IMAT volume.

Lean muscle is the part of a mask within ``ct_muscle_hu`` (-29..150 HU, seed 003); adipose
tissue inside a mask (inter-/intramuscular adipose tissue, IMAT) is the part within
``ct_adipose_hu`` (-190..-30 HU). Both ranges are inclusive. HU values are used as stored
(integer or float); sums run in float64.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from myoscan.quantify.core import Channel, safe_ratio

__all__ = ["ct_channels", "ct_columns"]


def _in_range(values: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    return ((values >= bounds[0]) & (values <= bounds[1])).astype(np.float64)


def ct_channels(muscle_hu: tuple[float, float], adipose_hu: tuple[float, float]) -> dict[str, Channel]:
    """Channels summed per label for CT metrics.

    Parameters
    ----------
    muscle_hu, adipose_hu : (float, float)
        Inclusive HU ranges of lean muscle and of adipose tissue.

    Returns
    -------
    dict of str to callable
        ``hu`` (HU), ``hu2`` (HU²), ``n_lean`` and ``n_adipose`` (voxel indicators).

    Examples
    --------
    >>> ch = ct_channels((-29, 150), (-190, -30))
    >>> ch["n_lean"]({"ct": np.array([-100, 0, 200])}).tolist()
    [0.0, 1.0, 0.0]
    """
    return {
        "hu": lambda b: np.asarray(b["ct"], dtype=np.float64),
        "hu2": lambda b: np.square(b["ct"], dtype=np.float64),
        "n_lean": lambda b: _in_range(b["ct"], muscle_hu),
        "n_adipose": lambda b: _in_range(b["ct"], adipose_hu),
    }


def ct_columns(sums: Mapping[str, np.ndarray], voxel_volume_ml: float) -> dict[str, np.ndarray]:
    """CT metric columns from channel sums (per label, or per label and slice).

    Parameters
    ----------
    sums : mapping of str to ndarray
        ``n``, ``hu``, ``hu2``, ``n_lean``, ``n_adipose``.
    voxel_volume_ml : float
        Volume of one voxel in mL.

    Returns
    -------
    dict of str to ndarray
        ``mean_hu``, ``sd_hu`` (population SD, ddof = 0), ``lean_muscle_pct``,
        ``imat_volume_ml``; NaN for empty masks.

    Examples
    --------
    >>> s = {"n": np.array([2.0]), "hu": np.array([40.0]), "hu2": np.array([1000.0]),
    ...      "n_lean": np.array([2.0]), "n_adipose": np.array([0.0])}
    >>> {k: v.tolist() for k, v in ct_columns(s, 0.001).items()}
    {'mean_hu': [20.0], 'sd_hu': [10.0], 'lean_muscle_pct': [100.0], 'imat_volume_ml': [0.0]}
    """
    n = np.asarray(sums["n"], dtype=float)
    mean = safe_ratio(sums["hu"], n)
    variance = safe_ratio(sums["hu2"], n) - mean**2
    return {
        "mean_hu": mean,
        "sd_hu": np.sqrt(np.maximum(variance, 0.0)),
        "lean_muscle_pct": safe_ratio(sums["n_lean"], n, 100.0),
        "imat_volume_ml": np.where(n > 0, np.asarray(sums["n_adipose"]) * voxel_volume_ml, np.nan),
    }
