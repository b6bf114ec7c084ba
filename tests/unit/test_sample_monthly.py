"""The sample district's monthly files: a greenness cube and incidents that move with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from pyproj import Transformer

from hwc_risk.temporal import CovariateConfig, as_months, open_source, values_at_samples
from hwc_risk.temporal.features import temporal_features

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def test_greenness_cube_and_seasonal_incidents() -> None:
    cfg = CovariateConfig(path=SAMPLE / "greenness_monthly.nc", type="continuous")
    table = pd.read_csv(SAMPLE / "incidents_seasonal.csv")
    table = table[table["incident_id"].str.startswith("HWC-S-")]
    dates = pd.to_datetime(table["date"], format="%d/%m/%Y")
    assert dates.min() >= pd.Timestamp("2024-11-01") and dates.max() < pd.Timestamp("2026-11-01")
    with rasterio.open(SAMPLE / "land_use.tif") as ds:
        land = ds.read(1)
        x, y = Transformer.from_crs("EPSG:4326", ds.crs, always_xy=True).transform(
            table["lon"].to_numpy(), table["lat"].to_numpy()
        )
        rows, cols = rasterio.transform.rowcol(ds.transform, x, y)
        from hwc_risk.grid import GridSpec

        grid = GridSpec.from_dataset(ds)
    rows, cols = np.asarray(rows), np.asarray(cols)
    on_crop = land[rows, cols] == 3
    month = dates.dt.month.to_numpy()
    harvest, dry = np.isin(month, [4, 5, 6]), np.isin(month, [8, 9, 10])
    # the hotspots move: far more of the harvest months' incidents are on cropland
    assert on_crop[harvest].mean() > on_crop[dry].mean() + 0.15
    with open_source(cfg, "ndvi") as src:
        assert src.describe_months() == "2023-11 to 2026-10, 36 months"
        assert src.grid_of(src.months[0]).crs.to_epsg() == 4326
        months = as_months(dates.dt.strftime("%Y-%m"))
        values, filled = values_at_samples(
            src, cfg, temporal_features("ndvi", cfg), grid, rows, cols, months
        )
    assert filled == []
    green = values["ndvi"]
    # cropland incidents at harvest see ripe (green) crops, in the dry months dry ones
    assert np.nanmean(green[on_crop & harvest]) > np.nanmean(green[on_crop & dry]) + 0.2
