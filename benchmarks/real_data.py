"""Real reports, month by month as an agency would run hwc-risk (issue 17, item 3).

Usage::

    .venv/bin/python benchmarks/real_data.py [--data DIR] [--work DIR] [--jobs 2]
        [--species coyote raccoon opossum bears] [--months 3 | --months 2012-11 2012-12]
        [--recipes auto auto-tg glm maxent gbm rf ensemble] [--cached-only]
    .venv/bin/python benchmarks/real_data.py --totals [--species ...]

For each of the last 12 months M of each real series in ``--data`` (default: the
shared ``real-data`` folder beside the repository), hwc-risk runs with ``--month``
M-1 (``hwc_risk.pipeline.run``, on a config and an incident file this script
writes into a work folder, holding only the reports dated before M), and its
``risk.tif`` is scored on month M's reports, next to baselines built from the same
earlier reports: all past reports per cell, the last 12 months per cell, a 500 m
Gaussian kernel density and the pipeline's own kernel density (Silverman's
bandwidth), and a uniform surface (a check: it must capture exactly 10 % and 20 %).
Exactly 10 % (20 %) of the valid cells are ranked; cells tied at the threshold
count by the share that fits (``benchmarks/_skill.py``). Capture, AUC and PAI are
pooled over the incidents of all months; the intervals are 95 % bootstrap
intervals over months (2000 resamples, seed 0).

``--totals`` runs no pipeline: it forecasts each series' monthly total for each of the
last 12 months from the months before it (the count model of ``hwc_risk.forecast``,
refitted at each origin as a monthly job would) and scores it beside the same month
last year (seasonal naive) and the mean of the last 12 months, with the coverage of the
80 % prediction interval (seconds).

Runs are cached in ``--work`` (default ``~/.cache/hwc-risk/real_data``) under a key
of hwc-risk's source, the model recipes and the data files, so a rerun of the
table after no change costs seconds, and a change to the code reruns everything.
``--jobs`` runs execute in parallel processes (one thread each).

Data (not in the repository; cite as their READMEs say):

- Chicago: City of Chicago 311 nuisance-wildlife service requests (2011-2012) and
  the covariates of Fidino et al. (2022), Ecological Applications, "Integrating
  species distribution models and conflict data to understand urban
  human-wildlife conflict" (GitHub mfidino/conflict at eac2ecd1; Zenodo
  10.5281/zenodo.6354467).
- Ishikawa: Ishikawa Prefecture, bear incident data (CC BY), as committed in
  ito4303/Kuma_Kyousei at 3e5cbf57.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import yaml
from _skill import MonthScore, bootstrap_months, interval, pool  # benchmarks/_skill.py
from affine import Affine
from pyproj import CRS, Transformer

from hwc_risk.forecast import rolling_origin_totals
from hwc_risk.grid import GridSpec
from hwc_risk.surfaces import baseline_surfaces as grid_baselines

# Runs from incidents alone (issue 14, item 4: no covariates, the grid from the config):
# the series without rasters get model runs on the grid this script defines for them.
INCIDENTS_ONLY_RUNS = True

REPO = Path(__file__).resolve().parents[1]


def default_data() -> Path:
    """``$HWC_REAL_DATA``, else ``shared/real-data`` beside the repository (or beside a
    folder above it, as for a git worktree)."""
    if os.environ.get("HWC_REAL_DATA"):
        return Path(os.environ["HWC_REAL_DATA"])
    for folder in REPO.parents:
        if (folder / "shared" / "real-data").is_dir():
            return folder / "shared" / "real-data"
    return REPO.parent / "shared" / "real-data"


DEFAULT_WORK = Path.home() / ".cache" / "hwc-risk" / "real_data"
CONFIG_VERSION = "1"  # bump when the configs or inputs this script writes change
VARIANTS = ("auto", "auto-tg", "glm", "maxent", "gbm", "rf", "ensemble")
VARIANT_LABELS = {
    "auto": "hwc-risk default (`model: auto`)",
    "auto-tg": "default, target-group background",
    **{r: f"recipe `{r}`" for r in VARIANTS[2:]},
}
BASELINES = (
    "all past reports per cell",
    "last 12 months per cell",
    "500 m kernel density",
    "kernel density, Silverman (pipeline's)",
    "uniform (check)",
)
CHICAGO_BANDS = (
    "canopy",
    "grass",
    "impervious",
    "housing_density",
    "median_income",
    "vacancy",
    "water_distance",
)


@dataclass(frozen=True)
class Series:
    """One real series of reports and how to read and map it."""

    name: str
    folder: str
    table: str
    others: tuple[str, ...]
    date_format: str
    id_column: str
    type_column: str
    last_year: int
    raster: str | None = None
    grid_crs: str | None = None
    resolution: float = 500.0

    def months(self, years: int = 1) -> list[str]:
        """The scored months: the last ``12 * years`` of the series."""
        first = self.last_year - years + 1
        return [f"{y}-{m:02d}" for y in range(first, self.last_year + 1) for m in range(1, 13)]

    def has_model_runs(self) -> bool:
        return self.raster is not None or INCIDENTS_ONLY_RUNS


_CHICAGO = {
    "folder": "chicago-wildlife",
    "date_format": "%b %d, %Y",
    "id_column": "request_number",
    "type_column": "type",
    "last_year": 2012,
    "raster": "chicago_variables_raster_500.tif",
}
SERIES = (
    Series(name="coyote", table="coyote.csv", others=("raccoon.csv", "opossum.csv"), **_CHICAGO),
    Series(name="raccoon", table="raccoon.csv", others=("coyote.csv", "opossum.csv"), **_CHICAGO),
    Series(name="opossum", table="opossum.csv", others=("coyote.csv", "raccoon.csv"), **_CHICAGO),
    Series(
        name="bears",
        folder="ishikawa-bears",
        table="bear_incidents.csv",
        others=(),
        date_format="%Y-%m-%d",
        id_column="id",
        type_column="type",
        last_year=2024,
        grid_crs="EPSG:6675",  # JGD2011 / Japan Plane Rectangular CS VII
    ),
)


def previous_month(label: str) -> str:
    """``YYYY-MM`` of the month before."""
    return (pd.Period(label, "M") - 1).strftime("%Y-%m")


def month_start(label: str) -> pd.Timestamp:
    return pd.Period(label, "M").to_timestamp()


# ---------------------------------------------------------------- reports and grid


@dataclass(frozen=True)
class Reports:
    """A series' rows as read (strings, for writing back) and their parsed dates."""

    raw: pd.DataFrame
    dates: pd.Series

    @classmethod
    def read(cls, path: Path, date_format: str) -> Reports:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        dates = pd.to_datetime(raw["date"], format=date_format, errors="coerce")
        keep = dates.notna().to_numpy()
        return cls(raw=raw[keep].reset_index(drop=True), dates=dates[keep].reset_index(drop=True))

    def before(self, label: str) -> Reports:
        """The reports dated before the month ``label`` starts (what a run of the
        month before may see)."""
        keep = (self.dates < month_start(label)).to_numpy()
        return Reports(
            self.raw[keep].reset_index(drop=True), self.dates[keep].reset_index(drop=True)
        )

    def within(self, start: pd.Timestamp, end: pd.Timestamp) -> Reports:
        keep = ((self.dates >= start) & (self.dates < end)).to_numpy()
        return Reports(
            self.raw[keep].reset_index(drop=True), self.dates[keep].reset_index(drop=True)
        )

    def in_month(self, label: str) -> Reports:
        start = month_start(label)
        return self.within(start, start + pd.offsets.MonthBegin(1))


