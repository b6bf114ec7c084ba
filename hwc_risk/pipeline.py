"""The monthly run: a short driver over typed stages.

``run(config, month)`` reads like the README's diagram::

    plan ─► features ─► incidents ─► samples ─► selection ─► fit ─► predict ─► scenarios
         ─► products ─► records

Each stage is a function in the module of its concept that takes and returns
frozen dataclasses: :func:`~hwc_risk.plan.plan_run` (config, grid, month,
incidents, fingerprint), :func:`~hwc_risk.covariates.align_covariates` and
:func:`~hwc_risk.covariates.derive_features`,
:func:`~hwc_risk.incidents.incidents_for_month`,
:func:`~hwc_risk.sampling.draw_samples`,
:func:`~hwc_risk.selection.select_and_validate`,
:func:`~hwc_risk.modelling.fit_final`, :func:`~hwc_risk.predict.map_risk`,
:func:`~hwc_risk.scenarios.stage.scenarios_stage` (what-if edits evaluated with the
month's model; nothing when the config has none),
:func:`~hwc_risk.export.products.write_products` and
:func:`~hwc_risk.export.records.write_records`. Every stage can be called on
its own.

The run folder ``<output_dir>/<name>/<YYYY-MM>/`` is built in a hidden
staging folder beside it and moved into place only when complete, so a failed
run leaves no half-written folder and an earlier run of the same month intact.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import rasterio

from .bands import FileStore
from .compute import GDAL_CACHE_MB, Compute, open_compute
from .config import PipelineConfig
from .covariates import FeatureStack
from .export.products import write_products
from .export.records import LogCollector, RunRecord, write_records
from .forecast_stage import forecast_stage
from .incidents import MonthIncidents, incidents_for_month
from .modelling import MIN_TRAINING_INCIDENTS, Design, fit_final
from .months import Month
from .plan import Plan, plan_run
from .predict import map_risk
from .runfolder import RunFolders, read_manifest
from .sampling import draw_samples
from .scenarios.command import ScenarioCommandResult, add_scenarios
from .scenarios.stage import scenarios_stage
from .selection import SelectionOptions, select_and_validate
from .stages import RunStages
from .temporal.stack import run_features

__all__ = ["MIN_TRAINING_INCIDENTS", "RunResult", "parse_month", "run", "scenario"]

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced."""

    run_dir: Path
    month: str
    metrics: dict[str, Any]
    manifest: dict[str, Any]
    outputs: list[Path] = field(default_factory=list)
    skipped: bool = False


def parse_month(value: str) -> Month:
    """The month of a ``YYYY-MM`` label (see :meth:`hwc_risk.months.Month.parse`)."""
    return Month.parse(value)


class _Timer:
    """Wall time of each stage, for the manifest and the log."""

    def __init__(self, timings: dict[str, float] | None = None) -> None:
        self.timings: dict[str, float] = {} if timings is None else timings

    @contextmanager
    def stage(self, name: str, message: str) -> Iterator[None]:
        log.info("%s ...", message)
        start = time.perf_counter()
        yield
        took = time.perf_counter() - start
        self.timings[name] = round(took, 3)
        log.info("%s done in %.1f s", message, took)


def _month_incidents(plan: Plan, stack: FeatureStack) -> MonthIncidents:
    """The incidents of the run: located on the feature stack's valid cells, up to the month."""
    cfg = plan.config
    return incidents_for_month(
        plan.incidents,
        plan.grid,
        stack.valid,
        plan.month,
        MIN_TRAINING_INCIDENTS,
        cfg.incidents,
        cfg.config_path,
    )


def _run_stages(
    plan: Plan, staging: Path, compute: Compute, previous: Path | None, record: RunRecord
) -> RunResult:
    """The stages of a run, into ``staging``."""
    cfg, timer, work = plan.config, _Timer(record.timings), staging / "_work"
    with timer.stage("features", f"aligning {len(cfg.covariates)} covariates, building features"):
        stack = run_features(plan, work, compute)
    incidents = _month_incidents(plan, stack)
    with timer.stage("samples", "sampling background and reading features at samples"):
        samples = draw_samples(
            stack, incidents.used, cfg.background, cfg.incidents, cfg.seed, work, plan.month
        )
    with timer.stage("selection", "choosing and validating the model on held-out months"):
        design = Design.for_run(samples, stack, cfg.seed, work, compute)
        options = SelectionOptions.of(cfg)
        selection = select_and_validate(design, plan.recipe, options, plan.month, plan.config_dir)
        selection = selection.on_disk(stack, FileStore(work, compute.block))
    with timer.stage(
        "fit", f"fitting '{selection.recipe.name}' on {len(incidents.used)} incidents"
    ):
        fitted = fit_final(selection.design, selection.recipe, plan.month)
    with timer.stage("predict", f"predicting the grid in chunks on {compute.describe()}"):
        ship = partial(selection.shipped_surface, month=plan.month)
        risk = map_risk(fitted.model, fitted.stack, work, compute, ship)
    with timer.stage("forecast", f"forecasting {cfg.forecast.horizon} month(s) ahead"):
        forecast = forecast_stage(
            cfg.forecast, incidents, selection, fitted, risk, work, compute, cfg.seed
        )
    with timer.stage("scenarios", f"evaluating {len(cfg.scenarios)} what-if scenario(s)"):
        scenarios = scenarios_stage(
            plan, stack, incidents, selection, fitted, risk, staging, compute
        )
    stages = RunStages(
        stack=stack,
        incidents=incidents,
        samples=samples,
        selection=selection,
        fitted=fitted,
        risk=risk,
        scenarios=scenarios,
        forecast=forecast,
    )
    with timer.stage("products", "writing GeoTIFFs, styles, hotspots, map and metrics"):
        products = write_products(staging, plan, stages, compute, previous)
    shutil.rmtree(work, ignore_errors=True)
    manifest, outputs = write_records(staging, plan, stages, products, record)
    return RunResult(
        run_dir=staging,
        month=plan.month.label,
        metrics=products.metrics,
        manifest=manifest,
        outputs=outputs,
    )


