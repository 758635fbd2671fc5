"""Neck from C2 to C7 (seed 002 field of view).

The 7 muscle groups x left/right of seed 002 (Table 1) around a cervical vertebra: longus
colli/capitis in front of the body, multifidus + semispinalis cervicis, semispinalis
capitis and splenius capitis behind the arch, levator scapulae, sternocleidomastoid and
trapezius. Each is labelled only at its vertebral levels (MFSS C4-C6, LC C3-C6, SSCap and
SPCap C3-C5, SCM C4-C6, LS C5-C6, TR C6); above and below it is unlabelled muscle, as in
the seed's ground truth. Scalenes and strap muscles are unlabelled muscle; trachea,
oesophagus, thyroid, carotid arteries and jugular veins complete the section. ``t`` = 0 is
the bottom of C7, 1 the top of C2 (120 mm, six levels of 20 mm).
Reference volumes are the seed 002 Table 2 means within the labelled levels.
"""

from __future__ import annotations

from myoscan.phantom.anatomy import RegionAnatomy, grown
from myoscan.phantom.geometry import SectionSpec, ShapeSpec, Track

#: Normalised extent of each vertebral level (bottom, top), C7 at the bottom of the scan.
LEVELS: dict[str, tuple[float, float]] = {
    "C7": (0.0, 1 / 6), "C6": (1 / 6, 2 / 6), "C5": (2 / 6, 3 / 6),
    "C4": (3 / 6, 4 / 6), "C3": (4 / 6, 5 / 6), "C2": (5 / 6, 1.0),
}


def levels(first: str, last: str) -> tuple[float, float]:
    """``t`` range from the top of ``first`` (cranial) to the bottom of ``last`` (caudal).

    Examples
    --------
    >>> [round(x, 3) for x in levels("C4", "C6")]
    [0.167, 0.667]
    """
    return LEVELS[last][0], LEVELS[first][1]


NECK = SectionSpec(
    name="trunk",
    track=Track((
        (0.0, 0.0, 6.0, 62.0, 47.0),
        (0.2, 0.0, 4.0, 51.0, 44.0),
        (0.45, 0.0, 2.0, 45.0, 42.0),
        (1.0, 0.0, 2.0, 43.0, 42.0),
    )),
    fat_mm=6.0,
    fat_shape=(0.3, 90.0, 0.0, 0.0),
    fascia_fourier=(0.0, 0.0, 0.03, 0.0),
    bilateral=False,
)

#: Muscle outlines overlap their neighbours by this factor (see :func:`grown`).
GROW = 1.6


def _muscle(name: str, rows: tuple, levels_range: tuple[float, float] | None, *, kind: str = "ellipse",
            t_range: tuple[float, float] = (0.0, 1.0), **kw) -> ShapeSpec:
    return ShapeSpec(name, kind, grown(rows, kind, GROW), section="trunk",  # type: ignore[arg-type]
                     t_range=t_range, label_t_range=levels_range, **kw)


def _solid(name: str, material: str, rows: tuple, *, kind: str = "ellipse", priority: int = 10,
           t_range: tuple[float, float] = (0.0, 1.0), **kw) -> ShapeSpec:
    kw = {"frame": "mm", "labelled": False, "fourier_sd": 0.02, "fade": 0.05, **kw}
    return ShapeSpec(name, kind, Track(rows), role="solid", material=material,  # type: ignore[arg-type]
                     section="trunk", priority=priority, t_range=t_range, **kw)


