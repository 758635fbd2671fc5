"""Provenance records: what produced a derivative, so a re-run can skip finished work.

A record holds the myoscan version, the model bundle hash, the SHA-256 of every input
file, all parameters, start/end time and host. It deliberately holds no patient
identifiers: only file names relative to the dataset, hashes and parameters.
"""

from __future__ import annotations

import hashlib
import json
import platform
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from myoscan import __version__
from myoscan._typing import PathLike
from myoscan.outputs import to_jsonable

__all__ = ["file_sha256", "fingerprint", "make_record", "matches", "read_record"]

_CHUNK = 1 << 20


def file_sha256(path: PathLike) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> file_sha256(p)[:12]
    'ba7816bf8f01'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(inputs: Mapping[str, str], parameters: Mapping[str, Any]) -> str:
    """One hash over input hashes, parameters and the myoscan version."""
    payload = json.dumps(
        {
            "inputs": dict(sorted(inputs.items())),
            "parameters": to_jsonable(parameters),
            "version": __version__,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def make_record(
    *,
    inputs: Mapping[str, str],
    parameters: Mapping[str, Any],
    outputs: list[str],
    started: datetime,
    finished: datetime,
    model_sha256: str | None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """Build the provenance dictionary written next to a subject's derivatives."""
    import numpy

    return {
        "myoscan_version": __version__,
        "fingerprint": fingerprint(inputs, parameters),
        "model_sha256": model_sha256,
        "dataset": dataset,
        "inputs_sha256": dict(sorted(inputs.items())),
        "parameters": to_jsonable(parameters),
        "outputs": sorted(outputs),
        "started": started.astimezone(UTC).isoformat(timespec="seconds"),
        "finished": finished.astimezone(UTC).isoformat(timespec="seconds"),
        "seconds": round((finished - started).total_seconds(), 3),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }


def read_record(path: PathLike) -> dict[str, Any] | None:
    """Load a provenance record, or ``None`` if missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def matches(record: Mapping[str, Any] | None, expected_fingerprint: str, folder: PathLike) -> bool:
    """Return True if ``record`` has ``expected_fingerprint`` and all its outputs exist in ``folder``."""
    if not record or record.get("fingerprint") != expected_fingerprint:
        return False
    return all((Path(folder) / name).is_file() for name in record.get("outputs", []))


def now() -> datetime:
    """Return the current time, timezone-aware (UTC)."""
    return datetime.now(UTC)
