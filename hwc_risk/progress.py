"""Progress bars for long steps, on an interactive terminal only.

Schedulers and ``--quiet`` get none: bars appear when stderr is a terminal
and :func:`enable` was called (the command line does it).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tqdm import tqdm

__all__ = ["enable", "progress", "progress_bar", "quiet"]

T = TypeVar("T")
_ENABLED = False
_LOCAL = threading.local()  # bars silenced in this thread (tasks running side by side)


def enable(on: bool = True) -> None:
    global _ENABLED
    _ENABLED = on


def _shown() -> bool:
    return _ENABLED and not getattr(_LOCAL, "quiet", False) and sys.stderr.isatty()


@contextmanager
def quiet() -> Iterator[None]:
    """No bars from this thread inside the block: tasks that run side by side report
    through one bar of their own, not one each."""
    before = getattr(_LOCAL, "quiet", False)
    _LOCAL.quiet = True
    try:
        yield
    finally:
        _LOCAL.quiet = before


def progress(
    items: Iterable[T], desc: str, total: int | None = None, unit: str = "it"
) -> Iterator[T]:
    """``items``, with a progress bar (rate and time left) when enabled on a terminal."""
    if not _shown():
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, unit=unit, leave=False, dynamic_ncols=True)


class _Silent:
    def update(self, n: int = 1) -> None:
        pass


@contextmanager
def progress_bar(desc: str, total: int, unit: str = "it") -> Iterator[Any]:
    """A bar to ``update(n)`` by hand (e.g. cells per chunk): rate in units/s and time left."""
    if not _shown():
        yield _Silent()
        return
    with tqdm(
        desc=desc,
        total=total,
        unit=unit,
        unit_scale=True,
        leave=False,
        dynamic_ncols=True,
    ) as bar:
        yield bar
