"""``make_phantom``: one synthetic Dixon or CT scan with its exact ground truth."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from myoscan.errors import InputError
from myoscan.io import Volume
from myoscan.labels import Scheme, load_catalog
from myoscan.phantom.anatomy import REGIONS, RegionAnatomy, Scene, get_anatomy, instantiate
from myoscan.phantom.composition import (
    IMF_LEVELS,
    draw_imf_pct,
    eroded_labels,
    interior_mask,
    marbling_field,
    muscle_fat_fraction,
)
from myoscan.phantom.geometry import Grid
from myoscan.phantom.materials import MUSCLE_SIGNAL, TISSUES, code_of, lookup
from myoscan.phantom.raster import Raster, rasterize
from myoscan.phantom.signal import (
    acquire_ct,
    acquire_dixon,
    bias_field,
    clean_ct,
    clean_dixon,
    swap_region,
)
from myoscan.phantom.subject import Subject, sample_subject
from myoscan.phantom.truth import DEFINITIONS, label_rows, regional_indices

__all__ = [
    "DEFAULT_CT_NOISE_HU",
    "DEFAULT_DIXON_NOISE",
    "DIXON_IMAGES",
    "MODALITIES",
    "Phantom",
    "PhantomConfig",
    "make_phantom",
]

Modality = Literal["dixon", "ct"]
MODALITIES: tuple[str, ...] = ("dixon", "ct")
#: Dixon images in writing order.
DIXON_IMAGES: tuple[str, ...] = ("water", "fat", "inphase", "outphase", "fatfrac")
#: Default Dixon noise: SD of the complex noise per echo, relative to the muscle signal (SNR 50).
DEFAULT_DIXON_NOISE = 0.02
#: Default CT noise SD (HU), typical of 3 mm reconstructions.
DEFAULT_CT_NOISE_HU = 12.0
#: Lean (fat-free) muscle CT number: mean and SD across subjects (HU).
LEAN_MUSCLE_HU = (54.0, 3.0)
#: SD of the lean CT number between muscles of one subject (HU).
LEAN_HU_LABEL_SD = 2.5
#: SD (log scale) of the total Dixon signal between muscles of one subject.
MUSCLE_SIGNAL_SD = 0.04
_MAX_VOXELS = 80_000_000


@dataclass(frozen=True)
class PhantomConfig:
    """Settings of a phantom; ``None`` means the region/modality default.

    Parameters
    ----------
    shape : tuple of 3 int, optional
        Voxels along I (right->left), J (anterior->posterior), K (inferior->superior).
    spacing_mm : tuple of 3 float, optional
        Voxel size in mm. Given only one of shape/spacing, the other keeps the default
        field of view; the anatomy is in millimetres, a smaller field of view shows less.
    noise : float, optional
        Dixon: SD of the complex Gaussian noise per echo as a fraction of the muscle signal
        (default 0.02); CT: SD in HU (default 12). 0 = noise-free.
    bias_field : bool
        Multiply the Dixon signals by a smooth field (coil sensitivity).
    bias_strength : float
        Relative spread of the bias field.
    swap : bool
        Swap water and fat inside a blob (Dixon reconstruction error), recorded as a mask.
    imf : {'low', 'normal', 'high', 'random'}
        Fat infiltration: reference values x 0.5, x 1 or x 2.6 (with the subject's age/BMI/sex
        effect), or uniform 2-25 % per muscle.
    sex : {'female', 'male'}, optional
    age_years, height_cm, bmi_kg_m2 : float, optional
        Fix demographics instead of drawing them.
    marbling : float
        Share of the IMF carried by fat streaks (0 = diffuse fat only).
    partial_volume : bool
        Blur tissue borders in-plane (never the eroded muscle interiors).
    erosion : {'cube', 'cross'}
        Eroded mask that defines the true IMF: 3x3x3 cube (seed 000) or 6-connected cross.
    """

    shape: tuple[int, int, int] | None = None
    spacing_mm: tuple[float, float, float] | None = None
    noise: float | None = None
    bias_field: bool = False
    bias_strength: float = 0.25
    swap: bool = False
    imf: Literal["low", "normal", "high", "random"] = "normal"
    sex: Literal["female", "male"] | None = None
    age_years: float | None = None
    height_cm: float | None = None
    bmi_kg_m2: float | None = None
    marbling: float = 0.3
    partial_volume: bool = True
    erosion: Literal["cube", "cross"] = "cube"

    def resolved(self, region: str, modality: str) -> PhantomConfig:
        """Return a validated copy with grid and noise defaults filled in.

        Raises
        ------
        InputError
            On an unknown region/modality or an invalid value.
        """
        if region not in REGIONS:
            raise InputError(f"unknown phantom region {region!r}; choose one of {', '.join(REGIONS)}")
        if modality not in MODALITIES:
            raise InputError(f"unknown phantom modality {modality!r}; choose one of {', '.join(MODALITIES)}")
        shape, spacing = _grid_defaults(get_anatomy(region), modality, self.shape, self.spacing_mm)
        noise = self.noise if self.noise is not None else (
            DEFAULT_DIXON_NOISE if modality == "dixon" else DEFAULT_CT_NOISE_HU)
        _validate(self, modality, shape, spacing, noise)
        return dataclasses.replace(self, shape=shape, spacing_mm=spacing, noise=float(noise))


def _grid_defaults(
    anatomy: RegionAnatomy, modality: str, shape: Sequence[int] | None, spacing: Sequence[float] | None,
) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    default_shape, default_spacing = anatomy.grids[modality]
    fov = np.asarray(default_shape) * np.asarray(default_spacing)
    if shape is None and spacing is None:
        return tuple(default_shape), tuple(default_spacing)  # type: ignore[return-value]
    if shape is None:
        spacing_arr = np.asarray(spacing, dtype=float)
        if np.any(spacing_arr <= 0):
            raise InputError(f"phantom spacing must be > 0 mm, got {tuple(spacing_arr)}")
        shape = tuple(int(max(round(f / s), 1)) for f, s in zip(fov, spacing_arr, strict=True))
    if spacing is None:
        spacing = tuple(float(f / max(n, 1)) for f, n in zip(fov, shape, strict=True))
    return tuple(int(n) for n in shape), tuple(float(s) for s in spacing)  # type: ignore[return-value]


def _validate(cfg: PhantomConfig, modality: str, shape: tuple[int, int, int],
              spacing: tuple[float, float, float], noise: float) -> None:
    if len(shape) != 3 or min(shape) < 4:
        raise InputError(f"phantom shape needs 3 sizes of at least 4 voxels, got {shape}")
    if int(np.prod(shape)) > _MAX_VOXELS:
        raise InputError(f"phantom shape {shape} has {int(np.prod(shape)):,} voxels; the limit is "
                         f"{_MAX_VOXELS:,} -- use a coarser spacing")
    if len(spacing) != 3 or not all(0.1 <= s <= 20 for s in spacing):
        raise InputError(f"phantom spacing must be 3 values within 0.1-20 mm, got {spacing}")
    if not np.isfinite(noise) or noise < 0:
        raise InputError(f"phantom noise must be >= 0, got {noise}")
    if modality == "dixon" and noise > 0.5:
        raise InputError(f"Dixon noise is relative to the muscle signal (e.g. 0.02); got {noise}, "
                         "expected 0-0.5")
    if modality == "ct" and noise > 200:
        raise InputError(f"CT noise is an SD in HU (e.g. 12); got {noise}, expected 0-200")
    if modality == "ct" and (cfg.bias_field or cfg.swap):
        raise InputError("--bias-field and --swap simulate Dixon MRI artefacts; drop them for CT")
    if cfg.imf not in (*IMF_LEVELS, "random"):
        raise InputError(f"unknown IMF level {cfg.imf!r}; choose low, normal, high or random")
    if not 0 <= cfg.marbling <= 1:
        raise InputError(f"marbling share must be within 0-1, got {cfg.marbling}")
    if not 0 <= cfg.bias_strength <= 1:
        raise InputError(f"bias_strength must be within 0-1, got {cfg.bias_strength}")
    if cfg.erosion not in ("cube", "cross"):
        raise InputError(f"erosion must be 'cube' or 'cross', got {cfg.erosion!r}")
    if cfg.sex not in (None, "female", "male"):
        raise InputError(f"sex must be 'female' or 'male', got {cfg.sex!r}")
    for name, value, lo, hi in (("age_years", cfg.age_years, 18, 100),
                                ("height_cm", cfg.height_cm, 130, 220),
                                ("bmi_kg_m2", cfg.bmi_kg_m2, 15, 60)):
        if value is not None and not lo <= value <= hi:
            raise InputError(f"{name} must be within {lo}-{hi}, got {value}")


@dataclass(frozen=True, eq=False)
class Phantom:
    """A synthetic scan and its ground truth.

    Attributes
    ----------
    region, modality : str
    images : dict of str to Volume
        ``water, fat, inphase, outphase, fatfrac`` (Dixon, float32) or ``ct`` (int16 HU).
    labels : Volume
        Label map in the region's catalog scheme ids.
    tissue : Volume
        Tissue classes (:data:`myoscan.phantom.materials.TISSUES`).
    swap_mask : Volume or None
        Voxels where water and fat were swapped (``swap=True``).
    truth : dict
        JSON-ready ground truth (see ``docs/phantom.md``).
    subject : Subject
    config : PhantomConfig
        Resolved settings.
    """

    region: str
    modality: str
    images: dict[str, Volume]
    labels: Volume
    tissue: Volume
    swap_mask: Volume | None
    truth: dict[str, Any]
    subject: Subject
    config: PhantomConfig


def _seed_sequence(seed: int | Sequence[int] | np.random.SeedSequence) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    try:
        entropy = [int(seed)] if np.isscalar(seed) else [int(s) for s in seed]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise InputError(f"seed must be a whole number or a sequence of them, got {seed!r}") from None
    if any(s < 0 for s in entropy):
        raise InputError(f"seed must be >= 0, got {seed!r}")
    return np.random.SeedSequence(entropy[0] if len(entropy) == 1 else entropy)


def _label_map(raster: Raster, scene: Scene, scheme: Scheme) -> np.ndarray:
    """Catalog ids per voxel (internal layout) from the raster's owners."""
    names = set(scheme.names)
    lut = np.zeros(len(raster.shapes) + 1, np.int64)
    for index, shape in enumerate(raster.shapes):
        if shape.spec.labelled and shape.structure_name in names:
            lut[index + 1] = scheme.id_of(shape.structure_name)
    dtype = np.uint8 if lut.max() < 256 else np.uint16
    labels = lut.astype(dtype)[raster.owner]
    for index, shape in enumerate(raster.shapes):
        window = shape.spec.label_t_range
        if window is None or lut[index + 1] == 0:
            continue
        outside = np.flatnonzero((scene.t_eval < window[0]) | (scene.t_eval > window[1]))
        for k in outside:
            labels[k][raster.owner[k] == index + 1] = 0
        _keep_largest(labels, int(lut[index + 1]))
    return labels


