"""Pelvis and both thighs from the iliac crest to just above the knee (seeds 001 and 004).

The 27 structures per side of the ``thigh`` scheme: quadriceps, hamstrings, adductors,
sartorius and gracilis in each thigh around the femur; gluteal muscles, hip rotators,
iliopsoas, tensor fasciae latae and the lower trunk muscles (multifidus, abdominal
obliques, rectus abdominis) in the pelvis around the hip bone (``iliac_bone``) and sacrum.
The pelvis is one trunk section that ends at the gluteal fold; the thighs are two limb
sections whose subcutaneous fat may touch. ``t`` = 0 is just above the knee, 1 the iliac
crest (530 mm for a 170 cm subject). Reference volumes are typical adult values in the
field of view; the pelvis and thigh muscles together give TMV of about 9-11 L (seed 001).
"""

from __future__ import annotations

from myoscan.phantom.anatomy import RegionAnatomy, grown
from myoscan.phantom.geometry import SectionSpec, ShapeSpec, Track

# Section rows: t, centre u, centre v, fascia half-width, half-depth (mm).
TRUNK = SectionSpec(
    name="trunk",
    track=Track((
        (0.64, 0.0, 45.0, 140.0, 50.0),
        (0.68, 0.0, 30.0, 150.0, 70.0),
        (0.72, 0.0, 12.0, 156.0, 88.0),
        (0.76, 0.0, 5.0, 156.0, 96.0),
        (0.88, 0.0, 5.0, 150.0, 98.0),
        (1.00, 0.0, 8.0, 142.0, 98.0),
    )),
    fat_mm=16.0,
    fat_shape=(0.25, 110.0, 0.2, 90.0),
    fascia_fourier=(0.03, 0.0, 0.0, 0.0),
    bilateral=False,
    t_range=(0.655, 1.0),
)
LIMB = SectionSpec(
    name="limb",
    track=Track((
        (0.00, 88.0, 4.0, 52.0, 50.0),
        (0.15, 90.0, 4.0, 58.0, 56.0),
        (0.40, 92.0, 6.0, 68.0, 64.0),
        (0.60, 94.0, 8.0, 76.0, 70.0),
        (0.70, 96.0, 8.0, 78.0, 72.0),
        (0.80, 96.0, 8.0, 78.0, 72.0),
    )),
    fat_mm=11.0,
    fat_shape=(0.2, 150.0, 0.15, 100.0),
    t_range=(0.0, 0.74),
    separate="fascia",
)


#: Muscle outlines overlap their neighbours by this factor (see :func:`grown`).
GROW = 1.35


def _limb(name: str, rows: tuple, t_range: tuple[float, float] = (0.0, 1.0), **kw) -> ShapeSpec:
    grow = GROW if kw.get("role", "muscle") == "muscle" else 1.0
    return ShapeSpec(name, "ellipse", grown(rows, "ellipse", grow), section="limb", t_range=t_range, **kw)


def _trunk(name: str, rows: tuple, t_range: tuple[float, float], kind: str = "ellipse", **kw) -> ShapeSpec:
    grow = GROW if kw.get("role", "muscle") == "muscle" else 1.0
    return ShapeSpec(name, kind, grown(rows, kind, grow), section="trunk",  # type: ignore[arg-type]
                     t_range=t_range, **kw)


