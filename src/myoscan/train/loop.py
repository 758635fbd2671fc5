"""The training loop: cached MONAI data, seeded sampling, DiceCE, validation, checkpoints.

Reproducibility and resume rest on one rule: the training samples of iteration ``i`` are a
pure function of ``(seed, i)`` (:mod:`myoscan.train.sampling`), so a resumed run needs only
the iteration counter, the optimiser/scheduler/AMP states and the torch RNG (dropout) from
the checkpoint to continue exactly where it stopped -- the weights match an uninterrupted
run bit for bit on the CPU.

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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from myoscan._typing import PathLike
from myoscan.errors import InputError, MyoscanError
from myoscan.outputs import atomic_path, write_table
from myoscan.train.augment import swap_lookup
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
from myoscan.train.sampling import SampleKeys, Samples, collate, sample_transform, split_cases

__all__ = ["TrainResult", "lr_factor", "train", "validate", "work_dir_of"]

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


# --------------------------------------------------------------------------- schedule, optimiser, loss


def lr_factor(config: TrainConfig, total: int) -> Callable[[int], float]:
    """Learning-rate multiplier of iteration ``i`` (0-based) for the configured schedule."""
    t = config.training
    milestones = [round(m * total) for m in t.milestones]

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
    from myoscan.evaluate import EvaluateConfig, evaluate_segmentation
    from myoscan.segment.inference import predict_labels, torch_predictor
    from myoscan.segment.postprocess import postprocess_labels

    names = dict(settings.labels)
    n_classes = max(names) + 1
    overlap_only = EvaluateConfig(labels=tuple(sorted(names)), distances=False)
    predictor = torch_predictor(network, device)
    tables = []
    for case in cases:
        pred = predict_labels(case.image, predictor, settings.inference, n_classes, device=device,
                              show_progress=False)
        if postprocess:
            pred = postprocess_labels(pred, case.image.input_affine, names, settings.postprocessing)
        table = evaluate_segmentation(pred, case.label_input, case.spacing_mm, names=names,
                                      config=overlap_only)
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
    """Everything about a run's progress that a checkpoint must carry."""

    iteration: int = 0
    best_dice: float = -1.0
    best_iteration: int = 0
    best_weights: dict[str, torch.Tensor] | None = None
    stale: int = 0
    elapsed_s: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False


@dataclass
class _Run:
    """The objects of one training run, built by :func:`_setup`."""

    cfg: TrainConfig
    bconfig: dict[str, Any]
    settings: Any
    train_cases: tuple[Case, ...]
    val_cases: tuple[Case, ...]
    validation_data: list[PreparedCase]
    samples: Samples
    network: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    loss_fn: torch.nn.Module
    device: torch.device
    use_amp: bool
    total: int
    interval: int
    per_epoch: int
    work: Path
    state: _State


def _resolve_dataset(data: PathLike | Sequence[PathLike] | Dataset, config: TrainConfig,
                     validation: PathLike | Sequence[PathLike] | None) -> Dataset:
    if isinstance(data, Dataset):
        dataset = data
        if validation is not None:
            extra = find_dataset(validation, config.inputs.contrasts)
            dataset = Dataset(data.root, data.layout, data.cases, extra.all_cases, data.sources)
    else:
        dataset = find_dataset(data, config.inputs.contrasts, validation=validation)
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


@contextmanager
def _unwrap_transform_errors() -> Iterator[None]:
    """Re-raise a myoscan error that MONAI wrapped while applying a transform.

    MONAI's ``apply_transform`` turns every exception of a transform into
    ``RuntimeError("applying transform ...")``; a case that fails preparation (no voxel
    spacing, NaN voxels, non-integer labels) must still end in its own one-line error.
    """
    try:
        yield
    except RuntimeError as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, MyoscanError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise cause from None


