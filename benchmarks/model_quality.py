"""Model quality on synthetic truths: a family of landscapes, and per recipe.

Usage::

    .venv/bin/python benchmarks/model_quality.py [--size 100] [--jobs 2] [--only 0 5 ...]
    .venv/bin/python benchmarks/model_quality.py --per-recipe [glm maxent ...]

**The family** (default; issue 17 item 4): 30 landscapes
(``hwc_risk.synthetic.SyntheticSeries``, seeds 100-129), every combination of five
truth shapes (``refuge``, ``edge``, ``threshold``, ``interaction``, ``latent``: see
``hwc_risk.synthetic.TRUTH_SHAPES``), sparse and rich reports (about 150 and 600
over 24 months, fewer where repeats start up) and three kinds of reporting, in this
order: none (0-9), strong (10-19) and moderate (20-29) repeat reporting (each event
triggers 0.6 or 0.3 later events at the same address or a cell or two away, in the
following months, and is reported again within the week half the time on average).
hwc-risk (``model: auto``) runs for the last month; its map is scored against the
exact probability of where the next month's reports fall given everything before it
(``SyntheticSeries.truth_for``): "capture / truth" is the expected share of that
month's reports in the map's top 10 % of the valid cells (ties by the share that
fits) divided by the truth's own, and Spearman is the rank correlation with that
truth. Beside it, on the same feature layers (hwc-risk's, from
``build_feature_stack``), the same presences (the run's accepted incidents) and
10,000 uniform background cells: a plain spline GLM (scikit-learn
``SplineTransformer`` defaults + ``LogisticRegression``) and a regularised MaxEnt
(elapid ``MaxentModel()`` defaults); and the kernel density (Silverman) and
past-count baselines. Prints a table per landscape and a summary. Results are
cached per landscape in ``--work`` under a hash of hwc-risk's source and recipes.

**Per recipe** (``--per-recipe``): each recipe on one area (seed 3, 120 x 120
cells) with 150 (sparse) and 600 (rich) incidents over 24 months. "capture / truth"
is the share of 3000 fresh incidents from the truth in the map's top 10 %, divided
by the share in the truth's own top 10 %; the KDE of the training incidents is the
baseline. The persistence case repeats 60 % of 500 incidents at 12 fixed sites; its
columns are rolling-origin top-10 % capture of the model and of past counts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from _skill import expected_capture  # benchmarks/_skill.py
from scipy import stats

from hwc_risk.config import PipelineConfig, load_config
from hwc_risk.pipeline import run
from hwc_risk.synthetic import TRUTH_SHAPES, RepeatReporting, SyntheticArea, SyntheticSeries

REPEATS = {
    "none": None,
    "strong": RepeatReporting(branching=0.6),
    "moderate": RepeatReporting(branching=0.3),
}
FAMILY_VERSION = "1"  # bump when the family, the references or the scoring change
DEFAULT_WORK = Path.home() / ".cache" / "hwc-risk" / "model_quality"
METHODS = ("default", "spline GLM (ref)", "MaxEnt (ref)", "kernel density", "past counts")
REFERENCES = ("spline GLM (ref)", "MaxEnt (ref)")


@dataclass(frozen=True)
class Landscape:
    """One member of the family."""

    index: int
    shape: str
    n_incidents: int
    repeat: str

    @property
    def label(self) -> str:
        return f"{self.index:02d} {self.shape}, {self.n_incidents}, repeats {self.repeat}"

    def series(self, size: int) -> SyntheticSeries:
        area = SyntheticArea(size=size, seed=100 + self.index, truth_shape=self.shape)
        return SyntheticSeries(
            area, self.n_incidents, 24, REPEATS[self.repeat], seed=100 + self.index
        )


def family() -> list[Landscape]:
    """The 30 landscapes: every truth shape x sparse/rich x repeat reporting."""
    combos = [(shape, n, rep) for rep in REPEATS for n in (150, 600) for shape in TRUTH_SHAPES]
    return [Landscape(i, shape, n, rep) for i, (shape, n, rep) in enumerate(combos)]


def reference_surfaces(cfg: PipelineConfig, work: Path, seed: int) -> dict[str, np.ndarray]:
    """Spline GLM and MaxEnt on hwc-risk's features and presences, and the baselines."""
    from elapid import MaxentModel
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import SplineTransformer, StandardScaler

    from hwc_risk.covariates import build_feature_stack
    from hwc_risk.incidents import locate_incidents, read_incidents
    from hwc_risk.plan import resolve_run_grid
    from hwc_risk.sampling import sample_background
    from hwc_risk.surfaces import baseline_surfaces

    grid = resolve_run_grid(cfg)
    stack = build_feature_stack(cfg.covariates, grid, cfg.features, work)
    located = locate_incidents(read_incidents(cfg.incidents), grid, stack.valid).accepted
    rows, cols = located["row"].to_numpy(), located["col"].to_numpy()
    bg = sample_background(stack.valid, 10_000, np.random.default_rng(seed))
    bg_rows, bg_cols = np.divmod(bg, grid.width)
    X = np.vstack([stack.values_at(rows, cols), stack.values_at(bg_rows, bg_cols)])
    y = np.r_[np.ones(rows.size), np.zeros(bg.size)]
    valid = stack.valid.to_array()
    vr, vc = np.nonzero(valid)
    X_all = stack.values_at(vr, vc)
    glm = make_pipeline(
        StandardScaler(), SplineTransformer(), LogisticRegression(max_iter=5000)
    ).fit(X, y)
    maxent = MaxentModel(n_cpus=1).fit(X, y)
    out = {}
    for name, scores in (
        ("spline GLM (ref)", glm.predict_proba(X_all)[:, 1]),
        ("MaxEnt (ref)", np.asarray(maxent.predict(X_all)).ravel()),
    ):
        surface = np.full(grid.shape, np.nan)
        surface[vr, vc] = scores
        out[name] = surface
    bases = baseline_surfaces(grid.shape, rows, cols, valid)
    out["kernel density"] = bases["kde"].astype(float)
    out["past counts"] = bases["past_counts"].astype(float)
    return out


