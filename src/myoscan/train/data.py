"""Training data: find image/label pairs, check them, load them as MONAI dictionaries.

Three layouts are recognised (:func:`find_dataset`):

``bids``
    ``sub-<id>[/ses-<id>]/anat/sub-<id>[_ses-<id>]_..._<contrast>.nii.gz`` with label maps
    ``*_dseg.nii.gz`` for the same subject/session anywhere under ``derivatives/`` — the
    layout MuscleMap recommends; ``derivatives/labels/`` is preferred when several exist.
``datalist``
    A MONAI (Decathlon-style) JSON file: ``{"training": [{"image": ..., "label": ...}],
    "validation": [...]}``; ``image`` is a path or a list (one per contrast, in config
    order) and paths are relative to the JSON file.
``folder``
    ``imagesTr/<case>_<0000>.nii.gz`` + ``labelsTr/<case>.nii.gz`` (nnU-Net; channel
    ``_0000`` is the first contrast), ``images/`` + ``labels/``, or one folder holding
    ``<case>_<contrast>.nii.gz`` (or ``<case>.nii.gz``) with ``<case>_dseg.nii.gz``
    (also ``_label``, ``_labels``, ``_seg``, ``_mask``).

Every case must have every contrast and a label map on the same voxel grid
(:func:`check_dataset`, header-only for NIfTI). :func:`prepare_case` reads a case with
:func:`myoscan.io.read_volume` and the segmentation engine's own preprocessing
(:func:`myoscan.segment.preprocess.prepare_image`), so training sees exactly what
``myoscan segment`` feeds the network, and maps label ids onto the output channels.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from monai.transforms import Transform

from myoscan._typing import PathLike
from myoscan.bids import parse_bids_name
from myoscan.errors import InputError
from myoscan.io import Volume, check_same_grid, image_suffix, read_volume, require_3d

__all__ = [
    "Case",
    "Dataset",
    "PrepareCased",
    "PreparedCase",
    "case_dicts",
    "channel_lookup",
    "check_dataset",
    "find_dataset",
    "prepare_case",
]

log = logging.getLogger(__name__)

_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".seg.nrrd")
_LABEL_TAGS = ("dseg", "label", "labels", "seg", "mask")
_NNUNET_CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


@dataclass(frozen=True)
class Case:
    """One training example: input images (one per contrast, config order) and a label map."""

    name: str
    images: tuple[Path, ...]
    label: Path


@dataclass(frozen=True)
class Dataset:
    """The cases of a dataset and, when the data defines one, its own validation list."""

    root: Path
    layout: Literal["bids", "datalist", "folder", "mixed"]
    cases: tuple[Case, ...]
    validation: tuple[Case, ...] = ()
    sources: tuple[Path, ...] = ()

    @property
    def all_cases(self) -> tuple[Case, ...]:
        """Training and validation cases together."""
        return self.cases + self.validation


def _stem(path: Path) -> str:
    return path.name[: len(path.name) - len(image_suffix(path))]


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and image_suffix(p) in _IMAGE_SUFFIXES)


def _missing_error(root: Path, what: str, names: Sequence[str], hint: str) -> InputError:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return InputError(f"{root}: {what} for {shown}; {hint}")


# --------------------------------------------------------------------------- layouts


def _bids_label(candidates: list[Path], root: Path, key: str) -> Path | None:
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    preferred = [p for p in candidates if "labels" in p.relative_to(root / "derivatives").parts[:1]]
    if len(preferred) == 1:
        return preferred[0]
    names = ", ".join(str(p.relative_to(root)) for p in candidates)
    raise InputError(
        f"{root}: {key} has several label maps ({names}); keep one under derivatives/labels/ "
        "or list the pairs in a datalist JSON"
    )


def _find_bids(root: Path, contrasts: Sequence[str]) -> Dataset:
    images: dict[str, dict[str, Path]] = {}
    labels: dict[str, list[Path]] = {}
    for path in sorted(root.glob("sub-*/**/*.nii*")) + sorted(root.glob("derivatives/**/sub-*/**/*.nii*")):
        parsed = parse_bids_name(path.name, lenient=True)  # MuscleMap: sub-01_water_dseg
        if parsed is None:
            continue
        entities, suffix = parsed
        key = f"sub-{entities['sub']}" + (f"_ses-{entities['ses']}" if "ses" in entities else "")
        in_derivatives = "derivatives" in path.relative_to(root).parts
        if in_derivatives and suffix == "dseg":
            labels.setdefault(key, []).append(path)
        elif not in_derivatives and (suffix in contrasts or entities.get("part") in contrasts):
            contrast = suffix if suffix in contrasts else entities["part"]
            if contrast in images.setdefault(key, {}):
                raise InputError(
                    f"{root}: {key} has several {contrast!r} images ({images[key][contrast].name}, "
                    f"{path.name}); keep one per subject/session or use a datalist JSON"
                )
            images[key][contrast] = path
    # Derivatives hold other segmentations too (phantom tissue maps, model outputs): once the
    # dataset has derivatives/labels/, only it counts, so a subject without a label map there
    # is an error rather than silently trained on another pipeline's dseg.
    pipelines = {key: [p for p in found if p.relative_to(root / "derivatives").parts[0] == "labels"]
                 for key, found in labels.items()}
    if any(pipelines.values()):
        labels = pipelines
    if not images:
        raise InputError(
            f"{root}: no BIDS images with contrast {', '.join(contrasts)} found (expected "
            "sub-*/[ses-*/]anat/sub-*_<contrast>.nii.gz)"
        )
    cases = []
    for key in sorted(images):
        missing = [c for c in contrasts if c not in images[key]]
        if missing:
            raise InputError(f"{root}: {key} has no {', '.join(missing)} image; every case needs "
                             f"all input contrasts ({', '.join(contrasts)})")
        label = _bids_label(labels.get(key, []), root, key)
        if label is None:
            where = "derivatives/labels/" if labels is pipelines else "derivatives/"
            raise _missing_error(root, f"no label map (*_dseg.nii.gz under {where})", [key],
                                 "add the label maps or remove the subjects without labels")
        cases.append(Case(key, tuple(images[key][c] for c in contrasts), label))
    return Dataset(root, "bids", tuple(cases))


def _read_datalist(path: Path, contrasts: Sequence[str]) -> Dataset:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read datalist JSON ({exc})") from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("training"), list):
        raise InputError(f"{path}: a datalist needs a 'training' list of {{'image': ..., 'label': ...}}")

    def case(entry: Any, index: int, section: str) -> Case:
        where = f"{path.name} {section}[{index}]"
        if not isinstance(entry, Mapping) or "label" not in entry:
            raise InputError(
                f"{where}: expected an object with 'image' (or one key per contrast) and 'label'"
            )
        if "image" in entry:
            raw = entry["image"] if isinstance(entry["image"], list) else [entry["image"]]
        else:
            raw = [entry.get(c) for c in contrasts]
        if len(raw) != len(contrasts) or any(not isinstance(r, str) for r in raw):
            raise InputError(f"{where}: expected {len(contrasts)} image path(s) for contrasts "
                             f"{', '.join(contrasts)}, got {raw!r}")
        resolve = lambda p: (path.parent / p).resolve()  # noqa: E731 - paths relative to the JSON
        images = tuple(resolve(r) for r in raw)
        name = str(entry.get("name") or _stem(images[0]))
        return Case(name, images, resolve(str(entry["label"])))

    training = tuple(case(e, i, "training") for i, e in enumerate(data["training"]))
    validation = tuple(case(e, i, "validation") for i, e in enumerate(data.get("validation") or []))
    return Dataset(path.parent, "datalist", training, validation)


def _split_contrast(stem: str, contrasts: Sequence[str]) -> tuple[str, str] | None:
    for contrast in contrasts:
        if stem.endswith(f"_{contrast}"):
            return stem[: -len(contrast) - 1], contrast
    return None


def _label_stem(stem: str) -> str | None:
    for tag in _LABEL_TAGS:
        if stem.endswith(f"_{tag}"):
            return stem[: -len(tag) - 1]
    return None


def _pair_folder(images_dir: Path, labels_dir: Path | None, contrasts: Sequence[str], root: Path) -> Dataset:
    found: dict[str, dict[str, Path]] = {}
    label_of: dict[str, Path] = {}
    nnunet = images_dir.name == "imagesTr"
    for path in _images_in(images_dir):
        stem = _stem(path)
        if labels_dir is None and (base := _label_stem(stem)) is not None:
            label_of[base] = path
            continue
        if nnunet and (m := _NNUNET_CHANNEL.match(stem)) and int(m["channel"]) < len(contrasts):
            found.setdefault(m["case"], {})[contrasts[int(m["channel"])]] = path
        elif (split := _split_contrast(stem, contrasts)) is not None:
            found.setdefault(split[0], {})[split[1]] = path
        elif len(contrasts) == 1:
            found.setdefault(stem, {})[contrasts[0]] = path
    if labels_dir is not None:
        for path in _images_in(labels_dir):
            stem = _stem(path)
            label_of[_label_stem(stem) or stem] = path
    if not found:
        raise InputError(
            f"{root}: no images found for contrast(s) {', '.join(contrasts)} (expected "
            "<case>_<contrast>.nii.gz, <case>.nii.gz for one contrast, or nnU-Net imagesTr/labelsTr)"
        )
    incomplete = sorted(k for k, v in found.items() if len(v) != len(contrasts))
    if incomplete:
        raise _missing_error(root, f"missing contrast image(s) of {', '.join(contrasts)}", incomplete,
                             "every case needs all input contrasts")
    unlabelled = sorted(k for k in found if k not in label_of)
    if unlabelled:
        raise _missing_error(root, "no label map", unlabelled,
                             "add <case>_dseg.nii.gz (or labels/<case>.nii.gz) for each image")
    cases = tuple(Case(k, tuple(found[k][c] for c in contrasts), label_of[k]) for k in sorted(found))
    return Dataset(root, "folder", cases)


def find_dataset(
    data: PathLike | Sequence[PathLike],
    contrasts: Sequence[str],
    *,
    validation: PathLike | Sequence[PathLike] | None = None,
) -> Dataset:
    """Find the training cases of BIDS datasets, datalist JSONs or folders of pairs.

    Parameters
    ----------
    data : str, os.PathLike or sequence of them
        Dataset folder(s) or datalist ``.json`` file(s); several are pooled, their case
        names prefixed with the folder name (``train-a/sub-001``).
    contrasts : sequence of str
        Input contrasts in network channel order (``'water'``, ``'inphase'``, ``'ct'`` ...).
    validation : path or sequence of paths, optional
        Data used only for validation (replaces a datalist's own validation list).

    Returns
    -------
    Dataset

    Raises
    ------
    InputError
        Missing path, no images, a case without a label map or without one of the contrasts.
    """
    if isinstance(data, (str, os.PathLike)):
        found = _find_one(Path(data), contrasts)
    else:
        found = _pool([_find_one(Path(d), contrasts) for d in data])
    if validation is None:
        return found
    held = find_dataset(validation, contrasts)
    names = {c.name for c in found.cases}
    cases = tuple(Case(f"validation/{c.name}" if c.name in names else c.name, c.images, c.label)
                  for c in held.all_cases)
    return replace(found, validation=cases)


def _pool(datasets: Sequence[Dataset]) -> Dataset:
    if not datasets:
        raise InputError("no training data given")
    if len(datasets) == 1:
        return datasets[0]
    def named(d: Dataset, cases: tuple[Case, ...]) -> list[Case]:
        return [Case(f"{d.root.name}/{c.name}", c.images, c.label) for c in cases]

    layouts = {d.layout for d in datasets}
    return Dataset(datasets[0].root, layouts.pop() if len(layouts) == 1 else "mixed",
                   tuple(c for d in datasets for c in named(d, d.cases)),
                   tuple(c for d in datasets for c in named(d, d.validation)),
                   sources=tuple(d.root for d in datasets))


def _find_one(root: Path, contrasts: Sequence[str]) -> Dataset:
    if not root.exists():
        raise InputError(f"{root}: no such dataset folder or datalist file")
    if root.is_file():
        if root.suffix.lower() != ".json":
            raise InputError(f"{root}: expected a dataset folder or a datalist .json file")
        return _read_datalist(root, contrasts)
    if any(root.glob("sub-*")):
        return _find_bids(root, contrasts)
    for images, labels in (("imagesTr", "labelsTr"), ("images", "labels")):
        if (root / images).is_dir():
            if not (root / labels).is_dir():
                raise InputError(f"{root}: has {images}/ but no {labels}/ folder with the label maps")
            return _pair_folder(root / images, root / labels, contrasts, root)
    return _pair_folder(root, None, contrasts, root)


# --------------------------------------------------------------------------- checking


def _grid(path: Path) -> Volume:
    """Read the voxel grid of an image, from the NIfTI header alone when possible."""
    if image_suffix(path) in (".nii", ".nii.gz"):
        import nibabel as nib

        try:
            header = nib.load(str(path))
        except Exception as exc:  # nibabel raises many types on corrupt files
            raise InputError(f"{path.name}: cannot read NIfTI header ({exc})") from exc
        shape = tuple(int(s) for s in header.shape[:3])
        if len(header.shape) < 3:
            raise InputError(f"{path.name}: expected a 3D image, got shape {header.shape}")
        return Volume(np.broadcast_to(np.uint8(0), shape), header.affine, path)
    return read_volume(path)


def check_dataset(dataset: Dataset) -> None:
    """Check that every file exists and every case's images and label share one grid.

    Raises
    ------
    InputError
        A missing file.
    GeometryMismatchError
        An image and its label map (or two contrasts) on different voxel grids.
    """
    for case in dataset.all_cases:
        for path in (*case.images, case.label):
            if not path.is_file():
                raise InputError(f"{path}: listed for case {case.name} but not found")
        label = _grid(case.label)
        for image in case.images:
            check_same_grid(_grid(image), label)


# --------------------------------------------------------------------------- loading


def channel_lookup(structures: Sequence[str], scheme: str, source_scheme: str | None = None) -> np.ndarray:
    """Lookup table from label ids of ``source_scheme`` to output channels 1..N.

    Ids of structures the network does not predict map to 0 (background).

    Examples
    --------
    >>> channel_lookup(["soleus_left", "soleus_right"], "leg")[[0, 7, 8, 9]].tolist()
    [0, 1, 2, 0]
    """
    from myoscan.labels import load_catalog

    catalog = load_catalog()
    source = catalog.scheme(source_scheme or scheme)
    lut = np.zeros(max(source.ids, default=0) + 1, dtype=np.int64)
    for channel, name in enumerate(structures, start=1):
        structure = catalog.resolve(name)
        source_id = structure.id_in(source.name)
        if source_id is None:
            raise InputError(f"{name} has no id in label scheme {source.name!r}; set labels.source_scheme "
                             "to the scheme of the dataset's label maps")
        lut[source_id] = channel
    return lut


@dataclass(frozen=True)
class PreparedCase:
    """A case on the network grid, plus its reference labels on the input grid.

    Attributes
    ----------
    name : str
        Case name.
    image : myoscan.segment.preprocess.PreparedImage
        Network input (reoriented, resampled, normalised, cropped) and its geometry.
    label_grid : (X, Y, Z) ndarray of uint8
        Output-channel indices on the network grid (training target).
    label_input : (I, J, K) ndarray of uint8
        Output-channel indices on the input grid (what validation compares against).
    spacing_mm : tuple of 3 float
        Input voxel size.
    """

    name: str
    image: Any
    label_grid: np.ndarray
    label_input: np.ndarray
    spacing_mm: tuple[float, float, float]


def _label_channels(label: Volume, lookup: np.ndarray) -> np.ndarray:
    ids = np.asarray(label.array)
    if ids.dtype.kind == "f" and not np.all(np.mod(ids, 1) == 0):
        raise InputError(f"{label.name}: label map holds non-integer values; expected label ids")
    ids = ids.astype(np.int64)
    if ids.size and ids.min() < 0:
        raise InputError(f"{label.name}: label map holds negative values; expected label ids >= 0")
    unknown = np.unique(ids[ids >= len(lookup)])
    if unknown.size:
        warnings.warn(f"{label.name}: label ids {unknown.tolist()} are not in the label scheme; "
                      "they are treated as background", stacklevel=3)
        ids = np.where(ids >= len(lookup), 0, ids)
    return lookup[ids].astype(np.uint8)


def prepare_case(case: Case, settings: Any, lookup: np.ndarray) -> PreparedCase:
    """Read a case and preprocess it exactly as ``myoscan segment`` will preprocess images.

    Parameters
    ----------
    case : Case
        Files of the case.
    settings : myoscan.segment.ModelConfig
        Parsed bundle config (preprocessing and modality).
    lookup : ndarray of int
        :func:`channel_lookup` table.

    Raises
    ------
    InputError, GeometryMismatchError
        Unreadable files, images and label map on different grids.
    """
    from myoscan.segment.preprocess import prepare_image, prepare_labels

    volumes = [require_3d(read_volume(p)) for p in case.images]
    label = require_3d(read_volume(case.label))
    for volume in volumes:
        check_same_grid(volume, label)
    prepared = prepare_image(volumes, settings.preprocessing, modality=settings.modality)
    channels = _label_channels(label, lookup)
    grid = prepare_labels(label.with_array(channels), prepared, settings.preprocessing)
    return PreparedCase(case.name, prepared, grid, channels, label.spacing_mm)


class PrepareCased(Transform):
    """Dict transform for MONAI datasets: ``{'name', 'images', 'label'}`` -> network-grid arrays.

    Returns ``{'name', 'image': (C, X, Y, Z) float32, 'label': (1, X, Y, Z) uint8}``, padded
    to at least ``min_size`` along X, Y (and Z for 3D sampling) so every crop fits. A MONAI
    ``Transform`` (deterministic), so ``CacheDataset`` caches its output.
    """

    def __init__(self, settings: Any, lookup: np.ndarray, min_size: Sequence[int]) -> None:
        self.settings = settings
        self.lookup = np.asarray(lookup)
        self.min_size = tuple(int(s) for s in min_size)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Read, preprocess and pad one case."""
        case = Case(str(data["name"]), tuple(Path(p) for p in data["images"]), Path(data["label"]))
        prepared = prepare_case(case, self.settings, self.lookup)
        image, label = prepared.image.array, prepared.label_grid[None]
        pad = [(0, 0)] + [
            ((need - have) // 2, need - have - (need - have) // 2) if need > have else (0, 0)
            for have, need in zip(image.shape[1:], self.min_size + (0,) * (3 - len(self.min_size)),
                                  strict=True)
        ]
        return {"name": case.name, "image": np.pad(image, pad), "label": np.pad(label, pad)}


def case_dicts(cases: Sequence[Case]) -> list[dict[str, Any]]:
    """Plain dicts for MONAI datasets (``name``, ``images``, ``label``)."""
    return [{"name": c.name, "images": list(c.images), "label": c.label} for c in cases]
