"""Time and peak memory of monthly covariates: values at samples, and one month's layers.

Makes a grid of SIDE x SIDE cells of 100 m and two 36-month covariates over it, as an
agency would have them: a NetCDF cube at 1 km (rainfall-like) and a ``{month}`` GeoTIFF
template at 500 m (greenness-like). Then, each in a fresh process (so the peak resident
memory is the step's own):

- ``samples``: every feature (lags 0 and 1, the mean of the 3 months before, anomalies
  for the cube) at 10 000 background and 900 incident cells, each in its own month drawn
  over the 36 months (:func:`hwc_risk.temporal.values_at_samples`);
- ``layers``: the same features over the whole grid for one month, a month not published
  yet (climatology), chunk by chunk (:func:`hwc_risk.temporal.write_month_layers`);
- ``baseline``: the process with the same imports and grid, doing nothing else.

Usage: ``.venv/bin/python benchmarks/temporal_reads.py [--side 4000] [--chunk 1024]``.
Timings on a shared 2-core machine vary by 30-50 %; read the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MONTHS = 36


def _smooth(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    from scipy import ndimage

    f = ndimage.gaussian_filter(rng.normal(size=shape), 6)
    return (f - f.mean()) / f.std()


def make_data(
    folder: Path,
    side: int,
    origin: tuple[float, float] = (500_000.0, 9_500_000.0),
    crs: str = "EPSG:32736",
    first: str = "2022-01",
) -> None:
    """``rain.nc`` (1 km cube) and ``ndvi/ndvi_{month}.tif`` (500 m) over a grid of
    ``side`` cells of 100 m whose top-left corner is ``origin``: 36 months from ``first``."""
    import rasterio
    import rioxarray  # noqa: F401
    import xarray as xr
    from affine import Affine

    rng = np.random.default_rng(0)
    extent = side * 100.0
    x0, y0 = origin
    # cube at 1 km, a little larger than the grid
    n = int(extent / 1000) + 4
    xs = x0 - 2000 + 1000 * (np.arange(n) + 0.5)
    ys = y0 + 2000 - 1000 * (np.arange(n) + 0.5)
    base = _smooth(rng, (n, n))
    months = np.arange(np.datetime64(first), np.datetime64(first) + MONTHS)
    data = np.stack(
        [
            50 + 20 * base + 30 * np.sin(2 * np.pi * k / 12) + 5 * _smooth(rng, (n, n))
            for k in range(MONTHS)
        ]
    ).astype(np.float32)
    ds = xr.Dataset(
        {"rain": (("time", "y", "x"), data)},
        coords={"time": months.astype("datetime64[ns]"), "y": ys, "x": xs},
    ).rio.write_crs(crs)
    ds["rain"].encoding.update(zlib=True, complevel=4, chunksizes=(1, min(n, 256), min(n, 256)))
    ds.to_netcdf(folder / "rain.nc")
    # template at 500 m
    m = int(extent / 500) + 4
    tr = Affine(500, 0, x0 - 1000, 0, -500, y0 + 1000)
    base = _smooth(rng, (m, m))
    (folder / "ndvi").mkdir()
    profile = {
        "driver": "GTiff",
        "width": m,
        "height": m,
        "count": 1,
        "dtype": "float32",
        "crs": crs,
        "transform": tr,
        "tiled": True,
        "compress": "deflate",
    }
    for k, month in enumerate(months):
        values = 0.4 + 0.1 * base + 0.2 * np.cos(2 * np.pi * k / 12) + 0.02 * _smooth(rng, (m, m))
        with rasterio.open(folder / "ndvi" / f"ndvi_{month}.tif", "w", **profile) as dst:
            dst.write(values.astype(np.float32), 1)


def step(folder: Path, side: int, what: str, chunk: int) -> dict[str, float]:
    from affine import Affine
    from rasterio.crs import CRS

    import hwc_risk.temporal.cube_source  # noqa: F401 - xarray's imports, before the clock
    from hwc_risk.compute import Compute
    from hwc_risk.grid import GridSpec
    from hwc_risk.temporal import (
        CovariateConfig,
        as_month,
        open_source,
        temporal_features,
        values_at_samples,
        write_month_layers,
    )

    grid = GridSpec(CRS.from_epsg(32736), Affine(100, 0, 500_000, 0, -100, 9_500_000), side, side)
    common = {"type": "continuous", "lags": [0, 1], "aggregate": {"statistic": "mean", "months": 3}}
    configs = {
        "rain": CovariateConfig(path=folder / "rain.nc", anomaly=True, **common),
        "ndvi": CovariateConfig(path=folder / "ndvi" / "ndvi_{month}.tif", **common),
    }
    rng = np.random.default_rng(1)
    n = 10_900
    rows, cols = rng.integers(0, side, n), rng.integers(0, side, n)
    first = as_month("2022-01")
    months = first + rng.integers(3, MONTHS, n)
    start = time.perf_counter()
    for key, cfg in configs.items():
        if what == "baseline":
            break
        with open_source(cfg, key) as src:
            features = temporal_features(key, cfg)
            if what == "samples":
                values_at_samples(src, cfg, features, grid, rows, cols, months)
            else:
                write_month_layers(
                    src,
                    key,
                    cfg,
                    features,
                    grid,
                    first + MONTHS,
                    folder / "work",
                    Compute(chunk_size=chunk, workers=2),
                )
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=4000)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--step", choices=["samples", "layers", "baseline"])
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(step(args.folder, args.side, args.step, args.chunk)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        make_data(folder, args.side)
        print(f"data made in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        rows = {}
        for what in ("baseline", "samples", "layers"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--step",
                    what,
                    "--folder",
                    str(folder),
                    "--side",
                    str(args.side),
                    "--chunk",
                    str(args.chunk),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            rows[what] = json.loads(out.stdout.strip().splitlines()[-1])
    mpx = args.side * args.side / 1e6
    print(
        f"grid {args.side} x {args.side} ({mpx:g} Mpx), 2 covariates x 36 months, "
        f"chunks of {args.chunk}"
    )
    print("| step | seconds | peak RSS MB | peak / baseline |")
    print("|---|---|---|---|")
    base = rows["baseline"]["peak_mb"]
    for what, r in rows.items():
        print(f"| {what} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | {r['peak_mb'] / base:.2f}x |")


if __name__ == "__main__":
    main()