def skill(surface: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """Expected top-10 % capture relative to the truth's, and Spearman with the truth."""
    s, t = surface[valid], truth[valid]
    ratio = expected_capture(s, t, 0.10) / expected_capture(t, t, 0.10)
    return ratio, float(stats.spearmanr(s, t).statistic)


def evaluate(landscape: Landscape, size: int) -> dict[str, object]:
    """Run hwc-risk and the references on one landscape; their skill."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        series = landscape.series(size)
        config = series.write(folder, model="auto", extra_config={"compute": {"workers": 1}})
        cfg = load_config(config)
        start = time.perf_counter()
        result = run(cfg, month=series.last_month())
        took = time.perf_counter() - start
        with rasterio.open(result.run_dir / "risk.tif") as ds:
            surfaces = {"default": ds.read(1).astype(float)}
        surfaces.update(reference_surfaces(cfg, folder / "reference", seed=landscape.index))
        truth = series.truth_for(series.n_months)
        valid = series.area.valid & np.isfinite(surfaces["default"])
        return {
            "landscape": landscape,
            "reports": int(result.manifest["incidents"]["used"]),
            "chosen": str(result.metrics.get("model_choice", {}).get("chosen", "?")),
            "seconds": took,
            "skill": {name: skill(s, truth, valid) for name, s in surfaces.items()},
        }


def _print_family(results: list[dict[str, object]]) -> None:
    print("| landscape | reports | auto chose | " + " | ".join(METHODS) + " |")
    print("|---|---|---|" + "---|" * len(METHODS))
    for r in results:
        sk = r["skill"]
        assert isinstance(sk, dict)
        cells = " | ".join(f"{sk[m][0]:.2f} / {sk[m][1]:.2f}" for m in METHODS)
        print(f"| {r['landscape'].label} | {r['reports']} | {r['chosen']} | {cells} |")  # type: ignore[attr-defined]
    print("\n(capture / truth, then Spearman with the truth)\n")
    table = {m: np.array([r["skill"][m] for r in results]) for m in METHODS}  # type: ignore[index]
    print("| method | capture / truth: median | min | Spearman: median | min |")
    print("|---|---|---|---|---|")
    for m in METHODS:
        a = table[m]
        print(
            f"| {m} | {np.median(a[:, 0]):.3f} | {a[:, 0].min():.3f} "
            f"| {np.median(a[:, 1]):.3f} | {a[:, 1].min():.3f} |"
        )
    best_ref = np.maximum(table[REFERENCES[0]], table[REFERENCES[1]])
    gap = table["default"] - best_ref
    print("\n| default minus the best reference, per landscape | capture / truth | Spearman |")
    print("|---|---|---|")
    groups = {"all": np.ones(len(results), bool)} | {
        f"repeats {k}": np.array([r["landscape"].repeat == k for r in results])  # type: ignore[attr-defined]
        for k in REPEATS
    }
    for name, keep in groups.items():
        if not keep.any():
            continue
        g = gap[keep]
        worst = [results[i]["landscape"].label for i in np.flatnonzero(keep)]  # type: ignore[attr-defined]
        print(
            f"| {name}: median / worst | {np.median(g[:, 0]):+.3f} / {g[:, 0].min():+.3f} "
            f"({worst[int(np.argmin(g[:, 0]))]}) | {np.median(g[:, 1]):+.3f} / "
            f"{g[:, 1].min():+.3f} |"
        )


def code_key() -> str:
    """A hash of hwc-risk's source and recipes: cached results are only reused for
    the same code."""
    repo = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(FAMILY_VERSION.encode())
    for path in sorted((repo / "hwc_risk").rglob("*.py")) + sorted(repo.glob("models/*.yaml")):
        digest.update(str(path.relative_to(repo)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def evaluate_cached(landscape: Landscape, size: int, folder: str) -> dict[str, object]:
    """:func:`evaluate`, or its result saved in ``folder`` by an earlier run."""
    path = Path(folder) / f"{size}-{landscape.index:02d}.json"
    if path.exists():
        saved = json.loads(path.read_text())
    else:
        saved = evaluate(landscape, size)
        saved.pop("landscape")
        path.write_text(json.dumps(saved))
    return {**saved, "landscape": landscape}


def run_family(size: int, jobs: int, only: list[int] | None, work: Path) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # inherited by the workers: one core each
    members = [m for m in family() if only is None or m.index in only]
    folder = work / code_key()
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        results = []
        n = len(members)
        for r in pool.map(evaluate_cached, members, [size] * n, [str(folder)] * n):
            print(f"{r['landscape'].label}: {r['seconds']:.0f} s", file=sys.stderr, flush=True)  # type: ignore[attr-defined]
            results.append(r)
    _print_family(results)
    took = time.perf_counter() - started
    run_s = sum(float(r["seconds"]) for r in results)  # type: ignore[arg-type]
    print(
        f"\n{n} landscapes of {size} x {size} cells; wall time {took / 60:.1f} min "
        f"(hwc-risk runs: {run_s / 60:.1f} min; results cached in {folder})"
    )


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


def per_recipe(recipes: list[str]) -> None:
    print(
        "| recipe | sparse: capture / truth | sparse: KDE / truth | rich: capture / truth "
        "| rich: KDE / truth | rich: Spearman | persistence: model | persistence: past counts "
        "| rich run s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for recipe in recipes:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--per-recipe",
        nargs="*",
        metavar="RECIPE",
        help="the per-recipe table instead of the family (default: every recipe)",
    )
    parser.add_argument("--size", type=int, default=100, help="family: cells a side")
    parser.add_argument("--jobs", type=int, default=2, help="family: parallel processes")
    parser.add_argument("--only", type=int, nargs="+", help="family: these landscapes only")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="family: result cache")
    args = parser.parse_args()
    if args.per_recipe is not None:
        per_recipe(args.per_recipe or ["glm", "maxent", "gbm", "rf", "ensemble", "auto"])
    else:
        run_family(args.size, args.jobs, args.only, args.work)


if __name__ == "__main__":
    main()
