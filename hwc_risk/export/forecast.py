"""The forecast's products: ``forecast.tif`` (expected incidents per cell for each month
ahead, one band a month), its QGIS style, and the ``forecast`` section of ``metrics.json``.

Band ``k`` holds the expected incidents per cell in the ``k``-th month after
the run's month (float32, NaN = nodata); it adds up to that month's forecast
total. Each band's description is ``expected incidents YYYY-MM`` and its
``month`` tag ``YYYY-MM``; the dataset's tags say ``forecast_issued`` (the
run's month) and the units. :func:`forecast_bands` reads the months back
(the risk cube uses it). The file is a COG like ``risk.tif`` (AVERAGE
overviews: a coarser pixel shows the mean expected incidents of its cells).

:func:`forecast_products` is the forecast's part of the products stage: the COG and
``forecast.qml``, each month's total split over the risk classes and hotspots, the
``forecast`` section with the checks of totals and surfaces, the summary sentence,
and the map's layer and chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio

from ..config import PipelineConfig
from ..forecast import Interval
from ..forecast_stage import NextMonths, split_over_zones, surface_validation
from ..grid import GridSpec
from ..selection import Selection
from ..temporal.months import as_month, month_label, months_of_index
from .chart import monthly_chart_svg
from .forecast_map import ForecastLayer
from .geotiff import write_cog
from .qgis import write_expected_qml

__all__ = [
    "UNITS",
    "ForecastProducts",
    "forecast_bands",
    "forecast_products",
    "time_metrics",
    "write_forecast_tif",
]

UNITS = "expected incidents per cell per month"


def write_forecast_tif(
    grid: GridSpec,
    issued: np.datetime64,
    layers: Sequence[tuple[np.datetime64, Path]],
    out: Path,
    block: int = 256,
) -> Path:
    """Stack single-band expected-incident layers (one per month ahead) into the COG ``out``.

    The layers are copied a block row at a time; the tiled stack beside
    ``out`` is removed after the COG conversion.
    """
    tiled = out.with_name(out.stem + ".tiled.tif")
    profile = grid.profile(
        dtype="float32", nodata=np.nan, count=len(layers), blockxsize=block, blockysize=block
    )
    with rasterio.open(tiled, "w", **profile) as dst:
        for band, (month, path) in enumerate(layers, start=1):
            with rasterio.open(path) as src:
                for _, win in src.block_windows(1):
                    dst.write(src.read(1, window=win).astype(np.float32), band, window=win)
            label = month_label(as_month(month))
            dst.set_band_description(band, f"expected incidents {label}")
            dst.update_tags(band, month=label, units=UNITS)
    write_cog(
        tiled,
        out,
        categorical=False,
        tags={"forecast_issued": month_label(as_month(issued)), "units": UNITS},
    )
    tiled.unlink()
    return out


def forecast_bands(path: Path) -> dict[np.datetime64, int]:
    """The months of a ``forecast.tif``: month -> band."""
    with rasterio.open(path) as ds:
        out = {}
        for band in range(1, ds.count + 1):
            text = ds.tags(band).get("month")
            if text:
                out[as_month(text)] = band
    return out


@dataclass(frozen=True, kw_only=True)
class ForecastProducts:
    """What the forecast adds to the products: files, ``metrics.json``'s ``forecast``
    section, a sentence for the summary, and the map's layer and chart."""

    files: list[Path]
    section: dict[str, Any]
    sentence: str
    layer: ForecastLayer | None


