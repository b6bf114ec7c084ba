"""Wall time of whole runs of a config, each in a fresh process (``hwc-risk run --force``).

Prints a table of the runs' wall times and the stage timings of the fastest. Run it with
the ``hwc-risk`` of one checkout, then another, to compare commits side by side::

    .venv/bin/python benchmarks/run_time.py pipelines/sample.yaml --repeats 3
    /path/to/other/checkout/.venv/bin/python benchmarks/run_time.py pipelines/sample.yaml

The output folder is a temporary one; the config's own outputs are not touched.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(config: Path, out: Path) -> tuple[float, dict[str, float]]:
    """One run in a fresh process: its wall time and the manifest's stage timings."""
    hwc_risk = Path(sys.executable).with_name("hwc-risk")
    start = time.perf_counter()
    proc = subprocess.run(
        [str(hwc_risk), "run", str(config), "--output-dir", str(out), "--force", "--quiet"],
        capture_output=True,
        text=True,
        check=True,
    )
    took = time.perf_counter() - start
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return took, manifest["timings_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="hwc-risk-run-time-") as tmp:
        for _ in range(args.repeats):
            runs.append(one_run(args.config.resolve(), Path(tmp)))
    walls = [w for w, _ in runs]
    best = min(range(len(runs)), key=lambda i: walls[i])
    print(
        f"| {args.config.name} | "
        + " | ".join(f"{w:.1f}" for w in walls)
        + f" | {min(walls):.1f} |"
    )
    print(
        "stages of the fastest run (s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in runs[best][1].items())
    )


if __name__ == "__main__":
    main()
