"""Read an agency's incident reports: map columns, parse dates, check, merge duplicates.

Every row read ends up in exactly one of three tables: ``accepted`` (with
WGS 84 and, once located, grid coordinates), ``duplicates`` (the same report
exported twice, merged into an accepted row) or ``rejected`` (with a reason
code and a detail a person can act on). Nothing is dropped silently.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from pyproj.exceptions import ProjError
from rasterio.crs import CRS
from scipy.spatial import cKDTree

from .config import IncidentsConfig
from .errors import (
    ConfigError,
    CRSError,
    InputError,
    MissingColumnError,
    MissingFileError,
    NoIncidentsError,
)
from .formats import read_earthranger, read_smart
from .grid import GridSpec, parse_crs
from .mask import ValidMask
from .months import Month
from .progress import progress

__all__ = [
    "REJECTION_REASONS",
    "IncidentTable",
    "MonthIncidents",
    "Rejections",
    "guess_date_format",
    "incidents_for_month",
    "locate_for_month",
    "locate_incidents",
    "mostly_rejected",
    "read_incidents",
    "rejected_rows_path",
    "rejection_summary",
    "too_few_incidents",
    "warn_if_mostly_rejected",
    "write_rejected",
]

#: Reason codes of rejected rows and what they mean.
REJECTION_REASONS: dict[str, str] = {
    "missing_coordinates": "no coordinates",
    "bad_coordinates": "coordinates are not numbers",
    "coordinates_out_of_range": "coordinates outside the valid area of their CRS",
    "not_a_point": "geometry is not a point",
    "missing_date": "no date",
    "bad_date": "date does not parse",
    "future_date": "date is in the future",
    "filtered_out": "does not match incidents.filters",
    "outside_study_area": "outside the analysis grid",
    "no_covariate_data": "a covariate has no data at this place",
}

TABLE_SUFFIXES = {".csv", ".txt", ".tsv"}
VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".fgb", ".gml", ".kml"}
PARQUET_SUFFIXES = {".parquet", ".geoparquet"}
#: Byte-order marks of UTF-16 text.
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
#: Dates later than the run's clock by more than this are "in the future".
FUTURE_TOLERANCE = pd.Timedelta(days=1)
# a time of day followed by "Z" or a UTC offset: the value carries its own time zone
_AWARE = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.I)
# the detail of a point whose x and y look exchanged (see rejection_summary)
SWAPPED_RANGE = "(latitude and longitude swapped?)"


@dataclass(frozen=True)
class _Mapping:
    """Which columns mean what, after format defaults and the config are combined."""

    x: str | None
    y: str | None
    crs: str | None
    date: str
    date_format: str | None
    timezone: str | None
    id: str | None
    species: str | None
    type: str | None
    category: str | None
    description: str | None


_EXPORT_DEFAULTS = {
    "x": "lon",
    "y": "lat",
    "crs": "EPSG:4326",
    "date": "time",
    "id": "id",
    "species": "species",
    "type": "type",
    "category": "category",
    "description": "description",
}


def _check_date_format(fmt: str | None) -> None:
    """A ``date_format`` that strptime refuses is a config error, found before any row."""
    if fmt is None or fmt in ("dayfirst", "monthfirst"):
        return
    try:
        pd.to_datetime(pd.Series(["2025-01-31"]), format=fmt, errors="coerce")
    except ValueError as exc:
        raise ConfigError(
            f"incidents.date_format '{one_line(fmt)}' is not a strftime format ({exc}); "
            "use e.g. '%d/%m/%Y', or dayfirst / monthfirst for mixed formats"
        ) from None


def _mapping(cfg: IncidentsConfig) -> _Mapping:
    base: dict[str, str | None] = {}
    if cfg.format in ("earthranger", "smart"):
        base.update(_EXPORT_DEFAULTS)
    for key in ("x", "y", "crs", "date", "id", "species", "type", "category", "description"):
        value = getattr(cfg, key)
        if value is not None:
            base[key] = value
    return _Mapping(
        x=base.get("x"),
        y=base.get("y"),
        crs=base.get("crs"),
        date=base.get("date") or "date",
        date_format=cfg.date_format,
        timezone=cfg.timezone,
        id=base.get("id"),
        species=base.get("species"),
        type=base.get("type"),
        category=base.get("category"),
        description=base.get("description"),
    )


@dataclass
class IncidentTable:
    """Incidents after reading and checking.

    ``accepted`` has ``source_file``, ``source_row``, ``date`` (naive UTC),
    ``lon``/``lat`` (WGS 84), ``x``/``y`` and ``row``/``col`` on the grid (NaN
    and -1 until located) and the mapped ``id``, ``species``, ``type``,
    ``category``, ``description``. ``rejected`` holds the original columns
    plus ``source_file``, ``source_row``, ``reason`` and ``detail``;
    ``duplicates`` the merged rows with ``duplicate_of``.
    """

    path: Path
    n_read: int
    accepted: pd.DataFrame
    rejected: pd.DataFrame
    duplicates: pd.DataFrame = field(default_factory=pd.DataFrame)
    files: list[Path] = field(default_factory=list)
    crs: CRS | None = None
    raw_accepted: pd.DataFrame | None = field(default=None, repr=False)

    def rejected_counts(self) -> dict[str, int]:
        if self.rejected.empty:
            return {}
        return {str(k): int(v) for k, v in self.rejected["reason"].value_counts().items()}


def _read_table(cfg: IncidentsConfig, path: Path) -> tuple[pd.DataFrame, int]:
    """The raw table and the offset from index to a human row number."""
    if not path.exists():
        raise MissingFileError(f"{path}: incident file not found; check incidents.path")
    suffix = path.suffix.lower()
    if cfg.format == "earthranger":
        return read_earthranger(path), 1 if suffix not in TABLE_SUFFIXES else 2
    if cfg.format == "smart":
        return read_smart(path), 1 if suffix not in TABLE_SUFFIXES else 2
    try:
        if suffix in TABLE_SUFFIXES:
            return _read_text_table(path, suffix), 2  # header is line 1; row 0 is line 2
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
        "Shapefile or Parquet (or set incidents.format for EarthRanger and SMART exports)"
    )


def _read_text_table(path: Path, suffix: str) -> pd.DataFrame:
    """A delimited text table, every value as text.

    UTF-8 (with or without a byte-order mark), or UTF-16 with its mark (Excel's
    "Unicode text"). The separator is the suffix's (tab for ``.tsv``, else a
    comma) unless the header line has none of it but a semicolon, tab or bar:
    spreadsheets in many locales save "CSV" with semicolons.
    """
    with open(path, "rb") as fh:
        head = fh.read(65536)
    encoding = "utf-16" if head.startswith(_UTF16_BOMS) else "utf-8-sig"
    header = head.decode(encoding, errors="ignore").lstrip("\ufeff").splitlines()[:1]
    sep = "\t" if suffix == ".tsv" else ","
    if header and sep not in header[0]:
        sep = next((alt for alt in (";", "\t", "|") if alt in header[0]), sep)
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding=encoding)
    except UnicodeError:
        raise InputError(f"{path}: not UTF-8 text; re-save the incident table as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the incident file is empty; export it again") from None


def _require_column(df: pd.DataFrame, col: str, key: str, path: Path) -> None:
    if col not in df.columns:
        names = [c for c in df.columns if c != "geometry" and not str(c).startswith("__")]
        cols = ", ".join(one_line(str(c), 40) for c in names[:30])
        cols += f" (and {len(names) - 30} more)" if len(names) > 30 else ""
        raise MissingColumnError(
            f"{path}: column '{one_line(col)}' ({key}) not found; set {key} to one of: {cols}"
        )


def parse_dates(raw: pd.Series, fmt: str | None, timezone: str | None) -> pd.Series:
    """Naive UTC timestamps (nanoseconds); NaT where a value does not parse.

    ``fmt`` is a strftime format, ``dayfirst`` or ``monthfirst`` (mixed
    formats, e.g. ``3/4/2025`` or ``4 March 2025``) or None for ISO 8601.
    Values with an offset are converted to UTC; others are taken in
    ``timezone`` (UTC when None). Dates a nanosecond timestamp cannot hold
    (before 1677-09-22 or after 2262-04-11) are NaT too.
    """
    wide = _parse_dates_wide(raw, fmt, timezone)
    return wide.where(_representable(wide)).astype("datetime64[ns]")


def _representable(dates: pd.Series) -> pd.Series:
    """True where a date fits a nanosecond timestamp (or is NaT)."""
    return dates.isna() | ((dates >= pd.Timestamp.min) & (dates <= pd.Timestamp.max))


def _parse_dates_wide(raw: pd.Series, fmt: str | None, timezone: str | None) -> pd.Series:
    """:func:`parse_dates` in microseconds: years 1 to 9999 parse."""
    text = raw.astype("string").str.strip()
    aware = text.fillna("").str.contains(_AWARE)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")

    def parse(values: pd.Series, utc: bool) -> pd.Series:
        if fmt is None:
            return pd.to_datetime(values, format="ISO8601", errors="coerce", utc=utc)
        if fmt in ("dayfirst", "monthfirst"):
            return pd.to_datetime(
                values, format="mixed", dayfirst=fmt == "dayfirst", errors="coerce", utc=utc
            )
        return pd.to_datetime(values, format=fmt, errors="coerce", utc=utc)

    if aware.any():
        parsed = parse(text[aware], utc=True)
        # a nanosecond part is dropped: microseconds hold years 1 to 9999
        out[aware] = parsed.dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    naive = ~aware
    if naive.any():
        parsed = parse(text[naive], utc=False)
        if getattr(parsed.dt, "tz", None) is not None:  # a format with %z
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        elif timezone is not None:
            parsed = (
                parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
                .dt.tz_convert("UTC")
                .dt.tz_localize(None)
            )
        out[naive] = parsed.to_numpy().astype("datetime64[us]")
    return out


class Rejections:
    """Why rows of one table were rejected: the first reason found for a row wins.

    The reader checks rows in steps (geometry, coordinates, dates,
    reprojection); each step rejects what it finds wrong among the rows still
    accepted, so a row's ``detail`` names the first thing to fix.

    Parameters
    ----------
    n_rows
        Rows of the table; rows are numbered 0 to ``n_rows - 1``.
    """

    def __init__(self, n_rows: int) -> None:
        index = pd.RangeIndex(n_rows)
        self.reason = pd.Series(pd.NA, index=index, dtype="string")
        self.detail = pd.Series("", index=index, dtype="string")

    def reject(self, mask: pd.Series | np.ndarray, code: str, detail: pd.Series | str) -> None:
        """Reject the rows of ``mask`` not rejected yet, with reason ``code``.

        ``detail`` is one text for all of them or a per-row Series.
        """
        if code not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {code!r}")
        rows = pd.Series(np.asarray(mask, dtype=bool), index=self.reason.index)
        rows &= self.reason.isna()
        self.reason[rows] = code
        if isinstance(detail, str):
            self.detail[rows] = detail
        else:
            self.detail[rows] = pd.Series(detail.to_numpy(), index=self.reason.index)[rows]

    @property
    def ok(self) -> np.ndarray:
        """True for rows not rejected (so far)."""
        return self.reason.isna().to_numpy()


@dataclass(frozen=True)
class _Points:
    """Each row's coordinates in the file's CRS (NaN where it has none)."""

    x: np.ndarray
    y: np.ndarray
    crs: CRS


def _check_columns(df: pd.DataFrame, cfg: IncidentsConfig, m: _Mapping, path: Path) -> None:
    """The date column must exist; mapped columns too in a plain table (exports may lack them)."""
    _require_column(df, m.date, "incidents.date", path)
    for col, key in (
        (m.id, "incidents.id"),
        (m.species, "incidents.species"),
        (m.type, "incidents.type"),
        (m.category, "incidents.category"),
        (m.description, "incidents.description"),
    ):
        if col is not None and cfg.format == "table":
            _require_column(df, col, key, path)
        elif col is not None and col not in df.columns:
            df[col] = None


def _points_from_columns(
    df: pd.DataFrame,
    columns: tuple[str, str],
    crs_text: str | None,
    path: Path,
    rejections: Rejections,
) -> _Points:
    """Coordinates from the ``incidents.x``/``incidents.y`` columns in ``incidents.crs``."""
    x_col, y_col = columns
    _require_column(df, x_col, "incidents.x", path)
    _require_column(df, y_col, "incidents.y", path)
    if crs_text is None:
        raise CRSError(
            f'{path}: incidents.crs is missing; add `crs: "EPSG:4326"` (or the CRS of '
            f"'{x_col}'/'{y_col}') under incidents"
        )
    crs = parse_crs(crs_text, "incidents.crs")
    xs_raw = df[x_col].astype("string").str.strip()
    ys_raw = df[y_col].astype("string").str.strip()
    missing = xs_raw.isna() | ys_raw.isna() | (xs_raw == "") | (ys_raw == "")
    missing |= xs_raw.str.lower().isin(["nan", "none", "null"])
    rejections.reject(missing, "missing_coordinates", f"'{x_col}' or '{y_col}' is empty")
    xs = pd.to_numeric(xs_raw, errors="coerce")
    ys = pd.to_numeric(ys_raw, errors="coerce")
    bad = xs.isna() | ys.isna() | ~np.isfinite(xs.fillna(0)) | ~np.isfinite(ys.fillna(0))
    rejections.reject(
        bad, "bad_coordinates", "'" + xs_raw.fillna("") + "', '" + ys_raw.fillna("") + "'"
    )
    return _Points(
        x=xs.to_numpy(dtype=float, na_value=np.nan),
        y=ys.to_numpy(dtype=float, na_value=np.nan),
        crs=crs,
    )


def _geometry_crs(gdf: gpd.GeoDataFrame, m: _Mapping, path: Path) -> CRS:
    """The file's CRS, else ``incidents.crs``; both given and different is an error."""
    file_crs = CRS.from_user_input(gdf.crs.to_wkt()) if gdf.crs is not None else None
    if file_crs is None and m.crs is None:
        raise CRSError(
            f'{path}: the file has no CRS; add `crs: "EPSG:4326"` (or the data\'s CRS) '
            "under incidents"
        )
    if file_crs is not None and m.crs is not None:
        given = parse_crs(m.crs, "incidents.crs")
        if given != file_crs:
            raise CRSError(
                f"{path}: incidents.crs is {m.crs} but the file says "
                f"{file_crs.to_string()}; remove incidents.crs to use the file's CRS"
            )
    return file_crs if file_crs is not None else parse_crs(str(m.crs), "incidents.crs")


