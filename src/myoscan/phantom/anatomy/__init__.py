"""Region anatomies (leg, thigh, abdomen, cervical) and their per-subject instances.

Each region module defines a :class:`RegionAnatomy`: sections (limbs or trunk) and shapes
written for a reference subject (170 cm, sex-neutral) on the left side. :func:`instantiate`
turns it into one subject's shapes: sizes scaled by the subject's frame and muscle factors,
every muscle varied in size (with a small left/right asymmetry), position, orientation and
outline, the anatomy shifted a little along the scan -- all from one random generator.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from myoscan.phantom.geometry import Grid, SectionSpec, SectionState, ShapeSpec, ShapeState, Track
from myoscan.phantom.subject import Subject

__all__ = ["REGIONS", "RegionAnatomy", "Scene", "get_anatomy", "grown", "instantiate"]

#: Regions with a phantom anatomy, in the order of the label catalog schemes.
REGIONS: tuple[str, ...] = ("leg", "thigh", "abdomen", "cervical")

#: SD of per-muscle size variation (log scale) and of the left/right difference.
MUSCLE_SIZE_SD = 0.08
MUSCLE_ASYMMETRY_SD = 0.035
#: SD of muscle centre jitter (normalised section units) and of outline rotation (degrees).
CENTRE_JITTER_SD = 0.02
ANGLE_JITTER_SD_DEG = 5.0


@dataclass(frozen=True)
class RegionAnatomy:
    """Everything a region's phantom is drawn from.

    Parameters
    ----------
    name : str
        Region = label scheme name.
    sections, shapes : tuple
        Geometry for the reference subject (see :mod:`myoscan.phantom.geometry`).
    grids : mapping
        Default ``(shape, spacing_mm)`` per modality.
    imf_pct : mapping of str to float
        Reference IMF (% fat signal on eroded masks) per structure base name.
    age_decline_per_year : float
        Fractional muscle loss per year after 40.
    description : str
        One line for docs and truth.json.
    levels : mapping of str to (float, float)
        Vertebral levels in the scan: name -> ``t`` range (bottom, top).
    """

    name: str
    sections: tuple[SectionSpec, ...]
    shapes: tuple[ShapeSpec, ...]
    grids: Mapping[str, tuple[tuple[int, int, int], tuple[float, float, float]]]
    imf_pct: Mapping[str, float] = field(default_factory=dict)
    age_decline_per_year: float = 0.0
    description: str = ""
    levels: Mapping[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class Scene:
    """One subject's instantiated anatomy on a grid."""

    grid: Grid
    sections: list[SectionState]
    shapes: list[ShapeState]
    t_eval: np.ndarray


def grown(rows: tuple, kind: str, factor: float) -> Track:
    """Key rows with the outline enlarged by ``factor`` (ellipse radii, arc thickness).

    Muscle outlines are drawn larger than their share of the section so that neighbours
    overlap and the competition fills the fascia (see :mod:`myoscan.phantom.geometry`).

    Examples
    --------
    >>> grown(((0.0, 0.1, 0.2, 0.3, 0.4, 10.0),), "ellipse", 2.0).rows
    ((0.0, 0.1, 0.2, 0.6, 0.8, 10.0),)
    """
    if kind == "ellipse":
        return Track(tuple((t, x, y, rx * factor, ry * factor, a) for t, x, y, rx, ry, a in rows))
    return Track(tuple((t, x, y, r, phi, half, h * factor) for t, x, y, r, phi, half, h in rows))


def get_anatomy(region: str) -> RegionAnatomy:
    """Return the :class:`RegionAnatomy` of ``region`` (one of :data:`REGIONS`)."""
    if region not in REGIONS:
        raise ValueError(f"unknown phantom region {region!r}; expected one of {', '.join(REGIONS)}")
    return importlib.import_module(f"myoscan.phantom.anatomy.{region}").ANATOMY


def _within(t: np.ndarray, t_range: tuple[float, float]) -> np.ndarray:
    """Slices inside ``t_range``; an end at 0 or 1 is open (the anatomy continues beyond the scan)."""
    lo, hi = t_range
    return ((t >= lo) | (lo <= 0.0)) & ((t <= hi) | (hi >= 1.0))


def _fade(t: np.ndarray, t_range: tuple[float, float], width: float) -> np.ndarray:
    """1 inside ``t_range``, falling smoothly to 0 over ``width`` at ends inside (0, 1)."""
    lo, hi = t_range
    w = np.ones_like(t)
    for edge, direction in ((lo, 1.0), (hi, -1.0)):
        if 0.0 < edge < 1.0:
            x = np.clip(direction * (t - edge) / max(width, 1e-6), 0.0, 1.0)
            w = w * x * x * (3 - 2 * x)
    return w