@dataclass(frozen=True)
class Area:
    """The analysis grid of a series and its valid cells (where every covariate has data)."""

    grid: GridSpec
    valid: np.ndarray

    def cells(self, reports: Reports) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of the reports that fall on valid cells."""
        lon = pd.to_numeric(reports.raw["lon"], errors="coerce").to_numpy()
        lat = pd.to_numeric(reports.raw["lat"], errors="coerce").to_numpy()
        tr = Transformer.from_crs("EPSG:4326", self.grid.crs, always_xy=True)
        x, y = tr.transform(lon, lat, errcheck=False)
        rows, cols, inside = self.grid.rowcol(np.asarray(x), np.asarray(y))
        ok = inside.copy()
        ok[inside] = self.valid[rows[inside], cols[inside]]
        return rows[ok], cols[ok]


def series_area(series: Series, data: Path, reports: Reports) -> Area:
    """The grid: the covariate raster's, or (no raster) ``series.resolution`` cells over
    the reports' extent in ``series.grid_crs``, rounded out to 5 km; every cell valid."""
    folder = data / series.folder
    if series.raster is not None:
        with rasterio.open(folder / series.raster) as ds:
            masks = ds.read_masks()
            return Area(GridSpec.from_dataset(ds), (masks > 0).all(axis=0))
    assert series.grid_crs is not None
    crs = CRS.from_user_input(series.grid_crs)
    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    lon = pd.to_numeric(reports.raw["lon"], errors="coerce").to_numpy()
    lat = pd.to_numeric(reports.raw["lat"], errors="coerce").to_numpy()
    x, y = (np.asarray(v) for v in tr.transform(lon, lat))
    ok = np.isfinite(x) & np.isfinite(y)
    step, res = 5000.0, series.resolution
    x0, y0 = np.floor(x[ok].min() / step) * step, np.floor(y[ok].min() / step) * step
    x1, y1 = np.ceil(x[ok].max() / step) * step, np.ceil(y[ok].max() / step) * step
    width, height = round((x1 - x0) / res), round((y1 - y0) / res)
    grid = GridSpec(
        crs=rasterio.crs.CRS.from_user_input(series.grid_crs),
        transform=Affine(res, 0, x0, 0, -res, y1),
        width=width,
        height=height,
    )
    return Area(grid, np.ones(grid.shape, dtype=bool))


