"""Writing results safely: every output appears complete or not at all.

Files are written to a temporary name in the destination folder and renamed
(``os.replace``, atomic on POSIX) once complete, so a crash, a kill or an error
never leaves a half-written file behind, and an existing file is only replaced
by a complete new one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from myoscan._typing import PathLike
from myoscan.errors import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "atomic_path",
    "normal_permissions",
    "read_table",
    "to_jsonable",
    "write_figure",
    "write_json",
    "write_output_set",
    "write_table",
    "write_text",
]


def _double_suffix(path: Path) -> str:
    """``.nii.gz`` for ``a.nii.gz``, ``.csv`` for ``a.csv`` (writers dispatch on it)."""
    suffixes = path.suffixes
    if len(suffixes) >= 2 and suffixes[-1] in {".gz", ".bz2", ".xz"}:
        return "".join(suffixes[-2:])
    return path.suffix


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Read once at import: os.umask() can only be read by setting it, which is not thread-safe.
_UMASK = _read_umask()


def normal_permissions(path: PathLike) -> Path:
    """Give ``path`` (and, for a folder, everything in it) the permissions plain creation would.

    Temporary files and folders (``mkstemp``/``mkdtemp``) are private (0600/0700); outputs
    renamed from them must be readable like any other file the user writes.
    """
    root = Path(path)
    paths = [root, *root.rglob("*")] if root.is_dir() else [root]
    for item in paths:
        os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~_UMASK)
    return root


def _writable_folder(folder: Path) -> Path:
    """Create ``folder`` (and its parents) if missing; InputError when that is impossible."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
        reason = (f"{blocker} is a file, not a folder" if blocker is not None and not blocker.is_dir()
                  else exc.strerror or str(exc))
        raise InputError(f"cannot write to {folder} ({reason}); choose another output location") from exc
    return folder


def _check_file_target(path: Path) -> None:
    """Refuse a destination that is an existing folder (it cannot be replaced by a file)."""
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder; give a file name")


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The temporary name keeps the extension of ``path`` (``x.nii.gz`` ->
    ``.x.<random>.tmp.nii.gz``) so writers that dispatch on the extension work.
    On any exception the temporary file is removed and ``path`` is untouched.

    Parameters
    ----------
    path : str or os.PathLike
        Final destination. Its parent folder is created if missing.

    Yields
    ------
    pathlib.Path
        Where to write.

    Raises
    ------
    InputError
        If the destination is a folder, or its folder cannot be created or written to.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> out.read_text()
    'done'
    """
    final = Path(path)
    _check_file_target(final)
    _writable_folder(final.parent)
    suffix = _double_suffix(final)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name[: len(final.name) - len(suffix)]}.",
                                        suffix=f".tmp{suffix}", dir=final.parent)
    except OSError as exc:
        raise InputError(f"cannot write {final} ({exc.strerror or exc}); choose another output "
                         "location") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        normal_permissions(tmp)
        try:
            os.replace(tmp, final)
        except OSError as exc:
            raise InputError(f"cannot write {final} ({exc.strerror or exc})") from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_text(text: str, path: PathLike) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8) and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_figure(figure: Figure, path: PathLike, *, dpi: float | None = None) -> Path:
    """Write a matplotlib figure as a PNG atomically, then close it.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure; closed afterwards (also on failure) if pyplot manages it. Figures made
        with the object-oriented API need no closing and are left as they are.
    path : str or os.PathLike
        Destination PNG; its folder is created. Nothing is left behind on failure.
    dpi : float, optional
        Resolution in dots per inch; matplotlib's ``savefig.dpi`` (by default the
        figure's own) when omitted.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from matplotlib.figure import Figure
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "plots" / "empty.png"
    >>> write_figure(Figure(figsize=(1, 1)), out, dpi=50).read_bytes()[1:4]
    b'PNG'
    """
    options = {} if dpi is None else {"dpi": dpi}
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", **options)
    finally:
        pyplot = sys.modules.get("matplotlib.pyplot")  # only pyplot keeps figures alive
        if pyplot is not None:
            pyplot.close(figure)
    return Path(path)


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, paths and missing values into plain JSON values (NaN, NA -> null)."""
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(data: Any, path: PathLike, *, indent: int = 2) -> Path:
    """Write ``data`` as JSON atomically; NaN/Inf become ``null``."""
    return write_text(json.dumps(to_jsonable(data), indent=indent, allow_nan=False) + "\n", path)


def write_table(table: pd.DataFrame, path: PathLike, *, index: bool = False) -> Path:
    """Write a table by extension (``.csv``, ``.tsv``, ``.parquet``) atomically.

    Missing values are written as empty fields in CSV/TSV (``n/a`` is not used so
    that pandas, R and spreadsheets read them back as missing).
    """
    final = Path(path)
    suffix = final.suffix.lower()
    with atomic_path(final) as tmp:
        if suffix == ".parquet":
            table.to_parquet(tmp, index=index)
        elif suffix == ".tsv":
            table.to_csv(tmp, sep="\t", index=index)
        elif suffix == ".csv":
            table.to_csv(tmp, index=index)
        else:
            raise InputError(f"{final.name}: unknown table format {suffix!r}; use .csv, .tsv or .parquet")
    return final


def read_table(path: PathLike) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet table with a one-line error when it cannot be read."""
    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: no such file; check the path")
    suffix = source.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(source)
        sep = "\t" if suffix == ".tsv" else None
        return pd.read_csv(source, sep=sep, engine="python" if sep is None else "c",
                           na_values=["n/a", "NA", "NaN", ""])
    except (ValueError, OSError, pd.errors.ParserError, csv.Error) as exc:  # csv.Error: empty file, sniffer
        raise InputError(f"{source.name}: cannot read table ({exc}); expected CSV, TSV or Parquet") from exc


def write_output_set(writers: Mapping[Path, Callable[[Path], object]]) -> list[Path]:
    """Write several output files so that they appear together or not at all.

    Every file is first written into a hidden staging folder beside its destination; only
    when all succeeded are they moved into place (renames within one file system).

    Parameters
    ----------
    writers : mapping of Path to callable
        Destination -> function writing that file to the path it is given.

    Returns
    -------
    list of Path
        The destinations.
    """
    for target in writers:
        _check_file_target(target)
    staging: dict[Path, Path] = {}
    try:
        for target, write in writers.items():
            if target.parent not in staging:
                _writable_folder(target.parent)
                try:
                    staging[target.parent] = Path(tempfile.mkdtemp(prefix=".myoscan-staging-",
                                                                   dir=target.parent))
                except OSError as exc:
                    raise InputError(f"cannot write to {target.parent} ({exc.strerror or exc}); choose "
                                     "another output location") from exc
            write(staging[target.parent] / target.name)
        for target in writers:
            try:
                os.replace(normal_permissions(staging[target.parent] / target.name), target)
            except OSError as exc:
                raise InputError(f"cannot write {target} ({exc.strerror or exc})") from exc
    finally:
        for folder in staging.values():
            with contextlib.suppress(OSError):
                shutil.rmtree(folder)
    return list(writers)
