"""The records stage: what went into a run and what came out.

``manifest.json`` holds the config, every input with its sha256, incident
counts (read = accepted + merged + rejected, checked here), the grid, the
model and its features, every output with its sha256, timings and package
versions; ``run.log.jsonl`` the run's log; ``item.json`` a STAC item with
every file as an asset. They are written last, from the other stages'
results, so they describe the folder exactly as it is.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..compute import Compute
from ..covariates import FeatureStack
from ..grid import GridSpec
from ..history import HistorySettings
from ..incidents import MonthIncidents
from ..models import ModelRecipe
from ..plan import Plan
from ..sampling import Samples, time_record
from ..scenarios.results import scenario_inputs
from ..selection import Selection
from ..stages import RunStages
from ..temporal.inputs import input_records
from ..validation import MonthEvaluation
from .bulletin import write_run_bulletin
from .outputs import OutputSpec, spec_for
from .products import Products
from .report import file_record, package_versions, write_json
from .stac import write_stac_item

__all__ = ["LogCollector", "RunRecord", "final_fit_record", "grid_record", "write_records"]

log = logging.getLogger(__name__)


class LogCollector(logging.Handler):
    """Keeps the run's log records for ``run.log.jsonl``."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(
            {
                "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds"
                ),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
        )

    def write(self, path: Path) -> Path:
        with open(path, "w", encoding="utf-8") as fh:
            for rec in self.records:
                fh.write(json.dumps(rec) + "\n")
        return path


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """What the records describe besides the products: how the run went."""

    started: datetime
    timings: dict[str, float]
    compute: Compute
    log: LogCollector


def grid_record(grid: GridSpec) -> dict[str, Any]:
    """The grid as the manifest records it."""
    epsg = grid.epsg
    return {
        "crs": f"EPSG:{epsg}" if epsg else grid.crs.to_wkt(),
        "epsg": epsg,
        "width": grid.width,
        "height": grid.height,
        "resolution": list(grid.res),
        "bounds": list(grid.bounds),
        "transform": list(grid.transform)[:6],
    }


def _month_summary(dates: pd.Series) -> dict[str, int]:
    return {
        str(k): int(v) for k, v in dates.dt.strftime("%Y-%m").value_counts().sort_index().items()
    }


def _inputs(plan: Plan) -> list[dict[str, Any]]:
    config = plan.config
    inputs = []
    if config.config_path is not None:
        inputs.append({"role": "config", **file_record(config.config_path)})
    for path in plan.incidents.files:
        inputs.append({"role": "incidents", **file_record(path)})
    for key, cov in config.covariates.items():
        if not cov.is_monthly:
            inputs.append({"role": f"covariate:{key}", "band": cov.band, **file_record(cov.path)})
    inputs += input_records(plan.monthly, file_record)
    if plan.recipe.path is not None:
        inputs.append({"role": "model_recipe", **file_record(plan.recipe.path)})
    inputs += [i for scenario in config.scenarios for i in scenario_inputs(scenario)]
    return inputs


def _incident_counts(incidents: MonthIncidents) -> dict[str, Any]:
    """The incident counts; read = accepted + merged + rejected must hold."""
    table, used = incidents.table, incidents.used
    n_read, n_acc = table.n_read, len(table.accepted)
    n_dup, n_rej = len(table.duplicates), len(table.rejected)
    if n_acc + n_dup + n_rej != n_read:
        raise RuntimeError(
            f"incident rows do not add up: {n_read} read, {n_acc} accepted, "
            f"{n_dup} merged, {n_rej} rejected"
        )
    return {
        "files": [p.name for p in table.files],
        "read": n_read,
        "accepted": n_acc,
        "duplicates_merged": n_dup,
        "rejected": n_rej,
        "rejected_by_reason": table.rejected_counts(),
        "balance": (
            f"{n_read} read = {n_acc} accepted + {n_dup} merged duplicates + {n_rej} rejected"
        ),
        "used": len(used),
        "after_month": incidents.after_month,
        "used_by_month": _month_summary(used["date"]),
    }


def _best_baseline(selection: Selection) -> float | None:
    """The best baseline's top-10 % capture in the held-out month (None if skipped)."""
    temporal = selection.temporal
    if not isinstance(temporal, MonthEvaluation):
        return None
    value = temporal.best_baseline(0.10)[1]
    return value if np.isfinite(value) else None


def _model_record(
    recipe: ModelRecipe, samples: Samples, stack: FeatureStack, seed: int
) -> dict[str, Any]:
    return {
        "recipe": recipe.name,
        "estimator": recipe.estimator,
        "params": recipe.params,
        "n_presence": samples.n_presence,
        "n_background": int((samples.y == 0).sum()),
        "seed": seed,
        "features": stack.describe(),
    }