# Ellipse rows: t, xi, eta, rx, ry, angle (deg); arc rows: t, xi_c, eta_c, R, phi0, half-angle, h.
THIGH_MUSCLES = (
    _limb("vastus_lateralis", (
        (0.03, 0.60, -0.12, 0.27, 0.40, 10.0), (0.35, 0.70, -0.04, 0.26, 0.42, 10.0),
        (0.60, 0.70, -0.06, 0.26, 0.42, 5.0), (0.72, 0.68, -0.08, 0.23, 0.36, 0.0),
    ), t_range=(0.03, 0.74), fade=0.05, volume_ml=600.0),
    ShapeSpec("vastus_intermedius", "arc", Track((
        (0.08, 0.06, -0.06, 0.34, 30.0, 85.0, 0.22), (0.40, 0.06, -0.06, 0.38, 40.0, 95.0, 0.27),
        (0.65, 0.08, -0.06, 0.36, 50.0, 85.0, 0.24),
    )), section="limb", taper=0.4, t_range=(0.06, 0.68), fade=0.05, volume_ml=450.0),
    _limb("rectus_femoris", (
        (0.10, 0.02, -0.72, 0.16, 0.10, 0.0), (0.40, 0.02, -0.70, 0.28, 0.20, 0.0),
        (0.70, 0.10, -0.70, 0.22, 0.18, 0.0), (0.80, 0.20, -0.70, 0.16, 0.14, 0.0),
    ), t_range=(0.10, 0.82), fade=0.05, volume_ml=260.0),
    _limb("vastus_medialis", (
        (0.02, -0.40, -0.38, 0.48, 0.46, -30.0), (0.20, -0.46, -0.34, 0.38, 0.36, -30.0),
        (0.45, -0.42, -0.40, 0.28, 0.28, -30.0), (0.60, -0.30, -0.45, 0.16, 0.18, -30.0),
    ), t_range=(0.0, 0.62), fade=0.05, volume_ml=400.0),
    _limb("sartorius", (
        (0.05, -0.85, 0.05, 0.10, 0.18, 10.0), (0.25, -0.75, -0.30, 0.12, 0.19, 40.0),
        (0.45, -0.50, -0.65, 0.12, 0.21, 60.0), (0.60, -0.12, -0.82, 0.11, 0.20, 80.0),
        (0.75, 0.35, -0.82, 0.10, 0.18, 100.0), (0.85, 0.55, -0.82, 0.08, 0.12, 110.0),
    ), t_range=(0.03, 0.87), fade=0.06, volume_ml=170.0),
    _limb("adductor_longus", (
        (0.35, -0.55, -0.10, 0.15, 0.12, -40.0), (0.50, -0.50, -0.18, 0.30, 0.22, -40.0),
        (0.68, -0.40, -0.30, 0.27, 0.20, -40.0),
    ), t_range=(0.33, 0.72), fade=0.05, volume_ml=170.0),
    _limb("adductor_brevis", (
        (0.45, -0.32, 0.02, 0.18, 0.15, -40.0), (0.58, -0.30, -0.02, 0.26, 0.20, -40.0),
        (0.68, -0.25, -0.05, 0.23, 0.18, -40.0),
    ), t_range=(0.44, 0.71), fade=0.05, volume_ml=120.0),
    _limb("adductor_magnus", (
        (0.15, -0.45, 0.35, 0.18, 0.16, -20.0), (0.35, -0.42, 0.32, 0.32, 0.30, -20.0),
        (0.55, -0.38, 0.30, 0.38, 0.34, -20.0), (0.68, -0.30, 0.35, 0.30, 0.28, -10.0),
    ), t_range=(0.13, 0.71), fade=0.05, volume_ml=550.0),
    _limb("gracilis", (
        (0.05, -0.88, 0.28, 0.10, 0.14, 0.0), (0.35, -0.90, 0.10, 0.12, 0.22, -10.0),
        (0.65, -0.88, -0.05, 0.10, 0.24, -20.0),
    ), t_range=(0.03, 0.71), fade=0.06, volume_ml=100.0),
    _limb("semimembranosus", (
        (0.06, -0.32, 0.58, 0.37, 0.35, -20.0), (0.25, -0.30, 0.64, 0.39, 0.32, -20.0),
        (0.45, -0.24, 0.72, 0.29, 0.22, -10.0), (0.62, -0.18, 0.78, 0.17, 0.13, 0.0),
    ), t_range=(0.04, 0.64), fade=0.05, volume_ml=300.0),
    _limb("semitendinosus", (
        (0.15, -0.32, 0.86, 0.17, 0.12, 0.0), (0.35, -0.12, 0.84, 0.33, 0.24, 0.0),
        (0.55, -0.05, 0.82, 0.35, 0.26, 0.0), (0.65, 0.0, 0.82, 0.26, 0.20, 0.0),
    ), t_range=(0.13, 0.67), fade=0.05, volume_ml=230.0),
    _limb("biceps_femoris", (
        (0.06, 0.42, 0.60, 0.31, 0.29, 20.0), (0.30, 0.34, 0.68, 0.35, 0.31, 20.0),
        (0.55, 0.24, 0.74, 0.31, 0.24, 10.0), (0.66, 0.18, 0.78, 0.21, 0.16, 0.0),
    ), t_range=(0.04, 0.68), fade=0.05, volume_ml=330.0),
)

