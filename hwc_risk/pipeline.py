"""The monthly run: wires the stages together and writes the run folder.

``run(config, month)`` reads the incidents and covariates, builds features,
samples, validates the model against baselines, fits it on all incidents up to
the end of the month, predicts the grid window by window and writes
``<output_dir>/<name>/<YYYY-MM>/``. The folder is built in a hidden staging
folder beside it and moved into place only when complete, so a failed run
leaves no half-written folder and an earlier run of the same month intact.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from pydantic import ValidationError
from rasterio.enums import ColorInterp
from rasterio.warp import transform_bounds

from . import __version__
from .classes import RISK_CLASSES
from .compute import GDAL_CACHE_MB, Compute, open_compute, run_windows
from .config import ComputeConfig, CovariateConfig, PipelineConfig
from .covariates import FeatureStack, build_feature_stack, create_band
from .errors import ConfigError, InputError, MissingFileError
from .explain import explain
from .export.geotiff import class_colormap, write_cog
from .export.hotspots import hotspot_polygons, write_hotspots
from .export.offline import require_web_assets
from .export.qgis import write_class_qml, write_risk_qml
from .export.report import file_record, package_versions, write_json
from .export.stac import write_stac_item
from .export.webmap import write_map
from .grid import GridSpec, align_raster_to_file, resolve_grid
from .history import choose_history, month_number
from .incidents import (
    IncidentTable,
    locate_incidents,
    read_incidents,
    too_few_incidents,
    warn_if_mostly_rejected,
)
from .mask import ValidMask
from .modelling import MIN_TRAINING_INCIDENTS, Design, fit_model, rolling_origin, spatial_cv
from .models import ModelRecipe, load_recipe
from .predict import predict_to_geotiff
from .runfolder import RunFolders, fingerprint, read_manifest
from .sampling import Samples, sample_background, sample_weighted
from .surfaces import Area, RankedSurface, class_window
from .validation import default_block_size

__all__ = ["MIN_TRAINING_INCIDENTS", "RunResult", "parse_month", "run"]

log = logging.getLogger(__name__)


_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass
class RunResult:
    """What a run produced."""

    run_dir: Path
    month: str
    metrics: dict[str, Any]
    manifest: dict[str, Any]
    outputs: list[Path] = field(default_factory=list)
    skipped: bool = False


def parse_month(value: str) -> pd.Timestamp:
    """First day of a ``YYYY-MM`` month."""
    if not _MONTH.match(value):
        raise ConfigError(f"--month '{value}' is not a month; write it as YYYY-MM, e.g. 2026-10")
    return pd.Timestamp(f"{value}-01")


class _LogCollector(logging.Handler):
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


def _describe_paths(config: PipelineConfig) -> str:
    path = config.incidents.path
    if isinstance(path, list):
        return f"{len(path)} files"
    return path.name


def _input_files(config: PipelineConfig, table: IncidentTable) -> list[Path]:
    files = list(table.files)
    named = [(f"covariates.{key}.path", cov.path) for key, cov in config.covariates.items()]
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
    for key, path in named:
        if not path.is_file():
            raise MissingFileError(f"{path}: file not found; check {key} in the config")
        files.append(path)
    config_dir = config.config_path.parent if config.config_path else None
    recipe = load_recipe(config.model, config_dir)
    if recipe.path is not None:
        files.append(recipe.path)
    return files


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, message: str) -> Iterator[None]:
        log.info("%s ...", message)
        start = time.perf_counter()
        yield
        took = time.perf_counter() - start
        self.timings[name] = round(took, 3)
        log.info("%s done in %.1f s", message, took)


def connectivity_ablation(
    design: Design,
    recipe: ModelRecipe,
    origins: list[int],
    fractions: tuple[float, ...],
    rolling: dict[str, Any],
    spatial: dict[str, Any],
    folds: int,
    block_size: float,
    target: int,
) -> dict[str, Any]:
    """The model's validation with and without the connectivity layers hwc-risk built."""
    reduced = design.without("connectivity")
    r_without = rolling_origin(reduced, recipe, origins, fractions, with_baselines=False)
    s_without, _ = spatial_cv(
        reduced, recipe, folds, block_size, fractions, target, with_spread=False
    )
    out: dict[str, Any] = {
        "layers": [layer.name for layer in design.stack.layers if layer.kind == "connectivity"],
        "with": {
            "temporal_holdout": rolling.get("model", rolling),
            "spatial_block_cv": spatial.get("model", spatial),
        },
        "without": {
            "temporal_holdout": r_without.get("model", r_without),
            "spatial_block_cv": s_without.get("model", s_without),
        },
    }
    key = "capture_rate_10"
    verdicts = []
    for name in ("temporal_holdout", "spatial_block_cv"):
        w, wo = out["with"][name], out["without"][name]
        if key in w and key in wo:
            diff = w[key] - wo[key]
            verdicts.append(
                f"{name.replace('_', ' ')}: top-10 % capture {w[key]:.1%} with, "
                f"{wo[key]:.1%} without ({diff * 100:+.1f} points)"
            )
    out["summary"] = "; ".join(verdicts) if verdicts else "not enough held-out incidents to compare"
    return out


