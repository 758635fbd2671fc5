"""Tests of myoscan.report and ``myoscan report``.

A small BIDS dataset and its myoscan derivatives are built in tmp_path: two calf-like legs
(leg scheme, catalog colours) on an anisotropic grid whose first axis runs right-to-left
(so the reports must reorient to show the patient's right correctly), a water image and
the per-subject tables and provenance records the pipeline writes. The pages are checked
for content, QC flags, self-containment, and rendered in headless Chromium.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from myoscan.cli import main
from myoscan.errors import InputError
from myoscan.io import Volume, write_volume
from myoscan.labels import load_catalog
from myoscan.outputs import write_json, write_table
from myoscan.pipeline import collect_cohort
from myoscan.report import ReportOptions, find_subject_files, subject_report
from myoscan.report.labelmap import label_profiles, slice_levels, to_ras_grid
from myoscan.report.qc import robust_z

SPACING = (1.5, 1.25, 5.0)  # mm; anisotropic on purpose
SHAPE = (64, 40, 14)
LEG = load_catalog().scheme("leg")
#: Labels drawn in each leg: (structure base, centre offset in the leg (x, y) in mm, radii in mm).
_PARTS = (
    ("leg_anterior_compartment", (0.0, 12.0), (9.0, 6.0)),
    ("leg_lateral_compartment", (11.0, 2.0), (5.0, 6.0)),
    ("soleus", (0.0, -8.0), (11.0, 6.0)),
)
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def _affine() -> np.ndarray:
    """Voxel -> RAS: i runs towards the patient's left (x decreasing), centred on 0."""
    affine = np.diag([-SPACING[0], SPACING[1], SPACING[2], 1.0])
    affine[:3, 3] = [SPACING[0] * (SHAPE[0] - 1) / 2, -SPACING[1] * (SHAPE[1] - 1) / 2, -30.0]
    return affine


def _world_xy() -> tuple[np.ndarray, np.ndarray]:
    i, j = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    affine = _affine()
    return affine[0, 0] * i + affine[0, 3], affine[1, 1] * j + affine[1, 3]