def _keep_largest(labels: np.ndarray, label_id: int) -> None:
    """Unlabel all but the largest 26-connected piece of ``label_id`` (level-bound labels)."""
    where = ndimage.find_objects((labels == label_id).astype(np.uint8))
    if not where or where[0] is None:
        return
    sub = labels[where[0]]
    mine = sub == label_id
    pieces, count = ndimage.label(mine, structure=np.ones((3, 3, 3), bool))
    if count > 1:
        sizes = np.bincount(pieces.ravel())
        sizes[0] = 0
        sub[mine & (pieces != int(sizes.argmax()))] = 0


def _to_volume(internal: np.ndarray, affine: np.ndarray) -> Volume:
    """Wrap an internal (K, J, I) array as a Volume (I, J, K) without copying (F-ordered view)."""
    return Volume(internal.transpose(2, 1, 0), affine)


def _imf_table(scheme: Scheme, anatomy: RegionAnatomy, subject: Subject, level: str,
               rng: np.random.Generator) -> np.ndarray:
    """Draw the true IMF (%) per label id of the scheme's muscles (NaN for bones)."""
    ids = [i for i, s in scheme.labels.items() if s.tissue == "muscle"]
    structures = [scheme.labels[i] for i in ids]
    pct = draw_imf_pct([s.name for s in structures], [s.base for s in structures],
                       dict(anatomy.imf_pct), subject.imf_factor, level, rng)  # type: ignore[arg-type]
    table = np.full(max(scheme.ids) + 1, np.nan)
    table[ids] = pct
    return table


