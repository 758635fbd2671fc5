"""The training loop: cached MONAI data, seeded sampling, DiceCE, validation, checkpoints.

Reproducibility and resume rest on one rule: the training samples of iteration ``i`` are a
pure function of ``(seed, i)``. Each batch slot picks its volume from a per-epoch
permutation seeded with ``(seed, epoch)`` and seeds the random transforms from
``(seed, i, slot)``, so any number of data-loader workers gives the same batches, and a
resumed run only needs the iteration counter, the optimiser/scheduler/AMP states and the
torch RNG (dropout) from the checkpoint to continue exactly where it stopped.

Outputs of ``train(config, data, out_dir)``:

``out_dir/``
    the model bundle (config.json, weights.safetensors, MODEL_CARD.md) plus
    ``training_log.csv``, ``learning_curve.png`` and ``validation_dice.csv``; it appears
    complete or not at all.
``out_dir.training/``
    ``checkpoint.pt`` (last state, best weights), the log and curve while training runs;
    ``--resume`` continues from it.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from myoscan._typing import PathLike
from myoscan.errors import InputError
from myoscan.outputs import atomic_path, write_table
from myoscan.train.augment import build_augmentation, swap_lookup
from myoscan.train.config import TrainConfig, bundle_config, load_config, output_structures
from myoscan.train.data import (
    Case,
    Dataset,
    PrepareCased,
    PreparedCase,
    case_dicts,
    channel_lookup,
    check_dataset,
    find_dataset,
    prepare_case,
)
from myoscan.train.record import dice_summary, model_card, plot_learning_curve

__all__ = ["TrainResult", "split_cases", "train", "work_dir_of"]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
LOG_FILE = "training_log.csv"
CURVE_FILE = "learning_curve.png"
VALIDATION_FILE = "validation_dice.csv"


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    bundle : pathlib.Path
        The written model bundle.
    iterations : int
        Iterations completed (over all resumed runs).
    best_iteration : int
        Iteration whose weights were kept (highest mean validation Dice).
    dice : pandas.Series
        Validation Dice per structure of the kept weights, without postprocessing.
    dice_post : pandas.Series
        The same after the bundle's postprocessing (what ``myoscan segment`` writes).
    validation : pandas.DataFrame
        Per case and structure (``case``, ``name``, ``dice``, ``dice_post``, ``in_ref``).
    history : pandas.DataFrame
        The training log (one row per validation).
    stopped_early : bool
        True when early stopping ended the run.
    elapsed_s : float
        Training time in seconds (over all resumed runs).
    train_cases, validation_cases : tuple of str
        Case names of the split.
    """

    bundle: Path
    iterations: int
    best_iteration: int
    dice: pd.Series
    dice_post: pd.Series
    validation: pd.DataFrame
    history: pd.DataFrame
    stopped_early: bool
    elapsed_s: float
    train_cases: tuple[str, ...] = ()
    validation_cases: tuple[str, ...] = ()

    @property
    def mean_dice(self) -> float:
        """Mean over structures of the validation Dice (with postprocessing)."""
        return float(np.nanmean(self.dice_post.to_numpy()))


def work_dir_of(out_dir: PathLike) -> Path:
    """Return the checkpoint folder of a training run that writes the bundle ``out_dir``."""
    out = Path(out_dir)
    return out.with_name(out.name + ".training")


def split_cases(dataset: Dataset, fraction: float, seed: int) -> tuple[tuple[Case, ...], tuple[Case, ...]]:
    """Training and validation cases: the data's own list, a seeded random split, or all.

    ``fraction == 0`` (or a single case) validates on the training cases themselves, as
    seed 002 did; otherwise ``max(1, round(fraction * n))`` random cases are held out.

    Examples
    --------
    >>> ds = Dataset(Path("."), "folder", tuple(Case(str(i), (), Path()) for i in range(10)))
    >>> [len(part) for part in split_cases(ds, 0.2, seed=0)]
    [8, 2]
    """
    if dataset.validation:
        return dataset.cases, dataset.validation
    cases = dataset.cases
    if fraction <= 0 or len(cases) < 2:
        return cases, cases
    n_val = min(len(cases) - 1, max(1, round(fraction * len(cases))))
    order = np.random.default_rng(seed).permutation(len(cases))
    held = set(order[:n_val].tolist())
    return (tuple(c for i, c in enumerate(cases) if i not in held),
            tuple(c for i, c in enumerate(cases) if i in held))


