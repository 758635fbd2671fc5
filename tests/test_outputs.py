from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from myoscan.outputs import write_figure


def test_write_figure_png_at_dpi_and_nothing_else(tmp_path):
    fig = Figure(figsize=(2.0, 1.0), dpi=100)
    fig.add_subplot().plot([0, 1], [1, 0])
    path = write_figure(fig, tmp_path / "plots" / "a.png", dpi=40)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(path.read_bytes()[16:20], "big") == 80  # width: 2 in x 40 dpi
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["a.png"]


def test_write_figure_default_dpi_is_the_figures_own(tmp_path):
    path = write_figure(Figure(figsize=(2.0, 1.0), dpi=30), tmp_path / "a.png")
    assert int.from_bytes(path.read_bytes()[16:20], "big") == 60


def test_write_figure_closes_pyplot_figures_even_on_failure(tmp_path):
    import matplotlib.pyplot as plt

    fig = plt.figure()
    write_figure(fig, tmp_path / "a.png")
    assert not plt.fignum_exists(fig.number)

    broken = plt.figure()
    broken.text(0.5, 0.5, r"$\frac{$")  # bad mathtext: fails when drawn
    with pytest.raises(ValueError):
        write_figure(broken, tmp_path / "b.png")
    assert not plt.fignum_exists(broken.number)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


@pytest.mark.parametrize("where", ["under_a_file", "is_a_folder"])
def test_unwritable_destination_is_a_one_line_input_error(tmp_path, where):
    from myoscan.errors import InputError
    from myoscan.outputs import write_output_set, write_text

    (tmp_path / "afile").write_text("x")
    (tmp_path / "afolder").mkdir()
    target = tmp_path / ("afile/out.txt" if where == "under_a_file" else "afolder")
    with pytest.raises(InputError, match="cannot write"):
        write_text("data", target)
    with pytest.raises(InputError, match="cannot write"):
        write_output_set({target: lambda path: path.write_text("data")})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "afolder"]
    assert list((tmp_path / "afolder").iterdir()) == []


def test_cli_unwritable_output_exits_2(tmp_path, capsys):
    from myoscan.cli import main

    (tmp_path / "afile").write_text("x")
    assert main(["labels", "--scheme", "leg", "-o", str(tmp_path / "afile" / "leg.txt")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err


def test_write_json_turns_every_missing_value_into_null(tmp_path):
    import json

    import numpy as np
    import pandas as pd

    from myoscan.outputs import write_json

    path = write_json({"na": pd.NA, "nat": pd.NaT, "nan": np.float32("nan"), "inf": float("inf"),
                       "ok": np.int64(3)}, tmp_path / "a.json")
    assert json.loads(path.read_text()) == {"na": None, "nat": None, "nan": None, "inf": None, "ok": 3}
