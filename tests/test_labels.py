from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from myoscan.errors import InputError
from myoscan.labels import (
    SCHEME_NAMES,
    TABLE_COLUMNS,
    Catalog,
    LabelWarning,
    Scheme,
    Structure,
    load_catalog,
    read_catalog,
    unknown_ids,
)

REF = Path(__file__).resolve().parents[2] / "shared" / "reference-data" / "totalsegmentator"
needs_ref = pytest.mark.skipif(not REF.is_dir(), reason="../shared/reference-data not present")
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog()


# --------------------------------------------------------------------------- shape of the catalog


def test_scheme_names_and_types(cat):
    assert cat.scheme_names == (
        "leg", "cervical", "abdomen", "thigh", "musclemap", "ts_total", "ts_total_mr",
    )
    assert cat.scheme_names == SCHEME_NAMES
    assert isinstance(cat.scheme("leg"), Scheme)
    assert all(isinstance(s, Structure) for s in cat.structures)
    assert load_catalog() is cat  # cached


@pytest.mark.parametrize(
    ("scheme", "size"),
    [("leg", 14), ("cervical", 14), ("abdomen", 12), ("thigh", 54), ("musclemap", 99),
     ("ts_total", 72), ("ts_total_mr", 22)],
    ids=lambda v: str(v),
)
def test_scheme_sizes(cat, scheme, size):
    sch = cat.scheme(scheme)
    assert len(sch) == size
    assert list(sch.labels) == sorted(sch.labels)  # sorted by id
    assert len(set(sch.names)) == size  # one structure per id


def test_leg_scheme_is_seed000_groups_plus_musclemap_bones(cat):
    leg = cat.scheme("leg")
    muscles = {i: s for i, s in leg.labels.items() if s.tissue == "muscle"}
    assert len(muscles) == 10  # seed 000: 5 muscle groups x left/right
    assert {s.group for s in muscles.values()} == {
        "anterior", "deep_posterior", "lateral", "soleus", "gastrocnemius"}
    # ids of MuscleMap's leg model: left odd, right even, in the paper's order
    assert [leg.structure(i).name for i in range(1, 15)] == [
        "leg_anterior_compartment_left", "leg_anterior_compartment_right",
        "leg_deep_posterior_compartment_left", "leg_deep_posterior_compartment_right",
        "leg_lateral_compartment_left", "leg_lateral_compartment_right",
        "soleus_left", "soleus_right", "gastrocnemius_left", "gastrocnemius_right",
        "tibia_left", "tibia_right", "fibula_left", "fibula_right",
    ]
    assert {leg.structure(i).tissue for i in range(11, 15)} == {"bone"}


# seed 002 Table 1: (abbreviation, canonical base, levels, left id, right id)
CERVICAL_TABLE1 = [
    ("MFSS", "multifidus_semispinalis_cervicis", "C4-C6", 2, 1),
    ("LC", "longus_colli_capitis", "C3-C6", 4, 3),
    ("SSCap", "semispinalis_capitis", "C3-C5", 8, 7),
    ("SPCap", "splenius_capitis", "C3-C5", 6, 5),
    ("LS", "levator_scapulae", "C5-C6", 14, 13),
    ("SCM", "sternocleidomastoid", "C4-C6", 10, 9),
    ("TR", "trapezius", "C6", 12, 11),
]


@pytest.mark.parametrize(("abbr", "base", "levels", "left", "right"), CERVICAL_TABLE1,
                         ids=[r[0] for r in CERVICAL_TABLE1])
def test_cervical_ids_and_levels_match_seed002_table1(cat, abbr, base, levels, left, right):
    cer = cat.scheme("cervical")
    assert cer.id_of(f"{base}_left") == left
    assert cer.id_of(f"{base}_right") == right
    s = cer.structure(left)
    assert (s.abbreviation, s.levels_text, s.region) == (abbr, levels, "cervical")
    assert cer.structure(right).levels == s.levels


