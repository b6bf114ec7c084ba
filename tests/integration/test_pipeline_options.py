"""Pipeline options through the library entry point, on the small synthetic area."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

from hwc_risk.config import load_config
from hwc_risk.pipeline import run
from hwc_risk.synthetic import SyntheticArea
from tests.conftest import edit_config

# runs pipelines or fits models on whole areas: the slow tier (tests/conftest.py)
pytestmark = pytest.mark.slow


def test_grid_set_in_config_reprojects_everything(small_area: Path) -> None:
    # ETRS89 / LAEA Europe at 300 m: every covariate and incident is reprojected
    edit_config(small_area, grid={"crs": "EPSG:3035", "resolution": 300})
    result = run(load_config(small_area))
    with rasterio.open(result.run_dir / "risk.tif") as ds:
        assert ds.crs.to_epsg() == 3035
        assert ds.res == (300.0, 300.0)
        risk = ds.read(1)
    assert np.isfinite(risk).mean() > 0.5
    assert result.manifest["grid"]["epsg"] == 3035
    assert result.manifest["incidents"]["used"] > 100


def test_month_after_the_data_skips_temporal_holdout(small_area: Path) -> None:
    result = run(load_config(small_area), month="2030-01")
    temporal = result.metrics["temporal_holdout"]
    assert temporal == {"skipped": "no incidents in 2030-01 to test on"}
    assert "skipped" in result.metrics["summary"]
    assert result.manifest["incidents"]["after_month"] == 0
    assert (result.run_dir / "risk.tif").exists()


def test_all_incidents_in_the_run_month_says_why_the_holdout_was_skipped(
    tmp_path: Path,
) -> None:
    """Found by the property tests: with every incident in one month the holdout was
    reported as having no incidents to test on, which is the opposite of the truth."""
    config = SyntheticArea(size=40, cell_size=250.0, seed=3).write(
        tmp_path / "area",
        n_incidents=80,
        n_months=1,
        extra_config={"background": {"n_points": 800}, "validation": {"folds": 2}},
    )
    result = run(load_config(config))
    month = result.manifest["month"]
    assert result.metrics["temporal_holdout"] == {
        "skipped": f"only 0 incidents before {month} to train on"
    }
    assert (
        f"temporal holdout skipped: only 0 incidents before {month}" in (result.metrics["summary"])
    )


def test_rerun_replaces_the_month_cleanly(small_area: Path) -> None:
    config = load_config(small_area)
    first = run(config, month="2025-03")
    (first.run_dir / "stale-note.txt").write_text("from an earlier run")
    (first.run_dir / "risk.tif.aux.xml").write_text("<PAMDataset>stale statistics</PAMDataset>")
    second = run(config, month="2025-03", force=True)  # nothing changed: force the rerun
    assert second.run_dir == first.run_dir and not second.skipped
    assert not (second.run_dir / "stale-note.txt").exists()
    assert not (second.run_dir / "risk.tif.aux.xml").exists()  # QGIS would show stale stats
    names = [p.name for p in second.run_dir.parent.iterdir() if not p.name.endswith(".lock")]
    assert names == ["2025-03"]


def test_crs_without_epsg_code_is_kept_and_reported(tmp_path: Path) -> None:
    custom = CRS.from_proj4(
        "+proj=tmerc +lat_0=0 +lon_0=14.5 +k=0.9996 +x_0=500000 +y_0=0 +ellps=WGS84 +units=m"
    )
    assert custom.to_epsg() is None
    area = SyntheticArea(size=48, cell_size=250.0, seed=5, crs=custom)
    config = area.write(
        tmp_path,
        n_incidents=150,
        n_months=12,
        extra_config={"background": {"n_points": 1000}, "validation": {"folds": 3}},
    )
    result = run(load_config(config))
    with rasterio.open(result.run_dir / "risk.tif") as ds:
        assert ds.crs.to_epsg() is None
        assert ds.crs == custom
    assert result.manifest["grid"]["epsg"] is None
    assert any("no EPSG code" in note for note in result.manifest["notes"])


def test_background_methods(small_area: Path) -> None:
    import numpy as np

    from hwc_risk.covariates import build_feature_stack
    from hwc_risk.plan import resolve_run_grid
    from hwc_risk.sampling import background_cells
    from tests.conftest import edit_config, write_raster

    cfg = load_config(small_area)
    grid = resolve_run_grid(cfg)
    stack = build_feature_stack(cfg.covariates, grid, cfg.features, small_area.parent / "f")
    # patrol effort only in the western half: the background must follow it
    effort = np.zeros(grid.shape, np.float32)
    effort[:, : grid.width // 2] = 1.0
    write_raster(
        small_area.parent / "effort.tif", effort, crs="EPSG:32633", transform=grid.transform
    )
    edit_config(
        small_area, background={"method": "bias", "bias_raster": "effort.tif", "n_points": 500}
    )

    def draw() -> np.ndarray:
        rng = np.random.default_rng(0)
        cfg = load_config(small_area)
        return background_cells(
            cfg.background, cfg.incidents, grid, stack.valid, rng, small_area.parent / "w"
        )

    biased = draw()
    assert (biased % grid.width < grid.width // 2).all()
    # target group: only cells where some report was made
    edit_config(small_area, background={"method": "target_group", "n_points": 500})
    tg = draw()
    located = run(load_config(small_area), month="2025-04")
    assert tg.size <= 160
    assert located.manifest["config"]["background"]["method"] == "target_group"


def test_validation_in_memory_gives_the_run_that_files_give(
    small_area: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a grid that fits in one chunk validates in memory (Compute.holds_in_memory); a larger
    # grid, or no memory allowance, on tiled files: the run's outputs must not tell them apart
    import hwc_risk.compute
    import hwc_risk.modelling

    seen: list[str] = []
    of = hwc_risk.modelling.Design.of.__func__  # type: ignore[attr-defined]

    def spy(cls, samples, stack, seed, store=None, compute=None):  # type: ignore[no-untyped-def]
        seen.append(type(store).__name__)
        return of(cls, samples, stack, seed, store, compute)

    monkeypatch.setattr(hwc_risk.modelling.Design, "of", classmethod(spy))
    in_memory = run(load_config(small_area), output_dir=tmp_path / "memory")
    monkeypatch.setattr(hwc_risk.compute, "IN_MEMORY_MB", 0)
    on_files = run(load_config(small_area), output_dir=tmp_path / "files")
    assert seen == ["MemoryStore", "FileStore"]
    for name in ("risk.tif", "risk_class.tif", "risk_sd.tif"):
        with (
            rasterio.open(in_memory.run_dir / name) as a,
            rasterio.open(on_files.run_dir / name) as b,
        ):
            assert np.array_equal(a.read(1), b.read(1), equal_nan=True), name
    for key in ("map_choice", "spatial_block_cv", "rolling_origin"):  # NaN == NaN in JSON
        assert json.dumps(in_memory.metrics[key]) == json.dumps(on_files.metrics[key]), key