# Ellipse rows: t, xi, eta, rx, ry, angle (deg); arc rows: t, xi_c, eta_c, R, phi0, half-angle, h.
MUSCLES = (
    _muscle("longus_colli_capitis", (
        (0.0, 0.13, -0.37, 0.08, 0.07, 0.0), (0.5, 0.13, -0.38, 0.10, 0.08, 0.0),
        (1.0, 0.13, -0.36, 0.11, 0.08, 0.0),
    ), levels("C3", "C6"), volume_ml=8.0),
    _muscle("multifidus_semispinalis_cervicis", (
        (0.0, 0.21, 0.60, 0.10, 0.16, 10.0), (0.5, 0.22, 0.57, 0.11, 0.17, 10.0),
        (1.0, 0.22, 0.55, 0.10, 0.15, 10.0),
    ), levels("C4", "C6"), volume_ml=18.0),
    _muscle("semispinalis_capitis", (
        (0.0, 0.15, 0.84, 0.11, 0.09, 0.0), (0.5, 0.17, 0.82, 0.13, 0.11, 0.0),
        (1.0, 0.18, 0.80, 0.14, 0.12, 0.0),
    ), levels("C3", "C5"), volume_ml=14.0),
    _muscle("splenius_capitis", (
        (0.1, 0.36, 0.74, 0.13, 0.05, 35.0), (0.5, 0.42, 0.64, 0.16, 0.08, 40.0),
        (1.0, 0.46, 0.56, 0.16, 0.09, 45.0),
    ), levels("C3", "C5"), t_range=(0.08, 1.0), volume_ml=9.0),
    _muscle("levator_scapulae", (
        (0.0, 0.62, 0.32, 0.12, 0.10, 30.0), (0.5, 0.60, 0.28, 0.10, 0.09, 30.0),
        (1.0, 0.56, 0.22, 0.07, 0.06, 30.0),
    ), levels("C5", "C6"), volume_ml=7.6),
    _muscle("sternocleidomastoid", (
        (0.0, 0.46, -0.76, 0.19, 0.07, 30.0), (0.5, 0.70, -0.52, 0.20, 0.095, 50.0),
        (1.0, 0.80, -0.24, 0.18, 0.12, 70.0),
    ), levels("C4", "C6"), volume_ml=16.5),
    _muscle("trapezius", (
        (0.0, 0.0, 0.0, 0.89, 128.0, 50.0, 0.09), (0.3, 0.0, 0.0, 0.89, 150.0, 32.0, 0.07),
        (0.6, 0.0, 0.0, 0.89, 165.0, 16.0, 0.05),
    ), levels("C6", "C6"), kind="arc", taper=0.4, t_range=(0.0, 0.7), fade=0.1, volume_ml=3.8),
    _muscle("scalenes", (
        (0.0, 0.48, -0.10, 0.14, 0.15, 30.0), (0.5, 0.44, -0.10, 0.12, 0.14, 30.0),
        (1.0, 0.40, -0.10, 0.09, 0.11, 30.0),
    ), None, labelled=False),
    _muscle("longissimus_cervicis_capitis", (
        (0.0, 0.36, 0.42, 0.10, 0.12, 20.0), (0.5, 0.36, 0.38, 0.10, 0.12, 20.0),
        (1.0, 0.34, 0.34, 0.09, 0.11, 20.0),
    ), None, labelled=False),
    _muscle("infrahyoid_muscles", (
        (0.0, 0.14, -0.86, 0.07, 0.035, 10.0), (0.6, 0.16, -0.88, 0.08, 0.035, 10.0),
    ), None, labelled=False, t_range=(0.0, 0.75), fade=0.1),
)