def _origins(months: np.ndarray, run_month: int, at_least: int) -> list[int]:
    """Held-out months for rolling origin: the last ``at_least`` months with incidents up to
    the run's month, extended back (up to 6) until they hold 30 incidents."""
    have = sorted({int(m) for m in months if m <= run_month})
    if run_month not in have:
        have.append(run_month)  # reported as skipped: nothing to test on
    origins = have[-at_least:]
    while len(origins) < min(6, len(have) - 3):
        if int(np.isin(months, origins).sum()) >= 30:
            break
        origins = have[-(len(origins) + 1) :]
    return origins


def _score(res: dict[str, Any]) -> float:
    """Skill used to compare models: mean of top-10 % and top-20 % capture and AUC."""
    if "skipped" in res:
        return float("-inf")
    m = res["model"]
    values = [m.get("capture_rate_10"), m.get("capture_rate_20"), m.get("auc")]
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("-inf")


def _month_scores(res: dict[str, Any]) -> np.ndarray:
    out = []
    for month in res.get("per_month", []):
        m = month["model"]
        values = [m.get("capture_rate_10"), m.get("capture_rate_20"), m.get("auc")]
        finite = [v for v in values if v is not None and np.isfinite(v)]
        if finite:
            out.append(float(np.mean(finite)))
    return np.asarray(out)


def _choose(results: dict[str, dict[str, Any]], top: float) -> tuple[str, dict[str, Any]]:
    """The simplest candidate within one standard error of the best skill (the 1-SE rule).

    Skill is :func:`_score` on the rolling-origin months; candidates are taken
    in the recipe's order, simplest first. With few held-out incidents the
    months disagree, and the rule then prefers the model less likely to have
    won by chance.
    """
    key = f"capture_rate_{round(top * 100)}"
    scored = {
        n: (r["model"].get(key, float("nan")), _score(r))
        for n, r in results.items()
        if "skipped" not in r
    }
    if not scored:
        first = next(iter(results))
        return first, {
            "chosen": first,
            "reason": "no held-out month to compare the candidates on; took the first",
            "candidates": {n: None for n in results},
        }
    best = max(scored, key=lambda n: scored[n][1])
    per_month = _month_scores(results[best])
    se = float(per_month.std(ddof=1) / np.sqrt(per_month.size)) if per_month.size > 1 else 0.0
    chosen = next(n for n in scored if scored[n][1] >= scored[best][1] - se)
    months = results[chosen]["months"]
    return chosen, {
        "chosen": chosen,
        "reason": (
            f"simplest candidate within one standard error ({se:.3f}) of the best skill "
            f"(mean of top-10 % and top-20 % capture and AUC; best: {best}) on "
            f"{len(months)} rolling-origin month(s) ({', '.join(months)}); top-{top:.0%} "
            "capture: " + ", ".join(f"{n} {v[0]:.1%}" for n, v in scored.items())
        ),
        "skill": {n: v[1] for n, v in scored.items()},
        "candidates": {n: results[n].get("model") for n in results},
    }


def _run_month_result(rolling: dict[str, Any], label: str) -> dict[str, Any]:
    """The rolling-origin result of the run's own month (the temporal holdout)."""
    for result in rolling.get("per_month", []):
        if result["test_month"] == label:
            return dict(result)
    return {"skipped": f"no incidents in {label} to test on"}


