"""Models from elsewhere: nnU-Net v2 folders, MuscleMap checkpoints, TotalSegmentator output.

:func:`run_model` is the one entry point the CLI and pipeline use: it takes a model
spec -- a bundle folder or name, ``nnunet:PATH``, ``musclemap:PATH`` or
``totalseg:PATH`` -- and the input images by contrast, and returns a
:class:`~myoscan.segment.predict.Segmentation` on the input grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from myoscan._typing import PathLike
from myoscan.errors import InputError
from myoscan.io import Volume
from myoscan.segment.predict import Segmentation

__all__ = [
    "MODEL_PREFIXES", "RunOptions", "assign_inputs", "load_model", "model_contrasts", "parse_model_spec",
    "run_model",
]

#: ``--model`` prefixes and the adapter they select.
MODEL_PREFIXES = {"nnunet": "nnunet", "musclemap": "musclemap", "totalseg": "totalseg",
                  "totalsegmentator": "totalseg", "bundle": "bundle"}

ModelKind = Literal["bundle", "nnunet", "musclemap", "totalseg"]


@dataclass(frozen=True)
class RunOptions:
    """Run settings shared by all model kinds (each uses the ones that apply to it)."""

    device: str = "auto"
    overlap: float | None = None
    sw_batch_size: int | None = None
    chunk_slices: int | None = None
    use_onnx: bool = False
    mirroring: bool = True
    ts_task: str = "total"
    show_progress: bool = True


def parse_model_spec(spec: str) -> tuple[ModelKind, str]:
    """Split ``kind:PATH``; anything without a known prefix is a bundle folder or name.

    Examples
    --------
    >>> parse_model_spec("nnunet:/models/Dataset1")
    ('nnunet', '/models/Dataset1')
    >>> parse_model_spec("leg-demo")
    ('bundle', 'leg-demo')
    >>> parse_model_spec("C:/models/x")[0]
    'bundle'
    """
    prefix, sep, rest = str(spec).partition(":")
    if sep and prefix.lower() in MODEL_PREFIXES and rest:
        return MODEL_PREFIXES[prefix.lower()], rest  # type: ignore[return-value]
    return "bundle", str(spec)


def assign_inputs(
    contrasts: Sequence[str], image: Volume | None, named: Mapping[str, Volume],
) -> dict[str, Volume]:
    """Match the positional image and named contrasts (``--water`` ...) to a model's contrasts.

    Named contrasts go to the channels of that name; the positional image fills the one
    channel left. Anything else is a one-line error saying what the model takes.

    Raises
    ------
    InputError
        Missing, surplus or unknown contrasts.
    """
    from myoscan.segment.config import canonical_contrast

    wanted = list(contrasts)
    named = {canonical_contrast(k): v for k, v in named.items()}
    lookup = {canonical_contrast(c): c for c in wanted}  # nnU-Net channel names keep their spelling
    named = {lookup.get(k, k): v for k, v in named.items()}
    assigned = {c: named[c] for c in wanted if c in named}
    extra = [c for c in named if c not in wanted]
    missing = [c for c in wanted if c not in assigned]
    if image is not None and len(missing) == 1:
        assigned[missing.pop()] = image
        image = None
    flag_of = {"water": "--water", "fat": "--fat", "inphase": "--in-phase", "outphase": "--opposed-phase"}
    flags = ", ".join(flag_of.get(canonical_contrast(c), f"{c} (IMAGE)") for c in wanted)
    if missing or extra or image is not None:
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if extra:
            problems.append(f"not used by this model: {', '.join(extra)}")
        if image is not None:
            problems.append("the positional IMAGE fills one missing channel only; give each contrast "
                            "with its flag" if missing else "the positional IMAGE has no channel left to fill")
        raise InputError(f"the model takes {len(wanted)} contrast(s): {flags}; {'; '.join(problems)}")
    return {c: assigned[c] for c in wanted}


def model_contrasts(kind: ModelKind, model: object) -> list[str]:
    """Input contrasts of a loaded model, in channel order."""
    if kind == "nnunet":
        return list(model.channel_names)  # type: ignore[attr-defined]
    return list(model.settings.contrasts)  # type: ignore[attr-defined]


def load_model(spec: str, *, models_dirs: Sequence[PathLike] = ()) -> tuple[ModelKind, object]:
    """Load the model a spec names (not used for ``totalseg``, which is an import)."""
    kind, target = parse_model_spec(spec)
    if kind == "nnunet":
        from myoscan.segment.adapters.nnunet import load_nnunet_model

        return kind, load_nnunet_model(target)
    if kind == "musclemap":
        from myoscan.segment.adapters.musclemap import load_musclemap_model

        return kind, load_musclemap_model(target)
    if kind == "totalseg":
        return kind, target
    from myoscan.segment.bundle import load_bundle, resolve_bundle

    return kind, load_bundle(resolve_bundle(target, models_dirs))


def run_model(
    spec: str,
    image: Volume | None,
    named: Mapping[str, Volume] | None = None,
    *,
    options: RunOptions = RunOptions(),
    models_dirs: Sequence[PathLike] = (),
) -> Segmentation:
    """Segment (or import a segmentation) with any supported model.

    Parameters
    ----------
    spec : str
        Bundle folder or name, ``nnunet:PATH``, ``musclemap:PATH`` or ``totalseg:PATH``.
    image : Volume, optional
        The positional image (also the reference grid for ``totalseg``).
    named : mapping of str to Volume, optional
        Images by contrast (``water``, ``fat``, ``inphase``, ``outphase``; other spellings
        such as ``in_phase`` are accepted).
    options : RunOptions
        Device, overlap, ONNX, chunking, mirroring, TotalSegmentator task, progress.
    models_dirs : sequence of path
        Extra folders searched for bundle names.

    Raises
    ------
    InputError, ModelError
        Bad inputs or model (one-line messages).
    """
    named = dict(named or {})
    kind, model = load_model(spec, models_dirs=models_dirs)
    if kind == "totalseg":
        from myoscan.segment.adapters.totalseg import import_totalsegmentator

        if named:
            raise InputError("a TotalSegmentator import takes only the positional IMAGE (its grid), "
                             f"not {', '.join(named)}")
        return import_totalsegmentator(model, task=options.ts_task, reference=image)  # type: ignore[arg-type]
    inputs = assign_inputs(model_contrasts(kind, model), image, named)
    if kind == "nnunet":
        from myoscan.segment.adapters.nnunet import segment_nnunet

        return segment_nnunet(inputs, model, device=options.device,  # type: ignore[arg-type]
                              overlap=0.5 if options.overlap is None else options.overlap,
                              mirroring=options.mirroring, show_progress=options.show_progress)
    from myoscan.segment.predict import segment_volumes

    segmentation = segment_volumes(
        inputs, model, device=options.device, overlap=options.overlap,  # type: ignore[arg-type]
        sw_batch_size=options.sw_batch_size, chunk_slices=options.chunk_slices, use_onnx=options.use_onnx,
        show_progress=options.show_progress,
    )
    if kind == "musclemap":
        segmentation.model["kind"] = "musclemap"
    return segmentation