# --------------------------------------------------------------------------- schedule, optimiser, loss


def lr_factor(config: TrainConfig, total: int) -> Callable[[int], float]:
    """Learning-rate multiplier of iteration ``i`` (0-based) for the configured schedule."""
    t = config.training
    milestones = [m * total for m in t.milestones]

    def factor(i: int) -> float:
        warm = min(1.0, (i + 1) / t.warmup_iterations) if t.warmup_iterations else 1.0
        progress_ = min(1.0, i / max(1, total))
        if t.schedule == "cosine":
            base = 0.5 * (1.0 + math.cos(math.pi * progress_))
        elif t.schedule == "poly":
            base = (1.0 - progress_) ** 0.9
        elif t.schedule == "multistep":
            base = t.lr_gamma ** sum(i >= m for m in milestones)
        else:
            base = 1.0
        return warm * base

    return factor


def _optimizer(config: TrainConfig, network: torch.nn.Module) -> torch.optim.Optimizer:
    t = config.training
    params = network.parameters()
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay, nesterov=True)


def _loss(config: TrainConfig) -> torch.nn.Module:
    from monai.losses import DiceCELoss, DiceLoss

    t = config.training
    if t.loss == "dice":
        return DiceLoss(to_onehot_y=True, softmax=True)
    return DiceCELoss(to_onehot_y=True, softmax=True, lambda_dice=t.lambda_dice, lambda_ce=t.lambda_ce)


# --------------------------------------------------------------------------- samples


def _clone(x: Any) -> Any:
    return x.clone() if isinstance(x, torch.Tensor) else np.array(x, copy=True)


def _sample_transform(config: TrainConfig, spatial_dims: int, spacing_mm: Sequence[float],
                      swap: np.ndarray | None) -> Any:
    """Random part of the pipeline: crop samples, squeeze slices, augment."""
    from monai.transforms import (
        Compose,
        EnsureTyped,
        Lambdad,
        RandCropByPosNegLabeld,
        RandSpatialCropSamplesd,
        SqueezeDimd,
    )

    s = config.sampling
    keys = ["image", "label"]
    roi = tuple(s.roi_size) + ((1,) if spatial_dims == 2 else ())
    if s.strategy == "pos_neg":
        crop = RandCropByPosNegLabeld(keys, label_key="label", spatial_size=roi, pos=s.pos, neg=s.neg,
                                      num_samples=s.num_samples, fg_indices_key="fg", bg_indices_key="bg",
                                      allow_smaller=True)
    else:
        crop = RandSpatialCropSamplesd(keys, roi_size=roi, num_samples=s.num_samples, random_size=False)
    steps: list[Any] = [crop, EnsureTyped(keys, track_meta=False), Lambdad(keys, _clone)]
    if spatial_dims == 2:
        steps.append(SqueezeDimd(keys, dim=-1))
    steps.extend(build_augmentation(config.augmentation, spatial_dims=spatial_dims,
                                    spacing_mm=spacing_mm, swap=swap).transforms)
    return Compose(steps)