def test_cervical_levels_expand_and_layers(cat):
    assert cat.structure("longus_colli_capitis_left").levels == ("C3", "C4", "C5", "C6")
    assert cat.structure("trapezius_right").levels == ("C6",)
    deep = {s.abbreviation for s in cat.scheme("cervical").labels.values() if s.layer == "deep"}
    assert deep == {"MFSS", "LC", "SSCap"}  # seed 002: the deep cervical muscles
    assert cat.structure("soleus_left").levels == ()
    assert cat.scheme("leg").table()["levels"].isna().all()


def test_abdomen_scheme_seed003(cat):
    ab = cat.scheme("abdomen")
    bases = [b for b, _, _ in ab.pairs()]
    assert bases == ["psoas", "quadratus_lumborum", "erector_spinae", "gluteus_medius",
                     "rectus_abdominis", "lateral_abdominals"]
    assert ab.pairs()[0] == ("psoas", 1, 2)
    assert ab.pairs()[-1] == ("lateral_abdominals", 11, 12)
    assert {s.tissue for s in ab.labels.values()} == {"muscle"}


# seed 001 Methods, "Ground Truth Annotation": the 27 structures and their groups
SEED001_GROUPS = {
    "anterior": ["sartorius", "rectus_femoris", "vastus_lateralis", "vastus_medialis",
                 "vastus_intermedius"],
    "gluteal": ["gluteus_maximus", "gluteus_medius", "gluteus_minimus", "piriformis",
                "obturator_internus", "obturator_externus", "pectineus", "tensor_fasciae_latae"],
    "medial": ["adductor_magnus", "adductor_longus", "adductor_brevis", "gracilis",
               "quadratus_femoris"],
    "posterior": ["semimembranosus", "semitendinosus", "biceps_femoris"],
    "core": ["multifidus", "iliopsoas", "abdominal_oblique", "rectus_abdominis"],
    "bone": ["iliac_bone", "femur"],
}


@pytest.mark.parametrize("group", list(SEED001_GROUPS))
def test_thigh_groups_match_seed001(cat, group):
    th = cat.scheme("thigh")
    for side in ("left", "right"):
        members = [s.base for s in th.labels.values() if s.group == group and s.side == side]
        assert members == SEED001_GROUPS[group]


def test_thigh_ids_rule_and_27_per_side(cat):
    th = cat.scheme("thigh")
    order = [b for members in SEED001_GROUPS.values() for b in members]
    assert len(order) == 27
    for k, base in enumerate(order, start=1):
        assert th.id_of(f"{base}_left") == 2 * k - 1
        assert th.id_of(f"{base}_right") == 2 * k
    assert sum(s.side == "left" for s in th.labels.values()) == 27
    assert len(th.pairs()) == 27
    tissues = {s.base: s.tissue for s in th.labels.values()}
    assert tissues["femur"] == tissues["iliac_bone"] == "bone"
    assert sum(t == "muscle" for t in tissues.values()) == 25


def test_shared_anatomy_is_one_row(cat):
    gmed = cat.structure("gluteus_medius_left")
    assert dict(gmed.ids) == {"abdomen": 7, "thigh": 13, "musclemap": 6111, "ts_total": 82,
                              "ts_total_mr": 42}
    ra = cat.structure("rectus_abdominis_right")
    assert (ra.ids["abdomen"], ra.ids["thigh"]) == (10, 50)
    es = cat.structure("erector_spinae_left")
    assert (es.ids["abdomen"], es.ids["musclemap"], es.ids["ts_total"]) == (5, 5111, 86)
    names = [s.name for s in cat.structures]
    assert len(names) == len(set(names))


# --------------------------------------------------------------------------- consistency rules


def test_names_snake_case_and_side_consistent(cat):
    for s in cat.structures:
        assert SNAKE.match(s.name), s.name
        assert SNAKE.match(s.base), s.base
        assert s.side in ("left", "right", "midline")
        if s.side == "midline":
            assert s.name == s.base
            assert not s.name.endswith(("_left", "_right"))
        else:
            assert s.name == f"{s.base}_{s.side}"
            assert s.counterpart in cat  # every sided structure has its mirror
        assert s.tissue in ("muscle", "bone")
        assert all(0 <= c <= 255 for c in s.color) and len(s.color) == 3


