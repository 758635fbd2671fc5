"""Materials of the phantom: Dixon water/fat signal, CT number and the coarse tissue class.

Signals are in arbitrary units with muscle water + fat = 1000 (a typical 12-bit range).
CT numbers are in HU. Muscle itself is not a fixed material: its fat fraction comes from
the per-muscle IMF (see :mod:`myoscan.phantom.composition`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

__all__ = [
    "CT_FAT_HU",
    "MATERIALS",
    "MUSCLE_SIGNAL",
    "TISSUES",
    "Material",
    "code_of",
    "lookup",
]

#: Total Dixon signal (water + fat) of muscle tissue, arbitrary units.
MUSCLE_SIGNAL = 1000.0
#: CT number of adipose tissue (HU); fat infiltration lowers muscle HU towards it.
CT_FAT_HU = -100.0

#: Coarse tissue classes written to the tissue map (code -> name).
TISSUES: MappingProxyType[int, str] = MappingProxyType({
    0: "background",
    1: "skin",
    2: "subcutaneous_fat",
    3: "muscle",
    4: "imat",
    5: "cortical_bone",
    6: "bone_marrow",
    7: "visceral_fat",
    8: "organ",
    9: "fluid",
    10: "internal_air",
})


@dataclass(frozen=True)
class Material:
    """One material: code in the material map, tissue class, Dixon signals and CT number."""

    name: str
    tissue: int
    water: float
    fat: float
    hu: float


#: All materials; the position in the tuple is the material code.
MATERIALS: tuple[Material, ...] = (
    Material("air", 0, 0.0, 0.0, -1000.0),
    Material("skin", 1, 620.0, 120.0, 40.0),
    Material("subcutaneous_fat", 2, 60.0, 940.0, -105.0),
    Material("muscle", 3, 950.0, 50.0, 45.0),        # replaced voxel-wise by the IMF model
    Material("imat", 4, 80.0, 900.0, -95.0),
    Material("cortical_bone", 5, 25.0, 20.0, 1250.0),
    Material("yellow_marrow", 6, 100.0, 860.0, -40.0),
    Material("red_marrow", 6, 420.0, 330.0, 210.0),
    Material("visceral_fat", 7, 70.0, 920.0, -100.0),
    Material("organ", 8, 720.0, 50.0, 45.0),
    Material("liver", 8, 760.0, 60.0, 58.0),
    Material("kidney", 8, 820.0, 30.0, 32.0),
    Material("bowel", 8, 640.0, 90.0, 25.0),
    Material("vessel", 8, 420.0, 10.0, 42.0),
    Material("nerve", 8, 560.0, 120.0, 30.0),
    Material("cord", 8, 700.0, 20.0, 35.0),
    Material("gland", 8, 780.0, 40.0, 70.0),
    Material("tendon", 8, 45.0, 15.0, 95.0),
    Material("cartilage", 8, 480.0, 40.0, 110.0),
    Material("csf", 9, 300.0, 0.0, 8.0),
    Material("urine", 9, 260.0, 0.0, 6.0),
    Material("internal_air", 10, 0.0, 0.0, -950.0),
    Material("bowel_mix", 8, 640.0, 90.0, 25.0),     # resolved into bowel / fat / gas
)

_CODES = {m.name: i for i, m in enumerate(MATERIALS)}


def code_of(name: str) -> int:
    """Material code of ``name``.

    Examples
    --------
    >>> code_of("muscle")
    3
    """
    try:
        return _CODES[name]
    except KeyError:
        raise ValueError(f"unknown phantom material {name!r}; known: {', '.join(_CODES)}") from None


def lookup(attribute: str) -> np.ndarray:
    """Per-code table of a material attribute (``water``, ``fat``, ``hu`` or ``tissue``).

    Examples
    --------
    >>> float(lookup("hu")[code_of("subcutaneous_fat")])
    -105.0
    """
    dtype = np.uint8 if attribute == "tissue" else np.float32
    return np.array([getattr(m, attribute) for m in MATERIALS], dtype=dtype)
