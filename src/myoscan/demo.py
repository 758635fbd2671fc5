"""``myoscan demo``: phantom -> segmentation -> quantification -> accuracy, in one call.

The demo generates a synthetic two-leg Dixon MRI with exact ground truth
(:mod:`myoscan.phantom`, the seed 000 protocol: 448 x 266 x 60 voxels of 0.71 x 0.71 x 5 mm),
segments it with the built-in ``leg-demo`` model bundle, measures every muscle group
(:func:`myoscan.quantify.quantify`) and compares the segmentation with the truth
(:func:`myoscan.evaluate.evaluate_segmentation`). Everything it writes is listed in
:class:`DemoResult`; the phantom and the demo model are synthetic, not for real scans.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from myoscan._typing import PathLike
from myoscan.errors import InputError
from myoscan.io import Volume

__all__ = ["DEMO_MODEL", "DEMO_SEED", "DemoResult", "run_demo", "save_label_overlay"]

log = logging.getLogger(__name__)

#: Bundle the demo segments with (shipped in ``myoscan/models/leg-demo``).
DEMO_MODEL = "leg-demo"
#: Default phantom seed; the demo model was trained on other seeds (see its MODEL_CARD).
DEMO_SEED = 2025
#: Phantom images -> model contrast names.
_PHANTOM_CONTRASTS = {"water": "water", "fat": "fat", "inphase": "inphase", "outphase": "outphase"}


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` produced.

    Attributes
    ----------
    out_dir : pathlib.Path
    files : dict of str to Path
        ``segmentation``, ``sidecar``, ``metrics``, ``accuracy``, ``overlay``, ``summary`` and
        the phantom's files under ``phantom/``.
    accuracy : pandas.DataFrame
        One row per model label: Dice, volumes and IMF predicted vs true.
    mean_dice : float
        Mean Dice over the model's labels.
    seconds : dict of str to float
        Wall time per step.
    summary : str
        The text written to ``summary.txt``.
    """

    out_dir: Path
    files: dict[str, Path]
    accuracy: pd.DataFrame
    mean_dice: float
    seconds: dict[str, float] = field(default_factory=dict)
    summary: str = ""


def _display_slice(array: np.ndarray, affine: np.ndarray, k: int) -> np.ndarray:
    """Axial slice ``k`` of a RAS-reoriented array, radiological view (patient right on the left)."""
    from myoscan.segment.preprocess import reorient

    ras, _ = reorient(array, affine, "RAS")
    return ras[:, :, k].T[::-1, ::-1]


