"""Progress bars for long steps, on an interactive terminal only.

Schedulers and ``--quiet`` get none: bars appear when stderr is a terminal
and :func:`enable` was called (the command line does it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

__all__ = ["enable", "progress"]

T = TypeVar("T")
_ENABLED = False


def enable(on: bool = True) -> None:
    global _ENABLED
    _ENABLED = on


def progress(
    items: Iterable[T], desc: str, total: int | None = None, unit: str = "it"
) -> Iterator[T]:
    """``items``, with a progress bar (rate and time left) when enabled on a terminal."""
    if not (_ENABLED and sys.stderr.isatty()):
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, unit=unit, leave=False, dynamic_ncols=True)
