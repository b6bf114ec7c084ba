"""The config of covariates that change month to month lives in :mod:`hwc_risk.config`.

A monthly covariate is a :class:`~hwc_risk.config.CovariateConfig` whose path is a
``{month}`` template, a NetCDF/Zarr cube, or a GeoTIFF of monthly bands
(``monthly: true``); :class:`~hwc_risk.config.AggregateConfig` and
:data:`~hwc_risk.config.MissingMonthPolicy` are its temporal keys. This module
names them for the temporal code.
"""

from __future__ import annotations

from ..config import (
    CUBE_SUFFIXES,
    MAX_LAG,
    AggregateConfig,
    CovariateConfig,
    MissingMonthPolicy,
    SourceKind,
)

__all__ = [
    "CUBE_SUFFIXES",
    "MAX_LAG",
    "AggregateConfig",
    "CovariateConfig",
    "MissingMonthPolicy",
    "SourceKind",
]
