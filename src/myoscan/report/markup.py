"""HTML building blocks of the reports: page shell with inline CSS, tables, embedded PNGs.

Everything here returns strings. Pages are self-contained: style sheet inline, images as
``data:image/png;base64`` URIs, no scripts, fonts or external links, so a report opens
offline and can be archived or mailed as one file. Every piece of text from a table or a
file is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "COLUMN_HEADERS",
    "SEVERITY_ORDER",
    "badge",
    "column_header",
    "esc",
    "format_value",
    "hex_color",
    "img_png",
    "meta_line",
    "page",
    "section",
    "swatch",
    "table_html",
]

#: Severity of a QC flag, from harmless to blocking.
SEVERITY_ORDER: tuple[str, ...] = ("n/a", "pass", "info", "warn", "fail")

#: Display header (with unit) of the metric-table and index-table columns of the contract.
COLUMN_HEADERS: Mapping[str, str] = {
    "subject": "Subject",
    "session": "Session",
    "label_id": "Label",
    "name": "Structure",
    "display_name": "Structure",
    "side": "Side",
    "region": "Region",
    "group": "Group",
    "tissue": "Tissue",
    "n_voxels": "Voxels (n)",
    "volume_ml": "Volume (mL)",
    "imf_pct": "IMF (%)",
    "imf_uneroded_pct": "IMF uneroded (%)",
    "n_voxels_eroded": "Voxels eroded (n)",
    "voxelwise_ff_mean_pct": "Voxel-wise FF mean (%)",
    "ff_mean_pct": "FF mean (%)",
    "ff_median_pct": "FF median (%)",
    "ff_mean_below50_pct": "FF mean below 50 % (%)",
    "mean_hu": "Mean (HU)",
    "sd_hu": "SD (HU)",
    "median_hu": "Median (HU)",
    "lean_muscle_pct": "Lean muscle (%)",
    "imat_volume_ml": "IMAT (mL)",
    "mass_g": "Mass (g)",
    "fat_pct_gmm": "Fat GMM (%)",
    "fat_pct_kmeans": "Fat k-means (%)",
    "max_csa_cm2": "Max CSA (cm²)",
    "csa_cm2_at_slice": "CSA at slice (cm²)",
    "tmv_cm3": "TMV (cm³)",
    "tvi_cm3_m2": "TVI (cm³/m²)",
    "pa_ratio": "P/A ratio (1)",
    "smi_cm2_m2": "SMI (cm²/m²)",
    "smi_g_m2": "SMI (g/m²)",
    "age": "Age (years)",
    "sex": "Sex",
    "robust_z": "Robust z (1)",
}

#: Unit suffixes of column names (longest first) and how they are written in headers.
_UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_cm3_m2", "cm³/m²"),
    ("_cm2_m2", "cm²/m²"),
    ("_g_m2", "g/m²"),
    ("_cm3", "cm³"),
    ("_cm2", "cm²"),
    ("_mm2", "mm²"),
    ("_ml", "mL"),
    ("_pct", "%"),
    ("_hu", "HU"),
    ("_mm", "mm"),
    ("_g", "g"),
    ("_s", "s"),
)

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;color:#1b1f24;
background:#fff;font-size:14px;line-height:1.4}
main{max-width:1320px;margin:0 auto;padding:12px 20px 40px}
h1{font-size:22px;margin:6px 0 2px}h2{font-size:17px;margin:22px 0 6px;border-bottom:1px solid #d0d7de;
padding-bottom:3px}h3{font-size:15px;margin:14px 0 4px}
.meta{color:#57606a;margin:0 0 8px}.meta span{margin-right:16px}
table{border-collapse:collapse;margin:4px 0 10px;font-size:13px}
th,td{border:1px solid #d0d7de;padding:2px 7px;text-align:left;vertical-align:top}
th{background:#f3f5f7;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.warn td{background:#fff8e5}tr.fail td{background:#ffeef0}
.badge{display:inline-block;min-width:38px;text-align:center;border-radius:3px;padding:0 5px;
font-size:12px;font-weight:600;color:#fff}
.b-pass{background:#1a7f37}.b-info{background:#0969da}.b-warn{background:#bf8700}.b-fail{background:#cf222e}
.b-n\\/a,.b-na{background:#8c959f}
.sw{display:inline-block;width:11px;height:11px;border:1px solid #555;margin-right:5px;vertical-align:-1px}
figure{margin:6px 0 14px}figcaption{color:#57606a;font-size:12.5px;max-width:1200px}
img.fig{display:block;max-width:none;border:0}
.note{color:#57606a;font-size:12.5px}
a{color:#0969da}
"""


