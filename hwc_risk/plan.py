"""The plan stage: what a run will do, decided before any long step.

:func:`plan_run` applies the command line's overrides to the config,
resolves the analysis grid, reads the incidents, fixes the month, checks
that every input file exists, loads the model recipe and fingerprints the
inputs (a rerun with the same fingerprint is skipped). ``hwc-risk validate``
is this stage plus reading the covariates and locating the incidents
(:func:`hwc_risk.checks.validate_config`), so it stops with the same errors a
run would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from .config import ComputeConfig, PipelineConfig
from .errors import ConfigError, MissingFileError
from .export.offline import require_web_assets
from .grid import GridSpec, resolve_grid
from .incidents import IncidentTable, read_incidents, too_few_incidents, write_rejected
from .modelling import MIN_TRAINING_INCIDENTS
from .models import ModelRecipe, load_recipe
from .months import Month
from .rasters import RasterSource
from .runfolder import fingerprint
from .scenarios.edits import prepare_scenario
from .temporal.inputs import MonthlyInput, plan_monthly_inputs

__all__ = ["Plan", "apply_overrides", "input_files", "plan_run", "resolve_run_grid"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A run, planned: its config, grid, month, incidents as read, recipe and inputs."""

    config: PipelineConfig  # with the command line's overrides applied
    grid: GridSpec
    month: Month
    incidents: IncidentTable  # read and checked, not yet located on the grid
    recipe: ModelRecipe
    inputs: list[Path]  # every file the run reads
    fingerprint: str
    offline: bool
    out_root: Path  # <output_dir>/<name>
    monthly: tuple[MonthlyInput, ...] = ()  # monthly covariates: files, months, months used

    @property
    def config_dir(self) -> Path | None:
        path = self.config.config_path
        return path.parent if path is not None else None


def apply_overrides(
    config: PipelineConfig, scheduler: str | None = None, chunk_size: int | None = None
) -> PipelineConfig:
    """The config with ``--scheduler`` and ``--chunk-size`` in its compute section."""
    overrides = {k: v for k, v in {"scheduler": scheduler, "chunk_size": chunk_size}.items() if v}
    if not overrides:
        return config
    try:
        compute = ComputeConfig.model_validate({**config.compute.model_dump(), **overrides})
    except ValidationError as exc:
        err = exc.errors()[0]
        option = "--" + str(err["loc"][0]).replace("_", "-")
        raise ConfigError(f"{option} {err['input']}: {err['msg']}") from None
    return config.model_copy(update={"compute": compute})


def resolve_run_grid(config: PipelineConfig) -> GridSpec:
    """The analysis grid of a config (see :func:`hwc_risk.grid.resolve_grid`): from the
    first static covariate, else from the config's ``grid`` alone."""
    static = [(name, cov) for name, cov in config.covariates.items() if not cov.is_monthly]
    first = RasterSource.of_covariate(*static[0]) if static else None
    grid = resolve_grid(config.grid, first)
    if grid.epsg is None:
        log.warning(
            "the grid CRS has no EPSG code; outputs keep it as WKT and QGIS may show "
            "it as 'Unknown'. Set grid.crs to an EPSG code to avoid this"
        )
    return grid


def _run_month(
    table: IncidentTable, month: str | None, config: PipelineConfig, rejected_to: Path | None
) -> Month:
    """The month to map: ``--month``, else the latest month with an accepted incident.

    With no accepted incident there is none: the rejected rows are written to
    ``rejected_to`` (``validate`` gives a path; a run writes nothing) and the
    error says why the rows were rejected and where they are.
    """
    if month is not None:
        return Month.parse(month)
    if table.accepted.empty:
        written = None
        if rejected_to is not None and len(table.rejected):
            written = write_rejected(table, rejected_to)
        raise too_few_incidents(
            table,
            config.incidents,
            used=0,
            month=None,
            minimum=MIN_TRAINING_INCIDENTS,
            config_path=config.config_path,
            written=written,
        )
    return Month.of(pd.Timestamp(table.accepted["date"].max()))


