"""Typed pipeline configuration: the only place that reads YAML.

One pydantic model per config section, all with ``extra="forbid"`` so that a
misspelt key is an error, never a silent default. Paths are resolved relative
to the config file when it is loaded; the rest of the code receives typed
objects with absolute paths.

Example
-------
From the repository's root folder:

>>> cfg = load_config("pipelines/sample.yaml")
>>> cfg.incidents.path.name
'incidents_seasonal.csv'
>>> cfg.incidents.path.is_absolute()
True
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError, MissingFileError
from .scenarios.config import (
    EDIT_KINDS,
    ScenarioConfig,
    ScenarioFile,
    check_scenarios,
    distinct_names,
)

__all__ = [
    "AggregateConfig",
    "BackgroundConfig",
    "ComputeConfig",
    "ConnectivityConfig",
    "CovariateConfig",
    "DuplicatesConfig",
    "FeaturesConfig",
    "ForecastConfig",
    "GridConfig",
    "IncidentFilters",
    "IncidentsConfig",
    "MissingMonthPolicy",
    "OutputsConfig",
    "PipelineConfig",
    "ValidationSettings",
    "load_config",
]


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = (Path(base) / path).resolve()
    return path


def _resolve_optional(value: Path | None, info: ValidationInfo) -> Path | None:
    return None if value is None else _resolve(value, info)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GridConfig(_Section):
    """The analysis grid; every unset key is taken from the first covariate."""

    crs: str | None = Field(None, description="CRS of the grid, e.g. 'EPSG:32736'.")
    resolution: float | None = Field(None, gt=0, description="Cell size in CRS units.")
    extent: tuple[float, float, float, float] | None = Field(
        None, description="xmin, ymin, xmax, ymax in the grid CRS."
    )

    @field_validator("extent")
    @classmethod
    def _extent_ordered(
        cls, v: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if v is not None and not (v[0] < v[2] and v[1] < v[3]):
            raise ValueError(
                "extent must be [xmin, ymin, xmax, ymax] with xmin < xmax, ymin < ymax"
            )
        return v


class IncidentFilters(_Section):
    """Keep only incidents whose mapped column matches one of the listed values (any case)."""

    species: list[str] | None = None
    type: list[str] | None = None
    category: list[str] | None = None


class DuplicatesConfig(_Section):
    """How the same report exported twice is recognised.

    By identifier when the table has one (``incidents.id``); otherwise, or in
    addition, two reports of the same type and species within ``time_hours``
    and ``distance_m`` of each other are one incident.
    """

    enabled: bool = True
    time_hours: float = Field(1.0, ge=0)
    distance_m: float = Field(50.0, ge=0)


IncidentFormat = Literal["auto", "table", "earthranger", "smart"]


class IncidentsConfig(_Section):
    """Where the incident reports are and which columns mean what."""

    path: Path | list[Path] = Field(
        description="A file, a glob pattern ('exports/*.csv') or a list of files to merge."
    )
    format: IncidentFormat = Field(
        "auto",
        description="'table' (any columns, mapped below), 'earthranger' or 'smart' exports.",
    )
    layer: str | None = Field(None, description="Layer of a multi-layer file (GeoPackage).")
    x: str | None = Field(None, description="Column of x / longitude (tables without geometry).")
    y: str | None = Field(None, description="Column of y / latitude (tables without geometry).")
    crs: str | None = Field(
        None, description="CRS of x/y; for files with geometry, only if the file has none."
    )
    date: str | None = Field(None, description="Column holding the incident date ('date').")
    date_format: str | None = Field(None, description="strftime format; ISO 8601 when absent.")
    timezone: str | None = Field(
        None, description="IANA time zone of dates without one, e.g. 'Africa/Nairobi'; else UTC."
    )
    id: str | None = Field(None, description="Column with the report's identifier.")
    species: str | None = Field(None, description="Column with the species.")
    type: str | None = Field(None, description="Column with the incident type.")
    category: str | None = Field(None, description="Column with the incident category.")
    description: str | None = Field(None, description="Column with free-text description.")
    filters: IncidentFilters | None = None
    duplicates: DuplicatesConfig = DuplicatesConfig()

    @field_validator("path", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        if isinstance(v, list) and not v:
            raise ValueError("give at least one file")
        return v

    @field_validator("path")
    @classmethod
    def _resolve_paths(cls, v: Path | list[Path], info: ValidationInfo) -> Path | list[Path]:
        if isinstance(v, list):
            return [_resolve(p, info) for p in v]
        return _resolve(v, info)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"'{v}' is not an IANA time zone; use e.g. 'Africa/Nairobi' or 'UTC'"
                ) from None
        return v

    @model_validator(mode="after")
    def _xy_together(self) -> IncidentsConfig:
        if (self.x is None) != (self.y is None):
            raise ValueError("give both 'x' and 'y' column names, or neither")
        return self

    @property
    def paths(self) -> list[Path]:
        """The files named, glob patterns expanded (sorted), in order."""
        import glob

        out: list[Path] = []
        for p in self.path if isinstance(self.path, list) else [self.path]:
            if any(ch in str(p) for ch in "*?["):
                out.extend(Path(m) for m in sorted(glob.glob(str(p))))
            else:
                out.append(p)
        return out


MissingMonthPolicy = Literal["latest", "climatology", "error"]
SourceKind = Literal["template", "cube", "bands", "static"]

#: File suffixes of covariates opened as cubes with xarray (NetCDF, Zarr).
CUBE_SUFFIXES = (".nc", ".nc4", ".cdf", ".netcdf", ".zarr")
#: The most months back a lag or a running aggregate reaches.
MAX_LAG = 24
#: The keys that only a monthly covariate takes.
MONTHLY_KEYS = ("variable", "lags", "aggregate", "anomaly", "missing_month", "max_age_months")


class AggregateConfig(_Section):
    """A running aggregate over the months *before* the month (not the month itself)."""

    statistic: Literal["mean", "sum"] = Field(
        "mean", description="mean (e.g. greenness) or sum (e.g. rainfall) of the months."
    )
    months: int = Field(3, ge=2, le=MAX_LAG, description="How many previous months.")


class CovariateConfig(_Section):
    """One covariate raster, static or monthly.

    A covariate is monthly when its ``path`` is a ``{month}`` template
    (``ndvi/ndvi_{month}.tif``, ``{month}`` as ``YYYY-MM``: one GDAL raster per
    month), a cube with a time axis that xarray opens (NetCDF ``.nc``/``.nc4``/
    ``.cdf`` or Zarr ``.zarr``; ``variable`` names the data variable), or a
    multi-band GeoTIFF whose bands are months (``monthly: true``; each band's
    description or ``month``/``date`` tag says which). Its features are lags,
    a running aggregate and anomalies (:mod:`hwc_risk.temporal`); the temporal
    keys are refused on a static covariate.

    Example
    -------
    >>> cfg = CovariateConfig(
    ...     path="ndvi/ndvi_{month}.tif", type="continuous", lags=[0, 1],
    ...     aggregate={"statistic": "mean", "months": 3}, anomaly=True)
    >>> cfg.is_monthly, cfg.source_kind, cfg.missing_month
    (True, 'template', 'climatology')
    """

    path: Path
    type: Literal["categorical", "continuous"]
    band: int = Field(1, ge=1, description="1-based band index.")
    nodata: float | None = Field(None, description="Overrides the raster's own nodata value.")
    transform: Literal["auto", "none", "log1p"] = Field(
        "auto",
        description="Continuous only: 'auto' applies log1p to non-negative, right-skewed values.",
    )
    classes: dict[int, str] | None = Field(
        None, description="Categorical only: names of the class codes, e.g. {1: forest}."
    )
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

    _resolve_path = field_validator("path")(_resolve)

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
    def _classes_only_categorical(self) -> CovariateConfig:
        if self.classes is not None and self.type != "categorical":
            raise ValueError("'classes' is only for categorical covariates")
        return self

    @model_validator(mode="after")
    def _monthly_keys(self) -> CovariateConfig:
        kind = self.source_kind
        if self.monthly is False and kind != "static":
            raise ValueError(
                "a {month} template or a NetCDF/Zarr cube is monthly; remove 'monthly: false'"
            )
        if kind != "static" and self.type != "continuous":
            raise ValueError("monthly covariates must be type: continuous")
        set_keys = self.model_fields_set & set(MONTHLY_KEYS)
        if kind == "static" and set_keys:
            raise ValueError(
                f"{', '.join(sorted(set_keys))} only apply to monthly covariates: use a "
                "{month} path template, a NetCDF/Zarr cube, or monthly: true for a "
                "GeoTIFF whose bands are months"
            )
        if self.variable is not None and kind != "cube":
            raise ValueError("'variable' is only for NetCDF/Zarr cubes")
        if kind in ("cube", "bands") and "band" in self.model_fields_set:
            raise ValueError("'band' does not apply to a cube or to a GeoTIFF of monthly bands")
        if kind != "static" and "transform" in self.model_fields_set:
            raise ValueError(
                "'transform' does not apply to a monthly covariate (its lags, aggregates and "
                "anomalies are used as they are); remove it"
            )
        return self


class FeaturesConfig(_Section):
    """How covariates become model features."""

    neighbourhood: float = Field(
        500.0, gt=0, description="Radius (CRS units) of the class-fraction neighbourhood."
    )
    max_classes: int = Field(
        30, ge=2, description="A categorical raster with more distinct values is refused."
    )
    history: bool = Field(
        True, description="Add incident-history features (counts and densities of earlier months)."
    )
    distance_cap: float = Field(
        20_000.0,
        gt=0,
        description=(
            "Distances to a class are capped at this many CRS units (metres): farther cells "
            "get the cap. It bounds the overlap that chunked feature building reads."
        ),
    )
    season: bool = Field(
        False,
        description="Add the month of the year (month_sin, month_cos) as features, so the "
        "model can learn when as well as where.",
    )


class BackgroundConfig(_Section):
    """Background (pseudo-absence) sampling."""

    method: Literal["uniform", "target_group", "bias"] = Field(
        "uniform",
        description=(
            "uniform over the valid area; target_group: cells of every report in the "
            "incident files, all species and types (reporting effort); bias: weighted by "
            "bias_raster (e.g. patrol effort)"
        ),
    )
    n_points: int = Field(10_000, ge=100, description="Number of background cells.")
    bias_raster: Path | None = Field(None, description="Raster of sampling effort (bias).")
    months: Literal["auto", "incidents", "uniform", "effort"] = Field(
        "auto",
        description=(
            "The months of background cells: 'incidents' (drawn from the incidents' months), "
            "'uniform' over the study period, 'effort' in proportion to the reports of each "
            "month (every report in the incident files). 'auto': 'uniform' when the model has "
            "time features (monthly covariates or features.season), else 'incidents'."
        ),
    )

    _resolve_bias = field_validator("bias_raster")(_resolve_optional)

    @model_validator(mode="after")
    def _bias_needs_raster(self) -> BackgroundConfig:
        if self.method == "bias" and self.bias_raster is None:
            raise ValueError("method 'bias' needs bias_raster")
        return self


class ValidationSettings(_Section):
    """Validation settings."""

    folds: int = Field(5, ge=2, description="Spatial block cross-validation folds.")
    block_size: float | None = Field(
        None,
        gt=0,
        description="Side of a spatial block in CRS units; derived from the grid if unset.",
    )
    top_fraction: float = Field(
        0.10, gt=0, lt=1, description="Share of the area for the capture rate."
    )
    rolling_months: int = Field(
        3, ge=1, le=24, description="Last months evaluated by rolling origin (model: auto too)."
    )
    map_choice: bool = Field(
        True,
        description=(
            "model: auto only: choose the shipped map on held-out months among the model, "
            "history alone (past counts, last 12 months, a kernel density) and blends"
        ),
    )
    map_months: int = Field(
        12, ge=1, le=36, description="Held-out months the map choice pools (as many as exist)."
    )


ConnectivityLayer = Literal[
    "current", "cost_distance", "corridor", "flow_potential", "normalized_current"
]
CONNECTIVITY_LAYERS: tuple[ConnectivityLayer, ...] = ("current", "cost_distance", "corridor")
OMNISCAPE_LAYERS: tuple[ConnectivityLayer, ...] = (
    "current",
    "flow_potential",
    "normalized_current",
)


class ConnectivityConfig(_Section):
    """Connectivity layers built by hwc-risk (see :mod:`hwc_risk.connectivity`)."""

    from_covariate: str | None = Field(
        None, description="Categorical covariate whose classes give resistance and sources."
    )
    resistance: dict[int, float] | None = Field(
        None, description="Reclass table: class code -> resistance (> 0); others are barriers."
    )
    resistance_raster: Path | None = Field(
        None, description="A resistance raster to use instead of the reclass table."
    )
    raster_is_conductance: bool = False
    density_covariate: str | None = Field(
        None, description="Continuous covariate (people/km²) that raises resistance."
    )
    density_factor: float = Field(
        0.0, ge=0, description="Resistance x (1 + density_factor x density)."
    )
    sources: list[int] | None = Field(None, description="Classes of source habitat.")
    sources_raster: Path | None = Field(None, description="Raster of source cells (> 0).")
    min_patch_cells: int = Field(25, ge=1, description="Smaller habitat patches are ignored.")
    max_patches: int = Field(8, ge=2, le=50, description="Largest patches used as focal regions.")
    max_cells: int = Field(
        1_000_000, ge=10_000, description="Coarsen the grid above this many cells for the solve."
    )
    layers: list[ConnectivityLayer] = Field(
        default_factory=lambda: list(CONNECTIVITY_LAYERS),
        description="Which layers to build (omniscape default: current, flow_potential, "
        "normalized_current).",
    )
    method: Literal["pairwise", "omniscape"] = Field(
        "pairwise",
        description="current between the largest patches (pairwise) or Omniscape's moving "
        "window from every source cell (omniscape).",
    )
    radius: float = Field(5000.0, gt=0, description="omniscape: window radius (CRS units).")
    block_size: int = Field(
        3, ge=1, description="omniscape: targets are the centres of blocks this many cells a side."
    )

    _resolve_paths = field_validator("resistance_raster", "sources_raster")(_resolve_optional)

    @model_validator(mode="before")
    @classmethod
    def _omniscape_default_layers(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("method") == "omniscape" and "layers" not in data:
            return {**data, "layers": list(OMNISCAPE_LAYERS)}
        return data

    @model_validator(mode="after")
    def _omniscape_layers(self) -> ConnectivityConfig:
        wrong = {"flow_potential", "normalized_current"} & set(self.layers)
        if wrong and self.method != "omniscape":
            raise ValueError(
                f"layers {sorted(wrong)} come from the moving window; set method: omniscape"
            )
        return self

    @model_validator(mode="after")
    def _complete(self) -> ConnectivityConfig:
        if self.resistance_raster is None and (self.resistance is None or not self.from_covariate):
            raise ValueError(
                "give resistance_raster, or from_covariate with a resistance reclass table"
            )
        if self.sources is None and self.sources_raster is None:
            raise ValueError("give sources (habitat classes) or sources_raster")
        if self.sources is not None and not self.from_covariate:
            raise ValueError("sources as classes need from_covariate")
        if self.resistance and any(v <= 0 for v in self.resistance.values()):
            raise ValueError("resistance values must be positive")
        return self


class OutputsConfig(_Section):
    """What the run folder holds beyond the rasters, and how the map is made."""

    population_covariate: str | None = Field(
        None, description="Continuous covariate with population, for people in hotspots."
    )
    population_units: Literal["per_km2", "per_cell"] = Field(
        "per_km2", description="Population density per km², or people per source cell."
    )
    offline_map: bool = Field(
        False, description="Inline every script, style and image in map.html; no basemap."
    )
    generalise_incidents: float | str | None = Field(
        None,
        description=(
            "Snap incident locations on the map to a grid: degrees (0.1, 0.01, 0.001, "
            "as GBIF recommends for sensitive species) or a distance such as '1km' or '500m'."
        ),
    )
    bulletin: bool = Field(True, description="Write bulletin.html and bulletin.pdf.")
    bulletin_paper: Literal["A4", "Letter"] = Field("A4", description="Paper of bulletin.pdf.")

    @field_validator("generalise_incidents")
    @classmethod
    def _generalisation(cls, v: float | str | None) -> float | str | None:
        if v is None:
            return v
        if isinstance(v, int | float):
            if not 0 < v <= 1:
                raise ValueError("give degrees between 0 and 1 (e.g. 0.01), or a distance '1km'")
            return float(v)
        text = v.strip().lower().replace(" ", "")
        if not re.fullmatch(r"\d+(\.\d+)?(m|km)", text) or float(text.rstrip("km")) <= 0:
            raise ValueError("write a distance as e.g. '1km' or '500m', or degrees as 0.01")
        return text


class ForecastConfig(_Section):
    """The forecast of the months after the run's month (see :mod:`hwc_risk.forecast`)."""

    horizon: int = Field(
        0, ge=0, le=3, description="Months ahead to forecast (forecast.tif bands); 0: none."
    )
    level: float = Field(0.8, gt=0.5, lt=1.0, description="Prediction interval level.")
    simulations: int = Field(
        4000, ge=500, le=100_000, description="Simulated totals behind each interval."
    )
    validation_origins: int = Field(
        12, ge=1, le=60, description="Past months the totals forecast is checked from."
    )