def _points_from_geometry(
    gdf: gpd.GeoDataFrame, m: _Mapping, path: Path, rejections: Rejections
) -> _Points:
    """Coordinates of point geometries (a one-part MultiPoint counts as a point)."""
    crs = _geometry_crs(gdf, m, path)
    geom = gdf.geometry
    empty = geom.isna() | geom.is_empty
    rejections.reject(empty, "missing_coordinates", "empty geometry")
    gtype = geom.geom_type.fillna("")
    single_multi = (gtype == "MultiPoint") & ~empty
    if single_multi.any():
        n_parts = geom[single_multi].apply(lambda g: len(g.geoms))
        single_multi[single_multi] = n_parts.eq(1).to_numpy()
    not_point = ~empty & (gtype != "Point") & ~single_multi
    rejections.reject(not_point, "not_a_point", "geometry is a " + gtype)
    pts = geom.where(~single_multi, geom[single_multi].apply(lambda g: g.geoms[0]))
    ok = ~(empty | not_point)
    x = np.full(len(gdf), np.nan)
    y = np.full(len(gdf), np.nan)
    x[ok.to_numpy()] = pts[ok].x.to_numpy()
    y[ok.to_numpy()] = pts[ok].y.to_numpy()
    return _Points(x=x, y=y, crs=crs)


