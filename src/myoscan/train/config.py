"""Training configuration: frozen dataclasses loaded from YAML, with dotted overrides.

A configuration is plain data. The shipped configurations (``src/myoscan/configs/*.yaml``)
reproduce the seed papers; a user YAML file may start from one of them with
``extends: <name or path>`` and change only what differs, and any field can be set from the
command line as ``--set training.lr=2e-4`` (the value is parsed as YAML).

>>> cfg = load_config("leg-2d-unet", ["training.lr=2e-4"])
>>> cfg.training.lr, cfg.training.optimizer, cfg.sampling.roi_size
(0.0002, 'adamw', (416, 240))

The sections ``architecture``, ``inputs``, ``preprocessing``, ``inference`` and
``postprocessing`` are copied verbatim into the model bundle's ``config.json``
(docs/model-bundle.md), so training and inference read the same settings. The last three
are plain mappings whose schema belongs to :mod:`myoscan.segment.config`; they are
validated with the segmentation engine's own parser when a config is loaded.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from myoscan._typing import PathLike
from myoscan.errors import InputError

__all__ = [
    "AugmentationConfig",
    "ArchitectureConfig",
    "InputsConfig",
    "LabelsConfig",
    "SamplingConfig",
    "TrainConfig",
    "TrainingConfig",
    "ValidationConfig",
    "bundle_config",
    "config_names",
    "load_config",
    "output_structures",
    "override",
]


@dataclass(frozen=True)
class ArchitectureConfig:
    """Network family and its parameters (``myoscan.segment.networks`` names)."""

    name: str = "unet2d"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InputsConfig:
    """Input contrasts, in network channel order."""

    contrasts: tuple[str, ...] = ("water",)
    modality: Literal["mri", "ct"] = "mri"


@dataclass(frozen=True)
class LabelsConfig:
    """Which catalog structures the network predicts.

    ``structures`` are the output channels 1..N in order (0 = background); empty means
    every structure of ``scheme`` in label-id order. ``source_scheme`` is the scheme of the
    dataset's label maps when it differs from ``scheme`` (they are remapped on loading).
    """

    scheme: str = "leg"
    structures: tuple[str, ...] = ()
    source_scheme: str | None = None


@dataclass(frozen=True)
class SamplingConfig:
    """How training samples are cut from the (cached, preprocessed) volumes.

    2D networks train on axial slices of ``roi_size`` (2 values), 3D networks on patches
    (3 values). ``strategy='pos_neg'`` is MONAI's RandCropByPosNegLabel with ``pos:neg``
    foreground/background centres (seed 001: 1:1); ``'uniform'`` crops anywhere (seed 002).
    """

    roi_size: tuple[int, ...] = (416, 240)
    num_samples: int = 1
    strategy: Literal["pos_neg", "uniform"] = "pos_neg"
    pos: float = 1.0
    neg: float = 1.0


@dataclass(frozen=True)
class AugmentationConfig:
    """Random augmentation; all off by default, each seed config turns on its own.

    Angles are about the left-right, anterior-posterior and superior-inferior axes (array
    axes 0, 1, 2 after reorientation to RAS); 2D networks use only the last (in-plane).
    ``scale_pct`` is an independent (anisotropic) scale per axis, ``zoom_pct`` one isotropic
    zoom. The left-right flip swaps left and right labels (catalog pairs).
    """

    flip_lr_prob: float = 0.0
    affine_prob: float = 0.0
    rotate_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale_pct: tuple[float, float, float] = (0.0, 0.0, 0.0)
    zoom_pct: float = 0.0
    elastic_prob: float = 0.0
    elastic_control_points: int = 3
    elastic_sigma_mm: float = 10.0
    bias_field_prob: float = 0.0
    bias_field_coeff: float = 0.3
    noise_prob: float = 0.0
    noise_std: float = 0.05
    gamma_prob: float = 0.0
    gamma_range: tuple[float, float] = (0.7, 1.5)
    intensity_scale_prob: float = 0.0
    intensity_scale: float = 0.1


@dataclass(frozen=True)
class TrainingConfig:
    """Optimiser, loss, schedule and run length.

    Give exactly one of ``max_iterations`` and ``max_epochs`` (an epoch is one pass over the
    training volumes, ``ceil(n_train / batch_size)`` iterations). ``schedule='multistep'``
    multiplies the learning rate by ``lr_gamma`` at each fraction of the run in
    ``milestones`` (seed 003: 1e-4, then 1e-5, then 1e-6). ``init_weights`` starts from the
    weights of an existing bundle (fine-tuning).
    """

    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = 1e-4
    weight_decay: float = 1e-5
    momentum: float = 0.99
    batch_size: int = 1
    max_iterations: int | None = 1000
    max_epochs: int | None = None
    schedule: Literal["constant", "cosine", "poly", "multistep"] = "constant"
    milestones: tuple[float, ...] = ()
    lr_gamma: float = 0.1
    warmup_iterations: int = 0
    loss: Literal["dice_ce", "dice"] = "dice_ce"
    lambda_dice: float = 1.0
    lambda_ce: float = 1.0
    grad_clip: float | None = None
    amp: bool = True
    seed: int = 0
    num_workers: int = 0
    cache_rate: float = 1.0
    init_weights: str | None = None
    checkpoint_interval: int = 100


@dataclass(frozen=True)
class ValidationConfig:
    """Validation Dice schedule, split, early stopping and cross-validation folds.

    Give one of ``interval_iterations`` and ``interval_epochs``. ``patience`` counts
    validations without an improvement of the mean Dice by more than ``min_delta``
    (0 = never stop early). ``fraction`` of the cases is held out when the data has no
    explicit validation list. ``folds`` > 1 makes :func:`myoscan.train.cross_validate`
    the default of ``myoscan train``.
    """

    interval_iterations: int | None = 100
    interval_epochs: int | None = None
    fraction: float = 0.2
    patience: int = 0
    min_delta: float = 0.0
    folds: int = 1


@dataclass(frozen=True)
class TrainConfig:
    """A complete training configuration.

    Examples
    --------
    >>> cfg = TrainConfig()
    >>> cfg.architecture.name, cfg.training.loss
    ('unet2d', 'dice_ce')
    """

    name: str = "custom"
    description: str = ""
    source: str = ""
    model_card_notes: str = ""
    architecture: ArchitectureConfig = field(default_factory=ArchitectureConfig)
    inputs: InputsConfig = field(default_factory=InputsConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    inference: dict[str, Any] = field(default_factory=dict)
    postprocessing: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self)
        _check_shared_sections(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), suitable for YAML/JSON."""
        return _plain(dataclasses.asdict(self))