class _Samples(torch.utils.data.Dataset):
    """Training samples addressed by ``(iteration, slot)`` keys (see module docstring)."""

    def __init__(self, cache: Any, transform: Any, seed: int, batch_size: int) -> None:
        self.cache, self.transform, self.seed, self.batch_size = cache, transform, seed, batch_size

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, key: tuple[int, int]) -> list[dict[str, Any]]:
        iteration, slot = key
        n = len(self.cache)
        position = iteration * self.batch_size + slot
        order = np.random.default_rng([self.seed, position // n]).permutation(n)
        item = dict(self.cache[int(order[position % n])])
        state = np.random.default_rng([self.seed, iteration, slot]).integers(2**31)
        self.transform.set_random_state(seed=int(state))
        out = self.transform(item)
        return out if isinstance(out, list) else [out]


class _Keys(torch.utils.data.Sampler):
    def __init__(self, start: int, stop: int, batch_size: int) -> None:
        self.start, self.stop, self.batch_size = start, stop, batch_size

    def __len__(self) -> int:
        return (self.stop - self.start) * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for iteration in range(self.start, self.stop):
            for slot in range(self.batch_size):
                yield iteration, slot


def _collate(items: list[list[dict[str, Any]]]) -> dict[str, torch.Tensor]:
    flat = [sample for item in items for sample in item]
    return {
        "image": torch.stack([torch.as_tensor(s["image"], dtype=torch.float32) for s in flat]),
        "label": torch.stack([torch.as_tensor(s["label"]).round().to(torch.long) for s in flat]),
    }


# --------------------------------------------------------------------------- validation


def validate(
    network: torch.nn.Module,
    cases: Sequence[PreparedCase],
    settings: Any,
    device: torch.device,
    *,
    postprocess: bool = False,
) -> pd.DataFrame:
    """Dice of every output structure on prepared validation cases, on the input grid.

    Predictions go through the segmentation engine's own inference
    (:func:`myoscan.segment.inference.predict_labels`) and, when ``postprocess``, its
    postprocessing; metrics come from :func:`myoscan.evaluate.evaluate_segmentation`.

    Returns
    -------
    pandas.DataFrame
        ``case``, ``label_id`` (output channel), ``name``, ``dice``, ``in_ref``, ``in_pred``.
    """
    from myoscan.evaluate import evaluate_segmentation
    from myoscan.segment.inference import predict_labels, torch_predictor
    from myoscan.segment.postprocess import postprocess_labels

    names = dict(settings.labels)
    n_classes = max(names) + 1
    predictor = torch_predictor(network, device)
    tables = []
    for case in cases:
        pred = predict_labels(case.image, predictor, settings.inference, n_classes, device=device,
                              show_progress=False)
        if postprocess:
            pred = postprocess_labels(pred, case.image.input_affine, names, settings.postprocessing)
        table = evaluate_segmentation(pred, case.label_input, case.spacing_mm, names=names,
                                      labels=sorted(names), distances=False)
        table.insert(0, "case", case.name)
        tables.append(table[["case", "label_id", "name", "dice", "in_ref", "in_pred"]])
    return pd.concat(tables, ignore_index=True)


# --------------------------------------------------------------------------- checkpoints


def _save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(dict(state), tmp)


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip/IO errors from torch.load
        raise InputError(
            f"{path}: cannot read the training checkpoint ({exc}); delete it to start over"
        ) from exc


def _publish_bundle(out_dir: Path, network: torch.nn.Module, config: dict[str, Any], card: str,
                    extras: Mapping[str, Path]) -> Path:
    """Save the bundle with extra files into a temporary folder, then rename it into place."""
    from myoscan.segment import save_bundle

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        save_bundle(staging / "bundle", network=network, config=config, model_card=card)
        for name, source in extras.items():
            if source.is_file():
                shutil.copyfile(source, staging / "bundle" / name)
        if out_dir.exists():
            os.replace(out_dir, staging / "old")
        os.replace(staging / "bundle", out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _versions() -> dict[str, str]:
    import monai

    from myoscan import __version__

    return {"myoscan": __version__, "torch": torch.__version__, "monai": monai.__version__}


# --------------------------------------------------------------------------- train


@dataclass
class _State:
    iteration: int = 0
    best_dice: float = -1.0
    best_iteration: int = 0
    best_weights: dict[str, torch.Tensor] | None = None
    stale: int = 0
    elapsed_s: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False


def _resolve_dataset(data: PathLike | Dataset, config: TrainConfig) -> Dataset:
    dataset = data if isinstance(data, Dataset) else find_dataset(data, config.inputs.contrasts)
    check_dataset(dataset)
    return dataset


def _check_outputs(out_dir: Path, work: Path, resume: bool) -> None:
    if resume:
        return
    if (work / CHECKPOINT).exists():
        raise InputError(f"{work}: holds a checkpoint of an earlier run; pass --resume to continue it "
                         "or delete the folder to start over")
    if out_dir.exists():
        raise InputError(f"{out_dir}: already exists; choose another output folder or delete it")


def train(
    config: TrainConfig | str | PathLike,
    data: PathLike | Dataset,
    out_dir: PathLike,
    *,
    max_iterations: int | None = None,
    resume: bool = False,
    device: str = "auto",
    show_progress: bool = True,
    command: str | None = None,
    card_notes: str = "",
) -> TrainResult:
    """Train a segmentation network and write it as a model bundle.

    Parameters
    ----------
    config : TrainConfig, str or path
        Configuration, shipped config name or YAML file (:func:`myoscan.train.load_config`).
    data : path or Dataset
        BIDS dataset, datalist JSON or folder of pairs (:func:`myoscan.train.data.find_dataset`).
    out_dir : str or os.PathLike
        Bundle folder to write; checkpoints go to ``<out_dir>.training/``.
    max_iterations : int, optional
        Override the run length (``training.max_iterations``).
    resume : bool
        Continue from ``<out_dir>.training/checkpoint.pt`` (same split, optimiser, RNG).
    device : str
        ``auto``, ``cpu``, ``cuda`` ... (AMP is used on CUDA when ``training.amp``).
    show_progress : bool
        Progress bars on stderr.
    command : str, optional
        The command line, recorded in the model card.
    card_notes : str
        Extra markdown for the model card's "Intended use and limits".

    Returns
    -------
    TrainResult

    Raises
    ------
    InputError
        Bad configuration or data (missing labels, mismatched geometry), an existing output
        folder without ``resume``, or a checkpoint that does not fit the configuration.
    """
    from monai.data import CacheDataset
    from monai.transforms import Compose, FgBgToIndicesd

    from myoscan.labels import load_catalog
    from myoscan.segment import build_network, parse_config
    from myoscan.segment.inference import select_device

    cfg = config if isinstance(config, TrainConfig) else load_config(config)
    if max_iterations is not None:
        cfg = load_config(cfg, {"training": {"max_iterations": int(max_iterations), "max_epochs": None}})
    out_dir, work = Path(out_dir), work_dir_of(out_dir)
    _check_outputs(out_dir, work, resume)
    dataset = _resolve_dataset(data, cfg)
    structures = output_structures(cfg)
    bconfig = bundle_config(cfg, structures=structures)
    settings = parse_config(bconfig)
    checkpoint = _load_checkpoint(work / CHECKPOINT) if resume and (work / CHECKPOINT).exists() else None
    train_cases, val_cases = _restore_split(dataset, checkpoint) if checkpoint else split_cases(
        dataset, cfg.validation.fraction, cfg.training.seed)
    if checkpoint is not None:
        _check_compatible(checkpoint, bconfig, work)
    elif resume:
        log.warning("no checkpoint in %s; starting a new run", work)

    from monai.utils import set_determinism

    set_determinism(seed=cfg.training.seed)
    dev = select_device(device)
    lookup = channel_lookup(structures, cfg.labels.scheme, cfg.labels.source_scheme)
    spatial_dims = settings.spatial_dims
    roi = tuple(cfg.sampling.roi_size)
    log.info("training %s on %d cases, validating on %d (%s, %s)", cfg.name, len(train_cases),
             len(val_cases), dataset.layout, dev)

    prepare = [PrepareCased(settings, lookup, roi)]
    if cfg.sampling.strategy == "pos_neg":
        prepare.append(FgBgToIndicesd("label", fg_postfix="fg", bg_postfix="bg", output_shape=None))
    cache = CacheDataset(case_dicts(train_cases), Compose(prepare), cache_rate=cfg.training.cache_rate,
                         num_workers=1, progress=show_progress, copy_cache=False)
    validation_data = [prepare_case(c, settings, lookup) for c in val_cases]
    spacing = np.linalg.norm(validation_data[0].image.affine[:3, :3], axis=0)
    catalog = load_catalog()
    swap = swap_lookup(structures, {n: catalog.structure(n).counterpart for n in structures})
    samples = _Samples(cache, _sample_transform(cfg, spatial_dims, spacing, swap), cfg.training.seed,
                       cfg.training.batch_size)

    per_epoch = math.ceil(len(train_cases) / cfg.training.batch_size)
    total = cfg.training.max_iterations or cfg.training.max_epochs * per_epoch
    interval = cfg.validation.interval_iterations or cfg.validation.interval_epochs * per_epoch

    network = build_network(bconfig).to(dev)
    if cfg.training.init_weights and checkpoint is None:
        _init_from_bundle(network, cfg.training.init_weights)
    optimizer = _optimizer(cfg, network)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, total))
    use_amp = cfg.training.amp and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = _loss(cfg)
    state = _State()
    if checkpoint is not None:
        state = _restore(checkpoint, network, optimizer, scheduler, scaler)
    work.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        _save_checkpoint(work / CHECKPOINT, {
            "iteration": state.iteration, "network": network.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "best_weights": state.best_weights or {}, "best_dice": state.best_dice,
            "best_iteration": state.best_iteration, "stale": state.stale, "elapsed_s": state.elapsed_s,
            "history": state.history, "stopped_early": state.stopped_early,
            "torch_rng": torch.get_rng_state(), "config": bconfig,
            "train_cases": [c.name for c in train_cases], "validation_cases": [c.name for c in val_cases],
        })

    def run_validation(loss_sum: float, loss_n: int) -> None:
        table = validate(network, validation_data, settings, dev)
        network.train()
        per_label = dice_summary(table)
        mean = float(np.nanmean(per_label.to_numpy())) if per_label.notna().any() else 0.0
        improved = mean > state.best_dice + cfg.validation.min_delta
        if improved:
            state.best_dice, state.best_iteration, state.stale = mean, state.iteration, 0
            state.best_weights = {k: v.detach().to("cpu").clone() for k, v in network.state_dict().items()}
        else:
            state.stale += 1
        row = {"iteration": state.iteration, "epoch": round(state.iteration / per_epoch, 3),
               "elapsed_min": round(state.elapsed_s / 60.0, 3), "lr": float(scheduler.get_last_lr()[0]),
               "train_loss": loss_sum / max(1, loss_n), "val_mean_dice": mean, "best": improved}
        row.update({f"dice_{k}": float(v) for k, v in per_label.items()})
        state.history.append(row)
        history = pd.DataFrame(state.history)
        write_table(history, work / LOG_FILE)
        plot_learning_curve(history, work / CURVE_FILE, cfg.name)

    network.train()
    loader = torch.utils.data.DataLoader(
        samples, batch_size=cfg.training.batch_size, sampler=_Keys(state.iteration, total,
                                                                   cfg.training.batch_size),
        collate_fn=_collate, num_workers=cfg.training.num_workers,
    )
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=state.iteration, desc=f"training {cfg.name}", unit="it", file=sys.stderr,
               disable=not show_progress or state.iteration >= total, dynamic_ncols=True, leave=False)
    loss_sum, loss_n, started = 0.0, 0, time.monotonic() - state.elapsed_s
    for batch in (loader if state.iteration < total and not state.stopped_early else ()):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=use_amp):
            logits = network(batch["image"].to(dev))
            loss = loss_fn(logits.float(), batch["label"].to(dev))
        scaler.scale(loss).backward()
        if cfg.training.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(network.parameters(), cfg.training.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        state.iteration += 1
        state.elapsed_s = time.monotonic() - started
        loss_sum, loss_n = loss_sum + float(loss.detach()), loss_n + 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss_sum / loss_n:.3f}", dice=f"{max(state.best_dice, 0):.3f}", refresh=False)
        validated = state.iteration % interval == 0 or state.iteration == total
        if validated:
            run_validation(loss_sum, loss_n)
            loss_sum, loss_n = 0.0, 0
            state.stopped_early = bool(cfg.validation.patience) and state.stale >= cfg.validation.patience
        if validated or state.iteration % cfg.training.checkpoint_interval == 0:
            save()
        if state.stopped_early:
            log.info("early stopping at iteration %d: no improvement in %d validations", state.iteration,
                     state.stale)
            break
    bar.close()
    if not state.history:  # resumed after the end without any validation on record
        run_validation(0.0, 0)
    save()
    return _finish(cfg, bconfig, network, state, dataset, train_cases, val_cases, validation_data, settings,
                   dev, out_dir, work, command, card_notes)


