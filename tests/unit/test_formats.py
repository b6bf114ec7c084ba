"""EarthRanger and SMART exports, several files, filters, time zones, duplicates."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwc_risk.config import IncidentsConfig
from hwc_risk.incidents import find_duplicates, read_incidents

# EarthRanger events as the /activity/events API returns them (fields per the API docs)
ER_EVENTS = [
    {
        "id": "0b6c0d3c-5f3e-4a51-9a0e-2c5e0f6b1a01",
        "serial_number": 1001,
        "event_type": "hwc_rep",
        "event_category": "human_wildlife_conflict",
        "title": "Crop raid",
        "time": "2025-03-02T21:15:00+03:00",
        "location": {"latitude": -2.25, "longitude": 34.45},
        "event_details": {"species": "elephant", "notes": "Maize <b>damaged</b>"},
        "priority": 200,
        "state": "active",
    },
    {
        "id": "0b6c0d3c-5f3e-4a51-9a0e-2c5e0f6b1a02",
        "serial_number": 1002,
        "event_type": "hwc_rep",
        "event_category": "human_wildlife_conflict",
        "title": "Livestock killed",
        "time": "2025-03-05T06:40:00+03:00",
        "location": {"latitude": -2.27, "longitude": 34.47},
        "event_details": {"species": "lion"},
        "priority": 300,
        "state": "resolved",
    },
    {
        "id": "0b6c0d3c-5f3e-4a51-9a0e-2c5e0f6b1a03",
        "serial_number": 1003,
        "event_type": "arrest_rep",
        "event_category": "security",
        "title": "Arrest",
        "time": "2025-03-06T10:00:00+03:00",
        "location": {"latitude": -2.2, "longitude": 34.4},
        "event_details": {},
    },
    {
        "id": "0b6c0d3c-5f3e-4a51-9a0e-2c5e0f6b1a04",
        "serial_number": 1004,
        "event_type": "hwc_rep",
        "event_category": "human_wildlife_conflict",
        "title": "No location",
        "time": "2025-03-07T10:00:00+03:00",
        "location": None,
        "event_details": {"species": "elephant"},
    },
]

# SMART observations (SMART 7 export: X, Y, datetime, category, attribute list)
SMART_OBS = [
    {
        "uuid": "a1",
        "X": 34.45,
        "Y": -2.25,
        "datetime": "2025-03-02T21:15:00",
        "category": "humanwildlifeconflict.cropdamage",
        "attributes": [
            {"attribute": "species", "value": "elephant"},
            {"attribute": "notes", "value": "Sorghum eaten"},
        ],
    },
    {
        "uuid": "a2",
        "X": 34.46,
        "Y": -2.26,
        "datetime": "2025-03-04T08:00:00",
        "category": "humanwildlifeconflict.livestockloss",
        "attributes": [{"key": "species", "value": "hyena"}],
    },
    {
        "uuid": "a3",
        "X": 34.40,
        "Y": -2.20,
        "datetime": "2025-03-05T08:00:00",
        "category": "threats.poaching",
        "attributes": [],
    },
]


def test_earthranger_api_json(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text(json.dumps({"data": {"count": 4, "results": ER_EVENTS}}))
    table = read_incidents(IncidentsConfig(path=path, format="earthranger"))
    assert table.n_read == 4
    acc = table.accepted.set_index("id")
    assert list(acc.index) == ["1001", "1002", "1003"]
    assert acc.loc["1001", "species"] == "elephant"
    assert acc.loc["1001", "description"] == "Maize <b>damaged</b>"
    assert acc.loc["1002", "description"] == "Livestock killed"  # the title when no notes
    assert acc.loc["1001", "date"] == pd.Timestamp("2025-03-02 18:15")  # +03:00 -> UTC
    assert acc.loc["1003", "type"] == "arrest_rep"
    assert table.rejected["reason"].tolist() == ["missing_coordinates"]


def test_earthranger_filters_keep_conflict_events(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text(json.dumps(ER_EVENTS))
    cfg = IncidentsConfig(
        path=path,
        format="earthranger",
        filters={"category": ["human_wildlife_conflict"], "species": ["Elephant"]},
    )
    table = read_incidents(cfg)
    assert table.accepted["id"].tolist() == ["1001"]
    reasons = table.rejected.set_index("serial_number")["reason"]
    assert reasons.loc[1002] == "filtered_out" and reasons.loc[1003] == "filtered_out"
    assert len(table.accepted) + len(table.rejected) + len(table.duplicates) == 4


def test_earthranger_geojson_and_pandas_csv(tmp_path: Path) -> None:
    features = [
        {
            "type": "Feature",
            "geometry": {
                "type": "Point",
                "coordinates": [e["location"]["longitude"], e["location"]["latitude"]],
            }
            if e["location"]
            else None,
            "properties": {k: v for k, v in e.items() if k != "location"},
        }
        for e in ER_EVENTS
    ]
    gj = tmp_path / "events.geojson"
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    t1 = read_incidents(IncidentsConfig(path=gj, format="earthranger"))
    # a client's DataFrame written by pandas: nested objects become Python reprs
    csv = tmp_path / "events.csv"
    pd.DataFrame(ER_EVENTS).to_csv(csv, index=False)
    t2 = read_incidents(IncidentsConfig(path=csv, format="earthranger"))
    for t in (t1, t2):
        assert t.accepted["id"].tolist() == ["1001", "1002", "1003"]
        np.testing.assert_allclose(t.accepted["lon"], [34.45, 34.47, 34.4])
        assert t.accepted["species"].tolist()[:2] == ["elephant", "lion"]
    assert t2.rejected["source_row"].tolist() == [5]  # line 5 of the CSV


def test_smart_json_and_csv(tmp_path: Path) -> None:
    js = tmp_path / "obs.json"
    js.write_text(json.dumps({"observations": SMART_OBS}))
    cfg = IncidentsConfig(
        path=js,
        format="smart",
        timezone="Africa/Dar_es_Salaam",
        filters={"category": ["humanwildlifeconflict"]},
    )
    table = read_incidents(cfg)
    acc = table.accepted.set_index("id")
    assert list(acc.index) == ["a1", "a2"]
    assert acc.loc["a1", "type"] == "cropdamage" and acc.loc["a1", "species"] == "elephant"
    assert acc.loc["a2", "species"] == "hyena"
    assert acc.loc["a1", "description"] == "Sorghum eaten"
    assert acc.loc["a1", "date"] == pd.Timestamp("2025-03-02 18:15")  # local time -> UTC
    assert table.rejected["reason"].tolist() == ["filtered_out"]
    csv = tmp_path / "obs.csv"
    frame = pd.DataFrame(SMART_OBS)
    frame["attributes"] = frame["attributes"].map(json.dumps)
    frame.to_csv(csv, index=False)
    t2 = read_incidents(IncidentsConfig(path=csv, format="smart"))
    species = t2.accepted["species"].tolist()
    assert species[:2] == ["elephant", "hyena"] and pd.isna(species[2])


def test_several_files_and_duplicates_across_exports(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "2025-03.csv").write_text(
        "id,date,lon,lat,kind\n"
        "r1,2025-03-01,34.45,-2.25,crop raiding\n"
        "r2,2025-03-30,34.46,-2.26,crop raiding\n"
    )
    (tmp_path / "exports" / "2025-04.csv").write_text(
        "id,date,lon,lat,kind\n"
        "r2,2025-03-30,34.46,-2.26,crop raiding\n"  # exported again
        "r3,2025-04-02,34.47,-2.27,crop raiding\n"
    )
    cfg = IncidentsConfig(
        path=tmp_path / "exports" / "*.csv",
        x="lon",
        y="lat",
        crs="EPSG:4326",
        id="id",
        type="kind",
    )
    table = read_incidents(cfg)
    assert [p.name for p in table.files] == ["2025-03.csv", "2025-04.csv"]
    assert table.n_read == 4
    assert table.accepted["id"].tolist() == ["r1", "r2", "r3"]
    assert len(table.duplicates) == 1
    assert table.duplicates["duplicate_of"].tolist() == ["2025-03.csv:3"]
    assert table.duplicates["source_file"].tolist() == ["2025-04.csv"]


def test_duplicates_without_ids_use_place_time_and_type() -> None:
    base = pd.Timestamp("2025-03-01 10:00")
    frame = pd.DataFrame(
        {
            "date": [
                base,
                base + pd.Timedelta(minutes=20),
                base,
                base,
                base + pd.Timedelta(hours=5),
            ],
            "lon": [34.45, 34.45005, 34.455, 34.45, 34.45],
            "lat": [-2.25, -2.25, -2.25, -2.25, -2.25],
            "type": ["crop", "crop", "crop", "livestock", "crop"],
        }
    )
    dup = find_duplicates(frame, time_hours=1.0, distance_m=50.0)
    # row 1 is row 0 again (5 m, 20 min); row 2 is 550 m away; row 3 another type;
    # row 4 five hours later
    assert dup.tolist() == [-1, 0, -1, -1, -1]


def test_time_zones_move_incidents_across_month_ends(tmp_path: Path) -> None:
    path = tmp_path / "inc.csv"
    path.write_text("date,lon,lat\n2025-04-01 01:00,34.45,-2.25\n2025-03-31T23:00:00Z,34.5,-2.3\n")
    cfg = IncidentsConfig(path=path, x="lon", y="lat", crs="EPSG:4326", timezone="Africa/Nairobi")
    dates = read_incidents(cfg).accepted["date"].tolist()
    assert dates == [pd.Timestamp("2025-03-31 22:00"), pd.Timestamp("2025-03-31 23:00")]


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        ("dayfirst", "3/4/2025", "2025-04-03"),
        ("monthfirst", "3/4/2025", "2025-03-04"),
        ("%d %B %Y", "4 March 2025", "2025-03-04"),
        ("%d-%b-%y", "04-Mar-25", "2025-03-04"),
    ],
)
def test_day_first_and_month_name_dates(tmp_path: Path, fmt: str, text: str, expected: str) -> None:
    path = tmp_path / "inc.csv"
    path.write_text(f'date,lon,lat\n"{text}",34.45,-2.25\n')
    cfg = IncidentsConfig(path=path, x="lon", y="lat", crs="EPSG:4326", date_format=fmt)
    assert read_incidents(cfg).accepted["date"].tolist() == [pd.Timestamp(expected)]


def test_future_dates_and_projected_coordinates_out_of_area(tmp_path: Path) -> None:
    path = tmp_path / "inc.csv"
    path.write_text(
        "date,x,y\n2025-03-01,665000,9750000\n2031-01-01,665000,9750000\n"
        "2025-03-01,9000000,9750000\n"
    )
    cfg = IncidentsConfig(path=path, x="x", y="y", crs="EPSG:32736")
    table = read_incidents(cfg, now=datetime(2026, 11, 21))
    assert table.rejected["reason"].tolist() == ["future_date", "coordinates_out_of_range"]
    assert "2026-11-21" in table.rejected["detail"].iloc[0]
    assert "EPSG:32736" in table.rejected["detail"].iloc[1]


def test_reports_with_their_own_ids_are_not_merged_by_place_and_time() -> None:
    """Two calls about the same coyote on the same block are two reports when each has
    its own request number; the same number twice is one report exported twice."""
    base = pd.Timestamp("2025-03-01 10:00")
    frame = pd.DataFrame(
        {
            "id": ["R1", "R2", "R1", None],
            "date": [base, base + pd.Timedelta(minutes=20), base, base],
            "lon": [34.45, 34.45005, 34.45, 34.45],
            "lat": [-2.25, -2.25, -2.25, -2.25],
            "type": ["crop"] * 4,
        }
    )
    dup = find_duplicates(frame, time_hours=1.0, distance_m=50.0)
    # R2 is kept (its own id); R1 again is merged; the row without an id is merged by
    # place and time into the first report
    assert dup.tolist() == [-1, -1, 0, 0]