def _notes(grid: GridSpec) -> list[str]:
    if grid.epsg is None:
        return [
            "the grid CRS has no EPSG code; it is kept as WKT and QGIS may show it as 'Unknown'"
        ]
    return []


def _manifest(
    plan: Plan,
    stages: RunStages,
    products: Products,
    outputs: list[Path],
    staging: Path,
    record: RunRecord,
) -> dict[str, Any]:
    config, metrics = plan.config, products.metrics
    return {
        "hwc_risk_version": __version__,
        "name": config.name,
        "month": plan.month.label,
        "status": "complete",
        "started": record.started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.model_dump(mode="json"),
        "grid": grid_record(plan.grid),
        "inputs": _inputs(plan),
        "incidents": _incident_counts(stages.incidents),
        "model": _model_record(stages.selection.recipe, stages.samples, stages.stack, config.seed),
        "metrics": {
            "summary": metrics["summary"],
            "best_baseline_capture_10": _best_baseline(stages.selection),
            "temporal_holdout_model": metrics["temporal_holdout"].get("model"),
            "spatial_block_cv_model": metrics["spatial_block_cv"].get("model"),
        },
        "outputs": [file_record(p, staging) for p in outputs],
        "timings_s": record.timings,
        "compute": record.compute.record(),
        "packages": package_versions(),
        "notes": _notes(plan.grid),
    }


def _time_record(plan: Plan, stages: RunStages) -> dict[str, Any]:
    """The monthly covariates (their months, and how the months the run read were filled)
    and the samples' months (issue 14)."""
    return {
        "monthly_covariates": {m.key: m.to_json() for m in plan.monthly},
        "samples": time_record(stages.samples),
    }


def _spec(path: Path, stack: FeatureStack, run_dir: Path) -> OutputSpec:
    units = {layer.name: layer.units for layer in stack.layers}
    return spec_for(path.relative_to(run_dir).as_posix(), units)


def final_fit_record(stages: RunStages) -> dict[str, Any]:
    """How the month's model was fitted, exactly enough to fit it again (``hwc-risk
    scenario`` refits it on an existing run folder and checks the map is the same):
    the recipe, the features in the model's order and the history settings; and the
    map shipped (:mod:`hwc_risk.map_choice`) with the history settings it uses."""
    selection = stages.selection
    return {
        "recipe": stages.fitted.recipe.name,
        "features": list(stages.fitted.names),
        "history": _history_record(selection.design.history),
        "shipped": selection.shipped,
        "shipped_history": _history_record(selection.history_settings),
    }


def _history_record(history: HistorySettings | None) -> dict[str, Any] | None:
    if history is None:
        return None
    tau = history.tau_months if np.isfinite(history.tau_months) else None
    return {"tau_months": tau, "bandwidth": history.bandwidth}


def _scenario_records(
    staging: Path, plan: Plan, stages: RunStages, manifest: dict[str, Any], metrics: dict[str, Any]
) -> list[Path]:
    """The manifest's scenarios and final fit, and the bulletin (which reads the
    manifest, so it comes before ``manifest.json``; its files are added to it)."""
    manifest["scenarios"] = stages.scenarios.record(staging)
    manifest["final_fit"] = final_fit_record(stages)
    outputs = plan.config.outputs
    if not outputs.bulletin:
        return []
    written = write_run_bulletin(staging, manifest, metrics, outputs.bulletin_paper)
    manifest["outputs"] += [file_record(p, staging) for p in written]
    return written


def write_records(
    staging: Path, plan: Plan, stages: RunStages, products: Products, record: RunRecord
) -> tuple[dict[str, Any], list[Path]]:
    """The records stage: the run log, ``manifest.json`` and ``item.json``.

    Returns the manifest and every file of the run folder, in the order written.
    """
    outputs = [*stages.scenarios.outputs, *products.outputs]
    manifest = _manifest(plan, stages, products, outputs, staging, record)
    manifest["fingerprint"] = plan.fingerprint
    manifest["change_since_previous"] = products.change
    manifest["map"] = {
        "offline": plan.offline,
        "incident_generalisation": plan.config.outputs.generalise_incidents,
    }
    manifest["stac_item"] = "item.json"
    manifest |= _time_record(plan, stages)
    outputs += _scenario_records(staging, plan, stages, manifest, products.metrics)
    log.info("run complete: %s", products.metrics["summary"])
    outputs.append(record.log.write(staging / "run.log.jsonl"))
    manifest["outputs"].append(file_record(staging / "run.log.jsonl", staging))
    outputs.append(write_json(staging / "manifest.json", manifest))
    write_stac_item(
        staging / "item.json",
        run_name=plan.config.name,
        month=plan.month.label,
        grid=plan.grid,
        run_dir=staging,
        files=[(path, _spec(path, stages.stack, staging)) for path in outputs],
        model=stages.selection.recipe.name,
        inputs=manifest["inputs"],
    )
    outputs.append(staging / "item.json")
    return manifest, outputs