def test_ids_unique_and_positive_per_scheme(cat):
    for name in cat.scheme_names:
        ids = [s.ids[name] for s in cat.structures if name in s.ids]
        assert len(ids) == len(set(ids)), name
        assert min(ids) > 0


def test_left_right_ids_follow_documented_rules(cat):
    for name in ("leg", "abdomen", "thigh", "musclemap"):
        for base, left, right in cat.scheme(name).pairs():
            assert (left % 2, right, base) == (1, left + 1, base), name
    for base, left, right in cat.scheme("cervical").pairs():
        assert (right % 2, left) == (1, right + 1), base  # seed 002: right odd, left even


def test_every_name_and_alias_resolves_to_one_structure(cat):
    for s in cat.structures:
        assert cat.resolve(s.name) is s
        assert cat.resolve(s.display_name) is s
        for alias in s.aliases:
            assert cat.resolve(alias) is s, alias


def test_colors_hex_and_paper_colors(cat):
    # seed 000 Figure 1: soleus left brown, right green-yellow; seed 002: SCM left blue, right red
    assert cat.structure("soleus_left").color_hex == "#8b5a2b"
    assert cat.structure("sternocleidomastoid_left").color == (0, 0, 255)
    assert cat.structure("sternocleidomastoid_right").color == (255, 0, 0)
    for name in cat.scheme_names:
        table = cat.scheme(name).table()
        assert table["color"].str.fullmatch(r"#[0-9a-f]{6}").all()
        assert table["color"].nunique() == len(table), name  # distinguishable in a viewer


# --------------------------------------------------------------------------- tool mappings


# TotalSegmentator map_to_binary.py, class_map["total"] and class_map["total_mr"]
TS_IDS = [
    # canonical, ts name, total id, total_mr id
    ("gluteus_maximus_left", "gluteus_maximus_left", 80, 40),
    ("gluteus_maximus_right", "gluteus_maximus_right", 81, 41),
    ("gluteus_medius_right", "gluteus_medius_right", 83, 43),
    ("gluteus_minimus_left", "gluteus_minimus_left", 84, 44),
    ("erector_spinae_left", "autochthon_left", 86, 46),
    ("erector_spinae_right", "autochthon_right", 87, 47),
    ("iliopsoas_left", "iliopsoas_left", 88, 48),
    ("iliopsoas_right", "iliopsoas_right", 89, 49),
    ("femur_left", "femur_left", 75, 36),
    ("femur_right", "femur_right", 76, 37),
    ("iliac_bone_left", "hip_left", 77, 38),
    ("iliac_bone_right", "hip_right", 78, 39),
    ("sacrum", "sacrum", 25, 18),
]


@pytest.mark.parametrize(("name", "ts_name", "total_id", "mr_id"), TS_IDS, ids=[r[0] for r in TS_IDS])
def test_totalsegmentator_ids(cat, name, ts_name, total_id, mr_id):
    s = cat.resolve(ts_name)
    assert s.name == name
    assert cat.scheme("ts_total").id_of(name) == total_id
    assert cat.scheme("ts_total_mr").id_of(name) == mr_id
    assert cat.ts_class_names("total")[total_id] == ts_name
    assert cat.ts_class_names("total_mr")[mr_id] == ts_name


def test_ts_class_tables(cat):
    total = cat.ts_class_names("total")
    assert list(total) == list(range(1, 118))
    assert (total[1], total[27], total[50], total[92], total[117]) == (
        "spleen", "vertebrae_L5", "vertebrae_C1", "rib_left_1", "costal_cartilages")
    mr = cat.ts_class_names("ts_total_mr")
    assert list(mr) == list(range(1, 51))
    assert (mr[10], mr[19], mr[50]) == ("lung_left", "vertebrae", "brain")
    assert cat.ts_class_names("total_v1")[104] == "urinary_bladder"
    assert {"tissue_types", "headneck_muscles", "appendicular_bones"} <= set(cat.ts_tasks)