def _background_cells(
    config: PipelineConfig,
    grid: GridSpec,
    valid: ValidMask,
    rng: np.random.Generator,
    work: Path,
) -> np.ndarray:
    """Flat indices of background cells by the configured method."""
    bg = config.background
    if bg.method == "uniform":
        return sample_background(valid, bg.n_points, rng)
    if bg.method == "bias":
        assert bg.bias_raster is not None
        raster = CovariateConfig(path=bg.bias_raster, type="continuous")
        work.mkdir(parents=True, exist_ok=True)
        effort = align_raster_to_file(raster, "background.bias_raster", grid, work / "bias.tif")
        cells = sample_weighted(effort, valid, bg.n_points, rng)
        if cells.size == 0:
            raise InputError(
                f"{bg.bias_raster}: background.bias_raster has no positive value on valid "
                "cells; check the raster"
            )
        return cells
    # target group: every report of any species or type marks where people report
    everyone = read_incidents(config.incidents.model_copy(update={"filters": None}))
    located = locate_incidents(everyone, grid, valid)
    cells = np.unique(
        located.accepted["row"].to_numpy() * grid.width + located.accepted["col"].to_numpy()
    )
    if cells.size < 50:
        raise InputError(
            f"background.method target_group: only {cells.size} distinct report cells in "
            "the incident files; use method uniform or a bias raster"
        )
    if cells.size > bg.n_points:
        cells = np.sort(rng.choice(cells, size=bg.n_points, replace=False))
    return cells


def _best_baseline(temporal: dict[str, Any]) -> float | None:
    if "skipped" in temporal:
        return None
    values = [temporal[n].get("capture_rate_10") for n in ("past_counts", "kde", "uniform")]
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return max(finite) if finite else None


