"""The products stage: every file planners, GIS analysts and schedulers read.

From the stages before it (the plan, the features, the month's incidents,
the selection and validation, the fitted model and its risk map),
:func:`write_products` writes into the run's staging folder: the COGs with
their QGIS styles, hotspots, the change since last month, the planners' map,
the rejected rows and ``metrics.json``. The manifest, the run log and the
STAC item come last (:mod:`hwc_risk.export.records`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import rasterio
from rasterio.enums import ColorInterp

from .. import __version__
from ..bands import file_of
from ..classes import RISK_CLASSES, class_shares
from ..compute import Compute
from ..config import OutputsConfig, PipelineConfig
from ..covariates import FeatureStack
from ..explain import explain
from ..grid import GridSpec
from ..incidents import MonthIncidents
from ..plan import Plan
from ..predict import RiskMap
from ..rasters import RasterSource, align_file, source_cell_area
from ..selection import Selection, map_sentence, verdict
from ..stages import RunStages
from .change import compare_with_previous
from .forecast import ForecastProducts, forecast_products, time_metrics
from .forecast_map import ForecastLayer
from .geotiff import class_colormap, write_cog
from .hotspots import hotspot_polygons, write_hotspots
from .outputs import OutputSpec, layer_output, output_spec
from .qgis import write_class_qml, write_risk_qml
from .report import write_json
from .scenario_map import ScenarioMap
from .webmap import write_map

__all__ = [
    "Products",
    "metric_definitions",
    "people_per_cell",
    "planners_map",
    "run_tags",
    "write_products",
]


@dataclass(frozen=True, kw_only=True)
class Products:
    """The products stage's result: the files written, in order, and what the
    records need of them."""

    outputs: list[Path]
    hotspots: gpd.GeoDataFrame
    change: dict[str, Any]
    metrics: dict[str, Any]


def _cog(tiled: Path, staging: Path, spec: OutputSpec, tags: dict[str, str]) -> Path:
    """A working GeoTIFF as the COG of a registry entry, tagged with its units."""
    units = {"units": spec.units} if spec.units else {}
    return write_cog(
        tiled, staging / spec.filename, categorical=spec.categorical, tags={**tags, **units}
    )


def run_tags(name: str, month: str, model: str) -> dict[str, str]:
    """The tags every GeoTIFF of a run carries."""
    return {"month": month, "model": model, "hwc_risk_version": __version__, "run_name": name}


def people_per_cell(
    outputs: OutputsConfig, config: PipelineConfig, grid: GridSpec, work: Path
) -> tuple[Path | None, float]:
    """The population covariate aligned onto the grid, and the factor that turns its
    values into people per grid cell; (None, 1) when the config names none."""
    key = outputs.population_covariate
    if key is None:
        return None, 1.0
    source = RasterSource.of_covariate(key, config.covariates[key])
    path = align_file(source, grid, work / "people.tif")
    if outputs.population_units == "per_km2":
        return path, grid.res[0] * grid.res[1] / 1e6
    # people per source cell: scale by how many source cells one grid cell holds
    return path, grid.res[0] * grid.res[1] / source_cell_area(source, grid)


def _captures(selection: Selection) -> dict[str, float] | None:
    return selection.class_captures()


def _rasters(
    staging: Path, stack: FeatureStack, selection: Selection, risk: RiskMap, tags: dict[str, str]
) -> list[Path]:
    """The risk, spread, connectivity and class COGs with their QGIS styles."""
    with rasterio.open(risk.risk, "r+") as ds:
        ds.set_band_description(1, "relative conflict risk")
        ds.update_tags(1, units="1 (relative risk, 0-1)")
    out = [_cog(risk.risk, staging, output_spec("risk.tif"), tags)]
    out.append(write_risk_qml(staging / "risk.qml", risk.thresholds))
    if selection.spread is not None:
        spread = file_of(selection.spread)
        out.append(_cog(spread, staging, output_spec("risk_sd.tif"), tags))
    captures = _captures(selection)
    with rasterio.open(risk.classes, "r+") as ds:
        ds.update_tags(**{f"class_{s.risk_class.code}": s.tag() for s in class_shares(captures)})
        ds.write_colormap(1, class_colormap())
        ds.colorinterp = [ColorInterp.palette]
    for layer in stack.layers:
        if layer.kind == "connectivity":
            out.append(_cog(layer.file, staging, layer_output(layer.name, layer.units), tags))
    out.append(_cog(risk.classes, staging, output_spec("risk_class.tif"), tags))
    out.append(write_class_qml(staging / "risk_class.qml", captures))
    return out


def metric_definitions() -> dict[str, str]:
    """What each metric in ``metrics.json`` means."""
    return {
        "auc": "P(held-out incident cell scores above a random cell of the area)",
        "boyce": "continuous Boyce index (Hirzel et al. 2006), -1..1",
        "capture_rate_N": "share of held-out incidents in the top N % of the area",
        "pai_N": "predictive accuracy index: capture_rate_N / (N/100)",
    }


def _metrics(
    config: PipelineConfig,
    label: str,
    selection: Selection,
    risk: RiskMap,
    explanation: dict[str, Any],
) -> dict[str, Any]:
    """``metrics.json``: the validation of the model and of the baselines, side by side."""
    top = config.validation.top_fraction
    captures = _captures(selection) or {}
    validation = selection.metrics_json()
    return {
        "name": config.name,
        "month": label,
        "model": selection.recipe.name,
        "top_fraction": top,
        "summary": verdict(selection.temporal, selection.rolling, top)
        + map_sentence(selection.map_choice),
        **validation,
        "explanation": explanation,
        "connectivity_ablation": (
            selection.ablation.to_json() if selection.ablation is not None else None
        ),
        "risk_classes": [
            {
                "code": c.code,
                "label": c.label,
                "area_share": c.area_share,
                "min_risk": risk.thresholds.get(c.label),
                "held_out_capture": captures.get(c.label),
            }
            for c in RISK_CLASSES
        ],
        "metric_definitions": metric_definitions(),
    }


def _incident_tables(staging: Path, incidents: MonthIncidents) -> list[Path]:
    """The rejected rows (always) and the merged duplicates (when any)."""
    table = incidents.table
    rejected = staging / "rejected_incidents.csv"
    table.rejected.to_csv(rejected, index=False)
    out = [rejected]
    if len(table.duplicates):
        duplicates = staging / "duplicates_merged.csv"
        table.duplicates.to_csv(duplicates, index=False)
        out.append(duplicates)
    return out


def planners_map(
    run_dir: Path,
    plan: Plan,
    used: pd.DataFrame,
    hotspots: gpd.GeoDataFrame,
    captures: dict[str, float] | None,
    change_note: str | None,
    scenarios: ScenarioMap | None = None,
    forecast: ForecastLayer | None = None,
) -> Path:
    """``map.html`` of a run folder (``risk_class.tif`` already in it): the classes,
    hotspots, incidents and, with ``scenarios``, their comparison layers (with
    ``forecast``, next month's expected incidents). ``hwc-risk
    scenario`` writes it again when it adds scenarios to a run folder."""
    config, month = plan.config, plan.month.label
    return write_map(
        run_dir / "map.html",
        title=f"Human-wildlife conflict risk: {config.name}, {month}",
        grid=plan.grid,
        classes=run_dir / "risk_class.tif",
        incidents=used,
        month=month,
        class_captures=captures,
        hotspots=hotspots,
        offline=plan.offline,
        generalise=config.outputs.generalise_incidents,
        change_note=change_note,
        scenarios=scenarios,
        forecast=forecast,
    )


def _forecast(
    staging: Path, plan: Plan, stages: RunStages, hotspots: gpd.GeoDataFrame, compute: Compute
) -> ForecastProducts | None:
    """The forecast's files and metrics (issue 14), when the run made a forecast."""
    if stages.forecast is None:
        return None
    return forecast_products(
        staging,
        plan.grid,
        stages.forecast,
        stages.selection,
        stages.risk.classes,
        hotspots,
        compute.chunk_size,
    )


def write_products(
    staging: Path, plan: Plan, stages: RunStages, compute: Compute, previous: Path | None
) -> Products:
    """The products stage (see the module's docstring)."""
    config, month, selection, risk = plan.config, plan.month.label, stages.selection, stages.risk
    work, grid, used = staging / "_work", plan.grid, stages.incidents.used
    tags = run_tags(config.name, month, selection.recipe.name) | {"map": selection.shipped}
    fitted = stages.fitted
    explanation = explain(fitted.model, fitted.X, fitted.y, fitted.names, staging, config.seed)
    outputs: list[Path] = list(explanation.pop("figures"))
    outputs += _rasters(staging, stages.stack, selection, risk, tags)
    people, factor = people_per_cell(config.outputs, config, grid, work)
    hotspots = hotspot_polygons(
        risk.classes, risk.risk, grid, people, factor, incidents=used, chunk=compute.chunk_size
    )
    outputs.append(write_hotspots(staging / "hotspots.gpkg", hotspots))
    change, change_files = compare_with_previous(
        previous, grid, risk.risk, risk.classes, hotspots, work, staging, tags, compute
    )
    outputs += change_files
    forecast = _forecast(staging, plan, stages, hotspots, compute)
    outputs += forecast.files if forecast is not None else []
    outputs.append(
        planners_map(
            staging,
            plan,
            used,
            hotspots,
            _captures(selection),
            change.get("summary"),
            stages.scenarios.map(),
            forecast.layer if forecast is not None else None,
        )
    )
    outputs += _incident_tables(staging, stages.incidents)
    metrics = _metrics(config, month, selection, risk, explanation)
    metrics = time_metrics(metrics, config, selection, forecast)
    outputs.append(write_json(staging / "metrics.json", metrics))
    return Products(outputs=outputs, hotspots=hotspots, change=change, metrics=metrics)