def _finish(cfg: TrainConfig, bconfig: dict[str, Any], network: torch.nn.Module, state: _State,
            dataset: Dataset, train_cases: Sequence[Case], val_cases: Sequence[Case],
            validation_data: Sequence[PreparedCase], settings: Any, dev: torch.device, out_dir: Path,
            work: Path, command: str | None, card_notes: str) -> TrainResult:
    """Evaluate the kept weights (raw and postprocessed) and publish the bundle."""
    if state.best_weights:
        network.load_state_dict(state.best_weights)
    raw = validate(network, validation_data, settings, dev)
    post = validate(network, validation_data, settings, dev, postprocess=True)
    table = raw.assign(dice_post=post["dice"].to_numpy())
    write_table(table, work / VALIDATION_FILE)
    dice_raw, dice_post = dice_summary(raw), dice_summary(post)
    record = {
        "config": cfg.name, "data": str(dataset.root), "layout": dataset.layout,
        "n_train": len(train_cases), "n_validation": len(val_cases),
        "validation_on_training_cases": list(val_cases) == list(train_cases),
        "iterations": state.iteration, "best_iteration": state.best_iteration,
        "stopped_early": state.stopped_early, "elapsed_min": round(state.elapsed_s / 60.0, 2),
        "device": str(dev), "seed": cfg.training.seed, "command": command,
        "validation_dice": {k: round(float(v), 4) for k, v in dice_raw.items()},
        "validation_dice_post": {k: round(float(v), 4) for k, v in dice_post.items()},
        "validation_mean_dice": round(float(np.nanmean(dice_raw.to_numpy())), 4),
        "validation_mean_dice_post": round(float(np.nanmean(dice_post.to_numpy())), 4),
        "train_config": cfg.to_dict(), **_versions(),
    }
    final = dict(bconfig, training=record)
    card = model_card(final, record=record, dice_raw=dice_raw, dice_post=dice_post, command=command,
                      notes=card_notes)
    extras = {name: work / name for name in (LOG_FILE, CURVE_FILE, VALIDATION_FILE)}
    bundle = _publish_bundle(out_dir, network.to("cpu"), final, card, extras)
    log.info("wrote %s: validation mean Dice %.3f (%.3f after postprocessing)", bundle,
             record["validation_mean_dice"], record["validation_mean_dice_post"])
    return TrainResult(bundle, state.iteration, state.best_iteration, dice_raw, dice_post, table,
                       pd.DataFrame(state.history), state.stopped_early, state.elapsed_s,
                       tuple(c.name for c in train_cases), tuple(c.name for c in val_cases))


