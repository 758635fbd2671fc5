"""Abdomen from the lung base to the bottom of L5 (seed 003 slab).

The 12 muscle groups of seed 003 -- psoas, quadratus lumborum, erector spinae, gluteus
medius (lowest slices, beside the iliac crest), rectus abdominis and the lateral abdominal
wall (obliques and transversus) on each side -- around a lumbar vertebra (body, arch,
transverse and spinous processes, canal), with kidneys, liver, spleen, aorta, vena cava
and bowel loops in visceral fat. ``t`` = 0 is the bottom of L5, 1 the lung base (216 mm).
Reference volumes follow the seed 003 masses (Table 3, both sexes averaged, 1.06 g/mL).
"""

from __future__ import annotations

from myoscan.phantom.anatomy import RegionAnatomy, grown
from myoscan.phantom.geometry import SectionSpec, ShapeSpec, Track

#: Vertebral levels of the slab (bottom, top in ``t``): five lumbar levels and T12.
LEVELS: dict[str, tuple[float, float]] = {
    "L5": (0.0, 0.18), "L4": (0.18, 0.36), "L3": (0.36, 0.54), "L2": (0.54, 0.72),
    "L1": (0.72, 0.90), "T12": (0.90, 1.0),
}

TRUNK = SectionSpec(
    name="trunk",
    track=Track((
        (0.0, 0.0, 0.0, 140.0, 95.0),
        (0.5, 0.0, 0.0, 138.0, 98.0),
        (1.0, 0.0, -5.0, 140.0, 102.0),
    )),
    fat_mm=20.0,
    fat_shape=(0.15, 270.0, 0.25, 0.0),
    fascia_fourier=(0.04, 0.0, -0.03, 0.0),
    filler="visceral_fat",
    bilateral=False,
)

#: Muscle outlines overlap their neighbours by this factor (see :func:`grown`).
GROW = 1.3


def _shape(name: str, kind: str, rows: tuple, t_range: tuple[float, float] = (0.0, 1.0), **kw) -> ShapeSpec:
    track = grown(rows, kind, GROW if kw.get("role", "muscle") == "muscle" else 1.0)
    return ShapeSpec(name, kind, track, section="trunk", t_range=t_range, **kw)  # type: ignore[arg-type]


def _bone(name: str, rows: tuple, t_range: tuple[float, float] = (0.0, 1.0), kind: str = "ellipse",
          **kw) -> ShapeSpec:
    kw = {"role": "solid", "material": "bone", "frame": "mm", "labelled": False, "marrow": "red_marrow",
          "cortex_mm": 1.5, "priority": 10, "fourier_sd": 0.02, "fade": 0.03, **kw}
    return _shape(name, kind, rows, t_range, **kw)


def _organ(name: str, material: str, rows: tuple, t_range: tuple[float, float] = (0.0, 1.0), *,
           role: str = "cavity", priority: int = 3, **kw) -> ShapeSpec:
    kw = {"labelled": False, "fade": 0.06, "fourier_sd": 0.05, **kw}
    return _shape(name, "ellipse", rows, t_range, role=role, material=material, priority=priority, **kw)


# Ellipse rows: t, xi, eta, rx, ry, angle (deg); arc rows: t, xi_c, eta_c, R, phi0, half-angle, h.
MUSCLES = (
    _shape("psoas", "ellipse", (
        (0.05, 0.30, 0.06, 0.15, 0.16, 20.0), (0.35, 0.27, 0.12, 0.13, 0.14, 25.0),
        (0.65, 0.22, 0.17, 0.09, 0.10, 30.0), (0.95, 0.17, 0.20, 0.05, 0.06, 30.0),
    ), (0.0, 0.97), fade=0.1, volume_ml=150.0),
    _shape("quadratus_lumborum", "ellipse", (
        (0.15, 0.42, 0.45, 0.08, 0.05, 25.0), (0.5, 0.42, 0.44, 0.10, 0.06, 25.0),
        (0.9, 0.38, 0.45, 0.09, 0.05, 20.0),
    ), (0.12, 0.95), fade=0.1, volume_ml=55.0),
    _shape("erector_spinae", "ellipse", (
        (0.0, 0.18, 0.74, 0.17, 0.17, 10.0), (0.5, 0.20, 0.72, 0.20, 0.19, 10.0),
        (1.0, 0.20, 0.72, 0.19, 0.18, 10.0),
    ), volume_ml=420.0),
    _shape("gluteus_medius", "ellipse", (
        (0.0, 0.80, 0.32, 0.14, 0.24, -30.0), (0.1, 0.82, 0.30, 0.11, 0.18, -30.0),
        (0.16, 0.84, 0.28, 0.06, 0.10, -30.0),
    ), (0.0, 0.18), fade=0.06, volume_ml=60.0),
    _shape("rectus_abdominis", "ellipse", (
        (0.0, 0.10, -0.93, 0.11, 0.09, -5.0), (0.5, 0.12, -0.93, 0.14, 0.09, -5.0),
        (1.0, 0.12, -0.92, 0.13, 0.08, -5.0),
    ), volume_ml=125.0),
    _shape("lateral_abdominals", "arc", (
        (0.0, 0.0, 0.02, 0.94, 75.0, 52.0, 0.052), (0.5, 0.0, 0.02, 0.94, 78.0, 58.0, 0.06),
        (1.0, 0.0, 0.02, 0.94, 80.0, 55.0, 0.056),
    ), taper=0.35, volume_ml=470.0),
)