def _setup(cfg: TrainConfig, dataset: Dataset, work: Path, resume: bool, device: str,
           show_progress: bool) -> _Run:
    """Split, cache and prepare the data; build network, optimiser, schedule; restore a checkpoint."""
    from monai.data import CacheDataset
    from monai.transforms import Compose, FgBgToIndicesd
    from monai.utils import set_determinism

    from myoscan.labels import load_catalog
    from myoscan.segment import build_network, parse_config
    from myoscan.segment.inference import select_device

    structures = output_structures(cfg)
    bconfig = bundle_config(cfg, structures=structures)
    settings = parse_config(bconfig)
    checkpoint = _load_checkpoint(work / CHECKPOINT) if resume and (work / CHECKPOINT).exists() else None
    if checkpoint is not None:
        _check_compatible(checkpoint, bconfig, work)
        train_cases, val_cases = _restore_split(dataset, checkpoint)
    else:
        if resume:
            log.warning("no checkpoint in %s; starting a new run", work)
        train_cases, val_cases = split_cases(dataset, cfg.validation.fraction, cfg.training.seed)
    set_determinism(seed=cfg.training.seed)
    dev = select_device(device)
    log.info("training %s on %d cases, validating on %d (%s data, %s)", cfg.name, len(train_cases),
             len(val_cases), dataset.layout, dev)

    lookup = channel_lookup(structures, cfg.labels.scheme, cfg.labels.source_scheme)
    prepare: list[Any] = [PrepareCased(settings, lookup, cfg.sampling.roi_size)]
    if cfg.sampling.strategy == "pos_neg":  # indices once at caching, not at every crop
        prepare.append(FgBgToIndicesd("label", fg_postfix="fg", bg_postfix="bg"))
    cache = CacheDataset(case_dicts(train_cases), Compose(prepare), cache_rate=cfg.training.cache_rate,
                         num_workers=1, progress=show_progress, copy_cache=False)
    validation_data = [prepare_case(c, settings, lookup) for c in val_cases]
    spacing = np.linalg.norm(validation_data[0].image.affine[:3, :3], axis=0)
    catalog = load_catalog()
    swap = swap_lookup(structures, {n: catalog.structure(n).counterpart for n in structures})
    samples = Samples(cache, sample_transform(cfg, settings.spatial_dims, spacing, swap),
                      cfg.training.seed, cfg.training.batch_size)

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
    state = _State() if checkpoint is None else _restore(checkpoint, network, optimizer, scheduler, scaler)
    work.mkdir(parents=True, exist_ok=True)
    return _Run(cfg, bconfig, settings, tuple(train_cases), tuple(val_cases), validation_data, samples,
                network, optimizer, scheduler, scaler, _loss(cfg), dev, use_amp, total, interval, per_epoch,
                work, state)


def _save(run: _Run) -> None:
    st = run.state
    _save_checkpoint(run.work / CHECKPOINT, {
        "iteration": st.iteration, "network": run.network.state_dict(),
        "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(), "best_weights": st.best_weights or {},
        "best_dice": st.best_dice, "best_iteration": st.best_iteration, "stale": st.stale,
        "elapsed_s": st.elapsed_s, "history": st.history, "stopped_early": st.stopped_early,
        "torch_rng": torch.get_rng_state(), "config": run.bconfig,
        "train_cases": [c.name for c in run.train_cases],
        "validation_cases": [c.name for c in run.val_cases],
    })


