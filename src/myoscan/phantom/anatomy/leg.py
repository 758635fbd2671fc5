"""Both calves from just below the knee towards the ankle (seed 000 field of view).

Five muscle groups per leg (seed 000): anterior, lateral and deep posterior compartments,
soleus and gastrocnemius, around the tibia (antero-medial, its medial face under the skin)
and the fibula (postero-lateral). The gastrocnemius heads end at mid-calf and the soleus
takes over the back of the leg. ``t`` = 0 is the lowest slice (~30 cm below the top).
Reference volumes are typical adult values for a 30 cm calf slab.
"""

from __future__ import annotations

from myoscan.phantom.anatomy import RegionAnatomy
from myoscan.phantom.geometry import SectionSpec, ShapeSpec, Track

# Section rows: t, centre u, centre v, fascia half-width, half-depth (mm).
LIMB = SectionSpec(
    name="limb",
    track=Track((
        (0.0, 76.0, 4.0, 29.0, 25.0),
        (0.3, 78.0, 4.0, 36.0, 32.0),
        (0.6, 80.0, 4.0, 43.0, 39.0),
        (0.8, 81.0, 4.0, 45.0, 41.5),
        (1.0, 81.0, 4.0, 44.0, 40.5),
    )),
    fat_mm=7.0,
    fat_shape=(0.5, 60.0, 0.15, 135.0),
    fascia_fourier=(0.0, 0.0, 0.0, 0.0),
)

# Ellipse rows: t, xi, eta, rx, ry, angle (deg); arc rows: t, xi_c, eta_c, R, phi0, half-angle, h.
SHAPES = (
    ShapeSpec("leg_anterior_compartment", "ellipse", Track((
        (0.0, 0.24, -0.62, 0.42, 0.40, -30.0),
        (0.5, 0.28, -0.66, 0.46, 0.40, -30.0),
        (1.0, 0.28, -0.64, 0.44, 0.40, -30.0),
    )), volume_ml=200.0),
    ShapeSpec("leg_lateral_compartment", "ellipse", Track((
        (0.0, 0.80, -0.04, 0.31, 0.50, 15.0),
        (0.5, 0.84, -0.02, 0.33, 0.53, 15.0),
        (1.0, 0.84, 0.02, 0.31, 0.48, 20.0),
    )), volume_ml=110.0),
    ShapeSpec("leg_deep_posterior_compartment", "ellipse", Track((
        (0.0, 0.0, -0.02, 0.58, 0.34, 5.0),
        (0.5, 0.02, -0.05, 0.54, 0.30, 5.0),
        (1.0, 0.0, -0.08, 0.46, 0.26, 5.0),
    )), volume_ml=150.0),
    ShapeSpec("soleus", "arc", Track((
        (0.0, 0.0, -0.30, 0.80, 182.0, 100.0, 0.56),
        (0.4, 0.0, -0.30, 0.78, 184.0, 102.0, 0.50),
        (0.7, 0.0, -0.30, 0.70, 186.0, 100.0, 0.36),
        (1.0, 0.0, -0.30, 0.62, 186.0, 85.0, 0.22),
    )), taper=0.5, t_range=(0.02, 1.0), fade=0.08, volume_ml=420.0),
    ShapeSpec("gastrocnemius", "arc", Track((
        (0.35, 0.0, -0.30, 1.10, 195.0, 60.0, 0.14),
        (0.6, 0.0, -0.30, 1.08, 195.0, 90.0, 0.32),
        (0.8, 0.0, -0.30, 1.04, 195.0, 100.0, 0.38),
        (1.0, 0.0, -0.30, 1.02, 193.0, 100.0, 0.40),
    )), taper=0.55, t_range=(0.36, 1.0), fade=0.22, volume_ml=300.0),
    # Neurovascular bundles, saphenous veins and the Achilles tendon (unlabelled solids).
    ShapeSpec("posterior_tibial_vessels", "ellipse", Track((
        (0.0, -0.18, 0.26, 0.08, 0.06, 0.0), (1.0, -0.16, 0.22, 0.07, 0.05, 0.0),
    )), role="solid", material="vessel", labelled=False, priority=5),
    ShapeSpec("peroneal_vessels", "ellipse", Track((
        (0.0, 0.40, 0.20, 0.06, 0.05, 0.0), (1.0, 0.42, 0.20, 0.05, 0.04, 0.0),
    )), role="solid", material="vessel", labelled=False, priority=5, t_range=(0.0, 0.85)),
    ShapeSpec("anterior_tibial_vessels", "ellipse", Track((
        (0.0, 0.04, -0.42, 0.05, 0.04, 0.0), (1.0, 0.10, -0.24, 0.05, 0.04, 0.0),
    )), role="solid", material="vessel", labelled=False, priority=5),
    ShapeSpec("great_saphenous_vein", "ellipse", Track((
        (0.0, -1.02, -0.28, 0.07, 0.06, 0.0), (1.0, -1.04, 0.05, 0.06, 0.05, 0.0),
    )), role="solid", material="vessel", labelled=False, priority=5),
    ShapeSpec("small_saphenous_vein", "ellipse", Track((
        (0.0, 0.05, 1.04, 0.06, 0.05, 0.0), (1.0, 0.0, 1.05, 0.05, 0.04, 0.0),
    )), role="solid", material="vessel", labelled=False, priority=5, t_range=(0.0, 0.7)),
    ShapeSpec("achilles_tendon", "ellipse", Track((
        (0.0, 0.0, 0.84, 0.36, 0.16, 0.0), (0.3, 0.0, 0.90, 0.30, 0.08, 0.0),
    )), role="solid", material="tendon", labelled=False, priority=6, t_range=(0.0, 0.3), fade=0.1),
    ShapeSpec("tibia", "ellipse", Track((
        (0.0, -14.0, -14.0, 10.0, 9.0, 30.0),
        (0.3, -17.0, -19.0, 11.0, 9.5, 35.0),
        (0.6, -20.0, -25.0, 12.0, 10.0, 35.0),
        (0.8, -21.0, -26.0, 13.0, 11.0, 30.0),
        (1.0, -18.0, -23.0, 16.0, 13.0, 20.0),
    )), role="solid", material="bone", frame="mm", cortex_mm=4.0, priority=10, fourier_sd=0.02),
    ShapeSpec("fibula", "ellipse", Track((
        (0.0, 20.0, 3.0, 6.5, 6.0, 0.0),
        (0.5, 26.0, 4.0, 7.0, 6.0, 20.0),
        (1.0, 28.0, 7.0, 9.0, 8.0, 20.0),
    )), role="solid", material="bone", frame="mm", cortex_mm=2.5, priority=10, fourier_sd=0.02),
)

ANATOMY = RegionAnatomy(
    name="leg",
    sections=(LIMB,),
    shapes=SHAPES,
    grids={
        "dixon": ((448, 266, 60), (0.71, 0.71, 5.0)),   # seed 000 acquisition
        "ct": ((384, 240, 100), (0.8, 0.8, 3.0)),
    },
    imf_pct={
        "leg_anterior_compartment": 5.5,
        "leg_lateral_compartment": 6.5,
        "leg_deep_posterior_compartment": 6.5,
        "soleus": 6.0,
        "gastrocnemius": 7.0,
    },
    age_decline_per_year=0.0,   # seed 000: leg volume not associated with age
    description="both calves, 5 muscle groups per leg with tibia and fibula (seed 000)",
)
