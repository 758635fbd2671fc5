"""The sections of a subject page: overlay figures, QC flags, metrics, indices, provenance.

Each function takes plain data (tables, mappings, the RAS grids) and returns an HTML string.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from myoscan.labels import Structure
from myoscan.report import figures, markup, qc
from myoscan.report.labelmap import LabelProfiles, RasGrid, slice_levels

__all__ = [
    "ShownImage",
    "flags_section",
    "indices_section",
    "legend",
    "metrics_section",
    "overlay_section",
    "provenance_section",
    "summary_line",
]

#: Metric columns shown first in the subject table, in this order (the others follow).
_FIRST_COLUMNS = ("label_id", "name", "side", "group", "n_voxels", "volume_ml")
#: Catalog metadata repeated in every metric table but not worth a column on the page.
_HIDDEN_COLUMNS = ("subject", "session", "base", "display_name", "color", "levels", "region", "tissue")


@dataclass(frozen=True)
class ShownImage:
    """The anatomical image under the overlay.

    Attributes
    ----------
    contrast : str
        ``water``, ``ct``, ``fatfrac`` ... (chooses the grey-level window).
    path : pathlib.Path
        Where it was read from.
    grid : RasGrid
        The image on the label grid, RAS-ordered like the labels.
    note : str or None
        How it was brought onto the label grid, when it was resampled.
    """

    contrast: str
    path: Path
    grid: RasGrid
    note: str | None = None


def _label_cell(name: str, structure: Structure | None, color: tuple[int, int, int]) -> str:
    text = structure.display_name if structure is not None else name
    return f"{markup.swatch(markup.hex_color(color))}{markup.esc(text)}"


def legend(
    ids: Sequence[int],
    structures: Mapping[int, Structure | None],
    names: Mapping[int, str],
    colors: Mapping[int, tuple[int, int, int]],
) -> str:
    """Colour legend of the labels present."""
    items = [
        f'<span style="margin-right:12px;white-space:nowrap">'
        f"{_label_cell(names[int(i)], structures.get(int(i)), colors[int(i)])}</span>"
        for i in ids
    ]
    return f'<p class="note">{"".join(items)}</p>'


def overlay_section(
    labels: RasGrid,
    profiles: LabelProfiles,
    image: ShownImage | None,
    colors: Mapping[int, tuple[int, int, int]],
    *,
    levels_pct: Sequence[float],
    convention: Literal["radiological", "neurological"],
    legend_html: str = "",
) -> str:
    """Axial slices at ``levels_pct`` and the most labelled coronal slice, with caption and legend."""
    if profiles.ids.size == 0:
        return markup.section("Segmentation overlay", '<p class="note">The label map is empty.</p>')
    array = None if image is None else image.grid.array
    window = figures.display_window(array, image.contrast) if image is not None else (0.0, 1.0)
    levels = slice_levels(profiles, levels_pct)
    n_z = labels.array.shape[2]
    titles = [
        f"{p:g} % · S {labels.z_mm(k):.0f} mm · slice {k + 1}/{n_z}"
        for p, k in zip(levels_pct, levels, strict=True)
    ]
    style = figures.OverlayStyle(colors, window, convention)
    axial = figures.axial_figure(labels, array, levels, titles=titles, style=style)
    per_plane = profiles.counts[1]  # the coronal plane showing the most labels, then the most voxels
    y_index = int(np.lexsort((per_plane.sum(axis=0), (per_plane > 0).sum(axis=0)))[-1])
    title = f"coronal · slice {y_index + 1}/{labels.array.shape[1]} (most labels)"
    names = [f"{p:g} %" for p in levels_pct]
    coronal = figures.coronal_figure(labels, array, y_index, style=style, levels=levels, level_names=names,
                                     title=title)  # fmt: skip
    side = (
        "patient's right on the image left (axial viewed from the feet, coronal from the front)"
        if convention == "radiological"
        else "patient's right on the image right"
    )
    what = f"{image.contrast} image {image.path.name}" if image else "no anatomical image found (labels only)"
    caption = (
        f"Axial slices at {', '.join(f'{p:g}' for p in levels_pct)} % of the labelled inferior–superior "
        f"range and one coronal slice; segmentation in catalog colours over the {what}. "
        f"{convention.capitalize()} convention: {side}. Pixels drawn with the true voxel aspect "
        f"(spacing {' × '.join(f'{s:g}' for s in labels.spacing_mm)} mm along R, A, S)."
    )
    if image is not None and image.note:
        caption += f" Image {image.note}."
    if labels.is_oblique:
        caption += " The grid is oblique: the axes shown are the nearest anatomical axes."
    body = (
        f"<figure>{markup.img_png(figures.figure_png(axial), 'axial slices with segmentation overlay')}"
        f"<br>{markup.img_png(figures.figure_png(coronal), 'coronal slice with segmentation overlay')}"
        f"<figcaption>{markup.esc(caption)}</figcaption></figure>"
    )
    return markup.section("Segmentation overlay", body, legend_html, anchor="overlay")


def summary_line(flags: pd.DataFrame) -> str:
    """One line: worst QC severity and the number of warnings per check."""
    status = qc.worst_severity(flags["severity"]) if not flags.empty else "n/a"
    counts = flags.loc[flags["severity"].isin(["warn", "fail"])].groupby("check").size()
    detail = ", ".join(f"{n} {check}" for check, n in counts.items()) or "no warnings"
    return f'<p><b>QC status</b> {markup.badge(status)} {markup.esc(detail)} · <a href="#qc">details</a></p>'


def flags_section(flags: pd.DataFrame) -> str:
    """Render the QC flag table, severity as coloured badges and values with their units."""
    shown = flags[["check", "severity", "structure", "value", "message"]]
    values = []
    for value, unit in zip(flags["value"], flags["unit"], strict=True):
        text = markup.format_value(value, "robust_z" if unit == "z" else "value_pct")
        values.append(markup.esc(f"{text} {unit}".strip()) if np.isfinite(value) else "–")
    cells = {"severity": [markup.badge(s) for s in shown["severity"]], "value": values}
    rows = [s if s in ("warn", "fail") else "" for s in shown["severity"]]
    headers = {"check": "Check", "severity": "Severity", "structure": "Structure", "value": "Value (unit)",
               "message": "Finding"}  # fmt: skip
    table = markup.table_html(shown, headers=headers, cell_html=cells, row_classes=rows)
    return markup.section("Quality control", table, anchor="qc")


def metrics_section(
    table: pd.DataFrame,
    *,
    structures: Mapping[int, Structure | None],
    colors: Mapping[int, tuple[int, int, int]],
    robust_z: Mapping[str, float],
    flags: pd.DataFrame,
    source: str,
) -> str:
    """Render the per-label metric table with colour swatches, robust z and flagged rows highlighted."""
    shown = table.copy()
    if "name" not in shown.columns:
        shown["name"] = [f"label_{i}" for i in shown["label_id"]]
    shown["robust_z"] = [robust_z.get(str(n), math.nan) for n in shown["name"]]
    first = [c for c in _FIRST_COLUMNS if c in shown.columns]
    shown = shown[first + [c for c in shown.columns if c not in first and c not in _HIDDEN_COLUMNS]]
    names = [
        f"{_label_cell(str(n), structures.get(int(i)), colors.get(int(i), (128, 128, 128)))} "
        f"<small>{markup.esc(n)}</small>"
        for i, n in zip(shown["label_id"], shown["name"], strict=True)
    ]
    worst = flags.loc[flags["structure"] != ""].groupby("structure")["severity"].agg(qc.worst_severity)
    rows = [worst.get(str(n), "") if worst.get(str(n), "") in ("warn", "fail") else "" for n in shown["name"]]
    caption = f"Per-label metrics ({source}); robust z of volume_ml against the cohort where available."
    return markup.section(
        "Metrics",
        markup.table_html(shown, cell_html={"name": names}, row_classes=rows),
        f'<p class="note">{markup.esc(caption)}</p>',
        anchor="metrics",
    )


def indices_section(indices: pd.DataFrame | None) -> str:
    """Render the regional indices (one row) as a two-column table; empty without indices."""
    if indices is None or indices.empty:
        return ""
    row = indices.drop(columns=[c for c in ("subject", "session") if c in indices.columns]).iloc[0]
    long = pd.DataFrame({
        "index": [markup.column_header(str(c)) for c in row.index],
        "value": [markup.format_value(v, str(c)) for c, v in row.items()],
    })  # fmt: skip
    table = markup.table_html(long, headers={"index": "Index (unit)", "value": "Value"})
    return markup.section("Regional indices", table, anchor="indices")


def provenance_section(dseg_name: str, record: Mapping[str, Any], sidecar: Mapping[str, Any]) -> str:
    """Versions, model, times, parameters and input hashes (file names relative to the dataset)."""
    rows = [("label map", dseg_name)]
    keys = ("myoscan_version", "model_sha256", "started", "finished", "seconds")
    rows += [(k.replace("_", " "), str(record[k])) for k in keys if record.get(k) is not None]
    if sidecar.get("model"):
        rows.append(("model", str(sidecar["model"])))
    for key, value in (record.get("parameters") or {}).items():
        rows.append((f"parameter {key}", value if isinstance(value, str) else json.dumps(value)))
    for relative, digest in (record.get("inputs_sha256") or {}).items():
        rows.append((f"input {relative}", f"sha256 {str(digest)[:16]}…"))
    table = markup.table_html(pd.DataFrame(rows, columns=["item", "value"]),
                              headers={"item": "Item", "value": "Value"})  # fmt: skip
    return markup.section("Provenance", table, anchor="provenance")