PELVIS_MUSCLES = (
    _trunk("gluteus_maximus", (
        (0.58, 0.52, 0.00, 0.62, 160.0, 30.2, 0.12), (0.66, 0.48, 0.00, 0.66, 152.0, 48.8, 0.26),
        (0.78, 0.40, 0.00, 0.72, 150.0, 55.8, 0.34), (0.88, 0.30, 0.05, 0.72, 160.0, 46.5, 0.26),
        (0.97, 0.18, 0.20, 0.60, 170.0, 23.2, 0.10),
    ), (0.57, 0.98), kind="arc", taper=0.5, fade=0.08, volume_ml=700.0),
    _trunk("gluteus_medius", (
        (0.76, 0.86, 0.05, 0.12, 0.16, -20.0), (0.84, 0.82, 0.12, 0.18, 0.28, -30.0),
        (0.93, 0.74, 0.24, 0.20, 0.32, -35.0), (1.00, 0.66, 0.32, 0.18, 0.28, -40.0),
    ), (0.75, 1.0), fade=0.06, volume_ml=300.0),
    _trunk("gluteus_minimus", (
        (0.77, 0.76, 0.02, 0.10, 0.15, -20.0), (0.84, 0.70, 0.06, 0.13, 0.24, -30.0),
        (0.92, 0.62, 0.14, 0.10, 0.22, -40.0),
    ), (0.76, 0.94), fade=0.06, volume_ml=110.0),
    _trunk("piriformis", (
        (0.77, 0.40, 0.52, 0.18, 0.06, 10.0), (0.83, 0.38, 0.50, 0.22, 0.07, 15.0),
    ), (0.76, 0.87), fade=0.04, volume_ml=40.0),
    _trunk("obturator_internus", (
        (0.69, 0.36, 0.20, 0.05, 0.16, 0.0), (0.76, 0.36, 0.10, 0.05, 0.20, 0.0),
    ), (0.68, 0.80), fade=0.04, volume_ml=40.0),
    _trunk("obturator_externus", (
        (0.66, 0.42, -0.05, 0.13, 0.15, 0.0), (0.71, 0.44, -0.05, 0.15, 0.15, 0.0),
    ), (0.645, 0.74), fade=0.03, volume_ml=30.0),
    _trunk("pectineus", (
        (0.63, 0.36, -0.38, 0.15, 0.15, 0.0), (0.70, 0.32, -0.45, 0.17, 0.16, 0.0),
    ), (0.62, 0.74), fade=0.03, volume_ml=50.0),
    _trunk("iliopsoas", (
        (0.64, 0.50, -0.18, 0.06, 0.08, 0.0), (0.70, 0.50, -0.36, 0.12, 0.14, 0.0),
        (0.78, 0.48, -0.48, 0.16, 0.16, 0.0), (0.88, 0.42, -0.14, 0.22, 0.16, -45.0),
        (1.00, 0.30, 0.08, 0.26, 0.18, -40.0),
    ), (0.63, 1.0), fade=0.04, volume_ml=350.0),
    _trunk("tensor_fasciae_latae", (
        (0.62, 0.88, -0.32, 0.06, 0.10, 30.0), (0.74, 0.84, -0.45, 0.09, 0.12, 40.0),
        (0.86, 0.80, -0.55, 0.07, 0.09, 40.0),
    ), (0.60, 0.89), fade=0.05, volume_ml=60.0),
    _trunk("quadratus_femoris", (
        (0.65, 0.52, 0.30, 0.15, 0.09, 0.0), (0.70, 0.52, 0.28, 0.16, 0.10, 0.0),
    ), (0.64, 0.73), fade=0.02, volume_ml=25.0),
    _trunk("multifidus", (
        (0.88, 0.08, 0.80, 0.08, 0.13, 0.0), (1.0, 0.11, 0.72, 0.12, 0.18, 0.0),
    ), (0.87, 1.0), fade=0.04, volume_ml=60.0),
    _trunk("abdominal_oblique", (
        (0.86, 0.0, 0.05, 0.92, 58.0, 32.5, 0.07), (1.0, 0.0, 0.05, 0.92, 60.0, 48.8, 0.09),
    ), (0.85, 1.0), kind="arc", taper=0.4, fade=0.04, volume_ml=150.0),
    _trunk("rectus_abdominis", (
        (0.72, 0.05, -0.88, 0.05, 0.05, 0.0), (0.85, 0.08, -0.92, 0.08, 0.06, 0.0),
        (1.0, 0.10, -0.93, 0.10, 0.07, 0.0),
    ), (0.71, 1.0), fade=0.03, volume_ml=80.0),
)

