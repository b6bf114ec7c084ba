"""Rolling-origin check of the monthly totals forecast on real and generated series.

For each series, every month of the evaluation period is forecast from the months before
it (the model refitted at each origin, as a monthly job would), 1 and 3 months ahead;
printed: mean absolute error of the forecast, of the same month last year (seasonal
naive) and of the mean of the last 12 months, and the coverage and mean width of the 80 %
prediction interval.

- ``ishikawa``: Asian black bear reports of Ishikawa Prefecture, 2019-2024 (real data:
  "Ishikawa Prefecture, bear incident data (CC BY)", from ``shared/real-data`` beside the
  repository; skipped when absent), origins over 2023-2024;
- ``generated``: five series with trend and season (Poisson and negative binomial), 54
  months, the last 18 as origins (the series of ``tests/unit/test_forecast.py``).

Usage: ``.venv/bin/python benchmarks/forecast_totals.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from hwc_risk.forecast import rolling_origin_totals
from hwc_risk.temporal import as_month, month_range

REPO = Path(__file__).resolve().parents[1]
_REL = Path("shared") / "real-data" / "ishikawa-bears" / "bear_incidents.csv"
# beside the repository, or beside the folder of a git worktree
_FOUND = [p / _REL for p in (REPO.parent, REPO.parent.parent) if (p / _REL).is_file()]
ISHIKAWA = _FOUND[0] if _FOUND else REPO.parent / _REL


def ishikawa() -> tuple[np.ndarray, np.datetime64] | None:
    import pandas as pd

    if not ISHIKAWA.is_file():
        return None
    dates = pd.to_datetime(pd.read_csv(ISHIKAWA)["date"].dropna())
    months = month_range(as_month("2019-01"), as_month("2024-12"))
    labels = dates.dt.strftime("%Y-%m").value_counts()
    return np.array([labels.get(str(m), 0) for m in months]), months[0]


def generated(seed: int, alpha: float, n: int = 54) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    angle = 2 * np.pi * (t % 12) / 12
    mu = np.exp(np.log(25.0) + 0.15 * t / 12 + 0.5 * np.sin(angle) + 0.2 * np.cos(angle))
    if alpha > 0:
        mu = rng.gamma(1 / alpha, alpha * mu)
    return rng.poisson(mu)


def row(name: str, horizon: int, results: list[dict[str, float]]) -> str:
    n = sum(r["n"] for r in results)

    def pooled(key: str) -> float:
        return sum(r[key] * r["n"] for r in results) / n

    return (
        f"| {name} | {horizon} | {n:.0f} | {pooled('mae'):.1f} | "
        f"{pooled('mae_seasonal_naive'):.1f} | {pooled('mae_mean_12'):.1f} | "
        f"{pooled('coverage'):.0%} | {pooled('mean_width'):.1f} |"
    )


def main() -> None:
    print(
        "| series | months ahead | forecasts | MAE | MAE same month last year | "
        "MAE mean of 12 months | 80 % interval coverage | mean interval width |"
    )
    print("|---|---|---|---|---|---|---|---|")
    real = ishikawa()
    for horizon in (1, 3):
        if real is not None:
            counts, first = real
            v = rolling_origin_totals(counts, first, horizon=horizon, n_origins=24, seed=1)
            print(row("Ishikawa bears 2023-2024", horizon, [v.overall()]))
        series = [(10, 0.0), (11, 0.0), (12, 0.04), (13, 0.04), (14, 0.08)]
        results = [
            rolling_origin_totals(
                generated(s, a), as_month("2019-01"), horizon=horizon, n_origins=18, seed=s
            ).overall()
            for s, a in series
        ]
        print(row("generated (5 series)", horizon, results))
    if real is None:
        print(f"(Ishikawa data not found at {ISHIKAWA})", file=sys.stderr)


if __name__ == "__main__":
    main()