def make_phantom(
    region: str,
    modality: Modality = "dixon",
    *,
    seed: int | Sequence[int] | np.random.SeedSequence = 0,
    config: PhantomConfig | None = None,
) -> Phantom:
    """Generate one synthetic scan of ``region`` with exact ground truth.

    Parameters
    ----------
    region : {'leg', 'thigh', 'abdomen', 'cervical'}
        Body region = label scheme of the label map.
    modality : {'dixon', 'ct'}
        Two-point Dixon MRI (water, fat, in-phase, opposed-phase, fat fraction) or CT.
    seed : int or sequence of int
        Everything (subject, anatomy, IMF, texture, noise) follows from it; the same seed
        and config give byte-identical images. Independent streams are used for anatomy,
        texture and noise, so changing the noise keeps the anatomy.
    config : PhantomConfig, optional
        Grid, noise, artefacts, IMF level, demographics.

    Returns
    -------
    Phantom

    Raises
    ------
    InputError
        On invalid settings.

    Examples
    --------
    >>> cfg = PhantomConfig(spacing_mm=(2.84, 2.84, 10.0), noise=0)
    >>> ph = make_phantom("leg", seed=1, config=cfg)
    >>> ph.labels.shape, sorted(ph.images)
    ((112, 66, 30), ['fat', 'fatfrac', 'inphase', 'outphase', 'water'])
    """
    cfg = (config or PhantomConfig()).resolved(region, modality)
    anatomy = get_anatomy(region)
    scheme = load_catalog().scheme(region)
    default_shape, default_spacing = anatomy.grids[modality]
    grid = Grid(cfg.shape, cfg.spacing_mm,  # type: ignore[arg-type]
                anatomy_length_mm=default_shape[2] * default_spacing[2])
    streams = [np.random.default_rng(s) for s in _seed_sequence(seed).spawn(8)]
    subject = sample_subject(streams[0], age_decline_per_year=anatomy.age_decline_per_year,
                             sex=cfg.sex, age_years=cfg.age_years, height_cm=cfg.height_cm,
                             bmi_kg_m2=cfg.bmi_kg_m2)
    scene = instantiate(anatomy, grid, subject, streams[1])
    raster = rasterize(scene, streams[2], septal_fat=0.05 + 0.02 * subject.imf_factor,
                       visceral_fat=float(np.clip(0.4 + 0.015 * (subject.bmi_kg_m2 - 25), 0.2, 0.7)))
    labels = _label_map(raster, scene, scheme)
    eroded = eroded_labels(labels, cfg.erosion)
    muscle = raster.material == code_of("muscle")
    imf = _imf_table(scheme, anatomy, subject, cfg.imf, streams[3])
    imf_fraction = np.nan_to_num(imf, nan=0.0) / 100
    default_imf = float(np.nanmedian(imf)) / 100
    marbling = np.zeros(grid.internal_shape, np.float32)
    where = ndimage.find_objects(muscle.astype(np.uint8))
    if where and where[0] is not None:     # the pattern is only needed around the muscles
        around = where[0]
        marbling[around] = marbling_field(marbling[around].shape, grid.spacing_mm, streams[3])
    fraction, _ = muscle_fat_fraction(labels, eroded, muscle, imf_fraction, marbling, cfg.marbling,
                                      default_imf)
    del marbling
    spread = streams[3].standard_normal(len(imf_fraction))
    interior = interior_mask(labels)
    voxel_ml = float(np.prod(grid.spacing_mm)) / 1000
    affine = grid.affine()
    swap = None
    extra: dict[str, Any] = {}
    if modality == "dixon":
        signal = MUSCLE_SIGNAL * np.exp(MUSCLE_SIGNAL_SD * spread)
        signal[0] = MUSCLE_SIGNAL
        water, fat = clean_dixon(raster.material, fraction, labels, interior, signal,
                                 partial_volume=cfg.partial_volume)
        rows = label_rows(labels, scheme, voxel_ml, eroded=eroded, imf_pct=imf, water=water, fat=fat)
        bias = bias_field(grid.internal_shape, cfg.bias_strength, streams[4]) if cfg.bias_field else None
        if cfg.swap:
            body = raster.material != code_of("air")
            swap = swap_region(body, grid.spacing_mm, streams[5])
        arrays = acquire_dixon(water, fat, noise=float(cfg.noise), bias=bias, swap=swap, rng=streams[6])
        del water, fat
        extra["dixon"] = {"muscle_signal": MUSCLE_SIGNAL, "noise_sd": float(cfg.noise) * MUSCLE_SIGNAL}
    else:
        lean_hu = float(LEAN_MUSCLE_HU[0] + LEAN_MUSCLE_HU[1] * streams[7].standard_normal())
        lean = lean_hu + LEAN_HU_LABEL_SD * spread
        lean[0] = lean_hu
        hu = clean_ct(raster.material, fraction, labels, interior, lean,
                      partial_volume=cfg.partial_volume)
        clean = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
        rows = label_rows(labels, scheme, voxel_ml, eroded=eroded, ct=clean, muscle_fat_pct=imf)
        arrays = {"ct": acquire_ct(hu, noise_hu=float(cfg.noise), rng=streams[6])}
        del hu, clean
        extra["ct"] = {"lean_muscle_hu": lean_hu, "noise_sd_hu": float(cfg.noise)}
    extra["vertebral_levels_z_mm"] = _level_z_ranges(anatomy, scene, grid)
    truth = _truth(region, modality, seed, cfg, subject, grid, scheme, rows, labels, swap, extra)
    tissue = lookup("tissue")[raster.material]
    return Phantom(
        region=region,
        modality=modality,
        images={name: _to_volume(a, affine) for name, a in arrays.items()},
        labels=_to_volume(labels, affine),
        tissue=_to_volume(tissue, affine),
        swap_mask=None if swap is None else _to_volume(swap.astype(np.uint8), affine),
        truth=truth,
        subject=subject,
        config=cfg,
    )


