"""Config of covariates that change month to month (to move into :mod:`hwc_risk.config`).

A monthly covariate is a :class:`~hwc_risk.config.CovariateConfig` with a few
more keys. Its ``path`` is one of

- a path template with ``{month}`` (``ndvi/ndvi_{month}.tif``, ``{month}`` as
  ``YYYY-MM``): one GDAL raster per month;
- a cube with a time axis that xarray opens: NetCDF (``.nc``, ``.nc4``,
  ``.cdf``) or Zarr (``.zarr``), with ``variable`` naming the data variable
  (optional when there is one);
- a multi-band GeoTIFF whose bands are months (each band's description or a
  ``month``/``date`` tag says which), with ``monthly: true``.

Example
-------
>>> cfg = MonthlyCovariateConfig(
...     path="ndvi/ndvi_{month}.tif", type="continuous", lags=[0, 1],
...     aggregate={"statistic": "mean", "months": 3}, anomaly=True)
>>> cfg.is_monthly, cfg.source_kind, cfg.missing_month
(True, 'template', 'climatology')
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..config import CovariateConfig

__all__ = [
    "CUBE_SUFFIXES",
    "AggregateConfig",
    "MissingMonthPolicy",
    "MonthlyCovariateConfig",
    "SourceKind",
]

MissingMonthPolicy = Literal["latest", "climatology", "error"]
SourceKind = Literal["template", "cube", "bands", "static"]

#: File suffixes opened as cubes with xarray.
CUBE_SUFFIXES = (".nc", ".nc4", ".cdf", ".netcdf", ".zarr")

MAX_LAG = 24


class AggregateConfig(BaseModel):
    """A running aggregate over the months *before* the month (not the month itself)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    statistic: Literal["mean", "sum"] = Field(
        "mean", description="mean (e.g. greenness) or sum (e.g. rainfall) of the months."
    )
    months: int = Field(3, ge=2, le=MAX_LAG, description="How many previous months.")


class MonthlyCovariateConfig(CovariateConfig):
    """A covariate that may change month to month.

    ``monthly`` left unset means: monthly when the path is a ``{month}``
    template or a cube, static otherwise; ``monthly: true`` makes a multi-band
    GeoTIFF's bands its months. The temporal keys (``variable``, ``lags``,
    ``aggregate``, ``anomaly``, ``missing_month``, ``max_age_months``) are
    refused on a static covariate.
    """

    monthly: bool | None = Field(
        None,
        description="Unset: monthly for a {month} template or a NetCDF/Zarr cube. "
        "true: a multi-band GeoTIFF whose bands are months (band description or "
        "'month' tag YYYY-MM).",
    )
    variable: str | None = Field(None, description="Data variable of a NetCDF/Zarr cube.")
    lags: list[int] = Field(
        default_factory=lambda: [0],
        description="Months back: 0 is the month itself, 1 the month before, ...",
    )
    aggregate: AggregateConfig | None = Field(
        None, description="A running mean or sum over the months before the month."
    )
    anomaly: bool = Field(
        False,
        description="Express every feature of this covariate as its difference from the "
        "mean of the same calendar month(s) over the years available.",
    )
    missing_month: MissingMonthPolicy = Field(
        "climatology",
        description="A month not published yet (or missing): 'climatology' (the mean of "
        "the same calendar month over the years available), 'latest' (the newest month "
        "before it, at most max_age_months old) or 'error'.",
    )
    max_age_months: int = Field(
        3, ge=0, le=MAX_LAG, description="'latest' refuses a month older than this."
    )

    @field_validator("lags")
    @classmethod
    def _lags(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("give at least one lag, e.g. [0]")
        if any(lag < 0 or lag > MAX_LAG for lag in v):
            raise ValueError(f"lags are months back, between 0 and {MAX_LAG}")
        if len(set(v)) != len(v):
            raise ValueError("each lag once")
        return sorted(v)

    @property
    def source_kind(self) -> SourceKind:
        """``template``, ``cube``, ``bands`` (a GeoTIFF's bands) or ``static``."""
        text = str(self.path)
        if "{month}" in text:
            return "template"
        if self.path.suffix.lower() in CUBE_SUFFIXES or text.rstrip("/").endswith(".zarr"):
            return "cube"
        return "bands" if self.monthly else "static"

    @property
    def is_monthly(self) -> bool:
        return self.source_kind != "static"

    @model_validator(mode="after")
    def _monthly_keys(self) -> MonthlyCovariateConfig:
        kind = self.source_kind
        if self.monthly is False and kind != "static":
            raise ValueError(
                "a {month} template or a NetCDF/Zarr cube is monthly; remove 'monthly: false'"
            )
        if kind != "static" and self.type != "continuous":
            raise ValueError("monthly covariates must be type: continuous")
        if kind == "static":
            set_keys = self.model_fields_set & {
                "variable",
                "lags",
                "aggregate",
                "anomaly",
                "missing_month",
                "max_age_months",
            }
            if set_keys:
                raise ValueError(
                    f"{', '.join(sorted(set_keys))} only apply to monthly covariates: use a "
                    "{month} path template, a NetCDF/Zarr cube, or monthly: true for a "
                    "GeoTIFF whose bands are months"
                )
        if self.variable is not None and kind != "cube":
            raise ValueError("'variable' is only for NetCDF/Zarr cubes")
        if kind in ("cube", "bands") and "band" in self.model_fields_set:
            raise ValueError("'band' does not apply to a cube or to a GeoTIFF of monthly bands")
        return self
