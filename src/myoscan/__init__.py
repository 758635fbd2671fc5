"""myoscan: automated skeletal-muscle analysis of MRI and CT.

The package is organised one module per concern (see ``docs/developing.md``):
``io`` reads and writes images, ``labels`` holds the muscle catalog,
``quantify`` measures, ``dixon``/``stitch`` prepare MRI, ``phantom`` makes
synthetic scans, ``segment``/``train`` run networks, ``evaluate`` and ``stats``
compute accuracy and cohort statistics, ``pipeline``/``report`` scale out and
report. Importing ``myoscan`` itself is cheap: no torch, no MONAI.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from myoscan.errors import GeometryMismatchError, InputError, MyoscanError

try:
    __version__ = version("myoscan")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["GeometryMismatchError", "InputError", "MyoscanError", "__version__"]
