"""Rasterise a :class:`~myoscan.phantom.anatomy.Scene` into material and structure maps.

Order: body outline (skin, subcutaneous fat) and deep fascia per section, the fascia filled
with the section's filler (intermuscular fat) and cavities (bowel, pelvic fat); muscles
compete inside the fascia (smallest normalised radius wins) over filler and cavities; fat
streaks are laid into some muscle-muscle borders; then solids (organs, bones) are drawn on
top in priority order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from myoscan.phantom.anatomy import Scene
from myoscan.phantom.geometry import (
    F32,
    ShapeState,
    box,
    evaluate_rho2,
    fascia_rho,
    fat_thickness_mm,
)
from myoscan.phantom.materials import code_of

__all__ = ["Raster", "rasterize"]


@dataclass
class Raster:
    """Material codes and owning shape of every voxel, internal ``(K, J, I)`` layout.

    ``owner`` is 1 + the index of the shape in ``shapes`` (0 = none) for muscles and solids.
    """

    material: np.ndarray
    owner: np.ndarray
    shapes: list[ShapeState]


def _shape_box(scene: Scene, shape: ShapeState) -> tuple[slice, slice, slice] | None:
    u, v, radius = shape.bounds_mm()
    radius = np.where(shape.present, radius, np.nan)
    return box(scene.grid, u, v, radius)


def _rho2_in_box(scene: Scene, shape: ShapeState, b: tuple[slice, slice, slice]) -> np.ndarray:
    a, p = shape.section.local(scene.grid.u_mm[b[2]], scene.grid.v_mm[b[1]], b[0])
    return evaluate_rho2(shape, a, p, b[0])


def _body_and_fascia(scene: Scene, material: np.ndarray) -> np.ndarray:
    """Paint skin, subcutaneous fat and the fascia filler; return the fascia mask."""
    shape = material.shape
    in_body = np.zeros(shape, bool)
    deep = np.zeros(shape, bool)
    fascia = np.zeros(shape, bool)
    filler = np.zeros(shape, np.uint8)
    for sec in scene.sections:
        if not sec.has_body:
            continue
        k1, _, k2, _ = sec.fat_shape
        reach = (sec.half_mm.max(axis=1) * (1 + np.abs(sec.fascia_fourier).sum())
                 + sec.fat_mm * (1 + abs(k1) + abs(k2)) + sec.skin_mm)
        if sec.body_present is not None:
            reach = np.where(sec.body_present, reach, np.nan)
        b = box(scene.grid, sec.centre_mm[:, 0], sec.centre_mm[:, 1], reach)
        if b is None:
            continue
        a, p = sec.local(scene.grid.u_mm[b[2]], scene.grid.v_mm[b[1]], b[0])
        rho = fascia_rho(sec, a, p, b[0])
        radius = np.sqrt(a * a + p * p)
        excess = radius * (1 - 1 / np.maximum(rho, F32(1e-6)))
        if sec.body_present is not None:
            excess[~sec.body_present[b[0]]] = np.inf
            rho[~sec.body_present[b[0]]] = np.inf
        thick = fat_thickness_mm(sec, a, p)
        in_body[b] |= excess <= thick
        deep[b] |= excess <= thick - F32(sec.skin_mm)
        inside = rho <= 1
        fascia[b] |= inside
        filler[b][inside] = code_of(sec.filler)
    material[in_body] = code_of("subcutaneous_fat")
    material[in_body & ~deep] = code_of("skin")
    material[fascia] = filler[fascia]
    return fascia


def _compete(scene: Scene, shapes: list[ShapeState]) -> tuple[np.ndarray, np.ndarray]:
    """Smallest squared normalised radius of any muscle and its owner (1 + shape index)."""
    shape = scene.grid.internal_shape
    best = np.full(shape, np.inf, F32)
    owner = np.zeros(shape, np.uint16)
    for index, sh in enumerate(shapes):
        if sh.spec.role != "muscle":
            continue
        b = _shape_box(scene, sh)
        if b is None:
            continue
        rho2 = _rho2_in_box(scene, sh, b)
        sub_best, sub_owner = best[b], owner[b]
        better = rho2 < sub_best
        np.copyto(sub_best, rho2, where=better)
        np.copyto(sub_owner, np.uint16(index + 1), where=better)
    return best, owner


def _septal_fat(owner: np.ndarray, muscle: np.ndarray, fraction: float,
                rng: np.random.Generator) -> np.ndarray:
    """Patches of fat along muscle-muscle borders, covering about ``fraction`` of them."""
    border = np.zeros_like(muscle)
    for axis in (1, 2):
        diff = np.diff(owner.astype(np.int32), axis=axis) != 0
        both = np.take(muscle, range(owner.shape[axis] - 1), axis=axis) & np.take(
            muscle, range(1, owner.shape[axis]), axis=axis)
        edge = diff & both
        lo = [slice(None)] * 3
        lo[axis] = slice(0, -1)
        border[tuple(lo)] |= edge
    if fraction <= 0 or not border.any():
        return np.zeros_like(muscle)
    k, j, i = np.nonzero(border)
    coarse = ndimage.gaussian_filter(
        rng.standard_normal((owner.shape[0], owner.shape[1] // 8 + 2, owner.shape[2] // 8 + 2)),
        (0.8, 1.0, 1.0))
    coarse /= coarse.std() + 1e-9
    field = ndimage.map_coordinates(coarse, [k, j / 8.0, i / 8.0], order=1, mode="nearest")
    keep = field > np.quantile(field, 1.0 - fraction)
    out = np.zeros_like(muscle)
    out[k[keep], j[keep], i[keep]] = True
    return out


def _drop_fragments(owner: np.ndarray, material: np.ndarray, shapes: list[ShapeState]) -> None:
    """Keep each muscle's largest 26-connected piece; stray pieces become intermuscular fat.

    Competition can leave a muscle a small pocket on the far side of a neighbour or bone;
    a muscle is one connected body, so such pieces are given to the fascia filler.
    """
    cube = np.ones((3, 3, 3), bool)
    for index, where in enumerate(ndimage.find_objects(owner)):
        if where is None or shapes[index].spec.role != "muscle":
            continue
        mine = owner[where] == index + 1
        pieces, count = ndimage.label(mine, structure=cube)
        if count < 2:
            continue
        sizes = np.bincount(pieces.ravel())
        sizes[0] = 0
        stray = mine & (pieces != int(sizes.argmax()))
        owner[where][stray] = 0
        material[where][stray] = code_of("imat")


def _bone_depth_mm(shape: ShapeState, a: np.ndarray, p: np.ndarray, rho: np.ndarray,
                   ks: slice) -> np.ndarray:
    """Distance (mm) from a point inside a bone to its outline, along the ray from its centre."""
    sec, prm = shape.section, shape.params[ks]
    scale = sec.half_mm[ks] if shape.spec.frame == "norm" else np.ones_like(sec.half_mm[ks])
    ca = (prm[:, 0] * scale[:, 0]).astype(F32)[:, None, None]
    cp = (prm[:, 1] * scale[:, 1]).astype(F32)[:, None, None]
    r = np.sqrt((a - ca) ** 2 + (p - cp) ** 2)
    return r * (1 / np.maximum(rho, F32(1e-3)) - 1)


def _draw_solids(scene: Scene, material: np.ndarray, owner: np.ndarray | None, role: str = "solid",
                 within: np.ndarray | None = None) -> None:
    """Draw the shapes of ``role`` in priority order (cavities only ``within`` the fascia)."""
    order = sorted(range(len(scene.shapes)), key=lambda n: scene.shapes[n].spec.priority)
    for index in order:
        sh = scene.shapes[index]
        if sh.spec.role != role:
            continue
        b = _shape_box(scene, sh)
        if b is None:
            continue
        a, p = sh.section.local(scene.grid.u_mm[b[2]], scene.grid.v_mm[b[1]], b[0])
        rho2 = evaluate_rho2(sh, a, p, b[0])
        inside = rho2 <= 1
        if within is not None:
            inside &= within[b]
        sub_mat = material[b]
        if sh.spec.material == "bone":
            code = np.full(inside.shape, code_of(sh.spec.marrow), np.uint8)
            if sh.spec.cortex_mm > 0:
                depth = _bone_depth_mm(sh, a, p, np.sqrt(rho2), b[0])
                code[depth < F32(sh.spec.cortex_mm)] = code_of("cortical_bone")
            sub_mat[inside] = code[inside]
        else:
            sub_mat[inside] = code_of(sh.spec.material)
        if owner is not None:
            owner[b][inside] = index + 1


def _resolve_bowel(material: np.ndarray, visceral_fat: float, rng: np.random.Generator) -> None:
    """Turn ``bowel_mix`` voxels into bowel loops, visceral fat and a little gas."""
    mix = material == code_of("bowel_mix")
    if not mix.any():
        return
    k, j, i = np.nonzero(mix)
    coarse = ndimage.gaussian_filter(
        rng.standard_normal((material.shape[0] // 2 + 2, material.shape[1] // 4 + 2,
                             material.shape[2] // 4 + 2)),
        (1.0, 1.0, 1.0))
    coarse /= coarse.std() + 1e-9
    field = ndimage.map_coordinates(coarse, [k / 2.0, j / 4.0, i / 4.0], order=1, mode="nearest")
    fat_cut = np.quantile(field, visceral_fat)
    gas_cut = np.quantile(field, 0.985)
    codes = np.where(field < fat_cut, code_of("visceral_fat"), code_of("bowel")).astype(np.uint8)
    codes[field > gas_cut] = code_of("internal_air")
    material[k, j, i] = codes


def rasterize(scene: Scene, rng: np.random.Generator, *, septal_fat: float = 0.08,
              visceral_fat: float = 0.35) -> Raster:
    """Material and owner maps of ``scene``.

    Parameters
    ----------
    scene : Scene
        One subject's anatomy.
    rng : numpy.random.Generator
        For the fat-streak and bowel patterns.
    septal_fat : float
        Fraction of muscle-muscle border pixels that become intermuscular fat.
    visceral_fat : float
        Fraction of the abdominal/pelvic cavity filled with visceral fat.

    Returns
    -------
    Raster
    """
    material = np.zeros(scene.grid.internal_shape, np.uint8)
    fascia = _body_and_fascia(scene, material)
    _draw_solids(scene, material, None, role="cavity", within=fascia)
    best, owner = _compete(scene, scene.shapes)
    muscle = fascia & (best <= 1)
    del best
    owner[~muscle] = 0
    material[muscle] = code_of("muscle")
    streaks = _septal_fat(owner, muscle, septal_fat, rng)
    material[streaks] = code_of("imat")
    owner[streaks] = 0
    _draw_solids(scene, material, owner)
    _drop_fragments(owner, material, scene.shapes)
    _resolve_bowel(material, visceral_fat, rng)
    return Raster(material, owner, scene.shapes)
