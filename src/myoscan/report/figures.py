"""Report figures: segmentation overlays on axial and coronal slices, cohort box plots.

Overlays follow the seed figures (seed 000 Fig. 1, seed 002 Fig. 1): the label map in the
catalog colours over the water (or CT, or fat-fraction) image, axial slices at several
levels and one coronal view. Slices are taken from a RAS-ordered grid
(:func:`myoscan.report.labelmap.to_ras_grid`) and drawn with the physical aspect ratio of
the voxels. In radiological convention the patient's right is on the image left (the view
from the feet for axial slices, from the front for coronal ones); in neurological
convention it is on the image right. Every panel carries R/L and A/P or S/I marks.

matplotlib is imported inside the functions with the Agg backend; nothing is shown on screen.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from myoscan.report.labelmap import RasGrid

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "AGE_BIN_YEARS",
    "CT_DISPLAY_WINDOW_HU",
    "Convention",
    "OverlayStyle",
    "age_edges",
    "axial_figure",
    "box_by_age_sex_figure",
    "coronal_figure",
    "display_window",
    "figure_png",
    "overlay_rgba",
]

Convention = Literal["radiological", "neurological"]

#: CT soft-tissue display window in HU (level 40, width 400).
CT_DISPLAY_WINDOW_HU = (-160.0, 240.0)
#: Opacity of the label fill; label borders are drawn opaque in the exact catalog colour.
FILL_ALPHA = 0.45
#: Age strata of the cohort box plots: decades (seed 001 Fig. 4), open-ended from 80.
AGE_BIN_YEARS = 10
AGE_OPEN_FROM = 80
#: Cells of a box plot with at most this many subjects also show every value as a dot.
FEW_POINTS = 20
_FIG_WIDTH_IN = 12.0
_DPI = 100


@dataclass(frozen=True)
class OverlayStyle:
    """How overlays are drawn.

    Parameters
    ----------
    colors : mapping of int to (r, g, b)
        Catalog colour per label id (0-255).
    window : (float, float)
        Grey-level window of the image.
    convention : {'radiological', 'neurological'}
        Radiological: the patient's right on the image left.
    """

    colors: Mapping[int, tuple[int, int, int]]
    window: tuple[float, float] = (0.0, 1.0)
    convention: Convention = "radiological"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def figure_png(figure: Figure) -> bytes:
    """Render a figure to PNG bytes and close it."""
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=_DPI, facecolor=figure.get_facecolor())
    finally:
        plt.close(figure)
    return buffer.getvalue()


def display_window(image: np.ndarray, contrast: str) -> tuple[float, float]:
    """Grey-level window of an image for display.

    CT: soft-tissue window; fat fraction: 0-100 % (or 0-1); MR: 1st-99.5th percentile of
    the voxels with signal (a subsample of at most about 2 million).

    Examples
    --------
    >>> display_window(np.array([[[-1000.0, 40.0]]]), "ct")
    (-160.0, 240.0)
    """
    if contrast == "ct":
        return CT_DISPLAY_WINDOW_HU
    finite = image[np.isfinite(image)]
    if contrast == "fatfrac":
        return (0.0, 1.0) if finite.size and np.nanmax(finite) <= 1.5 else (0.0, 100.0)
    step = max(1, finite.size // 2_000_000)
    sample = finite[::step]
    sample = sample[sample > 0] if np.any(sample > 0) else sample
    if sample.size == 0:
        return (0.0, 1.0)
    low, high = np.percentile(sample, [1.0, 99.5])
    return (float(low), float(high if high > low else low + 1.0))


def overlay_rgba(
    labels: np.ndarray, colors: Mapping[int, tuple[int, int, int]], *, fill_alpha: float = FILL_ALPHA
) -> npt.NDArray[np.uint8]:
    """RGBA overlay of a 2D label slice: translucent fill, opaque one-pixel border.

    Parameters
    ----------
    labels : (H, W) ndarray of int
        Label slice as displayed.
    colors : mapping of int to (r, g, b)
        Colour per label id (ids without a colour are drawn grey).
    fill_alpha : float
        Opacity of the interior.

    Returns
    -------
    (H, W, 4) ndarray of uint8

    Examples
    --------
    >>> lab = np.zeros((4, 4), dtype=int); lab[:3, :3] = 1
    >>> rgba = overlay_rgba(lab, {1: (255, 0, 0)})
    >>> rgba[2, 2].tolist(), int(rgba[1, 1, 3]), int(rgba[3, 3, 3])  # border, inside, background
    ([255, 0, 0, 255], 115, 0)
    """
    lab = np.asarray(labels).astype(np.int64, copy=False)
    top = int(lab.max()) if lab.size else 0
    lut = np.zeros((top + 1, 4), dtype=np.uint8)
    lut[1:, :3] = 128
    for label_id, rgb in colors.items():
        if 0 < label_id <= top:
            lut[label_id, :3] = rgb
    rgba = lut[lab]
    inside = lab > 0
    padded = np.pad(lab, 1, mode="edge")
    border = np.zeros_like(inside)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        border |= padded[dy : dy + lab.shape[0], dx : dx + lab.shape[1]] != lab
    rgba[..., 3] = np.where(inside, np.where(border, 255, round(fill_alpha * 255)), 0)
    return rgba


def _axial(plane: np.ndarray, convention: Convention) -> np.ndarray:
    """(X, Y) slice -> rows anterior to posterior, columns by convention."""
    rows_ap = plane[:, ::-1].T  # rows: anterior first; columns: x ascending (patient left -> right)
    return rows_ap[:, ::-1] if convention == "radiological" else rows_ap


def _coronal(plane: np.ndarray, convention: Convention) -> np.ndarray:
    """(X, Z) slice -> rows superior to inferior, columns by convention."""
    rows_si = plane[:, ::-1].T
    return rows_si[:, ::-1] if convention == "radiological" else rows_si


def _marks(ax, convention: Convention, vertical: tuple[str, str], *, side_y: float = 0.5) -> None:
    from matplotlib import patheffects

    left, right = ("R", "L") if convention == "radiological" else ("L", "R")
    style = dict(
        color="white",
        fontsize=11,
        fontweight="bold",
        transform=ax.transAxes,
        path_effects=[patheffects.withStroke(linewidth=2.5, foreground="black")],
    )
    ax.text(0.015, side_y, left, ha="left", va="center", **style)
    ax.text(0.985, side_y, right, ha="right", va="center", **style)
    ax.text(0.5, 0.985, vertical[0], ha="center", va="top", **style)
    ax.text(0.5, 0.015, vertical[1], ha="center", va="bottom", **style)


def _crop_box(
    labels: np.ndarray, spacing_mm: Sequence[float], margin_mm: float = 15.0
) -> tuple[slice, slice]:
    """In-plane (X, Y) bounding box of all labels with a margin, clipped to the grid."""
    xy = np.any(labels > 0, axis=2)
    if not xy.any():
        return slice(None), slice(None)
    boxes = []
    for axis in (0, 1):
        hits = np.flatnonzero(np.any(xy, axis=1 - axis))
        extent = hits[-1] - hits[0] + 1
        pad = int(np.ceil(margin_mm / spacing_mm[axis] + 0.08 * extent))
        boxes.append(slice(max(hits[0] - pad, 0), min(hits[-1] + pad + 1, xy.shape[axis])))
    return boxes[0], boxes[1]


def _show(ax, image: np.ndarray | None, labels: np.ndarray, style: OverlayStyle, aspect: float) -> None:
    plt = _pyplot()
    cmap = plt.get_cmap("gray").with_extremes(bad="black")
    if image is not None:
        ax.imshow(
            np.ma.masked_invalid(image),
            cmap=cmap,
            vmin=style.window[0],
            vmax=style.window[1],
            interpolation="nearest",
            aspect=aspect,
        )
    else:
        ax.imshow(np.zeros(labels.shape), cmap=cmap, vmin=0, vmax=1, interpolation="nearest", aspect=aspect)
    ax.imshow(overlay_rgba(labels, style.colors), interpolation="nearest", aspect=aspect)
    ax.set_xticks([])
    ax.set_yticks([])


def axial_figure(
    labels: RasGrid,
    image: np.ndarray | None,
    levels: Sequence[int],
    *,
    titles: Sequence[str],
    style: OverlayStyle,
) -> Figure:
    """Axial slices at the given levels with the segmentation overlaid.

    Parameters
    ----------
    labels : RasGrid
        RAS-ordered label map.
    image : (X, Y, Z) ndarray or None
        Anatomical image on the same RAS grid (None: labels on black).
    levels : sequence of int
        Axial slice indices (inferior to superior).
    titles : sequence of str
        One title per level.
    style : OverlayStyle
        Colours, grey-level window and display convention.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    sx, sy, _ = labels.spacing_mm
    box_x, box_y = _crop_box(labels.array, labels.spacing_mm)
    crop = labels.array[box_x, box_y]
    ratio = (crop.shape[0] * sx) / (crop.shape[1] * sy)  # physical width / height of a panel
    n = len(levels)
    ncols = n if ratio * n <= 7.5 else max(1, min(n, int(7.5 // ratio) or 1, 3))
    nrows = -(-n // ncols)
    panel_w = _FIG_WIDTH_IN / ncols
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(_FIG_WIDTH_IN, nrows * (panel_w / ratio + 0.35)),
        squeeze=False,
        facecolor="black",
    )
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax, k, title in zip(axes.ravel(), levels, titles, strict=False):
        lab = _axial(crop[:, :, k], style.convention)
        img = None if image is None else _axial(image[box_x, box_y, k], style.convention)
        _show(ax, img, lab, style, aspect=sy / sx)
        ax.set_title(title, color="white", fontsize=10, pad=3)
        _marks(ax, style.convention, ("A", "P"))
    fig.subplots_adjust(
        left=0.005,
        right=0.995,
        bottom=0.005,
        top=1 - 0.35 / (nrows * (panel_w / ratio + 0.35)),
        wspace=0.02,
        hspace=0.12,
    )
    return fig


def coronal_figure(
    labels: RasGrid,
    image: np.ndarray | None,
    y_index: int,
    *,
    style: OverlayStyle,
    levels: Sequence[int] = (),
    level_names: Sequence[str] = (),
    title: str = "",
    max_height_in: float = 5.5,
) -> Figure:
    """Draw a coronal slice over the whole field of view, axial levels marked by dashed lines.

    Parameters
    ----------
    labels : RasGrid
        RAS-ordered label map.
    image : (X, Y, Z) ndarray or None
        Anatomical image on the same grid.
    y_index : int
        Coronal slice index (posterior = 0).
    style : OverlayStyle
        Colours, grey-level window and display convention.
    levels, level_names : sequence
        Axial slice indices to mark and their names.
    title : str
        Panel title.
    max_height_in : float
        Largest figure height; the width follows from the physical aspect ratio.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    sx, _, sz = labels.spacing_mm
    box_x, _ = _crop_box(labels.array, labels.spacing_mm)
    plane = labels.array[box_x, y_index, :]
    width_mm, height_mm = plane.shape[0] * sx, plane.shape[1] * sz
    height = max_height_in
    width = height * width_mm / height_mm
    if width > _FIG_WIDTH_IN:
        width, height = _FIG_WIDTH_IN, _FIG_WIDTH_IN * height_mm / width_mm
    fig, ax = plt.subplots(figsize=(max(width, 3.0), height + 0.35), facecolor="black")
    lab = _coronal(plane, style.convention)
    img = None if image is None else _coronal(image[box_x, y_index, :], style.convention)
    _show(ax, img, lab, style, aspect=sz / sx)
    n_z = plane.shape[1]
    for k, name in zip(levels, level_names, strict=False):
        row = n_z - 1 - k
        ax.axhline(row, color="white", linewidth=0.8, linestyle=(0, (4, 3)), alpha=0.8)
        ax.text(
            0.995,
            row,
            f" {name}",
            color="white",
            fontsize=8,
            va="bottom",
            ha="right",
            transform=ax.get_yaxis_transform(),
        )
    ax.set_title(title, color="white", fontsize=10, pad=3)
    _marks(ax, style.convention, ("S", "I"), side_y=0.03)  # low corners: clear of the level labels
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.005, top=1 - 0.35 / (height + 0.35))
    return fig


def age_edges(
    age: pd.Series, *, bin_years: int = AGE_BIN_YEARS, open_from: int = AGE_OPEN_FROM
) -> list[float]:
    """Decade edges covering the ages of a cohort, the last stratum open-ended (seed 001 Fig. 4).

    Examples
    --------
    >>> age_edges(pd.Series([34.0, 58.0, 91.0]))
    [30.0, 40.0, 50.0, 60.0, 70.0, 80.0]
    >>> age_edges(pd.Series([61.0, 66.0]))
    [60.0]
    """
    values = pd.to_numeric(age, errors="coerce").dropna()
    if values.empty:
        return []
    low = np.floor(values.min() / bin_years) * bin_years
    high = min(np.floor(values.max() / bin_years) * bin_years, float(open_from))
    return [float(e) for e in np.arange(min(low, high), high + bin_years / 2, bin_years)]


def box_by_age_sex_figure(
    table: pd.DataFrame,
    measures: Sequence[tuple[str, str]],
    *,
    max_cols: int = 4,
) -> Figure:
    """Box plots of measures by age decade and sex (seed 001 Fig. 4), one panel per measure.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject with the measure columns, and ``age`` (years) and ``sex``
        (``female``/``male``/``other``) when known; without ages the boxes are by sex only.
    measures : sequence of (column, title)
        Columns to plot and the panel titles (with units).
    max_cols : int
        Panels per row; a figure with fewer panels is narrower, so panels keep one size.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from myoscan.cohort import age_strata
    from myoscan.cohort.plots import GROUP_COLOURS

    plt = _pyplot()
    n = len(measures)
    ncols = max(1, min(max_cols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(_FIG_WIDTH_IN * ncols / max_cols, 3.1 * nrows), squeeze=False
    )
    age = table["age"] if "age" in table.columns else pd.Series(np.nan, index=table.index)
    edges = age_edges(age)
    strata = (
        age_strata(pd.to_numeric(age, errors="coerce"), edges).astype(object)
        if edges
        else pd.Series("all", index=table.index, dtype=object)
    )
    ages = list(age_strata(pd.Series(dtype=float), edges).cat.categories) if edges else ["all"]
    sex = (
        table["sex"].astype(object).fillna("unknown")
        if "sex" in table.columns
        else pd.Series("unknown", index=table.index, dtype=object)
    )
    sexes = [s for s in ("female", "male", "other", "unknown") if (sex == s).any()]
    colours = {**GROUP_COLOURS, "other": "#2ca02c", "unknown": "#7f7f7f"}
    width = 0.8 / max(len(sexes), 1)
    for ax, (column, title) in zip(axes.ravel(), measures, strict=False):
        values = pd.to_numeric(table[column], errors="coerce")
        for s_index, s in enumerate(sexes):
            cells = [
                (a_index - 0.4 + width * (s_index + 0.5), values[(strata == a) & (sex == s)].dropna())
                for a_index, a in enumerate(ages)
            ]
            cells = [(p, c.to_numpy()) for p, c in cells if len(c)]
            if cells:
                ax.boxplot(
                    [c for _, c in cells],
                    positions=[p for p, _ in cells],
                    widths=width * 0.85,
                    patch_artist=True,
                    manage_ticks=False,
                    medianprops=dict(color="black"),
                    boxprops=dict(facecolor=colours[s], alpha=0.6),
                    flierprops=dict(markersize=3),
                )
            for position, cell in (
                (p, c) for p, c in cells if len(c) <= FEW_POINTS
            ):  # small cells: show each
                ax.plot(
                    np.full(len(cell), position),
                    cell,
                    "o",
                    color=colours[s],
                    markersize=3.5,
                    markeredgecolor="black",
                    markeredgewidth=0.4,
                )
        ax.set_xticks(range(len(ages)), ages, fontsize=8)
        ax.set_xlim(-0.6, len(ages) - 0.4)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("age (years)" if edges else "", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=colours[s], alpha=0.6) for s in sexes]
    fig.legend(handles, sexes, loc="upper right", ncols=max(len(sexes), 1), fontsize=9, frameon=False)
    height = 3.1 * nrows  # fixed margins in inches (tight_layout costs more than the drawing)
    fig.subplots_adjust(
        left=0.7 / fig.get_figwidth(),
        right=1 - 0.15 / fig.get_figwidth(),
        bottom=0.6 / height,
        top=1 - 0.55 / height,
        wspace=0.35,
        hspace=0.75 if nrows > 1 else 0.2,
    )
    return fig