# ---------------------------------------------------------------- runs


@dataclass(frozen=True)
class Job:
    """One pipeline run: a series, a variant, and the month it is scored on."""

    series: Series
    variant: str
    scored: str

    @property
    def run_month(self) -> str:
        """The run is for the month before the scored month: it sees nothing later."""
        return previous_month(self.scored)

    @property
    def run_name(self) -> str:
        return f"{self.series.name}-{self.variant}"

    def folder(self, work: Path, key: str) -> Path:
        return work / self.series.name / key / self.variant / self.scored

    def risk_path(self, work: Path, key: str) -> Path:
        return self.folder(work, key) / "out" / self.run_name / self.run_month / "risk.tif"


def job_config(job: Job, data: Path, area: Area) -> dict[str, Any]:
    """The pipeline config of a job (paths relative to the job folder)."""
    s = job.series
    incidents: dict[str, Any] = {
        "path": "incidents.csv",
        "x": "lon",
        "y": "lat",
        "crs": "EPSG:4326",
        "date": "date",
        "date_format": s.date_format,
        "id": s.id_column,
        "type": s.type_column,
    }
    config: dict[str, Any] = {"name": job.run_name, "incidents": incidents}
    if s.raster is not None:
        raster = str((data / s.folder / s.raster).resolve())
        config["covariates"] = {
            band: {"path": raster, "type": "continuous", "band": i + 1}
            for i, band in enumerate(CHICAGO_BANDS)
        }
    else:
        left, bottom, right, top = area.grid.bounds
        config["grid"] = {
            "crs": s.grid_crs,
            "resolution": s.resolution,
            "extent": [left, bottom, right, top],
        }
    if job.variant == "auto-tg":
        incidents["species"] = "species"
        incidents["filters"] = {"species": [s.name]}
        config["background"] = {"method": "target_group"}
    config["model"] = "auto" if job.variant == "auto-tg" else job.variant
    config["compute"] = {"workers": 1}
    config["seed"] = 42
    config["output_dir"] = "out"
    return config


def write_job_inputs(job: Job, data: Path, area: Area, folder: Path) -> Path:
    """Write the job's incident file (only reports dated before the scored month) and
    config into ``folder``; return the config path."""
    s = job.series
    frames = []
    for table in (s.table, *(s.others if job.variant == "auto-tg" else ())):
        seen = Reports.read(data / s.folder / table, s.date_format).before(job.scored)
        frame = seen.raw.copy()
        if job.variant == "auto-tg":
            frame["species"] = Path(table).stem
        frames.append(frame)
    folder.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_csv(folder / "incidents.csv", index=False)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(job_config(job, data, area), sort_keys=False), "utf-8")
    return path