def _unchanged(plan: Plan, force: bool) -> RunResult | None:
    """The earlier run of the month, when it finished with the same fingerprint."""
    run_dir = plan.out_root / plan.month.label
    existing = read_manifest(run_dir)
    if force or existing is None or existing.get("status") != "complete":
        return None
    if existing.get("fingerprint") != plan.fingerprint:
        return None
    log.info(
        "nothing changed since the run of %s finished at %s; skipped (use --force)",
        plan.month.label,
        existing.get("finished", "?"),
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return RunResult(
        run_dir=run_dir, month=plan.month.label, metrics=metrics, manifest=existing, skipped=True
    )


@contextmanager
def _collecting_log() -> Iterator[LogCollector]:
    """The run's log records, kept for ``run.log.jsonl``."""
    collector = LogCollector()
    logging.getLogger("hwc_risk").addHandler(collector)
    try:
        yield collector
    finally:
        logging.getLogger("hwc_risk").removeHandler(collector)


def _run_in_staging(
    plan: Plan, folders: RunFolders, record_start: datetime, timings: dict[str, float]
) -> RunResult:
    """Run the stages in a staging folder and move it into place when complete."""
    label = plan.month.label
    staging = folders.staging(label)
    try:
        with (
            _collecting_log() as collector,
            # GDAL's block cache (by default 5 % of the RAM) would otherwise grow with
            # every band a step keeps open: one budget for the whole run
            rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB),
            open_compute(plan.config.compute) as compute,
        ):
            record = RunRecord(
                started=record_start, timings=timings, compute=compute, log=collector
            )
            result = _run_stages(plan, staging, compute, folders.previous(label), record)
        final = folders.commit(staging, label)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.run_dir = final
    result.outputs = [final / p.name for p in result.outputs]
    return result


def run(
    config: PipelineConfig,
    month: str | None = None,
    output_dir: Path | None = None,
    offline: bool | None = None,
    force: bool = False,
    scheduler: str | None = None,
    chunk_size: int | None = None,
) -> RunResult:
    """Run the pipeline for one month and write its run folder.

    Parameters
    ----------
    config
        A loaded config (see :func:`hwc_risk.config.load_config`).
    month
        ``YYYY-MM``; incidents dated up to the end of this month are used.
        Default: the latest month with an accepted incident.
    output_dir
        Overrides ``config.output_dir``.
    offline
        Overrides ``config.outputs.offline_map``: a map with every script inlined.
    force
        Run even when an earlier run of the month had the same config, inputs and
        version (otherwise that run is kept and reported as skipped).
    scheduler
        Address of a dask.distributed scheduler; overrides ``compute.scheduler``.
    chunk_size
        Overrides ``compute.chunk_size`` (cells per chunk side).
    """
    started, timer = datetime.now(UTC), _Timer()
    with timer.stage("plan", "planning the run: grid, incidents, inputs"):
        plan = plan_run(config, month, output_dir, offline, scheduler, chunk_size)
    folders = RunFolders(plan.out_root)
    with folders.lock(plan.month.label):
        for note in folders.recover():
            log.warning("%s", note)
        skipped = _unchanged(plan, force)
        if skipped is not None:
            return skipped
        result = _run_in_staging(plan, folders, started, timer.timings)
    log.info("run folder: %s", result.run_dir)
    return result


def scenario(
    config: PipelineConfig,
    scenarios_path: Path,
    month: str,
    output_dir: Path | None = None,
    offline: bool | None = None,
) -> ScenarioCommandResult:
    """Evaluate the scenarios of a file on the month's existing run folder, without a
    full rerun: the run's model is fitted again (checked to reproduce its ``risk.tif``)
    and evaluated on the edited inputs (:func:`hwc_risk.scenarios.command.add_scenarios`).
    """
    return add_scenarios(config, scenarios_path, month, output_dir, offline)