def compare_with_previous(
    previous: Path | None,
    grid: GridSpec,
    risk: Path,
    classes: Path,
    hotspots: Any,
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
    out = write_cog(
        tiled,
        staging / "risk_change.tif",
        categorical=False,
        tags={**tags, "units": "difference of relative risk", "previous_month": previous.name},
    )
    new_hotspots = len(hotspots)
    prev_spots_path = previous / "hotspots.gpkg"
    if prev_spots_path.exists() and len(hotspots):
        import geopandas as gpd

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


def _class_sentence(label: str, share: float, captures: dict[str, float] | None) -> str:
    text = f"{label}: {share:.0%} of the area"
    if captures and label in captures:
        text += f", {captures[label]:.0%} of held-out incidents"
    return text


def _people_per_cell(
    config: PipelineConfig, grid: GridSpec, work: Path
) -> tuple[Path, float] | None:
    """The population covariate aligned onto the grid, and the factor that turns its
    values into people per grid cell; None if the config names none."""
    key = config.outputs.population_covariate
    if key is None:
        return None
    cov = config.covariates[key]
    path = align_raster_to_file(cov, key, grid, work / "people.tif")
    if config.outputs.population_units == "per_km2":
        return path, grid.res[0] * grid.res[1] / 1e6
    # people per source cell: scale by how many source cells one grid cell holds
    with rasterio.open(cov.path) as ds:
        left, bottom, right, top = transform_bounds(ds.crs, grid.crs, *ds.bounds)
        src_cell_area = (right - left) * (top - bottom) / (ds.width * ds.height)
    return path, grid.res[0] * grid.res[1] / src_cell_area


def _verdict(temporal: dict[str, Any], rolling: dict[str, Any], fraction: float) -> str:
    text = _month_verdict(temporal, fraction)
    if "skipped" in rolling or len(rolling.get("months", [])) < 2:
        return text
    key = f"capture_rate_{round(fraction * 100)}"
    best = max(
        (rolling[n][key] for n in ("past_counts", "kde", "uniform")),
        key=lambda v: -1.0 if not np.isfinite(v) else v,
    )
    return text + (
        f" Over the last {len(rolling['months'])} months it held {rolling['model'][key]:.0%} "
        f"on average, the best baseline {best:.0%}."
    )


def _month_verdict(temporal: dict[str, Any], fraction: float) -> str:
    if "skipped" in temporal:
        return f"temporal holdout skipped: {temporal['skipped']}"
    key = f"capture_rate_{round(fraction * 100)}"
    model = temporal["model"][key]
    best_name, best = max(
        ((n, temporal[n][key]) for n in ("past_counts", "kde", "uniform")),
        key=lambda item: -1.0 if not np.isfinite(item[1]) else item[1],
    )
    pct = f"{fraction:.0%}"
    text = (
        f"In {temporal['test_month']} the model's top {pct} of the area held {model:.0%} of the "
        f"{temporal['n_test_incidents']} incidents; the best baseline ({best_name}) "
        f"held {best:.0%}."
    )
    if model > best:
        return text + " The model beats every baseline."
    return text + f" The model does NOT beat the {best_name} baseline this month."


def _month_summary(dates: pd.Series) -> dict[str, int]:
    return {
        str(k): int(v) for k, v in dates.dt.strftime("%Y-%m").value_counts().sort_index().items()
    }


def _grid_record(grid: GridSpec) -> dict[str, Any]:
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
    started = datetime.now(UTC)
    timer = _Timer()
    month_start = parse_month(month) if month is not None else None
    overrides = {"scheduler": scheduler, "chunk_size": chunk_size}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides:
        try:
            compute_cfg = ComputeConfig.model_validate({**config.compute.model_dump(), **overrides})
        except ValidationError as exc:
            err = exc.errors()[0]
            option = "--" + str(err["loc"][0]).replace("_", "-")
            raise ConfigError(f"{option} {err['input']}: {err['msg']}") from None
        config = config.model_copy(update={"compute": compute_cfg})

    with timer.stage("grid", "resolving the analysis grid"):
        first_key, first = next(iter(config.covariates.items()))
        grid = resolve_grid(config.grid, first, first_key)
        if grid.epsg is None:
            log.warning(
                "the grid CRS has no EPSG code; outputs keep it as WKT and QGIS may show "
                "it as 'Unknown'. Set grid.crs to an EPSG code to avoid this"
            )
    with timer.stage("incidents", f"reading incidents ({_describe_paths(config)})"):
        table = read_incidents(config.incidents)

    if month_start is None:
        if table.accepted.empty:
            raise too_few_incidents(
                table,
                config.incidents,
                used=0,
                month=None,
                minimum=MIN_TRAINING_INCIDENTS,
                config_path=config.config_path,
            )
        month_start = pd.Timestamp(table.accepted["date"].max()).to_period("M").to_timestamp()
    label = month_start.strftime("%Y-%m")
    month_end = month_start + pd.offsets.MonthBegin(1)

    out_root = Path(output_dir if output_dir is not None else config.output_dir) / config.name
    folders = RunFolders(out_root)
    offline_flag = config.outputs.offline_map if offline is None else offline
    with folders.lock(label):
        for note in folders.recover():
            log.warning("%s", note)
        inputs = _input_files(config, table)
        fp = fingerprint(
            # where and in what chunks it computes does not change the results
            config.model_dump(mode="json", exclude={"output_dir", "compute"}),
            label,
            inputs,
            {"offline": offline_flag},
        )
        existing = read_manifest(out_root / label)
        if (
            not force
            and existing is not None
            and existing.get("status") == "complete"
            and existing.get("fingerprint") == fp
        ):
            log.info(
                "nothing changed since the run of %s finished at %s; skipped (use --force)",
                label,
                existing.get("finished", "?"),
            )
            metrics = json.loads((out_root / label / "metrics.json").read_text())
            return RunResult(
                run_dir=out_root / label,
                month=label,
                metrics=metrics,
                manifest=existing,
                skipped=True,
            )
        staging = folders.staging(label)
        collector = _LogCollector()
        logging.getLogger("hwc_risk").addHandler(collector)
        try:
            # GDAL's block cache (by default 5 % of the RAM) would otherwise grow with
            # every band a step keeps open: one budget for the whole run
            with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), open_compute(config.compute) as compute:
                result = _run_in(
                    staging,
                    config,
                    grid,
                    table,
                    month_start,
                    month_end,
                    timer,
                    started,
                    offline_flag,
                    fp,
                    folders.previous(label),
                    collector,
                    compute,
                )
            final = folders.commit(staging, label)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            logging.getLogger("hwc_risk").removeHandler(collector)
    result.run_dir = final
    result.outputs = [final / p.name for p in result.outputs]
    log.info("run folder: %s", final)
    return result


