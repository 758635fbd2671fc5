"""myoscan.quantify against TotalSegmentator's own statistics on its example CT."""

from __future__ import annotations

import json

import numpy as np
import pytest

from myoscan.io import read_mask_folder, read_volume
from myoscan.quantify import quantify, slab_between, slab_from_world_z
from myoscan.quantify.files import load_segmentation

#: Acceptance: volume (mm³) and mean HU within 0.01 % of statistics.json.
RELATIVE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def ts_case(totalseg_dir):
    labels, names = read_mask_folder(totalseg_dir / "example_seg_fast")
    ct = read_volume(totalseg_dir / "example_ct_sm.nii.gz")
    stats = json.loads((totalseg_dir / "example_seg_fast" / "statistics.json").read_text())
    return labels, names, ct, stats


def test_volume_and_mean_hu_equal_totalsegmentator_statistics(ts_case):
    labels, names, ct, stats = ts_case
    table = quantify(labels, ct=ct, names=names).set_index("input_name")
    reported = {name: s for name, s in stats.items() if s["volume"] > 0}  # 0 = border-excluded or absent
    assert len(reported) == 40
    assert set(reported) <= set(table.index)
    for name, expected in reported.items():
        measured = table.loc[name]
        assert measured["volume_ml"] * 1000 == pytest.approx(expected["volume"], rel=RELATIVE_TOLERANCE), name
        assert measured["mean_hu"] == pytest.approx(expected["intensity"], rel=RELATIVE_TOLERANCE), name
    # and exactly the structures TotalSegmentator found: no extra non-empty rows
    assert set(table.index) == set(reported)


def test_multilabel_file_with_the_total_scheme_matches_the_mask_folder(ts_case, totalseg_dir):
    labels, names, ct, _ = ts_case
    folder = quantify(labels, ct=ct, names=names).set_index("name")
    multi = quantify(read_volume(totalseg_dir / "example_seg_fast.nii.gz"), ct=ct, scheme="total")
    multi = multi.set_index("name")
    for name in ("erector_spinae_left", "erector_spinae_right", "iliopsoas_left", "iliopsoas_right", "liver"):
        assert multi.loc[name, "n_voxels"] == folder.loc[name, "n_voxels"]
        assert multi.loc[name, "mean_hu"] == pytest.approx(folder.loc[name, "mean_hu"])
    assert multi.loc["iliopsoas_left", "group"] == "core"


def test_landmark_slab_on_real_segmentation(ts_case):
    labels, names, ct, _ = ts_case
    low, high = slab_between(labels, names, "lung_*@bottom", "vertebrae_L2@bottom")
    slab = slab_from_world_z(labels, low, high)
    # the same slices found directly from the masks
    lung_ids = [i for i, n in names.items() if n.startswith("lung_")]
    l2_id = next(i for i, n in names.items() if n == "vertebrae_L2")
    lung_slices = np.flatnonzero(np.isin(labels.array, lung_ids).any(axis=(0, 1)))
    l2_slices = np.flatnonzero((labels.array == l2_id).any(axis=(0, 1)))
    assert (slab.start, slab.stop) == (l2_slices.min(), lung_slices.min() + 1)
    inside = quantify(labels, ct=ct, names=names, slab=slab).set_index("input_name")
    mask = labels.array == next(i for i, n in names.items() if n == "autochthon_left")
    assert inside.loc["autochthon_left", "n_voxels"] == mask[:, :, slab.start:slab.stop].sum()


def test_load_segmentation_reads_folders_and_files(totalseg_dir):
    labels, names = load_segmentation(totalseg_dir / "example_seg_fast")
    assert names is not None and "liver" in names.values()
    single, none = load_segmentation(totalseg_dir / "example_seg_fast.nii.gz")
    assert none is None and single.spatial_shape == labels.spatial_shape
