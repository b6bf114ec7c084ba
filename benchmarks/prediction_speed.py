"""Whole-surface prediction: hwc-risk against elapid, against the floor, memory and Dask.

Usage::

    .venv/bin/python benchmarks/prediction_speed.py                # 16 Mpx x 6 bands
    .venv/bin/python benchmarks/prediction_speed.py --side 2000 --memory-sides 1000 2000 4000

Generates stacks of 6 float32 bands (``--side`` x ``--side`` cells; one with
30 % nodata and one with none), fits each recipe on 5000 presence/background
samples, and prints Markdown tables measured in the same run:

1. speed, per recipe and stack: the floor (the model's scoring of the valid
   cells already in memory, as hwc-risk calls it; reading every band and
   writing one band, chunk by chunk, with no model), elapid's
   ``apply_model_to_rasters`` and hwc-risk's ``predict_to_geotiff`` with the
   same fitted model and stack, and the ratios;
2. peak resident memory (RSS) at each of ``--memory-sides`` (default 2000,
   4000, 8000: 4, 16 and 64 Mpx), each in a fresh process: feature building
   from a 5-class land-use raster and a continuous one (distance cap 5 km,
   neighbourhood 500 m, 30 m cells), and MaxEnt and GBM prediction;
3. the local run against a ``LocalCluster`` of two worker processes, with a
   check that both surfaces are equal.

The stacks are sums of random waves written chunk by chunk, so making a
64 Mpx stack needs little memory. A timing under 3 s is the best of three calls.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
from _measure import peak_rss_mb  # benchmarks/_measure.py
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from hwc_risk.compute import Compute, run_windows
from hwc_risk.covariates import FeatureLayer, FeatureStack, create_band
from hwc_risk.grid import GridSpec
from hwc_risk.models import build_estimator, load_recipe, risk_scores
from hwc_risk.predict import predict_to_geotiff

N_BANDS = 6


def _wave(rng: np.random.Generator, n: int = 4) -> list[tuple[float, float, float, float]]:
    return [
        (rng.uniform(0.2, 1.0), rng.uniform(0.5, 6), rng.uniform(0.5, 6), rng.uniform(0, 6.3))
        for _ in range(n)
    ]


def _field(waves: list[tuple[float, ...]], yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(yy, xx).shape, dtype=np.float64)
    for amp, fy, fx, phase in waves:
        out += amp * np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)
    return out


def make_stack(folder: Path, side: int, nodata_share: float, seed: int = 0) -> FeatureStack:
    """Six smooth bands, ``nodata_share`` of the cells NaN in all of them."""
    rng = np.random.default_rng(seed)
    grid = GridSpec(CRS.from_epsg(32736), Affine(30, 0, 600_000, 0, -30, 9_800_000), side, side)
    band_waves = [_wave(rng) for _ in range(N_BANDS)]
    mask_waves = _wave(rng, 3)
    # the nodata threshold: the quantile of the mask field on a coarse sample
    ys, xs = np.meshgrid(np.linspace(0, 1, 300), np.linspace(0, 1, 300), indexing="ij")
    cut = np.quantile(_field(mask_waves, ys, xs), nodata_share) if nodata_share > 0 else -np.inf
    layers = [
        FeatureLayer(
            name=f"band{k}",
            path=folder / f"band{k}.tif",
            covariate="bench",
            kind="value",
            units="1",
        )
        for k in range(N_BANDS)
    ]
    for layer in layers:
        create_band(layer.path, grid, layer.name)
    handles = [rasterio.open(layer.path, "r+") for layer in layers]
    try:
        for win in Compute(chunk_size=1024).windows(grid.shape):
            r, c = int(win.row_off), int(win.col_off)
            yy = (np.arange(r, r + int(win.height)) / side)[:, None]
            xx = (np.arange(c, c + int(win.width)) / side)[None, :]
            ok = _field(mask_waves, yy, xx) > cut
            for k, ds in enumerate(handles):
                data = _field(band_waves[k], yy, xx).astype(np.float32)
                data[~ok] = np.nan
                ds.write(data, 1, window=win)
    finally:
        for ds in handles:
            ds.close()
    os.sync()  # no write-back of the new files during the timings
    return FeatureStack(grid=grid, layers=layers, valid=np.ones((1, 1), bool))


def make_covariates(folder: Path, side: int, seed: int = 2) -> None:
    """A land-use raster (5 classes, 0 = nodata) and a skewed continuous one, chunk by chunk."""
    rng = np.random.default_rng(seed)
    grid = GridSpec(CRS.from_epsg(32736), Affine(30, 0, 600_000, 0, -30, 9_800_000), side, side)
    waves, pop_waves, mask_waves = _wave(rng, 6), _wave(rng), _wave(rng, 3)
    base = grid.profile(blockxsize=256, blockysize=256)
    with (
        rasterio.open(folder / "lu.tif", "w", **{**base, "dtype": "uint8", "nodata": 0}) as lu,
        rasterio.open(
            folder / "pop.tif", "w", **{**base, "dtype": "float32", "nodata": -1.0}
        ) as pop,
    ):
        for win in Compute(chunk_size=1024).windows(grid.shape):
            r, c = int(win.row_off), int(win.col_off)
            yy = (np.arange(r, r + int(win.height)) / side)[:, None]
            xx = (np.arange(c, c + int(win.width)) / side)[None, :]
            f = _field(waves, yy, xx)
            codes = np.digitize(f, [-1.5, -0.5, 0.5, 1.5]).astype(np.uint8) + 1
            codes[_field(mask_waves, yy, xx) < -1.2] = 0
            lu.write(codes, 1, window=win)
            pop.write(np.exp(2 * _field(pop_waves, yy, xx)).astype(np.float32), 1, window=win)


def features_run(folder: Path, chunk: int, workers: int) -> dict:
    """In a fresh process: build the features of the two covariates; peak RSS in MB."""
    from hwc_risk.config import CovariateConfig, FeaturesConfig
    from hwc_risk.covariates import build_feature_stack

    covs = {
        "lu": CovariateConfig(path=folder / "lu.tif", type="categorical"),
        "pop": CovariateConfig(path=folder / "pop.tif", type="continuous"),
    }
    with rasterio.open(folder / "lu.tif") as ds:
        grid = GridSpec.from_dataset(ds)
    settings = FeaturesConfig(neighbourhood=500, distance_cap=5000)
    t = time.perf_counter()
    stack = build_feature_stack(
        covs,
        grid,
        settings,
        folder / "features",
        compute=Compute(chunk_size=chunk, workers=workers),
    )
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "peak_mb": peak_rss_mb(), "features": len(stack.layers)}


def training_data(stack: FeatureStack, n: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    rows = rng.integers(0, stack.grid.height, 4 * n)
    cols = rng.integers(0, stack.grid.width, 4 * n)
    X = stack.values_at(rows, cols)
    X = X[np.isfinite(X).all(axis=1)][:n]
    y = (X[:, 0] + 0.5 * X[:, 1] ** 2 + rng.normal(size=len(X)) > 1.2).astype(int)
    return X, y


def read_all(stack: FeatureStack) -> np.ndarray:
    """The valid cells of the stack as ``(n, bands)`` float32 (for the in-memory floor)."""
    bands = []
    for layer in stack.layers:
        with rasterio.open(layer.path) as ds:
            bands.append(ds.read(1).ravel())
    X = np.stack(bands, axis=1)
    return X[np.isfinite(X).all(axis=1)]


def _io_task(paths: tuple[str, ...], window: Window) -> list[np.ndarray]:
    block = [rasterio.open(p).read(1, window=window) for p in paths]
    return [block[0]]


def io_floor(stack: FeatureStack, out: Path, compute: Compute) -> float:
    """Seconds to read every band and write one, chunk by chunk, with no model."""
    create_band(out, stack.grid, "io")
    return timed(
        run_windows,
        _io_task,
        tuple(str(layer.path) for layer in stack.layers),
        [out],
        compute,
        stack.grid.shape,
        "io",
    )


def timed(fn, *args, **kwargs) -> float:  # type: ignore[no-untyped-def]
    """Seconds of one call; the best of up to three when a call takes under 3 s (noise)."""
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t)
        if best >= 3.0:
            break
    return best


def speed_table(folder: Path, side: int, recipes: list[str], workers: int) -> None:
    from elapid import apply_model_to_rasters

    print(f"\n### Speed: {side} x {side} cells x {N_BANDS} bands, seconds\n")
    print(
        "| stack | recipe | model floor (in memory) | read + write floor | elapid "
        "| hwc-risk | elapid / hwc-risk | hwc-risk / model floor |"
    )
    print("|---|---|---|---|---|---|---|---|")
    compute = Compute(workers=workers)
    for share in (0.3, 0.0):
        sub = folder / f"nodata{int(share * 100)}"
        sub.mkdir()
        stack = make_stack(sub, side, share)
        X, y = training_data(stack)
        X_all = read_all(stack)
        io_s = io_floor(stack, sub / "io.tif", compute)
        for name in recipes:
            model = build_estimator(load_recipe(name), 0).fit(X, y)
            floor = timed(risk_scores, model, X_all)
            elapid_s = timed(
                apply_model_to_rasters,
                model,
                [str(layer.path) for layer in stack.layers],
                str(sub / "elapid.tif"),
                quiet=True,
                predict_proba=name != "maxent",
                count=1 if name == "maxent" else 2,  # classifiers write both class columns
            )
            ours = timed(predict_to_geotiff, model, stack, sub / "hwc.tif", compute)
            with rasterio.open(sub / "hwc.tif") as a, rasterio.open(sub / "elapid.tif") as b:
                theirs = b.read(b.count)
                mine = a.read(1)
            ok = np.isfinite(mine)
            agree = float(np.abs(mine[ok] - theirs[ok]).max())
            print(
                f"| {share:.0%} nodata | {name} | {floor:.1f} | {io_s:.1f} | {elapid_s:.1f} | "
                f"{ours:.1f} | {elapid_s / ours:.2f}x | {ours / floor:.2f}x |"
                + (f" (max difference from elapid {agree:.1e})" if agree > 1e-5 else ""),
                flush=True,
            )
        del X_all


def memory_run(folder: Path, model_path: Path, out: Path, chunk: int, workers: int) -> dict:
    """In a fresh process: load the model, predict the stack; peak RSS in MB."""
    with open(model_path, "rb") as f:
        model = pickle.load(f)
    layers = [
        FeatureLayer(name=p.stem, path=p, covariate="bench", kind="value", units="1")
        for p in sorted(folder.glob("band*.tif"))
    ]
    with rasterio.open(layers[0].path) as ds:
        grid = GridSpec.from_dataset(ds)
    stack = FeatureStack(grid=grid, layers=layers, valid=np.ones((1, 1), bool))
    t = time.perf_counter()
    predict_to_geotiff(model, stack, out, Compute(chunk_size=chunk, workers=workers))
    seconds = time.perf_counter() - t
    peak_mb = peak_rss_mb()
    return {"seconds": seconds, "peak_mb": peak_mb}


def memory_table(folder: Path, sides: list[int], chunk: int, workers: int) -> None:
    print(f"\n### Peak memory (RSS, fresh process; chunks of {chunk}, {workers} threads)\n")
    header = "| step | " + " | ".join(f"{s * s / 1e6:g} Mpx" for s in sides)
    print(header + f" | {sides[-1] ** 2 / 1e6:g} Mpx / {sides[0] ** 2 / 1e6:g} Mpx |")
    print("|---|" + "---|" * (len(sides) + 1))
    stacks = {}
    for side in sides:
        sub = folder / f"mem{side}"
        sub.mkdir()
        stacks[side] = make_stack(sub, side, 0.3)
        make_covariates(sub, side)
    X, y = training_data(stacks[sides[0]])

    def row(label: str, args_of: Callable[[Path], list[str]]) -> None:
        """One table row: the child run at every size, in a fresh process each."""
        runs = []
        for side in sides:
            sub = folder / f"mem{side}"
            options = ["--chunk", str(chunk), "--workers", str(workers)]
            res = subprocess.run(
                [sys.executable, __file__, *args_of(sub), *options],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        cells = [f"{r['peak_mb']:.0f} MB ({r['seconds']:.0f} s)" for r in runs]
        ratio = runs[-1]["peak_mb"] / runs[0]["peak_mb"]
        label = label.format(**runs[0])  # e.g. the number of features built
        print(f"| {label} | " + " | ".join(cells) + f" | {ratio:.2f}x |", flush=True)

    row("features ({features} from 2 covariates)", lambda sub: ["--features-run", str(sub)])
    for name in ("maxent", "gbm"):
        model_path = folder / f"{name}.pkl"
        with open(model_path, "wb") as f:
            pickle.dump(build_estimator(load_recipe(name), 0).fit(X, y), f)
        row(
            f"predict {name}",
            lambda sub, m=model_path: ["--memory-run", str(sub), str(m), str(sub / "out.tif")],
        )


def cluster_table(folder: Path, side: int, workers: int) -> None:
    from distributed import Client, LocalCluster

    print(f"\n### Local pool against a two-worker LocalCluster ({side} x {side}, 30 % nodata)\n")
    print("| recipe | local threads s | LocalCluster (2 processes x 1 thread) s | equal |")
    print("|---|---|---|---|")
    sub = folder / "cluster"
    sub.mkdir()
    stack = make_stack(sub, side, 0.3)
    X, y = training_data(stack)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as lc,
        Client(lc) as client,
    ):
        for name in ("maxent", "gbm"):
            model = build_estimator(load_recipe(name), 0).fit(X, y)
            local = timed(predict_to_geotiff, model, stack, sub / "l.tif", Compute(workers=workers))
            remote = timed(predict_to_geotiff, model, stack, sub / "r.tif", Compute(client=client))
            with rasterio.open(sub / "l.tif") as a, rasterio.open(sub / "r.tif") as b:
                equal = np.array_equal(a.read(1), b.read(1), equal_nan=True)
            print(f"| {name} | {local:.1f} | {remote:.1f} | {'yes' if equal else 'NO'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=4000)
    parser.add_argument("--recipes", nargs="+", default=["glm", "maxent", "gbm", "rf"])
    parser.add_argument("--memory-sides", type=int, nargs="+", default=[2000, 4000, 8000])
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], choices=["speed", "memory", "cluster"])
    parser.add_argument("--memory-run", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--features-run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.features_run:
        print(json.dumps(features_run(Path(args.features_run), args.chunk, args.workers)))
        return
    if args.memory_run:
        folder, model_path, out = (Path(p) for p in args.memory_run)
        print(json.dumps(memory_run(folder, model_path, out, args.chunk, args.workers)))
        return
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "speed" not in args.skip:
            speed_table(folder, args.side, args.recipes, args.workers)
        if "memory" not in args.skip:
            memory_table(folder, args.memory_sides, args.chunk, args.workers)
        if "cluster" not in args.skip:
            cluster_table(folder, args.side, args.workers)


if __name__ == "__main__":
    main()
