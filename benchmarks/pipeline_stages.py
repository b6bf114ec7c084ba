"""Time each stage of a full run, and its peak memory, on synthetic areas of growing size.

Usage: ``.venv/bin/python benchmarks/pipeline_stages.py [--sizes 100 200 400] [--incidents 600]``

Each size runs in its own process so that the peak resident memory (RSS) is
that run's own. Prints one Markdown table.
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

STAGES = ("features", "validation_temporal", "validation_spatial", "fit", "predict", "export")


def one_run(size: int, incidents: int, model: str) -> dict[str, float]:
    from hwc_risk.config import load_config
    from hwc_risk.pipeline import run
    from hwc_risk.synthetic import SyntheticArea

    with tempfile.TemporaryDirectory() as tmp:
        area = SyntheticArea(size=size, cell_size=100.0, seed=11)
        config = area.write(Path(tmp), n_incidents=incidents, n_months=24, model=model)
        start = time.perf_counter()
        result = run(load_config(config))
        total = time.perf_counter() - start
    peak_mb = peak_rss_mb()
    return {**result.manifest["timings_s"], "total": total, "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--incidents", type=int, default=600)
    parser.add_argument("--model", default="maxent")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.one, args.incidents, args.model)))
        return
    header = ["grid", "cells", *STAGES, "total s", "peak RSS MB"]
    print(f"model: {args.model}, incidents: {args.incidents}, times in seconds")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for size in args.sizes:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                str(size),
                "--incidents",
                str(args.incidents),
                "--model",
                args.model,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        cells = [f"{size}x{size}", f"{size * size:,}"]
        cells += [f"{row.get(s, float('nan')):.2f}" for s in STAGES]
        cells += [f"{row['total']:.1f}", f"{row['peak_rss_mb']:.0f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
