"""Temporal features of a monthly covariate: lags, running aggregates, anomalies.

Every temporal feature of a month is a weighted sum of the source's months:
a lag is one month, a running mean over the three months before is three
months at 1/3 each, an anomaly subtracts the mean of the same calendar month
over the years available, and a month not published yet is replaced by the
newest month before it (``latest``) or by the mean of its calendar month
(``climatology``). :func:`plan_feature` works out that sum (a
:class:`Combination`) from the months alone; then the same plan is

- evaluated at sample cells, each in its own month, reading only the source
  pixels under those cells (:func:`values_at_samples`), or
- evaluated over the whole grid for one month, from months aligned onto the
  grid by GDAL and combined chunk by chunk (:func:`write_month_layers`),

so that a sample's value and the mapped layer agree by construction.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from rasterio.windows import Window

from ..compute import Compute, run_windows
from ..errors import InputError
from ..grid import GridSpec
from ..rasters import RasterSource, align_file
from .config import CovariateConfig, MissingMonthPolicy
from .footprints import Footprints, footprints, gather
from .months import as_month, calendar_month, month_label, month_of
from .sources import MonthlySource

__all__ = [
    "Combination",
    "MonthUsed",
    "TemporalFeature",
    "plan_feature",
    "resolve_month",
    "temporal_features",
    "values_at_samples",
    "write_constant_layer",
    "write_month_layers",
]


@dataclass(frozen=True)
class TemporalFeature:
    """One feature of a monthly covariate.

    ``kind`` ``lag``: the value ``lag`` months before the month (0: the month
    itself). ``aggregate``: the ``statistic`` (mean or sum) over the ``months``
    months before the month. With ``anomaly`` the value minus the mean of the
    same calendar month(s) over the years available.
    """

    covariate: str
    name: str
    kind: Literal["lag", "aggregate"]
    lag: int = 0
    months: int = 1
    statistic: Literal["mean", "sum"] = "mean"
    anomaly: bool = False

    def source_months(self, month: np.datetime64) -> list[np.datetime64]:
        """The source months the feature of ``month`` is made of."""
        if self.kind == "lag":
            return [month - self.lag]
        return [month - k for k in range(1, self.months + 1)]


def temporal_features(key: str, cfg: CovariateConfig) -> list[TemporalFeature]:
    """The features of ``covariates.<key>``: one per lag, and the aggregate if any.

    Names: ``<key>`` (lag 0), ``<key>_lag<L>``, ``<key>_<mean|sum><N>``; with
    ``anomaly``, ``_anomaly`` appended.
    """
    suffix = "_anomaly" if cfg.anomaly else ""
    out = [
        TemporalFeature(
            covariate=key,
            name=(key if lag == 0 else f"{key}_lag{lag}") + suffix,
            kind="lag",
            lag=lag,
            anomaly=cfg.anomaly,
        )
        for lag in cfg.lags
    ]
    if cfg.aggregate is not None:
        agg = cfg.aggregate
        out.append(
            TemporalFeature(
                covariate=key,
                name=f"{key}_{agg.statistic}{agg.months}{suffix}",
                kind="aggregate",
                months=agg.months,
                statistic=agg.statistic,
                anomaly=cfg.anomaly,
            )
        )
    return out


@dataclass(frozen=True)
class MonthUsed:
    """How a wanted month of a covariate was filled.

    ``how``: ``published`` (the month itself), ``latest`` (the newest month
    before it) or ``climatology`` (the mean of its calendar month over
    ``used``). ``age_months``: months from the newest month read to the
    wanted one (0 when published).
    """

    covariate: str
    wanted: np.datetime64
    how: Literal["published", "latest", "climatology"]
    used: tuple[np.datetime64, ...]
    note: str = ""

    @property
    def age_months(self) -> int:
        return int((self.wanted - max(self.used)).astype(int))

    def describe(self) -> str:
        """One sentence for the log."""
        w = month_label(self.wanted)
        if self.how == "published":
            return f"{self.covariate} {w}: published"
        if self.how == "latest":
            text = (
                f"{self.covariate} {w}: not published; used {month_label(self.used[0])} "
                f"({self.age_months} month(s) old)"
            )
        else:
            years = ", ".join(month_label(m)[:4] for m in self.used)
            text = f"{self.covariate} {w}: not published; used the mean of {years}"
        return text + (f" ({self.note})" if self.note else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "covariate": self.covariate,
            "wanted": month_label(self.wanted),
            "how": self.how,
            "used": [month_label(m) for m in self.used],
            "age_months": self.age_months,
            "note": self.note,
        }


def _same_calendar(available: np.ndarray, month: np.datetime64) -> np.ndarray:
    return available[calendar_month(available) == calendar_month(month)]


def resolve_month(
    key: str,
    wanted: np.datetime64,
    available: np.ndarray,
    policy: MissingMonthPolicy,
    max_age: int,
    where: str = "",
) -> MonthUsed:
    """Which months stand for ``wanted`` under the missing-month ``policy``.

    Raises
    ------
    InputError
        ``policy`` is ``error`` and the month is missing, or nothing can
        stand for it (no earlier month within ``max_age`` for ``latest``).
    """
    wanted = month_of(wanted)
    i = int(np.searchsorted(available, wanted))
    if i < available.size and available[i] == wanted:
        return MonthUsed(covariate=key, wanted=wanted, how="published", used=(wanted,))
    have = (
        f"{month_label(available[0])} to {month_label(available[-1])}" if available.size else "none"
    )
    src = f"{where}: " if where else ""
    if policy == "error":
        raise InputError(
            f"{src}covariates.{key} has no {month_label(wanted)} (it has {have}); add that "
            f"month, or set covariates.{key}.missing_month to latest or climatology"
        )
    note = ""
    if policy == "climatology":
        same = _same_calendar(available, wanted)
        if same.size:
            return MonthUsed(covariate=key, wanted=wanted, how="climatology", used=tuple(same))
        note = "no year has this calendar month, so the latest month instead"
    if i == 0:
        raise InputError(
            f"{src}covariates.{key} has no month at or before {month_label(wanted)} (it has "
            f"{have}); add earlier months, or set missing_month: climatology"
        )
    latest = available[i - 1]
    age = int((wanted - latest).astype(int))
    if age > max_age:
        raise InputError(
            f"{src}covariates.{key}: the newest month before {month_label(wanted)} is "
            f"{month_label(latest)}, {age} months old (max_age_months is {max_age}); add newer "
            "months, raise max_age_months, or set missing_month: climatology"
        )
    return MonthUsed(covariate=key, wanted=wanted, how="latest", used=(latest,), note=note)


@dataclass(frozen=True)
class Combination:
    """A feature's value in one month: ``sum(weights[k] * source[months[k]])``.

    A weight may be 0 (terms that cancel); the month still counts for validity.
    """

    months: np.ndarray
    weights: np.ndarray
    filled: tuple[MonthUsed, ...] = field(default=())


def plan_feature(
    feature: TemporalFeature,
    month: np.datetime64,
    available: np.ndarray,
    policy: MissingMonthPolicy,
    max_age: int,
    where: str = "",
) -> Combination:
    """The weighted sum of source months that is ``feature`` in ``month``."""
    terms: dict[np.datetime64, float] = defaultdict(float)
    filled: list[MonthUsed] = []
    parts = feature.source_months(month_of(month))
    scale = 1.0 / len(parts) if feature.statistic == "mean" or feature.kind == "lag" else 1.0
    for part in parts:
        used = resolve_month(feature.covariate, part, available, policy, max_age, where)
        if used.how != "published":
            filled.append(used)
        for m in used.used:
            terms[m] += scale / len(used.used)
        if feature.anomaly:
            same = _same_calendar(available, part)
            if same.size == 0:  # resolve_month has found "latest" with a note
                same = np.array(used.used)
            for m in same:
                terms[m] -= scale / same.size
    # months whose weights cancel (an anomaly of a climatology) stay, at weight 0, so
    # that a cell without data in them stays without a value
    kept = sorted(terms)
    return Combination(
        months=np.array(kept, dtype="datetime64[M]"),
        weights=np.array([0.0 if abs(terms[m]) < 1e-12 else terms[m] for m in kept]),
        filled=tuple(filled),
    )


def _sample_plans(
    source: MonthlySource,
    cfg: CovariateConfig,
    features: list[TemporalFeature],
    months: np.ndarray,
) -> tuple[dict[tuple[str, np.datetime64], Combination], list[MonthUsed]]:
    plans: dict[tuple[str, np.datetime64], Combination] = {}
    filled: dict[tuple[np.datetime64, tuple[np.datetime64, ...]], MonthUsed] = {}
    for m in np.unique(months):
        for f in features:
            comb = plan_feature(
                f, m, source.months, cfg.missing_month, cfg.max_age_months, source.where
            )
            plans[(f.name, m)] = comb
            filled.update({(u.wanted, u.used): u for u in comb.filled})
    return plans, sorted(filled.values(), key=lambda u: u.wanted)


def values_at_samples(
    source: MonthlySource,
    cfg: CovariateConfig,
    features: list[TemporalFeature],
    grid: GridSpec,
    rows: np.ndarray,
    cols: np.ndarray,
    months: np.ndarray,
) -> tuple[dict[str, np.ndarray], list[MonthUsed]]:
    """Each feature at cells ``(rows, cols)`` of ``grid``, each cell in its own month.

    Reads, for every source month any sample needs, only the source pixels
    under the cells that need it (see :mod:`.footprints`); never a whole
    month. Returns the features (float64, NaN where the source has no data)
    and every month that had to be filled by the missing-month policy.
    """
    rows, cols = np.asarray(rows), np.asarray(cols)
    months = np.asarray(months, dtype="datetime64[M]")
    plans, filled = _sample_plans(source, cfg, features, months)
    need: dict[np.datetime64, list[np.ndarray]] = defaultdict(list)
    for (_, m), comb in plans.items():
        idx = np.flatnonzero(months == m)
        for u in comb.months:
            need[u].append(idx)
    prints: dict[GridSpec, Footprints] = {}
    values: dict[np.datetime64, np.ndarray] = {}
    for u, parts in need.items():
        idx = np.unique(np.concatenate(parts))
        src = source.grid_of(u)
        if src not in prints:
            prints[src] = footprints(grid, rows, cols, src)
        full = np.full(rows.size, np.nan)
        full[idx] = gather(functools.partial(source.read, u), src.shape, prints[src].subset(idx))
        values[u] = full
    out: dict[str, np.ndarray] = {}
    for f in features:
        acc = np.zeros(rows.size)
        for m in np.unique(months):
            idx = np.flatnonzero(months == m)
            comb = plans[(f.name, m)]
            acc[idx] = sum(
                (w * values[u][idx] for u, w in zip(comb.months, comb.weights, strict=True)),
                start=np.zeros(idx.size),
            )
        out[f.name] = acc
    return out, filled


@dataclass(frozen=True)
class CombineJob:
    """Chunk task input: aligned month layers and the weights of each output feature."""

    inputs: tuple[str, ...]
    weights: np.ndarray  # (features, inputs)
    member: np.ndarray  # (features, inputs): the input is part of the feature


def combine_window(job: CombineJob, window: Window) -> list[np.ndarray]:
    """One chunk of every feature from the aligned months (NaN where any is NaN)."""
    acc = np.zeros((job.weights.shape[0], int(window.height), int(window.width)))
    for k, path in enumerate(job.inputs):
        with rasterio.open(path) as ds:
            layer = ds.read(1, window=window).astype(np.float64)
        for j in np.flatnonzero(job.member[:, k]):
            acc[j] += job.weights[j, k] * layer
    return [a.astype(np.float32) for a in acc]


def _create(path: Path, grid: GridSpec, block: int) -> Path:
    with rasterio.open(
        path,
        "w",
        **grid.profile(dtype="float32", nodata=np.nan, blockxsize=block, blockysize=block),
    ):
        pass
    return path


def write_month_layers(
    source: MonthlySource,
    key: str,
    cfg: CovariateConfig,
    features: list[TemporalFeature],
    grid: GridSpec,
    month: np.datetime64,
    folder: Path,
    compute: Compute,
    known: np.datetime64 | None = None,
) -> tuple[dict[str, Path], list[MonthUsed]]:
    """Every feature of ``covariates.<key>`` for ``month`` as a float32 GTiff on the grid.

    Each source month the features need is aligned onto the grid once by
    :func:`hwc_risk.rasters.align_file` (kept in ``folder``, so the
    next month of a run reuses it); the features are then combined from them
    chunk by chunk on ``compute``. With ``known``, months after it count as
    not published (a forecast made at the end of ``known``). Returns the
    feature files by name and the months filled by the missing-month policy.
    """
    month = as_month(month)
    folder.mkdir(parents=True, exist_ok=True)
    available = source.months if known is None else source.months[source.months <= known]
    plans = [
        plan_feature(f, month, available, cfg.missing_month, cfg.max_age_months, source.where)
        for f in features
    ]
    needed = sorted({u for p in plans for u in p.months})
    aligned = [str(_aligned_month(source, key, grid, u, folder, compute.block)) for u in needed]
    weights = np.zeros((len(features), len(needed)))
    member = np.zeros(weights.shape, dtype=bool)
    for j, p in enumerate(plans):
        for u, w in zip(p.months, p.weights, strict=True):
            weights[j, needed.index(u)] = w
            member[j, needed.index(u)] = True
    label = month_label(month) + ("" if known is None else f"-known-{month_label(known)}")
    outputs = {
        f.name: _create(folder / f"{f.name}-{label}.tif", grid, compute.block) for f in features
    }
    run_windows(
        combine_window,
        CombineJob(inputs=tuple(aligned), weights=weights, member=member),
        list(outputs.values()),
        compute,
        grid.shape,
        f"monthly {key} {month_label(month)}",
    )
    filled = {(u.wanted, u.used): u for p in plans for u in p.filled}
    return outputs, sorted(filled.values(), key=lambda u: u.wanted)


def _aligned_month(
    source: MonthlySource,
    key: str,
    grid: GridSpec,
    month: np.datetime64,
    folder: Path,
    block: int,
) -> Path:
    path = folder / f"{key}-{month_label(month)}-aligned.tif"
    if path.exists():
        return path
    src_path, band, nodata = source.gdal_band(month, folder)
    one_month = RasterSource(
        path=src_path,
        key=f"covariates.{key}",
        band=band,
        nodata=nodata,
        path_key=f"covariates.{key}.path",
    )
    part = path.with_name(path.stem + ".part.tif")
    align_file(one_month, grid, part, block=block)
    part.replace(path)
    return path


def write_constant_layer(value: float, grid: GridSpec, path: Path, block: int = 256) -> Path:
    """A float32 GTiff on ``grid`` holding ``value`` everywhere (e.g. ``month_sin``),
    written a block row at a time."""
    with rasterio.open(
        path,
        "w",
        **grid.profile(dtype="float32", nodata=np.nan, blockxsize=block, blockysize=block),
    ) as dst:
        for r0 in range(0, grid.height, block):
            h = min(block, grid.height - r0)
            dst.write(
                np.full((h, grid.width), value, np.float32), 1, window=Window(0, r0, grid.width, h)
            )
    return path
