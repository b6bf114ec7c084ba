"""Make the bundled sample study area: a synthetic district with a known conflict risk.

Run from the repository root (``python sample_data/make_sample_data.py``); it
rewrites the files next to it, the monthly ones (``greenness_monthly.nc``,
``incidents_seasonal.csv`` and the seasonal truths of the demo month and the month after
it) from a seed of their own. It is seeded, so the files are reproducible.

``sample_data/README.md`` describes the landscape, the risk surface the
incidents are drawn from, and the deliberately bad rows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject, transform_bounds
from scipy import ndimage

HERE = Path(__file__).resolve().parent
SEED = 20240601
CRS_UTM = CRS.from_epsg(32736)  # WGS 84 / UTM zone 36S
CELL = 100.0
WIDTH, HEIGHT = 400, 320  # 40 km x 32 km
X0, Y0 = 660_000.0, 9_760_000.0  # top-left corner (east of Lake Victoria, Tanzania)
TRANSFORM = Affine(CELL, 0, X0, 0, -CELL, Y0)

FOREST, GRASSLAND, CROPLAND, SETTLEMENT, WATER = 1, 2, 3, 4, 5
CLASS_NAMES = {
    FOREST: "forest",
    GRASSLAND: "grassland",
    CROPLAND: "cropland",
    SETTLEMENT: "settlement",
    WATER: "water",
}
FIRST_MONTH = (2024, 11)
N_MONTHS = 24
MEAN_PER_MONTH = 36.0


def smooth_noise(rng: np.random.Generator, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.normal(size=(HEIGHT, WIDTH)), sigma)
    return (field - field.mean()) / field.std()


def landscape(rng: np.random.Generator) -> dict[str, np.ndarray]:
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    u = cols / WIDTH  # 0 west .. 1 east
    v = rows / HEIGHT  # 0 north .. 1 south

    # a protected forest in the west with a ragged edge, and a forest patch in the east
    edge = 0.28 + 0.05 * smooth_noise(rng, 12)
    forest = u < edge
    patch = (u - 0.80) ** 2 / 0.09**2 + (v - 0.28) ** 2 / 0.12**2 < 1 + 0.4 * smooth_noise(rng, 8)
    forest |= patch

    # a river from north-west to south-east and a small lake
    river_v = 0.55 + 0.12 * np.sin(2 * np.pi * 1.3 * u) + 0.02 * smooth_noise(rng, 20)
    water = np.abs(v - river_v) * HEIGHT < 1.2
    water |= (u - 0.55) ** 2 / 0.03**2 + (v - 0.85) ** 2 / 0.04**2 < 1

    # villages outside the forest
    villages: list[tuple[int, int, float]] = []
    while len(villages) < 9:
        r, c = int(rng.integers(10, HEIGHT - 10)), int(rng.integers(10, WIDTH - 10))
        if not forest[r, c] and not water[r, c] and u[r, c] > 0.33:
            villages.append((r, c, float(rng.uniform(0.5, 1.5))))
    pop = np.zeros((HEIGHT, WIDTH))
    dist_village = np.full((HEIGHT, WIDTH), np.inf)
    for r, c, size in villages:
        d = np.hypot(rows - r, cols - c) * CELL
        pop += 2500 * size * np.exp(-(d**2) / (2 * (600 * size) ** 2))
        dist_village = np.minimum(dist_village, d / size)
    pop += 25 * np.exp(smooth_noise(rng, 6) * 0.5)  # scattered rural homesteads
    pop[forest | water] = 0.0

    settlement = (dist_village < 450) & ~forest & ~water
    crop_score = -dist_village / 2500 + 0.4 * smooth_noise(rng, 5)
    cropland = (crop_score > -1.1) & ~forest & ~water & ~settlement
    land = np.full((HEIGHT, WIDTH), GRASSLAND, dtype=np.uint8)
    land[cropland] = CROPLAND
    land[settlement] = SETTLEMENT
    land[forest] = FOREST
    land[water] = WATER
    # outside the district (north-east corner): no data
    outside = u + (1 - v) > 1.85
    land[outside] = 0

    # wildlife movement: a corridor from the western forest to the eastern patch, and
    # paths down to the river; "current" is high along them, as circuit theory would show
    corridor_u = np.linspace(0.25, 0.8, 400)
    corridor_v = 0.30 + 0.12 * np.sin(np.pi * (corridor_u - 0.25) / 0.55)
    d_corr = np.full((HEIGHT, WIDTH), np.inf)
    for cu, cv in zip(corridor_u[::4], corridor_v[::4], strict=True):
        d_corr = np.minimum(d_corr, np.hypot((u - cu) * WIDTH, (v - cv) * HEIGHT) * CELL)
    current = np.exp(-(d_corr**2) / (2 * 900.0**2))
    to_west = 1 / (1 + np.exp((u - 0.6) / 0.05))  # the river path fades out eastwards
    current += 0.35 * np.exp(-(((v - river_v) * HEIGHT * CELL) ** 2) / (2 * 1500.0**2)) * to_west
    current += 0.08 * smooth_noise(rng, 4)
    current = np.clip(current, 0, None)
    current = current / current.max()

    return {"land": land, "pop": pop, "current": current, "outside": outside}


def truth_surface(land: np.ndarray, pop: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Relative incident intensity per cell (sums to 1 over the district)."""
    forest = land == FOREST
    d_out = ndimage.distance_transform_edt(~forest) * CELL  # outside forest: distance to it
    d_in = ndimage.distance_transform_edt(forest) * CELL  # inside: distance to the edge
    edge = np.where(forest, 0.6 * np.exp(-d_in / 250.0), np.exp(-d_out / 900.0))
    log_pop = np.log1p(pop)
    moderate_density = np.exp(-((log_pop - np.log(200.0)) ** 2) / (2 * 1.1**2))
    eta = (
        -2.0
        + 2.2 * edge
        + 1.3 * (land == CROPLAND)
        + 0.4 * (land == SETTLEMENT)
        + 1.2 * moderate_density
        + 1.6 * current
        - 1.2 * forest
    )
    lam = np.exp(eta)
    lam[(land == WATER) | (land == 0)] = 0.0
    return lam / lam.sum()