def _validation_step(run: _Run, mean_loss: float) -> None:
    """Validate, keep the best weights, count stale validations, log a row, redraw the curve."""
    st = run.state
    per_label = dice_summary(validate(run.network, run.validation_data, run.settings, run.device))
    run.network.train()
    mean = float(np.nanmean(per_label.to_numpy())) if per_label.notna().any() else 0.0
    improved = mean > st.best_dice + run.cfg.validation.min_delta
    if improved:
        st.best_dice, st.best_iteration, st.stale = mean, st.iteration, 0
        st.best_weights = {k: v.detach().to("cpu").clone() for k, v in run.network.state_dict().items()}
    else:
        st.stale += 1
    row = {"iteration": st.iteration, "epoch": round(st.iteration / run.per_epoch, 3),
           "elapsed_min": round(st.elapsed_s / 60.0, 3), "lr": float(run.scheduler.get_last_lr()[0]),
           "train_loss": mean_loss, "val_mean_dice": mean, "best": improved}
    row.update({f"dice_{k}": float(v) for k, v in per_label.items()})
    st.history.append(row)
    history = pd.DataFrame(st.history)
    write_table(history, run.work / LOG_FILE)
    plot_learning_curve(history, run.work / CURVE_FILE, run.cfg.name)
    st.stopped_early = bool(run.cfg.validation.patience) and st.stale >= run.cfg.validation.patience


def _step(run: _Run, batch: Mapping[str, torch.Tensor]) -> float:
    """One optimisation step (AMP on CUDA); returns the loss."""
    run.optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=run.device.type, dtype=torch.float16, enabled=run.use_amp):
        logits = run.network(batch["image"].to(run.device))
    loss = run.loss_fn(logits.float(), batch["label"].to(run.device))
    run.scaler.scale(loss).backward()
    if run.cfg.training.grad_clip:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.network.parameters(), run.cfg.training.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    return float(loss.detach())


def _fit(run: _Run, show_progress: bool) -> None:
    """Iterate until the run length or early stopping; validate and checkpoint on schedule."""
    from tqdm.auto import tqdm

    st, t = run.state, run.cfg.training
    if st.iteration >= run.total or st.stopped_early:
        return
    loader = torch.utils.data.DataLoader(
        run.samples, batch_size=t.batch_size, sampler=SampleKeys(st.iteration, run.total, t.batch_size),
        collate_fn=collate, num_workers=t.num_workers,
        # its own generator: creating a loader iterator draws a base seed, which must not come
        # from the global torch RNG (dropout) or a resumed run would diverge from a straight one
        generator=torch.Generator().manual_seed(t.seed),
    )
    run.network.train()
    bar = tqdm(total=run.total, initial=st.iteration, desc=f"training {run.cfg.name}", unit="it",
               file=sys.stderr, disable=not show_progress, dynamic_ncols=True, leave=False)
    loss_sum, loss_n, started = 0.0, 0, time.monotonic() - st.elapsed_s
    for batch in loader:
        loss_sum, loss_n = loss_sum + _step(run, batch), loss_n + 1
        st.iteration += 1
        st.elapsed_s = time.monotonic() - started
        bar.update(1)
        bar.set_postfix(loss=f"{loss_sum / loss_n:.3f}", dice=f"{max(st.best_dice, 0.0):.3f}", refresh=False)
        validated = st.iteration % run.interval == 0 or st.iteration == run.total
        if validated:
            _validation_step(run, loss_sum / loss_n)
            loss_sum, loss_n = 0.0, 0
        if validated or st.iteration % t.checkpoint_interval == 0:
            _save(run)
        if st.stopped_early:
            log.info("early stopping at iteration %d: no improvement in %d validations", st.iteration,
                     st.stale)
            break
    bar.close()