BONES = (
    _bone("vertebral_body", ((0.0, 0.0, 22.0, 25.0, 17.0, 0.0), (1.0, 0.0, 24.0, 21.0, 16.0, 0.0)),
          side="midline"),
    _bone("vertebral_arch", ((0.0, 0.0, 58.0, 15.0, 180.0, 75.0, 4.0),
                             (1.0, 0.0, 58.0, 14.0, 180.0, 70.0, 4.0)),
          kind="arc", side="midline", cortex_mm=4.0),
    _bone("spinous_process", ((0.0, 0.0, 84.0, 4.0, 14.0, 0.0), (1.0, 0.0, 82.0, 4.0, 13.0, 0.0)),
          side="midline", cortex_mm=4.0),
    _bone("transverse_process", ((0.1, 30.0, 52.0, 18.0, 4.5, 10.0), (0.6, 32.0, 52.0, 22.0, 4.5, 10.0),
                                 (1.0, 26.0, 52.0, 12.0, 4.0, 10.0)), cortex_mm=4.0),
    _bone("iliac_wing", ((0.0, 60.0, 10.0, 75.0, 125.0, 40.0, 6.0),
                         (0.12, 60.0, 20.0, 70.0, 130.0, 25.0, 4.0)),
          (0.0, 0.13), kind="arc"),
    _bone("rib", ((0.80, 0.0, 20.0, 104.0, 125.0, 12.0, 5.0), (1.0, 0.0, 10.0, 112.0, 120.0, 25.0, 5.0)),
          (0.78, 1.0), kind="arc", cortex_mm=5.0),
    ShapeSpec("spinal_canal", "ellipse",
              Track(((0.0, 0.0, 56.0, 10.0, 8.0, 0.0), (1.0, 0.0, 56.0, 9.0, 7.0, 0.0))),
              role="solid", material="csf", section="trunk", frame="mm", side="midline", labelled=False,
              priority=20, fourier_sd=0.0),
    ShapeSpec("cauda_equina", "ellipse",
              Track(((0.0, 0.0, 56.0, 5.0, 3.5, 0.0), (1.0, 0.0, 56.0, 5.0, 4.0, 0.0))),
              role="solid", material="cord", section="trunk", frame="mm", side="midline", labelled=False,
              priority=21, fourier_sd=0.0),
)

ORGANS = (
    _organ("bowel", "bowel_mix", ((0.0, 0.0, -0.35, 0.80, 0.55, 0.0), (0.5, 0.0, -0.30, 0.82, 0.62, 0.0),
                                  (1.0, 0.0, -0.35, 0.75, 0.55, 0.0)), side="midline", priority=2),
    _organ("liver", "liver", ((0.55, 0.55, -0.05, 0.30, 0.40, 20.0), (1.0, 0.45, -0.15, 0.55, 0.65, 10.0)),
           (0.5, 1.0), side="right", priority=4),
    _organ("spleen", "organ", ((0.7, 0.62, 0.30, 0.14, 0.18, 30.0), (1.0, 0.60, 0.25, 0.22, 0.28, 30.0)),
           (0.68, 1.0), side="left", priority=4),
    _organ("kidney", "kidney", ((0.35, 0.50, 0.25, 0.16, 0.17, 30.0), (0.6, 0.48, 0.22, 0.22, 0.22, 30.0),
                                (0.85, 0.46, 0.20, 0.16, 0.17, 30.0)), (0.3, 0.92), priority=5),
    _organ("aorta", "vessel", ((0.0, 10.0, -12.0, 9.0, 9.0, 0.0), (1.0, 12.0, -14.0, 11.0, 11.0, 0.0)),
           (0.15, 1.0), side="midline", role="solid", frame="mm", priority=6, fourier_sd=0.0),
    _organ("common_iliac_artery", "vessel",
           ((0.0, 20.0, -8.0, 7.0, 7.0, 0.0), (0.14, 14.0, -12.0, 7.0, 7.0, 0.0)),
           (0.0, 0.16), role="solid", frame="mm", priority=6, fourier_sd=0.0),
    _organ("vena_cava", "vessel", ((0.0, 22.0, -8.0, 12.0, 9.0, 0.0), (1.0, 24.0, -10.0, 13.0, 10.0, 0.0)),
           (0.12, 1.0), side="right", role="solid", frame="mm", priority=6, fourier_sd=0.0),
)

ANATOMY = RegionAnatomy(
    name="abdomen",
    sections=(TRUNK,),
    shapes=MUSCLES + BONES + ORGANS,
    grids={
        "dixon": ((210, 160, 44), (2.0, 2.0, 5.0)),
        "ct": ((420, 320, 72), (1.0, 1.0, 3.0)),
    },
    imf_pct={
        "psoas": 4.5, "quadratus_lumborum": 7.0, "erector_spinae": 9.0, "gluteus_medius": 7.0,
        "rectus_abdominis": 8.0, "lateral_abdominals": 7.0,
    },
    age_decline_per_year=0.003,   # seed 003: slow decline of abdominal muscle mass with age
    levels=LEVELS,
    description="abdomen from the lung base to L5, 6 muscle groups per side (seed 003)",
)
