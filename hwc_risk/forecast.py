"""How many incidents next month: a count model of monthly totals, with honest intervals.

Monthly incident totals are counts with a trend, a season and memory. They
are modelled by a generalised linear model with a log link (statsmodels):

- terms: a linear trend (per year), month-of-year harmonics (one or two
  sine/cosine pairs) and the recent level (``log1p`` of the mean count of the
  three months before), chosen by AIC among nested candidates;
- family: Poisson, or a negative binomial (NB2) when a likelihood-ratio test
  finds overdispersion (``p < 0.05``, halved for the boundary).

Forecasts for the next 1-3 months are simulated: parameters drawn from their
estimated sampling distribution (so the interval includes parameter
uncertainty), then counts month after month, the recent level fed by the
simulated months. The mean of the draws is the expected total; their 10th and
90th percentiles bound the 80 % prediction interval. A total is split over
risk classes or hotspots by thinning each draw binomially with the area's
share of the expected incidents (:func:`split_total`).

:func:`rolling_origin_totals` checks all of this on the series itself: at
each of the last origins, the model fitted on the months up to it forecasts
the next months, beside two baselines (the same month last year, and the mean
of the last 12 months); mean absolute errors and interval coverage.

Example
-------
>>> counts = np.array([12, 15, 22, 30, 28, 19, 14, 11, 13, 16, 21, 29, 33, 27, 20])
>>> model = fit_count_model(counts, as_month("2024-01"))
>>> fc = forecast_totals(model, counts, horizon=2, rng=np.random.default_rng(0))
>>> [month_label(m) for m in fc.months]
['2025-04', '2025-05']
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from .temporal.months import as_month, calendar_month, month_label

__all__ = [
    "MIN_MONTHS",
    "CountModel",
    "Forecast",
    "Interval",
    "TotalsValidation",
    "fit_count_model",
    "forecast_totals",
    "rolling_origin_totals",
    "split_total",
]

#: Fewest months a count model is fitted on.
MIN_MONTHS = 6
#: Months averaged for the recent level.
RECENT = 3
Family = Literal["poisson", "negative_binomial"]


def design(
    months: np.ndarray, t: np.ndarray, recent: np.ndarray, terms: tuple[str, ...]
) -> np.ndarray:
    """Columns of the count model: a constant, then ``terms`` in order.

    ``t`` is months since the series' first month, ``recent`` the mean count
    of the months before; terms: ``trend``, ``season1``, ``season2``
    (harmonics), ``recent``.
    """
    angle = 2 * np.pi * (calendar_month(months) - 1) / 12.0
    cols = [np.ones(t.size)]
    for term in terms:
        if term == "trend":
            cols.append(t / 12.0)
        elif term.startswith("season"):
            k = int(term[-1])
            cols += [np.sin(k * angle), np.cos(k * angle)]
        elif term == "recent":
            cols.append(np.log1p(recent))
    return np.column_stack(cols)


def recent_level(counts: np.ndarray) -> np.ndarray:
    """For each month, the mean count of the :data:`RECENT` months before (NaN before)."""
    c = np.concatenate([[0.0], np.cumsum(counts, dtype=float)])
    out = np.full(counts.size, np.nan)
    idx = np.arange(RECENT, counts.size)
    out[idx] = (c[idx] - c[idx - RECENT]) / RECENT
    return out


@dataclass(frozen=True)
class CountModel:
    """A fitted count model of monthly totals."""

    family: Family
    terms: tuple[str, ...]
    params: np.ndarray
    cov: np.ndarray  # of params (and alpha last, for the negative binomial)
    alpha: float  # NB2 dispersion: variance = mu + alpha mu^2 (0 for Poisson)
    first_month: np.datetime64
    n_months: int
    aic: float
    overdispersion_p: float

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "terms": list(self.terms),
            "coefficients": dict(
                zip(["const", *_coef_names(self.terms)], map(float, self.params), strict=True)
            ),
            "alpha": self.alpha,
            "months_fitted": self.n_months,
            "first_month": month_label(self.first_month),
            "aic": self.aic,
            "overdispersion_p": self.overdispersion_p,
        }


def _coef_names(terms: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    for term in terms:
        names += [f"{term}_sin", f"{term}_cos"] if term.startswith("season") else [term]
    return names


def _candidates(n: int) -> list[tuple[str, ...]]:
    seasons: list[tuple[str, ...]] = [()]
    if n >= 12:
        seasons.append(("season1",))
    if n >= 24:
        seasons.append(("season1", "season2"))
    out = []
    for trend in ((), ("trend",)):
        for season in seasons:
            for recent in ((), ("recent",)):
                out.append((*trend, *season, *recent))
    return out


@dataclass(frozen=True)
class _Fit:
    params: np.ndarray
    cov: np.ndarray
    llf: float
    aic: float


def _fit(y: np.ndarray, x: np.ndarray, family: Family) -> _Fit | None:
    """A Poisson GLM, or an NB2 model started from it (Newton, then BFGS if that fails);
    None when no fit is usable (a degenerate series)."""
    import statsmodels.api as sm

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            pois = sm.GLM(y, x, family=sm.families.Poisson()).fit()
            fits = [pois]
            if family == "negative_binomial":
                model = sm.NegativeBinomial(y, x, loglike_method="nb2")
                start = np.append(pois.params, 0.5)
                fits = [
                    model.fit(start_params=start, method=m, maxiter=1000, disp=0)
                    for m in ("newton", "bfgs")
                ]
            out = [
                _Fit(
                    params=np.asarray(f.params, dtype=float),
                    cov=np.asarray(f.cov_params(), dtype=float),
                    llf=float(f.llf),
                    aic=float(f.aic),
                )
                for f in fits
            ]
        except (ValueError, np.linalg.LinAlgError):
            return None
    usable = [f for f in out if np.all(np.isfinite(f.params)) and np.isfinite(f.llf)]
    usable = [f for f in usable if np.all(np.isfinite(np.diag(f.cov)))]
    return max(usable, key=lambda f: f.llf) if usable else None


def fit_count_model(counts: np.ndarray, first_month: np.datetime64) -> CountModel:
    """Fit the count model to monthly totals ``counts`` starting at ``first_month``.

    The family is chosen on the richest candidate, then the terms by AIC among
    :func:`_candidates` fitted on the same months (those with a recent level).

    Raises
    ------
    ValueError
        Fewer than :data:`MIN_MONTHS` months.
    """
    y = np.asarray(counts, dtype=float)
    if y.size < MIN_MONTHS:
        raise ValueError(f"a count model needs at least {MIN_MONTHS} months, got {y.size}")
    first = as_month(first_month)
    if y.sum() == 0:
        return _constant_model(y, first)
    months = first + np.arange(y.size)
    t = np.arange(y.size, dtype=float)
    recent = recent_level(y)
    rows = np.arange(RECENT, y.size)
    candidates = _candidates(y.size)
    richest = candidates[-1]
    x_rich = design(months[rows], t[rows], recent[rows], richest)
    family, p_over = _choose_family(y[rows], x_rich)
    best: tuple[float, tuple[str, ...], _Fit] | None = None
    for terms in candidates:
        res = _fit(y[rows], design(months[rows], t[rows], recent[rows], terms), family)
        if res is not None and (best is None or res.aic < best[0]):
            best = (res.aic, terms, res)
    if best is None:  # every fit failed (e.g. all zeros): a constant Poisson mean
        return _constant_model(y, first)
    aic, terms, res = best
    params, cov = res.params, res.cov
    alpha = 0.0
    if family == "negative_binomial":
        alpha = float(max(params[-1], 1e-8))
        params = params[:-1]
    return CountModel(
        family=family,
        terms=terms,
        params=params,
        cov=cov,
        alpha=alpha,
        first_month=first,
        n_months=int(y.size),
        aic=aic,
        overdispersion_p=p_over,
    )


def _choose_family(y: np.ndarray, x: np.ndarray) -> tuple[Family, float]:
    """Negative binomial when the likelihood-ratio test of alpha = 0 rejects at 5 %."""
    pois = _fit(y, x, "poisson")
    nb = _fit(y, x, "negative_binomial")
    if pois is None or nb is None:
        return "poisson", 1.0
    stat = max(0.0, 2 * (nb.llf - pois.llf))
    p = float(0.5 * stats.chi2.sf(stat, 1))
    return ("negative_binomial" if p < 0.05 else "poisson"), p


def _constant_model(y: np.ndarray, first: np.datetime64) -> CountModel:
    mean = max(float(y.mean()), 1e-9)
    return CountModel(
        family="poisson",
        terms=(),
        params=np.array([np.log(mean)]),
        cov=np.array([[1.0 / max(y.sum(), 1.0)]]),
        alpha=0.0,
        first_month=first,
        n_months=int(y.size),
        aic=float("nan"),
        overdispersion_p=1.0,
    )


@dataclass(frozen=True)
class Interval:
    """An expected count and its prediction interval."""

    expected: float
    lower: float
    upper: float
    level: float

    def to_json(self) -> dict[str, float]:
        return {
            "expected": round(self.expected, 2),
            "lower": self.lower,
            "upper": self.upper,
            "level": self.level,
        }

    def describe(self) -> str:
        """``23 expected, 15-32``."""
        return f"{self.expected:.0f} expected, {self.lower:.0f}-{self.upper:.0f}"


def interval_of(draws: np.ndarray, level: float) -> Interval:
    """Mean and central ``level`` interval of simulated counts (quantiles that are counts)."""
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return Interval(expected=float(draws.mean()), lower=float(lo), upper=float(hi), level=level)


@dataclass(frozen=True)
class Forecast:
    """Totals forecast for the months after the series, from simulated draws."""

    months: np.ndarray
    totals: tuple[Interval, ...]
    draws: np.ndarray  # (simulations, months)
    model: CountModel

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model.to_json(),
            "months": [
                {"month": month_label(m), **iv.to_json()}
                for m, iv in zip(self.months, self.totals, strict=True)
            ],
        }


def _draw_params(
    model: CountModel, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    k = model.params.size
    mean = (
        np.append(model.params, model.alpha)
        if model.family == "negative_binomial"
        else model.params
    )
    cov = model.cov[: mean.size, : mean.size]
    cov = (cov + cov.T) / 2
    draws = rng.multivariate_normal(mean, cov, size=n, method="eigh")
    alpha = np.clip(draws[:, k], 1e-8, None) if model.family == "negative_binomial" else np.zeros(n)
    return draws[:, :k], alpha


def forecast_totals(
    model: CountModel,
    counts: np.ndarray,
    horizon: int = 1,
    rng: np.random.Generator | None = None,
    n_sims: int = 4000,
    level: float = 0.8,
) -> Forecast:
    """Simulate the totals of the ``horizon`` months after ``counts`` (1-3 in a run).

    ``counts`` is the series the model was fitted on. Each simulation draws
    the parameters, then each month's count given the months before it.
    """
    rng = rng or np.random.default_rng(0)
    y = np.asarray(counts, dtype=float)
    beta, alpha = _draw_params(model, n_sims, rng)
    paths = np.tile(y, (n_sims, 1))
    first = model.first_month
    for step in range(horizon):
        t = y.size + step
        month = first + t
        recent = paths[:, t - RECENT : t].mean(axis=1) if t >= RECENT else np.zeros(n_sims)
        x = design(np.full(n_sims, month), np.full(n_sims, float(t)), recent, model.terms)
        mu = np.exp(np.clip(np.sum(x * beta, axis=1), -30, 30))
        if model.family == "negative_binomial":
            mu = rng.gamma(shape=1 / alpha, scale=alpha * mu)
        paths = np.column_stack([paths, rng.poisson(mu)])
    draws = paths[:, y.size :]
    months = first + y.size + np.arange(horizon)
    return Forecast(
        months=months,
        totals=tuple(interval_of(draws[:, j], level) for j in range(horizon)),
        draws=draws,
        model=model,
    )


def split_total(
    draws: np.ndarray, shares: dict[str, float], rng: np.random.Generator, level: float = 0.8
) -> dict[str, Interval]:
    """Each area's count and interval, given simulated totals and its share of the incidents.

    Each simulated total is thinned binomially with the area's share (the
    share of the forecast surface's expected incidents inside it), so the
    interval has both the total's uncertainty and where in the district the
    incidents fall.
    """
    out = {}
    for name, share in shares.items():
        p = float(np.clip(share, 0.0, 1.0))
        out[name] = interval_of(rng.binomial(draws.astype(np.int64), p), level)
    return out


@dataclass(frozen=True)
class TotalsValidation:
    """Rolling-origin errors of the totals forecast and of two baselines, per horizon."""

    horizons: tuple[dict[str, float], ...]
    level: float
    origins: int

    def overall(self) -> dict[str, float]:
        """Pooled over horizons, weighted by the forecasts made."""
        n = np.array([h["n"] for h in self.horizons], dtype=float)
        keys = ("mae", "mae_seasonal_naive", "mae_mean_12", "coverage", "mean_width")
        return {k: float(np.sum([h[k] for h in self.horizons] * n) / n.sum()) for k in keys} | {
            "n": float(n.sum())
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "origins": self.origins,
            "overall": self.overall(),
            "by_horizon": list(self.horizons),
        }


def rolling_origin_totals(
    counts: np.ndarray,
    first_month: np.datetime64,
    horizon: int = 3,
    n_origins: int = 12,
    level: float = 0.8,
    seed: int = 0,
    n_sims: int = 2000,
) -> TotalsValidation:
    """Forecast from each of the last ``n_origins`` origins, refitting each time.

    An origin ``o`` uses months up to ``o`` and forecasts ``o+1 .. o+horizon``
    (those inside the series are scored). Baselines: ``seasonal_naive`` (the
    count 12 months before the target) and ``mean_12`` (the mean of the 12
    months up to the origin). Origins start once 12 months are known.
    """
    y = np.asarray(counts, dtype=float)
    first = as_month(first_month)
    rng = np.random.default_rng(seed)
    start = max(11, y.size - 1 - n_origins)
    errors: dict[int, dict[str, list[float]]] = {
        h: {"model": [], "snaive": [], "mean12": [], "covered": [], "width": []}
        for h in range(1, horizon + 1)
    }
    origins = range(start, y.size - 1)
    for o in origins:
        train = y[: o + 1]
        fc = forecast_totals(
            fit_count_model(train, first),
            train,
            horizon=horizon,
            rng=rng,
            n_sims=n_sims,
            level=level,
        )
        for h in range(1, horizon + 1):
            target = o + h
            if target >= y.size:
                break
            iv, e = fc.totals[h - 1], errors[h]
            e["model"].append(abs(iv.expected - y[target]))
            e["snaive"].append(abs(y[target - 12] - y[target]))
            e["mean12"].append(abs(train[-12:].mean() - y[target]))
            e["covered"].append(float(iv.lower <= y[target] <= iv.upper))
            e["width"].append(iv.upper - iv.lower)
    rows = tuple(
        {
            "horizon": float(h),
            "n": float(len(e["model"])),
            "mae": float(np.mean(e["model"])),
            "mae_seasonal_naive": float(np.mean(e["snaive"])),
            "mae_mean_12": float(np.mean(e["mean12"])),
            "coverage": float(np.mean(e["covered"])),
            "mean_width": float(np.mean(e["width"])),
        }
        for h, e in errors.items()
        if e["model"]
    )
    return TotalsValidation(horizons=rows, level=level, origins=len(origins))
