"""The per-case pipeline steps: dixon, stitch, segment, quantify.

Each step takes a :class:`CaseContext`, reads the current images of the case, writes its
outputs atomically into the case's derivatives folder, and updates the context so the
next step uses them. Steps run inside Dask worker processes.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from myoscan.errors import ModelError, MyoscanError
from myoscan.io import Volume, read_volume, write_volume
from myoscan.outputs import write_json, write_table
from myoscan.pipeline import provenance
from myoscan.pipeline.bids import Case, read_participants

if TYPE_CHECKING:
    from myoscan.pipeline.runner import RunConfig

__all__ = ["STEPS", "CaseContext", "StepError", "model_sha256"]

log = logging.getLogger(__name__)


class StepError(MyoscanError):
    """A step cannot run on this case (missing inputs, wrong contrasts ...)."""


@dataclass
class CaseContext:
    """Mutable state of one case while its steps run."""

    case: Case
    dataset: Path
    out_dir: Path
    config: RunConfig
    images: dict[str, Path] = field(default_factory=dict)
    stations: dict[str, tuple[Path, ...]] = field(default_factory=dict)
    segmentation: Path | None = None
    outputs: list[str] = field(default_factory=list)
    model_sha256: str | None = None

    def __post_init__(self) -> None:
        for contrast, paths in self.case.images.items():
            if len(paths) == 1:
                self.images[contrast] = paths[0]
            else:
                self.stations[contrast] = paths
        self.segmentation = self.case.segmentation
        if self.config.model and self.model_sha256 is None:
            self.model_sha256 = model_sha256(self.config.model)

    def input_hashes(self) -> dict[str, str]:
        """SHA-256 of every input file, keyed by its path relative to the dataset.

        Besides the images: an existing segmentation the run uses, and its JSON side-car
        when the label scheme is read from it (no ``--scheme``).
        """
        files = [p for paths in self.case.images.values() for p in paths]
        if self.case.segmentation is not None and "segment" not in self.config.steps:
            files.append(self.case.segmentation)
            sidecar = _sidecar_of(self.case.segmentation)
            if self.config.scheme is None and sidecar.is_file():
                files.append(sidecar)
        return {_relative(p, self.dataset): provenance.file_sha256(p) for p in files}

    def fingerprint_parameters(self) -> dict[str, Any]:
        """Parameters entering the provenance fingerprint.

        The config, the model hash, and the subject's height from participants.tsv when
        the quantify step uses it (for the regional indices).
        """
        parameters = {**self.config.parameters(), "model_sha256": self.model_sha256}
        if "quantify" in self.config.steps:
            parameters["height_m"] = self.height_m()
        return parameters

    def path(self, suffix: str) -> Path:
        """Output path ``<out_dir>/<sub>[_<ses>]_<suffix>``."""
        return self.out_dir / f"{self.case.key}_{suffix}"

    def wrote(self, path: Path) -> Path:
        """Record ``path`` as an output of this case."""
        self.outputs.append(path.name)
        return path

    def require(self, *contrasts: str, step: str) -> list[Volume]:
        """Read the current images of ``contrasts`` or fail with a clear StepError."""
        missing = [c for c in contrasts if c not in self.images]
        if missing:
            have = ", ".join(sorted(self.images)) or "none"
            raise StepError(f"{step}: {self.case.key} has no {', '.join(missing)} image (has {have})")
        return [read_volume(self.images[c]) for c in contrasts]

    def height_m(self) -> float | None:
        """Body height of the subject from participants.tsv (``height_m``, ``height_cm`` or ``height``)."""
        table = _participants_table(self.dataset)
        if table is None:
            return None
        row = table.loc[table["participant_id"] == self.case.subject]
        if row.empty:
            return None
        for column, scale in (("height_m", 1.0), ("height_cm", 0.01), ("height", None)):
            if column in row.columns and np.isfinite(value := float(row[column].iloc[0])):
                return value * (scale if scale is not None else (0.01 if value > 3 else 1.0))
        return None


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return path.name


def _participants_table(dataset: Path):
    """participants.tsv of the dataset, re-read whenever the file changes."""
    try:
        stat = (dataset / "participants.tsv").stat()
    except OSError:
        return None
    return _participants(str(dataset), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _participants(dataset: str, mtime_ns: int, size: int):  # cached per worker process and file version
    return read_participants(dataset)


@functools.lru_cache(maxsize=2)
def _bundle(model: str, sha256: str | None = None):  # loaded once per worker process and model version
    from myoscan.segment import load_bundle, resolve_bundle

    return load_bundle(resolve_bundle(model))


def _is_bundle(model: str) -> bool:
    from myoscan.segment.adapters import parse_model_spec

    return parse_model_spec(model)[0] == "bundle"


def model_sha256(model: str) -> str:
    """Hash of the model: the bundle's own, or over every file of an adapter's model path.

    Computed afresh on every call (a model may be replaced in place between runs; Dask
    workers of an existing cluster outlive a run).

    Raises
    ------
    ModelError
        If the bundle or the adapter's model file or folder does not exist.
    """
    from myoscan.segment.adapters import parse_model_spec

    if _is_bundle(model):
        from myoscan.segment.bundle import bundle_sha256, resolve_bundle

        return bundle_sha256(resolve_bundle(model))
    target = Path(parse_model_spec(model)[1])
    if not target.exists():
        raise ModelError(f"{model}: no such model file or folder {target}; check the --model path")
    files = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(target) if target.is_dir() else file.name}\0".encode())
        digest.update(provenance.file_sha256(file).encode())
    return digest.hexdigest()


#: Which current image fills a single-channel model's input, in order of preference.
_POSITIONAL_PREFERENCE = ("ct", "water", "T1w", "T2w", "inphase", "fatfrac", "fat", "outphase")


# ------------------------------------------------------------------------------ steps


def step_dixon(ctx: CaseContext) -> None:
    """Water, fat and fat fraction from whichever Dixon images exist, with a fat-water swap check.

    Writes the maps that were not inputs and ``_dixon.json`` (noise floor, swap check, notes).
    Swaps are reported, never silently fixed (``myoscan dixon --fix`` does that on request).
    """
    from myoscan import dixon

    present = {
        c: read_volume(ctx.images[c]) for c in ("water", "fat", "inphase", "outphase") if c in ctx.images
    }
    if not ({"water", "fat"} <= present.keys() or {"inphase", "outphase"} <= present.keys()):
        have = ", ".join(sorted(ctx.images)) or "none"
        raise StepError(f"dixon: {ctx.case.key} needs water + fat or inphase + outphase images (has {have})")
    maps = dixon.process_dixon(
        water=present.get("water"),
        fat=present.get("fat"),
        in_phase=present.get("inphase"),
        opposed_phase=present.get("outphase"),
        check_swaps=True,
        fix=False,
    )
    made = {"water": maps.water, "fat": maps.fat, "fatfrac": maps.fat_fraction}
    for contrast, volume in made.items():
        if contrast not in ctx.images:
            ctx.images[contrast] = ctx.wrote(write_volume(volume, ctx.path(f"{contrast}.nii.gz")))
    ctx.wrote(write_json(maps.report(), ctx.path("dixon.json")))


def step_stitch(ctx: CaseContext) -> None:
    """Fuse multi-station (``chunk-<n>``) images of every contrast onto one shared grid.

    Writes ``_desc-stitched_<contrast>.nii.gz``, the station coverage map and ``_stitch.json``
    (stations kept and dropped, grid, notes).
    """
    from myoscan import stitch

    if not ctx.stations:
        return
    fused = stitch.stitch_contrasts({c: list(paths) for c, paths in ctx.stations.items()})
    for contrast, volume in fused.volumes.items():
        ctx.images[contrast] = ctx.wrote(write_volume(volume, ctx.path(f"desc-stitched_{contrast}.nii.gz")))
    ctx.wrote(write_volume(fused.coverage, ctx.path("desc-stitched_coverage.nii.gz")))
    ctx.wrote(write_json(fused.report(), ctx.path("stitch.json")))
    ctx.stations = {}


def step_segment(ctx: CaseContext) -> None:
    """Segment with the configured model; writes ``_dseg.nii.gz`` and its JSON side-car.

    Bundles run through :func:`myoscan.segment.segment_volumes` (bundle loaded once per
    worker); ``nnunet:``, ``musclemap:`` and ``totalseg:`` specs through
    :func:`myoscan.segment.adapters.run_model`.
    """
    from myoscan.segment import segment_volumes, write_segmentation

    model = ctx.config.model
    if _is_bundle(model):
        bundle = _bundle(model, ctx.model_sha256)
        contrasts = list(bundle.settings.contrasts)
        inputs = dict(zip(contrasts, ctx.require(*contrasts, step="segment"), strict=True))
        result = segment_volumes(inputs, bundle, device=ctx.config.device, show_progress=False)
    else:
        result = _run_adapter(ctx, model)
    label_path, sidecar = write_segmentation(result, ctx.path("dseg.nii.gz"))
    ctx.segmentation = ctx.wrote(label_path)
    ctx.wrote(sidecar)


def _run_adapter(ctx: CaseContext, model: str):
    """Run an nnU-Net / MuscleMap model or import TotalSegmentator output on this case.

    A multi-channel model gets the case's images by contrast name; a single-channel model
    (and a TotalSegmentator import, which needs the grid) gets the image of that contrast,
    else the first present of :data:`_POSITIONAL_PREFERENCE`.
    """
    from myoscan.segment.adapters import RunOptions, load_model, model_contrasts, parse_model_spec, run_model
    from myoscan.segment.config import canonical_contrast

    options = RunOptions(device=ctx.config.device, show_progress=False)
    kind = parse_model_spec(model)[0]
    wanted = (
        []
        if kind == "totalseg"
        else [canonical_contrast(c) for c in model_contrasts(kind, load_model(model)[1])]
    )
    if len(wanted) > 1:
        named = {c: read_volume(ctx.images[c]) for c in ctx.images if canonical_contrast(c) in wanted}
        return run_model(model, None, named, options=options)
    order = [c for c in ctx.images if canonical_contrast(c) in wanted] + list(_POSITIONAL_PREFERENCE)
    positional = next((c for c in order if c in ctx.images), None)
    if positional is None:
        raise StepError(f"segment: {ctx.case.key} has no image for model {model}")
    return run_model(model, read_volume(ctx.images[positional]), {}, options=options)


def step_quantify(ctx: CaseContext) -> None:
    """Per-label metrics (``_metrics.tsv``) and regional indices (``_indices.tsv``)."""
    from myoscan.quantify import QuantifyConfig, quantify, regional_indices

    if ctx.segmentation is None:
        raise StepError(
            f"quantify: {ctx.case.key} has no segmentation; add the segment step "
            "or put *_dseg.nii.gz under the dataset's derivatives/"
        )
    labels = read_volume(ctx.segmentation)
    images = {c: read_volume(p) for c, p in ctx.images.items() if c in ("water", "fat", "fatfrac", "ct")}
    config = QuantifyConfig(erosion_iterations=ctx.config.erode_iterations)
    table = quantify(
        labels,
        water=images.get("water"),
        fat=images.get("fat"),
        fat_fraction=images.get("fatfrac"),
        ct=images.get("ct"),
        scheme=ctx.config.scheme or _scheme_of(ctx.segmentation),
        config=config,
        progress=False,
    )
    ctx.wrote(write_table(table, ctx.path("metrics.tsv")))
    indices = regional_indices(table, height_m=ctx.height_m(), config=config)
    ctx.wrote(write_table(indices, ctx.path("indices.tsv")))


def _sidecar_of(segmentation: Path) -> Path:
    """Return the JSON side-car of a label map: ``x_dseg.nii.gz`` -> ``x_dseg.json``."""
    return segmentation.with_name(segmentation.name.split(".nii")[0] + ".json")


def _scheme_of(segmentation: Path) -> str | None:
    """Label scheme named in a segmentation's JSON side-car, if any."""
    import json

    sidecar = _sidecar_of(segmentation)
    try:
        content = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    return content.get("label_scheme") or content.get("scheme")


#: The steps in the order they run, whatever order the user lists them in.
STEPS: dict[str, Callable[[CaseContext], None]] = {
    "stitch": step_stitch,
    "dixon": step_dixon,
    "segment": step_segment,
    "quantify": step_quantify,
}
