import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import LineString, Point

from hwc_risk.config import IncidentsConfig
from hwc_risk.errors import (
    ConfigError,
    CRSError,
    InputError,
    MissingColumnError,
    MissingFileError,
)
from hwc_risk.grid import GridSpec
from hwc_risk.incidents import (
    REJECTION_REASONS,
    IncidentTable,
    guess_date_format,
    locate_incidents,
    mostly_rejected,
    read_incidents,
    rejected_rows_path,
    rejection_summary,
    too_few_incidents,
    warn_if_mostly_rejected,
    write_rejected,
)
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


# --- rejections that say what is wrong ---------------------------------------------

GRID_CSV_HEADER = "id,when,lon,lat,kind\n"


def _rows(
    n: int, date: str = "2025-01-{day:02d}", lon: float = 34.45, lat: float = -2.25, tag: str = "r"
) -> str:
    return "".join(
        f"{tag}{i},{date.format(day=1 + i % 28)},{lon + i * 1e-4:.5f},{lat:.5f},crop raiding\n"
        for i in range(n)
    )


def _located(tmp_path: Path, text: str, **kw: object) -> IncidentTable:
    path = tmp_path / "inc.csv"
    path.write_text(GRID_CSV_HEADER + text)
    table = read_incidents(cfg(path, id="id", type="kind", **kw))
    return locate_incidents(table, GRID, on_grid(np.ones(GRID.shape, bool), tmp_path))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["05/01/2024", "17/02/2024"], "%d/%m/%Y"),
        (["01/31/2024", "02/17/2024"], "%m/%d/%Y"),
        (["2024.01.05"], "%Y.%m.%d"),
        (["Q1 2024"], None),
        (["5 March 2025", "17 April 2025"], "%d %B %Y"),
        (["20250105"], "%Y%m%d"),
        (["31.01.2025 14:30"], "%d.%m.%Y %H:%M"),
        (["31/01/2025", "2025-02-01"], "dayfirst"),
        (["yesterday", "31/01/2025"], None),
        (["", "  "], None),
    ],
)
def test_guess_date_format(values: list[str], expected: str | None) -> None:
    assert guess_date_format(values) == expected
    if expected not in (None, "dayfirst"):
        assert pd.to_datetime(pd.Series(values), format=expected).notna().all()


def test_summary_of_dates_in_another_format_names_the_format(tmp_path: Path) -> None:
    located = _located(tmp_path, _rows(30, date="{day:02d}/01/2025"))
    summary = rejection_summary(located, IncidentsConfig(path=tmp_path / "inc.csv", date="when"))
    assert summary == (
        "30 of 30 rows rejected: bad_date 30, e.g. line 2 '01/01/2025' does not match "
        "ISO 8601 (YYYY-MM-DD); set incidents.date_format, e.g. '%d/%m/%Y'"
    )


def test_summary_of_a_few_rows_in_another_format_suggests_mixed_formats(tmp_path: Path) -> None:
    text = _rows(20, date="{day:02d}/01/2025") + _rows(5, tag="s")
    located = _located(tmp_path, text, date_format="%d/%m/%Y")
    summary = rejection_summary(located, cfg(tmp_path / "inc.csv", date_format="%d/%m/%Y"))
    assert summary is not None
    assert summary.startswith("5 of 25 rows rejected: bad_date 5, e.g. line 22 '2025-01-01'")
    assert "the other dates match '%d/%m/%Y'" in summary
    assert "incidents.date_format: dayfirst" in summary


def test_summary_of_swapped_coordinates_counts_them(tmp_path: Path) -> None:
    # swapped inside the valid range: outside the grid, inside it when swapped back
    swapped = _rows(12, lon=-2.25, lat=34.45, tag="s")
    # swapped out of range: |latitude| > 90
    out_of_range = "x1,2025-01-01,-2.25,134.45,crop raiding\n"
    located = _located(tmp_path, _rows(4) + swapped + out_of_range)
    summary = rejection_summary(located, cfg(tmp_path / "inc.csv"))
    assert summary is not None
    assert summary.startswith("13 of 17 rows rejected: outside_study_area 12, e.g. line 6 ")
    assert (
        "12 would fall inside the area with latitude and longitude swapped; "
        "check incidents.x and incidents.y"
    ) in summary
    assert "coordinates_out_of_range 1, e.g. line 18 (-2.25, 134.45) is not a valid" in summary
    assert "1 look like latitude and longitude swapped" in summary
    assert mostly_rejected(located)


