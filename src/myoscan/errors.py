"""Exception hierarchy: every error myoscan raises on purpose derives from MyoscanError.

The CLI turns a ``MyoscanError`` into one line on stderr and exit code 2, so the
message must say what is wrong, where (file names), and what to do.
"""

from __future__ import annotations

__all__ = [
    "GeometryMismatchError",
    "InputError",
    "IrregularSpacingWarning",
    "ModelError",
    "MyoscanError",
]


class MyoscanError(Exception):
    """Base class of all errors raised deliberately by myoscan."""


class InputError(MyoscanError, ValueError):
    """A user input (file, table, argument) is missing, unreadable or invalid."""


class GeometryMismatchError(InputError):
    """Two images that must share one voxel grid do not."""


class ModelError(MyoscanError, ValueError):
    """A model bundle or model folder is incomplete, inconsistent or unknown."""


class IrregularSpacingWarning(UserWarning):
    """Slices of a series are not evenly spaced; a single-affine volume places them approximately."""
