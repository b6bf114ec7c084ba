"""Generated incident tables through the reader: every row is accounted for.

Whatever a table holds, reading it either stops with one input error naming the
file, or gives tables where ``read = accepted + merged + rejected`` (before and
after locating on the grid), each row in exactly one of them, with a known reason
for each rejected row, and a summary of the rejections on one line.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rasterio.crs import CRS

from hwc_risk.config import IncidentsConfig
from hwc_risk.errors import InputError
from hwc_risk.grid import GridSpec
from hwc_risk.incidents import (
    REJECTION_REASONS,
    IncidentTable,
    locate_incidents,
    read_incidents,
    rejection_summary,
    too_few_incidents,
)
from hwc_risk.mask import ValidMask

from .strategies import Table, incident_tables, note

# the grid of the CLI tests' small area (SyntheticArea(size=48, cell_size=250, seed=5))
GRID = GridSpec(CRS.from_epsg(32633), Affine(250, 0, 500_000, 0, -250, 5_200_000), 48, 48)
NOW = datetime(2025, 7, 1)


@pytest.fixture(scope="module")
def valid_mask(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValidMask]:
    valid = np.ones(GRID.shape, dtype=bool)
    valid[-3:, :] = False  # a nodata strip, as the small area has
    yield ValidMask.from_array(valid, GRID, tmp_path_factory.mktemp("mask") / "valid.tif")


def _all_rows(table: IncidentTable) -> list[tuple[str, int]]:
    parts = [table.accepted, table.duplicates, table.rejected]
    return sorted(
        (str(f), int(r))
        for part in parts
        if len(part)
        for f, r in zip(part["source_file"], part["source_row"], strict=True)
    )


def check_accounting(table: IncidentTable, n_rows: int, offset: int = 2) -> None:
    """``read = accepted + merged + rejected``, every row once, each rejection explained."""
    n_acc, n_dup, n_rej = len(table.accepted), len(table.duplicates), len(table.rejected)
    assert table.n_read == n_acc + n_dup + n_rej
    assert _all_rows(table) == [(table.path.name, offset + i) for i in range(table.n_read)]
    if n_rej:
        assert set(table.rejected["reason"]) <= set(REJECTION_REASONS)
        assert table.rejected["detail"].astype(str).str.len().gt(0).all()
    acc = table.accepted
    if n_acc:
        assert acc["date"].notna().all()
        assert np.isfinite(acc[["lon", "lat"]].to_numpy(dtype=float)).all()
        assert (acc["lon"].abs() <= 180).all() and (acc["lat"].abs() <= 90).all()


def check_messages(table: IncidentTable, cfg: IncidentsConfig) -> None:
    summary = rejection_summary(table, cfg)
    assert (summary is None) == table.rejected.empty
    err = too_few_incidents(
        table, cfg, used=0, month="2025-06", minimum=10, config_path=Path("c.yaml")
    )
    for text in (summary or "", str(err)):
        assert "\n" not in text and "\r" not in text, text


def read_and_check(
    table: Table, cfg_kw: dict[str, object], valid: ValidMask, folder: Path
) -> IncidentTable | None:
    path = folder / "incidents.csv"
    path.write_bytes(table.data)
    cfg = IncidentsConfig(path=path, x="lon", y="lat", crs="EPSG:4326", date="date", **cfg_kw)  # type: ignore[arg-type]
    try:
        read = read_incidents(cfg, now=NOW)
    except InputError as exc:
        msg = str(exc)
        note(f"input error: {msg.split(': ', 1)[-1][:50]}")
        assert msg and "\n" not in msg and "\r" not in msg, msg
        assert str(path) in msg, msg
        return None
    check_accounting(read, table.n_rows)
    check_messages(read, cfg)
    located = locate_incidents(read, GRID, valid)
    check_accounting(located, table.n_rows)
    check_messages(located, cfg)
    assert len(located.accepted) <= len(read.accepted)
    acc = located.accepted
    note(f"accepted rows: {'some' if len(acc) else 'none'}")
    for reason in set(located.rejected.get("reason", [])):
        note(f"rejected: {reason}")
    if len(acc):
        assert valid.at(acc["row"].to_numpy(), acc["col"].to_numpy()).all()
    return located


mappings = st.fixed_dictionaries(
    {},
    optional={
        "date_format": st.sampled_from(["%d/%m/%Y", "dayfirst", "monthfirst", "%Y-%m-%d %H:%M"]),
        "timezone": st.sampled_from(["Africa/Nairobi", "America/Sao_Paulo", "Pacific/Kiritimati"]),
        "id": st.just("id"),
        "species": st.just("species"),
        "type": st.just("kind"),
        "format": st.sampled_from(["table", "auto"]),
        "duplicates": st.fixed_dictionaries(
            {"time_hours": st.floats(0, 1e6), "distance_m": st.floats(0, 1e7)}
        ),
    },
)

GOOD = b"id,date,lon,lat,species,kind\nS1,2025-01-02,15.1,46.9,wolf,attack\n"
HEADER = "id,date,lon,lat,species,kind\r\n"


def _table(text: str, n_rows: int = 1, encoding: str = "utf-8") -> Table:
    return Table(text.encode(encoding), (), n_rows, encoding, ",")


@pytest.mark.slow  # over ~3 s on the shared 2-core machine
@given(table=incident_tables(max_rows=60), cfg_kw=mappings)
@settings(max_examples=int(os.environ.get("HWC_PROPERTY_EXAMPLES", "200")))
@example(table=Table(GOOD, (), 1, "utf-8", ","), cfg_kw={})
# found by this property (each was a traceback or a message broken over lines):
# a year a nanosecond timestamp cannot hold
@example(table=_table(HEADER + ",0001-01-01,15.125,46.875,,\r\n"), cfg_kw={})
# a date with nanoseconds and an offset, beside one without
@example(
    table=_table(
        HEADER
        + "a,2025-03-08T18:30:00+14:00,15.1,46.9,,\r\n"
        + "b,2025-03-08T18:30:00.123456789Z,15.1,46.9,,\r\n",
        2,
    ),
    cfg_kw={"id": "id"},
)
# line breaks inside quoted coordinates
@example(table=_table(HEADER + ',2024-01-01,"\x03ê",  "000\r000\x80",,\r\n'), cfg_kw={})
# a line break inside a column name, and a missing column
@example(table=_table('id,"da\nte",lon,lat\r\nS1,2025-01-02,15.1,46.9\r\n'), cfg_kw={})
# Excel's "Unicode text" (UTF-16, tabs) and a semicolon CSV
@example(
    table=_table(HEADER.replace(",", "\t") + "S1\t2025-01-02\t15.1\t46.9\t\t\r\n", 1, "utf-16"),
    cfg_kw={},
)
@example(table=_table(HEADER.replace(",", ";") + "S1;2025-01-02;15,1;46,9;;\r\n"), cfg_kw={})
def test_every_row_read_is_accepted_merged_or_rejected(
    table: Table, cfg_kw: dict[str, object], valid_mask: ValidMask
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        located = read_and_check(table, cfg_kw, valid_mask, Path(tmp))
    if table.data == GOOD:
        assert located is not None and len(located.accepted) == 1


def test_the_good_example_is_read(valid_mask: ValidMask, tmp_path: Path) -> None:
    """The property's checks accept a good table (they are not vacuous)."""
    text = GOOD.decode() + "S2,2025-01-03,15.11,46.91,wolf,attack\nS3,soon,1,2,wolf,attack\n"
    located = read_and_check(
        Table(text.encode(), (), 3, "utf-8", ","), {"id": "id"}, valid_mask, tmp_path
    )
    assert located is not None
    assert len(located.accepted) == 2
    assert located.rejected["reason"].tolist() == ["bad_date"]
    frame = pd.concat([located.accepted, located.rejected])
    assert sorted(frame["source_row"]) == [2, 3, 4]