def run_job(job: Job, data: str, work: str, key: str) -> dict[str, Any]:
    """Run one job in this process unless its run is cached; its record."""
    folder = job.folder(Path(work), key)
    done = folder / "done.json"
    if done.exists() and job.risk_path(Path(work), key).exists():
        return {**json.loads(done.read_text()), "cached": True}
    import logging

    from hwc_risk.config import load_config
    from hwc_risk.pipeline import run

    logging.getLogger("hwc_risk").setLevel(logging.WARNING)
    reports = Reports.read(
        Path(data) / job.series.folder / job.series.table, job.series.date_format
    )
    area = series_area(job.series, Path(data), reports)
    start = time.perf_counter()
    try:
        config = write_job_inputs(job, Path(data), area, folder)
        result = run(load_config(config), month=job.run_month, force=True)
    except Exception as exc:  # recorded in the table, not fatal to the other runs
        return {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
    record = {
        "seconds": round(time.perf_counter() - start, 1),
        "chosen": str((result.metrics.get("model_choice") or {}).get("chosen", job.variant)),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    done.write_text(json.dumps(record))
    return {**record, "cached": False}


def run_jobs(
    jobs: list[Job], data: Path, work: Path, keys: dict[str, str], n_jobs: int, run: bool = True
) -> dict[Job, dict]:
    """Run (or find cached) every job on ``n_jobs`` processes, one thread each, in the
    order given; ``keys`` maps a series name to its cache key. ``run=False``: only
    the cached ones."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # inherited by the workers: one core each
    records: dict[Job, dict] = {}
    pending = []
    for job in jobs:
        key = keys[job.series.name]
        done = job.folder(work, key) / "done.json"
        if done.exists() and job.risk_path(work, key).exists():
            records[job] = {**json.loads(done.read_text()), "cached": True}
        else:
            pending.append(job)
    if not pending or not run:
        return records
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context) as workers:
        futures = {
            workers.submit(run_job, j, str(data), str(work), keys[j.series.name]): j
            for j in pending
        }
        for i, future in enumerate(as_completed(futures), 1):
            job, rec = futures[future], future.result()
            records[job] = rec
            what = rec.get("error") or f"{rec['seconds']:.0f} s, chose {rec['chosen']}"
            print(
                f"[{i}/{len(pending)}] {job.series.name} {job.variant} run {job.run_month}: {what}",
                file=sys.stderr,
                flush=True,
            )
    return records


def code_key(series: Series, data: Path) -> str:
    """A hash of what decides a run: hwc-risk's source, the recipes, the data files."""
    digest = hashlib.sha256(CONFIG_VERSION.encode())
    sources = [p for p in sorted((REPO / "hwc_risk").rglob("*.py")) if p.name != "synthetic.py"]
    files = sources + sorted((REPO / "models").glob("*.yaml"))  # synthetic.py: no run uses it
    folder = data / series.folder
    files += [folder / n for n in (series.table, *series.others, series.raster) if n]
    for path in files:
        digest.update(str(path.relative_to(path.parents[1])).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------- scoring


def baseline_surfaces(area: Area, history: Reports, scored: str) -> dict[str, np.ndarray]:
    """The baselines of month ``scored`` from the reports before it."""
    shape, valid = area.grid.shape, area.valid
    rows, cols = area.cells(history)
    start = month_start(scored)
    recent = history.within(start - pd.DateOffset(months=12), start)
    r12, c12 = area.cells(recent)
    return {
        BASELINES[0]: grid_baselines(shape, rows, cols, valid)["past_counts"],
        BASELINES[1]: grid_baselines(shape, r12, c12, valid)["past_counts"],
        BASELINES[2]: grid_baselines(shape, rows, cols, valid, 500.0 / area.grid.cell_size)["kde"],
        BASELINES[3]: grid_baselines(shape, rows, cols, valid)["kde"],
        BASELINES[4]: np.where(valid, 1.0, np.nan),
    }


ModelSurfaces = Callable[[str, Reports], dict[str, np.ndarray]]


def month_by_month(
    reports: Reports, area: Area, months: Iterable[str], models: ModelSurfaces
) -> dict[str, list[MonthScore]]:
    """Score every method on each month M's reports.

    ``models(run_month, history)`` gives the model surfaces of the run for
    ``run_month`` = M-1, made from ``history`` (the reports before M); the
    baselines are built from the same history.
    """
    scores: dict[str, list[MonthScore]] = {}
    for month in months:
        history = reports.before(month)
        surfaces = {**models(previous_month(month), history)}
        surfaces.update(baseline_surfaces(area, history, month))
        rows, cols = area.cells(reports.in_month(month))
        for name, surface in surfaces.items():
            scores.setdefault(name, []).append(MonthScore.of(surface, area.valid, rows, cols))
    return scores


def read_risk(path: Path, area: Area) -> np.ndarray:
    """A run's risk surface, checked to cover exactly the valid cells of the area."""
    with rasterio.open(path) as ds:
        risk = ds.read(1).astype(np.float64)
    if risk.shape != area.valid.shape or not np.array_equal(np.isfinite(risk), area.valid):
        raise ValueError(f"{path}: its valid cells differ from the series' valid cells")
    return risk


def cached_models(
    series: Series, variants: list[str], records: dict[Job, dict], work: Path, key: str, area: Area
) -> ModelSurfaces:
    """Model surfaces read from the jobs' run folders (variants with a failed or
    missing month are left out for that month)."""

    def models(run_month: str, history: Reports) -> dict[str, np.ndarray]:
        out = {}
        for variant in variants:
            job = Job(series, variant, scored=(pd.Period(run_month, "M") + 1).strftime("%Y-%m"))
            rec = records.get(job, {})
            if "error" not in rec and job.risk_path(work, key).exists():
                out[variant] = read_risk(job.risk_path(work, key), area)
        return out

    return models


# ---------------------------------------------------------------- table


def fmt(value: float, draws: np.ndarray | None, digits: int = 3) -> str:
    if not np.isfinite(value):
        return "–"
    if draws is None:
        return f"{value:.{digits}f}"
    lo, hi = interval(draws)
    return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def series_table(
    series: Series,
    scores: dict[str, list[MonthScore]],
    variants: list[str],
    missing: dict[str, str],
) -> list[str]:
    """The Markdown table of one series, and the default against the best baseline."""
    full = {k: v for k, v in scores.items() if len(v) == len(scores[BASELINES[0]])}
    draws = bootstrap_months(full)
    n = int(pool(full[BASELINES[0]])["n"])
    lines = [
        f"**{series.name}** ({series.folder}, {len(scores[BASELINES[0]])} months, "
        f"{n} reports scored)",
        "",
        "| method | capture@10 % | capture@20 % | AUC | PAI@10 % | PAI@20 % |",
        "|---|---|---|---|---|---|",
    ]
    for name in [*variants, *BASELINES]:
        label = VARIANT_LABELS.get(name, name)
        if name in missing or name not in full:
            lines.append(f"| {label} | {missing.get(name, 'not run')} | | | | |")
            continue
        p, d = pool(full[name]), draws[name]
        lines.append(
            f"| {label} | {fmt(p['capture_10'], d['capture_10'])} "
            f"| {fmt(p['capture_20'], d['capture_20'])} | {fmt(p['auc'], d['auc'])} "
            f"| {fmt(p['pai_10'], None, 2)} | {fmt(p['pai_20'], None, 2)} |"
        )
    best = max(BASELINES[:4], key=lambda b: pool(full[b])["capture_10"])
    if "auto" in full:
        gap = pool(full["auto"])["capture_10"] - pool(full[best])["capture_10"]
        diff = draws["auto"]["capture_10"] - draws[best]["capture_10"]
        lo, hi = interval(diff)
        lines += [
            "",
            f"Default minus the best baseline ({best}) at 10 %: {gap:+.3f} [{lo:+.3f}, {hi:+.3f}].",
        ]
    return [*lines, ""]


def commit_measured() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    dirty = git("status", "--porcelain", "--", "hwc_risk", "models")
    return git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if dirty else "")


def parse_months(values: list[str] | None, series: Series, years: int = 1) -> list[str]:
    """``--months``: a count of last months, or ``YYYY-MM`` labels (others are ignored),
    among the last ``years`` years of the series (``--years``)."""
    months = series.months(years)
    if not values:
        return months
    if len(values) == 1 and values[0].isdigit():
        return months[-int(values[0]) :]
    return [m for m in months if m in values]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--species", nargs="+", default=[s.name for s in SERIES])
    parser.add_argument("--months", nargs="+", help="a number of last months, or YYYY-MM labels")
    parser.add_argument(
        "--years", type=int, default=1, help="score the last N years of each series (default 1)"
    )
    parser.add_argument("--recipes", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cached-only", action="store_true", help="score only cached runs")
    parser.add_argument(
        "--totals", action="store_true", help="only the forecast of monthly totals (no runs)"
    )
    args = parser.parse_args(argv)
    for s in SERIES:
        if s.name in args.species and not (args.data / s.folder / s.table).is_file():
            parser.exit(
                2,
                f"real_data.py: error: {args.data / s.folder / s.table} not found; "
                "give --data the shared real-data folder (or set HWC_REAL_DATA)\n",
            )
    started = time.perf_counter()
    chosen = [s for s in SERIES if s.name in args.species]
    if args.totals:
        print("\n".join(totals_table(chosen, args.data)))
        return
    plans = []
    for s in chosen:
        variants = [v for v in args.recipes if s.has_model_runs() and (v != "auto-tg" or s.others)]
        months = parse_months(args.months, s, args.years)
        plans.append((s, variants, months, code_key(s, args.data)))
    order = {v: i for i, v in enumerate(args.recipes)}
    jobs = sorted(
        (Job(s, v, m) for s, variants, months, _ in plans for v in variants for m in months),
        key=lambda j: (order[j.variant], j.scored, j.series.name),
    )
    keys = {s.name: k for s, _, _, k in plans}
    records = run_jobs(jobs, args.data, args.work, keys, args.jobs, run=not args.cached_only)
    out = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} at commit {commit_measured()} "
        f"(run cache keys {', '.join(sorted(set(keys.values())))}); ",
    ]
    for s, variants, months, key in plans:
        reports = Reports.read(args.data / s.folder / s.table, s.date_format)
        area = series_area(s, args.data, reports)
        models = cached_models(s, variants, records, args.work, key, area)
        scores = month_by_month(reports, area, months, models)
        missing = missing_notes(s, variants, months, records, args.work, key)
        shown = list(args.recipes if not s.has_model_runs() else variants)
        out += series_table(s, scores, [v for v in shown if v != "auto-tg" or s.others], missing)
    took = time.perf_counter() - started
    run_s = sum(r.get("seconds", 0.0) for r in records.values())
    out[0] += f"wall time {took / 60:.1f} min (the runs themselves: {run_s / 60:.1f} min)."
    print("\n".join(out))


def monthly_totals(reports: Reports, last: str) -> tuple[np.ndarray, np.datetime64]:
    """Reports per month from the series' first month to ``last`` (zeros included), and
    that first month."""
    months = reports.dates.dt.to_period("M")
    index = pd.period_range(months.min(), pd.Period(last, "M"), freq="M")
    counts = months.value_counts().reindex(index, fill_value=0).to_numpy()
    return counts, np.datetime64(str(index[0]), "M")


def totals_table(chosen: list[Series], data: Path) -> list[str]:
    """``--totals``: next month's total forecast at each of a series' last 12 months,
    against the same month last year and the mean of the last 12 months."""
    out = [
        "| series | months forecast | MAE | MAE same month last year | MAE mean of 12 months "
        "| 80 % interval coverage | mean interval width |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in chosen:
        reports = Reports.read(data / s.folder / s.table, s.date_format)
        counts, first = monthly_totals(reports, f"{s.last_year}-12")
        v = rolling_origin_totals(counts, first, horizon=1, n_origins=12, seed=0).overall()
        out.append(
            f"| {s.name} {s.last_year} | {v['n']:.0f} | {v['mae']:.1f} | "
            f"{v['mae_seasonal_naive']:.1f} | {v['mae_mean_12']:.1f} | {v['coverage']:.0%} | "
            f"{v['mean_width']:.1f} |"
        )
    return out


def missing_notes(
    series: Series,
    variants: list[str],
    months: list[str],
    records: dict[Job, dict],
    work: Path,
    key: str,
) -> dict[str, str]:
    """Why a model row has no figures: no runs possible yet, failed or uncached months."""
    if not series.has_model_runs():
        note = "needs incidents-only runs (issue 14)"
        return {v: note for v in VARIANTS}
    notes = {}
    for v in variants:
        jobs = [Job(series, v, m) for m in months]
        failed = [j.scored for j in jobs if "error" in records.get(j, {})]
        absent = [j.scored for j in jobs if not j.risk_path(work, key).exists()]
        if failed:
            notes[v] = (
                f"failed for {', '.join(failed)}: {records[Job(series, v, failed[0])]['error']}"
            )
        elif absent:
            notes[v] = f"not run for {len(absent)} of {len(months)} months"
    return notes


if __name__ == "__main__":
    main()