def _check_geographic_range(points: _Points, rejections: Rejections) -> None:
    """Longitudes beyond ±180 or latitudes beyond ±90 (flagging a likely swap)."""
    if not points.crs.is_geographic:
        return
    x, y = points.x, points.y
    out_of_range = (np.abs(x) > 180) | (np.abs(y) > 90)
    hint = np.where((np.abs(y) > 90) & (np.abs(x) <= 90), f" {SWAPPED_RANGE}", "")
    detail = pd.Series(
        [
            f"({a:g}, {b:g}) is not a valid longitude, latitude{h}"
            for a, b, h in zip(x, y, hint, strict=True)
        ],
        dtype="string",
    )
    rejections.reject(out_of_range, "coordinates_out_of_range", detail)


def _row_dates(
    df: pd.DataFrame, m: _Mapping, now: pd.Timestamp, rejections: Rejections
) -> pd.Series:
    """Each row's date (naive UTC); rejects empty, unparsable and future dates."""
    raw_date = df[m.date].astype("string").str.strip()
    rejections.reject(raw_date.isna() | (raw_date == ""), "missing_date", f"'{m.date}' is empty")
    wide = _parse_dates_wide(raw_date, m.date_format, m.timezone)
    expected = m.date_format or "ISO 8601 (YYYY-MM-DD)"
    quoted = "'" + raw_date.fillna("") + "'"
    rejections.reject(wide.isna(), "bad_date", quoted + f" does not match {expected}")
    far = ~_representable(wide)
    rejections.reject(far, "bad_date", quoted + " is before 1678 or after 2261; check the date")
    dates = wide.where(~far).astype("datetime64[ns]")
    future = dates > (now + FUTURE_TOLERANCE)
    rejections.reject(
        future.fillna(False),
        "future_date",
        quoted + f" is after {now:%Y-%m-%d %H:%M} UTC; check the date",
    )
    return dates


