"""Tests of myoscan.annotate: Slicer .seg.nrrd / ITK-SNAP export and by-name import."""

from __future__ import annotations

import nrrd
import numpy as np
import pytest

from myoscan.annotate import (
    export_segmentation,
    import_segmentation,
    itksnap_label_text,
    label_path_for,
    read_itksnap_labels,
    slicer_header,
)
from myoscan.cli import main
from myoscan.errors import GeometryMismatchError, InputError
from myoscan.io import Volume, read_volume, write_volume
from myoscan.labels import load_catalog

LEG = load_catalog().scheme("leg")
# Oblique, anisotropic grid off the origin: the round trip must keep it exactly.
_ROT = np.array([[np.cos(0.2), -np.sin(0.2), 0.0], [np.sin(0.2), np.cos(0.2), 0.0], [0.0, 0.0, 1.0]])
AFFINE = np.eye(4)
AFFINE[:3, :3] = _ROT @ np.diag([0.71, 0.71, 5.0])
AFFINE[:3, 3] = [-110.0, 35.5, 812.0]


def label_map(shape=(20, 14, 6), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint8)
    for value in (1, 2, 7, 8, 9, 10, 13):
        i, j, k = (rng.integers(0, n - 3) for n in shape)
        labels[i:i + 4, j:j + 3, k:k + 2] = value
    return labels


def test_seg_nrrd_round_trip_is_exact(tmp_path):
    labels = Volume(label_map(), AFFINE)
    seg, txt = export_segmentation(labels, tmp_path / "case.seg.nrrd", scheme="leg")
    assert txt.name == "case.itksnap.txt"
    back = import_segmentation(seg, scheme="leg", reference=labels)
    assert np.array_equal(back.array, labels.array)
    assert np.allclose(back.affine, AFFINE, atol=1e-6)
    header = nrrd.read_header(str(seg))
    assert header["Segmentation_MasterRepresentation"] == "Binary labelmap"
    names = {header[f"Segment{n}_Name"] for n in range(len(LEG))}
    assert names == set(LEG.names)  # every structure of the scheme, present or not
    soleus = next(n for n in range(len(LEG)) if header[f"Segment{n}_Name"] == "soleus_left")
    assert header[f"Segment{soleus}_Color"] == "{:.6g} {:.6g} {:.6g}".format(
        *(c / 255 for c in load_catalog().structure("soleus_left").color))


def test_seg_nrrd_round_trip_keeps_label_ids_above_255(tmp_path):
    # musclemap ids (8101 ...) are stored as uint16; import put them into a uint8 map and
    # ended in an OverflowError traceback
    mm = load_catalog().scheme("musclemap")
    ids = [mm.id_of(n) for n in ("soleus_left", "soleus_right", "gastrocnemius_left")]
    array = np.zeros((12, 10, 4), np.uint16)
    array[1:4, 1:4, :2], array[6:9, 2:5, 1:3], array[2:5, 6:9, 2:] = ids
    labels = Volume(array, AFFINE)
    export_segmentation(labels, tmp_path / "mm.seg.nrrd", scheme="musclemap")
    back = import_segmentation(tmp_path / "mm.seg.nrrd", scheme="musclemap", reference=labels)
    assert np.array_equal(back.array, array) and np.allclose(back.affine, AFFINE)
    export_segmentation(labels, tmp_path / "few.seg.nrrd", scheme="musclemap", only_present=True)
    to_leg = import_segmentation(tmp_path / "few.seg.nrrd", scheme="leg", reference=labels)
    assert sorted(np.unique(to_leg.array).tolist()) == [0] + sorted(LEG.id_of(n) for n in (
        "soleus_left", "soleus_right", "gastrocnemius_left"))


def test_itksnap_label_file_round_trip(tmp_path):
    labels = Volume(label_map(seed=1), AFFINE)
    export_segmentation(labels, tmp_path / "c.seg.nrrd", scheme="leg", only_present=True)
    names = read_itksnap_labels(tmp_path / "c.itksnap.txt")
    assert names == {v: LEG.structure(v).name for v in np.unique(labels.array) if v}
    write_volume(labels, tmp_path / "corrected.nii.gz")  # what ITK-SNAP saves
    back = import_segmentation(tmp_path / "corrected.nii.gz", scheme="leg",
                               label_file=tmp_path / "c.itksnap.txt")
    assert np.array_equal(back.array, labels.array)
    assert itksnap_label_text("leg", [7]).splitlines()[-1].endswith('"soleus_left"')