def save_label_overlay(
    image: Volume, panels: Mapping[str, np.ndarray], path: PathLike, *, scheme: str | None = None,
    slice_index: int | None = None,
) -> Path:
    """PNG of one axial slice of ``image`` with each label map of ``panels`` overlaid.

    Parameters
    ----------
    image : Volume
        Background image (grey).
    panels : mapping of str to (I, J, K) ndarray of int
        Title -> label map on ``image``'s grid (e.g. ``{"prediction": ..., "truth": ...}``).
    path : str or os.PathLike
        Output ``.png``, written atomically.
    scheme : str, optional
        Catalog scheme giving the label colours (default: a qualitative colour map).
    slice_index : int, optional
        Axial slice after reorientation to RAS (default: the middle one).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from myoscan.outputs import write_figure
    from myoscan.segment.preprocess import reorient

    ras_shape = reorient(np.zeros(image.spatial_shape, np.uint8), image.affine, "RAS")[0].shape
    k = ras_shape[2] // 2 if slice_index is None else int(slice_index)
    if not 0 <= k < ras_shape[2]:
        raise InputError(f"slice {k} is outside the image (0-{ras_shape[2] - 1})")
    grey = _display_slice(np.asarray(image.array, dtype=np.float32), image.affine, k)
    top = max(int(max(np.max(p) for p in panels.values())), 1)
    colours = plt.get_cmap("tab20")(np.arange(top + 1) % 20)
    if scheme:
        from myoscan.labels import load_catalog

        for label_id, structure in load_catalog().scheme(scheme).labels.items():
            if label_id <= top:
                colours[label_id, :3] = np.asarray(structure.color) / 255.0
    colours[0, 3] = 0.0
    cmap = ListedColormap(colours)
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    low, high = np.percentile(grey, [1, 99.5])
    for axis, (title, labels) in zip(axes[0], panels.items(), strict=True):
        axis.imshow(grey, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        shown = _display_slice(np.asarray(labels), image.affine, k)
        axis.imshow(np.ma.masked_equal(shown, 0), cmap=cmap, vmin=0, vmax=top, alpha=0.55,
                    interpolation="nearest")
        axis.set_title(title)
        axis.set_axis_off()
    figure.text(0.01, 0.02, "R", fontsize=9, color="0.3")
    figure.tight_layout()
    return write_figure(figure, path, dpi=110)


def _accuracy_table(
    predicted: Volume, truth: Volume, names: Mapping[int, str], metrics: pd.DataFrame,
    truth_labels: Sequence[Mapping[str, Any]],
) -> pd.DataFrame:
    from myoscan.evaluate import EvaluateConfig, evaluate_segmentation

    table = evaluate_segmentation(predicted.array, truth.array, predicted.spacing_mm, names=dict(names),
                                  config=EvaluateConfig(labels=tuple(sorted(names)), distances=False))
    table = table[["label_id", "name", "dice", "volume_pred_ml", "volume_ref_ml"]].rename(
        columns={"volume_ref_ml": "volume_true_ml"})
    true_imf = {int(row["label_id"]): row.get("imf_pct", np.nan) for row in truth_labels}
    imf = metrics.set_index("label_id")["imf_pct"] if "imf_pct" in metrics else pd.Series(dtype=float)
    table["imf_pred_pct"] = [float(imf.get(i, np.nan)) for i in table["label_id"]]
    table["imf_true_pct"] = [float(true_imf.get(int(i), np.nan)) for i in table["label_id"]]
    return table


def _summary(result_rows: pd.DataFrame, info: Mapping[str, Any]) -> str:
    lines = [
        f"myoscan demo: leg Dixon phantom (seed {info['seed']}), model {info['model']} "
        f"(sha256 {info['sha256'][:12]})",
        f"image {' x '.join(map(str, info['shape']))} voxels of "
        f"{' x '.join(f'{s:g}' for s in info['spacing_mm'])} mm; segmented in {info['segment_s']:.1f} s "
        f"on {info['device']}; total {info['total_s']:.1f} s",
        f"mean Dice over {len(result_rows)} labels: {info['mean_dice']:.3f} "
        f"(lowest {result_rows['dice'].min():.3f}, {result_rows.loc[result_rows['dice'].idxmin(), 'name']})",
        "",
        f"{'structure':<38} {'Dice':>6} {'vol mL':>8} {'true mL':>8} {'IMF %':>6} {'true %':>6}",
    ]
    for row in result_rows.itertuples():
        lines.append(f"{row.name:<38} {row.dice:6.3f} {row.volume_pred_ml:8.1f} {row.volume_true_ml:8.1f} "
                     f"{row.imf_pred_pct:6.1f} {row.imf_true_pct:6.1f}")
    lines += ["", "Synthetic phantom and a demo model trained on phantoms only: not for real scans."]
    return "\n".join(lines) + "\n"


def run_demo(
    out_dir: PathLike,
    *,
    seed: int = DEMO_SEED,
    model: PathLike = DEMO_MODEL,
    device: str = "auto",
    models_dirs: Sequence[PathLike] = (),
    show_progress: bool = True,
) -> DemoResult:
    """Generate a leg Dixon phantom, segment, quantify and score it against the truth.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Output folder (created; files of the same name are replaced).
    seed : int
        Phantom seed; the same seed gives the same phantom and results.
    model : str or os.PathLike
        Bundle name or folder (default: the built-in ``leg-demo``).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    models_dirs : sequence of path
        Extra folders searched for the bundle name.
    show_progress : bool
        Progress bars on stderr.

    Returns
    -------
    DemoResult

    Raises
    ------
    ModelError
        The demo model is not installed (or broken).
    """
    from myoscan.outputs import write_table, write_text
    from myoscan.phantom import make_phantom, write_phantom
    from myoscan.quantify import quantify
    from myoscan.segment.bundle import load_bundle, resolve_bundle
    from myoscan.segment.predict import segment_volumes, write_segmentation

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; give -o a folder for the demo outputs")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    bundle = load_bundle(resolve_bundle(model, models_dirs))
    missing = [c for c in bundle.settings.contrasts if c not in _PHANTOM_CONTRASTS]
    if missing:
        raise InputError(f"model {bundle.name!r} takes {', '.join(missing)}, which a Dixon phantom lacks")
    try:  # only once the model is known to work: a failed start leaves no empty folder
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder ({exc.strerror or exc}); "
                         "choose another location") from exc
    phantom = make_phantom("leg", "dixon", seed=int(seed))
    seconds["phantom"] = time.perf_counter() - start
    files = {f"phantom_{k}": v for k, v in write_phantom(
        phantom, out / "phantom", overwrite=True, images=["water", "fat"]).items()}
    inputs = {c: phantom.images[_PHANTOM_CONTRASTS[c]] for c in bundle.settings.contrasts}
    tic = time.perf_counter()
    segmentation = segment_volumes(inputs, bundle, device=device, show_progress=show_progress)
    seconds["segment"] = time.perf_counter() - tic
    files["segmentation"], files["sidecar"] = write_segmentation(segmentation, out / "segmentation.nii.gz")
    tic = time.perf_counter()
    metrics = quantify(segmentation.labels, water=phantom.images["water"], fat=phantom.images["fat"],
                       names=segmentation.names, scheme=segmentation.scheme)
    files["metrics"] = write_table(metrics, out / "metrics.csv")
    accuracy = _accuracy_table(segmentation.labels, phantom.labels, segmentation.names, metrics,
                               phantom.truth["labels"])
    files["accuracy"] = write_table(accuracy, out / "accuracy.csv")
    seconds["quantify"] = time.perf_counter() - tic
    files["overlay"] = save_label_overlay(
        phantom.images["water"], {"myoscan segmentation": segmentation.labels.array,
                                  "phantom truth": phantom.labels.array},
        out / "overlay.png", scheme=segmentation.scheme)
    seconds["total"] = time.perf_counter() - start
    mean_dice = float(accuracy["dice"].mean())
    info = {"seed": seed, "model": bundle.name, "sha256": bundle.sha256,
            "shape": phantom.labels.spatial_shape, "spacing_mm": phantom.labels.spacing_mm,
            "segment_s": seconds["segment"],
            "device": segmentation.model["device"], "total_s": seconds["total"], "mean_dice": mean_dice}
    summary = _summary(accuracy, info)
    files["summary"] = write_text(summary, out / "summary.txt")
    return DemoResult(out, files, accuracy, mean_dice, seconds, summary)
