"""Writing phantoms: one scan to a folder, or a BIDS-like dataset of many subjects.

Single phantom (``write_phantom``)::

    DIR/water.nii.gz fat.nii.gz inphase.nii.gz outphase.nii.gz fatfrac.nii.gz   (or ct.nii.gz)
    DIR/labels.nii.gz labels.tsv tissue.nii.gz [swap_mask.nii.gz] truth.json

Dataset (``write_dataset``), the layout MuscleMap recommends (BIDS, labels as derivatives)::

    DIR/dataset_description.json participants.tsv participants.json
    DIR/sub-001/anat/sub-001_water.nii.gz ... (or sub-001_ct.nii.gz)
    DIR/derivatives/labels/sub-001/anat/sub-001_dseg.nii.gz      catalog ids, dseg.tsv lookup
    DIR/derivatives/phantom/sub-001/anat/sub-001_desc-tissue_dseg.nii.gz
    DIR/derivatives/phantom/sub-001/anat/sub-001_desc-swap_mask.nii.gz   (--swap)
    DIR/derivatives/phantom/sub-001/anat/sub-001_truth.json
    DIR/derivatives/phantom/truth_labels.tsv truth_indices.tsv   one table for the cohort

Every file is written atomically (complete or absent).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from myoscan._typing import PathLike
from myoscan.errors import InputError
from myoscan.io import write_volume
from myoscan.labels import load_catalog
from myoscan.outputs import write_figure, write_json, write_table
from myoscan.phantom.core import DIXON_IMAGES, Phantom, PhantomConfig, make_phantom
from myoscan.phantom.materials import TISSUES
from myoscan.progress import progress

__all__ = ["check_images", "check_output_folder", "save_overlay", "write_dataset", "write_phantom"]

BIDS_VERSION = "1.9.0"


def check_output_folder(out_dir: Path, overwrite: bool) -> None:
    """Raise InputError if ``out_dir`` is a file, or a non-empty folder without ``overwrite``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder; choose another output folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise InputError(f"{out_dir}: folder is not empty; choose a new folder or pass --overwrite")


def _lookup_table(region: str) -> pd.DataFrame:
    """BIDS ``dseg.tsv``: index, name, abbreviation, color of the region's scheme."""
    scheme = load_catalog().scheme(region)
    rows = [(i, s.name, s.abbreviation or "", s.color_hex) for i, s in scheme.labels.items()]
    return pd.DataFrame(rows, columns=["index", "name", "abbreviation", "color"])


def _tissue_table() -> pd.DataFrame:
    return pd.DataFrame(list(TISSUES.items()), columns=["index", "name"])


def check_images(modality: str, images: Sequence[str] | None) -> None:
    """Raise InputError if ``images`` names an image the modality does not produce."""
    allowed = DIXON_IMAGES if modality == "dixon" else ("ct",)
    if images is None:
        return
    unknown = [name for name in images if name not in allowed]
    if unknown or not images:
        raise InputError(f"unknown image(s) {', '.join(unknown) or '(none given)'} for a {modality} "
                         f"phantom; choose from {', '.join(allowed)}")


def _selected(phantom: Phantom, images: Sequence[str] | None) -> dict[str, Any]:
    check_images(phantom.modality, images)
    if images is None:
        return phantom.images
    return {name: phantom.images[name] for name in phantom.images if name in images}


def write_phantom(phantom: Phantom, out_dir: PathLike, *, overwrite: bool = False,
                  images: Sequence[str] | None = None) -> dict[str, Path]:
    """Write one phantom's images, label map, tissue map and truth to ``out_dir``.

    Parameters
    ----------
    phantom : Phantom
        From :func:`myoscan.phantom.make_phantom`.
    out_dir : str or os.PathLike
        Output folder (created; must be empty unless ``overwrite``).
    overwrite : bool
        Allow writing into a non-empty folder (files of the same name are replaced).
    images : sequence of str, optional
        Only these images (e.g. ``['water']``); default all.

    Returns
    -------
    dict of str to Path
        What was written, by role.

    Raises
    ------
    InputError
        If ``out_dir`` is a file or a non-empty folder without ``overwrite``.
    """
    out = Path(out_dir)
    check_output_folder(out, overwrite)
    chosen = _selected(phantom, images)
    written: dict[str, Path] = {}
    for name, volume in chosen.items():
        written[name] = write_volume(volume, out / f"{name}.nii.gz")
    written["labels"] = write_volume(phantom.labels, out / "labels.nii.gz")
    written["labels_tsv"] = write_table(_lookup_table(phantom.region), out / "labels.tsv")
    written["tissue"] = write_volume(phantom.tissue, out / "tissue.nii.gz")
    if phantom.swap_mask is not None:
        written["swap_mask"] = write_volume(phantom.swap_mask, out / "swap_mask.nii.gz")
    truth = {**phantom.truth, "files": {k: p.name for k, p in written.items()}}
    written["truth"] = write_json(truth, out / "truth.json")
    return written


