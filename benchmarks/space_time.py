"""The forecast on a planted space-time truth, month by month through the pipeline.

A :class:`~hwc_risk.synthetic.SpaceTimeArea` (60 x 60 cells, 36 months; its hotspots move
with a monthly greenness driver and its totals follow a trend and a season) is run as an
agency would run it: ``hwc-risk run --month M`` for each of the last months of the
series, each run forecasting month ``M + 1``. Two configs on the same incidents: the
static covariates alone, and with the greenness cube (``greenness.nc``, every month
published up to ``M``; ``M + 1`` read by climatology) and the season. For each
forecast month, printed: the truth's share of next month's incidents inside the top
10 % of ``forecast.tif`` (expected capture), the Spearman correlation of ``forecast.tif``
with next month's truth, and the forecast total beside the truth's expected total.
``tests/integration/test_space_time.py`` asserts the same with margins on four months.

Usage: ``.venv/bin/python benchmarks/space_time.py [--months 24 26 ... 34]`` (about
10 s a run).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from scipy import stats

from hwc_risk.config import load_config
from hwc_risk.pipeline import run
from hwc_risk.synthetic import SpaceTimeArea


def configs(st: SpaceTimeArea, folder: Path) -> dict[str, Path]:
    common: dict[str, Any] = {
        "forecast": {"horizon": 1},
        "background": {"n_points": 3000},
        "validation": {"folds": 3},
    }
    static = {
        "cover": {"path": "cover.tif", "type": "categorical"},
        "elevation": {"path": "elevation.tif", "type": "continuous"},
    }
    green = {"greenness": {"path": "greenness.nc", "type": "continuous"}}
    with_time = {**common, "covariates": {**static, **green}, "features": {"season": True}}
    return {
        "static": st.write(folder / "static", extra_config={**common, "covariates": static}),
        "time": st.write(folder / "time", extra_config=with_time),
    }


def score(st: SpaceTimeArea, t: int, config: Path) -> dict[str, float]:
    """Run month ``t`` and score its forecast of ``t + 1`` against the truth."""
    result = run(load_config(config), month=st.month(t))
    with rasterio.open(result.run_dir / "forecast.tif") as ds:
        expected = ds.read(1)
    truth = st.truth(t + 1)
    ok = np.isfinite(expected)
    share = truth[ok] / truth[ok].sum()
    top = expected[ok] >= np.quantile(expected[ok], 0.9)
    month = result.metrics["forecast"]["months"][0]
    ablation = result.metrics.get("time_ablation") or {}
    return {
        "capture": float(share[top].sum()),
        "spearman": float(stats.spearmanr(expected[ok], share).statistic),
        "total": month["expected"],
        "lower": month["lower"],
        "upper": month["upper"],
        "kept": float(bool(ablation.get("kept"))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, nargs="+", default=list(range(24, 35, 2)))
    args = parser.parse_args()
    st = SpaceTimeArea(size=60, seed=3)
    print(
        "| forecast month | capture static | capture time | Spearman static | Spearman time "
        "| truth's total | forecast total (80 % interval), time |"
    )
    print("|---|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = configs(st, Path(tmp))
        for t in args.months:
            s, w = score(st, t, paths["static"]), score(st, t, paths["time"])
            rows.append((s, w))
            print(
                f"| {st.month(t + 1)} | {s['capture']:.3f} | {w['capture']:.3f} | "
                f"{s['spearman']:.2f} | {w['spearman']:.2f} | {st.expected_total(t + 1):.1f} | "
                f"{w['total']:.1f} ({w['lower']:.0f}-{w['upper']:.0f}) |",
                flush=True,
            )
    cap_s = np.mean([s["capture"] for s, _ in rows])
    cap_t = np.mean([w["capture"] for _, w in rows])
    sp_s = np.mean([s["spearman"] for s, _ in rows])
    sp_t = np.mean([w["spearman"] for _, w in rows])
    covered = np.mean(
        [
            w["lower"] <= st.expected_total(t + 1) <= w["upper"]
            for (_, w), t in zip(rows, args.months, strict=True)
        ]
    )
    kept = np.mean([w["kept"] for _, w in rows])
    print(
        f"| mean | {cap_s:.3f} | {cap_t:.3f} ({cap_t / cap_s:.2f}x) | {sp_s:.2f} | {sp_t:.2f} | "
        f"| truth's expected total inside the interval: {covered:.0%} |"
    )
    print(f"time features kept by model: auto in {kept:.0%} of the runs")


if __name__ == "__main__":
    main()
