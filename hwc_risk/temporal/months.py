"""Months as numpy ``datetime64[M]``: parsing, arithmetic, season features, background months.

A month travels through the temporal code as ``numpy.datetime64(..., "M")``
(one value) or an array of them (one per sample): comparisons, differences in
months (``b - a``) and "the month L months earlier" (``m - L``) are plain
numpy arithmetic. The text form is ``YYYY-MM``.

Example
-------
>>> m = as_month("2025-03")
>>> month_label(m - 4)
'2024-11'
>>> calendar_month(as_months(["2025-03", "2024-12"])).tolist()
[3, 12]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np

from ..months import Month

__all__ = [
    "MonthLike",
    "as_month",
    "as_months",
    "background_months",
    "calendar_month",
    "month_index",
    "month_label",
    "month_of",
    "month_range",
    "months_of_index",
    "season_features",
]

MonthLike = str | np.datetime64 | dt.date | Any


def as_month(value: MonthLike) -> np.datetime64:
    """One month as ``datetime64[M]`` from ``YYYY-MM``, a date, a Timestamp or a Period.

    Raises
    ------
    ValueError
        The value is not a month; the message quotes it.
    """
    if isinstance(value, Month):  # the run's month type
        return months_of_index(value.index)
    if hasattr(value, "to_timestamp"):  # pandas Period
        value = value.to_timestamp()
    if hasattr(value, "year") and hasattr(value, "month"):  # date, datetime, Timestamp, cftime
        return np.datetime64(f"{int(value.year):04d}-{int(value.month):02d}", "M")
    try:
        return _parse(value) if isinstance(value, str) else month_of(np.datetime64(value))
    except (ValueError, TypeError):
        raise ValueError(f"'{value}' is not a month; write it as YYYY-MM") from None


_EPOCH = 1970 * 12  # datetime64[M] counts months from 1970-01; Month.index from year 0


def months_of_index(index: Any) -> Any:
    """``datetime64[M]`` of month numbers (:attr:`hwc_risk.months.Month.index`, or the int64
    month arrays of samples); a scalar gives a scalar.

    >>> month_label(months_of_index(2026 * 12 + 9))
    '2026-10'
    """
    out = (np.asarray(index, dtype=np.int64) - _EPOCH).astype("datetime64[M]")
    return out[()] if out.ndim == 0 else out


def month_index(months: Any) -> Any:
    """The month numbers (:attr:`hwc_risk.months.Month.index`) of ``datetime64[M]`` values."""
    out = np.asarray(months, dtype="datetime64[M]").astype(np.int64) + _EPOCH
    return int(out) if out.ndim == 0 else out


def month_of(value: np.datetime64) -> np.datetime64:
    """A ``datetime64`` of any unit, truncated to its month."""
    return np.datetime64(str(np.asarray(value).astype("datetime64[M]")), "M")


def _parse(text: str) -> np.datetime64:
    text = text.strip()
    if len(text) < 7 or text[4] != "-" or not (text[:4] + text[5:7]).isdigit():
        raise ValueError(text)
    return np.datetime64(text[:7], "M")


def as_months(values: Iterable[MonthLike] | np.ndarray) -> np.ndarray:
    """An array of ``datetime64[M]`` (datetime64 arrays of any unit are truncated)."""
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[M]")
    return np.array([as_month(v) for v in values], dtype="datetime64[M]")


def month_label(month: np.datetime64) -> str:
    """``YYYY-MM``."""
    return str(month_of(month))


def calendar_month(months: np.ndarray | np.datetime64) -> np.ndarray:
    """Month of the year, 1-12."""
    m = np.asarray(months, dtype="datetime64[M]").astype(np.int64)
    return m % 12 + 1


def month_range(first: np.datetime64, last: np.datetime64) -> np.ndarray:
    """Every month from ``first`` to ``last``, both included."""
    return np.arange(month_of(first), month_of(last) + 1, dtype="datetime64[M]")


def season_features(months: np.ndarray | np.datetime64) -> dict[str, np.ndarray]:
    """Month of the year as a point on a circle: ``month_sin`` and ``month_cos``.

    December and January are as close as any two consecutive months, which a
    month number 1-12 would not say. January is angle 0.

    >>> f = season_features(as_months(["2025-01", "2025-07"]))
    >>> [round(float(v), 6) for v in f["month_cos"]]
    [1.0, -1.0]
    """
    angle = 2 * np.pi * (calendar_month(months) - 1) / 12.0
    return {"month_sin": np.sin(angle), "month_cos": np.cos(angle)}


def background_months(
    n: int,
    study_months: np.ndarray,
    rng: np.random.Generator,
    method: Literal["uniform", "effort"] = "uniform",
    effort: np.ndarray | None = None,
) -> np.ndarray:
    """Months for ``n`` background cells, drawn over the study period.

    With time-varying covariates the model must see what the landscape looked
    like in months without incidents too, so background months are drawn over
    the whole study period: ``uniform``ly, or in proportion to ``effort`` (one
    non-negative weight per study month, e.g. reports or patrol days per
    month), so that months with little reporting are not read as safe months.

    Parameters
    ----------
    n
        Number of months to draw.
    study_months
        The months of the study period (``datetime64[M]``), e.g. from
        :func:`month_range`.
    rng
        The run's random generator.
    method, effort
        ``"uniform"``, or ``"effort"`` with one weight per study month.
    """
    study_months = as_months(study_months)
    if study_months.size == 0:
        raise ValueError("the study period has no month")
    if method == "uniform":
        return study_months[rng.integers(0, study_months.size, size=n)]
    if effort is None or len(effort) != study_months.size:
        raise ValueError("method 'effort' needs one effort value per study month")
    w = np.asarray(effort, dtype=float)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("effort per month must be non-negative numbers, not all zero")
    return study_months[rng.choice(study_months.size, size=n, p=w / w.sum())]