def test_vertebrae_are_structures_with_ts_names(cat):
    l3 = cat.resolve("vertebrae_L3")
    assert (l3.name, l3.ids["ts_total"], l3.part_of, l3.side) == ("vertebra_l3", 29, "vertebrae", "midline")
    assert cat.resolve("vertebrae").ids == {"ts_total_mr": 19}
    assert cat.resolve("rib_right_12").name == "rib_12_right"


def test_musclemap_ids(cat):
    mm = cat.scheme("musclemap")
    assert mm.id_of("soleus_left") == 8131
    assert mm.id_of("gluteus_maximus_right") == 6122
    assert mm.id_of("multifidus_semispinalis_cervicis_left") == 1111
    assert mm.structure(6160).name == "sacrum"
    assert cat.resolve("Gemelli And Quadratus Femoris L").name == "gemelli_quadratus_femoris_left"
    assert cat.resolve("Lattisimus Dorsi R").name == "latissimus_dorsi_right"
    # the 10 leg labels of the whole-body model are the seed 000 groups, in the leg model's order
    leg_names = [cat.scheme("leg").structure(i).name for i in range(1, 15)]
    assert [mm.structure(i).name for i in
            (8101, 8102, 8111, 8112, 8121, 8122, 8131, 8132, 8141, 8142, 8151, 8152, 8161, 8162)
            ] == leg_names


def test_label_names_cover_whole_ts_table(cat):
    names = cat.label_names("ts_total")
    assert len(names) == 117
    assert names[86] == "erector_spinae_left"
    assert names[77] == "iliac_bone_left"
    assert names[10] == "lung_upper_lobe_left"
    assert cat.label_names("leg")[7] == "soleus_left"


@needs_ref
def test_example_seg_ids_are_total_classes(cat):
    total = cat.ts_class_names("total")
    for fname in ("example_seg.nii.gz", "example_seg_fast.nii.gz", "example_seg_dicom.nii.gz"):
        ids = np.unique(np.asarray(nib.load(REF / fname).dataobj))
        assert set(ids[ids > 0].tolist()) <= set(total), fname
    mr_ids = np.unique(np.asarray(nib.load(REF / "example_seg_mr.nii.gz").dataobj))
    assert set(mr_ids[mr_ids > 0].tolist()) <= set(cat.ts_class_names("total_mr"))
    assert cat.unknown_ids(mr_ids, "ts_total_mr") == tuple(
        int(i) for i in mr_ids if i and i not in cat.scheme("ts_total_mr"))


@needs_ref
def test_example_seg_fast_mask_names_are_total_classes(cat):
    names = {p.name[: -len(".nii.gz")] for p in (REF / "example_seg_fast").glob("*.nii.gz")}
    assert names == set(cat.ts_class_names("total").values())  # all 117 classes
    # every catalog structure with a total id has its mask here, and its file name resolves to it
    total = cat.ts_class_names("total")
    covered = set()
    for s in cat:
        if "ts_total" in s.ids:
            fname = total[s.ids["ts_total"]]
            assert fname in names and cat.resolve(fname) is s
            covered.add(fname)
    # ... and every muscle or bone mask is a catalog structure (organs are not)
    bone_or_muscle = re.compile(r"(gluteus|autochthon|iliopsoas|femur|hip|vertebrae|rib|sacrum|"
                                r"humerus|scapula|clavicula|sternum|skull)")
    assert {n for n in names - covered if bone_or_muscle.match(n)} == set()
    assert len(covered) == 72
    stats = json.loads((REF / "example_seg_fast" / "statistics.json").read_text())
    assert set(stats) == names


@needs_ref
def test_example_seg_muscles_named_through_scheme(cat):
    seg = np.asarray(nib.load(REF / "example_seg.nii.gz").dataobj)
    ts = cat.scheme("ts_total")
    present = {ts.structure(i).name for i in np.unique(seg) if i in ts}
    assert {"erector_spinae_left", "erector_spinae_right", "iliopsoas_left",
            "iliopsoas_right"} <= present
    # remapping the real TotalSegmentator output to total_mr keeps every muscle/bone voxel
    # except ribs, sternum and skull (not in total_mr), and drops organs with a warning
    with pytest.warns(LabelWarning, match="liver"):
        mr = cat.remap(seg, "ts_total", "ts_total_mr")
    mr_scheme = cat.scheme("ts_total_mr")
    assert (mr[seg == 86] == mr_scheme.id_of("erector_spinae_left")).all()
    assert (mr[np.isin(seg, range(26, 51))] == 19).all()  # each vertebra -> "vertebrae"
    assert (mr[seg == 5] == 0).all()