def _write(
    path: Path,
    data: np.ndarray,
    crs: CRS,
    transform: Affine,
    nodata: float,
    desc: str,
    tags: dict[str, str],
    predictor: int = 1,
) -> None:
    profile = {
        "driver": "GTiff",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 128,
        "blockysize": 128,
        "compress": "deflate",
    }
    if predictor != 1:
        profile["predictor"] = predictor
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        dst.set_band_description(1, desc)
        dst.update_tags(**tags)


def write_rasters(layers: dict[str, np.ndarray], truth: np.ndarray) -> None:
    note = {"source": "synthetic sample data made by sample_data/make_sample_data.py"}
    _write(
        HERE / "land_use.tif",
        layers["land"],
        CRS_UTM,
        TRANSFORM,
        0,
        "land use",
        {**note, **{f"class_{k}": v for k, v in CLASS_NAMES.items()}},
    )
    truth_out = truth.astype(np.float32)
    truth_out[layers["land"] == 0] = np.nan
    _write(
        HERE / "truth_risk.tif",
        truth_out,
        CRS_UTM,
        TRANSFORM,
        np.nan,
        "true relative incident intensity",
        note,
    )

    # population like WorldPop: geographic lat/lon grid at 3 arc-seconds (~90 m)
    west, south, east, north = transform_bounds(
        CRS_UTM,
        "EPSG:4326",
        X0 - 2000,
        Y0 - HEIGHT * CELL - 2000,
        X0 + WIDTH * CELL + 2000,
        Y0 + 2000,
    )
    step = 3 / 3600
    pw, ph = int(np.ceil((east - west) / step)), int(np.ceil((north - south) / step))
    geo_tr = Affine(step, 0, west, 0, -step, north)
    pop_geo = np.full((ph, pw), -9999.0, dtype=np.float32)
    reproject(
        layers["pop"].astype(np.float32),
        pop_geo,
        src_transform=TRANSFORM,
        src_crs=CRS_UTM,
        dst_transform=geo_tr,
        dst_crs="EPSG:4326",
        dst_nodata=-9999.0,
        resampling=Resampling.bilinear,
    )
    _write(
        HERE / "population.tif",
        pop_geo,
        CRS.from_epsg(4326),
        geo_tr,
        -9999.0,
        "population density",
        {**note, "units": "people per km2"},
    )

    # connectivity at 200 m, as a coarser corridor model would give it
    coarse_tr = Affine(2 * CELL, 0, X0, 0, -2 * CELL, Y0)
    cur = layers["current"].reshape(HEIGHT // 2, 2, WIDTH // 2, 2).mean(axis=(1, 3))
    _write(
        HERE / "connectivity.tif",
        cur.astype(np.float32),
        CRS_UTM,
        coarse_tr,
        -9999.0,
        "normalised current density",
        {**note, "units": "1"},
    )


SPECIES_BY_LAND = {
    CROPLAND: [
        ("elephant", "crop raiding", 0.55),
        ("baboon", "crop raiding", 0.2),
        ("bushpig", "crop raiding", 0.15),
        ("elephant", "property damage", 0.1),
    ],
    SETTLEMENT: [
        ("elephant", "property damage", 0.4),
        ("hyena", "livestock depredation", 0.4),
        ("elephant", "human injury", 0.2),
    ],
    GRASSLAND: [
        ("lion", "livestock depredation", 0.35),
        ("hyena", "livestock depredation", 0.35),
        ("elephant", "crop raiding", 0.2),
        ("elephant", "human injury", 0.1),
    ],
    FOREST: [
        ("elephant", "crop raiding", 0.5),
        ("buffalo", "human injury", 0.2),
        ("leopard", "livestock depredation", 0.3),
    ],
}
DESCRIPTIONS = {
    "crop raiding": [
        "{n} {sp}s raided maize field",
        "{sp} herd destroyed sorghum",
        "Crops eaten by {sp}s at night",
    ],
    "property damage": [
        "{sp} broke granary",
        "Water tank damaged by {sp}",
        "Fence & store damaged by {sp}",
    ],
    "livestock depredation": [
        "{n} goats killed by {sp}",
        "Cow killed by {sp} near boma",
        "{sp} attacked sheep in kraal",
    ],
    "human injury": ["Herder injured by {sp}", "Woman hurt by {sp} while fetching water"],
}


def draw_incidents(
    rng: np.random.Generator, land: np.ndarray, truth: np.ndarray
) -> list[dict[str, str]]:
    to_lonlat = Transformer.from_crs(CRS_UTM, "EPSG:4326", always_xy=True)
    flat = truth.ravel()
    rows_out: list[dict[str, str]] = []
    year, month = FIRST_MONTH
    serial = 0
    for _ in range(N_MONTHS):
        # crops ripen in April-June after the long rains: more raids then
        season = 1.0 + 0.6 * np.cos(2 * np.pi * (month - 5) / 12)
        n = rng.poisson(MEAN_PER_MONTH * season)
        cells = rng.choice(flat.size, size=n, p=flat)
        r, c = np.unravel_index(cells, truth.shape)
        x = X0 + (c + rng.uniform(size=n)) * CELL
        y = Y0 - (r + rng.uniform(size=n)) * CELL
        lon, lat = to_lonlat.transform(x, y)
        days = 28 if month == 2 else 30
        for i in range(n):
            options = SPECIES_BY_LAND.get(int(land[r[i], c[i]]), SPECIES_BY_LAND[GRASSLAND])
            k = rng.choice(len(options), p=[o[2] for o in options])
            species, kind, _ = options[k]
            text = str(rng.choice(DESCRIPTIONS[kind])).format(n=int(rng.integers(2, 9)), sp=species)
            serial += 1
            rows_out.append(
                {
                    "incident_id": f"HWC-{year}-{serial:04d}",
                    "date": f"{int(rng.integers(1, days + 1)):02d}/{month:02d}/{year}",
                    "lon": f"{lon[i]:.6f}",
                    "lat": f"{lat[i]:.6f}",
                    "species": species,
                    "incident_type": kind,
                    "description": text[0].upper() + text[1:],
                }
            )
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return rows_out


BAD_ROWS = [
    {
        "incident_id": "HWC-BAD-1",
        "date": "14/03/2025",
        "lon": "",
        "lat": "",
        "species": "elephant",
        "incident_type": "crop raiding",
        "description": "Reported by phone, location not recorded",
    },
    {
        "incident_id": "HWC-BAD-2",
        "date": "31/02/2025",
        "lon": "34.612040",
        "lat": "-2.331507",
        "species": "baboon",
        "incident_type": "crop raiding",
        "description": "Date typed wrong",
    },
    {
        "incident_id": "HWC-BAD-3",
        "date": "unknown",
        "lon": "34.700000",
        "lat": "-2.400000",
        "species": "hyena",
        "incident_type": "livestock depredation",
        "description": "No date",
    },
    {
        "incident_id": "HWC-BAD-4",
        "date": "02/06/2025",
        "lon": "36.817223",
        "lat": "-1.286389",
        "species": "elephant",
        "incident_type": "property damage",
        "description": "Entered at head office in Nairobi, outside the district",
    },
    {
        "incident_id": "HWC-BAD-5",
        "date": "09/09/2025",
        "lon": "34,61",
        "lat": "-2,35",
        "species": "lion",
        "incident_type": "livestock depredation",
        "description": "Decimal commas from a spreadsheet",
    },
    {
        "incident_id": "HWC-BAD-6",
        "date": "17/01/2026",
        "lon": "-2.352000",
        "lat": "34.650000",
        "species": "elephant",
        "incident_type": "crop raiding",
        "description": "Latitude and longitude swapped",
    },
]


# -- plans a planner drew in QGIS, for the scenarios (pipelines/sample-scenarios.yaml) --

#: A road north to south across the forest corridor and the river: (u, v) vertices, u
#: from west (0) to east (1), v from north (0) to south (1) of the district.
ROAD_UV = [(0.455, 0.02), (0.47, 0.15), (0.49, 0.30), (0.50, 0.42), (0.515, 0.55), (0.525, 0.66),
           (0.535, 0.76)]  # fmt: skip
#: Cropland blocks carved from the western forest's edge, north and south of the river.
FARM_BLOCKS_UV = [
    ("Block A", 1, [(0.215, 0.48), (0.30, 0.48), (0.31, 0.59), (0.225, 0.60)]),
    ("Block B", 2, [(0.23, 0.77), (0.32, 0.76), (0.33, 0.87), (0.235, 0.88)]),
]
#: GeoPackages record when they were written; a fixed date keeps them reproducible.
GPKG_DATE = "2026-11-01T00:00:00Z"


def _xy(u: float, v: float) -> tuple[float, float]:
    return X0 + u * WIDTH * CELL, Y0 - v * HEIGHT * CELL


def write_plans() -> None:
    """``planned_road.gpkg`` (layer ``planned_road``, WGS 84, as a GPS track exports) and
    ``farm_expansion.gpkg`` (layer ``farm_expansion``, the district's UTM zone)."""
    import geopandas as gpd
    import pyogrio
    from shapely.geometry import LineString, Polygon

    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_DATE})
    road = gpd.GeoDataFrame(
        {"name": ["Planned road B-12"], "surface": ["tarmac"], "width_m": [30.0]},
        geometry=[LineString([_xy(u, v) for u, v in ROAD_UV])],
        crs=CRS_UTM.to_string(),
    ).to_crs("EPSG:4326")
    farms = gpd.GeoDataFrame(
        {"name": [b[0] for b in FARM_BLOCKS_UV], "phase": [b[1] for b in FARM_BLOCKS_UV]},
        geometry=[Polygon([_xy(u, v) for u, v in b[2]]) for b in FARM_BLOCKS_UV],
        crs=CRS_UTM.to_string(),
    )
    for frame, name in ((road, "planned_road"), (farms, "farm_expansion")):
        path = HERE / f"{name}.gpkg"
        path.unlink(missing_ok=True)
        frame.to_file(path, layer=name, driver="GPKG", engine="pyogrio")