def _ramp_values(path: Path) -> list[float]:
    """Stops of the style ramp: 0, then quantiles of band 1's positive values."""
    with rasterio.open(path) as ds:
        level = max(0, min(len(ds.overviews(1)) - 1, 1))
        factor = ds.overviews(1)[level] if ds.overviews(1) else 1
        data = ds.read(1, out_shape=(max(1, ds.height // factor), max(1, ds.width // factor)))
    positive = data[np.isfinite(data) & (data > 0)]
    if positive.size == 0:
        return [0.0, 0.25, 0.5, 0.75, 1.0]
    q = np.quantile(positive, [0.5, 0.9, 0.99, 1.0]).tolist()
    values = [0.0]
    for v in q:
        values.append(max(v, values[-1] + 1e-9))
    return values


def _interval_json(iv: Interval) -> dict[str, float]:
    return iv.to_json()


def _sentence(nm: NextMonths, by_class: dict[str, Interval], check: dict[str, Any]) -> str:
    """``Next month (2026-11): 31 incidents expected (80 % interval 22-41), 12 of them
    (7-18) in very high areas; over the last 12 months the forecast missed by 4.1 a month,
    the same month last year by 5.9.``"""
    total = nm.totals[0]
    pct = f"{nm.config.level:.0%}".replace("%", " %")
    text = (
        f"Next month ({nm.months[0].label}): {total.expected:.0f} incidents expected "
        f"({pct} interval {total.lower:.0f}-{total.upper:.0f})"
    )
    top = by_class.get("very high")
    if top is not None:
        text += f", {top.expected:.0f} of them ({top.lower:.0f}-{top.upper:.0f}) in very high areas"
    rows = check.get("by_horizon") or []
    if rows:
        row = rows[0]
        text += (
            f"; over the last {int(row['n'])} months the forecast missed by {row['mae']:.1f} a "
            f"month, the same month last year by {row['mae_seasonal_naive']:.1f}"
        )
    return text + "."


def _chart(nm: NextMonths, shown: int = 24) -> str:
    """The chart of the last ``shown`` months' incidents and the forecast."""
    months = months_of_index(np.arange(nm.first.index, nm.issued.index + 1))[-shown:]
    counts = nm.counts[-shown:]
    forecast = [(as_month(m), iv) for m, iv in zip(nm.months, nm.totals, strict=True)]
    level = f"{nm.config.level:.0%}"
    return monthly_chart_svg(
        months, counts, forecast, title=f"Incidents per month, and the forecast ({level} interval)"
    )


def forecast_products(
    staging: Path,
    grid: GridSpec,
    nm: NextMonths,
    selection: Selection,
    classes: Path,
    hotspots: gpd.GeoDataFrame | None,
    chunk: int,
) -> ForecastProducts:
    """``forecast.tif`` and ``forecast.qml`` in ``staging``, and the ``forecast`` section."""
    section: dict[str, Any] = {"horizon": nm.config.horizon, "level": nm.config.level}
    section["issued"] = nm.issued.label
    ablation = selection.time_ablation.to_json() if selection.time_ablation else None
    if nm.forecast is None:
        section |= {"skipped": nm.skipped, "ablation": ablation}
        return ForecastProducts(files=[], section=section, sentence="", layer=None)
    layers = [(as_month(m), path) for m, path in nm.surfaces]
    tif = write_forecast_tif(grid, as_month(nm.issued), layers, staging / "forecast.tif")
    qml = write_expected_qml(staging / "forecast.qml", _ramp_values(tif), "incidents per cell")
    split = split_over_zones(nm, nm.forecast, tif, grid, classes, hotspots, chunk)
    months = []
    for h, (month, total) in enumerate(zip(nm.months, nm.totals, strict=True)):
        months.append(
            {
                "month": month.label,
                **total.to_json(),
                "by_class": {k: v.to_json() for k, v in split.by_class[h].items()},
                "by_hotspot": {k: v.to_json() for k, v in split.by_hotspot[h].items()},
                "covariates_used": [u.to_json() for u in nm.covariates_used[h]],
            }
        )
    check = nm.totals_check.to_json()
    section |= {
        "model": nm.forecast.model.to_json(),
        "monthly_counts": {"first": nm.first.label, "counts": nm.counts.astype(int).tolist()},
        "months": months,
        "totals_validation": check,
        "surface_validation": surface_validation(selection.rolling),
        "ablation": ablation,
    }
    sentence = _sentence(nm, split.by_class[0], check)
    section["summary"] = sentence
    layer = ForecastLayer(path=tif, month=nm.months[0].label, total=nm.totals[0],
                          chart=_chart(nm), ramp=_ramp_values(tif))  # fmt: skip
    return ForecastProducts(files=[tif, qml], section=section, sentence=sentence, layer=layer)


def run_inputs(config: PipelineConfig, selection: Selection) -> dict[str, Any]:
    """What the model was given (``metrics.json`` ``inputs``): static covariates, monthly
    covariates and their features, incident history, season, and the features kept."""
    design = selection.design
    kept = design.names
    return {
        "covariates": [k for k, c in config.covariates.items() if not c.is_monthly],
        "monthly_covariates": {
            k: [n for n in kept if n == k or n.startswith(f"{k}_")]
            for k, c in config.covariates.items()
            if c.is_monthly
        },
        "history": design.history is not None,
        "season": "month_sin" in kept,
        "features": kept,
    }


def time_metrics(
    metrics: dict[str, Any],
    config: PipelineConfig,
    selection: Selection,
    fc: ForecastProducts | None,
) -> dict[str, Any]:
    """``metrics.json`` with what the run used (``inputs``), the time features' ablation and
    the ``forecast`` section; the summary ends with the forecast's sentence."""
    out = dict(metrics)
    out["inputs"] = run_inputs(config, selection)
    ablation = selection.time_ablation
    out["time_ablation"] = ablation.to_json() if ablation is not None else None
    if fc is not None:
        out["forecast"] = fc.section
        if fc.sentence:
            out["summary"] = f"{out['summary']} {fc.sentence}"
    return out