def _to_wgs84(points: _Points, path: Path, rejections: Rejections) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of the rows still accepted (NaN elsewhere).

    Rejects points that cannot be transformed, and points of a projected CRS
    far outside the area where that CRS is valid (a wrong ``incidents.crs``).
    """
    crs = points.crs
    ok = rejections.ok
    lon = np.full(len(ok), np.nan)
    lat = np.full(len(ok), np.nan)
    try:
        to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        lon[ok], lat[ok] = to_wgs84.transform(points.x[ok], points.y[ok], errcheck=False)
    except ProjError as exc:
        raise CRSError(f"{path}: cannot transform incidents from {crs}: {exc}") from None
    unproj = ok & ~(np.isfinite(lon) & np.isfinite(lat))
    rejections.reject(
        unproj, "coordinates_out_of_range", f"cannot be transformed from {crs.to_string()}"
    )
    if crs.is_geographic:
        return lon, lat
    epsg = crs.to_epsg()
    area = (ProjCRS.from_epsg(epsg) if epsg else ProjCRS.from_user_input(crs.to_wkt())).area_of_use
    if area is not None:
        margin = 2.0  # degrees: projections stay usable a little beyond their area
        outside = (
            (lon < area.west - margin)
            | (lon > area.east + margin)
            | (lat < area.south - margin)
            | (lat > area.north + margin)
        )
        rejections.reject(
            ok & outside,
            "coordinates_out_of_range",
            f"outside the area where {crs.to_string()} is valid ({area.name}); check incidents.crs",
        )
    return lon, lat


def _assemble(
    df: pd.DataFrame,
    m: _Mapping,
    path: Path,
    source_row: np.ndarray,
    points: _Points,
    dates: pd.Series,
    lonlat: tuple[np.ndarray, np.ndarray],
    rejections: Rejections,
) -> IncidentTable:
    """The accepted rows (mapped columns) and the rejected ones (original columns)."""
    ok = rejections.ok
    accepted = pd.DataFrame(
        {
            "source_file": path.name,
            "source_row": source_row[ok],
            "date": dates[ok].to_numpy(),
            "lon": lonlat[0][ok],
            "lat": lonlat[1][ok],
            "src_geographic": points.crs.is_geographic,
            "src_x": points.x[ok],
            "src_y": points.y[ok],
        }
    )
    for col, name in (
        (m.id, "id"),
        (m.species, "species"),
        (m.type, "type"),
        (m.category, "category"),
        (m.description, "description"),
    ):
        if col is not None:
            values = df.loc[ok, col].astype("string").str.strip()
            accepted[name] = values.where(values != "").to_numpy()

    has_geometry = isinstance(df, gpd.GeoDataFrame) and df.geometry.name in df.columns
    plain = pd.DataFrame(df.drop(columns="geometry")) if has_geometry else pd.DataFrame(df)
    plain = plain.drop(columns=[c for c in plain.columns if str(c).startswith("__")])
    if has_geometry:
        plain["wkt"] = df.geometry.to_wkt()
    rejected = plain.loc[~ok].copy()
    rejected.insert(0, "source_row", source_row[~ok])
    rejected.insert(0, "source_file", path.name)
    rejected["reason"] = rejections.reason[~ok].astype(str)
    rejected["detail"] = rejections.detail[~ok].astype(str)
    raw = plain.loc[ok].reset_index(drop=True)
    raw.insert(0, "source_row", source_row[ok])
    raw.insert(0, "source_file", path.name)
    return IncidentTable(
        path=path,
        n_read=len(df),
        accepted=accepted,
        rejected=rejected,
        crs=points.crs,
        raw_accepted=raw,
    )


def _read_one(cfg: IncidentsConfig, m: _Mapping, path: Path, now: pd.Timestamp) -> IncidentTable:
    """Read one file: every row accepted or rejected with a reason."""
    df, row_offset = _read_table(cfg, path)
    if len(df) == 0:
        raise InputError(f"{path}: the incident file has no rows; export it again")
    df = df.reset_index(drop=True)
    source_row = np.arange(len(df)) + row_offset
    _check_columns(df, cfg, m, path)

    rejections = Rejections(len(df))
    if "__geometry_type" in df.columns:  # an export's non-point features
        kind = df["__geometry_type"].astype("string")
        rejections.reject(kind.notna(), "not_a_point", "geometry is a " + kind.fillna(""))
    if m.x is not None and m.y is not None:
        points = _points_from_columns(df, (m.x, m.y), m.crs, path, rejections)
    elif isinstance(df, gpd.GeoDataFrame) and df.geometry.name in df.columns:
        points = _points_from_geometry(df, m, path, rejections)
    else:
        raise InputError(
            f"{path}: the table has no point geometry; set incidents.x and incidents.y to its "
            "coordinate columns and incidents.crs to their CRS"
        )
    _check_geographic_range(points, rejections)
    dates = _row_dates(df, m, now, rejections)
    lonlat = _to_wgs84(points, path, rejections)
    return _assemble(df, m, path, source_row, points, dates, lonlat, rejections)


def _norm(value: object) -> str:
    return re.sub(r"\s*>\s*", ".", str(value).strip().lower())


def _apply_filters(table: IncidentTable, cfg: IncidentsConfig) -> IncidentTable:
    filters = cfg.filters
    if filters is None:
        return table
    acc = table.accepted
    keep = np.ones(len(acc), dtype=bool)
    details = np.full(len(acc), "", dtype=object)
    for name in ("species", "type", "category"):
        wanted = getattr(filters, name)
        if wanted is None:
            continue
        if name not in acc:
            raise InputError(
                f"incidents.filters.{name} is set but incidents.{name} names no column; "
                f"set incidents.{name}"
            )
        values = acc[name].fillna("").map(_norm)
        targets = [_norm(w) for w in wanted]
        if name == "category":  # a category path matches its parent categories too
            match = values.map(
                lambda v, targets=targets: any(v == t or v.startswith(t + ".") for t in targets)
            )
        else:
            match = values.isin(targets)
        miss = ~match.to_numpy(dtype=bool) & keep
        details[miss] = [
            f"{name} '{v}' is not in incidents.filters.{name}" for v in acc.loc[miss, name]
        ]
        keep &= ~miss
    if keep.all():
        return table
    return _move_to_rejected(table, ~keep, "filtered_out", details)


def _move_to_rejected(
    table: IncidentTable, mask: np.ndarray, code: str, details: np.ndarray
) -> IncidentTable:
    raw = table.raw_accepted
    assert raw is not None
    moved = raw.loc[mask].copy()
    moved["reason"] = code
    moved["detail"] = details[mask]
    rejected = pd.concat([table.rejected, moved], ignore_index=True)
    return replace(
        table,
        accepted=table.accepted.loc[~mask].reset_index(drop=True),
        raw_accepted=raw.loc[~mask].reset_index(drop=True),
        rejected=rejected,
    )


def _near_pairs(
    accepted: pd.DataFrame, time_hours: float, distance_m: float
) -> list[tuple[int, int]]:
    """Pairs of rows of the same ``type`` and ``species`` (where present) within
    ``time_hours`` and ``distance_m`` of each other."""
    n = len(accepted)
    if n < 2 or not (time_hours > 0 or distance_m > 0):
        return []
    lat0 = np.deg2rad(np.nanmean(accepted["lat"]))
    xm = np.deg2rad(accepted["lon"].to_numpy()) * 6_371_000 * np.cos(lat0)
    ym = np.deg2rad(accepted["lat"].to_numpy()) * 6_371_000
    hours = accepted["date"].to_numpy(dtype="datetime64[s]").astype(np.int64) / 3600.0
    d, t = max(distance_m, 1e-6), max(time_hours, 1e-6)
    points = np.column_stack([xm / d, ym / d, hours / t])
    keys = [
        accepted[c].fillna("").astype(str).str.lower().to_numpy()
        if c in accepted
        else np.full(n, "")
        for c in ("type", "species")
    ]
    return [
        (int(a), int(b))
        for a, b in sorted(cKDTree(points).query_pairs(r=1.0 + 1e-9, p=np.inf))
        if keys[0][a] == keys[0][b]
        and keys[1][a] == keys[1][b]
        and np.hypot(xm[a] - xm[b], ym[a] - ym[b]) <= distance_m + 1e-6
    ]


def find_duplicates(accepted: pd.DataFrame, time_hours: float, distance_m: float) -> np.ndarray:
    """For each row, the index of the row it duplicates (-1 for none), keeping the first.

    Same non-empty ``id`` means the same report, and different ids different
    reports (a repeat call about the same animal is a report of its own: where
    reports repeat is a signal). Rows without an id are merged with the same
    ``type`` and ``species`` (where present) within ``time_hours`` and
    ``distance_m`` of each other, into a report with an id or not, but never
    joining two reports of different ids.
    """
    n = len(accepted)
    parent = np.arange(n)
    label: dict[int, str] = {}  # the id of a group, kept at its root

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = root(a), root(b)
        la, lb = label.get(ra), label.get(rb)
        if ra == rb or (la is not None and lb is not None and la != lb):
            return
        keep, gone = min(ra, rb), max(ra, rb)
        parent[gone] = keep
        if la is not None or lb is not None:
            label[keep] = la if la is not None else str(lb)

    if "id" in accepted:
        ids = accepted["id"].astype("string").str.strip()
        has_id = (ids.notna() & (ids != "")).to_numpy(dtype=bool)
        for value, idx in ids[has_id].groupby(ids[has_id]).groups.items():
            members = sorted(idx)
            label[members[0]] = str(value)
            for other in members[1:]:
                union(members[0], other)
    for a, b in _near_pairs(accepted, time_hours, distance_m):
        union(a, b)
    roots = np.array([root(i) for i in range(n)], dtype=np.int64)
    return np.where(roots == np.arange(n), -1, roots)


def _merge_duplicates(table: IncidentTable, cfg: IncidentsConfig) -> IncidentTable:
    acc = table.accepted
    if not cfg.duplicates.enabled or len(acc) < 2:
        return table
    dup_of = find_duplicates(acc, cfg.duplicates.time_hours, cfg.duplicates.distance_m)
    mask = dup_of >= 0
    if not mask.any():
        return table
    raw = table.raw_accepted
    assert raw is not None
    merged = raw.loc[mask].copy()
    kept = acc.iloc[dup_of[mask]]
    merged["duplicate_of"] = (
        kept["source_file"].astype(str) + ":" + kept["source_row"].astype(str)
    ).to_numpy()
    return replace(
        table,
        accepted=acc.loc[~mask].reset_index(drop=True),
        raw_accepted=raw.loc[~mask].reset_index(drop=True),
        duplicates=merged.reset_index(drop=True),
    )


def read_incidents(cfg: IncidentsConfig, now: datetime | None = None) -> IncidentTable:
    """Read, check, filter and de-duplicate every incident file named by ``cfg``.

    Location on the grid is checked later by :func:`locate_incidents`.

    Raises
    ------
    MissingFileError, MissingColumnError, CRSError, InputError
        For problems with a file as a whole (not with single rows).
    """
    paths = cfg.paths
    if not paths:
        raise MissingFileError(f"{cfg.path}: no file matches incidents.path; check the pattern")
    stamp = pd.Timestamp(now if now is not None else datetime.now(UTC))
    clock = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
    m = _mapping(cfg)
    _check_date_format(m.date_format)
    parts = [
        _read_one(cfg, m, p, clock)
        for p in progress(paths, "reading incidents", len(paths), "file")
    ]
    table = IncidentTable(
        path=paths[0],
        n_read=sum(p.n_read for p in parts),
        accepted=pd.concat([p.accepted for p in parts], ignore_index=True),
        rejected=pd.concat([p.rejected for p in parts], ignore_index=True),
        files=paths,
        crs=CRS.from_epsg(4326),
        raw_accepted=pd.concat(
            [p.raw_accepted for p in parts if p.raw_accepted is not None], ignore_index=True
        ),
    )
    table = _apply_filters(table, cfg)
    table = _merge_duplicates(table, cfg)
    return table


def locate_incidents(table: IncidentTable, grid: GridSpec, valid: ValidMask) -> IncidentTable:
    """Project accepted incidents to the grid; reject those outside it or on nodata cells."""
    acc = table.accepted
    raw = table.raw_accepted
    if raw is None:
        raise ValueError("locate_incidents needs a table from read_incidents")
    tr = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
    if len(acc):
        gx, gy = tr.transform(acc["lon"].to_numpy(), acc["lat"].to_numpy(), errcheck=False)
        gx, gy = np.asarray(gx, dtype=float), np.asarray(gy, dtype=float)
    else:
        gx = gy = np.zeros(0)
    rows, cols, inside = grid.rowcol(gx, gy)
    on_data = np.zeros(len(acc), dtype=bool)
    on_data[inside] = valid.at(rows[inside], cols[inside])
    outside = ~inside
    nodata = inside & ~on_data

    drop = outside | nodata
    if drop.any():
        extra = raw.loc[drop].copy()
        extra["reason"] = np.where(outside[drop], "outside_study_area", "no_covariate_data")
        swapped_inside = np.zeros(len(acc), dtype=bool)
        geo = acc["src_geographic"].to_numpy(dtype=bool) & outside
        if geo.any():
            # would the point fall inside with x and y exchanged? a common data-entry slip
            sx, sy = tr.transform(
                acc["src_y"].to_numpy()[geo], acc["src_x"].to_numpy()[geo], errcheck=False
            )
            swapped_inside[geo] = grid.rowcol(np.asarray(sx), np.asarray(sy))[2]
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
    else:
        rejected = table.rejected
    rejected = rejected.sort_values(["source_file", "source_row"], kind="stable").reset_index(
        drop=True
    )
    keep = ~drop
    accepted = acc.loc[keep].copy()
    accepted["x"] = gx[keep]
    accepted["y"] = gy[keep]
    accepted["row"] = rows[keep]
    accepted["col"] = cols[keep]
    accepted = accepted.drop(columns=["src_x", "src_y", "src_geographic"]).reset_index(drop=True)
    return replace(table, accepted=accepted, rejected=rejected, raw_accepted=None)


@dataclass(frozen=True, kw_only=True)
class MonthIncidents:
    """The incidents of a run's month: located on the grid, and those it uses."""

    table: IncidentTable  # located: accepted with cells, rejected with reasons
    used: pd.DataFrame  # accepted incidents dated before the end of the month
    month: Month

    @property
    def after_month(self) -> int:
        """Accepted incidents dated after the month (kept for later runs)."""
        return len(self.table.accepted) - len(self.used)

    def check(
        self,
        minimum: int,
        cfg: IncidentsConfig,
        config_path: Path | None,
        written: Path | None = None,
    ) -> MonthIncidents:
        """Raise when fewer than ``minimum`` incidents are usable (:func:`too_few_incidents`:
        counts, reasons and fixes, and where the rejected rows are: ``written``, or how
        to write them); warn when most rows were rejected."""
        if len(self.used) < minimum:
            raise too_few_incidents(
                self.table,
                cfg,
                used=len(self.used),
                month=self.month.label,
                minimum=minimum,
                config_path=config_path,
                written=written,
            )
        if written is None:
            where = "the run folder's rejected_incidents.csv lists them"
            warn_if_mostly_rejected(self.table, cfg, where)
        return self


