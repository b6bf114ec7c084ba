"""``forecast.tif``: expected incidents per cell for each month ahead, one band a month.

Band ``k`` holds the expected incidents per cell in the ``k``-th month after
the run's month (float32, NaN = nodata); it adds up to that month's forecast
total. Each band's description is ``expected incidents YYYY-MM`` and its
``month`` tag ``YYYY-MM``; the dataset's tags say ``forecast_issued`` (the
run's month) and the units. :func:`forecast_bands` reads the months back
(the risk cube uses it). The file is a COG like ``risk.tif`` (AVERAGE
overviews: a coarser pixel shows the mean expected incidents of its cells).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio

from ..grid import GridSpec
from ..temporal.months import as_month, month_label
from .geotiff import write_cog

__all__ = ["UNITS", "forecast_bands", "write_forecast_tif"]

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