def _participant_row(subject_id: str, phantom: Phantom, seed: Sequence[int]) -> dict[str, Any]:
    s = phantom.subject
    return {
        "participant_id": subject_id,
        "sex": "M" if s.sex == "male" else "F",
        "age": round(s.age_years, 1),
        "height_cm": round(s.height_cm, 1),
        "weight_kg": round(s.weight_kg, 1),
        "bmi": round(s.bmi_kg_m2, 2),
        "seed": " ".join(str(v) for v in seed),
    }


_PARTICIPANTS_JSON = {
    "participant_id": {"Description": "simulated participant (myoscan phantom)"},
    "sex": {"Description": "sex of the simulated anatomy", "Levels": {"F": "female", "M": "male"}},
    "age": {"Description": "age", "Units": "year"},
    "height_cm": {"Description": "body height", "Units": "cm"},
    "weight_kg": {"Description": "body mass", "Units": "kg"},
    "bmi": {"Description": "body-mass index", "Units": "kg/m^2"},
    "seed": {"Description": "seed entropy that regenerates the subject: make_phantom(seed=[...])"},
}


def _write_subject(root: Path, subject_id: str, phantom: Phantom, images: Sequence[str] | None) -> None:
    anat = root / subject_id / "anat"
    for name, volume in _selected(phantom, images).items():
        write_volume(volume, anat / f"{subject_id}_{name}.nii.gz")
    labels = root / "derivatives" / "labels" / subject_id / "anat"
    write_volume(phantom.labels, labels / f"{subject_id}_dseg.nii.gz")
    extra = root / "derivatives" / "phantom" / subject_id / "anat"
    write_volume(phantom.tissue, extra / f"{subject_id}_desc-tissue_dseg.nii.gz")
    if phantom.swap_mask is not None:
        write_volume(phantom.swap_mask, extra / f"{subject_id}_desc-swap_mask.nii.gz")
    write_json({**phantom.truth, "subject_id": subject_id}, extra / f"{subject_id}_truth.json")


def _description(name: str, dataset_type: str, config: PhantomConfig, region: str, modality: str,
                 seed: int) -> dict[str, Any]:
    from myoscan import __version__

    return {
        "Name": name,
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": dataset_type,
        "GeneratedBy": [{
            "Name": "myoscan phantom", "Version": __version__,
            "Description": f"synthetic {region} {modality} phantoms, seed {seed}",
        }],
        "PhantomConfig": {k: v for k, v in vars(config).items() if v is not None},
    }