# -- monthly data (issue 14): a greenness cube and incidents whose hotspots move with the
# season, from a seed of their own, so the files above stay byte for byte as they are.

MONTHLY_SEED = SEED + 14
MONTHLY_FIRST = (2023, 11)  # a year before the incidents: enough for climatologies
MONTHLY_MONTHS = 36  # Nov 2023 - Oct 2026
GREEN_STEP = 0.005  # degrees (~550 m), as a regridded MODIS composite


def _months(first: tuple[int, int], n: int) -> list[tuple[int, int]]:
    out = []
    year, month = first
    for _ in range(n):
        out.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _rains(month: int) -> float:
    """Long rains (peak April) and short rains (peak November), 0-1."""
    long_rains = np.exp(-(((month - 4 + 6) % 12 - 6) ** 2) / 2.0)
    short_rains = 0.7 * np.exp(-(((month - 11 + 6) % 12 - 6) ** 2) / 1.5)
    return float(max(long_rains, short_rains))


def _ripeness(month: int) -> float:
    """Crops ripen after the long rains: highest in May."""
    return float(0.5 * (1 + np.cos(2 * np.pi * (month - 5) / 12)))


def greenness(rng: np.random.Generator, land: np.ndarray, month: int) -> np.ndarray:
    """An NDVI-like greenness on the 100 m grid for a calendar month (NaN on water/outside)."""
    rains = _rains(month)
    green = np.full(land.shape, 0.25 + 0.35 * rains)  # grassland
    green[land == CROPLAND] = 0.30 + 0.50 * _ripeness(month)
    green[land == FOREST] = 0.70 + 0.05 * rains
    green[land == SETTLEMENT] = 0.15 + 0.05 * rains
    green += 0.03 * smooth_noise(rng, 6)
    green[(land == WATER) | (land == 0)] = np.nan
    return green


