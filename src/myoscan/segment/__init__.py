"""Segmentation: model bundles, MONAI networks, preprocessing, inference, adapters.

The model-bundle format is specified in docs/model-bundle.md; usage in docs/segment.md.

>>> from myoscan.segment import load_bundle, save_bundle, build_network  # doctest: +SKIP
"""

from __future__ import annotations

from myoscan.segment.bundle import (
    BundleSummary,
    ModelBundle,
    bundle_sha256,
    find_bundles,
    load_bundle,
    read_state_dict,
    resolve_bundle,
    save_bundle,
)
from myoscan.segment.config import ModelConfig, parse_config
from myoscan.segment.networks import ARCHITECTURES, build_network, network_from_config
from myoscan.segment.predict import Segmentation, segment_volumes, write_segmentation

__all__ = [
    "ARCHITECTURES",
    "BundleSummary",
    "ModelBundle",
    "ModelConfig",
    "Segmentation",
    "build_network",
    "bundle_sha256",
    "find_bundles",
    "load_bundle",
    "network_from_config",
    "parse_config",
    "read_state_dict",
    "resolve_bundle",
    "save_bundle",
    "segment_volumes",
    "write_segmentation",
]