SKELETON_AND_VISCERA = (
    _solid("vertebral_body", "bone", ((0.0, 0.0, -9.0, 10.0, 8.0, 0.0), (1.0, 0.0, -8.0, 9.0, 8.0, 0.0)),
           side="midline", marrow="red_marrow", cortex_mm=1.2),
    _solid("vertebral_arch", "bone", ((0.0, 0.0, 9.0, 13.0, 180.0, 70.0, 2.5),
                                      (1.0, 0.0, 9.0, 12.5, 180.0, 72.0, 2.5)),
           kind="arc", side="midline", marrow="red_marrow", cortex_mm=2.5),
    _solid("articular_pillar", "bone", ((0.0, 16.0, 6.0, 6.0, 7.0, 0.0), (1.0, 15.0, 6.0, 5.5, 7.0, 0.0)),
           marrow="red_marrow", cortex_mm=1.5),
    _solid("spinous_process", "bone", ((0.0, 0.0, 33.0, 3.0, 12.0, 0.0), (0.5, 0.0, 28.0, 3.0, 8.0, 0.0),
                                       (1.0, 0.0, 30.0, 3.5, 9.0, 0.0)),
           side="midline", marrow="red_marrow", cortex_mm=3.0),
    _solid("transverse_process", "bone",
           ((0.0, 20.0, -6.0, 8.0, 3.5, -10.0), (1.0, 18.0, -5.0, 7.0, 3.5, -10.0)),
           marrow="red_marrow", cortex_mm=3.0),
    _solid("spinal_canal", "csf", ((0.0, 0.0, 8.0, 10.5, 6.5, 0.0), (1.0, 0.0, 8.0, 10.0, 6.5, 0.0)),
           side="midline", priority=20, fourier_sd=0.0),
    _solid("spinal_cord", "cord", ((0.0, 0.0, 8.0, 6.0, 4.0, 0.0), (1.0, 0.0, 8.0, 6.0, 4.0, 0.0)),
           side="midline", priority=21, fourier_sd=0.0),
    _solid("trachea", "cartilage", ((0.0, 0.0, -40.0, 10.0, 9.0, 0.0), (0.7, 0.0, -38.0, 9.0, 8.0, 0.0)),
           side="midline", priority=8, t_range=(0.0, 0.72), fourier_sd=0.0),
    _solid("trachea_lumen", "internal_air",
           ((0.0, 0.0, -40.0, 8.0, 7.0, 0.0), (0.7, 0.0, -38.0, 7.0, 6.0, 0.0)),
           side="midline", priority=9, t_range=(0.0, 0.72), fourier_sd=0.0),
    _solid("larynx", "internal_air", ((0.74, 0.0, -36.0, 9.0, 9.0, 0.0), (1.0, 0.0, -34.0, 12.0, 8.0, 0.0)),
           side="midline", priority=9, t_range=(0.72, 1.0), fourier_sd=0.0),
    _solid("oesophagus", "organ", ((0.0, 3.0, -25.0, 7.0, 4.0, 0.0), (1.0, 2.0, -24.0, 6.0, 4.0, 0.0)),
           side="midline", priority=7),
    _solid("thyroid", "gland", ((0.05, 16.0, -40.0, 9.0, 7.0, -30.0), (0.35, 16.0, -40.0, 10.0, 8.0, -30.0)),
           priority=6, t_range=(0.02, 0.42), fade=0.1),
    _solid("carotid_artery", "vessel", ((0.0, 19.0, -20.0, 3.5, 3.5, 0.0), (1.0, 20.0, -16.0, 3.5, 3.5, 0.0)),
           priority=8, fourier_sd=0.0),
    _solid("jugular_vein", "vessel", ((0.0, 27.0, -17.0, 5.5, 4.5, 20.0), (1.0, 27.0, -12.0, 5.0, 4.0, 20.0)),
           priority=8, fourier_sd=0.0),
)

ANATOMY = RegionAnatomy(
    name="cervical",
    sections=(NECK,),
    shapes=MUSCLES + SKELETON_AND_VISCERA,
    grids={
        "dixon": ((288, 240, 40), (0.7, 0.7, 3.0)),     # seed 002 acquisition
        "ct": ((288, 240, 40), (0.7, 0.7, 3.0)),
    },
    imf_pct={
        # seed 002 Table 2 MFI (uneroded, whiplash cohort) x ~0.85 for the eroded-mask definition
        "multifidus_semispinalis_cervicis": 14.0, "longus_colli_capitis": 11.5,
        "semispinalis_capitis": 12.5, "splenius_capitis": 8.0, "levator_scapulae": 6.0,
        "sternocleidomastoid": 7.5, "trapezius": 6.5,
    },
    age_decline_per_year=0.002,
    levels=LEVELS,
    description="neck C2-C7, 7 muscle groups per side labelled at their vertebral levels (seed 002)",
)