def _run_in(
    staging: Path,
    config: PipelineConfig,
    grid: GridSpec,
    table: IncidentTable,
    month_start: pd.Timestamp,
    month_end: pd.Timestamp,
    timer: _Timer,
    started: datetime,
    offline: bool,
    run_fingerprint: str,
    previous: Path | None,
    collector: _LogCollector,
    compute: Compute,
) -> RunResult:
    label = month_start.strftime("%Y-%m")
    if offline:
        require_web_assets()  # fail before the long steps, not at the end
    work = staging / "_work"
    config_dir = config.config_path.parent if config.config_path else None
    recipe = load_recipe(config.model, config_dir)
    fractions = tuple(sorted({0.05, config.validation.top_fraction, 0.20}))

    with timer.stage(
        "features", f"aligning {len(config.covariates)} covariates, building features"
    ):
        stack = build_feature_stack(
            config.covariates,
            grid,
            config.features,
            work / "features",
            config.connectivity,
            compute,
        )
    located = locate_incidents(table, grid, stack.valid)

    acc = located.accepted
    in_range = (acc["date"] < month_end).to_numpy()
    used = acc.loc[in_range].reset_index(drop=True)
    if len(used) < MIN_TRAINING_INCIDENTS:
        raise too_few_incidents(
            located,
            config.incidents,
            used=len(used),
            month=label,
            minimum=MIN_TRAINING_INCIDENTS,
            config_path=config.config_path,
        )
    warn_if_mostly_rejected(
        located, config.incidents, "the run folder's rejected_incidents.csv lists them"
    )

    with timer.stage("samples", "sampling background and reading features at samples"):
        rng = np.random.default_rng(config.seed)
        bg = _background_cells(config, grid, stack.valid, rng, work)
        bg_rows, bg_cols = np.unravel_index(bg, grid.shape)
        rows = np.concatenate([used["row"].to_numpy(), bg_rows]).astype(np.int64)
        cols = np.concatenate([used["col"].to_numpy(), bg_cols]).astype(np.int64)
        y = np.concatenate([np.ones(len(used)), np.zeros(bg.size)]).astype(np.int8)
        p_months = month_number(used["date"].to_numpy(dtype="datetime64[ns]"))
        # background cells get months drawn like the incidents', so history features
        # describe them at comparable times
        months = np.concatenate([p_months, rng.choice(p_months, size=bg.size)])
        dates = np.concatenate(
            [used["date"].to_numpy(dtype="datetime64[ns]"), np.full(bg.size, np.datetime64("NaT"))]
        )
        samples = Samples(stack.values_at(rows, cols), y, rows, cols, dates, stack.names)

    run_month = int(month_number(np.array([np.datetime64(month_start, "M")]))[0])
    data_months = sorted(set(p_months.tolist()))
    origins = _origins(p_months, run_month, config.validation.rolling_months)
    history_choice: dict[str, Any] | None = None
    settings = None
    if config.features.history and len(data_months) >= 3:
        with timer.stage("history", "choosing incident-history bandwidth and recency"):
            first_test = origins[0] if origins else run_month
            eval_months = [m for m in data_months if m < first_test][-6:]
            settings, history_choice = choose_history(
                rows[y == 1],
                cols[y == 1],
                p_months,
                eval_months,
                stack.valid,
                grid.cell_size,
            )
    design = Design(
        stack, samples.X, y, rows, cols, months, settings, work, config.seed, compute=compute
    )

    block_size = config.validation.block_size or default_block_size(
        grid.shape, grid.cell_size, config.features.neighbourhood
    )
    model_choice: dict[str, Any] | None = None
    if recipe.estimator == "auto":
        candidates = [str(c) for c in recipe.params.get("candidates", ["maxent", "glm", "gbm"])]
        static = design.with_history(None)
        results = {}
        with timer.stage(
            "validation_temporal", f"rolling-origin months for {len(candidates)} candidates"
        ):
            for name in candidates:
                results[name] = rolling_origin(
                    static, load_recipe(name, config_dir), origins, fractions
                )
            chosen, model_choice = _choose(results, config.validation.top_fraction)
            recipe = load_recipe(chosen, config_dir)
            rolling = results[chosen]
            if any(layer.kind == "fraction" for layer in stack.layers):
                # do neighbourhood class fractions add skill, or only noise (few incidents)?
                no_fractions = static.without("fraction")
                r_nf = rolling_origin(no_fractions, recipe, origins, fractions)
                keep_fractions = _score(rolling) > _score(r_nf)
                model_choice["neighbourhood_fractions"] = {
                    "used": bool(keep_fractions),
                    "score_with": _score(rolling),
                    "score_without": _score(r_nf),
                }
                verb = "added" if keep_fractions else "did not add"
                model_choice["reason"] += f"; neighbourhood class fractions {verb} skill"
                if not keep_fractions:
                    static, rolling = no_fractions, r_nf
            design = static.with_history(settings)
            if settings is not None:
                # does incident history add skill on the same held-out months?
                with_history = rolling_origin(design, recipe, origins, fractions)
                keep = _score(with_history) > _score(rolling)
                model_choice["history"] = {
                    "used": bool(keep),
                    "score_with": _score(with_history),
                    "score_without": _score(rolling),
                }
                model_choice["reason"] += (
                    f"; incident history {'added' if keep else 'did not add'} skill"
                )
                if keep:
                    rolling = with_history
                else:
                    design = static
                    settings = None
    else:
        with timer.stage("validation_temporal", f"rolling origin over {len(origins)} month(s)"):
            rolling = rolling_origin(design, recipe, origins, fractions)
    temporal = _run_month_result(rolling, label)
    with timer.stage(
        "validation_spatial", f"spatial block cross-validation ({config.validation.folds} folds)"
    ):
        spatial, spread = spatial_cv(
            design, recipe, config.validation.folds, block_size, fractions, run_month + 1
        )

    ablation = None
    if config.connectivity is not None:
        with timer.stage("validation_connectivity", "validating without the connectivity layers"):
            ablation = connectivity_ablation(
                design,
                recipe,
                origins,
                fractions,
                rolling,
                spatial,
                config.validation.folds,
                block_size,
                run_month + 1,
            )

    with timer.stage("fit", f"fitting model '{recipe.name}' on {len(used)} incidents"):
        everything = np.ones(y.size, dtype=bool)
        X_all = design.features(everything, y == 1, months)
        model = fit_model(recipe, config.seed, X_all, y)
        final_stack = design.stack_for(y == 1, run_month + 1, "final")

    tags = {
        "month": label,
        "model": recipe.name,
        "hwc_risk_version": __version__,
        "run_name": config.name,
    }
    outputs: list[Path] = []
    where = f"on {compute.describe()}"
    with timer.stage("predict", f"predicting the grid in chunks {where}"):
        tiled = predict_to_geotiff(model, final_stack, work / "risk_tiled.tif", compute)
    with timer.stage("classes", "cutting the surface into risk classes"):
        cut = RankedSurface(tiled, Area(stack.valid), chunk=compute.chunk_size).classes()
        thresholds = cut.thresholds
        class_tiled = create_band(
            work / "class_tiled.tif", grid, "risk class", compute.block, dtype="uint8", nodata=0
        )
        run_windows(class_window, cut, [class_tiled], compute, grid.shape, "risk classes")

    with timer.stage("explain", "permutation importance and response curves"):
        explanation = explain(model, X_all, y, design.names, staging, config.seed)
        outputs.extend(explanation.pop("figures"))

    captures = temporal.get("class_capture") if "skipped" not in temporal else None
    with timer.stage("export", "writing GeoTIFFs, styles, hotspots, map and records"):
        with rasterio.open(tiled, "r+") as ds:
            ds.set_band_description(1, "relative conflict risk")
            ds.update_tags(1, units="1 (relative risk, 0-1)")
        outputs.append(
            write_cog(
                tiled,
                staging / "risk.tif",
                categorical=False,
                tags={**tags, "units": "relative risk (0-1)"},
            )
        )
        outputs.append(write_risk_qml(staging / "risk.qml", thresholds))
        if spread is not None:
            outputs.append(
                write_cog(
                    spread,
                    staging / "risk_sd.tif",
                    categorical=False,
                    tags={**tags, "units": "standard deviation of relative risk"},
                )
            )
        class_tags = {
            f"class_{c.code}": _class_sentence(c.label, c.area_share, captures)
            for c in RISK_CLASSES
        }
        with rasterio.open(class_tiled, "r+") as ds:
            ds.update_tags(**class_tags)
            ds.write_colormap(1, class_colormap())
            ds.colorinterp = [ColorInterp.palette]
        for layer in stack.layers:
            if layer.kind == "connectivity":
                outputs.append(
                    write_cog(
                        layer.path,
                        staging / f"{layer.name}.tif",
                        categorical=False,
                        tags={**tags, "units": layer.units},
                    )
                )
        outputs.append(
            write_cog(
                class_tiled,
                staging / "risk_class.tif",
                categorical=True,
                tags={**tags, "units": "class code"},
            )
        )
        outputs.append(write_class_qml(staging / "risk_class.qml", captures))
        people_path, people_factor = _people_per_cell(config, grid, work) or (None, 1.0)
        hotspots = hotspot_polygons(
            class_tiled,
            tiled,
            grid,
            people_path,
            people_factor,
            incidents=used,
            chunk=compute.chunk_size,
        )
        outputs.append(write_hotspots(staging / "hotspots.gpkg", hotspots))
        change, change_files = compare_with_previous(
            previous, grid, tiled, class_tiled, hotspots, work, staging, tags, compute
        )
        outputs.extend(change_files)
        outputs.append(
            write_map(
                staging / "map.html",
                title=f"Human-wildlife conflict risk: {config.name}, {label}",
                grid=grid,
                classes=staging / "risk_class.tif",
                incidents=used,
                month=label,
                class_captures=captures,
                hotspots=hotspots,
                offline=offline,
                generalise=config.outputs.generalise_incidents,
                change_note=change.get("summary"),
            )
        )
        rejected_path = staging / "rejected_incidents.csv"
        located.rejected.to_csv(rejected_path, index=False)
        outputs.append(rejected_path)
        if len(located.duplicates):
            dup_path = staging / "duplicates_merged.csv"
            located.duplicates.to_csv(dup_path, index=False)
            outputs.append(dup_path)

        top = config.validation.top_fraction
        metrics: dict[str, Any] = {
            "name": config.name,
            "month": label,
            "model": recipe.name,
            "top_fraction": top,
            "summary": _verdict(temporal, rolling, top),
            "model_choice": model_choice,
            "history_features": history_choice,
            "rolling_origin": rolling,
            "temporal_holdout": temporal,
            "spatial_block_cv": spatial,
            "explanation": explanation,
            "connectivity_ablation": ablation,
            "risk_classes": [
                {
                    "code": c.code,
                    "label": c.label,
                    "area_share": c.area_share,
                    "min_risk": thresholds.get(c.label),
                    "held_out_capture": (captures or {}).get(c.label),
                }
                for c in RISK_CLASSES
            ],
            "metric_definitions": {
                "auc": "P(held-out incident cell scores above a random cell of the area)",
                "boyce": "continuous Boyce index (Hirzel et al. 2006), -1..1",
                "capture_rate_N": "share of held-out incidents in the top N % of the area",
                "pai_N": "predictive accuracy index: capture_rate_N / (N/100)",
            },
        }
        outputs.append(write_json(staging / "metrics.json", metrics))

    shutil.rmtree(work, ignore_errors=True)
    manifest = _manifest(
        config,
        grid,
        located,
        used,
        recipe,
        stack,
        samples,
        metrics,
        outputs,
        staging,
        timer,
        started,
        label,
        compute,
    )
    n_acc, n_dup, n_rej = len(located.accepted), len(located.duplicates), len(located.rejected)
    if n_acc + n_dup + n_rej != located.n_read:
        raise RuntimeError(
            f"incident rows do not add up: {located.n_read} read, {n_acc} accepted, "
            f"{n_dup} merged, {n_rej} rejected"
        )
    manifest["fingerprint"] = run_fingerprint
    manifest["change_since_previous"] = change
    manifest["map"] = {
        "offline": offline,
        "incident_generalisation": config.outputs.generalise_incidents,
    }
    manifest["stac_item"] = "item.json"
    log.info("run complete: %s", metrics["summary"])
    outputs.append(collector.write(staging / "run.log.jsonl"))
    manifest["outputs"].append(file_record(staging / "run.log.jsonl", staging))
    write_json(staging / "manifest.json", manifest)
    outputs.append(staging / "manifest.json")
    titles = {
        "risk": ("Relative conflict risk (0-1)", ["data"]),
        "risk_class": ("Conflict risk classes", ["data"]),
        "risk_qml": ("QGIS style for risk.tif", ["style"]),
        "risk_class_qml": ("QGIS style for risk_class.tif", ["style"]),
        "hotspots": ("Very high risk hotspots", ["data"]),
        "map": ("Planners' map", ["overview"]),
        "metrics": ("Validation metrics, model and baselines", ["metadata"]),
        "manifest": ("Inputs, outputs, versions and timings", ["metadata"]),
        "rejected_incidents": ("Rejected incident rows with reasons", ["metadata"]),
    }
    assets: dict[str, tuple[Path, str, list[str]]] = {}
    for out in outputs:
        key = out.name.replace(".tif", "").replace(".", "_").replace("_html", "")
        key = key.replace("_json", "").replace("_gpkg", "").replace("_csv", "")
        title, roles = titles.get(key, (out.stem.replace("_", " "), ["data"]))
        assets[key] = (out, title, roles)
    write_stac_item(
        staging / "item.json",
        run_name=config.name,
        month=label,
        grid=grid,
        run_dir=staging,
        assets=assets,
        model=recipe.name,
        inputs=manifest["inputs"],
    )
    outputs.append(staging / "item.json")
    return RunResult(
        run_dir=staging, month=label, metrics=metrics, manifest=manifest, outputs=outputs
    )


