"""Model bundles: a folder with ``config.json``, ``weights.safetensors`` and ``MODEL_CARD.md``.

The format is specified in docs/model-bundle.md (the contract with ``myoscan.train``).
Weights are stored as safetensors, which holds tensors only, so loading a bundle can
never execute code; a ``.pt``/``.pth`` file is read only through
``torch.load(weights_only=True)`` by :func:`read_state_dict`.

Bundles are found by name in three places, first match wins: folders passed
explicitly, the folders listed in the ``MYOSCAN_MODELS`` environment variable
(``os.pathsep``-separated), and the bundles shipped in ``myoscan/models/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from myoscan._typing import PathLike
from myoscan.errors import ModelError
from myoscan.outputs import normal_permissions
from myoscan.segment.config import ModelConfig, channel_counts, parse_config
from myoscan.segment.networks import build_network

if TYPE_CHECKING:
    import torch

__all__ = [
    "CARD_FILE",
    "CONFIG_FILE",
    "MODELS_ENV",
    "WEIGHTS_FILE",
    "BundleSummary",
    "ModelBundle",
    "bundle_sha256",
    "find_bundles",
    "load_bundle",
    "load_torch_checkpoint",
    "read_config",
    "read_state_dict",
    "resolve_bundle",
    "save_bundle",
]

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
CARD_FILE = "MODEL_CARD.md"
MODELS_ENV = "MYOSCAN_MODELS"
PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "models"


@dataclass(frozen=True, eq=False)
class ModelBundle:
    """A loaded model: validated config, network in eval mode, identity hash and card.

    Attributes
    ----------
    path : pathlib.Path
        The bundle folder.
    config : dict
        ``config.json`` as stored.
    settings : ModelConfig
        The config parsed into typed settings (defaults filled in).
    network : torch.nn.Module
        The network with the bundle's weights, in ``eval()`` mode, on the CPU.
    sha256 : str
        Hash over the canonical config and the weights file (see :func:`bundle_sha256`).
    model_card : str
        Content of ``MODEL_CARD.md``.
    """

    path: Path
    config: dict[str, Any]
    settings: ModelConfig
    network: torch.nn.Module
    sha256: str
    model_card: str

    @property
    def name(self) -> str:
        """The model's name from its config."""
        return self.settings.name

    @property
    def labels(self) -> dict[int, str]:
        """Output channel -> structure name (background excluded)."""
        return dict(self.settings.labels)


@dataclass(frozen=True)
class BundleSummary:
    """What ``myoscan models list`` shows about a bundle, read without loading the weights."""

    name: str
    path: Path
    architecture: str
    contrasts: tuple[str, ...]
    n_labels: int
    label_scheme: str | None
    description: str
    source: str
    error: str | None = None


def _canonical_json(config: Mapping[str, Any]) -> bytes:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def bundle_sha256(path: PathLike) -> str:
    """SHA-256 identifying a bundle: over the canonical config JSON, then the weights bytes.

    The config is re-serialised with sorted keys and no spaces first, so reformatting
    ``config.json`` does not change the hash but any change of a value or weight does.

    Raises
    ------
    ModelError
        If the folder lacks ``config.json`` or ``weights.safetensors``.
    """
    folder = Path(path)
    config = read_config(folder)
    digest = hashlib.sha256(_canonical_json(config))
    weights = _require_file(folder, WEIGHTS_FILE)
    with weights.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _require_file(folder: Path, name: str) -> Path:
    if not folder.is_dir():
        raise ModelError(f"{folder}: model folder not found; give a bundle folder or a name from "
                         "`myoscan models list`")
    file = folder / name
    if not file.is_file():
        present = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise ModelError(f"{folder}: model folder is missing {name} (it holds {present}); "
                         "a bundle needs config.json, weights.safetensors and MODEL_CARD.md")
    return file


def read_config(path: PathLike) -> dict[str, Any]:
    """Read a bundle's ``config.json`` (no validation beyond being a JSON object)."""
    file = _require_file(Path(path), CONFIG_FILE)
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{file}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise ModelError(f"{file}: expected a JSON object, got {type(config).__name__}")
    return config


