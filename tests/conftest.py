"""Shared fixtures: paths of the real reference data and small synthetic volumes."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DATA = PROJECT_ROOT.parent / "shared" / "reference-data"
TOTALSEG = REFERENCE_DATA / "totalsegmentator"


@pytest.fixture(scope="session")
def totalseg_dir() -> Path:
    """Folder of the TotalSegmentator reference data (tests are skipped if it is absent)."""
    if not TOTALSEG.is_dir():
        pytest.skip(f"reference data not found at {TOTALSEG}")
    return TOTALSEG