def locate_for_month(
    table: IncidentTable, grid: GridSpec, valid: ValidMask, month: Month
) -> MonthIncidents:
    """Locate the incidents on the grid and keep those dated up to the end of ``month``."""
    located = locate_incidents(table, grid, valid)
    acc = located.accepted
    used = acc.loc[(acc["date"] < month.end).to_numpy()].reset_index(drop=True)
    return MonthIncidents(table=located, used=used, month=month)


def incidents_for_month(
    table: IncidentTable,
    grid: GridSpec,
    valid: ValidMask,
    month: Month,
    minimum: int,
    cfg: IncidentsConfig,
    config_path: Path | None = None,
) -> MonthIncidents:
    """The incidents stage: located for ``month`` (:func:`locate_for_month`) and checked
    (:meth:`MonthIncidents.check`); a run and ``hwc-risk validate`` stop alike."""
    return locate_for_month(table, grid, valid, month).check(minimum, cfg, config_path)


# --- what a person needs to hear about rejected rows --------------------------------

#: More than this share of the rows read rejected: a run warns and ``validate`` reports it.
MOSTLY_REJECTED = 0.5
#: strftime formats tried, in this order, on dates that do not parse (first match wins).
DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%Y.%m.%d",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%Y%m%d",
    "%d/%m/%y",
    "%m/%d/%y",
    "%d %B %Y",
    "%d %b %Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M %p",
    "%d.%m.%Y %H:%M",
)
# reasons given to rows whose date parsed (they got past the date checks)
_DATED = ("future_date", "filtered_out", "outside_study_area", "no_covariate_data")
_SWAPPED_GRID = "latitude and longitude look swapped"  # locate_incidents's detail
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")
# 34°27'18", 34 27.3', N34.45 or 34.45E: degrees with minutes, seconds or a hemisphere
_DMS = re.compile(r"\d\s*[°º]|\d\s*['′]|\d\s*[\"″]|^[NSEW]\s*\d|\d\s*[NSEW]$", re.I)
_FILTER_VALUE = re.compile(r"^(\w+) '(.*)' is not in incidents\.filters")
_log = logging.getLogger(__name__)


