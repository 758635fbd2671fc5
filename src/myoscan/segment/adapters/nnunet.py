"""nnU-Net v2 trained-model folders predicted through the ``nnunetv2`` package.

A trained-model folder (``nnUNet_results/DatasetXXX/Trainer__Plans__Configuration``)
holds ``dataset.json``, ``plans.json`` and ``fold_X/checkpoint_final.pth``. The
network, pre-processing (resampling, normalisation), sliding window, mirroring and
export back to the input shape are nnU-Net's own, so results match ``nnUNetv2_predict``.

Two things differ from ``nnUNetPredictor.initialize_from_trained_model_folder``:

- checkpoints are read with ``torch.load(weights_only=True)``
  (:func:`~myoscan.segment.bundle.load_torch_checkpoint`), never as arbitrary pickles;
  ``postprocessing.pkl`` files are not read at all;
- the image comes from :func:`myoscan.io.read_volume` and is handed to nnU-Net in the
  axis order of the image reader the model was planned with (SimpleITK: (z, y, x)).

nnU-Net itself holds the full-resolution logits of the whole image in memory; for very
large volumes a myoscan bundle (chunked inference) needs far less RAM.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from myoscan._typing import PathLike
from myoscan.errors import InputError, ModelError
from myoscan.io import Volume
from myoscan.segment.bundle import load_torch_checkpoint
from myoscan.segment.predict import Segmentation

__all__ = ["NnUNetModel", "find_nnunet_folder", "load_nnunet_model", "segment_nnunet"]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint_final.pth"
_FOLD = re.compile(r"^fold_(\d+|all)$")


@dataclass(frozen=True, eq=False)
class NnUNetModel:
    """An nnU-Net v2 trained model with its fold weights loaded as plain tensors."""

    folder: Path
    dataset_json: dict[str, Any]
    plans: dict[str, Any]
    configuration: str
    trainer_name: str
    folds: tuple[str, ...]
    parameters: list[dict[str, Any]]
    mirroring_axes: tuple[int, ...] | None
    sha256: str

    @property
    def name(self) -> str:
        """``Dataset/Trainer__Plans__Configuration``."""
        return f"{self.folder.parent.name}/{self.folder.name}"

    @property
    def channel_names(self) -> list[str]:
        """Input channel names in channel order (``dataset.json`` ``channel_names``)."""
        channels = self.dataset_json.get("channel_names") or self.dataset_json.get("modality") or {}
        return [str(channels[k]) for k in sorted(channels, key=int)]

    @property
    def labels(self) -> dict[int, str]:
        """Label value written by nnU-Net -> structure name (catalog name where known)."""
        from myoscan.labels import load_catalog

        raw = self.dataset_json.get("labels", {})
        order = self.dataset_json.get("regions_class_order")
        foreground = [(name, value) for name, value in raw.items() if value not in (0, [0], "0")]
        catalog = load_catalog()
        names: dict[int, str] = {}
        for index, (name, value) in enumerate(foreground):
            label = int(order[index]) if order else int(value)
            try:
                names[label] = catalog.resolve(name).name
            except InputError:
                names[label] = name
        return dict(sorted(names.items()))


def find_nnunet_folder(path: PathLike) -> Path:
    """Find the trained-model folder at ``path`` or its single ``Trainer__Plans__Config`` child.

    Raises
    ------
    ModelError
        No folder with ``dataset.json`` and ``plans.json`` found.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ModelError(f"{folder}: nnU-Net model folder not found")
    if (folder / "plans.json").is_file() or (folder / "dataset.json").is_file():
        candidates = [folder]
    else:
        candidates = [p for p in sorted(folder.iterdir()) if p.is_dir() and (p / "plans.json").is_file()]
        if len(candidates) > 1:
            listing = ", ".join(p.name for p in candidates)
            raise ModelError(f"{folder}: holds several nnU-Net models ({listing}); give one of them")
        if not candidates:
            raise ModelError(f"{folder}: not an nnU-Net trained-model folder (no plans.json / dataset.json)")
    for name in ("dataset.json", "plans.json"):
        if not (candidates[0] / name).is_file():
            raise ModelError(f"{candidates[0]}: nnU-Net model folder is missing {name}")
    return candidates[0]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from exc


