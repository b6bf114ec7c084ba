"""Covariates that change month to month: sources, temporal features, seasons.

A monthly covariate (rainfall, greenness) comes from a ``{month}`` path
template, a NetCDF/Zarr cube or a GeoTIFF whose bands are months
(:mod:`.sources`, :mod:`.cube_source`). Its features (lags, running
aggregates, anomalies against the same calendar month, a missing-month
policy) are planned as weighted sums of source months (:mod:`.features`) and
evaluated either at sample cells, each in its own month, reading only the
pixels under them (:mod:`.footprints`), or over the whole grid for the month
being mapped, chunk by chunk. Month arithmetic, the cyclic month-of-year
features and background months are in :mod:`.months`.
"""

from __future__ import annotations

from .config import AggregateConfig, CovariateConfig, MissingMonthPolicy
from .features import (
    Combination,
    MonthUsed,
    TemporalFeature,
    plan_feature,
    resolve_month,
    temporal_features,
    values_at_samples,
    write_constant_layer,
    write_month_layers,
)
from .months import (
    as_month,
    as_months,
    background_months,
    calendar_month,
    month_label,
    month_range,
    season_features,
)
from .sources import BandSource, MonthlySource, TemplateSource, open_source

__all__ = [
    "AggregateConfig",
    "BandSource",
    "Combination",
    "CovariateConfig",
    "MissingMonthPolicy",
    "MonthUsed",
    "MonthlySource",
    "TemplateSource",
    "TemporalFeature",
    "as_month",
    "as_months",
    "background_months",
    "calendar_month",
    "month_label",
    "month_range",
    "open_source",
    "plan_feature",
    "resolve_month",
    "season_features",
    "temporal_features",
    "values_at_samples",
    "write_constant_layer",
    "write_month_layers",
]