ModelName = Annotated[str, Field(min_length=1)]


class ComputeConfig(_Section):
    """Where and in what pieces features and predictions are computed."""

    scheduler: str | None = Field(
        None,
        description=(
            "Address of a running dask.distributed scheduler (tcp://host:8786). Unset: a "
            "local pool. The run folder must be on a file system the workers share."
        ),
    )
    workers: int | None = Field(
        None, ge=1, description="Local pool size (default: the number of cores, at most 8)."
    )
    pool: Literal["threads", "processes"] = Field(
        "threads",
        description=(
            "Local pool kind: threads suit the shipped recipes (their prediction releases "
            "the GIL); processes suit a custom model that holds it."
        ),
    )
    chunk_size: int = Field(
        1024,
        ge=64,
        le=8192,
        multiple_of=64,
        description=(
            "Side, in cells, of the square chunks features and predictions are computed in. "
            "Peak memory grows with its square, not with the grid."
        ),
    )


class PipelineConfig(_Section):
    """A whole pipeline config file."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    grid: GridConfig = GridConfig()
    incidents: IncidentsConfig
    covariates: dict[str, CovariateConfig] = Field(default_factory=dict)
    features: FeaturesConfig = FeaturesConfig()
    connectivity: ConnectivityConfig | None = None
    outputs: OutputsConfig = OutputsConfig()
    background: BackgroundConfig = BackgroundConfig()
    validation: ValidationSettings = ValidationSettings()
    compute: ComputeConfig = ComputeConfig()
    forecast: ForecastConfig = ForecastConfig()
    model: ModelName = "auto"
    seed: int = 42
    output_dir: Path = Field(Path("out"), validate_default=True)
    scenarios: list[ScenarioConfig] = Field(
        default_factory=list,
        description="What-if edits evaluated with the month's model (README: Scenarios).",
    )
    config_path: Path | None = Field(None, exclude=True)

    _resolve_out = field_validator("output_dir")(_resolve)
    _distinct_scenarios = field_validator("scenarios")(distinct_names)

    @model_validator(mode="after")
    def _connectivity_refs(self) -> PipelineConfig:
        pop = self.outputs.population_covariate
        if pop is not None and (
            pop not in self.covariates or self.covariates[pop].type != "continuous"
        ):
            raise ValueError(
                f"outputs.population_covariate '{pop}' must name a continuous covariate"
            )
        conn = self.connectivity
        if conn is None:
            return self
        for key, kind in (
            (conn.from_covariate, "categorical"),
            (conn.density_covariate, "continuous"),
        ):
            if key is None:
                continue
            if key not in self.covariates:
                raise ValueError(
                    f"connectivity refers to covariate '{key}', which is not under covariates"
                )
            if self.covariates[key].type != kind:
                raise ValueError(f"connectivity needs covariate '{key}' to be {kind}")
        return self

    @model_validator(mode="after")
    def _time_inputs(self) -> PipelineConfig:
        """Monthly covariates and incidents alone: the grid must come from somewhere, and
        the keys that name covariates must name static ones."""
        monthly = sorted(k for k, c in self.covariates.items() if c.is_monthly)
        static = [k for k, c in self.covariates.items() if not c.is_monthly]
        grid = self.grid
        if not static and None in (grid.crs, grid.resolution, grid.extent):
            raise ValueError(
                "no static covariate gives the grid; set grid.crs, grid.resolution and grid.extent"
            )
        conn = self.connectivity
        named = {"outputs.population_covariate": self.outputs.population_covariate}
        if conn is not None:
            named["connectivity.from_covariate"] = conn.from_covariate
            named["connectivity.density_covariate"] = conn.density_covariate
        for key, name in named.items():
            if name in monthly:
                raise ValueError(f"{key} '{name}' is a monthly covariate; name a static one")
        if not self.covariates and not self.features.history:
            raise ValueError(
                "with no covariate the map can only come from where incidents happened "
                "before; set features.history to true (or add a covariate)"
            )
        return self

    @field_validator("covariates")
    @classmethod
    def _covariate_names(cls, v: dict[str, CovariateConfig]) -> dict[str, CovariateConfig]:
        for key in v:
            if not key.replace("_", "").isalnum():
                raise ValueError(
                    f"covariate name '{key}' must use letters, digits and underscores only"
                )
        return v


def _describe_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) if loc else "(top level)"


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation allows, without ``None`` and ``Annotated``."""
    if get_origin(annotation) is Annotated:
        return _unwrap(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return [t for arg in get_args(annotation) for t in _unwrap(arg) if t is not type(None)]
    return [annotation]


def _tagged_member(allowed: list[Any], part: Any) -> type[BaseModel] | None:
    """The member of a discriminated union (the scenario edits, on ``kind``) whose tag
    pydantic put in an error's location, or None."""
    for member in allowed:
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get("kind")
            if field is not None and get_args(field.annotation) == (part,):
                return member
    return None


def _key_path(loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], type[BaseModel] | None]:
    """The config keys of an error location, and the section holding the last one.

    Pydantic adds parts that are no keys (a union member such as ``'float'``, a
    validator such as ``'function-after[...]'``); they end the path. The section is
    None when the last key is not a field of a section (a list item, a dict key).
    """
    allowed: list[Any] = [PipelineConfig]
    keys: list[Any] = []
    section: type[BaseModel] | None = None
    for part in loc:
        if len(allowed) != 1:  # a union: the next part names its member
            member = _tagged_member(allowed, part)
            if member is None:
                break
            allowed = [member]  # a scenario edit's kind: not a key, the member's fields
            continue
        target = allowed[0]
        if isinstance(target, type) and issubclass(target, BaseModel):
            section = target
            keys.append(part)
            field = target.model_fields.get(str(part))
            if field is None:  # an unknown key: nothing below it
                break
            allowed = _unwrap(field.annotation)
            continue
        section = None
        origin = get_origin(target)
        if origin is dict or (origin in (list, tuple) and isinstance(part, int)):
            keys.append(part)
            allowed = _unwrap(get_args(target)[-1 if origin is dict else 0])
            continue
        break
    return tuple(keys), section


