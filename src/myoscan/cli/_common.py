"""Argument helpers shared by the sub-command modules (argparse ``type=`` validators)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--quiet`` and ``--verbose`` to a sub-command parser."""
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug messages")


def existing_path(text: str) -> Path:
    """Argparse type: a file or directory that exists."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or directory")
    return path


def positive_int(text: str) -> int:
    """Argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """Argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """Argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def comma_list(text: str) -> list[str]:
    """Argparse type: ``a,b,c`` -> ``['a', 'b', 'c']`` (blank items dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def float_triple(text: str) -> tuple[float, float, float]:
    """Argparse type: ``1.5,1.5,2`` -> ``(1.5, 1.5, 2.0)``, all > 0."""
    parts = comma_list(text.replace("x", ","))
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three numbers like 1.5,1.5,2, got {text!r}") from None
    if len(values) != 3 or not all(v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected three numbers > 0 like 1.5,1.5,2, got {text!r}")
    return values  # type: ignore[return-value]