def guess_date_format(values: list[str]) -> str | None:
    """A strftime format that parses every one of ``values``, else None.

    ``dayfirst`` is answered when no single format fits but the values are
    mixed formats that pandas reads with the day first.

    Examples
    --------
    >>> guess_date_format(["2024/01/05", "2024/02/17"])
    '%Y/%m/%d'
    >>> guess_date_format(["31/01/2025", "2025-02-01"])
    'dayfirst'
    >>> guess_date_format(["yesterday"]) is None
    True
    """
    sample = pd.Series(list(dict.fromkeys(v.strip() for v in values if v.strip()))[:200])
    if sample.empty:
        return None
    for fmt in DATE_FORMATS:
        if pd.to_datetime(sample, format=fmt, errors="coerce").notna().all():
            return fmt
    # several formats in one column; only where each value alone reads as a date
    if all(_parses_alone(v) for v in sample[:50]):
        return "dayfirst"
    return None


def _parses_alone(value: str) -> bool:
    return any(
        pd.notna(pd.to_datetime(pd.Series([value]), format=fmt, errors="coerce").iloc[0])
        for fmt in ("ISO8601", *DATE_FORMATS)
    )


def _date_fix(rows: pd.DataFrame, table: IncidentTable, m: _Mapping) -> str:
    values = rows[m.date].astype("string").fillna("").tolist() if m.date in rows else []
    guess = guess_date_format(values)
    reasons = table.rejected["reason"]
    n_dated = len(table.accepted) + len(table.duplicates) + int(reasons.isin(_DATED).sum())
    current = f"'{m.date_format}'" if m.date_format else "ISO 8601"
    if guess is None:
        return f"set incidents.date_format to the strftime format of column '{m.date}'"
    if n_dated and guess != m.date_format:
        return (
            f"the other dates match {current}: correct these rows, or set "
            "incidents.date_format: dayfirst (or monthfirst) to read several formats"
        )
    if guess == "dayfirst":
        return "set incidents.date_format: dayfirst (or monthfirst) to read several formats"
    return f"set incidents.date_format, e.g. '{guess}'"