def _shown(value: Any) -> str:
    """A short rendering of the value a user wrote, for scalars only."""
    if isinstance(value, str | int | float | bool) or value is None:
        text = repr(value)
        return f" (got {text if len(text) <= 40 else text[:37] + '...'})"
    return ""


_SHOULD = "Input should be "


def _unknown_key(
    keys: tuple[Any, ...], section: type[BaseModel] | None
) -> tuple[str, tuple[Any, ...] | None]:
    """The problem line of an unknown key, and the known key it is probably a typo of."""
    name = _describe_loc(keys)
    valid = [k for k in (section.model_fields if section else {}) if k != "config_path"]
    close = difflib.get_close_matches(str(keys[-1]).lower(), valid, n=1, cutoff=0.6)
    if close:
        guess = (*keys[:-1], close[0])
        return f"unknown key '{name}'; did you mean '{_describe_loc(guess)}'?", guess
    if valid:
        return f"unknown key '{name}'; remove it or use one of: {', '.join(valid)}", None
    return f"unknown key '{name}'; remove it (see pipelines/template.yaml)", None


def _invalid_value(name: str, errors: list[Any]) -> str:
    """The problem line of a key with a bad value (a union's members each say what they want)."""
    messages = [err["msg"].removeprefix("Value error, ") for err in errors]
    wants = [m.removeprefix(_SHOULD) for m in messages if m.startswith(_SHOULD)]
    msg = f"{_SHOULD}{' or '.join(wants)}" if len(wants) > 1 else messages[0]
    return f"key '{name}': {msg}{_shown(errors[0].get('input'))}"


