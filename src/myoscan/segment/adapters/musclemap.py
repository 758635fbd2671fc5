"""MuscleMap checkpoints (``<model>.json`` + ``<model>.pth``) run through myoscan's engine.

MuscleMap's ``mm_segment`` (github.com/MuscleMap/MuscleMap, ``scripts/mm_segment.py``)
runs a MONAI 2D ``UNet`` slice by slice; its pre-processing is MONAI ``Orientation("RAS")``
-> ``Spacing(pix_dim, bilinear)`` with ``-1`` keeping an axis (1 mm in-plane) ->
``NormalizeIntensity(nonzero=True)`` (z-score of the non-zero voxels) ->
``CropForeground(margin=20)`` on the normalised image (voxels > 0; the box is clipped to
the image as in MONAI 0.9, which MuscleMap pins -- MONAI >= 1.5 would zero-pad it), then
``SliceInferer(roi_size, gaussian, overlap=0.9)`` on axial slices and ``argmax``.
:func:`musclemap_config` translates the checkpoint's JSON into a myoscan bundle
config that does the same steps, so the network sees what it was trained on.

Label names are always read from the checkpoint's own JSON (``labels`` entries with
``anatomy``, ``side``, ``value``): the same value means different muscles in different
MuscleMap versions. Output channel ``i`` is the ``i``-th smallest value, as MuscleMap's
``id_map`` does, and the written label map keeps MuscleMap's values.

Differences from ``mm_segment`` (documented in docs/segment.md): our resampled grid
keeps the input's field of view (MONAI keeps the first voxel centre), a shift of at
most half an output voxel; probabilities rather than labels are interpolated back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from myoscan._typing import PathLike
from myoscan.errors import InputError, ModelError
from myoscan.segment.bundle import ModelBundle, load_weights_into, read_state_dict
from myoscan.segment.config import parse_config
from myoscan.segment.networks import build_network

__all__ = ["MUSCLEMAP_OVERLAP", "load_musclemap_model", "musclemap_config", "musclemap_files"]

log = logging.getLogger(__name__)

#: ``mm_segment`` default sliding-window overlap (``-s 90``).
MUSCLEMAP_OVERLAP = 0.9
#: ``CropForegroundd(margin=20)`` in ``mm_segment``.
MUSCLEMAP_CROP_MARGIN_VOX = 20


def musclemap_files(path: PathLike) -> tuple[Path, Path]:
    """Find the (JSON, .pth) pair of a MuscleMap model from either file or their folder.

    Raises
    ------
    ModelError
        When the pair cannot be found unambiguously.
    """
    source = Path(path)
    if source.is_dir():
        jsons, weights = sorted(source.glob("*.json")), sorted(source.glob("*.pth"))
        if len(weights) != 1 or len(jsons) != 1:
            raise ModelError(
                f"{source}: expected one MuscleMap .json and one .pth in the folder, found "
                f"{len(jsons)} .json and {len(weights)} .pth; give the .pth file itself"
            )
        return jsons[0], weights[0]
    if source.suffix in (".pth", ".pt", ".json"):
        weights = source if source.suffix != ".json" else source.with_suffix(".pth")
        config = source.with_suffix(".json")
        for file, what in ((config, "configuration (.json)"), (weights, "weights (.pth)")):
            if not file.is_file():
                raise ModelError(f"{file}: MuscleMap model {what} not found beside {source.name}")
        return config, weights
    raise ModelError(f"{source}: not a MuscleMap model; give its .pth, its .json or their folder")


def _structure_name(entry: Mapping[str, Any]) -> str:
    """Catalog name of a MuscleMap label entry, or a snake_case name when the catalog lacks it."""
    from myoscan.labels import load_catalog

    text = f"{entry.get('anatomy', '')} {entry.get('side', '')}".strip()
    try:
        return load_catalog().resolve(text).name
    except InputError:
        fallback = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or f"label_{entry.get('value')}"
        log.info("MuscleMap label %r is not in the catalog; named %r", text, fallback)
        return fallback


def musclemap_config(model_json: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Translate a MuscleMap model JSON into a myoscan bundle config.

    Raises
    ------
    ModelError
        Missing keys, not a 2D model, or labels that do not match the output channels.
    """
    if not isinstance(model_json, Mapping):
        raise ModelError(f"{name}: the MuscleMap model JSON must hold a JSON object, "
                         f"got {type(model_json).__name__}")
    try:
        params, model = model_json["parameters"], model_json["model"]
        entries = model_json["labels"]
        roi = [int(r) for r in params["roi_size"]]
        spatial_dims, n_in = int(model["spatial_dims"]), int(model["in_channels"])
        n_out = int(model["out_channels"])
        arch = {k: model[k] for k in ("channels", "strides", "num_res_units", "act", "norm")}
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{name}: MuscleMap model JSON lacks or mistypes {exc}") from exc
    if spatial_dims != 2 or n_in != 1:
        raise ModelError(f"{name}: only 2D single-channel MuscleMap models are supported "
                         f"(got spatial_dims={spatial_dims}, in_channels={n_in})")
    if not entries:
        raise ModelError(f"{name}: the MuscleMap JSON lists no labels; label names must come from the "
                         "checkpoint's own JSON (use the JSON released with this .pth)")
    try:
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
            raise TypeError("not a list of objects")
        by_value = {int(e["value"]): e for e in entries}
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{name}: MuscleMap model JSON 'labels' must be a list of objects with 'anatomy', "
                         f"'side' and a whole-number 'value' ({type(exc).__name__}: {exc})") from exc
    values = sorted(by_value)
    if len(values) + 1 != n_out:
        raise ModelError(f"{name}: the JSON lists {len(values)} label values but the network has {n_out} "
                         "output channels (background + one per label)")
    raw_pix_dim = params.get("pix_dim", [1, 1, -1])
    try:
        if isinstance(raw_pix_dim, str):
            raise TypeError("text")
        pix_dim = [float(p) for p in raw_pix_dim]
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{name}: MuscleMap model JSON 'parameters.pix_dim' must be a list of 3 numbers "
                         f"(-1 keeps an axis), got {raw_pix_dim!r}") from exc
    return {
        "format_version": 1,
        "name": name,
        "description": f"MuscleMap model {name} (imported)",
        "architecture": {"name": "unet2d", "params": {**arch, "dropout": 0.0}},
        "inputs": {"contrasts": ["image"], "modality": "mri"},
        "preprocessing": {
            "orientation": "RAS",
            "target_spacing_mm": [p if p > 0 else None for p in pix_dim],
            "intensity": {"mode": "zscore"},
            "crop_foreground": True, "crop_source": "normalized",
            "crop_margin_vox": MUSCLEMAP_CROP_MARGIN_VOX,
        },
        "inference": {"mode": "slice2d", "roi_size": roi, "overlap": MUSCLEMAP_OVERLAP, "blend": "gaussian",
                      "sw_batch_size": max(1, int(params.get("spatial_window_batch_size", 1)))},
        "postprocessing": {},
        "labels": {
            "scheme": None,
            "ids": {str(c): _structure_name(by_value[v]) for c, v in enumerate(values, start=1)},
            "values": {str(c): v for c, v in enumerate(values, start=1)},
        },
    }


def load_musclemap_model(path: PathLike) -> ModelBundle:
    """Load a MuscleMap checkpoint as an in-memory :class:`ModelBundle`.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.pth``, its ``.json``, or a folder holding one of each.

    Returns
    -------
    ModelBundle
        ``sha256`` is over the JSON bytes followed by the ``.pth`` bytes.

    Raises
    ------
    ModelError
        Missing files, unsupported model, labels not matching, weights not matching.
    """
    config_path, weights_path = musclemap_files(path)
    try:
        model_json = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{config_path}: not valid JSON ({exc})") from exc
    config = musclemap_config(model_json, weights_path.stem)
    settings = parse_config(config)
    network = build_network(config)
    load_weights_into(network, read_state_dict(weights_path), weights_path.name)
    network.eval()
    digest = hashlib.sha256(config_path.read_bytes())
    digest.update(weights_path.read_bytes())
    card = (f"# {weights_path.stem}\n\nMuscleMap model imported from {weights_path} and {config_path.name}. "
            "See https://github.com/MuscleMap/MuscleMap for its training data and intended use.\n")
    return ModelBundle(weights_path, config, settings, network, digest.hexdigest(), card)