def seasonal_truth(
    truth: np.ndarray, land: np.ndarray, near_water: np.ndarray, green: np.ndarray, month: int
) -> np.ndarray:
    """The static truth moved by the season: raids on green (ripe) cropland, and in the dry
    months conflict near water, where people and wildlife share the last water."""
    crop = np.where(land == CROPLAND, np.nan_to_num(green) - 0.55, 0.0)
    lam = truth * np.exp(5.0 * crop + 3.0 * (1 - _rains(month)) * near_water)
    lam[~np.isfinite(lam)] = 0.0
    return lam / lam.sum()


def write_greenness_cube(
    path: Path, months: list[tuple[int, int]], fields: list[np.ndarray]
) -> None:
    """The greenness months on a WGS 84 grid (latitude ascending, as CHIRPS-like products
    have it), CF-1.8 NetCDF with its CRS."""
    import rioxarray  # noqa: F401 - the .rio accessor
    import xarray as xr

    west, south, east, north = transform_bounds(
        CRS_UTM, "EPSG:4326", X0, Y0 - HEIGHT * CELL, X0 + WIDTH * CELL, Y0
    )
    west, north = west - GREEN_STEP, north + GREEN_STEP
    gw = int(np.ceil((east - west) / GREEN_STEP)) + 1
    gh = int(np.ceil((north - south) / GREEN_STEP)) + 1
    geo_tr = Affine(GREEN_STEP, 0, west, 0, -GREEN_STEP, north)
    stack = np.full((len(fields), gh, gw), np.nan, dtype=np.float32)
    for k, f in enumerate(fields):
        reproject(
            f.astype(np.float32),
            stack[k],
            src_transform=TRANSFORM,
            src_crs=CRS_UTM,
            src_nodata=np.nan,
            dst_transform=geo_tr,
            dst_crs="EPSG:4326",
            dst_nodata=np.nan,
            resampling=Resampling.average,
        )
    lons = west + GREEN_STEP * (np.arange(gw) + 0.5)
    lats = north - GREEN_STEP * (np.arange(gh) + 0.5)
    times = np.array([np.datetime64(f"{y}-{m:02d}-15") for y, m in months], dtype="datetime64[ns]")
    ds = xr.Dataset(
        {"ndvi": (("time", "lat", "lon"), stack[:, ::-1, :])},
        coords={"time": times, "lat": lats[::-1], "lon": lons},
        attrs={
            "Conventions": "CF-1.8",
            "title": "synthetic monthly greenness of the sample district",
            "source": "synthetic sample data made by sample_data/make_sample_data.py",
        },
    )
    ds["ndvi"].attrs.update(long_name="greenness (NDVI-like), monthly composite", units="1")
    ds["lat"].attrs.update(standard_name="latitude", units="degrees_north")
    ds["lon"].attrs.update(standard_name="longitude", units="degrees_east")
    ds = ds.rio.write_crs("EPSG:4326")
    ds["ndvi"].encoding.update(zlib=True, complevel=6, _FillValue=np.float32(np.nan))
    ds.to_netcdf(path)


