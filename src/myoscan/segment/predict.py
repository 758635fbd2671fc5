"""Segment an image with a model bundle: the whole path from volumes to a label map.

:func:`segment_volumes` checks the inputs against the bundle, prepares them
(:mod:`~myoscan.segment.preprocess`), runs the network in memory-bounded chunks
(:mod:`~myoscan.segment.inference`), cleans up the labels
(:mod:`~myoscan.segment.postprocess`) and numbers them with the ids of the bundle's
catalog scheme. The adapters for nnU-Net, MuscleMap and TotalSegmentator return the
same :class:`Segmentation`, so the CLI and pipeline treat all models alike.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from myoscan import __version__
from myoscan._typing import PathLike
from myoscan.errors import InputError
from myoscan.io import Volume, image_suffix, write_volume
from myoscan.outputs import write_json, write_output_set
from myoscan.segment.bundle import ModelBundle
from myoscan.segment.config import ModelConfig

__all__ = ["Segmentation", "order_inputs", "scheme_values", "segment_volumes", "sidecar_path",
           "write_segmentation"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segmentation:
    """A label map on the input grid and what its values mean.

    Attributes
    ----------
    labels : Volume
        Integer label map on the grid of the input image (0 = background).
    names : dict of int to str
        Label value -> structure name (catalog names where the model's labels are known).
    scheme : str or None
        Catalog scheme whose ids the values are, or None when they are model channels.
    model : dict
        ``name``, ``kind`` (bundle, nnunet, musclemap, totalsegmentator), ``sha256``,
        ``source`` and run settings, written to the JSON side-car.
    """

    labels: Volume
    names: dict[int, str]
    scheme: str | None
    model: dict[str, Any] = field(default_factory=dict)

    def sidecar(self) -> dict[str, Any]:
        """Content of the JSON side-car written next to the label map."""
        present = set(np.unique(self.labels.array).tolist()) - {0}
        return {
            "model": self.model,
            "label_scheme": self.scheme,
            "labels": {str(k): v for k, v in sorted(self.names.items())},
            "labels_present": sorted(int(v) for v in present),
            "shape": list(self.labels.spatial_shape),
            "spacing_mm": list(self.labels.spacing_mm),
            "myoscan_version": __version__,
        }


def sidecar_path(path: PathLike) -> Path:
    """``seg.nii.gz`` -> ``seg.json``.

    Examples
    --------
    >>> sidecar_path("out/sub-01_seg.nii.gz").name
    'sub-01_seg.json'
    """
    target = Path(path)
    return target.with_name(target.name[: len(target.name) - len(image_suffix(target))] + ".json")


def write_segmentation(segmentation: Segmentation, path: PathLike) -> tuple[Path, Path]:
    """Write the label map and its JSON side-car together (both or neither); return both paths."""
    target = Path(path)
    top = max(segmentation.names, default=0)
    dtype = np.uint8 if top < 256 else np.uint16
    side = sidecar_path(target)
    meta = segmentation.sidecar()
    write_output_set({
        target: lambda p: write_volume(segmentation.labels, p, dtype=dtype),
        side: lambda p: write_json(meta, p),
    })
    return target, side


def order_inputs(
    inputs: Mapping[str, Volume] | Sequence[Volume], contrasts: Sequence[str], model_name: str,
) -> list[Volume]:
    """Input volumes in the model's channel order, or a one-line error naming what is expected.

    Raises
    ------
    InputError
        Wrong number of images, or contrasts the model does not take.
    """
    from myoscan.segment.config import canonical_contrast

    expected = ", ".join(contrasts)
    if isinstance(inputs, Mapping):
        inputs = {canonical_contrast(k): v for k, v in inputs.items()}
        given = list(inputs)
        if sorted(given) != sorted(contrasts):
            missing = [c for c in contrasts if c not in inputs]
            extra = [c for c in given if c not in contrasts]
            detail = "; ".join(filter(None, [f"missing {', '.join(missing)}" if missing else "",
                                             f"not used: {', '.join(extra)}" if extra else ""]))
            raise InputError(
                f"model {model_name!r} takes {len(contrasts)} contrast(s) ({expected}), "
                f"got {', '.join(given) or 'none'} ({detail})"
            )
        return [inputs[c] for c in contrasts]
    volumes = list(inputs)
    if len(volumes) != len(contrasts):
        raise InputError(
            f"model {model_name!r} takes {len(contrasts)} image(s) ({expected}), got {len(volumes)}"
        )
    return volumes


def scheme_values(names: Mapping[int, str], scheme: str | None) -> tuple[dict[int, int], str | None]:
    """Map model channels to label values of the catalog ``scheme``.

    Returns the identity (and ``None``) when there is no scheme or some name is not in it,
    so values never collide.

    Examples
    --------
    >>> scheme_values({1: "soleus_left"}, "leg")
    ({1: 7}, 'leg')
    """
    identity = {c: c for c in names}
    if not scheme:
        return identity, None
    from myoscan.labels import load_catalog

    try:
        sch = load_catalog().scheme(scheme)
        values = {c: sch.id_of(name) for c, name in names.items()}
    except InputError as exc:
        warnings.warn(f"labels keep the model's channel numbers: {exc}", stacklevel=2)
        return identity, None
    return values, scheme


def _remap(labels: npt.NDArray[np.integer], values: Mapping[int, int]) -> npt.NDArray[np.integer]:
    top = max(values.values(), default=0)
    lut = np.zeros(max(max(values, default=0), int(labels.max(initial=0))) + 1,
                   dtype=np.uint8 if top < 256 else np.uint16)
    for channel, value in values.items():
        lut[channel] = value
    return lut[labels]


def segment_volumes(
    inputs: Mapping[str, Volume] | Sequence[Volume],
    bundle: ModelBundle,
    *,
    device: str = "auto",
    overlap: float | None = None,
    sw_batch_size: int | None = None,
    chunk_slices: int | None = None,
    use_onnx: bool = False,
    postprocess: bool = True,
    show_progress: bool = True,
) -> Segmentation:
    """Segment one subject's images with a model bundle.

    Parameters
    ----------
    inputs : mapping of str to Volume, or sequence of Volume
        Images by contrast name (``{"water": ..., "fat": ...}``), or in the bundle's
        contrast order. All on one voxel grid.
    bundle : ModelBundle
        From :func:`~myoscan.segment.bundle.load_bundle`.
    device : str
        ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``mps``.
    overlap, sw_batch_size : optional
        Override the bundle's sliding-window overlap and windows per forward pass.
    chunk_slices : int, optional
        Network-grid axial slices per chunk (default: from available memory).
    use_onnx : bool
        Run the network with ONNX Runtime (CPU) instead of PyTorch.
    postprocess : bool
        Apply the bundle's post-processing steps.
    show_progress : bool
        Progress bar on stderr.

    Returns
    -------
    Segmentation
        Label map on the grid of the inputs.

    Raises
    ------
    InputError
        Wrong number or kind of contrasts, 2D image, no spacing, contrasts on different grids.
    """
    import dataclasses

    from myoscan.segment.inference import predict_labels, select_device, torch_predictor
    from myoscan.segment.postprocess import postprocess_labels
    from myoscan.segment.preprocess import prepare_image

    settings: ModelConfig = bundle.settings
    volumes = order_inputs(inputs, settings.contrasts, settings.name)
    inference = settings.inference
    if overlap is not None:
        if not 0 <= overlap < 1:
            raise InputError(f"overlap must be in [0, 1), got {overlap}")
        inference = dataclasses.replace(inference, overlap=float(overlap))
    if sw_batch_size is not None:
        inference = dataclasses.replace(inference, sw_batch_size=int(sw_batch_size))
    prepared = prepare_image(volumes, settings.preprocessing, modality=settings.modality)
    torch_device = select_device("cpu" if use_onnx else device)
    if use_onnx:
        from myoscan.segment.onnx import onnx_predictor

        predictor = onnx_predictor(bundle, inference.roi_size)
    else:
        predictor = torch_predictor(bundle.network, torch_device)
    channels = predict_labels(prepared, predictor, inference, max(settings.labels) + 1, device=torch_device,
                              chunk_slices=chunk_slices, show_progress=show_progress)
    reference = volumes[0]
    if postprocess:
        channels = postprocess_labels(channels, reference.affine, settings.labels, settings.postprocessing)
    if settings.label_values is not None:
        values, scheme = dict(settings.label_values), settings.label_scheme
    else:
        values, scheme = scheme_values(settings.labels, settings.label_scheme)
    labels = reference.with_array(_remap(channels, values))
    model = {
        "name": settings.name, "kind": "bundle", "sha256": bundle.sha256, "source": str(bundle.path),
        "architecture": settings.architecture["name"], "contrasts": list(settings.contrasts),
        "inputs": [str(v.path) if v.path else v.name for v in volumes], "device": str(torch_device),
        "engine": "onnxruntime" if use_onnx else "pytorch", "overlap": inference.overlap,
        "postprocessing": dataclasses.asdict(settings.postprocessing) if postprocess else None,
    }
    names = {values[c]: name for c, name in settings.labels.items()}
    return Segmentation(labels, names, scheme, model)
