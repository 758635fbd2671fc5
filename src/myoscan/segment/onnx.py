"""ONNX export of a bundle's network and ONNX Runtime inference (often faster on CPUs).

The network is exported with ``torch.onnx.export`` (the ``torch.export``-based exporter)
for one window size with a dynamic batch axis, checked against PyTorch on a random
window, and cached by bundle hash and window size, so the export cost is paid once.
:class:`OnnxPredictor` is a drop-in :data:`myoscan.segment.inference.Predictor`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from myoscan._typing import PathLike
from myoscan.errors import ModelError

if TYPE_CHECKING:
    import torch

    from myoscan.segment.bundle import ModelBundle

__all__ = ["OnnxPredictor", "cached_onnx_model", "export_onnx", "onnx_predictor"]

log = logging.getLogger(__name__)

#: Largest difference between ONNX Runtime and PyTorch logits accepted after export.
EXPORT_TOLERANCE = 1e-3


def export_onnx(
    network: torch.nn.Module,
    path: PathLike,
    *,
    in_channels: int,
    roi_size: Sequence[int],
    check: bool = True,
) -> Path:
    """Export ``network`` for inputs of shape (batch, in_channels, *roi_size) to ONNX.

    Parameters
    ----------
    network : torch.nn.Module
        The network (moved to the CPU, eval mode).
    path : str or os.PathLike
        Destination ``.onnx`` file (written atomically).
    in_channels : int
        Number of input channels.
    roi_size : sequence of int
        Spatial window size (2 or 3 numbers); the batch axis stays dynamic.
    check : bool
        Compare ONNX Runtime and PyTorch outputs on a random window.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ModelError
        When the export fails or its outputs differ from PyTorch.
    """
    import torch

    from myoscan.outputs import atomic_path

    network = network.to("cpu").eval()
    example = torch.randn(2, in_channels, *roi_size, generator=torch.Generator().manual_seed(0))
    target = Path(path)
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        with atomic_path(target) as tmp, contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(network, (example,), str(tmp), input_names=["image"], output_names=["logits"],
                              dynamic_shapes=({0: batch},), dynamo=True, external_data=False)
    except Exception as exc:  # the exporter raises many error types
        raise ModelError(f"ONNX export failed ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                         "run without --onnx") from exc
    if check:
        with torch.inference_mode():
            expected = network(example).numpy()
        got = OnnxPredictor(target).run(example.numpy())
        difference = float(np.abs(got - expected).max())
        if difference > EXPORT_TOLERANCE * max(1.0, float(np.abs(expected).max())):
            target.unlink(missing_ok=True)
            raise ModelError(f"ONNX export differs from PyTorch by {difference:.3g}; run without --onnx")
    return target


class OnnxPredictor:
    """Run an exported network with ONNX Runtime on the CPU.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.onnx`` file.
    threads : int, optional
        Intra-op threads; defaults to torch's thread count so both engines compare fairly.
    """

    def __init__(self, path: PathLike, *, threads: int | None = None):
        import onnxruntime as ort
        import torch

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own error types (InvalidProtobuf, NoSuchFile ...)
            raise ModelError(f"{path}: cannot load the ONNX model ({str(exc).splitlines()[0]}); "
                             "delete it or run without --onnx") from exc
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Logits for a (B, C, *roi) float32 array."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits for a (B, C, *roi) tensor, as a CPU tensor."""
        import torch

        return torch.from_numpy(self.run(batch.detach().to("cpu").numpy()))


def _cache_dir() -> Path:
    root = os.environ.get("MYOSCAN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "myoscan"
    )
    return Path(root) / "onnx"


def cached_onnx_model(
    bundle: ModelBundle, roi_size: Sequence[int], *, cache_dir: PathLike | None = None,
) -> Path:
    """ONNX file of ``bundle``'s network for ``roi_size``, exported on first use.

    Cached as ``<cache>/onnx/<sha256[:16]>-<roi>.onnx`` (``$MYOSCAN_CACHE`` or
    ``~/.cache/myoscan``); the bundle hash covers config and weights, so a changed
    model is re-exported (:func:`onnx_predictor` also replaces a file ONNX Runtime cannot load).
    """
    folder = Path(cache_dir) if cache_dir is not None else _cache_dir()
    path = folder / f"{bundle.sha256[:16]}-{'x'.join(str(int(r)) for r in roi_size)}.onnx"
    if not path.is_file():
        log.info("exporting %s to ONNX (once, cached in %s)", bundle.name, folder)
        export_onnx(bundle.network, path, in_channels=len(bundle.settings.contrasts), roi_size=roi_size)
    return path


def onnx_predictor(
    bundle: ModelBundle, roi_size: Sequence[int], *, cache_dir: PathLike | None = None,
) -> OnnxPredictor:
    """Load an :class:`OnnxPredictor` for ``bundle`` from the cache (:func:`cached_onnx_model`).

    A cached file ONNX Runtime cannot load (truncated, corrupt) is exported again.

    Raises
    ------
    ModelError
        When the export fails or the fresh export cannot be loaded either.
    """
    path = cached_onnx_model(bundle, roi_size, cache_dir=cache_dir)
    try:
        return OnnxPredictor(path)
    except ModelError as exc:
        log.warning("%s; exporting it again", exc)
        path.unlink(missing_ok=True)
    return OnnxPredictor(cached_onnx_model(bundle, roi_size, cache_dir=cache_dir))