def _coordinate_fix(rows: pd.DataFrame, m: _Mapping) -> str:
    raw = [m.x, m.y] if m.x is not None and m.y is not None else []
    values = [str(v) for c in raw if c in rows for v in rows[c].tolist()]
    if any(_DECIMAL_COMMA.match(v.strip()) for v in values):
        return "write a point as the decimal separator (34.45, not 34,45)"
    if any(_DMS.search(v.strip()) for v in values):
        return "convert degrees, minutes and seconds to decimal degrees"
    numbers = pd.to_numeric(pd.Series(values, dtype="string"), errors="coerce")
    if np.isinf(numbers.to_numpy(dtype=float, na_value=np.nan)).any():
        return "give finite numbers (not inf, nor beyond 1e308)"
    return "give plain numbers in incidents.x and incidents.y"


def _range_fix(rows: pd.DataFrame) -> str:
    swapped = int(rows["detail"].str.contains(SWAPPED_RANGE, regex=False).sum())
    if swapped:
        return (
            f"{swapped} look like latitude and longitude swapped; check incidents.x and incidents.y"
        )
    if rows["detail"].str.contains("is not a valid longitude", regex=False).any():
        return "the values look like metres or another CRS: set incidents.crs to their CRS"
    return "check incidents.crs"


def _filter_fix(rows: pd.DataFrame) -> str:
    found = rows["detail"].str.extract(_FILTER_VALUE).dropna()
    if found.empty:
        return "check incidents.filters"
    labels = found[0] + " '" + found[1] + "'"
    seen = ", ".join(f"{label} {n}" for label, n in labels.value_counts().head(3).items())
    return f"the rows have {seen}; check incidents.filters (compared case-insensitively)"


def _outside_fix(rows: pd.DataFrame) -> str:
    swapped = int(rows["detail"].str.contains(_SWAPPED_GRID, regex=False).sum())
    if swapped:
        return (
            f"{swapped} would fall inside the area with latitude and longitude swapped; "
            "check incidents.x and incidents.y"
        )
    return (
        "check incidents.crs, and that the incidents and the covariates cover the same area "
        "(grid.extent)"
    )


def _fix(code: str, rows: pd.DataFrame, table: IncidentTable, m: _Mapping) -> str:
    """How to fix the rows rejected for ``code``, from what they hold."""
    if code == "bad_date":
        return _date_fix(rows, table, m)
    if code == "bad_coordinates":
        return _coordinate_fix(rows, m)
    if code == "coordinates_out_of_range":
        return _range_fix(rows)
    if code == "filtered_out":
        return _filter_fix(rows)
    if code == "outside_study_area":
        return _outside_fix(rows)
    if code == "missing_coordinates":
        if m.x is not None:
            return "fill them in, or check incidents.x and incidents.y"
        return "give every feature a point geometry"
    return {
        "not_a_point": "export points (e.g. the centroids of polygons) or x/y columns",
        "missing_date": "fill them in, or check incidents.date",
        "future_date": "check the dates, incidents.timezone and this computer's clock; if day "
        "and month are swapped, set incidents.date_format",
        "no_covariate_data": "check the covariates' nodata values and coverage "
        "(`hwc-risk validate` prints each covariate's share of the grid)",
    }.get(code, "see the detail of each row")


