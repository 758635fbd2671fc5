"""Dixon algebra on arrays: W/F <-> IP/OP, the noise-floor rule, fat fraction, signed-OP test.

W = (IP + OP) / 2, F = (IP - OP) / 2 and back (seed 002); FF = F / (F + W) x 100, NaN where
W + F lies below the noise floor. See :mod:`myoscan.dixon` for the overview.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from myoscan.errors import InputError

__all__ = [
    "DEFAULT_MAX_FLOOR_FRACTION",
    "DEFAULT_MIN_FLOOR_FRACTION",
    "DEFAULT_MIN_SNR",
    "as_float64",
    "combine_in_opp",
    "estimate_noise_level",
    "fat_fraction_pct",
    "is_signed_opposed_phase",
    "noise_floor",
    "split_water_fat",
]

#: Total signal must exceed this multiple of the background noise level (the modal
#: signal of background air) for a fat fraction to be reported.
DEFAULT_MIN_SNR = 5.0
#: The noise floor is at least this fraction of the 99th percentile of W + F ...
DEFAULT_MIN_FLOOR_FRACTION = 0.02
#: ... and at most this fraction, so dark tissue (muscle on T1-weighted Dixon is 30-50 %
#: of fat) is never cut by a poor background estimate.
DEFAULT_MAX_FLOOR_FRACTION = 0.15


def as_float64(array: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``array`` as a float64 ndarray (no copy when it already is one)."""
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
    ip, op = as_float64(in_phase), as_float64(opposed_phase)
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
    w, f = as_float64(water), as_float64(fat)
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
    values = as_float64(signal).ravel()
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
    values = as_float64(total_signal)
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
    w, f = as_float64(water), as_float64(fat)
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
    ip, op = as_float64(in_phase), as_float64(opposed_phase)
    signal = ip > 0.1 * float(np.percentile(ip, 99.0))
    if not signal.any():
        return False
    negative = op[signal] < -0.1 * ip[signal]
    return bool(negative.mean() > 0.01)
