"""Run a network over a prepared image in z-chunks and return labels on the input grid.

Memory is bounded on whole-body volumes: the network grid is processed in chunks
along its third (axial) axis, and per-class probabilities exist only for one chunk
at a time. Each chunk's probabilities are interpolated (linearly, per class) straight
onto the input-grid slices that fall inside the chunk and reduced to a label by
argmax there, so neither network-grid nor input-grid logits of the whole volume are
ever held -- holding and resampling those is what exhausts RAM in nnU-Net and
TotalSegmentator on large CTs.

Windows are MONAI's ``sliding_window_inference`` (Gaussian or constant blending):
2D networks on batches of axial slices, 3D networks on patches. 3D chunks are cut on
MONAI's own window grid -- a chunk starts at a global window position and keeps only
the voxels whose every covering window lies inside it -- so chunked and unchunked
inference see the same windows and blend them identically. The chunk planner and the
separable interpolation below are written by hand because MONAI has no memory-bounded
variant (its ``buffer_steps`` only limits device memory; the output is still whole).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from myoscan.errors import InputError
from myoscan.progress import progress
from myoscan.segment.config import InferenceConfig
from myoscan.segment.preprocess import PreparedImage

if TYPE_CHECKING:
    import torch

__all__ = [
    "Predictor",
    "auto_chunk_slices",
    "plan_chunks",
    "predict_labels",
    "select_device",
    "torch_predictor",
    "window_starts",
]

log = logging.getLogger(__name__)

#: A callable mapping a (B, C, *roi) float tensor to (B, K, *roi) logits.
Predictor = Callable[["torch.Tensor"], "torch.Tensor"]

#: Share of the currently available RAM one chunk may use.
MEMORY_FRACTION = 0.25
#: Temporary copies of one slice's class scores during sliding-window blending
#: (MONAI's output and weight buffers, softmax, interpolation).
_COPIES_PER_CLASS = 4


def select_device(name: str = "auto") -> torch.device:
    """Resolve ``'auto'`` / ``'cpu'`` / ``'cuda'`` / ``'cuda:1'`` / ``'mps'`` to a torch device.

    ``auto`` picks CUDA, then Apple MPS, then the CPU.

    Raises
    ------
    InputError
        When the requested accelerator is not available.
    """
    import torch

    key = str(name).lower()
    if key == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if key.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    if key == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("device 'mps' requested but Apple MPS is not available; use --device cpu")
    try:
        return torch.device(key)
    except RuntimeError as exc:
        raise InputError(f"unknown device {name!r}; use auto, cpu, cuda or mps") from exc


def torch_predictor(network: torch.nn.Module, device: torch.device) -> Predictor:
    """Wrap a network (moved to ``device``, eval mode) as a :data:`Predictor`."""
    network.to(device).eval()

    def predict(batch: torch.Tensor) -> torch.Tensor:
        return network(batch.to(device))

    return predict


def auto_chunk_slices(
    plane_shape: tuple[int, int], n_classes: int, n_channels: int, *, available_bytes: int | None = None,
) -> int:
    """Network-grid slices per chunk so one chunk's buffers fit in a share of free RAM.

    Examples
    --------
    >>> auto_chunk_slices((512, 512), 30, 1, available_bytes=8 * 2**30)
    16
    """
    if available_bytes is None:
        import psutil

        available_bytes = int(psutil.virtual_memory().available)
    per_slice = plane_shape[0] * plane_shape[1] * 4 * (n_classes * _COPIES_PER_CLASS + n_channels)
    return max(1, int(available_bytes * MEMORY_FRACTION // per_slice))


def window_starts(size: int, roi: int, overlap: float) -> list[int]:
    """Start positions of MONAI's sliding windows along one axis (``dense_patch_slices``).

    Examples
    --------
    >>> window_starts(10, 4, 0.5)
    [0, 2, 4, 6]
    >>> window_starts(9, 4, 0.5)
    [0, 2, 4, 5]
    """
    if size <= roi:
        return [0]
    step = max(1, int(roi * (1 - overlap)))
    count = next(d for d in range(size) if d * step + roi >= size) + 1
    return sorted({min(d * step, size - roi) for d in range(count)})


@dataclass(frozen=True)
class Chunk:
    """Network-grid slices ``[start, stop)`` are run; ``[core_start, core_stop)`` are kept."""

    start: int
    stop: int
    core_start: int
    core_stop: int


def plan_chunks(size: int, chunk_slices: int, *, roi: int | None = None, overlap: float = 0.5) -> list[Chunk]:
    """Split ``size`` axial slices into chunks of about ``chunk_slices`` slices.

    For 2D inference (``roi=None``) chunks are disjoint. For 3D inference chunks are cut
    on MONAI's window grid so that each kept voxel is blended from exactly the windows
    that cover it in an unchunked run.

    Examples
    --------
    >>> [(c.start, c.stop, c.core_start, c.core_stop) for c in plan_chunks(10, 4)]
    [(0, 4, 0, 4), (4, 8, 4, 8), (8, 10, 8, 10)]
    >>> [(c.start, c.stop, c.core_start, c.core_stop) for c in plan_chunks(12, 6, roi=4, overlap=0.5)]
    [(0, 8, 0, 6), (4, 12, 6, 12)]
    """
    if roi is None:
        step = max(1, chunk_slices)
        return [Chunk(s, min(size, s + step), s, min(size, s + step)) for s in range(0, size, step)]
    starts = window_starts(size, roi, overlap)
    if len(starts) == 1:
        return [Chunk(0, size, 0, size)]
    step = max(1, int(roi * (1 - overlap)))
    covering = math.ceil(roi / step)
    per_chunk = max(covering + 1, 1 + (max(chunk_slices, roi) - roi) // step)
    chunks, first, core_start = [], 0, 0
    while True:
        last = min(first + per_chunk, len(starts))
        core_stop = size if last == len(starts) else starts[last]
        chunks.append(Chunk(starts[first], starts[last - 1] + roi, core_start, core_stop))
        if last == len(starts):
            return chunks
        core_start = core_stop
        first = next(i for i, s in enumerate(starts) if s > core_stop - roi)


def _run_chunk(
    data: torch.Tensor, predictor: Predictor, config: InferenceConfig, device: torch.device,
    *, show_progress: bool = False,
) -> torch.Tensor:
    """Class probabilities (K, X, Y, Z) of one chunk ``data`` (C, X, Y, Z)."""
    import torch
    from monai.inferers import sliding_window_inference

    kwargs = dict(roi_size=config.roi_size, sw_batch_size=config.sw_batch_size, predictor=predictor,
                  overlap=config.overlap, mode=config.blend, sigma_scale=config.sigma_scale,
                  sw_device=device, device=torch.device("cpu"), progress=show_progress)
    with torch.inference_mode():
        if config.mode == "slice2d":
            slices = data.permute(3, 0, 1, 2)  # (Z, C, X, Y): a batch of axial slices
            logits = sliding_window_inference(slices, **kwargs).permute(1, 2, 3, 0)
        else:
            logits = sliding_window_inference(data[None], **kwargs)[0]
        return torch.softmax(logits.float(), dim=0)


def _interpolate_axis(values: torch.Tensor, axis: int, coords: npt.NDArray[np.float64]) -> torch.Tensor:
    """Linear interpolation of ``values`` along ``axis`` at fractional indices ``coords`` (clamped)."""
    import torch

    n = values.shape[axis]
    clamped = np.clip(coords, 0.0, n - 1)
    low = np.floor(clamped).astype(np.int64)
    weight = clamped - low
    if np.all(weight < 1e-6):
        return values.index_select(axis, torch.from_numpy(low))
    high = np.minimum(low + 1, n - 1)
    shape = [1] * values.ndim
    shape[axis] = len(coords)
    w = torch.from_numpy(weight.astype(np.float32)).reshape(shape)
    return (values.index_select(axis, torch.from_numpy(low)) * (1 - w)
            + values.index_select(axis, torch.from_numpy(high)) * w)


def _plane_labels(values: torch.Tensor, coords_x: np.ndarray, coords_y: np.ndarray) -> torch.Tensor:
    """Argmax over classes of ``values`` (K, X, Y, n) sampled bilinearly at the in-plane coordinates.

    Returns (len(coords_x), len(coords_y), n) labels. Uses ``torch.nn.functional.grid_sample``
    (vectorised bilinear interpolation); integer coordinates are gathered directly.
    """
    import torch
    import torch.nn.functional as F

    size_x, size_y = values.shape[1], values.shape[2]
    cx, cy = np.clip(coords_x, 0.0, size_x - 1), np.clip(coords_y, 0.0, size_y - 1)
    if np.allclose(cx, np.round(cx), atol=1e-6) and np.allclose(cy, np.round(cy), atol=1e-6):
        picked = values.index_select(1, torch.from_numpy(np.round(cx).astype(np.int64)))
        picked = picked.index_select(2, torch.from_numpy(np.round(cy).astype(np.int64)))
        return picked.argmax(dim=0)
    norm_x = 2.0 * cx / (size_x - 1) - 1.0 if size_x > 1 else np.zeros_like(cx)  # align_corners=True
    norm_y = 2.0 * cy / (size_y - 1) - 1.0 if size_y > 1 else np.zeros_like(cy)
    grid = np.stack(np.broadcast_arrays(norm_y[None, :], norm_x[:, None]), axis=-1)  # (Gx, Gy, [y, x])
    grid_t = torch.from_numpy(grid.astype(np.float32))[None].expand(values.shape[3], -1, -1, -1)
    sampled = F.grid_sample(values.permute(3, 0, 1, 2), grid_t, mode="bilinear", padding_mode="border",
                            align_corners=True)  # (n, K, Gx, Gy)
    return sampled.argmax(dim=1).permute(1, 2, 0)


class _LabelWriter:
    """Writes argmax labels of chunk probabilities onto the input grid, slab by slab."""

    def __init__(self, prepared: PreparedImage, n_classes: int, dtype: np.dtype, budget_bytes: int):
        self.axes, self.scale, self.offset = prepared.input_to_network()
        self.grid = prepared.shape
        self.out = np.zeros(prepared.input_shape, dtype=dtype)
        self.view = np.transpose(self.out, self.axes)  # axis a of the view = network axis a
        self.coords = [self.scale[a] * np.arange(self.view.shape[a]) + self.offset[a] for a in range(3)]
        self.inside = [(c >= -0.5 - 1e-6) & (c <= n - 0.5 + 1e-6) for c, n in zip(self.coords, self.grid,
                                                                                  strict=True)]
        plane = self.view.shape[0] * self.view.shape[1]
        self.slab = max(1, budget_bytes // max(1, plane * n_classes * 4 * 3))

    def write(self, probs: torch.Tensor, first: int, low: float, high: float) -> None:
        """Label input slices whose network z lies in [low, high); ``probs`` starts at slice ``first``."""
        z = self.coords[2]
        selected = np.flatnonzero((z >= low) & (z < high) & self.inside[2])
        for begin in range(0, len(selected), self.slab):
            part = selected[begin:begin + self.slab]
            values = _interpolate_axis(probs, 3, z[part] - first)
            labels = _plane_labels(values, self.coords[0], self.coords[1]).numpy().astype(self.out.dtype)
            labels[~self.inside[0]] = 0
            labels[:, ~self.inside[1]] = 0
            self.view[:, :, part] = labels


def predict_labels(
    prepared: PreparedImage,
    predictor: Predictor,
    config: InferenceConfig,
    n_classes: int,
    *,
    device: torch.device | str = "cpu",
    chunk_slices: int | None = None,
    show_progress: bool = True,
) -> npt.NDArray[np.integer]:
    """Network output channel of every input voxel (0 = background).

    Parameters
    ----------
    prepared : PreparedImage
        Output of :func:`myoscan.segment.preprocess.prepare_image`.
    predictor : Predictor
        The network (see :func:`torch_predictor`, :class:`myoscan.segment.onnx.OnnxPredictor`).
    config : InferenceConfig
        Window size, overlap, blending, batch size.
    n_classes : int
        Number of network output channels.
    device : torch.device or str
        Where windows are computed; blending and outputs stay on the CPU.
    chunk_slices : int, optional
        Network-grid axial slices per chunk; by default from the available memory.
    show_progress : bool
        Progress bar over chunks on stderr.

    Returns
    -------
    (I, J, K) ndarray of uint8 or uint16
        Channel index per voxel, on the input grid ``prepared`` came from.
    """
    import torch

    device = torch.device(device)
    n_channels, size_x, size_y, size_z = prepared.array.shape
    if chunk_slices is None:
        chunk_slices = auto_chunk_slices((size_x, size_y), n_classes, n_channels)
    roi_z = config.roi_size[2] if config.mode == "sliding3d" else None
    chunks = plan_chunks(size_z, chunk_slices, roi=roi_z, overlap=config.overlap)
    log.debug("inference on %s network-grid voxels in %d chunk(s)", prepared.shape, len(chunks))
    budget = int(MEMORY_FRACTION * _available_bytes())
    writer = _LabelWriter(prepared, n_classes, np.uint8 if n_classes <= 256 else np.uint16, budget)
    image = torch.from_numpy(prepared.array)
    carry: torch.Tensor | None = None
    for index, chunk in enumerate(progress(chunks, desc="segmenting", unit="chunk",
                                           enabled=show_progress and len(chunks) > 1)):
        probs = _run_chunk(image[..., chunk.start:chunk.stop], predictor, config, device,
                           show_progress=show_progress and len(chunks) == 1)  # else: bar over chunks
        core = probs[..., chunk.core_start - chunk.start:chunk.core_stop - chunk.start]
        first = chunk.core_start
        if carry is not None:
            core, first = torch.cat([carry, core], dim=3), first - 1
        low = -math.inf if index == 0 else chunk.core_start - 1
        high = math.inf if index == len(chunks) - 1 else chunk.core_stop - 1
        writer.write(core, first, low, high)
        carry = core[..., -1:].clone()
    return writer.out


def _available_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)