def write_dataset(
    region: str,
    modality: str,
    n: int,
    out_dir: PathLike,
    *,
    seed: int = 0,
    config: PhantomConfig | None = None,
    overwrite: bool = False,
    images: Sequence[str] | None = None,
    show_progress: bool = True,
) -> pd.DataFrame:
    """Generate ``n`` subjects and write them as a BIDS-like dataset.

    Subject ``i`` (0-based) is ``make_phantom(region, modality, seed=[seed, i], config=config)``:
    independent random streams, so datasets made with different seeds share no subject.

    Parameters
    ----------
    region, modality : str
        See :func:`myoscan.phantom.make_phantom`.
    n : int
        Number of subjects (``sub-001`` ...).
    out_dir : str or os.PathLike
        Dataset root (created; must be empty unless ``overwrite``).
    seed : int
        Dataset seed.
    config : PhantomConfig, optional
        Settings shared by all subjects (demographics given here are fixed for all).
    overwrite : bool
        Allow a non-empty folder.
    images : sequence of str, optional
        Only these images per subject (e.g. ``['water']`` for training); default all.
    show_progress : bool
        Progress bar on stderr.

    Returns
    -------
    pandas.DataFrame
        The participants table (also written as ``participants.tsv``).

    Raises
    ------
    InputError
        On invalid settings or a non-empty output folder.
    """
    if n < 1:
        raise InputError(f"number of subjects must be >= 1, got {n}")
    cfg = (config or PhantomConfig()).resolved(region, modality)
    check_images(modality, images)
    root = Path(out_dir)
    check_output_folder(root, overwrite)
    width = max(3, len(str(n)))
    rows, label_tables, index_rows = [], [], []
    for i in progress(range(n), total=n, desc=f"phantom {region} {modality}", unit="subject",
                      enabled=show_progress):
        subject_id = f"sub-{i + 1:0{width}d}"
        phantom = make_phantom(region, modality, seed=[seed, i], config=cfg)  # type: ignore[arg-type]
        _write_subject(root, subject_id, phantom, images)
        rows.append(_participant_row(subject_id, phantom, [seed, i]))
        table = pd.DataFrame(phantom.truth["labels"])
        table.insert(0, "subject", subject_id)
        label_tables.append(table)
        index_rows.append({"subject": subject_id, **phantom.truth["regional"]})
    participants = pd.DataFrame(rows)
    write_table(participants, root / "participants.tsv")
    write_json(_PARTICIPANTS_JSON, root / "participants.json")
    write_json(_description(f"myoscan {region} {modality} phantoms", "raw", cfg, region, modality, seed),
               root / "dataset_description.json")
    labels_root = root / "derivatives" / "labels"
    write_json(_description("myoscan phantom label maps", "derivative", cfg, region, modality, seed),
               labels_root / "dataset_description.json")
    write_table(_lookup_table(region), labels_root / "dseg.tsv")
    phantom_root = root / "derivatives" / "phantom"
    write_json(_description("myoscan phantom ground truth", "derivative", cfg, region, modality, seed),
               phantom_root / "dataset_description.json")
    write_table(_tissue_table(), phantom_root / "desc-tissue_dseg.tsv")
    write_table(pd.concat(label_tables, ignore_index=True), phantom_root / "truth_labels.tsv")
    write_table(pd.DataFrame(index_rows), phantom_root / "truth_indices.tsv")
    return participants


def save_overlay(phantom: Phantom, path: PathLike, *, slice_index: int | None = None) -> Path:
    """PNG of one axial slice: the main image, and the same with labels in catalog colours.

    Parameters
    ----------
    phantom : Phantom
        The phantom to show.
    path : str or os.PathLike
        Output ``.png`` (written atomically).
    slice_index : int, optional
        Slice K to show (default: the middle one).

    Returns
    -------
    pathlib.Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    name = "water" if phantom.modality == "dixon" else "ct"
    image = np.asarray(phantom.images[name].array)
    labels = np.asarray(phantom.labels.array)
    k = image.shape[2] // 2 if slice_index is None else int(slice_index)
    if not 0 <= k < image.shape[2]:
        raise InputError(f"slice {k} is outside the phantom (0-{image.shape[2] - 1})")
    scheme = load_catalog().scheme(phantom.region)
    colours = np.zeros((max(scheme.ids) + 1, 4))
    for i, s in scheme.labels.items():
        colours[i, :3] = np.asarray(s.color) / 255
        colours[i, 3] = 1.0
    dx, dy, _ = phantom.labels.spacing_mm
    window = (0.0, 1100.0) if name == "water" else (-160.0, 240.0)
    sl, lab = image[:, :, k].T, labels[:, :, k].T
    fig, axes = plt.subplots(1, 2, figsize=(12, 12 * sl.shape[0] * dy / (2 * sl.shape[1] * dx) + 0.6))
    for ax in axes:
        ax.imshow(sl, cmap="gray", vmin=window[0], vmax=window[1], aspect=dy / dx, interpolation="nearest")
        ax.set_axis_off()
    shown = np.ma.masked_equal(lab, 0)
    axes[1].imshow(shown, cmap=ListedColormap(colours), vmin=0, vmax=len(colours) - 1, alpha=0.55,
                   aspect=dy / dx, interpolation="nearest")
    axes[0].set_title(f"{phantom.region} {phantom.modality}: {name}, slice {k} (subject's left on the right)")
    axes[1].set_title("label map (catalog colours)")
    fig.tight_layout()
    return write_figure(fig, path, dpi=90)
