"""Time features in the model: monthly covariates' lags, aggregates and anomalies, and the
season, at the samples (each in its own month) and as layers of any month.

A feature stack with time features holds a :class:`TimeFeatures`: the layers
of the month a surface is made for are swapped in whenever a surface is
predicted (:meth:`TimeFeatures.swap`), so the rolling-origin months, the
run's map and the forecast months each see their own month's covariates and
season. Which month's covariate values a surface may read is a
:class:`DriverMonth`: a held-out month ``O`` is mapped as a forecast made at
the end of ``O - 1`` would have mapped it (months after ``O - 1`` count as not
published and are filled by the missing-month policy), the run's month ``M``
with what is published up to ``M``, and forecast month ``M + h`` from months
up to ``M``.

The samples' values are read once per run, from the source pixels under
each sample's cell in its own month (:func:`~hwc_risk.temporal.features.values_at_samples`);
the season is two columns of constants per month (``month_sin``,
``month_cos``), which as layers are constant bands
(:class:`~hwc_risk.bands.ConstantBand`: nothing stored).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..bands import ConstantBand
from ..compute import Compute
from ..covariates import FeatureLayer, FeatureStack, build_feature_stack, summarise_aligned
from ..errors import NoOverlapError
from ..grid import GridSpec
from ..mask import ValidMask
from ..months import Month
from .features import MonthUsed, plan_feature, values_at_samples, write_month_layers
from .inputs import MonthlyInput
from .months import as_month, months_of_index, season_features
from .sources import open_source

if TYPE_CHECKING:  # the plan stage imports this module through modelling
    from ..plan import Plan

__all__ = [
    "SEASON",
    "DriverMonth",
    "SampleTime",
    "TimeFeatures",
    "add_time_features",
    "run_features",
]

log = logging.getLogger(__name__)

#: The season features: month of the year as a point on a circle.
SEASON = ("month_sin", "month_cos")

UNITS = "as the monthly covariate"


@dataclass(frozen=True, order=True)
class DriverMonth:
    """The month whose covariates and season a surface uses (``month``), and the last
    month whose covariate values were published when it was made (``known``)."""

    month: Month
    known: Month

    @classmethod
    def forecast(cls, target: Month) -> DriverMonth:
        """``target`` as a forecast made at the end of the month before it."""
        return cls(month=target, known=target - 1)


@dataclass(frozen=True, kw_only=True)
class SampleTime:
    """What the samples' time features needed: months filled by the policy, and how
    many samples read one."""

    filled: tuple[MonthUsed, ...]
    samples_with_filled_months: int

    def to_json(self) -> dict[str, Any]:
        return {
            "samples_with_filled_months": self.samples_with_filled_months,
            "months_filled": [u.to_json() for u in self.filled],
        }


@dataclass(eq=False)
class TimeFeatures:
    """The time features of a run: monthly covariates (as planned) and the season."""

    grid: GridSpec
    inputs: tuple[MonthlyInput, ...]
    season: bool
    folder: Path
    compute: Compute = field(default_factory=Compute)
    _cache: dict[DriverMonth, list[FeatureLayer]] = field(default_factory=dict, repr=False)
    _used: dict[DriverMonth, list[MonthUsed]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def names(self) -> list[str]:
        """Feature names in stack order: each covariate's features, then the season."""
        names = [f.name for m in self.inputs for f in m.features]
        return names + (list(SEASON) if self.season else [])

    def describe(self) -> dict[str, Any]:
        return {
            "monthly_covariates": {m.key: [f.name for f in m.features] for m in self.inputs},
            "season": self.season,
        }

    def layers(self, drivers: DriverMonth) -> list[FeatureLayer]:
        """The time layers of ``drivers.month`` (see the module's docstring), made once and
        kept (one month at a time: sources are read by one thread)."""
        with self._lock:
            if drivers not in self._cache:
                self._cache[drivers] = self._make(drivers)
            return self._cache[drivers]

    def used(self, drivers: DriverMonth) -> list[MonthUsed]:
        """The covariate months the layers of ``drivers`` read that were filled."""
        self.layers(drivers)
        return self._used.get(drivers, [])

    def _make(self, drivers: DriverMonth) -> list[FeatureLayer]:
        month, known = as_month(drivers.month), as_month(drivers.known)
        out: list[FeatureLayer] = []
        used: list[MonthUsed] = []
        for m in self.inputs:
            with open_source(m.config, m.key) as source:
                paths, filled = write_month_layers(
                    source, m.key, m.config, m.features, self.grid, month,
                    self.folder, self.compute, known=known,
                )  # fmt: skip
            used += filled
            out += [
                FeatureLayer(name=name, covariate=m.key, kind="time", units=UNITS, path=path)
                for name, path in paths.items()
            ]
        self._used[drivers] = used
        if self.season:
            h, w = self.grid.shape
            for name, value in season_features(month).items():
                band = ConstantBand(value=float(value), height=h, width=w)
                out.append(
                    FeatureLayer(name=name, covariate="season", kind="time", units="1", band=band)
                )
        return out

    def swap(self, layers: list[FeatureLayer], drivers: DriverMonth) -> list[FeatureLayer]:
        """``layers`` with every time layer replaced by its namesake of ``drivers``' month."""
        if not any(layer.kind == "time" for layer in layers):
            return layers
        by_name = {layer.name: layer for layer in self.layers(drivers)}
        return [by_name[x.name] if x.kind == "time" else x for x in layers]

    def at_samples(
        self, rows: np.ndarray, cols: np.ndarray, months: np.ndarray
    ) -> tuple[np.ndarray, SampleTime]:
        """The time features of samples at cells ``rows, cols``, each in its own month
        (``months``: month numbers), as ``(n_samples, n_features)`` float32."""
        sample_months = months_of_index(np.asarray(months))
        columns: list[np.ndarray] = []
        filled: list[MonthUsed] = []
        touched = np.zeros(sample_months.size, dtype=bool)
        for m in self.inputs:
            with open_source(m.config, m.key) as source:
                values, used = values_at_samples(
                    source, m.config, m.features, self.grid, rows, cols, sample_months
                )
                touched |= _reads_filled(source.months, m, sample_months)
            filled += used
            columns += [values[f.name] for f in m.features]
        if self.season:
            season = season_features(sample_months)
            columns += [season[name] for name in SEASON]
        X = np.column_stack(columns).astype(np.float32) if columns else np.zeros((rows.size, 0))
        info = SampleTime(filled=tuple(filled), samples_with_filled_months=int(touched.sum()))
        return X, info


