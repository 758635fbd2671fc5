"""Progress bars on stderr (tqdm), switched off by ``--quiet`` or ``enabled=False``."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

__all__ = ["progress"]


def progress(
    iterable: Iterable[T],
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    enabled: bool = True,
) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar on stderr when ``enabled``.

    Parameters
    ----------
    iterable : iterable
        Items to iterate over.
    total : int, optional
        Number of items when ``len(iterable)`` is not available.
    desc : str, optional
        Label in front of the bar.
    unit : str
        Name of one item.
    enabled : bool
        ``False`` returns the items without any output.

    Examples
    --------
    >>> list(progress(range(3), enabled=False))
    [0, 1, 2]
    """
    if not enabled:
        yield from iterable
        return
    yield from tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                    dynamic_ncols=True)