def esc(value: Any) -> str:
    """Escape any value for HTML text or attribute content.

    Examples
    --------
    >>> esc("<b>&")
    '&lt;b&gt;&amp;'
    """
    return html.escape(str(value), quote=True)


def column_header(column: str) -> str:
    """Human-readable header of a table column, with its unit in parentheses.

    Contract columns use :data:`COLUMN_HEADERS`; other names are spelled out from their
    unit suffix (``asymmetry_pct_soleus`` style prefixes are handled too).

    Examples
    --------
    >>> column_header("volume_ml")
    'Volume (mL)'
    >>> column_header("group_soleus_volume_ml")
    'Group soleus volume (mL)'
    >>> column_header("asymmetry_pct_soleus")
    'Asymmetry soleus (%)'
    """
    if column in COLUMN_HEADERS:
        return COLUMN_HEADERS[column]
    if column.startswith("asymmetry_pct_"):
        return f"Asymmetry {column[len('asymmetry_pct_') :].replace('_', ' ')} (%)"
    for suffix, unit in _UNIT_SUFFIXES:
        if column.endswith(suffix) and len(column) > len(suffix):
            words = column[: -len(suffix)].replace("_", " ")
            return f"{words[:1].upper()}{words[1:]} ({unit})"
    words = column.replace("_", " ")
    return f"{words[:1].upper()}{words[1:]}"


