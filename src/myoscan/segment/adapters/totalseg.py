"""Import TotalSegmentator output (multi-label file or folder of masks) with catalog names.

TotalSegmentator writes either one label map whose values are the class ids of its task
(``--ml``) or one binary mask per class named after the class. Both are read into one
label map numbered with the task's class ids (catalog schemes ``ts_total`` /
``ts_total_mr``), and every class the catalog knows gets its canonical name
(``autochthon_left`` -> ``erector_spinae_left``, ``hip_left`` -> ``iliac_bone_left``);
classes outside the catalog (organs) keep TotalSegmentator's name.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from myoscan._typing import PathLike
from myoscan.errors import InputError
from myoscan.io import Volume, check_same_grid, read_mask_folder, read_volume, require_3d
from myoscan.segment.predict import Segmentation

__all__ = ["TS_TASKS", "import_totalsegmentator"]

log = logging.getLogger(__name__)

#: TotalSegmentator tasks whose class ids the catalog knows, and the matching scheme.
TS_TASKS = {"total": "ts_total", "total_mr": "ts_total_mr"}


def _hash(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _canonical(name: str) -> str:
    from myoscan.labels import load_catalog

    try:
        return load_catalog().resolve(name).name
    except InputError:
        return name


def import_totalsegmentator(
    path: PathLike, *, task: str = "total", reference: Volume | None = None,
) -> Segmentation:
    """Read TotalSegmentator output and name its labels with catalog names.

    Parameters
    ----------
    path : str or os.PathLike
        Multi-label NIfTI (values = class ids of ``task``) or a folder of per-class masks.
    task : {'total', 'total_mr'}
        The TotalSegmentator task that produced the output (class ids differ between them).
    reference : Volume, optional
        The segmented image; the labels must lie on its grid and are returned on it.

    Returns
    -------
    Segmentation
        Values are ``task`` class ids (scheme ``ts_total`` / ``ts_total_mr``); for a folder
        with masks outside the task (e.g. ``tissue_types``), values 1..N in file-name order.

    Raises
    ------
    InputError
        Unknown task, unreadable files, values that are not class ids of ``task``.
    GeometryMismatchError
        When the labels are not on the grid of ``reference``.
    """
    from myoscan.labels import load_catalog

    if task not in TS_TASKS:
        raise InputError(f"unknown TotalSegmentator task {task!r}; expected one of {', '.join(TS_TASKS)}")
    catalog = load_catalog()
    classes = catalog.ts_class_names(task)
    source = Path(path)
    if source.is_dir():
        labels, file_names = read_mask_folder(source)
        files = [p for p in source.iterdir() if p.is_file() and p.name.endswith((".nii.gz", ".nii", ".nrrd"))]
        id_of = {name: i for i, name in classes.items()}
        if all(name in id_of for name in file_names.values()):
            lut = np.zeros(max(file_names) + 1, dtype=np.uint16 if max(classes) > 255 else np.uint8)
            for number, name in file_names.items():
                lut[number] = id_of[name]
            labels = labels.with_array(lut[labels.array])
            names = dict(sorted((id_of[n], _canonical(n)) for n in file_names.values()))
            scheme: str | None = TS_TASKS[task]
        else:
            log.info("%s: masks are not all %r classes; numbering them 1..N by file name", source, task)
            names = {number: _canonical(n) for number, n in file_names.items()}
            scheme = None
    else:
        labels = require_3d(read_volume(source))
        files = [source]
        if not np.issubdtype(labels.array.dtype, np.integer):
            rounded = np.rint(labels.array)
            if not np.array_equal(rounded, labels.array):
                raise InputError(f"{source.name}: holds non-integer values; expected a label map")
            labels = labels.with_array(rounded.astype(np.int32))
        present = sorted(int(v) for v in np.unique(labels.array) if v != 0)
        unknown = [v for v in present if v not in classes]
        if unknown:
            raise InputError(
                f"{source.name}: values {unknown[:10]} are not TotalSegmentator {task!r} class ids; "
                "check the task (total / total_mr) or pass the mask folder"
            )
        all_names = catalog.label_names(TS_TASKS[task])
        names = {v: all_names[v] for v in present}
        scheme = TS_TASKS[task]
    if reference is not None:
        check_same_grid(reference, labels)
        labels = reference.with_array(labels.array)
    info = {"name": f"TotalSegmentator {task} (imported)", "kind": "totalsegmentator", "task": task,
            "source": str(source), "sha256": _hash(files)}
    return Segmentation(labels, names, scheme, info)
