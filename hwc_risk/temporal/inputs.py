"""Monthly covariates as the plan stage finds them: their files, their months, and how the
months a run needs are filled.

:func:`plan_monthly_inputs` opens every monthly covariate of a config before any
long step, lists the files it reads (for the fingerprint and the manifest: a
newly published month changes the fingerprint, so a rerun picks it up), and
plans every feature for the run's month and the forecast months as a forecast
made at the end of the run's month would see them (months after it count as
not published), and for every month samples can fall in. Input errors of the
missing-month policy (``missing_month: error``, ``latest`` too old, no month
at all) come out here, from ``run`` and ``validate`` alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import CovariateConfig, PipelineConfig
from ..errors import InputError
from ..months import Month
from .features import MonthUsed, TemporalFeature, plan_feature, temporal_features
from .months import as_month, month_label, month_range
from .sources import BandSource, MonthlySource, TemplateSource, open_source

__all__ = ["MonthlyInput", "input_records", "plan_monthly_inputs", "source_files"]


@dataclass(frozen=True, kw_only=True)
class MonthlyInput:
    """One monthly covariate of a run, as planned.

    ``months`` are the months the source has; ``used`` says how each month the
    run's map and its forecast read was filled (published months included),
    as a forecast made at the end of the run's month sees them.
    """

    key: str
    config: CovariateConfig
    files: tuple[Path, ...]
    months: np.ndarray
    used: tuple[MonthUsed, ...]

    @property
    def features(self) -> list[TemporalFeature]:
        return temporal_features(self.key, self.config)

    def describe_months(self) -> str:
        """``2023-11 to 2026-10, 36 months``."""
        if self.months.size == 0:
            return "no month"
        first, last = month_label(self.months[0]), month_label(self.months[-1])
        return f"{first} to {last}, {self.months.size} months"

    def describe(self) -> str:
        """What ``validate`` prints: the source, its months and how the run's months are filled."""
        filled = [u.describe() for u in self.used if u.how != "published"]
        published = sorted({month_label(u.wanted) for u in self.used if u.how == "published"})
        parts = [f"monthly ({self.config.source_kind}), {self.describe_months()}"]
        if published:
            parts.append(f"{', '.join(published)} published")
        return "; ".join(parts + filled)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.config.source_kind,
            "months": self.describe_months(),
            "features": [f.name for f in self.features],
            "missing_month": self.config.missing_month,
            "months_used": [u.to_json() for u in self.used],
        }


def source_files(source: MonthlySource) -> list[Path]:
    """Every file a monthly source reads (a Zarr store: every file inside it)."""
    if isinstance(source, TemplateSource):
        return [source.paths[m] for m in source.months]
    path = source.path if isinstance(source, BandSource) else Path(source.where)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def _used_for(
    source: MonthlySource,
    key: str,
    cfg: CovariateConfig,
    wanted: list[np.datetime64],
    known: np.ndarray,
    forecast_from: np.datetime64,
) -> tuple[MonthUsed, ...]:
    """How every source month the features of ``wanted`` months read is filled."""
    used: dict[tuple[np.datetime64, tuple[np.datetime64, ...]], MonthUsed] = {}
    for month in wanted:
        for feature in temporal_features(key, cfg):
            try:
                comb = plan_feature(
                    feature, month, known, cfg.missing_month, cfg.max_age_months, source.where
                )
            except InputError as exc:
                if month <= forecast_from:
                    raise
                raise InputError(
                    f"{exc} (forecast.horizon needs {month_label(month)}, after the run's month)"
                ) from None
            for part in feature.source_months(month):
                if np.isin(part, known):
                    used[(part, (part,))] = MonthUsed(
                        covariate=key, wanted=part, how="published", used=(part,)
                    )
            used.update({(u.wanted, u.used): u for u in comb.filled})
    return tuple(sorted(used.values(), key=lambda u: (u.wanted, u.how)))


def _check_sample_months(
    source: MonthlySource, key: str, cfg: CovariateConfig, months: np.ndarray
) -> None:
    """Every month a sample can fall in can be filled (else the policy's input error)."""
    for month in months:
        for feature in temporal_features(key, cfg):
            plan_feature(
                feature, month, source.months, cfg.missing_month, cfg.max_age_months, source.where
            )


def plan_monthly_inputs(
    config: PipelineConfig, run_month: Month, first_month: Month | None = None
) -> tuple[MonthlyInput, ...]:
    """Open and plan every monthly covariate of ``config`` for a run of ``run_month``.

    ``first_month`` is the first month with incidents: samples fall in months from
    it to ``run_month``, and every one of them must be fillable.
    """
    run = as_month(run_month)
    horizon = config.forecast.horizon
    wanted = [run + h for h in range(horizon + 1)]
    study = month_range(as_month(first_month or run_month), run)
    out = []
    for key, cfg in config.covariates.items():
        if not cfg.is_monthly:
            continue
        with open_source(cfg, key) as source:
            known = source.months[source.months <= run]
            used = _used_for(source, key, cfg, wanted, known, run)
            _check_sample_months(source, key, cfg, study)
            out.append(
                MonthlyInput(
                    key=key,
                    config=cfg,
                    files=tuple(source_files(source)),
                    months=source.months.copy(),
                    used=used,
                )
            )
    return tuple(out)


def input_records(monthly: tuple[MonthlyInput, ...], record: Any) -> list[dict[str, Any]]:
    """The manifest's input entries of the monthly covariates: every file, with its
    sha256 (``record`` is :func:`hwc_risk.export.report.file_record`)."""
    return [
        {"role": f"covariate:{m.key}", "monthly": m.config.source_kind, **record(path)}
        for m in monthly
        for path in m.files
    ]