def _init_from_bundle(network: torch.nn.Module, path: str) -> None:
    from myoscan.segment import load_bundle
    from myoscan.segment.bundle import load_weights_into

    bundle = load_bundle(path)
    load_weights_into(network, bundle.network.state_dict(), f"training.init_weights {path}")
    log.info("initialised the network from %s (fine-tuning)", path)


def _restore_split(
    dataset: Dataset, checkpoint: Mapping[str, Any],
) -> tuple[tuple[Case, ...], tuple[Case, ...]]:
    by_name = {c.name: c for c in dataset.all_cases}
    missing = [n for n in [*checkpoint["train_cases"], *checkpoint["validation_cases"]] if n not in by_name]
    if missing:
        raise InputError(f"cannot resume: cases {', '.join(missing[:5])} of the checkpoint are not in the "
                         "data any more; resume with the same data")
    return (tuple(by_name[n] for n in checkpoint["train_cases"]),
            tuple(by_name[n] for n in checkpoint["validation_cases"]))


def _check_compatible(checkpoint: Mapping[str, Any], bconfig: Mapping[str, Any], work: Path) -> None:
    saved = checkpoint.get("config", {})
    for key in ("architecture", "inputs", "labels", "preprocessing"):
        if saved.get(key) != bconfig.get(key):
            raise InputError(f"cannot resume from {work}: the configuration's {key!r} differs from the "
                             "checkpoint's; resume with the same config (only run length may change)")


def _restore(checkpoint: Mapping[str, Any], network: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: Any, scaler: Any) -> _State:
    network.load_state_dict(checkpoint["network"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    scaler.load_state_dict(checkpoint["scaler"])
    torch.set_rng_state(checkpoint["torch_rng"])
    log.info("resuming from iteration %d", checkpoint["iteration"])
    return _State(
        iteration=int(checkpoint["iteration"]), best_dice=float(checkpoint["best_dice"]),
        best_iteration=int(checkpoint["best_iteration"]),
        best_weights=dict(checkpoint["best_weights"]) or None, stale=int(checkpoint["stale"]),
        elapsed_s=float(checkpoint["elapsed_s"]), history=copy.deepcopy(list(checkpoint["history"])),
        stopped_early=bool(checkpoint["stopped_early"]),
    )
