"""Presence and background samples: which cells the model learns from.

:func:`draw_samples` is the samples stage of a run: the month's incidents and
background cells (uniform, by a bias raster, or the cells of every report:
target group), each with its month and its features. The draws read the
valid-cell mask strip by strip, so no grid-sized array is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .bands import Band, as_band
from .config import BackgroundConfig, IncidentsConfig
from .covariates import FeatureStack
from .errors import InputError
from .grid import GridSpec
from .incidents import locate_incidents, read_incidents
from .mask import ValidMask, row_strips
from .months import Month, month_numbers
from .rasters import RasterSource, align_file

if TYPE_CHECKING:
    from .temporal.stack import SampleTime, TimeFeatures

__all__ = [
    "Samples",
    "background_cells",
    "background_month_method",
    "background_months_of",
    "draw_samples",
    "sample_background",
    "sample_weighted",
]

#: Cells read at a time when drawing samples.
STRIP_CELLS = 1 << 20


def sample_background(valid: ValidMask, n_points: int, rng: np.random.Generator) -> np.ndarray:
    """Flat indices of ``n_points`` distinct valid cells drawn uniformly (all if fewer).

    The draw is of ranks among the valid cells in raster order (the same draw
    as ``rng.choice`` over the array of valid cells); ranks are turned into
    cells strip by strip, so no grid-sized array is made.
    """
    n = min(n_points, valid.count)
    ranks = np.sort(rng.choice(valid.count, size=n, replace=False)) if n < valid.count else None
    out: list[np.ndarray] = []
    seen = 0
    with valid.band.reader() as mask:
        for win in row_strips(valid.shape, STRIP_CELLS):
            flat = np.flatnonzero(mask.read(win)) + int(win.row_off) * valid.shape[1]
            if ranks is None:
                out.append(flat)
            else:
                lo, hi = np.searchsorted(ranks, [seen, seen + flat.size])
                out.append(flat[ranks[lo:hi] - seen])
            seen += flat.size
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def sample_weighted(
    weights: Band | Path, valid: ValidMask, n_points: int, rng: np.random.Generator
) -> np.ndarray:
    """Flat indices of up to ``n_points`` distinct valid cells drawn with probability
    proportional to the positive values of a raster on the grid, without replacement.

    Efraimidis and Spirakis (2006, Information Processing Letters 97:181-185):
    every cell gets the key ``Exp(1) / weight`` and the smallest keys win; the
    keys are drawn strip by strip in raster order, keeping only the best
    ``n_points``, so memory does not grow with the grid.
    """
    best_keys = np.zeros(0)
    best_cells = np.zeros(0, dtype=np.int64)
    with as_band(weights).reader() as wds, valid.band.reader() as vds:
        for win in row_strips(valid.shape, STRIP_CELLS):
            w = wds.read(win).astype(np.float64)
            ok = (vds.read(win) > 0) & np.isfinite(w) & (w > 0)
            flat = np.flatnonzero(ok)
            keys = rng.exponential(size=flat.size) / w.ravel()[flat]
            best_keys = np.concatenate([best_keys, keys])
            best_cells = np.concatenate([best_cells, flat + int(win.row_off) * valid.shape[1]])
            if best_keys.size > n_points:
                keep = np.argpartition(best_keys, n_points - 1)[:n_points]
                best_keys, best_cells = best_keys[keep], best_cells[keep]
    return np.sort(best_cells)


@dataclass(frozen=True, kw_only=True)
class Samples:
    """Presence (incident) and background cells with their features.

    ``X`` has one row per sample, presences first; ``y`` is 1 for presence
    and 0 for background; ``rows``/``cols`` are the cells; ``months`` the
    month number of each sample (an incident's own; a background cell's drawn
    from the incidents' months, so history features describe both at
    comparable times); ``dates`` holds the incident date of presences (NaT
    for background).
    """

    X: np.ndarray
    y: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    months: np.ndarray
    dates: np.ndarray
    feature_names: list[str]
    background_months: str = "incidents"
    time: SampleTime | None = None
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def n_presence(self) -> int:
        return int(self.y.sum())

    def subset(self, mask: np.ndarray) -> Samples:
        return replace(
            self,
            X=self.X[mask],
            y=self.y[mask],
            rows=self.rows[mask],
            cols=self.cols[mask],
            months=self.months[mask],
            dates=self.dates[mask],
        )


def _target_group_cells(
    incidents: IncidentsConfig, grid: GridSpec, valid: ValidMask, month: Month | None
) -> np.ndarray:
    """Flat indices of the cells where any report (any species or type) was made, up to
    the end of ``month`` (later reports are not known to a run of the month)."""
    everyone = read_incidents(incidents.model_copy(update={"filters": None}))
    located = locate_incidents(everyone, grid, valid).accepted
    if month is not None:
        located = located.loc[(located["date"] < month.end).to_numpy()]
    return np.unique(located["row"].to_numpy() * grid.width + located["col"].to_numpy())


def background_cells(
    settings: BackgroundConfig,
    incidents: IncidentsConfig | None,
    grid: GridSpec,
    valid: ValidMask,
    rng: np.random.Generator,
    work: Path | None = None,
    month: Month | None = None,
) -> np.ndarray:
    """Flat indices of background cells by ``settings.method``: ``uniform`` over the
    valid cells, ``bias`` in proportion to a raster (reporting or patrol effort), or
    ``target_group``: the cells where any report of the incident files was made (up to
    the end of ``month``)."""
    if settings.method == "uniform":
        return sample_background(valid, settings.n_points, rng)
    if settings.method == "bias":
        if settings.bias_raster is None or work is None:  # the config requires both
            raise InputError("background.method bias needs background.bias_raster")
        source = RasterSource(path=settings.bias_raster, key="background.bias_raster")
        work.mkdir(parents=True, exist_ok=True)
        effort = align_file(source, grid, work / "bias.tif")
        cells = sample_weighted(effort, valid, settings.n_points, rng)
        if cells.size == 0:
            raise InputError(
                f"{settings.bias_raster}: background.bias_raster has no positive value on valid "
                "cells; check the raster"
            )
        return cells
    if incidents is None:
        raise InputError("background.method target_group needs the incidents section")
    cells = _target_group_cells(incidents, grid, valid, month)
    if cells.size < 50:
        raise InputError(
            f"background.method target_group: only {cells.size} distinct report cells in "
            "the incident files; use method uniform or a bias raster"
        )
    if cells.size > settings.n_points:
        cells = np.sort(rng.choice(cells, size=settings.n_points, replace=False))
    return cells


def background_month_method(settings: BackgroundConfig, stack: FeatureStack) -> str:
    """``background.months`` resolved: ``auto`` is ``uniform`` when the model has time
    features, else ``incidents`` (what history alone needs)."""
    if settings.months != "auto":
        return settings.months
    return "uniform" if stack.time is not None else "incidents"


def _reports_per_month(incidents: IncidentsConfig | None, study: np.ndarray) -> np.ndarray:
    """Reports of each study month in the incident files, whatever the filters keep
    (the reporting effort of target-group background)."""
    if incidents is None:
        raise InputError("background.months effort needs the incidents section")
    everyone = read_incidents(incidents.model_copy(update={"filters": None})).accepted
    months = month_numbers(everyone["date"].to_numpy(dtype="datetime64[ns]"))
    return np.array([(months == m).sum() for m in study], dtype=float)


def background_months_of(
    method: str,
    presence_months: np.ndarray,
    n: int,
    rng: np.random.Generator,
    last: Month | None = None,
    incidents: IncidentsConfig | None = None,
) -> np.ndarray:
    """Month numbers of ``n`` background cells: drawn from the incidents' months
    (``incidents``), or over the study period, from the first incident's month to
    ``last``: uniformly, or in proportion to the reports of each month (``effort``)."""
    if method == "incidents":
        return rng.choice(presence_months, size=n)
    from .temporal.months import background_months, month_index, months_of_index

    end = last.index if last is not None else int(presence_months.max())
    study = np.arange(int(presence_months.min()), end + 1)
    study_months = months_of_index(study)
    if method == "effort":
        effort = _reports_per_month(incidents, study)
        drawn = background_months(n, study_months, rng, "effort", effort)
    else:
        drawn = background_months(n, study_months, rng, "uniform")
    return np.asarray(month_index(drawn), dtype=np.int64)


def _with_time(samples: Samples, stack: FeatureStack, time: TimeFeatures) -> Samples:
    """The samples' time features read in each sample's own month; samples without a
    value (a month whose covariate has no data at the cell) are left out, and counted."""
    time_cols = [stack.names.index(name) for name in time.names]
    values, info = time.at_samples(samples.rows, samples.cols, samples.months)
    X = samples.X.copy()
    X[:, time_cols] = values
    keep = np.isfinite(X).all(axis=1)
    dropped = {
        "incidents": int((~keep & (samples.y == 1)).sum()),
        "background": int((~keep & (samples.y == 0)).sum()),
    }
    return replace(samples, X=X, time=info, dropped=dropped).subset(keep)


def draw_samples(
    stack: FeatureStack,
    used: pd.DataFrame,
    settings: BackgroundConfig,
    incidents: IncidentsConfig | None = None,
    seed: int = 42,
    work: Path | None = None,
    month: Month | None = None,
) -> Samples:
    """The samples stage: the month's incidents (``used``: ``row``, ``col`` and
    ``date`` on the grid) and background cells, with their months and their
    features read at their cells. ``incidents`` (the config section) is needed by
    the target-group background and effort months, ``work`` (a folder) by a bias
    raster; ``month`` is the run's (target-group reports after it are not known to
    the run; the study period of background months ends with it)."""
    grid = stack.grid
    rng = np.random.default_rng(seed)
    bg = background_cells(settings, incidents, grid, stack.valid, rng, work, month)
    bg_rows, bg_cols = np.unravel_index(bg, grid.shape)
    rows = np.concatenate([used["row"].to_numpy(), bg_rows]).astype(np.int64)
    cols = np.concatenate([used["col"].to_numpy(), bg_cols]).astype(np.int64)
    p_dates = used["date"].to_numpy(dtype="datetime64[ns]")
    p_months = month_numbers(p_dates)
    method = background_month_method(settings, stack)
    bg_months = background_months_of(method, p_months, bg.size, rng, month, incidents)
    samples = Samples(
        X=stack.values_at(rows, cols),
        y=np.concatenate([np.ones(len(used)), np.zeros(bg.size)]).astype(np.int8),
        rows=rows,
        cols=cols,
        months=np.concatenate([p_months, bg_months]),
        dates=np.concatenate([p_dates, np.full(bg.size, np.datetime64("NaT"))]),
        feature_names=stack.names,
        background_months=method,
    )
    return samples if stack.time is None else _with_time(samples, stack, stack.time)


def time_record(samples: Samples) -> dict[str, Any]:
    """What the manifest says of the samples' months and time features."""
    out: dict[str, Any] = {"background_months": samples.background_months}
    if samples.time is not None:
        out |= samples.time.to_json() | {"dropped_without_time_data": samples.dropped}
    return out