def train(
    config: TrainConfig | str | PathLike,
    data: PathLike | Sequence[PathLike] | Dataset,
    out_dir: PathLike,
    *,
    validation_data: PathLike | Sequence[PathLike] | None = None,
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
    data : path, sequence of paths or Dataset
        BIDS dataset(s), datalist JSON(s) or folder(s) of pairs
        (:func:`myoscan.train.data.find_dataset`); several are pooled.
    out_dir : str or os.PathLike
        Bundle folder to write; checkpoints go to ``<out_dir>.training/``.
    validation_data : path or sequence of paths, optional
        Separate validation data (default: the data's own validation list, else a seeded
        ``validation.fraction`` of the cases).
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
        Extra markdown for the model card's "Intended use and limits" (after the config's
        ``model_card_notes``).

    Returns
    -------
    TrainResult

    Raises
    ------
    InputError
        Bad configuration or data (missing labels, mismatched geometry), an existing output
        folder without ``resume``, or a checkpoint that does not fit the configuration.
    """
    cfg = config if isinstance(config, TrainConfig) else load_config(config)
    if max_iterations is not None:
        cfg = load_config(cfg, {"training": {"max_iterations": int(max_iterations), "max_epochs": None}})
    out_dir, work = Path(out_dir), work_dir_of(out_dir)
    _check_outputs(out_dir, work, resume)
    dataset = _resolve_dataset(data, cfg, validation_data)
    with _unwrap_transform_errors():
        run = _setup(cfg, dataset, work, resume, device, show_progress)
        _fit(run, show_progress)
    if not run.state.history:  # resumed a finished run that never validated
        _validation_step(run, float("nan"))
    _save(run)
    if isinstance(validation_data, (str, os.PathLike)):
        validation_data = [validation_data]
    held_out = None if validation_data is None else [str(p) for p in validation_data]
    return _finish(run, dataset, held_out, out_dir, command, card_notes)


def _finish(run: _Run, dataset: Dataset, validation_data: list[str] | None, out_dir: Path,
            command: str | None, card_notes: str) -> TrainResult:
    """Evaluate the kept weights (raw and postprocessed) and publish the bundle."""
    st, cfg = run.state, run.cfg
    if st.best_weights:
        run.network.load_state_dict(st.best_weights)
    raw = validate(run.network, run.validation_data, run.settings, run.device)
    post = validate(run.network, run.validation_data, run.settings, run.device, postprocess=True)
    table = raw.assign(dice_post=post["dice"].to_numpy())
    write_table(table, run.work / VALIDATION_FILE)
    dice_raw, dice_post = dice_summary(raw), dice_summary(post)
    record = {
        "config": cfg.name, "data": [str(p) for p in dataset.sources or (dataset.root,)],
        "layout": dataset.layout, "validation_data": validation_data,
        "n_train": len(run.train_cases), "n_validation": len(run.val_cases),
        "validation_on_training_cases": run.val_cases == run.train_cases,
        "iterations": st.iteration, "best_iteration": st.best_iteration,
        "stopped_early": st.stopped_early, "elapsed_min": round(st.elapsed_s / 60.0, 2),
        "device": str(run.device), "seed": cfg.training.seed, "command": command,
        "validation_dice": {k: round(float(v), 4) for k, v in dice_raw.items()},
        "validation_dice_post": {k: round(float(v), 4) for k, v in dice_post.items()},
        "validation_mean_dice": round(float(np.nanmean(dice_raw.to_numpy())), 4),
        "validation_mean_dice_post": round(float(np.nanmean(dice_post.to_numpy())), 4),
        "train_config": cfg.to_dict(), **_versions(),
    }
    final = dict(run.bconfig, training=record)
    notes = "\n\n".join(n.strip() for n in (cfg.model_card_notes, card_notes) if n.strip())
    card = model_card(final, record=record, dice_raw=dice_raw, dice_post=dice_post, command=command,
                      notes=notes)
    extras = {name: run.work / name for name in (LOG_FILE, CURVE_FILE, VALIDATION_FILE)}
    bundle = _publish_bundle(out_dir, run.network.to("cpu"), final, card, extras)
    log.info("wrote %s: validation mean Dice %.3f (%.3f after postprocessing)", bundle,
             record["validation_mean_dice"], record["validation_mean_dice_post"])
    return TrainResult(bundle, st.iteration, st.best_iteration, dice_raw, dice_post, table,
                       pd.DataFrame(st.history), st.stopped_early, st.elapsed_s,
                       tuple(c.name for c in run.train_cases), tuple(c.name for c in run.val_cases))


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
