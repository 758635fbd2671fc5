"""Batch runs over BIDS datasets on Dask, resumable, with provenance."""

from __future__ import annotations

from myoscan.pipeline.bids import CONTRASTS, Case, discover
from myoscan.pipeline.runner import CaseResult, RunConfig, RunSummary, collect_cohort, run_pipeline

__all__ = [
    "CONTRASTS",
    "Case",
    "CaseResult",
    "RunConfig",
    "RunSummary",
    "collect_cohort",
    "discover",
    "run_pipeline",
]