def make_subject(
    scale: float = 1.0,
    *,
    shrink: dict[str, float] | None = None,
    truncate: str | None = None,
    z_range: tuple[int, int] = (1, 12),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Label map and water image of two legs.

    ``shrink`` scales the cross-section area of some structures; ``truncate`` extends one
    structure up to the top slice (cut by the field of view).
    """
    rng = np.random.default_rng(seed)
    x, y = _world_xy()
    labels = np.zeros(SHAPE, dtype=np.uint8)
    water = np.zeros(SHAPE, dtype=np.float32)
    for side, centre_x in (("left", -24.0), ("right", 24.0)):
        body = ((x - centre_x) / 22.0) ** 2 + (y / 23.0) ** 2 <= 1.0
        water[body] = 25.0
        for base, (dx, dy), (rx, ry) in _PARTS:
            cx = centre_x + (dx if side == "right" else -dx)
            name = f"{base}_{side}"
            factor = scale * np.sqrt((shrink or {}).get(name, 1.0))
            inside = ((x - cx) / (rx * factor)) ** 2 + ((y - dy) / (ry * factor)) ** 2 <= 1.0
            top = SHAPE[2] if name == truncate else z_range[1]
            labels[inside[..., None] & (np.arange(SHAPE[2]) >= z_range[0]) & (np.arange(SHAPE[2]) < top)] = (
                LEG.id_of(name)
            )
    water[labels > 0] = 100.0
    water += rng.normal(0.0, 3.0, water.shape).astype(np.float32)
    return labels, np.clip(water, 0, None)


def _fat_for(labels: np.ndarray, water: np.ndarray, seed: int = 0) -> np.ndarray:
    """Fat image: subcutaneous fat in the body outside the muscles, little fat inside them."""
    fat = np.where(water > 12, 80.0, 0.0)
    fat[labels > 0] = 6.0
    return np.clip(fat + np.random.default_rng(seed).normal(0.0, 3.0, fat.shape), 0, None).astype(np.float32)


def write_case(
    deriv: Path,
    dataset: Path,
    subject: str,
    labels: np.ndarray,
    water: np.ndarray,
    *,
    water_in_dataset: bool = False,
    height_m: float = 1.7,
) -> Path:
    """Write what ``myoscan run`` leaves for one subject (metrics by myoscan.quantify); return its folder."""
    from myoscan.quantify import quantify, regional_indices

    anat = deriv / subject / "anat"
    affine = _affine()
    label_map = write_volume(Volume(labels, affine), anat / f"{subject}_dseg.nii.gz")
    write_json({"scheme": "leg", "model": "synthetic"}, anat / f"{subject}_dseg.json")
    water_dir = dataset / subject / "anat" if water_in_dataset else anat
    water_path = write_volume(Volume(water, affine), water_dir / f"{subject}_water.nii.gz")
    metrics = quantify(
        Volume(labels, affine),
        water=Volume(water, affine),
        fat=Volume(_fat_for(labels, water), affine),
        scheme="leg",
    )
    write_table(metrics, anat / f"{subject}_metrics.tsv")
    write_table(regional_indices(metrics, height_m=height_m), anat / f"{subject}_indices.tsv")
    inputs = {}
    if water_in_dataset:
        from myoscan.pipeline.provenance import file_sha256

        inputs[str(water_path.relative_to(dataset))] = file_sha256(water_path)
    write_json(
        {
            "myoscan_version": "test",
            "dataset": str(dataset),
            "inputs_sha256": inputs,
            "parameters": {"steps": ["quantify"], "scheme": "leg"},
            "outputs": [label_map.name, f"{subject}_metrics.tsv", f"{subject}_indices.tsv"],
            "finished": "2024-01-01T00:00:00+00:00",
        },
        anat / f"{subject}_provenance.json",
    )
    return anat


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory) -> Path:
    """A derivatives folder of 7 subjects: sub-06's soleus is 10x the others', sub-03's left soleus is cut."""
    root = tmp_path_factory.mktemp("cohort")
    dataset, deriv = root / "bids", root / "bids" / "derivatives" / "myoscan"
    dataset.mkdir(parents=True)
    participants = pd.DataFrame(
        {
            "participant_id": [f"sub-0{i}" for i in range(7)],
            "age": [34, 45, 52, 58, 63, 71, 82],
            "sex": ["F", "M", "F", "M", "F", "M", "F"],
            "name": ["Jane Doe", "John Roe", "Ann Poe", "Bob Moe", "Eve Loe", "Tim Koe", "Zoe Hoe"],
            "height_m": [1.6, 1.8, 1.65, 1.75, 1.62, 1.79, 1.58],
        }
    )
    write_table(participants, dataset / "participants.tsv")
    with warnings.catch_warnings():  # the thin cohort soleus erodes away: IMF NaN, as quantify warns
        warnings.filterwarnings("ignore", message="erosion by 1 iteration")
        for i in range(7):
            labels, water = make_subject(
                scale=0.95 + 0.02 * i,
                truncate="soleus_left" if i == 3 else None,
                seed=i,
                shrink=None if i == 6 else {"soleus_left": 0.1, "soleus_right": 0.1},
            )
            write_case(
                deriv,
                dataset,
                f"sub-0{i}",
                labels,
                water,
                water_in_dataset=(i == 1),
                height_m=participants["height_m"][i],
            )
    with pytest.warns(UserWarning, match="personal identifiers"):
        collect_cohort(deriv, participants)  # drops the names; reports must not show them either
    write_table(
        pd.DataFrame(
            [
                {
                    "subject": "sub-07",
                    "session": None,
                    "step": "quantify",
                    "message": "sub-07_water.nii.gz: cannot read image",
                    "seconds": 0.1,
                }
            ]
        ),
        deriv / "errors.tsv",
    )
    return deriv


_EXTERNAL = re.compile(
    r"""(?:src|href)\s*=\s*["']?\s*(?:https?:|//|ftp:|file:)|<script[^>]*\bsrc\b|@import|url\(\s*["']?https?:""",
    re.IGNORECASE,
)


def assert_self_contained(html: str) -> None:
    """No external resources: no http(s)/protocol-relative src or href, no script files, no remote CSS."""
    assert not _EXTERNAL.search(html), _EXTERNAL.search(html)
    assert "<script" not in html.lower()
    assert re.search(r"<img[^>]+src=\"data:image/png;base64,", html)
    for target in re.findall(r"href=\"([^\"]+)\"", html):
        assert target.startswith("#") or re.fullmatch(r"[\w.-]+\.html", target), target


def _cell_texts(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


# --------------------------------------------------------------------------- small pieces


def test_label_profiles_faces_extent_and_levels():
    labels = np.zeros((5, 4, 10), dtype=np.int16)
    labels[1:3, 1:3, 2:10] = 3  # 2 x 2 cross-section, reaches the top slice
    labels[2, 2, 9] = 0  # top slice cross-section 3 of 4 voxels
    labels[0, 0:2, 4:6] = 7  # touches the first slice along axis 0 and along axis 1
    prof = label_profiles(labels, (2.0, 2.0, 3.0))
    assert prof.ids.tolist() == [3, 7]
    assert prof.n_voxels.tolist() == [31, 4]
    assert prof.volume_ml == pytest.approx([31 * 12 / 1000, 4 * 12 / 1000])
    assert prof.face_pct(2, 1).tolist() == [75.0, 0.0]  # superior face: 3 of the 4 voxels of the widest slice
    assert prof.face_pct(0, 0).tolist() == [0.0, 100.0]
    assert prof.face_pct(2, 0).tolist() == [0.0, 0.0]
    first, last = prof.extent(2)
    assert first.tolist() == [2, 4] and last.tolist() == [9, 5]
    assert slice_levels(prof, (0.0, 50.0, 100.0)) == [2, 6, 9]  # labelled range 2..9


def test_to_ras_grid_reorders_and_flips_axes():
    array = np.arange(24).reshape(2, 3, 4)
    affine = np.array([[0.0, 0.0, -3.0, 10.0], [2.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0, 0, 0, 1.0]])
    grid = to_ras_grid(Volume(array, affine))  # i -> A, j -> S, k -> L (x decreasing)
    assert grid.array.shape == (4, 2, 3) and grid.spacing_mm == (3.0, 2.0, 1.0)
    assert grid.array[0, 1, 2] == array[1, 2, 3]  # x index 0 = the largest k (most patient-left)
    voxel = np.array([0, 1, 2, 1.0])
    assert np.allclose(grid.affine @ voxel, affine @ np.array([1, 2, 3, 1.0]))
    assert not grid.is_oblique


def test_robust_z_hand_computed_and_mad_zero_fallback():
    reference = [10.0, 10.0, 10.0, 10.0, 12.0, 8.0]  # median 10, MAD 0 -> mean absolute deviation 2/3
    assert robust_z([10.0, 14.0], reference) == pytest.approx([0.0, 4.0 / (1.2533 * 2.0 / 3.0)])
    assert np.isnan(robust_z([5.0], [1.0, 2.0, 3.0])).all()  # fewer than 5 reference values
    assert np.isnan(robust_z([5.0], [4.0] * 6)).all()  # no spread at all


# --------------------------------------------------------------------------- subject report


def test_subject_report_lists_every_label_with_volume_and_flags_10x_volume(cohort_dir):
    report = subject_report(cohort_dir / "sub-06" / "anat", options=ReportOptions(check_swap=False))
    html = report.html
    assert_self_contained(html)
    metrics = pd.read_csv(cohort_dir / "sub-06" / "anat" / "sub-06_metrics.tsv", sep="\t")
    text = _cell_texts(html)
    for name, volume in zip(metrics["name"], metrics["volume_ml"], strict=True):
        assert name in text and LEG.structure(LEG.id_of(name)).display_name in text
        assert f"{volume:.1f}" in text
    assert "Volume (mL)" in html and "IMF (%)" in html and "TMV (cm³)" in html  # units in headers
    flags = report.flags.set_index(["check", "structure"])
    for side in ("left", "right"):
        flag = flags.loc[("volume", f"soleus_{side}")]
        assert flag["severity"] == "warn" and flag["value"] > 3.5 and "implausibly large" in flag["message"]
    assert not ((report.flags["check"] == "volume") & report.flags["structure"].str.startswith("leg_")).any()
    assert report.status == "warn"
    # participants: age and sex only, never the other columns
    assert "82" in text and "female" in text
    assert "Doe" not in text and "height_m" not in text and str(cohort_dir.parent) not in text


def test_subject_report_flags_label_cut_by_field_of_view(cohort_dir):
    report = subject_report(cohort_dir / "sub-03", options=ReportOptions(check_swap=False))
    coverage = report.flags.loc[report.flags["check"] == "coverage"].set_index("structure")
    assert list(coverage.index) == ["soleus_left"]
    assert coverage.loc["soleus_left", "severity"] == "warn"
    assert "superior" in coverage.loc["soleus_left", "message"]
    assert coverage.loc["soleus_left", "value"] == pytest.approx(100.0)
    assert "touches the superior" in report.html


def test_subject_image_found_through_provenance_and_change_detected(tmp_path):
    dataset, deriv = tmp_path / "bids", tmp_path / "deriv"
    labels, water = make_subject(seed=3)
    anat = write_case(deriv, dataset, "sub-09", labels, water, water_in_dataset=True)
    files = find_subject_files(deriv / "sub-09")
    assert files.images["water"] == dataset / "sub-09" / "anat" / "sub-09_water.nii.gz"
    (anat / "sub-09_dseg.json").unlink()  # the scheme then comes from the run parameters
    report = subject_report(anat, cohort=False)
    assert "<b>label scheme:</b> leg" in report.html
    assert "sub-09_water.nii.gz" in report.html
    assert report.flags.set_index("check").loc["provenance", "severity"] == "pass"
    write_volume(Volume(water * 2, _affine()), files.images["water"])  # the input changes after the run
    changed = subject_report(anat, cohort=False).flags.set_index("check").loc["provenance"]
    assert changed["severity"] == "warn" and "changed since the pipeline run" in changed["message"]


def test_missing_label_against_scheme_and_volumes_without_metrics_table(tmp_path):
    labels, water = make_subject(seed=4)
    labels[labels == LEG.id_of("leg_lateral_compartment_right")] = 0
    anat = write_case(tmp_path / "deriv", tmp_path / "bids", "sub-10", labels, water)
    (anat / "sub-10_metrics.tsv").unlink()
    report = subject_report(anat, cohort=False, options=ReportOptions(check_swap=False))
    missing = report.flags.loc[report.flags["check"] == "missing"]
    assert missing["severity"].tolist() == ["warn"] * 9  # 5 leg labels absent: 9 of the 14 in region 'leg'
    assert "leg_lateral_compartment_right" in set(missing["structure"])
    assert "tibia_left" in set(missing["structure"])
    n_soleus = int((labels == LEG.id_of("soleus_left")).sum())
    assert f"{n_soleus * np.prod(SPACING) / 1000:.1f}" in _cell_texts(report.html)
    assert "counted from sub-10_dseg.nii.gz" in report.html
    volume = report.flags.set_index("check").loc["volume"]
    assert volume["severity"] == "n/a"


def test_swap_check_fires_on_swapped_leg(tmp_path):
    pytest.importorskip(
        "myoscan.dixon", reason="the fat-water swap detector (myoscan.dixon) is not installed"
    )
    labels, water = make_subject(seed=5)
    fat = _fat_for(labels, water)
    x, _ = _world_xy()
    right = np.broadcast_to((x > 0)[..., None], SHAPE)
    cases = {"sub-11": (water, fat), "sub-12": (np.where(right, fat, water), np.where(right, water, fat))}
    severities = {}
    for subject, (w, f) in cases.items():
        anat = write_case(tmp_path / "deriv", tmp_path / "bids", subject, labels, w)
        write_volume(Volume(f, _affine()), anat / f"{subject}_fat.nii.gz")
        flag = subject_report(anat, cohort=False).flags.set_index("check").loc["swap"]
        severities[subject] = (flag["severity"], flag["value"])
    assert severities["sub-11"] == ("pass", 0.0)
    assert severities["sub-12"][0] == "fail" and 30.0 < severities["sub-12"][1] < 70.0  # about half the body


def test_explicit_image_on_another_grid_is_resampled(tmp_path):
    labels, water = make_subject(seed=6)
    anat = write_case(tmp_path / "deriv", tmp_path / "bids", "sub-13", labels, water)
    coarse = Volume(water[::2, ::2, :], _affine() @ np.diag([2.0, 2.0, 1.0, 1.0]))
    image = write_volume(coarse, tmp_path / "coarse_water.nii.gz")
    report = subject_report(anat, image=image, cohort=False, options=ReportOptions(check_swap=False))
    assert "coarse_water.nii.gz" in report.html and "resampled onto the label grid" in report.html


def test_bad_inputs_raise_one_line_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        find_subject_files(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no myoscan derivatives"):
        find_subject_files(tmp_path / "empty")
    anat = tmp_path / "sub-01" / "anat"
    anat.mkdir(parents=True)
    write_table(pd.DataFrame({"label_id": [1], "volume_ml": [1.0]}), anat / "sub-01_metrics.tsv")
    with pytest.raises(InputError, match="no label map"):
        subject_report(anat)
    with pytest.raises(InputError, match="levels"):
        ReportOptions(levels_pct=(50.0, 120.0))


# --------------------------------------------------------------------------- cohort report


def test_cohort_report_counts_outliers_links_and_pages(cohort_dir, tmp_path):
    from myoscan.report import write_cohort_report

    out = tmp_path / "qc" / "index.html"
    report = write_cohort_report(
        cohort_dir, out, subject_pages="all", options=ReportOptions(check_swap=False)
    )
    html = out.read_text()
    assert_self_contained(html)
    assert report.counts == {"done": 7, "failed": 1, "labels": 6}
    assert "sub-07_water.nii.gz: cannot read image" in html  # errors.tsv
    assert report.outliers["key"].iloc[0] == "sub-06"  # largest |z| first
    volume = report.outliers.loc[report.outliers["measure"] == "volume_ml"]
    assert set(zip(volume["key"], volume["structure"], strict=True)) == {
        ("sub-06", "soleus_left"),
        ("sub-06", "soleus_right"),
    }
    assert '<a href="sub-06.html">sub-06</a>' in html
    assert sorted(report.pages) == [f"sub-0{i}" for i in range(7)]
    assert report.pages["sub-03"] == "warn" and report.pages["sub-06"] == "warn"
    for key in report.pages:
        page = (out.parent / f"{key}.html").read_text()
        assert_self_contained(page)
        assert 'href="index.html"' in page
    assert "Doe" not in _cell_texts(html) and "Muscle volume by group" in html and "IMF by group" in html
    qc_flags = pd.read_csv(out.parent / "qc_flags.csv")
    assert set(qc_flags.loc[qc_flags["check"] == "coverage"].query("severity == 'warn'")["key"]) == {"sub-03"}
    assert pd.read_csv(out.parent / "outliers.csv")["key"].iloc[0] == "sub-06"
    # a second run re-uses the fresh subject pages
    stamp = (out.parent / "sub-03.html").stat().st_mtime_ns
    again = write_cohort_report(cohort_dir, out, subject_pages="all", options=ReportOptions(check_swap=False))
    assert (out.parent / "sub-03.html").stat().st_mtime_ns == stamp and again.pages == report.pages


def test_cohort_outlier_pages_only_by_default(cohort_dir, tmp_path):
    from myoscan.report import write_cohort_report

    report = write_cohort_report(cohort_dir, tmp_path / "index.html", options=ReportOptions(check_swap=False))
    assert sorted(report.pages) == sorted(set(report.outliers["key"])) == ["sub-03", "sub-06"]
    assert sorted(p.name for p in tmp_path.glob("*.html")) == ["index.html", "sub-03.html", "sub-06.html"]


# --------------------------------------------------------------------------- rendering in Chromium


def _screenshot(html: Path, png: Path, profile: Path, *, height: int = 1600) -> np.ndarray:
    """Render ``html`` in headless Chromium (offline) and return the screenshot as (H, W, 3) uint8."""
    from matplotlib.image import imread

    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size=1280,{height}",
        html.as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return np.rint(imread(png)[..., :3] * 255).astype(np.int16)


def _colour_pixels(image: np.ndarray, rgb: tuple[int, int, int], tol: int = 2) -> np.ndarray:
    return np.abs(image - np.array(rgb)).max(axis=-1) <= tol


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium_with_overlay(cohort_dir, tmp_path):
    page = tmp_path / "sub-03.html"
    page.write_text(
        subject_report(cohort_dir / "sub-03" / "anat", options=ReportOptions(check_swap=False)).html
    )
    shot = _screenshot(page, tmp_path / "sub-03.png", tmp_path / "chrome")
    assert shot.shape == (1600, 1280, 3)
    not_white = np.abs(shot - 255).max(axis=-1) > 10
    assert not_white.mean() > 0.2 and shot.std() > 40  # a page with figures, not a blank one
    present = np.unique(nib_labels(cohort_dir / "sub-03" / "anat" / "sub-03_dseg.nii.gz"))
    for label_id in present[present > 0]:
        structure = LEG.structure(int(label_id))
        count = int(_colour_pixels(shot, structure.color).sum())
        assert count > 300, (
            f"{structure.name}: only {count} pixels of {structure.color_hex} in the screenshot"
        )
    for absent in ("leg_deep_posterior_compartment_left", "gastrocnemius_left"):  # negative control
        assert _colour_pixels(shot, LEG.structure(LEG.id_of(absent)).color).sum() < 100
    # radiological convention: the patient's right leg is drawn on the image left
    right = _colour_pixels(shot, LEG.structure(LEG.id_of("leg_anterior_compartment_right")).color)
    left = _colour_pixels(shot, LEG.structure(LEG.id_of("leg_anterior_compartment_left")).color)
    assert np.nonzero(right)[1].mean() < np.nonzero(left)[1].mean()


def nib_labels(path: Path) -> np.ndarray:
    from myoscan.io import read_volume

    return np.asarray(read_volume(path).array)


def test_neurological_convention_puts_right_leg_on_image_right(cohort_dir):
    import base64
    import io

    from matplotlib.image import imread

    html = subject_report(
        cohort_dir / "sub-01",
        cohort=False,
        options=ReportOptions(convention="neurological", check_swap=False),
    ).html
    assert "Neurological convention" in html
    data = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    axial = np.rint(imread(io.BytesIO(base64.b64decode(data)))[..., :3] * 255).astype(np.int16)
    right = _colour_pixels(axial, LEG.structure(LEG.id_of("leg_anterior_compartment_right")).color)
    left = _colour_pixels(axial, LEG.structure(LEG.id_of("leg_anterior_compartment_left")).color)
    assert np.nonzero(right)[1].mean() > np.nonzero(left)[1].mean()


# --------------------------------------------------------------------------- command line


def test_cli_subject_and_cohort_reports(cohort_dir, tmp_path, capsys):
    out, qc_table = tmp_path / "sub-06.html", tmp_path / "sub-06_qc.csv"
    args = ["--qc-table", str(qc_table), "--levels", "20,50,80", "--no-swap-check", "-q"]
    assert main(["report", str(cohort_dir / "sub-06" / "anat"), "-o", str(out), *args]) == 0
    assert "Axial slices at 20, 50, 80 %" in out.read_text()
    assert "volume" in set(pd.read_csv(qc_table)["check"])
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary files
    folder = tmp_path / "pages"
    folder.mkdir()
    assert main(["report", str(cohort_dir / "sub-01"), "-o", str(folder), "--no-swap-check", "-q"]) == 0
    assert (folder / "sub-01.html").is_file()  # -o FOLDER: named after the subject
    assert (
        main(["report", "--cohort", str(cohort_dir), "-o", str(folder), "--subject-pages", "none", "-q"]) == 0
    )
    assert (folder / "index.html").is_file()
    assert sorted(p.name for p in folder.glob("*.html")) == ["index.html", "sub-01.html"]


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("myoscan report: error:") and "no myoscan derivatives" in err and "\n" not in err
    assert main(["report", str(tmp_path / "missing"), "-o", str(tmp_path / "r.html")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["report", "-o", str(tmp_path / "r.html")]) == 2
    assert "either SUBJECT_DERIV or --cohort" in capsys.readouterr().err
    assert main(["report", "--cohort", str(tmp_path / "empty"), "-o", str(tmp_path / "r.html")]) == 2
    assert "no cohort_metrics" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_cli_points_to_cohort_mode_and_rejects_a_non_label_map(cohort_dir, tmp_path, capsys):
    assert main(["report", str(cohort_dir), "-o", str(tmp_path / "r.html")]) == 2
    assert "myoscan report --cohort" in capsys.readouterr().err
    anat = tmp_path / "sub-20" / "anat"
    _, water = make_subject(seed=7)
    write_volume(Volume(water, _affine()), anat / "sub-20_dseg.nii.gz")  # an image saved as a label map
    assert main(["report", str(anat), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "sub-20_dseg.nii.gz holds non-integer values" in err and not (tmp_path / "r.html").exists()
    image = str(anat / "sub-20_dseg.nii.gz")
    assert (
        main(["report", "--cohort", str(cohort_dir), "--image", image, "-o", str(tmp_path / "r.html")]) == 2
    )
    assert "--image apply to a subject report" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["files", "labelmap", "markup", "qc", "figures", "cohort"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"myoscan.report.{module}"))
    assert result.attempted > 0 and result.failed == 0


def test_explicit_cohort_table_without_volumes_is_an_error(cohort_dir, tmp_path, capsys):
    participants = tmp_path / "participants.tsv"
    write_table(pd.DataFrame({"participant_id": ["sub-01"], "age": [50]}), participants)
    with pytest.raises(InputError, match=r"participants\.tsv.*name.*volume_ml"):
        subject_report(cohort_dir / "sub-06" / "anat", cohort=participants,
                       options=ReportOptions(check_swap=False))
    out = tmp_path / "r.html"
    assert main(["report", str(cohort_dir / "sub-06" / "anat"), "--cohort-table", str(participants),
                 "-o", str(out), "--no-swap-check"]) == 2
    assert "volume_ml" in capsys.readouterr().err
    assert not out.exists()


def test_cli_bad_qc_table_path_writes_no_report(cohort_dir, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(cohort_dir / "sub-06" / "anat"), "-o", str(out), "--no-swap-check",
                 "--qc-table", str(tmp_path / "flags.xlsx")]) == 2
    assert "xlsx" in capsys.readouterr().err
    assert not out.exists()  # the report and its QC table appear together or not at all
