"""``hwc-risk validate``: check a config and its inputs without training anything."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import rasterio

from .compute import GDAL_CACHE_MB, Compute, open_compute
from .config import PipelineConfig
from .covariates import category_values, summarise_aligned
from .export.offline import require_web_assets
from .grid import align_raster_to_file, no_data_error, resolve_grid
from .incidents import (
    locate_incidents,
    mostly_rejected,
    read_incidents,
    rejected_rows_path,
    rejection_summary,
    too_few_incidents,
    write_rejected,
)
from .mask import ValidMask
from .models import load_recipe
from .pipeline import MIN_TRAINING_INCIDENTS, parse_month

__all__ = ["validate_config"]


def validate_config(
    config: PipelineConfig, month: str | None = None, offline: bool | None = None
) -> dict[str, Any]:
    """What a run would use: grid, covariates, incident counts, model.

    Raises the same input errors a run would, so a scheduler can check a
    month's inputs before the run (exit code 2 from the command line).
    """
    first_key, first = next(iter(config.covariates.items()))
    grid = resolve_grid(config.grid, first, first_key)
    report: dict[str, Any] = {
        "grid": {
            "crs": f"EPSG:{grid.epsg}" if grid.epsg else grid.crs.to_wkt(),
            "width": grid.width,
            "height": grid.height,
            "resolution": list(grid.res),
            "bounds": [round(b, 3) for b in grid.bounds],
        },
        "covariates": {},
    }
    windows = Compute(chunk_size=config.compute.chunk_size).windows(grid.shape)
    max_classes = config.features.max_classes
    cells = grid.width * grid.height
    # aligned and read chunk by chunk, as a run does: bounded memory on any grid
    with (
        tempfile.TemporaryDirectory(prefix="hwc-risk-validate-") as tmp,
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB),
    ):
        mask = ValidMask.create(Path(tmp) / "valid.tif", grid)
        for key, cov in config.covariates.items():
            aligned = align_raster_to_file(cov, key, grid, Path(tmp) / "aligned.tif")
            categorical = cov.type == "categorical"
            summary, too_many = summarise_aligned(aligned, windows, mask, categorical, max_classes)
            if summary.n == 0:
                raise no_data_error(cov, key)
            if categorical:
                category_values(summary.classes, too_many, cov, key, max_classes)
            report["covariates"][key] = {
                "path": str(cov.path),
                "type": cov.type,
                "band": cov.band,
                "valid_share_of_grid": round(summary.n / cells, 4),
            }
        valid = ValidMask.open(mask, config.compute.chunk_size)
        report["valid_share_of_grid"] = round(valid.share, 4)
        table = locate_incidents(read_incidents(config.incidents), grid, valid)
    acc = table.accepted
    month_start = parse_month(month) if month else None
    if month_start is None and len(acc):
        month_start = pd.Timestamp(acc["date"].max()).to_period("M").to_timestamp()
    used = 0
    if month_start is not None:
        used = int((acc["date"] < month_start + pd.offsets.MonthBegin(1)).sum())
    report["incidents"] = {
        "files": [str(p) for p in table.files],
        "read": table.n_read,
        "accepted": len(acc),
        "duplicates_merged": len(table.duplicates),
        "rejected": len(table.rejected),
        "rejected_by_reason": table.rejected_counts(),
        "first_date": f"{acc['date'].min():%Y-%m-%d}" if len(acc) else None,
        "last_date": f"{acc['date'].max():%Y-%m-%d}" if len(acc) else None,
        "month": month_start.strftime("%Y-%m") if month_start is not None else None,
        "used_up_to_month": used,
    }
    written = None
    if len(table.rejected) and (mostly_rejected(table) or used < MIN_TRAINING_INCIDENTS):
        written = write_rejected(table, rejected_rows_path(config.config_path))
        report["incidents"]["rejected_file"] = str(written)
        report["incidents"]["rejections"] = rejection_summary(table, config.incidents)
    if used < MIN_TRAINING_INCIDENTS:
        raise too_few_incidents(
            table,
            config.incidents,
            used=used,
            month=report["incidents"]["month"],
            minimum=MIN_TRAINING_INCIDENTS,
            config_path=config.config_path,
            written=written,
        )
    config_dir = config.config_path.parent if config.config_path else None
    recipe = load_recipe(config.model, config_dir)
    report["model"] = {
        "recipe": recipe.name,
        "estimator": recipe.estimator,
        "file": str(recipe.path),
    }
    if config.outputs.offline_map if offline is None else offline:
        report["offline_assets"] = str(require_web_assets())
    with open_compute(config.compute) as compute:  # a scheduler must answer
        report["compute"] = compute.record()
        if compute.distributed:
            report["compute"]["workers"] = len(compute.client.nthreads())
    return report