def _reads_filled(available: np.ndarray, m: MonthlyInput, months: np.ndarray) -> np.ndarray:
    """Which samples' features read a month the missing-month policy filled."""
    out = np.zeros(months.size, dtype=bool)
    for month in np.unique(months):
        for feature in m.features:
            cfg = m.config
            comb = plan_feature(feature, month, available, cfg.missing_month, cfg.max_age_months)
            if comb.filled:
                out[months == month] = True
    return out


def _narrowed(valid: ValidMask, layers: list[FeatureLayer], compute: Compute) -> ValidMask:
    """The valid-cell mask narrowed to the cells where every monthly layer has data."""
    windows = compute.windows(valid.shape)
    for layer in layers:
        if layer.path is not None:
            summarise_aligned(layer.path, windows, valid.path, False, 0)
    return ValidMask.open(valid.path, compute.chunk_size)


def add_time_features(
    stack: FeatureStack,
    inputs: tuple[MonthlyInput, ...],
    season: bool,
    month: Month,
    folder: Path,
    compute: Compute,
) -> FeatureStack:
    """The features stage's time features: the run month's layers added to ``stack``
    (the valid-cell mask narrowed to where the monthly covariates have data), and the
    :class:`TimeFeatures` that makes any other month's.

    Without monthly covariates and season, ``stack`` as it is.
    """
    if not inputs and not season:
        return stack
    for m in inputs:  # the months the run reads, and how those not published are filled
        log.info("covariate %s: %s", m.key, m.describe())
    time = TimeFeatures(
        grid=stack.grid, inputs=inputs, season=season, folder=folder, compute=compute
    )
    layers = time.layers(DriverMonth(month=month, known=month))
    valid = _narrowed(stack.valid, layers, compute) if inputs else stack.valid
    if valid.count == 0:
        keys = ", ".join(m.key for m in inputs)
        raise NoOverlapError(
            f"covariates {keys}: no cell of the grid has data in {month.label} and in every "
            "other covariate; check that the monthly covariates cover the area"
        )
    # everything else of the stack stays (the landscape and connectivity scenarios rebuild from)
    return replace(stack, layers=[*stack.layers, *layers], valid=valid, time=time)


def run_features(plan: Plan, work: Path, compute: Compute) -> FeatureStack:
    """The features stage of a run: the covariates' features, then the time features of
    the run's month. ``hwc-risk scenario`` rebuilds a run's stack with it, so the two
    cannot drift apart."""
    cfg = plan.config
    stack = build_feature_stack(
        cfg.covariates, plan.grid, cfg.features, work / "features", cfg.connectivity, compute
    )
    return add_time_features(
        stack, plan.monthly, cfg.features.season, plan.month, work / "monthly", compute
    )
