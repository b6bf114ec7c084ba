"""Months: the unit a monthly run works in.

A run maps one :class:`Month` from the incidents dated up to its end; its
validation holds out earlier months (rolling origin) and history features
describe a month from the months before it. One small type carries a month
through every stage, so the run's month, a held-out month and the month a
surface is predicted for all say what they are. Arrays of months (one per
sample) are plain ``int64`` month numbers (:func:`month_numbers`), the same
numbers as :attr:`Month.index`.

>>> m = Month.parse("2026-10")
>>> m.label, (m + 3).label, m.start.date().isoformat(), m.end.date().isoformat()
('2026-10', '2027-01', '2026-10-01', '2026-11-01')
>>> Month(m.index - 1) < m
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError

__all__ = ["Month", "month_numbers"]

_LABEL = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month, as its number of months since year 0 (``year * 12 + month - 1``)."""

    index: int

    @classmethod
    def parse(cls, value: str) -> Month:
        """The month of a ``YYYY-MM`` label (a command-line ``--month``)."""
        match = _LABEL.match(value)
        if not match:
            raise ConfigError(
                f"--month '{value}' is not a month; write it as YYYY-MM, e.g. 2026-10"
            )
        return cls(int(match.group(1)) * 12 + int(match.group(2)) - 1)

    @classmethod
    def of(cls, when: Any) -> Month:
        """The month of a date (a pandas Timestamp, ``datetime`` or ``datetime64``)."""
        stamp = pd.Timestamp(when)
        return cls(stamp.year * 12 + stamp.month - 1)

    @property
    def year(self) -> int:
        return self.index // 12

    @property
    def number(self) -> int:
        """1 (January) to 12 (December)."""
        return self.index % 12 + 1

    @property
    def label(self) -> str:
        """``YYYY-MM``, as run folders are named."""
        return f"{self.year:04d}-{self.number:02d}"

    @property
    def start(self) -> pd.Timestamp:
        """Midnight of the month's first day."""
        return pd.Timestamp(year=self.year, month=self.number, day=1)

    @property
    def end(self) -> pd.Timestamp:
        """Midnight of the next month's first day: incidents of the month are before it."""
        return (self + 1).start

    def __add__(self, months: int) -> Month:
        return Month(self.index + int(months))

    def __sub__(self, months: int) -> Month:
        return Month(self.index - int(months))

    def __str__(self) -> str:
        return self.label


def month_numbers(dates: Any) -> np.ndarray:
    """Month numbers (:attr:`Month.index`) of an array of dates; -1 for NaT.

    >>> month_numbers(np.array(["2025-01-31", "2025-02-01", "NaT"], dtype="datetime64[ns]"))
    array([24300, 24301,    -1])
    """
    d = np.asarray(dates, dtype="datetime64[M]")
    out = d.astype(np.int64) + 1970 * 12
    out[np.isnat(d)] = -1
    return out
