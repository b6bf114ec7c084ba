"""``hwc-risk validate``: check a config and its inputs without training anything.

Validation is a run's first stages, not a copy of them: the plan stage
(:func:`hwc_risk.plan.plan_run`), the covariates aligned and read
(:func:`hwc_risk.covariates.align_covariates`) and the incidents located and
checked (:func:`hwc_risk.incidents.locate_for_month`,
:meth:`~hwc_risk.incidents.MonthIncidents.check`), in a temporary folder. It
stops with the errors a run would stop with, by construction; when most rows
were rejected, or too few are usable, it writes the rejected rows beside the
config and says where.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import rasterio

from .compute import GDAL_CACHE_MB, Compute, open_compute
from .config import PipelineConfig
from .covariates import Landscape, align_covariates
from .export.offline import require_web_assets
from .incidents import (
    MonthIncidents,
    locate_for_month,
    mostly_rejected,
    rejected_rows_path,
    rejection_summary,
    write_rejected,
)
from .modelling import MIN_TRAINING_INCIDENTS
from .plan import Plan, plan_run

__all__ = ["validate_config"]


def _compute_record(compute: Compute) -> dict[str, Any]:
    record = compute.record()
    if compute.distributed:
        record["workers"] = len(compute.client.nthreads())
    return record


def _report(
    plan: Plan, landscape: Landscape, incidents: MonthIncidents, compute: Compute
) -> dict[str, Any]:
    """What a run would use, as the command prints it."""
    grid = plan.grid
    cells = grid.width * grid.height
    table, acc = incidents.table, incidents.table.accepted
    report: dict[str, Any] = {
        "grid": {
            "crs": f"EPSG:{grid.epsg}" if grid.epsg else grid.crs.to_wkt(),
            "width": grid.width,
            "height": grid.height,
            "resolution": list(grid.res),
            "bounds": [round(b, 3) for b in grid.bounds],
        },
        "covariates": {
            c.name: {
                "path": str(c.source.path),
                "type": "categorical" if c.categorical else "continuous",
                "band": c.source.band,
                "valid_share_of_grid": round(c.valid_cells / cells, 4),
            }
            for c in landscape.covariates
        },
        "monthly_covariates": {m.key: m.describe() for m in plan.monthly},
        "valid_share_of_grid": round(landscape.valid.share, 4),
        "incidents": {
            "files": [str(p) for p in table.files],
            "read": table.n_read,
            "accepted": len(acc),
            "duplicates_merged": len(table.duplicates),
            "rejected": len(table.rejected),
            "rejected_by_reason": table.rejected_counts(),
            "first_date": f"{acc['date'].min():%Y-%m-%d}" if len(acc) else None,
            "last_date": f"{acc['date'].max():%Y-%m-%d}" if len(acc) else None,
            "month": plan.month.label,
            "used_up_to_month": len(incidents.used),
        },
        "model": {
            "recipe": plan.recipe.name,
            "estimator": plan.recipe.estimator,
            "file": str(plan.recipe.path),
        },
        "compute": _compute_record(compute),
    }
    if plan.offline:
        report["offline_assets"] = str(require_web_assets())
    return report


def validate_config(
    config: PipelineConfig, month: str | None = None, offline: bool | None = None
) -> dict[str, Any]:
    """What a run would use: grid, covariates, incident counts, model.

    Raises the same input errors a run would, so a scheduler can check a
    month's inputs before the run (exit code 2 from the command line).
    """
    plan = plan_run(
        config, month, offline=offline, rejected_to=rejected_rows_path(config.config_path)
    )
    # aligned and read chunk by chunk, as a run does: bounded memory on any grid
    with (
        tempfile.TemporaryDirectory(prefix="hwc-risk-validate-") as tmp,
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB),
        open_compute(plan.config.compute) as compute,  # a scheduler must answer
    ):
        cfg = plan.config
        landscape = align_covariates(cfg.covariates, plan.grid, cfg.features, Path(tmp), compute)
        incidents = locate_for_month(plan.incidents, plan.grid, landscape.valid, plan.month)
        written = _write_rejections(incidents, cfg)
        incidents.check(MIN_TRAINING_INCIDENTS, cfg.incidents, cfg.config_path, written)
        report = _report(plan, landscape, incidents, compute)
        if written is not None:
            report["incidents"]["rejected_file"] = str(written)
            summary = rejection_summary(incidents.table, cfg.incidents)
            report["incidents"]["rejections"] = summary
        return report


def _write_rejections(incidents: MonthIncidents, config: PipelineConfig) -> Path | None:
    """When most rows were rejected, or too few are usable, the rejected rows are written
    beside the config (a failed run leaves no folder to find them in)."""
    table = incidents.table
    too_few = len(incidents.used) < MIN_TRAINING_INCIDENTS
    if not len(table.rejected) or not (mostly_rejected(table) or too_few):
        return None
    return write_rejected(table, rejected_rows_path(config.config_path))