def format_value(value: Any, column: str = "") -> str:
    """Format one table cell: integers as integers, floats to a precision fit for the unit.

    Missing values (None, NaN) are shown as an en dash.

    Examples
    --------
    >>> format_value(123.456, "volume_ml"), format_value(float("nan")), format_value(7, "n_voxels")
    ('123.5', '–', '7')
    >>> format_value(0.000123, "ratio"), format_value(5.38, "robust_z")
    ('0.000123', '+5.4')
    """
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):d}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "∞" if value > 0 else "−∞"
        if column.startswith("n_") and value.is_integer():
            return f"{int(value):d}"
        if column.endswith("_z"):
            return f"{value:+.1f}"
        magnitude = abs(value)
        if magnitude == 0:
            return "0"
        if magnitude >= 100 or column.endswith(("_ml", "_pct", "_hu", "_g", "_cm3")):
            return f"{value:.1f}"
        return f"{value:.3g}" if magnitude < 1 else f"{value:.2f}"
    return str(value)


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def table_html(
    table: pd.DataFrame,
    *,
    headers: Mapping[str, str] | None = None,
    cell_html: Mapping[str, Sequence[str]] | None = None,
    row_classes: Sequence[str] | None = None,
    caption: str | None = None,
) -> str:
    r"""Render a DataFrame as an HTML table with unit-bearing headers.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows and columns to show (the index is not shown).
    headers : mapping of str to str, optional
        Header text per column; default :func:`column_header`.
    cell_html : mapping of str to sequence of str, optional
        Ready-made (already escaped) HTML for the cells of some columns, one per row.
    row_classes : sequence of str, optional
        CSS class per row (``'warn'``, ``'fail'`` highlight the row).
    caption : str, optional
        Table caption (plain text).

    Returns
    -------
    str

    Examples
    --------
    >>> print(table_html(pd.DataFrame({"volume_ml": [1.25]})).replace("><", ">\n<"))  # doctest: +ELLIPSIS
    <table>
    <thead>
    <tr>
    <th>Volume (mL)</th>
    ...
    <td class="num">1.2</td>
    ...
    """
    headers = dict(headers or {})
    cell_html = cell_html or {}
    head = "".join(f"<th>{esc(headers.get(c, column_header(str(c))))}</th>" for c in table.columns)
    numeric = {c: _is_numeric(table[c]) for c in table.columns}
    rows = []
    for position, record in enumerate(table.itertuples(index=False, name=None)):
        cells = []
        for column, value in zip(table.columns, record, strict=True):
            if column in cell_html:
                cells.append(f"<td>{cell_html[column][position]}</td>")
                continue
            css = ' class="num"' if numeric[column] else ""
            cells.append(f"<td{css}>{esc(format_value(value, str(column)))}</td>")
        css = f' class="{esc(row_classes[position])}"' if row_classes and row_classes[position] else ""
        rows.append(f"<tr{css}>{''.join(cells)}</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def badge(severity: str) -> str:
    """Coloured severity badge (``pass``, ``info``, ``warn``, ``fail``, ``n/a``).

    Examples
    --------
    >>> badge("warn")
    '<span class="badge b-warn">warn</span>'
    """
    css = "na" if severity == "n/a" else re.sub(r"[^a-z]", "", severity)
    return f'<span class="badge b-{css}">{esc(severity)}</span>'


def hex_color(rgb: Sequence[int]) -> str:
    """``(r, g, b)`` 0-255 -> ``'#rrggbb'``.

    Examples
    --------
    >>> hex_color((31, 58, 147))
    '#1f3a93'
    """
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb[:3]))


def swatch(color_hex: str) -> str:
    """Small colour square for a legend or table cell.

    Examples
    --------
    >>> swatch("#ff0000")
    '<span class="sw" style="background:#ff0000"></span>'
    """
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", color_hex):
        raise ValueError(f"expected a colour like #1f3a93, got {color_hex!r}")
    return f'<span class="sw" style="background:{color_hex}"></span>'


def img_png(png: bytes, alt: str, *, width_px: int | None = None) -> str:
    r"""Build an ``<img>`` with the PNG embedded as a base64 data URI (shown at its natural size).

    Examples
    --------
    >>> img_png(b"\x89PNG", "x")[:44]
    '<img class="fig" alt="x" src="data:image/png'
    """
    data = base64.b64encode(png).decode("ascii")
    width = f' width="{int(width_px)}"' if width_px else ""
    return f'<img class="fig" alt="{esc(alt)}"{width} src="data:image/png;base64,{data}">'


def section(title: str, *parts: str, anchor: str | None = None) -> str:
    """``<section>`` with a heading and already-built HTML parts."""
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return f"<section{ident}><h2>{esc(title)}</h2>{''.join(parts)}</section>"


def meta_line(items: Iterable[tuple[str, Any]]) -> str:
    """One grey line of ``key: value`` pairs under a page title (missing values skipped)."""
    spans = [
        f"<span><b>{esc(k)}:</b> {esc(v if isinstance(v, str) else format_value(v))}</span>"
        for k, v in items
        if v is not None and not (isinstance(v, float) and math.isnan(v))
    ]
    return f'<p class="meta">{"".join(spans)}</p>'


def page(title: str, body: str, *, generator: str = "") -> str:
    """Wrap a page body into a complete HTML5 document with the inline style sheet.

    Parameters
    ----------
    title : str
        Document title (plain text).
    body : str
        HTML of the page content.
    generator : str
        Version string for the ``generator`` meta tag.

    Returns
    -------
    str
    """
    gen = f'<meta name="generator" content="{esc(generator)}">' if generator else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{gen}'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )
