"""The forecast stage: how many incidents to expect in the months after the run's month,
and where.

For a run of month ``M`` with ``forecast.horizon`` of ``H`` months:

1. **Totals.** The incidents of each month from the first month with incidents to ``M``
   (zeros filled) are modelled by the count model of :mod:`hwc_risk.forecast` (trend,
   season, recent level; Poisson or negative binomial), and the totals of ``M + 1`` to
   ``M + H`` are simulated with their prediction interval (``forecast.level``).
2. **Surfaces.** The fitted model maps each month ``M + h`` from its own season and its
   covariates as a forecast made at the end of ``M`` sees them (months after ``M`` are not
   published: the missing-month policy fills them), with the history of every incident up
   to ``M``; the surface is scaled so that it adds up to the month's expected total:
   expected incidents per cell.
3. **Checks.** The totals forecast is refitted at each of the last
   ``forecast.validation_origins`` months and scored beside the same month last year and
   the mean of the last 12 months (:func:`~hwc_risk.forecast.rolling_origin_totals`); the
   surfaces are checked on the selection stage's held-out months, each mapped as a
   forecast made at the end of the month before it, beside the baselines and
   :data:`~hwc_risk.validation.FORECAST_BASELINES`.

The products stage writes ``forecast.tif`` from the surfaces, splits each total over the
risk classes and the hotspots, and says how the forecast did
(:func:`forecast_products`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from .bands import FileBand, file_of
from .compute import Compute
from .config import ForecastConfig
from .covariates import create_band
from .forecast import (
    MIN_MONTHS,
    Forecast,
    Interval,
    TotalsValidation,
    fit_count_model,
    forecast_totals,
    rolling_origin_totals,
    split_total,
)
from .grid import GridSpec
from .incidents import MonthIncidents
from .modelling import FittedModel
from .months import Month, month_numbers
from .predict import RiskMap, predict_to_band
from .selection import Selection
from .temporal.features import MonthUsed
from .temporal.months import months_of_index
from .temporal.stack import DriverMonth
from .validation import BASELINES, FORECAST_BASELINES, Metrics, RollingOrigin, Skipped
from .zonal import scale_to_total, zone_totals

__all__ = ["NextMonths", "forecast_stage", "monthly_counts", "surface_validation"]

log = logging.getLogger(__name__)

#: Months of counts a rolling-origin check of the totals needs (12 known at the first origin).
MIN_CHECK_MONTHS = 13


_NOT_MADE = Skipped("no forecast")


@dataclass(frozen=True, kw_only=True)
class NextMonths:
    """The forecast stage's result: the totals, the expected-incident surfaces (tiled
    GeoTIFFs in the work folder), what the surfaces' covariates read, and the checks."""

    issued: Month
    config: ForecastConfig
    first: Month  # of the monthly counts
    counts: np.ndarray
    forecast: Forecast | None
    surfaces: tuple[tuple[Month, Path], ...] = ()
    covariates_used: tuple[tuple[MonthUsed, ...], ...] = ()
    totals_check: TotalsValidation | Skipped = _NOT_MADE
    skipped: str | None = None
    seed: int = 42

    @property
    def months(self) -> list[Month]:
        return [m for m, _ in self.surfaces]

    @property
    def totals(self) -> list[Interval]:
        return list(self.forecast.totals) if self.forecast is not None else []


def monthly_counts(incidents: MonthIncidents) -> tuple[Month, np.ndarray]:
    """Incidents of each month from the first month with one to the run's month (zeros
    included), and that first month."""
    months = month_numbers(incidents.used["date"].to_numpy(dtype="datetime64[ns]"))
    months = months[months >= 0]
    first = int(months.min()) if months.size else incidents.month.index
    counts = np.bincount(months - first, minlength=incidents.month.index - first + 1)
    return Month(first), counts[: incidents.month.index - first + 1]


def _totals(
    counts: np.ndarray, first: Month, cfg: ForecastConfig, seed: int
) -> tuple[Forecast, TotalsValidation | Skipped]:
    """The totals forecast, and its rolling-origin check when the series is long enough."""
    start = months_of_index(first.index)
    model = fit_count_model(counts, start)
    rng = np.random.default_rng(seed)
    fc = forecast_totals(model, counts, cfg.horizon, rng, cfg.simulations, cfg.level)
    if counts.size < MIN_CHECK_MONTHS:
        check: TotalsValidation | Skipped = Skipped(
            f"the totals are checked once {MIN_CHECK_MONTHS} months have incidents counted "
            f"(this run has {counts.size})"
        )
    else:
        check = rolling_origin_totals(
            counts, start, cfg.horizon, cfg.validation_origins, cfg.level, seed
        )
    return fc, check


def _surface(
    selection: Selection,
    fitted: FittedModel,
    risk: RiskMap,
    issued: Month,
    h: int,
    total: float,
    work: Path,
    compute: Compute,
) -> tuple[Path, tuple[MonthUsed, ...]]:
    """Expected incidents per cell in month ``issued + h``, adding up to ``total``: the
    surface the run ships (the model's, or history or a blend when the map choice picked
    one), made from month ``issued + h``'s time features and the incidents up to
    ``issued``."""
    design, grid = selection.design, selection.design.stack.grid
    month = issued + h
    drivers = DriverMonth(month=month, known=issued)
    time = design.stack.time
    if time is None and h == 1:
        relative: Path = risk.risk  # the same history and no time feature: the run's own map
    else:
        stack = design.stack_for(design.is_presence, month, f"forecast-{h}", drivers)
        predicted = create_band(work / f"forecast-{h}-relative.tif", grid, "risk", compute.block)
        predict_to_band(fitted.model, stack, FileBand(predicted), compute)
        shipped = selection.shipped_surface(FileBand(predicted), issued, f"forecast-{h}")
        relative = file_of(shipped)
    used = tuple(time.used(drivers)) if time is not None else ()
    out = scale_to_total(relative, total, work / f"expected-{h}.tif", grid, compute.chunk_size)
    return out, used


def forecast_stage(
    config: ForecastConfig,
    incidents: MonthIncidents,
    selection: Selection,
    fitted: FittedModel,
    risk: RiskMap,
    work: Path,
    compute: Compute,
    seed: int = 42,
) -> NextMonths | None:
    """The forecast stage (see the module's docstring); None when ``forecast.horizon`` is 0.

    Fewer than :data:`~hwc_risk.forecast.MIN_MONTHS` months of counts skip the forecast
    (said in ``metrics.json``), which is not an error.
    """
    if config.horizon == 0:
        return None
    first, counts = monthly_counts(incidents)
    issued = incidents.month
    base = NextMonths(issued=issued, config=config, first=first, counts=counts, forecast=None)
    if counts.size < MIN_MONTHS:
        reason = f"{counts.size} months of incidents; a forecast needs at least {MIN_MONTHS}"
        log.warning("no forecast: %s", reason)
        return replace(base, skipped=reason)
    fc, check = _totals(counts, first, config, seed)
    surfaces, used = [], []
    for h, total in enumerate(fc.totals, start=1):
        path, filled = _surface(selection, fitted, risk, issued, h, total.expected, work, compute)
        surfaces.append((issued + h, path))
        used.append(filled)
        log.info("forecast %s: %.0f incidents expected (%.0f %% interval %.0f-%.0f)",
                 (issued + h).label, total.expected, 100 * config.level, total.lower,
                 total.upper)  # fmt: skip
    return replace(
        base,
        forecast=fc,
        surfaces=tuple(surfaces),
        covariates_used=tuple(used),
        totals_check=check,
        seed=seed,
    )


def _metrics_mean(items: list[Metrics]) -> dict[str, Any]:
    return Metrics.mean(items).to_json() if items else {}


def surface_validation(rolling: RollingOrigin | Skipped) -> dict[str, Any]:
    """Next month's incidents against the surface made at the end of the month before, on
    the held-out months, beside every baseline (``forecast.surface_validation``)."""
    if isinstance(rolling, Skipped):
        return rolling.to_json()
    per_month = rolling.per_month
    out: dict[str, Any] = {
        "months": rolling.months,
        "n_test_incidents": int(sum(e.n_test for e in per_month)),
        "model": _metrics_mean([e.model for e in per_month]),
    }
    for name in BASELINES:
        out[name] = _metrics_mean([e.baselines[name] for e in per_month if name in e.baselines])
    for name in FORECAST_BASELINES:
        items = [e.forecast_baselines[name] for e in per_month if name in e.forecast_baselines]
        out[name] = _metrics_mean(items)
    out["per_month"] = [e.to_json() for e in per_month]
    return out


@dataclass(frozen=True, kw_only=True)
class ZoneSplit:
    """Each forecast month's total split over the risk classes and the hotspots."""

    by_class: list[dict[str, Interval]]
    by_hotspot: list[dict[str, Interval]]


def split_over_zones(
    next_months: NextMonths,
    forecast: Forecast,
    forecast_tif: Path,
    grid: GridSpec,
    classes: Path,
    hotspots: gpd.GeoDataFrame | None,
    chunk: int,
) -> ZoneSplit:
    """Each month's simulated totals thinned by each zone's share of the expected
    incidents (:func:`~hwc_risk.forecast.split_total`): class labels, hotspot ranks."""
    rng = np.random.default_rng(next_months.seed + 1)
    by_class, by_hotspot = [], []
    for h in range(1, len(next_months.surfaces) + 1):
        zones = zone_totals(grid, {"expected": (forecast_tif, h)}, classes, hotspots, chunk)
        district = zones[0].sums.get("expected", 0.0)
        shares = {
            (z.kind, z.label if z.kind == "class" else str(z.id)): (
                z.sums.get("expected", 0.0) / district if district > 0 else 0.0
            )
            for z in zones[1:]
        }
        draws = forecast.draws[:, h - 1]
        split = split_total(draws, {f"{k}|{n}": s for (k, n), s in shares.items()}, rng,
                            next_months.config.level)  # fmt: skip
        by_class.append({k[6:]: v for k, v in split.items() if k.startswith("class|")})
        by_hotspot.append({k[8:]: v for k, v in split.items() if k.startswith("hotspot|")})
    return ZoneSplit(by_class=by_class, by_hotspot=by_hotspot)
