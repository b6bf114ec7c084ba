"""Read an agency's incident table: map columns, parse dates, reproject, accept or reject.

Every row read ends up in exactly one of two tables: ``accepted`` (with grid
coordinates and cell indices) or ``rejected`` (with a reason code and a detail
a person can act on). Nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import Transformer
from pyproj.exceptions import ProjError
from rasterio.crs import CRS

from .config import IncidentsConfig
from .errors import CRSError, InputError, MissingColumnError, MissingFileError
from .grid import GridSpec, parse_crs

__all__ = [
    "REJECTION_REASONS",
    "IncidentTable",
    "locate_incidents",
    "read_incidents",
]

#: Reason codes of rejected rows and what they mean.
REJECTION_REASONS: dict[str, str] = {
    "missing_coordinates": "no coordinates",
    "bad_coordinates": "coordinates are not numbers",
    "coordinates_out_of_range": "coordinates outside the valid range of their CRS",
    "not_a_point": "geometry is not a point",
    "missing_date": "no date",
    "bad_date": "date does not parse",
    "outside_study_area": "outside the analysis grid",
    "no_covariate_data": "a covariate has no data at this place",
}

TABLE_SUFFIXES = {".csv", ".txt", ".tsv"}
VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".fgb", ".gml", ".kml"}
PARQUET_SUFFIXES = {".parquet", ".geoparquet"}


@dataclass
class IncidentTable:
    """Incidents after reading and checking.

    ``accepted`` has the columns ``source_row``, ``date`` (naive UTC
    datetime), ``x`` and ``y`` (grid CRS; NaN until located), ``row`` and
    ``col`` (cell indices; -1 until located), the optional ``id``,
    ``species``, ``type``, ``description``, and ``lon``/``lat`` (WGS 84).
    ``rejected`` holds the original columns plus ``source_row``, ``reason``
    and ``detail``.
    """

    path: Path
    n_read: int
    accepted: pd.DataFrame
    rejected: pd.DataFrame
    crs: CRS | None = None
    raw_accepted: pd.DataFrame | None = field(default=None, repr=False)

    def rejected_counts(self) -> dict[str, int]:
        if self.rejected.empty:
            return {}
        return {str(k): int(v) for k, v in self.rejected["reason"].value_counts().items()}


def _read_table(cfg: IncidentsConfig) -> tuple[pd.DataFrame, int]:
    """The raw table and the offset from index to a human row number."""
    path = cfg.path
    if not path.exists():
        raise MissingFileError(f"{path}: incident file not found; check incidents.path")
    suffix = path.suffix.lower()
    try:
        if suffix in TABLE_SUFFIXES:
            sep = "\t" if suffix == ".tsv" else ","
            try:
                df = pd.read_csv(
                    path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig"
                )
            except UnicodeDecodeError:
                raise InputError(
                    f"{path}: not UTF-8 text; re-save the incident table as UTF-8"
                ) from None
            except pd.errors.EmptyDataError:
                raise InputError(f"{path}: the incident file is empty; export it again") from None
            return df, 2  # header is line 1; data row 0 is line 2
        if suffix in PARQUET_SUFFIXES:
            try:
                return gpd.read_parquet(path), 1
            except (ValueError, KeyError):
                return pd.read_parquet(path), 1
        if suffix in VECTOR_SUFFIXES:
            return gpd.read_file(path, layer=cfg.layer), 1
    except InputError:
        raise
    except Exception as exc:  # the readers raise many types for unreadable files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: cannot read the incident file ({first})") from None
    raise InputError(
        f"{path}: unsupported incident file type '{suffix}'; use CSV, GeoPackage, GeoJSON, "
        "Shapefile or Parquet"
    )


def _require_column(df: pd.DataFrame, col: str, key: str, path: Path) -> None:
    if col not in df.columns:
        cols = ", ".join(str(c) for c in df.columns if c != "geometry")
        raise MissingColumnError(
            f"{path}: column '{col}' ({key}) not found; set {key} to one of: {cols}"
        )


def _parse_dates(raw: pd.Series, fmt: str | None) -> pd.Series:
    text = raw.astype("string").str.strip()
    if fmt is None:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    else:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
    return parsed.dt.tz_localize(None)


def read_incidents(cfg: IncidentsConfig) -> IncidentTable:
    """Read and check the incident file named by ``cfg``.

    Rows with missing or bad coordinates or dates are rejected with a reason;
    location in the grid is checked later by :func:`locate_incidents`.

    Raises
    ------
    MissingFileError, MissingColumnError, CRSError, InputError
        For problems with the file as a whole (not with single rows).
    """
    df, row_offset = _read_table(cfg)
    path = cfg.path
    if len(df) == 0:
        raise InputError(f"{path}: the incident file has no rows; export it again")
    df = df.reset_index(drop=True)
    source_row = np.arange(len(df)) + row_offset

    _require_column(df, cfg.date, "incidents.date", path)
    for col, key in (
        (cfg.id, "incidents.id"),
        (cfg.species, "incidents.species"),
        (cfg.type, "incidents.type"),
        (cfg.description, "incidents.description"),
    ):
        if col is not None:
            _require_column(df, col, key, path)

    reason = pd.Series(pd.NA, index=df.index, dtype="string")
    detail = pd.Series("", index=df.index, dtype="string")

    def reject(mask: pd.Series | np.ndarray, code: str, text: pd.Series | str) -> None:
        mask = pd.Series(np.asarray(mask, dtype=bool), index=df.index) & reason.isna()
        reason[mask] = code
        detail[mask] = text if isinstance(text, str) else text[mask]

    has_geometry = isinstance(df, gpd.GeoDataFrame) and df.geometry.name in df.columns
    if cfg.x is not None and cfg.y is not None:
        _require_column(df, cfg.x, "incidents.x", path)
        _require_column(df, cfg.y, "incidents.y", path)
        if cfg.crs is None:
            raise CRSError(
                f'{path}: incidents.crs is missing; add `crs: "EPSG:4326"` (or the CRS of '
                f"'{cfg.x}'/'{cfg.y}') under incidents"
            )
        crs = parse_crs(cfg.crs, "incidents.crs")
        xs_raw = df[cfg.x].astype("string").str.strip()
        ys_raw = df[cfg.y].astype("string").str.strip()
        missing = xs_raw.isna() | ys_raw.isna() | (xs_raw == "") | (ys_raw == "")
        reject(missing, "missing_coordinates", f"'{cfg.x}' or '{cfg.y}' is empty")
        xs = pd.to_numeric(xs_raw, errors="coerce")
        ys = pd.to_numeric(ys_raw, errors="coerce")
        bad = xs.isna() | ys.isna() | ~np.isfinite(xs.fillna(0)) | ~np.isfinite(ys.fillna(0))
        reject(bad, "bad_coordinates", "'" + xs_raw.fillna("") + "', '" + ys_raw.fillna("") + "'")
        x = xs.to_numpy(dtype=float, na_value=np.nan)
        y = ys.to_numpy(dtype=float, na_value=np.nan)
    elif has_geometry:
        gdf = df
        file_crs = CRS.from_user_input(gdf.crs.to_wkt()) if gdf.crs is not None else None
        if file_crs is None and cfg.crs is None:
            raise CRSError(
                f'{path}: the file has no CRS; add `crs: "EPSG:4326"` (or the data\'s CRS) '
                "under incidents"
            )
        if file_crs is not None and cfg.crs is not None:
            given = parse_crs(cfg.crs, "incidents.crs")
            if given != file_crs:
                raise CRSError(
                    f"{path}: incidents.crs is {cfg.crs} but the file says "
                    f"{file_crs.to_string()}; remove incidents.crs to use the file's CRS"
                )
        crs = file_crs if file_crs is not None else parse_crs(str(cfg.crs), "incidents.crs")
        geom = gdf.geometry
        empty = geom.isna() | geom.is_empty
        reject(empty, "missing_coordinates", "empty geometry")
        gtype = geom.geom_type.fillna("")
        single_multi = (gtype == "MultiPoint") & ~empty
        if single_multi.any():
            n_parts = geom[single_multi].apply(lambda g: len(g.geoms))
            single_multi[single_multi] = n_parts.eq(1).to_numpy()
        not_point = ~empty & (gtype != "Point") & ~single_multi
        reject(not_point, "not_a_point", "geometry is a " + gtype)
        pts = geom.where(~single_multi, geom[single_multi].apply(lambda g: g.geoms[0]))
        ok = ~(empty | not_point)
        x = np.full(len(df), np.nan)
        y = np.full(len(df), np.nan)
        x[ok.to_numpy()] = pts[ok].x.to_numpy()
        y[ok.to_numpy()] = pts[ok].y.to_numpy()
    else:
        raise InputError(
            f"{path}: the table has no point geometry; set incidents.x and incidents.y to its "
            "coordinate columns and incidents.crs to their CRS"
        )

    if crs.is_geographic:
        out_of_range = (np.abs(x) > 180) | (np.abs(y) > 90)
        swapped_hint = np.where(
            (np.abs(y) > 90) & (np.abs(x) <= 90), " (latitude and longitude swapped?)", ""
        )
        reject(
            pd.Series(out_of_range, index=df.index),
            "coordinates_out_of_range",
            pd.Series(
                [
                    f"({a:g}, {b:g}) not a valid longitude, latitude{h}"
                    for a, b, h in zip(x, y, swapped_hint, strict=True)
                ],
                index=df.index,
                dtype="string",
            ),
        )

    raw_date = df[cfg.date].astype("string").str.strip()
    reject(raw_date.isna() | (raw_date == ""), "missing_date", f"'{cfg.date}' is empty")
    dates = _parse_dates(raw_date, cfg.date_format)
    expected = cfg.date_format or "ISO 8601 (YYYY-MM-DD)"
    reject(dates.isna(), "bad_date", "'" + raw_date.fillna("") + f"' does not match {expected}")

    # WGS 84 coordinates for maps and the manifest
    ok = reason.isna().to_numpy()
    lon = np.full(len(df), np.nan)
    lat = np.full(len(df), np.nan)
    try:
        to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        lon[ok], lat[ok] = to_wgs84.transform(x[ok], y[ok], errcheck=False)
    except ProjError as exc:
        raise CRSError(f"{path}: cannot transform incidents from {crs}: {exc}") from None
    unproj = ok & ~(np.isfinite(lon) & np.isfinite(lat))
    reject(unproj, "coordinates_out_of_range", f"cannot be transformed from {crs.to_string()}")

    ok = reason.isna().to_numpy()
    accepted = pd.DataFrame(
        {
            "source_row": source_row[ok],
            "date": dates[ok].to_numpy(),
            "src_x": x[ok],
            "src_y": y[ok],
            "lon": lon[ok],
            "lat": lat[ok],
        }
    )
    for col, name in (
        (cfg.id, "id"),
        (cfg.species, "species"),
        (cfg.type, "type"),
        (cfg.description, "description"),
    ):
        if col is not None:
            accepted[name] = df.loc[ok, col].astype("string").to_numpy()
    accepted["x"] = np.nan
    accepted["y"] = np.nan
    accepted["row"] = -1
    accepted["col"] = -1

    plain = pd.DataFrame(df.drop(columns="geometry")) if has_geometry else pd.DataFrame(df)
    if has_geometry:
        plain["wkt"] = df.geometry.to_wkt()
    rejected = plain.loc[~ok].copy()
    rejected.insert(0, "source_row", source_row[~ok])
    rejected["reason"] = reason[~ok].astype(str)
    rejected["detail"] = detail[~ok].astype(str)
    return IncidentTable(
        path=path,
        n_read=len(df),
        accepted=accepted,
        rejected=rejected,
        crs=crs,
        raw_accepted=plain.loc[ok].reset_index(drop=True),
    )


def locate_incidents(table: IncidentTable, grid: GridSpec, valid: np.ndarray) -> IncidentTable:
    """Project accepted incidents to the grid; reject those outside it or on nodata cells."""
    acc = table.accepted
    crs, raw = table.crs, table.raw_accepted
    if crs is None or raw is None:
        raise ValueError("locate_incidents needs a table from read_incidents")
    if len(acc):
        tr = Transformer.from_crs(crs, grid.crs, always_xy=True)
        gx, gy = tr.transform(acc["src_x"].to_numpy(), acc["src_y"].to_numpy(), errcheck=False)
        gx, gy = np.asarray(gx, dtype=float), np.asarray(gy, dtype=float)
    else:
        gx = gy = np.zeros(0)
    rows, cols, inside = grid.rowcol(gx, gy)
    on_data = np.zeros(len(acc), dtype=bool)
    on_data[inside] = valid[rows[inside], cols[inside]]
    outside = ~inside
    nodata = inside & ~on_data

    drop = outside | nodata
    if drop.any():
        extra = raw.loc[drop].copy()
        extra.insert(0, "source_row", acc.loc[drop, "source_row"].to_numpy())
        extra["reason"] = np.where(outside[drop], "outside_study_area", "no_covariate_data")
        swapped_inside = np.zeros(len(acc), dtype=bool)
        if crs.is_geographic and outside.any():
            # would the point fall inside with x and y exchanged? a common data-entry slip
            sx, sy = tr.transform(
                acc["src_y"].to_numpy()[outside], acc["src_x"].to_numpy()[outside], errcheck=False
            )
            swapped_inside[outside] = grid.rowcol(np.asarray(sx), np.asarray(sy))[2]
        extra["detail"] = [
            (
                f"({a:.5f}, {b:.5f}) is outside the grid"
                + ("; latitude and longitude look swapped" if s else "")
            )
            if o
            else f"({a:.5f}, {b:.5f}) is on a cell where a covariate has no data"
            for a, b, o, s in zip(
                acc.loc[drop, "lon"],
                acc.loc[drop, "lat"],
                outside[drop],
                swapped_inside[drop],
                strict=True,
            )
        ]
        rejected = pd.concat([table.rejected, extra], ignore_index=True)
        rejected = rejected.sort_values("source_row", kind="stable").reset_index(drop=True)
    else:
        rejected = table.rejected
    keep = ~drop
    accepted = acc.loc[keep].copy()
    accepted["x"] = gx[keep]
    accepted["y"] = gy[keep]
    accepted["row"] = rows[keep]
    accepted["col"] = cols[keep]
    accepted = accepted.drop(columns=["src_x", "src_y"]).reset_index(drop=True)
    return IncidentTable(
        path=table.path,
        n_read=table.n_read,
        accepted=accepted,
        rejected=rejected,
        crs=crs,
        raw_accepted=None,
    )
