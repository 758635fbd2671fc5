"""Ground truth of a phantom: per-label volumes, IMF / HU and the regional indices.

Everything is computed from the label map that is written and from the noise-free images,
so it is exact by construction: a volume is the voxel count times the voxel volume, an IMF
is the fat fraction built into the muscle (its eroded-mask value, see
:mod:`myoscan.phantom.composition`). Column names follow the metric-table contract of
``docs/developing.md`` so truth and ``myoscan quantify`` output can be compared directly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from myoscan.labels import Scheme

__all__ = ["CT_ADIPOSE_HU", "CT_MUSCLE_HU", "DEFINITIONS", "MUSCLE_DENSITY_G_ML", "label_rows",
           "regional_indices"]

#: Muscle density used to turn volume into mass (seed 003: 1.06 g/mL).
MUSCLE_DENSITY_G_ML = 1.06
#: Lean muscle and adipose HU ranges, inclusive (seed 003; the usual IMAT window).
CT_MUSCLE_HU = (-29.0, 150.0)
CT_ADIPOSE_HU = (-190.0, -30.0)

#: What each truth value means (written into truth.json).
DEFINITIONS: dict[str, str] = {
    "n_voxels": "voxels carrying the label in the written label map",
    "volume_ml": "n_voxels x voxel volume (product of the spacing, mm^3) / 1000",
    "imf_pct": (
        "true intramuscular fat of the muscle tissue = fat fraction built into its voxels; "
        "equals 100 x mean(F) / (mean(F) + mean(W)) over the label's eroded mask (one binary "
        "erosion, structure given by config.erosion; 'cube' = 3x3x3 as in seed 000) on the "
        "noise-free, bias-free, swap-free fat and water images (exact up to float32 rounding). "
        "Only border voxels removed by that erosion carry partial volume and fascial lines."
    ),
    "imf_uneroded_pct": "100 x mean(F) / (mean(F) + mean(W)) over the whole label, noise-free images",
    "n_voxels_eroded": "voxels of the label's eroded mask (config.erosion)",
    "voxelwise_ff_mean_pct": "mean over the label's voxels of 100 F / (F + W), noise-free images",
    "mean_hu": "mean CT number over the label's voxels of the noise-free CT (int16 HU, as written)",
    "lean_muscle_pct": "percent of the label's voxels within -29..150 HU (seed 003), noise-free CT",
    "imat_volume_ml": "volume of the label's voxels within -190..-30 HU, noise-free CT",
    "muscle_fat_pct": "fat fraction built into the muscle tissue (CT phantoms; lowers its HU)",
    "mass_g": "volume_ml x 1.06 g/mL (seed 003)",
    "tmv_cm3": "total muscle volume: sum of volume_ml over all muscle labels (1 mL = 1 cm^3)",
    "tvi_cm3_m2": "tmv_cm3 / height_m^2 (seed 001)",
    "pa_ratio": ("sum of volume_ml of group 'posterior' / group 'anterior' (seed 001); "
                 "NaN if either is absent"),
    "asymmetry_pct_<base>": "|left - right| / mean(left, right) x 100 of each bilateral muscle",
    "group_<group>_volume_ml": "sum of volume_ml over the labels of a catalog group (both sides)",
    "smi_g_m2": "muscle mass (sum of mass_g) / height_m^2 (seed 003 height-adjusted mass)",
    "smi_cm3_m2": "muscle volume / height_m^2 (seed 004)",
    "vertebral_levels_z_mm": ("world z (RAS, mm) of the lowest and highest slice centre of each "
                              "vertebral level in the scan (cervical, abdomen)"),
}


def _none_if_nan(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def label_rows(
    labels: np.ndarray,
    scheme: Scheme,
    voxel_ml: float,
    *,
    eroded: np.ndarray,
    imf_pct: np.ndarray | None = None,
    water: np.ndarray | None = None,
    fat: np.ndarray | None = None,
    ct: np.ndarray | None = None,
    muscle_fat_pct: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """One truth row per label present in ``labels`` (one pass over the volume per quantity).

    Parameters
    ----------
    labels, eroded : ndarray of int
        Label map and its eroded version (same layout).
    scheme : Scheme
        Catalog scheme of the ids.
    voxel_ml : float
        Volume of one voxel in mL.
    imf_pct : ndarray of float, optional
        Built IMF per label id (Dixon).
    water, fat : ndarray of float, optional
        Noise-free Dixon images (Dixon truth).
    ct : ndarray, optional
        Noise-free CT image (CT truth).
    muscle_fat_pct : ndarray of float, optional
        Built muscle fat fraction per label id (CT).

    Returns
    -------
    list of dict
        Rows with the metric-table columns; absent values are None (JSON null).
    """
    inside = np.flatnonzero(labels.ravel())      # only labelled voxels matter
    flat = labels.ravel()[inside]
    n = int(flat.max()) + 1 if flat.size else 1
    counts = np.bincount(flat, minlength=n)
    eroded_counts = np.bincount(eroded.ravel(), minlength=n)[:n]
    sums: dict[str, np.ndarray] = {}
    if water is not None and fat is not None:
        w64 = water.ravel()[inside].astype(np.float64)
        f64 = fat.ravel()[inside].astype(np.float64)
        sums["w"] = np.bincount(flat, weights=w64, minlength=n)
        sums["f"] = np.bincount(flat, weights=f64, minlength=n)
        total = w64 + f64
        ratio = np.divide(f64, total, out=np.zeros_like(total), where=total > 0)
        sums["ff"] = np.bincount(flat, weights=ratio, minlength=n)
    if ct is not None:
        hu = ct.ravel()[inside]
        sums["hu"] = np.bincount(flat, weights=hu.astype(np.float64), minlength=n)
        lean = (hu >= CT_MUSCLE_HU[0]) & (hu <= CT_MUSCLE_HU[1])
        sums["lean"] = np.bincount(flat[lean], minlength=n)[:n]
        adipose = (hu >= CT_ADIPOSE_HU[0]) & (hu <= CT_ADIPOSE_HU[1])
        sums["adipose"] = np.bincount(flat[adipose], minlength=n)[:n]
    rows = []
    for label_id, structure in scheme.labels.items():
        if label_id >= n or counts[label_id] == 0:
            continue
        count = int(counts[label_id])
        is_muscle = structure.tissue == "muscle"
        row: dict[str, Any] = {
            "label_id": label_id, "name": structure.name, "side": structure.side,
            "region": structure.region, "group": structure.group, "tissue": structure.tissue,
            "n_voxels": count, "volume_ml": count * voxel_ml,
            "mass_g": count * voxel_ml * MUSCLE_DENSITY_G_ML if is_muscle else None,
        }
        if "w" in sums:
            w, f = sums["w"][label_id], sums["f"][label_id]
            row["imf_pct"] = _none_if_nan(imf_pct[label_id]) if is_muscle and imf_pct is not None else None
            row["imf_uneroded_pct"] = 100 * f / (w + f) if is_muscle and w + f > 0 else None
            row["n_voxels_eroded"] = int(eroded_counts[label_id])
            row["voxelwise_ff_mean_pct"] = 100 * sums["ff"][label_id] / count if is_muscle else None
        if "hu" in sums:
            row["mean_hu"] = sums["hu"][label_id] / count
            row["lean_muscle_pct"] = 100 * sums["lean"][label_id] / count
            row["imat_volume_ml"] = sums["adipose"][label_id] * voxel_ml
            row["muscle_fat_pct"] = (_none_if_nan(muscle_fat_pct[label_id])
                                     if is_muscle and muscle_fat_pct is not None else None)
        rows.append(row)
    return rows


def regional_indices(rows: list[dict[str, Any]], scheme: Scheme, height_cm: float) -> dict[str, Any]:
    """Compute TMV, TVI, P/A ratio, left/right asymmetry, group volumes and SMI from truth rows.

    Parameters
    ----------
    rows : list of dict
        :func:`label_rows` output.
    scheme : Scheme
        Catalog scheme (for the bilateral pairs).
    height_cm : float
        Body height of the subject.

    Returns
    -------
    dict
        Wide indices; undefined ones are NaN (JSON null).

    Examples
    --------
    >>> from myoscan.labels import load_catalog
    >>> leg = load_catalog().scheme("leg")
    >>> rows = [{"label_id": 7, "name": "soleus_left", "group": "soleus", "tissue": "muscle",
    ...          "volume_ml": 400.0}, {"label_id": 8, "name": "soleus_right", "group": "soleus",
    ...          "tissue": "muscle", "volume_ml": 380.0}]
    >>> out = regional_indices(rows, leg, 170.0)
    >>> out["tmv_cm3"], round(out["asymmetry_pct_soleus"], 3)
    (780.0, 5.128)
    """
    muscle = [r for r in rows if r["tissue"] == "muscle"]
    volume = {r["label_id"]: float(r["volume_ml"]) for r in muscle}
    tmv = float(sum(r["volume_ml"] for r in muscle))
    height_m = height_cm / 100.0
    groups: dict[str, float] = {}
    for r in rows:
        groups[r["group"]] = groups.get(r["group"], 0.0) + float(r["volume_ml"])
    posterior = sum(float(r["volume_ml"]) for r in muscle if r["group"] == "posterior")
    anterior = sum(float(r["volume_ml"]) for r in muscle if r["group"] == "anterior")
    out: dict[str, Any] = {
        "height_m": height_m,
        "tmv_cm3": tmv,
        "tvi_cm3_m2": tmv / height_m**2,
        "pa_ratio": posterior / anterior if posterior > 0 and anterior > 0 else float("nan"),
        "smi_cm3_m2": tmv / height_m**2,
        "smi_g_m2": tmv * MUSCLE_DENSITY_G_ML / height_m**2,
    }
    for base, left_id, right_id in scheme.pairs():
        left, right = volume.get(left_id, 0.0), volume.get(right_id, 0.0)
        if left > 0 and right > 0:
            out[f"asymmetry_pct_{base}"] = abs(left - right) / ((left + right) / 2) * 100
    for group in sorted(groups):
        out[f"group_{group}_volume_ml"] = groups[group]
    return out
