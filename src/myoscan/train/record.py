"""What a training run leaves behind besides the weights: CSV log, learning curve, model card."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from myoscan.outputs import write_figure

__all__ = ["dice_summary", "model_card", "plot_learning_curve", "summarize_folds"]


def dice_summary(table: pd.DataFrame) -> pd.Series:
    """Mean Dice per structure over the cases whose reference contains it.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of :func:`myoscan.evaluate.evaluate_segmentation` with a ``case`` column
        (``name``, ``dice``, ``in_ref``).

    Returns
    -------
    pandas.Series
        Mean Dice indexed by structure name, in first-seen order (NaN when no case has it).

    Examples
    --------
    >>> t = pd.DataFrame({"name": ["a", "a", "b"], "dice": [0.8, 1.0, 0.0], "in_ref": [True, True, False]})
    >>> dice_summary(t).round(2).to_dict()
    {'a': 0.9, 'b': nan}
    """
    order = list(dict.fromkeys(table["name"]))
    kept = table[table["in_ref"].astype(bool)]
    return kept.groupby("name", sort=False)["dice"].mean().reindex(order)


def plot_learning_curve(history: pd.DataFrame, path: Path, title: str) -> Path:
    """Training loss and validation Dice against iterations, written atomically as PNG.

    Parameters
    ----------
    history : pandas.DataFrame
        The training log (``iteration``, ``train_loss``, ``val_mean_dice``, ``dice_<name>``).
    path : pathlib.Path
        Output ``.png``.
    title : str
        Figure title.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax_loss = fig.add_subplot(1, 1, 1)
    ax_dice = ax_loss.twinx()
    it = history["iteration"].to_numpy()
    ax_loss.plot(it, history["train_loss"], color="tab:red", marker=".", label="training loss")
    for column in [c for c in history.columns if c.startswith("dice_")]:
        ax_dice.plot(it, history[column], color="tab:blue", alpha=0.2, linewidth=0.8)
    ax_dice.plot(it, history["val_mean_dice"], color="tab:blue", marker="o", label="validation Dice (mean)")
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("training loss", color="tab:red")
    ax_dice.set_ylabel("validation Dice (thin: per label)", color="tab:blue")
    ax_dice.set_ylim(0.0, 1.0)
    if "elapsed_min" in history and len(history):
        ax_loss.set_title(f"{title} — {history['elapsed_min'].iloc[-1]:.1f} min", fontsize=10)
    fig.tight_layout()
    return write_figure(fig, path)


def summarize_folds(fold_metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean ± SD over folds of each structure's validation Dice.

    Parameters
    ----------
    fold_metrics : pandas.DataFrame
        One row per fold and structure: ``fold``, ``name``, ``dice`` (the fold's mean).

    Returns
    -------
    pandas.DataFrame
        ``name, dice_mean, dice_sd, n_folds, dice_mean_sd`` plus a last row ``mean`` over
        structures (the mean of each fold's mean Dice, and its SD over folds).

    Examples
    --------
    >>> m = pd.DataFrame({"fold": [1, 1, 2, 2], "name": ["a", "b", "a", "b"],
    ...                   "dice": [0.8, 0.6, 0.9, 0.7]})
    >>> summarize_folds(m)[["name", "dice_mean", "dice_mean_sd"]].values.tolist()[-1]
    ['mean', 0.75, '0.750 ± 0.071']
    """
    order = list(dict.fromkeys(fold_metrics["name"]))
    per_label = fold_metrics.groupby("name", sort=False)["dice"].agg(["mean", "std", "count"]).reindex(order)
    fold_means = fold_metrics.groupby("fold")["dice"].mean()
    rows = [
        {"name": name, "dice_mean": r["mean"], "dice_sd": r["std"], "n_folds": int(r["count"])}
        for name, r in per_label.iterrows()
    ]
    rows.append({"name": "mean", "dice_mean": fold_means.mean(), "dice_sd": fold_means.std(),
                 "n_folds": int(fold_means.size)})
    table = pd.DataFrame(rows)
    table["dice_mean_sd"] = [
        f"{m:.3f} ± {s:.3f}" if np.isfinite(s) else f"{m:.3f}" for m, s in zip(table["dice_mean"],
                                                                               table["dice_sd"], strict=True)
    ]
    return table


def _table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def model_card(
    config: Mapping[str, Any],
    *,
    record: Mapping[str, Any],
    dice_raw: pd.Series,
    dice_post: pd.Series,
    command: str | None,
    notes: str = "",
) -> str:
    """Markdown model card: what, how trained, validation metrics, intended use and limits.

    Parameters
    ----------
    config : mapping
        The bundle config.
    record : mapping
        The ``training`` record of the bundle config.
    dice_raw, dice_post : pandas.Series
        Validation Dice per structure without and with the bundle's postprocessing.
    command : str or None
        The exact command that trained the model.
    notes : str
        Extra markdown (intended use, limits) placed before the generic limits.
    """
    rows = [
        (name, f"{dice_raw.get(name, np.nan):.3f}", f"{dice_post.get(name, np.nan):.3f}")
        for name in dice_raw.index
    ]
    rows.append(("**mean**", f"**{np.nanmean(dice_raw.to_numpy()):.3f}**",
                 f"**{np.nanmean(dice_post.to_numpy()):.3f}**"))
    arch = config["architecture"]
    lines = [
        f"# {config['name']}",
        "",
        config.get("description") or "",
        "",
        "## Model",
        "",
        f"- Architecture: `{arch['name']}` with {dict(arch.get('params', {}))}",
        f"- Inputs: {', '.join(config['inputs']['contrasts'])} ({config['inputs']['modality']})",
        f"- Labels: {len(config['labels']['ids']) - 1} structures of the "
        f"`{config['labels']['scheme']}` scheme",
        f"- Settings from: {config.get('source') or 'see config.json'}",
        "",
        "## Training",
        "",
        f"- Data: {', '.join(f'`{d}`' for d in record.get('data') or [])} ({record.get('layout')}), "
        f"{record.get('n_train')} training and {record.get('n_validation')} validation cases"
        + (f" (validation data: {', '.join(f'`{d}`' for d in record['validation_data'])})"
           if record.get("validation_data") else ""),
        f"- Iterations: {record.get('iterations')} (best validation at {record.get('best_iteration')}), "
        f"{record.get('elapsed_min', float('nan')):.1f} min on {record.get('device')}"
        + (", stopped early" if record.get("stopped_early") else ""),
        f"- Seed {record.get('seed')}; myoscan {record.get('myoscan')}, torch {record.get('torch')}, "
        f"MONAI {record.get('monai')}",
        "",
        "Command:",
        "",
        "```bash",
        command or "(trained through the Python API: myoscan.train.train)",
        "```",
        "",
        "## Validation",
        "",
        ("**Measured on the training cases themselves** (no held-out data: `validation.fraction` 0, as "
         "seed 002 did, or a single case), so this is not an estimate of accuracy on new scans. "
         if record.get("validation_on_training_cases") else "")
        + "Dice per structure on the validation cases, on the input grid; \"post\" after the bundle's "
        "postprocessing (as `myoscan segment` writes it).",
        "",
        _table(rows, ("structure", "Dice", "Dice (post)")),
        "",
        "## Intended use and limits",
        "",
    ]
    if notes:
        lines += [notes.strip(), ""]
    lines += [
        "A network is only as good as its training data: check every segmentation visually, and "
        "re-validate on your own scans before using the measures in a study.",
    ]
    return "\n".join(lines) + "\n"