def _manifest(
    config: PipelineConfig,
    grid: GridSpec,
    located: IncidentTable,
    used: pd.DataFrame,
    recipe: ModelRecipe,
    stack: FeatureStack,
    samples: Samples,
    metrics: dict[str, Any],
    outputs: list[Path],
    staging: Path,
    timer: _Timer,
    started: datetime,
    label: str,
    compute: Compute,
) -> dict[str, Any]:
    inputs = []
    if config.config_path is not None:
        inputs.append({"role": "config", **file_record(config.config_path)})
    for path in located.files:
        inputs.append({"role": "incidents", **file_record(path)})
    for key, cov in config.covariates.items():
        inputs.append({"role": f"covariate:{key}", "band": cov.band, **file_record(cov.path)})
    if recipe.path is not None:
        inputs.append({"role": "model_recipe", **file_record(recipe.path)})
    n_rejected = len(located.rejected)
    n_accepted = len(located.accepted)
    notes = []
    if grid.epsg is None:
        notes.append(
            "the grid CRS has no EPSG code; it is kept as WKT and QGIS may show it as 'Unknown'"
        )
    temporal = metrics["temporal_holdout"]
    return {
        "hwc_risk_version": __version__,
        "name": config.name,
        "month": label,
        "status": "complete",
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.model_dump(mode="json"),
        "grid": _grid_record(grid),
        "inputs": inputs,
        "incidents": {
            "files": [p.name for p in located.files],
            "read": located.n_read,
            "accepted": n_accepted,
            "duplicates_merged": len(located.duplicates),
            "rejected": n_rejected,
            "rejected_by_reason": located.rejected_counts(),
            "balance": (
                f"{located.n_read} read = {n_accepted} accepted + "
                f"{len(located.duplicates)} merged duplicates + {n_rejected} rejected"
            ),
            "used": len(used),
            "after_month": n_accepted - len(used),
            "used_by_month": _month_summary(used["date"]),
        },
        "model": {
            "recipe": recipe.name,
            "estimator": recipe.estimator,
            "params": recipe.params,
            "n_presence": samples.n_presence,
            "n_background": int((samples.y == 0).sum()),
            "seed": config.seed,
            "features": stack.describe(),
        },
        "metrics": {
            "summary": metrics["summary"],
            "best_baseline_capture_10": _best_baseline(temporal),
            "temporal_holdout_model": temporal.get("model"),
            "spatial_block_cv_model": metrics["spatial_block_cv"].get("model"),
        },
        "outputs": [file_record(p, staging) for p in outputs],
        "timings_s": timer.timings,
        "compute": compute.record(),
        "packages": package_versions(),
        "notes": notes,
    }