# --------------------------------------------------------------------------- remap


@pytest.mark.parametrize("source", SCHEME_NAMES)
def test_remap_round_trip_every_scheme_pair(cat, source):
    sch = cat.scheme(source)
    labels = np.array((0, *sch.ids)).reshape(1, 1, -1)
    for target in SCHEME_NAMES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LabelWarning)
            there = cat.remap(labels, source, target, merge_parts=False)
            back = cat.remap(there, target, source, merge_parts=False)
        # structures in both schemes survive exactly, the others become background
        expected = [i if i and target in sch.structure(i).ids else 0 for i in labels.ravel()]
        assert back.ravel().tolist() == expected, (source, target)


def test_remap_leg_to_musclemap_and_back():
    cat = load_catalog()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 15, size=(6, 5, 4)).astype(np.uint8)
    mm = cat.remap(labels, "leg", "musclemap")
    assert mm.dtype == np.uint16
    assert mm[labels == 7].tolist() == [8131] * int((labels == 7).sum())
    assert (mm[labels == 0] == 0).all()
    back = cat.remap(mm, "musclemap", "leg")
    np.testing.assert_array_equal(back, labels)
    assert back.dtype == np.uint8


def test_remap_thigh_to_ts_total_warns_for_unmapped():
    cat = load_catalog()
    th = cat.scheme("thigh")
    labels = np.array([[[0, th.id_of("gluteus_maximus_left"), th.id_of("femur_right"),
                         th.id_of("sartorius_left")]]])
    with pytest.warns(LabelWarning, match=r"sartorius_left"):
        out = cat.remap(labels, "thigh", "ts_total")
    assert out.tolist() == [[[0, 80, 76, 0]]]


def test_remap_merges_parts_into_containing_structure():
    cat = load_catalog()
    mm = cat.scheme("musclemap")
    labels = np.array([mm.id_of("psoas_left"), mm.id_of("iliacus_left"),
                       mm.id_of("biceps_femoris_long_head_right"),
                       mm.id_of("biceps_femoris_short_head_right")])
    th = cat.scheme("thigh")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = cat.remap(labels, "musclemap", "thigh")
    assert out.tolist() == [th.id_of("iliopsoas_left")] * 2 + [th.id_of("biceps_femoris_right")] * 2
    with pytest.warns(LabelWarning, match="psoas_left"):
        strict = cat.remap(labels, "musclemap", "thigh", merge_parts=False)
    assert strict.tolist() == [0, 0, 0, 0]
    # abdomen psoas -> TotalSegmentator iliopsoas; vertebrae levels -> total_mr "vertebrae"
    assert cat.remap(np.array([1, 2]), "abdomen", "ts_total").tolist() == [88, 89]
    assert cat.remap(np.array([27, 29, 50]), "ts_total", "ts_total_mr").tolist() == [19, 19, 19]


def test_remap_unknown_source_ids_warn_and_become_zero():
    cat = load_catalog()
    with pytest.warns(LabelWarning, match=r"ids not in scheme 'leg': 15, 99"):
        out = cat.remap(np.array([1, 15, 99, 2]), "leg", "musclemap")
    assert out.tolist() == [8101, 0, 0, 8102]


def test_remap_accepts_whole_float_labels_and_rejects_bad_input():
    cat = load_catalog()
    assert cat.remap(np.array([0.0, 7.0]), "leg", "musclemap").tolist() == [0, 8131]
    with pytest.raises(InputError, match="non-whole"):
        cat.remap(np.array([0.5]), "leg", "musclemap")
    with pytest.raises(InputError, match=">= 0"):
        cat.remap(np.array([-1, 2]), "leg", "musclemap")
    with pytest.raises(InputError, match="NaN"):
        cat.remap(np.array([np.nan]), "leg", "musclemap")
    with pytest.raises(InputError, match="unknown label scheme 'calf'"):
        cat.remap(np.array([1]), "calf", "leg")


