"""Digital muscle phantoms: synthetic Dixon MRI and CT scans with exact ground truth.

>>> from myoscan.phantom import PhantomConfig, make_phantom
>>> ph = make_phantom("leg", "dixon", seed=3, config=PhantomConfig(spacing_mm=(2.84, 2.84, 10.0)))
>>> ph.truth["labels"][0]["name"]
'leg_anterior_compartment_left'

See ``docs/phantom.md`` for the anatomy, the signal model and the truth definitions.
"""

from __future__ import annotations

from myoscan.phantom.anatomy import REGIONS
from myoscan.phantom.core import (
    DEFAULT_CT_NOISE_HU,
    DEFAULT_DIXON_NOISE,
    DIXON_IMAGES,
    MODALITIES,
    Phantom,
    PhantomConfig,
    make_phantom,
)
from myoscan.phantom.materials import TISSUES
from myoscan.phantom.subject import Subject
from myoscan.phantom.writers import save_overlay, write_dataset, write_phantom

__all__ = [
    "DEFAULT_CT_NOISE_HU",
    "DEFAULT_DIXON_NOISE",
    "DIXON_IMAGES",
    "MODALITIES",
    "REGIONS",
    "TISSUES",
    "Phantom",
    "PhantomConfig",
    "Subject",
    "make_phantom",
    "save_overlay",
    "write_dataset",
    "write_phantom",
]
