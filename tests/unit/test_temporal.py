"""Monthly covariates: sources, the missing-month policy, features at samples and as layers."""

from __future__ import annotations

from pathlib import Path

import cftime
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401 - the .rio accessor
import xarray as xr
from affine import Affine
from pydantic import ValidationError
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from hwc_risk.compute import Compute
from hwc_risk.errors import CRSError, InputError, MissingFileError
from hwc_risk.grid import GridSpec
from hwc_risk.temporal import (
    CovariateConfig,
    as_month,
    as_months,
    background_months,
    month_label,
    month_range,
    open_source,
    plan_feature,
    resolve_month,
    season_features,
    temporal_features,
    values_at_samples,
    write_month_layers,
)

GRID = GridSpec(CRS.from_epsg(32736), Affine(100, 0, 660_000, 0, -100, 9_760_000), 90, 70)
MONTHS = month_range(as_month("2022-01"), as_month("2024-06"))  # 30 months


def field(shape: tuple[int, int], month: np.datetime64, seed: int = 0) -> np.ndarray:
    """A smooth field with a seasonal cycle and a trend, different every month."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 40 + 10 * np.sin(xx / 7.0) * np.cos(yy / 9.0) + rng.normal(0, 0.5, shape)
    k = int(month.astype(int))
    return (base + 8 * np.sin(2 * np.pi * k / 12) + 0.05 * k).astype(np.float32)


def write_tif(path: Path, data: np.ndarray, crs: CRS, transform: Affine, **kw: object) -> Path:
    count = 1 if data.ndim == 2 else data.shape[0]
    arr = data[np.newaxis] if data.ndim == 2 else data
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=arr.shape[2],
        height=arr.shape[1],
        count=count,
        dtype="float32",
        crs=crs,
        transform=transform,
        nodata=-9999.0,
        **kw,
    ) as dst:
        dst.write(arr)
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CovariateConfig]:
    """The same kind of monthly field as a template (WGS 84, coarse), a GeoTIFF of monthly
    bands (UTM, finer than the grid), a NetCDF cube (UTM, 300 m, y ascending) and a Zarr cube."""
    folder = tmp_path_factory.mktemp("monthly")
    # template: geographic, about 1 km
    w, s, e, n = transform_bounds(GRID.crs, "EPSG:4326", *GRID.bounds)
    geo = Affine(0.01, 0, w - 0.03, 0, -0.01, n + 0.03)
    gshape = (int((n - s) / 0.01) + 6, int((e - w) / 0.01) + 6)
    (folder / "ndvi").mkdir()
    for m in MONTHS[:-2]:  # the last two months are "not published yet"
        write_tif(
            folder / "ndvi" / f"ndvi_{month_label(m)}.tif",
            field(gshape, m),
            CRS.from_epsg(4326),
            geo,
        )
    # bands: 50 m UTM, one band per month, described by month
    fine = Affine(50, 0, 659_900, 0, -50, 9_760_100)
    fshape = (GRID.height * 2 + 4, GRID.width * 2 + 4)
    stack = np.stack([field(fshape, m, seed=1) for m in MONTHS])
    stack[:, 10:14, 10:14] = -9999.0  # a nodata hole
    bands = write_tif(folder / "rain_bands.tif", stack, GRID.crs, fine)
    with rasterio.open(bands, "r+") as ds:
        for b, m in enumerate(MONTHS, start=1):
            ds.set_band_description(b, month_label(m))
    # cube: 300 m UTM, y ascending, CF times on a noleap calendar, CRS as a CF grid mapping
    cshape = (GRID.height // 3 + 4, GRID.width // 3 + 4)
    xs = 659_800 + 300 * (np.arange(cshape[1]) + 0.5)
    ys = (9_760_200 - 300 * cshape[0]) + 300 * (np.arange(cshape[0]) + 0.5)  # ascending
    data = np.stack([field(cshape, m, seed=2)[::-1] for m in MONTHS])
    times = [cftime.DatetimeNoLeap(int(str(m)[:4]), int(str(m)[5:7]), 15) for m in MONTHS]
    ds = xr.Dataset(
        {"greenness": (("time", "y", "x"), data), "other": (("y", "x"), data[0])},
        coords={"time": times, "y": ys, "x": xs},
    )
    ds = ds.rio.write_crs("EPSG:32736")
    ds.to_netcdf(folder / "cube.nc")
    ds.to_zarr(folder / "cube.zarr", mode="w", zarr_format=2)
    common = {"type": "continuous", "lags": [0, 2], "aggregate": {"statistic": "mean", "months": 3}}
    return {
        "template": CovariateConfig(path=folder / "ndvi" / "ndvi_{month}.tif", **common),
        "bands": CovariateConfig(path=bands, monthly=True, anomaly=True, **common),
        "netcdf": CovariateConfig(path=folder / "cube.nc", variable="greenness", **common),
        "zarr": CovariateConfig(path=folder / "cube.zarr", missing_month="latest", **common),
    }


# -- months ------------------------------------------------------------------------------


def test_season_features_are_a_circle() -> None:
    f = season_features(as_months([f"2024-{m:02d}" for m in range(1, 13)]))
    radius = np.hypot(f["month_sin"], f["month_cos"])
    assert np.allclose(radius, 1)
    # December is as close to January as January to February
    jan, feb, dec = (np.array([f["month_sin"][i], f["month_cos"][i]]) for i in (0, 1, 11))
    assert np.linalg.norm(dec - jan) == pytest.approx(np.linalg.norm(feb - jan))


def test_background_months_uniform_and_by_effort() -> None:
    study = month_range(as_month("2023-01"), as_month("2023-12"))
    rng = np.random.default_rng(3)
    uniform = background_months(12_000, study, rng)
    counts = np.array([(uniform == m).sum() for m in study])
    assert counts.min() > 800 and counts.max() < 1200
    effort = np.zeros(12)
    effort[[2, 3]] = [1.0, 3.0]  # reports only in March and April
    drawn = background_months(4000, study, rng, method="effort", effort=effort)
    assert set(map(month_label, np.unique(drawn))) == {"2023-03", "2023-04"}
    assert 0.70 < (drawn == as_month("2023-04")).mean() < 0.80
    with pytest.raises(ValueError, match="one effort value per study month"):
        background_months(5, study, rng, method="effort", effort=np.ones(3))


def test_as_month_forms_and_errors() -> None:
    import pandas as pd

    assert as_month(pd.Timestamp("2024-03-17")) == as_month("2024-03")
    assert as_month(pd.Period("2024-03", "M")) == as_month("2024-03")
    assert as_month(cftime.Datetime360Day(2024, 3, 30)) == as_month("2024-03")
    with pytest.raises(ValueError, match="YYYY-MM"):
        as_month("March 2024")


# -- config ------------------------------------------------------------------------------


def test_config_kinds_and_refusals(tmp_path: Path) -> None:
    kinds = {
        "a_{month}.tif": "template",
        "rain.nc": "cube",
        "ndvi.zarr": "cube",
        "static.tif": "static",
    }
    for path, kind in kinds.items():
        assert CovariateConfig(path=path, type="continuous").source_kind == kind
    assert CovariateConfig(path="b.tif", type="continuous", monthly=True).source_kind == "bands"
    refusals = [
        ({"path": "static.tif", "lags": [1]}, "only apply to monthly covariates"),
        ({"path": "a_{month}.tif", "type": "categorical"}, "must be type: continuous"),
        ({"path": "a_{month}.tif", "variable": "x"}, "only for NetCDF/Zarr cubes"),
        ({"path": "a_{month}.tif", "lags": [0, 0]}, "each lag once"),
        ({"path": "a_{month}.tif", "lags": [30]}, "between 0 and 24"),
        ({"path": "a.nc", "band": 2}, "does not apply to a cube"),
        ({"path": "a.nc", "missing_month": "newest"}, "latest"),
        ({"path": "a.nc", "aggregate": {"statistic": "max"}}, "mean"),
    ]
    for changes, message in refusals:
        with pytest.raises(ValidationError, match=message):
            CovariateConfig(**{"type": "continuous", **changes})


# -- the missing-month policy and the plans ----------------------------------------------


AVAILABLE = month_range(as_month("2022-01"), as_month("2024-04"))


def test_resolve_month_policies() -> None:
    got = resolve_month("rain", as_month("2024-03"), AVAILABLE, "error", 3)
    assert got.how == "published" and got.age_months == 0
    late = as_month("2024-06")
    latest = resolve_month("rain", late, AVAILABLE, "latest", 3)
    assert latest.how == "latest" and month_label(latest.used[0]) == "2024-04"
    assert latest.age_months == 2 and "2 month(s) old" in latest.describe()
    clim = resolve_month("rain", late, AVAILABLE, "climatology", 3)
    assert clim.how == "climatology"
    assert [month_label(m) for m in clim.used] == ["2022-06", "2023-06"]
    assert clim.to_json()["age_months"] == 12
    with pytest.raises(InputError, match=r"covariates.rain has no 2024-06 .*missing_month"):
        resolve_month("rain", late, AVAILABLE, "error", 3)
    with pytest.raises(InputError, match=r"4 months old .*max_age_months is 3"):
        resolve_month("rain", as_month("2024-08"), AVAILABLE, "latest", 3)
    with pytest.raises(InputError, match="no month at or before 2021-12"):
        resolve_month("rain", as_month("2021-12"), AVAILABLE, "latest", 3)
    short = month_range(as_month("2024-01"), as_month("2024-04"))
    fallback = resolve_month("rain", as_month("2024-05"), short, "climatology", 3)
    assert fallback.how == "latest" and "no year has this calendar month" in fallback.note


def test_plans_are_weighted_sums_of_months() -> None:
    cfg = CovariateConfig(
        path="r_{month}.tif",
        type="continuous",
        lags=[0, 1],
        aggregate={"statistic": "sum", "months": 3},
    )
    lag0, lag1, agg = temporal_features("rain", cfg)
    assert [f.name for f in (lag0, lag1, agg)] == ["rain", "rain_lag1", "rain_sum3"]
    march = as_month("2024-03")
    p = plan_feature(lag1, march, AVAILABLE, "error", 3)
    assert [month_label(m) for m in p.months] == ["2024-02"] and p.weights.tolist() == [1.0]
    p = plan_feature(agg, march, AVAILABLE, "error", 3)
    assert [month_label(m) for m in p.months] == ["2023-12", "2024-01", "2024-02"]
    assert p.weights.tolist() == [1.0, 1.0, 1.0]
    mean = plan_feature(
        temporal_features(
            "rain",
            cfg.model_copy(
                update={"aggregate": cfg.aggregate.model_copy(update={"statistic": "mean"})}
            ),
        )[2],  # type: ignore[union-attr]
        march,
        AVAILABLE,
        "error",
        3,
    )
    assert np.allclose(mean.weights, 1 / 3)
    # an anomaly: the month minus the mean of its calendar month (2022, 2023, 2024)
    anom = temporal_features("rain", cfg.model_copy(update={"anomaly": True}))[0]
    assert anom.name == "rain_anomaly"
    p = plan_feature(anom, march, AVAILABLE, "error", 3)
    assert dict(zip(map(month_label, p.months), np.round(p.weights, 6), strict=True)) == {
        "2022-03": round(-1 / 3, 6),
        "2023-03": round(-1 / 3, 6),
        "2024-03": round(2 / 3, 6),
    }
    assert p.weights.sum() == pytest.approx(0)
    # a month filled by its climatology has no anomaly: every weight 0, the months kept
    p = plan_feature(anom, as_month("2024-06"), AVAILABLE, "climatology", 3)
    assert p.months.size == 2 and np.all(p.weights == 0)
    assert p.filled[0].how == "climatology"


# -- sources -----------------------------------------------------------------------------


def test_sources_list_their_months(sources: dict[str, CovariateConfig]) -> None:
    with open_source(sources["template"], "ndvi") as src:
        assert src.describe_months() == "2022-01 to 2024-04, 28 months"
        assert src.grid_of(src.months[0]).crs.to_epsg() == 4326
    for kind in ("bands", "netcdf", "zarr"):
        with open_source(sources[kind], kind) as src:
            assert src.describe_months() == "2022-01 to 2024-06, 30 months", kind


def test_cube_reads_north_up_with_its_crs(sources: dict[str, CovariateConfig]) -> None:
    from rasterio.windows import Window

    with open_source(sources["netcdf"], "green") as src:
        assert src.grid_of(src.months[0]).crs.to_epsg() == 32736
        month = src.months[5]
        top = src.read(month, Window(0, 0, 5, 3))
        expected = field((GRID.height // 3 + 4, GRID.width // 3 + 4), month, seed=2)[:3, :5]
        assert np.allclose(top, expected)
        assert src.grid.transform.f == pytest.approx(9_760_200)


def test_cube_errors(tmp_path: Path) -> None:
    times = np.array(["2024-01-01", "2024-01-16", "2024-02-01"], dtype="datetime64[ns]")
    ds = xr.Dataset(
        {"v": (("time", "y", "x"), np.zeros((3, 4, 5), np.float32))},
        coords={"time": times, "y": [4.0, 3, 2, 1], "x": [0.0, 1, 2, 3, 4]},
    )
    ds.isel(time=[0, 2]).to_netcdf(tmp_path / "nocrs.nc")
    cases = [
        (tmp_path / "nocrs.nc", None, CRSError, "no CRS .*write_crs"),
        (tmp_path / "missing.nc", None, MissingFileError, "file not found"),
    ]
    ds.rio.write_crs("EPSG:32736").to_netcdf(tmp_path / "twice.nc")
    cases.append((tmp_path / "twice.nc", None, InputError, "two time steps fall in 2024-01"))
    cases.append((tmp_path / "twice.nc", "rain", InputError, "no variable 'rain'.*it has: v"))
    for path, variable, kind, message in cases:
        cfg = CovariateConfig(path=path, type="continuous", variable=variable)
        with pytest.raises(kind, match=message):
            open_source(cfg, "green")


def test_band_and_template_errors(tmp_path: Path) -> None:
    write_tif(tmp_path / "b.tif", np.zeros((2, 3, 3), np.float32), GRID.crs, GRID.transform)
    cfg = CovariateConfig(path=tmp_path / "b.tif", type="continuous", monthly=True)
    with pytest.raises(InputError, match="band 1 has no month"):
        open_source(cfg, "rain")
    cfg = CovariateConfig(path=tmp_path / "none_{month}.tif", type="continuous")
    with pytest.raises(MissingFileError, match=r"none_2024-01\.tif"):
        open_source(cfg, "rain")


# -- values at samples equal the layer of their month ------------------------------------


@pytest.mark.parametrize("kind", ["template", "bands", "netcdf", "zarr"])
def test_samples_equal_the_months_layer(
    kind: str, sources: dict[str, CovariateConfig], tmp_path: Path
) -> None:
    """A sample's value, read from the pixels under it, is the value of the whole layer
    GDAL aligns for its month, for every feature (lags, aggregates, anomalies)."""
    cfg = sources[kind]
    features = temporal_features(kind, cfg)
    rng = np.random.default_rng(7)
    n = 300
    rows, cols = rng.integers(0, GRID.height, n), rng.integers(0, GRID.width, n)
    mapped = [as_month("2024-06"), as_month("2023-09")]  # 2024-06 is not published everywhere
    months = np.array(mapped, dtype="datetime64[M]")[rng.integers(0, 2, n)]
    compute = Compute(chunk_size=64, workers=2)
    with open_source(cfg, kind) as src:
        at_samples, filled = values_at_samples(src, cfg, features, GRID, rows, cols, months)
        for month in mapped:
            layers, _ = write_month_layers(src, kind, cfg, features, GRID, month, tmp_path, compute)
            pick = months == month
            for f in features:
                with rasterio.open(layers[f.name]) as ds:
                    layer = ds.read(1).astype(float)[rows[pick], cols[pick]]
                got = at_samples[f.name][pick]
                assert np.array_equal(np.isnan(layer), np.isnan(got)), (kind, f.name)
                ok = np.isfinite(layer)
                assert ok.mean() > 0.9
                spread = np.ptp(layer[ok]) if f.kind == "lag" and not f.anomaly else 1.0
                assert np.max(np.abs(layer[ok] - got[ok])) < 1e-3 * max(spread, 1.0), (kind, f.name)
    if kind == "template":  # 2024-05 and 2024-06 are not published: climatology
        assert {month_label(u.wanted) for u in filled} >= {"2024-06", "2024-05"}
        assert all(u.how == "climatology" for u in filled)
    else:
        assert filled == []


def test_features_follow_the_source(sources: dict[str, CovariateConfig]) -> None:
    """Features carry the field's month-to-month change: the seasonal swing in lag 0,
    zero mean in anomalies."""
    cfg = sources["netcdf"]
    features = temporal_features("g", cfg)
    rows, cols = np.full(2, 35), np.full(2, 45)
    months = as_months(["2023-03", "2023-09"])  # the cycle peaks in March, bottoms in September
    with open_source(cfg, "g") as src:
        values, _ = values_at_samples(src, cfg, features, GRID, rows, cols, months)
    assert values["g"][0] - values["g"][1] > 10  # 2 x 8 (amplitude) minus the trend
    anomaly_cfg = sources["bands"]
    with open_source(anomaly_cfg, "b") as src:
        feats = temporal_features("b", anomaly_cfg)
        all_months = np.repeat(src.months, 1)
        values, _ = values_at_samples(
            src,
            anomaly_cfg,
            feats[:1],
            GRID,
            np.full(all_months.size, 30),
            np.full(all_months.size, 40),
            all_months,
        )
    anomalies = values["b_anomaly"]
    # per calendar month, the anomalies over the years average to zero
    by_calendar = [anomalies[(all_months.astype(int) % 12) == k].mean() for k in range(12)]
    assert np.allclose(by_calendar, 0, atol=1e-6)


def test_gather_in_batches_equals_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Footprints weighed in batches (a source much finer than the grid) give the same values."""
    from rasterio.windows import Window

    from hwc_risk.temporal import footprints as fp_module

    src = GridSpec(CRS.from_epsg(32736), Affine(20, 0, 659_900, 0, -20, 9_760_100), 460, 360)
    data = field((src.height, src.width), as_month("2024-01"))
    rng = np.random.default_rng(5)
    rows, cols = rng.integers(0, GRID.height, 500), rng.integers(0, GRID.width, 500)
    fp = fp_module.footprints(GRID, rows, cols, src)

    def read(win: Window) -> np.ndarray:
        r0, c0 = int(win.row_off), int(win.col_off)
        return data[r0 : r0 + int(win.height), c0 : c0 + int(win.width)].astype(float)

    whole = fp_module.gather(read, src.shape, fp)
    monkeypatch.setattr(fp_module, "BATCH_PIXELS", 1000)
    assert np.array_equal(fp_module.gather(read, src.shape, fp), whole)
    assert np.isfinite(whole).all()
