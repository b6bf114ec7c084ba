"""Time each stage of a full run, and its peak memory, on synthetic areas of growing size.

Usage: ``.venv/bin/python benchmarks/pipeline_stages.py [--sizes 1000 2000 4000]
[--incidents 600] [--model maxent] [--chunk-size 1024] [--monthly]``

Each area is made by one process and run by another, so that the peak
resident memory (RSS, Linux VmHWM) is the run's own. Prints one Markdown
table: with chunks of ``--chunk-size`` cells a side, the peak should stop
growing once the grid is larger than a few chunks.

``--monthly`` runs each area twice: as above, and with two 36-month covariates of
``benchmarks/temporal_reads.py`` (a 1 km NetCDF cube with anomalies and a 500 m
``{month}`` GeoTIFF template; lags 0 and 1 and the mean of the 3 months before), the
season and a one-month forecast; the table then has a row for each and the ratio of
their peak memory (issue 14's goal: at most 1.2x).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measure import peak_rss_mb  # benchmarks/_measure.py

#: The run's stages as the manifest times them (hwc_risk/pipeline.py).
STAGES = ("plan", "features", "samples", "selection", "fit", "predict", "forecast", "products")


def make_area(size: int, incidents: int, model: str, folder: Path) -> Path:
    from hwc_risk.synthetic import SyntheticArea

    area = SyntheticArea(size=size, cell_size=100.0, seed=11)
    return area.write(folder, n_incidents=incidents, n_months=24, model=model)


def add_monthly(config: Path, size: int) -> Path:
    """A copy of the area's config with the two monthly covariates of
    ``temporal_reads.py`` (written beside it), the season and a one-month forecast."""
    import yaml
    from temporal_reads import make_data  # benchmarks/temporal_reads.py

    from hwc_risk.synthetic import SyntheticArea

    area = SyntheticArea(size=size, cell_size=100.0, seed=11)
    folder = config.parent
    # the incidents run over 2024-2025; the cubes from 2023-01 to 2025-12
    make_data(folder, size, area.origin, area.crs.to_string(), "2023-01")
    data = yaml.safe_load(config.read_text())
    common = {"type": "continuous", "lags": [0, 1], "aggregate": {"statistic": "mean", "months": 3}}
    data["covariates"]["rain"] = {"path": "rain.nc", "anomaly": True, **common}
    data["covariates"]["ndvi"] = {"path": "ndvi/ndvi_{month}.tif", **common}
    data.setdefault("features", {})["season"] = True
    data["forecast"] = {"horizon": 1}
    data["name"] = f"{data['name']}-monthly"
    out = folder / "monthly.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def one_run(config: Path, chunk_size: int) -> dict[str, float]:
    from hwc_risk.config import load_config
    from hwc_risk.pipeline import run

    start = time.perf_counter()
    result = run(load_config(config), chunk_size=chunk_size)
    total = time.perf_counter() - start
    return {**result.manifest["timings_s"], "total": total, "peak_rss_mb": peak_rss_mb()}


def _child(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    parser.add_argument("--incidents", type=int, default=600)
    parser.add_argument("--model", default="maxent")
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--make", nargs=2, help=argparse.SUPPRESS)  # SIZE FOLDER
    parser.add_argument("--one", help=argparse.SUPPRESS)  # CONFIG
    parser.add_argument("--monthly", action="store_true", help="also with monthly covariates")
    args = parser.parse_args()
    if args.make:
        size, folder = args.make
        print(make_area(int(size), args.incidents, args.model, Path(folder)))
        return
    if args.one:
        print(json.dumps(one_run(Path(args.one), args.chunk_size)))
        return
    header = ["grid", "cells", "run", *STAGES, "total s", "peak RSS MB"]
    print(
        f"model: {args.model}, incidents: {args.incidents}, chunks of {args.chunk_size} cells, "
        "times in seconds"
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            common = ["--incidents", str(args.incidents), "--model", args.model]
            config = Path(_child("--make", str(size), tmp, *common))
            runs = {"static": config}
            if args.monthly:
                runs["monthly"] = add_monthly(config, size)
            rows = {
                name: json.loads(_child("--one", str(path), "--chunk-size", str(args.chunk_size)))
                for name, path in runs.items()
            }
        for name, row in rows.items():
            cells = [f"{size}x{size}", f"{size * size:,}", name]
            cells += [f"{row.get(s, float('nan')):.2f}" for s in STAGES]
            cells += [f"{row['total']:.1f}", f"{row['peak_rss_mb']:.0f}"]
            print("| " + " | ".join(cells) + " |", flush=True)
        if args.monthly:
            ratio = rows["monthly"]["peak_rss_mb"] / rows["static"]["peak_rss_mb"]
            added = rows["monthly"]["total"] - rows["static"]["total"]
            print(f"{size}x{size}: peak RSS monthly / static {ratio:.2f}x; {added:+.0f} s")


if __name__ == "__main__":
    main()
