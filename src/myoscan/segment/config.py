"""The parts of a bundle's ``config.json``, parsed and validated into frozen dataclasses.

``config.json`` stays plain JSON (the contract with ``myoscan.train``, see
docs/model-bundle.md); :func:`parse_config` checks it once, fills the defaults and
returns typed settings the preprocessing and inference code use. Every problem is
a one-line :class:`~myoscan.errors.ModelError` naming the offending key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from myoscan.errors import ModelError

__all__ = [
    "FORMAT_VERSION",
    "CT_WINDOW_ABDOMEN_HU",
    "CT_WINDOW_HU",
    "MRI_WINDOW",
    "InferenceConfig",
    "IntensityConfig",
    "ModelConfig",
    "PostprocessConfig",
    "PreprocessConfig",
    "canonical_contrast",
    "channel_counts",
    "label_names",
    "label_values",
    "parse_config",
]

FORMAT_VERSION = 1
CT_WINDOW_HU = (-57.0, 164.0)  # seed 004: thigh CT window, followed by gamma 2
CT_GAMMA = 2.0  # seed 004
CT_WINDOW_ABDOMEN_HU = (-160.0, 240.0)  # seed 003: window 400, level 40
MRI_WINDOW = (80.0, 450.0)  # seed 001: Dixon MRI window mapped to [0, 1]

#: Other spellings of Dixon contrast names -> the names used across myoscan (phantom, pipeline).
CONTRAST_ALIASES = {"in_phase": "inphase", "ip": "inphase", "opposed_phase": "outphase",
                    "out_phase": "outphase", "opposed": "outphase", "op": "outphase",
                    "fat_fraction": "fatfrac", "ff": "fatfrac"}

IntensityMode = Literal["window", "ct_window", "zscore", "percentile", "none"]


def canonical_contrast(name: str) -> str:
    """Name of a contrast as myoscan spells it: lower case, ``inphase``/``outphase``.

    Examples
    --------
    >>> canonical_contrast("In-Phase"), canonical_contrast("opposed_phase"), canonical_contrast("T1w")
    ('inphase', 'outphase', 't1w')
    """
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    return CONTRAST_ALIASES.get(key, key)


def _fail(key: str, expected: str, got: Any) -> ModelError:
    return ModelError(f"config.json: {key} must be {expected}, got {got!r}")


def _number_list(value: Any, key: str, length: int | None = None, *, allow_none: bool = False) -> tuple:
    if not isinstance(value, Sequence) or isinstance(value, str) or (length and len(value) != length):
        raise _fail(key, f"a list of {length or 'some'} numbers", value)
    for v in value:
        if v is None and allow_none:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _fail(key, f"a list of {length or 'some'} numbers", value)
    return tuple(v if v is None else float(v) for v in value)


@dataclass(frozen=True)
class IntensityConfig:
    """Intensity normalisation applied to every input channel separately.

    ``mode``:

    - ``window`` -- clip to ``window`` and map it linearly to [0, 1] (seed 001: [80, 450]);
    - ``ct_window`` -- the same on Hounsfield units, default [-57, 164] (seed 004); seed 003's
      window 400 / level 40 is ``window: [-160, 240]`` with ``gamma: 1``;
    - ``zscore`` -- subtract mean, divide by SD of the non-zero voxels; zeros stay 0
      (MuscleMap, MONAI ``NormalizeIntensity(nonzero=True)``);
    - ``percentile`` -- map the ``percentiles`` of the non-zero voxels to [0, 1];
    - ``none`` -- leave values as they are.

    ``gamma`` (window modes and percentile) raises the [0, 1] values to that power after
    scaling (seed 004 uses 2); ``clip`` clips to [0, 1] first.
    """

    mode: IntensityMode = "percentile"
    window: tuple[float, float] | None = None
    percentiles: tuple[float, float] = (0.5, 99.5)
    gamma: float = 1.0
    clip: bool = True

    def __post_init__(self) -> None:
        if self.mode == "ct_window" and self.window is None:
            object.__setattr__(self, "window", CT_WINDOW_HU)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> IntensityConfig:
        """Parse ``preprocessing.intensity``."""
        data = dict(data or {})
        mode = data.get("mode", "percentile")
        if mode not in ("window", "ct_window", "zscore", "percentile", "none"):
            raise _fail("preprocessing.intensity.mode", "window, ct_window, zscore, percentile or none", mode)
        window = data.get("window")
        if mode == "ct_window" and window is None:
            window = CT_WINDOW_HU
        if mode == "window" and window is None:
            raise _fail("preprocessing.intensity.window", "[low, high] for mode 'window'", window)
        if window is not None:
            window = _number_list(window, "preprocessing.intensity.window", 2)
            if not window[0] < window[1]:
                raise _fail("preprocessing.intensity.window", "[low, high] with low < high", list(window))
        percentiles = _number_list(
            data.get("percentiles", (0.5, 99.5)), "preprocessing.intensity.percentiles", 2
        )
        if not 0 <= percentiles[0] < percentiles[1] <= 100:
            raise _fail("preprocessing.intensity.percentiles", "0 <= low < high <= 100", list(percentiles))
        gamma = data.get("gamma", CT_GAMMA if mode == "ct_window" and "gamma" not in data else 1.0)
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or gamma <= 0:
            raise _fail("preprocessing.intensity.gamma", "a number > 0", gamma)
        return cls(mode=mode, window=window, percentiles=percentiles, gamma=float(gamma),
                   clip=bool(data.get("clip", True)))


@dataclass(frozen=True)
class PreprocessConfig:
    """Geometry and intensity preparation of the input (see :mod:`myoscan.segment.preprocess`).

    ``orientation`` is an axis code such as ``"RAS"`` (the network sees the image with
    its axes permuted/flipped to it, no interpolation) or ``None`` to keep the stored
    order. ``target_spacing_mm`` entries of ``None`` keep the input spacing on that axis;
    ``None`` as a whole keeps the input grid. ``foreground_threshold`` is the raw value
    above which a voxel counts as body for cropping (default: Otsu's threshold per channel
    for MRI, -500 HU for CT);
    with ``crop_source="normalized"`` the threshold (default 0) applies to the normalised
    image instead, as MONAI's ``CropForeground`` after ``NormalizeIntensity`` does in
    MuscleMap. ``crop_margin_vox`` overrides ``crop_margin_mm`` with a voxel count.
    """

    orientation: str | None = "RAS"
    target_spacing_mm: tuple[float | None, float | None, float | None] | None = None
    intensity: IntensityConfig = field(default_factory=IntensityConfig)
    crop_foreground: bool = False
    foreground_threshold: float | None = None
    crop_margin_mm: float = 10.0
    crop_margin_vox: int | None = None
    crop_source: Literal["raw", "normalized"] = "raw"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> PreprocessConfig:
        """Parse ``preprocessing``."""
        data = dict(data or {})
        orientation = data.get("orientation", "RAS")
        if orientation is not None:
            code = str(orientation).upper()
            axes = [{"R": 0, "L": 0, "A": 1, "P": 1, "S": 2, "I": 2}.get(c) for c in code]
            if len(code) != 3 or None in axes or sorted(axes) != [0, 1, 2]:  # type: ignore[type-var]
                raise _fail("preprocessing.orientation", "a 3-letter axis code like 'RAS' or null",
                            orientation)
            orientation = code
        spacing = data.get("target_spacing_mm")
        if spacing is not None:
            spacing = _number_list(spacing, "preprocessing.target_spacing_mm", 3, allow_none=True)
            if any(s is not None and s <= 0 for s in spacing):
                raise _fail("preprocessing.target_spacing_mm", "positive numbers or null", list(spacing))
        threshold = data.get("foreground_threshold")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
            raise _fail("preprocessing.foreground_threshold", "a number or null", threshold)
        source = data.get("crop_source", "raw")
        if source not in ("raw", "normalized"):
            raise _fail("preprocessing.crop_source", "'raw' or 'normalized'", source)
        margin_vox = data.get("crop_margin_vox")
        if margin_vox is not None and (not isinstance(margin_vox, int) or margin_vox < 0):
            raise _fail("preprocessing.crop_margin_vox", "a whole number >= 0 or null", margin_vox)
        return cls(
            orientation=orientation,
            target_spacing_mm=spacing,
            intensity=IntensityConfig.from_dict(data.get("intensity")),
            crop_foreground=bool(data.get("crop_foreground", False)),
            foreground_threshold=None if threshold is None else float(threshold),
            crop_margin_mm=float(data.get("crop_margin_mm", 10.0)),
            crop_margin_vox=margin_vox,
            crop_source=source,
        )


@dataclass(frozen=True)
class InferenceConfig:
    """How the network is run over the image (see :mod:`myoscan.segment.inference`).

    ``slice2d`` runs axial slices (the third axis after reorientation) through a 2D
    network; ``sliding3d`` runs 3D patches. ``roi_size`` is the window (2 or 3 numbers),
    ``overlap`` the fraction windows share, ``blend`` the MONAI blending mode
    (``gaussian`` weights window centres higher, ``constant`` averages), ``sigma_scale``
    the Gaussian's SD as a fraction of the window.
    """

    mode: Literal["slice2d", "sliding3d"] = "slice2d"
    roi_size: tuple[int, ...] = (256, 256)
    overlap: float = 0.5
    blend: Literal["gaussian", "constant"] = "gaussian"
    sigma_scale: float = 0.125
    sw_batch_size: int = 4

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, spatial_dims: int) -> InferenceConfig:
        """Parse ``inference``; ``spatial_dims`` comes from the architecture."""
        data = dict(data or {})
        mode = data.get("mode", "slice2d" if spatial_dims == 2 else "sliding3d")
        expected_mode = "slice2d" if spatial_dims == 2 else "sliding3d"
        if mode != expected_mode:
            raise _fail("inference.mode", f"{expected_mode!r} for a {spatial_dims}D architecture", mode)
        roi = data.get("roi_size", (256, 256) if spatial_dims == 2 else (96, 96, 96))
        roi = _number_list(roi, "inference.roi_size", spatial_dims)
        if any(r < 1 or r != int(r) for r in roi):
            raise _fail("inference.roi_size", "whole numbers >= 1", list(roi))
        overlap = data.get("overlap", 0.5)
        if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0 <= overlap < 1:
            raise _fail("inference.overlap", "a number in [0, 1)", overlap)
        blend = data.get("blend", "gaussian")
        if blend not in ("gaussian", "constant"):
            raise _fail("inference.blend", "'gaussian' or 'constant'", blend)
        batch = data.get("sw_batch_size", 4)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise _fail("inference.sw_batch_size", "a whole number >= 1", batch)
        return cls(mode=mode, roi_size=tuple(int(r) for r in roi), overlap=float(overlap), blend=blend,
                   sigma_scale=float(data.get("sigma_scale", 0.125)), sw_batch_size=batch)


@dataclass(frozen=True)
class PostprocessConfig:
    """Clean-up of the label map: hole filling (seed 003), largest component, left/right fix."""

    fill_holes: bool = False
    largest_component: bool = False
    lr_consistency: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> PostprocessConfig:
        """Parse ``postprocessing``."""
        data = dict(data or {})
        unknown = set(data) - {"fill_holes", "largest_component", "lr_consistency"}
        if unknown:
            raise _fail("postprocessing", "keys fill_holes, largest_component, lr_consistency",
                        sorted(unknown))
        return cls(**{k: bool(v) for k, v in data.items()})


@dataclass(frozen=True)
class ModelConfig:
    """A validated bundle config; ``raw`` is the JSON it came from."""

    name: str
    architecture: Mapping[str, Any]
    spatial_dims: int
    contrasts: tuple[str, ...]
    modality: Literal["mri", "ct"]
    preprocessing: PreprocessConfig
    inference: InferenceConfig
    postprocessing: PostprocessConfig
    label_scheme: str | None
    labels: Mapping[int, str]
    raw: Mapping[str, Any]
    label_values: Mapping[int, int] | None = None


def label_names(config: Mapping[str, Any]) -> dict[int, str]:
    """Network output channel -> structure name from ``labels.ids`` (background left out).

    Examples
    --------
    >>> label_names({"labels": {"ids": {"0": "background", "1": "soleus_left"}}})
    {1: 'soleus_left'}
    """
    labels = config.get("labels")
    if not isinstance(labels, Mapping) or not isinstance(labels.get("ids"), Mapping) or not labels["ids"]:
        raise _fail("labels.ids", "a mapping of output channel -> structure name", labels)
    names: dict[int, str] = {}
    for key, name in labels["ids"].items():
        try:
            index = int(key)
        except (TypeError, ValueError):
            raise _fail("labels.ids keys", "channel numbers as strings", key) from None
        if index < 0 or not isinstance(name, str) or not name:
            raise _fail(f"labels.ids[{key!r}]", "a structure name for a channel >= 0", name)
        if index > 0:
            names[index] = name
    if not names:
        raise _fail("labels.ids", "at least one foreground label", labels["ids"])
    if len(set(names.values())) != len(names):
        raise _fail("labels.ids", "unique structure names", sorted(names.values()))
    return dict(sorted(names.items()))


def label_values(config: Mapping[str, Any]) -> dict[int, int] | None:
    """Read the optional ``labels.values``: the value written for each output channel.

    Without it the written values are the ids of ``labels.scheme`` (or the channel
    numbers). Imported models use it to keep their own label values (MuscleMap).

    Examples
    --------
    >>> label_values({"labels": {"ids": {"1": "a_left"}, "values": {"1": 101}}})
    {1: 101}
    """
    raw = (config.get("labels") or {}).get("values")
    if raw is None:
        return None
    names = label_names(config)
    try:
        values = {int(k): int(v) for k, v in raw.items()}
    except (AttributeError, TypeError, ValueError):
        raise _fail("labels.values", "a mapping of output channel -> whole number", raw) from None
    if set(values) != set(names) or len(set(values.values())) != len(values) or min(values.values()) < 1:
        raise _fail("labels.values", "one distinct value >= 1 for every channel in labels.ids", raw)
    return dict(sorted(values.items()))


def channel_counts(config: Mapping[str, Any]) -> tuple[int, int]:
    """Network input and output channels implied by a config: (contrasts, 1 + max label).

    Raises
    ------
    ModelError
        When ``architecture.params`` states different numbers.
    """
    contrasts = (config.get("inputs") or {}).get("contrasts")
    if not isinstance(contrasts, Sequence) or isinstance(contrasts, str) or not contrasts:
        raise _fail("inputs.contrasts", "a non-empty list of contrast names", contrasts)
    n_in, n_out = len(contrasts), max(label_names(config)) + 1
    params = (config.get("architecture") or {}).get("params") or {}
    for key, derived in (("in_channels", n_in), ("out_channels", n_out)):
        if key in params and params[key] != derived:
            raise ModelError(
                f"config.json: architecture.params.{key} is {params[key]} but the "
                f"{'inputs.contrasts' if key == 'in_channels' else 'labels.ids'} imply {derived}"
            )
    return n_in, n_out


def parse_config(config: Mapping[str, Any]) -> ModelConfig:
    """Validate a bundle's ``config.json`` content and return typed settings.

    Raises
    ------
    ModelError
        Unsupported ``format_version``, unknown architecture, invalid or inconsistent values.

    Examples
    --------
    >>> cfg = parse_config({"name": "x", "architecture": {"name": "unet2d"},
    ...                     "inputs": {"contrasts": ["water"]},
    ...                     "labels": {"ids": {"1": "soleus_left"}}})
    >>> cfg.inference.mode, cfg.contrasts
    ('slice2d', ('water',))
    """
    from myoscan.segment.networks import input_multiple, spatial_dims_of

    if not isinstance(config, Mapping):
        raise ModelError(f"config.json must hold a JSON object, got {type(config).__name__}")
    version = config.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ModelError(
            f"config.json: format_version {version!r} is not supported by this myoscan "
            f"(expected {FORMAT_VERSION}); upgrade myoscan"
        )
    architecture = config.get("architecture")
    if not isinstance(architecture, Mapping) or "name" not in architecture:
        raise _fail("architecture", "an object with a 'name'", architecture)
    spatial_dims = spatial_dims_of(architecture)
    channel_counts(config)
    inputs = config.get("inputs") or {}
    contrasts = tuple(canonical_contrast(c) for c in inputs["contrasts"])
    if len(set(contrasts)) != len(contrasts):
        raise _fail("inputs.contrasts", "distinct names", list(contrasts))
    modality = inputs.get("modality", "ct" if contrasts == ("ct",) else "mri")
    if modality not in ("mri", "ct"):
        raise _fail("inputs.modality", "'mri' or 'ct'", modality)
    inference = InferenceConfig.from_dict(config.get("inference"), spatial_dims)
    multiple = input_multiple(architecture)
    if any(r % multiple for r in inference.roi_size):
        raise _fail("inference.roi_size", f"multiples of {multiple} for {architecture['name']}",
                    list(inference.roi_size))
    params = architecture.get("params") or {}
    if architecture["name"] == "unetr":
        img_size = tuple(params.get("img_size", (96, 96, 96)))
        if tuple(inference.roi_size) != img_size:
            raise _fail("inference.roi_size", f"equal to UNETR img_size {list(img_size)}",
                        list(inference.roi_size))
    labels = config.get("labels") or {}
    return ModelConfig(
        name=str(config.get("name") or "unnamed"),
        architecture=architecture,
        spatial_dims=spatial_dims,
        contrasts=contrasts,
        modality=modality,
        preprocessing=PreprocessConfig.from_dict(config.get("preprocessing")),
        inference=inference,
        postprocessing=PostprocessConfig.from_dict(config.get("postprocessing")),
        label_scheme=labels.get("scheme"),
        labels=label_names(config),
        raw=config,
        label_values=label_values(config),
    )
