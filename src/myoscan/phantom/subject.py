"""Simulated participants: demographics and the body factors that shape their anatomy.

Demographics follow the seeds: heights by sex from the UK Biobank thigh study (seed 001:
176.0 cm men, 162.7 cm women), BMI around 25-27 kg/m2 (seeds 000/001). Muscle volume grows
with BMI and is larger in men (seed 000 Table 2; seed 001: men 40-50 % more thigh muscle);
IMF rises with age and BMI and is higher in women (seed 000 Table 2, seed 002).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["HEIGHT_CM", "Subject", "sample_subject"]

Sex = Literal["female", "male"]

#: Mean and SD of body height by sex (cm), seed 001 Table 1 means; SDs typical of adults.
HEIGHT_CM: dict[str, tuple[float, float]] = {"male": (176.0, 7.0), "female": (162.7, 6.5)}
#: Height of the reference subject every region's anatomy is drawn for (cm).
REFERENCE_HEIGHT_CM = 170.0
#: Muscle volume of men / women relative to the reference subject at equal height.
SEX_MUSCLE_FACTOR: dict[str, float] = {"male": 1.10, "female": 0.90}
#: Subcutaneous fat thickness of men / women relative to the reference at BMI 25.
SEX_FAT_FACTOR: dict[str, float] = {"male": 0.8, "female": 1.3}


@dataclass(frozen=True)
class Subject:
    """One simulated participant.

    Attributes
    ----------
    sex : {'female', 'male'}
    age_years, height_cm, weight_kg, bmi_kg_m2 : float
        Demographics written to ``participants.tsv``.
    frame_scale : float
        Linear size of the skeleton relative to the reference subject (height / 170 cm).
    muscle_factor : float
        Muscle cross-section area relative to the reference subject at the same frame size.
    fat_factor : float
        Subcutaneous fat thickness relative to the reference subject.
    imf_factor : float
        Multiplies the reference IMF of every muscle (``imf='normal'``).
    """

    sex: Sex
    age_years: float
    height_cm: float
    weight_kg: float
    bmi_kg_m2: float
    frame_scale: float
    muscle_factor: float
    fat_factor: float
    imf_factor: float

    def as_dict(self) -> dict[str, float | str]:
        """Plain dict with rounded values (JSON, participants.tsv)."""
        return {
            "sex": self.sex,
            "age_years": round(self.age_years, 1),
            "height_cm": round(self.height_cm, 1),
            "weight_kg": round(self.weight_kg, 1),
            "bmi_kg_m2": round(self.bmi_kg_m2, 2),
            "frame_scale": round(self.frame_scale, 4),
            "muscle_factor": round(self.muscle_factor, 4),
            "fat_factor": round(self.fat_factor, 4),
            "imf_factor": round(self.imf_factor, 4),
        }


def sample_subject(
    rng: np.random.Generator,
    *,
    age_decline_per_year: float = 0.0,
    sex: Sex | None = None,
    age_years: float | None = None,
    height_cm: float | None = None,
    bmi_kg_m2: float | None = None,
) -> Subject:
    """Draw a participant; any demographic given is kept as is.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (the same state gives the same subject).
    age_decline_per_year : float
        Fractional muscle loss per year after 40 in the region (e.g. 0.0055 for the thigh,
        seed 001: about 21 % over four decades; 0 for the leg, seed 000).
    sex, age_years, height_cm, bmi_kg_m2 : optional
        Fixed values instead of random draws.

    Returns
    -------
    Subject

    Examples
    --------
    >>> s = sample_subject(np.random.default_rng(1), sex="male", bmi_kg_m2=25.0)
    >>> s.sex, s.bmi_kg_m2
    ('male', 25.0)
    """
    draws = rng.standard_normal(8)
    chosen_sex: Sex = sex or ("male" if rng.random() < 0.5 else "female")
    age = float(age_years if age_years is not None else 20.0 + 60.0 * rng.random())
    mean_h, sd_h = HEIGHT_CM[chosen_sex]
    height = float(height_cm if height_cm is not None else np.clip(mean_h + sd_h * draws[0], 145, 205))
    bmi = float(bmi_kg_m2 if bmi_kg_m2 is not None
                else np.clip(np.exp(np.log(25.5) + 0.15 * draws[1]), 17.0, 45.0))
    weight = bmi * (height / 100.0) ** 2
    decline = max(0.0, 1.0 - age_decline_per_year * max(age - 40.0, 0.0))
    muscle = (SEX_MUSCLE_FACTOR[chosen_sex] * (1.0 + 0.015 * (bmi - 25.0)) * decline
              * np.exp(0.07 * draws[2]))
    fat = SEX_FAT_FACTOR[chosen_sex] * (bmi / 25.0) ** 1.6 * np.exp(0.12 * draws[3])
    imf = ((1.0 + 0.012 * (age - 40.0)) * (1.0 + 0.025 * (bmi - 25.0))
           * (1.12 if chosen_sex == "female" else 1.0) * np.exp(0.12 * draws[4]))
    return Subject(
        sex=chosen_sex,
        age_years=age,
        height_cm=height,
        weight_kg=float(weight),
        bmi_kg_m2=bmi,
        frame_scale=height / REFERENCE_HEIGHT_CM,
        muscle_factor=float(np.clip(muscle, 0.5, 1.8)),
        fat_factor=float(np.clip(fat, 0.25, 4.0)),
        imf_factor=float(np.clip(imf, 0.4, 3.0)),
    )