def _describe_mismatch(expected: Mapping[str, Any], got: Mapping[str, Any]) -> str | None:
    """One line describing how a state dict differs from what the network expects."""
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [
        f"{k} {tuple(got[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected if k in got and tuple(got[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if wrong:
        parts.append(f"{len(wrong)} with other shapes (e.g. {wrong[0]}, stored vs expected)")
    return "; ".join(parts) or None


def load_weights_into(network: torch.nn.Module, state: Mapping[str, Any], source: str) -> None:
    """Load ``state`` into ``network`` strictly, or raise a ModelError saying what differs."""
    problem = _describe_mismatch(network.state_dict(), state)
    if problem:
        raise ModelError(f"{source}: weights do not match the architecture in the config: {problem}")
    network.load_state_dict(dict(state), strict=True)


def load_bundle(path: PathLike) -> ModelBundle:
    """Load and validate a model bundle folder.

    Parameters
    ----------
    path : str or os.PathLike
        Folder holding ``config.json``, ``weights.safetensors`` and ``MODEL_CARD.md``.

    Returns
    -------
    ModelBundle
        Network on the CPU in eval mode; move it with ``bundle.network.to(device)``.

    Raises
    ------
    ModelError
        Missing files, invalid config, unknown architecture, weights not matching it.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(path)
    config = read_config(folder)
    weights = _require_file(folder, WEIGHTS_FILE)
    card = _require_file(folder, CARD_FILE).read_text(encoding="utf-8")
    try:
        settings = parse_config(config)
        network = build_network(config)
    except ModelError as exc:  # name the bundle's config file, not a bare "config.json"
        message = str(exc).removeprefix(f"{CONFIG_FILE}: ")
        raise ModelError(f"{folder / CONFIG_FILE}: {message}") from exc
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(
            f"{weights}: cannot read safetensors weights ({exc}); the file may be corrupt"
        ) from exc
    load_weights_into(network, state, str(weights))
    network.eval()
    log.debug("loaded bundle %s from %s", settings.name, folder)
    return ModelBundle(folder, config, settings, network, bundle_sha256(folder), card)


def save_bundle(
    path: PathLike,
    *,
    network: torch.nn.Module,
    config: Mapping[str, Any],
    model_card: str,
    overwrite: bool = True,
) -> Path:
    """Write a model bundle folder atomically: it appears complete or not at all.

    ``architecture.params.in_channels`` / ``out_channels`` are filled in from the
    inputs and labels when absent. The network's weights are checked against the
    architecture before anything is written, so a saved bundle always loads.

    Parameters
    ----------
    path : str or os.PathLike
        Bundle folder to create (or replace when ``overwrite``).
    network : torch.nn.Module
        Trained network (any device); its ``state_dict`` is saved.
    config : mapping
        Bundle config (docs/model-bundle.md).
    model_card : str
        Markdown text for ``MODEL_CARD.md`` (training data, metrics, intended use, limits).
    overwrite : bool
        Replace an existing bundle folder.

    Returns
    -------
    pathlib.Path
        The bundle folder.

    Raises
    ------
    ModelError
        Invalid config, or network weights that do not fit the configured architecture.
    """
    from safetensors.torch import save_file

    target = Path(path)
    if target.exists() and not overwrite:
        raise ModelError(f"{target}: already exists; pass overwrite=True or choose another folder")
    config = json.loads(json.dumps(dict(config)))  # deep copy, and proves it is JSON-serialisable
    config.setdefault("format_version", 1)
    n_in, n_out = channel_counts(config)
    params = config.setdefault("architecture", {}).setdefault("params", {})
    params.setdefault("in_channels", n_in)
    params.setdefault("out_channels", n_out)
    parse_config(config)
    state = {k: v.detach().to("cpu").contiguous() for k, v in network.state_dict().items()}
    load_weights_into(build_network(config), state, "save_bundle")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt", "myoscan_bundle": "1"})
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (tmp / CARD_FILE).write_text(model_card.rstrip() + "\n", encoding="utf-8")
        normal_permissions(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "bundle")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _numpy_data_types() -> list[Any]:
    """Numpy classes a checkpoint may hold as plain data (scalars, arrays, dtypes)."""
    import numpy as np

    try:
        multiarray = np._core.multiarray  # numpy >= 2
    except AttributeError:  # pragma: no cover - numpy 1.x
        multiarray = np.core.multiarray
    dtypes = {type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDGUS"}
    return [multiarray.scalar, multiarray._reconstruct, np.ndarray, np.dtype, *dtypes]


def _first_line(exc: BaseException) -> str:
    """First line of an exception's message, or its type when the message is empty (EOFError)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def load_torch_checkpoint(path: PathLike) -> Any:
    """Load a ``.pt``/``.pth`` file with ``torch.load(weights_only=True)``.

    Tensors, containers, numbers, strings, ``torch.device`` and numpy scalars/arrays
    (as nnU-Net stores in its training logs) are accepted; anything else -- classes,
    functions, arbitrary objects that could run code -- is refused.

    Raises
    ------
    ModelError
        Unreadable file, or a pickle that holds something other than plain data.
    """
    import pickle

    import torch

    file = Path(path)
    if not file.is_file():
        raise ModelError(f"{file}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals(_numpy_data_types()):
            return torch.load(str(file), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = next((line.strip() for line in str(exc).splitlines() if "Unsupported global" in line),
                      _first_line(exc))
        raise ModelError(
            f"{file.name}: refused to load: the checkpoint holds Python objects other than tensors "
            f"and plain data, which could run code ({reason})"
        ) from exc
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise ModelError(f"{file}: cannot read checkpoint ({_first_line(exc)}); the file may be empty, "
                         "truncated or not a PyTorch checkpoint") from exc


def read_state_dict(path: PathLike) -> dict[str, torch.Tensor]:
    """Read network weights from ``.safetensors`` or ``.pt``/``.pth`` (tensors only).

    ``.pt``/``.pth`` go through :func:`load_torch_checkpoint` (``weights_only=True``).
    Checkpoints that wrap the weights (``state_dict``, ``model``, ``network_weights``,
    ``model_state_dict``) are unwrapped and a ``module.`` prefix (DataParallel) is removed.

    Raises
    ------
    ModelError
        Unreadable file, or a file that holds objects other than tensors.
    """
    import torch

    file = Path(path)
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        if not file.is_file():
            raise ModelError(f"{file}: no such weights file")
        return load_file(str(file), device="cpu")
    data = load_torch_checkpoint(file)
    for key in ("state_dict", "model_state_dict", "network_weights", "model"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
            break
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ModelError(f"{file.name}: expected a state dict of tensors, got {type(data).__name__}")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in data.items()}


def _search_folders(extra: Iterable[PathLike] = ()) -> list[tuple[Path, str]]:
    folders = [(Path(p), "given") for p in extra]
    env = os.environ.get(MODELS_ENV, "")
    folders += [(Path(p), MODELS_ENV) for p in env.split(os.pathsep) if p.strip()]
    folders.append((PACKAGE_MODELS, "built-in"))
    return folders


def _summarise(folder: Path, source: str) -> BundleSummary:
    try:
        settings = parse_config(read_config(folder))
        for name in (WEIGHTS_FILE, CARD_FILE):  # listed as usable only if it can be loaded
            _require_file(folder, name)
    except ModelError as exc:
        message = str(exc).removeprefix(f"{folder}: ")
        return BundleSummary(folder.name, folder, "?", (), 0, None, "", source, error=message)
    return BundleSummary(
        settings.name, folder, str(settings.architecture["name"]), settings.contrasts,
        len(settings.labels), settings.label_scheme, str(settings.raw.get("description", "")), source,
    )


def find_bundles(extra: Sequence[PathLike] = ()) -> list[BundleSummary]:
    """Bundles in the search folders (a folder may itself be a bundle or hold bundles).

    Parameters
    ----------
    extra : sequence of path
        Folders searched before ``$MYOSCAN_MODELS`` and the built-in models.

    Returns
    -------
    list of BundleSummary
        In search order; a folder with a broken config is listed with ``error`` set.
    """
    found: list[BundleSummary] = []
    seen: set[Path] = set()
    for folder, source in _search_folders(extra):
        if not folder.is_dir():
            continue
        candidates = [folder] if (folder / CONFIG_FILE).is_file() else sorted(
            p for p in folder.iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file()
        )
        for candidate in candidates:
            if candidate.resolve() not in seen:
                seen.add(candidate.resolve())
                found.append(_summarise(candidate, source))
    return found


def resolve_bundle(spec: PathLike, extra: Sequence[PathLike] = ()) -> Path:
    """Turn a bundle folder path or a bundle name (``leg-demo``) into a folder path.

    Raises
    ------
    ModelError
        Neither an existing folder nor the name of a bundle in the search folders.
    """
    path = Path(spec)
    if path.is_dir():
        return path
    for summary in find_bundles(extra):
        if summary.name == str(spec) or summary.path.name == str(spec):
            return summary.path
    names = ", ".join(s.name for s in find_bundles(extra)) or "none installed"
    raise ModelError(f"{spec}: no such model folder or bundle name (known bundles: {names}); "
                     f"see `myoscan models list` or set {MODELS_ENV}")