def _slicer_edit(path, data, segments, affine):
    """Write a .seg.nrrd the way Slicer does after edits (own order, values, names, crop)."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    header = {"space": "left-posterior-superior", "space directions": lps[:3, :3].T,
              "space origin": lps[:3, 3], "kinds": ["domain"] * 3 if data.ndim == 3 else
              ["list", "domain", "domain", "domain"]}
    if data.ndim == 4:
        header["space directions"] = np.vstack([np.full(3, np.nan), lps[:3, :3].T])
    for n, (name, value, layer) in enumerate(segments):
        header.update({f"Segment{n}_ID": f"Segment_{n + 1}", f"Segment{n}_Name": name,
                       f"Segment{n}_LabelValue": str(value), f"Segment{n}_Layer": str(layer),
                       f"Segment{n}_Color": "0.5 0.5 0.5"})
    nrrd.write(str(path), data, header, index_order="F")


def test_import_matches_segments_by_name_not_by_position(tmp_path):
    reference = Volume(np.zeros((20, 14, 6), np.float32), AFFINE)
    # The rater's file: cropped to [2:12, 3:10, 1:5], segments reordered, renumbered 1..3 and
    # named with display and MuscleMap names; gastrocnemius in a second layer.
    layer0 = np.zeros((10, 7, 4), np.uint8)
    layer0[0:3] = 1   # "Soleus (right)"
    layer0[5:8] = 2   # "Anterior Compartment L" (MuscleMap name)
    layer1 = np.zeros_like(layer0)
    layer1[:, 5:7] = 1  # "gastrocnemius_left", overlaps nothing else
    layer1[0:3, 5:7] = 0
    layer1[5:8, 5:7] = 0
    crop = np.eye(4)
    crop[:3, 3] = [2, 3, 1]
    _slicer_edit(tmp_path / "edited.seg.nrrd", np.stack([layer0, layer1]),
                 [("Soleus (right)", 1, 0), ("Anterior Compartment L", 2, 0), ("gastrocnemius_left", 1, 1)],
                 AFFINE @ crop)
    back = import_segmentation(tmp_path / "edited.seg.nrrd", scheme="leg", reference=reference)
    expected = np.zeros((20, 14, 6), np.uint8)
    box = expected[2:12, 3:10, 1:5]
    box[layer0 == 1] = LEG.id_of("soleus_right")
    box[layer0 == 2] = LEG.id_of("leg_anterior_compartment_left")
    box[layer1 == 1] = LEG.id_of("gastrocnemius_left")
    assert np.array_equal(back.array, expected)
    assert back.array.dtype == np.uint8


def test_import_errors_name_the_problem(tmp_path):
    data = np.zeros((4, 4, 2), np.uint8)
    data[0] = 1
    data[1] = 2
    _slicer_edit(tmp_path / "typo.seg.nrrd", data, [("soleus_lft", 1, 0), ("tibia_left", 2, 0)], AFFINE)
    with pytest.raises(InputError, match="soleus_lft"):
        import_segmentation(tmp_path / "typo.seg.nrrd", scheme="leg")
    _slicer_edit(tmp_path / "dup.seg.nrrd", data, [("soleus_left", 1, 0), ("Soleus (left)", 2, 0)], AFFINE)
    with pytest.raises(InputError, match="both name soleus_left"):
        import_segmentation(tmp_path / "dup.seg.nrrd", scheme="leg")
    _slicer_edit(tmp_path / "other.seg.nrrd", data, [("soleus_left", 1, 0), ("psoas_left", 2, 0)], AFFINE)
    with pytest.raises(InputError, match="not in label scheme 'leg'"):
        import_segmentation(tmp_path / "other.seg.nrrd", scheme="leg")
    write_volume(Volume(data, AFFINE), tmp_path / "plain.nii.gz")
    with pytest.raises(InputError, match="no segment names"):
        import_segmentation(tmp_path / "plain.nii.gz", scheme="leg")
    moved = AFFINE.copy()
    moved[:3, 3] += 0.3  # not on the voxel grid of the reference
    _slicer_edit(tmp_path / "moved.seg.nrrd", data, [("soleus_left", 1, 0), ("tibia_left", 2, 0)], moved)
    with pytest.raises(GeometryMismatchError):
        import_segmentation(tmp_path / "moved.seg.nrrd", scheme="leg", reference=Volume(data, AFFINE))
    with pytest.raises(InputError, match="not in label scheme"):
        slicer_header(np.array([[[0, 99]]]), "leg")


@pytest.mark.parametrize(
    ("image", "contrast", "expected"),
    [
        ("ds/sub-01/ses-2/anat/sub-01_ses-2_water.nii.gz", None,
         "ds/derivatives/labels/sub-01/ses-2/anat/sub-01_ses-2_dseg.nii.gz"),
        ("ds/imagesTr/leg_003_0000.nii.gz", None, "ds/labelsTr/leg_003.nii.gz"),
        ("ds/images/case_1_water.nii.gz", "water", "ds/labels/case_1.nii.gz"),
        ("ds/case_1.nii.gz", None, "ds/case_1_dseg.nii.gz"),
    ],
    ids=["bids", "nnunet", "images-labels", "flat"],
)
def test_label_path_for_each_layout(image, contrast, expected):
    assert label_path_for(image, contrast).as_posix() == expected


def test_cli_export_then_import_into_a_bids_dataset(tmp_path):
    labels = Volume(label_map(seed=2), AFFINE)
    image = tmp_path / "ds" / "sub-07" / "anat" / "sub-07_water.nii.gz"
    write_volume(labels.with_array(labels.array.astype(np.float32) * 10), image)
    write_volume(labels, tmp_path / "pred.nii.gz")
    assert main(["annotate", "export", str(image), "--labels", str(tmp_path / "pred.nii.gz"), "--scheme",
                 "leg", "-o", str(tmp_path / "sub-07.seg.nrrd"), "-q"]) == 0
    assert main(["annotate", "import", str(tmp_path / "sub-07.seg.nrrd"), "--image", str(image),
                 "--scheme", "leg", "-q"]) == 0
    written = tmp_path / "ds" / "derivatives" / "labels" / "sub-07" / "anat" / "sub-07_dseg.nii.gz"
    assert np.array_equal(read_volume(written).array, labels.array)
    assert main(["annotate", "import", str(tmp_path / "sub-07.seg.nrrd"), "--image", str(image),
                 "--scheme", "leg", "-q"]) == 2  # exists: needs --force
    assert main(["annotate", "export", str(image), "--labels", str(tmp_path / "pred.nii.gz"),
                 "-o", str(tmp_path / "x.seg.nrrd")]) == 2  # --scheme missing


def test_cli_export_refuses_labels_off_the_image_grid_and_writes_both_files_or_none(tmp_path, capsys):
    labels = Volume(label_map(seed=3), AFFINE)
    image = write_volume(labels.with_array(labels.array.astype(np.float32)), tmp_path / "img.nii.gz")
    shifted = AFFINE.copy()
    shifted[:3, 3] += [4.0, 0.0, 0.0]
    write_volume(Volume(labels.array, shifted), tmp_path / "other.nii.gz")
    out = tmp_path / "case.seg.nrrd"
    # the label map was exported on its own grid, 4 mm off the image the rater opens (exit 0)
    assert main(["annotate", "export", str(image), "--labels", str(tmp_path / "other.nii.gz"), "--scheme",
                 "leg", "-o", str(out), "-q"]) == 2
    assert "not on the same voxel grid" in capsys.readouterr().err
    assert not out.exists()
    # an unwritable label-description path left the .seg.nrrd behind with exit 2
    (tmp_path / "afile").write_text("x")
    write_volume(labels, tmp_path / "pred.nii.gz")
    assert main(["annotate", "export", str(image), "--labels", str(tmp_path / "pred.nii.gz"), "--scheme",
                 "leg", "-o", str(out), "--itksnap", str(tmp_path / "afile" / "case.txt"), "-q"]) == 2
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "img.nii.gz", "other.nii.gz", "pred.nii.gz"]
    with pytest.raises(InputError, match="must differ"):
        export_segmentation(labels, out, scheme="leg", itksnap_path=out)


def test_cli_export_of_a_model_prediction(tmp_path):
    from myoscan.segment import build_network, save_bundle

    config = {
        "name": "tiny", "architecture": {"name": "unet2d", "params": {"channels": [4, 8], "strides": [2],
                                                                       "num_res_units": 0}},
        "inputs": {"contrasts": ["water"], "modality": "mri"},
        "preprocessing": {"orientation": "RAS", "intensity": {"mode": "percentile"}},
        "inference": {"mode": "slice2d", "roi_size": [16, 16]},
        "labels": {"scheme": "leg", "ids": {"0": "background", "1": "soleus_left", "2": "soleus_right"}},
    }
    network = build_network(config["architecture"], in_channels=1, out_channels=3)
    save_bundle(tmp_path / "tiny", network=network, config=config, model_card="untrained test model")
    image = tmp_path / "img.nii.gz"
    write_volume(Volume(np.random.default_rng(0).random((16, 16, 3)).astype(np.float32), AFFINE), image)
    assert main(["annotate", "export", str(image), "--model", str(tmp_path / "tiny"), "-o",
                 str(tmp_path / "pred.seg.nrrd"), "--device", "cpu", "-q"]) == 0
    seg = read_volume(tmp_path / "pred.seg.nrrd")
    assert set(np.unique(seg.array)) <= {0, 7, 8}
    assert seg.spatial_shape == (16, 16, 3)


def test_cli_export_of_a_model_prediction_in_another_scheme_keeps_the_names(tmp_path):
    # --scheme used to relabel the model's leg ids as if they were ids of the other scheme
    from myoscan.segment import build_network, save_bundle

    config = {
        "name": "tiny", "architecture": {"name": "unet2d", "params": {"channels": [4, 8], "strides": [2],
                                                                       "num_res_units": 0}},
        "inputs": {"contrasts": ["water"], "modality": "mri"},
        "preprocessing": {"orientation": "RAS", "intensity": {"mode": "none"}},
        "inference": {"mode": "slice2d", "roi_size": [16, 16]},
        "labels": {"scheme": "leg", "ids": {"0": "background", "1": "soleus_left", "2": "soleus_right"}},
    }
    torch = pytest.importorskip("torch")
    network = build_network(config["architecture"], in_channels=1, out_channels=3)
    with torch.no_grad():  # a 'network' that always answers soleus_left
        for p in network.parameters():
            p.zero_()
        network.model[-1].conv.bias[:] = torch.tensor([0.0, 5.0, 0.0])
    save_bundle(tmp_path / "tiny", network=network, config=config, model_card="untrained test model")
    image = tmp_path / "img.nii.gz"
    write_volume(Volume(np.ones((16, 16, 3), np.float32), AFFINE), image)
    musclemap = load_catalog().scheme("musclemap")
    assert musclemap.id_of("soleus_left") != LEG.id_of("soleus_left")
    assert main(["annotate", "export", str(image), "--model", str(tmp_path / "tiny"), "--scheme", "musclemap",
                 "-o", str(tmp_path / "mm.seg.nrrd"), "--device", "cpu", "-q"]) == 0
    data, header = nrrd.read(str(tmp_path / "mm.seg.nrrd"))  # (read_volume: uint8 overflow on ids > 255)
    assert set(np.unique(data)) == {musclemap.id_of("soleus_left")}
    segment = next(n for n in range(len(musclemap)) if header[f"Segment{n}_Name"] == "soleus_left")
    assert header[f"Segment{segment}_LabelValue"] == str(musclemap.id_of("soleus_left"))
    assert main(["annotate", "export", str(image), "--model", str(tmp_path / "tiny"), "--scheme", "thigh",
                 "-o", str(tmp_path / "th.seg.nrrd"), "--device", "cpu", "-q"]) == 2  # no soleus in thigh


def _as_slicer_reads_it(path):
    """Label map as 3D Slicer loads a .seg.nrrd (vtkMRMLSegmentationStorageNode).

    Slicer's reader gives all segments of a layer one shared labelmap, clipped to the
    ``SegmentN_Extent`` of the *first* segment listed in that layer.
    """
    data, header = nrrd.read(str(path))
    out = np.zeros_like(data)
    first_of_layer = {}
    n = 0
    while f"Segment{n}_ID" in header:
        first_of_layer.setdefault(int(header.get(f"Segment{n}_Layer", 0)), n)
        n += 1
    for segment in first_of_layer.values():  # 3D files: one layer
        extent = [int(v) for v in header[f"Segment{segment}_Extent"].split()]
        lo, hi = extent[0::2], extent[1::2]
        if all(a <= b for a, b in zip(lo, hi, strict=True)):
            box = tuple(slice(a, b + 1) for a, b in zip(lo, hi, strict=True))
            out[box] = data[box]
    return out


@pytest.mark.parametrize("only_present", [False, True], ids=["every-structure", "only-present"])
def test_slicer_loads_every_exported_segment_whole(tmp_path, only_present):
    # per-segment bounding boxes made Slicer clip the shared layer to the first segment's box
    # (or drop everything when the first listed structure was absent from the map)
    labels = Volume(label_map(seed=3), AFFINE)
    export_segmentation(labels, tmp_path / "c.seg.nrrd", scheme="leg", only_present=only_present)
    assert np.array_equal(_as_slicer_reads_it(tmp_path / "c.seg.nrrd"), labels.array)
    header = nrrd.read_header(str(tmp_path / "c.seg.nrrd"))
    extents = {header[k] for k in header if k.endswith("_Extent")}
    assert len(extents) == 1  # one layer, one shared extent