BONES = (
    # Hip bone (``iliac_bone``): iliac wing, acetabulum, ischium and pubis, trunk frame in mm.
    _trunk("iliac_bone", (
        (0.78, 70.0, 20.0, 45.0, 135.0, 45.0, 11.0), (0.88, 55.0, 0.0, 75.0, 125.0, 48.0, 7.0),
        (1.00, 60.0, -10.0, 80.0, 120.0, 48.0, 5.0),
    ), (0.77, 1.0), kind="arc", role="solid", material="bone", frame="mm", marrow="red_marrow",
        cortex_mm=1.5, priority=10, fade=0.02, fourier_sd=0.0),
    _trunk("iliac_bone", (
        (0.70, 96.0, 2.0, 28.0, 270.0, 80.0, 6.0), (0.80, 96.0, 2.0, 29.0, 270.0, 110.0, 7.0),
    ), (0.69, 0.82), kind="arc", role="solid", material="bone", frame="mm", marrow="red_marrow",
        cortex_mm=1.5, priority=10, fade=0.02, fourier_sd=0.0),
    _trunk("iliac_bone", (
        (0.66, 62.0, 52.0, 14.0, 17.0, 20.0), (0.72, 70.0, 32.0, 14.0, 22.0, 20.0),
    ), (0.655, 0.75), role="solid", material="bone", frame="mm", marrow="red_marrow",
        cortex_mm=2.0, priority=10, fade=0.02, fourier_sd=0.02),
    _trunk("iliac_bone", (
        (0.69, 44.0, -46.0, 32.0, 9.0, -30.0), (0.74, 60.0, -32.0, 36.0, 10.0, -35.0),
    ), (0.68, 0.76), role="solid", material="bone", frame="mm", marrow="red_marrow",
        cortex_mm=2.0, priority=10, fade=0.02, fourier_sd=0.02),
    # Femur: head, neck and greater trochanter (trunk frame) and shaft/condyles (limb frame).
    _trunk("femur", (
        (0.71, 96.0, 2.0, 20.0, 20.0, 0.0), (0.755, 96.0, 2.0, 23.0, 23.0, 0.0),
        (0.80, 96.0, 2.0, 19.0, 19.0, 0.0),
    ), (0.70, 0.81), role="solid", material="bone", frame="mm", marrow="red_marrow", cortex_mm=2.0,
        priority=11, fade=0.03, fourier_sd=0.0),
    _trunk("femur", (
        (0.68, 118.0, 6.0, 24.0, 18.0, 0.0), (0.72, 120.0, 4.0, 34.0, 16.0, -10.0),
        (0.76, 125.0, 2.0, 16.0, 14.0, 0.0),
    ), (0.67, 0.77), role="solid", material="bone", frame="mm", marrow="red_marrow", cortex_mm=2.5,
        priority=11, fade=0.02, fourier_sd=0.0),
    _limb("femur", (
        (0.0, 2.0, 0.0, 32.0, 26.0, 0.0), (0.08, 4.0, -2.0, 22.0, 20.0, 0.0),
        (0.15, 5.0, -4.0, 15.0, 14.0, 0.0), (0.60, 8.0, -4.0, 14.0, 14.0, 0.0),
        (0.70, 18.0, -2.0, 16.0, 16.0, 0.0),
    ), t_range=(0.0, 0.71), role="solid", material="bone", frame="mm", cortex_mm=6.0, priority=10,
        fade=0.02, fourier_sd=0.02, outline="harmonics"),
    _trunk("sacrum", (
        (0.72, 0.0, 88.0, 16.0, 9.0, 0.0), (0.85, 0.0, 72.0, 36.0, 16.0, 0.0),
        (1.0, 0.0, 50.0, 45.0, 20.0, 0.0),
    ), (0.71, 1.0), role="solid", material="bone", frame="mm", side="midline", labelled=False,
        marrow="red_marrow", cortex_mm=2.0, priority=10, fade=0.02, fourier_sd=0.02),
)

