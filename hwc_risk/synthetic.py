"""Synthetic study areas with a known risk surface, for tests and benchmarks.

Like verde's synthetic data, a :class:`SyntheticArea` is a "truth" that
tests sample incidents from and compare a fitted map against. Its landscape
and its risk function are deliberately different from the bundled sample
district, so that a model is not tuned to one landscape.

Example
-------
>>> area = SyntheticArea(size=60, seed=1)
>>> area.truth.shape
(60, 60)
>>> config = area.write(tmp_path, n_incidents=200)  # a folder to run the pipeline on
>>> sorted(p.name for p in tmp_path.iterdir())
['config.yaml', 'cover.tif', 'elevation.tif', 'incidents.csv', 'truth.tif']
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import yaml
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from scipy import ndimage

__all__ = ["TRUTH_SHAPES", "RepeatReporting", "SpaceTimeArea", "SyntheticArea", "SyntheticSeries"]

WOODLAND, PASTURE, CROPLAND, WETLAND = 1, 2, 3, 4
CLASS_NAMES = {WOODLAND: "woodland", PASTURE: "pasture", CROPLAND: "cropland", WETLAND: "wetland"}


def _smooth(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    return (f - f.mean()) / f.std()


def _refuge(cover: np.ndarray, elev: np.ndarray, d_wood: np.ndarray, rng: Any) -> np.ndarray:
    """Nearness to woodland, pasture and cropland, a mid-elevation optimum."""
    return np.asarray(
        1.8 * np.exp(-d_wood / 1500.0)
        + 0.9 * (cover == PASTURE)
        + 0.5 * (cover == CROPLAND)
        - 1.5 * (cover == WETLAND)
        - 0.6 * (cover == WOODLAND)
        - 1.2 * ((elev - 950.0) / 200.0) ** 2
    )


def _edge(cover: np.ndarray, elev: np.ndarray, d_wood: np.ndarray, rng: Any) -> np.ndarray:
    """A band 300-1200 m outside the woodland edge (unimodal in the distance)."""
    return np.asarray(
        2.0 * np.exp(-(((d_wood - 700.0) / 500.0) ** 2))
        + 0.6 * (cover == CROPLAND)
        - 1.5 * (cover == WETLAND)
        - 1.0 * (cover == WOODLAND)
        - 0.5 * ((elev - 950.0) / 200.0) ** 2
    )


def _threshold(cover: np.ndarray, elev: np.ndarray, d_wood: np.ndarray, rng: Any) -> np.ndarray:
    """Steps: above 1000 m, cropland, within 1 km of woodland (no smooth response)."""
    return np.asarray(
        1.6 * (elev > 1000.0)
        + 1.0 * (cover == CROPLAND)
        - 1.0 * (cover == WETLAND)
        + 0.8 * (d_wood < 1000.0)
    )


def _interaction(cover: np.ndarray, elev: np.ndarray, d_wood: np.ndarray, rng: Any) -> np.ndarray:
    """Crop raiding: cropland near woodland only (an interaction of two drivers)."""
    return np.asarray(
        2.2 * (cover == CROPLAND) * np.exp(-d_wood / 1000.0)
        + 0.4 * (cover == PASTURE) * np.exp(-d_wood / 2000.0)
        - 1.0 * (cover == WETLAND)
    )


def _latent(cover: np.ndarray, elev: np.ndarray, d_wood: np.ndarray, rng: Any) -> np.ndarray:
    """Mostly a smooth field that no covariate shows (where history is what predicts)."""
    field_ = _smooth(rng, cover.shape, cover.shape[0] / 10)
    return 0.5 * _refuge(cover, elev, d_wood, rng) + 1.4 * field_


TRUTH_SHAPES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, Any], np.ndarray]] = {
    "refuge": _refuge,
    "edge": _edge,
    "threshold": _threshold,
    "interaction": _interaction,
    "latent": _latent,
}


@dataclass
class SyntheticArea:
    """A square landscape in UTM zone 33N with a known conflict intensity.

    Drivers of the truth: nearness to woodland (a livestock-predator refuge),
    pasture and cropland, and a mid-elevation optimum (a unimodal response
    that a linear model cannot fit). ``truth`` is the probability that an
    incident falls in each cell (it sums to one; 0 on nodata).

    ``truth_shape`` picks other risk functions of the same landscape (see
    :data:`TRUTH_SHAPES`): ``edge`` (a band outside the woodland edge),
    ``threshold`` (step responses), ``interaction`` (cropland near woodland)
    and ``latent`` (mostly a smooth field no covariate shows).
    """

    size: int = 120
    cell_size: float = 250.0
    seed: int = 0
    crs: CRS = field(default_factory=lambda: CRS.from_epsg(32633))
    origin: tuple[float, float] = (500_000.0, 5_200_000.0)
    truth_shape: str = "refuge"

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        shape = (self.size, self.size)
        sigma = self.size / 12
        cover = np.full(shape, PASTURE, dtype=np.uint8)
        cover[_smooth(rng, shape, sigma) > 0.6] = WOODLAND
        crop = (_smooth(rng, shape, sigma) > 0.2) & (cover != WOODLAND)
        cover[crop] = CROPLAND
        cover[(_smooth(rng, shape, sigma * 0.7) > 1.6) & (cover != WOODLAND)] = WETLAND
        if not (cover == WOODLAND).any():
            cover[: self.size // 6, : self.size // 6] = WOODLAND
        self.cover = cover
        self.elevation = (900 + 250 * _smooth(rng, shape, sigma * 1.5)).astype(np.float32)
        # a nodata strip along the southern edge (outside the mapped area)
        self.valid = np.ones(shape, dtype=bool)
        self.valid[-max(1, self.size // 20) :, :] = False
        self._shape_state = rng.bit_generator.state
        lam = self.intensity(cover, self.elevation)
        self.truth = lam / lam.sum()
        self.transform = Affine(
            self.cell_size, 0, self.origin[0], 0, -self.cell_size, self.origin[1]
        )

    def intensity(self, cover: np.ndarray, elevation: np.ndarray) -> np.ndarray:
        """The unnormalised incident intensity of a landscape (0 on nodata).

        ``truth`` is this for the area's own cover and elevation, normalised;
        called with an edited cover or elevation it gives the truth under the
        edit (what a scenario's delta should rank like).
        """
        d_wood = ndimage.distance_transform_edt(cover != WOODLAND) * self.cell_size
        if self.truth_shape not in TRUTH_SHAPES:
            raise ValueError(f"truth_shape must be one of {', '.join(TRUTH_SHAPES)}")
        # a shape's own random field (``latent``) is the same for every call
        rng = np.random.default_rng()
        rng.bit_generator.state = self._shape_state
        eta = TRUTH_SHAPES[self.truth_shape](cover, elevation, d_wood, rng)
        lam = np.exp(eta)
        lam[~self.valid] = 0.0
        return lam

    @property
    def shape(self) -> tuple[int, int]:
        return (self.size, self.size)

    def draw_cells(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of ``n`` incidents drawn from the truth."""
        cells = rng.choice(self.truth.size, size=n, p=self.truth.ravel())
        r, c = np.unravel_index(cells, self.shape)
        return np.asarray(r), np.asarray(c)

    def score_map(
        self, risk: np.ndarray, incidents_csv: Path, n_future: int = 3000
    ) -> dict[str, float]:
        """How well a risk map recovers the truth, next to a KDE of the written incidents.

        ``ratio``: the map's top-10 % capture of ``n_future`` fresh incidents from
        the truth, divided by the truth's own top-10 % capture; ``kde_ratio``: the
        same for a kernel density of the incidents in ``incidents_csv``;
        ``spearman``: rank correlation of the map with the truth.
        """
        import pandas as pd
        from scipy import stats

        from .surfaces import baseline_surfaces
        from .validation import capture_rate

        ok = self.valid & np.isfinite(risk)
        rows, cols = self.draw_cells(n_future, np.random.default_rng(99))
        truth = capture_rate(self.truth[ok], self.truth[rows, cols], 0.10)
        inc = pd.read_csv(incidents_csv)
        x, y = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True).transform(
            inc["lon"].to_numpy(), inc["lat"].to_numpy()
        )
        r = ((self.origin[1] - np.asarray(y)) // self.cell_size).astype(int)
        c = ((np.asarray(x) - self.origin[0]) // self.cell_size).astype(int)
        kde = baseline_surfaces(self.shape, r, c, self.valid)["kde"]
        return {
            "ratio": capture_rate(risk[ok], risk[rows, cols], 0.10) / truth,
            "kde_ratio": capture_rate(kde[ok], kde[rows, cols], 0.10) / truth,
            "spearman": float(stats.spearmanr(risk[ok], self.truth[ok]).statistic),
        }

    def config(self, paths: dict[str, Path], model: str) -> dict[str, Any]:
        """The pipeline config of rasters written by :meth:`write_rasters` and an
        ``incidents.csv`` beside them."""
        return {
            "name": "synthetic",
            "incidents": {
                "path": "incidents.csv",
                "x": "lon",
                "y": "lat",
                "crs": "EPSG:4326",
                "date": "date",
                "id": "id",
                "species": "species",
                "type": "kind",
            },
            "covariates": {
                "cover": {
                    "path": paths["cover"].name,
                    "type": "categorical",
                    "classes": {int(k): v for k, v in CLASS_NAMES.items()},
                },
                "elevation": {"path": paths["elevation"].name, "type": "continuous"},
            },
            "model": model,
            "output_dir": "out",
        }

    def write_rasters(self, folder: Path) -> dict[str, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        base = {
            "driver": "GTiff",
            "width": self.size,
            "height": self.size,
            "count": 1,
            "crs": self.crs,
            "transform": self.transform,
        }
        cover = np.where(self.valid, self.cover, 0).astype(np.uint8)
        elev = np.where(self.valid, self.elevation, -9999).astype(np.float32)
        paths = {
            "cover": folder / "cover.tif",
            "elevation": folder / "elevation.tif",
            "truth": folder / "truth.tif",
        }
        with rasterio.open(paths["cover"], "w", dtype="uint8", nodata=0, **base) as dst:
            dst.write(cover, 1)
        with rasterio.open(paths["elevation"], "w", dtype="float32", nodata=-9999, **base) as dst:
            dst.write(elev, 1)
        truth = np.where(self.valid, self.truth, np.nan).astype(np.float32)
        with rasterio.open(paths["truth"], "w", dtype="float32", nodata=np.nan, **base) as dst:
            dst.write(truth, 1)
        return paths

    def write(
        self,
        folder: Path,
        n_incidents: int = 600,
        n_months: int = 24,
        start: tuple[int, int] = (2024, 1),
        model: str = "maxent",
        extra_config: dict[str, object] | None = None,
        persistent_sites: int = 0,
        persistent_share: float = 0.0,
    ) -> Path:
        """Write rasters, an incident CSV (lon/lat) and a pipeline config; return the config path.

        Incidents are spread evenly over ``n_months`` months from ``start``. With
        ``persistent_share``, that share of incidents repeats at ``persistent_sites``
        fixed cells (strong persistence).
        """
        paths = self.write_rasters(folder)
        rng = np.random.default_rng(self.seed + 1)
        r, c = self.draw_cells(n_incidents, rng)
        if persistent_share > 0:
            # a few places (problem farms, a water point) keep having incidents month
            # after month: a share of the incidents repeat at them
            sites_r, sites_c = self.draw_cells(
                persistent_sites, np.random.default_rng(self.seed + 7)
            )
            repeat = rng.uniform(size=n_incidents) < persistent_share
            pick = rng.integers(0, persistent_sites, size=n_incidents)
            r = np.where(repeat, sites_r[pick], r)
            c = np.where(repeat, sites_c[pick], c)
        x = self.origin[0] + (c + rng.uniform(size=n_incidents)) * self.cell_size
        y = self.origin[1] - (r + rng.uniform(size=n_incidents)) * self.cell_size
        lon, lat = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True).transform(x, y)
        month_index = np.sort(rng.integers(0, n_months, size=n_incidents))
        with open(folder / "incidents.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "date", "lon", "lat", "species", "kind"])
            for i in range(n_incidents):
                y0, m0 = divmod(start[1] - 1 + int(month_index[i]), 12)
                day = int(rng.integers(1, 29))
                w.writerow(
                    [
                        f"S{i:05d}",
                        f"{start[0] + y0}-{m0 + 1:02d}-{day:02d}",
                        f"{lon[i]:.7f}",
                        f"{lat[i]:.7f}",
                        "wolf",
                        "livestock depredation",
                    ]
                )
        config = self.config(paths, model)
        config.update(extra_config or {})
        config_path = folder / "config.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return config_path


def _month_text(start: tuple[int, int], index: int) -> str:
    y0, m0 = divmod(start[1] - 1 + index, 12)
    return f"{start[0] + y0}-{m0 + 1:02d}"


@dataclass
class SpaceTimeArea:
    """A landscape whose conflict hotspots move with the season, through a monthly driver.

    The static part is a :class:`SyntheticArea`'s truth. On top of it a
    monthly *greenness* driver (what a NDVI composite would show) rises on
    cropland towards harvest (peak in ``harvest_month``) and on pasture in the
    rains (six months later), with month-to-month noise; incidents follow the
    driver: ``intensity_t = static * exp(beta * greenness_t)``, so at harvest
    the hotspots sit on cropland and in the rains on pasture. The expected
    monthly total has a trend and a season (``expected_total``); incidents
    are Poisson counts drawn from each month's truth.

    Example
    -------
    >>> st = SpaceTimeArea(size=40, n_months=24, seed=2)
    >>> st.truth(0).shape, round(float(st.truth(0).sum()), 6)
    ((40, 40), 1.0)
    """

    size: int = 80
    cell_size: float = 250.0
    seed: int = 0
    n_months: int = 36
    start: tuple[int, int] = (2023, 1)
    beta: float = 3.0
    harvest_month: int = 5
    mean_per_month: float = 30.0
    trend_per_year: float = 0.10
    season_amplitude: float = 0.4

    def __post_init__(self) -> None:
        self.area = SyntheticArea(size=self.size, cell_size=self.cell_size, seed=self.seed)
        rng = np.random.default_rng(self.seed + 100)
        shape = self.area.shape
        crop = self.area.cover == CROPLAND
        pasture = self.area.cover == PASTURE
        months = np.arange(self.n_months)
        cal = (self.start[1] - 1 + months) % 12 + 1
        harvest = 0.5 * (1 + np.cos(2 * np.pi * (cal - self.harvest_month) / 12))
        rains = 0.5 * (1 + np.cos(2 * np.pi * (cal - self.harvest_month - 6) / 12))
        base = 0.25 + 0.05 * _smooth(rng, shape, self.size / 10)
        green = np.empty((self.n_months, *shape), dtype=np.float32)
        for t in months:
            noise = 0.03 * _smooth(rng, shape, self.size / 15)
            green[t] = base + 0.55 * harvest[t] * crop + 0.45 * rains[t] * pasture + noise
        green[:, ~self.area.valid] = np.nan
        self.greenness = green
        self.calendar = cal

    @property
    def shape(self) -> tuple[int, int]:
        return self.area.shape

    def month(self, t: int) -> str:
        """``YYYY-MM`` of month index ``t``."""
        return _month_text(self.start, t)

    def truth(self, t: int) -> np.ndarray:
        """Probability that an incident of month ``t`` falls in each cell (sums to 1)."""
        g = np.nan_to_num(self.greenness[t], nan=0.0)
        lam = self.area.truth * np.exp(self.beta * g)
        return lam / lam.sum()

    def expected_total(self, t: int) -> float:
        """Expected incidents in month ``t``: a trend and a season peaking at harvest."""
        season = 1 + self.season_amplitude * np.cos(
            2 * np.pi * (self.calendar[t] - self.harvest_month) / 12
        )
        return float(self.mean_per_month * season * (1 + self.trend_per_year) ** (t / 12))

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows, columns and month indices of every month's Poisson number of incidents."""
        rows, cols, month = [], [], []
        for t in range(self.n_months):
            n = int(rng.poisson(self.expected_total(t)))
            cells = rng.choice(self.truth(t).size, size=n, p=self.truth(t).ravel())
            r, c = np.unravel_index(cells, self.shape)
            rows.append(r)
            cols.append(c)
            month.append(np.full(n, t))
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(month)

    def write_cube(self, path: Path, months: int | None = None) -> Path:
        """The greenness driver as a CF NetCDF cube (time, y, x) with its CRS (``greenness``),
        of the first ``months`` months (all by default: fewer leave later months "not
        published yet")."""
        import rioxarray  # noqa: F401 - the .rio accessor
        import xarray as xr

        area = self.area
        xs = area.origin[0] + (np.arange(self.size) + 0.5) * self.cell_size
        ys = area.origin[1] - (np.arange(self.size) + 0.5) * self.cell_size
        times = np.array(
            [np.datetime64(self.month(t) + "-15") for t in range(months or self.n_months)],
            dtype="datetime64[ns]",
        )
        ds = xr.Dataset(
            {"greenness": (("time", "y", "x"), self.greenness[: months or self.n_months])},
            coords={"time": times, "y": ys, "x": xs},
        )
        ds["greenness"].attrs.update(long_name="greenness (NDVI-like)", units="1")
        ds = ds.rio.write_crs(area.crs.to_wkt())  # the grid mapping, in the encoding
        ds["greenness"].encoding.update(zlib=True, complevel=4, _FillValue=np.float32(np.nan))
        ds.to_netcdf(path)
        return path

    def write(
        self,
        folder: Path,
        model: str = "glm",
        extra_config: dict[str, object] | None = None,
    ) -> Path:
        """Static rasters, ``greenness.nc``, ``incidents.csv`` and a config; the config path.

        The config names the static covariates only (the monthly keys join the
        config in the next phase): add ``greenness: {path: greenness.nc, type:
        continuous}`` under ``covariates`` through ``extra_config`` once they do.
        """
        config_path = self.area.write(folder, n_incidents=1, model=model, extra_config=extra_config)
        self.write_cube(folder / "greenness.nc")
        rng = np.random.default_rng(self.seed + 1)
        rows, cols, month = self.draw(rng)
        area = self.area
        x = area.origin[0] + (cols + rng.uniform(size=rows.size)) * self.cell_size
        y = area.origin[1] - (rows + rng.uniform(size=rows.size)) * self.cell_size
        lon, lat = Transformer.from_crs(area.crs, "EPSG:4326", always_xy=True).transform(x, y)
        with open(folder / "incidents.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "date", "lon", "lat", "species", "kind"])
            for i in range(rows.size):
                day = int(rng.integers(1, 29))
                w.writerow(
                    [
                        f"T{i:05d}",
                        f"{self.month(int(month[i]))}-{day:02d}",
                        f"{lon[i]:.7f}",
                        f"{lat[i]:.7f}",
                        "elephant",
                        "crop raiding",
                    ]
                )
        return config_path


@dataclass(frozen=True)
class RepeatReporting:
    """Repeat and near-repeat reports, as 311 and agency data have them.

    Every incident (an *event*) triggers ``branching`` later events on average
    (Poisson), each ``lag`` months later with ``P(lag = l) = (1 - decay) *
    decay ** (l - 1)``, ``l >= 1``: at the same address with probability
    ``same_address``, else at a Gaussian distance of ``near_cells`` cells.
    Triggered events trigger in turn (a self-exciting, Hawkes-type process).
    Each event is also reported ``1 + Poisson(burst)`` times within a week at
    its address (callers who ring again), which does not change where next
    month's reports are expected.
    """

    branching: float = 0.5
    decay: float = 0.4
    same_address: float = 0.7
    near_cells: float = 1.0
    burst: float = 0.5

    def lag_weight(self, lag: np.ndarray) -> np.ndarray:
        """Probability that a triggered event comes ``lag`` months later."""
        lag = np.asarray(lag)
        return np.where(lag >= 1, (1 - self.decay) * self.decay ** (lag - 1.0), 0.0)


@dataclass
class SyntheticSeries:
    """Monthly reports from a :class:`SyntheticArea`, with optional repeat reporting,
    and the exact probability of where the month after them will be reported.

    Events arrive each month from ``area.truth`` (Poisson) plus the events that
    earlier ones trigger (``repeat``); ``n_incidents`` is the expected number of
    reports over the ``n_months`` written. :meth:`truth_for` gives, for any month
    up to ``n_months`` (the held-out month after the written ones), the
    probability of each cell given every event before it: with no repeats, the
    area's truth.

    Example
    -------
    >>> series = SyntheticSeries(SyntheticArea(size=60, seed=1), n_incidents=300,
    ...                          repeat=RepeatReporting())
    >>> config = series.write(tmp_path)
    >>> truth = series.truth_for(series.n_months)
    >>> truth.shape, round(float(truth.sum()), 6)
    ((60, 60), 1.0)
    """

    area: SyntheticArea
    n_incidents: int = 600
    n_months: int = 24
    repeat: RepeatReporting | None = None
    seed: int = 0
    start: tuple[int, int] = (2024, 1)
    events: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.events = self._simulate(np.random.default_rng(self.seed))

    @property
    def per_month(self) -> float:
        """Expected events a month that come from the truth (not triggered)."""
        alpha = self.repeat.branching if self.repeat else 0.0
        burst = self.repeat.burst if self.repeat else 0.0
        return self.n_incidents * (1 - alpha) / (self.n_months * (1 + burst))

    def _simulate(self, rng: np.random.Generator) -> np.ndarray:
        """Events as rows ``(month, row, col)`` with ``row, col`` continuous (cell units)."""
        pending: list[list[tuple[float, float]]] = [[] for _ in range(self.n_months)]
        out = []
        for month in range(self.n_months):
            n = int(rng.poisson(self.per_month))
            r, c = self.area.draw_cells(n, rng)
            here = np.column_stack([r + rng.uniform(size=n), c + rng.uniform(size=n)])
            if pending[month]:
                here = np.vstack([here, np.asarray(pending[month])])
            out += [(month, y, x) for y, x in here]
            if self.repeat is not None:
                for y, x in here:
                    self._trigger(rng, month, y, x, pending)
        return np.asarray(out, dtype=float).reshape(-1, 3)

    def _trigger(
        self,
        rng: np.random.Generator,
        month: int,
        y: float,
        x: float,
        pending: list[list[tuple[float, float]]],
    ) -> None:
        """Add the events one event triggers to the later months they fall in."""
        rep = self.repeat
        assert rep is not None
        for _ in range(int(rng.poisson(rep.branching))):
            later = month + int(rng.geometric(1 - rep.decay))
            if rng.uniform() < rep.same_address:
                ny, nx = y, x
            else:
                ny, nx = y + rng.normal(0, rep.near_cells), x + rng.normal(0, rep.near_cells)
            r, c = int(np.floor(ny)), int(np.floor(nx))
            inside = 0 <= r < self.area.size and 0 <= c < self.area.size
            if later < self.n_months and inside and self.area.valid[r, c]:
                pending[later].append((ny, nx))

    def truth_for(self, month: int) -> np.ndarray:
        """Probability of each cell for a report in ``month`` given all events before it
        (sums to one over the valid cells; 0 elsewhere)."""
        from scipy.special import ndtr

        lam = self.per_month * self.area.truth.copy()
        rep = self.repeat
        if rep is not None:
            before = self.events[self.events[:, 0] < month]
            weights = rep.branching * rep.lag_weight(month - before[:, 0])
            reach = int(np.ceil(4 * rep.near_cells)) + 1
            for (_, y, x), w in zip(before, weights, strict=True):
                r, c = int(np.floor(y)), int(np.floor(x))
                lam[r, c] += w * rep.same_address
                r0, r1 = max(0, r - reach), min(self.area.size, r + reach + 1)
                c0, c1 = max(0, c - reach), min(self.area.size, c + reach + 1)
                rows, cols = np.arange(r0, r1 + 1.0), np.arange(c0, c1 + 1.0)
                py = np.diff(ndtr((rows - y) / rep.near_cells))
                px = np.diff(ndtr((cols - x) / rep.near_cells))
                lam[r0:r1, c0:c1] += w * (1 - rep.same_address) * np.outer(py, px)
        lam[~self.area.valid] = 0.0
        return lam / lam.sum()

    def reports(self, rng: np.random.Generator) -> list[tuple[int, int, float, float]]:
        """Every report of the written months: ``(month, day, row, col)``, the events'
        repeated calls within a week at the same address included."""
        burst = self.repeat.burst if self.repeat else 0.0
        out = []
        for month, y, x in self.events:
            day = int(rng.integers(1, 29))
            out.append((int(month), day, y, x))
            for _ in range(int(rng.poisson(burst))):
                out.append((int(month), min(28, day + int(rng.integers(0, 7))), y, x))
        return out

    def write(
        self, folder: Path, model: str = "auto", extra_config: dict[str, object] | None = None
    ) -> Path:
        """Write rasters, the reports of the ``n_months`` months and a config; return
        the config path. A run for the last written month maps month ``n_months``."""
        paths = self.area.write_rasters(folder)
        reports = self.reports(np.random.default_rng(self.seed + 1))
        a = self.area
        ys = np.array([r[2] for r in reports])
        xs = np.array([r[3] for r in reports])
        x = a.origin[0] + xs * a.cell_size
        y = a.origin[1] - ys * a.cell_size
        lon, lat = Transformer.from_crs(a.crs, "EPSG:4326", always_xy=True).transform(x, y)
        with open(folder / "incidents.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "date", "lon", "lat", "species", "kind"])
            for i, (month, day, _, _) in enumerate(reports):
                y0, m0 = divmod(self.start[1] - 1 + month, 12)
                date = f"{self.start[0] + y0}-{m0 + 1:02d}-{day:02d}"
                w.writerow(
                    [f"S{i:05d}", date, f"{lon[i]:.7f}", f"{lat[i]:.7f}", "wolf", "depredation"]
                )
        config = a.config(paths, model)
        config.update(extra_config or {})
        path = folder / "config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    def last_month(self) -> str:
        """``YYYY-MM`` of the last written month (the month a run maps from)."""
        y0, m0 = divmod(self.start[1] - 1 + self.n_months - 1, 12)
        return f"{self.start[0] + y0}-{m0 + 1:02d}"