def test_remap_large_sparse_ids_use_unique_path():
    cat = load_catalog()
    labels = np.array([0, 7, 1 << 30], dtype=np.int64)
    with pytest.warns(LabelWarning, match=str(1 << 30)):
        assert cat.remap(labels, "leg", "musclemap").tolist() == [0, 8131, 0]


def test_unknown_ids_helper(cat):
    assert unknown_ids([0, 1, 14, 15], "leg") == (15,)
    assert cat.scheme("cervical").unknown_ids(np.arange(16).reshape(4, 4)) == (15,)
    assert cat.unknown_ids(np.zeros((2, 2), dtype=np.uint8), "thigh") == ()


# --------------------------------------------------------------------------- API details and errors


def test_scheme_table_columns_and_values(cat):
    table = cat.scheme("leg").table()
    assert tuple(table.columns) == TABLE_COLUMNS
    assert table["label_id"].tolist() == list(range(1, 15))
    row = table.set_index("name").loc["gastrocnemius_right"]
    assert (row["label_id"], row["group"], row["side"], row["color"]) == (
        10, "gastrocnemius", "right", "#ffffff")


def test_pairs(cat):
    assert cat.scheme("leg").pairs()[:2] == [("leg_anterior_compartment", 1, 2),
                                              ("leg_deep_posterior_compartment", 3, 4)]
    assert ("iliopsoas", 88, 89) in cat.scheme("ts_total").pairs()
    assert all(b != "sacrum" for b, _, _ in cat.scheme("ts_total").pairs())


def test_resolve_spellings(cat):
    assert cat.resolve("Gluteus Maximus L").name == "gluteus_maximus_left"
    assert cat.resolve("left gluteus maximus").name == "gluteus_maximus_left"
    assert cat.resolve("GLUTEUS_MAXIMUS_R").name == "gluteus_maximus_right"
    assert cat.resolve("Soleus (left)").name == "soleus_left"
    assert cat.resolve("clavicula_left").name == "clavicle_left"
    assert cat.resolve("psoas_major_right").name == "psoas_right"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: c.structure("solius_left"), r"unknown structure 'solius_left'.*soleus_left"),
        (lambda c: c.resolve("gluteus_maxmus_left"), r"gluteus_maximus_left"),
        (lambda c: c.resolve("xyz"), r"unknown structure 'xyz'"),
        (lambda c: c.scheme("calf"), r"unknown label scheme 'calf'; valid schemes: leg, cervical"),
        (lambda c: c.scheme("thigh").id_of("soleus_left"), r"not in label scheme 'thigh' \(it is in: leg"),
        (lambda c: c.scheme("leg").structure(99),
         r"label id 99 is not in label scheme 'leg' \(valid ids 1-14\)"),
        (lambda c: c.ts_class_names("total_ct"), r"unknown TotalSegmentator task 'total_ct'"),
    ],
    ids=["structure", "resolve-typo", "resolve-none", "scheme", "id_of", "structure-id", "ts-task"],
)
def test_errors_name_input_and_choices(cat, call, match):
    with pytest.raises(InputError, match=match):
        call(cat)


def test_docstring_examples_run():
    import doctest
    import importlib

    attempted = 0
    for name in ("catalog", "structures", "reading", "names", "ids"):
        result = doctest.testmod(importlib.import_module(f"myoscan.labels.{name}"))
        assert result.failed == 0, name
        attempted += result.attempted
    assert attempted >= 37  # the 30+ examples of catalog.py before the split, + 7 import lines


def test_structure_is_frozen(cat):
    s = cat.structure("femur_left")
    assert {s, cat.structure("femur_left")} == {s}  # hashable
    with pytest.raises(AttributeError):
        s.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.ids["thigh"] = 1  # type: ignore[index]


def test_catalog_table(cat):
    table = cat.table()
    assert len(table) == len(cat)
    assert table.set_index("name").loc["iliac_bone_left", "ts_total"] == 77
    assert pd.isna(table.set_index("name").loc["soleus_left", "thigh"])


