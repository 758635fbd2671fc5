"""Cross-section geometry: smooth shapes on an axial grid that compete for space.

Every structure is a *shape* with a normalised radius ``rho`` that is below 1 inside the
shape, 1 on its outline and grows outwards. Muscles compete: a pixel goes to the muscle
with the smallest ``rho``, so two muscles whose outlines overlap press against each other
along a smooth curve through the points where the outlines cross -- they touch and never
overlap. Bones and organs are drawn on top in priority order; what no muscle claims inside
the deep fascia is intermuscular fat.

Coordinates. Internal arrays are ``(K, J, I)`` = (slice, anterior->posterior row,
right->left column); ``u`` (mm) grows towards the subject's left, ``v`` (mm) towards
posterior, ``t`` in [0, 1] from the lowest to the highest slice. A shape belongs to a
*section* (a limb or the trunk) and is written for the subject's left side in section
coordinates: ``xi`` lateral and ``eta`` posterior, normalised by the section's half-width
``A`` and half-depth ``P`` (``frame='norm'``) or in millimetres (``frame='mm'``, bones).
The right side is the mirror image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.interpolate import PchipInterpolator

__all__ = ["Grid", "SectionSpec", "ShapeSpec", "Track", "SectionState", "ShapeState", "evaluate_rho2"]

F32 = np.float32
ShapeKind = Literal["ellipse", "arc"]
#: Number of per-slice parameters of each shape kind (after the t column of the key rows).
N_PARAMS: dict[str, int] = {"ellipse": 5, "arc": 6}


@dataclass(frozen=True)
class Grid:
    """An axial voxel grid centred on the origin.

    Parameters
    ----------
    shape : tuple of 3 int
        Voxels along I (right->left), J (anterior->posterior), K (inferior->superior).
    spacing_mm : tuple of 3 float
        Voxel size along I, J, K in mm.

    Examples
    --------
    >>> g = Grid((4, 2, 3), (0.5, 0.5, 2.0))
    >>> g.u_mm.tolist(), g.t.round(3).tolist()
    ([-0.75, -0.25, 0.25, 0.75], [0.167, 0.5, 0.833])
    """

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    anatomy_length_mm: float | None = None

    @property
    def u_mm(self) -> npt.NDArray[np.float32]:
        """Column positions (mm, + = subject's left), length I."""
        n = self.shape[0]
        return ((np.arange(n) - (n - 1) / 2) * self.spacing_mm[0]).astype(F32)

    @property
    def v_mm(self) -> npt.NDArray[np.float32]:
        """Row positions (mm, + = posterior), length J."""
        n = self.shape[1]
        return ((np.arange(n) - (n - 1) / 2) * self.spacing_mm[1]).astype(F32)

    @property
    def t(self) -> npt.NDArray[np.float64]:
        """Normalised anatomical position of each slice, inferior to superior, length K.

        The region's anatomy spans ``anatomy_length_mm`` (default: this grid's extent)
        centred on the grid, so 0 and 1 are its ends whatever the slice spacing.
        """
        n, dz = self.shape[2], self.spacing_mm[2]
        length = self.anatomy_length_mm or n * dz
        return 0.5 + (np.arange(n) - (n - 1) / 2) * dz / length

    @property
    def internal_shape(self) -> tuple[int, int, int]:
        """Shape of the internal ``(K, J, I)`` arrays."""
        return self.shape[2], self.shape[1], self.shape[0]

    def affine(self) -> npt.NDArray[np.float64]:
        """Voxel -> RAS affine: I runs to the left (-x), J to posterior (-y), K superior."""
        dx, dy, dz = self.spacing_mm
        ni, nj, nk = self.shape
        return np.array([
            [-dx, 0.0, 0.0, (ni - 1) / 2 * dx],
            [0.0, -dy, 0.0, (nj - 1) / 2 * dy],
            [0.0, 0.0, dz, -(nk - 1) / 2 * dz],
            [0.0, 0.0, 0.0, 1.0],
        ])


@dataclass(frozen=True)
class Track:
    """Smooth (monotone cubic) interpolation of parameter rows along ``t``.

    ``rows`` are ``(t, p1, p2, ...)``; outside the first and last ``t`` the end values hold.

    Examples
    --------
    >>> Track(((0.0, 1.0), (1.0, 3.0))).at(np.array([0.5, 2.0])).ravel().tolist()
    [2.0, 3.0]
    """

    rows: tuple[tuple[float, ...], ...]

    def at(self, t: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        """Parameters at each ``t``: array (len(t), n_params)."""
        table = np.asarray(self.rows, dtype=float)
        if len(table) == 1:
            return np.repeat(table[:, 1:], len(t), axis=0)
        clipped = np.clip(t, table[0, 0], table[-1, 0])
        return PchipInterpolator(table[:, 0], table[:, 1:], axis=0)(clipped)


@dataclass(frozen=True)
class SectionSpec:
    """A limb or the trunk: the deep-fascia outline, the fat and skin around it.

    Parameters
    ----------
    name : str
        ``'limb'`` (one per side, mirrored) or a midline name such as ``'trunk'``.
    track : Track
        Rows ``(t, centre_u_mm, centre_v_mm, half_width_mm, half_depth_mm)`` for the
        reference subject; for a limb, the left one (the right is mirrored).
    fat_mm : float
        Mean subcutaneous fat thickness of the reference subject.
    fat_shape : tuple of 4 float
        ``(k1, angle1_deg, k2, angle2_deg)``: thickness varies as
        ``1 + k1 cos(theta - a1) + k2 cos(2 (theta - a2))`` around the section (theta = 0
        lateral, 90 posterior in the section frame).
    fascia_fourier : tuple of 4 float
        ``(c2, s2, c3, s3)`` harmonics of the fascia outline.
    filler : str
        Material of unclaimed space inside the fascia (intermuscular fat).
    bilateral : bool
        True for limbs (left and right instances).
    t_range : tuple of 2 float
        Where the section has a body (outside it only lends its coordinate frame).
    separate : {'body', 'fascia'}
        Limbs are pushed apart until their bodies (calves) or only their fasciae (thighs,
        whose fat may touch) clear each other.
    """

    name: str
    track: Track
    fat_mm: float
    fat_shape: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    fascia_fourier: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    filler: str = "imat"
    bilateral: bool = True
    t_range: tuple[float, float] = (0.0, 1.0)
    separate: Literal["body", "fascia"] = "body"


@dataclass(frozen=True)
class ShapeSpec:
    """One structure's outline along the scan.

    Parameters
    ----------
    name : str
        Catalog base name (``'soleus'``) or a descriptive name for unlabelled structures.
    kind : {'ellipse', 'arc'}
        ``ellipse`` rows: ``(t, xi, eta, rx, ry, angle_deg)``; ``arc`` rows:
        ``(t, xi_c, eta_c, radius, phi0_deg, half_angle_deg, half_thickness)`` with phi
        measured from anterior (0) through lateral (90) to posterior (180).
    track : Track
        Key rows as above.
    role : {'muscle', 'solid', 'cavity'}
        Muscles compete for space inside the fascia; solids (bones, organs) are drawn on top;
        cavities (bowel, pelvic fat) replace the fascia filler underneath the muscles.
    material : str
        Material name (see :mod:`myoscan.phantom.materials`); bones use ``'bone'`` (cortex
        plus ``marrow``), organs their own material.
    section : str
        Section the coordinates refer to.
    frame : {'norm', 'mm'}
        Normalised section coordinates or millimetres.
    side : {'bilateral', 'left', 'right', 'midline'}
        Instances: ``bilateral`` = left + mirrored right; ``midline`` = one, unmirrored.
    labelled : bool
        Whether the structure gets a label id (when its scheme has it).
    t_range : tuple of 2 float
        Where the structure exists; it shrinks to nothing over ``fade`` at an end inside (0, 1).
    label_t_range : tuple of 2 float, optional
        Where it is labelled (vertebral levels, seed 002); elsewhere it is unlabelled tissue.
    priority : int
        Drawing order of solids (higher on top).
    marrow : str
        Marrow material of a bone.
    cortex_mm : float
        Cortical thickness of a bone.
    taper : float
        Arc thickness taper towards its ends (0 = constant).
    fourier_sd : float
        SD of the random outline coefficients given to each subject.
    outline : {'warp', 'harmonics'}
        Outline variation of an ellipse: cheap egg/bend warp (muscles) or angular
        harmonics ``(c2, s2, c3, s3)`` (bones: the triangular tibia). Arcs vary their
        thickness along the arc instead.
    base_outline : tuple of 4 float
        Coefficients every subject has (added to the random ones).
    volume_ml : float
        Reference volume (documentation and calibration; the truth is measured).
    """

    name: str
    kind: ShapeKind
    track: Track
    role: Literal["muscle", "solid", "cavity"] = "muscle"
    material: str = "muscle"
    section: str = "limb"
    frame: Literal["norm", "mm"] = "norm"
    side: Literal["bilateral", "left", "right", "midline"] = "bilateral"
    labelled: bool = True
    t_range: tuple[float, float] = (0.0, 1.0)
    label_t_range: tuple[float, float] | None = None
    fade: float = 0.1
    priority: int = 0
    marrow: str = "yellow_marrow"
    cortex_mm: float = 0.0
    taper: float = 0.0
    fourier_sd: float = 0.04
    outline: Literal["warp", "harmonics"] = "warp"
    base_outline: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    volume_ml: float = float("nan")

    def __post_init__(self) -> None:
        width = N_PARAMS[self.kind] + 1
        if any(len(row) != width for row in self.track.rows):
            raise ValueError(f"shape {self.name}: {self.kind} key rows need {width} values")


@dataclass
class SectionState:
    """A section instance for one subject: per-slice centre, size and outline."""

    name: str
    sign: float                                   # +1 left / midline, -1 right (mirror)
    centre_mm: npt.NDArray[np.float64]            # (K, 2) u, v
    half_mm: npt.NDArray[np.float64]              # (K, 2) A, P
    rotation_rad: float
    fascia_fourier: npt.NDArray[np.float64]       # (4,)
    fat_mm: float
    fat_shape: tuple[float, float, float, float]
    skin_mm: float
    filler: str
    has_body: bool = True
    body_present: npt.NDArray[np.bool_] | None = None     # (K,) slices with a body

    def local(self, u: np.ndarray, v: np.ndarray, ks: slice) -> tuple[np.ndarray, np.ndarray]:
        """Section-frame mm coordinates (lateral a, posterior p) of pixels, shape (k, j, i)."""
        cu = self.centre_mm[ks, 0].astype(F32)[:, None, None]
        cv = self.centre_mm[ks, 1].astype(F32)[:, None, None]
        a = (u[None, None, :] - cu) * F32(self.sign)
        p = v[None, :, None] - cv
        cos, sin = F32(np.cos(self.rotation_rad)), F32(np.sin(self.rotation_rad))
        return a * cos + p * sin, p * cos - a * sin

    def to_world(self, a: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of :meth:`local` for per-slice points (arrays of length K)."""
        cos, sin = np.cos(self.rotation_rad), np.sin(self.rotation_rad)
        a0, p0 = a * cos - p * sin, p * cos + a * sin
        return self.centre_mm[:, 0] + self.sign * a0, self.centre_mm[:, 1] + p0


@dataclass
class ShapeState:
    """A shape instance for one subject: per-slice parameters and fixed outline harmonics."""

    spec: ShapeSpec
    side: str                                     # 'left', 'right' or 'midline'
    section: SectionState
    params: npt.NDArray[np.float64]               # (K, n_params), sizes already scaled
    present: npt.NDArray[np.bool_]                # (K,) slices where the shape exists
    fourier: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(4))

    @property
    def structure_name(self) -> str:
        """Catalog name with side suffix (``soleus_left``) or the base name for midline."""
        return self.spec.name if self.side == "midline" else f"{self.spec.name}_{self.side}"

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-slice centre (u, v) in mm and a radius that encloses the outline."""
        sec, p = self.section, self.params
        scale = sec.half_mm if self.spec.frame == "norm" else np.ones_like(sec.half_mm)
        slack = 1.0 + np.abs(self.fourier).sum()
        if self.spec.kind == "ellipse":
            a, q = p[:, 0] * scale[:, 0], p[:, 1] * scale[:, 1]
            radius = np.maximum(p[:, 2], p[:, 3]) * scale.max(axis=1) * slack
        else:
            a, q = p[:, 0] * scale[:, 0], p[:, 1] * scale[:, 1]
            radius = (p[:, 2] + p[:, 5]) * scale.max(axis=1) * slack
        u, v = sec.to_world(a, q)
        return u, v, radius


def _harmonics2(x: np.ndarray, y: np.ndarray, r2: np.ndarray, coeffs: Sequence[float]) -> np.ndarray | None:
    """``1 + c2 cos 2t + s2 sin 2t + c3 cos 3t + s3 sin 3t`` for the angle t of (x, y).

    ``r2`` is ``x^2 + y^2``; returns None when all coefficients are 0.
    """
    c2, s2, c3, s3 = (F32(c) for c in coeffs)
    if not (c2 or s2 or c3 or s3):
        return None
    inv = 1 / r2
    cos2 = (x * x - y * y) * inv
    out = 1 + c2 * cos2 + (s2 * 2) * (x * y) * inv
    if c3 or s3:
        inv_r = np.sqrt(inv)
        out += (c3 * x * inv_r) * (2 * cos2 - 1) + (s3 * y * inv_r) * (2 * cos2 + 1)
    return out


def _warped_r2(x: np.ndarray, y: np.ndarray, coeffs: Sequence[float]) -> np.ndarray:
    """``x'^2 + y'^2`` after a smooth egg (``x (1 + e y)``) and bend (``y + b x^2``) warp.

    Cheap outline variation for muscles: ``e = coeffs[0]``, ``b = coeffs[1]``.
    """
    e, b = F32(coeffs[0]), F32(coeffs[1])
    if e:
        x = x * (1 + e * y)
    xx = x * x
    if b:
        y = y + b * xx
    xx += y * y
    return xx


def evaluate_rho2(shape: ShapeState, a_mm: np.ndarray, p_mm: np.ndarray, ks: slice) -> np.ndarray:
    """Squared normalised radius of ``shape`` at section-frame points (k, j, i), float32.

    Parameters
    ----------
    shape : ShapeState
        The shape instance.
    a_mm, p_mm : ndarray
        Section-frame lateral and posterior coordinates in mm (from :meth:`SectionState.local`).
    ks : slice
        The slices the coordinate arrays cover.

    Returns
    -------
    ndarray of float32
        ``rho^2``: < 1 inside, 1 on the outline, > 1 outside; ``inf`` on slices without the
        shape. (Squared because comparisons need no square root.)
    """
    sec = shape.section
    prm = shape.params[ks]
    if shape.spec.frame == "norm":
        sx, sy = sec.half_mm[ks, 0], sec.half_mm[ks, 1]
    else:
        sx = sy = np.ones(prm.shape[0])

    def per_slice(values: np.ndarray) -> np.ndarray:
        return values.astype(F32)[:, None, None]

    da = a_mm - per_slice(prm[:, 0] * sx)
    dp = p_mm - per_slice(prm[:, 1] * sy)
    if shape.spec.kind == "ellipse":
        ang = np.deg2rad(prm[:, 4])
        rx, ry = np.maximum(prm[:, 2], 1e-6), np.maximum(prm[:, 3], 1e-6)
        x = da * per_slice(np.cos(ang) / (sx * rx))
        x += dp * per_slice(np.sin(ang) / (sy * rx))
        y = dp * per_slice(np.cos(ang) / (sy * ry))
        y -= da * per_slice(np.sin(ang) / (sx * ry))
        del da, dp
        if shape.spec.outline == "harmonics":
            r2 = x * x + y * y + F32(1e-12)
            wave = _harmonics2(x, y, r2, shape.fourier)
            rho2 = r2 if wave is None else r2 / (wave * wave)
        else:
            rho2 = _warped_r2(x, y, shape.fourier)
    else:
        x, y = da / per_slice(sx), dp / per_slice(sy)
        del da, dp
        r = np.sqrt(x * x + y * y)
        delta = np.arctan2(x, -y)
        delta -= per_slice(np.deg2rad(prm[:, 3]))
        delta = np.mod(delta + F32(np.pi), F32(2 * np.pi)) - F32(np.pi)
        s = delta * per_slice(1 / np.maximum(np.deg2rad(prm[:, 4]), 1e-6))
        del delta
        s2 = s * s
        c0, c1 = F32(shape.fourier[0]), F32(shape.fourier[1])
        wave = np.maximum(1 - F32(shape.spec.taper) * s2 + c0 * s + c1 * (s2 - F32(1 / 3)), F32(0.25))
        q = r - per_slice(prm[:, 2])
        q /= wave
        q *= per_slice(1 / np.maximum(prm[:, 5], 1e-6))
        q *= q
        rho2 = q + s2
    rho2 = rho2.astype(F32, copy=False)
    rho2[~shape.present[ks]] = np.inf
    return rho2


def fascia_rho(sec: SectionState, a_mm: np.ndarray, p_mm: np.ndarray, ks: slice) -> np.ndarray:
    """Normalised radius of the deep fascia outline of ``sec`` (1 on the fascia)."""
    x = a_mm / sec.half_mm[ks, 0].astype(F32)[:, None, None]
    y = p_mm / sec.half_mm[ks, 1].astype(F32)[:, None, None]
    r2 = x * x + y * y + F32(1e-12)
    wave = _harmonics2(x, y, r2, sec.fascia_fourier)
    r = np.sqrt(r2)
    return r if wave is None else r / wave


def fat_thickness_mm(sec: SectionState, a_mm: np.ndarray, p_mm: np.ndarray) -> np.ndarray:
    """Subcutaneous fat thickness in the direction of each pixel from the section centre."""
    k1, a1, k2, a2 = sec.fat_shape
    theta = np.arctan2(p_mm, a_mm)
    out = 1.0 + F32(k1) * np.cos(theta - F32(np.deg2rad(a1)))
    if k2:
        out = out + F32(k2) * np.cos(2 * (theta - F32(np.deg2rad(a2))))
    return F32(sec.fat_mm) * np.maximum(out, 0.15)


def box(grid: Grid, u_c: np.ndarray, v_c: np.ndarray, radius: np.ndarray, margin_mm: float = 2.0,
        ) -> tuple[slice, slice, slice] | None:
    """Index box (k, j, i) covering circles of ``radius`` around per-slice centres."""
    ok = np.isfinite(radius) & (radius > 0)
    if not ok.any():
        return None
    ks_idx = np.flatnonzero(ok)
    u, v, r = u_c[ok], v_c[ok], radius[ok] + margin_mm
    du, dv = grid.spacing_mm[0], grid.spacing_mm[1]
    ni, nj = grid.shape[0], grid.shape[1]
    i0 = int(np.floor(((u - r).min()) / du + (ni - 1) / 2))
    i1 = int(np.ceil(((u + r).max()) / du + (ni - 1) / 2)) + 1
    j0 = int(np.floor(((v - r).min()) / dv + (nj - 1) / 2))
    j1 = int(np.ceil(((v + r).max()) / dv + (nj - 1) / 2)) + 1
    i0, i1, j0, j1 = max(i0, 0), min(i1, ni), max(j0, 0), min(j1, nj)
    if i0 >= i1 or j0 >= j1:
        return None
    return slice(int(ks_idx[0]), int(ks_idx[-1]) + 1), slice(j0, j1), slice(i0, i1)
