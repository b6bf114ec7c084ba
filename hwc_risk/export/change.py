"""Month over month: what changed since the previous month's run of the same name.

``risk_change.tif`` is this month's risk minus the previous one where both
runs share the grid; the summary counts cells that moved up or down a class
and hotspots that are new (touching no hotspot of the previous run). Both
months are read chunk by chunk.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio

from ..compute import Compute
from ..covariates import create_band
from ..grid import GridSpec
from .geotiff import write_cog
from .outputs import output_spec

__all__ = ["compare_with_previous"]


def compare_with_previous(
    previous: Path | None,
    grid: GridSpec,
    risk: Path,
    classes: Path,
    hotspots: gpd.GeoDataFrame,
    work: Path,
    staging: Path,
    tags: dict[str, str],
    compute: Compute,
) -> tuple[dict[str, Any], list[Path]]:
    """Month-over-month change against the previous month's run of the same name.

    Writes ``risk_change.tif`` (this month's risk minus the previous one) when
    both runs share the grid, and summarises classes that went up or down and
    hotspots that are new (touching no hotspot of the previous run). Reads
    both months chunk by chunk.
    """
    if previous is None:
        return {"previous": None, "summary": None}, []
    with rasterio.open(previous / "risk.tif") as ds:
        same_grid = ds.crs == grid.crs and ds.transform == grid.transform and ds.shape == grid.shape
    if not same_grid:
        return {
            "previous": previous.name,
            "summary": None,
            "note": f"the run of {previous.name} used another grid; no cell-by-cell change",
        }, []
    tiled = create_band(
        work / "change_tiled.tif",
        grid,
        "change in relative risk since the previous month",
        compute.block,
    )
    up = down = n = count = 0
    total = 0.0
    with ExitStack() as files:
        now_risk, now_cls, prev_risk, prev_cls = (
            files.enter_context(rasterio.open(p))
            for p in (risk, classes, previous / "risk.tif", previous / "risk_class.tif")
        )
        dst = files.enter_context(rasterio.open(tiled, "r+"))
        for win in compute.windows(grid.shape):
            cls, before = now_cls.read(1, window=win), prev_cls.read(1, window=win)
            both = (cls > 0) & (before > 0)
            up += int(np.count_nonzero(both & (cls > before)))
            down += int(np.count_nonzero(both & (cls < before)))
            n += int(both.sum())
            change = (now_risk.read(1, window=win) - prev_risk.read(1, window=win)).astype(
                np.float32
            )
            finite = np.isfinite(change)
            change[~finite] = np.nan
            dst.write(change, 1, window=win)
            total += float(change[finite].sum(dtype=np.float64))
            count += int(finite.sum())
    spec = output_spec("risk_change.tif")
    out = write_cog(
        tiled,
        staging / spec.filename,
        categorical=spec.categorical,
        tags={**tags, "units": str(spec.units), "previous_month": previous.name},
    )
    new_hotspots = len(hotspots)
    prev_spots_path = previous / "hotspots.gpkg"
    if prev_spots_path.exists() and len(hotspots):
        prev_spots = gpd.read_file(prev_spots_path, layer="hotspots")
        if len(prev_spots):
            joined = gpd.sjoin(
                hotspots, prev_spots[["geometry"]], how="left", predicate="intersects"
            )
            touched = joined.dropna(subset=["index_right"])["hotspot"].unique()
            new_hotspots = int(len(hotspots) - len(touched))
    summary = (
        f"Since {previous.name}: {up / max(n, 1):.1%} of the area moved to a higher risk class, "
        f"{down / max(n, 1):.1%} to a lower one; {new_hotspots} new hotspot(s)."
    )
    return {
        "previous": previous.name,
        "cells_compared": n,
        "cells_class_up": up,
        "cells_class_down": down,
        "new_hotspots": new_hotspots,
        "mean_risk_change": total / count if count else None,
        "summary": summary,
    }, [out]
