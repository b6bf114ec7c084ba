"""Hypothesis strategies: incident tables as an agency might export them, broken or not.

A table is drawn as a header and rows of text cells, then written with a separator,
an encoding (a byte-order mark or not), line endings and quoting drawn too. Cells mix
good values (dates and points inside the test area, so some rows are accepted) with
what exports really hold: other date formats, time zones, empty and huge values,
NaN and infinite coordinates, swapped latitude and longitude, decimal commas.
"""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import dataclass
from datetime import date, datetime

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

#: The small study area of the CLI tests (SyntheticArea(size=48, seed=5)) in WGS 84.
AREA_LON = (15.01, 15.15)
AREA_LAT = (46.85, 46.94)
COLUMNS = ("id", "date", "lon", "lat", "species", "kind")

_DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%d %B %Y",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S+03:00",
    "%Y-%m-%d %H:%M",
    "%Y%m%d",
)
_ODD_TEXT = (
    "",
    " ",
    "NaN",
    "nan",
    "None",
    "null",
    "NULL",
    "inf",
    "-inf",
    "Infinity",
    "1e309",
    "-1e309",
    "0",
    "-0",
    "1e-320",
    "9" * 400,
    "🐘",
    "\u200b",
    "=1+1",
    '"',
    "'",
    ",",
    ";",
    "\t",
    "x" * 5000,
)
_EDGE_DATES = (
    "0001-01-01",
    "1677-09-21",
    "1677-09-22",
    "2262-04-11",
    "2262-04-12",
    "9999-12-31",
    "2025-02-29",
    "2024-02-29",
    "2025-13-01",
    "2025-00-10",
    "2025-03-30T02:30:00",
    "2099-01-01",
    "1970-01-01",
    "2025-03-08T18:30:00+14:00",
    "2025-03-08T18:30:00-12:00",
    "2025-03-08 18:30:00 +0300",
    "2025-03-08T18:30:00.123456789Z",
)

texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30
) | st.sampled_from(_ODD_TEXT)


@st.composite
def dates(draw: st.DrawFn) -> str:
    kind = draw(st.integers(-1, 3))
    if kind <= 0:  # a good date in the data's range
        d = draw(st.dates(date(2024, 1, 1), date(2025, 6, 30)))
        return d.isoformat()
    if kind == 1:  # another format, any time
        moment = draw(st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)))
        return moment.strftime(draw(st.sampled_from(_DATE_FORMATS)))
    if kind == 2:
        return draw(st.sampled_from(_EDGE_DATES))
    return draw(texts)


def _number(value: float, style: str) -> str:
    text = repr(value) if style == "repr" else f"{value:.7f}"
    return text.replace(".", ",") if style == "comma" else text


@st.composite
def points(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(st.integers(0, 4))
    if kind <= 1:  # inside the area (maybe swapped, maybe with a decimal comma)
        lon = draw(st.floats(*AREA_LON))
        lat = draw(st.floats(*AREA_LAT))
        style = draw(st.sampled_from(["fixed", "fixed", "repr", "comma"]))
        x, y = _number(lon, style), _number(lat, style)
        return (y, x) if kind == 1 and draw(st.booleans()) else (x, y)
    if kind == 2:  # any float, NaN and infinities included
        return (
            repr(draw(st.floats(allow_nan=True, allow_infinity=True))),
            repr(draw(st.floats(allow_nan=True, allow_infinity=True))),
        )
    if kind == 3:  # a projected-looking pair
        return (repr(draw(st.floats(-1e7, 1e7))), repr(draw(st.floats(-1e7, 1e7))))
    return (draw(texts), draw(texts))


@st.composite
def rows(draw: st.DrawFn, n_columns: int) -> list[str]:
    x, y = draw(points())
    cells = [draw(texts), draw(dates()), x, y, draw(texts), draw(texts)]
    extra = [draw(texts) for _ in range(max(0, n_columns - len(cells)))]
    return (cells + extra)[:n_columns] if draw(st.booleans()) else cells + extra


@dataclass(frozen=True)
class Table:
    """A generated incident file: its bytes and how it was made (for the report)."""

    data: bytes
    header: tuple[str, ...]
    n_rows: int
    encoding: str
    separator: str


@st.composite
def headers(draw: st.DrawFn) -> list[str]:
    header = list(COLUMNS)
    if draw(st.integers(0, 3)) == 0:  # rename, drop, duplicate or add columns
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(header) - 1))
            action = draw(st.sampled_from(["rename", "drop", "duplicate", "add"]))
            if action == "rename":
                header[i] = draw(texts)
            elif action == "drop" and len(header) > 1:
                header.pop(i)
            elif action == "duplicate":
                header.insert(i, header[i])
            else:
                header.append(draw(texts))
    return header


@st.composite
def incident_tables(
    draw: st.DrawFn, max_rows: int = 40, good_rows: tuple[tuple[str, ...], ...] = ()
) -> Table:
    """A table file; with ``good_rows`` (rows of :data:`COLUMNS`), some of them come first."""
    header = draw(headers())
    body = draw(st.lists(rows(len(header)), min_size=1, max_size=max_rows))
    if good_rows and draw(st.booleans()):
        keep = draw(st.integers(1, len(good_rows)))
        body = [list(r) for r in good_rows[:keep]] + body
    separator = draw(st.sampled_from([",", ",", ",", ",", ";", "\t", "|"]))
    buffer = io.StringIO()
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    if draw(st.integers(0, 5)) == 0:  # written by hand: no quoting at all
        lines = [separator.join(line) for line in [header, *body]]
        buffer.write("\n".join(lines) + ("\n" if draw(st.booleans()) else ""))
    else:
        writer = csv.writer(
            buffer,
            delimiter=separator,
            quoting=quoting,
            lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])),
        )
        writer.writerow(header)
        writer.writerows(body)
    encoding = draw(
        st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"])
    )
    data = buffer.getvalue().encode(encoding, errors="replace")
    if draw(st.integers(0, 10)) == 0:  # truncated mid-file
        data = data[: draw(st.integers(0, len(data)))]
    return Table(data, tuple(header), len(body), encoding, separator)


def note(label: str) -> None:
    """Count ``label`` in hypothesis's statistics (``--hypothesis-show-statistics``)."""
    with contextlib.suppress(InvalidArgument):  # called from a plain test, not a property
        event(label)
