from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import LineString, Point

from hwc_risk.config import IncidentsConfig
from hwc_risk.errors import CRSError, InputError, MissingColumnError, MissingFileError
from hwc_risk.grid import GridSpec
from hwc_risk.incidents import locate_incidents, read_incidents
from hwc_risk.mask import ValidMask

# a 10 km x 10 km grid in UTM 36S around 34.6 E, 2.3 S
GRID = GridSpec(CRS.from_epsg(32736), Affine(100, 0, 655_000, 0, -100, 9_760_000), 100, 100)


def on_grid(valid: np.ndarray, folder: Path) -> ValidMask:
    """The valid-cell mask as a run keeps it: a file."""
    return ValidMask.from_array(valid, GRID, folder / "valid.tif")


CSV = """id,when,lon,lat,kind,note
a1,2025-03-01,34.45,-2.25,crop raiding,ok
a2,2025-03-02,,-2.25,crop raiding,no lon
a3,2025-03-03,34.45x,-2.25,crop raiding,typo
a4,2025-13-03,34.45,-2.25,crop raiding,bad month
a5,,34.45,-2.25,crop raiding,no date
a6,2025-03-06,200,-2.25,crop raiding,out of range
a7,2025-03-07,36.8,-1.3,crop raiding,Nairobi
a8,2025-03-08T18:30:00+03:00,34.46,-2.26,crop raiding,with time zone
"""


def cfg(path: Path, **kw: object) -> IncidentsConfig:
    base: dict[str, object] = {
        "path": path,
        "x": "lon",
        "y": "lat",
        "crs": "EPSG:4326",
        "date": "when",
    }
    base.update(kw)
    return IncidentsConfig(**base)  # type: ignore[arg-type]


def test_csv_rows_are_accepted_or_rejected_with_reasons(tmp_path: Path) -> None:
    path = tmp_path / "inc.csv"
    path.write_text(CSV)
    table = read_incidents(cfg(path, id="id", type="kind", description="note"))
    assert table.n_read == 8
    assert len(table.accepted) + len(table.rejected) == 8
    reasons = dict(zip(table.rejected["id"], table.rejected["reason"], strict=True))
    assert reasons == {
        "a2": "missing_coordinates",
        "a3": "bad_coordinates",
        "a4": "bad_date",
        "a5": "missing_date",
        "a6": "coordinates_out_of_range",
    }
    # line numbers as a spreadsheet shows them (header is line 1)
    assert table.rejected.set_index("id").loc["a2", "source_row"] == 3
    # time zones are converted to UTC
    a8 = table.accepted.set_index("id").loc["a8", "date"]
    assert a8 == pd.Timestamp("2025-03-08 15:30:00")
    assert set(table.accepted.columns) >= {"date", "lon", "lat", "id", "type", "description"}

    valid = np.ones(GRID.shape, dtype=bool)
    valid[:, :10] = False  # a nodata strip in the west
    located = locate_incidents(table, GRID, on_grid(valid, tmp_path))
    assert len(located.accepted) + len(located.rejected) == 8
    reasons = dict(zip(located.rejected["id"], located.rejected["reason"], strict=True))
    assert reasons["a7"] == "outside_study_area"
    acc = located.accepted
    assert (acc["row"] >= 0).all() and (acc["col"] >= 10).all()
    assert valid[acc["row"], acc["col"]].all()


def test_nodata_cells_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "inc.csv"
    path.write_text(CSV)
    table = read_incidents(cfg(path, id="id"))
    located = locate_incidents(table, GRID, on_grid(np.zeros(GRID.shape, dtype=bool), tmp_path))
    assert set(located.rejected["reason"]) >= {"no_covariate_data"}
    assert located.accepted.empty


def test_swapped_coordinates_are_flagged(tmp_path: Path) -> None:
    path = tmp_path / "inc.csv"
    path.write_text("when,lon,lat\n2025-01-01,-2.25,34.45\n")
    located = locate_incidents(
        read_incidents(cfg(path)), GRID, on_grid(np.ones(GRID.shape, bool), tmp_path)
    )
    assert located.rejected["reason"].tolist() == ["outside_study_area"]
    assert "swapped" in located.rejected["detail"].iloc[0]


def test_date_format(tmp_path: Path) -> None:
    path = tmp_path / "inc.csv"
    path.write_text("when,lon,lat\n31/01/2025,34.45,-2.25\n2025-01-31,34.45,-2.25\n")
    table = read_incidents(cfg(path, date_format="%d/%m/%Y"))
    assert table.accepted["date"].tolist() == [pd.Timestamp("2025-01-31")]
    assert table.rejected["reason"].tolist() == ["bad_date"]
    assert "%d/%m/%Y" in table.rejected["detail"].iloc[0]


