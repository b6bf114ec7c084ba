"""Whole-surface prediction: hwc-risk against elapid and against the model's own floor.

Usage: ``.venv/bin/python benchmarks/prediction_speed.py [--side 2000] [--nodata 0.3]``

Generates a stack of 6 float32 bands (``side`` x ``side`` cells, a share of
them nodata), fits each recipe on 5000 presence/background samples, and times,
for the same fitted model and stack:

- the model's predict on the valid cells already in memory (the floor);
- elapid's ``apply_model_to_rasters`` (window by window, one process);
- hwc-risk's ``predict_to_geotiff`` (valid cells only, float32, a thread pool
  with one GDAL handle per thread, reading overlapped with computing).

Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from elapid import apply_model_to_rasters
from rasterio.crs import CRS
from scipy import ndimage

from hwc_risk.covariates import FeatureLayer, FeatureStack
from hwc_risk.grid import GridSpec
from hwc_risk.models import build_estimator, load_recipe, risk_scores
from hwc_risk.predict import predict_to_geotiff


def make_stack(folder: Path, side: int, nodata_share: float) -> FeatureStack:
    rng = np.random.default_rng(0)
    grid = GridSpec(CRS.from_epsg(32736), Affine(30, 0, 600_000, 0, -30, 9_800_000), side, side)
    valid = np.ones(grid.shape, bool)
    if nodata_share > 0:
        blob = ndimage.gaussian_filter(rng.normal(size=grid.shape), side / 40)
        valid = blob > np.quantile(blob, nodata_share)
    layers = []
    for k in range(6):
        data = ndimage.gaussian_filter(rng.normal(size=grid.shape), side / 60 + k).astype(
            np.float32
        )
        data = (data - data.mean()) / data.std()
        data[~valid] = np.nan
        path = folder / f"band{k}.tif"
        profile = grid.profile(dtype="float32", nodata=np.nan, predictor=3)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data, 1)
        layers.append(FeatureLayer(f"band{k}", path, "bench", "value", "1"))
    return FeatureStack(grid=grid, layers=layers, valid=valid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=2000)
    parser.add_argument("--nodata", type=float, default=0.3)
    parser.add_argument("--recipes", nargs="+", default=["glm", "maxent", "gbm", "rf"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stack = make_stack(folder, args.side, args.nodata)
        rows, cols = np.nonzero(stack.valid)
        X_all = stack.values_at(rows, cols)
        rng = np.random.default_rng(1)
        pick = rng.choice(len(rows), 5000, replace=False)
        X = X_all[pick]
        y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=5000) > 1.2).astype(int)
        print(
            f"{args.side}x{args.side} cells x 6 bands, {1 - stack.valid.mean():.0%} nodata; seconds"
        )
        print(
            "| recipe | model floor (in memory) | elapid apply_model_to_rasters | hwc-risk "
            "| elapid / hwc-risk | hwc-risk / floor |"
        )
        print("|---|---|---|---|---|---|")
        for name in args.recipes:
            model = build_estimator(load_recipe(name), 0)
            model.fit(X, y)
            t = time.perf_counter()
            risk_scores(model, X_all)
            floor = time.perf_counter() - t
            t = time.perf_counter()
            apply_model_to_rasters(
                model,
                [str(layer.path) for layer in stack.layers],
                str(folder / "elapid.tif"),
                quiet=True,
                predict_proba=name != "maxent",
                count=1 if name == "maxent" else 2,  # classifiers write both class columns
            )
            elapid_s = time.perf_counter() - t
            t = time.perf_counter()
            predict_to_geotiff(model, stack, folder / "hwc.tif", workers=2)
            ours = time.perf_counter() - t
            print(
                f"| {name} | {floor:.1f} | {elapid_s:.1f} | {ours:.1f} | "
                f"{elapid_s / ours:.2f}x | {ours / floor:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