def one_line(text: str, limit: int | None = 120) -> str:
    r"""``text`` for a one-line message: control characters escaped, long values cut.

    A value from a user's file may hold line breaks, tabs or thousands of characters.

    Examples
    --------
    >>> one_line("a\r\nb")
    'a\\r\\nb'
    """
    escaped = "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )
    return escaped if limit is None or len(escaped) <= limit else escaped[: limit - 3] + "..."


def _example(rows: pd.DataFrame, several_files: bool) -> str:
    """``line 2 <detail>`` for the first row (``row`` where a file has no lines)."""
    first = rows.sort_values(["source_file", "source_row"], kind="stable").iloc[0]
    name = str(first["source_file"])
    unit = "line" if Path(name).suffix.lower() in TABLE_SUFFIXES else "row"
    where = f"{unit} {first['source_row']}" + (f" of {name}" if several_files else "")
    # the count of swapped points follows in the fix
    detail = str(first["detail"]).replace(f"; {_SWAPPED_GRID}", "").replace(f" {SWAPPED_RANGE}", "")
    detail = one_line(detail)
    if first["reason"] == "bad_coordinates":
        detail += " are not numbers"
    return f"{where} {detail}"


def rejection_summary(table: IncidentTable, cfg: IncidentsConfig, explain: int = 3) -> str | None:
    """The rejected rows in one line: counts by reason, the first of each and its fix.

    The ``explain`` most frequent reasons get an example and a fix; the others
    a count. None when no row was rejected.

    Examples
    --------
    ``300 of 300 rows rejected: bad_date 300, e.g. line 2 '2024/01/05' does not
    match ISO 8601 (YYYY-MM-DD); set incidents.date_format, e.g. '%Y/%m/%d'``
    """
    rejected = table.rejected
    if rejected.empty:
        return None
    m = _mapping(cfg)
    several = rejected["source_file"].nunique() > 1
    parts = []
    for i, (code, n) in enumerate(rejected["reason"].value_counts().items()):
        text = f"{code} {n}"
        if i < explain:
            rows = rejected[rejected["reason"] == code]
            text += f", e.g. {_example(rows, several)}; {_fix(str(code), rows, table, m)}"
        parts.append(text)
    return one_line(f"{len(rejected)} of {table.n_read} rows rejected: " + "; ".join(parts), None)


def mostly_rejected(table: IncidentTable) -> bool:
    """True when more than :data:`MOSTLY_REJECTED` of the rows read were rejected."""
    return len(table.rejected) > MOSTLY_REJECTED * max(table.n_read, 1)


def warn_if_mostly_rejected(table: IncidentTable, cfg: IncidentsConfig, where: str) -> None:
    """Log the :func:`rejection_summary` as a warning when most rows were rejected.

    ``where`` says where the rejected rows are written.
    """
    if mostly_rejected(table):
        _log.warning(
            "most incident rows were rejected: %s; %s", rejection_summary(table, cfg), where
        )


def rejected_rows_path(config_path: Path | None) -> Path:
    """Where ``validate`` writes rejected rows: ``<config>.rejected_incidents.csv`` beside it.

    Without a config file, ``rejected_incidents.csv`` in the current folder.
    """
    if config_path is None:
        return Path.cwd() / "rejected_incidents.csv"
    return config_path.with_name(f"{config_path.stem}.rejected_incidents.csv")


def write_rejected(table: IncidentTable, path: Path) -> Path:
    """Write the rejected rows (as a run's ``rejected_incidents.csv``) to ``path``.

    Where ``path``'s folder cannot be written, the file goes to the temporary
    folder instead; the path written is returned.
    """
    try:
        table.rejected.to_csv(path, index=False)
    except OSError:
        path = Path(tempfile.gettempdir()) / path.name
        table.rejected.to_csv(path, index=False)
    return path


def too_few_incidents(
    table: IncidentTable,
    cfg: IncidentsConfig,
    *,
    used: int,
    month: str | None,
    minimum: int,
    config_path: Path | None,
    written: Path | None = None,
) -> NoIncidentsError:
    """The error of a run (or ``validate``) left with fewer than ``minimum`` incidents.

    It says how many were usable, what was rejected and why with a fix
    (:func:`rejection_summary`), and where the rejected rows are: ``written``,
    or how to write them (``hwc-risk validate CONFIG``), since a failed run
    leaves no run folder.
    """
    acc = table.accepted
    head = f"{cfg.path}: {used} usable incidents" + (f" dated up to {month}" if month else "")
    if len(acc) and "date" in acc:
        head += f" (accepted incidents span {acc['date'].min():%Y-%m} to {acc['date'].max():%Y-%m})"
    parts = [head, f"at least {minimum} are needed"]
    if len(acc):
        parts.append("choose a later --month")
    # the rejected rows explain the failure when most were rejected; else the month does
    explain = 3 if mostly_rejected(table) or not len(acc) else 0
    summary = rejection_summary(table, cfg, explain=explain)
    if summary is not None:
        parts.append(summary)
        if written is not None:
            parts.append(f"the rejected rows are in {written}")
        elif config_path is not None:
            parts.append(
                f"run `hwc-risk validate {config_path}` to write the rejected rows to "
                f"{rejected_rows_path(config_path)}"
            )
        else:
            parts.append("run `hwc-risk validate` on the config to write the rejected rows")
    elif not len(acc):
        parts.append(f"{table.n_read} rows were read; check the incident files")
    return NoIncidentsError("; ".join(parts))