def _points() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "when": ["2025-01-01", "2025-02-01", "2025-03-01"],
            "species": ["lion", "elephant", "hyena"],
        },
        geometry=[Point(34.45, -2.25), Point(34.46, -2.26), None],
        crs="EPSG:4326",
    )


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".shp", ".parquet"])
def test_point_files_with_geometry(tmp_path: Path, suffix: str) -> None:
    gdf = _points()
    path = tmp_path / f"inc{suffix}"
    if suffix == ".parquet":
        gdf.to_parquet(path)
    else:
        gdf.to_file(path)
    table = read_incidents(IncidentsConfig(path=path, date="when", species="species"))
    assert table.n_read == 3
    assert table.accepted["species"].tolist() == ["lion", "elephant"]
    assert table.rejected["reason"].tolist() == ["missing_coordinates"]
    np.testing.assert_allclose(table.accepted["lon"], [34.45, 34.46])
    located = locate_incidents(table, GRID, on_grid(np.ones(GRID.shape, bool), tmp_path))
    assert len(located.accepted) == 2


def test_projected_geometry_and_non_points(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(
        {"when": ["2025-01-01", "2025-01-02"]},
        geometry=[Point(660_050, 9_755_050), LineString([(0, 0), (1, 1)])],
        crs="EPSG:32736",
    )
    path = tmp_path / "inc.gpkg"
    gdf.to_file(path)
    table = read_incidents(IncidentsConfig(path=path, date="when"))
    assert table.rejected["reason"].tolist() == ["not_a_point"]
    located = locate_incidents(table, GRID, on_grid(np.ones(GRID.shape, bool), tmp_path))
    assert (located.accepted["row"].iloc[0], located.accepted["col"].iloc[0]) == (49, 50)


def test_file_without_crs_needs_config_crs(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"when": ["2025-01-01"]}, geometry=[Point(34.45, -2.25)])
    # (GeoJSON is WGS 84 by definition; Parquet can lack a CRS)
    pq = tmp_path / "nocrs.parquet"
    gdf.to_parquet(pq)
    with pytest.raises(CRSError, match="has no CRS"):
        read_incidents(IncidentsConfig(path=pq, date="when"))
    table = read_incidents(IncidentsConfig(path=pq, date="when", crs="EPSG:4326"))
    assert len(table.accepted) == 1


def test_conflicting_crs(tmp_path: Path) -> None:
    path = tmp_path / "inc.gpkg"
    _points().to_file(path)
    with pytest.raises(CRSError, match=r"remove incidents\.crs"):
        read_incidents(IncidentsConfig(path=path, date="when", crs="EPSG:32736"))


def test_missing_column_names_it_and_lists_columns(tmp_path: Path) -> None:
    path = tmp_path / "inc.csv"
    path.write_text(CSV)
    with pytest.raises(MissingColumnError) as info:
        read_incidents(cfg(path, date="date"))
    msg = str(info.value)
    assert "column 'date' (incidents.date) not found" in msg
    assert "when" in msg and str(path) in msg


def test_missing_crs_for_csv(tmp_path: Path) -> None:
    path = tmp_path / "inc.csv"
    path.write_text(CSV)
    with pytest.raises(CRSError, match=r"incidents\.crs is missing"):
        read_incidents(cfg(path, crs=None))


def test_unknown_crs(tmp_path: Path) -> None:
    path = tmp_path / "inc.csv"
    path.write_text(CSV)
    with pytest.raises(CRSError, match="not a CRS that PROJ knows"):
        read_incidents(cfg(path, crs="EPSG:12345678"))


def test_missing_empty_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="incident file not found"):
        read_incidents(cfg(tmp_path / "none.csv"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        read_incidents(cfg(empty))
    header_only = tmp_path / "header.csv"
    header_only.write_text("when,lon,lat\n")
    with pytest.raises(InputError, match="no rows"):
        read_incidents(cfg(header_only))
    xls = tmp_path / "inc.xlsx"
    xls.write_bytes(b"PK")
    with pytest.raises(InputError, match="unsupported incident file type"):
        read_incidents(cfg(xls))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("when,lon,lat,note\n2025-01-01,34.45,-2.25,caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_incidents(cfg(latin))