def test_summary_of_decimal_commas_and_filters(tmp_path: Path) -> None:
    path = tmp_path / "inc.csv"
    path.write_text('id,when,lon,lat,kind\na,2025-01-01,"34,45","-2,25",crop raiding\n' + _rows(3))
    table = read_incidents(
        cfg(path, id="id", type="kind", filters={"type": ["livestock depredation"]})
    )
    summary = rejection_summary(table, cfg(path))
    assert summary is not None
    assert "filtered_out 3, e.g. line 3 type 'crop raiding' is not in" in summary
    assert "the rows have type 'crop raiding' 3; check incidents.filters" in summary
    assert "bad_coordinates 1, e.g. line 2 '34,45', '-2,25' are not numbers" in summary
    assert "(34.45, not 34,45)" in summary


def _table_rejecting(code: str, detail: str) -> IncidentTable:
    rejected = pd.DataFrame(
        {
            "source_file": ["inc.csv"],
            "source_row": [2],
            "when": ["2025-01-01"],
            "lon": ["1"],
            "lat": ["2"],
            "reason": [code],
            "detail": [detail],
        }
    )
    return IncidentTable(path=Path("inc.csv"), n_read=1, accepted=pd.DataFrame(), rejected=rejected)


@pytest.mark.parametrize("code", sorted(REJECTION_REASONS))
def test_every_reason_has_a_fix(code: str, tmp_path: Path) -> None:
    summary = rejection_summary(_table_rejecting(code, "what was wrong"), cfg(tmp_path / "i.csv"))
    assert summary is not None
    head, fix = summary.split("; ", 1)
    assert head == f"1 of 1 rows rejected: {code} 1, e.g. line 2 what was wrong" + (
        " are not numbers" if code == "bad_coordinates" else ""
    )
    assert fix != "see the detail of each row" and len(fix) > 15
    assert any(word in fix for word in ("incidents.", "covariates", "fill", "export", "give"))


def test_only_the_largest_reasons_are_explained(tmp_path: Path) -> None:
    text = _rows(3, date="") + _rows(2, date="soon", tag="s") + "z,2025-01-01,,-2.25,x\n"
    text += _rows(1, tag="t")
    text += "y,2025-01-01,34.45,,x\n"
    path = tmp_path / "inc.csv"
    path.write_text(GRID_CSV_HEADER + text)
    summary = rejection_summary(read_incidents(cfg(path)), cfg(path), explain=2)
    assert summary is not None
    assert summary.startswith("7 of 8 rows rejected: missing_date 3, e.g. line 2 'when' is empty")
    assert "; bad_date 2, e.g. line 5 'soon' does not match" in summary
    assert summary.endswith("; missing_coordinates 2")


def test_too_few_incidents_says_where_the_rejected_rows_are(tmp_path: Path) -> None:
    located = _located(tmp_path, _rows(30, date="{day:02d}/01/2025") + _rows(3, tag="s"))
    c = cfg(tmp_path / "inc.csv")
    config_path = tmp_path / "district.yaml"
    err = too_few_incidents(
        located, c, used=3, month="2025-01", minimum=10, config_path=config_path
    )
    msg = str(err)
    assert msg.startswith(
        f"{tmp_path / 'inc.csv'}: 3 usable incidents dated up to 2025-01 (accepted incidents "
        "span 2025-01 to 2025-01); at least 10 are needed; choose a later --month; "
        "30 of 33 rows rejected: bad_date 30"
    )
    assert msg.endswith(
        f"run `hwc-risk validate {config_path}` to write the rejected rows to "
        f"{tmp_path / 'district.rejected_incidents.csv'}"
    )
    assert "\n" not in msg
    written = write_rejected(located, rejected_rows_path(config_path))
    assert written == tmp_path / "district.rejected_incidents.csv"
    back = pd.read_csv(written, dtype=str, keep_default_na=False)
    assert list(back.columns) == list(located.rejected.columns)
    assert back["source_row"].astype(int).tolist() == list(range(2, 32))
    err = too_few_incidents(
        located, c, used=3, month=None, minimum=10, config_path=None, written=written
    )
    assert str(err).endswith(f"; the rejected rows are in {written}")