def write_monthly() -> None:
    """``greenness_monthly.nc`` and ``incidents_seasonal.csv`` beside the other files."""
    layers = landscape(np.random.default_rng(SEED))  # the same district as main()
    land = layers["land"]
    truth = truth_surface(land, layers["pop"], layers["current"])
    near_water = np.exp(-ndimage.distance_transform_edt(land != WATER) * CELL / 1500.0)
    rng = np.random.default_rng(MONTHLY_SEED)
    months = _months(MONTHLY_FIRST, MONTHLY_MONTHS)
    fields = [greenness(rng, land, m) for _, m in months]
    write_greenness_cube(HERE / "greenness_monthly.nc", months, fields)
    truths = {
        ym: seasonal_truth(truth, land, near_water, f, ym[1])
        for ym, f in zip(months, fields, strict=True)
        if ym >= FIRST_MONTH
    }
    rows = draw_seasonal_incidents(rng, land, truths)
    for bad in BAD_ROWS:
        rows.insert(int(rng.integers(0, len(rows))), bad)
    with open(HERE / "incidents_seasonal.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote greenness_monthly.nc ({len(months)} months) and {len(rows)} seasonal rows")
    # the truths of the demo month and of the month after it (whose greenness nobody has
    # published yet: drawn last, so nothing above changes), for the tests of risk.tif and
    # forecast.tif
    november = greenness(rng, land, 11)
    for label, truth_t in (
        ("2026-10", truths[(2026, 10)]),
        ("2026-11", seasonal_truth(truth, land, near_water, november, 11)),
    ):
        write_truth(HERE / f"truth_risk_{label}.tif", truth_t, land, label)