def _level_z_ranges(anatomy: RegionAnatomy, scene: Scene, grid: Grid) -> dict[str, list[float]]:
    """World z (mm, RAS) of the lowest and highest slice centre inside each vertebral level."""
    z_mm = grid.affine()[2, 2] * np.arange(grid.shape[2]) + grid.affine()[2, 3]
    out = {}
    for level, (low, high) in anatomy.levels.items():
        inside = np.flatnonzero((scene.t_eval >= low) & (scene.t_eval < high))
        if inside.size:
            out[level] = [float(z_mm[inside[0]]), float(z_mm[inside[-1]])]
    return out


def _truth(region: str, modality: str, seed: Any, cfg: PhantomConfig, subject: Subject, grid: Grid,
           scheme: Scheme, rows: list[dict[str, Any]], labels: np.ndarray, swap: np.ndarray | None,
           extra: dict[str, Any]) -> dict[str, Any]:
    from myoscan import __version__

    present = {r["label_id"] for r in rows}
    entropy = _seed_sequence(seed).entropy
    truth: dict[str, Any] = {
        "generator": "myoscan.phantom",
        "myoscan_version": __version__,
        "region": region,
        "modality": modality,
        "label_scheme": scheme.name,
        "seed": entropy if isinstance(entropy, int) else list(entropy),
        "config": dataclasses.asdict(cfg),
        "subject": subject.as_dict(),
        "grid": {"shape": list(grid.shape), "spacing_mm": list(grid.spacing_mm),
                 "voxel_volume_ml": float(np.prod(grid.spacing_mm)) / 1000,
                 "affine": grid.affine().tolist(),
                 "orientation": "I: right->left, J: anterior->posterior, K: inferior->superior"},
        "definitions": DEFINITIONS,
        "labels": rows,
        "regional": regional_indices(rows, scheme, subject.height_cm),
        "absent_structures": [s.name for i, s in scheme.labels.items() if i not in present],
        "tissues": dict(TISSUES),
        **extra,
    }
    if swap is not None:
        hit = np.unique(labels[swap])
        truth["swap"] = {
            "n_voxels": int(swap.sum()),
            "volume_ml": float(swap.sum()) * float(np.prod(grid.spacing_mm)) / 1000,
            "labels": [scheme.labels[int(i)].name for i in hit if int(i) in scheme.labels],
        }
    return truth