SOFT_TISSUE = (
    _trunk("bowel", ((0.80, 0.0, -0.30, 0.55, 0.55, 0.0), (1.0, 0.0, -0.30, 0.85, 0.72, 0.0)),
           (0.79, 1.0), role="cavity", material="bowel_mix", side="midline", labelled=False, priority=3,
           fade=0.04),
    _trunk("pelvic_fat", ((0.70, 0.0, 0.0, 0.34, 0.55, 0.0), (0.80, 0.0, -0.05, 0.40, 0.65, 0.0)),
           (0.69, 0.81), role="cavity", material="visceral_fat", side="midline", labelled=False,
           priority=2, fade=0.03),
    _trunk("bladder", ((0.71, 0.0, -0.55, 0.18, 0.16, 0.0), (0.78, 0.0, -0.45, 0.24, 0.22, 0.0)),
           (0.70, 0.82), role="solid", material="urine", side="midline", labelled=False, priority=4,
           fade=0.04),
    _trunk("rectum", ((0.70, 0.0, 0.50, 0.07, 0.08, 0.0), (0.84, 0.0, 0.40, 0.10, 0.10, 0.0)),
           (0.69, 0.86), role="solid", material="bowel", side="midline", labelled=False, priority=4,
           fade=0.04),
    _trunk("external_iliac_vessels", ((0.72, 0.42, -0.55, 0.05, 0.05, 0.0),
                                      (0.95, 0.30, -0.08, 0.05, 0.05, 0.0)),
           (0.71, 1.0), role="solid", material="vessel", labelled=False, priority=5),
    _limb("femoral_vessels", ((0.05, -0.55, 0.20, 0.07, 0.07, 0.0), (0.35, -0.55, -0.35, 0.08, 0.07, 0.0),
                              (0.70, -0.30, -0.62, 0.09, 0.08, 0.0)),
          t_range=(0.0, 0.72), role="solid", material="vessel", labelled=False, priority=5),
    _limb("sciatic_nerve", ((0.05, 0.05, 0.48, 0.06, 0.05, 0.0), (0.65, 0.10, 0.55, 0.07, 0.06, 0.0)),
          t_range=(0.0, 0.68), role="solid", material="nerve", labelled=False, priority=5),
    _limb("great_saphenous_vein", ((0.0, -1.05, 0.15, 0.05, 0.04, 0.0), (0.7, -0.95, -0.45, 0.05, 0.04, 0.0)),
          t_range=(0.0, 0.72), role="solid", material="vessel", labelled=False, priority=5),
)

ANATOMY = RegionAnatomy(
    name="thigh",
    sections=(TRUNK, LIMB),
    shapes=THIGH_MUSCLES + PELVIS_MUSCLES + BONES + SOFT_TISSUE,
    grids={
        "dixon": ((224, 144, 106), (2.0, 2.0, 5.0)),   # neck-to-knee Dixon-like resolution (seed 001)
        "ct": ((300, 192, 177), (1.5, 1.5, 3.0)),      # seed 004 resamples to 1.5 x 1.5 mm
    },
    imf_pct={
        "gluteus_maximus": 8.0, "gluteus_medius": 7.0, "gluteus_minimus": 8.0, "piriformis": 8.0,
        "obturator_internus": 8.0, "obturator_externus": 8.0, "pectineus": 6.0,
        "tensor_fasciae_latae": 6.0, "quadratus_femoris": 8.0, "multifidus": 10.0,
        "iliopsoas": 5.0, "abdominal_oblique": 7.0, "rectus_abdominis": 7.0,
        "sartorius": 6.0, "rectus_femoris": 5.0, "vastus_lateralis": 5.0, "vastus_medialis": 5.0,
        "vastus_intermedius": 5.0, "adductor_magnus": 6.0, "adductor_longus": 6.0,
        "adductor_brevis": 6.0, "gracilis": 6.0, "semimembranosus": 6.5, "semitendinosus": 6.5,
        "biceps_femoris": 6.5,
    },
    age_decline_per_year=0.0055,   # seed 001: TMV falls about 21 % over four decades
    description="pelvis and both thighs, 27 structures per side incl. femur and hip bone (seeds 001/004)",
)