def _problems(exc: ValidationError) -> list[str]:
    """One line per problem of a config: unknown keys first, then in pydantic's order.

    A misspelt required key (``incidnets:``) is one problem, named by the
    typo with the key it should be, not also as a missing ``incidents``.
    """
    by_key: dict[tuple[Any, ...], list[Any]] = {}
    sections: dict[tuple[Any, ...], type[BaseModel] | None] = {}
    for err in exc.errors():
        keys, sections[keys] = _key_path(tuple(p for p in err["loc"] if p != "__root__"))
        by_key.setdefault(keys, []).append(err)
    found: dict[tuple[Any, ...], str] = {}
    guessed: set[tuple[Any, ...]] = set()
    for keys, errors in by_key.items():
        if errors[0]["type"] == "extra_forbidden":
            found[keys], guess = _unknown_key(keys, sections[keys])
            guessed.update([guess] if guess else [])
    for keys, errors in by_key.items():
        if keys in found or (errors[0]["type"] == "missing" and keys in guessed):
            continue
        name = _describe_loc(keys)
        if errors[0]["type"] == "missing":
            found[keys] = f"key '{name}' is missing; add it (see pipelines/template.yaml)"
        elif errors[0]["type"] in ("union_tag_invalid", "union_tag_not_found"):
            found[keys] = f"key '{name}.kind' must be one of {', '.join(EDIT_KINDS)}"
        else:
            found[keys] = _invalid_value(name, errors)
    return list(found.values())