def input_files(config: PipelineConfig, table: IncidentTable, recipe: ModelRecipe) -> list[Path]:
    """Every file a run reads, each checked to exist: incidents, covariates, the
    connectivity rasters and the recipe file."""
    files = list(table.files)
    named = [
        (f"covariates.{key}.path", cov.path)
        for key, cov in config.covariates.items()
        if not cov.is_monthly  # their files: plan_monthly_inputs
    ]
    conn = config.connectivity
    if conn is not None:
        named += [
            (f"connectivity.{key}", path)
            for key, path in (
                ("resistance_raster", conn.resistance_raster),
                ("sources_raster", conn.sources_raster),
            )
            if path is not None
        ]
    named += _scenario_files(config)
    for key, path in named:
        if not path.is_file():
            raise MissingFileError(f"{path}: file not found; check {key} in the config")
        files.append(path)
    if recipe.path is not None:
        files.append(recipe.path)
    return files


def _check_scenario_shapes(config: PipelineConfig, grid: GridSpec) -> None:
    """Read the scenarios' GeoPackages now (file, layer, CRS, geometry, overlap): a
    mistake stops the run before its long steps, and ``validate`` finds it."""
    source = config.config_path or "the config"
    for i, scenario in enumerate(config.scenarios):
        prepare_scenario(scenario, grid, f"{source}: scenarios.{i}")


def _scenario_files(config: PipelineConfig) -> list[tuple[str, Path]]:
    """The GeoPackages and rasters the config's scenarios read (their content is in the
    fingerprint: a plan redrawn is a new run)."""
    return [
        (f"scenarios.{i}.{key}", path)
        for i, scenario in enumerate(config.scenarios)
        for key, path, _ in scenario.input_files()
    ]


def plan_run(
    config: PipelineConfig,
    month: str | None = None,
    output_dir: Path | None = None,
    offline: bool | None = None,
    scheduler: str | None = None,
    chunk_size: int | None = None,
    rejected_to: Path | None = None,
) -> Plan:
    """The plan stage of a run (see the module's docstring); the arguments are
    :func:`hwc_risk.pipeline.run`'s, and ``rejected_to`` where ``validate`` writes the
    rejected rows if the incidents leave no month to map."""
    config = apply_overrides(config, scheduler, chunk_size)
    grid = resolve_run_grid(config)
    _check_scenario_shapes(config, grid)
    log.info("reading incidents (%s)", _describe_paths(config))
    table = read_incidents(config.incidents)
    run_month = _run_month(table, month, config, rejected_to)
    offline_map = config.outputs.offline_map if offline is None else offline
    if offline_map:
        require_web_assets()  # fail before the long steps, not at the end
    recipe = load_recipe(config.model, config.config_path.parent if config.config_path else None)
    monthly = _monthly_inputs(config, table, run_month)
    inputs = input_files(config, table, recipe) + [f for m in monthly for f in m.files]
    run_fingerprint = fingerprint(
        # where and in what chunks it computes does not change the results
        config.model_dump(mode="json", exclude={"output_dir", "compute"}),
        run_month.label,
        inputs,
        {"offline": offline_map},
    )
    out_dir = Path(output_dir if output_dir is not None else config.output_dir)
    return Plan(
        config=config,
        grid=grid,
        month=run_month,
        incidents=table,
        recipe=recipe,
        inputs=inputs,
        fingerprint=run_fingerprint,
        offline=offline_map,
        out_root=out_dir / config.name,
        monthly=monthly,
    )


def _monthly_inputs(
    config: PipelineConfig, table: IncidentTable, run_month: Month
) -> tuple[MonthlyInput, ...]:
    """The monthly covariates planned for the month (see
    :func:`~hwc_risk.temporal.inputs.plan_monthly_inputs`)."""
    accepted = table.accepted["date"]
    first = Month.of(accepted.min()) if len(accepted) else run_month
    return plan_monthly_inputs(config, run_month, min(first, run_month))


def _describe_paths(config: PipelineConfig) -> str:
    path = config.incidents.path
    return f"{len(path)} files" if isinstance(path, list) else path.name