def load_nnunet_model(
    path: PathLike, *, folds: Sequence[int | str] | None = None, checkpoint_name: str = CHECKPOINT_NAME,
) -> NnUNetModel:
    """Read an nnU-Net v2 trained-model folder.

    Parameters
    ----------
    path : str or os.PathLike
        The trained-model folder (or a dataset folder holding exactly one).
    folds : sequence of int or 'all', optional
        Folds to ensemble; by default every ``fold_X`` holding the checkpoint.
    checkpoint_name : str
        ``checkpoint_final.pth`` or ``checkpoint_best.pth``.

    Raises
    ------
    ModelError
        Missing files or folds, unreadable or unsafe checkpoints, unsupported configurations.
    """
    folder = find_nnunet_folder(path)
    dataset_json, plans = _read_json(folder / "dataset.json"), _read_json(folder / "plans.json")
    for key, value in (("channel_names", dataset_json.get("channel_names") or dataset_json.get("modality")),
                       ("labels", dataset_json.get("labels"))):
        if not isinstance(value, Mapping) or not value:
            raise ModelError(f"{folder / 'dataset.json'}: no {key!r} mapping; not an nnU-Net v2 dataset.json")
    if folds is None:
        found = [p.name[5:] for p in sorted(folder.iterdir())
                 if p.is_dir() and _FOLD.match(p.name) and (p / checkpoint_name).is_file()]
        if not found:
            raise ModelError(f"{folder}: no fold_X/{checkpoint_name} found")
    else:
        found = [str(f) for f in folds]
    digest = hashlib.sha256((folder / "plans.json").read_bytes() + (folder / "dataset.json").read_bytes())
    parameters, trainer, configuration, mirroring = [], None, None, None
    for fold in found:
        file = folder / f"fold_{fold}" / checkpoint_name
        if not file.is_file():
            raise ModelError(f"{folder}: fold_{fold}/{checkpoint_name} is missing")
        checkpoint = load_torch_checkpoint(file)
        try:
            weights = checkpoint["network_weights"]
            if trainer is None:
                trainer = str(checkpoint["trainer_name"])
                configuration = str(checkpoint["init_args"]["configuration"])
                axes = checkpoint.get("inference_allowed_mirroring_axes")
                mirroring = tuple(int(a) for a in axes) if axes is not None else None
        except (KeyError, TypeError) as exc:
            raise ModelError(f"{file}: not an nnU-Net v2 checkpoint (missing {exc})") from exc
        parameters.append(weights)
        digest.update(file.read_bytes())
    if configuration not in plans.get("configurations", {}):
        raise ModelError(f"{folder}: configuration {configuration!r} of the checkpoint is not in plans.json")
    if plans["configurations"][configuration].get("previous_stage"):
        raise ModelError(f"{folder}: cascade configuration {configuration!r} needs the low-resolution stage; "
                         "use a 3d_fullres or 2d model")
    return NnUNetModel(folder, dataset_json, plans, configuration, str(trainer), tuple(found), parameters,
                       mirroring, digest.hexdigest())


def _to_nnunet(volumes: Sequence[Volume], reader: str) -> tuple[np.ndarray, list[float], Any]:
    """Stack volumes the way the model's nnU-Net image reader would have read them."""
    from myoscan.segment.preprocess import reorient

    arrays = [np.asarray(v.array, dtype=np.float32) for v in volumes]
    spacing = list(volumes[0].spacing_mm)
    if reader == "NibabelIOWithReorient":
        affine = reorient(arrays[0], volumes[0].affine, "RAS")[1]
        arrays = [reorient(a, volumes[0].affine, "RAS")[0] for a in arrays]
        return np.stack(arrays), [float(s) for s in np.linalg.norm(affine[:3, :3], axis=0)], "reoriented"
    if reader.startswith("Nibabel"):
        return np.stack(arrays), spacing, None
    if reader.startswith("SimpleITK") or reader in ("Tiff3DIO",):
        return np.stack([a.transpose(2, 1, 0) for a in arrays]), spacing[::-1], "transposed"
    raise ModelError(f"nnU-Net image reader {reader!r} is not supported for 3D volumes")


def _from_nnunet(seg: np.ndarray, layout: Any, volume: Volume) -> np.ndarray:
    if layout == "transposed":
        return seg.transpose(2, 1, 0)
    if layout == "reoriented":
        from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

        back = ornt_transform(axcodes2ornt(("R", "A", "S")), io_orientation(volume.affine))
        return apply_orientation(seg, back)
    return seg