def _format_validation_error(path: Path, exc: ValidationError) -> str:
    """Every problem pydantic found, one line each, naming the key and the fix.

    One problem gives one line, ``<path>: <problem>``; several give a line that
    counts them, then one indented line per problem.
    """
    problems = _problems(exc)
    if len(problems) == 1:
        return f"{path}: {problems[0]}"
    lines = [f"{path}: {len(problems)} problems in the config:"]
    return "\n".join(lines + [f"  {problem}" for problem in problems])


def read_yaml(path: Path, what: str) -> Any:
    """The YAML document of ``path``; errors name the file and ``what`` it is ("config",
    "scenario file") and say how to fix it."""
    if not path.is_file():
        raise MissingFileError(f"{path}: {what} not found; check the path")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}; fix the syntax") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the {what} as UTF-8") from None


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline config; paths become absolute.

    Raises
    ------
    MissingFileError
        The file does not exist.
    ConfigError
        The YAML does not parse or does not follow the schema.
    """
    path = Path(path)
    data = read_yaml(path, "config file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (name, incidents, covariates, ...)")
    data.pop("config_path", None)
    try:
        cfg = PipelineConfig.model_validate(data, context={"base_dir": path.parent.resolve()})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(path, exc)) from None
    cfg = cfg.model_copy(update={"config_path": path.resolve()})
    return _checked_scenarios(cfg)


def _checked_scenarios(cfg: PipelineConfig) -> PipelineConfig:
    """The config with its scenarios checked against its covariates (class names as
    codes); errors name the config file and ``scenarios.N.edits.M``."""
    if not cfg.scenarios:
        return cfg
    checked = check_scenarios(
        ScenarioFile(scenarios=cfg.scenarios, source=cfg.config_path),
        cfg.covariates,
        cfg.connectivity is not None,
    )
    return cfg.model_copy(update={"scenarios": checked.scenarios})
