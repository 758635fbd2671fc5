"""Simulated cohorts with known effects, for trying ``myoscan cohort`` and for testing it.

:func:`simulate_cohort` draws participants (age, sex, height, BMI, grip, ALMI, gait
speed, plantarflexion force, falls) and the tables ``myoscan quantify`` would produce: a
long per-label table (volume and IMF of three calf muscles per side) and a wide
regional-indices table (TMV, TVI, P/A ratio). The true effects are the fields of
:class:`SimulationConfig`, so every analysis can be checked against them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["SimulatedCohort", "SimulationConfig", "simulate_cohort"]

#: Mean volume (mL, female, BMI 25, age 60) and IMF offset (%) of the simulated calf muscles.
_MUSCLES = {
    "tibialis_anterior": (180.0, 0.0),
    "soleus": (380.0, 1.0),
    "gastrocnemius": (300.0, 2.5),
}


@dataclass(frozen=True)
class SimulationConfig:
    """True effects of a simulated cohort.

    Attributes
    ----------
    age_range_years : tuple of 2 float
        Ages are uniform in this range.
    imf_pct_per_year, imf_pct_per_bmi, imf_pct_male : float
        IMF (%) = muscle offset + 6 + these x (age - 60), (BMI - 25), male, + N(0, imf_noise_pct).
    imf_noise_pct : float
        Residual SD of IMF.
    volume_fraction_per_bmi, volume_fraction_per_year, volume_male_factor : float
        Volume = base x (1 + a (BMI - 25) + b (age - 60)) x (factor if male) x (1 + N(0, 0.08)).
    force_n_per_ml : float
        Plantarflexion force (N) per mL of same-side soleus volume.
    tmv_cm3_per_decade : dict
        Change of thigh muscle volume per decade of age, by sex.
    fall_odds_ratio : float
        Odds ratio of a fall in the past year, high vs low P/A-ratio tertile.
    """

    age_range_years: tuple[float, float] = (40.0, 85.0)
    imf_pct_per_year: float = 0.08
    imf_pct_per_bmi: float = 0.15
    imf_pct_male: float = -1.0
    imf_noise_pct: float = 1.5
    volume_fraction_per_bmi: float = 0.02
    volume_fraction_per_year: float = -0.004
    volume_male_factor: float = 1.3
    force_n_per_ml: float = 1.2
    tmv_cm3_per_decade: dict[str, float] = field(default_factory=lambda: {"male": -600.0, "female": -350.0})
    fall_odds_ratio: float = 2.0


@dataclass(frozen=True)
class SimulatedCohort:
    """Tables of a simulated cohort: ``participants`` (BIDS), ``metrics`` (long), ``regional`` (wide)."""

    participants: pd.DataFrame
    metrics: pd.DataFrame
    regional: pd.DataFrame


def simulate_cohort(
    n_subjects: int = 300,
    *,
    seed: int | np.random.Generator = 0,
    config: SimulationConfig = SimulationConfig(),
) -> SimulatedCohort:
    """Draw a cohort whose true effects are those of ``config``.

    Parameters
    ----------
    n_subjects : int
        Number of participants.
    seed : int or numpy.random.Generator
        Randomness; the same seed gives the same tables.
    config : SimulationConfig
        True effects.

    Returns
    -------
    SimulatedCohort

    Examples
    --------
    >>> cohort = simulate_cohort(10, seed=1)
    >>> cohort.metrics.shape[0], sorted(cohort.metrics["name"].unique())[:2]
    (60, ['gastrocnemius_left', 'gastrocnemius_right'])
    """
    rng = np.random.default_rng(seed)
    n = int(n_subjects)
    ids = [f"sub-{i:04d}" for i in range(1, n + 1)]
    male = rng.random(n) < 0.5
    age = rng.uniform(*config.age_range_years, n)
    height_m = np.where(male, rng.normal(1.76, 0.07, n), rng.normal(1.63, 0.06, n))
    bmi = np.clip(rng.normal(26.5, 4.0, n), 17.0, 45.0)
    rows, soleus = [], {}
    for label_id, (muscle, (base_ml, imf_offset)) in enumerate(_MUSCLES.items(), start=1):
        for side_index, side in enumerate(("left", "right")):
            scale = (
                1 + config.volume_fraction_per_bmi * (bmi - 25) + config.volume_fraction_per_year * (age - 60)
            )
            volume = (
                base_ml
                * scale
                * np.where(male, config.volume_male_factor, 1.0)
                * (1 + rng.normal(0, 0.08, n))
            )
            imf = (
                6.0 + imf_offset + config.imf_pct_per_year * (age - 60) + config.imf_pct_per_bmi * (bmi - 25)
                + config.imf_pct_male * male + rng.normal(0, config.imf_noise_pct, n)
            )  # fmt: skip
            if muscle == "soleus":
                soleus[side] = volume
            rows.append(pd.DataFrame({
                "subject": ids, "label_id": 2 * label_id - 1 + side_index, "name": f"{muscle}_{side}",
                "side": side, "volume_ml": volume, "imf_pct": np.clip(imf, 0.5, None),
            }))  # fmt: skip
    metrics = pd.concat(rows, ignore_index=True).sort_values(["subject", "label_id"], ignore_index=True)

    slope = np.where(male, config.tmv_cm3_per_decade["male"], config.tmv_cm3_per_decade["female"]) / 10
    tmv = np.where(male, 11500.0, 8000.0) + slope * (age - 60) + 120 * (bmi - 25) + rng.normal(0, 700, n)
    pa_ratio = rng.normal(0.45, 0.05, n)
    high = pa_ratio > np.quantile(pa_ratio, 2 / 3)
    fall_logit = -1.2 + np.log(config.fall_odds_ratio) * high + 0.03 * (age - 60)
    fall = rng.random(n) < 1 / (1 + np.exp(-fall_logit))
    regional = pd.DataFrame(
        {"subject": ids, "tmv_cm3": tmv, "tvi_cm3_m2": tmv / height_m**2, "pa_ratio": pa_ratio}
    )

    grip = np.clip(np.where(male, 40.0, 25.0) - 0.35 * (age - 60) + rng.normal(0, 6, n), 3.0, None)
    almi = np.where(male, 7.9, 6.3) - 0.02 * (age - 60) + 0.08 * (bmi - 26.5) + rng.normal(0, 0.7, n)
    gait = np.clip(rng.normal(1.2, 0.25, n) - 0.008 * (age - 60), 0.2, None)
    force = {
        side: 200 + config.force_n_per_ml * soleus[side] - 2 * (age - 60) + rng.normal(0, 120, n)
        for side in ("left", "right")
    }
    participants = pd.DataFrame({
        "participant_id": ids, "age": np.round(age, 1), "sex": np.where(male, "M", "F"),
        "height_m": np.round(height_m, 3), "bmi": np.round(bmi, 2), "grip_kg": np.round(grip, 1),
        "almi_kg_m2": np.round(almi, 2), "gait_speed_m_s": np.round(gait, 2),
        "plantarflexion_force_left_n": force["left"], "plantarflexion_force_right_n": force["right"],
        "fall": fall.astype(int),
    })  # fmt: skip
    return SimulatedCohort(participants=participants, metrics=metrics, regional=regional)