def segment_nnunet(
    inputs: Mapping[str, Volume] | Sequence[Volume],
    model: NnUNetModel,
    *,
    device: str = "auto",
    overlap: float = 0.5,
    mirroring: bool = True,
    show_progress: bool = True,
) -> Segmentation:
    """Segment with an nnU-Net v2 model; the label map lands on the input grid.

    Parameters
    ----------
    inputs : mapping of str to Volume, or sequence of Volume
        One volume per ``channel_names`` entry of ``dataset.json``, in that order
        (a mapping is matched by channel name, case-insensitively).
    model : NnUNetModel
        From :func:`load_nnunet_model`.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    overlap : float
        Window overlap; nnU-Net's ``tile_step_size`` is ``1 - overlap`` (default 0.5).
    mirroring : bool
        Test-time mirroring as nnU-Net does by default (up to 8x slower in 3D).
    show_progress : bool
        nnU-Net's progress bar.

    Raises
    ------
    InputError
        Wrong number of images, 2D image, missing spacing, images on different grids.
    ModelError
        Trainer class unknown to the installed nnunetv2, or weights not fitting the plans.
    """
    try:
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
        from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
        from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    except ImportError as exc:
        raise ModelError("nnU-Net models need the nnunetv2 package: pip install 'myoscan[nnunet]'") from exc
    from myoscan.io import check_same_grid
    from myoscan.segment.inference import select_device
    from myoscan.segment.predict import order_inputs
    from myoscan.segment.preprocess import check_geometry

    channel_names = model.channel_names
    if isinstance(inputs, Mapping) and len(inputs) == len(channel_names):
        lookup = {k.lower(): v for k, v in inputs.items()}
        if all(c.lower() in lookup for c in channel_names):
            inputs = [lookup[c.lower()] for c in channel_names]
        else:
            inputs = list(inputs.values())
    volumes = order_inputs(inputs, channel_names, model.name)
    for volume in volumes:
        check_geometry(volume)
        check_same_grid(volumes[0], volume)
    if not 0 <= overlap < 1:
        raise InputError(f"overlap must be in [0, 1), got {overlap}")
    torch_device = select_device(device)
    trainer_class = recursive_find_trainer_class_by_name(model.trainer_name)
    if trainer_class is None:
        raise ModelError(
            f"{model.folder}: trainer {model.trainer_name!r} is not part of the installed nnunetv2"
        )
    try:  # nnU-Net reads plans.json / dataset.json fields without checking them
        plans_manager = PlansManager(model.plans)
        configuration = plans_manager.get_configuration(model.configuration)
        n_in = determine_num_input_channels(plans_manager, configuration, model.dataset_json)
        n_out = plans_manager.get_label_manager(model.dataset_json).num_segmentation_heads
        network = trainer_class.build_network_architecture(plans_manager, configuration, n_in, n_out,
                                                           enable_deep_supervision=False)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ModelError(f"{model.folder}: plans.json/dataset.json do not describe configuration "
                         f"{model.configuration!r} as nnU-Net v2 needs ({type(exc).__name__}: {exc})") from exc
    try:
        network.load_state_dict(model.parameters[0])
    except RuntimeError as exc:
        raise ModelError(f"{model.folder}: checkpoint weights do not match plans.json "
                         f"({str(exc).splitlines()[0]})") from exc
    with contextlib.redirect_stdout(io.StringIO()):  # nnU-Net prints status messages
        predictor = nnUNetPredictor(tile_step_size=1.0 - overlap, use_gaussian=True, use_mirroring=mirroring,
                                    perform_everything_on_device=torch_device.type == "cuda",
                                    device=torch_device, verbose=False, allow_tqdm=show_progress)
        predictor.manual_initialization(network, plans_manager, configuration, model.parameters,
                                        model.dataset_json, model.trainer_name, model.mirroring_axes)
        reader = str(model.dataset_json.get("overwrite_image_reader_writer")
                     or model.plans.get("image_reader_writer", "SimpleITKIO"))
        array, spacing, layout = _to_nnunet(volumes, reader)
        seg = predictor.predict_single_npy_array(array, {"spacing": spacing})
    labels = _from_nnunet(np.asarray(seg), layout, volumes[0])
    names = model.labels
    dtype = np.uint8 if max(names, default=0) < 256 else np.uint16
    info = {"name": model.name, "kind": "nnunet", "sha256": model.sha256, "source": str(model.folder),
            "configuration": model.configuration, "trainer": model.trainer_name, "folds": list(model.folds),
            "inputs": [str(v.path) if v.path else v.name for v in volumes], "device": str(torch_device),
            "overlap": overlap, "mirroring": mirroring}
    return Segmentation(volumes[0].with_array(labels.astype(dtype)), names, None, info)