def write_truth(path: Path, truth: np.ndarray, land: np.ndarray, label: str) -> None:
    """A month's seasonal truth (relative incident intensity, summing to 1) with 11 bits of
    mantissa (a relative precision of 5e-4), which keeps the file small."""
    out = truth.astype(np.float32)
    out = (out.view(np.uint32) & ~np.uint32((1 << 12) - 1)).view(np.float32)
    out[land == 0] = np.nan
    note = {"source": "synthetic sample data made by sample_data/make_sample_data.py"}
    description = f"true relative incident intensity in {label}"
    _write(path, out, CRS_UTM, TRANSFORM, np.nan, description, {**note, "month": label}, 3)


def draw_seasonal_incidents(
    rng: np.random.Generator, land: np.ndarray, truths: dict[tuple[int, int], np.ndarray]
) -> list[dict[str, str]]:
    """Each month's Poisson count (the sample's season, 10 % more a year) from its truth."""
    to_lonlat = Transformer.from_crs(CRS_UTM, "EPSG:4326", always_xy=True)
    out: list[dict[str, str]] = []
    for k, ((year, month), truth) in enumerate(truths.items()):
        season = 1.0 + 0.6 * np.cos(2 * np.pi * (month - 5) / 12)
        n = rng.poisson(MEAN_PER_MONTH * season * 1.1 ** (k / 12))
        cells = rng.choice(truth.size, size=n, p=truth.ravel())
        r, c = np.unravel_index(cells, truth.shape)
        x = X0 + (c + rng.uniform(size=n)) * CELL
        y = Y0 - (r + rng.uniform(size=n)) * CELL
        lon, lat = to_lonlat.transform(x, y)
        days = 28 if month == 2 else 30
        for i in range(n):
            options = SPECIES_BY_LAND.get(int(land[r[i], c[i]]), SPECIES_BY_LAND[GRASSLAND])
            species, kind, _ = options[rng.choice(len(options), p=[o[2] for o in options])]
            text = str(rng.choice(DESCRIPTIONS[kind])).format(n=int(rng.integers(2, 9)), sp=species)
            out.append(
                {
                    "incident_id": f"HWC-S-{year}-{len(out) + 1:04d}",
                    "date": f"{int(rng.integers(1, days + 1)):02d}/{month:02d}/{year}",
                    "lon": f"{lon[i]:.6f}",
                    "lat": f"{lat[i]:.6f}",
                    "species": species,
                    "incident_type": kind,
                    "description": text[0].upper() + text[1:],
                }
            )
    return out


def main() -> None:
    rng = np.random.default_rng(SEED)
    layers = landscape(rng)
    truth = truth_surface(layers["land"], layers["pop"], layers["current"])
    write_rasters(layers, truth)
    incidents = draw_incidents(rng, layers["land"], truth)
    for bad in BAD_ROWS:  # scatter the bad rows through the file, as real exports have them
        incidents.insert(int(rng.integers(0, len(incidents))), bad)
    with open(HERE / "incidents.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(incidents[0]))
        writer.writeheader()
        writer.writerows(incidents)
    print(f"wrote {len(incidents)} incident rows ({len(BAD_ROWS)} deliberately bad) to {HERE}")
    write_plans()
    print(f"wrote the planned road and farm expansion GeoPackages to {HERE}")
    write_monthly()


if __name__ == "__main__":
    main()
