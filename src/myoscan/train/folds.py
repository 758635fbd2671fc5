"""k-fold cross-validation (seed 003: 5 folds): one bundle per fold, per-fold and summary tables."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from myoscan._typing import PathLike
from myoscan.errors import InputError
from myoscan.outputs import write_table
from myoscan.train.config import TrainConfig, load_config
from myoscan.train.data import Case, Dataset
from myoscan.train.loop import TrainResult, train
from myoscan.train.record import summarize_folds

__all__ = ["CrossValidationResult", "cross_validate", "fold_splits"]

log = logging.getLogger(__name__)

FOLD_METRICS_FILE = "cv_fold_metrics.csv"
SUMMARY_FILE = "cv_summary.csv"


@dataclass(frozen=True)
class CrossValidationResult:
    """What :func:`cross_validate` returns.

    Attributes
    ----------
    folds : list of TrainResult
        One per fold (bundles in ``<out_dir>/fold-<k>``).
    fold_metrics : pandas.DataFrame
        ``fold, name, dice, dice_post`` -- each fold's validation mean per structure.
    summary : pandas.DataFrame
        Mean ± SD over folds per structure (:func:`myoscan.train.record.summarize_folds`),
        from the postprocessed Dice.
    """

    folds: list[TrainResult]
    fold_metrics: pd.DataFrame
    summary: pd.DataFrame


def fold_splits(
    cases: tuple[Case, ...], k: int, seed: int,
) -> list[tuple[tuple[Case, ...], tuple[Case, ...]]]:
    """Seeded k-fold partition: (training cases, validation cases) per fold.

    Examples
    --------
    >>> from pathlib import Path
    >>> cases = tuple(Case(str(i), (), Path()) for i in range(7))
    >>> [(len(a), len(b)) for a, b in fold_splits(cases, 3, seed=0)]
    [(4, 3), (5, 2), (5, 2)]
    """
    from sklearn.model_selection import KFold

    if not 2 <= k <= len(cases):
        raise InputError(f"cross-validation needs 2 <= folds <= number of cases ({len(cases)}), got {k}")
    splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tuple(cases[i] for i in a), tuple(cases[i] for i in b))
            for a, b in splitter.split(np.arange(len(cases)))]


def cross_validate(
    config: TrainConfig | str | PathLike,
    data: PathLike | Sequence[PathLike] | Dataset,
    out_dir: PathLike,
    *,
    folds: int | None = None,
    max_iterations: int | None = None,
    resume: bool = False,
    device: str = "auto",
    show_progress: bool = True,
    command: str | None = None,
) -> CrossValidationResult:
    """Train one model per fold and tabulate the validation Dice of every structure.

    Parameters
    ----------
    config : TrainConfig, str or path
        Training configuration.
    data : path, sequence of paths or Dataset
        Training data (an explicit validation list in a datalist is pooled with the rest).
    out_dir : str or os.PathLike
        Folder receiving ``fold-<k>/`` bundles, ``cv_fold_metrics.csv`` and ``cv_summary.csv``.
    folds : int, optional
        Number of folds (default ``validation.folds`` of the config).
    max_iterations : int, optional
        Run length of each fold.
    resume : bool
        Skip finished folds and resume an interrupted one.
    device, show_progress, command
        As for :func:`myoscan.train.train`.

    Returns
    -------
    CrossValidationResult
    """
    from myoscan.train.data import check_dataset, find_dataset

    cfg = config if isinstance(config, TrainConfig) else load_config(config)
    k = folds or cfg.validation.folds
    dataset = data if isinstance(data, Dataset) else find_dataset(data, cfg.inputs.contrasts)
    check_dataset(dataset)
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise InputError(f"{root}: exists and is not a folder; --folds writes a folder of fold bundles")
    if root.exists() and not resume and any(root.iterdir()):
        raise InputError(f"{root}: already exists and is not empty; choose another folder or pass --resume")
    results: list[TrainResult] = []
    for index, (train_cases, val_cases) in enumerate(fold_splits(dataset.all_cases, k, cfg.training.seed), 1):
        fold_dir = root / f"fold-{index}"
        log.info("fold %d of %d: %d training, %d validation cases", index, k, len(train_cases),
                 len(val_cases))
        fold_data = replace(dataset, cases=train_cases, validation=val_cases)
        if resume and fold_dir.is_dir() and (fold_dir / "config.json").is_file():
            results.append(_reload(fold_dir, train_cases, val_cases))
            continue
        results.append(train(cfg, fold_data, fold_dir, max_iterations=max_iterations, resume=resume,
                             device=device, show_progress=show_progress, command=command))
    metrics = pd.concat(
        [pd.DataFrame({"fold": i, "name": r.dice.index, "dice": r.dice.to_numpy(),
                       "dice_post": r.dice_post.reindex(r.dice.index).to_numpy()})
         for i, r in enumerate(results, 1)],
        ignore_index=True,
    )
    summary = summarize_folds(metrics.drop(columns="dice").rename(columns={"dice_post": "dice"}))
    write_table(metrics, root / FOLD_METRICS_FILE)
    write_table(summary, root / SUMMARY_FILE)
    return CrossValidationResult(results, metrics, summary)


def _reload(fold_dir: Path, train_cases: tuple[Case, ...], val_cases: tuple[Case, ...]) -> TrainResult:
    """Rebuild a finished fold's result from its bundle (for ``resume``)."""
    from myoscan.outputs import read_table
    from myoscan.train.record import dice_summary

    table = read_table(fold_dir / "validation_dice.csv")
    history = read_table(fold_dir / "training_log.csv")
    dice = dice_summary(table)
    dice_post = dice_summary(table.assign(dice=table["dice_post"]))
    best = history.loc[history["val_mean_dice"].idxmax()]
    return TrainResult(fold_dir, int(history["iteration"].max()), int(best["iteration"]), dice, dice_post,
                       table, history, False, float(history["elapsed_min"].max() * 60.0),
                       tuple(c.name for c in train_cases), tuple(c.name for c in val_cases))
