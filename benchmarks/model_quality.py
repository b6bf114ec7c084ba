"""Model quality per recipe on a synthetic truth: sparse and rich data, and persistence.

Usage: ``.venv/bin/python benchmarks/model_quality.py [--recipes glm maxent ...]``

For each recipe, a synthetic area (``hwc_risk.synthetic.SyntheticArea``, seed 3,
120 x 120 cells) is drawn with 150 (sparse) and 600 (rich) incidents over 24
months and run through the pipeline. "capture / truth" is the share of 3000 fresh
incidents from the truth in the map's top 10 %, divided by the share in the
truth's own top 10 %; the KDE of the training incidents is the baseline. The
persistence case repeats 60 % of 500 incidents at 12 fixed sites; its columns
are rolling-origin top-10 % capture of the model and of past counts.
Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import rasterio

from hwc_risk.config import load_config
from hwc_risk.pipeline import run
from hwc_risk.synthetic import SyntheticArea


def planted(model: str, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        area = SyntheticArea(size=120, seed=3)
        config = area.write(folder, n_incidents=n, n_months=24, model=model)
        start = time.perf_counter()
        result = run(load_config(config))
        took = time.perf_counter() - start
        with rasterio.open(result.run_dir / "risk.tif") as ds:
            q = area.score_map(ds.read(1), folder / "incidents.csv")
        return {
            "ratio": q["ratio"],
            "kde": q["kde_ratio"],
            "rho": q["spearman"],
            "seconds": took,
            "chosen": str(result.metrics["model"]),
        }


def persistence(model: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        area = SyntheticArea(size=80, seed=11)
        config = area.write(
            Path(tmp),
            n_incidents=500,
            n_months=24,
            model=model,
            persistent_sites=12,
            persistent_share=0.6,
            extra_config={"background": {"n_points": 3000}},
        )
        rolling = run(load_config(config)).metrics["rolling_origin"]
        return rolling["model"]["capture_rate_10"], rolling["past_counts"]["capture_rate_10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--recipes", nargs="+", default=["glm", "maxent", "gbm", "rf", "ensemble", "auto"]
    )
    args = parser.parse_args()
    print(
        "| recipe | sparse: capture / truth | sparse: KDE / truth | rich: capture / truth "
        "| rich: KDE / truth | rich: Spearman | persistence: model | persistence: past counts "
        "| rich run s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for recipe in args.recipes:
        sparse = planted(recipe, 150)
        rich = planted(recipe, 600)
        model, past = persistence(recipe)
        name = recipe if recipe != "auto" else f"auto ({sparse['chosen']} / {rich['chosen']})"
        print(
            f"| {name} | {sparse['ratio']:.2f} | {sparse['kde']:.2f} | {rich['ratio']:.2f} "
            f"| {rich['kde']:.2f} | {rich['rho']:.2f} | {model:.2f} | {past:.2f} "
            f"| {rich['seconds']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