def test_a_run_warns_when_most_rows_are_rejected(tmp_path: Path) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("hwc_risk.incidents")
    logger.addHandler(handler)  # the CLI stops "hwc_risk" propagating to the root
    try:
        half = _located(tmp_path, _rows(10) + _rows(10, date="{day:02d}/01/2025", tag="s"))
        assert not mostly_rejected(half)  # half is not most
        warn_if_mostly_rejected(half, cfg(tmp_path / "inc.csv"), "see the file")
        assert records == []
        most = _located(tmp_path, _rows(9) + _rows(11, date="{day:02d}/01/2025", tag="s"))
        warn_if_mostly_rejected(most, cfg(tmp_path / "inc.csv"), "see the file")
    finally:
        logger.removeHandler(handler)
    (record,) = records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(
        "most incident rows were rejected: 11 of 20 rows rejected: bad_date 11"
    )
    assert record.getMessage().endswith("; see the file")


def test_dates_a_timestamp_cannot_hold_are_bad_dates(tmp_path: Path) -> None:
    # found by the property tests: year 1 parsed, then overflowed nanosecond timestamps
    path = tmp_path / "inc.csv"
    path.write_text("when,lon,lat\n0001-01-01,34.45,-2.25\n2025-01-01,34.45,-2.25\n")
    table = read_incidents(cfg(path))
    assert table.accepted["date"].tolist() == [pd.Timestamp("2025-01-01")]
    assert table.rejected["reason"].tolist() == ["bad_date"]
    assert table.rejected["detail"].iloc[0] == (
        "'0001-01-01' is before 1678 or after 2261; check the date"
    )


@pytest.mark.parametrize(
    ("encoding", "sep"), [("utf-16", "\t"), ("utf-16", ","), ("utf-8-sig", ";"), ("utf-8", "|")]
)
def test_spreadsheet_exports_are_read(tmp_path: Path, encoding: str, sep: str) -> None:
    """Excel's "Unicode text" (UTF-16, tabs) and semicolon CSV of many locales."""
    path = tmp_path / "inc.csv"
    rows = [["when", "lon", "lat", "note"], ["2025-01-01", "34.45", "-2.25", "café; ok"]]
    text = "\r\n".join(sep.join(f'"{v}"' if sep in v else v for v in r) for r in rows)
    path.write_bytes(text.encode(encoding))
    table = read_incidents(cfg(path, description="note"))
    assert table.accepted["description"].tolist() == ["café; ok"]
    assert table.accepted["source_row"].tolist() == [2]


def test_a_date_format_strptime_refuses_is_a_config_error(tmp_path: Path) -> None:
    # found by the property tests: a traceback from pandas
    path = tmp_path / "inc.csv"
    path.write_text(CSV)
    with pytest.raises(ConfigError, match=r"incidents\.date_format '%Q' is not a strftime"):
        read_incidents(cfg(path, date_format="%Q"))


def test_too_few_for_the_month_counts_rejections_without_examples(tmp_path: Path) -> None:
    located = _located(tmp_path, _rows(20) + "x,,34.45,-2.25,crop raiding\n")
    msg = str(
        too_few_incidents(
            located,
            cfg(tmp_path / "inc.csv"),
            used=0,
            month="2024-12",
            minimum=10,
            config_path=None,
        )
    )
    assert "dated up to 2024-12 (accepted incidents span 2025-01 to 2025-01)" in msg
    assert "; choose a later --month; 1 of 21 rows rejected: missing_date 1; run `hwc-risk" in msg


@pytest.mark.parametrize(
    ("lon", "fix"),
    [
        ('"34,45"', "(34.45, not 34,45)"),
        ("34°27'", "convert degrees, minutes and seconds to decimal degrees"),
        ("E34.45", "convert degrees, minutes and seconds to decimal degrees"),
        ("inf", "give finite numbers"),
        ("1e309", "give finite numbers"),
        ("34.45x", "give plain numbers in incidents.x and incidents.y"),
    ],
)
def test_bad_coordinates_get_the_fix_their_values_need(tmp_path: Path, lon: str, fix: str) -> None:
    path = tmp_path / "inc.csv"
    path.write_text(f"when,lon,lat\n2025-01-01,{lon},-2.25\n")
    summary = rejection_summary(read_incidents(cfg(path)), cfg(path))
    assert summary is not None and summary.startswith("1 of 1 rows rejected: bad_coordinates 1")
    assert summary.endswith(fix) or f"; {fix}" in summary
