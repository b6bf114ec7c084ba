"""Time each stage of a full run, and its peak memory, on synthetic areas of growing size.

Usage: ``.venv/bin/python benchmarks/pipeline_stages.py [--sizes 1000 2000 4000]
[--incidents 600] [--model maxent] [--chunk-size 1024]``

Each area is made by one process and run by another, so that the peak
resident memory (RSS, Linux VmHWM) is the run's own. Prints one Markdown
table: with chunks of ``--chunk-size`` cells a side, the peak should stop
growing once the grid is larger than a few chunks.
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
STAGES = ("plan", "features", "samples", "selection", "fit", "predict", "products")


def make_area(size: int, incidents: int, model: str, folder: Path) -> Path:
    from hwc_risk.synthetic import SyntheticArea

    area = SyntheticArea(size=size, cell_size=100.0, seed=11)
    return area.write(folder, n_incidents=incidents, n_months=24, model=model)


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
    args = parser.parse_args()
    if args.make:
        size, folder = args.make
        print(make_area(int(size), args.incidents, args.model, Path(folder)))
        return
    if args.one:
        print(json.dumps(one_run(Path(args.one), args.chunk_size)))
        return
    header = ["grid", "cells", *STAGES, "total s", "peak RSS MB"]
    print(
        f"model: {args.model}, incidents: {args.incidents}, chunks of {args.chunk_size} cells, "
        "times in seconds"
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            common = ["--incidents", str(args.incidents), "--model", args.model]
            config = _child("--make", str(size), tmp, *common)
            row = json.loads(_child("--one", config, "--chunk-size", str(args.chunk_size)))
        cells = [f"{size}x{size}", f"{size * size:,}"]
        cells += [f"{row.get(s, float('nan')):.2f}" for s in STAGES]
        cells += [f"{row['total']:.1f}", f"{row['peak_rss_mb']:.0f}"]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