def _section_states(spec: SectionSpec, t_eval: np.ndarray, subject: Subject,
                    rng: np.random.Generator) -> dict[str, SectionState]:
    rows = spec.track.at(t_eval)
    draws = rng.standard_normal(8)
    area = subject.frame_scale * np.sqrt(subject.muscle_factor)
    fascia = np.asarray(spec.fascia_fourier) + 0.02 * draws[:4]
    fat = spec.fat_mm * subject.fat_factor
    rotation = np.deg2rad(5.0 * draws[4] if spec.bilateral else 1.5 * draws[4])
    states: dict[str, SectionState] = {}
    sides = (("left", 1.0), ("right", -1.0))
    for (side, sign), side_draw in zip(sides, draws[5:7], strict=True):
        half = rows[:, 2:4] * area * np.exp((0.02 if spec.bilateral else 0.0) * sign * side_draw)
        centre = rows[:, 0:2] * subject.frame_scale
        if spec.bilateral:
            reach = half[:, 0] * (1 + np.abs(fascia).sum()) + 2.0
            if spec.separate == "body":
                reach = reach + 2.0 + fat * (1 + sum(map(abs, spec.fat_shape[::2])))
            centre[:, 0] = np.maximum(centre[:, 0], reach) * sign
        states[side] = SectionState(
            name=spec.name, sign=sign, centre_mm=centre, half_mm=half,
            rotation_rad=float(rotation if spec.bilateral or sign > 0 else -rotation),
            fascia_fourier=fascia, fat_mm=float(fat * np.exp(0.03 * draws[7])),
            fat_shape=spec.fat_shape, skin_mm=1.6, filler=spec.filler,
            has_body=spec.bilateral or sign > 0,
            body_present=_within(t_eval, spec.t_range),
        )
    if not spec.bilateral:
        states["right"].centre_mm = states["left"].centre_mm
        states["right"].half_mm = states["left"].half_mm
        states["midline"] = states["left"]
    return states


def _scaled_params(spec: ShapeSpec, rows: np.ndarray, t_eval: np.ndarray, subject: Subject,
                   size: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-slice parameters with the subject's variation, and where the shape exists."""
    draws = rng.standard_normal(6)
    fade = _fade(t_eval, spec.t_range, spec.fade)
    present = (fade > 0.02) & _within(t_eval, spec.t_range)
    p = rows.copy()
    if spec.frame == "mm":
        p[:, :2] *= subject.frame_scale
        lengths = [2, 3] if spec.kind == "ellipse" else [2, 5]
        p[:, lengths] *= subject.frame_scale * size
    else:
        wobble = 0.012 * np.sin(2 * np.pi * (0.6 + 0.5 * abs(draws[2])) * t_eval + 3.0 * draws[3])
        p[:, 0] += CENTRE_JITTER_SD * draws[0] + wobble
        p[:, 1] += CENTRE_JITTER_SD * draws[1] - wobble
        if spec.kind == "ellipse":
            p[:, 2:4] *= np.sqrt(size)
        else:
            p[:, 4] *= np.sqrt(size)
            p[:, 5] *= np.sqrt(size)
    if spec.kind == "ellipse":
        p[:, 2:4] *= fade[:, None]
        p[:, 4] += ANGLE_JITTER_SD_DEG * draws[4]
    else:
        p[:, 3] += 3.0 * draws[4]
        p[:, 4] *= np.sqrt(fade)
        p[:, 5] *= fade
    return p, present


def instantiate(anatomy: RegionAnatomy, grid: Grid, subject: Subject,
                rng: np.random.Generator) -> Scene:
    """One subject's shapes on ``grid``.

    Parameters
    ----------
    anatomy : RegionAnatomy
        The region.
    grid : Grid
        Target voxel grid; the anatomy spans its slices (``t`` from 0 to 1).
    subject : Subject
        Body factors.
    rng : numpy.random.Generator
        Source of the per-subject variation.

    Returns
    -------
    Scene
    """
    shift = 0.03 * (2 * rng.random() - 1)
    t_eval = 0.5 + (grid.t - 0.5) / subject.frame_scale + shift
    sections: dict[tuple[str, str], SectionState] = {}
    for spec in anatomy.sections:
        for side, state in _section_states(spec, t_eval, subject, rng).items():
            sections[(spec.name, side)] = state
    base_size = {s.name: float(np.exp(MUSCLE_SIZE_SD * rng.standard_normal())) for s in anatomy.shapes}
    shapes: list[ShapeState] = []
    for spec in anatomy.shapes:
        rows = spec.track.at(t_eval)
        sides = ("left", "right") if spec.side == "bilateral" else (spec.side,)
        asym = MUSCLE_ASYMMETRY_SD * rng.standard_normal()
        for side in sides:
            sign = 1.0 if side == "left" else -1.0
            if spec.role == "muscle":
                size = base_size[spec.name] * np.exp(0.5 * sign * asym)
            else:
                size = float(np.exp(0.03 * rng.standard_normal()))
            params, present = _scaled_params(spec, rows, t_eval, subject, size, rng)
            fourier = np.asarray(spec.base_outline) + spec.fourier_sd * rng.standard_normal(4)
            shapes.append(ShapeState(spec, side, sections[(spec.section, side)], params, present, fourier))
    unique = {id(s): s for s in sections.values()}
    return Scene(grid, list(unique.values()), shapes, t_eval)
