"""Regional indices from a per-label table: TMV, TVI, P/A ratio, L/R asymmetry, SMI, group sums.

Definitions (seeds 001, 003, 004):

* ``tmv_cm3`` -- thigh muscle volume: the sum of ``volume_ml`` (1 mL = 1 cm³) over the labels
  of tissue ``muscle`` (or of ``QuantifyConfig.tmv_groups`` when set);
* ``tvi_cm3_m2`` = TMV / height²;
* ``pa_ratio`` -- posterior / anterior volume, by default the hamstrings (group ``posterior``)
  over quadriceps + sartorius (group ``anterior``) of the ``thigh`` scheme;
* ``asymmetry_pct_<base>`` = |L - R| / mean(L, R) x 100 of the volumes of each bilateral muscle
  pair present on both sides;
* ``group_<group>_volume_ml`` -- sum of volumes per catalog group;
* ``smi_cm2_m2`` = muscle CSA at the chosen slice / height² (L3-style SMI), ``smi_g_m2`` =
  muscle mass / height² (seed 003), ``smi_cm3_m2`` = muscle volume / height² (seed 004).

Missing inputs give NaN, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from myoscan.errors import InputError
from myoscan.quantify.config import QuantifyConfig

__all__ = ["HEIGHT_RANGE_M", "regional_indices"]

#: Plausible adult heights in metres; outside this a height in cm or mm was probably passed.
HEIGHT_RANGE_M = (0.5, 2.6)
_SUBJECT_COLUMNS = ("subject", "session")


def _sum_or_nan(values: pd.Series) -> float:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.sum()) if len(values) else float("nan")


def _ratio(numerator: float, denominator: float) -> float:
    if not np.isfinite(numerator) or not np.isfinite(denominator) or denominator == 0:
        return float("nan")
    return numerator / denominator


def _check_height(height_m: float | None, subject: str) -> float:
    if height_m is None or pd.isna(height_m):
        return float("nan")
    height = float(height_m)
    if not HEIGHT_RANGE_M[0] <= height <= HEIGHT_RANGE_M[1]:
        low, high = HEIGHT_RANGE_M
        raise InputError(f"height {height:g} m{subject} is outside {low}-{high} m; give the height in "
                         "metres (e.g. 1.72)")
    return height


def _bases(table: pd.DataFrame) -> pd.Series:
    """Structure name without side: the ``base`` column, else ``name`` minus ``_left``/``_right``."""
    if "base" in table:
        return table["base"].astype("string")
    return table["name"].astype("string").str.replace(r"_(left|right)$", "", regex=True)


def _indices_of_one(table: pd.DataFrame, height_m: float, config: QuantifyConfig) -> dict[str, float]:
    muscle = table["tissue"] == "muscle"
    groups = table["group"].astype("string")
    tmv_rows = muscle if config.tmv_groups is None else muscle & groups.isin(config.tmv_groups)
    tmv = _sum_or_nan(table.loc[tmv_rows, "volume_ml"])
    posterior = _sum_or_nan(table.loc[muscle & groups.isin(config.pa_posterior_groups), "volume_ml"])
    anterior = _sum_or_nan(table.loc[muscle & groups.isin(config.pa_anterior_groups), "volume_ml"])
    h2 = height_m**2
    row: dict[str, float] = {
        "height_m": height_m,
        "tmv_cm3": tmv,
        "tvi_cm3_m2": tmv / h2,
        "pa_ratio": _ratio(posterior, anterior),
        "smi_cm3_m2": _sum_or_nan(table.loc[muscle, "volume_ml"]) / h2,
        "smi_g_m2": _sum_or_nan(table.loc[muscle, "mass_g"]) / h2 if "mass_g" in table else np.nan,
        "smi_cm2_m2": (_sum_or_nan(table.loc[muscle, "csa_cm2_at_slice"]) / h2
                       if "csa_cm2_at_slice" in table else np.nan),
    }
    bases = _bases(table)
    sided = table["side"].isin(["left", "right"]) & muscle
    for base, part in table[sided].groupby(bases[sided], sort=True):
        volumes = part.groupby("side")["volume_ml"].sum(min_count=1)
        if len(volumes) == 2:
            left, right = float(volumes["left"]), float(volumes["right"])
            row[f"asymmetry_pct_{base}"] = _ratio(abs(left - right) * 100.0, (left + right) / 2.0)
    for group, volumes in table.groupby(groups, dropna=True)["volume_ml"]:
        row[f"group_{group}_volume_ml"] = _sum_or_nan(volumes)
    return row


def regional_indices(
    table: pd.DataFrame,
    *,
    height_m: float | Mapping[str, float] | None = None,
    config: QuantifyConfig | None = None,
) -> pd.DataFrame:
    """Regional indices, one row per subject (wide), from a per-label table.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`myoscan.quantify.quantify` (columns ``name``, ``side``, ``group``,
        ``tissue``, ``volume_ml``, optionally ``mass_g`` and ``csa_cm2_at_slice``), or several
        stacked with a ``subject`` (and ``session``) column.
    height_m : float or mapping of str to float, optional
        Body height in metres; a mapping gives one per subject. Without it the
        height-normalised indices are NaN.
    config : QuantifyConfig, optional
        ``tmv_groups``, ``pa_posterior_groups``, ``pa_anterior_groups``.

    Returns
    -------
    pandas.DataFrame
        ``[subject, session,] height_m, tmv_cm3, tvi_cm3_m2, pa_ratio, smi_cm3_m2, smi_g_m2,
        smi_cm2_m2, asymmetry_pct_<base>..., group_<group>_volume_ml...``.

    Raises
    ------
    InputError
        Missing columns, or a height outside 0.5-2.6 m.

    Examples
    --------
    >>> t = pd.DataFrame({"name": ["quad_left", "quad_right", "ham_left"], "side": ["left", "right", "left"],
    ...                   "group": ["anterior", "anterior", "posterior"], "tissue": "muscle",
    ...                   "volume_ml": [1000.0, 900.0, 760.0]})
    >>> r = regional_indices(t, height_m=2.0).round(3)
    >>> r[["tmv_cm3", "tvi_cm3_m2", "pa_ratio", "asymmetry_pct_quad"]].values.tolist()
    [[2660.0, 665.0, 0.4, 10.526]]
    """
    missing = [c for c in ("name", "side", "group", "tissue", "volume_ml") if c not in table]
    if missing:
        raise InputError(f"per-label table lacks column(s) {', '.join(missing)}; "
                         "pass the output of myoscan quantify")
    config = config if config is not None else QuantifyConfig()
    keys = [c for c in _SUBJECT_COLUMNS if c in table]
    parts = table.groupby(keys, sort=True, dropna=False) if keys else [((), table)]
    rows = []
    for key, part in parts:
        key = key if isinstance(key, tuple) else (key,)
        ident = dict(zip(keys, key, strict=True))
        subject = str(ident.get("subject", ""))
        height = height_m.get(subject) if isinstance(height_m, Mapping) else height_m
        where = f" for {subject}" if subject else ""
        rows.append({**ident, **_indices_of_one(part, _check_height(height, where), config)})
    return pd.DataFrame(rows)