# --------------------------------------------------------------------------- read_catalog validation


def _write_variant(tmp_path, edit):
    from importlib import resources

    text = (resources.files("myoscan.labels") / "catalog.csv").read_text(encoding="utf-8")
    path = tmp_path / "catalog.csv"
    path.write_text(edit(text), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t.replace("soleus_left,soleus,left", "Soleus_left,soleus,left"), "snake_case"),
        (lambda t: t.replace("soleus_left,soleus,left", "soleus_left,soleus,right"), "base \\+ side"),
        (lambda t: t.replace(",#8b5a2b,7,", ",#8b5a2b,8,"), "leg id 8 is used by both"),
        (lambda t: t.replace(",#8b5a2b,", ",brown,"), "color"),
        (lambda t: t.replace("C4-C6", "C6-C4", 1), "cranial to caudal"),
        (lambda t: t.replace("autochthon_left,autochthon_left", "autochthon_left,autochthon_right"),
         "is 'autochthon_left' in TotalSegmentator task 'total_mr'"),
        (lambda t: t.replace(",muscle,iliopsoas,", ",muscle,iliopsoa,"), "part_of 'iliopsoa'"),
    ],
    ids=["snake", "side", "dup-id", "color", "levels", "ts-name", "part_of"],
)
def test_read_catalog_rejects_bad_rows(tmp_path, edit, match):
    path = _write_variant(tmp_path, edit)
    with pytest.raises(InputError, match=match):
        read_catalog(path)


def test_read_catalog_round_trip_and_missing_file(tmp_path):
    path = _write_variant(tmp_path, lambda t: t)
    assert len(read_catalog(path)) == len(load_catalog())
    with pytest.raises(InputError, match="no such label catalog"):
        read_catalog(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- CLI


def test_cli_scheme_table(capsys):
    from myoscan.cli import main

    assert main(["labels", "--scheme", "leg"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# leg:")
    assert out[1].split()[:3] == ["label_id", "name", "display_name"]
    assert len(out) == 2 + 14
    assert out[2 + 6].split()[:2] == ["7", "soleus_left"]


def test_cli_lists_schemes_with_counts(capsys):
    from myoscan.cli import main

    assert main(["labels"]) == 0
    lines = capsys.readouterr().out.splitlines()
    counts = {line.split()[0]: int(line.split()[1]) for line in lines[1:]}
    assert counts == {"leg": 14, "cervical": 14, "abdomen": 12, "thigh": 54, "musclemap": 99,
                      "ts_total": 72, "ts_total_mr": 22}


def test_cli_csv_file_round_trips_scheme_table(tmp_path):
    from myoscan.cli import main

    out = tmp_path / "cervical.csv"
    assert main(["labels", "--scheme", "cervical", "--format", "csv", "-o", str(out)]) == 0
    table = pd.read_csv(out)
    expected = load_catalog().scheme("cervical").table()
    pd.testing.assert_frame_equal(table, expected)


def test_cli_json_and_find(capsys):
    from myoscan.cli import main

    assert main(["labels", "--scheme", "abdomen", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scheme"] == "abdomen"
    assert [r["label_id"] for r in data["rows"]] == list(range(1, 13))
    assert data["rows"][0]["levels"] is None
    assert main(["labels", "--find", "autochthon_right", "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    assert (row["name"], row["abdomen"], row["ts_total"], row["musclemap"]) == (
        "erector_spinae_right", 6, 87, 5112)
    assert main(["labels", "--ts-task", "total", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[86] == "86,autochthon_left"


def test_cli_bad_scheme_exits_2_without_output(tmp_path, capsys):
    from myoscan.cli import main

    out = tmp_path / "x.csv"
    assert main(["labels", "--scheme", "calf", "-o", str(out)]) == 2
    assert "unknown label scheme 'calf'" in capsys.readouterr().err
    assert not out.exists()
    assert main(["labels", "--find", "solius_left"]) == 2
    assert "soleus_left" in capsys.readouterr().err