# --------------------------------------------------------------------------- loading


def config_names() -> tuple[str, ...]:
    """Names of the configurations shipped in ``myoscan/configs``.

    Examples
    --------
    >>> "leg-2d-unet" in config_names()
    True
    """
    folder = resources.files("myoscan") / "configs"
    return tuple(sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml")))


def load_config(
    config: str | PathLike | Mapping[str, Any] | TrainConfig,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> TrainConfig:
    """Load a training configuration and apply overrides.

    Parameters
    ----------
    config : str, path, mapping or TrainConfig
        A shipped name (:func:`config_names`), a YAML file (which may say ``extends: <name or
        path>`` to start from another configuration), a nested mapping, or a config.
    overrides : sequence of str or mapping
        ``"section.field=value"`` strings (value parsed as YAML) or a nested mapping, applied
        in order after loading.

    Returns
    -------
    TrainConfig

    Raises
    ------
    InputError
        Unknown name or file, invalid YAML, an unknown field (close matches are suggested)
        or a value of the wrong type.

    Examples
    --------
    >>> load_config("thigh-unetr", {"training": {"batch_size": 1}}).training.batch_size
    1
    """
    if isinstance(config, TrainConfig):
        data = config.to_dict()
    elif isinstance(config, Mapping):
        data = _resolve_extends(dict(config), Path.cwd(), seen=())
    else:
        data = _read_config_data(config, seen=())
    if isinstance(overrides, Mapping):
        data = _merge(data, overrides)
    else:
        for item in overrides:
            data = _merge(data, _parse_override(item))
    return _build(TrainConfig, data, "")


def override(config: TrainConfig, **values: Any) -> TrainConfig:
    """Return ``config`` with dotted fields replaced (``override(c, **{"training.lr": 1e-3})``)."""
    data = config.to_dict()
    for key, value in values.items():
        data = _merge(data, _nest(key.split("."), value))
    return _build(TrainConfig, data, "")


def _read_config_data(ref: str | PathLike, seen: tuple[str, ...]) -> dict[str, Any]:
    text, where, base_dir = _config_text(ref)
    if where in seen:
        raise InputError(f"{where}: 'extends' chain loops back to itself ({' -> '.join(seen)})")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: invalid YAML ({exc}); fix the file") from exc
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a YAML mapping of sections, got {type(data).__name__}")
    return _resolve_extends(data, base_dir, seen + (where,))


def _config_text(ref: str | PathLike) -> tuple[str, str, Path]:
    name = str(ref)
    if name in config_names():
        res = resources.files("myoscan") / "configs" / f"{name}.yaml"
        return res.read_text(encoding="utf-8"), name, Path.cwd()
    path = Path(name)
    if path.is_file():
        return path.read_text(encoding="utf-8"), str(path), path.parent
    close = difflib.get_close_matches(name, config_names(), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise InputError(
        f"unknown training config {name!r}: not a shipped config ({', '.join(config_names())}) "
        f"and no such YAML file.{hint}"
    )


def _resolve_extends(data: dict[str, Any], base_dir: Path, seen: tuple[str, ...]) -> dict[str, Any]:
    parent = data.pop("extends", None)
    if parent is None:
        return data
    ref = str(parent)
    if ref not in config_names() and not Path(ref).is_absolute():
        ref = str(base_dir / ref)
    return _merge(_read_config_data(ref, seen), data)


def _parse_override(item: str) -> dict[str, Any]:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise InputError(f"override {item!r}: expected section.field=value, e.g. training.lr=2e-4")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise InputError(f"override {item!r}: cannot parse the value as YAML ({exc})") from exc
    return _nest(key.strip().split("."), value)


def _nest(keys: list[str], value: Any) -> dict[str, Any]:
    out: Any = value
    for key in reversed(keys):
        out = {key: out}
    return out


def _merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge; mappings merge key by key, other values (lists too) replace.

    ``architecture.params`` is a mapping, so a YAML file extending a config may change one
    network parameter without repeating the others -- unless it names another architecture,
    whose params then start empty.
    """
    out = dict(base)
    for key, value in update.items():
        if key == "architecture" and isinstance(value, Mapping) and isinstance(out.get(key), Mapping) \
                and value.get("name", out[key].get("name")) != out[key].get("name"):
            out[key] = dict(value)  # another network: its params do not inherit the old ones
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- typed building
# Hand-written because no declared dependency builds frozen dataclasses from YAML with
# type checks (pydantic/omegaconf are not dependencies); ~50 lines cover the types used here.


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a mapping of fields, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    prefix = f"{where}." if where else ""
    unknown = [k for k in data if k not in names]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), names, n=3)
        hint = f"; did you mean {', '.join(prefix + c for c in close)}?" if close else ""
        raise InputError(
            f"{where or 'config'}: unknown field {key!r}{hint} (valid fields: {', '.join(names)})"
        )
    values = {k: _coerce(hints[k], v, prefix + k) for k, v in data.items()}
    try:
        return cls(**values)
    except InputError:
        raise
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where or 'config'}: {exc}") from exc


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(option, value, where)
            except InputError as exc:
                errors.append(str(exc))
        raise InputError(errors[0])
    if origin is Literal:
        if value not in args:
            raise InputError(f"{where}: expected one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise InputError(f"{where}: expected {len(args)} values, got {len(value)} ({list(value)})")
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise InputError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): v for k, v in value.items()}
    return _scalar(hint, value, where)


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    expected = getattr(hint, "__name__", str(hint))
    raise InputError(f"{where}: expected {expected}, got {value!r}")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- checks


def _check(cfg: TrainConfig) -> None:
    t, v, s = cfg.training, cfg.validation, cfg.sampling
    if (t.max_iterations is None) == (t.max_epochs is None):
        raise InputError(
            "training: set exactly one of max_iterations and max_epochs "
            f"(got max_iterations={t.max_iterations}, max_epochs={t.max_epochs})"
        )
    if (v.interval_iterations is None) == (v.interval_epochs is None):
        raise InputError(
            "validation: set exactly one of interval_iterations and interval_epochs "
            f"(got {v.interval_iterations} and {v.interval_epochs})"
        )
    positive = {
        "training.lr": t.lr, "training.batch_size": t.batch_size,
        "training.max_iterations": t.max_iterations or 1, "training.max_epochs": t.max_epochs or 1,
        "sampling.num_samples": s.num_samples, "validation.folds": v.folds,
        "validation.interval_iterations": v.interval_iterations or 1,
        "validation.interval_epochs": v.interval_epochs or 1,
        "training.checkpoint_interval": t.checkpoint_interval,
    }
    for key, value in positive.items():
        if not value > 0:
            raise InputError(f"{key} must be > 0, got {value}")
    if not 0.0 <= v.fraction < 1.0:
        raise InputError(f"validation.fraction must be in [0, 1), got {v.fraction}")
    if not 0.0 < t.cache_rate <= 1.0:
        raise InputError(f"training.cache_rate must be in (0, 1], got {t.cache_rate}")
    if len(s.roi_size) not in (2, 3) or min(s.roi_size) < 1:
        raise InputError(f"sampling.roi_size must be 2 (2D) or 3 (3D) sizes >= 1, got {list(s.roi_size)}")
    if not cfg.inputs.contrasts:
        raise InputError("inputs.contrasts must name at least one input contrast")
    orientation = cfg.preprocessing.get("orientation", "RAS")
    if cfg.augmentation.flip_lr_prob > 0 and (not isinstance(orientation, str) or orientation[:1].upper()
                                              not in ("R", "L")):
        raise InputError(
            f"augmentation.flip_lr_prob needs preprocessing.orientation with the left-right axis first "
            f"(e.g. RAS), got {orientation!r}: the flip mirrors array axis 0 and swaps left/right labels"
        )
    if min(s.pos, s.neg) < 0 or s.pos + s.neg <= 0:
        raise InputError(f"sampling.pos and sampling.neg must be >= 0 and not both 0, got {s.pos} and {s.neg}")
    a = cfg.augmentation
    for field_ in dataclasses.fields(a):
        if field_.name.endswith("_prob") and not 0.0 <= getattr(a, field_.name) <= 1.0:
            raise InputError(f"augmentation.{field_.name} must be a probability in [0, 1], "
                             f"got {getattr(a, field_.name)}")
    if not 0 < a.gamma_range[0] <= a.gamma_range[1]:
        raise InputError(f"augmentation.gamma_range must be (low, high) with 0 < low <= high, "
                         f"got {list(a.gamma_range)}")
    if not 0 <= a.zoom_pct < 100 or min(a.scale_pct) < 0 or min(a.rotate_deg) < 0:
        raise InputError("augmentation.zoom_pct must be in [0, 100) and scale_pct / rotate_deg >= 0 "
                         f"(+- ranges), got {a.zoom_pct}, {list(a.scale_pct)}, {list(a.rotate_deg)}")
    if any(not 0.0 < m < 1.0 for m in t.milestones) or list(t.milestones) != sorted(t.milestones):
        raise InputError(
            f"training.milestones must be increasing fractions of the run in (0, 1), got {list(t.milestones)}"
        )


def _check_shared_sections(cfg: TrainConfig) -> None:
    """Reject unknown keys in the sections owned by ``myoscan.segment`` and validate them."""
    from myoscan.errors import ModelError
    from myoscan.segment.config import (
        InferenceConfig,
        IntensityConfig,
        PostprocessConfig,
        PreprocessConfig,
        parse_config,
    )

    sections = {
        "preprocessing": (cfg.preprocessing, PreprocessConfig),
        "preprocessing.intensity": (cfg.preprocessing.get("intensity") or {}, IntensityConfig),
        "inference": (cfg.inference, InferenceConfig),
        "postprocessing": (cfg.postprocessing, PostprocessConfig),
    }
    for where, (data, cls) in sections.items():
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: expected a mapping, got {data!r}")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise InputError(f"{where}: unknown field {key!r}{hint} (valid fields: {', '.join(names)})")
    probe = bundle_config(cfg, structures=("probe",))
    try:
        parse_config(probe)
    except ModelError as exc:
        raise InputError(f"training config {cfg.name!r}: {str(exc).replace('config.json: ', '')}") from exc
    # training windows go through the same network: same rank, multiples and UNETR size
    windows = dict(probe, inference={**probe["inference"], "roi_size": list(cfg.sampling.roi_size)})
    try:
        parse_config(windows)
    except ModelError as exc:
        message = str(exc).replace("config.json: ", "").replace("inference.roi_size", "sampling.roi_size")
        raise InputError(f"training config {cfg.name!r}: {message}") from exc


def output_structures(cfg: TrainConfig) -> tuple[str, ...]:
    """Canonical structure names of output channels 1..N.

    Raises
    ------
    InputError
        Unknown scheme, unknown structure or a structure outside the scheme.

    Examples
    --------
    >>> output_structures(load_config("leg-2d-unet"))[:2]
    ('leg_anterior_compartment_left', 'leg_anterior_compartment_right')
    """
    from myoscan.labels import load_catalog

    catalog = load_catalog()
    scheme = catalog.scheme(cfg.labels.scheme)
    if not cfg.labels.structures:
        return scheme.names
    names = []
    for name in cfg.labels.structures:
        scheme.id_of(name)  # raises when unknown or not in the scheme
        names.append(catalog.resolve(name).name)
    if len(set(names)) != len(names):
        raise InputError(f"labels.structures lists a structure twice: {', '.join(cfg.labels.structures)}")
    return tuple(names)


def bundle_config(
    cfg: TrainConfig,
    *,
    structures: Sequence[str] | None = None,
    training: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the model bundle ``config.json`` content for a training configuration.

    Parameters
    ----------
    cfg : TrainConfig
        Training configuration.
    structures : sequence of str, optional
        Output channel names (default :func:`output_structures`).
    training : mapping, optional
        Free-form record stored under ``training`` (data, iterations, metrics).

    Returns
    -------
    dict
        JSON-ready config (docs/model-bundle.md).
    """
    names = output_structures(cfg) if structures is None else tuple(structures)
    ids = {"0": "background", **{str(i): n for i, n in enumerate(names, start=1)}}
    return {
        "format_version": 1,
        "name": cfg.name,
        "description": cfg.description,
        "source": cfg.source,
        "architecture": _plain(dataclasses.asdict(cfg.architecture)),
        "inputs": {"contrasts": list(cfg.inputs.contrasts), "modality": cfg.inputs.modality},
        "preprocessing": _plain(cfg.preprocessing),
        "inference": _plain(cfg.inference),
        "postprocessing": _plain(cfg.postprocessing),
        "labels": {"scheme": cfg.labels.scheme, "ids": ids},
        "training": _plain(dict(training or {})),
    }
